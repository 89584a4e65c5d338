"""A linear softmax head on frozen face descriptors, and its out-of-fold scores.

    head = fit_softmax_head(x, y, num_classes=158, penalty=1e-4)  # x: (N, D) descriptors
    head.logits(x_test)                                           # (M, K)
    fit = fit_teacher_head(x, y, 158, seed=0)   # penalty chosen on a validation split
    fit.head, fit.oof_logits, fit.record        # full head, (N, K) out-of-fold logits

The head is multinomial logistic regression on the L2-normalised descriptors::

    logits = n(x) @ W + b,          n(x) = x / ||x||,   W: (D, K), b: (K,)
    J(W, b) = mean_i CE(logits_i, y_i) + penalty / 2 * (||W||^2 + ||b||^2)

J is strictly convex, so its minimum is unique; L-BFGS (``scipy.optimize``, float64,
from zeros) stops near it, within its tolerances, and the same inputs give the same head
(on one BLAS thread, see Threads: the rounding of a multi-threaded product can move the
stopping point by about 0.005 of validation cross-entropy). The bias is penalised too,
so that a class with no face in a fold's training part gets finite logits instead of a
bias running off to minus infinity.
With unit-length inputs the penalty alone sets the scale of the logits (their
"temperature"); a separate temperature would be a second knob for the same thing.

``fit_teacher_head`` is the recipe of the pretrained teacher (``distill.frozen_teacher``):

1. ``penalty``: the one of ``penalties`` with the lowest mean cross-entropy on a
   validation split carved from the training faces (``val_fraction`` of each
   identity's faces, at least 1 when it has 2 or more), fitted on the rest;
2. out-of-fold logits: the training faces are dealt to ``folds`` folds within each
   identity; each fold's faces are scored by a head fitted (at that penalty) on the
   other folds, so a face's logits say what the descriptors tell about it, not what a
   head fitted on it memorised;
3. the head used on test faces: fitted on every training face.

The one shared choice is the penalty (a single number, picked on step 1's split).

Threads. Each L-BFGS step is a few small BLAS calls (``x @ W`` and scipy's own vector
updates). With OpenBLAS's threads on a busy 2-core machine each call waits for threads
to wake (the threading trap of ``tinyface.kernels.threading``): on LFW-158 a fit took
minutes instead of seconds. ``one_blas_thread`` sets every loaded OpenBLAS to one thread
during a fit (through its ``*_set_num_threads``, as threadpoolctl does) and restores it;
where none is found (another BLAS, another OS) it does nothing.
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize  # also loads scipy's BLAS, so that one_blas_thread finds it

__all__ = ["SoftmaxHead", "HeadFit", "l2_rows", "head_loss", "fit_softmax_head",
           "stratified_folds", "validation_mask", "cross_val_logits", "fit_teacher_head",
           "DEFAULT_PENALTIES"]

# decades around what LFW-158 needs: dlib's descriptors of its training faces took 1e-7
# (validation cross-entropy 0.42 / 0.40 / 0.47 / 0.84 at 1e-8 / 1e-7 / 1e-6 / 1e-5;
# top-1 about 90% at each); tiny synthetic sets take 1e-4
DEFAULT_PENALTIES = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3)


_BLAS_THREAD_SYMBOLS = (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                        ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
                        ("openblas_get_num_threads", "openblas_set_num_threads"))
_pools = None


def _openblas_pools():
    """``[(get_num_threads, set_num_threads)]`` of each OpenBLAS loaded (Linux only)."""
    global _pools
    if _pools is None:
        _pools = []
        try:
            with open("/proc/self/maps") as f:
                paths = sorted({line.split()[-1] for line in f
                                if "openblas" in line.lower() and line.split()[-1].startswith("/")})
        except OSError:
            paths = []
        for path in paths:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for get, put in _BLAS_THREAD_SYMBOLS:
                if hasattr(lib, get) and hasattr(lib, put):
                    _pools.append((getattr(lib, get), getattr(lib, put)))
                    break
    return _pools


@contextmanager
def one_blas_thread():
    """Run the block with every loaded OpenBLAS on one thread (module docstring)."""
    pools = _openblas_pools()
    before = [int(get()) for get, _ in pools]
    for _, put in pools:
        put(1)
    try:
        yield
    finally:
        for (_, put), n in zip(pools, before):
            put(n)


def l2_rows(x, eps=1e-12):
    """x: (N, D) -> (N, D) float64, each row scaled to unit length (zero rows stay 0)."""
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def head_loss(W, b, x, y, penalty):
    """The head's objective and its gradients.

    W: (D, K); b: (K,); x: (N, D) unit-length inputs; y: (N,) int in [0, K);
    penalty: >= 0. Returns ``(J, dW (D, K), db (K,))``, all float64.
    """
    n = len(x)
    z = x @ W + b                                              # (N, K)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)                                              # (N, K)
    s = p.sum(axis=1, keepdims=True)                           # (N, 1)
    rows = np.arange(n)
    ce = float(np.mean(np.log(s[:, 0]) - z[rows, y]))
    p /= s                                                     # (N, K) softmax
    p[rows, y] -= 1.0                                          # dCE/dz, summed over N
    p /= n
    dW = x.T @ p + penalty * W                                 # (D, K)
    db = p.sum(axis=0) + penalty * b                           # (K,)
    J = ce + 0.5 * penalty * (float(np.sum(W * W)) + float(np.sum(b * b)))
    return J, dW, db


@dataclass
class SoftmaxHead:
    """``logits(x) = l2_rows(x) @ weight + bias``; weight: (D, K), bias: (K,) float32."""
    weight: np.ndarray
    bias: np.ndarray
    penalty: float
    info: dict = field(default_factory=dict)

    def logits(self, x):
        """x: (N, D) raw descriptors -> (N, K) float32."""
        return (l2_rows(x) @ self.weight + self.bias).astype(np.float32)


def fit_softmax_head(x, y, num_classes, penalty, max_iter=2000, tol=1e-9):
    """Minimise J (module docstring) by L-BFGS from zeros: a ``SoftmaxHead``.

    x: (N, D) raw descriptors (normalised here); y: (N,) int in [0, num_classes);
    penalty: > 0. ``info``: iterations, converged, final J.
    """
    xn = l2_rows(x)                                            # (N, D)
    y = np.asarray(y, np.int64)
    d, k = xn.shape[1], int(num_classes)
    if len(xn) != len(y) or len(y) == 0 or y.min() < 0 or y.max() >= k:
        raise ValueError(f"need N >= 1 descriptors with labels in [0, {k}), got {xn.shape} "
                         f"and {y.shape} labels")
    if not penalty > 0:
        raise ValueError(f"the head's penalty must be > 0, got {penalty}")

    def fun(theta):
        J, dW, db = head_loss(theta[:d * k].reshape(d, k), theta[d * k:], xn, y, penalty)
        return J, np.concatenate([dW.ravel(), db])

    with one_blas_thread():
        res = scipy.optimize.minimize(fun, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                                      options={"maxiter": int(max_iter), "gtol": 1e-6,
                                               "ftol": tol})
    W = res.x[:d * k].reshape(d, k).astype(np.float32)
    b = res.x[d * k:].astype(np.float32)
    return SoftmaxHead(W, b, float(penalty), {"iterations": int(res.nit),
                                              "converged": bool(res.success),
                                              "objective": float(res.fun)})


def _per_identity(y, seed):
    """Each identity's rows in a seeded random order: a list of (n_c,) int64 arrays."""
    rng = np.random.default_rng([int(seed), 0x4EAD])
    return [rows[rng.permutation(len(rows))] for rows in
            (np.flatnonzero(y == c) for c in np.unique(y))]


