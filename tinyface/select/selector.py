"""``select``: pick the informative, non-redundant faces whose teacher features are distilled.

See ``tinyface.select`` for the formulation. In short, with ``W`` the redundancy graph
(``tinyface.select.graph``) and ``u`` the informativeness (``tinyface.select.informativeness``)::

    s* = a stationary point, rounded to a vertex, of
         1/2 alpha s^T W s - u^T s + lambda ||s||_1   over s in [0, 1]^N
    lambda: bisection until |support(s*)| is within 1% of m = round(ratio * N)
    selected = support(s*), brought to exactly m nodes and improved by swaps

(``per_identity``: one lambda and one ``m_c = max(1, round(ratio * n_c))`` per identity.)
"""
import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from tinyface.select.graph import l2_normalise, redundancy_graph
from tinyface.select.informativeness import informativeness
from tinyface.select.solver import fit_lambda, match_targets, objective

__all__ = ["SelectionResult", "select", "check_feature_bank", "check_ratio", "target_counts"]


@dataclass
class SelectionResult:
    """The outcome of ``select``.

    mask: (N,) bool, the selected faces; s: (N,) float64 solution in {0, 1};
    u: (N,) float64 informativeness; graph: (N, N) CSR float64 redundancy weights W;
    lam: float (global) or (G,) float64 (per identity, G sorted unique labels);
    objective: f at each iterate of the final solve (non-increasing);
    objective_final: f at ``mask`` (after the exact-count step and the swaps);
    ratio: achieved fraction selected; target_ratio: asked for;
    support_ratio: |support of s| / N, before the count is made exact;
    changes, swaps: nodes added/dropped to make the count exact, and swaps made;
    converged: the bisection met its tolerance; steps: bisection steps;
    timings: seconds per phase (graph, informativeness, solve, total).
    """
    mask: np.ndarray
    s: np.ndarray
    u: np.ndarray
    graph: sp.csr_matrix
    lam: object
    objective: list
    objective_final: float
    ratio: float
    target_ratio: float
    support_ratio: float
    converged: bool
    steps: int
    changes: int = 0
    swaps: int = 0
    timings: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    @property
    def indices(self):
        """(M,) int64 indices of the selected faces, ascending."""
        return np.flatnonzero(self.mask)

    def summary(self):
        t = self.timings
        return (f"selected {int(self.mask.sum())}/{self.mask.size} ({self.ratio:.4f}, target "
                f"{self.target_ratio:.4f}, support {self.support_ratio:.4f}) in {t.get('total', 0):.2f} s: "
                f"graph {t.get('graph', 0):.2f}, u {t.get('informativeness', 0):.2f}, "
                f"solve {t.get('solve', 0):.2f} ({self.steps} bisection steps)")


def check_feature_bank(features, labels, logits=None, n=None, dim=None):
    """Raise ``ValueError`` unless the teacher's feature bank matches the dataset.

    features: (N, D) float, finite; labels: (N,); logits: (N, C) or None;
    n, dim: the dataset's face count and the teacher's feature width, when known.
    Returns ``(features, labels)`` as arrays.
    """
    f = np.asarray(features)
    y = np.asarray(labels)
    if f.ndim != 2:
        raise ValueError(f"the feature bank must be 2-D (N, D), got shape {f.shape}")
    if f.dtype.kind not in "fiu":
        raise ValueError(f"the feature bank must be numeric, got dtype {f.dtype}")
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D (N,), got shape {y.shape}")
    if f.shape[0] == 0:
        raise ValueError("the feature bank is empty: nothing to select from")
    if f.shape[0] != y.shape[0]:
        raise ValueError(f"the feature bank has {f.shape[0]} rows but the dataset has "
                         f"{y.shape[0]} labels; extract the features from the same dataset")
    if n is not None and f.shape[0] != n:
        raise ValueError(f"the feature bank has {f.shape[0]} rows but the dataset has {n} faces")
    if dim is not None and f.shape[1] != dim:
        raise ValueError(f"the feature bank is {f.shape[1]}-d but the teacher's features are "
                         f"{dim}-d; was it extracted by another model?")
    bad = f.shape[0] * f.shape[1] - int(np.count_nonzero(np.isfinite(f)))
    if bad:
        raise ValueError(f"the feature bank has {bad} NaN or inf value(s)")
    if logits is not None and np.shape(logits)[0] != f.shape[0]:
        raise ValueError(f"logits have {np.shape(logits)[0]} rows but the feature bank has "
                         f"{f.shape[0]}")
    return f, y


def check_ratio(ratio):
    """Return the selection ``ratio`` (the fraction of faces selected) as a float, or
    raise ``ValueError`` unless it is a finite number in (0, 1]."""
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) \
            or not math.isfinite(float(ratio)) or not 0.0 < float(ratio) <= 1.0:
        raise ValueError(f"the selection ratio must be in (0, 1], got {ratio!r}")
    return float(ratio)


