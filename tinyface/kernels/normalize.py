"""Row-wise L2 normalisation, Numba CPU kernels.

Same maths and signatures as ``tinyface.reference.normalize`` (whose argument check is
reused): a ``prange`` over the rows, each accumulating its norm, or its dot product
``<y, dy>``, in float64 before one pass that writes the row.
"""
import numpy as np
from numba import prange

from tinyface.kernels.threading import compile_pair, use_parallel
from tinyface.reference.normalize import DEFAULT_EPS, check_rows


def _forward_kernel(x, eps, y, r):
    """x, y: (N, D); r: (N, 1) float64 (out)."""
    N, D = x.shape
    for n in prange(N):
        s = 0.0
        for d in range(D):
            v = np.float64(x[n, d])
            s += v * v
        norm = max(np.sqrt(s), eps)
        r[n, 0] = norm
        for d in range(D):
            y[n, d] = x[n, d] / norm


def _backward_kernel(dy, y, r, dx):
    """dy, y, dx: (N, D); r: (N, 1) float64."""
    N, D = y.shape
    for n in prange(N):
        radial = 0.0
        for d in range(D):
            radial += np.float64(y[n, d]) * np.float64(dy[n, d])
        inv = 1.0 / r[n, 0]
        for d in range(D):
            dx[n, d] = (dy[n, d] - y[n, d] * radial) * inv


_forward = compile_pair(_forward_kernel)
_backward = compile_pair(_backward_kernel)


def l2_normalize_forward(x, eps=DEFAULT_EPS):
    """x: (N, D) float. Returns ``(y, (y, r))`` as the reference does."""
    x = np.ascontiguousarray(check_rows(x))
    y = np.empty_like(x)                                                 # (N, D)
    r = np.empty((x.shape[0], 1), np.float64)                            # (N, 1)
    kernel = _forward[1] if use_parallel(x.shape[0]) else _forward[0]
    kernel(x, float(eps), y, r)
    return y, (y, r)


def l2_normalize_backward(dy, cache):
    """dy: (N, D). Returns dx: (N, D) in y's dtype."""
    y, r = cache
    dy = np.ascontiguousarray(dy, dtype=y.dtype)
    if dy.shape != y.shape:
        raise ValueError(f"dy has shape {dy.shape}, the forward output {y.shape}")
    dx = np.empty_like(y)
    kernel = _backward[1] if use_parallel(y.shape[0]) else _backward[0]
    kernel(dy, y, r, dx)
    return dx
