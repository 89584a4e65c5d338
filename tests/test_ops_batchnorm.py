"""Batch normalisation ops: gradient checks (both tiers, float64) and Numba against the
NumPy reference (float32, seeded random shapes)."""
import numpy as np
import pytest

from tinyface.gradcheck import assert_gradient, numerical_gradient
from tinyface.kernels import batchnorm as numba_bn
from tinyface.reference import batchnorm as numpy_bn

TIERS = {"numpy": numpy_bn, "numba": numba_bn}
EPS, MOMENTUM = 1e-5, 0.1
# float32 agreement between the tiers: both accumulate statistics in float64
RTOL, ATOL = 1e-5, 1e-5


@pytest.fixture(params=sorted(TIERS))
def bn(request):
    return TIERS[request.param]


# (x shape, training): batch 1, non-square maps, 1-D (N, C) and (N, C, L) inputs
GRAD_CASES = [
    ((1, 2, 3, 4), True), ((1, 2, 3, 4), False),
    ((2, 3, 2, 3), True), ((2, 3, 2, 3), False),
    ((3, 4), True), ((1, 3), False), ((3, 2, 4), True), ((2, 2, 4), False),
]


@pytest.mark.parametrize("shape,training", GRAD_CASES)
def test_batchnorm_gradients(bn, shape, training):
    rng = np.random.default_rng(sum(shape) * 10 + len(shape) + training)
    C = shape[1]
    x = rng.standard_normal(shape) * 2.0 + 0.5
    gamma = rng.standard_normal(C)
    beta = rng.standard_normal(C)
    rmean = rng.standard_normal(C)
    rvar = rng.random(C) + 0.5

    def f():  # copies: training mode updates the running statistics in place
        return bn.batchnorm_forward(x, gamma, beta, rmean.copy(), rvar.copy(),
                                    MOMENTUM, EPS, training)[0]

    out, cache = bn.batchnorm_forward(x, gamma, beta, rmean.copy(), rvar.copy(),
                                      MOMENTUM, EPS, training)
    assert out.shape == shape and out.dtype == np.float64
    dout = rng.standard_normal(shape)
    dx, dgamma, dbeta = bn.batchnorm_backward(dout, cache)
    assert_gradient(dx, numerical_gradient(f, x, dout), tol=1e-6, name="dx")
    assert_gradient(dgamma, numerical_gradient(f, gamma, dout), tol=1e-6, name="dgamma")
    assert_gradient(dbeta, numerical_gradient(f, beta, dout), tol=1e-6, name="dbeta")


def test_batchnorm_train_values_and_running_stats(bn):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 2, 5)).astype(np.float32) * 3 + 1
    gamma = np.array([1.0, 2.0, 0.5], np.float32)
    beta = np.array([0.0, -1.0, 3.0], np.float32)
    rmean = np.zeros(3, np.float32)
    rvar = np.ones(3, np.float32)
    out, _ = bn.batchnorm_forward(x, gamma, beta, rmean, rvar, MOMENTUM, EPS, True)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2, 3))
    var = x64.var(axis=(0, 2, 3))                                 # biased: normalisation
    expect = (x64 - mean[:, None, None]) / np.sqrt(var[:, None, None] + EPS)
    expect = expect * gamma[:, None, None] + beta[:, None, None]
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-5)
    # running stats, PyTorch-style: unbiased variance in running_var
    np.testing.assert_allclose(rmean, 0.1 * mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rvar, 0.9 + 0.1 * x64.var(axis=(0, 2, 3), ddof=1), rtol=1e-6)
    assert rmean.dtype == np.float32 and rvar.dtype == np.float32


def test_batchnorm_eval_uses_running_stats(bn):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)
    gamma, beta = np.array([2.0, 1.0], np.float32), np.array([0.5, 0.0], np.float32)
    rmean, rvar = np.array([0.3, -1.0], np.float32), np.array([4.0, 0.25], np.float32)
    before = rmean.copy(), rvar.copy()
    out, _ = bn.batchnorm_forward(x, gamma, beta, rmean, rvar, MOMENTUM, EPS, False)
    expect = (x - rmean[:, None]) / np.sqrt(rvar[:, None] + EPS) * gamma[:, None] + beta[:, None]
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(rmean, before[0])
    np.testing.assert_array_equal(rvar, before[1])


def test_batchnorm_rejects_bad_input(bn):
    ones = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="more than 1 value"):
        bn.batchnorm_forward(np.ones((1, 3), np.float32), ones, ones, ones.copy(), ones.copy(),
                             MOMENTUM, EPS, True)
    with pytest.raises(ValueError, match="gamma"):
        bn.batchnorm_forward(np.ones((2, 4), np.float32), ones, ones, ones, ones,
                             MOMENTUM, EPS, True)
    out, cache = bn.batchnorm_forward(np.ones((2, 3), np.float32), ones, ones, ones.copy(),
                                      ones.copy(), MOMENTUM, EPS, False)
    with pytest.raises(ValueError, match="dout"):
        bn.batchnorm_backward(np.ones((3, 3), np.float32), cache)


def _random_case(rng):
    N = int(rng.integers(1, 10))
    C = int(rng.integers(1, 9))
    kind = rng.integers(3)
    if kind == 0:
        shape = (N, C, int(rng.integers(1, 8)), int(rng.integers(1, 8)))
    elif kind == 1:
        shape = (N, C, int(rng.integers(1, 6)))
    else:
        shape = (N, C)
    m = int(np.prod(shape)) // C
    training = bool(rng.integers(2)) and m > 1
    return shape, training


def test_batchnorm_numba_matches_reference():
    rng = np.random.default_rng(123)
    for trial in range(20):
        shape, training = _random_case(rng)
        C = shape[1]
        x = (rng.standard_normal(shape) * rng.uniform(0.1, 5) + rng.uniform(-3, 3)).astype(np.float32)
        gamma = rng.standard_normal(C).astype(np.float32)
        beta = rng.standard_normal(C).astype(np.float32)
        rmean = rng.standard_normal(C).astype(np.float32)
        rvar = (rng.random(C) + 0.5).astype(np.float32)
        momentum = float(rng.uniform(0.01, 0.5))
        stats = {k: (rmean.copy(), rvar.copy()) for k in TIERS}
        res = {}
        for name, tier in TIERS.items():
            out, cache = tier.batchnorm_forward(x, gamma, beta, *stats[name], momentum, EPS, training)
            dout = np.random.default_rng(trial).standard_normal(shape).astype(np.float32)
            res[name] = (out, *tier.batchnorm_backward(dout, cache))
        msg = f"trial {trial}: shape {shape}, training={training}"
        for label, a, b in zip(["out", "dx", "dgamma", "dbeta"], res["numba"], res["numpy"]):
            assert a.dtype == b.dtype == np.float32, msg
            scale = max(1.0, float(np.abs(b).max()))
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL * scale, err_msg=f"{label}, {msg}")
        for a, b in zip(stats["numba"], stats["numpy"]):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"running stats, {msg}")


def test_batchnorm_parallel_path_matches_serial():
    """A batch large enough for the prange version gives the reference's answer."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((32, 6, 4, 4)).astype(np.float32)
    g, b = np.ones(6, np.float32), np.zeros(6, np.float32)
    outs = []
    for tier in (numba_bn, numpy_bn):
        out, cache = tier.batchnorm_forward(x, g, b, np.zeros(6, np.float32),
                                            np.ones(6, np.float32), MOMENTUM, EPS, True)
        outs.append((out, *tier.batchnorm_backward(x, cache)))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
