"""Zero padding at the end of the channel and spatial axes, Numba CPU kernels.

Same maths and signatures as ``tinyface.reference.pad``. Both kernels have a ``prange``
over the batch; one iteration owns one sample's planes:

- forward:  each output row is the input row followed by zeros (``out[n, c, h, :W] =
            x[n, c, h]``, ``out[n, c, h, W:] = 0``); rows h >= H and channels c >= C are
            all zeros. Every output cell is written once, so ``out`` starts uninitialised;
- backward: the crop ``dx[n, c, h, w] = dout[n, c, h, w]`` for c < C, h < H, w < W.
"""
import numpy as np
from numba import prange

from tinyface.kernels.threading import compile_pair, use_parallel
from tinyface.reference.pad import pad_geometry as _geometry   # shared argument checks


def _zero_pad_forward_kernel(x, out):
    """x: (N, C, H, W); out: (N, Co, Ho, Wo) with Co >= C, Ho >= H, Wo >= W."""
    N, C, H, W = x.shape
    Co, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    for n in prange(N):
        for c in range(Co):
            for h in range(Ho):
                if c < C and h < H:
                    for w in range(W):
                        out[n, c, h, w] = x[n, c, h, w]
                    for w in range(W, Wo):
                        out[n, c, h, w] = 0.0
                else:
                    for w in range(Wo):
                        out[n, c, h, w] = 0.0


def _zero_pad_backward_kernel(dout, dx):
    """dout: (N, Co, Ho, Wo); dx: (N, C, H, W) with C <= Co, H <= Ho, W <= Wo."""
    N, C, H, W = dx.shape
    for n in prange(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    dx[n, c, h, w] = dout[n, c, h, w]


_forward = compile_pair(_zero_pad_forward_kernel)
_backward = compile_pair(_zero_pad_backward_kernel)


def _pick(pair, n):
    return pair[1] if use_parallel(n) else pair[0]


def zero_pad_forward(x, channels, height, width):
    """Pad x with zeros at the end of its channel, row and column axes.

    x:        (N, C, H, W) float32 (or float64);
    channels: int >= C, the output's channel count;
    height:   int >= H, the output's rows;
    width:    int >= W, the output's columns.
    Returns ``out`` (N, channels, height, width) in x's dtype, with ``out[:, :C, :H, :W]
    = x`` and zeros elsewhere, and a cache for ``zero_pad_backward``.
    """
    x = np.ascontiguousarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"zero_pad: x must be a float array, got dtype {x.dtype}")
    Co, Ho, Wo = _geometry(x.shape, channels, height, width)
    N = x.shape[0]
    out = np.empty((N, Co, Ho, Wo), dtype=x.dtype)               # (N, Co, Ho, Wo)
    if out.size:
        _pick(_forward, N)(x, out)
    return out, (x.shape, out.shape, x.dtype)


def zero_pad_backward(dout, cache):
    """The gradient of zero padding: the crop back to the input's extent.

    dout:  (N, channels, height, width) float; cache: from ``zero_pad_forward``.
    Returns dx (N, C, H, W), C-contiguous, in x's dtype.
    """
    shape, out_shape, dtype = cache
    if np.shape(dout) != out_shape:
        raise ValueError(f"zero_pad_backward: dout has shape {np.shape(dout)}, "
                         f"expected {out_shape}")
    dout = np.ascontiguousarray(dout, dtype=dtype)
    dx = np.empty(shape, dtype=dtype)                            # (N, C, H, W)
    if dx.size:
        _pick(_backward, shape[0])(dout, dx)
    return dx
