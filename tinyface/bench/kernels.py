"""``python -m tinyface bench kernels``: every op at the real layer shapes, then the student.

For each layer of the reference student (batch 256) and teacher (batch 32) it times
the forward and the backward pass of the Numba tier and of the NumPy reference, and
reports the median time, GFLOP/s (conv and linear) or GB/s (memory-bound ops), the
speed-up over the reference, and the fraction of this machine's sgemm peak measured
in the same run. First it names the CPU (model, cores, the SIMD width numba compiles
for, L1d and L2) and times the two hand-written GEMMs against NumPy's sgemm at n^3;
then it reports the student's faces/s, and measures the threading trap (numba's
threads against BLAS's threads).
"""
import time

import numba
import numpy as np

from tinyface import losses, nn, reference, vectors
from tinyface.backend import override_ops, set_backend
from tinyface.models.bench_nets import reference_student, reference_teacher
from tinyface.bench.timing import let_blas_threads_sleep, median_seconds, sgemm_peak_gflops
from tinyface.kernels import threading as kthreading
from tinyface.kernels.gemm import matmul
from tinyface.kernels.gemm_blocked import gemm_blocked
from tinyface.models import FusedNet, build_student, build_teacher
from tinyface.optim import SGD


def layer_flops(layer, x_shape, out_shape):
    """Multiply-adds x 2 of one forward pass, or None for memory-bound layers."""
    if isinstance(layer, nn.Conv2d):
        cin, (kh, kw) = layer.in_channels, layer.kernel_size
        return 2.0 * np.prod(out_shape) * cin * kh * kw
    if isinstance(layer, nn.Linear):
        return 2.0 * out_shape[0] * layer.in_features * layer.out_features
    return None


def _describe(layer):
    return repr(layer).split("(")[0] if not isinstance(layer, (nn.Conv2d, nn.Linear)) else (
        f"Conv2d {layer.in_channels}->{layer.out_channels} k{layer.kernel_size[0]}"
        if isinstance(layer, nn.Conv2d) else f"Linear {layer.in_features}->{layer.out_features}")


def bench_layers(model, x, reps, ref_budget, peak, label):
    """Time each layer of ``model`` (train mode) on the activations ``x`` produces."""
    rows, seen = [], set()
    model.train()
    for layer in model.children():
        y = layer.forward(x)
        key = (_describe(layer), x.shape)
        if key not in seen:
            seen.add(key)
            dout = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
            flops = layer_flops(layer, x.shape, y.shape)
            nbytes = {"forward": 4.0 * (x.size + y.size), "backward": 4.0 * (2 * x.size + y.size)}
            for name, work in (("forward", 1.0), ("backward", 2.0)):
                times = {}
                for tier, budget in (("numba", None), ("numpy", ref_budget)):
                    set_backend(tier)
                    layer.forward(x)
                    fn = (lambda: layer.forward(x)) if name == "forward" else (lambda: layer.backward(dout))
                    times[tier] = median_seconds(fn, reps=reps if tier == "numba" else 3,
                                                 warmup=1, max_seconds=budget)
                set_backend("numba")
                let_blas_threads_sleep()    # the reference may have woken BLAS's threads
                t = times["numba"]
                gf = flops * work / t / 1e9 if flops else None
                rows.append(dict(net=label, layer=key[0], shape=list(x.shape), pass_=name,
                                 ms=t * 1e3, gflops=gf, gbs=nbytes[name] / t / 1e9,
                                 ref_ms=times["numpy"] * 1e3, speedup=times["numpy"] / t,
                                 peak_frac=(gf / peak) if gf else None))
        layer.forward(x)
        x = y
    set_backend("numba")
    return rows


def student_throughput(reps, seed):
    """Faces/s of the reference student: inference at batch 1 and 256, training at 256."""
    rng = np.random.default_rng(seed)
    model = reference_student(seed=seed)
    x256 = rng.standard_normal((256, 3, 16, 16)).astype(np.float32)
    x1 = x256[:1].copy()
    labels = rng.integers(0, 128, size=256)
    model.eval()
    t1 = median_seconds(lambda: model.forward(x1), reps=max(50, reps * 10), warmup=3)
    t256 = median_seconds(lambda: model.forward(x256), reps=reps, warmup=2)
    model.train()
    opt = SGD(model.parameters_and_grads(), lr=0.01, momentum=0.9)

    def train_step():
        opt.zero_grad()
        logits = model.forward(x256)         # the 128-d output serves as 128-class logits
        _, dlogits = losses.softmax_cross_entropy_loss(logits, labels)
        model.backward(dlogits)
        opt.step()

    tt = median_seconds(train_step, reps=reps, warmup=2)
    return {"infer_b1": 1 / t1, "infer_b256": 256 / t256, "train_b256": 256 / tt}


