"""The CUDA tier against the Numba CPU tier: every op, forward and backward, and one
whole training step.

    NUMBA_ENABLE_CUDASIM=1 python -m tinyface.checks.ops          # tiny shapes, simulator
    python -m tinyface.checks.ops --shapes real                    # real layer shapes, GPU

``tests/test_cuda_kernels.py`` and ``tests/test_cuda_step.py`` run the tiny version in a
child process with the simulator on (it must be set before numba is imported, and the
rest of the test session imports numba normally); ``python -m tinyface bench --device
cuda`` runs the real-shape version on a GPU before timing anything.

Each check feeds both tiers the same float32 inputs and reports, per output tensor,
``err = max |cuda - cpu| / max |cpu|`` (the error relative to the tensor's scale) against
a tolerance that depends on how the two tiers compute it:

- ``exact`` (0): ReLU, max pooling, flatten, zero padding, the dropout mask: the same
  float32 operations in the same order, bit for bit;
- ``elementwise`` (1e-6): PReLU, the per-channel affine, average pooling, SGD: the same
  formula, possibly contracted into fused multiply-adds on the GPU (a rounding or two);
- ``reduction`` (1e-5): batch norm, losses, slope, scale and bias gradients: float64
  sums in another order (a tree instead of a loop), then rounded to float32;
- ``gemm`` (1e-4): conv and linear: float32 dot products summed in another order
  (tiles of 16 instead of the CPU's loop): error grows like sqrt(K) * 6e-8.
"""
import argparse
import contextlib
import json
import sys
import time

import numpy as np

TOL = {"exact": 0.0, "elementwise": 1e-6, "reduction": 1e-5, "gemm": 1e-4}

# the op checks (names are stable: the tests parametrize over them)
CHECK_NAMES = ["conv2d", "linear", "batchnorm", "relu", "prelu", "maxpool2d", "avgpool2d",
               "global_avgpool", "flatten", "channel_affine", "zero_pad", "dropout",
               "softmax_cross_entropy", "feature_regression", "distillation", "l2_normalize",
               "device_tensor", "sgd", "adam", "bad_input"]


