"""Benchmark of the selector: ``python -m tinyface.bench.select [--n 100000] [--dim 256]``.

Synthetic teacher outputs, deterministic from the seed: ``n / per_id`` identities,
each a random centre in ``dim`` dimensions; a face is its centre plus Gaussian noise
(within-identity cosine about 0.55), and a tenth of the faces are near-duplicates
(another face of the identity plus 1% noise), the redundancy the selector should
remove. Teacher logits are ``30 cos(f_i, centre_c)`` over all identities, float32
``(n, n / per_id)``: 400 MB at the default size, part of the measured memory.

Reported: wall seconds per phase (graph build, informativeness, solve with the
lambda bisection, total), the process's peak resident memory (``ru_maxrss``, which
includes the inputs and the interpreter) and the peak of NumPy/Python allocations
inside ``select`` alone (``tracemalloc``). The Numba kernels are compiled (or loaded
from the disk cache) on a tiny problem first, outside the timed run.
"""
import argparse
import json
import resource
import sys
import time
import tracemalloc

import numpy as np

from tinyface.select import select

__all__ = ["synthetic_teacher", "run_select_benchmark", "format_report"]


def synthetic_teacher(n=100_000, dim=256, per_id=100, dup_fraction=0.1, noise=0.9,
                      logits=True, seed=0, chunk=8192):
    """Clustered teacher outputs.

    Returns ``(features, labels, logits)``: (n, dim) float32, (n,) int64 identities
    (``per_id`` consecutive faces each), (n, G) float32 logits or None.
    """
    rng = np.random.default_rng(seed)
    g = max(1, n // per_id)
    labels = np.minimum(np.arange(n) // per_id, g - 1).astype(np.int64)
    centres = rng.standard_normal((g, dim), dtype=np.float32)            # (G, D)
    feats = np.empty((n, dim), np.float32)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        feats[a:b] = centres[labels[a:b]] + noise * rng.standard_normal((b - a, dim),
                                                                         dtype=np.float32)
    dups = rng.choice(n, size=int(dup_fraction * n), replace=False)       # faces to overwrite
    sizes = np.bincount(labels, minlength=g)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    src = start[labels[dups]] + rng.integers(0, sizes[labels[dups]])      # same identity
    keep = src != dups
    dups, src = dups[keep], src[keep]
    feats[dups] = feats[src] + 0.01 * rng.standard_normal((dups.size, dim), dtype=np.float32)
    z = None
    if logits:
        cn = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        z = np.empty((n, g), np.float32)
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            fb = feats[a:b]
            z[a:b] = 30.0 * (fb / np.linalg.norm(fb, axis=1, keepdims=True)) @ cn.T
    return feats, labels, z


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0      # Linux: KiB


def run_select_benchmark(n=100_000, dim=256, ratio=0.5, k=10, seed=0, log=print, alpha=1.0,
                         within_identity=True, per_identity=False, logits=True, per_id=100):
    """Time ``tinyface.select.select`` on ``synthetic_teacher(n, dim)``.

    Returns a dict: sizes and parameters, ``seconds`` per phase, ``peak_rss_mb``,
    ``peak_traced_mb`` (allocations inside ``select``), edges, the achieved ratio and
    the number of near-duplicate pairs both selected.
    """
    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    feats, labels, z = synthetic_teacher(n, dim, per_id=per_id, logits=logits, seed=seed)
    t_data = time.perf_counter() - t0
    log(f"data: {n} x {dim} features, {labels.max() + 1} identities, logits "
        f"{'none' if z is None else z.shape}, {t_data:.1f} s, RSS {_peak_rss_mb():.0f} MB")
    warm_f, warm_y, warm_z = synthetic_teacher(200, 16, per_id=20, seed=1)
    select(warm_f, warm_y, warm_z, ratio=ratio, k=k, within_identity=within_identity,
           per_identity=per_identity)                                    # compile / load kernels

    tracemalloc.start()
    res = select(feats, labels, z, ratio=ratio, k=k, alpha=alpha, seed=seed,
                 within_identity=within_identity, per_identity=per_identity, log=log)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # near-duplicate pairs (cos > 0.999) both selected
    W = res.graph.tocoo()
    near = (W.data > 0.999 ** 8) & (W.row < W.col)
    both = int(np.sum(res.mask[W.row[near]] & res.mask[W.col[near]]))
    out = {
        "n": n, "dim": dim, "ratio": ratio, "k": k, "alpha": alpha, "seed": seed,
        "within_identity": within_identity, "per_identity": per_identity,
        "identities": int(labels.max() + 1), "edges": int(res.graph.nnz),
        "achieved_ratio": res.ratio, "support_ratio": res.support_ratio,
        "bisection_steps": res.steps, "converged": res.converged,
        "near_duplicate_pairs": int(near.sum()), "near_duplicate_pairs_both_selected": both,
        "seconds": {"data": t_data, **res.timings},
        "peak_rss_mb": _peak_rss_mb(), "peak_traced_mb": traced / 2 ** 20,
    }
    return out


def format_report(r):
    s = r["seconds"]
    return (f"select {r['n']} x {r['dim']} (k={r['k']}, alpha={r['alpha']}, ratio={r['ratio']}, "
            f"within_identity={r['within_identity']}, per_identity={r['per_identity']}):\n"
            f"  graph {s['graph']:.2f} s | informativeness {s['informativeness']:.2f} s | "
            f"solve {s['solve']:.2f} s ({r['bisection_steps']} bisection steps) | "
            f"total {s['total']:.2f} s\n"
            f"  peak RSS {r['peak_rss_mb']:.0f} MB (whole process, inputs included) | "
            f"peak allocations in select {r['peak_traced_mb']:.0f} MB\n"
            f"  {r['edges']} edges; selected {r['achieved_ratio']:.4f} (support "
            f"{r['support_ratio']:.4f}); near-duplicate pairs both selected: "
            f"{r['near_duplicate_pairs_both_selected']} of {r['near_duplicate_pairs']}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tinyface.bench.select", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--ratio", type=float, default=0.5)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--global-graph", action="store_true", help="kNN over all faces, not within identity")
    p.add_argument("--per-identity", action="store_true")
    p.add_argument("--no-logits", action="store_true")
    p.add_argument("--json", metavar="PATH")
    a = p.parse_args(argv)
    r = run_select_benchmark(a.n, a.dim, a.ratio, a.k, a.seed, alpha=a.alpha,
                             within_identity=not a.global_graph, per_identity=a.per_identity,
                             logits=not a.no_logits, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(r, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
