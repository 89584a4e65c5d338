"""ROC curve of a verification score, its area, and TAR at a fixed FAR.

Convention (shared with :mod:`tinyface.eval.verification`): a pair is *accepted*
(predicted "same identity") when ``score >= threshold``. Higher scores mean more alike.

- TAR (true accept rate)  = accepted same pairs      / all same pairs;
- FAR (false accept rate) = accepted different pairs / all different pairs.

The curve is exact: one point per distinct score (tied scores move together, so a
tie between a same and a different pair gives a diagonal segment and counts one half
in the AUC, as in the Mann-Whitney statistic). Everything is vectorised, O(P log P).
"""
from __future__ import annotations

import numpy as np


def check_scores_same(scores, same, name="scores"):
    """Validate a score/label pair: returns ``(scores float64 (P,), same bool (P,))``.

    Raises ValueError for mismatched lengths, empty input, non-1-D input or
    non-finite scores.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same)
    if s.ndim != 1 or y.ndim != 1:
        raise ValueError(f"{name} and same must be 1-D (P,), got shapes {s.shape} and {y.shape}")
    if len(s) != len(y):
        raise ValueError(f"{name} has {len(s)} entries but same has {len(y)}")
    if len(s) == 0:
        raise ValueError(f"{name} is empty: no pairs to evaluate")
    if not np.isfinite(s).all():
        bad = int((~np.isfinite(s)).sum())
        raise ValueError(f"{name} holds {bad} non-finite value(s) (NaN or inf)")
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("same must be bool (or 0/1)")
        y = y.astype(bool)
    return s, y


def roc_curve(scores, same):
    """Exact ROC curve.

    scores: (P,) float, higher = more alike; same: (P,) bool, True for same-identity pairs.
    Both classes must be present.

    Returns ``(far (M,), tar (M,), thresholds (M,))``, M = distinct scores + 1, with
    thresholds decreasing: point i accepts the pairs with ``score >= thresholds[i]``.
    The first point is ``(0, 0)`` at threshold ``+inf`` (accept nothing); the last is
    ``(1, 1)`` at the lowest score (accept everything). far and tar are non-decreasing.
    """
    s, y = check_scores_same(scores, same)
    n_same = int(y.sum())
    n_diff = len(y) - n_same
    if n_same == 0 or n_diff == 0:
        raise ValueError(f"ROC needs both same and different pairs, got {n_same} same and "
                         f"{n_diff} different")
    order = np.argsort(-s, kind="stable")                 # (P,) descending scores
    s_sorted, y_sorted = s[order], y[order]
    # the last position of each run of equal scores: thresholds are distinct scores
    last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])   # (M-1,)
    tp = np.cumsum(y_sorted)[last]                        # same pairs with score >= t
    fp = (last + 1) - tp                                  # different pairs with score >= t
    tar = np.r_[0.0, tp / n_same]
    far = np.r_[0.0, fp / n_diff]
    thresholds = np.r_[np.inf, s_sorted[last]]
    return far, tar, thresholds


def auc(far, tar):
    """Area under the ROC curve by the trapezoid rule.

    far, tar: (M,) with far non-decreasing (as returned by :func:`roc_curve`), M >= 2.
    Returns a float in [0, 1] for a curve from (0, 0) to (1, 1).
    """
    x = np.asarray(far, dtype=np.float64)
    t = np.asarray(tar, dtype=np.float64)
    if x.ndim != 1 or x.shape != t.shape:
        raise ValueError(f"far and tar must be 1-D of equal length, got {x.shape} and {t.shape}")
    if len(x) < 2:
        raise ValueError("a curve needs at least 2 points for an area")
    if np.any(np.diff(x) < 0):
        raise ValueError("far must be non-decreasing (as returned by roc_curve)")
    return float(np.sum(np.diff(x) * (t[1:] + t[:-1]) * 0.5))


def tar_at_far(far, tar, target=1e-2):
    """TAR at a fixed FAR: the largest TAR among the ROC points with ``FAR <= target``.

    No interpolation: the value is reached by an actual threshold (a step-wise,
    conservative reading of the curve; interpolating between points would report
    a TAR no single threshold achieves). With few different pairs the FAR grid is
    coarse: LFW's 3,000 different pairs give steps of 1/3000.
    far, tar: (M,) as returned by :func:`roc_curve`; target in [0, 1].
    """
    x = np.asarray(far, dtype=np.float64)
    t = np.asarray(tar, dtype=np.float64)
    if x.ndim != 1 or x.shape != t.shape or len(x) == 0:
        raise ValueError(f"far and tar must be 1-D, non-empty, of equal length, got "
                         f"{x.shape} and {t.shape}")
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target FAR must be in [0, 1], got {target}")
    ok = x <= target
    if not ok.any():
        return 0.0
    return float(t[ok].max())


def threshold_at_far(far, thresholds, target=1e-2):
    """The lowest threshold whose FAR is ``<= target`` (the operating point of
    :func:`tar_at_far`): accept pairs with ``score >= threshold``."""
    x = np.asarray(far, dtype=np.float64)
    th = np.asarray(thresholds, dtype=np.float64)
    if x.shape != th.shape or len(x) == 0:
        raise ValueError("far and thresholds must be 1-D, non-empty, of equal length")
    ok = np.flatnonzero(x <= target)
    return float(th[ok[-1]]) if len(ok) else float("inf")
