"""Row-wise L2 normalisation on the GPU: one thread per row.

Same maths and signatures as ``tinyface.kernels.normalize``. Rows are short (the
64-256-d embeddings of distillation), so each thread loops over its row twice (norm
or dot product in float64, then the writes); there is no shared memory and no
``syncthreads``. The forward output and the (N, 1) float64 norms stay on the GPU.
"""
import math

import numpy as np
from numba import cuda

from tinyface.cuda.arrays import as_device, empty
from tinyface.cuda.launch import TPB, blocks
from tinyface.reference.normalize import DEFAULT_EPS


@cuda.jit
def l2_normalize_kernel(x, eps, y, r):
    """x, y: (N, D) float32; eps: float64; r: (N, 1) float64 (out).
    grid: blocks(N); block: TPB; thread n normalises row n."""
    n = cuda.grid(1)
    N, D = x.shape
    if n < N:                                   # bounds guard: the last block overhangs
        s = 0.0
        for d in range(D):
            v = np.float64(x[n, d])
            s += v * v
        norm = math.sqrt(s)
        if norm < eps:
            norm = eps
        r[n, 0] = norm
        for d in range(D):
            y[n, d] = x[n, d] / norm


@cuda.jit
def l2_normalize_backward_kernel(dy, y, r, dx):
    """dy, y, dx: (N, D) float32; r: (N, 1) float64.
    dx[n] = (dy[n] - y[n] <y[n], dy[n]>) / r[n]. grid: blocks(N); block: TPB."""
    n = cuda.grid(1)
    N, D = y.shape
    if n < N:
        radial = 0.0
        for d in range(D):
            radial += np.float64(y[n, d]) * np.float64(dy[n, d])
        inv = 1.0 / r[n, 0]
        for d in range(D):
            dx[n, d] = (dy[n, d] - y[n, d] * radial) * inv


def l2_normalize_forward(x, eps=DEFAULT_EPS):
    """x: (N, D) float32 (DeviceTensor). Returns ``(y, (y, r))``, all on the GPU."""
    x = as_device(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must be (N, D), got shape {x.shape}")
    y = empty(x.shape)                                                   # (N, D)
    r = empty((x.shape[0], 1), np.float64)                               # (N, 1)
    if x.shape[0]:
        l2_normalize_kernel[blocks(x.shape[0]), TPB](x.data, float(eps), y.data, r.data)
    return y, (y, r)


def l2_normalize_backward(dy, cache):
    """dy: (N, D) float32. Returns dx: (N, D) DeviceTensor."""
    y, r = cache
    dy = as_device(dy, "dy")
    if dy.shape != y.shape:
        raise ValueError(f"dy has shape {dy.shape}, the forward output {y.shape}")
    dx = empty(y.shape)
    if y.shape[0]:
        l2_normalize_backward_kernel[blocks(y.shape[0]), TPB](dy.data, y.data, r.data, dx.data)
    return dx


PTX_SIGNATURES = {
    "l2_normalize_kernel": ["void(float32[:, ::1], float64, float32[:, ::1], float64[:, ::1])"],
    "l2_normalize_backward_kernel": ["void(float32[:, ::1], float32[:, ::1], float64[:, ::1], "
                                     "float32[:, ::1])"],
}
