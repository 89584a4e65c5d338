"""Tutorial 3: the Numba kernels against the NumPy reference (and PyTorch): right, then fast.

The paper's point (Ge et al., TIP 2019, Sections I and IV) is a student small and fast
enough to run on a CPU at surveillance scale (its student: 0.15 MB, 418 faces/s). Every
op in tinyface exists twice with one signature: ``tinyface.reference`` (NumPy, obvious)
and ``tinyface.kernels`` (Numba: im2col plus a register-blocked GEMM for convolutions,
batches split across threads). This script first checks that they agree, against a
float64 product and a rigorous float32 error bound (gamma_n = n*u / (1 - n*u) times the
sum of |terms|), then measures, with the library's benchmark code (``tinyface.bench``:
JIT warm-up outside the timed region, medians): the machine's sgemm peak, our GEMMs step
by step (the simple kernel; the blocked one with packed panels and a register tile, and
the FMAs in its machine code; the blocked one on every thread), every layer of the
reference student (speed-up over NumPy, GFLOP/s, % of the sgemm peak), PyTorch at the
same conv shapes when it is installed, the threading trap (numba's threads against
BLAS's threads), and batch 1 layer by layer against one compiled function.

Run it:

    python tutorials/03_numba_kernels.py --quick   # student at batch 64, ~20 s
    python tutorials/03_numba_kernels.py           # batch 256 plus the teacher's layers, 1-2 min

Set ``NUMBA_NUM_THREADS`` to choose numba's threads (PyTorch gets the same number). No face
data is used. Timings vary with the machine and its load; the checks do not.
"""
import json
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

from tinyface import kernels, reference, tutorial, vectors  # noqa: E402
from tinyface.bench import (bench_layers, let_blas_threads_sleep, load_torch,  # noqa: E402
                            median_seconds, reference_student, reference_teacher,
                            sgemm_peak_gflops, student_throughput, threading_trap, torch_conv2d,
                            torch_conv_rows)
from tinyface.kernels import gemm, gemm_blocked  # noqa: E402
from tinyface.models import FusedNet, build_student, summary, totals  # noqa: E402

U32 = np.finfo(np.float32).eps / 2            # unit round-off of float32, 2^-24
U64 = np.finfo(np.float64).eps / 2


def extra(p):
    p.add_argument("--batch", type=int, help="student batch for the timings (default 64 quick, 256 full)")
    p.add_argument("--reps", type=int, help="timed repetitions per measurement (default 5 quick, 10 full)")


def gamma(n, u):
    """Worst-case relative error factor of an n-term floating-point sum of products."""
    return n * u / (1 - n * u)


args = tutorial.parse_args(3, __doc__, extra=extra)
t = tutorial.Tutorial(args)
batch = args.batch or (64 if args.quick else 256)
reps = args.reps or (5 if args.quick else 10)
threads = numba.get_num_threads()
torch = load_torch()
print(f"numba {numba.__version__}, {threads} thread(s); NumPy {np.__version__}; "
      f"PyTorch {torch.__version__ if torch else 'not installed (its rows are skipped)'}")
rng = np.random.default_rng(args.seed)

# ----------------------------------------------------------------------------------
t.section("1. Checks first: small shapes, against exact (float64) results and their bounds")
print("  A sum of n products in floating point, in any order, is off by at most\n"
      "  gamma_n * sum |a_i b_i| with gamma_n = n u / (1 - n u), u = 2^-24 (float32) or 2^-53\n"
      "  (float64). Rounding errors mostly cancel, so real errors sit far below that bound.")
A = rng.standard_normal((37, 53))                                   # odd shapes: left-over rows
B = rng.standard_normal((53, 29))
C = gemm.matmul(A, B)                                               # (37, 29), numba GEMM
bound = 2 * gamma(53, U64) * (np.abs(A) @ np.abs(B))                # (37, 29): both products round
print(f"  GEMM float64 (37x53)@(53x29): max |numba - numpy| = {np.abs(C - A @ B).max():.2e}")
t.check("GEMM float64: worst |error| / its bound", float((np.abs(C - A @ B) / bound).max()), below=1.0)

