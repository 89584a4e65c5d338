"""Conv2d and Linear layers: PyTorch layout, gradient accumulation, bad input, records."""
import numpy as np
import pytest

from tinyface import nn
from tinyface.nn.module import build_layer


def test_conv2d_layout_and_defaults():
    layer = nn.Conv2d(3, 8, (3, 2), stride=2, padding=1)
    assert layer.params["weight"].shape == (8, 3, 3, 2)
    assert layer.params["bias"].shape == (8,)
    assert all(layer.params[k].dtype == np.float32 for k in layer.params)
    assert set(layer.grads) == set(layer.params)
    bound = 1 / np.sqrt(3 * 3 * 2)
    assert np.abs(layer.params["weight"]).max() <= bound
    assert "bias" not in nn.Conv2d(3, 8, 3, bias=False).params


def test_linear_layout():
    layer = nn.Linear(5, 7)
    assert layer.params["weight"].shape == (7, 5) and layer.params["bias"].shape == (7,)


@pytest.mark.parametrize("layer,x", [
    (nn.Conv2d(2, 3, 3, padding=1), np.random.default_rng(0).standard_normal((2, 2, 5, 4))),
    (nn.Linear(4, 3), np.random.default_rng(0).standard_normal((5, 4))),
])
def test_gradients_accumulate_and_zero(layer, x):
    out = layer.forward(x)
    assert out.dtype == np.float32                      # float64 input converted
    dout = np.ones_like(out)
    layer.backward(dout)
    first = {k: g.copy() for k, g in layer.grads.items()}
    layer.backward(dout)
    for k in first:
        np.testing.assert_allclose(layer.grads[k], 2 * first[k], rtol=1e-6)
    layer.zero_grad()
    assert all(not g.any() for g in layer.grads.values())


def test_wrong_shape_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Conv2d.*\(N, 3, H, W\).*\(2, 4, 8, 8\)"):
        nn.Conv2d(3, 4, 3).forward(np.zeros((2, 4, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Linear.*\(N, 6\).*\(2, 5\)"):
        nn.Linear(6, 2).forward(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="expected input of shape"):
        nn.Linear(6, 2).forward(np.zeros((2, 6, 1), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(2, 2).forward(np.array([["a", "b"]]))


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Conv2d(1, 1, 1).backward(np.zeros((1, 1, 1, 1), np.float32))


def test_config_round_trip_and_named_parameters():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.GlobalAvgPool2d(), nn.Linear(4, 2))
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert [n for n, _ in model.named_buffers()] == ["1.running_mean", "1.running_var"]
    assert [n for n, _ in model.named_grads()] == names
    clone = build_layer(model.config())
    clone.load_state_dict(model.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(model.eval().forward(x), clone.eval().forward(x))


def test_seeded_init_is_deterministic():
    nn.manual_seed(5)
    a = nn.Conv2d(3, 4, 3).params["weight"].copy()
    nn.manual_seed(5)
    np.testing.assert_array_equal(a, nn.Conv2d(3, 4, 3).params["weight"])


def test_load_state_dict_names_first_mismatch():
    a = nn.Sequential(nn.Linear(4, 3))
    b = nn.Sequential(nn.Linear(4, 5))
    with pytest.raises(ValueError, match=r"0\.weight.*\(5, 4\).*\(3, 4\)"):
        b.load_state_dict(a.state_dict())
