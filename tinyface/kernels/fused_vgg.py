"""Inference of a small VGG-style network as one compiled function, face by face.

The student needs 3.5 MFLOP a face. Run layer by layer at batch 1, each of its 21 layers
costs a Python call, a dispatch and fresh arrays, microseconds that add up to more than
the arithmetic. Here the whole network is one ``njit`` function: the weights arrive
prepared (batch norms folded in, ``tinyface.models.fused``), scratch buffers are
allocated once per call, and nothing returns to Python between layers.

Layout inside: channels last, each activation stored with a zero border of one pixel,
``(H + 2, W + 2, C)``, so a 3x3 convolution (stride 1, padding 1) finds each output
pixel's window as three contiguous runs of ``3 * C`` floats, copies them into a row,
and multiplies the rows by the weights ``(Cout, 9 * Cin)`` with the blocked GEMM's
register-blocked micro-kernel.

The plan is a list of codes: ``CONV`` (3x3, stride 1, padding 1, then ReLU when its
flag says so) and ``POOL`` (2x2 max, stride 2); after the last code, a global average
pool, the embedding layer ``emb = We g + be`` and the classifier ``logits = Wc emb + bc``.
"""
import numba
import numpy as np

from tinyface.kernels.gemm_blocked import MR, NR, micro_4x4, micro_edge
from tinyface.kernels.threading import compile_pair

CONV, POOL = 0, 1


@numba.njit(cache=True, fastmath=True)
def _conv3x3(src, H, W, C, w, b, relu, rows, out, dst):
    """dst[1:H+1, 1:W+1, :] = relu?(conv3x3(src) + b); src, dst: (H+2, W+2, C*) padded.

    w: (Cout, 9*C), each row in (i, j, c) order. Each output pixel's window is three
    runs of 3*C contiguous floats of src; copied into rows (H*W, 9*C), the convolution
    is the product rows @ w.T, run 4 pixels x 4 channels at a time by the blocked GEMM's
    micro-kernel (accumulators in registers along the depth 9*C).
    """
    Cout, K = w.shape                                       # K = 9C
    P = H * W
    r = rows[:P * K].reshape((P, K))                         # (P, K)
    for oh in range(H):
        for ow in range(W):
            dstrow = r[oh * W + ow]
            for i in range(3):
                seg = src[oh + i, ow:ow + 3].reshape(3 * C)  # (3C,) contiguous
                for t in range(3 * C):
                    dstrow[i * 3 * C + t] = seg[t]
    o = out[:P * Cout].reshape((P, Cout))                   # (P, Cout)
    o[:, :] = 0.0
    for j0 in range(0, Cout, NR):
        for i0 in range(0, P, MR):
            if i0 + MR <= P and j0 + NR <= Cout:
                micro_4x4(K, r, i0, w, j0, o, i0, j0)
            else:
                micro_edge(K, r, i0, min(MR, P - i0), w, j0, min(NR, Cout - j0), o, i0, j0)
    for oh in range(H):
        for ow in range(W):
            d = dst[oh + 1, ow + 1]
            op = o[oh * W + ow]
            for co in range(Cout):
                v = op[co] + b[co]
                d[co] = max(v, 0.0) if relu else v


@numba.njit(cache=True, fastmath=True)
def _maxpool2(src, H, W, C, dst):
    """dst[1:H/2+1, 1:W/2+1, :] = 2x2 max of src's interior (H, W even or not: floor)."""
    for oh in range(H // 2):
        for ow in range(W // 2):
            o = dst[oh + 1, ow + 1]
            for c in range(C):
                o[c] = max(max(src[2 * oh + 1, 2 * ow + 1, c], src[2 * oh + 1, 2 * ow + 2, c]),
                           max(src[2 * oh + 2, 2 * ow + 1, c], src[2 * oh + 2, 2 * ow + 2, c]))


@numba.njit(cache=True, fastmath=True)
def _padded(buf, H, W, C):
    """A zeroed (H+2, W+2, C) view of the scratch buffer ``buf``."""
    v = buf[:(H + 2) * (W + 2) * C].reshape((H + 2, W + 2, C))
    v[:, :, :] = 0.0
    return v


@numba.njit(cache=True, fastmath=True)
def forward_one(face, codes, weights, biases, relus, We, be, Wc, bc, buf_a, buf_b, rows, out,
                emb, logits):
    """face (C, S, S) -> emb (D,), logits (K,), written in place.

    weights[l] (Cout, 9*Cin) in (i, j, c) order, biases[l] (Cout,), relus[l] for the
    l-th CONV code; We (D, C_last), be (D,), Wc (K, D), bc (K,); buf_a, buf_b: scratch
    of the largest padded activation's size; rows, out: of the largest H*W*9*Cin and
    H*W*Cout.
    """
    C, H, W = face.shape
    cur = _padded(buf_a, H, W, C)
    for c in range(C):                                      # NCHW in, channels last inside
        for h in range(H):
            for x in range(W):
                cur[h + 1, x + 1, c] = face[c, h, x]
    layer, into_b = 0, True                                 # the buffers take turns
    for code in codes:
        spare = buf_b if into_b else buf_a
        if code == CONV:
            w = weights[layer]
            nxt = _padded(spare, H, W, w.shape[0])
            _conv3x3(cur, H, W, C, w, biases[layer], relus[layer], rows, out, nxt)
            C = w.shape[0]
            layer += 1
        else:
            nxt = _padded(spare, H // 2, W // 2, C)
            _maxpool2(cur, H, W, C, nxt)
            H, W = H // 2, W // 2
        cur, into_b = nxt, not into_b
    g = np.zeros(C, dtype=cur.dtype)                        # (C,) global average pool
    for h in range(H):
        for x in range(W):
            for c in range(C):
                g[c] += cur[h + 1, x + 1, c]
    g /= H * W
    for d in range(We.shape[0]):                            # no BLAS: plain dot products
        acc = be[d]
        for c in range(C):
            acc += We[d, c] * g[c]
        emb[d] = acc
    for k in range(Wc.shape[0]):
        acc = bc[k]
        for d in range(We.shape[0]):
            acc += Wc[k, d] * emb[d]
        logits[k] = acc


def _forward_batch(faces, codes, weights, biases, relus, We, be, Wc, bc, scratch, emb, logits):
    """Every face of faces (N, C, S, S) through ``forward_one``; faces split across threads,
    each face with its own scratch; scratch: the floats of (padded, rows, out)."""
    for n in numba.prange(faces.shape[0]):
        buf_a = np.empty(scratch[0], dtype=faces.dtype)
        buf_b = np.empty(scratch[0], dtype=faces.dtype)
        rows = np.empty(scratch[1], dtype=faces.dtype)
        out = np.empty(scratch[2], dtype=faces.dtype)
        forward_one(faces[n], codes, weights, biases, relus, We, be, Wc, bc, buf_a, buf_b,
                    rows, out, emb[n], logits[n])


forward_batch_serial, forward_batch_parallel = compile_pair(_forward_batch, fastmath=True)
