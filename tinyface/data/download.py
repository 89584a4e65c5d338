"""Downloading and unpacking the real datasets (used by ``data_scripts/``).

:func:`download` fetches a URL with urllib (timeout, progress bar on stderr,
written to ``<dest>.part`` and renamed only when the checksum matches).
:func:`script_main` is the command line of ``data_scripts/download_*.py``: every
failure (offline, HTTP error, checksum mismatch, bad archive) prints one line
``error: ...`` and returns exit code 1, never a traceback.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

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


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):
        if action.default is None or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def script_main(dataset: str, argv=None) -> int:
    """Command line of ``data_scripts/download_<dataset>.py``; returns the exit code."""
    src = SOURCES[dataset]
    p = argparse.ArgumentParser(
        prog=f"download_{dataset}.py",
        description=f"Download the {dataset.upper()} archive (or take a local one), check "
                    "its checksum and put it under --out.",
        formatter_class=_Formatter)
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
