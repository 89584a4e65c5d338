"""tinyface: low-resolution face recognition via selective knowledge distillation.

A from-scratch NumPy/Numba implementation. Every layer's forward and backward pass is
written by hand in three tiers:

- ``tinyface.reference``: plain NumPy, slow and obvious; tests compare against it;
- ``tinyface.kernels``:   Numba CPU kernels, what the layers run;
- ``tinyface.nn``:        PyTorch-style layer classes holding ``params`` and ``grads``.
"""

__version__ = "0.1.0"
