"""``python -m tinyface bench --device cuda``: the GPU check, then the GPU's speed.

1. **Correct first.** Every CUDA op, forward and backward, against the Numba CPU
   kernel at the real layer shapes (the reference student at batch 256 and teacher at
   batch 32, as ``bench kernels`` uses), then two training steps of the real student on
   both tiers (``tinyface.checks``). Nothing is timed if a check fails.
2. **Then fast.** Per-op times with CUDA events (median of ``reps``, after warm-up, so
   JIT compilation is never timed), in GFLOP/s for conv and linear and GB/s for the
   rest; the student's inference faces/s at batch 1 and 1,024 (the aim on a data-centre
   GPU: >= 100,000 at batch 1,024) and training-step faces/s for the student and teacher.
3. A table (``format_report``).

Event times cover what the GPU stream sees between the two events, launch gaps
included: at batch 1 the student is bound by Python's per-kernel launch cost, not by
the GPU. The whole check, JIT included, takes about a minute or two on an H100.

Without a GPU ``run_cuda_bench`` returns ``{"available": False, "reason": ...}`` (one
line, said by the CLI): the simulator cannot time anything, and correctness is carried
by ``tests/test_cuda_kernels.py``, ``tests/test_cuda_step.py`` (simulator) and
``tests/test_cuda_ptx.py`` (PTX for sm_90).
"""
import time
import warnings

import numpy as np
from numba.core.errors import NumbaPerformanceWarning

import tinyface.cuda as tc
from tinyface import losses, nn
from tinyface.bench.kernels import _describe, layer_flops
from tinyface.models.bench_nets import reference_student, reference_teacher
from tinyface.checks import TOL, cuda_ops, format_rows, run_op_checks, step_check, worst_by_check
from tinyface.cuda import cuda_available, simulator_enabled
from tinyface.cuda.launch import gpu_ms
from tinyface.cuda.arrays import module_to, reset_transfer_counts, to_device, transfer_counts
from tinyface.cuda.optim import DeviceSGD
from tinyface.models import build_student, build_teacher

INFER_AIM = 100_000          # student faces/s at batch 1,024 on a data-centre GPU


def _op_pair(layer, x):
    """``(forward(), backward(dout, cache))`` closures calling ``layer``'s CUDA op directly
    on device tensors (no layer bookkeeping), or None for a layer without an op."""
    P, B = layer.params, layer.buffers
    if isinstance(layer, nn.Conv2d):
        return (lambda: tc.conv2d_forward(x, P["weight"], P.get("bias"), layer.stride, layer.padding),
                tc.conv2d_backward)
    if isinstance(layer, (nn.BatchNorm2d, nn.BatchNorm1d)):
        return (lambda: tc.batchnorm_forward(x, P["weight"], P["bias"], B["running_mean"],
                                             B["running_var"], layer.momentum, layer.eps, True),
                tc.batchnorm_backward)
    if isinstance(layer, nn.ReLU):
        return (lambda: tc.relu_forward(x)), tc.relu_backward
    if isinstance(layer, nn.PReLU):
        return (lambda: tc.prelu_forward(x, P["weight"])), tc.prelu_backward
    if isinstance(layer, nn.MaxPool2d):
        return (lambda: tc.maxpool2d_forward(x, layer.kernel_size, layer.stride, layer.padding),
                tc.maxpool2d_backward)
    if isinstance(layer, nn.AvgPool2d):
        return (lambda: tc.avgpool2d_forward(x, layer.kernel_size, layer.stride, layer.padding),
                tc.avgpool2d_backward)
    if isinstance(layer, nn.GlobalAvgPool2d):
        return (lambda: tc.global_avgpool_forward(x)), tc.global_avgpool_backward
    if isinstance(layer, nn.Linear):
        return (lambda: tc.linear_forward(x, P["weight"], P.get("bias"))), tc.linear_backward
    return None


