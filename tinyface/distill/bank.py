"""The teacher feature bank: the teacher's embedding and logits for every HR training face.

    bank = extract_bank(teacher, split.hr_train, cache_path="runs/ablation/bank.npz")
    bank.embeddings          # (N, Dt) float32, phi_t(x_HR), the regression targets
    bank.logits              # (N, K) float32, the teacher's class scores (KD, selection)
    bank.check(len(split.y_train), dim=teacher.embedding_dim)   # ValueError on mismatch

``layer`` picks the regression targets: ``"embedding"`` (default), the teacher's
embedding; or ``"pooled"``, the globally average-pooled output of its last convolution
stage (the input of the embedding's ``Linear``), an earlier, less class-shaped feature.
Pooled features come after a ReLU: all non-negative, their directions differ little
from face to face (for the LFW teacher, cosine 0.91 on average between two faces), so
an L2-normalised regression of them would barely pull. The bank therefore standardises
each pooled coordinate over the faces (mean 0, std 1), as the embedding's BatchNorm1d
does for the embedding.

Attention transfer (variant ``at``) asks for ``attention_size=(h, w)``, the student's
pre-pool map size: the bank then also holds ``attention`` (N, h*w) float32, the teacher's
attention maps at its own pre-pool map (the input of the ``GlobalAvgPool2d``,
``pooled_index``), ``vec(mean_c t**2)`` average-pooled to h x w (adaptively, weighted by
overlap, when the sides are not integer multiples: ``tinyface.reference.kd_maps``) and
L2-normalised per face (``teacher_attention``); the size is then part of the default key
(``-atHxW``). Without it the bank, its file and its key are what they are without the
option. ``map_attention_size`` gives that size for the variants asked for. The
pretrained teacher's bank (``distill.frozen_teacher``) carries the same rows of its own
pre-pool map.

The teacher runs in eval mode (batch norm on running statistics), without
augmentation, in batches. With ``cache_path`` the bank is written to a ``.npz`` file
(temporary file, fsync, rename: a crash never leaves a partial file) together with a
key; a later call with the same key loads it instead of running the teacher again.
The default key fingerprints the teacher (architecture, parameters, buffers) and the
images (shape and bytes), so another teacher or other faces never reuse a stale bank.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyface.atomic import json_default, savez_atomic
from tinyface.cache import fingerprint, signature
from tinyface.data import to_float
from tinyface.distill.methods import variant_method
from tinyface.eval import eval_mode
from tinyface.models import spec_by_name
from tinyface.models.facenet import feature_map_shape
from tinyface.reference.kd_maps import teacher_attention

__all__ = ["FeatureBank", "extract_bank", "bank_key", "BANK_FORMAT", "BANK_LAYERS",
           "pooled_index", "layer_dim", "standardise_pooled", "map_attention_size"]

BANK_FORMAT = "tinyface-feature-bank/1"
BANK_LAYERS = ("embedding", "pooled")


@dataclass
class FeatureBank:
    """Teacher outputs for N training faces.

    embeddings: (N, Dt) float32, the teacher's embedding of each HR face;
    logits: (N, K) float32, its class scores; meta: JSON-able dict (key, teacher
    architecture name, image shape, extraction seconds, ...); attention: None, or
    (N, h*w) float32 unit rows, the teacher's pooled attention maps (``attention_size``
    of ``extract_bank``; ``meta["attention_size"]`` = [h, w]).
    """
    embeddings: np.ndarray
    logits: np.ndarray
    meta: dict = field(default_factory=dict)
    attention: np.ndarray | None = None

    def __post_init__(self):
        self.embeddings = np.ascontiguousarray(self.embeddings, dtype=np.float32)
        self.logits = np.ascontiguousarray(self.logits, dtype=np.float32)
        if self.attention is not None:
            self.attention = np.ascontiguousarray(self.attention, dtype=np.float32)
            if self.attention.shape[:1] != self.embeddings.shape[:1] or self.attention.ndim != 2:
                raise ValueError(f"the feature bank's attention maps have shape "
                                 f"{self.attention.shape}, expected ({len(self.embeddings)}, h*w)")
        if self.embeddings.ndim != 2 or self.logits.ndim != 2:
            raise ValueError(f"a feature bank holds (N, D) embeddings and (N, K) logits, got "
                             f"shapes {self.embeddings.shape} and {self.logits.shape}")
        if len(self.embeddings) != len(self.logits):
            raise ValueError(f"the feature bank has {len(self.embeddings)} embeddings but "
                             f"{len(self.logits)} logit rows")

    @property
    def n(self):
        return int(self.embeddings.shape[0])

    @property
    def dim(self):
        return int(self.embeddings.shape[1])

    @property
    def num_classes(self):
        return int(self.logits.shape[1])

    def check(self, n, dim=None, num_classes=None):
        """Raise ``ValueError`` unless the bank has ``n`` faces, ``dim``-d embeddings and
        ``num_classes`` logit columns (None: not checked); return ``self``."""
        if self.n != int(n):
            raise ValueError(f"the feature bank has {self.n} faces but the dataset has {int(n)} "
                             f"training faces; extract the bank from the same split's HR "
                             f"training faces")
        if dim is not None and self.dim != int(dim):
            raise ValueError(f"the feature bank's embeddings are {self.dim}-d but {int(dim)}-d "
                             f"are expected (the teacher's embedding width); was it extracted "
                             f"by another teacher?")
        if num_classes is not None and self.num_classes != int(num_classes):
            raise ValueError(f"the feature bank's logits have {self.num_classes} classes but the "
                             f"dataset has {int(num_classes)} identities")
        bad = int(self.embeddings.size - np.count_nonzero(np.isfinite(self.embeddings)))
        bad += int(self.logits.size - np.count_nonzero(np.isfinite(self.logits)))
        if self.attention is not None:
            bad += int(self.attention.size - np.count_nonzero(np.isfinite(self.attention)))
        if bad:
            raise ValueError(f"the feature bank has {bad} NaN or inf value(s)")
        return self

    # ------------------------------------------------------------------ files
    def save(self, path):
        """Write the bank to ``path`` (``.npz``) atomically; return the path."""
        meta = dict(self.meta, format=BANK_FORMAT)
        arrays = {"embeddings": self.embeddings, "logits": self.logits,
                  "meta": np.array(json.dumps(meta, default=json_default))}
        if self.attention is not None:
            arrays["attention"] = self.attention
        savez_atomic(path, arrays)
        path = Path(path)
        return path

    @classmethod
    def load(cls, path):
        """Read a bank written by ``save``; ``ValueError`` for a foreign file."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                emb, logits = data["embeddings"], data["logits"]
                meta = json.loads(str(data["meta"][()]))
                attention = data["attention"] if "attention" in data.files else None
        except FileNotFoundError:
            raise
        except Exception as e:
            raise ValueError(f"{path} is not a tinyface feature bank ({type(e).__name__}: {e})") from None
        if not isinstance(meta, dict) or meta.get("format") != BANK_FORMAT:
            raise ValueError(f"{path} is not a tinyface feature bank (format {meta.get('format')!r})")
        return cls(emb, logits, meta, attention)