def rel_err(got, want):
    """max |got - want| / max |want| (0 when both are all zeros)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    if got.size == 0:
        return 0.0
    diff = np.abs(got - want)
    nan_mismatch = np.isnan(got) != np.isnan(want)
    if nan_mismatch.any():
        return float("inf")
    diff = np.where(np.isnan(diff), 0.0, diff)
    scale = float(np.nanmax(np.abs(want))) if np.isfinite(want).any() else 1.0
    return float(diff.max() / scale) if scale > 0 else float(diff.max())


class Report:
    """Collects ``(check, case, tensor, err, tol, kind)`` rows."""

    def __init__(self):
        self.rows = []

    def add(self, check, case, tensor, got, want, kind):
        from tinyface.cuda.arrays import to_host
        err = rel_err(to_host(got), want)
        self.rows.append({"check": check, "case": case, "tensor": tensor, "err": err,
                          "tol": TOL[kind], "kind": kind, "ok": bool(err <= TOL[kind])})

    def failed(self, check=None):
        return [r for r in self.rows if not r["ok"] and (check is None or r["check"] == check)]

    def worst_by_check(self):
        """``{check: row}``: per check, the row whose error is largest relative to its
        tolerance (an exact check's nonzero error counts as the largest)."""
        return worst_by_check(self.rows)


def worst_by_check(rows):
    """``Report.worst_by_check`` on a list of row dicts (e.g. from a JSON result)."""
    worst = {}
    for r in rows:
        w = worst.get(r["check"])
        if w is None or r["err"] / max(r["tol"], 1e-30) > w["err"] / max(w["tol"], 1e-30):
            worst[r["check"]] = r
    return worst


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------------ op checks
def check_conv2d(rep, rng, cases):
    from tinyface import kernels
    from tinyface import cuda as tc
    from tinyface.cuda.arrays import to_device
    for (N, C, Co, H, W, k, s, p, bias) in cases:
        case = f"{N}x{C}x{H}x{W} -> {Co}, k{k} s{s} p{p}{'' if bias else ' no bias'}"
        kh, kw = (k, k) if isinstance(k, int) else k
        x, w = _f32(rng, N, C, H, W), _f32(rng, Co, C, kh, kw)
        b = _f32(rng, Co) if bias else None
        o1, c1 = kernels.conv2d_forward(x, w, b, s, p)
        o2, c2 = tc.conv2d_forward(to_device(x), to_device(w),
                                   to_device(b) if bias else None, s, p)
        rep.add("conv2d", case, "out", o2, o1, "gemm")
        g = _f32(rng, *o1.shape)
        r1 = kernels.conv2d_backward(g, c1)
        r2 = tc.conv2d_backward(to_device(g), c2)
        for name, a, bb in zip(("dx", "dw", "db"), r2, r1):
            if bb is not None:
                rep.add("conv2d", case, name, a, bb, "gemm")


def check_linear(rep, rng, cases):
    from tinyface import kernels
    from tinyface import cuda as tc
    from tinyface.cuda.arrays import to_device
    for (N, D_in, D_out, bias) in cases:
        case = f"{N}x{D_in} -> {D_out}{'' if bias else ' no bias'}"
        x, w = _f32(rng, N, D_in), _f32(rng, D_out, D_in)
        b = _f32(rng, D_out) if bias else None
        o1, c1 = kernels.linear_forward(x, w, b)
        o2, c2 = tc.linear_forward(to_device(x), to_device(w), to_device(b) if bias else None)
        rep.add("linear", case, "out", o2, o1, "gemm")
        g = _f32(rng, *o1.shape)
        for name, a, bb in zip(("dx", "dw", "db"), tc.linear_backward(to_device(g), c2),
                               kernels.linear_backward(g, c1)):
            if bb is not None:
                rep.add("linear", case, name, a, bb, "gemm")


def check_batchnorm(rep, rng, cases):
    from tinyface import kernels
    from tinyface import cuda as tc
    from tinyface.cuda.arrays import to_device
    for shape in cases:
        C = shape[1]
        for training in (True, False):
            case = f"{'x'.join(map(str, shape))} {'train' if training else 'eval'}"
            x = _f32(rng, *shape) * 2 + 0.5
            gamma, beta = _f32(rng, C), _f32(rng, C)
            rm, rv = _f32(rng, C) * 0.1, np.abs(_f32(rng, C)) + 0.5
            rm_d, rv_d = to_device(rm), to_device(rv)
            o1, c1 = kernels.batchnorm_forward(x, gamma, beta, rm, rv, 0.1, 1e-5, training)
            o2, c2 = tc.batchnorm_forward(to_device(x), to_device(gamma), to_device(beta),
                                          rm_d, rv_d, 0.1, 1e-5, training)
            rep.add("batchnorm", case, "out", o2, o1, "reduction")
            rep.add("batchnorm", case, "running_mean", rm_d, rm, "reduction")
            rep.add("batchnorm", case, "running_var", rv_d, rv, "reduction")
            g = _f32(rng, *shape)
            for name, a, bb in zip(("dx", "dgamma", "dbeta"),
                                   tc.batchnorm_backward(to_device(g), c2),
                                   kernels.batchnorm_backward(g, c1)):
                rep.add("batchnorm", case, name, a, bb, "reduction")


def _fwd_bwd_check(rep, rng, name, case, x, kind, args=()):
    """``name``'s forward on x and backward on a random dout, Numba CPU against CUDA
    (same extra ``args`` for both). x: a float32 host array. Returns the CPU output."""
    from tinyface import kernels
    from tinyface import cuda as tc
    from tinyface.cuda.arrays import to_device
    o1, c1 = getattr(kernels, name + "_forward")(x, *args)
    o2, c2 = getattr(tc, name + "_forward")(to_device(x), *args)
    rep.add(name, case, "out" if name != "l2_normalize" else "y", o2, o1, kind)
    g = _f32(rng, *o1.shape)
    rep.add(name, case, "dx", getattr(tc, name + "_backward")(to_device(g), c2),
            getattr(kernels, name + "_backward")(g, c1), kind)
    return o1


def check_relu(rep, rng, cases):
    for shape in cases:
        x = _f32(rng, *shape)
        x.flat[0] = 0.0                                           # the kink
        _fwd_bwd_check(rep, rng, "relu", "x".join(map(str, shape)), x, "exact")


def check_prelu(rep, rng, cases):
    from tinyface import kernels
    from tinyface import cuda as tc
    from tinyface.cuda.arrays import to_device
    for shape, nalpha in cases:
        case = f"{'x'.join(map(str, shape))}, {nalpha} slope(s)"
        x = _f32(rng, *shape)
        a = (np.abs(_f32(rng, nalpha)) * 0.3).astype(np.float32)
        o1, c1 = kernels.prelu_forward(x, a)
        o2, c2 = tc.prelu_forward(to_device(x), to_device(a))
        rep.add("prelu", case, "out", o2, o1, "elementwise")
        g = _f32(rng, *shape)
        (dx2, da2), (dx1, da1) = tc.prelu_backward(to_device(g), c2), kernels.prelu_backward(g, c1)
        rep.add("prelu", case, "dx", dx2, dx1, "elementwise")
        rep.add("prelu", case, "dalpha", da2, da1, "reduction")


def check_channel_affine(rep, rng, cases):
    from tinyface import kernels
    from tinyface import cuda as tc
    from tinyface.cuda.arrays import to_device
    for shape in cases:
        case = "x".join(map(str, shape))
        x, w, b = _f32(rng, *shape), _f32(rng, shape[1]), _f32(rng, shape[1])
        o1, c1 = kernels.channel_affine_forward(x, w, b)
        o2, c2 = tc.channel_affine_forward(to_device(x), to_device(w), to_device(b))
        rep.add("channel_affine", case, "out", o2, o1, "elementwise")
        g = _f32(rng, *shape)
        for name, kind, a, bb in zip(("dx", "dw", "db"), ("elementwise", "reduction", "reduction"),
                                     tc.channel_affine_backward(to_device(g), c2),
                                     kernels.channel_affine_backward(g, c1)):
            rep.add("channel_affine", case, name, a, bb, kind)


def check_zero_pad(rep, rng, cases):
    for shape, target in cases:
        _fwd_bwd_check(rep, rng, "zero_pad", f"{'x'.join(map(str, shape))} -> {target}",
                       _f32(rng, *shape), "exact", args=target)


def _pool_check(rep, rng, cases, op, kind):
    for shape, k, s, p in cases:
        x = _f32(rng, *shape)
        if op == "maxpool2d":
            x = np.round(x * 2) / 2                               # ties: first maximum wins
        _fwd_bwd_check(rep, rng, op, f"{'x'.join(map(str, shape))} k{k} s{s} p{p}", x, kind,
                       args=(k, s, p))


def check_maxpool2d(rep, rng, cases):
    _pool_check(rep, rng, cases, "maxpool2d", "exact")


def check_avgpool2d(rep, rng, cases):
    _pool_check(rep, rng, cases, "avgpool2d", "elementwise")


def check_global_avgpool(rep, rng, cases):
    for shape in cases:
        _fwd_bwd_check(rep, rng, "global_avgpool", "x".join(map(str, shape)), _f32(rng, *shape),
                       "elementwise")


def check_flatten(rep, rng, cases):
    for shape in cases:
        _fwd_bwd_check(rep, rng, "flatten", "x".join(map(str, shape)), _f32(rng, *shape),
                       "exact")


def check_dropout(rep, rng, cases):
    from tinyface import kernels
    from tinyface import cuda as tc
    from tinyface.cuda.arrays import to_device
    for shape, p, seed in cases:
        case = f"{'x'.join(map(str, shape))} p={p} seed={seed}"
        x = _f32(rng, *shape)
        o1, c1 = kernels.dropout_forward(x, p, True, seed)
        o2, c2 = tc.dropout_forward(to_device(x), p, True, seed)
        rep.add("dropout", case, "out (mask)", o2, o1, "exact")
        g = _f32(rng, *shape)
        rep.add("dropout", case, "dx", tc.dropout_backward(to_device(g), c2),
                kernels.dropout_backward(g, c1), "exact")
        o3, _ = tc.dropout_forward(to_device(x), p, False, seed)
        rep.add("dropout", case, "eval (identity)", o3, x, "exact")


def check_softmax_cross_entropy(rep, rng, cases):
    from tinyface import kernels
    from tinyface import cuda as tc
    from tinyface.cuda.arrays import to_device
    for N, K in cases:
        case = f"{N}x{K}"
        z = _f32(rng, N, K) * 3
        y = rng.integers(0, K, size=N)
        l1, d1 = kernels.softmax_cross_entropy_loss(z, y)
        l2, d2 = tc.softmax_cross_entropy_loss(to_device(z), y)
        rep.add("softmax_cross_entropy", case, "loss", np.array(l2), np.array(l1), "reduction")
        rep.add("softmax_cross_entropy", case, "dlogits", d2, d1, "reduction")


def check_feature_regression(rep, rng, cases):
    from tinyface import kernels
    from tinyface import cuda as tc
    from tinyface.cuda.arrays import to_device
    for N, D, weighted in cases:
        case = f"{N}x{D}{' weighted' if weighted else ''}"
        pr, tg = _f32(rng, N, D), _f32(rng, N, D)
        w = rng.random(N) if weighted else None
        l1, d1 = kernels.feature_regression_loss(pr, tg, w)
        l2, d2 = tc.feature_regression_loss(to_device(pr), tg, w)
        rep.add("feature_regression", case, "loss", np.array(l2), np.array(l1), "reduction")
        rep.add("feature_regression", case, "dpred", d2, d1, "reduction")


def check_distillation(rep, rng, cases):
    from tinyface import kernels
    from tinyface import cuda as tc
    from tinyface.cuda.arrays import to_device
    for N, K, T in cases:
        case = f"{N}x{K} T={T}"
        s, t = _f32(rng, N, K) * 2, _f32(rng, N, K) * 2
        l1, d1 = kernels.distillation_loss(s, t, T)
        l2, d2 = tc.distillation_loss(to_device(s), to_device(t), T)
        rep.add("distillation", case, "loss", np.array(l2), np.array(l1), "reduction")
        rep.add("distillation", case, "dstudent", d2, d1, "reduction")


def check_l2_normalize(rep, rng, cases):
    """Row-wise L2 normalisation, forward and backward (a zero row included), and the
    scalar multiply of DeviceTensor."""
    from tinyface.cuda.arrays import to_device
    for shape in cases:
        case = "x".join(map(str, shape))
        x = _f32(rng, *shape)
        x[0] = 0.0
        _fwd_bwd_check(rep, rng, "l2_normalize", case, x, "reduction")
        g = _f32(rng, *shape)
        rep.add("l2_normalize", case, "scale", 0.5 * to_device(g), 0.5 * g, "exact")


def check_device_tensor(rep, rng, cases):
    """``+=``, ``+``, ``fill``, ``all_finite``, ``t[...] =``: what layers and optimizers use."""
    from tinyface.cuda.arrays import to_device
    for shape in cases:
        case = "x".join(map(str, shape))
        a, b = _f32(rng, *shape), _f32(rng, *shape)
        da, db = to_device(a), to_device(b)
        rep.add("device_tensor", case, "a + b", da + db, a + b, "exact")
        da += db
        rep.add("device_tensor", case, "a += b", da, a + b, "exact")
        rep.add("device_tensor", case, "fill(0)", da.fill(0.0), np.zeros(shape), "exact")
        da[...] = b
        rep.add("device_tensor", case, "t[...] = host", da, b, "exact")
        bad = b.copy()
        bad.flat[-1] = np.inf
        flags = [to_device(b).all_finite(), to_device(bad).all_finite()]
        rep.add("device_tensor", case, "all_finite", np.array(flags, float),
                np.array([True, False], float), "exact")


def _three_steps(cpu, gpu, g, gd, rng):
    """Three steps of a CPU and a GPU optimizer on the same random gradients."""
    for _ in range(3):
        step_grad = _f32(rng, *g.shape)
        g[...] = step_grad
        gd[...] = step_grad
        cpu.step()
        gpu.step()


def check_sgd(rep, rng, cases):
    """Three DeviceSGD steps against SGD (first step, momentum, Nesterov, decay)."""
    from tinyface.cuda.arrays import to_device, zeros
    from tinyface.cuda.optim import DeviceSGD
    from tinyface.optim import SGD
    for shape, hyper in cases:
        case = f"{'x'.join(map(str, shape))} {hyper}"
        p, g = _f32(rng, *shape), np.zeros(shape, np.float32)
        pd, gd = to_device(p), zeros(shape)
        cpu, gpu = SGD([("w", p, g)], **hyper), DeviceSGD([("w", pd, gd)], **hyper)
        _three_steps(cpu, gpu, g, gd, rng)
        rep.add("sgd", case, "param", pd, p, "elementwise")
        if "momentum_buffer" in cpu.state["w"]:
            rep.add("sgd", case, "momentum_buffer", gpu.state["w"]["momentum_buffer"],
                    cpu.state["w"]["momentum_buffer"], "elementwise")
        sd = gpu.state_dict()
        again = DeviceSGD([("w", to_device(p), zeros(shape))], **hyper)
        again.load_state_dict(cpu.state_dict())
        rep.add("sgd", case, "state_dict round trip", np.array(sd["type"] == "SGD", float),
                np.array(1.0), "exact")


def check_adam(rep, rng, cases):
    """Three DeviceAdam / DeviceAdamW steps against Adam / AdamW, and the state dict
    round trip through the CPU class."""
    from tinyface.cuda.arrays import to_device, zeros
    from tinyface.cuda.optim import DeviceAdam, DeviceAdamW
    from tinyface.optim import Adam, AdamW
    for shape, decoupled, hyper in cases:
        cls_c, cls_g = (AdamW, DeviceAdamW) if decoupled else (Adam, DeviceAdam)
        case = f"{cls_c.__name__} {'x'.join(map(str, shape))} {hyper}"
        p, g = _f32(rng, *shape), np.zeros(shape, np.float32)
        pd, gd = to_device(p), zeros(shape)
        cpu, gpu = cls_c([("w", p, g)], **hyper), cls_g([("w", pd, gd)], **hyper)
        _three_steps(cpu, gpu, g, gd, rng)
        rep.add("adam", case, "param", pd, p, "elementwise")
        for key in ("exp_avg", "exp_avg_sq"):
            rep.add("adam", case, key, gpu.state["w"][key], cpu.state["w"][key], "elementwise")
        again = cls_g([("w", to_device(p), zeros(shape))], **hyper)
        again.load_state_dict(cpu.state_dict())
        same = (gpu.state_dict()["type"] == cls_c.__name__ and again.state["w"]["step"] == 3)
        rep.add("adam", case, "state_dict round trip", np.array(same, float), np.array(1.0),
                "exact")


def _outcome(fn, exc_type, text):
    """1.0 when ``fn()`` raises ``exc_type`` with ``text`` in a one-line message, else 0.0."""
    try:
        fn()
    except exc_type as e:
        msg = str(e)
        return float(text in msg and "\n" not in msg)
    except Exception:
        return 0.0
    return 0.0


def check_bad_input(rep, rng, cases):
    """Host arrays handed to GPU code and the reverse: converted (and counted), or,
    inside ``strict_transfers()``, refused with a message naming the explicit call."""
    from tinyface import kernels
    from tinyface import cuda as tc
    from tinyface.cuda.arrays import (HostDeviceMismatch, module_to, reset_transfer_counts,
                                      strict_transfers, to_device, transfer_counts, zeros)
    from tinyface.cuda.optim import DeviceSGD
    for shape in cases:
        case = "x".join(map(str, shape))
        x = _f32(rng, *shape)
        reset_transfer_counts()
        out, _ = tc.relu_forward(x)                               # host in: copied up
        rep.add("bad_input", case, "host x converted", out, kernels.relu_forward(x)[0], "exact")
        rep.add("bad_input", case, "... and counted",
                np.array(transfer_counts()["to_device"], float), np.array(1.0), "exact")
        expect = [
            ("strict: host x refused", lambda: tc.relu_forward(x), HostDeviceMismatch,
             "tinyface.cuda.to_device"),
            ("strict: np.asarray(gpu) refused", lambda: np.asarray(to_device(x)),
             HostDeviceMismatch, "copy_to_host()"),
        ]
        for name, fn, exc, text in expect:
            with strict_transfers():
                got = _outcome(fn, exc, text)
            rep.add("bad_input", case, name, np.array(got), np.array(1.0), "exact")
        host_w = np.zeros(3, np.float32)
        expect = [
            ("DeviceSGD on host params", lambda: DeviceSGD([("w", host_w, host_w)], lr=0.1),
             TypeError, "model.to('cuda')"),
            ("float64 GPU array refused", lambda: tc.relu_forward(to_device(x, np.float64)),
             TypeError, "float32"),
            ("unknown device", lambda: module_to(object(), "tpu"), ValueError, "'cuda' or 'cpu'"),
            ("shape mismatch", lambda: zeros(shape).__iadd__(zeros((1,))), ValueError, "differ"),
        ]
        for name, fn, exc, text in expect:
            rep.add("bad_input", case, name, np.array(_outcome(fn, exc, text)), np.array(1.0),
                    "exact")


# ---------------------------------------------------------------------- the shapes
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
    }


