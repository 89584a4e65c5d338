"""The selection problem and its solver.

Problem, for a symmetric non-negative ``W: (N, N)`` with zero diagonal, scores
``u: (N,)``, redundancy weight ``alpha >= 0`` and sparsity weight ``lambda``::

    minimise   f(s) = 1/2 alpha s^T W s  -  u^T s  +  lambda ||s||_1
    over       s in [0, 1]^N

On the box ``||s||_1 = 1^T s``, so the L1 term is linear; ``lambda`` may be a vector
(one value per group of nodes, ``lambda_i = lam[group_i]``), which is how
``per_identity`` selection works. The gradient is ``g(s) = alpha W s - u + lambda``.

Solver, two monotone stages (``solve``):

1. Projected gradient (the proximal gradient method: the prox of ``lambda ||.||_1`` plus
   the box indicator is a shift and a clip), ``s <- clip(s - g(s) / L, 0, 1)`` with
   ``L = alpha max_i sum_j W_ij >= alpha ||W||_2`` (Gershgorin: W is non-negative and
   symmetric). ``f`` is L-smooth, so by the descent lemma each step lowers ``f`` by at
   least ``L/2 ||s_new - s||^2``, convex or not. ``W`` is indefinite (zero trace), so
   the problem is non-convex: we find a stationary point, not a certified minimum.
   ``method="lbfgsb"`` runs ``scipy.optimize`` L-BFGS-B (sparse mat-vecs) instead; its
   line search also decreases ``f`` at every accepted iterate.
2. Coordinate descent to a vertex. ``W_ii = 0`` makes ``f`` affine in each ``s_i``
   alone, ``f(s + d e_i) = f(s) + g_i(s) d``, so setting ``s_i = 1`` when ``g_i < 0`` and
   ``s_i = 0`` when ``g_i > 0`` (one node at a time, in a seeded order) never raises
   ``f``; sweeps repeat until nothing changes. The result is binary, no worse than the
   relaxed point, and 1-opt: no single node's flip lowers ``f``. This stage breaks the
   symmetric saddle the relaxation can sit on (two duplicates both at 1/2): at a 1-opt
   point, ``i`` and ``j`` are both selected only if ``alpha W_ij <= u_i - lambda_i``.

``fit_lambda`` sets ``lambda`` (per group) by bisection so that the support's size is
within ``tol`` (relative) of the target count, warm-starting each solve from the last.
``match_targets`` then makes the count exact: it keeps the support and adds (or drops)
the few nodes that raise ``f`` least, one at a time, so a node whose duplicate is
already selected (gradient ``>= alpha W_ij - u_i + lambda_i``) is the last to be added;
then it swaps a selected node for an unselected one while that lowers ``f`` (local
search at the exact count, where ``lambda`` no longer matters).
"""
from dataclasses import dataclass, field

import numba
import numpy as np
import scipy.optimize

__all__ = ["objective", "gradient", "lipschitz_bound", "projected_gradient",
           "lbfgsb", "round_to_vertex", "solve", "fit_lambda", "match_targets", "Solution"]


def _lam_node(lam, groups, n):
    lam = np.asarray(lam, np.float64)
    if lam.ndim == 0:
        return np.full(n, float(lam))
    return lam if groups is None else lam[groups]


def _dot(a, b):
    # not ``a @ b``: a threaded BLAS ddot stalls for milliseconds when the other core
    # is busy, and it runs once per iteration (see tinyface.kernels.threading)
    return float(np.multiply(a, b).sum())


def objective(W, u, alpha, lam, s):
    """``f(s) = 1/2 alpha s^T W s - u^T s + lam^T s``. W: (N, N) CSR; u, s: (N,); lam: scalar or (N,)."""
    return _dot(s, 0.5 * alpha * (W @ s) - u + lam)


def gradient(W, u, alpha, lam, s):
    """``g(s) = alpha W s - u + lam``: (N,) float64."""
    return alpha * (W @ s) - u + lam


def lipschitz_bound(W, alpha):
    """``alpha * max_i sum_j |W_ij|``, an upper bound on the Lipschitz constant of ``g``."""
    if W.nnz == 0:
        return 0.0
    return float(alpha * np.abs(W).sum(axis=1).max())


