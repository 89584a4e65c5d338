"""A frozen pretrained teacher on the target identities: the paper's regime.

    ft = FrozenTeacher("dlib-resnet", split, settings, "runs/abl", data="lfw")
    ft.key                   # what its rows and its bank depend on
    rows = ft.rows(pairs)    # the ablation's two teacher rows
    bank = ft.bank("runs/abl/bank.npz")   # descriptors + out-of-fold logits
    ft = FrozenTeacher(..., attention_size=(4, 4))  # + attention rows (variant ``at``)
    ft.model                 # the FaceNet: backbone as loaded, classifier = the fitted head

Our own teacher is trained on the target faces; a pretrained one (``tinyface.models.
load_pretrained``: dlib's ResNet, 150x150 faces -> 128-d descriptor, trained on people
outside LFW) is not, and by default never changes here. What it knows of the target
identities is put on top by a linear softmax head on its descriptors
(``distill.softmax_head``). Why the name: the backbone is frozen, only the head is
fitted. The option ``settings.teacher_tune_blocks`` tunes its last blocks on the
training faces first (``distill.teacher_tuning``; cached in ``out/teacher-tuned.npz``),
and everything below then uses the tuned network.

Faces it sees:

- HR: the split's training and test faces decoded once more from the image files at
  ``settings.pretrained_hr_size`` (90: LFW3D's native size; the split's ``--hr-size``
  faces are 64 px, and 64 -> 150 would lose what 90 px hold), the same rows in the same
  order (checked), then resized bicubically to the net's input batch by batch by
  ``embed_faces``. Synthetic faces have no files: the split's HR faces are used.
- LR: the split's LR faces, unchanged (degraded from its ``--hr-size`` faces, as the
  students see them), upsampled back to the net's input by the same per-batch resize.
- verification: the pairs' faces at the same source size (HR), or ``pairs.faces(lr)``
  upsampled (LR), compared by cosine like every other row (``accuracy_euclidean``, the
  Euclidean distance dlib uses, is recorded next to it).

Faces stay uint8 until a batch is converted. Descriptors are cached per face set in
``out/teacher-descriptors/NAME.npz`` under the backbone's sha256 and the faces' bytes
(``distill.descriptor_cache``).

Attention rows (variant ``at``). With ``attention_size=(h, w)``, the student's pre-pool
map size, the bank also holds ``attention`` (N, h*w): ``kd_maps.teacher_attention`` of
the network's map before its global average pool (dlib's ResNet at 150 px: its last
residual block's output, (256, 2, 2)), of the tuned network when a tail is tuned,
computed in the same forward pass as the HR training descriptors and cached next to
them (``teacher-descriptors/train-hr-attention.npz``); the bank's key then ends in
``-atHxW``. Without it nothing is computed, and the files and keys are what they were.

The head and the logits. The bank's embeddings are the raw descriptors (the
regression targets); its logits are the head's **out-of-fold** logits (5 folds): KD
and the selector's informativeness see what the teacher knows of a face, not what a
head fitted on it memorised. Test faces are scored by the head fitted on all training
faces. Head logits are ``l2_rows(d) @ W + b`` for a descriptor d; the model's
classifier is set to ``Linear(W, b)``, so ``ft.model.forward(x)`` gives ``d @ W + b``,
the head *without* the normalisation, i.e. the head's logits only up to the scale
``||d||`` of each descriptor (recorded as ``descriptor_norm``). The ablation never
uses ``forward`` for this teacher; it uses ``ft.head.logits(descriptors)``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tinyface.atomic import json_default, savez_atomic
from tinyface.cache import fingerprint, signature
from tinyface.data import load_dataset
from tinyface.distill.bank import FeatureBank, pooled_index, standardise_pooled
from tinyface.distill.descriptor_cache import (cached_attention, cached_descriptors,
                                               faces_fingerprint)
from tinyface.distill.softmax_head import HeadFit, SoftmaxHead, fit_teacher_head
from tinyface.data.split import split_of
from tinyface.distill.teacher_tuning import tune_teacher_tail
from tinyface.eval import topk_accuracy
from tinyface.eval.disjoint import verify_embeddings
from tinyface.models.pretrained import PRETRAINED, load_pretrained, resize_faces

__all__ = ["FrozenTeacher", "pretrained_name", "check_teacher_options", "backbone_sha256",
           "faces_fingerprint", "source_faces", "head_signature"]

HEAD_FORMAT = "tinyface-frozen-teacher/1"
# the face sets the teacher describes (the cache's file names) and what they are
FACE_SETS = {"train-hr": "HR training faces", "test-hr": "HR test faces",
             "test-lr": "LR test faces", "pairs-hr": "HR verification faces",
             "pairs-lr": "LR verification faces",
             "label-free-disjoint-hr": "HR unlabelled faces (verification people left out)",
             "label-free-all-hr": "HR unlabelled faces"}


def pretrained_name(teacher_path):
    """The pretrained model ``teacher_path`` names (``"dlib-resnet"``), or None for a
    teacher run folder or file (a name wins over a folder of the same name)."""
    if teacher_path is None:
        return None
    return str(teacher_path) if str(teacher_path) in PRETRAINED else None


def check_teacher_options(teacher_path, teacher_weights, settings):
    """``ValueError`` for options that do not go with the teacher chosen."""
    name = pretrained_name(teacher_path)
    if teacher_weights is not None and name is None:
        raise ValueError("--teacher-weights is for a pretrained teacher: give it with "
                         "--teacher dlib-resnet")
    if name is None and settings.teacher_tune_blocks:
        raise ValueError("--teacher-tune-blocks tunes a pretrained teacher: give it with "
                         "--teacher dlib-resnet")
    return name


def backbone_sha256(model):
    """sha256 of the model's weights without its classifier (names, shapes, bytes:
    ``tinyface.cache.fingerprint``)."""
    return fingerprint(*((name, arr) for name, arr in sorted(model.state_dict().items())
                         if not name.startswith("classifier.")))


def head_signature(settings, seed):
    return {"form": "softmax on L2-normalised descriptors", "seed": int(seed),
            "penalties": [float(p) for p in settings.head_penalties],
            "folds": int(settings.head_folds), "val_fraction": float(settings.head_val_fraction)}


def _source_dataset(split, data, size, data_root, cache_dir):
    return load_dataset(data, root=data_root, hr_size=int(size), cache_dir=cache_dir)


def _check_same_faces(src, ref, what):
    """src at the source size, ref at the split's size: the same pictures, resized."""
    k = min(4, len(ref))
    diff = np.abs(resize_faces(src[:k], ref.shape[-1]).astype(np.int16) - ref[:k]).mean()
    if diff > 3.0:
        raise ValueError(f"the {what} faces decoded at {src.shape[-1]}px do not match the "
                         f"split's at {ref.shape[-1]}px (mean difference {diff:.1f} grey "
                         f"levels): were the image files changed?")


