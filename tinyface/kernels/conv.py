"""2-D convolution, Numba tier: im2col per sample + the hand-written GEMM.

Layout: NCHW in and out, weights (Cout, Cin, kh, kw) as in PyTorch. For one sample,
``im2col`` unrolls the receptive fields into ``cols (K, P)`` with ``K = Cin*kh*kw``
rows and ``P = OH*OW`` columns; then

    forward:  out[n] (Cout, P) = W (Cout, K) @ cols (K, P)      [+ bias]
    backward: dW (Cout, K)    += dout[n] (Cout, P) @ cols.T     (gemm_nt)
              dcols (K, P)     = W.T (K, Cout) @ dout[n]        (gemm_nn on W.T)
              dx[n]           += col2im(dcols)

Parallelism: the batch is split across threads (``prange``); each thread owns its
``cols`` buffer and, in backward, its own partial dW and db, summed at the end, so
no two threads write the same memory. Small batches run the serial twin.

Deep convolutions (``K >= BLOCKED_MIN_DEPTH``) take the other path,
``tinyface.kernels.conv_blocked``: a chunk of the batch unrolled at once and one
product per pass on the blocked GEMM, whose micro-kernel runs along the depth K and
needs it long. Below the threshold this module's per-sample GEMMs are faster.
"""
import numba
import numpy as np

from tinyface.kernels import conv_blocked
from tinyface.kernels.gemm import gemm_nn, gemm_nt
from tinyface.kernels.unroll import col2im_add, im2col
from tinyface.kernels.threading import compile_pair, use_parallel

JIT = dict(cache=True, fastmath=True)


def _pair(v, name):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v!r}")
        a, b = int(v[0]), int(v[1])
    else:
        a = b = int(v)
    return a, b


