"""Cross-resolution verification: an HR gallery face (teacher) against an LR probe (student).

A 16-pixel surveillance face is matched against a gallery photo. The gallery face goes
through the teacher (phi_t: HR -> Dt). The probe goes through the student and then
through the adapter that distillation trained: A phi_s(x_LR), in the teacher's space.
The two are compared by cosine similarity. Each fold's threshold is picked on the other
folds, as in ``tinyface.eval.disjoint``.

    xs = cross_resolution_student(wrapper)         # features + adapter, classifier dropped
    xs.embed(x_lr)                                 # (N, 3, 16, 16) -> (N, Dt)
    xs.nbytes(), xs.fits_budget()                  # against the paper's 0.15 MB
    gallery = gallery_descriptors(teacher, pairs)  # (M, Dt): once per run, cache it
    res = verify_cross_resolution(gallery, xs, pairs)      # per student variant
    res["accuracy"], res["same_resolution"]["teacher_hr"]["accuracy"]

Side a of every pair (``pairs.a``) is the gallery, and side b (``pairs.b``) is the
probe. The probe's LR faces are ``pairs.faces(lr_size)``, degraded from the same HR
faces. The teacher is the expensive side (dlib's ResNet: about 40 faces/s on a CPU),
so it can be given as its (M, Dt) descriptors of ``pairs.images`` (``FrozenTeacher``
caches them as ``"pairs-hr"``). No Euclidean accuracy across resolutions: distillation
matches *normalised* vectors, so the adapter's output has no meaningful scale.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import tinyface.models  # noqa: F401  (registers FaceNet with build_layer)
from tinyface import nn
from tinyface.checkpoint import save_model
from tinyface.data import to_float
from tinyface.distill.model import DistillStudent
from tinyface.eval import (auc, cosine_scores, embed_images, eval_mode, indexed_fn,
                           predict_batches, roc_curve, tar_at_far, ten_fold_accuracy)
from tinyface.eval.disjoint import verify_embeddings
from tinyface.models.pretrained import embed_faces, resize_faces
from tinyface.models.zoo import PAPER_STUDENT_BYTES
from tinyface.nn.module import Module, build_layer, register_layer

__all__ = ["CrossResolutionStudent", "cross_resolution_student", "gallery_descriptors",
           "cross_scores", "verify_two_sided", "verify_cross_resolution", "cross_resolution_fns"]


def _host(a):
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


def _budget_bytes(budget_bytes):
    if budget_bytes is None:
        return PAPER_STUDENT_BYTES                      # 0.15 MB = 157,286 bytes
    return int(budget_bytes)


@register_layer
class CrossResolutionStudent(Module):
    """The deployable cross-resolution student: ``features`` (trunk + embedding) then
    ``adapter`` (``Linear(Ds, Dt)``). There is no classifier.

    features: the student's ``Sequential`` (N, C, S, S) -> (N, Ds); adapter: a
    ``Linear(Ds, Dt)``; input_shape: (C, S, S). Parameter names: ``features.0.weight``,
    ..., ``adapter.weight``, ``adapter.bias``.
    """

    def __init__(self, features, adapter, input_shape):
        super().__init__()
        linears = [c for c in features.children() if isinstance(c, nn.Linear)]
        if not linears:
            raise ValueError("CrossResolutionStudent: the features have no embedding Linear")
        ds = linears[-1].out_features
        if adapter.in_features != ds:
            raise ValueError(f"CrossResolutionStudent: the adapter takes {adapter.in_features}-d "
                             f"input but the student's embedding is {ds}-d")
        self.features = self.add_child("features", features)
        self.adapter = self.add_child("adapter", adapter)
        self._input_shape = tuple(int(v) for v in input_shape)
        self.training = features.training

    @classmethod
    def from_distill(cls, wrapper, copy=False):
        """From a ``DistillStudent``. By default the layers are shared: the same arrays,
        so later training shows here, and ``eval()`` here sets the wrapper's student's
        features to eval too. ``copy=True`` makes independent host copies."""
        xs = cls(wrapper.student.features, wrapper.adapter, wrapper.student.input_shape)
        if not copy:
            return xs
        twin = build_layer(xs.config())
        twin.load_state_dict({k: np.array(_host(v), copy=True) for k, v in xs.state_dict().items()})
        return twin.train(xs.training)

    # --------------------------------------------------------------- compute
    def _check(self, x):
        x = self.check_input(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != self._input_shape:
            c, s, _ = self._input_shape
            raise ValueError(f"{self!r}: expected faces of shape (N, {c}, {s}, {s}), got {x.shape}")
        return x

    def forward(self, x):
        """x: (N, C, S, S) float32 -> A phi_s(x): (N, Dt), in the teacher's space."""
        emb = self.features.forward(self._check(x))            # (N, Ds)
        return self.adapter.forward(emb)                       # (N, Dt)

    def embed(self, x):
        """The same as ``forward``: the output in the teacher's space is the embedding."""
        return self.forward(x)

    def backward(self, dout):
        """dout: (N, Dt) -> dx (N, C, S, S); parameter gradients accumulate."""
        return self.features.backward(self.adapter.backward(dout))

    # ----------------------------------------------------------- properties
    @property
    def input_shape(self):
        return self._input_shape

    @property
    def embedding_dim(self):
        """Dt, the width of the output (the teacher's space)."""
        return self.adapter.out_features

    @property
    def student_dim(self):
        """Ds, the width of the student's own embedding."""
        return self.adapter.in_features

    def nbytes(self):
        """Bytes of the float32 parameters (trunk + embedding + adapter), buffers excluded
        (``tinyface.experiments.deployment.model_memory`` and ``deployment_report`` take this
        model too: bytes with the buffers, faces/s)."""
        return 4 * self.num_parameters()

    def fits_budget(self, budget_bytes=None):
        """Whether ``nbytes()`` <= the budget (default: the paper's 0.15 MB, 157,286 bytes)."""
        return self.nbytes() <= _budget_bytes(budget_bytes)

    # --------------------------------------------------- architecture record
    def config(self):
        return {"type": "CrossResolutionStudent", "features": self.features.config(),
                "adapter": self.adapter.config(), "input_shape": list(self._input_shape)}

    @classmethod
    def from_config(cls, config):
        return cls(build_layer(config["features"]), build_layer(config["adapter"]),
                   config["input_shape"])

    def __repr__(self):
        c, s, _ = self._input_shape
        return (f"CrossResolutionStudent({c}x{s}x{s} -> {self.student_dim}-d -> adapter "
                f"{self.embedding_dim}-d)")