def source_faces(split, data, size, data_root=None, cache_dir=None, pairs=None):
    """The split's HR (train, test) faces, or with ``pairs`` the pairs' faces, decoded
    at ``size`` from the image files: (N, 3, size, size) uint8, rows checked against
    the split's. Synthetic data, ``size`` 0 or the split's own size: the split's faces."""
    if data == "synthetic" or not size or int(size) == split.hr_size:
        return pairs.images if pairs is not None else (split.hr_train, split.hr_test)
    ds = _source_dataset(split, data, size, data_root, cache_dir)
    if pairs is not None:
        if pairs.rows is None:
            raise ValueError("the verification pairs do not say which dataset rows they use")
        out = ds.images[pairs.rows]
        _check_same_faces(out, pairs.images, "verification")
        return out
    train_rows, test_rows, _ = split_of(ds, split, f"{data} at {size}px")
    _check_same_faces(ds.images[train_rows], split.hr_train, "training")
    return ds.images[train_rows], ds.images[test_rows]


class FrozenTeacher:
    """The pretrained teacher of the ablation (module docstring). Everything past the
    backbone is made on first use: HR source faces, descriptors, the head."""

    def __init__(self, name, split, settings, out, weights=None, data=None, data_root=None,
                 cache_dir=None, log=None, attention_size=None):
        self.say = log or (lambda msg: None)
        self.attention_size = (None if attention_size is None
                               else tuple(int(v) for v in attention_size))
        self.name, self.split, self.settings = name, split, settings
        self.out, self.data = Path(out), data or split.meta.get("data", "synthetic")
        self.data_root, self.cache_dir = data_root, cache_dir
        t0 = time.perf_counter()
        self.model = load_pretrained(name, weights=weights)
        self.model.replace_classifier(split.num_classes)
        self.model.eval()
        self.size = (0 if self.data == "synthetic" or settings.pretrained_hr_size == split.hr_size
                     else int(settings.pretrained_hr_size))
        self._hr, self.tuning, self._attention = None, None, None
        if settings.teacher_tune_blocks:
            self._tune()
        self.sha256 = backbone_sha256(self.model)
        self.model_key = f"{name}-{self.sha256[:16]}"
        self.head_sig = head_signature(settings, split.meta.get("seed", 0))
        blob = {"model": self.model_key, "head": self.head_sig, "hr_source": self.size,
                "faces": faces_fingerprint(split.hr_train, split.y_train, split.hr_test,
                                           split.y_test, split.lr_test)}
        self.key = signature(blob, length=24)
        self._fit, self.seconds = None, {"load": time.perf_counter() - t0}
        where = getattr(self.model, "pretrained", {}).get("folder", weights)
        state = (f"its last {settings.teacher_tune_blocks} block(s) tuned" if self.tuning
                 else "frozen")
        self.say(f"teacher: {name} from {where} (backbone sha256 {self.sha256[:16]}...), "
                 f"{state}; HR faces {self._hr_text()}, resized to {self.input_size}px")

    def _tune(self):
        """Tune the last blocks on the HR training faces (``distill.teacher_tuning``),
        cached in ``out/teacher-tuned.npz`` under the backbone, the settings and the faces."""
        s = self.settings
        cfg = s.tail_tuning(self.split.meta.get("seed", 0), self.split.lr_size,
                            self.split.meta.get("lr_method", "bicubic"))
        faces = self.hr_faces()[0]
        key = signature({"backbone": backbone_sha256(self.model), "tuning": cfg.to_dict(),
                         "faces": faces_fingerprint(faces, self.split.y_train)}, length=24)
        path = self.out / "teacher-tuned.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as d:
                    if str(d["key"][()]) == key:
                        self.model.load_state_dict({k[2:]: d[k] for k in d.files
                                                    if k.startswith("p:")})
                        self.tuning = json.loads(str(d["record"][()]))
                        self.say(f"teacher: loaded the tuned teacher from {path}")
                        return
            except Exception as exc:             # unreadable: tuned again
                self.say(f"teacher: ignoring {path} ({type(exc).__name__}: {exc})")
        tuned, self.tuning = tune_teacher_tail(self.model, faces, self.split.y_train, cfg,
                                               log=self.say)
        self.model.load_state_dict(tuned.state_dict())
        savez_atomic(path, {"key": np.array(key),
                            "record": np.array(json.dumps(self.tuning, default=json_default)),
                            **{f"p:{k}": v for k, v in self.model.state_dict().items()}})

    @property
    def input_size(self):
        return int(self.model.spec["input_size"])

    def _hr_text(self):
        return f"decoded at {self.size}px" if self.size else f"the split's {self.split.hr_size}px"

    def descriptors(self, what, faces, layer="embedding"):
        """The descriptors of the face set ``what`` (``FACE_SETS``), cached; with
        ``layer="pooled"`` the globally pooled features the embedding layer takes in.
        The HR training descriptors come with their attention rows when the teacher has
        an ``attention_size`` (one pass; ``attention``)."""
        through, name, key = None, what, self.model_key
        if what == "train-hr" and layer == "embedding" and self.attention_size:
            d, self._attention, sec = cached_attention(
                self.model, key, faces, self.out / "teacher-descriptors" / f"{name}.npz",
                self.say, FACE_SETS[what], self.attention_size)
            if sec is not None:
                self.seconds[name] = sec
            return d
        if layer == "pooled":
            through, name = pooled_index(self.model) + 1, f"{what}-pooled"
            key = f"{self.model_key}-pooled"
        d, sec = cached_descriptors(self.model, key, faces,
                                    self.out / "teacher-descriptors" / f"{name}.npz", self.say,
                                    FACE_SETS[what], through=through)
        if sec is not None:
            self.seconds[name] = sec
        return d

    def attention(self):
        """(N, h*w) float32: the attention rows of the HR training faces (module
        docstring), made with their descriptors on first use."""
        if self.attention_size is None:
            raise ValueError("the frozen teacher was made without attention_size; give "
                             "FrozenTeacher(..., attention_size=(h, w)) for variant 'at'")
        if self._attention is None:
            self.descriptors("train-hr", self.hr_faces()[0])
        return self._attention

    def hr_faces(self):
        """(train, test) HR faces as the teacher sees them (uint8, before the resize)."""
        if self._hr is None:
            self._hr = source_faces(self.split, self.data, self.size, self.data_root,
                                    self.cache_dir)
        return self._hr

    def fit(self):
        """The head (``HeadFit``): fitted on the training descriptors on first use, and
        cached in ``out/teacher-head.npz`` under ``key``."""
        if self._fit is None:
            path = self.out / "teacher-head.npz"
            loaded = self._load_fit(path)
            if loaded is None:
                train = self.descriptors("train-hr", self.hr_faces()[0])
                t0 = time.perf_counter()
                self.say(f"teacher: fitting the softmax head on {len(train)} training "
                         f"descriptors")
                fit = fit_teacher_head(train, self.split.y_train, self.split.num_classes,
                                       self.settings.head_penalties, self.settings.head_folds,
                                       self.settings.head_val_fraction, self.head_sig["seed"],
                                       log=self.say)
                norms = np.linalg.norm(train, axis=1)
                fit.record["descriptor_norm"] = {"mean": float(norms.mean()),
                                                 "std": float(norms.std())}
                fit.record["seconds"] = time.perf_counter() - t0
                savez_atomic(path, {"key": np.array(self.key), "weight": fit.head.weight,
                                    "bias": fit.head.bias, "oof_logits": fit.oof_logits,
                                    "folds": fit.folds, "train": train,
                                    "record": np.array(json.dumps(fit.record,
                                                                  default=json_default))})
                loaded = fit, train
            else:
                self.say(f"teacher: loaded the head from {path} (penalty "
                         f"{loaded[0].record['penalty']:g})")
            self._fit, self._train = loaded
            self.model.classifier.params["weight"][...] = self._fit.head.weight.T   # (K, D)
            self.model.classifier.params["bias"][...] = self._fit.head.bias
        return self._fit

    def _load_fit(self, path):
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as d:
                if str(d["key"][()]) != self.key:
                    return None
                record = json.loads(str(d["record"][()]))
                head = SoftmaxHead(d["weight"], d["bias"], record["penalty"], record["full_fit"])
                return HeadFit(head, d["oof_logits"], d["folds"], record), d["train"]
        except Exception as exc:              # unreadable: fitted again
            self.say(f"teacher: ignoring {path} ({type(exc).__name__}: {exc})")
            return None

    @property
    def head(self):
        return self.fit().head

    def rows(self, pairs, method="bicubic"):
        """The two teacher rows (top-1, top-5, verification) and their descriptors."""
        split, head = self.split, self.head
        test = {"teacher at HR": self.descriptors("test-hr", self.hr_faces()[1]),
                "teacher at LR, upsampled": self.descriptors("test-lr", split.lr_test)}
        ver = {}
        if pairs is not None:
            ver["teacher at HR"] = self.descriptors(
                "pairs-hr", source_faces(split, self.data, self.size, self.data_root,
                                         self.cache_dir, pairs=pairs))
            ver["teacher at LR, upsampled"] = self.descriptors(
                "pairs-lr", pairs.faces(split.lr_size, False, method))
        rows = {}
        for name, desc in test.items():
            acc = topk_accuracy(head.logits(desc), split.y_test, ks=(1, 5))
            faces = (f"HR {self.size or split.hr_size}px to {self.input_size}"
                     if name == "teacher at HR" else f"LR {split.lr_size}px upsampled to "
                     f"{self.input_size}")
            v = verify_embeddings(ver[name], pairs, self.input_size) if pairs is not None else None
            rows[name] = {"top1": acc[1], "top5": acc[5], "faces": faces,
                          "verification": v and {k: v[k] for k in ("accuracy", "std", "auc",
                                                                   "accuracy_euclidean")}}
        return rows

    def bank(self, cache_path=None):
        """The ``FeatureBank`` of the training faces: descriptors and out-of-fold logits
        (and the attention rows with ``attention_size``)."""
        size = self.attention_size
        key = (f"{self.name}-{self.key}" + ("" if self.settings.teacher_layer == "embedding"
                                            else f"-{self.settings.teacher_layer}")
               + ("" if size is None else "-at{}x{}".format(*size)))
        n = len(self.split.y_train)
        if cache_path is not None and Path(cache_path).is_file():
            try:
                bank = FeatureBank.load(cache_path)
            except ValueError as exc:
                self.say(f"feature bank: ignoring {cache_path} ({exc})")
            else:
                if bank.meta.get("key") == key and bank.n == n and (
                        size is None or (bank.attention is not None
                                         and bank.attention.shape[1] == size[0] * size[1])):
                    self.say(f"feature bank: loaded {cache_path} ({bank.n} x {bank.dim}, key {key})")
                    return bank
                self.say(f"feature bank: {cache_path} belongs to another teacher or other "
                         f"faces; making it again")
        attention = None if size is None else self.attention()     # (N, h*w), first: one pass
        fit = self.fit()
        layer = self.settings.teacher_layer
        targets = self._train                                 # (N, D) descriptors
        if layer == "pooled":                                 # (N, C), standardised
            targets = standardise_pooled(self.descriptors("train-hr", self.hr_faces()[0],
                                                          layer).copy())
        norms = np.linalg.norm(targets, axis=1)
        meta = {"key": key, "teacher": self.name, "layer": layer,
                "logits": f"out of fold ({fit.record['folds']} folds)", "format_frozen": HEAD_FORMAT,
                "image_shape": [3, self.input_size, self.input_size],
                "hr_source": self._hr_text(), "seconds": self.seconds.get("train-hr"),
                "embedding_norm_mean": float(norms.mean()), "embedding_norm_std": float(norms.std()),
                "head": {k: fit.record[k] for k in ("penalty", "oof_top1",
                                                     "oof_confidence_below_half")}}
        if size is not None:
            meta["attention_size"] = list(size)
        bank = FeatureBank(targets, fit.oof_logits, meta, attention).check(
            n, num_classes=self.split.num_classes)
        if cache_path is not None:
            bank.save(cache_path)
            self.say(f"feature bank: wrote {cache_path}")
        return bank

    def record(self):
        """JSON-able: what the teacher is, where its HR faces come from, the head's fit."""
        rec = {"name": self.name, "pretrained": True, "sha256": self.sha256, "key": self.key,
               "weights": getattr(self.model, "pretrained", {}).get("folder"),
               "input_size": self.input_size, "hr_source": self._hr_text(),
               "head_settings": self.head_sig, "seconds": dict(self.seconds),
               "tuning": self.tuning}
        if self._fit is not None:
            rec["head"] = self._fit.record
        return json.loads(json.dumps(rec, default=json_default))