def conv_output_size(H, W, kh, kw, sh, sw, ph, pw):
    """Output height and width: ``floor((H + 2p - k) / s) + 1``."""
    return (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1


# A GEMM needs long rows to run fast. When one sample's output plane is small (8x8,
# 4x4), G samples share one product: their columns sit side by side in ``cols``,
# ``G * P >= MIN_GEMM_COLUMNS``.
MIN_GEMM_COLUMNS = 256

# depth K = Cin*kh*kw from which the blocked path is faster, measured on the 3x3 convs
# of the reference student and teacher (docs/kernels.md): K = 576 and deeper won both
# passes, K = 288 and shallower lost at least one
BLOCKED_MIN_DEPTH = 512


def group_size(P):
    """Samples per GEMM for an output plane of P pixels."""
    return max(1, MIN_GEMM_COLUMNS // P)


def _conv_forward(x, w2, b, has_bias, kh, kw, sh, sw, ph, pw, G, out):
    """x (N,C,H,W), w2 (Cout,K), b (Cout,), out (N,Cout,P); G samples per GEMM."""
    N = x.shape[0]
    Cout, K = w2.shape
    OH = (x.shape[2] + 2 * ph - kh) // sh + 1
    OW = (x.shape[3] + 2 * pw - kw) // sw + 1
    P = OH * OW
    ngroups = (N + G - 1) // G
    for grp in numba.prange(ngroups):
        n0 = grp * G
        g = min(G, N - n0)
        cols = np.empty((K, g * P), dtype=x.dtype)          # (K, g*P): g samples side by side
        for s in range(g):
            im2col(x[n0 + s], kh, kw, sh, sw, ph, pw, OH, OW, cols, s * P)
        if g == 1:
            gemm_nn(w2, cols, out[n0], False)               # straight into (Cout, P)
        else:
            o = np.empty((Cout, g * P), dtype=x.dtype)      # (Cout, g*P)
            gemm_nn(w2, cols, o, False)
            for s in range(g):
                out[n0 + s] = o[:, s * P:(s + 1) * P]
        if has_bias:
            for s in range(g):
                for co in range(Cout):
                    bc = b[co]
                    for p in range(P):
                        out[n0 + s, co, p] += bc


def _conv_backward(x, w2, dout, kh, kw, sh, sw, ph, pw, G, nchunks, dx, dw_parts, db_parts):
    """dout (N,Cout,P) -> dx (N,C,H,W) (zeroed by caller), per-chunk dW and db.

    Chunk t (one per thread) owns dw_parts[t] and db_parts[t]; within it, G samples
    at a time share one GEMM, as in the forward pass.
    """
    N = x.shape[0]
    Cout, K = w2.shape
    OH = (x.shape[2] + 2 * ph - kh) // sh + 1
    OW = (x.shape[3] + 2 * pw - kw) // sw + 1
    P = OH * OW
    w2t = w2.T                                              # (K, Cout) strided view
    per = (N + nchunks - 1) // nchunks
    for t in numba.prange(nchunks):
        dw = dw_parts[t]                                    # (Cout, K)
        db = db_parts[t]                                    # (Cout,)
        stop = min(N, (t + 1) * per)
        for n0 in range(t * per, stop, G):
            g = min(G, stop - n0)
            cols = np.empty((K, g * P), dtype=x.dtype)      # (K, g*P): g samples side by side
            dcols = np.empty((K, g * P), dtype=x.dtype)     # (K, g*P)
            gout = np.empty((Cout, g * P), dtype=x.dtype)   # (Cout, g*P)
            for s in range(g):
                im2col(x[n0 + s], kh, kw, sh, sw, ph, pw, OH, OW, cols, s * P)
                gout[:, s * P:(s + 1) * P] = dout[n0 + s]
            for co in range(Cout):
                acc = 0.0
                for p in range(g * P):
                    acc += gout[co, p]
                db[co] += acc
            gemm_nt(gout, cols, dw, True)
            gemm_nn(w2t, gout, dcols, False)
            for s in range(g):
                col2im_add(dcols, kh, kw, sh, sw, ph, pw, OH, OW, dx[n0 + s], s * P)


conv_forward_serial, conv_forward_parallel = compile_pair(_conv_forward, fastmath=True)
conv_backward_serial, conv_backward_parallel = compile_pair(_conv_backward, fastmath=True)


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """Convolution (cross-correlation, as PyTorch's Conv2d).

    x: (N, Cin, H, W) float; w: (Cout, Cin, kh, kw); b: (Cout,) or None;
    stride, padding: int or (h, w) pair.
    Returns out: (N, Cout, OH, OW) and the cache for ``conv2d_backward``.
    """
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    N, C, H, W = x.shape
    Cout, Cin, kh, kw = w.shape
    if C != Cin:
        raise ValueError(f"conv2d: input has {C} channels, weight expects {Cin}")
    OH, OW = conv_output_size(H, W, kh, kw, sh, sw, ph, pw)
    if OH < 1 or OW < 1:
        raise ValueError(f"conv2d: input {H}x{W} too small for kernel {kh}x{kw} "
                         f"with padding {(ph, pw)}")
    x = np.ascontiguousarray(x)
    w2 = np.ascontiguousarray(w).reshape(Cout, -1)          # (Cout, K)
    has_bias = b is not None
    bias = np.ascontiguousarray(b, dtype=x.dtype) if has_bias else np.zeros(Cout, x.dtype)
    geometry = (kh, kw, sh, sw, ph, pw)
    if w2.shape[1] >= BLOCKED_MIN_DEPTH:
        out = conv_blocked.forward(x, w2, bias, has_bias, geometry, OH, OW, use_parallel(N))
    else:
        out = np.empty((N, Cout, OH * OW), dtype=x.dtype)   # (N, Cout, P)
        fn = conv_forward_parallel if use_parallel(N) else conv_forward_serial
        fn(x, w2, bias, has_bias, kh, kw, sh, sw, ph, pw, group_size(OH * OW), out)
    cache = (x, w, has_bias, geometry)
    return out.reshape(N, Cout, OH, OW), cache


def conv2d_backward(dout, cache):
    """dout: (N, Cout, OH, OW) -> (dx (N,Cin,H,W), dw (Cout,Cin,kh,kw), db (Cout,) or None)."""
    x, w, has_bias, (kh, kw, sh, sw, ph, pw) = cache
    N = x.shape[0]
    Cout = w.shape[0]
    w2 = np.ascontiguousarray(w).reshape(Cout, -1)          # (Cout, K)
    g = np.ascontiguousarray(dout, dtype=x.dtype).reshape(N, Cout, -1)   # (N, Cout, P)
    parallel = use_parallel(N)
    if w2.shape[1] >= BLOCKED_MIN_DEPTH:
        dx, dw, db = conv_blocked.backward(x, w2, g, (kh, kw, sh, sw, ph, pw),
                                           dout.shape[2], dout.shape[3], parallel)
        return dx, dw.reshape(w.shape), db if has_bias else None
    nchunks = min(N, numba.get_num_threads()) if parallel else 1
    dx = np.zeros_like(x)
    dw_parts = np.zeros((nchunks,) + w2.shape, dtype=x.dtype)   # (T, Cout, K)
    db_parts = np.zeros((nchunks, Cout), dtype=x.dtype)         # (T, Cout)
    fn = conv_backward_parallel if parallel else conv_backward_serial
    G = group_size(g.shape[2])
    fn(x, w2, g, kh, kw, sh, sw, ph, pw, G, nchunks, dx, dw_parts, db_parts)
    dw = dw_parts.sum(axis=0).reshape(w.shape)
    db = db_parts.sum(axis=0) if has_bias else None
    return dx, dw, db
