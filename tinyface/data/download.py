"""Downloading and unpacking the real datasets (used by ``data_scripts/``).

:func:`download` fetches a URL with urllib (timeout, progress bar on stderr,
written to ``<dest>.part`` and renamed only when the checksum matches).
:func:`script_main` is the command line of ``data_scripts/download_*.py``: every
failure (offline, HTTP error, checksum mismatch, bad archive) prints one line
``error: ...`` and returns exit code 1, never a traceback.
:func:`fetch_teacher` / :func:`teacher_main` do the same for ``data_scripts/download_teacher.py``
(dlib's ResNet weights out of the npm tarball; exit code 2 on failure).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from tinyface.atomic import write_bytes_atomic
from tinyface.helpformat import HelpFormatter

from .cache import default_cache_dir
from .dataset import DataError

SOURCES = {
    "lfw": dict(url="http://vis-www.cs.umass.edu/lfw/lfw.tgz",
                md5="a17d05bd522c52d84eca14327a23d494", extract=False),
    # The AT&T archive has moved several times; override with --url or --archive.
    "orl": dict(url="https://www.cl.cam.ac.uk/research/dtg/attarchive/pub/data/att_faces.zip",
                md5=None, extract=True),
}


class DownloadError(Exception):
    """A download or checksum failure, with a one-line message."""


def file_digest(path, algo: str = "md5") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksum(path, md5: str | None = None, sha256: str | None = None):
    """Raise DownloadError when a given checksum does not match the file."""
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want:
            got = file_digest(path, algo)
            if got.lower() != want.lower():
                raise DownloadError(f"{algo} checksum mismatch for {path}: expected {want}, "
                                    f"got {got}")


def _progress(done: int, total: int | None, t0: float, name: str):
    rate = done / max(time.perf_counter() - t0, 1e-6) / 1e6
    if total:
        bar = "#" * int(30 * done / total)
        msg = f"\r{name} [{bar:<30}] {done / 1e6:.1f}/{total / 1e6:.1f} MB {rate:.1f} MB/s"
    else:
        msg = f"\r{name} {done / 1e6:.1f} MB {rate:.1f} MB/s"
    print(msg, end="", file=sys.stderr, flush=True)


def download(url: str, dest, md5: str | None = None, sha256: str | None = None,
             progress: bool = True, timeout: float = 30.0) -> Path:
    """Fetch ``url`` to ``dest`` (a file path) and check its checksum(s); returns dest.

    Raises DownloadError with a one-line message on any network or checksum failure.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as f:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done, last = 0, 0.0
            while True:
                block = resp.read(1 << 16)
                if not block:
                    break
                f.write(block)
                done += len(block)
                now = time.perf_counter()
                if progress and (now - last > 0.2 or done == total):
                    _progress(done, total, t0, dest.name)
                    last = now
        if progress:
            _progress(done, total, t0, dest.name)
            print(file=sys.stderr)
        if total is not None and done != total:
            raise DownloadError(f"download of {url} was cut short: {done} of {total} bytes")
        verify_checksum(part, md5, sha256)
        os.replace(part, dest)
        return dest
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"cannot download {url}: {exc.reason} (offline?)") from None
    except (socket.timeout, TimeoutError):
        raise DownloadError(f"cannot download {url}: timed out after {timeout:g} s") from None
    except (OSError, ValueError) as exc:
        raise DownloadError(f"cannot download {url}: {exc}") from None
    finally:
        if part.exists():
            part.unlink()


def extract(archive, out_dir) -> Path:
    """Unpack a zip or tar archive into ``out_dir`` (refusing paths that escape it)."""
    archive, out_dir = Path(archive), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    if not (root / name).resolve().is_relative_to(root):
                        raise DataError(f"archive {archive} has an unsafe path: {name}")
                zf.extractall(out_dir)
        else:
            with tarfile.open(archive, "r:*") as tf:
                members = tf.getmembers()
                for m in members:
                    if not (root / m.name).resolve().is_relative_to(root) or m.issym() or m.islnk():
                        raise DataError(f"archive {archive} has an unsafe member: {m.name}")
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(out_dir, members=members, filter="data")
                else:
                    tf.extractall(out_dir, members=members)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(f"archive {archive} is truncated or corrupt ({exc})") from None
    return out_dir


