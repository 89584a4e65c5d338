"""Per-channel affine transform, NumPy reference.

``out[n, c, h, w] = x[n, c, h, w] * w[c] + b[c]``: batch norm's scale and shift without
the normalisation (a frozen batch norm folded into one multiply-add, or a learnt
per-channel gain). The product and the sum are taken in x's dtype, in that order; the
parameter gradients are float64 sums over (N, H, W)::

    dx[n, c, h, w] = dout[n, c, h, w] * w[c]
    dw[c]          = sum over n, h, w of dout * x
    db[c]          = sum over n, h, w of dout
"""
import numpy as np


def affine_check(x_shape, w_shape, b_shape, op="channel_affine"):
    """Validate the shapes (x (N, C, H, W), w and b (C,)); return C."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: x must be (N, C, H, W), got shape {tuple(x_shape)}")
    C = x_shape[1]
    for name, shape in (("w", w_shape), ("b", b_shape)):
        if tuple(shape) != (C,):
            raise ValueError(f"{op}: {name} must have shape ({C},) for x of shape "
                             f"{tuple(x_shape)}, got {tuple(shape)}")
    return C


def channel_affine_forward(x, w, b):
    """out = x * w[c] + b[c], per channel c.

    x: (N, C, H, W) float;
    w: (C,) float, the per-channel scale;
    b: (C,) float, the per-channel shift.
    Returns ``out`` (x's shape and dtype) and a cache for ``channel_affine_backward``.
    """
    x = np.asarray(x)
    w, b = np.asarray(w), np.asarray(b)
    affine_check(x.shape, w.shape, b.shape)
    scale = w.astype(x.dtype)[None, :, None, None]               # (1, C, 1, 1)
    shift = b.astype(x.dtype)[None, :, None, None]               # (1, C, 1, 1)
    out = (x * scale + shift).astype(x.dtype, copy=False)        # (N, C, H, W)
    return out, (x, w, b.dtype)


def channel_affine_backward(dout, cache):
    """Gradients of the per-channel affine transform.

    dout:  (N, C, H, W) float, the output's gradient;
    cache: from ``channel_affine_forward``.
    Returns ``(dx, dw, db)``: dx (N, C, H, W) in x's dtype; dw (C,) in w's dtype and
    db (C,) in b's dtype, summed in float64.
    """
    x, w, bdtype = cache
    dout = np.asarray(dout)
    if dout.shape != x.shape:
        raise ValueError(f"channel_affine_backward: dout has shape {dout.shape}, "
                         f"expected {x.shape}")
    dx = (dout.astype(x.dtype) * w.astype(x.dtype)[None, :, None, None]).astype(x.dtype)
    g = dout.astype(np.float64)                                  # (N, C, H, W)
    dw = (g * x).sum(axis=(0, 2, 3))                             # (C,)
    db = g.sum(axis=(0, 2, 3))                                   # (C,)
    return dx, dw.astype(w.dtype), db.astype(bdtype)
