"""Per-channel affine op and the ``Affine2d`` layer: gradient checks (both CPU tiers,
float64), Numba against the NumPy reference (float32, seeded random shapes, batch 1 up
to batches that take the parallel kernels), argument errors, and the layer's
forward/backward, config and checkpoint round trips."""
import json

import numba
import numpy as np
import pytest

from tinyface import checkpoint, nn
from tinyface.backend import set_backend
from tinyface.gradcheck import assert_gradient, numerical_gradient
from tinyface.kernels import affine as numba_affine
from tinyface.kernels.threading import PARALLEL_MIN_BATCH, use_parallel
from tinyface.nn.module import build_layer
from tinyface.reference import affine as numpy_affine

TIERS = {"numpy": numpy_affine, "numba": numba_affine}
# float32: out and dx are the same two roundings in both tiers; dw and db are float64
# sums in another order, rounded to float32
RTOL, ATOL = 1e-6, 1e-6


@pytest.fixture(params=sorted(TIERS))
def tier(request):
    return TIERS[request.param]


@pytest.fixture(params=["numba", "numpy"])
def backend(request):
    previous = set_backend(request.param)
    yield request.param
    set_backend(previous)


# ------------------------------------------------------------------------ the op
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 3, 2, 4), (2, 2, 3, 3), (5, 4, 1, 2)])
def test_channel_affine_gradients(tier, shape):
    rng = np.random.default_rng(sum(shape))
    C = shape[1]
    x = rng.standard_normal(shape)
    w = rng.standard_normal(C)
    b = rng.standard_normal(C)
    f = lambda: tier.channel_affine_forward(x, w, b)[0]
    out, cache = tier.channel_affine_forward(x, w, b)
    assert out.shape == shape and out.dtype == np.float64
    dout = rng.standard_normal(shape)
    dx, dw, db = tier.channel_affine_backward(dout, cache)
    assert dx.shape == shape and dw.shape == db.shape == (C,)
    assert_gradient(dx, numerical_gradient(f, x, dout), tol=1e-7, name="affine dx")
    assert_gradient(dw, numerical_gradient(f, w, dout), tol=1e-7, name="affine dw")
    assert_gradient(db, numerical_gradient(f, b, dout), tol=1e-7, name="affine db")


def test_channel_affine_known_values(tier):
    x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)       # channel 0: 0..3, 1: 4..7
    w = np.array([2.0, -1.0], np.float32)
    b = np.array([0.5, 10.0], np.float32)
    out, cache = tier.channel_affine_forward(x, w, b)
    np.testing.assert_array_equal(out[0, 0], [[0.5, 2.5], [4.5, 6.5]])
    np.testing.assert_array_equal(out[0, 1], [[6.0, 5.0], [4.0, 3.0]])
    dx, dw, db = tier.channel_affine_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx[0, 0], np.full((2, 2), 2.0))
    np.testing.assert_array_equal(dx[0, 1], np.full((2, 2), -1.0))
    np.testing.assert_array_equal(dw, [0 + 1 + 2 + 3, 4 + 5 + 6 + 7])
    np.testing.assert_array_equal(db, [4.0, 4.0])
    assert dx.dtype == dw.dtype == db.dtype == np.float32


def test_channel_affine_rejects_bad_arguments(tier):
    x = np.ones((2, 3, 4, 4), np.float32)
    w, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"channel_affine: x must be \(N, C, H, W\)"):
        tier.channel_affine_forward(np.ones((2, 3, 4), np.float32), w, b)
    with pytest.raises(ValueError, match=r"channel_affine: w must have shape \(3,\)"):
        tier.channel_affine_forward(x, np.ones(4, np.float32), b)
    with pytest.raises(ValueError, match=r"channel_affine: b must have shape \(3,\)"):
        tier.channel_affine_forward(x, w, np.zeros((1, 3), np.float32))
    _, cache = tier.channel_affine_forward(x, w, b)
    with pytest.raises(ValueError, match="channel_affine_backward: dout"):
        tier.channel_affine_backward(np.ones((2, 3, 4, 5), np.float32), cache)
    with pytest.raises(ValueError) as info:
        tier.channel_affine_forward(x, np.ones(2), b)
    assert "\n" not in str(info.value)                     # one line


def test_numba_refuses_integer_input():
    with pytest.raises(TypeError, match="float"):
        numba_affine.channel_affine_forward(np.ones((1, 2, 2, 2), np.int32), np.ones(2), np.ones(2))


def _run(tier, x, w, b, dout):
    out, cache = tier.channel_affine_forward(x, w, b)
    return (out, *tier.channel_affine_backward(dout, cache))


