"""Tolerances, the relative error and the report every check adds its rows to.

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

``run_gpu_command`` is the frame of the whole-run checks' command lines (``training``,
``distill_methods``): the device, the results as JSON, the verdict and the exit status.
"""
import json
import sys

import numpy as np

from tinyface.cuda import cuda_available
from tinyface.cuda.arrays import to_host

TOL = {"exact": 0.0, "elementwise": 1e-6, "reduction": 1e-5, "gemm": 1e-4}


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


def format_rows(rows):
    """The rows as a fixed-width table, one line each (``NO`` marks a failed row)."""
    lines = [f"{'check':22s} {'case':34s} {'tensor':22s} {'err':>9s} {'tol':>7s}  ok"]
    for r in rows:
        lines.append(f"{r['check']:22s} {r['case'][:34]:34s} {r['tensor'][:22]:22s} "
                     f"{r['err']:9.2e} {r['tol']:7.0e}  {'yes' if r['ok'] else 'NO'}")
    return "\n".join(lines)


def log_stderr(msg):
    """A check command's log line: to stderr, flushed."""
    print(msg, file=sys.stderr, flush=True)


def run_gpu_command(run, json_path, key, passed_line, log=log_stderr):
    """Run a check command's ``run(log)`` on the GPU; returns its exit status.

    Logs the device, or returns 2 when CUDA is not available. ``run(log)`` returns a list
    of result dicts, each with ``passed`` and ``key`` (what it checked); they are written
    to ``json_path`` as JSON when given. Logs ``passed_line``, or the failed ones' ``key``
    values; returns 0 when every result passed, 1 otherwise.
    """
    ok, reason = cuda_available()
    if not ok:
        log(f"CUDA is not available: {reason}")
        return 2
    log(f"device: {reason}")
    results = run(log)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, default=str)
    failed = [r[key] for r in results if not r["passed"]]
    log(passed_line if not failed else f"FAILED: {failed}")
    return 1 if failed else 0


def normal_f32(rng, *shape):
    """Standard normal float32 inputs of ``shape`` drawn from ``rng``."""
    return rng.standard_normal(shape).astype(np.float32)
