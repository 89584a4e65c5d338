"""The :class:`Dataset` container, errors, warnings and the data-root resolution.

Every loader in :mod:`tinyface.data` returns a :class:`Dataset`:

- ``images``: (N, 3, H, W) uint8, RGB (grey sources are replicated to 3 channels);
- ``labels``: (N,) int64 in ``0 .. len(names) - 1``;
- ``names``: the identity names, ``names[label]``;
- ``image_index``: (N,) int64, the 1-based index of the image inside its identity
  (LFW's ``_NNNN`` number, ORL's ``Y`` of ``Y.pgm``); used by the pairs protocol;
- ``skipped``: the files that could not be decoded (each also raised a warning);
- ``source`` and ``meta``: where the data came from and how it was made.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "DataError", "DataWarning", "default_data_root", "check_hr_size"]

# HR face sides accepted by the loaders: the smallest LR size offered (degrade.LR_SIZES)
# is 8 px, so an HR face below it has nothing to degrade; above 1024 px one face
# alone takes 3 MiB (a thousand faces, 3 GiB), far more than any face crop holds.
HR_SIZE_MIN, HR_SIZE_MAX = 8, 1024


class DataError(ValueError):
    """A problem with the input data the user can fix (message names what is wrong)."""


class DataWarning(UserWarning):
    """Something was skipped while loading (a corrupt image, an empty folder)."""


def check_hr_size(hr_size) -> int:
    """``hr_size`` as an int, or DataError (one line) unless it is an integer from
    :data:`HR_SIZE_MIN` to :data:`HR_SIZE_MAX` pixels."""
    ok = isinstance(hr_size, (int, np.integer)) and not isinstance(hr_size, bool)
    if not ok or not HR_SIZE_MIN <= hr_size <= HR_SIZE_MAX:
        raise DataError(f"hr_size (--hr-size) must be an integer from {HR_SIZE_MIN} to "
                        f"{HR_SIZE_MAX} pixels, got {hr_size!r}")
    return int(hr_size)


def default_data_root() -> Path | None:
    """Where the real datasets live, or None.

    In order: the environment variable ``TINYFACE_DATA`` (a directory like
    ``shared/data``, holding ``orl_faces/``, ``lfw3d.tgz``, ``lfw_pairs.txt``...), then
    ``<repo root>/../shared/data`` when that directory exists. Returns a Path or None.
    """
    env = os.environ.get("TINYFACE_DATA")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    repo_root = Path(__file__).resolve().parents[2]
    p = repo_root.parent / "shared" / "data"
    return p if p.is_dir() else None


@dataclass
class Dataset:
    """Face images with identity labels.

    images: (N, 3, H, W) uint8; labels: (N,) int64; names: list of str (one per
    identity); image_index: (N,) int64, 1-based image number within its identity.
    """
    images: np.ndarray
    labels: np.ndarray
    names: list
    image_index: np.ndarray | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)

    def __post_init__(self):
        self.images = np.asarray(self.images)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.names = [str(n) for n in self.names]
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W) uint8, got {self.images.shape} "
                             f"{self.images.dtype}")
        if self.labels.shape != (len(self.images),):
            raise ValueError("labels must be (N,) matching images")
        if self.image_index is None:
            self.image_index = _rank_within_label(self.labels)
        self.image_index = np.asarray(self.image_index, dtype=np.int64)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.names)):
            raise ValueError("labels out of range of names")

    def __len__(self):
        return len(self.images)

    @property
    def n_identities(self) -> int:
        return len(self.names)

    @property
    def hr_size(self) -> int:
        return int(self.images.shape[-1])

    def counts(self) -> np.ndarray:
        """Images per identity: (n_identities,) int64."""
        return np.bincount(self.labels, minlength=len(self.names)).astype(np.int64)

    def subset(self, idx, relabel: bool = False) -> "Dataset":
        """The images at ``idx`` (int array or bool mask). With ``relabel``, identities
        without images are dropped and labels renumbered 0..K-1 (names follow)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        labels = self.labels[idx]
        names = list(self.names)
        if relabel:
            kept = np.unique(labels)
            remap = np.full(len(self.names), -1, np.int64)
            remap[kept] = np.arange(len(kept))
            labels = remap[labels]
            names = [self.names[k] for k in kept]
        meta = {k: v for k, v in self.meta.items()
                if k not in ("key", "cache_file", "from_cache")}
        meta["subset_of"] = self.meta.get("key")
        return Dataset(self.images[idx], labels, names, self.image_index[idx],
                       self.source, meta, list(self.skipped))

    def index_of(self, name: str, index: int) -> int:
        """Row of image number ``index`` (1-based) of identity ``name``; DataError if absent."""
        lookup = getattr(self, "_lookup", None)
        if lookup is None:
            lookup = {(self.names[l], int(i)): r
                      for r, (l, i) in enumerate(zip(self.labels.tolist(),
                                                     self.image_index.tolist()))}
            self._lookup = lookup
        try:
            return lookup[(name, int(index))]
        except KeyError:
            if name not in set(self.names):
                raise DataError(f"identity {name!r} is not in the dataset ({self.source})") from None
            n = int(self.counts()[self.names.index(name)])
            raise DataError(f"image {name} #{index} is not in the dataset "
                            f"({name} has {n} images; {self.source})") from None

    def summary(self) -> dict:
        """Counts: identities, images, image size, images per identity, skipped."""
        c = self.counts()
        out = {"source": self.source, "identities": int(len(self.names)),
               "images": int(len(self)),
               "hr_size": f"{self.images.shape[2]}x{self.images.shape[3]}" if len(self) else "-",
               "per_identity_min": int(c.min()) if len(c) else 0,
               "per_identity_median": float(np.median(c)) if len(c) else 0.0,
               "per_identity_max": int(c.max()) if len(c) else 0,
               "skipped": len(self.skipped)}
        for k in (2, 5, 10, 20):
            out[f"identities_with_>={k}"] = int((c >= k).sum())
        return out


def _rank_within_label(labels: np.ndarray) -> np.ndarray:
    """1-based position of each row among the rows of the same label: (N,) int64."""
    out = np.zeros(len(labels), np.int64)
    seen = {}
    for r, l in enumerate(labels.tolist()):
        seen[l] = seen.get(l, 0) + 1
        out[r] = seen[l]
    return out


def format_summary(summary: dict) -> str:
    """Human-readable lines of :meth:`Dataset.summary`."""
    s = summary
    lines = [f"source:      {s['source']}",
             f"identities:  {s['identities']}",
             f"images:      {s['images']}",
             f"image size:  {s['hr_size']} (3 channels, uint8)",
             f"per identity: min {s['per_identity_min']}, median {s['per_identity_median']:g}, "
             f"max {s['per_identity_max']}",
             "identities with >= 2/5/10/20 images: "
             + "/".join(str(s[f'identities_with_>={k}']) for k in (2, 5, 10, 20)),
             f"skipped (unreadable) files: {s['skipped']}"]
    return "\n".join(lines)
