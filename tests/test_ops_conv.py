"""conv2d: gradient checks of both tiers, and the Numba kernel against the reference."""
import numpy as np
import pytest

from tinyface import kernels, reference
from tinyface.gradcheck import assert_gradient, numerical_gradient

TIERS = {"numpy": reference, "numba": kernels}

# (N, Cin, Cout, H, W, kh, kw, stride, padding, bias): stride 2, padding 0/1/2,
# non-square inputs and kernels, batch 1 and 1x1 kernels.
GRAD_CASES = [
    (2, 2, 3, 5, 5, 3, 3, 1, 1, True),
    (1, 3, 2, 6, 5, 3, 3, 2, 0, True),
    (2, 2, 2, 4, 7, 2, 3, 1, 2, False),
    (1, 4, 3, 3, 4, 1, 1, 1, 0, True),
    (2, 1, 2, 7, 6, 3, 2, (2, 1), (1, 0), True),
    (1, 2, 2, 5, 5, 1, 1, 2, 1, False),
]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("case", GRAD_CASES)
def test_conv2d_gradients(tier, case):
    N, C, Co, H, W, kh, kw, s, p, bias = case
    ops = TIERS[tier]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((Co, C, kh, kw))
    b = rng.standard_normal(Co) if bias else None
    out, cache = ops.conv2d_forward(x, w, b, s, p)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = ops.conv2d_backward(dout, cache)

    def f():
        return ops.conv2d_forward(x, w, b, s, p)[0]

    assert_gradient(dx, numerical_gradient(f, x, dout), name="dx")
    assert_gradient(dw, numerical_gradient(f, w, dout), name="dw")
    if bias:
        assert_gradient(db, numerical_gradient(f, b, dout), name="db")
    else:
        assert db is None


def test_conv2d_known_values():
    """A 1x1x4x4 input and a 2x2 kernel of ones: each output sums a 2x2 window."""
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 2, 2), np.float32)
    for ops in TIERS.values():
        out, _ = ops.conv2d_forward(x, w, np.array([1.0], np.float32), 2, 0)
        np.testing.assert_array_equal(out[0, 0], [[1 + 0 + 1 + 4 + 5, 1 + 2 + 3 + 6 + 7],
                                                 [1 + 8 + 9 + 12 + 13, 1 + 10 + 11 + 14 + 15]])


def test_conv2d_numba_matches_reference_random_sweep():
    """float32, 20 seeded random configurations; tolerance rtol 1e-4, atol 1e-4."""
    rng = np.random.default_rng(2024)
    for trial in range(20):
        N = int(rng.integers(1, 9))
        C, Co = int(rng.integers(1, 9)), int(rng.integers(1, 13))
        kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        ph, pw = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        H, W = int(rng.integers(kh, 14)), int(rng.integers(kw, 14))
        bias = bool(rng.integers(0, 2))
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = rng.standard_normal((Co, C, kh, kw)).astype(np.float32)
        b = rng.standard_normal(Co).astype(np.float32) if bias else None
        args = (x, w, b, (sh, sw), (ph, pw))
        o_ref, c_ref = reference.conv2d_forward(*args)
        o_fast, c_fast = kernels.conv2d_forward(*args)
        assert o_fast.dtype == np.float32 and o_fast.shape == o_ref.shape
        np.testing.assert_allclose(o_fast, o_ref, rtol=1e-4, atol=1e-4, err_msg=f"trial {trial} forward")
        dout = rng.standard_normal(o_ref.shape).astype(np.float32)
        for name, g_ref, g_fast in zip(("dx", "dw", "db"), reference.conv2d_backward(dout, c_ref),
                                       kernels.conv2d_backward(dout, c_fast)):
            if g_ref is None:
                assert g_fast is None
                continue
            np.testing.assert_allclose(g_fast, g_ref, rtol=1e-4, atol=1e-4, err_msg=f"trial {trial} {name}")


def test_conv2d_serial_and_parallel_agree():
    """The batch-parallel twin must give the serial kernel's result."""
    from tinyface.kernels import conv
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    out, cache = conv.conv2d_forward(x, w, None, 1, 1)
    ref = np.concatenate([conv.conv2d_forward(x[i:i + 1], w, None, 1, 1)[0] for i in range(9)])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    dx, dw, _ = conv.conv2d_backward(out, cache)
    parts = [conv.conv2d_backward(out[i:i + 1], conv.conv2d_forward(x[i:i + 1], w, None, 1, 1)[1])
             for i in range(9)]
    np.testing.assert_allclose(dx, np.concatenate([p[0] for p in parts]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, sum(p[1] for p in parts), rtol=1e-4, atol=1e-4)


def test_conv2d_rejects_bad_shapes():
    x = np.zeros((1, 3, 4, 4), np.float32)
    for ops in TIERS.values():
        with pytest.raises(ValueError, match="channels"):
            ops.conv2d_forward(x, np.zeros((2, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="too small"):
        kernels.conv2d_forward(x, np.zeros((2, 3, 5, 5), np.float32))
