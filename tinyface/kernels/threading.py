"""How the Numba kernels use the machine's cores.

The trap: numba's OpenMP/workqueue threads and a BLAS library's own thread pool
spin against each other. On a 2-core machine a 2.5 us parallel launch becomes ~3 ms
right after a NumPy ``@`` call, because OpenBLAS's threads keep spinning on the cores
numba wants (``python -m tinyface bench kernels`` measures it).

The design that avoids it:

1. **No BLAS on hot paths.** Every matrix product inside a layer is a Numba kernel
   (``tinyface.kernels.gemm``), so one pool, numba's, owns the cores.
2. **Serial below a size threshold.** Each hot kernel is compiled twice from the same
   plain Python function: ``njit`` (serial) and ``njit(parallel=True)`` (``prange`` over
   the batch). A parallel launch costs microseconds and splits tiny work badly, so
   small batches (batch-1 inference) take the serial version.
"""
import types

import numba

# below this many samples in a batch, kernels run their serial version
PARALLEL_MIN_BATCH = 4


def use_parallel(batch):
    """True when a batch of ``batch`` samples should use the parallel kernels."""
    return batch >= PARALLEL_MIN_BATCH and numba.get_num_threads() > 1


def compile_pair(fn, **options):
    """Compile ``fn`` twice: ``(serial, parallel)``, both cached on disk.

    ``fn`` is a plain function that uses ``numba.prange``; in the serial version
    ``prange`` behaves as ``range``. Options (e.g. ``fastmath=True``) go to both.
    """
    serial = numba.njit(cache=True, **options)(fn)
    # numba's on-disk cache is keyed by the function's qualified name, not by its
    # compile flags: give the parallel twin its own name so the two never collide.
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_parallel",
                              fn.__defaults__, fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + "_parallel"
    twin.__module__ = fn.__module__
    parallel = numba.njit(cache=True, parallel=True, **options)(twin)
    return serial, parallel
