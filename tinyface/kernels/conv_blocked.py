"""2-D convolution on the blocked GEMM: one unrolling over a chunk of the batch.

Layout: NCHW in and out, weights (Cout, Cin, kh, kw) as in PyTorch; ``K = Cin*kh*kw``
and ``P = OH*OW``. Where ``conv.py`` runs one small GEMM per sample (or per few), this
path unrolls a whole chunk of S samples at once and runs one large product per pass,
so that every product is tall enough for ``tinyface.kernels.gemm_blocked``:

    forward:  rows (S*P, K)   = im2row(x)            (one row per output pixel)
              out^T (S*P, Cout) = rows @ W^T           [+ bias], then back to NCHW
    backward: g^T (S*P, Cout) = dout in rows
              dW^T (K, Cout) += cols (K, S*P) @ g^T  (one GEMM for the chunk's weights)
              drows (S*P, K)  = g^T @ W, then scatter-added into dx (row2im)

The GEMM reads both operands along the depth, so each pass puts its depth last: K for
the forward pass and dx, the pixels S*P for dW. Chunks hold at most ``CHUNK_FLOATS``
floats of unrolled input. The unrolling kernels split the samples across threads; the
GEMMs split their row blocks.
"""
import numba
import numpy as np

from tinyface.kernels.gemm_blocked import aligned_empty, gemm_blocked
from tinyface.kernels.threading import compile_pair
from tinyface.kernels.unroll import im2col

# floats of one chunk's unrolled input (16 MiB in float32): large enough for tall
# products, small enough to stay near the caches
CHUNK_FLOATS = 1 << 22


def _im2row(x, n0, S, kh, kw, sh, sw, ph, pw, OH, OW, rows):
    """rows (S*P, K): row s*P + oh*OW + ow holds the receptive field of pixel (oh, ow)
    of sample n0 + s, in (c, i, j) order; zeros where it overlaps the padding."""
    C, H, W = x.shape[1:]
    P = OH * OW
    for s in numba.prange(S):
        for oh in range(OH):
            for ow in range(OW):
                row = rows[s * P + oh * OW + ow]           # (K,)
                for c in range(C):
                    for i in range(kh):
                        ih = oh * sh + i - ph
                        for j in range(kw):
                            iw = ow * sw + j - pw
                            ok = 0 <= ih < H and 0 <= iw < W
                            row[(c * kh + i) * kw + j] = x[n0 + s, c, ih, iw] if ok else 0.0


def _im2col(x, n0, S, kh, kw, sh, sw, ph, pw, OH, OW, cols):
    """cols (K, S*P): the transpose of ``_im2row``'s rows, sample by sample (``im2col``)."""
    P = OH * OW
    for s in numba.prange(S):
        im2col(x[n0 + s], kh, kw, sh, sw, ph, pw, OH, OW, cols, s * P)


def _rows_to_out(outT, b, has_bias, n0, S, out):
    """out[n0 + s, co, p] = outT[s*P + p, co] (+ b[co]); out: (N, Cout, P)."""
    Cout, P = out.shape[1:]
    for s in numba.prange(S):
        for co in range(Cout):
            bias = b[co] if has_bias else 0.0
            for p in range(P):
                out[n0 + s, co, p] = outT[s * P + p, co] + bias


def _dout_to_rows(dout, n0, S, gT, db):
    """gT[s*P + p, co] = dout[n0 + s, co, p]; db[co] += the chunk's sum over s and p."""
    Cout, P = dout.shape[1:]
    for co in numba.prange(Cout):
        acc = 0.0
        for s in range(S):
            for p in range(P):
                v = dout[n0 + s, co, p]
                gT[s * P + p, co] = v
                acc += v
        db[co] += acc


