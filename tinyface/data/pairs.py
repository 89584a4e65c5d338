"""LFW ``pairs.txt`` (View 2) parser and resolution of pairs to dataset rows.

Format: a header line ``<folds> <pairs>`` (e.g. ``10 300``), then for each fold
``pairs`` matched lines ``name i j`` (3 fields) and ``pairs`` mismatched lines
``name1 i name2 j`` (4 fields); indices are the 1-based ``_NNNN`` image numbers.
A one-number header (View 1 files such as ``pairsDevTrain.txt``) means one fold.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .dataset import Dataset, DataError, DataWarning


def parse_pairs(text: str, source: str = "pairs.txt") -> list:
    """Parse pairs text into folds: a list of ``n_folds`` lists of
    ``((name, index), (name, index), same)`` with ``same`` a bool.

    Raises DataError naming the line of any malformed entry, or a wrong count.
    """
    lines = [(i + 1, ln.split()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise DataError(f"{source} is empty")
    lineno, head = lines[0]
    try:
        nums = [int(x) for x in head]
    except ValueError:
        raise DataError(f"{source}:{lineno}: header must be '<folds> <pairs per class>', "
                        f"got {' '.join(head)!r}") from None
    if len(nums) == 2:
        n_folds, n_per = nums
    elif len(nums) == 1:
        n_folds, n_per = 1, nums[0]
    else:
        raise DataError(f"{source}:{lineno}: header must have 1 or 2 numbers")
    body = lines[1:]
    if len(body) != n_folds * 2 * n_per:
        raise DataError(f"{source}: header announces {n_folds} folds x 2 x {n_per} pairs = "
                        f"{n_folds * 2 * n_per} lines, found {len(body)}")
    entries = []
    for lineno, f in body:
        if len(f) not in (3, 4):
            raise DataError(f"{source}:{lineno}: expected 3 fields (matched) or 4 "
                            f"(mismatched), got {len(f)}")
        try:
            if len(f) == 3:
                entries.append(((f[0], int(f[1])), (f[0], int(f[2])), True))
            else:
                entries.append(((f[0], int(f[1])), (f[2], int(f[3])), False))
        except ValueError:
            raise DataError(f"{source}:{lineno}: image numbers must be integers: "
                            f"{' '.join(f)!r}") from None
    folds = [entries[k * 2 * n_per:(k + 1) * 2 * n_per] for k in range(n_folds)]
    for k, fold in enumerate(folds):
        n_same = sum(e[2] for e in fold)
        if n_same != n_per:
            raise DataError(f"{source}: fold {k + 1} has {n_same} matched and "
                            f"{len(fold) - n_same} mismatched pairs, expected {n_per} each")
    return folds


def load_pairs(path) -> list:
    """Read and parse a pairs file (see :func:`parse_pairs`)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"pairs file {p} does not exist")
    return parse_pairs(p.read_text(encoding="utf-8", errors="replace"), str(p))


def fold_identities(fold) -> set:
    """The identity names appearing in a fold's pairs."""
    return {e[0][0] for e in fold} | {e[1][0] for e in fold}


def resolve_pairs(pairs, ds: Dataset, strict: bool = True):
    """Rows of the images of each pair: returns ``(a, b, same)``, each (P,) with a, b
    int64 row indices into ``ds`` and same bool.

    ``pairs``: a list of entries (one fold) or a list of folds. A pair naming an
    image the dataset lacks raises DataError naming it (``strict``), or is dropped
    with a warning (``strict=False``).
    """
    if pairs and isinstance(pairs[0], list):
        pairs = [e for fold in pairs for e in fold]
    a, b, same = [], [], []
    missing = 0
    for k, (p1, p2, s) in enumerate(pairs):
        try:
            ia, ib = ds.index_of(*p1), ds.index_of(*p2)
        except DataError as exc:
            if strict:
                raise DataError(f"pair {k + 1} ({p1[0]} {p1[1]} / {p2[0]} {p2[1]}): {exc}") from None
            warnings.warn(f"pair {k + 1} dropped: {exc}", DataWarning, stacklevel=2)
            missing += 1
            continue
        a.append(ia)
        b.append(ib)
        same.append(bool(s))
    return (np.array(a, np.int64), np.array(b, np.int64), np.array(same, bool))
