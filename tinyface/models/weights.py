"""dlib's pretrained face ResNet (the teacher) as face-api.js ships it: a TF.js manifest + binary.

    from tinyface.models.weights import find_weights_dir, read_manifest, read_manifest_weights
    folder = find_weights_dir()                   # or find_weights_dir("path/to/dlib_resnet")
    w = read_manifest_weights(folder)             # {name: float32 array}, in manifest order
    w["conv32_down/conv/filters"].shape           # (7, 7, 3, 32): HWIO, as in the manifest
    steps = {e.name: e.scale for e in read_manifest(folder)}   # None for float32 tensors

Where :func:`find_weights_dir` looks, in order (the first folder holding both files wins):
  1. ``weights=``: a folder holding the two files, or the path of either file;
  2. ``default_data_root() / "dlib_resnet"``: ``$TINYFACE_DATA/dlib_resnet`` when TINYFACE_DATA
     is set (it then replaces the shared folder, as it does for every dataset), else
     ``<repo>/../shared/data/dlib_resnet``;
  3. ``default_cache_dir() / "dlib_resnet"`` ($TINYFACE_CACHE or ~/.cache/tinyface), which
     ``python data_scripts/download_teacher.py`` fills.

Dequantisation is TF.js's own (``decodeWeights`` in tfjs-core, bundled in the npm tarball's
``dist/tfjs.esm.js``): ``values[i] = q * scale + min`` in JavaScript numbers (float64), stored
into a Float32Array (one rounding to float32). We compute the same thing,
``(q.astype(float64) * scale + min).astype(float32)``, so the arrays are bit-identical to what
face-api.js runs with. A uint8 tensor is the original float32 one to within about ``scale / 2``.

Every failure is a :class:`WeightsError` (a ValueError) with a one-line message that names the
file and the download command.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy as np

from tinyface.data.cache import default_cache_dir
from tinyface.data.dataset import DataError, default_data_root
from tinyface.data.download import DLIB_FILES, file_digest  # the files and their checksums


class WeightsError(DataError):
    """Missing, corrupt or unexpected weight files (a ValueError; the message is one line)."""


def _error(path, problem: str) -> WeightsError:
    msg = f"{path}: {problem}; get dlib's weights with: {DLIB_FILES['download_command']}"
    return WeightsError(msg.replace("\r", " ").replace("\n", " "))


def _has_both(folder: Path) -> bool:
    return (folder / DLIB_FILES["manifest"]).is_file() and (folder / DLIB_FILES["binary"]).is_file()


def find_weights_dir(weights=None) -> Path:
    """The folder holding dlib's manifest and binary (order in the module docstring).

    weights: None, or a folder / the manifest / the binary; an explicit path that does not
    hold both files is an error (no fallback to the default places).
    """
    manifest, binary = DLIB_FILES["manifest"], DLIB_FILES["binary"]
    if weights is not None:
        p = Path(weights).expanduser()
        if p.is_file() and p.name not in (manifest, binary):
            raise _error(p, f"expected a folder, {manifest} or {binary}")
        folder = p.parent if p.is_file() else p
        if not folder.is_dir():
            raise _error(p, "no such folder or file")
        for name in (manifest, binary):
            if not (folder / name).is_file():
                raise _error(folder / name, "missing")
        return folder
    places = []
    root = default_data_root()
    if root is not None:
        places.append(root / DLIB_FILES["subdir"])
    places.append(default_cache_dir() / DLIB_FILES["subdir"])
    for folder in places:
        if _has_both(folder):
            return folder
    where = ", ".join(str(f) for f in places)
    raise _error(f"dlib ResNet weights ({manifest} + {binary})",
                 f"not found in {where} (pass weights=FOLDER or set TINYFACE_DATA)")


@dataclass(frozen=True)
class TensorEntry:
    """One manifest tensor: its shape, where its bytes lie, how to decode them.

    files: the binary shards of its group (the group's bytes are their concatenation);
    offset, nbytes: its place in that concatenation; scale, min: uint8 quantisation
    (value = q * scale + min), both None for a float32 tensor.
    """
    name: str
    shape: tuple
    files: tuple
    offset: int
    nbytes: int
    scale: float | None = None
    min: float | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    @property
    def size(self) -> int:
        return prod(self.shape)


def _manifest_path(path) -> Path:
    p = Path(path).expanduser()
    return p / DLIB_FILES["manifest"] if p.is_dir() else p


def _entry(mpath, w, files, offset) -> TensorEntry:
    """Check one ``weights`` item of the manifest; return its TensorEntry."""
    if not isinstance(w, dict) or not isinstance(w.get("name"), str):
        raise _error(mpath, f"invalid manifest: a weight without a name ({str(w)[:60]})")
    name, shape, dtype = w["name"], w.get("shape"), w.get("dtype")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise _error(mpath, f"invalid manifest: tensor {name} has shape {shape!r}")
    if dtype != "float32":
        raise _error(mpath, f"tensor {name} has dtype {dtype!r}; only float32 is supported")
    q = w.get("quantization")
    n = prod(shape)
    if q is None:
        return TensorEntry(name, tuple(shape), files, offset, 4 * n)
    if not isinstance(q, dict) or q.get("dtype") != "uint8":
        qd = q.get("dtype") if isinstance(q, dict) else q
        raise _error(mpath, f"tensor {name} is quantised as {qd!r}; only uint8 is supported")
    scale, lo = q.get("scale"), q.get("min")
    if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in (scale, lo)):
        raise _error(mpath, f"tensor {name}: uint8 quantisation needs a finite scale and min")
    return TensorEntry(name, tuple(shape), files, offset, n, float(scale), float(lo))


def read_manifest(path) -> list[TensorEntry]:
    """Parse and check a TF.js weights manifest (a folder holding dlib's, or a .json path).

    Structural checks, always made: valid JSON, known dtypes, unique names, and each group's
    binary shards exist and hold exactly the bytes its tensors need. Reads no tensor data.
    """
    mpath = _manifest_path(path)
    try:
        groups = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _error(mpath, "missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _error(mpath, f"not a readable JSON manifest ({exc})") from None
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise _error(mpath, "invalid manifest: expected a list of {paths, weights} groups")
    entries, names = [], set()
    for gi, g in enumerate(groups):
        paths, weights = g.get("paths"), g.get("weights")
        if not (isinstance(paths, list) and paths and all(isinstance(s, str) for s in paths)
                and isinstance(weights, list)):
            raise _error(mpath, f"invalid manifest: group {gi} needs 'paths' and 'weights' lists")
        files = tuple(mpath.parent / s for s in paths)
        offset = 0
        for w in weights:
            e = _entry(mpath, w, files, offset)
            if e.name in names:
                raise _error(mpath, f"invalid manifest: tensor {e.name} appears twice")
            names.add(e.name)
            entries.append(e)
            offset += e.nbytes
        have = 0
        for f in files:
            if not f.is_file():
                raise _error(f, "missing (named by the manifest)")
            have += f.stat().st_size
        where = files[0] if len(files) == 1 else f"{files[0]} (+{len(files) - 1} shards)"
        if have < offset:
            raise _error(where, f"truncated: the manifest's {len(weights)} tensors need "
                                f"{offset:,} bytes, the file has {have:,}")
        if have > offset:
            raise _error(where, f"manifest does not match the binary: its {len(weights)} "
                                f"tensors need {offset:,} bytes, the file has {have:,}")
    return entries


def _check_known_files(mpath: Path, entries) -> None:
    """The manifest and binary must be dlib's (the sha256 and size in DLIB_FILES)."""
    want = DLIB_FILES["manifest_sha256"]
    got = file_digest(mpath, "sha256")
    if got != want:
        raise _error(mpath, f"sha256 {got} is not dlib's {want} "
                            "(check_sha256=False reads other manifests)")
    binaries = {f for e in entries for f in e.files}
    for b in binaries:
        size = b.stat().st_size
        if size != DLIB_FILES["binary_size"]:
            raise _error(b, f"size {size:,} bytes, expected {DLIB_FILES['binary_size']:,}")
        got, want = file_digest(b, "sha256"), DLIB_FILES["binary_sha256"]
        if got != want:
            raise _error(b, f"sha256 {got} is not dlib's {want} (corrupt?)")


def read_manifest_weights(folder, check_sha256: bool = True) -> dict:
    """All tensors of a manifest as float32 arrays, in the manifest's shapes and order.

    folder: a folder holding dlib's manifest and binary, or the path of a manifest.
    check_sha256: require dlib's own files (sha256 and size in DLIB_FILES); False reads any
    well-formed manifest (the structural checks of :func:`read_manifest` are always made).
    Returns {name: ndarray float32 of the manifest's shape} (insertion-ordered).
    Dequantisation: ``(q.astype(float64) * scale + min).astype(float32)``, as TF.js does.
    """
    mpath = _manifest_path(folder)
    entries = read_manifest(mpath)
    if check_sha256:
        _check_known_files(mpath, entries)
    buffers = {}
    out = {}
    for e in entries:
        if e.files not in buffers:
            try:
                buffers[e.files] = b"".join(f.read_bytes() for f in e.files)
            except OSError as exc:
                raise _error(e.files[0], f"cannot read ({exc})") from None
        buf = buffers[e.files]
        if e.quantized:
            q = np.frombuffer(buf, dtype=np.uint8, count=e.size, offset=e.offset)
            a = (q.astype(np.float64) * e.scale + e.min).astype(np.float32)
        else:
            a = np.frombuffer(buf, dtype="<f4", count=e.size, offset=e.offset).astype(np.float32)
        out[e.name] = a.reshape(e.shape)
    return out


def format_manifest(entries) -> str:
    """One line per tensor: index, name, shape, size, and uint8 scale/min or 'float32'."""
    lines = []
    for i, e in enumerate(entries):
        kind = f"uint8 scale={e.scale:.6g} min={e.min:.6g}" if e.quantized else "float32"
        lines.append(f"{i:3d}  {e.name:<40s} {str(e.shape):<18s} {e.size:>9,d}  {kind}")
    return "\n".join(lines)
