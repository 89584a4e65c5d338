"""linear: gradient checks of both tiers, and the Numba kernel against the reference."""
import numpy as np
import pytest

from tinyface import kernels, reference
from tinyface.gradcheck import assert_gradient, numerical_gradient

TIERS = {"numpy": reference, "numba": kernels}


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("N,din,dout_,bias", [(1, 3, 2, True), (4, 5, 7, True), (3, 6, 1, False)])
def test_linear_gradients(tier, N, din, dout_, bias):
    ops = TIERS[tier]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, din))
    w = rng.standard_normal((dout_, din))
    b = rng.standard_normal(dout_) if bias else None
    out, cache = ops.linear_forward(x, w, b)
    g = rng.standard_normal(out.shape)
    dx, dw, db = ops.linear_backward(g, cache)

    def f():
        return ops.linear_forward(x, w, b)[0]

    assert_gradient(dx, numerical_gradient(f, x, g), name="dx")
    assert_gradient(dw, numerical_gradient(f, w, g), name="dw")
    if bias:
        assert_gradient(db, numerical_gradient(f, b, g), name="db")


def test_linear_numba_matches_reference_random_sweep():
    """float32 over 20 seeded shapes, including ones that split rows across threads."""
    rng = np.random.default_rng(7)
    for trial in range(20):
        N, din, dout_ = (int(v) for v in rng.integers(1, 200, size=3))
        x = rng.standard_normal((N, din)).astype(np.float32)
        w = rng.standard_normal((dout_, din)).astype(np.float32)
        b = rng.standard_normal(dout_).astype(np.float32)
        o_ref, c_ref = reference.linear_forward(x, w, b)
        o_fast, c_fast = kernels.linear_forward(x, w, b)
        tol = dict(rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(o_fast, o_ref, err_msg=f"trial {trial}", **tol)
        g = rng.standard_normal(o_ref.shape).astype(np.float32)
        for a, r in zip(kernels.linear_backward(g, c_fast), reference.linear_backward(g, c_ref)):
            np.testing.assert_allclose(a, r, err_msg=f"trial {trial}", **tol)