A32 = rng.standard_normal((16, 144)).astype(np.float32)
B32 = rng.standard_normal((144, 64)).astype(np.float32)
C32 = gemm.matmul(A32, B32)                                         # (16, 64): Cout x K @ K x pixels
exact = A32.astype(np.float64) @ B32.astype(np.float64)
bound = gamma(144, U32) * (np.abs(A32.astype(np.float64)) @ np.abs(B32.astype(np.float64)))
print(f"  GEMM float32 (16x144)@(144x64), a conv's im2col shape: max |numba - exact| = "
      f"{np.abs(C32 - exact).max():.2e}, bound up to {bound.max():.2e}")
t.check("GEMM float32: worst |error| / its bound", float((np.abs(C32 - exact) / bound).max()), below=1.0)

# conv2d at a student layer shape, small batch: float32 kernel against the float64 reference
N, Cin, Cout, H = 4, 16, 32, 8
x = rng.standard_normal((N, Cin, H, H)).astype(np.float32)         # (N, Cin, H, W)
w = (rng.standard_normal((Cout, Cin, 3, 3)) / 12).astype(np.float32)
b = rng.standard_normal(Cout).astype(np.float32)
x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
out64, c64 = reference.conv2d_forward(x64, w64, b64, 1, 1)          # (N, Cout, H, W), exact enough
dout = rng.standard_normal(out64.shape).astype(np.float32)
exact = (out64,) + tuple(reference.conv2d_backward(dout.astype(np.float64), c64))
# the same sums over |terms|: the scale each float32 error is measured against
absout, cabs = reference.conv2d_forward(np.abs(x64), np.abs(w64), np.abs(b64), 1, 1)
scale = (absout,) + tuple(reference.conv2d_backward(np.abs(dout).astype(np.float64), cabs))
n_terms = {"out": Cin * 9 + 1, "dx": Cout * 9, "dw": N * H * H, "db": N * H * H}
print(f"  conv2d 3x3 pad 1, x {x.shape}, w {w.shape}, float32; terms per sum: "
      + ", ".join(f"{k} {v}" for k, v in n_terms.items()))


def _tier_run(ops):
    out, cache = ops.conv2d_forward(x, w, b, 1, 1)
    return (out,) + tuple(ops.conv2d_backward(dout, cache))


results = {"numba": _tier_run(kernels), "numpy (float32)": _tier_run(reference)}
if torch is not None:
    results["pytorch"] = torch_conv2d(x, w, b, 1, 1, dout)
    let_blas_threads_sleep()
for tier, got in results.items():
    worst = 0.0
    for name, g, e, s in zip(n_terms, got, exact, scale):
        err = np.abs(g.astype(np.float64) - e)
        worst = max(worst, float((err / (gamma(n_terms[name], U32) * s + 1e-30)).max()))
        print(f"    {tier:<16} {name:<3} {str(g.shape):<16} max |error| {err.max():.2e}")
    t.check(f"conv2d {tier}: worst |error| / bound (out, dx, dw, db)", worst, below=1.0)
if torch is None:
    print("  PyTorch is not installed: its check and timings are skipped")

# ----------------------------------------------------------------------------------
t.section("2. The ceiling: this machine's sgemm peak, and our GEMMs step by step")
n = 512 if args.quick else 1024
cpu = vectors.cpu_description()
print(f"  {cpu['model']}, {cpu['cores']} cores, L1d {cpu['L1d']}, L2 {cpu['L2']} a core; numba "
      f"compiles for {cpu['vector_bits']}-bit vectors (tinyface.vectors)")
