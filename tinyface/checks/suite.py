"""The op checks as one suite: which checks run, in which order, at which shapes.

    run_op_checks("tiny")        # the simulator: every code path at a few hundred threads
    run_op_checks("real")        # a GPU: the reference student's and teacher's layer shapes

Each check gets a fresh ``np.random.default_rng(seed)``, so a check's inputs do not
depend on which other checks ran (``only``).
"""
import time

import numpy as np

from tinyface.models.bench_nets import STUDENT_PLAN, TEACHER_PLAN
from tinyface.checks import device_checks, kd_checks, layer_checks, loss_checks
from tinyface.checks.report import Report

# the op checks, in the order they run (names are stable: the tests parametrize over them)
CHECKS = {
    "conv2d": layer_checks.check_conv2d,
    "linear": layer_checks.check_linear,
    "batchnorm": layer_checks.check_batchnorm,
    "relu": layer_checks.check_relu,
    "prelu": layer_checks.check_prelu,
    "maxpool2d": layer_checks.check_maxpool2d,
    "avgpool2d": layer_checks.check_avgpool2d,
    "global_avgpool": layer_checks.check_global_avgpool,
    "flatten": layer_checks.check_flatten,
    "channel_affine": layer_checks.check_channel_affine,
    "zero_pad": layer_checks.check_zero_pad,
    "dropout": layer_checks.check_dropout,
    "softmax_cross_entropy": loss_checks.check_softmax_cross_entropy,
    "feature_regression": loss_checks.check_feature_regression,
    "distillation": loss_checks.check_distillation,
    "l2_normalize": loss_checks.check_l2_normalize,
    "device_tensor": device_checks.check_device_tensor,
    "sgd": device_checks.check_sgd,
    "adam": device_checks.check_adam,
    "bad_input": device_checks.check_bad_input,
    **kd_checks.KD_CHECKS,          # the distillation methods' losses (kd_sp, ..., kd_rows)
}
CHECK_NAMES = list(CHECKS)


def tiny_cases():
    """Shapes for the simulator: every path (padding, stride, overhanging tiles and
    blocks, split-K, shared slopes, overlapping windows) at a few hundred threads each."""
    return {
        "conv2d": [(2, 2, 3, 5, 4, (3, 2), 2, 1, True), (1, 3, 2, 4, 4, 3, 1, 1, False),
                   (2, 3, 9, 3, 3, 1, 1, 0, True)],
        "linear": [(20, 7, 3, True), (3, 9, 10, False)],
        "batchnorm": [(3, 2, 2, 3), (4, 3)],
        "relu": [(2, 3, 2, 2)],
        "prelu": [((2, 3, 2, 2), 3), ((2, 5), 1)],
        "maxpool2d": [((1, 2, 4, 5), 2, 2, 0), ((2, 1, 5, 5), 3, 2, 1)],
        "avgpool2d": [((1, 2, 4, 4), 2, 2, 0), ((2, 1, 5, 5), 3, 2, 1)],
        "global_avgpool": [(2, 3, 2, 3)],
        "flatten": [(2, 3, 2, 2)],
        "dropout": [((3, 7), 0.3, 5), ((2, 2, 3, 3), 0.5, 123456789)],
        "softmax_cross_entropy": [(4, 5)],
        "feature_regression": [(3, 4, False), (3, 4, True)],
        "distillation": [(3, 4, 2.0)],
        "l2_normalize": [(3, 5), (20, 2)],
        "device_tensor": [(3, 5)],
        "bad_input": [(2, 3)],
        "channel_affine": [(2, 3, 2, 3), (1, 2, 1, 5)],
        "zero_pad": [((2, 2, 3, 3), (4, 4, 4)), ((1, 3, 2, 2), (3, 2, 3)),
                     ((2, 1, 2, 3), (1, 2, 3))],
        "sgd": [((7,), dict(lr=0.1)),
                ((3, 5), dict(lr=0.1, momentum=0.9, weight_decay=5e-4)),
                ((3, 5), dict(lr=0.05, momentum=0.9, nesterov=True)),
                ((3, 5), dict(lr=0.05, momentum=0.5, dampening=0.1))],
        "adam": [((7,), False, dict(lr=0.01)),
                 ((3, 5), False, dict(lr=0.01, weight_decay=5e-4)),
                 ((3, 5), True, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1))],
        **kd_checks.kd_tiny_cases(),
    }


def real_cases():
    """The layer shapes of the reference student (batch 256) and teacher (batch 32),
    as ``python -m tinyface bench kernels`` times them on the CPU."""
    cases = {k: [] for k in CHECK_NAMES}

    def plan(net, N, S, layers):
        c, s = 3, S
        for item in layers:
            if item == "M":
                cases["maxpool2d"].append(((N, c, s, s), 2, 2, 0))
                s //= 2
            else:
                cases["conv2d"].append((N, c, item, s, s, 3, 1, 1, True))
                cases["batchnorm"].append((N, item, s, s))
                cases["relu"].append((N, item, s, s))
                c = item
        cases["global_avgpool"].append((N, c, s, s))
        return c

    cs = plan("student", 256, 16, STUDENT_PLAN)
    ct = plan("teacher", 32, 64, TEACHER_PLAN)
    cases["linear"] += [(256, cs, 128, True), (32, ct, 256, True), (256, 64, 158, True)]
    cases["batchnorm"].append((256, 64))
    cases["prelu"] += [((256, 16, 16, 16), 16), ((256, 64), 1)]
    cases["avgpool2d"] += [((256, 16, 16, 16), 2, 2, 0)]
    cases["flatten"] += [(256, 32, 4, 4)]
    cases["dropout"] += [((256, 64), 0.5, 1)]
    cases["softmax_cross_entropy"] += [(256, 158), (1024, 158)]
    cases["feature_regression"] += [(256, 64, True)]
    cases["distillation"] += [(256, 158, 4.0)]
    cases["l2_normalize"] += [(256, 256), (1024, 64)]
    cases["device_tensor"] += [(256, 16, 16, 16)]
    cases["sgd"] += [((16, 16, 3, 3), dict(lr=0.1, momentum=0.9, weight_decay=5e-4))]
    cases["adam"] += [((16, 16, 3, 3), False, dict(lr=1e-3, weight_decay=5e-4)),
                      ((256, 64), True, dict(lr=1e-3))]
    cases["bad_input"] += [(256, 64)]
    cases["channel_affine"] += [(256, 16, 16, 16), (32, 256, 8, 8)]
    cases["zero_pad"] += [((256, 16, 8, 8), (32, 8, 8)), ((32, 64, 17, 17), (64, 18, 18))]
    cases.update(kd_checks.kd_real_cases())
    for k, v in cases.items():                  # drop duplicates, keep the order
        cases[k] = list({repr(c): c for c in v}.values())
    return cases


def run_op_checks(shapes="tiny", only=None, seed=0, log=None):
    """Run the op checks; returns a ``Report``. ``only``: a list of check names."""
    cases = tiny_cases() if shapes == "tiny" else real_cases()
    rep = Report()
    for name in CHECK_NAMES:
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        CHECKS[name](rep, np.random.default_rng(seed), cases[name])
        if log:
            bad = rep.failed(name)
            log(f"  {name:22s} {'ok' if not bad else 'FAILED'} ({time.perf_counter() - t0:.1f} s)")
    return rep
