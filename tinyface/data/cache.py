"""On-disk cache of decoded arrays, as ``.npz`` files.

A cache entry is keyed by a hash of: the loader's name, the source (absolute path,
size and modification time of a file; for a directory, the names, sizes and mtimes
of every file in it), the loader parameters and :data:`CACHE_VERSION`. Changing any
of them makes a new entry. Entries are written atomically (temporary file in the
same directory, then ``os.replace``), uncompressed so that loading is fast.

``cache_dir``: ``None`` -> ``$TINYFACE_CACHE`` or ``~/.cache/tinyface``;
``False`` -> no cache; anything else -> that directory.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from tinyface.atomic import savez_atomic
from tinyface.cache import signature

from .dataset import Dataset, DataWarning

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$TINYFACE_CACHE`` if set, else ``~/.cache/tinyface``."""
    env = os.environ.get("TINYFACE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tinyface"


def resolve_cache_dir(cache_dir) -> Path | None:
    """None -> default; False -> None (caching disabled); str/Path -> Path."""
    if cache_dir is False:
        return None
    if cache_dir is None:
        return default_cache_dir()
    return Path(cache_dir).expanduser()


def source_signature(path) -> dict:
    """What identifies the content of a source file or directory (cheap: stat only).

    A file of a directory that cannot be stat'ed (a broken symbolic link, say) enters
    the digest by its name and link status alone; no warning here, since the reader
    skips it with a warning naming it (:func:`~tinyface.data.sources.iter_source`).
    """
    p = Path(path).resolve()
    if p.is_dir():
        stamps = []                                   # "relative path\0size\0mtime"
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames.sort()
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                stamps.append(f"{os.path.relpath(full, p)}\0{_file_stamp(full)}")
        return {"path": str(p), "kind": "dir", "files": len(stamps), "digest": signature(stamps)}
    st = p.stat()
    return {"path": str(p), "kind": "file", "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _file_stamp(full: str) -> str:
    """``size\\0mtime_ns`` of a file (through symbolic links); for one that cannot be
    stat'ed, the link's own target and mtime, or ``unreadable``."""
    try:
        st = os.stat(full)
        return f"{st.st_size}\0{st.st_mtime_ns}"
    except OSError:
        pass
    try:
        return f"broken-link\0{os.readlink(full)}\0{os.lstat(full).st_mtime_ns}"
    except OSError:
        return "unreadable"


def cache_key(kind: str, params: dict) -> str:
    """Filename ``<kind>-<hash>.npz`` for a loader ``kind`` and its parameters."""
    return f"{kind}-{signature({'kind': kind, 'params': params, 'version': CACHE_VERSION}, 20)}.npz"


def save_arrays(path, **arrays):
    """Write arrays to ``path`` (.npz) atomically. Returns False (with a warning) when
    the directory cannot be written."""
    try:
        savez_atomic(path, arrays)
        return True
    except OSError as exc:
        warnings.warn(f"cannot write cache {path}: {exc}", DataWarning, stacklevel=2)
        return False

def load_arrays(path) -> dict | None:
    """Read an .npz written by :func:`save_arrays`; None if absent or unreadable."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:  # corrupt cache entry: rebuild it
        warnings.warn(f"ignoring unreadable cache file {path}: {exc}", DataWarning, stacklevel=2)
        return None


def save_dataset(path, ds: Dataset) -> bool:
    """Store a Dataset (images, labels, names, image_index, skipped, source, meta)."""
    meta = {k: v for k, v in ds.meta.items() if not k.startswith("_")}
    return save_arrays(path, images=ds.images, labels=ds.labels,
                       names=np.array(ds.names, dtype=str),
                       image_index=ds.image_index,
                       skipped=np.array(ds.skipped, dtype=str),
                       source=np.array(ds.source),
                       meta=np.array(json.dumps(meta, default=str)))


def load_dataset_file(path) -> Dataset | None:
    """Inverse of :func:`save_dataset`; None if absent or unreadable."""
    z = load_arrays(path)
    if z is None:
        return None
    try:
        meta = json.loads(str(z["meta"]))
        meta["cache_file"] = str(path)
        return Dataset(z["images"], z["labels"], z["names"].tolist(), z["image_index"],
                       str(z["source"]), meta, z["skipped"].tolist())
    except (KeyError, ValueError) as exc:
        warnings.warn(f"ignoring malformed cache file {path}: {exc}", DataWarning, stacklevel=2)
        return None


def cached_dataset(cache_dir, kind: str, params: dict, build) -> Dataset:
    """Return the cached Dataset for (kind, params), or ``build()`` it and cache it.

    ``params`` must contain everything the result depends on (including the source
    signature). ``meta['from_cache']`` tells which happened.
    """
    root = resolve_cache_dir(cache_dir)
    if root is not None:
        path = root / cache_key(kind, params)
        ds = load_dataset_file(path)
        if ds is not None:
            ds.meta["from_cache"] = True
            if ds.skipped:
                shown = ", ".join(ds.skipped[:3]) + (", ..." if len(ds.skipped) > 3 else "")
                warnings.warn(f"{len(ds.skipped)} image(s) of {ds.source} were skipped when "
                              f"it was decoded (cached): {shown}", DataWarning, stacklevel=3)
            return ds
    ds = build()
    ds.meta["from_cache"] = False
    if root is not None:
        if save_dataset(path, ds):
            ds.meta["cache_file"] = str(path)
    return ds