def stratified_folds(y, folds=5, seed=0):
    """(N,) int64 fold of each face: each identity's faces dealt round-robin to the
    folds in a seeded random order, from a seeded random first fold (balanced sizes)."""
    y = np.asarray(y)
    out = np.empty(len(y), np.int64)
    rng = np.random.default_rng([int(seed), 0xF01D])
    for rows in _per_identity(y, seed):
        out[rows] = (rng.integers(folds) + np.arange(len(rows))) % folds
    return out


def validation_mask(y, fraction=0.2, seed=0):
    """(N,) bool, the validation faces: round(fraction * n) of each identity's n faces,
    at least 1 and at most n - 1 (none for an identity with a single face)."""
    y = np.asarray(y)
    mask = np.zeros(len(y), bool)
    for rows in _per_identity(y, seed + 1):
        if len(rows) >= 2:
            mask[rows[:int(np.clip(round(fraction * len(rows)), 1, len(rows) - 1))]] = True
    return mask


def cross_val_logits(x, y, num_classes, penalty, fold_ids):
    """Out-of-fold logits: row i from a head fitted on the faces outside fold_ids[i].

    x: (N, D); y: (N,); fold_ids: (N,) int. Returns ``((N, K) float32, [fold info])``.
    """
    out = np.empty((len(y), int(num_classes)), np.float32)
    infos = []
    for f in np.unique(fold_ids):
        held = fold_ids == f
        head = fit_softmax_head(x[~held], y[~held], num_classes, penalty)
        out[held] = head.logits(x[held])
        infos.append(dict(head.info, fold=int(f), faces=int(held.sum())))
    return out, infos


