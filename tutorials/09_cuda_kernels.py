"""Tutorial 9: the same kernels with numba.cuda, on a GPU or in numba's simulator.

Every op of the network (conv, linear, batch norm, activations, pooling, dropout, the
losses, the optimizers) has a third tier in ``tinyface.cuda``: CUDA kernels written
with ``numba.cuda``, reached with ``tinyface.backend.set_backend("cuda")``. Under it the
weights, activations, gradients and optimizer state stay in GPU memory; a training
step copies one batch up and a few numbers down. The paper reports its student at
9,433 faces/s on a GPU; this tutorial checks the kernels and, on a real GPU, measures
ours.

Steps:
  1. a tiled GEMM (the product under conv and linear) on a 3x5 @ 5x4 example checkable
     with NumPy, and its launch geometry;
  2. every CUDA op against the Numba CPU kernel at small shapes, with the tolerance
     each is held to;
  3. one student training step (forward, backward, SGD) on both tiers: the same loss
     and weights, and no implicit host <-> device copy;
  4. on a real GPU only: the student's inference faces/s against the batch size.

Without an NVIDIA driver it runs in numba's CUDA simulator (one Python thread per GPU
thread: correct, slow, and no timings), which is what CI does.

    python tutorials/09_cuda_kernels.py            # full: larger check shapes, more batch sizes
    python tutorials/09_cuda_kernels.py --quick    # tiny shapes, about half a minute

Modes: the same in both, with --quick using fewer shapes and batch sizes.
"""
from tinyface.cuda import simulate_unless_gpu

MODE = simulate_unless_gpu()          # before numba is imported: the simulator if no GPU

# everything below imports numba (and numba.cuda): after the simulator switch
import json                           # noqa: E402
import sys                            # noqa: E402

import matplotlib                     # noqa: E402
import numpy as np                    # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt       # noqa: E402

from tinyface import tutorial         # noqa: E402
from tinyface.backend import set_backend  # noqa: E402
from tinyface.checks import TOL, run_op_checks, step_check  # noqa: E402
from tinyface.cuda import (TILE, TPB, batched_matmul, blocks, cuda_available,  # noqa: E402
                           gpu_ms, to_device, to_host, zeros)
from tinyface.models import build_student  # noqa: E402


def gemm_toy(t):
    """Step 1: C = A @ B through the tiled kernel, checked against NumPy."""
    t.section("1. a tiled GEMM checkable by hand")
    A = np.arange(15, dtype=np.float32).reshape(1, 3, 5) / 10      # (1, 3, 5)
    B = np.ones((1, 5, 4), np.float32)                              # (1, 5, 4)
    B[0, :, 1] = np.arange(5)
    C = zeros((1, 3, 4))                                            # (1, 3, 4)
    batched_matmul(to_device(A).data, to_device(B).data, C.data)
    got = to_host(C)[0]
    print(f"A (3x5) =\n{A[0]}\nB (5x4) =\n{B[0]}\nC = A @ B =\n{got}")
    print(f"row 0 of C, column 0 by hand: 0.0+0.1+0.2+0.3+0.4 = {A[0, 0].sum():.1f}")
    print(f"grid: ({blocks(4, TILE)}, {blocks(3, TILE)}, 1) blocks of {TILE}x{TILE} threads "
          f"(one thread per element of C; TILE={TILE}); 1-D kernels use {TPB} threads per block")
    t.check("max |C - A @ B|", float(np.abs(got - A[0] @ B[0]).max()), below=1e-6)


def op_checks(t, quick):
    """Step 2: every CUDA op against the Numba CPU kernel."""
    t.section("2. every CUDA op against the Numba CPU kernel")
    shapes = "real" if (MODE == "gpu" and not quick) else "tiny"
    print("shapes: " + ("the real student and teacher layers" if shapes == "real"
                        else "tiny (every code path, a few hundred threads each)"))
    rep = run_op_checks(shapes, seed=t.args.seed)
    worst = rep.worst_by_check()             # per op: the row closest to its tolerance
    for name, r in worst.items():
        label = f"{name:22s} worst relative error ({r['tensor']})"
        if r["tol"] > 0:
            t.check(label, r["err"], below=r["tol"])
        else:                                   # integer-valued or copied: bit for bit
            t.check(label, r["err"], equals=0.0)
    return worst


def plot_errors(t, worst):
    names = list(worst)
    errs = [max(worst[n]["err"], 1e-12) for n in names]
    tols = [max(worst[n]["tol"], 1e-12) for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(names))
    ax.bar(x, errs, color="tab:blue", label="CUDA vs CPU (worst)")
    ax.scatter(x, tols, marker="_", s=300, color="tab:red", label="tolerance", zorder=3)
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("relative error (1e-12 = exact)")
    ax.set_title(f"CUDA tier against the CPU kernels ({MODE})", fontsize=9)
    ax.legend(fontsize=7)
    t.save_figure(fig, "cuda_vs_cpu_errors.png", dpi=90)


