"""Evaluation protocols: closed-set identification and LFW-style verification.

An identification split is given by rows of the dataset: ``(train_rows, test_rows)``,
(n,) int64 each, over the identities kept; ``split_datasets`` gives their faces with
labels renumbered 0..K-1. ``data.split.FaceSplit`` holds the faces of one such split.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dataset import Dataset, DataError
from .pairs import fold_identities, resolve_pairs


@dataclass
class VerificationSplit:
    """train: the identities of the other folds (relabelled); a, b: (P,) int64 rows
    of the original dataset for the test fold's pairs; same: (P,) bool."""
    train: Dataset
    a: np.ndarray
    b: np.ndarray
    same: np.ndarray
    test_fold: int
    train_rows: np.ndarray


def identification_split(ds: Dataset, min_images: int = 10, train_fraction: float = 0.5,
                         seed: int = 0):
    """Keep identities with ``>= min_images`` images (10 on LFW gives LFW-158), and
    split each one's images into train and test at random (``seed``): round(
    train_fraction * n) train images, at least 1 in each part.

    Returns ``(train_rows, test_rows)``: (n_train,) and (n_test,) int64 rows of ``ds``,
    sorted within each identity, identities in label order."""
    counts = ds.counts()
    kept = np.flatnonzero(counts >= max(2, min_images))
    if len(kept) == 0:
        raise DataError(f"no identity has >= {min_images} images in {ds.source}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k in kept:
        rows = np.flatnonzero(ds.labels == k)
        rows = rows[rng.permutation(len(rows))]
        n_tr = int(np.clip(round(train_fraction * len(rows)), 1, len(rows) - 1))
        train.append(np.sort(rows[:n_tr]))
        test.append(np.sort(rows[n_tr:]))
    return (np.concatenate(train).astype(np.int64, copy=False),
            np.concatenate(test).astype(np.int64, copy=False))


def split_datasets(ds: Dataset, train_rows, test_rows):
    """The faces of a split: ``(train, test)`` Datasets over the same identities, the
    identities with a face in either part, labels renumbered 0..K-1 (names follow)."""
    n_tr = len(train_rows)
    sub = ds.subset(np.concatenate([train_rows, test_rows]).astype(np.int64), relabel=True)
    return sub.subset(np.arange(n_tr)), sub.subset(np.arange(n_tr, len(sub)))


def validation_rows(labels, fraction: float, seed: int = 0, names=None):
    """Per identity, ``round(fraction * n)`` of its rows (at least 1, and at least 1 left)
    drawn at random from a stream of ``seed`` distinct from the split's own.

    labels: (N,) int; names: identity names (indexed by label), for messages. Returns
    ``(train, val)``: (N - M,) and (M,) int64 row indices, each sorted within its
    identity, identities in label order.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"the validation fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng((int(seed), 1))
    train, val = [], []
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        if len(idx) < 2:
            who = repr(names[k]) if names is not None else k
            raise ValueError(f"identity {who} has {len(idx)} training image: a validation "
                             f"split needs at least 2 per identity")
        idx = idx[rng.permutation(len(idx))]
        n_val = int(np.clip(round(float(fraction) * len(idx)), 1, len(idx) - 1))
        val.append(np.sort(idx[:n_val]))
        train.append(np.sort(idx[n_val:]))
    return np.concatenate(train).astype(np.int64), np.concatenate(val).astype(np.int64)


def carve_validation(ds: Dataset, rows, fraction: float, seed: int = 0):
    """Hold out ``fraction`` of each identity's *training* images as a validation set
    (``validation_rows``). rows: ``(train_rows, test_rows)`` of ``identification_split``.

    Returns ``(train_rows, val_rows, held_rows)``, int64 rows of ``ds``: the rest of the
    training images, the validation images, and the split's test rows, which the carved
    split never shows (callers that exclude faces exclude them too).
    """
    train_rows, test_rows = (np.asarray(r, np.int64) for r in rows)
    # the original labels keep the identities' order, so the draws are those made over
    # the split's renumbered labels
    tr, va = validation_rows(ds.labels[train_rows], fraction, seed, names=ds.names)
    return train_rows[tr], train_rows[va], test_rows


def split_from_meta(ds: Dataset, meta: dict):
    """The rows of ``ds`` a ``FaceSplit`` with ``meta`` was made from: its
    ``min_images``, ``train_fraction`` and ``seed``, and with ``meta["validation"]``
    (a fraction) the validation carve of ``carve_validation``. Returns
    ``(train_rows, test_rows, held_rows)``, int64; held_rows the rows it never shows."""
    rows = identification_split(ds, min_images=int(meta["min_images"]),
                                train_fraction=float(meta["train_fraction"]),
                                seed=int(meta["seed"]))
    if meta.get("validation"):
        return carve_validation(ds, rows, float(meta["validation"]), int(meta["seed"]))
    return rows[0], rows[1], np.zeros(0, np.int64)


def verification_split(ds: Dataset, folds: list, test_fold: int) -> VerificationSplit:
    """Identity-disjoint verification: test on the pairs of fold ``test_fold``
    (0-based), train on every image of the identities named in the other folds.

    The LFW View 2 folds share no identity; should a custom pairs file not respect
    that, identities of the test fold are removed from training.
    """
    if not 0 <= test_fold < len(folds):
        raise ValueError(f"test_fold must be in 0..{len(folds) - 1}")
    test_ids = fold_identities(folds[test_fold])
    train_ids = set().union(*(fold_identities(f) for k, f in enumerate(folds)
                              if k != test_fold)) - test_ids
    known = set(ds.names)
    lab = np.array([n in train_ids and n in known for n in ds.names], bool)
    rows = np.flatnonzero(lab[ds.labels]) if len(ds) else np.zeros(0, np.int64)
    a, b, same = resolve_pairs(folds[test_fold], ds)
    return VerificationSplit(ds.subset(rows, relabel=True), a, b, same, test_fold, rows)
