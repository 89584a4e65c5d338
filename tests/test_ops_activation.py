"""ReLU and PReLU ops: gradient checks (both tiers, float64) and Numba against the
NumPy reference (float32, seeded random shapes)."""
import numpy as np
import pytest

from tinyface.gradcheck import assert_gradient, numerical_gradient
from tinyface.kernels import activation as numba_act
from tinyface.reference import activation as numpy_act

TIERS = {"numpy": numpy_act, "numba": numba_act}
RTOL, ATOL = 1e-6, 1e-6     # float32, elementwise: the tiers should agree to rounding


@pytest.fixture(params=sorted(TIERS))
def act(request):
    return TIERS[request.param]


def away_from_zero(rng, shape, margin=0.1):
    """Random values with |x| >= margin: no kink within the finite-difference step."""
    u = rng.standard_normal(shape)
    return np.sign(u) * (margin + np.abs(u))


@pytest.mark.parametrize("shape", [(1, 3), (2, 3, 4, 5), (3, 2, 1, 4), (2, 5, 3)])
def test_relu_gradient(act, shape):
    rng = np.random.default_rng(len(shape) + sum(shape))
    x = away_from_zero(rng, shape)
    out, cache = act.relu_forward(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    dout = rng.standard_normal(shape)
    dx = act.relu_backward(dout, cache)
    assert_gradient(dx, numerical_gradient(lambda: act.relu_forward(x)[0], x, dout),
                    tol=1e-6, name="relu dx")


@pytest.mark.parametrize("shape,nalpha", [((1, 3), 1), ((1, 3), 3), ((2, 3, 4, 5), 1),
                                          ((2, 3, 4, 5), 3), ((3, 2, 5), 2), ((3, 2), 1)])
def test_prelu_gradient(act, shape, nalpha):
    rng = np.random.default_rng(7 * nalpha + sum(shape))
    x = away_from_zero(rng, shape)
    alpha = rng.uniform(0.05, 0.5, nalpha)
    f = lambda: act.prelu_forward(x, alpha)[0]
    out, cache = act.prelu_forward(x, alpha)
    a = alpha.reshape((1, -1) + (1,) * (len(shape) - 2)) if nalpha > 1 else alpha[0]
    np.testing.assert_allclose(out, np.where(x > 0, x, a * x), rtol=1e-12)
    dout = rng.standard_normal(shape)
    dx, dalpha = act.prelu_backward(dout, cache)
    assert dalpha.shape == alpha.shape
    assert_gradient(dx, numerical_gradient(f, x, dout), tol=1e-6, name="prelu dx")
    assert_gradient(dalpha, numerical_gradient(f, alpha, dout), tol=1e-6, name="prelu dalpha")


def test_prelu_rejects_mismatched_alpha(act):
    with pytest.raises(ValueError, match="alpha"):
        act.prelu_forward(np.ones((2, 3, 4), np.float32), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="alpha"):
        act.prelu_forward(np.ones((2, 3), np.float32), np.ones((1, 3), np.float32))


def test_relu_backward_rejects_wrong_shape(act):
    _, cache = act.relu_forward(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="dout"):
        act.relu_backward(np.ones((3, 2), np.float32), cache)


def _random_shape(rng):
    ndim = int(rng.integers(2, 5))
    return tuple(int(v) for v in rng.integers(1, 7, ndim))


def test_activation_numba_matches_reference():
    rng = np.random.default_rng(99)
    for trial in range(15):
        shape = _random_shape(rng)
        x = rng.standard_normal(shape).astype(np.float32)
        x.flat[0] = 0.0                                  # the kink itself: both tiers agree
        dout = rng.standard_normal(shape).astype(np.float32)
        nalpha = 1 if trial % 2 else shape[1]
        alpha = rng.uniform(-0.5, 0.5, nalpha).astype(np.float32)
        msg = f"trial {trial}: shape {shape}, alpha {alpha.shape}"
        res = {}
        for name, tier in TIERS.items():
            out, cache = tier.relu_forward(x)
            dx = tier.relu_backward(dout, cache)
            pout, pcache = tier.prelu_forward(x, alpha)
            pdx, pda = tier.prelu_backward(dout, pcache)
            res[name] = (out, dx, pout, pdx, pda)
        for label, a, b in zip(["relu out", "relu dx", "prelu out", "prelu dx", "prelu dalpha"],
                               res["numba"], res["numpy"]):
            assert a.dtype == b.dtype == np.float32 and a.shape == b.shape, f"{label}, {msg}"
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL * max(1.0, np.abs(b).max()),
                                       err_msg=f"{label}, {msg}")


def test_relu_handles_nan_like_numpy():
    x = np.array([[np.nan, -1.0, 2.0]], np.float32)
    for tier in TIERS.values():
        out, _ = tier.relu_forward(x)
        assert np.isnan(out[0, 0]) and out[0, 1] == 0.0 and out[0, 2] == 2.0
