"""Honest timing: warm-up (JIT compilation) outside the timed region, medians reported."""
import time

import numpy as np


def median_seconds(fn, reps=10, warmup=1, max_seconds=None):
    """Median wall time of ``fn()`` over ``reps`` calls, after ``warmup`` untimed calls.

    ``max_seconds`` stops early (after at least 3 timed calls) when the total time
    exceeds it, so slow reference kernels do not dominate a run.
    """
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if max_seconds is not None and len(times) >= 3 and time.perf_counter() - start > max_seconds:
            break
    return float(np.median(times))


def sgemm_peak_gflops(n=1024, reps=10):
    """This machine's float32 GEMM rate through NumPy's BLAS (all its threads), in GFLOP/s.

    It is the ceiling the hand-written kernels are compared with. Call it *after* the
    Numba timings: BLAS threads keep spinning for a while after a call, and would slow
    numba's parallel regions if those were timed right after (the threading trap).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    t = median_seconds(lambda: a @ b, reps=reps, warmup=2)
    return 2.0 * n ** 3 / t / 1e9


def let_blas_threads_sleep(seconds=0.2):
    """Pause so that BLAS threads spinning after a NumPy product go back to sleep."""
    time.sleep(seconds)
