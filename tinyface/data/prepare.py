"""Building the cached HR and LR arrays of a dataset (``data_scripts/prepare.py`` and
``python -m tinyface data prepare``)."""
from __future__ import annotations

import numpy as np

from .cache import cache_key, load_arrays, resolve_cache_dir, save_arrays
from .dataset import Dataset, format_summary
from .degrade import LR_SIZES, degrade
from .load import load_dataset


def lr_images(ds: Dataset, lr_size: int, cache_dir=None, method: str = "area",
              **degrade_kwargs) -> np.ndarray:
    """:func:`~tinyface.data.degrade.degrade` of ``ds.images``, cached next to the HR
    arrays (keyed by the dataset's key and the degradation parameters).
    Returns (N, 3, lr_size, lr_size) uint8 (or the ``upsample_to`` size)."""
    root = resolve_cache_dir(cache_dir)
    key = ds.meta.get("key")
    path = None
    if root is not None and key:
        params = {"of": key, "lr_size": int(lr_size), "method": method, **degrade_kwargs}
        path = root / cache_key("lr", params)
        z = load_arrays(path)
        if z is not None and "images" in z and len(z["images"]) == len(ds):
            return z["images"]
    out = degrade(ds.images, lr_size, method=method, **degrade_kwargs)
    if path is not None:
        save_arrays(path, images=out)
    return out


def prepare(name: str, root=None, hr_size: int = 64, lr_sizes=LR_SIZES, cache_dir=None,
            method: str = "area", seed: int = 0, progress=True, **kwargs):
    """Load (and cache) a dataset and its LR versions; returns (Dataset, {size: (N, 3,
    s, s) uint8}, summary text)."""
    ds = load_dataset(name, root=root, hr_size=hr_size, seed=seed, cache_dir=cache_dir,
                      progress=progress, **kwargs)
    lrs = {s: lr_images(ds, s, cache_dir, method=method) for s in lr_sizes}
    lines = [format_summary(ds.summary()),
             "from cache:  " + ("yes" if ds.meta.get("from_cache") else "no"),
             "LR sizes:    " + (", ".join(f"{s}x{s}" for s in lrs) or "-")
             + f" ({method} downsampling)"]
    root_dir = resolve_cache_dir(cache_dir)
    lines.append(f"cache dir:   {root_dir if root_dir is not None else 'disabled'}")
    return ds, lrs, "\n".join(lines)
