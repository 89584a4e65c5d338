"""The elementwise kernels under ``DeviceTensor`` (``tinyface.cuda.arrays``): fill, axpy,
add, scale, cast and a count of non-finite values, one thread per element.

Each is launched with ``launch_1d(kernel, n, ...)``: ``blocks(n)`` blocks of ``TPB``
threads, and every kernel guards ``i < size``, since the last block overhangs.
"""
import math

from numba import cuda

from tinyface.cuda.launch import TPB, blocks


@cuda.jit
def fill_kernel(y, value):
    """y[i] = value. y: (n,); grid: blocks(n); block: TPB."""
    i = cuda.grid(1)
    if i < y.size:                                   # bounds guard: the last block overhangs
        y[i] = value


@cuda.jit
def axpy_kernel(a, x, y):
    """y[i] += a * x[i]. x, y: (n,) float32; a: float32. grid: blocks(n); block: TPB."""
    i = cuda.grid(1)
    if i < y.size:
        y[i] += a * x[i]


@cuda.jit
def add_kernel(x, y, z):
    """z[i] = x[i] + y[i]. x, y, z: (n,) float32. grid: blocks(n); block: TPB."""
    i = cuda.grid(1)
    if i < z.size:
        z[i] = x[i] + y[i]


@cuda.jit
def scale_kernel(a, x, y):
    """y[i] = a * x[i]. x, y: (n,) float32; a: float32. grid: blocks(n); block: TPB."""
    i = cuda.grid(1)
    if i < y.size:
        y[i] = a * x[i]


@cuda.jit
def cast_kernel(src, dst):
    """dst[i] = src[i], converted to dst's dtype. grid: blocks(n); block: TPB."""
    i = cuda.grid(1)
    if i < dst.size:
        dst[i] = src[i]


@cuda.jit
def count_nonfinite_kernel(x, count):
    """count[0] += number of NaN/inf in x. x: (n,) float32; count: (1,) int64.

    One atomic add per non-finite element (there are none in a healthy run).
    grid: blocks(n); block: TPB.
    """
    i = cuda.grid(1)
    if i < x.size:
        if math.isnan(x[i]) or math.isinf(x[i]):
            cuda.atomic.add(count, 0, 1)


def launch_1d(kernel, n, *args):
    """``kernel`` over ``n`` elements (nothing to launch when n == 0)."""
    if n:
        kernel[blocks(n), TPB](*args)



# CUDA kernels and the signatures they are launched with (compiled by the PTX test)
PTX_SIGNATURES = {
    "fill_kernel": ["void(float32[::1], float32)", "void(float64[::1], float64)",
                    "void(int64[::1], int64)"],
    "axpy_kernel": ["void(float32, float32[::1], float32[::1])"],
    "add_kernel": ["void(float32[::1], float32[::1], float32[::1])"],
    "scale_kernel": ["void(float32, float32[::1], float32[::1])"],
    "cast_kernel": ["void(float64[::1], float32[::1])"],
    "count_nonfinite_kernel": ["void(float32[::1], int64[::1])"],
}