def pooled_index(teacher):
    """Index of the ``GlobalAvgPool2d`` in ``teacher.features`` (``FaceNet.pool_index``;
    ``ValueError`` if none)."""
    return teacher.pool_index()


def map_attention_size(variants, split, arch="student"):
    """The pre-pool map size (h, w) of the student ``arch`` on the split's LR faces
    (``feature_map_shape``) when one of ``variants`` reads the teacher's map (``at``,
    ``selective-at``: ``Method.reads == "map"``), else None: the size the attention rows
    are pooled to."""
    if not any((m := variant_method(v)) is not None and m.reads == "map" for v in variants):
        return None
    spec = dict(spec_by_name(arch, num_classes=split.num_classes), input_size=split.lr_size)
    return tuple(int(v) for v in feature_map_shape(spec)[1:])


def standardise_pooled(features):
    """features: (N, C) float32 pooled features -> each coordinate standardised over the
    faces (mean 0, std 1; module docstring), in place and returned."""
    features -= features.mean(axis=0, dtype=np.float64).astype(np.float32)        # (N, C)
    features /= features.std(axis=0, dtype=np.float64).astype(np.float32) + np.float32(1e-5)
    return features


def layer_dim(teacher, layer="embedding"):
    """Width of the teacher's ``layer`` features (``BANK_LAYERS``)."""
    if layer not in BANK_LAYERS:
        raise ValueError(f"unknown feature layer {layer!r}; choose one of {', '.join(BANK_LAYERS)}")
    if layer == "embedding":
        return int(teacher.embedding_dim)
    after = teacher.features.children()[pooled_index(teacher) + 1]   # Linear(C, D)
    return int(after.params["weight"].shape[1])


def _forward_layer(teacher, x, layer, attention_size=None):
    """x: (B, 3, H, W) float32 -> ``(features (B, D), logits (B, K), attention)`` in eval
    mode; attention: None, or with ``attention_size`` (h, w) the pre-pool map's
    ``teacher_attention`` (B, h*w)."""
    if layer == "embedding":
        if attention_size is None:
            return (*teacher.forward_both(x), None)
        emb, logits, fmap = teacher.forward_both(x, keep_map=True)
        return emb, logits, teacher_attention(np.asarray(fmap), attention_size)
    stop, attention = pooled_index(teacher), None
    h = x
    for i, mod in enumerate(teacher.features.children()):
        if i == stop and attention_size is not None:
            attention = teacher_attention(np.asarray(h), attention_size)  # (B, h*w)
        h = mod.forward(h)
        if i == stop:
            pooled = np.array(h, np.float32).reshape(len(x), -1)        # (B, C)
    if teacher.dropout is not None:
        h = teacher.dropout.forward(h)
    return pooled, teacher.classifier.forward(h), attention             # (B, C), (B, K)


