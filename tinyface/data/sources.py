"""Reading image files out of a directory tree or an archive, and decoding them.

Sources are only ever opened for reading: nothing in a source folder or archive is
modified. Archives (tar, tar.gz/tgz, tar.bz2, tar.xz, zip) are read sequentially,
member by member, without extracting anything to disk.

Decoding (:func:`decode_square`, :func:`image_to_square`) turns the EXIF orientation
of phone photos into upright pixels (:func:`upright`) and scales 16-bit images to
8 bits (:func:`to_8bit`, value / 257), so that every image becomes the same
(3, size, size) uint8 whatever its file format.
"""
from __future__ import annotations

import io
import os
import re
import sys
import tarfile
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .dataset import DataError, DataWarning

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pbm", ".pnm", ".bmp", ".gif",
              ".tif", ".tiff", ".webp"}
ARCHIVE_SUFFIXES = (".tgz", ".tar", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
EXIF_ORIENTATION = 0x0112          # the EXIF tag; 1 = upright, 2..8 = flipped and/or rotated
_BYTESIO_REPR = re.compile(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


class UnreadableFile(OSError):
    """Yielded by :func:`iter_source` in place of the bytes of a file that could not
    be opened (a broken symbolic link, no permission); its message is the reason."""


def is_archive(path) -> bool:
    """True when ``path`` is a file named like a tar or zip archive."""
    p = Path(path)
    return p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES)


def iter_source(path, exts=IMAGE_EXTS):
    """Yield ``(relpath, data)`` for every image file under ``path``, in a fixed order.

    ``path`` is a directory (walked in sorted order) or an archive (read in member
    order). ``relpath`` is a '/'-separated path relative to the directory or archive
    root; ``data`` is the file's bytes, or an :class:`UnreadableFile` (not raised) for
    a file that cannot be opened, such as a broken symbolic link, so that the caller
    skips it with a warning. Directories are also yielded, as ``(relpath + '/', None)``,
    so that loaders can report empty identity folders.
    A truncated or corrupt archive raises :class:`DataError` naming the archive.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"data source {p} does not exist")
    if p.is_dir():
        yield from _iter_dir(p, exts)
    elif p.name.lower().endswith(".zip"):
        yield from _iter_zip(p, exts)
    elif is_archive(p) or tarfile.is_tarfile(p):
        yield from _iter_tar(p, exts)
    else:
        raise DataError(f"{p} is neither a directory nor a tar/zip archive")


def _has_ext(name, exts):
    return os.path.splitext(name)[1].lower() in exts


def _iter_dir(root: Path, exts):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root).as_posix()
        if rel != ".":
            yield rel + "/", None
        for fn in sorted(filenames):
            if _has_ext(fn, exts):
                full = os.path.join(dirpath, fn)
                try:
                    with open(full, "rb") as f:
                        data = f.read()
                except OSError as exc:
                    data = UnreadableFile(os_error_reason(full, exc))
                yield (fn if rel == "." else f"{rel}/{fn}"), data


def os_error_reason(path, exc: OSError) -> str:
    """Short reason why ``path`` could not be opened or stat'ed (no repeated path)."""
    if os.path.islink(path) and not os.path.exists(path):
        try:
            return f"broken symbolic link (its target {os.readlink(path)} does not exist)"
        except OSError:
            return "broken symbolic link"
    return exc.strerror or str(exc) or type(exc).__name__


def _iter_tar(path: Path, exts):
    try:
        with tarfile.open(path, "r:*") as tf:
            for m in tf:
                name = m.name[2:] if m.name.startswith("./") else m.name
                if m.isdir():
                    yield name.rstrip("/") + "/", None
                elif m.isfile() and _has_ext(name, exts):
                    f = tf.extractfile(m)
                    yield name, f.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataError(f"archive {path} is truncated or corrupt ({exc})") from None


def _iter_zip(path: Path, exts):
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    yield info.filename.rstrip("/") + "/", None
                elif _has_ext(info.filename, exts):
                    yield info.filename, zf.read(info)
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise DataError(f"archive {path} is truncated or corrupt ({exc})") from None


def crop_box(w: int, h: int, crop: float = 1.0, center=(0.5, 0.5)):
    """Pillow box (left, top, right, bottom) of the centred square of side
    ``crop * min(w, h)``; ``center`` is the square's centre as fractions of (w, h)."""
    if not 0.0 < crop <= 1.0:
        raise ValueError(f"crop ratio must be in (0, 1], got {crop}")
    c = crop * min(w, h)
    cx = min(max(center[0] * w, c / 2), w - c / 2)
    cy = min(max(center[1] * h, c / 2), h - c / 2)
    return (cx - c / 2, cy - c / 2, cx + c / 2, cy + c / 2)


def image_to_square(im: Image.Image, size: int, crop: float = 1.0, center=(0.5, 0.5)):
    """Crop a PIL image to a centred square (see :func:`crop_box`), resize to
    ``size`` with bicubic (anti-aliased) resampling: returns (3, size, size) uint8.
    16-bit images are scaled to 8 bits first (:func:`to_8bit`)."""
    im = to_8bit(im)
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    box = crop_box(im.size[0], im.size[1], crop, center)
    im = im.resize((size, size), Image.BICUBIC, box=box)
    if im.mode != "RGB":
        im = im.convert("RGB")           # grey -> 3 identical channels
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


def to_8bit(im: Image.Image) -> Image.Image:
    """16-bit grey (Pillow modes ``I;16``, ``I;16B``, ``I;16L``, ``I``) -> ``L`` with
    ``round(value / 257)`` clipped to 0..255, so 65535 -> 255 and ``257 * v`` -> ``v``
    (Pillow's own conversion clips instead, which turns a 16-bit face white). Other
    modes are returned unchanged (Pillow already reads 16-bit RGB as 8-bit ``RGB``)."""
    if im.mode != "I" and not im.mode.startswith("I;16"):
        return im
    a = np.asarray(im).astype(np.float64) / 257.0                       # (H, W)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (phone photos are stored sideways with a tag saying
    so): the image as it is meant to be seen. An unreadable EXIF block is ignored."""
    if im.format in ("JPEG", "MPO") and "exif" not in im.info:
        return im                        # a JPEG's EXIF is its APP1 segment: none here
    try:
        orientation = im.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # malformed EXIF: keep the pixels as stored
        return im
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        im = ImageOps.exif_transpose(im)
    return im


def open_image(data: bytes) -> Image.Image:
    """``Image.open`` of image bytes (lazy: pixels are read by ``load()``). Raises
    ValueError("not an image Pillow can read") when no Pillow decoder knows them."""
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow can read") from None


def decode_square(data: bytes, size: int, crop: float = 1.0, center=(0.5, 0.5)):
    """Decode image bytes (any Pillow format) into (3, size, size) uint8.

    JPEGs are decoded at a reduced scale (``Image.draft``) when that still leaves at
    least ``size`` pixels across the crop. The EXIF orientation is applied before
    cropping (:func:`upright`). Raises on corrupt or truncated data.
    """
    im = open_image(data)
    if im.format == "JPEG":
        w, h = im.size
        need = size / crop
        im.draft(im.mode, (int(np.ceil(need * w / min(w, h))), int(np.ceil(need * h / min(w, h)))))
    im.load()
    return image_to_square(upright(im), size, crop, center)


def image_error_reason(exc: Exception) -> str:
    """One short reason for a failed decode, without Pillow's ``<_io.BytesIO ...>``."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = _BYTESIO_REPR.sub("", str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Progress:
    """Prints ``label: n/total images (rate/s)`` to stderr every ``every`` items."""

    def __init__(self, label: str, total=None, every: int = 2000, enabled: bool = True):
        self.label, self.total, self.every, self.enabled = label, total, every, enabled
        self.n, self.t0 = 0, time.perf_counter()

    def step(self, k: int = 1):
        self.n += k
        if self.enabled and self.n % self.every < k:
            self._print()

    def _print(self, final=False):
        dt = max(time.perf_counter() - self.t0, 1e-9)
        tot = f"/{self.total}" if self.total else ""
        end = " done" if final else ""
        print(f"{self.label}: {self.n}{tot} images, {self.n / dt:.0f}/s, {dt:.1f}s{end}",
              file=sys.stderr, flush=True)

    def done(self):
        if self.enabled:
            self._print(final=True)


def resolve_progress(progress):
    """None -> True when stderr is a terminal."""
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress)


def warn_skipped(path_label: str, exc: Exception):
    """Warn that one file was skipped, naming it and saying why in a few words."""
    warnings.warn(f"skipped corrupt or unreadable image {path_label}: "
                  f"{image_error_reason(exc)}", DataWarning, stacklevel=3)


def warn_skipped_total(skipped: list, source: str):
    if skipped:
        warnings.warn(f"{len(skipped)} image(s) could not be read from {source} and were skipped",
                      DataWarning, stacklevel=3)
