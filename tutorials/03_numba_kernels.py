"""Tutorial 3: the Numba kernels against the NumPy reference (and PyTorch): right, then fast.

The paper's point (Ge et al., TIP 2019, Sections I and IV) is a student small and fast
enough to run on a CPU at surveillance scale (its student: 0.15 MB, 418 faces/s). Every
op in tinyface exists twice with one signature: ``tinyface.reference`` (NumPy, obvious)
and ``tinyface.kernels`` (Numba: im2col plus a register-blocked GEMM for convolutions,
batches split across threads). This script first checks that they agree, against a
float64 product and a rigorous float32 error bound (gamma_n = n*u / (1 - n*u) times the
sum of |terms|), then measures, with the library's benchmark code (``tinyface.bench``:
JIT warm-up outside the timed region, medians): the machine's sgemm peak, our GEMM, every
layer of the reference student (speed-up over NumPy, GFLOP/s, % of the sgemm peak),
PyTorch at the same conv shapes when it is installed, and the threading trap (numba's
threads against BLAS's threads).

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

from tinyface import kernels, reference, tutorial  # noqa: E402
from tinyface.bench import (bench_layers, let_blas_threads_sleep, load_torch,  # noqa: E402
                            median_seconds, reference_student, reference_teacher,
                            sgemm_peak_gflops, student_throughput, threading_trap, torch_conv2d,
                            torch_conv_rows)
from tinyface.kernels import gemm  # noqa: E402

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
t.section("2. The ceiling: this machine's sgemm peak, and our GEMM")
n = 512 if args.quick else 1024
# NumPy BLAS with all its threads; the best of 3 medians, since a busy machine only slows it
peak = max(sgemm_peak_gflops(n=n) for _ in range(3))
let_blas_threads_sleep()                                            # let BLAS's threads go quiet
Ag, Bg = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
Cg = np.empty((n, n), np.float32)
t_ours = median_seconds(lambda: gemm.matmul(Ag, Bg, Cg), reps=max(3, reps // 2), warmup=2)
ours = 2.0 * n ** 3 / t_ours / 1e9
print(f"  sgemm peak (NumPy BLAS, {n}x{n}, float32, best of 3): {peak:.1f} GFLOP/s")
print(f"  numba GEMM ({n}x{n}, {threads} thread(s)): {t_ours * 1e3:.1f} ms = {ours:.1f} GFLOP/s, "
      f"{ours / peak:.0%} of the peak")
print(f"  napkin math: 2 n^3 = {2 * n ** 3 / 1e9:.2f} GFLOP; BLAS uses every core and packs "
      f"tiles into cache, ours\n  blocks 4 rows and lets LLVM vectorise the inner loop")

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
t.section("6. Figures and numbers")
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
ax2.axhline(ours, color="C2", ls=":", label=f"numba GEMM {n}x{n}: {ours:.0f}")
ax2.set_xticks(np.arange(len(convs)))
ax2.set_xticklabels(clabels, rotation=55, ha="right", fontsize=7)
ax2.set_ylabel("GFLOP/s")
ax2.set_title("conv and linear passes")
ax2.legend(fontsize=7)
t.save_figure(fig, "kernel_speed.png", dpi=80)
with open(t.path("kernel_speed.json"), "w") as fh:
    json.dump({"threads": threads, "batch": batch, "sgemm_peak_gflops": peak, "numba_gemm_gflops": ours,
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