def bank_key(teacher, hr_images):
    """The signature (``tinyface.cache``) of the teacher (architecture, weights, buffers)
    and the faces, 24 hex digits."""
    return signature({"teacher": json.loads(json.dumps(teacher.config(), default=json_default)),
                      "weights": fingerprint(*sorted(teacher.state_dict().items())),
                      "faces": fingerprint(hr_images)}, length=24)


def extract_bank(teacher, hr_images, batch_size=128, cache_path=None, key=None, log=None,
                 layer="embedding", attention_size=None):
    """The teacher's features and logits for ``hr_images``: a ``FeatureBank``.

    teacher: a ``FaceNet`` (``forward_both``); hr_images: (N, 3, H, W) uint8 at the
    teacher's input size; batch_size: faces per forward pass; cache_path: ``.npz``
    file to load from / write to (None: no cache); key: what identifies this bank in
    the cache (None: ``bank_key(teacher, hr_images)``, plus ``layer`` unless it is the
    embedding); log: callable for progress lines; layer: ``"embedding"`` or ``"pooled"``
    (see the module docstring); attention_size: None, or (h, w), the student's pre-pool
    map size: also store the teacher's pooled, normalised attention maps (``attention``,
    (N, h*w)), and add ``-athxw`` to the default key.
    A cached file whose key, face count or width differs is recomputed and replaced.
    """
    say = log or (lambda msg: None)
    x = np.asarray(hr_images)
    if x.ndim != 4 or x.dtype != np.uint8 or len(x) == 0:
        raise ValueError(f"hr_images must be a non-empty (N, 3, H, W) uint8 array, got "
                         f"{x.dtype} array of shape {x.shape}")
    if tuple(x.shape[1:]) != tuple(teacher.input_shape):
        raise ValueError(f"the teacher takes faces of shape {tuple(teacher.input_shape)}, the "
                         f"images are {tuple(x.shape[1:])}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dim = layer_dim(teacher, layer)
    if attention_size is not None:
        attention_size = tuple(int(v) for v in attention_size)
        if len(attention_size) != 2 or min(attention_size) < 1:
            raise ValueError(f"attention_size must be (h, w) with h, w >= 1, got "
                             f"{attention_size}")
    at_suffix = "" if attention_size is None else "-at{}x{}".format(*attention_size)
    if key is None:
        key = bank_key(teacher, x) + ("" if layer == "embedding" else f"-{layer}") + at_suffix
    key = str(key)
    n = len(x)
    if cache_path is not None and Path(cache_path).is_file():
        try:
            bank = FeatureBank.load(cache_path)
        except ValueError as e:
            say(f"feature bank: ignoring {cache_path} ({e})")
        else:
            has_at = attention_size is None or (
                bank.attention is not None
                and bank.attention.shape[1] == attention_size[0] * attention_size[1])
            if bank.meta.get("key") == key and bank.n == n and bank.dim == dim and has_at:
                say(f"feature bank: loaded {cache_path} ({bank.n} x {bank.dim}, key {key})")
                return bank
            say(f"feature bank: {cache_path} belongs to another teacher or other faces "
                f"(key {bank.meta.get('key')}, {bank.n} x {bank.dim}); extracting again")

    say(f"feature bank: running the teacher on {n} HR faces of {x.shape[2]}x{x.shape[3]} "
        f"in batches of {batch_size}")
    emb = np.empty((n, dim), np.float32)
    logits = np.empty((n, int(teacher.num_classes)), np.float32)
    attention = None
    if attention_size is not None:
        attention = np.empty((n, attention_size[0] * attention_size[1]), np.float32)
    t0 = last = time.perf_counter()
    with eval_mode(teacher):
        for a in range(0, n, int(batch_size)):
            b = min(n, a + int(batch_size))
            e, z, att = _forward_layer(teacher, to_float(x[a:b]), layer, attention_size)
            emb[a:b], logits[a:b] = e, z                                # (B, Dt), (B, K)
            if attention is not None:
                attention[a:b] = att                                    # (B, h*w)
            now = time.perf_counter()
            if now - last >= 10.0 and b < n:
                last = now
                rate = b / (now - t0)
                say(f"  feature bank: {b}/{n} faces, {rate:.0f} faces/s, "
                    f"ETA {(n - b) / rate:.0f} s")
    if layer == "pooled":
        emb = standardise_pooled(emb)
    seconds = time.perf_counter() - t0
    norms = np.linalg.norm(emb, axis=1)
    meta = {"key": key, "teacher": teacher.spec.get("name") if hasattr(teacher, "spec") else None,
            "layer": layer, "image_shape": list(x.shape[1:]), "seconds": seconds,
            "embedding_norm_mean": float(norms.mean()), "embedding_norm_std": float(norms.std())}
    if attention is not None:
        meta["attention_size"] = list(attention_size)
    bank = FeatureBank(emb, logits, meta, attention).check(n, dim)
    say(f"feature bank: {n} x {dim} in {seconds:.1f} s ({n / max(seconds, 1e-9):.0f} faces/s); "
        f"embedding norm {norms.mean():.2f} +- {norms.std():.2f}")
    if cache_path is not None:
        bank.save(cache_path)
        say(f"feature bank: wrote {cache_path}")
    return bank
