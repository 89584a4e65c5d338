"""Evaluation protocols: closed-set identification and LFW-style verification."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dataset import Dataset, DataError
from .pairs import fold_identities, resolve_pairs


@dataclass
class IdentificationSplit:
    """train / test: Datasets over the same relabelled identities (labels 0..K-1);
    train_rows / test_rows: (n,) int64 rows of the original dataset."""
    train: Dataset
    test: Dataset
    train_rows: np.ndarray
    test_rows: np.ndarray


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
                         seed: int = 0) -> IdentificationSplit:
    """Keep identities with ``>= min_images`` images (10 on LFW gives LFW-158), and
    split each one's images into train and test at random (``seed``): round(
    train_fraction * n) train images, at least 1 in each part."""
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
    tr, te = np.concatenate(train), np.concatenate(test)
    sub = ds.subset(np.concatenate([tr, te]), relabel=True)
    return IdentificationSplit(sub.subset(np.arange(len(tr))),
                               sub.subset(np.arange(len(tr), len(tr) + len(te))), tr, te)


def validation_rows(labels, fraction: float, seed: int = 0, names=None):
    """Per identity, ``round(fraction * n)`` of its rows (at least 1, and at least 1 left)
    drawn at random from a stream of ``seed`` distinct from the split's own.

    labels: (N,) int; names: identity names, for messages. Returns ``(train, val)``: (N - M,) and (M,) int64 row indices,
    each sorted within its identity, identities in label order.
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


def carve_validation(sp: IdentificationSplit, fraction: float, seed: int = 0):
    """Hold out ``fraction`` of each identity's *training* images as a validation set
    (``validation_rows``).

    Returns ``(IdentificationSplit, held_rows)``: train = the rest of the training
    images, test = the validation images, and held_rows (M,) int64 = the original
    split's test rows, which the carved split never shows (callers that exclude faces
    exclude them too).
    """
    tr, va = validation_rows(sp.train.labels, fraction, seed, names=sp.train.names)
    carved = IdentificationSplit(sp.train.subset(tr), sp.train.subset(va),
                                 sp.train_rows[tr], sp.train_rows[va])
    return carved, np.asarray(sp.test_rows, np.int64)


def split_from_meta(ds: Dataset, meta: dict):
    """The identification split a ``FaceSplit`` with ``meta`` was made from: its
    ``min_images``, ``train_fraction`` and ``seed``, and with ``meta["validation"]``
    (a fraction) the validation carve of ``carve_validation``. Returns
    ``(IdentificationSplit, held_rows)``, held_rows the rows it never shows."""
    sp = identification_split(ds, min_images=int(meta["min_images"]),
                              train_fraction=float(meta["train_fraction"]),
                              seed=int(meta["seed"]))
    if meta.get("validation"):
        return carve_validation(sp, float(meta["validation"]), int(meta["seed"]))
    return sp, np.zeros(0, np.int64)


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
