"""End to end: a small CNN overfits one small batch, and its loss falls at least 10x."""
import numpy as np
import pytest

from tinyface import losses, nn
from tinyface.backend import set_backend
from tinyface.losses import NonFiniteLossError
from tinyface.optim import SGD, Adam


def small_cnn(num_classes=5, seed=0):
    nn.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.PReLU(),
        nn.GlobalAvgPool2d(), nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(),
        nn.Dropout(0.1, seed=seed), nn.Linear(32, num_classes))


def train(model, x, y, opt, steps):
    history = []
    for _ in range(steps):
        opt.zero_grad()
        logits = model.forward(x)
        loss, dlogits = losses.softmax_cross_entropy_loss(logits, y)
        model.backward(dlogits)
        opt.step()
        history.append(float(loss))
    return history


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_small_cnn_overfits_one_batch(backend):
    previous = set_backend(backend)
    try:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((10, 3, 12, 12)).astype(np.float32)
        y = np.arange(10) % 5
        model = small_cnn()
        history = train(model, x, y, Adam(model.parameters_and_grads(), lr=0.01), steps=60)
        assert history[-1] < history[0] / 10, f"loss {history[0]:.3f} -> {history[-1]:.3f}"
        model.eval()
        assert (model.forward(x).argmax(1) == y).mean() == 1.0
    finally:
        set_backend(previous)


def test_training_is_deterministic_for_a_seed():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, 8, 8)).astype(np.float32)
    y = np.arange(6) % 5
    runs = []
    for _ in range(2):
        model = small_cnn(seed=3)
        train(model, x, y, SGD(model.parameters_and_grads(), lr=0.05, momentum=0.9), steps=5)
        runs.append(model.state_dict())
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name], err_msg=name)


def test_nan_loss_is_an_error_not_silent_training():
    model = small_cnn()
    x = np.full((4, 3, 8, 8), np.nan, np.float32)
    with pytest.raises(NonFiniteLossError, match="nan"):
        losses.softmax_cross_entropy_loss(model.forward(x), np.zeros(4, int))
