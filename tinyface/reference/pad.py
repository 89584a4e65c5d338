"""Zero padding at the end of the channel and spatial axes, NumPy reference.

``zero_pad_forward(x, channels, height, width)`` puts x (N, C, H, W) at
``out[:, :C, :H, :W]`` of a zero (N, channels, height, width) array: the extra
channels of a ResNet downsampling shortcut (option A: identity plus zero channels),
or a zero row at the bottom and a zero column at the right of a residual main path
whose strided convolution came out one pixel short. The gradient is the crop
``dout[:, :C, :H, :W]``.
"""
import operator

import numpy as np


def pad_geometry(x_shape, channels, height, width, op="zero_pad"):
    """Validate the target sizes against x's shape; return ``(channels, height, width)``
    as ints. The target must be at least the input on every axis (padding only adds)."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: x must be (N, C, H, W), got shape {tuple(x_shape)}")
    try:
        target = tuple(operator.index(v) for v in (channels, height, width))
    except TypeError:
        raise ValueError(f"{op}: channels, height and width must be ints, got "
                         f"{(channels, height, width)!r}") from None
    have = tuple(int(s) for s in x_shape[1:])
    if any(t < s for t, s in zip(target, have)):
        raise ValueError(f"{op}: target (channels, height, width) = {target} is smaller than "
                         f"the input's (C, H, W) = {have}; zero_pad only adds zeros at the end "
                         f"of each axis")
    return target


def zero_pad_forward(x, channels, height, width):
    """Pad x with zeros at the end of its channel, row and column axes.

    x:        (N, C, H, W) float;
    channels: int >= C, the output's channel count;
    height:   int >= H, the output's rows;
    width:    int >= W, the output's columns.
    Returns ``out`` (N, channels, height, width) in x's dtype, with ``out[:, :C, :H, :W]
    = x`` and zeros elsewhere, and a cache for ``zero_pad_backward``.
    """
    x = np.asarray(x)
    Co, Ho, Wo = pad_geometry(x.shape, channels, height, width)
    N, C, H, W = x.shape
    out = np.zeros((N, Co, Ho, Wo), dtype=x.dtype)               # (N, Co, Ho, Wo)
    out[:, :C, :H, :W] = x
    return out, (x.shape, out.shape, x.dtype)


def zero_pad_backward(dout, cache):
    """The gradient of zero padding: the crop back to the input's extent.

    dout:  (N, channels, height, width) float; cache: from ``zero_pad_forward``.
    Returns dx (N, C, H, W), C-contiguous, in x's dtype.
    """
    shape, out_shape, dtype = cache
    dout = np.asarray(dout)
    if dout.shape != out_shape:
        raise ValueError(f"zero_pad_backward: dout has shape {dout.shape}, expected {out_shape}")
    N, C, H, W = shape
    return np.ascontiguousarray(dout[:, :C, :H, :W], dtype=dtype)   # (N, C, H, W)
