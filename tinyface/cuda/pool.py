"""Pooling and flattening on the GPU: one thread per output element forward, one
thread per input element backward.

Same maths and signatures as ``tinyface.kernels.pool``. The backward passes are
written as gathers: the thread of input pixel (h, w) finds the windows that contain
it and adds their gradients, so overlapping windows need no atomics and the sum has a
fixed order (windows in row-major order, as the CPU tier's scatter adds them).
Window ``oh`` covers input rows ``[oh*sh - ph, oh*sh - ph + kh)``, so row h is in the
windows ``oh`` with ``(h + ph - kh) / sh < oh <= (h + ph) / sh``, that is
``floor((h + ph - kh) / sh) + 1 <= oh <= floor((h + ph) / sh)``. (The window bounds are
written out with conditional expressions, not ``min``/``max``: see ``losses``.)

Max pooling stores each window's winner as a flat index ``h * W + w`` into its input
plane (int32); padded cells never win, ties go to the first maximum in row-major
order, and NaN wins (as in PyTorch and the CPU tier).
"""
import numpy as np
from numba import cuda, float32

from tinyface.cuda.arrays import as_device, empty
from tinyface.cuda.launch import TPB, blocks
from tinyface.reference.pool import pool_geometry as _geometry   # shared argument checks


@cuda.jit
def maxpool_forward_kernel(x, kh, kw, sh, sw, ph, pw, out, arg):
    """x: (N, C, H, W); out: (N, C, Ho, Wo); arg: (N, C, Ho, Wo) int32 (flat h*W + w).
    grid: blocks(N*C*Ho*Wo); block: TPB; one thread per output element."""
    t = cuda.grid(1)
    N, C, Ho, Wo = out.shape
    H, W = x.shape[2], x.shape[3]
    if t < N * C * Ho * Wo:
        ow = t % Wo
        oh = (t // Wo) % Ho
        c = (t // (Wo * Ho)) % C
        n = t // (Wo * Ho * C)
        hs = oh * sh - ph                         # the window, clipped to the input
        he = hs + kh
        hs = 0 if hs < 0 else hs
        he = H if he > H else he
        ws = ow * sw - pw
        we = ws + kw
        ws = 0 if ws < 0 else ws
        we = W if we > W else we
        best = x[n, c, hs, ws]
        bi = hs * W + ws
        for h in range(hs, he):                   # row-major sweep: first maximum wins
            for w in range(ws, we):
                v = x[n, c, h, w]
                if v > best or (v != v and best == best):    # NaN wins once
                    best = v
                    bi = h * W + w
        out[n, c, oh, ow] = best
        arg[n, c, oh, ow] = bi


@cuda.jit
def maxpool_backward_kernel(dout, arg, kh, kw, sh, sw, ph, pw, dx):
    """dx[n, c, h, w] = sum of dout[n, c, oh, ow] over the windows containing (h, w)
    whose winner arg[n, c, oh, ow] is h*W + w. dout, arg: (N, C, Ho, Wo);
    dx: (N, C, H, W). grid: blocks(N*C*H*W); block: TPB; one thread per input pixel."""
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    Ho, Wo = dout.shape[2], dout.shape[3]
    if t < N * C * H * W:
        w = t % W
        h = (t // W) % H
        c = (t // (W * H)) % C
        n = t // (W * H * C)
        me = h * W + w
        s = float32(0.0)
        # windows oh with oh*sh <= h + ph < oh*sh + kh, i.e. oh in [oh_lo, oh_hi)
        oh_lo = (h + ph - kh + sh) // sh if h + ph - kh + 1 > 0 else 0
        oh_hi = (h + ph) // sh + 1
        oh_hi = Ho if oh_hi > Ho else oh_hi
        ow_lo = (w + pw - kw + sw) // sw if w + pw - kw + 1 > 0 else 0
        ow_hi = (w + pw) // sw + 1
        ow_hi = Wo if ow_hi > Wo else ow_hi
        for oh in range(oh_lo, oh_hi):
            for ow in range(ow_lo, ow_hi):
                if arg[n, c, oh, ow] == me:
                    s += dout[n, c, oh, ow]
        dx[n, c, h, w] = s


@cuda.jit
def avgpool_forward_kernel(x, kh, kw, sh, sw, ph, pw, out):
    """Mean over each window, divisor kh*kw (padding counts), float64 sum.
    x: (N, C, H, W); out: (N, C, Ho, Wo). grid: blocks(N*C*Ho*Wo); block: TPB."""
    t = cuda.grid(1)
    N, C, Ho, Wo = out.shape
    H, W = x.shape[2], x.shape[3]
    if t < N * C * Ho * Wo:
        ow = t % Wo
        oh = (t // Wo) % Ho
        c = (t // (Wo * Ho)) % C
        n = t // (Wo * Ho * C)
        hs = oh * sh - ph                         # the window, clipped to the input
        he = hs + kh
        hs = 0 if hs < 0 else hs
        he = H if he > H else he
        ws = ow * sw - pw
        we = ws + kw
        ws = 0 if ws < 0 else ws
        we = W if we > W else we
        s = 0.0
        for h in range(hs, he):
            for w in range(ws, we):
                s += np.float64(x[n, c, h, w])
        out[n, c, oh, ow] = s * (1.0 / (kh * kw))


@cuda.jit
def avgpool_backward_kernel(dout, kh, kw, sh, sw, ph, pw, dx):
    """dx[n, c, h, w] = sum of dout / (kh*kw) over the windows containing (h, w).
    dout: (N, C, Ho, Wo); dx: (N, C, H, W). grid: blocks(N*C*H*W); block: TPB."""
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    Ho, Wo = dout.shape[2], dout.shape[3]
    if t < N * C * H * W:
        w = t % W
        h = (t // W) % H
        c = (t // (W * H)) % C
        n = t // (W * H * C)
        inv = 1.0 / (kh * kw)
        s = 0.0
        # windows oh with oh*sh <= h + ph < oh*sh + kh, i.e. oh in [oh_lo, oh_hi)
        oh_lo = (h + ph - kh + sh) // sh if h + ph - kh + 1 > 0 else 0
        oh_hi = (h + ph) // sh + 1
        oh_hi = Ho if oh_hi > Ho else oh_hi
        ow_lo = (w + pw - kw + sw) // sw if w + pw - kw + 1 > 0 else 0
        ow_hi = (w + pw) // sw + 1
        ow_hi = Wo if ow_hi > Wo else ow_hi
        for oh in range(oh_lo, oh_hi):
            for ow in range(ow_lo, ow_hi):
                s += np.float64(dout[n, c, oh, ow]) * inv
        dx[n, c, h, w] = s


@cuda.jit
def global_avgpool_forward_kernel(x, out):
    """out[n, c] = mean of x[n, c, :]. x: (N, C, L); out: (N, C).
    grid: blocks(N*C); block: TPB; one thread per (n, c), float64 sum."""
    t = cuda.grid(1)
    N, C, L = x.shape
    if t < N * C:
        n = t // C
        c = t - n * C
        s = 0.0
        for i in range(L):
            s += np.float64(x[n, c, i])
        out[n, c] = s / L


@cuda.jit
def global_avgpool_backward_kernel(dout, dx):
    """dx[n, c, i] = dout[n, c] / L. dout: (N, C); dx: (N, C, L).
    grid: blocks(N*C*L); block: TPB."""
    t = cuda.grid(1)
    N, C, L = dx.shape
    if t < N * C * L:
        n = t // (C * L)
        c = (t // L) % C
        dx[n, c, t % L] = np.float64(dout[n, c]) / L


def _float4(x, op):
    x = as_device(x, f"{op}: x")
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be (N, C, H, W), got shape {x.shape}")
    return x


def _check_dout(dout, shape, op):
    if tuple(np.shape(dout)) != tuple(shape):
        raise ValueError(f"{op}: dout has shape {np.shape(dout)}, expected {tuple(shape)}")
    return as_device(dout, f"{op}: dout")


def maxpool2d_forward(x, kernel_size, stride, padding=0):
    """Max over each window. x: (N, C, H, W) float32 DeviceTensor; kernel_size, stride
    (None: kernel_size), padding: int or pair. Returns out (N, C, Ho, Wo) and a cache."""
    x = _float4(x, "maxpool2d")
    (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = _geometry(
        x.shape, kernel_size, stride, padding, "maxpool2d")
    N, C = x.shape[:2]
    out = empty((N, C, Ho, Wo))
    arg = empty((N, C, Ho, Wo), np.int32)
    if out.size:
        maxpool_forward_kernel[blocks(out.size), TPB](x.data, kh, kw, sh, sw, ph, pw,
                                                      out.data, arg.data)
    return out, (arg, x.shape, (kh, kw, sh, sw, ph, pw))


def maxpool2d_backward(dout, cache):
    """Route each output gradient to its window's maximum. Returns dx (N, C, H, W)."""
    arg, shape, (kh, kw, sh, sw, ph, pw) = cache
    dout = _check_dout(dout, arg.shape, "maxpool2d_backward")
    dx = empty(shape)
    if dx.size:
        maxpool_backward_kernel[blocks(dx.size), TPB](dout.data, arg.data, kh, kw, sh, sw,
                                                      ph, pw, dx.data)
    return dx


def avgpool2d_forward(x, kernel_size, stride, padding=0):
    """Mean over each window, zero padding included in the divisor ``kh * kw``."""
    x = _float4(x, "avgpool2d")
    geom = _geometry(x.shape, kernel_size, stride, padding, "avgpool2d")
    (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = geom
    N, C = x.shape[:2]
    out = empty((N, C, Ho, Wo))
    if out.size:
        avgpool_forward_kernel[blocks(out.size), TPB](x.data, kh, kw, sh, sw, ph, pw, out.data)
    return out, (geom, x.shape)


def avgpool2d_backward(dout, cache):
    """Spread each output gradient evenly over its window. Returns dx (N, C, H, W)."""
    ((kh, kw), (sh, sw), (ph, pw), (Ho, Wo)), shape = cache
    dout = _check_dout(dout, tuple(shape[:2]) + (Ho, Wo), "avgpool2d_backward")
    dx = empty(shape)
    if dx.size:
        avgpool_backward_kernel[blocks(dx.size), TPB](dout.data, kh, kw, sh, sw, ph, pw,
                                                      dx.data)
    return dx


def global_avgpool_forward(x):
    """Mean over the spatial axes: x (N, C, H, W) -> out (N, C), and a cache."""
    x = _float4(x, "global_avgpool")
    N, C, H, W = x.shape
    out = empty((N, C))
    if N * C:
        global_avgpool_forward_kernel[blocks(N * C), TPB](x.data.reshape(N, C, H * W), out.data)
    return out, x.shape


def global_avgpool_backward(dout, cache):
    """dx[n, c, h, w] = dout[n, c] / (H * W)."""
    shape = cache
    dout = _check_dout(dout, shape[:2], "global_avgpool_backward")
    N, C, H, W = shape
    dx = empty(shape)
    if dx.size:
        global_avgpool_backward_kernel[blocks(dx.size), TPB](dout.data,
                                                             dx.data.reshape(N, C, H * W))
    return dx


def flatten_forward(x):
    """(N, C, H, W) -> (N, C*H*W), a view (no copy, no kernel)."""
    x = as_device(x, "flatten: x")
    if x.ndim < 1:
        raise ValueError("flatten: x must have a batch axis")
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:]))), x.shape


def flatten_backward(dout, cache):
    """Reshape the gradient back to the input's shape (a view)."""
    shape = cache
    if int(np.prod(np.shape(dout))) != int(np.prod(shape)) or len(np.shape(dout)) != 2 \
            or np.shape(dout)[0] != shape[0]:
        raise ValueError(f"flatten_backward: dout has shape {np.shape(dout)}, input was {shape}")
    return as_device(dout, "flatten_backward: dout").reshape(shape)


_F4, _F3, _I4 = "float32[:, :, :, ::1]", "float32[:, :, ::1]", "int32[:, :, :, ::1]"
_GEOM = "int64, int64, int64, int64, int64, int64"
PTX_SIGNATURES = {
    "maxpool_forward_kernel": [f"void({_F4}, {_GEOM}, {_F4}, {_I4})"],
    "maxpool_backward_kernel": [f"void({_F4}, {_I4}, {_GEOM}, {_F4})"],
    "avgpool_forward_kernel": [f"void({_F4}, {_GEOM}, {_F4})"],
    "avgpool_backward_kernel": [f"void({_F4}, {_GEOM}, {_F4})"],
    "global_avgpool_forward_kernel": [f"void({_F3}, float32[:, ::1])"],
    "global_avgpool_backward_kernel": [f"void(float32[:, ::1], {_F3})"],
}