def time_layers(model, x_host, reps, label, log):
    """Per-op GPU times for each distinct layer of a ``Sequential`` (train mode)."""
    module_to(model, "cuda")
    x = to_device(x_host)
    rows, seen = [], set()
    for layer in model.children():
        pair = _op_pair(layer, x)
        if pair is None:
            continue
        fwd, bwd = pair
        y, cache = fwd()
        key = (_describe(layer), x.shape)
        if key not in seen:
            seen.add(key)
            dout = to_device(np.random.default_rng(0).standard_normal(y.shape))
            flops = layer_flops(layer, x.shape, y.shape)
            nbytes = {"forward": 4.0 * (x.size + y.size), "backward": 4.0 * (2 * x.size + y.size)}
            for name, work, fn in (("forward", 1.0, fwd), ("backward", 2.0, lambda: bwd(dout, cache))):
                ms = gpu_ms(fn, reps=reps)
                gf = flops * work / ms / 1e6 if flops else None
                rows.append(dict(net=label, layer=key[0], shape=list(x.shape), pass_=name, ms=ms,
                                 gflops=gf, gbs=nbytes[name] / ms / 1e6))
        x = y
    log(f"  {label}: {len(rows)} timings")
    return rows


def throughput(reps, seed, log):
    """Faces/s of the student (inference at batch 1 and 1,024, a training step at 256)
    and the teacher (a training step at batch 64), the models on the GPU."""
    rng = np.random.default_rng(seed)
    out = {}
    with cuda_ops():
        student = module_to(build_student(num_classes=158, seed=seed), "cuda").eval()
        for batch in (1, 1024):
            x = to_device(rng.standard_normal((batch, 3, 16, 16)))
            ms = gpu_ms(lambda: student.forward(x), reps=max(reps, 20 if batch == 1 else 5))
            out[f"student_infer_b{batch}"] = batch / ms * 1e3
        for name, model, batch, size in (
                ("student", student, 256, 16),
                ("teacher", module_to(build_teacher(num_classes=158, seed=seed), "cuda"), 64, 64)):
            model.train()
            opt = DeviceSGD(model.parameters_and_grads(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            x = to_device(rng.standard_normal((batch, 3, size, size)))
            labels = to_device(rng.integers(0, 158, size=batch), dtype=np.int64)

            def step():
                opt.zero_grad()
                _, dlogits = losses.softmax_cross_entropy_loss(model.forward(x), labels)
                model.backward(dlogits)
                opt.step()

            reset_transfer_counts()
            step()
            out[f"{name}_step_transfers"] = sum(transfer_counts().values())
            ms = gpu_ms(step, reps=max(3, reps // 2))
            out[f"{name}_train_b{batch}"] = batch / ms * 1e3
            log(f"  {name} training step, batch {batch}: {out[f'{name}_train_b{batch}']:,.0f} faces/s")
    return out


def run_cuda_bench(reps=20, quick=False, seed=0, log=print):
    """The GPU check: correctness at real shapes, per-op timings, faces/s.

    Returns a JSON-able dict; ``{"available": False, "reason": ...}`` without a GPU
    (or under the simulator, which cannot time anything), and ``"passed": False`` (and
    no timings) when a correctness check fails.
    """
    with warnings.catch_warnings():
        # per-channel kernels on small layers launch a block or two on purpose
        warnings.simplefilter("ignore", NumbaPerformanceWarning)
        return _run(reps, quick, seed, log)


def _run(reps, quick, seed, log):
    t0 = time.perf_counter()
    ok, reason = cuda_available()
    if not ok:
        return {"available": False, "reason": f"no GPU: {reason}. The simulator and PTX tests "
                "carry correctness (python -m pytest tests/test_cuda_kernels.py "
                "tests/test_cuda_step.py tests/test_cuda_ptx.py)"}
    if simulator_enabled():
        return {"available": False, "reason": "the CUDA simulator runs every GPU thread in "
                "Python and cannot time kernels: unset NUMBA_ENABLE_CUDASIM on a GPU machine, "
                "or time the CPU with python -m tinyface bench kernels. Correctness under the "
                "simulator: python -m pytest tests/test_cuda_kernels.py tests/test_cuda_step.py"}
    log(f"device: {reason}")
    log("1/3 correctness: every CUDA op against the Numba CPU kernel at the real layer shapes ...")
    rep = run_op_checks("real", log=log)
    step = step_check(steps=2, batch=64, width=16, input_size=16, seed=seed, log=log)
    failed = rep.failed() + [r for r in step["rows"] if not r["ok"]]
    result = {"available": True, "device": reason, "checks": rep.rows, "step": step,
              "passed": not failed and step["loss_err"] <= TOL["reduction"]}
    if not result["passed"]:
        log(f"{len(failed)} check(s) failed: no timings")
        result["seconds"] = time.perf_counter() - t0
        return result
    log("2/3 per-op timings (CUDA events) ...")
    rng = np.random.default_rng(seed)
    rows = time_layers(reference_student(seed=seed),
                       rng.standard_normal((256, 3, 16, 16)).astype(np.float32), reps, "student", log)
    if not quick:
        rows += time_layers(reference_teacher(seed=seed),
                            rng.standard_normal((32, 3, 64, 64)).astype(np.float32),
                            max(5, reps // 2), "teacher", log)
    result["layers"] = rows
    log("3/3 faces/s ...")
    result["throughput"] = throughput(reps, seed, log)
    result["seconds"] = time.perf_counter() - t0
    return result


def format_report(result):
    """Markdown tables of a ``run_cuda_bench`` result (or its one-line reason)."""
    if not result.get("available"):
        return f"CUDA bench skipped: {result['reason']}"
    lines = [f"device: {result['device']}", ""]
    bad = [r for r in result["checks"] + result["step"]["rows"] if not r["ok"]]
    worst = worst_by_check(result["checks"])
    lines += ["| op (real shapes) | worst err | its tolerance |", "|---|---:|---:|"]
    lines += [f"| {k} | {r['err']:.1e} | {r['tol']:.0e} |" for k, r in worst.items()]
    s = result["step"]
    lines += ["", f"student training steps (batch {s['batch']}): loss cpu {s['loss_cpu']}, "
                  f"gpu {s['loss_gpu']}; implicit host<->device copies per step: "
                  f"{s['model_transfers']} (model), {s['loss_transfers']} (loss)"]
    if bad:
        lines += ["", "FAILED checks:", format_rows(bad)]
        return "\n".join(lines)
    lines += ["", "| net | layer | input | pass | GPU ms | GFLOP/s | GB/s |",
              "|---|---|---|---|---:|---:|---:|"]
    for r in result["layers"]:
        gf = f"{r['gflops']:.0f}" if r["gflops"] else "-"
        lines.append(f"| {r['net']} | {r['layer']} | {'x'.join(map(str, r['shape']))} | "
                     f"{r['pass_']} | {r['ms']:.3f} | {gf} | {r['gbs']:.0f} |")
    t = result["throughput"]
    met = "yes" if t["student_infer_b1024"] >= INFER_AIM else "no"
    lines += ["", "| model | faces/s | note |", "|---|---:|---|",
              f"| student inference, batch 1 | {t['student_infer_b1']:,.0f} | launch-bound |",
              f"| student inference, batch 1,024 | {t['student_infer_b1024']:,.0f} | "
              f"aim >= {INFER_AIM:,}: {met} |",
              f"| student training step, batch 256 | {t['student_train_b256']:,.0f} | "
              f"{t['student_step_transfers']} implicit copies/step |",
              f"| teacher training step, batch 64 | {t['teacher_train_b64']:,.0f} | "
              f"{t['teacher_step_transfers']} implicit copies/step |",
              "", f"whole check: {result['seconds']:.0f} s (JIT included)"]
    return "\n".join(lines)
