"""Row-wise L2 normalisation: gradient checks (both tiers, float64) and Numba against
the NumPy reference (float32, seeded random shapes)."""
import numpy as np
import pytest

from tinyface.gradcheck import assert_gradient, numerical_gradient
from tinyface.kernels import normalize as numba_norm
from tinyface.reference import normalize as numpy_norm

TIERS = {"numpy": numpy_norm, "numba": numba_norm}


@pytest.fixture(params=sorted(TIERS))
def op(request):
    return TIERS[request.param]


@pytest.mark.parametrize("shape", [(1, 3), (4, 5), (7, 1), (3, 64)])
def test_l2_normalize_gradient(op, shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape)
    y, cache = op.l2_normalize_forward(x)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(y, x / np.linalg.norm(x, axis=1, keepdims=True), rtol=1e-12)
    dout = rng.standard_normal(shape)
    dx = op.l2_normalize_backward(dout, cache)
    assert_gradient(dx, numerical_gradient(lambda: op.l2_normalize_forward(x)[0], x, dout),
                    tol=1e-6, name="l2_normalize dx")


def test_numba_matches_reference_float32():
    rng = np.random.default_rng(0)
    for _ in range(8):
        n, d = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        x = (rng.standard_normal((n, d)) * rng.uniform(0.01, 100)).astype(np.float32)
        x[0] = 0.0                                              # a zero row stays zero
        y1, c1 = numpy_norm.l2_normalize_forward(x)
        y2, c2 = numba_norm.l2_normalize_forward(x)
        assert y2.dtype == np.float32
        np.testing.assert_allclose(y2, y1, rtol=1e-6, atol=1e-7)
        assert not y2[0].any()
        dy = rng.standard_normal((n, d)).astype(np.float32)
        np.testing.assert_allclose(numba_norm.l2_normalize_backward(dy, c2),
                                   numpy_norm.l2_normalize_backward(dy, c1), rtol=1e-5, atol=1e-6)


def test_rejects_wrong_shapes(op):
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        op.l2_normalize_forward(np.ones((2, 3, 4), np.float32))
    _, cache = op.l2_normalize_forward(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="dy has shape"):
        op.l2_normalize_backward(np.ones((2, 4), np.float32), cache)
