"""NumPy reference tier: slow, obvious, and what every test compares against.

Same op names and signatures as ``tinyface.kernels``; arrays in NCHW (or NC).
"""
from tinyface.kernels._lazy import lazy_exports

MODULES = ["conv", "linear", "batchnorm", "activation", "pool", "dropout", "losses", "normalize",
           "affine", "pad"]

__getattr__, __dir__ = lazy_exports(__name__, MODULES)
