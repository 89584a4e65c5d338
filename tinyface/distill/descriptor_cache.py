"""The frozen teacher's descriptors on disk, and the attention rows of its last spatial
map made in the same forward pass.

    desc, sec = cached_descriptors(model, key, faces, path, say, "HR training faces")
    desc, att, sec = cached_attention(model, key, faces, path, say, "HR training faces",
                                      size=(4, 4))
    desc.shape, att.shape    # (N, D), (N, 16)

Descriptors: ``embed_faces`` of the faces, stored in ``path`` (``teacher-descriptors/
NAME.npz``) under ``"MODEL_KEY-FACES"``, the model's key and the faces' fingerprint
(``tinyface.cache.fingerprint``).

Attention rows (variant ``at``, ``distill.methods``): the teacher's map before its
global average pool, fmap (N, C, H', W') (``FaceNet.forward_both(x, keep_map=True)``;
for dlib's ResNet at 150 px the output of its last residual block, (N, 256, 2, 2)),
reduced by ``kd_maps.teacher_attention`` to the student's pre-pool size (h, w):
``vec(pool(mean_c fmap**2))`` L2-normalised per face, ``pool`` the overlap-weighted
adaptive pool of ``kd_maps.adaptive_pool_matrix`` (for 2 x 2 -> 4 x 4 each teacher cell
is copied into the 2 x 2 student cells it covers). They are stored next to the
descriptors, in ``NAME-attention.npz``, under ``signature({"model", "faces", "map",
"size"})``; the descriptor file is never rewritten for them, so a run without ``at``
finds its descriptors, and its keys, as they were. When either file is missing or
stale, one pass over the faces makes both (``embed_with_attention``); the descriptors
already on disk are kept as they are.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tinyface.atomic import savez_atomic
from tinyface.cache import fingerprint, signature
from tinyface.data import to_float
from tinyface.eval import eval_mode
from tinyface.models.pretrained import embed_faces, resize_faces
from tinyface.reference.kd_maps import teacher_attention

__all__ = ["faces_fingerprint", "cached_descriptors", "cached_attention",
           "embed_with_attention", "attention_path", "attention_signature"]

ATTENTION_MAP = "the input of the global average pool"


def faces_fingerprint(*arrays):
    """The arrays' fingerprint (``tinyface.cache.fingerprint``), 20 hex digits."""
    return fingerprint(*arrays, length=20)


def attention_path(path):
    """The attention file next to the descriptor file ``path``: ``NAME-attention.npz``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-attention.npz")


def attention_signature(model_key, faces, size):
    """What a face set's attention rows depend on (``tinyface.cache.signature``)."""
    return signature({"model": model_key, "faces": faces_fingerprint(faces),
                      "map": ATTENTION_MAP, "size": [int(v) for v in size],
                      "form": "kd_maps.teacher_attention"}, length=24)


def _load(path, key, n, name, say, what):
    """The array ``name`` of ``path`` if its key is ``key`` and it has ``n`` rows, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            if str(d["key"][()]) == key and d[name].shape[0] == n:
                say(f"teacher: loaded the {name} of the {what} from {path}")
                return d[name]
    except Exception as exc:              # unreadable: computed again
        say(f"teacher: ignoring {path} ({type(exc).__name__}: {exc})")
    return None


def _rate(say, n, sec, what="descriptors"):
    say(f"teacher: {n} {what} in {sec:.0f} s ({n / max(sec, 1e-9):.0f} faces/s)")


def cached_descriptors(model, model_key, faces, path, say, what, through=None):
    """``embed_faces(model, faces, through=through)``, cached in ``path`` under the model
    and the faces. Returns ``(descriptors (N, D) float32, seconds spent embedding or None
    if cached)``; with ``through`` the activations there, flattened to (N, D)."""
    path = Path(path)
    key = f"{model_key}-{faces_fingerprint(faces)}"
    desc = _load(path, key, len(faces), "descriptors", say, what)
    if desc is not None:
        return desc, None
    t0 = time.perf_counter()
    say(f"teacher: descriptors of the {what}: {len(faces)} faces of {faces.shape[-1]}px")
    desc = embed_faces(model, faces, batch_size=64, log=say, through=through)
    desc = desc.reshape(len(faces), -1)                                  # (N, D)
    sec = time.perf_counter() - t0
    _rate(say, len(faces), sec)
    savez_atomic(path, {"descriptors": desc, "key": np.array(key)})
    return desc, sec


def embed_with_attention(model, faces, size, batch_size=64, log=None):
    """Descriptors and attention rows of uint8 faces in one forward pass.

    model: a ``FaceNet`` (input S x S); faces: (N, 3, h, w) uint8, resized to S x S
    bicubically batch by batch, as ``embed_faces`` does; size: (h', w'), the student's
    pre-pool map size. Returns ``(descriptors (N, D) float32, attention (N, h'*w')
    float32)``: the embedding and ``teacher_attention(fmap, size)`` of the same forward.
    """
    say = log or (lambda msg: None)
    faces, S = np.asarray(faces), int(model.spec["input_size"])
    n, (h, w) = len(faces), (int(v) for v in size)
    if faces.shape[2:] != (S, S):
        say(f"{model.spec['name']}: resizing {n} faces from {faces.shape[2]}x"
            f"{faces.shape[3]} to {S}x{S} (bicubic) batch by batch")
    desc = np.empty((n, int(model.embedding_dim)), np.float32)
    att = np.empty((n, h * w), np.float32)
    t0 = last = time.perf_counter()
    with eval_mode(model):
        for a in range(0, n, int(batch_size)):
            b = min(n, a + int(batch_size))
            x = to_float(resize_faces(faces[a:b], S))                    # (B, 3, S, S)
            emb, _, fmap = model.forward_both(x, keep_map=True)          # fmap (B, C, H', W')
            desc[a:b] = emb                                              # (B, D)
            att[a:b] = teacher_attention(np.asarray(fmap), (h, w))       # (B, h*w)
            now = time.perf_counter()
            if now - last >= 10.0 and b < n:
                last, rate = now, b / (now - t0)
                say(f"  teacher: {b}/{n} faces, {rate:.0f} faces/s, ETA {(n - b) / rate:.0f} s")
    return desc, att


def cached_attention(model, model_key, faces, path, say, what, size):
    """``(descriptors (N, D), attention (N, h*w), seconds or None if both were cached)``
    of ``faces``: each loaded from its file when it matches (``path``; ``attention_path``),
    the missing ones made in one pass (``embed_with_attention``) and written."""
    path = Path(path)
    key = f"{model_key}-{faces_fingerprint(faces)}"
    akey = attention_signature(model_key, faces, size)
    desc = _load(path, key, len(faces), "descriptors", say, what)
    att = _load(attention_path(path), akey, len(faces), "attention", say, what)
    if desc is not None and att is not None:
        return desc, att, None
    t0 = time.perf_counter()
    made = "attention rows" if desc is not None else "descriptors and attention rows"
    say(f"teacher: {made} ({size[0]}x{size[1]}) of the {what}: {len(faces)} faces of "
        f"{faces.shape[-1]}px")
    new, att = embed_with_attention(model, faces, size, log=say)
    sec = time.perf_counter() - t0
    _rate(say, len(faces), sec, made)
    if desc is None:
        desc = new
        savez_atomic(path, {"descriptors": desc, "key": np.array(key)})
    savez_atomic(attention_path(path), {"attention": att, "key": np.array(akey)})
    return desc, att, sec
