"""What the layers and the training loop use besides the ops: ``DeviceTensor``
arithmetic, the device optimizers against their CPU classes (SGD, Adam, AdamW, and
their state dicts), and the handling of host arrays handed to GPU code (converted and
counted, or refused inside ``strict_transfers()``)."""
import numpy as np

from tinyface import cuda as tc
from tinyface import kernels
from tinyface.checks.report import normal_f32
from tinyface.cuda.arrays import (HostDeviceMismatch, module_to, reset_transfer_counts,
                                  strict_transfers, to_device, transfer_counts, zeros)
from tinyface.cuda.optim import DeviceAdam, DeviceAdamW, DeviceSGD
from tinyface.optim import SGD, Adam, AdamW


def check_device_tensor(rep, rng, cases):
    """``+=``, ``+``, ``fill``, ``all_finite``, ``t[...] =``: what layers and optimizers use."""
    for shape in cases:
        case = "x".join(map(str, shape))
        a, b = normal_f32(rng, *shape), normal_f32(rng, *shape)
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
        step_grad = normal_f32(rng, *g.shape)
        g[...] = step_grad
        gd[...] = step_grad
        cpu.step()
        gpu.step()


def check_sgd(rep, rng, cases):
    """Three DeviceSGD steps against SGD (first step, momentum, Nesterov, decay)."""
    for shape, hyper in cases:
        case = f"{'x'.join(map(str, shape))} {hyper}"
        p, g = normal_f32(rng, *shape), np.zeros(shape, np.float32)
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
    for shape, decoupled, hyper in cases:
        cls_c, cls_g = (AdamW, DeviceAdamW) if decoupled else (Adam, DeviceAdam)
        case = f"{cls_c.__name__} {'x'.join(map(str, shape))} {hyper}"
        p, g = normal_f32(rng, *shape), np.zeros(shape, np.float32)
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
    for shape in cases:
        case = "x".join(map(str, shape))
        x = normal_f32(rng, *shape)
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
