"""Pooling and flattening, NumPy reference.

Output size per spatial axis: ``floor((H + 2 * p - k) / s) + 1`` (PyTorch, ceil_mode off).
Max pooling pads with -inf (padding never wins); average pooling pads with zeros that
count in the divisor ``kh * kw`` (PyTorch's default ``count_include_pad=True``).
Ties in a max-pool window go to the first maximum in row-major order.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _pair(v, name):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def pool_geometry(x_shape, kernel_size, stride, padding, op="pool"):
    """Validate pooling arguments; return ``((kh, kw), (sh, sw), (ph, pw), (Ho, Wo))``."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: x must be (N, C, H, W), got shape {tuple(x_shape)}")
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(kernel_size if stride is None else stride, "stride")
    ph, pw = _pair(padding, "padding")
    if kh < 1 or kw < 1 or sh < 1 or sw < 1:
        raise ValueError(f"{op}: kernel_size and stride must be positive, "
                         f"got kernel ({kh}, {kw}), stride ({sh}, {sw})")
    if ph < 0 or pw < 0 or 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"{op}: padding ({ph}, {pw}) must be >= 0 and at most half the "
                         f"kernel size ({kh}, {kw})")
    H, W = x_shape[2], x_shape[3]
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ValueError(f"{op}: kernel ({kh}, {kw}) is larger than the padded input "
                         f"({H + 2 * ph}, {W + 2 * pw})")
    Ho = (H + 2 * ph - kh) // sh + 1
    Wo = (W + 2 * pw - kw) // sw + 1
    return (kh, kw), (sh, sw), (ph, pw), (Ho, Wo)


def _windows(xp, k, s, out_hw):
    """Strided windows of a padded (N, C, Hp, Wp) array: (N, C, Ho, Wo, kh, kw)."""
    win = sliding_window_view(xp, k, axis=(2, 3))                # (N, C, Hp-kh+1, Wp-kw+1, kh, kw)
    return win[:, :, ::s[0], ::s[1]][:, :, :out_hw[0], :out_hw[1]]


def maxpool2d_forward(x, kernel_size, stride, padding=0):
    """Max over each window.

    x:           (N, C, H, W) float;
    kernel_size: int or (kh, kw); stride: int or (sh, sw) (None: kernel_size);
    padding:     int or (ph, pw), at most half the kernel; padded cells are -inf.
    Returns ``out`` (N, C, Ho, Wo) and a cache for ``maxpool2d_backward``.
    """
    x = np.asarray(x)
    k, s, p, (Ho, Wo) = pool_geometry(x.shape, kernel_size, stride, padding, "maxpool2d")
    N, C, H, W = x.shape
    pad = ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]))
    xp = np.pad(x, pad, constant_values=-np.inf)               # (N, C, Hp, Wp)
    valid = np.pad(np.ones((1, 1, H, W), bool), pad)             # (1, 1, Hp, Wp)
    win = _windows(xp, k, s, (Ho, Wo)).reshape(N, C, Ho, Wo, -1)  # (N, C, Ho, Wo, kh*kw)
    ok = _windows(valid, k, s, (Ho, Wo)).reshape(1, 1, Ho, Wo, -1)  # (1, 1, Ho, Wo, kh*kw)
    # the first valid cell equal to the window's max (NaN counts as the max, as in PyTorch)
    top = win.max(axis=-1, keepdims=True)                        # (N, C, Ho, Wo, 1)
    hit = ok & ((win == top) | (np.isnan(win) & np.isnan(top)))  # (N, C, Ho, Wo, kh*kw)
    arg = np.argmax(hit, axis=-1)                                # (N, C, Ho, Wo)
    out = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    # the winner's row/column in the unpadded input
    rows = np.arange(Ho)[:, None] * s[0] - p[0] + arg // k[1]   # (N, C, Ho, Wo)
    cols = np.arange(Wo)[None, :] * s[1] - p[1] + arg % k[1]    # (N, C, Ho, Wo)
    return out.astype(x.dtype), (rows * W + cols, x.shape, x.dtype)


