"""The convolution on the blocked GEMM against the NumPy reference: random shapes,
strides and paddings (7x7 stride 2 valid among them), chunks that split the batch, the
dispatch by depth, and float64 gradients."""
import numpy as np
import pytest

from tinyface import reference
from tinyface.kernels import conv, conv_blocked

# (N, Cin, H, W, Cout, k, stride, padding)
CASES = [(3, 2, 7, 7, 5, 3, 1, 1), (5, 3, 9, 8, 4, 3, 2, 1), (2, 4, 11, 11, 3, 7, 2, 0),
         (4, 3, 10, 9, 6, 1, 1, 0), (1, 5, 6, 6, 7, 3, 1, 2), (6, 2, 5, 5, 3, 5, 3, 1)]


def _blocked(x, w, b, stride, pad):
    """conv_blocked's forward and backward, called as conv2d_forward would call them."""
    N, _, H, W = x.shape
    Cout, _, kh, kw = w.shape
    OH, OW = conv.conv_output_size(H, W, kh, kw, stride, stride, pad, pad)
    w2 = np.ascontiguousarray(w).reshape(Cout, -1)
    geometry = (kh, kw, stride, stride, pad, pad)
    out = conv_blocked.forward(x, w2, b, True, geometry, OH, OW, N >= 4)
    back = lambda g: conv_blocked.backward(x, w2, g.reshape(N, Cout, -1), geometry,  # noqa: E731
                                           OH, OW, N >= 4)
    return out.reshape(N, Cout, OH, OW), back


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("per_chunk", [None, 1, 2])     # samples per chunk (None: all)
def test_blocked_conv_matches_reference(case, per_chunk, monkeypatch):
    N, C, H, W, Cout, k, s, p = case
    if per_chunk:                                        # 2: a short last chunk when N is odd
        OH, OW = conv.conv_output_size(H, W, k, k, s, s, p, p)
        monkeypatch.setattr(conv_blocked, "CHUNK_FLOATS", per_chunk * OH * OW * C * k * k)
    rng = np.random.default_rng(sum(case))
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((Cout, C, k, k)).astype(np.float32)
    b = rng.standard_normal(Cout).astype(np.float32)
    want, cache = reference.conv2d_forward(x, w, b, s, p)
    got, back = _blocked(x, w, b, s, p)
    tol = 1e-5 * C * k * k
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    g = rng.standard_normal(want.shape).astype(np.float32)
    dx, dw, db = back(g)
    rdx, rdw, rdb = reference.conv2d_backward(g, cache)
    np.testing.assert_allclose(dx, rdx, rtol=tol, atol=tol)
    np.testing.assert_allclose(dw.reshape(rdw.shape), rdw, rtol=tol, atol=tol * N)
    np.testing.assert_allclose(db, rdb, rtol=tol, atol=tol * N)


def test_chunks_are_sized_by_the_unrolled_floats():
    assert conv_blocked.chunk_samples(256, 256, 576) == conv_blocked.CHUNK_FLOATS // (256 * 576)
    assert conv_blocked.chunk_samples(2, 16, 9) == 2                  # the whole batch fits
    assert conv_blocked.chunk_samples(8, 4096, 4096) == 1             # never below one


def test_deep_convolutions_take_the_blocked_path_and_agree(monkeypatch):
    """A conv with K >= BLOCKED_MIN_DEPTH goes through conv_blocked, serial and parallel."""
    rng = np.random.default_rng(4)
    C = -(-conv.BLOCKED_MIN_DEPTH // 9)                              # 3x3: K just above
    x = rng.standard_normal((5, C, 6, 6)).astype(np.float32)
    w = rng.standard_normal((8, C, 3, 3)).astype(np.float32) / 30
    calls = []
    monkeypatch.setattr(conv_blocked, "forward",
                        lambda *a, _f=conv_blocked.forward: calls.append(1) or _f(*a))
    out, cache = conv.conv2d_forward(x, w, None, 1, 1)
    assert calls == [1]
    want, rcache = reference.conv2d_forward(x, w, None, 1, 1)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    dx, dw, db = conv.conv2d_backward(np.ones_like(out), cache)
    rdx, rdw, _ = reference.conv2d_backward(np.ones_like(out), rcache)
    assert db is None and dw.shape == w.shape
    np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, rdw, rtol=1e-4, atol=1e-3)
    one, _ = conv.conv2d_forward(x[:1], w, None, 1, 1)                # batch 1: serial
    np.testing.assert_allclose(one, out[:1], rtol=1e-5, atol=1e-5)


def test_blocked_conv_gradients_in_float64():
    """Central differences of sum(out * r) against the blocked backward, float64."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    b, r = rng.standard_normal(3), rng.standard_normal((2, 3, 3, 3))
    loss = lambda x_, w_, b_: float(np.sum(_blocked(x_, w_, b_, 2, 1)[0] * r))  # noqa: E731
    dx, dw, db = _blocked(x, w, b, 2, 1)[1](r)
    for arr, grad in ((x, dx), (w, dw.reshape(w.shape)), (b, db)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + 1e-6
            up = loss(x, w, b)
            arr[idx] = old - 1e-6
            num[idx] = (up - loss(x, w, b)) / 2e-6
            arr[idx] = old
        assert np.linalg.norm(num - grad) <= 1e-7 * max(1.0, np.linalg.norm(num))