def _scores(logits, y):
    """Mean cross-entropy, top-1 and the confidence p(y) of each row."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))   # (N, K)
    rows = np.arange(len(y))
    return (float(-logp[rows, y].mean()), float(np.mean(logits.argmax(axis=1) == y)),
            np.exp(logp[rows, y]))


@dataclass
class HeadFit:
    """head: fitted on every training face; oof_logits: (N, K) float32; folds: (N,)
    int64; record: JSON-able (the penalty search, out-of-fold scores, fits)."""
    head: SoftmaxHead
    oof_logits: np.ndarray
    folds: np.ndarray
    record: dict


def fit_teacher_head(x, y, num_classes, penalties=DEFAULT_PENALTIES, folds=5,
                     val_fraction=0.2, seed=0, log=None):
    """The pretrained teacher's head on the target identities (module docstring, 1-3).

    x: (N, D) descriptors of the training faces; y: (N,) int labels; seed: the
    validation split and the folds. Returns a ``HeadFit``.
    """
    say = log or (lambda msg: None)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.int64)
    val = validation_mask(y, val_fraction, seed)
    search = []
    for p in penalties:
        h = fit_softmax_head(x[~val], y[~val], num_classes, p)
        nll, top1, _ = _scores(h.logits(x[val]), y[val])
        search.append({"penalty": float(p), "val_nll": nll, "val_top1": top1,
                       "iterations": h.info["iterations"]})
        say(f"  head: penalty {p:g}: validation cross-entropy {nll:.3f}, top-1 "
            f"{100 * top1:.1f}% ({int(val.sum())} faces)")
    best = min(search, key=lambda r: r["val_nll"])["penalty"]
    at_edge = len(penalties) > 1 and best in (min(penalties), max(penalties))
    if at_edge:
        say(f"  head: warning: penalty {best:g} is at the edge of the grid "
            f"{[float(p) for p in penalties]}: widen head_penalties")
    fold_ids = stratified_folds(y, folds, seed)
    oof, fold_info = cross_val_logits(x, y, num_classes, best, fold_ids)
    nll, top1, conf = _scores(oof, y)
    head = fit_softmax_head(x, y, num_classes, best)
    record = {"form": "softmax on L2-normalised descriptors", "penalty": best,
              "penalties": [float(p) for p in penalties], "val_fraction": float(val_fraction),
              "validation_faces": int(val.sum()), "search": search, "at_edge": at_edge,
              "folds": int(folds),
              "seed": int(seed), "oof_nll": nll, "oof_top1": top1,
              "oof_confidence_below_half": float(np.mean(conf < 0.5)),
              "fold_fits": fold_info, "full_fit": head.info}
    say(f"head: penalty {best:g} (lowest validation cross-entropy); out of fold on the "
        f"{len(y)} training faces: top-1 {100 * top1:.1f}%, {100 * np.mean(conf < 0.5):.1f}% "
        f"with confidence p(y) < 0.5")
    return HeadFit(head, oof, fold_ids, record)
