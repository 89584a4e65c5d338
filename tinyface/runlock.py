"""One run per output folder: a lock file naming the process that holds the folder.

Two runs writing to one folder would overwrite each other's checkpoints and interleave
their logs. ``hold_folder(out)`` creates ``out`` (and its parents), checks that it can
be written, and creates ``out/.tinyface.lock`` exclusively (``O_CREAT | O_EXCL``), with
the holder's PID, host, start time and command line. A second run on the same folder
is refused with ``FolderLockedError`` naming the holder. The lock is removed when the
run ends, by an error or Ctrl-C too; a lock left by a killed run (its PID no longer
alive on this host) is stale and taken over.

    with hold_folder("runs/student"):
        ...                                  # train, write files

Errors are one line (``FolderError``, a ``ValueError``): an existing file at ``out``, a
path under a file, a folder that cannot be written.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".tinyface.lock"


class FolderError(ValueError):
    """The output folder cannot be created or written; the message names it."""


class FolderLockedError(FolderError):
    """Another live run holds the output folder."""


def _reason(exc):
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return "a file is in the way (it must be a folder)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"not writable ({exc.strerror})"
    return exc.strerror or str(exc)


def _alive(pid):
    """Whether process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # it exists, owned by another user
        return True
    return True


def _holder(lock):
    """The lock's record, or None when it cannot be read (being written, or foreign)."""
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return None


def _take(lock):
    """Create ``lock`` with this process's record; False when it already exists."""
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    return True


@contextmanager
def hold_folder(out):
    """Create and lock the output folder ``out`` for the ``with`` block (module doc)."""
    out = Path(out)
    lock = out / LOCK_NAME
    try:
        out.mkdir(parents=True, exist_ok=True)
        taken = _take(lock)
        if not taken:
            holder = _holder(lock)
            here = holder is not None and holder.get("host") == socket.gethostname()
            if holder is None or not here or _alive(int(holder.get("pid", -1))):
                who = (f"PID {holder.get('pid')} on {holder.get('host')}, since "
                       f"{holder.get('started')}" if holder else "a run starting now")
                raise FolderLockedError(
                    f"{out} is in use by another run ({who}): wait for it to end or give "
                    f"another --out (remove {lock} if that run is gone)")
            lock.unlink(missing_ok=True)             # stale: its run was killed
            if not _take(lock):
                raise FolderLockedError(f"{out} was taken by another run just now: give "
                                        f"another --out")
    except FolderError:
        raise
    except OSError as exc:
        raise FolderError(f"cannot write to {out}: {_reason(exc)}") from None
    try:
        yield out
    finally:
        holder = _holder(lock)
        if holder is not None and holder.get("pid") == os.getpid():
            lock.unlink(missing_ok=True)