def script_main(dataset: str, argv=None) -> int:
    """Command line of ``data_scripts/download_<dataset>.py``; returns the exit code."""
    src = SOURCES[dataset]
    p = argparse.ArgumentParser(
        prog=f"download_{dataset}.py",
        description=f"Download the {dataset.upper()} archive (or take a local one), check "
                    "its checksum and put it under --out.",
        formatter_class=HelpFormatter)
    p.add_argument("--url", default=None,
                   help=f"archive URL; if not given, {src['url']}")
    p.add_argument("--md5", default=None,
                   help="expected MD5; if not given, the known one"
                        + (f" ({src['md5']})" if src["md5"] else " (none for this dataset)")
                        + " when using the default URL, else no check")
    p.add_argument("--sha256", default=None, help="expected SHA-256; if not given, no check")
    p.add_argument("--archive", default=None,
                   help="use this local archive (zip or tar) instead of downloading; it is "
                        "copied to --out, never modified")
    p.add_argument("--out", default=str(Path.home() / ".cache" / "tinyface" / "data"),
                   help="output folder (use it as --data-root, or set TINYFACE_DATA to it)")
    p.add_argument("--extract", action=argparse.BooleanOptionalAction, default=src["extract"],
                   help="also unpack the archive under --out")
    p.add_argument("--timeout", type=float, default=30.0, help="network timeout, seconds")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--seed", type=int, default=0, help="accepted for uniformity; unused")
    args = p.parse_args(argv)
    md5 = args.md5
    if md5 is None and args.url is None and args.archive is None:
        md5 = src["md5"]
    out = Path(args.out).expanduser()
    try:
        if args.archive:
            local = Path(args.archive).expanduser()
            if not local.is_file():
                raise DownloadError(f"archive {local} does not exist")
            verify_checksum(local, md5, args.sha256)
            dest = out / local.name
            out.mkdir(parents=True, exist_ok=True)
            if dest.resolve() != local.resolve():
                shutil.copyfile(local, dest)
        else:
            url = args.url or src["url"]
            name = Path(urllib.request.url2pathname(url.split("?")[0])).name or f"{dataset}.archive"
            dest = download(url, out / name, md5=md5, sha256=args.sha256,
                            progress=not args.no_progress, timeout=args.timeout)
        print(f"{dataset}: archive at {dest} (md5 {file_digest(dest)})")
        if args.extract:
            extract(dest, out)
            print(f"{dataset}: extracted under {out}")
        print(f"use it with: python -m tinyface data info --data {dataset} --data-root {out}")
        return 0
    except (DownloadError, DataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


# --- the teacher's weights: dlib's ResNet as the npm package @vladmandic/face-api ships it ---
# The files to fetch and their checksums; the weights reader (``models.weights``) finds and
# checks the files with this same dict.
DLIB_FILES = {
    "subdir": "dlib_resnet",
    "manifest": "face_recognition_model-weights_manifest.json",
    "manifest_sha256": "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b",
    "binary": "face_recognition_model.bin",
    "binary_sha256": "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589",
    "binary_size": 6_444_032,
    "npm_package": "@vladmandic/face-api@1.7.15",
    "tarball": "vladmandic-face-api-1.7.15.tgz",
    "tarball_sha256": "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    "tarball_dir": "package/model/",       # where the two files sit inside the tarball
    "download_command": "python data_scripts/download_teacher.py",
}


def _npm_pack(spec: str, dest: Path, timeout: float) -> Path:
    """``npm pack <spec>`` in ``dest``; returns the tarball. DownloadError (one line) on failure."""
    npm = shutil.which("npm")
    if npm is None:
        raise DownloadError("npm is not on PATH")
    try:
        r = subprocess.run([npm, "pack", spec, "--fetch-retries=1"], cwd=dest, timeout=timeout,
                           capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        raise DownloadError(f"npm pack timed out after {timeout:g} s (offline?)") from None
    except OSError as exc:
        raise DownloadError(f"npm pack could not start ({exc})") from None
    tgz = sorted(dest.glob("*.tgz"))
    if r.returncode != 0 or len(tgz) != 1:
        lines = [s.strip() for s in (r.stderr + r.stdout).splitlines() if s.strip()]
        errs = [s.split(None, 2)[2] for s in lines           # "npm ERR! x" / "npm error x"
                if s.startswith(("npm ERR!", "npm error")) and len(s.split(None, 2)) == 3]
        why = [e for e in errs if e.startswith("code ")][:1]
        why += [e for e in errs if not e.startswith(("code ", "syscall ", "errno "))][:1]
        why = "; ".join(why) or (lines[-1] if lines else "no output")
        raise DownloadError(f"npm pack failed (exit {r.returncode}: {why[:200]})")
    return tgz[0]


def _teacher_members(tgz: Path, files: dict) -> dict:
    """Read the two model files out of the tarball into memory: {name: bytes}."""
    out = {}
    try:
        with tarfile.open(tgz, "r:gz") as tf:
            for name in (files["manifest"], files["binary"]):
                member = files["tarball_dir"] + name
                try:
                    info = tf.getmember(member)
                except KeyError:
                    raise DownloadError(f"archive {tgz} has no {member} "
                                        "(not the @vladmandic/face-api tarball?)") from None
                if not info.isfile() or info.size > 64 << 20:
                    raise DownloadError(f"archive {tgz}: {member} is not a plain file")
                out[name] = tf.extractfile(info).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DownloadError(f"archive {tgz} is truncated or corrupt ({exc})") from None
    return out


def fetch_teacher(out, archive=None, timeout: float = 300.0, log=None) -> Path:
    """Put dlib's manifest + binary into ``out`` (sha256-checked, atomic); returns ``out``.

    archive: a local copy of the npm tarball; None runs ``npm pack`` in a temporary folder.
    Tarball checksum policy: the npm tarball of a published version never changes, so a
    fetched one that differs is refused. A local --archive that differs (a repacked or other
    version of the package) is accepted only when both model files match their own sha256,
    which are what the code relies on. Both files are checked before either is written, so a
    failure leaves nothing in ``out``. Raises DownloadError with a one-line message.
    """
    files = DLIB_FILES
    log = log or (lambda msg: print(msg, file=sys.stderr))
    out = Path(out).expanduser()
    spec = files["npm_package"]
    advice = (f"download {files['tarball']} elsewhere (npm pack {spec}) and pass --archive PATH, "
              f"or set TINYFACE_DATA to a folder holding {files['subdir']}/")
    with tempfile.TemporaryDirectory(prefix="tinyface-npm-") as tmp:
        if archive is None:
            try:
                tgz = _npm_pack(spec, Path(tmp), timeout)
            except DownloadError as exc:
                raise DownloadError(f"cannot fetch {spec}: {exc}; {advice}") from None
        else:
            tgz = Path(archive).expanduser()
            if not tgz.is_file():
                raise DownloadError(f"archive {tgz} does not exist; {advice}")
        tgz_sha = file_digest(tgz, "sha256")
        tgz_ok = tgz_sha == files["tarball_sha256"]
        if not tgz_ok and archive is None:
            raise DownloadError(f"npm gave {tgz.name} with sha256 {tgz_sha}, expected "
                                f"{files['tarball_sha256']}; refusing it")
        data = _teacher_members(tgz, files)
    for name, want in ((files["manifest"], files["manifest_sha256"]),
                       (files["binary"], files["binary_sha256"])):
        got = hashlib.sha256(data[name]).hexdigest()
        if got != want:
            raise DownloadError(f"{name} in {tgz} has sha256 {got}, expected {want}")
    if not tgz_ok:
        log(f"note: {tgz} has sha256 {tgz_sha}, not that of {files['tarball']}; accepted "
            "because both model files match their known sha256")
    written = []
    try:
        for name, blob in data.items():
            written.append(out / name)
            write_bytes_atomic(out / name, blob)
    except OSError as exc:
        for p in written[:-1]:
            p.unlink(missing_ok=True)
        raise DownloadError(f"cannot write {written[-1]}: {exc}") from None
    return out


def teacher_main(argv=None) -> int:
    """Command line of ``data_scripts/download_teacher.py``; returns the exit code (2 on error)."""
    files = DLIB_FILES
    default_out = default_cache_dir() / files["subdir"]
    p = argparse.ArgumentParser(
        prog="download_teacher.py", formatter_class=HelpFormatter,
        description=f"Fetch dlib's pretrained face ResNet ({files['manifest']} + {files['binary']})"
                    f" from the npm package {files['npm_package']} (or a local copy of its "
                    "tarball), check the sha256 and put the two files in --out.")
    p.add_argument("--archive", default=None,
                   help=f"a local {files['tarball']} instead of running npm pack")
    p.add_argument("--out", default=str(default_out),
                   help="output folder (the default is where find_weights_dir() looks last)")
    p.add_argument("--timeout", type=float, default=300.0, help="npm pack time limit, seconds")
    args = p.parse_args(argv)
    try:
        out = fetch_teacher(args.out, archive=args.archive, timeout=args.timeout)
    except (DownloadError, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(f"teacher: {files['manifest']} and {files['binary']} (sha256 verified) are in {out}")
    if out.resolve() == default_out.resolve():
        print("tinyface.models.weights.find_weights_dir() finds them there (its last place, "
              "after $TINYFACE_DATA/dlib_resnet or ../shared/data/dlib_resnet)")
    else:
        print(f"use them with find_weights_dir({str(out)!r}) (weights=...), or name the folder "
              f"{files['subdir']} and set TINYFACE_DATA to its parent")
    return 0