def training_step(t):
    """Step 3: one student step on both tiers."""
    t.section("3. one training step on the GPU against the CPU")
    step = step_check(steps=1, seed=t.args.seed)
    print(f"student (shrunk for the simulator: {step['spec']['stages']}), batch {step['batch']}: "
          f"loss cpu {step['loss_cpu'][0]:.6f}, gpu {step['loss_gpu'][0]:.6f}")
    t.check("loss relative error", step["loss_err"], below=TOL["reduction"])
    worst = max(step["rows"], key=lambda r: r["err"])
    t.check(f"worst tensor error after the step ({worst['tensor']})", worst["err"],
            below=TOL["gemm"])
    t.check("implicit host<->device copies in the step", sum(step["model_transfers"]), equals=0)


def throughput(t, quick):
    """Step 4 (real GPU): student inference faces/s against the batch size."""

    t.section("4. student inference on the GPU: faces/s against the batch size")
    previous = set_backend("cuda")
    try:
        rng = np.random.default_rng(t.args.seed)
        model = build_student(num_classes=158, seed=t.args.seed)
        model.to("cuda").eval()
        sizes = [1, 16, 256, 1024] if quick else [1, 4, 16, 64, 256, 1024, 4096]
        rates = {}
        for b in sizes:
            x = to_device(rng.standard_normal((b, 3, 16, 16)))
            ms = gpu_ms(lambda: model.forward(x), reps=10 if b >= 1024 else 20)
            rates[b] = b / ms * 1e3
            print(f"  batch {b:5d}: {ms:8.3f} ms  {rates[b]:12,.0f} faces/s")
    finally:
        set_backend(previous)
    t.check("faces/s at batch 1,024 (the paper's GPU: 9,433)", rates[1024], above=9433.0)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.loglog(list(rates), list(rates.values()), "o-", label="tinyface student (numba.cuda)")
    ax.axhline(9433, color="tab:red", ls="--", lw=1, label="paper, GPU: 9,433 faces/s")
    ax.set_xlabel("batch size")
    ax.set_ylabel("faces / s")
    ax.set_title("student inference on the GPU", fontsize=9)
    ax.legend(fontsize=7)
    t.save_figure(fig, "gpu_faces_per_s.png", dpi=90)
    with open(t.path("gpu_faces_per_s.json"), "w") as f:
        json.dump({str(k): v for k, v in rates.items()}, f, indent=1)
    t.saved(t.path("gpu_faces_per_s.json"))
    return rates


def main():
    args = tutorial.parse_args(9, __doc__)
    if MODE == "simulator":
        sys.setswitchinterval(5e-4)   # the simulator's threads hand the GIL over: 2x faster
    t = tutorial.Tutorial(args, title="09: the CUDA kernels")
    ok, reason = cuda_available()
    print(f"CUDA tier: {reason}")
    if not ok:
        raise SystemExit(f"cannot run the CUDA tier here: {reason}")
    gemm_toy(t)
    worst = op_checks(t, args.quick)
    plot_errors(t, worst)
    training_step(t)
    rates = None
    if MODE == "gpu":
        rates = throughput(t, args.quick)
    else:
        t.section("4. timings")
        print("skipped: the simulator runs each GPU thread as a Python thread, so it cannot "
              "time anything; run this on a machine with an NVIDIA GPU")
    summary = [
        "tinyface.cuda holds a CUDA kernel for every op, reached with set_backend('cuda'); "
        "model.to('cuda') keeps weights, gradients and optimizer state on the GPU",
        f"every op matched the Numba CPU kernel within its tolerance ({len(worst)} op checks, "
        f"{MODE})",
        "a whole training step gave the CPU's loss and weights, with no implicit copy",
    ]
    if rates:
        summary.append(f"student inference: {rates[1]:,.0f} faces/s at batch 1 (bound by "
                       f"Python's launch cost), {rates[1024]:,.0f} at batch 1,024")
    t.finish(summary=summary, exercises=[
        "Change TILE in tinyface/cuda/launch.py to 8 and 32, rerun step 2 and "
        "`python -m tinyface bench --device cuda` on a GPU: which layers get faster, and why "
        "does 32 need more shared memory per block?",
        "The batch-1 student is launch-bound: count the kernel launches of one forward pass "
        "(hint: wrap numba's dispatcher, as tinyface.checks.launches.record_launches does) and estimate the "
        "faces/s a single fused kernel could reach.",
        "Write a CUDA kernel for PReLU's slope gradient that uses cuda.atomic.add instead of "
        "the two-pass sum in tinyface/cuda/reduce.py, and check it against the CPU kernel; "
        "is it still bit-for-bit repeatable?",
    ])


if __name__ == "__main__":
    main()