# NumPy BLAS with all its threads; the best of 3 medians, since a busy machine only slows it
peak = max(sgemm_peak_gflops(n=n) for _ in range(3))
let_blas_threads_sleep()                                            # let BLAS's threads go quiet
Ag, Bg = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
Cg = np.empty((n, n), np.float32)
steps = {                   # each step adds one idea to the one before (llm.c's kernel 1, 2, 3)
    "1. simple: 4 rows of C, whole rows of B streamed, 1 thread":
        lambda: gemm.matmul(Ag, Bg, Cg, parallel=False),
    "2. blocked: B packed in panels, 4x4 tile in registers, 1 thread":
        lambda: gemm_blocked.gemm_blocked(Ag, Bg, Cg, parallel=False),
    f"3. blocked, row blocks of C across {threads} thread(s)":
        lambda: gemm_blocked.gemm_blocked(Ag, Bg, Cg),
}
gemm_rates = {}
for name, fn in steps.items():
    gemm_rates[name] = 2.0 * n ** 3 / median_seconds(fn, reps=max(3, reps // 2), warmup=2) / 1e9
ours = gemm_rates[list(steps)[-1]]
print(f"  sgemm peak (NumPy BLAS, {n}x{n}, float32, best of 3): {peak:.1f} GFLOP/s")
for name, rate in gemm_rates.items():
    print(f"  {name:66s} {rate:6.1f} GFLOP/s, {rate / peak:4.0%} of the peak")
fmas = gemm_blocked.fma_counts()
print(f"  the micro-kernel's machine code: {fmas['zmm']} FMAs on zmm (512-bit), {fmas['ymm']} on "
      f"ymm, {fmas['xmm']} on xmm or scalar\n  (16 vector FMAs: one per accumulator; the rest "
      f"finish the tail of the depth loop)")
print(f"  napkin math: 2 n^3 = {2 * n ** 3 / 1e9:.2f} GFLOP. Step 1 loads and stores C for every "
      f"FMA; step 2 keeps a 4x4\n  tile in 16 registers across a depth of "
      f"{gemm_blocked.KC}, vectorised along the depth, and reads operands packed to stay in cache")

# ----------------------------------------------------------------------------------
t.section(f"3. Every layer of the reference student, batch {batch}: Numba against NumPy")
t0 = time.perf_counter()
rows = bench_layers(reference_student(seed=args.seed),
                    rng.standard_normal((batch, 3, 16, 16)).astype(np.float32),
                    reps, 0.5 if args.quick else 3.0, peak, "student")
if not args.quick:
    print("  ... and the reference teacher, batch 32 (64x64 input)")
    rows += bench_layers(reference_teacher(seed=args.seed),
                         rng.standard_normal((32, 3, 64, 64)).astype(np.float32),
                         max(3, reps // 2), 3.0, peak, "teacher")
try:
    layer_name = numba.threading_layer()                            # known once a parallel kernel ran
except ValueError:
    layer_name = "none used (serial kernels only)"
print(f"  ({time.perf_counter() - t0:.1f} s; numba threading layer: {layer_name})")
print(f"    {'net':<8}{'layer':<20}{'input':<15}{'pass':<9}{'numba ms':>9}{'numpy ms':>10}"
      f"{'speed-up':>9}{'GFLOP/s':>9}{'% peak':>8}")
for r in rows:
    gf = f"{r['gflops']:.1f}" if r["gflops"] else "-"
    pk = f"{100 * r['peak_frac']:.0f}%" if r["peak_frac"] else "-"
    print(f"    {r['net']:<8}{r['layer']:<20}{'x'.join(map(str, r['shape'])):<15}{r['pass_']:<9}"
          f"{r['ms']:9.3f}{r['ref_ms']:10.2f}{r['speedup']:8.1f}x{gf:>9}{pk:>8}")
conv_speedups = [r["speedup"] for r in rows if r["layer"].startswith("Conv2d") and r["net"] == "student"]
med = float(np.median(conv_speedups))
print(f"  median speed-up of the student's conv passes over NumPy: {med:.1f}x (speed is measured "
      f"and shown, never checked)")
if med < 1.0:
    print("  slower than NumPy: is the machine busy? With another process on a core, every\n"
          "  parallel kernel waits a scheduler tick (~8 ms) for its second thread; rerun it idle\n"
          "  or with NUMBA_NUM_THREADS=1")

# ----------------------------------------------------------------------------------
t.section("4. The same convolutions in PyTorch (an optional baseline)")
torch_rows = []
if torch is None:
    print("  skipped: PyTorch is not installed")
else:
    torch_rows = torch_conv_rows(reference_student(seed=args.seed),
                                 rng.standard_normal((batch, 3, 16, 16)).astype(np.float32),
                                 reps=reps, threads=threads)
    if not args.quick:
        torch_rows += torch_conv_rows(reference_teacher(seed=args.seed),
                                      rng.standard_normal((32, 3, 64, 64)).astype(np.float32),
                                      reps=max(3, reps // 2), threads=threads, label="teacher")
    let_blas_threads_sleep()
    ours_by_key = {(r["net"], r["layer"], tuple(r["shape"]), r["pass_"]): r for r in rows}
    print(f"  PyTorch {torch.__version__} with {threads} thread(s), the same shapes:")
    print(f"    {'net':<8}{'layer':<20}{'pass':<9}{'torch ms':>9}{'numba ms':>9}{'torch/numba':>12}")
    for r in torch_rows:
        o = ours_by_key[(r["net"], r["layer"], tuple(r["shape"]), r["pass_"])]
        r["numba_ms"] = o["ms"]
        print(f"    {r['net']:<8}{r['layer']:<20}{r['pass_']:<9}{r['torch_ms']:9.3f}{o['ms']:9.3f}"
              f"{o['ms'] / r['torch_ms']:11.2f}x")

# ----------------------------------------------------------------------------------
t.section("5. The threading trap: one BLAS call among numba's kernels")
through = student_throughput(max(3, reps // 2), args.seed)
trap = threading_trap(max(3, reps // 2), args.seed)
print(f"  reference student, faces/s: inference batch 1 {through['infer_b1']:,.0f}, batch 256 "
      f"{through['infer_b256']:,.0f}; training step batch 256 {through['train_b256']:,.0f}")
print(f"  the same, with only the last Linear layer on NumPy's BLAS: batch 256 "
      f"{trap['trap_b256']:,.0f} faces/s ({trap['trap_b256'] / through['infer_b256']:.2f}x)")
print(f"  batch 1 with the parallel kernels forced: {trap['trap_b1']:,.0f} faces/s "
      f"({trap['trap_b1'] / through['infer_b1']:.2f}x)")
print("  After a NumPy product, BLAS's threads keep spinning for a while on the cores that\n"
      "  numba's next parallel kernel wants, so that kernel waits. Hence no BLAS call on a hot\n"
      "  path, and serial kernels below PARALLEL_MIN_BATCH (tinyface/kernels/threading.py).\n"
      + ("  With 1 numba thread it is milder (run with NUMBA_NUM_THREADS=2 on 2 idle cores to\n"
         "  see it whole); a busy machine blurs it." if threads == 1 else
         f"  With {threads} numba threads, every core is contended; a busy machine blurs it."))

# ----------------------------------------------------------------------------------
t.section("6. Batch 1: the overhead between layers, and one compiled function")
student = build_student(158, seed=args.seed).eval()
fused = FusedNet(student)                          # batch norms folded, one njit function
face = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
t_layers = median_seconds(lambda: student.forward(face), reps=max(50, reps * 10), warmup=3)
t_fused = median_seconds(lambda: fused.forward(face), reps=max(50, reps * 10), warmup=3)
flops = totals(summary(student))["flops"]
t.check("fused logits against the layers' (max relative difference)",
        float(np.abs(fused.forward(face) - student.forward(face)).max()
              / np.abs(student.forward(face)).max()), below=1e-4)
one = gemm_rates[list(steps)[1]]                  # batch 1 runs on one thread
print(f"  the deployable student needs {flops / 1e6:.2f} MFLOP a face: at {one:.0f} GFLOP/s (the "
      f"blocked GEMM on one thread)\n  that is {flops / one / 1e3:.0f} us, yet layer by layer a face takes {t_layers * 1e6:.0f} us "
      f"({1 / t_layers:,.0f} faces/s): {len(list(student.features.children())) + 1} Python calls,\n"
      f"  dispatches and fresh arrays. As one compiled function: {t_fused * 1e6:.0f} us "
      f"({1 / t_fused:,.0f} faces/s, {t_layers / t_fused:.1f}x)")

# ----------------------------------------------------------------------------------
t.section("7. Figures and numbers")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.4, 1]})
stu = [r for r in rows if r["net"] == "student"]
labels = list(dict.fromkeys(f"{r['layer']} {'x'.join(map(str, r['shape'][1:]))}" for r in stu))
for k, p in enumerate(("forward", "backward")):
    v = [next(r["speedup"] for r in stu if f"{r['layer']} {'x'.join(map(str, r['shape'][1:]))}" == lab
              and r["pass_"] == p) for lab in labels]
    ax1.bar(np.arange(len(labels)) + 0.4 * k - 0.2, v, width=0.4, label=p)
ax1.axhline(1, color="gray", lw=1)
ax1.set_yscale("log")
ax1.set_xticks(np.arange(len(labels)))
ax1.set_xticklabels(labels, rotation=55, ha="right", fontsize=7)
ax1.set_ylabel("speed-up over the NumPy reference")
ax1.set_title(f"student layers, batch {batch}, {threads} numba thread(s)")
ax1.legend(fontsize=8)
convs = [r for r in rows if r["gflops"] and r["net"] == "student"]  # conv and linear passes
clabels = [f"{r['layer'].replace('Conv2d ', '')} {r['pass_'][:3]}" for r in convs]
ax2.bar(np.arange(len(convs)) - 0.2, [r["gflops"] for r in convs], width=0.4, label="numba")
if torch_rows:
    tk = {(r["layer"], tuple(r["shape"]), r["pass_"]): r for r in torch_rows if r["net"] == "student"}
    tv = [tk[(r["layer"], tuple(r["shape"]), r["pass_"])]["gflops"]
          if (r["layer"], tuple(r["shape"]), r["pass_"]) in tk else 0 for r in convs]
    ax2.bar(np.arange(len(convs)) + 0.2, tv, width=0.4, label=f"PyTorch, {threads} thread(s)")
ax2.axhline(peak, color="red", ls="--", label=f"sgemm peak (NumPy BLAS) {peak:.0f}")
ax2.axhline(ours, color="C2", ls=":", label=f"numba blocked GEMM {n}x{n}: {ours:.0f}")
ax2.set_xticks(np.arange(len(convs)))
ax2.set_xticklabels(clabels, rotation=55, ha="right", fontsize=7)
ax2.set_ylabel("GFLOP/s")
ax2.set_title("conv and linear passes")
ax2.legend(fontsize=7)
t.save_figure(fig, "kernel_speed.png", dpi=80)
with open(t.path("kernel_speed.json"), "w") as fh:
    json.dump({"threads": threads, "batch": batch, "sgemm_peak_gflops": peak, "numba_gemm_gflops": ours,
               "gemm_steps": gemm_rates, "cpu": cpu, "micro_kernel_fmas": fmas,
               "batch1_layers": 1 / t_layers, "batch1_fused": 1 / t_fused,
               "layers": rows, "torch": torch_rows, "student": through, "trap": trap}, fh, indent=1)
t.saved(t.path("kernel_speed.json"))

ratios = [r["numba_ms"] / r["torch_ms"] for r in torch_rows if r["net"] == "student"]
conv_frac = [r["peak_frac"] for r in rows
             if r["peak_frac"] and r["layer"].startswith("Conv2d") and r["net"] == "student"]
t.finish(
    summary=[
        "the Numba GEMM and conv2d agree with float64 results well inside the worst-case float32 "
        "bound gamma_n * sum|terms| (n = terms per sum): correctness first, at small shapes",
        f"student layers at batch {batch}: conv passes {min(conv_speedups):.0f}-{max(conv_speedups):.0f}x "
        f"faster than NumPy, at {100 * min(conv_frac):.0f}-{100 * max(conv_frac):.0f}% of the "
        f"{peak:.0f} GFLOP/s sgemm peak with {threads} numba thread(s)",
        f"reference student: {through['infer_b256']:,.0f} faces/s at batch 256 "
        f"({through['infer_b1']:,.0f} at batch 1); with one BLAS call inside, "
        f"{trap['trap_b256'] / through['infer_b256']:.2f}x of that (the threading trap)",
        (f"on the student's convolutions our kernels take {min(ratios):.1f}-{max(ratios):.1f}x "
         f"the time of PyTorch with {threads} thread(s): the distance left to a tuned library"
         if ratios else "PyTorch is not installed: no baseline rows"),
        f"GEMM at {n}^3 against the {peak:.0f} GFLOP/s sgemm peak: " + ", then ".join(
            f"{rate:.0f} GFLOP/s ({rate / peak:.0%})" for rate in gemm_rates.values())
        + " for the simple kernel, the blocked one, and the blocked one on every thread",
        f"batch 1: {t_layers * 1e6:.0f} us a face layer by layer, {t_fused * 1e6:.0f} us as one "
        f"compiled function, against {flops / one / 1e3:.0f} us of arithmetic at the GEMM's "
        f"one-thread rate: the calls between layers are the first cost, the small convolutions' "
        f"short loops the next",
        "timings exclude JIT compilation (warm-up calls) and are medians; compare only runs on the "
        "same machine, thread count and load",
    ],
    exercises=[
        "Run with NUMBA_NUM_THREADS=1 and then 2: which layers scale with the second core, "
        "which do not, and why (work per sample, memory traffic, the parallel launch)?",
        "Time kernels.gemm.matmul against A @ B for M = 4, 16, 64 rows at K = 144, N = 256: "
        "where does the 4-row register blocking pay, and where does BLAS win?",
        "Set tinyface.kernels.threading.PARALLEL_MIN_BATCH = 1 and time the student at batch 1, "
        "2 and 4: how large is a parallel launch compared with the work of one face?",
    ])
