"""Numba CPU tier: the kernels the layers run.

Every op is a ``*_forward(...) -> (out, cache)`` / ``*_backward(dout, cache)`` pair with
the same signature as its NumPy reference in ``tinyface.reference``. Kernels are plain
Python functions compiled at module level with ``cache=True`` (so
``NUMBA_DISABLE_JIT=1`` runs them as Python) and are generic in the float dtype:
float32 in training, float64 in gradient checks.

Internal layout: NCHW, the same as the public API, unless a module says otherwise.
"""
from tinyface.kernels._lazy import lazy_exports

# submodules whose public functions this package re-exports
MODULES = ["conv", "linear", "batchnorm", "activation", "pool", "dropout", "losses", "normalize",
           "affine", "pad"]

__getattr__, __dir__ = lazy_exports(__name__, MODULES)
