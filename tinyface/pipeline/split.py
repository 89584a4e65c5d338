"""The identification protocol's data: HR and LR faces of a per-identity split.

``load_split`` loads a dataset, keeps the identities with enough images (10 on LFW:
LFW-158), splits each identity's images into train and test by seed (70/30 by
default), and degrades HR faces to LR: Gaussian anti-alias blur, then bicubic
downsampling to ``lr_size`` (16 by default). The teacher@LR baseline sees the LR test
faces upsampled back to the HR size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyface.data import degrade, identification_split, load_dataset

# identities kept per dataset: LFW-158 on LFW; every identity elsewhere
DEFAULT_MIN_IMAGES = {"lfw": 10, "orl": 2, "synthetic": 2, "folder": 2}

# synthetic faces when no size is given
SYNTHETIC_DEFAULTS = {"n_identities": 100, "images_per_identity": 20}


@dataclass
class FaceSplit:
    """HR/LR faces of one identification split.

    hr_train, hr_test: (N, 3, hr, hr) uint8;  lr_train, lr_test: (N, 3, lr, lr) uint8;
    lr_up_test: (N_test, 3, hr, hr) uint8, LR test faces upsampled back (teacher@LR);
    y_train, y_test: (N,) int64 in [0, num_classes); names: identity names.
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

    @property
    def num_classes(self):
        return len(self.names)

    @property
    def hr_size(self):
        return self.hr_train.shape[-1]

    @property
    def lr_size(self):
        return self.lr_train.shape[-1]

    def describe(self):
        return (f"{self.meta.get('data', '?')}: {self.num_classes} identities, "
                f"{len(self.y_train)} train / {len(self.y_test)} test faces, "
                f"HR {self.hr_size}px, LR {self.lr_size}px")


def load_split(data="synthetic", data_root=None, hr_size=64, lr_size=16, seed=0,
               train_fraction=0.7, min_images=None, lr_method="bicubic", cache_dir=None,
               synthetic=None):
    """Load ``data`` and build a ``FaceSplit``.

    data: synthetic | orl | lfw | folder; data_root: path (orl/lfw: found automatically
    when None); min_images: identities kept (None: ``DEFAULT_MIN_IMAGES``);
    synthetic: dict of ``generate_synthetic`` arguments (n_identities, ...).
    The split and the LR noise-free degradation are deterministic for a seed.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    kwargs = dict(SYNTHETIC_DEFAULTS, **(synthetic or {})) if data == "synthetic" else {}
    # synthetic faces are drawn from the data seed 0 unless asked: the split seed then
    # changes only the train/test split, as it does for real data
    ds = load_dataset(data, root=data_root, hr_size=hr_size, seed=kwargs.pop("seed", 0),
                      cache_dir=cache_dir, **kwargs)
    k = DEFAULT_MIN_IMAGES.get(data, 2) if min_images is None else int(min_images)
    sp = identification_split(ds, min_images=k, train_fraction=train_fraction, seed=seed)
    hr_train, hr_test = sp.train.images, sp.test.images
    lr_train = degrade(hr_train, lr_size=lr_size, method=lr_method)     # (N, 3, lr, lr)
    lr_test = degrade(hr_test, lr_size=lr_size, method=lr_method)
    lr_up_test = degrade(hr_test, lr_size=lr_size, method=lr_method,
                         upsample_to=hr_size)                           # (N, 3, hr, hr)
    meta = {"data": data, "source": str(ds.source), "min_images": k, "seed": seed,
            "train_fraction": train_fraction, "lr_method": lr_method,
            "hr_size": hr_size, "lr_size": lr_size}
    return FaceSplit(hr_train, hr_test, lr_train, lr_test, lr_up_test,
                     sp.train.labels.astype(np.int64), sp.test.labels.astype(np.int64),
                     list(sp.train.names), meta)
