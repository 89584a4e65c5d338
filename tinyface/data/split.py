"""The identification protocol's data: HR and LR faces of a per-identity split.

``load_split`` loads a dataset, keeps the identities with enough images (10 on LFW:
LFW-158), splits each identity's images into train and test by seed (70/30 by
default), and degrades HR faces to LR: Gaussian anti-alias blur, then bicubic
downsampling to ``lr_size`` (16 by default). The teacher@LR baseline sees the LR test
faces upsampled back to the HR size.

With ``validation=F`` the split's "test" faces are instead F of each identity's
training faces (``data.carve_validation``), and the models train on the rest: every
setting is screened this way, and the test faces are used once, at the chosen settings.

``FaceSplit`` is the package's one identification split: its faces, and the dataset rows
they came from (``train_rows``, ``test_rows``). ``split_of`` re-derives those rows from a
dataset and checks them against a split.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .degrade import degrade
from .load import load_dataset
from .protocols import split_datasets, split_from_meta

# identities kept per dataset: LFW-158 on LFW; every identity elsewhere
DEFAULT_MIN_IMAGES = {"lfw": 10, "orl": 2, "synthetic": 2, "folder": 2}

STREAMS = ("teacher", "student")

# synthetic faces when no size is given
SYNTHETIC_DEFAULTS = {"n_identities": 100, "images_per_identity": 20}


@dataclass
class FaceSplit:
    """HR/LR faces of one identification split.

    hr_train, hr_test: (N, 3, hr, hr) uint8;  lr_train, lr_test: (N, 3, lr, lr) uint8;
    lr_up_test: (N_test, 3, hr, hr) uint8, LR test faces upsampled back (teacher@LR);
    y_train, y_test: (N,) int64 in [0, num_classes); names: identity names;
    meta: how the split was made (``split_from_meta`` re-derives it from a dataset);
    train_rows, test_rows: (N,) int64, the faces' rows in the loaded dataset.
    """
    hr_train: np.ndarray
    hr_test: np.ndarray
    lr_train: np.ndarray
    lr_test: np.ndarray
    lr_up_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    names: list
    meta: dict = field(default_factory=dict)
    train_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    test_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def num_classes(self):
        return len(self.names)

    @property
    def hr_size(self):
        return self.hr_train.shape[-1]

    @property
    def lr_size(self):
        return self.lr_train.shape[-1]

    @property
    def is_validation(self):
        """True when the "test" faces are a validation set carved from the training faces."""
        return bool(self.meta.get("validation"))

    def describe(self):
        test = (f"{len(self.y_test)} validation faces ({self.meta['validation']:g} of each "
                f"identity's training faces; the test faces unused)" if self.is_validation
                else f"{len(self.y_test)} test faces")
        return (f"{self.meta.get('data', '?')}: {self.num_classes} identities, "
                f"{len(self.y_train)} train / {test}, HR {self.hr_size}px, LR {self.lr_size}px")


def load_split(data="synthetic", data_root=None, hr_size=64, lr_size=16, seed=0,
               train_fraction=0.7, min_images=None, lr_method="bicubic", cache_dir=None,
               synthetic=None, validation=0.0):
    """Load ``data`` and build a ``FaceSplit``.

    data: synthetic | orl | lfw | folder; data_root: path (orl/lfw: found automatically
    when None); min_images: identities kept (None: ``DEFAULT_MIN_IMAGES``);
    synthetic: dict of ``generate_synthetic`` arguments (n_identities, ...);
    validation: 0, or the fraction of each identity's training faces that becomes the
    "test" faces (module docstring).
    The split and the LR noise-free degradation are deterministic for a seed.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    if not isinstance(lr_size, (int, np.integer)) or lr_size < 1:
        raise ValueError(f"the LR side must be an integer >= 1 pixel, got {lr_size!r}")
    if isinstance(hr_size, (int, np.integer)) and lr_size > hr_size >= 1:   # hr_size: load_dataset
        raise ValueError(f"the LR side ({lr_size}px) is larger than the HR side ({hr_size}px): "
                         f"the student sees the HR faces degraded to LR")
    kwargs = dict(SYNTHETIC_DEFAULTS, **(synthetic or {})) if data == "synthetic" else {}
    # synthetic faces are drawn from the data seed 0 unless asked: the split seed then
    # changes only the train/test split, as it does for real data
    ds = load_dataset(data, root=data_root, hr_size=hr_size, seed=kwargs.pop("seed", 0),
                      cache_dir=cache_dir, **kwargs)
    k = DEFAULT_MIN_IMAGES.get(data, 2) if min_images is None else int(min_images)
    protocol = {"min_images": k, "seed": seed, "train_fraction": train_fraction}
    if validation:
        protocol["validation"] = float(validation)
    train_rows, test_rows, _ = split_from_meta(ds, protocol)
    train, test = split_datasets(ds, train_rows, test_rows)
    hr_train, hr_test = train.images, test.images
    lr_train = degrade(hr_train, lr_size=lr_size, method=lr_method)     # (N, 3, lr, lr)
    lr_test = degrade(hr_test, lr_size=lr_size, method=lr_method)
    lr_up_test = degrade(hr_test, lr_size=lr_size, method=lr_method,
                         upsample_to=hr_size)                           # (N, 3, hr, hr)
    meta = {"data": data, "source": str(ds.source), **protocol, "lr_method": lr_method,
            "hr_size": hr_size, "lr_size": lr_size}
    return FaceSplit(hr_train, hr_test, lr_train, lr_test, lr_up_test,
                     train.labels.astype(np.int64), test.labels.astype(np.int64),
                     list(train.names), meta, train_rows, test_rows)


def split_of(ds, split, what="the dataset"):
    """The rows of ``ds`` that ``split`` was made from, re-derived from its meta
    (``data.split_from_meta``): ``(train_rows, test_rows, held_rows)``, int64, or
    ``ValueError`` when ``ds`` does not give the split's identities and labels."""
    train_rows, test_rows, held = split_from_meta(ds, split.meta)
    train, test = split_datasets(ds, train_rows, test_rows)
    if list(train.names) != list(split.names) or not (
            np.array_equal(train.labels, split.y_train)
            and np.array_equal(test.labels, split.y_test)):
        raise ValueError(f"{what} does not give the split's identities and faces: load it as "
                         f"the split was loaded (same data, root and seed)")
    return train_rows, test_rows, held


def stream_images(split, stream, which):
    """The faces a stream sees: teacher -> HR, student -> LR. which: train | test."""
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
    size = "hr" if stream == "teacher" else "lr"
    return getattr(split, f"{size}_{which}")