def real_cases():
    """The layer shapes of the reference student (batch 256) and teacher (batch 32),
    as ``python -m tinyface bench kernels`` times them on the CPU."""
    from tinyface.bench.networks import STUDENT_PLAN, TEACHER_PLAN
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
        globals()["check_" + name](rep, np.random.default_rng(seed), cases[name])
        if log:
            bad = rep.failed(name)
            log(f"  {name:22s} {'ok' if not bad else 'FAILED'} ({time.perf_counter() - t0:.1f} s)")
    return rep


# --------------------------------------------------------------- one training step
@contextlib.contextmanager
def cuda_ops():
    """Run the layers on the CUDA tier: ``set_backend("cuda")`` where the backend knows
    it, else every op overridden with its CUDA version (same effect)."""
    from tinyface import backend
    if "cuda" in backend.BACKENDS:
        previous = backend.set_backend("cuda")
        try:
            yield
        finally:
            backend.set_backend(previous)
        return
    import tinyface.cuda as tc
    names = [n for n in dir(tc) if n.endswith(("_forward", "_backward", "_loss"))]
    with backend.override_ops(**{n: getattr(tc, n) for n in names}):
        yield


def nn_device_ready():
    """True when ``tinyface.nn`` layers pass DeviceTensors through (no host copy)."""
    from tinyface.cuda.arrays import DeviceTensor, zeros
    from tinyface.nn.module import Module
    return isinstance(Module().check_input(zeros((2, 3)), ndim=2), DeviceTensor)


