"""Per-channel affine transform on the GPU: one thread per element, and the
deterministic two-pass per-channel sums for the parameter gradients.

Same maths and signatures as ``tinyface.kernels.affine``; x is viewed as (N, C, L).

    forward:  out = x * w[c] + b[c]                          affine_forward_kernel
    backward: dx  = dout * w[c]                              affine_backward_kernel
              db[c] = sum dout, dw[c] = sum dout * x         reduce.channel_sums (BN_BWD)

The parameter gradients are batch norm's backward sums with ``mean = 0`` and
``istd = 1`` (``sum b`` and ``sum b * (a - 0) * 1``, a = x, b = dout): float64, a tree per
block then an ordered sum, no atomics, the same result on every run. The forward may
be contracted into a fused multiply-add (one rounding instead of two), hence the
"elementwise" tolerance in ``tinyface.checks.report``.
"""
import numpy as np
from numba import cuda

from tinyface.cuda.arrays import as_device, empty, zeros
from tinyface.cuda.launch import TPB, blocks
from tinyface.cuda.reduce import BN_BWD, channel_sums, sum_row
from tinyface.reference.affine import affine_check as _check   # shared argument checks


@cuda.jit
def affine_forward_kernel(x, w, b, out):
    """out = x * w[c] + b[c]. x, out: (N, C, L) float32; w, b: (C,) float32.
    grid: blocks(N*C*L); block: TPB; one thread per element."""
    t = cuda.grid(1)
    N, C, L = x.shape
    if t < N * C * L:                             # bounds guard: the last block overhangs
        n = t // (C * L)
        c = (t // L) % C
        i = t % L
        out[n, c, i] = x[n, c, i] * w[c] + b[c]


@cuda.jit
def affine_backward_kernel(dout, w, dx):
    """dx = dout * w[c]. dout, dx: (N, C, L) float32; w: (C,) float32.
    grid: blocks(N*C*L); block: TPB; one thread per element."""
    t = cuda.grid(1)
    N, C, L = dx.shape
    if t < N * C * L:
        n = t // (C * L)
        c = (t // L) % C
        i = t % L
        dx[n, c, i] = dout[n, c, i] * w[c]


def channel_affine_forward(x, w, b):
    """out = x * w[c] + b[c], per channel c, on the GPU.

    x: (N, C, H, W) float32 DeviceTensor; w, b: (C,) float32 (host arrays are copied up).
    Returns ``out`` (x's shape) and a cache for ``channel_affine_backward``.
    """
    x = as_device(x, "channel_affine_forward: x")
    _check(x.shape, np.shape(w), np.shape(b))
    w = as_device(w, "channel_affine_forward: w")
    b = as_device(b, "channel_affine_forward: b")
    N, C, H, W = x.shape
    shape3 = (N, C, H * W)                                       # (N, C, L)
    out = empty(x.shape)
    if x.size:
        affine_forward_kernel[blocks(x.size), TPB](x.data.reshape(shape3), w.data, b.data,
                                                   out.data.reshape(shape3))
    return out, (x, w, shape3)


def channel_affine_backward(dout, cache):
    """Returns ``(dx, dw, db)``: dx of x's shape, dw and db (C,), DeviceTensors."""
    x, w, shape3 = cache
    if tuple(np.shape(dout)) != x.shape:
        raise ValueError(f"channel_affine_backward: dout has shape {np.shape(dout)}, "
                         f"expected {x.shape}")
    dout = as_device(dout, "channel_affine_backward: dout")
    C = shape3[1]
    x3 = x.data.reshape(shape3)                                  # (N, C, L)
    g3 = dout.data.reshape(shape3)                               # (N, C, L)
    dx = empty(x.shape)
    if x.size:
        affine_backward_kernel[blocks(x.size), TPB](g3, w.data, dx.data.reshape(shape3))
    mean = zeros((C,), np.float64)                               # (C,) BN_BWD with xhat = x
    istd = empty((C,), np.float64).fill(1.0)                     # (C,)
    sums = channel_sums(x3, BN_BWD, b3=g3, mean=mean.data, istd=istd.data)   # (2, C) float64
    return dx, sum_row(sums, 1), sum_row(sums, 0)


_F3 = "float32[:, :, ::1]"
PTX_SIGNATURES = {
    "affine_forward_kernel": [f"void({_F3}, float32[::1], float32[::1], {_F3})"],
    "affine_backward_kernel": [f"void({_F3}, float32[::1], {_F3})"],
}