def cross_resolution_student(wrapper, copy=False):
    """``CrossResolutionStudent.from_distill(wrapper, copy)``."""
    return CrossResolutionStudent.from_distill(wrapper, copy=copy)


# ------------------------------------------------------------------ embeddings
def _width(side):                                          # D of a model or an (M, D) array
    if isinstance(side, np.ndarray):
        return int(side.shape[1])
    if hasattr(side, "teacher_dim"):                           # a DistillStudent
        return int(side.teacher_dim)
    return int(side.embedding_dim)


def _as_cross(student, teacher):
    """A ``DistillStudent`` as a ``CrossResolutionStudent`` (shared layers); then check
    that the student's output lives in the teacher's space (the same width)."""
    if isinstance(student, DistillStudent):
        student = CrossResolutionStudent.from_distill(student)
    ds, dt = _width(student), _width(teacher)
    if ds != dt:
        raise ValueError(f"cross-resolution verification: the student maps into D={ds}, "
                         f"the teacher's space has D={dt}")
    return student


def _check_rows(emb, pairs, what):
    emb = np.asarray(emb)
    if emb.ndim != 2 or len(emb) != len(pairs.images):
        raise ValueError(f"{what}: need one row per face of the pairs ({len(pairs.images)}), "
                         f"got shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise ValueError(f"{what}: non-finite values (NaN or inf)")
    return emb


def gallery_descriptors(teacher, pairs, faces=None, batch_size=64):
    """The teacher's descriptors of the pairs' HR faces: (M, Dt) float32.

    teacher: a ``FaceNet`` (faces whose size differs from its input are resized per
    batch, as ``tinyface.models.embed_faces`` does); faces: the gallery faces, one per
    row of ``pairs.images`` (default ``pairs.images``, e.g. decoded at another size).
    This is the expensive side: compute it once per run and pass the array on.
    """
    faces = pairs.faces(None) if faces is None else np.asarray(faces)
    if len(faces) != len(pairs.images):
        raise ValueError(f"gallery faces: need {len(pairs.images)}, got {len(faces)}")
    size = getattr(teacher, "input_shape", (None, None, None))[-1]
    if size is not None and faces.shape[-1] != size and hasattr(teacher, "spec"):
        return embed_faces(teacher, faces, batch_size=batch_size)
    return embed_images(teacher, faces, batch_size)


def _probe_embeddings(student, faces, batch_size):
    """(student's own embedding (M, Ds) or None, its output in the teacher's space (M, Dt))."""
    if not isinstance(student, CrossResolutionStudent):
        return None, embed_images(student, faces, batch_size)
    with eval_mode(student):
        raw = predict_batches(student.features.forward, faces, batch_size, to_float)  # (M, Ds)
        out = predict_batches(student.adapter.forward, raw, batch_size)            # (M, Dt)
    return raw, out


# ---------------------------------------------------------------------- scoring
def cross_scores(gallery_emb, probe_emb, pairs):
    """Cosine scores (P,) of gallery row ``pairs.a[i]`` against probe row ``pairs.b[i]``."""
    return cosine_scores(np.asarray(gallery_emb)[pairs.a], np.asarray(probe_emb)[pairs.b])


def verify_two_sided(gallery_emb, probe_emb, pairs, far_target=1e-2):
    """The 10-fold protocol on ``cross_scores``: gallery_emb, probe_emb (M, D).

    Returns a JSON-able dict: ``accuracy``, ``std``, ``per_fold``, ``thresholds``,
    ``auc``, ``tar_at_far``, ``far_target``, ``n_pairs``, ``n_same``, ``n_diff``, ``dim``.
    """
    ga = _check_rows(gallery_emb, pairs, "gallery embeddings")
    pb = _check_rows(probe_emb, pairs, "probe embeddings")
    if ga.shape[1] != pb.shape[1]:
        raise ValueError(f"gallery embeddings are {ga.shape[1]}-d, probe embeddings "
                         f"{pb.shape[1]}-d")
    scores = cross_scores(ga, pb, pairs)                                   # (P,)
    res = ten_fold_accuracy(scores, pairs.same, pairs.fold_ids)
    far, tar, _ = roc_curve(scores, pairs.same)
    return {"accuracy": res["mean"], "std": res["std"], "per_fold": res["per_fold"],
            "thresholds": res["thresholds"], "auc": float(auc(far, tar)),
            "tar_at_far": tar_at_far(far, tar, far_target), "far_target": float(far_target),
            "n_pairs": pairs.n_pairs, "n_same": pairs.n_same, "n_diff": pairs.n_diff,
            "dim": int(ga.shape[1])}


def verify_cross_resolution(teacher, student, pairs, lr_size=None, method="bicubic",
                            probe_faces=None, gallery_faces=None, batch_size=256,
                            same_resolution=True, far_target=1e-2):
    """HR gallery (teacher) against LR probe (student) on identity-disjoint ``pairs``.

    teacher: a ``FaceNet``, or its (M, Dt) descriptors of ``pairs.images`` (from
    ``gallery_descriptors``, cached). student: a ``CrossResolutionStudent``, a
    ``DistillStudent`` (its layers are shared, not copied), or (M, Dt) probe outputs.
    lr_size: the probe size (default: the student's input size); method: as for
    ``pairs.faces``; probe_faces / gallery_faces: (M, 3, s, s) uint8 overriding the
    LR / HR faces (one per row of ``pairs.images``).
    same_resolution: add ``same_resolution``, whose entries are ``verify_embeddings``
    dicts: ``teacher_hr`` (teacher vs teacher), ``student_lr_adapted`` (student vs
    student, in the teacher's space) and, for a model, ``student_lr`` (the student's
    own Ds-d embedding, the ablation's usual row).
    Returns ``verify_two_sided``'s dict plus ``gallery``, ``probe`` (what each side
    was), ``input_size`` (the probe's size) and ``same_resolution`` (when asked).
    Raises ValueError when the two sides' widths differ, before any embedding is made.
    """
    given = lambda x, what: _check_rows(x, pairs, what) if isinstance(x, np.ndarray) else x
    teacher, student = given(teacher, "teacher descriptors"), given(student, "student outputs")
    student = _as_cross(student, teacher)                      # checks Ds == Dt first
    hr = None if isinstance(teacher, np.ndarray) else int(teacher.input_shape[-1])
    gallery = teacher if hr is None else gallery_descriptors(teacher, pairs, gallery_faces,
                                                             min(batch_size, 64))   # (M, Dt)
    raw, probe, size = None, student, lr_size
    if not isinstance(student, np.ndarray):
        size = int(lr_size or student.input_shape[-1])
        faces = pairs.faces(size, False, method) if probe_faces is None else probe_faces
        if len(faces) != len(pairs.images):
            raise ValueError(f"probe faces: need {len(pairs.images)}, got {len(faces)}")
        raw, probe = _probe_embeddings(student, faces, batch_size)       # (M, Ds), (M, Dt)
    out = verify_two_sided(gallery, probe, pairs, far_target)
    out.update(gallery="given" if hr is None else f"teacher at {hr}px", input_size=size,
               probe="given" if isinstance(student, np.ndarray) else f"student at {size}px")
    if same_resolution:
        ref = {"teacher_hr": verify_embeddings(gallery, pairs, hr),
               "student_lr_adapted": verify_embeddings(probe, pairs, size)}
        if raw is not None:
            ref["student_lr"] = verify_embeddings(raw, pairs, size)
        out["same_resolution"] = ref
    return out


def cross_resolution_fns(teacher, student, hr_images, lr_images):
    """``(embed_fn_a, embed_fn_b)`` for ``tinyface.eval.verify_pairs`` on a ``Dataset``
    and a ``pairs.txt``: side a is the teacher on ``hr_images`` (resized to its input),
    side b the student on ``lr_images`` (both (N, 3, s, s) uint8, by dataset row).
    Puts both models in eval mode."""
    student = _as_cross(student, teacher)
    size = teacher.input_shape[-1]
    teacher.eval(), student.eval()
    fn_a = indexed_fn(teacher.embed, hr_images, lambda b: to_float(resize_faces(b, size)))
    return fn_a, indexed_fn(student.embed, lr_images)


def cross_resolution_run(gallery, wrapper, pairs, method, folder):
    """One fine-tuned run's cross-resolution verification against the teacher's HR
    ``gallery`` descriptors; its deployable cross-resolution student is saved as
    ``folder/cross_resolution.npz``. Returns accuracy, std, AUC, TAR, bytes, budget."""
    student = cross_resolution_student(wrapper, copy=True).eval()
    res = verify_cross_resolution(gallery, student, pairs, method=method, same_resolution=False)
    save_model(Path(folder) / "cross_resolution.npz", student,
               metadata={"bytes": student.nbytes(), "fits_budget": student.fits_budget()})
    return {k: res[k] for k in ("accuracy", "std", "auc", "tar_at_far")} | {
        "bytes": int(student.nbytes()), "fits_budget": bool(student.fits_budget())}