def step_spec(width=4, input_size=4, num_classes=5):
    """The student's spec (``tinyface.models.student_spec``: conv-BN-ReLU x2, max pool,
    x2, max pool, conv, global average pool, Linear + BatchNorm1d embedding, Linear
    classifier), with dropout 0.25 added so that every layer type runs, and its widths
    divided by 16 / ``width`` (4: 4-4-8-8-8, a 8-d embedding) for the simulator.
    ``width=16``, ``input_size=16``: the real student."""
    from tinyface.models import student_spec
    spec = student_spec(num_classes=num_classes, input_size=input_size)
    f = width / 16
    spec["stages"] = [s if s == "M" else max(1, int(s * f)) for s in spec["stages"]]
    spec["embedding_dim"] = max(1, int(spec["embedding_dim"] * f))
    spec["dropout"] = 0.25
    return spec


def step_check(steps=1, batch=4, width=4, input_size=4, seed=0, log=None):
    """The student (``step_spec``) trained for ``steps`` SGD steps (momentum 0.9, weight
    decay 5e-4) on the CPU and on the GPU, from the same weights and batch.

    Returns a JSON-able dict: per-step losses on both tiers, per-tensor errors of the
    logits, updated weights and running statistics, and the implicit host <-> device
    copies the GPU steps made (``model_transfers``: forward, backward and SGD step;
    ``loss_transfers``: inside ``tinyface.losses``)."""
    from tinyface import losses
    from tinyface.backend import set_backend
    from tinyface.cuda.arrays import module_to, reset_transfer_counts, to_device, to_host, \
        transfer_counts
    from tinyface.cuda.optim import DeviceSGD
    from tinyface.models import build_model
    from tinyface.optim import SGD

    spec = step_spec(width, input_size)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, input_size, input_size)).astype(np.float32)
    labels = rng.integers(0, spec["num_classes"], size=batch)
    hyper = dict(lr=0.1, momentum=0.9, weight_decay=5e-4)

    cpu = build_model(spec, seed=seed).train()
    gpu = module_to(build_model(spec, seed=seed).train(), "cuda")
    set_backend("numba")
    opt_c = SGD(cpu.parameters_and_grads(), **hyper)
    out = {"spec": spec, "batch": batch, "steps": steps, "loss_cpu": [], "loss_gpu": [],
           "model_transfers": [], "loss_transfers": [], "seconds_gpu": 0.0}
    for _ in range(steps):
        opt_c.zero_grad()
        logits_c = cpu.forward(x)
        loss, dlogits = losses.softmax_cross_entropy_loss(logits_c, labels)
        cpu.backward(dlogits)
        opt_c.step()
        out["loss_cpu"].append(loss)

    opt_g = DeviceSGD(gpu.parameters_and_grads(), **hyper)
    t0 = time.perf_counter()
    with cuda_ops():
        x_d = to_device(x)                                      # the batch goes up, explicitly
        for _ in range(steps):
            reset_transfer_counts()
            opt_g.zero_grad()
            logits_g = gpu.forward(x_d)
            moved = transfer_counts()
            loss, dlogits = losses.softmax_cross_entropy_loss(logits_g, labels)
            after_loss = transfer_counts()
            gpu.backward(dlogits)
            opt_g.step()
            end = transfer_counts()
            out["loss_gpu"].append(loss)
            out["loss_transfers"].append(sum(after_loss.values()) - sum(moved.values()))
            out["model_transfers"].append(sum(end.values()) - out["loss_transfers"][-1])
    out["seconds_gpu"] = time.perf_counter() - t0
    rep = Report()
    rep.add("step", "logits", "last step", logits_g, logits_c, "gemm")
    for (name, pc), (_, pg) in zip(cpu.named_parameters(), gpu.named_parameters()):
        rep.add("step", "param", name, to_host(pg), pc, "gemm")
    for (name, bc), (_, bg) in zip(cpu.named_buffers(), gpu.named_buffers()):
        rep.add("step", "buffer", name, to_host(bg), bc, "gemm")
    out["loss_err"] = max(rel_err(a, b) for a, b in zip(out["loss_gpu"], out["loss_cpu"]))
    out["rows"] = rep.rows
    out["nn_device_ready"] = nn_device_ready()
    if log:
        log(f"  step: losses cpu {out['loss_cpu']} gpu {out['loss_gpu']}; "
            f"worst tensor err {max(r['err'] for r in rep.rows):.2e}; implicit copies per "
            f"step: model {out['model_transfers']}, loss {out['loss_transfers']}")
    return out


