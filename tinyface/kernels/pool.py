"""Pooling and flattening, Numba CPU kernels.

Same maths and signatures as ``tinyface.reference.pool``. Each kernel has a ``prange``
over the batch; one iteration owns whole (sample, channel) planes, so the scatter in
the backward passes (overlapping windows add up) never races.

Sums are float64 (values read as ``np.float64(...)``, which also keeps them float64
under ``NUMBA_DISABLE_JIT=1``). Max pooling stores the winner of each window as a flat
index ``h * W + w`` into its input plane (int32); padded cells never win, ties go to
the first maximum in row-major order, NaN wins (as in PyTorch).
"""
import numpy as np
from numba import njit, prange

from tinyface.kernels.threading import compile_pair, use_parallel
from tinyface.reference.pool import pool_geometry as _geometry  # shared argument checks
# flatten is a reshape of a contiguous array: both tiers share the reference's
from tinyface.reference.pool import flatten_backward, flatten_forward  # noqa: F401


def _maxpool_forward_kernel(x, kh, kw, sh, sw, ph, pw, out, arg):
    """x: (N, C, H, W); out: (N, C, Ho, Wo); arg: (N, C, Ho, Wo) int32."""
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    for n in prange(N):
        for c in range(C):
            for oh in range(Ho):
                h0 = oh * sh - ph
                hs = max(h0, 0)
                he = min(h0 + kh, H)
                # start every window of this output row at its first valid cell ...
                for ow in range(Wo):
                    ws = max(ow * sw - pw, 0)
                    out[n, c, oh, ow] = x[n, c, hs, ws]
                    arg[n, c, oh, ow] = hs * W + ws
                # ... then sweep the input rows it covers, row by row (contiguous reads)
                for h in range(hs, he):
                    for ow in range(Wo):
                        w0 = ow * sw - pw
                        ws = max(w0, 0)
                        we = min(w0 + kw, W)
                        best = out[n, c, oh, ow]
                        bi = arg[n, c, oh, ow]
                        for w in range(ws, we):
                            v = x[n, c, h, w]
                            # branch-free select; NaN wins once, as in PyTorch
                            take = (v > best) | ((v != v) & (best == best))
                            best = v if take else best
                            bi = h * W + w if take else bi
                        out[n, c, oh, ow] = best
                        arg[n, c, oh, ow] = bi