def projected_gradient(W, u, alpha, lam, s0, tol=1e-4, max_iter=200):
    """Projected gradient with step ``1 / lipschitz_bound``.

    W: (N, N) CSR symmetric; u, s0: (N,); lam: scalar or (N,).
    Stops when ``max |s_new - s| < tol`` or after ``max_iter`` steps.
    Returns ``(s, history)``: (N,) float64 and the objective at every iterate (s0 first).
    """
    L = lipschitz_bound(W, alpha)
    s = np.clip(np.asarray(s0, np.float64), 0.0, 1.0)
    ws = W @ s
    history = [_dot(s, 0.5 * alpha * ws - u + lam)]
    for _ in range(max_iter):
        g = alpha * ws - u + lam
        if L > 0:
            s_new = np.clip(s - g / L, 0.0, 1.0)
        else:                                  # alpha = 0: f is linear, jump to the vertex
            s_new = np.where(g < 0, 1.0, np.where(g > 0, 0.0, s))
        step = float(np.max(np.abs(s_new - s))) if s.size else 0.0
        s = s_new
        ws = W @ s
        history.append(_dot(s, 0.5 * alpha * ws - u + lam))
        if step < tol:
            break
    return s, history


def lbfgsb(W, u, alpha, lam, s0, tol=1e-4, max_iter=200):
    """The same relaxation by ``scipy.optimize.minimize(method="L-BFGS-B")``.

    Arguments and return as ``projected_gradient``; the history holds the objective
    at each accepted iterate.
    """
    s0 = np.clip(np.asarray(s0, np.float64), 0.0, 1.0)

    def fun(s):
        ws = W @ s
        return _dot(s, 0.5 * alpha * ws - u + lam), alpha * ws - u + lam

    history = [fun(s0)[0]]
    res = scipy.optimize.minimize(fun, s0, jac=True, method="L-BFGS-B",
                                  bounds=scipy.optimize.Bounds(0.0, 1.0),
                                  callback=lambda x: history.append(fun(x)[0]),
                                  options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-12})
    return np.clip(res.x, 0.0, 1.0), history


def _coordinate_descent(indptr, indices, data, s, u, lam, alpha, order, hist):
    """Sweeps of exact coordinate minimisation until no node changes (see the module).

    indptr, indices, data: CSR of a symmetric W with zero diagonal; s: (N,) float64,
    updated in place; u, lam: (N,); order: (N,) visiting order; hist: (max_sweeps,)
    receives f after each sweep. Returns the number of sweeps run.
    """
    n = s.shape[0]
    ws = np.zeros(n)
    for sweep in range(hist.shape[0]):
        for i in range(n):                                   # exact W s, once per sweep
            acc = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                acc += data[p] * s[indices[p]]
            ws[i] = acc
        changed = 0
        for t in range(n):
            i = order[t]
            g = alpha * ws[i] - u[i] + lam[i]
            new = 1.0 if g < 0 else (0.0 if g > 0 else (1.0 if s[i] >= 0.5 else 0.0))
            d = new - s[i]
            if d != 0.0:
                s[i] = new
                changed += 1
                for p in range(indptr[i], indptr[i + 1]):    # W symmetric: column i = row i
                    ws[indices[p]] += data[p] * d
        f = 0.0
        for i in range(n):
            f += s[i] * (0.5 * alpha * ws[i] - u[i] + lam[i])
        hist[sweep] = f
        if changed == 0:
            return sweep + 1
    return hist.shape[0]


_coordinate_descent_jit = numba.njit(cache=True)(_coordinate_descent)


def round_to_vertex(W, u, alpha, lam, s, order, max_sweeps=100):
    """Stage 2: coordinate descent from ``s`` to a binary 1-opt point.

    Returns ``(s_binary, history)``: (N,) float64 in {0, 1}, f after each sweep.
    """
    s = np.array(s, np.float64)
    hist = np.empty(max_sweeps)
    lam = np.broadcast_to(np.asarray(lam, np.float64), s.shape).copy()
    sweeps = _coordinate_descent_jit(W.indptr.astype(np.int64), W.indices.astype(np.int64),
                                     W.data.astype(np.float64), s, np.asarray(u, np.float64),
                                     lam, float(alpha), np.asarray(order, np.int64), hist)
    return s, hist[:sweeps].tolist()


@dataclass
class Solution:
    """What ``solve`` / ``fit_lambda`` return.

    s: (N,) float64 in {0, 1}; lam: (G,) per-group lambda; history: objective per
    iterate of the final solve (relaxation, then one value per sweep), non-increasing;
    counts: (G,) support size per group; relax_iters, sweeps: work of the final solve;
    steps: bisection steps; trace: one (lam, counts) pair per bisection step.
    """
    s: np.ndarray
    lam: np.ndarray
    history: list
    counts: np.ndarray
    relax_iters: int = 0
    sweeps: int = 0
    steps: int = 0
    converged: bool = True
    trace: list = field(default_factory=list)