def zoo_throughput(reps, seed, quick=False):
    """Inference faces/s of the deployable student (158 identities) and the teacher."""
    rng = np.random.default_rng(seed)
    student = build_student(158, seed=seed).eval()
    x = rng.standard_normal((256, 3, 16, 16)).astype(np.float32)
    fused = FusedNet(student)
    x1 = x[:1].copy()
    out = {"student_b1": 1 / median_seconds(lambda: student.forward(x1), reps=max(50, reps * 10), warmup=3),
           "student_b256": 256 / median_seconds(lambda: student.forward(x), reps=reps, warmup=2),
           "fused_b1": 1 / median_seconds(lambda: fused.forward(x1), reps=max(50, reps * 10), warmup=3),
           "fused_b256": 256 / median_seconds(lambda: fused.forward(x), reps=reps, warmup=2)}
    if not quick:
        teacher = build_teacher(158, seed=seed).eval()
        xt = rng.standard_normal((64, 3, 64, 64)).astype(np.float32)
        out["teacher_b64"] = 64 / median_seconds(lambda: teacher.forward(xt), reps=max(3, reps // 2), warmup=1)
    return out


def threading_trap(reps, seed):
    """The student at batch 256 with its Linear layer on NumPy's BLAS, then as shipped.

    The BLAS call leaves OpenBLAS threads spinning on the cores that the next
    conv kernel's numba threads need. Also measured at batch 1 with the parallel
    kernels forced on (what a naive design would do).
    """
    rng = np.random.default_rng(seed)
    model = reference_student(seed=seed).eval()
    x256 = rng.standard_normal((256, 3, 16, 16)).astype(np.float32)
    x1 = x256[:1].copy()
    out = {}
    with override_ops(linear_forward=reference.linear_forward):
        out["trap_b256"] = 256 / median_seconds(lambda: model.forward(x256), reps=reps, warmup=2)
        saved = kthreading.PARALLEL_MIN_BATCH
        kthreading.PARALLEL_MIN_BATCH = 1
        try:
            out["trap_b1"] = 1 / median_seconds(lambda: model.forward(x1), reps=max(20, reps * 2), warmup=2)
        finally:
            kthreading.PARALLEL_MIN_BATCH = saved
    let_blas_threads_sleep()
    return out


def gemm_rates(n, reps, seed):
    """GFLOP/s of ``C = A @ B`` at n x n x n: the simple kernel, the blocked one (B packed
    as B^T in the timed region), the blocked one given B^T, then NumPy's sgemm (last:
    its BLAS threads would spin against numba's)."""
    rng = np.random.default_rng(seed)
    A, B = (rng.standard_normal((n, n)).astype(np.float32) for _ in "AB")
    Bt = np.ascontiguousarray(B.T)
    rate = lambda fn: 2.0 * n ** 3 / median_seconds(fn, reps=reps, warmup=2) / 1e9  # noqa: E731
    out = {"n": n, "simple": rate(lambda: matmul(A, B)), "blocked": rate(lambda: gemm_blocked(A, B)),
           "blocked_bt": rate(lambda: gemm_blocked(A, Bt, transpose_b=True))}
    out["numpy"] = rate(lambda: A @ B)
    let_blas_threads_sleep()
    return out


def run(reps=10, quick=False, seed=0, log=print):
    """Run the whole report; returns a JSON-able dict. ``log`` gets progress lines."""
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    cpu = vectors.cpu_description()
    log(f"CPU: {cpu['model']}, {cpu['cores']} cores, {cpu['vector_bits']}-bit vectors, "
        f"L1d {cpu['L1d']}, L2 {cpu['L2']} (per core)")
    log(f"numba {numba.__version__}, {numba.get_num_threads()} threads, "
        f"threading layer {numba.config.THREADING_LAYER}")
    log("compiling kernels (cached on disk after the first run) ...")
    warm = reference_student(seed=seed)
    warm.train()
    y = warm.forward(rng.standard_normal((8, 3, 16, 16)).astype(np.float32))
    warm.backward(np.ones_like(y))
    # measure the peak first, then let BLAS's threads go quiet before timing numba
    peak = sgemm_peak_gflops(n=512 if quick else 1024)
    let_blas_threads_sleep()
    log(f"sgemm peak (NumPy BLAS, float32): {peak:.1f} GFLOP/s")
    n = 512 if quick else 1024
    log(f"GEMM at {n}^3: simple, blocked, NumPy ...")
    gemm = gemm_rates(n, reps, seed)
    rows = []
    log("per-layer timings: student, batch 256 ...")
    student = reference_student(seed=seed)
    rows += bench_layers(student, rng.standard_normal((256, 3, 16, 16)).astype(np.float32),
                         reps, 1.0 if quick else 3.0, peak, "student")
    if not quick:
        log("per-layer timings: teacher, batch 32 ...")
        teacher = reference_teacher(seed=seed)
        rows += bench_layers(teacher, rng.standard_normal((32, 3, 64, 64)).astype(np.float32),
                             max(3, reps // 2), 3.0, peak, "teacher")
    log("student throughput ...")
    through = student_throughput(reps, seed)
    log("deployable student and teacher inference ...")
    through.update(zoo_throughput(reps, seed, quick))
    log("threading trap ...")
    trap = threading_trap(max(3, reps // 2), seed)
    return {"sgemm_peak_gflops": peak, "threads": numba.get_num_threads(), "cpu": cpu,
            "gemm": gemm, "layers": rows, "student": through, "trap": trap,
            "seconds": time.perf_counter() - t_start}


def format_report(result):
    """Markdown tables of a ``run`` result."""
    cpu, g = result["cpu"], result["gemm"]
    lines = [f"CPU: {cpu['model']}, {cpu['cores']} cores, {cpu['vector_bits']}-bit vectors, "
             f"L1d {cpu['L1d']}, L2 {cpu['L2']} per core",
             f"sgemm peak (NumPy BLAS, float32, same run): {result['sgemm_peak_gflops']:.1f} GFLOP/s, "
             f"numba threads: {result['threads']}", "",
             f"| GEMM, float32, {g['n']}^3 | GFLOP/s | vs NumPy |", "|---|---:|---:|"]
    for key, name in (("numpy", "NumPy sgemm (BLAS)"), ("simple", "simple kernel (gemm.py)"),
                      ("blocked", "blocked kernel, B packed as B^T"),
                      ("blocked_bt", "blocked kernel, given B^T")):
        lines.append(f"| {name} | {g[key]:.1f} | {g[key] / g['numpy']:.2f}x |")
    lines += ["", "| net | layer | input | pass | Numba ms | GFLOP/s | GB/s | NumPy ms | speed-up "
              "| % sgemm peak |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["layers"]:
        gf = f"{r['gflops']:.1f}" if r["gflops"] else "-"
        pk = f"{100 * r['peak_frac']:.0f}%" if r["peak_frac"] else "-"
        lines.append(f"| {r['net']} | {r['layer']} | {'x'.join(map(str, r['shape']))} | {r['pass_']} | "
                     f"{r['ms']:.3f} | {gf} | {r['gbs']:.1f} | {r['ref_ms']:.2f} | {r['speedup']:.0f}x | {pk} |")
    s, t = result["student"], result["trap"]
    lines += ["", "| reference student | faces/s | target |", "|---|---:|---:|",
              f"| inference, batch 1 | {s['infer_b1']:,.0f} | 3,000 |",
              f"| inference, batch 256 | {s['infer_b256']:,.0f} | 10,000 |",
              f"| training step, batch 256 | {s['train_b256']:,.0f} | 3,500 |",
              "", "| deployable models, inference | faces/s |", "|---|---:|",
              f"| student (16x16, 158 identities), batch 1 | {s['student_b1']:,.0f} |",
              f"| student (16x16, 158 identities), batch 256 | {s['student_b256']:,.0f} |",
              f"| student, fused into one compiled function, batch 1 | {s['fused_b1']:,.0f} |",
              f"| student, fused into one compiled function, batch 256 | {s['fused_b256']:,.0f} |"]
    if "teacher_b64" in s:
        lines.append(f"| teacher (64x64), batch 64 | {s['teacher_b64']:,.0f} |")
    lines += ["", "| threading trap (Linear on NumPy BLAS next to numba's threads) | faces/s | vs shipped |",
              "|---|---:|---:|",
              f"| inference, batch 256 | {t['trap_b256']:,.0f} | {t['trap_b256'] / s['infer_b256']:.2f}x |",
              f"| inference, batch 1, parallel kernels forced | {t['trap_b1']:,.0f} | "
              f"{t['trap_b1'] / s['infer_b1']:.3f}x |",
              "", f"whole benchmark: {result['seconds']:.0f} s"]
    return "\n".join(lines)