def target_counts(ratio, sizes, per_identity):
    """Faces to select: ``(G,)`` int per group. sizes: (G,) faces per group.

    Global (one group): ``round(ratio * N)``. Per identity: ``max(1, round(ratio * n_c))``
    so that every identity keeps at least one face. Halves round up.
    """
    check_ratio(ratio)
    sizes = np.asarray(sizes, np.int64)
    counts = np.floor(float(ratio) * sizes + 0.5).astype(np.int64)
    if per_identity:
        return np.maximum(counts, 1)
    if counts.sum() == 0:
        raise ValueError(f"ratio {ratio} of {int(sizes.sum())} faces selects nothing: "
                         f"the selection would be empty; raise the ratio")
    return counts


def select(features, labels, logits=None, ratio=0.5, k=10, alpha=1.0, *,
           within_identity=True, per_identity=False, sharpen=16.0, u=None,
           weights=None, seed=0, tol=0.01, max_steps=40, method="pg",
           memory_mb=256, dim=None, log=None):
    """Select ``ratio`` of the faces: informative ones, avoiding redundant pairs.

    features: (N, D) float32 teacher embeddings (the feature bank);
    labels: (N,) int identities; logits: (N, C) teacher logits or None;
    ratio: fraction to select, in (0, 1]; k: neighbours per node in the graph;
    alpha: weight of the redundancy term (0: plain top-u);
    within_identity: graph edges only between faces of the same identity;
    per_identity: apply ``ratio`` inside each identity (one lambda per identity);
    sharpen: ``W_ij = max(0, cos_ij) ** sharpen``; u: (N,) informativeness to use
    instead of computing it from the teacher; weights: see ``informativeness``;
    seed: tie-breaking (start jitter, sweep order, final ranking): same seed, same result;
    tol: relative tolerance of the support size in the bisection; max_steps: its limit;
    method: "pg" (projected gradient) or "lbfgsb" for the relaxation;
    memory_mb: bound on the dense similarity block of the graph build;
    dim: expected feature width (a clear error if the bank differs);
    log: callable for progress lines, or None.
    Returns a ``SelectionResult``.
    """
    t_start = time.perf_counter()
    f, y = check_feature_bank(features, labels, logits, dim=dim)
    n = f.shape[0]
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not (np.isscalar(alpha) and float(alpha) >= 0):
        raise ValueError(f"alpha must be a number >= 0, got {alpha!r}")
    _, groups = np.unique(y, return_inverse=True)
    groups = groups.astype(np.int64).ravel()
    sizes = np.bincount(groups)
    if per_identity:
        targets = target_counts(ratio, sizes, True)
    else:
        targets = target_counts(ratio, [n], False)
    say = log or (lambda msg: None)

    t0 = time.perf_counter()
    fn = l2_normalise(f)
    W = redundancy_graph(fn, k, y, within_identity, sharpen, memory_mb, normalised=True)
    t1 = time.perf_counter()
    say(f"graph: {n} nodes, {W.nnz} edges, {t1 - t0:.2f} s")
    if u is None:
        u = informativeness(fn, y, logits, weights)
    else:
        u = np.asarray(u, np.float64)
        if u.shape != (n,) or not np.all(np.isfinite(u)):
            raise ValueError(f"u must be a finite (N,) = ({n},) array, got shape {u.shape}")
    t2 = time.perf_counter()
    say(f"informativeness: mean {u.mean():.3f}, {t2 - t1:.2f} s")

    sol_groups = groups if per_identity else None
    sol = fit_lambda(W, u, float(alpha), targets, sol_groups, tol, max_steps, seed, method)
    lam_node = sol.lam[groups] if per_identity else sol.lam[0]
    mask, (changes, swaps) = match_targets(W, u, float(alpha), lam_node, sol.s, targets,
                                           sol_groups, seed, return_stats=True)
    t3 = time.perf_counter()
    if not mask.any():
        raise ValueError("the selection is empty")
    say(f"solve: {sol.steps} bisection steps, {changes} count changes, {swaps} swaps, "
        f"{t3 - t2:.2f} s")
    lam = sol.lam if per_identity else float(sol.lam[0])
    return SelectionResult(
        mask=mask, s=sol.s, u=u, graph=W, lam=lam, objective=sol.history,
        objective_final=objective(W, u, float(alpha), lam_node, mask.astype(np.float64)),
        ratio=float(mask.mean()), target_ratio=float(ratio),
        support_ratio=float((sol.s > 0.5).mean()), converged=bool(sol.converged),
        steps=sol.steps, changes=int(changes), swaps=int(swaps),
        timings={"graph": t1 - t0, "informativeness": t2 - t1, "solve": t3 - t2,
                 "total": time.perf_counter() - t_start},
        params=dict(k=k, alpha=float(alpha), within_identity=within_identity,
                    per_identity=per_identity, sharpen=sharpen, seed=seed, tol=tol,
                    method=method))