def _maxpool_backward_kernel(dout, arg, dx):
    """dout, arg: (N, C, Ho, Wo); dx: (N, C, H*W), zeroed by the caller."""
    N, C, Ho, Wo = dout.shape
    for n in prange(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    dx[n, c, arg[n, c, oh, ow]] += dout[n, c, oh, ow]


def _avgpool_forward_kernel(x, kh, kw, sh, sw, ph, pw, out):
    """x: (N, C, H, W); out: (N, C, Ho, Wo). Divisor kh*kw (padding counts)."""
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    inv = 1.0 / (kh * kw)
    for n in prange(N):
        for c in range(C):
            for oh in range(Ho):
                h0 = oh * sh - ph
                hs = max(h0, 0)
                he = min(h0 + kh, H)
                for ow in range(Wo):
                    w0 = ow * sw - pw
                    ws = max(w0, 0)
                    we = min(w0 + kw, W)
                    s = 0.0
                    for h in range(hs, he):
                        for w in range(ws, we):
                            s += np.float64(x[n, c, h, w])
                    out[n, c, oh, ow] = s * inv


def _avgpool_backward_kernel(dout, kh, kw, sh, sw, ph, pw, dx):
    """dout: (N, C, Ho, Wo); dx: (N, C, H, W), zeroed by the caller."""
    N, C, H, W = dx.shape
    Ho, Wo = dout.shape[2], dout.shape[3]
    inv = 1.0 / (kh * kw)
    for n in prange(N):
        for c in range(C):
            for oh in range(Ho):
                h0 = oh * sh - ph
                hs = max(h0, 0)
                he = min(h0 + kh, H)
                for ow in range(Wo):
                    w0 = ow * sw - pw
                    ws = max(w0, 0)
                    we = min(w0 + kw, W)
                    g = np.float64(dout[n, c, oh, ow]) * inv
                    for h in range(hs, he):
                        for w in range(ws, we):
                            dx[n, c, h, w] += g


@njit(cache=True, fastmath={"reassoc"})
def _global_avgpool_forward_kernel(x, out):
    """x: (N, C, L); out: (N, C)."""
    N, C, L = x.shape
    for n in range(N):
        for c in range(C):
            s = 0.0
            for i in range(L):
                s += np.float64(x[n, c, i])
            out[n, c] = s / L


@njit(cache=True)
def _global_avgpool_backward_kernel(dout, dx):
    """dout: (N, C); dx: (N, C, L)."""
    N, C, L = dx.shape
    for n in range(N):
        for c in range(C):
            g = np.float64(dout[n, c]) / L
            for i in range(L):
                dx[n, c, i] = g


_maxpool_fwd = compile_pair(_maxpool_forward_kernel)
_maxpool_bwd = compile_pair(_maxpool_backward_kernel)
_avgpool_fwd = compile_pair(_avgpool_forward_kernel)
_avgpool_bwd = compile_pair(_avgpool_backward_kernel)


def _pick(pair, n):
    return pair[1] if use_parallel(n) else pair[0]


def _float4(x, op):
    x = np.ascontiguousarray(x)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: x must be a float array, got dtype {x.dtype}")
    return x


def _check_dout(dout, shape, op):
    if np.shape(dout) != tuple(shape):
        raise ValueError(f"{op}: dout has shape {np.shape(dout)}, expected {tuple(shape)}")


def maxpool2d_forward(x, kernel_size, stride, padding=0):
    """Max over each window.

    x:           (N, C, H, W) float32 (or float64);
    kernel_size: int or (kh, kw); stride: int or (sh, sw) (None: kernel_size);
    padding:     int or (ph, pw), at most half the kernel; padded cells never win.
    Returns ``out`` (N, C, Ho, Wo) and a cache for ``maxpool2d_backward``.
    """
    x = _float4(x, "maxpool2d")
    (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = _geometry(
        x.shape, kernel_size, stride, padding, "maxpool2d")
    N, C = x.shape[:2]
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)                # (N, C, Ho, Wo)
    arg = np.empty((N, C, Ho, Wo), dtype=np.int32)               # (N, C, Ho, Wo) flat h*W+w
    if out.size:
        _pick(_maxpool_fwd, N)(x, kh, kw, sh, sw, ph, pw, out, arg)
    return out, (arg, x.shape, x.dtype)


def maxpool2d_backward(dout, cache):
    """Route each output gradient to its window's maximum (overlaps add up).

    dout: (N, C, Ho, Wo) float; cache: from ``maxpool2d_forward``.
    Returns dx (N, C, H, W).
    """
    arg, shape, dtype = cache
    _check_dout(dout, arg.shape, "maxpool2d_backward")
    dout = np.ascontiguousarray(dout, dtype=dtype)
    N, C, H, W = shape
    dx = np.zeros((N, C, H * W), dtype=dtype)                    # (N, C, H*W)
    if dout.size:
        _pick(_maxpool_bwd, N)(dout, arg, dx)
    return dx.reshape(shape)


def avgpool2d_forward(x, kernel_size, stride, padding=0):
    """Mean over each window, zero padding included in the divisor ``kh * kw``.

    x:           (N, C, H, W) float32 (or float64);
    kernel_size: int or (kh, kw); stride: int or (sh, sw) (None: kernel_size);
    padding:     int or (ph, pw), at most half the kernel.
    Returns ``out`` (N, C, Ho, Wo) and a cache for ``avgpool2d_backward``.
    """
    x = _float4(x, "avgpool2d")
    geom = _geometry(x.shape, kernel_size, stride, padding, "avgpool2d")
    (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = geom
    N, C = x.shape[:2]
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)                # (N, C, Ho, Wo)
    if out.size:
        _pick(_avgpool_fwd, N)(x, kh, kw, sh, sw, ph, pw, out)
    return out, (geom, x.shape, x.dtype)


def avgpool2d_backward(dout, cache):
    """Spread each output gradient evenly over its window (padding cells dropped).

    dout: (N, C, Ho, Wo) float; cache: from ``avgpool2d_forward``.
    Returns dx (N, C, H, W).
    """
    ((kh, kw), (sh, sw), (ph, pw), (Ho, Wo)), shape, dtype = cache
    _check_dout(dout, shape[:2] + (Ho, Wo), "avgpool2d_backward")
    dout = np.ascontiguousarray(dout, dtype=dtype)
    dx = np.zeros(shape, dtype=dtype)                            # (N, C, H, W)
    if dout.size:
        _pick(_avgpool_bwd, shape[0])(dout, kh, kw, sh, sw, ph, pw, dx)
    return dx


def global_avgpool_forward(x):
    """Mean over the spatial axes.

    x: (N, C, H, W) float32 (or float64).
    Returns ``out`` (N, C) and a cache for ``global_avgpool_backward``.
    """
    x = _float4(x, "global_avgpool")
    N, C, H, W = x.shape
    out = np.empty((N, C), dtype=x.dtype)                        # (N, C)
    if x.size:
        _global_avgpool_forward_kernel(x.reshape(N, C, H * W), out)
    else:
        out[...] = np.nan if H * W == 0 else 0.0
    return out, (x.shape, x.dtype)


def global_avgpool_backward(dout, cache):
    """dx[n, c, h, w] = dout[n, c] / (H * W).

    dout: (N, C) float; cache: from ``global_avgpool_forward``.
    """
    shape, dtype = cache
    _check_dout(dout, shape[:2], "global_avgpool_backward")
    N, C, H, W = shape
    dout = np.ascontiguousarray(dout, dtype=dtype)
    dx = np.empty((N, C, H * W), dtype=dtype)                    # (N, C, H*W)
    if dx.size:
        _global_avgpool_backward_kernel(dout, dx)
    return dx.reshape(shape)