def maxpool2d_backward(dout, cache):
    """Route each output gradient to its window's maximum (overlaps add up).

    dout: (N, C, Ho, Wo) float; cache: from ``maxpool2d_forward``.
    Returns dx (N, C, H, W).
    """
    index, shape, dtype = cache
    dout = np.asarray(dout)
    if dout.shape != index.shape:
        raise ValueError(f"maxpool2d_backward: dout has shape {dout.shape}, expected {index.shape}")
    N, C, H, W = shape
    dx = np.zeros((N * C, H * W), dtype=np.float64)              # (N*C, H*W)
    plane = np.repeat(np.arange(N * C), index.shape[2] * index.shape[3])        # (N*C*Ho*Wo,)
    np.add.at(dx, (plane, index.reshape(-1)), dout.reshape(-1))
    return dx.reshape(shape).astype(dtype)


def avgpool2d_forward(x, kernel_size, stride, padding=0):
    """Mean over each window, zero padding included in the divisor ``kh * kw``.

    x:           (N, C, H, W) float;
    kernel_size: int or (kh, kw); stride: int or (sh, sw) (None: kernel_size);
    padding:     int or (ph, pw), at most half the kernel.
    Returns ``out`` (N, C, Ho, Wo) and a cache for ``avgpool2d_backward``.
    """
    x = np.asarray(x)
    k, s, p, (Ho, Wo) = pool_geometry(x.shape, kernel_size, stride, padding, "avgpool2d")
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))  # (N, C, Hp, Wp)
    win = _windows(xp.astype(np.float64), k, s, (Ho, Wo))       # (N, C, Ho, Wo, kh, kw)
    out = win.sum(axis=(-2, -1)) / (k[0] * k[1])                 # (N, C, Ho, Wo)
    return out.astype(x.dtype), (k, s, p, x.shape, x.dtype)


def avgpool2d_backward(dout, cache):
    """Spread each output gradient evenly over its window (padding cells dropped).

    dout: (N, C, Ho, Wo) float; cache: from ``avgpool2d_forward``.
    Returns dx (N, C, H, W).
    """
    k, s, p, shape, dtype = cache
    N, C, H, W = shape
    _, _, _, (Ho, Wo) = pool_geometry(shape, k, s, p)
    dout = np.asarray(dout)
    if dout.shape != (N, C, Ho, Wo):
        raise ValueError(f"avgpool2d_backward: dout has shape {dout.shape}, "
                         f"expected {(N, C, Ho, Wo)}")
    g = dout.astype(np.float64) / (k[0] * k[1])                  # (N, C, Ho, Wo)
    dxp = np.zeros((N, C, H + 2 * p[0], W + 2 * p[1]))          # (N, C, Hp, Wp)
    for i in range(k[0]):
        for j in range(k[1]):
            dxp[:, :, i:i + s[0] * Ho:s[0], j:j + s[1] * Wo:s[1]] += g
    return dxp[:, :, p[0]:p[0] + H, p[1]:p[1] + W].astype(dtype)


def global_avgpool_forward(x):
    """Mean over the spatial axes.

    x: (N, C, H, W) float.
    Returns ``out`` (N, C) and a cache for ``global_avgpool_backward``.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"global_avgpool: x must be (N, C, H, W), got shape {x.shape}")
    return x.mean(axis=(2, 3), dtype=np.float64).astype(x.dtype), (x.shape, x.dtype)


def global_avgpool_backward(dout, cache):
    """dx[n, c, h, w] = dout[n, c] / (H * W).

    dout: (N, C) float; cache: from ``global_avgpool_forward``.
    """
    shape, dtype = cache
    dout = np.asarray(dout)
    if dout.shape != shape[:2]:
        raise ValueError(f"global_avgpool_backward: dout has shape {dout.shape}, "
                         f"expected {shape[:2]}")
    g = dout.astype(np.float64) / (shape[2] * shape[3])          # (N, C)
    return np.broadcast_to(g[:, :, None, None], shape).astype(dtype)


def flatten_forward(x):
    """(N, C, H, W) -> (N, C*H*W), row-major (PyTorch's ``nn.Flatten``).

    x: (N, ...) any dtype with at least one axis.
    """
    x = np.ascontiguousarray(x)
    if x.ndim < 1:
        raise ValueError("flatten: x must have a batch axis")
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:]))), x.shape


def flatten_backward(dout, cache):
    """Reshape the gradient back to the input's shape.

    dout: (N, D) float; cache: from ``flatten_forward``.
    """
    shape = cache
    dout = np.asarray(dout)
    if dout.size != int(np.prod(shape)) or dout.ndim != 2 or dout.shape[0] != shape[0]:
        raise ValueError(f"flatten_backward: dout has shape {dout.shape}, input was {shape}")
    return dout.reshape(shape)
