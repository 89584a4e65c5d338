"""Face verification: cosine scores, the LFW 10-fold protocol, and the pairs pipeline.

A pair is accepted as "same identity" when ``score >= threshold`` (as in
:mod:`tinyface.eval.roc`).

LFW protocol (View 2): the 6,000 pairs come in 10 folds of 300 same + 300 different
pairs. For each fold, the threshold that maximises accuracy on the *other nine* folds
is applied to it; the reported figure is the mean (and spread) of the 10 fold
accuracies. ``n_folds=K`` (the CLI's ``--folds K``) evaluates only the first K folds,
each still with its threshold picked on all the other folds.

Cross-resolution verification: side ``a`` of each pair (the first face of a
``pairs.txt`` line) is the HR gallery face, side ``b`` the LR probe face;
:func:`verify_pairs` embeds them with two functions.

    from tinyface.eval import verify_pairs, indexed_fn
    student.eval(); teacher.eval()
    res = verify_pairs(indexed_fn(teacher.embed, ds.images),          # HR gallery
                       indexed_fn(student.embed, degrade(ds.images, 16)),  # LR probe
                       ds, load_pairs("lfw_pairs.txt"))
    print(res["accuracy"], res["std"], res["auc"], res["tar_at_far"])
"""
from __future__ import annotations

import numpy as np

from tinyface.data.pairs import resolve_pairs

from .extract import l2_normalize
from .roc import auc, check_scores_same, roc_curve, tar_at_far, threshold_at_far


def cosine_scores(emb_a, emb_b, eps=1e-12):
    """Row-wise cosine similarity: emb_a (P, D), emb_b (P, D) -> (P,) float64 in [-1, 1].
    A zero row scores 0 against anything."""
    a = np.asarray(emb_a, dtype=np.float64)
    b = np.asarray(emb_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"embeddings must be (P, D), got {a.shape} and {b.shape}")
    if a.shape != b.shape:
        raise ValueError(f"embedding shapes differ: {a.shape} vs {b.shape}")
    if len(a) == 0:
        raise ValueError("no pairs: embeddings are empty")
    return np.sum(l2_normalize(a, eps) * l2_normalize(b, eps), axis=1)


def accuracy_at(scores, same, threshold):
    """Fraction of pairs classified right by ``score >= threshold``: scores, same (P,)."""
    s, y = check_scores_same(scores, same)
    return float(np.mean((s >= threshold) == y))


def best_threshold(scores, same):
    """The threshold that maximises verification accuracy on these pairs.

    scores: (P,) float; same: (P,) bool. Candidates: the lowest score (accept all),
    the midpoints between consecutive distinct scores, and one above the highest
    (accept none); the accuracy of every candidate comes from cumulative counts over
    the sorted scores, O(P log P). Ties in accuracy go to the lowest threshold.
    Returns a float.
    """
    s, y = check_scores_same(scores, same)
    t, _ = _threshold_sweep(s, y)
    return t


def _threshold_sweep(s, y):
    """(best threshold, its number of correct pairs) for validated s, y."""
    order = np.argsort(s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]                       # ascending
    n = len(s)
    n_same = int(y.sum())
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])  # (m,) group starts
    u = s_sorted[starts]                                          # (m,) distinct scores
    # candidate i accepts the groups i..m-1 (i = m: accept nothing)
    idx = np.r_[starts, n]                                        # (m+1,) pairs rejected
    cum_same = np.r_[0, np.cumsum(y_sorted)]                      # (n+1,)
    rejected_same = cum_same[idx]
    rejected_diff = idx - rejected_same
    correct = rejected_diff + (n_same - rejected_same)            # (m+1,)
    i = int(np.argmax(correct))
    if i == 0:
        t = u[0]
    elif i == len(u):
        t = u[-1] + max(1.0, abs(u[-1]))
    else:
        lo, hi = u[i - 1], u[i]
        t = lo + (hi - lo) * 0.5
        if not lo < t <= hi:                                      # adjacent floats
            t = hi
    return float(t), int(correct[i])


