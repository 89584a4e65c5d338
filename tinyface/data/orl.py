"""ORL / AT&T Database of Faces: ``sX/Y.pgm`` (40 people x 10 images, 92x112 grey).

``root`` is the folder holding ``s1 .. s40`` (e.g. ``orl_faces``), a data folder
holding ``orl_faces/`` or ``att_faces/`` (or such a zip/tar), or the archive itself.

Crop: an ORL image is 92 wide and 112 high with the head filling it; we take the
centred 92x92 square (rows 10..101: it keeps the eyes, nose, mouth and chin and cuts
the top of the hair), optionally a centred ``crop`` fraction of that, and resize to
``hr_size`` with bicubic resampling. Grey is replicated to 3 channels. Binary (P5)
and ASCII (P2) PGM files are read by :func:`read_pgm`; other formats by Pillow.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from .dataset import Dataset, DataError, default_data_root
from .folder import read_image_tree
from .sources import decode_square, image_to_square, is_archive

_SUBJECT = re.compile(r"^s(\d+)$")
CANDIDATES = ("orl_faces", "att_faces", "orl_faces.zip", "att_faces.zip", "orl_faces.tar.gz",
              "att_faces.tar.gz", "orl_faces.tgz", "att_faces.tgz", "att_faces.tar")


def read_pgm(data: bytes) -> np.ndarray:
    """Parse a PGM (P5 binary or P2 ASCII, 8 or 16 bit): (H, W) uint8.

    Raises ValueError on a malformed header or truncated pixel data.
    """
    if data[:2] not in (b"P5", b"P2"):
        raise ValueError("not a PGM file (magic number is not P5 or P2)")
    fields, pos = [], 2
    n = len(data)
    while len(fields) < 3:
        while pos < n and data[pos:pos + 1].isspace():
            pos += 1
        if pos < n and data[pos:pos + 1] == b"#":
            while pos < n and data[pos:pos + 1] not in (b"\n", b"\r"):
                pos += 1
            continue
        start = pos
        while pos < n and not data[pos:pos + 1].isspace() and data[pos:pos + 1] != b"#":
            pos += 1
        if start == pos:
            raise ValueError("truncated PGM header")
        fields.append(int(data[start:pos]))
    w, h, maxval = fields
    if w <= 0 or h <= 0 or not 0 < maxval < 65536:
        raise ValueError(f"bad PGM header: {w}x{h}, maxval {maxval}")
    pos += 1  # exactly one whitespace byte after maxval
    if data[:2] == b"P5":
        bps = 1 if maxval < 256 else 2
        need = w * h * bps
        if n - pos < need:
            raise ValueError(f"truncated PGM: {n - pos} of {need} pixel bytes")
        arr = np.frombuffer(data, np.uint8 if bps == 1 else ">u2", w * h, pos).reshape(h, w)
    else:
        vals = data[pos:].split()
        if len(vals) < w * h:
            raise ValueError(f"truncated PGM: {len(vals)} of {w * h} values")
        arr = np.array(vals[:w * h], dtype=np.int64).reshape(h, w)
    if maxval != 255:
        arr = np.clip(np.round(arr.astype(np.float64) * 255.0 / maxval), 0, 255)
    return arr.astype(np.uint8)


def decode_orl(data: bytes, size: int, crop: float = 1.0) -> np.ndarray:
    """One ORL image (PGM or any Pillow format) -> (3, size, size) uint8 (see module doc)."""
    if data[:2] in (b"P5", b"P2"):
        im = Image.fromarray(read_pgm(data))
    else:
        return decode_square(data, size, crop)
    return image_to_square(im, size, crop)


def resolve_orl_root(root=None) -> Path:
    """The ORL folder or archive to read, from an explicit ``root`` or the default."""
    if root is None:
        root = default_data_root()
        if root is None:
            raise DataError("no ORL data found: pass --data-root PATH (the folder holding "
                            "s1..s40, or an att_faces zip/tar), set TINYFACE_DATA, or run "
                            "data_scripts/download_orl.py")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"ORL data root {root} does not exist")
    if root.is_dir() and not any(_SUBJECT.match(p.name) for p in root.iterdir() if p.is_dir()):
        for c in CANDIDATES:
            if (root / c).exists():
                return root / c
        raise DataError(f"{root} holds neither sX/ folders nor any of {', '.join(CANDIDATES)}")
    if root.is_file() and not is_archive(root):
        raise DataError(f"{root} is not a folder or a zip/tar archive")
    return root


def parse_orl(rel: str):
    """``.../sX/Y.pgm`` -> ('sX', Y); anything else -> None."""
    p = PurePosixPath(rel)
    if len(p.parts) < 2 or not _SUBJECT.match(p.parent.name):
        return None
    return p.parent.name, (int(p.stem) if p.stem.isdigit() else None)


def load_orl(root=None, hr_size: int = 64, crop: float | None = None, progress=None) -> Dataset:
    """ORL faces: images (N, 3, hr_size, hr_size) uint8 (400 for the full set), labels
    (N,) int64, names 's1'..'s40', image_index = Y of ``Y.pgm``. ``crop`` (default
    1.0): fraction of the 92x92 centre square kept."""
    src = resolve_orl_root(root)
    c = 1.0 if crop is None else float(crop)
    ds = read_image_tree(src, hr_size, parse_orl, lambda data, size: decode_orl(data, size, c),
                         progress=progress, label=f"reading {src}")
    ds.meta.update(loader="orl", hr_size=hr_size, crop=c)
    return ds
