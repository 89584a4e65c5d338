"""Pooling and flatten ops: gradient checks (both tiers, float64) and Numba against the
NumPy reference (float32, seeded random shapes and kernel/stride/padding)."""
import numpy as np
import pytest

from tinyface.gradcheck import assert_gradient, numerical_gradient
from tinyface.kernels import pool as numba_pool
from tinyface.reference import pool as numpy_pool

TIERS = {"numpy": numpy_pool, "numba": numba_pool}
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(params=sorted(TIERS))
def pool(request):
    return TIERS[request.param]


def distinct(rng, shape, spacing=0.05):
    """Distinct values, at least ``spacing`` apart: no max-pool tie within the step."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * spacing).reshape(shape)


# (x shape, kernel_size, stride, padding)
POOL_CASES = [
    ((1, 1, 4, 4), 2, 2, 0),
    ((2, 2, 5, 7), 3, 2, 1),
    ((1, 2, 6, 5), (2, 3), (2, 1), (1, 1)),
    ((2, 1, 5, 4), 3, 1, 1),
    ((1, 3, 4, 6), 2, 1, 0),
    ((2, 2, 7, 3), (3, 1), (2, 1), (1, 0)),
    ((1, 1, 3, 5), 2, 2, 1),
]


@pytest.mark.parametrize("op", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("shape,k,s,p", POOL_CASES)
def test_pool_gradients(pool, op, shape, k, s, p):
    rng = np.random.default_rng(sum(shape))
    x = distinct(rng, shape)
    fwd = getattr(pool, op + "_forward")
    bwd = getattr(pool, op + "_backward")
    out, cache = fwd(x, k, s, p)
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (s, s) if isinstance(s, int) else s
    ph, pw = (p, p) if isinstance(p, int) else p
    assert out.shape == (shape[0], shape[1], (shape[2] + 2 * ph - kh) // sh + 1,
                         (shape[3] + 2 * pw - kw) // sw + 1)
    dout = rng.standard_normal(out.shape)
    dx = bwd(dout, cache)
    num = numerical_gradient(lambda: fwd(x, k, s, p)[0], x, dout)
    assert_gradient(dx, num, tol=1e-6, name=f"{op} dx")


def test_maxpool_known_values(pool):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    out, cache = pool.maxpool2d_forward(x, 2, 2, 0)
    np.testing.assert_array_equal(out[0, 0], [[5, 7], [13, 15]])
    dx = pool.maxpool2d_backward(np.ones_like(out), cache)
    expect = np.zeros((4, 4), np.float32)
    expect[[1, 1, 3, 3], [1, 3, 1, 3]] = 1
    np.testing.assert_array_equal(dx[0, 0], expect)
    # padding acts as -inf: an all-negative input still pools to real values
    out, _ = pool.maxpool2d_forward(-1.0 - x, 3, 2, 1)
    assert out.shape == (1, 1, 2, 2) and np.all(out <= -1)


def test_avgpool_counts_padding(pool):
    x = np.ones((1, 1, 2, 2), np.float32)
    out, _ = pool.avgpool2d_forward(x, 2, 2, 1)        # corners see 1 real cell of 4
    np.testing.assert_allclose(out[0, 0], np.full((2, 2), 0.25))


def test_pool_ties_and_overlap(pool):
    x = np.zeros((1, 1, 3, 3), np.float32)             # every window is a tie
    out, cache = pool.maxpool2d_forward(x, 2, 1, 0)
    dx = pool.maxpool2d_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])   # first max wins


def test_pool_rejects_bad_arguments(pool):
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="padding"):
        pool.maxpool2d_forward(x, 2, 2, 2)
    with pytest.raises(ValueError, match="larger"):
        pool.avgpool2d_forward(x, 5, 1, 0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        pool.maxpool2d_forward(np.ones((4, 4), np.float32), 2, 2)
    out, cache = pool.maxpool2d_forward(x, 2, 2)
    with pytest.raises(ValueError, match="dout"):
        pool.maxpool2d_backward(np.ones((1, 1, 3, 3), np.float32), cache)


@pytest.mark.parametrize("shape", [(1, 2, 3, 4), (2, 3, 1, 5)])
def test_global_avgpool_and_flatten_gradients(pool, shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape)
    out, cache = pool.global_avgpool_forward(x)
    np.testing.assert_allclose(out, x.mean(axis=(2, 3)), rtol=1e-12)
    dout = rng.standard_normal(out.shape)
    num = numerical_gradient(lambda: pool.global_avgpool_forward(x)[0], x, dout)
    assert_gradient(pool.global_avgpool_backward(dout, cache), num, tol=1e-6, name="gap dx")

    out, cache = pool.flatten_forward(x)
    assert out.shape == (shape[0], int(np.prod(shape[1:])))
    np.testing.assert_array_equal(out, x.reshape(shape[0], -1))
    dout = rng.standard_normal(out.shape)
    num = numerical_gradient(lambda: pool.flatten_forward(x)[0], x, dout)
    assert_gradient(pool.flatten_backward(dout, cache), num, tol=1e-6, name="flatten dx")


def _random_geometry(rng):
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
    N, C = int(rng.integers(1, 9)), int(rng.integers(1, 5))
    H = int(rng.integers(max(1, kh - 2 * ph), 9))
    W = int(rng.integers(max(1, kw - 2 * pw), 9))
    return (N, C, H, W), (kh, kw), (sh, sw), (ph, pw)


def test_pool_numba_matches_reference():
    rng = np.random.default_rng(2024)
    for trial in range(20):
        shape, k, s, p = _random_geometry(rng)
        x = rng.standard_normal(shape).astype(np.float32)
        if trial % 3 == 0:
            x = np.round(x * 2) / 2                     # many ties: the same winner in both tiers
        msg = f"trial {trial}: x {shape}, kernel {k}, stride {s}, padding {p}"
        for op in ("maxpool2d", "avgpool2d"):
            res = {}
            for name, tier in TIERS.items():
                out, cache = getattr(tier, op + "_forward")(x, k, s, p)
                dout = np.random.default_rng(trial).standard_normal(out.shape).astype(np.float32)
                res[name] = (out, getattr(tier, op + "_backward")(dout, cache))
            for label, a, b in zip(["out", "dx"], res["numba"], res["numpy"]):
                assert a.dtype == b.dtype == np.float32 and a.shape == b.shape, f"{op} {label}, {msg}"
                np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"{op} {label}, {msg}")
        res = {}
        for name, tier in TIERS.items():
            out, cache = tier.global_avgpool_forward(x)
            dout = np.random.default_rng(trial).standard_normal(out.shape).astype(np.float32)
            res[name] = (out, tier.global_avgpool_backward(dout, cache))
        for label, a, b in zip(["gap out", "gap dx"], res["numba"], res["numpy"]):
            assert a.dtype == b.dtype == np.float32, f"{label}, {msg}"
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"{label}, {msg}")