def solve(W, u, alpha, lam, s0, order, groups=None, method="pg", tol=1e-4, max_iter=200):
    """Both stages at a fixed ``lam`` (scalar, or (G,) with ``groups: (N,)`` int)."""
    n = u.shape[0]
    lam_node = _lam_node(lam, groups, n)
    relax = {"pg": projected_gradient, "lbfgsb": lbfgsb}.get(method)
    if relax is None:
        raise ValueError(f"method must be 'pg' or 'lbfgsb', got {method!r}")
    s, hist = relax(W, u, alpha, lam_node, s0, tol, max_iter)
    s, hist2 = round_to_vertex(W, u, alpha, lam_node, s, order)
    g = np.zeros(n, np.int64) if groups is None else groups
    counts = np.bincount(g, weights=s > 0.5, minlength=len(np.atleast_1d(lam))).astype(np.int64)
    return Solution(s, np.atleast_1d(np.asarray(lam, np.float64)), hist + hist2, counts,
                    relax_iters=len(hist) - 1, sweeps=len(hist2))


def fit_lambda(W, u, alpha, targets, groups=None, tol=0.01, max_steps=40, seed=0,
               method="pg", relax_tol=1e-4, relax_max_iter=200):
    """Bisection on ``lambda`` (one per group) until every group's support size is
    within ``floor(tol * target)`` of its target.

    W: (N, N) CSR; u: (N,) float64; targets: (G,) int, wanted selections per group;
    groups: (N,) int in [0, G) or None (one group). Returns the ``Solution`` with the
    smallest total excess miss over all steps (the last one when all converge).
    """
    n = u.shape[0]
    groups = np.zeros(n, np.int64) if groups is None else np.asarray(groups, np.int64)
    targets = np.asarray(targets, np.int64)
    sizes = np.bincount(groups, minlength=targets.size)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    jitter = rng.uniform(-1e-3, 1e-3, n)      # breaks ties between identical nodes
    allowed = np.floor(tol * targets)
    # brackets: at lambda >= max u nothing is selected, at min u - L everything is
    lo = np.full(targets.size, float(u.min()) - lipschitz_bound(W, alpha) - 1e-9)
    hi = np.full(targets.size, float(u.max()) + 1e-9)
    # first guess: the alpha = 0 answer, between the m-th and (m+1)-th best u per group
    srt = np.lexsort((-u, groups))
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pick = lambda m: u[srt[np.clip(start + m, start, start + sizes - 1)]]   # noqa: E731
    lam = np.clip(0.5 * (pick(targets - 1) + pick(targets)), lo, hi)
    lam = np.where(targets >= sizes, lo, lam)
    s = np.clip(u - lam[groups] + jitter, 0.0, 1.0)
    best, best_miss, trace = None, np.inf, []
    for step in range(1, max_steps + 1):
        sol = solve(W, u, alpha, lam, s, order, groups, method, relax_tol, relax_max_iter)
        s = sol.s
        miss = np.abs(sol.counts - targets)
        excess = float(np.maximum(miss - allowed, 0).sum())
        trace.append((lam.copy(), sol.counts.copy()))
        if excess < best_miss:
            best, best_miss = sol, excess
            best.steps = step
        if excess == 0:
            break
        lo = np.where(sol.counts > targets + allowed, lam, lo)     # too many: raise lambda
        hi = np.where(sol.counts < targets - allowed, lam, hi)     # too few: lower it
        if np.all((miss <= allowed) | (hi - lo < 1e-12)):
            break
        lam = np.where(miss <= allowed, lam, 0.5 * (lo + hi))
    best.converged = best_miss == 0
    best.trace = trace
    return best


def _pick(members, a, b, s, ws, u, lam, alpha, tie, selected, sign):
    """The node of group members[a:b] with s == selected minimising sign * g_i (-1: none)."""
    best, best_key, best_tie = -1, 0.0, 0
    for t in range(a, b):
        i = members[t]
        if (s[i] > 0.5) != selected:
            continue
        key = sign * (alpha * ws[i] - u[i] + lam[i])
        if best < 0 or key < best_key or (key == best_key and tie[i] < best_tie):
            best, best_key, best_tie = i, key, tie[i]
    return best


