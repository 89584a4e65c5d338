"""Atomic file writes: a temporary file in the same folder, fsync, then ``os.replace``.

A crash or an exception mid-write leaves the previous file intact (or no file) and no
partial or temporary file behind. Checkpoints, caches, histories and plots use it.
"""
import json
from pathlib import Path
import os
import secrets

import numpy as np


def atomic_write(path, write):
    """Call ``write(f)`` on a binary file that becomes ``path`` only once complete.

    The temporary file is created with mode 0o666 (the umask applies), as a normal
    ``open`` would. Returns ``path`` as a string.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)
    return path


def _fsync_directory(directory):
    """Make the rename itself durable where the OS allows it (POSIX)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def write_bytes_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def write_json_atomic(path, obj, indent=1):
    """Write ``obj`` as JSON atomically; NumPy scalars and arrays become plain values."""
    text = json.dumps(obj, indent=indent, default=json_default)
    return write_bytes_atomic(path, text.encode())


def write_json(path, obj):
    """Write ``obj`` as JSON atomically (temporary file, then rename); returns the Path."""
    return Path(write_json_atomic(path, obj))


def savez_atomic(path, arrays):
    """Write ``arrays`` (dict name -> array) as an uncompressed ``.npz`` atomically."""
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def json_default(v):
    """``json.dumps(default=...)`` for NumPy scalars and arrays (anything else: str)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)
