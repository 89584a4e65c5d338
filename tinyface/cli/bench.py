"""``python -m tinyface bench kernels``: kernel and student-network speed report."""
import json
import sys

from tinyface.bench import cuda as bench_cuda
from tinyface.bench import kernels as bench_kernels
from tinyface.bench import select as bench_select
from tinyface.cli import CLIError
from tinyface.cuda import CudaUnavailableError, require_cuda
from tinyface.helpformat import HelpFormatter


def register(sub):
    p = sub.add_parser(
        "bench", help="benchmark the kernels and the student network", formatter_class=HelpFormatter,
        description="Speed reports. Timings exclude JIT compilation and are medians; "
                    "ratios are against baselines measured in the same run.")
    p.add_argument("what", nargs="?", default="kernels", choices=["kernels", "select"],
                   help="what to benchmark: 'kernels' times every op at the reference student's "
                        "and teacher's layer shapes, then the student's faces/s; 'select' times "
                        "the sparse graph selector on --nodes synthetic teacher features")
    p.add_argument("--nodes", type=int, default=100_000, help="select: number of faces (graph nodes)")
    p.add_argument("--dim", type=int, default=256, help="select: feature dimension")
    p.add_argument("--reps", type=int, default=10, help="timed repetitions per measurement (median reported)")
    p.add_argument("--quick", action="store_true", help="student shapes only, fewer repetitions (a smoke run)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs and weights")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON to PATH")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="kernels: 'cuda' checks every CUDA kernel against the CPU kernel at the "
                        "real layer shapes, then times them with CUDA events (needs a GPU)")
    p.set_defaults(func=run)


def run(args):
    if args.reps < 1:
        raise CLIError("--reps must be at least 1")
    if args.what == "select":
        return run_select(args)
    if args.device == "cuda":
        return run_cuda(args)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    result = bench_kernels.run(reps=args.reps, quick=args.quick, seed=args.seed, log=log)
    print(bench_kernels.format_report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        log(f"wrote {args.json}")
    return 0


def run_select(args):
    if args.nodes < 200 or args.dim < 2:
        raise CLIError("--nodes must be at least 200 and --dim at least 2")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    result = bench_select.run_select_benchmark(n=args.nodes, dim=args.dim, seed=args.seed, log=log)
    print(bench_select.format_report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=str)
        log(f"wrote {args.json}")
    return 0


def run_cuda(args):

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    try:
        require_cuda()
    except CudaUnavailableError as exc:
        raise CLIError(f"{exc}. Without a GPU, the simulator and PTX tests carry correctness: "
                       f"python -m pytest tests/test_cuda_kernels.py tests/test_cuda_step.py "
                       f"tests/test_cuda_ptx.py") from None
    result = bench_cuda.run_cuda_bench(reps=args.reps, quick=args.quick, seed=args.seed, log=log)
    if not result.get("available"):
        raise CLIError(result["reason"])
    print(bench_cuda.format_report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=str)
        log(f"wrote {args.json}")
    return 0 if result.get("passed") else 1