def test_channel_affine_numba_matches_reference():
    rng = np.random.default_rng(31)
    shapes = [(1, 1, 1, 1), (1, 16, 7, 5), (3, 2, 4, 4), (PARALLEL_MIN_BATCH, 3, 2, 2),
              (37, 5, 6, 3), (64, 8, 5, 5)]
    shapes += [tuple(int(v) for v in rng.integers(1, 9, 4)) for _ in range(10)]
    for trial, shape in enumerate(shapes):
        C = shape[1]
        x = rng.standard_normal(shape).astype(np.float32)
        w = rng.standard_normal(C).astype(np.float32)
        b = rng.standard_normal(C).astype(np.float32)
        dout = rng.standard_normal(shape).astype(np.float32)
        got, want = _run(numba_affine, x, w, b, dout), _run(numpy_affine, x, w, b, dout)
        msg = f"trial {trial}: x {shape}, parallel kernels: {use_parallel(shape[0])}"
        for label, a, r in zip(["out", "dx", "dw", "db"], got, want):
            assert a.dtype == r.dtype == np.float32 and a.shape == r.shape, f"{label}, {msg}"
            np.testing.assert_allclose(a, r, rtol=RTOL, atol=ATOL * max(1.0, np.abs(r).max()),
                                       err_msg=f"{label}, {msg}")


def test_serial_and_parallel_kernels_agree_bit_for_bit():
    """Both halves of each compiled pair, on a batch large enough for the parallel one:
    same output, and the same float64 parameter sums on every run (deterministic)."""
    if numba.get_num_threads() > 1:
        assert use_parallel(64)                           # the dispatcher takes the parallel path
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 6, 9, 9)).astype(np.float32).reshape(64, 6, 81)
    w, b = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for kernel_fwd, kernel_bwd in zip(numba_affine._forward, numba_affine._backward):
        for _ in range(2):
            out = np.empty_like(x)
            kernel_fwd(x, w, b, out)
            dx, dw, db = np.empty_like(x), np.zeros(6), np.zeros(6)
            kernel_bwd(dout, x, w, dx, dw, db)
            results.append((out, dx, dw, db))
    for other in results[1:]:
        for a, r in zip(other, results[0]):
            np.testing.assert_array_equal(a, r)


def test_empty_batch():
    for tier in TIERS.values():
        out, cache = tier.channel_affine_forward(np.zeros((0, 2, 3, 3), np.float32),
                                                 np.ones(2, np.float32), np.ones(2, np.float32))
        dx, dw, db = tier.channel_affine_backward(np.zeros_like(out), cache)
        assert out.shape == dx.shape == (0, 2, 3, 3)
        np.testing.assert_array_equal(dw, [0, 0])
        np.testing.assert_array_equal(db, [0, 0])


# --------------------------------------------------------------------- the layer
def test_affine2d_defaults_are_the_identity():
    layer = nn.Affine2d(4)
    assert sorted(layer.params) == sorted(layer.grads) == ["bias", "weight"]
    assert layer.buffers == {} and layer.num_parameters() == 8
    np.testing.assert_array_equal(layer.params["weight"], np.ones(4))
    np.testing.assert_array_equal(layer.params["bias"], np.zeros(4))
    assert all(p.dtype == np.float32 and p.shape == (4,) for p in layer.params.values())
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x), x)
    with pytest.raises(ValueError, match="num_features"):
        nn.Affine2d(0)


def test_affine2d_forward_backward_accumulate(backend):
    rng = np.random.default_rng(1)
    layer = nn.Affine2d(3)
    layer.params["weight"][...] = [0.5, -2.0, 3.0]
    layer.params["bias"][...] = [1.0, 0.0, -1.0]
    x = rng.standard_normal((2, 3, 4, 5))                         # float64 in: float32 out
    out = layer.forward(x)
    assert out.dtype == np.float32
    w = layer.params["weight"][None, :, None, None]
    np.testing.assert_allclose(out, x * w + layer.params["bias"][None, :, None, None],
                               rtol=1e-6, atol=1e-6)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, dout * w, rtol=1e-6)
    np.testing.assert_allclose(layer.grads["weight"], (dout * x).sum(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(layer.grads["bias"], dout.sum(axis=(0, 2, 3)), rtol=1e-5)
    first = {k: g.copy() for k, g in layer.grads.items()}
    layer.backward(dout)
    for k in first:
        np.testing.assert_allclose(layer.grads[k], 2 * first[k], rtol=1e-6, err_msg=k)
    layer.zero_grad()
    assert not any(g.any() for g in layer.grads.values())


def test_affine2d_checks_input_and_order():
    layer = nn.Affine2d(3)
    with pytest.raises(ValueError, match=r"Affine2d.*\(N, 3, H, W\).*\(2, 4, 5, 5\)"):
        layer.forward(np.zeros((2, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"Affine2d.*\(N, 3, H, W\).*\(2, 3, 5\)"):
        layer.forward(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((2, 3, 5, 5), np.float32))


def test_affine2d_config_and_checkpoint_round_trip(tmp_path):
    model = nn.Sequential(nn.Affine2d(3), nn.ReLU(), nn.Affine2d(3))
    rng = np.random.default_rng(2)
    for _, p in model.named_parameters():
        p[...] = rng.standard_normal(p.shape)
    record = json.loads(json.dumps(model.config()))
    assert record["layers"][0] == {"type": "Affine2d", "num_features": 3}
    clone = build_layer(record)
    assert clone.config() == model.config()
    path = checkpoint.save_model(tmp_path / "affine", model)
    loaded, _ = checkpoint.load_model(path)
    assert loaded.config() == model.config()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert [n for n, _ in loaded.named_parameters()] == \
        ["0.weight", "0.bias", "2.weight", "2.bias"]
