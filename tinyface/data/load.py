"""The single entry point :func:`load_dataset`, with caching of decoded sources."""
from __future__ import annotations

from pathlib import Path

from tinyface.cache import signature

from .cache import cache_key, cached_dataset, source_signature
from .dataset import Dataset, DataError, check_hr_size
from .folder import load_folder
from .lfw import load_lfw, resolve_lfw_root
from .orl import load_orl, resolve_orl_root
from .synthetic import generate_synthetic

DATASETS = ("synthetic", "orl", "lfw", "folder")


def load_dataset(name: str, root=None, hr_size: int = 64, seed: int = 0, cache_dir=None,
                 crop: float | None = None, progress=None, **kwargs) -> Dataset:
    """Load a face dataset: images (N, 3, hr_size, hr_size) uint8, labels (N,) int64,
    names (one per identity).

    name: ``synthetic`` (procedural, no files; kwargs go to
    :func:`~tinyface.data.synthetic.generate_synthetic`, e.g. ``n_identities``,
    ``images_per_identity``; ``seed`` picks the faces), ``orl``, ``lfw`` or ``folder``
    (``root``: see each loader; orl/lfw default to :func:`default_data_root`).
    crop: centre-crop ratio for real images (None: the loader's default).
    cache_dir: where decoded real datasets are cached as .npz (None: ``~/.cache/
    tinyface``, False: no cache). ``ds.meta['from_cache']`` tells if decoding was
    skipped. progress: print decoding progress to stderr (None: when a terminal).
    hr_size must be an integer from 8 to 1024 (DataError otherwise, before anything is read).
    """
    hr_size = check_hr_size(hr_size)
    if name == "synthetic":
        ds = generate_synthetic(hr_size=hr_size, seed=seed, **kwargs)
        ds.meta["key"] = "synthetic-" + signature(
            {k: v for k, v in ds.meta.items() if k != "families"}, length=20)
        return ds
    if kwargs:
        raise TypeError(f"unexpected arguments for dataset {name!r}: {', '.join(kwargs)}")
    if name == "orl":
        src = resolve_orl_root(root)
        build = lambda: load_orl(src, hr_size, crop, progress)  # noqa: E731
    elif name == "lfw":
        src = resolve_lfw_root(root)
        build = lambda: load_lfw(src, hr_size, crop, progress)  # noqa: E731
    elif name == "folder":
        if root is None:
            raise DataError("the folder dataset needs a root: --data-root PATH "
                            "(one sub-folder per identity)")
        src = Path(root).expanduser()
        if not src.exists():
            raise DataError(f"folder {src} does not exist")
        build = lambda: load_folder(src, hr_size, crop, progress)  # noqa: E731
    else:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    params = {"source": source_signature(src), "hr_size": int(hr_size),
              "crop": None if crop is None else float(crop)}
    ds = cached_dataset(cache_dir, name, params, build)
    ds.meta["key"] = cache_key(name, params)[:-4]
    # the absolute path read this time: a cache entry keeps the path as its first reader
    # wrote it (relative, say), which would make the same data look like other data
    ds.source = str(Path(src).expanduser().resolve())
    return ds
