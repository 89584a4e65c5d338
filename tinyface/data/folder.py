"""Image trees: one sub-folder per identity (``folder``), and the reader that the
ORL and LFW loaders share.

``load_folder(root, hr_size=64, crop=1.0)`` reads ``<root>/<identity>/<any image>``
(any Pillow-readable format; ``root`` may also be a tar/zip archive with that
layout). Identities are the parent folder names, images are numbered 1.. within
their identity in sorted file-name order. Each image is centre-cropped to a square
of side ``crop * min(w, h)`` and resized to ``hr_size`` (bicubic).
"""
from __future__ import annotations

import re
import warnings
from pathlib import PurePosixPath

import numpy as np

from .dataset import Dataset, DataError, DataWarning, check_hr_size
from .sources import (Progress, UnreadableFile, decode_square, iter_source, resolve_progress,
                      warn_skipped, warn_skipped_total)


def natural_key(s: str):
    """Sort key putting 's2' before 's10'."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s))


def read_image_tree(path, hr_size: int, parse, decode=None, progress=None,
                    label: str = "loading") -> Dataset:
    """Decode every image of a directory tree or archive into a Dataset.

    parse(relpath) -> (identity, index or None) or None to ignore the file.
    decode(data: bytes, hr_size) -> (3, hr_size, hr_size) uint8 (raises if corrupt).
    Corrupt files and files that cannot be opened (broken symbolic links) are skipped
    with a warning naming them; identity folders without any image get a warning too.
    Rows are sorted by identity (natural order), then image index. Raises DataError
    when nothing at all could be read, or when ``hr_size`` is out of range.
    """
    hr_size = check_hr_size(hr_size)
    decode = decode or (lambda data, size: decode_square(data, size))
    prog = Progress(label, enabled=resolve_progress(progress))
    items, skipped = [], []
    dirs, dirs_with_files = set(), set()
    for rel, data in iter_source(path):
        if data is None:
            dirs.add(rel.rstrip("/"))
            continue
        key = parse(rel)
        if key is None:
            continue
        parent = str(PurePosixPath(rel).parent)
        dirs_with_files.add(parent)
        label = f"{path}/{rel}" if not str(path).endswith("/") else f"{path}{rel}"
        if isinstance(data, UnreadableFile):
            warn_skipped(label, data)
            skipped.append(rel)
            continue
        try:
            arr = decode(data, hr_size)
        except Exception as exc:  # corrupt, truncated or unsupported: skip it
            warn_skipped(label, exc)
            skipped.append(rel)
            continue
        items.append((key[0], key[1], rel, arr))
        prog.step()
    if prog.n >= prog.every:
        prog.done()
    parents = {str(PurePosixPath(d).parent) for d in dirs_with_files}
    ancestors = {str(a) for d in dirs_with_files for a in PurePosixPath(d).parents}
    empty = sorted(d for d in dirs if d not in dirs_with_files and d not in ancestors
                   and str(PurePosixPath(d).parent) in parents)
    for d in empty:
        warnings.warn(f"empty identity folder {path}/{d}: no images, identity left out",
                      DataWarning, stacklevel=2)
    warn_skipped_total(skipped, str(path))
    if not items:
        raise DataError(f"no readable images found in {path}"
                        + (f" ({len(skipped)} unreadable)" if skipped else ""))
    items.sort(key=lambda t: (natural_key(t[0]), t[1] if t[1] is not None else 0,
                              natural_key(t[2])))
    names = sorted({t[0] for t in items}, key=natural_key)
    lab_of = {n: i for i, n in enumerate(names)}
    labels = np.array([lab_of[t[0]] for t in items], np.int64)
    index = np.zeros(len(items), np.int64)
    seen = {}
    for r, t in enumerate(items):
        seen[t[0]] = seen.get(t[0], 0) + 1
        index[r] = t[1] if t[1] is not None else seen[t[0]]
    images = np.stack([t[3] for t in items])
    return Dataset(images, labels, names, index, source=str(path),
                   meta={"empty_identities": [PurePosixPath(d).name for d in empty]},
                   skipped=[f"{path}/{s}" for s in skipped])


def _parse_folder(rel: str):
    p = PurePosixPath(rel)
    if len(p.parts) < 2:
        warnings.warn(f"image {rel} is not inside an identity folder: ignored", DataWarning,
                      stacklevel=3)
        return None
    return p.parent.name, None


def load_folder(root, hr_size: int = 64, crop: float | None = None, progress=None) -> Dataset:
    """``<root>/<identity>/<image>`` -> Dataset: images (N, 3, hr_size, hr_size) uint8,
    labels (N,) int64, names = folder names. ``crop`` (default 1.0) is the side of
    the centred square crop as a fraction of the short side."""
    c = 1.0 if crop is None else float(crop)
    ds = read_image_tree(root, hr_size, _parse_folder,
                         decode=lambda data, size: decode_square(data, size, c),
                         progress=progress, label=f"reading {root}")
    ds.meta.update(loader="folder", hr_size=hr_size, crop=c)
    return ds