def _match_counts(indptr, indices, data, s, u, lam, alpha, members, start, targets, tie,
                  max_swaps):
    """Exact counts per group, then 1-swaps that lower f (see ``match_targets``).

    s: (N,) in {0, 1}, updated in place; members: (N,) node ids sorted by group, group
    ``g`` at ``members[start[g]:start[g + 1]]``; tie: (N,) distinct ranks for ties.
    Returns ``(changes, swaps)``.
    """
    n = s.shape[0]
    ws = np.zeros(n)
    for i in range(n):
        acc = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            acc += data[p] * s[indices[p]]
        ws[i] = acc
    changes, swaps = 0, 0
    for grp in range(targets.shape[0]):
        a, b = start[grp], start[grp + 1]
        count = 0
        for t in range(a, b):
            count += s[members[t]] > 0.5
        while count != targets[grp]:                 # add cheapest / drop least useful
            adding = count < targets[grp]
            i = _pick(members, a, b, s, ws, u, lam, alpha, tie, not adding,
                      1.0 if adding else -1.0)
            d = 1.0 if adding else -1.0
            s[i] += d
            count += 1 if adding else -1
            changes += 1
            for p in range(indptr[i], indptr[i + 1]):
                ws[indices[p]] += data[p] * d
        for _ in range(max_swaps):                   # swap worst selected for best unselected
            i = _pick(members, a, b, s, ws, u, lam, alpha, tie, True, -1.0)
            j = _pick(members, a, b, s, ws, u, lam, alpha, tie, False, 1.0)
            if i < 0 or j < 0:
                break
            w_ij = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                if indices[p] == j:
                    w_ij = data[p]
            gi = alpha * ws[i] - u[i] + lam[i]
            gj = alpha * ws[j] - u[j] + lam[j]
            if gj - gi - alpha * w_ij >= -1e-12 * (1.0 + abs(gi) + abs(gj)):
                break                                # f(swap) - f = gj - gi - alpha W_ij
            s[i] = 0.0
            s[j] = 1.0
            swaps += 1
            for p in range(indptr[i], indptr[i + 1]):
                ws[indices[p]] -= data[p]
            for p in range(indptr[j], indptr[j + 1]):
                ws[indices[p]] += data[p]
    return changes, swaps


_pick = numba.njit(cache=True)(_pick)
_match_counts_jit = numba.njit(cache=True)(_match_counts)


def match_targets(W, u, alpha, lam, s, targets, groups=None, seed=0, max_swaps=None,
                  return_stats=False):
    """Exactly ``targets[g]`` selected nodes per group, starting from the support of ``s``.

    W: (N, N) CSR symmetric; u: (N,); lam: scalar or (N,) per node; s: (N,) in {0, 1};
    targets: (G,) int; groups: (N,) int or None.
    1. Count: while a group has too few nodes, add its unselected node of least
       gradient ``g_i`` (adding changes f by ``g_i``); while too many, drop the selected
       node of largest ``g_i`` (dropping changes f by ``-g_i``); ``W s`` is updated after
       each change. The support is kept as it is when its size is right.
    2. Swaps: in each group, swap the selected node of largest ``g_i`` for the unselected
       node of least ``g_j`` while that lowers f (by ``g_i - g_j + alpha W_ij > 0``), at
       most ``max_swaps`` (default N) per group. ``lambda`` cancels out of a swap, so this
       is local search on ``1/2 alpha s^T W s - u^T s`` at the exact count.
    Ties go to a seeded random order. Returns (N,) bool, and with ``return_stats`` also
    ``(changes, swaps)``.
    """
    n = s.shape[0]
    groups = np.zeros(n, np.int64) if groups is None else np.asarray(groups, np.int64)
    targets = np.asarray(targets, np.int64)
    members = np.argsort(groups, kind="stable").astype(np.int64)
    start = np.concatenate([[0], np.cumsum(np.bincount(groups, minlength=targets.size))])
    tie = np.random.default_rng(seed).permutation(n).astype(np.int64)
    out = (np.asarray(s) > 0.5).astype(np.float64)
    lam = np.broadcast_to(np.asarray(lam, np.float64), (n,)).copy()
    stats = _match_counts_jit(W.indptr.astype(np.int64), W.indices.astype(np.int64),
                      W.data.astype(np.float64), out, np.asarray(u, np.float64), lam,
                      float(alpha), members, start.astype(np.int64), targets, tie,
                      n if max_swaps is None else int(max_swaps))
    return (out > 0.5, stats) if return_stats else out > 0.5
