"""One signature scheme for every cached artefact: the dataset cache, the teacher's
feature bank and descriptors, the unlabelled pool, and each phase of the ablation.

A cached artefact is reused only when the signature stored with it equals the signature
of what it would be computed from now:

    signature(obj) = sha256(canonical JSON of obj)       # sorted keys, tuples as lists
    fingerprint(*arrays) = sha256(each array's shape, dtype and bytes)

    rows = read_if(out / "teacher_eval.json", sig)       # None: missing, unreadable or stale
    if rows is None:
        rows = evaluate(...)
        write_with(out / "teacher_eval.json", sig, rows)

Arrays enter a signature through their ``fingerprint`` (a teacher's weights, the faces
it saw). A JSON artefact is ``{"signature": ..., "value": ...}`` (written atomically); an
artefact of its own format (an ``.npz``) stores ``signature(sig)`` in its own metadata and
checks it with ``matches``. A file of another scheme (an older run's) is simply
recomputed. Keys are cut to ``length`` hex digits where they name a file.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from tinyface.atomic import write_json

__all__ = ["signature", "fingerprint", "matches", "read_json", "read_if", "write_with"]


def _canonical(obj):
    """The canonical JSON text of ``obj``: sorted keys, no spaces, tuples as lists,
    anything else JSON cannot hold as its ``str``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def signature(obj, length=64):
    """sha256 (hex, the first ``length`` digits) of the canonical JSON of ``obj``."""
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()[:length]


def fingerprint(*arrays, length=64):
    """sha256 (hex, the first ``length`` digits) of the arrays' shapes, dtypes and bytes,
    in order. A ``(name, array)`` pair enters with its name."""
    h = hashlib.sha256()
    for a in arrays:
        if isinstance(a, tuple):
            name, a = a
            h.update(str(name).encode() + b"\0")
        a = np.ascontiguousarray(a)
        h.update(repr((a.shape, str(a.dtype))).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:length]


def matches(stored, sig):
    """Whether a stored signature (a hex string, or None) is the signature of ``sig``."""
    return isinstance(stored, str) and stored == signature(sig)


def read_json(path):
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_if(path, sig):
    """The value cached in ``path`` under ``sig``; None when missing, unreadable or
    cached under another signature."""
    d = read_json(path)
    if isinstance(d, dict) and matches(d.get("signature"), sig):
        return d.get("value")
    return None


def write_with(path, sig, value):
    """Cache the JSON-able ``value`` in ``path`` under ``sig`` (atomically)."""
    write_json(path, {"signature": signature(sig), "value": value})
    return value
