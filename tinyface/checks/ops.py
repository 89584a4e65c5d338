"""The CUDA tier against the Numba CPU tier: every op, forward and backward, and one
whole training step, from the command line.

    NUMBA_ENABLE_CUDASIM=1 python -m tinyface.checks.ops          # tiny shapes, simulator
    python -m tinyface.checks.ops --shapes real                    # real layer shapes, GPU
    python -m tinyface.checks.ops kernels --only conv2d linear     # some op checks only

``tests/test_cuda_kernels.py`` and ``tests/test_cuda_step.py`` run the tiny version in a
child process with the simulator on (``tinyface.checks.simulator.run_in_simulator``: it
must be set before numba is imported, and the rest of the test session imports numba
normally); ``python -m tinyface bench --device cuda`` runs the real-shape version on a
GPU before timing anything. The tolerances are explained in ``tinyface.checks.report``.

Exit status: 0 when every check passed, 1 when one failed, 2 without a GPU (one line on
stderr saying why).
"""
import argparse
import json
import sys
import time

from tinyface.checks.launches import launch_signatures, record_launches
from tinyface.checks.report import TOL, format_rows
from tinyface.checks.step import step_check
from tinyface.checks.suite import run_op_checks
from tinyface.cuda import cuda_available
from tinyface.cuda.launch import SIMULATOR


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tinyface.checks.ops",
                                 description="Compare the CUDA tier with the Numba CPU tier.")
    ap.add_argument("what", nargs="?", default="all", choices=["kernels", "step", "all"])
    ap.add_argument("--shapes", default="tiny", choices=["tiny", "real"])
    ap.add_argument("--only", nargs="*", help="op checks to run (default: all)")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON ('-': stdout)")
    args = ap.parse_args(argv)

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


if __name__ == "__main__":
    if SIMULATOR:
        record_launches()
        # the simulator's block manager polls its threads: hand the GIL over more often
        # than every 5 ms (2x faster here)
        sys.setswitchinterval(5e-4)
    raise SystemExit(main())
