"""Per-face regression weights of the distillation variants (``make_weights``).

    w = make_weights("selective", bank, split.y_train, ratio=0.5, seed=0)   # (N,) float32

The variant and ratio are checked by ``tinyface.distill.config``'s functions (the ones
``DistillConfig`` uses); the defaults of ``ratio`` and ``per_identity`` are its own.
"""
from __future__ import annotations

import numpy as np

from tinyface.distill.bank import FeatureBank
from tinyface.distill.config import REGRESSION_VARIANTS, DistillConfig, check_ratio, check_variant
from tinyface.select import select, target_counts

__all__ = ["make_weights"]


def _selection_mask(selection, n):
    mask = getattr(selection, "mask", selection)
    mask = np.asarray(mask)
    if mask.shape != (n,):
        raise ValueError(f"the selection has shape {mask.shape} but there are {n} training faces")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("the selection must be a boolean mask (or 0/1 values)")
        mask = mask.astype(bool)
    if not mask.any():
        raise ValueError("the selection is empty: no face is selected for distillation; "
                         "raise the ratio or check the selector's settings")
    return mask


def _selection_per_identity(selection, default):
    params = getattr(selection, "params", None)
    if isinstance(params, dict) and "per_identity" in params:
        return bool(params["per_identity"])
    return default


# ------------------------------------------------------------------- weights
def make_weights(variant, bank, labels, ratio=DistillConfig.ratio, seed=0, selection=None, *,
                 per_identity=DistillConfig.per_identity, select_kwargs=None, log=None):
    """Per-face regression weights ``(N,) float32`` for ``variant``.

    none, kd and the method variants (``selective-m`` too): zeros (no regression; a
    ``selective-m`` run takes its faces from ``make_weights("selective", ...) > 0``);
    full: ones; selective: the selection mask
    (``selection``: a ``SelectionResult`` or an (N,) bool mask; None: run
    ``tinyface.select.select(bank.embeddings, labels, bank.logits, ratio,
    per_identity=per_identity, seed=seed, **select_kwargs)``); random: a random subset
    drawn with ``seed`` of the selective size: the same count in every identity as the
    selection when it is per identity (``selection.params["per_identity"]``, else the
    ``per_identity`` argument), the same total count otherwise; without a selection the
    counts are the selector's targets for ``ratio``.
    Raises ``ValueError`` for an unknown variant, a ratio outside (0, 1], a bank that
    does not match ``labels``, or an empty selection.
    """
    check_variant(variant)
    ratio = check_ratio(ratio)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be an (N,) int array, got {labels.dtype} {labels.shape}")
    n = len(labels)
    if isinstance(bank, FeatureBank):
        bank.check(n)
    if variant not in REGRESSION_VARIANTS:
        return np.zeros(n, np.float32)
    if variant == "full":
        return np.ones(n, np.float32)
    if selection is None and variant == "selective":
        selection = _run_selection(bank, labels, ratio, seed, per_identity, select_kwargs, log)
    if variant == "selective":
        return _selection_mask(selection, n).astype(np.float32)
    # random: the selective size, drawn with the seed
    _, groups = np.unique(labels, return_inverse=True)
    groups = groups.ravel()
    if selection is not None:
        mask = _selection_mask(selection, n)
        per_id = _selection_per_identity(selection, bool(per_identity))
        counts = (np.bincount(groups, weights=mask, minlength=groups.max() + 1).astype(np.int64)
                  if per_id else np.array([int(mask.sum())]))
    else:
        per_id = bool(per_identity)
        sizes = np.bincount(groups) if per_id else np.array([n])
        counts = target_counts(ratio, sizes, per_id)
    rng = np.random.default_rng([int(seed), 0x5EED])
    w = np.zeros(n, np.float32)
    if per_id:
        for g, m in enumerate(counts):
            rows = np.flatnonzero(groups == g)
            w[rng.choice(rows, size=int(m), replace=False)] = 1.0
    else:
        w[rng.choice(n, size=int(counts[0]), replace=False)] = 1.0
    if not w.any():
        raise ValueError("the random subset is empty; raise the ratio")
    return w


def _run_selection(bank, labels, ratio, seed, per_identity, select_kwargs, log):
    kwargs = dict(select_kwargs or {})
    kwargs.setdefault("per_identity", bool(per_identity))
    return select(bank.embeddings, labels, bank.logits, ratio=ratio, seed=seed,
                  dim=bank.dim, log=log, **kwargs)
