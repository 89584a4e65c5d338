"""BatchNorm, activation, pooling, dropout layers and the losses against PyTorch
(optional: skipped without PyTorch). Both backends; float32, rtol/atol 1e-5."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch not installed: parity tests are optional")

import tinyface.losses as losses  # noqa: E402
from tinyface import nn  # noqa: E402
from tinyface.backend import set_backend  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(params=["numba", "numpy"], autouse=True)
def backend(request):
    previous = set_backend(request.param)
    yield request.param
    set_backend(previous)


def _t(a, grad=False):
    return torch.tensor(np.asarray(a), dtype=torch.float32, requires_grad=grad)


def _compare_layer(ours, theirs, x, steps=1):
    """Forward and backward ``steps`` times on both; compare outputs, dx, grads, buffers."""
    rng = np.random.default_rng(0)
    for _ in range(steps):
        out = ours.forward(x)
        xt = _t(x, grad=True)
        out_t = theirs(xt)
        np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        dx = ours.backward(dout)
        out_t.backward(_t(dout))
        np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    tp = dict(theirs.named_parameters())
    assert sorted(tp) == sorted(ours.params)
    for name, p in tp.items():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), **TOL, err_msg=name)
    tb = {k: v for k, v in theirs.named_buffers() if k != "num_batches_tracked"}
    assert sorted(tb) == sorted(ours.buffers)
    for name, b in tb.items():
        np.testing.assert_allclose(ours.buffers[name], b.numpy(), **TOL, err_msg=name)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kind,shape", [("2d", (4, 3, 5, 6)), ("1d", (6, 5)), ("1d", (3, 4, 7))])
def test_batchnorm_matches_torch(kind, shape, training):
    rng = np.random.default_rng(1)
    C = shape[1]
    ours = nn.BatchNorm2d(C, momentum=0.2) if kind == "2d" else nn.BatchNorm1d(C, momentum=0.2)
    theirs = (torch.nn.BatchNorm2d if kind == "2d" else torch.nn.BatchNorm1d)(C, momentum=0.2)
    state = {"weight": rng.uniform(0.5, 2, C), "bias": rng.standard_normal(C),
             "running_mean": rng.standard_normal(C), "running_var": rng.uniform(0.5, 2, C)}
    ours.load_state_dict(state)
    theirs.load_state_dict({k: _t(v) for k, v in state.items()}, strict=False)
    ours.train(training)
    theirs.train(training)
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
    _compare_layer(ours, theirs, x, steps=2)            # two steps: running stats compound


@pytest.mark.parametrize("ours,theirs,shape", [
    (lambda: nn.ReLU(), lambda: torch.nn.ReLU(), (2, 3, 4, 5)),
    (lambda: nn.PReLU(), lambda: torch.nn.PReLU(), (2, 3, 4, 5)),
    (lambda: nn.PReLU(3, init=0.1), lambda: torch.nn.PReLU(3, init=0.1), (2, 3, 4, 5)),
    (lambda: nn.PReLU(4), lambda: torch.nn.PReLU(4), (5, 4)),
    (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (2, 3, 6, 5)),
    (lambda: nn.MaxPool2d(3, 2, 1), lambda: torch.nn.MaxPool2d(3, 2, 1), (2, 2, 7, 6)),
    (lambda: nn.MaxPool2d((2, 3), (1, 2), (1, 1)),
     lambda: torch.nn.MaxPool2d((2, 3), (1, 2), (1, 1)), (1, 2, 5, 7)),
    (lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), (2, 3, 6, 5)),
    (lambda: nn.AvgPool2d(3, 2, 1), lambda: torch.nn.AvgPool2d(3, 2, 1), (2, 2, 7, 6)),
    (lambda: nn.AvgPool2d((3, 2), (2, 1), (1, 0)),
     lambda: torch.nn.AvgPool2d((3, 2), (2, 1), (1, 0)), (1, 2, 6, 5)),
    (lambda: nn.GlobalAvgPool2d(),
     lambda: torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()), (2, 3, 4, 5)),
    (lambda: nn.Flatten(), lambda: torch.nn.Flatten(), (2, 3, 4, 5)),
], ids=["relu", "prelu", "prelu-c", "prelu-1d", "maxpool", "maxpool-pad", "maxpool-rect",
        "avgpool", "avgpool-pad", "avgpool-rect", "gap", "flatten"])
def test_layers_match_torch(ours, theirs, shape):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    _compare_layer(ours(), theirs(), x, steps=2)


def test_dropout_eval_matches_torch():
    x = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    _compare_layer(nn.Dropout(0.4).eval(), torch.nn.Dropout(0.4).eval(), x)


def test_dropout_train_scaling_matches_torch():
    """Masks differ (different generators); kept values and the keep rate must agree."""
    x = np.ones((200, 500), np.float32)
    ours = nn.Dropout(0.3).forward(x)
    theirs = torch.nn.Dropout(0.3).train()(_t(x)).numpy()
    assert set(np.unique(ours)) == set(np.unique(theirs)) == {0.0, np.float32(1 / 0.7)}
    assert abs((ours != 0).mean() - (theirs != 0).mean()) < 0.01


def test_cross_entropy_matches_torch():
    rng = np.random.default_rng(4)
    logits = (rng.standard_normal((6, 11)) * 3).astype(np.float32)
    labels = rng.integers(0, 11, 6)
    loss, grad = losses.softmax_cross_entropy_loss(logits, labels)
    lt = _t(logits, grad=True)
    ref = torch.nn.functional.cross_entropy(lt, torch.tensor(labels))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(grad, lt.grad.numpy(), **TOL)


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_distillation_matches_torch_kl_div(T):
    rng = np.random.default_rng(5)
    s = (rng.standard_normal((5, 8)) * 3).astype(np.float32)
    t = (rng.standard_normal((5, 8)) * 3).astype(np.float32)
    loss, grad = losses.distillation_loss(s, t, T)
    st = _t(s, grad=True)
    F = torch.nn.functional
    ref = F.kl_div(F.log_softmax(st / T, dim=1), F.softmax(_t(t) / T, dim=1),
                   reduction="batchmean") * T * T
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(grad, st.grad.numpy(), **TOL)


def test_feature_regression_matches_torch():
    rng = np.random.default_rng(6)
    pred = rng.standard_normal((4, 16)).astype(np.float32)
    target = rng.standard_normal((4, 16)).astype(np.float32)
    w = rng.uniform(0, 2, 4).astype(np.float32)
    loss, grad = losses.feature_regression_loss(pred, target, w)
    pt = _t(pred, grad=True)
    wt = _t(w)
    ref = (wt * ((pt - _t(target)) ** 2).sum(dim=1)).sum() / wt.sum()
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(grad, pt.grad.numpy(), **TOL)