def ten_fold_accuracy(scores, same, fold_ids, n_folds=None):
    """The LFW protocol: each fold's accuracy at the threshold chosen on the other folds.

    scores: (P,) float; same: (P,) bool; fold_ids: (P,) int, the fold of each pair
    (any integers; folds are taken in increasing order). n_folds: evaluate only the
    first K folds (default: all); thresholds still come from *all* the other folds.
    At least 2 folds are needed.

    Returns a dict:
      ``mean``, ``std`` (population std of the fold accuracies, ddof=0, as commonly
      reported), ``stderr`` (sample std / sqrt(K), the LFW README's standard error;
      0 for K=1), ``per_fold`` (list of K floats), ``thresholds`` (list of K floats),
      ``folds`` (list of the K evaluated fold ids).
    """
    s, y = check_scores_same(scores, same)
    f = np.asarray(fold_ids)
    if f.shape != s.shape:
        raise ValueError(f"fold_ids has shape {f.shape}, scores {s.shape}")
    if f.dtype.kind not in "iu":
        raise ValueError(f"fold_ids must be integers, got dtype {f.dtype}")
    folds = np.unique(f)
    if len(folds) < 2:
        raise ValueError(f"the fold protocol needs at least 2 folds (thresholds are chosen "
                         f"on the other folds), got {len(folds)}")
    k = len(folds) if n_folds is None else int(n_folds)
    if not 1 <= k <= len(folds):
        raise ValueError(f"n_folds must be in 1..{len(folds)}, got {n_folds}")
    per_fold, thresholds = [], []
    for fold in folds[:k]:
        test = f == fold
        t, _ = _threshold_sweep(s[~test], y[~test])             # chosen on the other folds
        thresholds.append(t)
        per_fold.append(float(np.mean((s[test] >= t) == y[test])))
    acc = np.array(per_fold)
    return {"mean": float(acc.mean()), "std": float(acc.std()),
            "stderr": float(acc.std(ddof=1) / np.sqrt(k)) if k > 1 else 0.0,
            "per_fold": per_fold, "thresholds": thresholds,
            "folds": [int(x) for x in folds[:k]]}


def _embed_rows(embed_fn, rows, batch_size, name):
    """embed_fn over rows (n,) in chunks of batch_size -> (n, D) float64."""
    out = None
    for start in range(0, len(rows), batch_size):
        idx = rows[start:start + batch_size]
        e = np.asarray(embed_fn(idx))
        if e.ndim != 2 or len(e) != len(idx):
            raise ValueError(f"{name} returned shape {e.shape} for {len(idx)} indices; "
                             f"expected ({len(idx)}, D)")
        if not np.isfinite(e).all():
            raise ValueError(f"{name} returned non-finite embeddings (NaN or inf)")
        if out is None:
            out = np.empty((len(rows), e.shape[1]), np.float64)
        elif e.shape[1] != out.shape[1]:
            raise ValueError(f"{name} returned D={e.shape[1]} after D={out.shape[1]}")
        out[start:start + len(idx)] = e
    return out


def resolve_folds(pairs, ds, strict=True):
    """Pairs (a list of folds, as from :func:`tinyface.data.load_pairs`; a single
    fold's list of entries also works) -> ``(a, b, same, fold_ids, n_missing)`` with
    a, b: (P,) int64 rows of ``ds``, same: (P,) bool, fold_ids: (P,) int64 0-based.
    ``strict``: a missing image raises DataError; otherwise the pair is dropped (warned)
    and counted in n_missing."""
    if not pairs:
        raise ValueError("no pairs given")
    folds = pairs if isinstance(pairs[0], list) else [pairs]
    parts = []
    missing = 0
    for k, fold in enumerate(folds):
        a, b, same = resolve_pairs(fold, ds, strict=strict)
        missing += len(fold) - len(a)
        parts.append((a, b, same, np.full(len(a), k, np.int64)))
    a, b, same, fid = (np.concatenate([p[i] for p in parts]) for i in range(4))
    return a, b, same, fid, missing


