"""Helpers shared by the tests/test_data_*.py files: tiny image trees and archives.

Everything is written under pytest's tmp_path; nothing touches the real data.
"""
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def face_like(w, h, seed, grey=False):
    """A small smooth random picture (h, w[, 3]) uint8 that JPEG keeps recognisable."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    img = np.zeros((h, w, 3))
    for c in range(3):
        a, b, p = rng.uniform(2, 6, 3)
        img[..., c] = 128 + 90 * np.sin(a * xx * 3 + p) * np.cos(b * yy * 3 + p)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img.mean(-1).astype(np.uint8) if grey else img


def write_pgm(path, arr, comment=True):
    """Binary P5 PGM of a (h, w) uint8 array (with a header comment)."""
    h, w = arr.shape
    head = b"P5\n" + (b"# made by a test\n" if comment else b"") + f"{w} {h}\n255\n".encode()
    Path(path).write_bytes(head + arr.tobytes())


def write_jpeg(path, arr, quality=90):
    Image.fromarray(arr).save(path, format="JPEG", quality=quality)


def truncate(path, keep=0.5):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])


def make_orl_tree(root, subjects=3, images=4, truncated=None):
    """``root/sX/Y.pgm`` (92x112 grey); ``truncated=(subject, image)`` cuts one file."""
    root = Path(root)
    for s in range(1, subjects + 1):
        (root / f"s{s}").mkdir(parents=True, exist_ok=True)
        for i in range(1, images + 1):
            write_pgm(root / f"s{s}" / f"{i}.pgm", face_like(92, 112, 100 * s + i, grey=True))
    (root / "README").write_text("tiny ORL-like fixture\n")
    if truncated:
        truncate(root / f"s{truncated[0]}" / f"{truncated[1]}.pgm", 0.3)
    return root


LFW_PEOPLE = {"Alice_Anders": 3, "Bob_Brown": 2, "Carla_Cruz": 1, "Dan_Dunn": 4}


def make_lfw_tree(parent, top="lfw", people=None, corrupt=True, empty=True, size=(90, 90)):
    """``parent/top/<Name>/<Name>_NNNN.jpg``. With ``corrupt``: Bob_Brown_0002.jpg is
    garbage and Dan_Dunn_0004.jpg truncated. With ``empty``: an empty Eve_Empty/."""
    people = people or LFW_PEOPLE
    root = Path(parent) / top
    for k, (name, n) in enumerate(sorted(people.items())):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            write_jpeg(root / name / f"{name}_{i:04d}.jpg", face_like(*size, 10 * k + i))
    if corrupt:
        (root / "Bob_Brown" / "Bob_Brown_0002.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
        truncate(root / "Dan_Dunn" / "Dan_Dunn_0004.jpg", 0.4)
    if empty:
        (root / "Eve_Empty").mkdir(parents=True, exist_ok=True)
    return root


def make_tgz(src_dir, out_path):
    """tar.gz of ``src_dir`` with its folder name as the top-level member."""
    src_dir = Path(src_dir)
    with tarfile.open(out_path, "w:gz") as tf:
        tf.add(src_dir, arcname=src_dir.name, recursive=True)
    return Path(out_path)


def make_zip(src_dir, out_path):
    src_dir = Path(src_dir)
    with zipfile.ZipFile(out_path, "w") as zf:
        for dirpath, dirnames, filenames in os.walk(src_dir):
            for d in sorted(dirnames):
                zf.write(os.path.join(dirpath, d),
                         os.path.relpath(os.path.join(dirpath, d), src_dir.parent) + "/")
            for f in sorted(filenames):
                full = os.path.join(dirpath, f)
                zf.write(full, os.path.relpath(full, src_dir.parent))
    return Path(out_path)


def tree_state(path):
    """{relative path: (sha1, size, mtime_ns)} of every file under ``path`` (or of the
    file itself): to check that nothing was modified."""
    p = Path(path)
    files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
    out = {}
    for q in files:
        st = q.stat()
        out[str(q.relative_to(p.parent if p.is_file() else p))] = (
            hashlib.sha1(q.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
    if p.is_dir():
        out["<dirs>"] = sorted(str(q.relative_to(p)) for q in p.rglob("*") if q.is_dir())
    return out


def png_size(path):
    """(width, height) of a PNG file, checking its signature."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def jpeg_bytes(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()
