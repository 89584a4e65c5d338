"""Self-checks that run the CUDA tier against the CPU, outside the op tier they check.

    from tinyface.checks import TOL, run_op_checks, step_check
    rep = run_op_checks("tiny")                  # every op, forward and backward
    rep.failed()                                 # [] when every tensor is within its TOL

Modules:

- ``report``: the tolerances (``TOL``, one per way the two tiers compute a tensor), the
  relative error, the ``Report`` every check adds its rows to, and ``run_gpu_command``,
  the frame of the ``training`` and ``distill_methods`` command lines;
- ``layer_checks``, ``loss_checks``, ``device_checks``: one ``check_<op>`` per op (the
  layers; the losses and L2 normalisation; ``DeviceTensor``, the device optimizers and
  host/device mix-ups), CUDA against the Numba CPU tier;
- ``kd_checks``: the distillation methods' losses (SP, FSIM, AT, RKD, PKT, CRD, DKD) and
  the batch-row gather / scatter, CUDA against the CPU tier each method runs on;
- ``suite``: which checks run, in which order, at the tiny (simulator) or real (GPU)
  shapes: ``run_op_checks``;
- ``step``: one whole training step of the student on both tiers (``step_check``), and
  ``cuda_ops``, which runs the layers on the CUDA tier;
- ``launches``: the argument types of every kernel launch, recorded under the simulator;
- ``simulator``: the checks in a child process with ``NUMBA_ENABLE_CUDASIM=1``;
- ``ops``: the command line, ``python -m tinyface.checks.ops [kernels|step|all]``;
- ``training``: ``fit`` on the GPU against the CPU,
  ``python -m tinyface.checks.training``;
- ``distill_methods``: each distillation method variant fine-tuned on the GPU against
  the CPU, ``python -m tinyface.checks.distill_methods``.

``.ci/gpu-check`` runs them on a machine with a GPU; the tests run them in the simulator.
This package imports ``tinyface.cuda`` and numba.cuda (which import without a GPU); the
command-line modules ``ops``, ``training`` and ``distill_methods`` are not imported here,
so that ``python -m`` runs them once.
"""
from tinyface.checks.report import TOL, Report, format_rows, rel_err, worst_by_check
from tinyface.checks.simulator import run_in_simulator
from tinyface.checks.step import cuda_ops, nn_device_ready, step_check, step_spec
from tinyface.checks.suite import CHECK_NAMES, CHECKS, real_cases, run_op_checks, tiny_cases

__all__ = ["TOL", "Report", "format_rows", "rel_err", "worst_by_check", "run_in_simulator",
           "cuda_ops", "nn_device_ready", "step_check", "step_spec", "CHECK_NAMES", "CHECKS",
           "real_cases", "run_op_checks", "tiny_cases"]
