"""Which argument types each kernel is launched with, recorded under the simulator.

``record_launches()`` wraps the simulator's kernel call; ``launch_signatures()`` lists
what it saw, as numba signature strings (``void(float32[:, ::1], int64)``), so that
``tests/test_cuda_kernels.py`` can check that ``tests/test_cuda_ptx.py`` compiles
exactly the signatures the ops use.
"""
import numba
import numpy as np

_LAUNCHED = set()      # (module, kernel, signature) of every launch seen


def record_launches():
    """Under the simulator: remember every kernel launch's argument types, so that the
    tests can check that the PTX test compiles exactly the signatures the ops use."""
    # optional GPU import: the simulator's module, only under NUMBA_ENABLE_CUDASIM
    from numba.cuda.simulator.kernel import FakeCUDAKernel
    original = FakeCUDAKernel.__call__
    if getattr(original, "_recording", False):
        return

    def call(self, *args):
        if not self._device:
            _LAUNCHED.add((self.fn.__module__, self.fn.__name__, _signature(args)))
        return original(self, *args)

    call._recording = True
    FakeCUDAKernel.__call__ = call


def _typename(a):
    if isinstance(a, (bool, np.bool_)):
        return "boolean"
    if isinstance(a, int):
        return "int64"
    if isinstance(a, float):
        return "float64"
    if isinstance(a, np.generic):
        return str(numba.from_dtype(a.dtype))
    if hasattr(a, "shape") and hasattr(a, "dtype"):
        dims = ", ".join([":"] * (len(a.shape) - 1) + ["::1"])
        contiguous = a.is_c_contiguous() if hasattr(a, "is_c_contiguous") else True
        if not contiguous:
            dims = ", ".join([":"] * len(a.shape))
        return f"{numba.from_dtype(np.dtype(a.dtype))}[{dims}]"
    return type(a).__name__


def _signature(args):
    return "void(" + ", ".join(_typename(a) for a in args) + ")"


def launch_signatures():
    """The recorded launches: sorted ``[module, kernel, signature]`` lists."""
    return sorted([list(t) for t in _LAUNCHED])