def verify_pairs(embed_fn_a, embed_fn_b, ds, pairs, folds=None, batch_size=256,
                 far_target=1e-2, strict=True):
    """Verification on a pairs list: scores, the 10-fold accuracy, ROC, AUC, TAR@FAR.

    embed_fn_a, embed_fn_b: callables ``embed_fn(indices) -> (n, D)`` giving the
    embeddings of the dataset rows ``indices`` ((n,) int64). The caller closes over
    its images and model (see :func:`tinyface.eval.extract.indexed_fn`; the model must
    be in eval mode). Side a (the first face of each pair) goes through
    ``embed_fn_a``, side b through ``embed_fn_b``: for cross-resolution verification,
    fn_a embeds the HR gallery face and fn_b the LR probe face. ``embed_fn_b=None``
    (or the same object as fn_a) means one function: every needed row is embedded
    once. Rows are deduplicated per side and passed in chunks of ``batch_size``.
    ds: the :class:`tinyface.data.Dataset` whose rows the pairs resolve to.
    pairs: the list of folds from :func:`tinyface.data.load_pairs`.
    folds: evaluate only the first K folds (None: all); every pair is still embedded
    and scored, since each fold's threshold is chosen on all the other folds.
    far_target: the FAR of the reported TAR. strict: see :func:`resolve_folds`.

    Returns a dict:
      ``accuracy``, ``std``, ``stderr``, ``per_fold``, ``thresholds``, ``folds``: from
      :func:`ten_fold_accuracy`;
      ``roc``: (far, tar, thresholds) over the pairs of the evaluated folds;
      ``auc``; ``tar_at_far`` (at ``far_target``); ``far_target``;
      ``threshold_at_far``: its score threshold;
      ``scores`` (P,), ``same`` (P,), ``fold_ids`` (P,), ``a``, ``b`` (P,) rows of ds;
      ``n_pairs`` (P, resolved), ``n_missing`` (dropped with ``strict=False``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    a, b, same, fold_ids, missing = resolve_folds(pairs, ds, strict=strict)
    if len(a) == 0:
        raise ValueError("none of the pairs resolved to images of the dataset")
    single = embed_fn_b is None or embed_fn_b is embed_fn_a
    if single:
        rows, inv = np.unique(np.r_[a, b], return_inverse=True)
        emb = _embed_rows(embed_fn_a, rows, batch_size, "embed_fn_a")
        ea, eb = emb[inv[:len(a)]], emb[inv[len(a):]]
    else:
        rows_a, inv_a = np.unique(a, return_inverse=True)
        rows_b, inv_b = np.unique(b, return_inverse=True)
        ea = _embed_rows(embed_fn_a, rows_a, batch_size, "embed_fn_a")[inv_a]
        eb = _embed_rows(embed_fn_b, rows_b, batch_size, "embed_fn_b")[inv_b]
    if ea.shape[1] != eb.shape[1]:
        raise ValueError(f"embed_fn_a gives D={ea.shape[1]} but embed_fn_b D={eb.shape[1]}")
    scores = cosine_scores(ea, eb)
    res = ten_fold_accuracy(scores, same, fold_ids, n_folds=folds)
    evaluated = np.isin(fold_ids, res["folds"])
    far, tar, thr = roc_curve(scores[evaluated], same[evaluated])
    return {"accuracy": res["mean"], "std": res["std"], "stderr": res["stderr"],
            "per_fold": res["per_fold"], "thresholds": res["thresholds"],
            "folds": res["folds"], "roc": (far, tar, thr), "auc": auc(far, tar),
            "tar_at_far": tar_at_far(far, tar, far_target), "far_target": far_target,
            "threshold_at_far": threshold_at_far(far, thr, far_target),
            "scores": scores, "same": same, "fold_ids": fold_ids, "a": a, "b": b,
            "n_pairs": int(len(a)), "n_missing": int(missing)}
