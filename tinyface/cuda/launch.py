"""Launch geometry shared by every CUDA kernel, and the simulator switch.

- ``TPB``:  threads per block of the 1-D kernels (one thread per output element);
- ``TILE``: side of the GEMM's square tiles; a GEMM block is ``TILE x TILE`` threads;
- ``MAX_PARTS``: blocks per channel in the first pass of a two-pass reduction;
- ``K_CHUNK``: inner-dimension length per GEMM block when a product is split (split-K);
- ``gpu_ms``: the median time of a call between two CUDA events.

Real GPU: ``TPB = 256``, ``TILE = 16`` (256 threads, two 16x17 float32 tiles = 2.2 KB of
shared memory per block). Under numba's simulator (``NUMBA_ENABLE_CUDASIM=1``) each CUDA
thread is a Python thread (0.1-1 ms each, more with ``syncthreads``), so the sizes shrink
to ``TPB = 16``, ``TILE = 8`` (and the chunks and partial sums to fewer): the same code
and the same bounds guards, more of them taken on tiny shapes. The PTX test compiles the
real sizes.
"""
import warnings

import numpy as np
from numba import config, cuda

# numba warns at every launch of fewer than 128 blocks; small grids are expected here
# (the student at batch 1, per-channel sums), and the timings say what they cost
warnings.filterwarnings("ignore",
                        message=r".*Grid size \d+ will likely result in GPU under-utilization")

SIMULATOR = bool(config.ENABLE_CUDASIM)

TPB = 16 if SIMULATOR else 256          # threads per block, 1-D kernels
TILE = 8 if SIMULATOR else 16           # GEMM tile side: TILE x TILE threads per block
TILE_PAD = TILE + 1                     # shared tiles get one spare column (bank conflicts)
MAX_PARTS = 4 if SIMULATOR else 64      # first-pass blocks per channel (two-pass sums)
K_CHUNK = 16 if SIMULATOR else 256      # GEMM inner-dimension chunk per block (split-K)
MAX_GRID_Z = 65535                      # CUDA's limit on gridDim.y and gridDim.z


def blocks(n, tpb=TPB):
    """Blocks of ``tpb`` threads that cover ``n`` elements (at least one)."""
    return max(1, (int(n) + tpb - 1) // tpb)


def check_grid_z(z, what):
    if z > MAX_GRID_Z:
        raise ValueError(f"{what}: {z} batch entries exceed CUDA's grid limit of "
                         f"{MAX_GRID_Z}; split the batch")
    return z


def device_kind():
    """``"simulator"`` or ``"cuda"``, for messages and reports."""
    return "simulator" if SIMULATOR else "cuda"


def gpu_ms(fn, reps=20, warmup=2):
    """Median milliseconds of ``fn()`` between two CUDA events, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = cuda.event(), cuda.event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cuda.event_elapsed_time(start, end))
    return float(np.median(times))
