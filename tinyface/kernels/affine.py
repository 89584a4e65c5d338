"""Per-channel affine transform, Numba CPU kernels.

Same maths and signatures as ``tinyface.reference.affine``; x is viewed as
``(N, C, L)``, ``L = H * W``.

- forward:  ``prange`` over the batch; one iteration writes whole (sample, channel)
            planes, ``out = x * w[c] + b[c]`` in x's dtype (no fused multiply-add, so
            the result is the reference's bit for bit);
- backward: ``prange`` over the channels, as batch norm's backward does; one iteration
            owns channel c: it writes ``dx = dout * w[c]`` and sums ``dw[c] = sum dout * x``
            and ``db[c] = sum dout`` over its ``N * L`` values in float64, in a fixed
            order, so the parameter gradients are the same on every run and every
            thread count (values read as ``np.float64(...)``, which keeps the sums
            float64 under ``NUMBA_DISABLE_JIT=1`` too).
"""
import numpy as np
from numba import prange

from tinyface.kernels.threading import compile_pair, use_parallel
from tinyface.reference.affine import affine_check as _check   # shared argument checks


def _affine_forward_kernel(x, w, b, out):
    """x, out: (N, C, L); w, b: (C,) in x's dtype."""
    N, C, L = x.shape
    for n in prange(N):
        for c in range(C):
            scale = w[c]
            shift = b[c]
            for i in range(L):
                out[n, c, i] = x[n, c, i] * scale + shift


def _affine_backward_kernel(dout, x, w, dx, dw, db):
    """dout, x, dx: (N, C, L); w: (C,) in x's dtype; dw, db: (C,) float64."""
    N, C, L = x.shape
    for c in prange(C):
        scale = w[c]
        sdw = 0.0
        sdb = 0.0
        for n in range(N):
            for i in range(L):
                g = dout[n, c, i]
                dx[n, c, i] = g * scale
                g64 = np.float64(g)
                sdb += g64
                sdw += g64 * x[n, c, i]
        dw[c] = sdw
        db[c] = sdb


_forward = compile_pair(_affine_forward_kernel)
# reassoc: let LLVM vectorise the float64 sums (the order of the additions changes, but
# is fixed by the compiled code: the result is the same on every run)
_backward = compile_pair(_affine_backward_kernel, fastmath={"reassoc"})


def _pick(pair, n):
    return pair[1] if use_parallel(n) else pair[0]


def channel_affine_forward(x, w, b):
    """out = x * w[c] + b[c], per channel c.

    x: (N, C, H, W) float32 (or float64);
    w: (C,) float, the per-channel scale;
    b: (C,) float, the per-channel shift.
    Returns ``out`` (x's shape and dtype) and a cache for ``channel_affine_backward``.
    """
    x = np.ascontiguousarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"channel_affine: x must be a float array, got dtype {x.dtype}")
    w_in, b_in = np.asarray(w), np.asarray(b)
    _check(x.shape, w_in.shape, b_in.shape)
    N, C, H, W = x.shape
    x3 = x.reshape(N, C, H * W)                                  # (N, C, L)
    scale = np.ascontiguousarray(w_in, dtype=x.dtype)            # (C,)
    shift = np.ascontiguousarray(b_in, dtype=x.dtype)            # (C,)
    out3 = np.empty_like(x3)                                     # (N, C, L)
    if x.size:
        _pick(_forward, N)(x3, scale, shift, out3)
    return out3.reshape(x.shape), (x3, scale, x.shape, w_in.dtype, b_in.dtype)


def channel_affine_backward(dout, cache):
    """Gradients of the per-channel affine transform.

    dout:  (N, C, H, W) float, the output's gradient;
    cache: from ``channel_affine_forward``.
    Returns ``(dx, dw, db)``: dx (N, C, H, W) in x's dtype; dw (C,) in w's dtype and
    db (C,) in b's dtype, summed in float64.
    """
    x3, scale, shape, wdtype, bdtype = cache
    if np.shape(dout) != shape:
        raise ValueError(f"channel_affine_backward: dout has shape {np.shape(dout)}, "
                         f"expected {shape}")
    dout3 = np.ascontiguousarray(dout, dtype=x3.dtype).reshape(x3.shape)  # (N, C, L)
    N, C, _ = x3.shape
    dx3 = np.empty_like(x3)                                      # (N, C, L)
    dw = np.zeros(C, dtype=np.float64)                           # (C,)
    db = np.zeros(C, dtype=np.float64)                           # (C,)
    if x3.size:
        _pick(_backward, N)(dout3, x3, scale, dx3, dw, db)
    return dx3.reshape(shape), dw.astype(wdtype), db.astype(bdtype)
