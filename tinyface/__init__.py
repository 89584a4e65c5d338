"""tinyface: low-resolution face recognition via selective knowledge distillation.

A from-scratch NumPy/Numba implementation. Every op's forward and backward pass is
written by hand in three tiers, chosen with ``tinyface.backend.set_backend``:

- ``tinyface.reference``: plain NumPy, slow and obvious; tests compare against it;
- ``tinyface.kernels``:   Numba CPU kernels, what the layers run by default;
- ``tinyface.cuda``:      numba.cuda GPU kernels (optional: needs a GPU).

Every tier implements the ops named in ``tinyface.ops_list``; ``tinyface.nn`` holds the
PyTorch-style layer classes (``params`` and ``grads``) that call them. The package's
floors, bottom to top (a module imports only from its own floor or below;
``tests/test_structure.py`` checks it):

- the op tiers, ``optim``, ``backend``: ops, optimizers, the tier the layers run;
- ``nn``, ``data``, ``losses``, ``checkpoint``: layers, faces and splits, losses, files;
- ``models``, ``eval``, ``select``: the networks; identification and verification
  metrics; the sparse graph selection of faces;
- ``cuda``: the GPU tier (imported on demand below it);
- ``train``: the training loop;
- ``distill``, ``checks``: the method (selective distillation of the teacher into the LR
  student); the CUDA self-checks;
- ``bench``: benchmarks (speed is measured there, never asserted in tests);
- ``experiments``: the runners (the two streams, the ablation, deployment, reports);
- ``cli``: ``python -m tinyface``.
"""

from tinyface import vectors

__version__ = "0.1.0"
vectors.widen()      # before anything imports numba: 512-bit vectors on AVX-512 CPUs
