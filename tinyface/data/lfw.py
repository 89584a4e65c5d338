"""Labeled Faces in the Wild: the official ``lfw.tgz`` archive or its extracted folder.

Layout: ``[lfw/]<Name>/<Name>_NNNN.jpg`` (LFW3D, ``lfw3d.tgz``, has the same layout
under ``lfw3d/``). ``root`` may be the archive, the extracted folder, or a data
folder holding one of :data:`CANDIDATES` (first found wins). The archive is read
sequentially and never extracted or modified.

Crop: ``crop`` is the side of the centred square kept, as a fraction of the image
side. ``None`` (default) picks 1.0 for images of at most 128 px (already tight
crops such as LFW3D's 90x90) and 0.5 for larger ones (the official 250x250 images,
where the face fills roughly the central 125 px). Then bicubic resize to ``hr_size``.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from .dataset import Dataset, DataError, default_data_root
from .folder import read_image_tree
from .sources import image_to_square, is_archive, open_image, upright

CANDIDATES = ("lfw", "lfw.tgz", "lfw-deepfunneled", "lfw-deepfunneled.tgz", "lfw3d",
              "lfw3d.tgz")
PAIRS_CANDIDATES = ("lfw_pairs.txt", "pairs.txt")
_FILE = re.compile(r"^(.+)_(\d+)$")


def auto_crop(w: int, h: int) -> float:
    """Default crop ratio for an LFW image of size w x h (see module doc)."""
    return 1.0 if min(w, h) <= 128 else 0.5


def resolve_lfw_root(root=None) -> Path:
    """The LFW archive or folder to read, from an explicit ``root`` or the default."""
    if root is None:
        root = default_data_root()
        if root is None:
            raise DataError("no LFW data found: pass --data-root PATH (lfw.tgz or the "
                            "extracted folder), set TINYFACE_DATA, or run "
                            "data_scripts/download_lfw.py")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"LFW data root {root} does not exist")
    if root.is_dir():
        for c in CANDIDATES:
            if (root / c).exists():
                return root / c
        return root
    if not is_archive(root):
        raise DataError(f"{root} is not a folder or a tar/zip archive")
    return root


def find_pairs_file(root=None) -> Path | None:
    """``lfw_pairs.txt`` or ``pairs.txt`` next to the LFW data, or None."""
    base = Path(root).expanduser() if root is not None else default_data_root()
    if base is None:
        return None
    for d in ([base] if base.is_dir() else []) + [base.parent]:
        for c in PAIRS_CANDIDATES:
            if (d / c).is_file():
                return d / c
    return None


def parse_lfw(rel: str):
    """``.../<Name>/<Name>_NNNN.jpg`` -> (Name, NNNN); other files -> None."""
    p = PurePosixPath(rel)
    if len(p.parts) < 2:
        return None
    m = _FILE.match(p.stem)
    return p.parent.name, (int(m.group(2)) if m else None)


def decode_lfw(data: bytes, size: int, crop: float | None = None):
    """One LFW JPEG -> (3, size, size) uint8; JPEG draft mode speeds decoding up.
    The EXIF orientation, if any, is applied before cropping."""
    im = open_image(data)
    w, h = im.size
    c = auto_crop(w, h) if crop is None else float(crop)
    if im.format == "JPEG":
        need = int(-(-size // c))
        im.draft(im.mode, (need * w // min(w, h), need * h // min(w, h)))
    im.load()
    return image_to_square(upright(im), size, c)


def load_lfw(root=None, hr_size: int = 64, crop: float | None = None, progress=None) -> Dataset:
    """LFW faces: images (N, 3, hr_size, hr_size) uint8 (13,233 for the full set), labels
    (N,) int64, names = person names (5,749), image_index = the ``_NNNN`` number."""
    src = resolve_lfw_root(root)
    ds = read_image_tree(src, hr_size, parse_lfw,
                         lambda data, size: decode_lfw(data, size, crop),
                         progress=progress, label=f"decoding {src.name}")
    ds.meta.update(loader="lfw", hr_size=hr_size, crop="auto" if crop is None else float(crop))
    return ds