# ------------------------------------------------------------ in a child process
def run_in_simulator(what="kernels", timeout=600, extra_args=()):
    """Run this self-check under numba's CUDA simulator in a child process and return
    its JSON result (plus ``returncode``, ``stderr`` and ``seconds``).

    A child process, because ``NUMBA_ENABLE_CUDASIM`` is read once, when numba is first
    imported: the caller (a pytest session) has numba imported normally.
    """
    import os
    import subprocess
    import tempfile
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "result.json")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "tinyface.checks.ops", what,
                               "--json", path, *extra_args], env=env, capture_output=True,
                              text=True, timeout=timeout)
        result = {}
        if os.path.exists(path):
            with open(path) as f:
                result = json.load(f)
    result.update(returncode=proc.returncode, stderr=proc.stderr,
                  seconds=time.perf_counter() - t0)
    return result


# ------------------------------------------------------------------------------ CLI
def format_rows(rows):
    lines = [f"{'check':22s} {'case':34s} {'tensor':22s} {'err':>9s} {'tol':>7s}  ok"]
    for r in rows:
        lines.append(f"{r['check']:22s} {r['case'][:34]:34s} {r['tensor'][:22]:22s} "
                     f"{r['err']:9.2e} {r['tol']:7.0e}  {'yes' if r['ok'] else 'NO'}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tinyface.checks.ops",
                                 description="Compare the CUDA tier with the Numba CPU tier.")
    ap.add_argument("what", nargs="?", default="all", choices=["kernels", "step", "all"])
    ap.add_argument("--shapes", default="tiny", choices=["tiny", "real"])
    ap.add_argument("--only", nargs="*", help="op checks to run (default: all)")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON ('-': stdout)")
    args = ap.parse_args(argv)

    from tinyface.cuda import cuda_available
    ok, reason = cuda_available()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if not ok:
        log(f"CUDA is not available: {reason}")
        return 2
    log(f"device: {reason}")
    result, failed = {"device": reason}, 0
    t0 = time.perf_counter()
    if args.what in ("kernels", "all"):
        rep = run_op_checks(args.shapes, args.only, log=log)
        result["rows"] = rep.rows
        failed += len(rep.failed())
        if not args.json:
            print(format_rows(rep.rows))
    if args.what in ("step", "all"):
        result["step"] = step_check(log=log)
        failed += sum(not r["ok"] for r in result["step"]["rows"])
        failed += result["step"]["loss_err"] > TOL["reduction"]
    result["seconds"] = time.perf_counter() - t0
    result["launches"] = launch_signatures()
    if args.json:
        text = json.dumps(result, default=str)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text)
    log(f"{'all checks passed' if not failed else f'{failed} check(s) FAILED'} "
        f"in {result['seconds']:.1f} s")
    return 1 if failed else 0


# ------------------------------------------------- which signatures the kernels get
_LAUNCHED = set()


def record_launches():
    """Under the simulator: remember every kernel launch's argument types, so that the
    tests can check that the PTX test compiles exactly the signatures the ops use."""
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
    import numba
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


if __name__ == "__main__":
    from tinyface.cuda.launch import SIMULATOR
    if SIMULATOR:
        record_launches()
        # the simulator's block manager polls its threads: hand the GIL over more often
        # than every 5 ms (2x faster here)
        sys.setswitchinterval(5e-4)
    raise SystemExit(main())
