"""Self-checks that run the CUDA tier against the CPU, outside the op tier they check.

- ``ops``: every CUDA op, forward and backward, against the Numba CPU tier, at tiny
  shapes under the simulator (``NUMBA_ENABLE_CUDASIM=1``) or at real shapes on a GPU;
- ``training``: a whole training step and ``fit`` on the GPU against the CPU.

``.ci/gpu-check`` runs them on a machine with a GPU; the tests run them in the simulator.
"""