def _row2im_add(drows, n0, S, kh, kw, sh, sw, ph, pw, OH, OW, dx):
    """dx[n0 + s] += the rows of drows (S*P, K) scattered back to their pixels."""
    C, H, W = dx.shape[1:]
    P = OH * OW
    for s in numba.prange(S):                               # each thread owns dx[n0 + s]
        for oh in range(OH):
            for ow in range(OW):
                row = drows[s * P + oh * OW + ow]
                for c in range(C):
                    for i in range(kh):
                        ih = oh * sh + i - ph
                        if ih < 0 or ih >= H:
                            continue
                        for j in range(kw):
                            iw = ow * sw + j - pw
                            if 0 <= iw < W:
                                dx[n0 + s, c, ih, iw] += row[(c * kh + i) * kw + j]


im2row_serial, im2row_parallel = compile_pair(_im2row, fastmath=True)
im2col_serial, im2col_parallel = compile_pair(_im2col, fastmath=True)
rows_to_out_serial, rows_to_out_parallel = compile_pair(_rows_to_out, fastmath=True)
dout_to_rows_serial, dout_to_rows_parallel = compile_pair(_dout_to_rows, fastmath=True)
row2im_add_serial, row2im_add_parallel = compile_pair(_row2im_add, fastmath=True)


def chunk_samples(N, P, K):
    """Samples per chunk: as many as keep S*P*K within CHUNK_FLOATS, at least one."""
    return int(min(N, max(1, CHUNK_FLOATS // max(1, P * K))))


def forward(x, w2, bias, has_bias, geometry, OH, OW, parallel):
    """x (N,C,H,W), w2 (Cout,K), bias (Cout,) -> out (N, Cout, OH*OW)."""
    kh, kw, sh, sw, ph, pw = geometry
    N = x.shape[0]
    Cout, K = w2.shape
    P = OH * OW
    S = chunk_samples(N, P, K)
    im2row = im2row_parallel if parallel else im2row_serial
    to_out = rows_to_out_parallel if parallel else rows_to_out_serial
    out = np.empty((N, Cout, P), dtype=x.dtype)             # (N, Cout, P)
    rows = aligned_empty((S * P, K), x.dtype)               # (S*P, K): a chunk unrolled
    for n0 in range(0, N, S):
        s = min(S, N - n0)
        im2row(x, n0, s, kh, kw, sh, sw, ph, pw, OH, OW, rows)
        outT = gemm_blocked(rows[:s * P], w2, transpose_b=True, parallel=parallel)  # (s*P, Cout)
        to_out(outT, bias, has_bias, n0, s, out)
    return out


def backward(x, w2, g, geometry, OH, OW, parallel):
    """g: dout (N, Cout, P) -> dx (N,C,H,W), dW (Cout, K), db (Cout,)."""
    kh, kw, sh, sw, ph, pw = geometry
    N = x.shape[0]
    Cout, K = w2.shape
    P = OH * OW
    S = chunk_samples(N, P, K)
    unroll = im2col_parallel if parallel else im2col_serial
    to_rows = dout_to_rows_parallel if parallel else dout_to_rows_serial
    row2im = row2im_add_parallel if parallel else row2im_add_serial
    dx = np.zeros_like(x)
    dwT = np.zeros((K, Cout), dtype=x.dtype)                # dW^T (K, Cout)
    db = np.zeros(Cout, dtype=x.dtype)
    cols = np.empty((K, S * P), dtype=x.dtype)              # (K, S*P): a chunk unrolled
    gT = aligned_empty((S * P, Cout), x.dtype)              # (S*P, Cout): dout in rows
    for n0 in range(0, N, S):
        s = min(S, N - n0)
        to_rows(g, n0, s, gT, db)
        if s < S:                                           # the last chunk: its columns only
            cols = np.empty((K, s * P), dtype=x.dtype)
        unroll(x, n0, s, kh, kw, sh, sw, ph, pw, OH, OW, cols)
        gemm_blocked(cols, gT[:s * P], dwT, acc=True, parallel=parallel)
        drows = gemm_blocked(gT[:s * P], w2, parallel=parallel)   # (s*P, K)
        row2im(drows, n0, s, kh, kw, sh, sw, ph, pw, OH, OW, dx)
    return dx, np.ascontiguousarray(dwT.T), db
