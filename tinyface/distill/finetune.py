"""Distillation fine-tuning of a trained student: the five variants of the ablation.

The student starts from its LR-only training (the two streams' initialisation) and is
fine-tuned on the LR training faces with::

    L = CE(student(x_LR), y)
        + kd_weight * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))          (kd only)
        + mu(t) * sum_i w_i ||n(A phi_s(x_LR,i)) - n(phi_t(x_HR,i))||^2 / sum_i w_i
                                                         (full / random / selective)

over each batch, where phi_s is the student's embedding (64-d), A the adapter
``Linear(Ds, Dt)`` (``DistillStudent``), phi_t the teacher's embedding from the feature
bank (256-d), z the logits, and w_i the per-face weights of the variant
(``make_weights``): the regression term is the mean over the selected faces of the batch.

Variants (``VARIANTS``):

- ``none``: CE only, for the same epochs (controls for the extra training);
- ``kd``: CE + Hinton soft targets from the teacher's logits (``bank.logits``);
- ``full``: CE + feature regression on every face (w = 1);
- ``random``: CE + feature regression on a seeded random subset of the selective size
  (per identity when the selection is per identity: the same count in each identity);
- ``selective``: CE + feature regression on the faces ``tinyface.select.select`` picks;
- ``sp``, ``rkd``, ``pkt``, ``fsim``, ``crd``, ``dkd``, ``at``: CE + another method's term
  (``tinyface.distill.methods``: what each reads, its default weight and its source), on
  every labelled face, with no regression weights; the adapter is used by ``fsim`` and
  ``crd`` only (started like the regression's, ``adapter_init``, on every face); ``at``
  needs a bank with the teacher's attention maps at the student's pre-pool map size
  (``extract_bank(..., attention_size=student.map_shape[1:])``). Under the CUDA backend
  their terms run on the GPU too (``tinyface.distill.methods_cuda``).
- ``selective-fsim``, ``selective-crd``, ``selective-dkd``, ``selective-at``
  (``SELECTIVE_METHOD_VARIANTS``): CE on every labelled face + the per-face method's term
  on the selected faces only: the faces of ``make_weights("selective", ...)`` (the same
  selection, ratio and informativeness as ``selective``), passed to ``DistillStep`` as
  ``method_faces``; in each batch the term is the mean over its selected labelled faces
  (a batch with none has no term), at m's weight. No feature regression; the adapter
  (fsim, crd) starts from its least-squares fit on the selected faces.

Feature scale, and the default mu. The teacher's embedding ends in a BatchNorm1d, so each
of its 256 coordinates is roughly standardised: ``||phi_t||^2 ~ 256``, and a raw squared
distance starts in the hundreds (about 340 with a random adapter), hundreds of times the
fine-tuning CE (about 0.3-1.5 for a trained student). We therefore compare directions:
``feature_norm="l2"`` (default) L2-normalises both sides, ``n(v) = v / ||v||``, so the
term is ``2 - 2 cos`` per face, in [0, 4], and mu is dimensionless. Verification scores
faces by cosine similarity too, so directions are what the student should learn. The
adapter starts from the ridge least-squares map from the (eval-mode, unaugmented)
student embeddings to the normalised teacher targets of the weighted faces
(``adapter_init="lstsq"``), so from the first step the gradient into the student
carries the part of the teacher's features the student cannot yet express, not the
noise of a random A. Measured at the start of fine-tuning (30 synthetic identities,
32 px teacher-lite, 8 px student, batch 64): CE 1.63; regression 0.11 (l2, lstsq),
1.92 (l2, random A), 43 (raw, lstsq), 338 (raw, random A); gradient norm over the
student's parameters: CE 2.2, regression at mu = 1: 1.6 (l2, lstsq), 0.8 (l2, random),
310 (raw, lstsq). So mu of order 1 with l2 features puts the two terms' pull on the
student at the same order (the default, ``DistillConfig.mu = 3.0``, is the ablation's:
see ``tinyface.distill.config``); ``feature_norm="none"`` (raw features, the formula as written)
needs mu near 1/150-1/300 for the same balance. ``mu_schedule``: ``constant``
(default), ``linear`` or ``cosine`` decay of mu to 0 over the run. Every setting, with
its default and its check, is a field of ``DistillConfig`` (``tinyface.distill.config``).

Label-free faces (``pool``, a ``tinyface.distill.label_free.UnlabelledPool`` of M faces
with the teacher's targets and no labels). The regression variants then train on the
N labelled + M pool faces as one set: rows N .. N+M-1 of ``fit``'s training set, shuffled
with the labelled ones by the seed, augmented the same way; an epoch is one pass over
all N + M, so it has ``ceil((N + M) / batch)`` steps (the lr and mu schedules run over
those). In each batch, CE (and KD) is the mean over its labelled faces only (a batch
without one has no CE term), and the regression the weighted mean over its faces with
w > 0: the variant's labelled faces and every pool face (w = 1). So each term keeps its
scale per step whatever the batch's mix; what grows is the number of steps, and the
labelled faces' share of the regression. ``none`` and ``kd`` ignore the pool (they do
not regress): their runs are the plain ones. Validation (``fit``'s) stays on the
labelled test faces; ``train_acc`` counts correct labelled faces over every face seen,
``labelled_acc`` (in the history) over the labelled ones. Metrics record
``faces`` (N), ``unlabelled_faces`` (M, or 0 when unused), ``faces_per_epoch``,
``steps_per_epoch`` and ``pool`` (its size, fingerprint and counts). ``out_dir`` keeps the
pool's fingerprint (``label_free.json``): a run is never resumed with another pool.

Learning rate: fine-tuning uses ``DEFAULT_FINETUNE_LR = 0.01`` (SGD, momentum 0.9,
cosine), a fifth of the from-scratch 0.05, so the student stays near its initialisation.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tinyface.atomic import write_json
from tinyface.backend import ops, place
from tinyface.checkpoint import save_model
from tinyface.distill.bank import FeatureBank
# the variants' names are re-exported from ``config``
from tinyface.distill.config import REGRESSION_VARIANTS, VARIANTS, DistillConfig  # noqa: F401
from tinyface.distill.label_free import pool_signature, union_training_set
from tinyface.distill.model import DistillStudent
from tinyface.distill.step import DistillStep
from tinyface.distill.weights import make_weights
from tinyface.eval import embed_images, evaluate_identification
from tinyface.losses import feature_regression_loss
from tinyface.nn.module import build_layer
from tinyface.reference.normalize import l2_normalize_forward
from tinyface.train import TrainConfig, fit, rng_states, set_rng_states, steps_per_epoch
from tinyface.train.resume import ResumeMismatchError
from tinyface.train import host_array, input_batch

__all__ = ["DEFAULT_FINETUNE_LR", "finetune", "init_adapter_lstsq", "copy_model",
           "finetune_config"]

DEFAULT_FINETUNE_LR = 0.01
POOL_FILE = "label_free.json"         # out_dir: the pool a run was started with


# ------------------------------------------------------------------- helpers
def copy_model(model):
    """An independent copy of a model (architecture, parameters, buffers, RNG states)."""
    twin = build_layer(model.config())
    twin.load_state_dict({k: np.array(host_array(v), copy=True) for k, v in model.state_dict().items()})
    set_rng_states(twin, rng_states(model))
    twin.train(model.training)
    return twin


def init_adapter_lstsq(wrapper, lr_images, targets, weights, ridge=1e-3, batch_size=256):
    """Set the adapter to the ridge least-squares map from the student's embeddings
    (eval mode, unaugmented ``lr_images`` (N, 3, S, S) uint8) to ``targets`` (N, Dt),
    fitted on the faces with ``weights > 0``. Returns the fit's relative residual
    (residual sum of squares / total sum of squares of the targets)."""
    rows = np.flatnonzero(np.asarray(weights) > 0)
    if len(rows) == 0:
        raise ValueError("the adapter's least-squares fit needs at least one weighted face")
    emb = embed_images(wrapper.student, lr_images[rows], batch_size).astype(np.float64)  # (M, Ds)
    t = np.asarray(targets, np.float64)[rows]                                           # (M, Dt)
    X = np.hstack([emb, np.ones((len(rows), 1))])                                       # (M, Ds+1)
    G = X.T @ X
    lam = ridge * max(float(np.trace(G)) / G.shape[0], 1e-12)
    reg = lam * np.eye(G.shape[0])
    reg[-1, -1] = 0.0                                        # the bias is not penalised
    W = np.linalg.solve(G + reg, X.T @ t)                                               # (Ds+1, Dt)
    wrapper.adapter.params["weight"][...] = W[:-1].T.astype(np.float32)
    wrapper.adapter.params["bias"][...] = W[-1].astype(np.float32)
    resid = t - X @ W
    return float(np.sum(resid ** 2) / max(np.sum((t - t.mean(0)) ** 2), 1e-12))


def finetune_config(epochs=30, seed=0, lr=DEFAULT_FINETUNE_LR, batch_size=64, **kwargs):
    """The ``TrainConfig`` of fine-tuning: SGD, momentum 0.9, cosine, ``lr`` 0.01."""
    return TrainConfig(epochs=epochs, batch_size=batch_size, optimizer="sgd", lr=lr,
                       schedule="cosine", seed=seed, **kwargs)


def _checkpoint_epoch(out_dir):
    path = Path(out_dir) / "checkpoint.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return int(json.loads(str(data["training"][()]))["epoch"])
    except Exception:
        return 0


def _epoch_parts(parts, steps, epochs_done, counts=None):
    """Per-epoch means of the (ce, kd, reg) parts recorded in this session (and of a
    method variant's fourth part, ``method``); with
    ``counts`` (``DistillStep.counts``) also ``labelled_acc``, the training accuracy
    over the labelled faces alone (fit's ``train_acc`` divides by every face seen)."""
    out = []
    for e in range(len(parts) // steps):
        chunk = parts[e * steps:(e + 1) * steps]
        rec = {"epoch": epochs_done + e + 1}
        names = ("ce", "kd", "reg") + (("method",) if chunk and len(chunk[0]) > 3 else ())
        for j, name in enumerate(names):
            vals = [p[j] for p in chunk if p[j] is not None]
            rec[name] = float(np.mean(vals)) if vals else None
        if counts is not None:
            c = np.asarray(counts[e * steps:(e + 1) * steps]).reshape(-1, 3)
            rec["labelled_acc"] = float(c[:, 2].sum() / max(c[:, 0].sum(), 1))
        out.append(rec)
    return out


def _pool_record(out_dir, sig, resume):
    """Refuse to resume ``out_dir`` with another pool than it was started with (fit's
    data check sees the faces, not the targets); record the pool of a new run."""
    path = Path(out_dir) / POOL_FILE
    if resume:
        try:
            old = json.loads(path.read_text()).get("pool")
        except (OSError, ValueError):
            old = None                          # a run from before pools: no pool
        if old != sig:
            raise ResumeMismatchError(f"{out_dir} was started with label-free pool {old}, "
                                      f"not {sig}: start a new run instead of resuming")
    else:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_json(path, {"pool": sig})


# ------------------------------------------------------------------ finetune
def finetune(student, split, bank, weights, distill, train, *, selection=None, out_dir=None,
             resume=False, pool=None, log=print):
    """Fine-tune a copy of ``student`` on ``split``'s LR training faces.

    student: the trained ``FaceNet`` (never modified); split: the ``FaceSplit`` it was
    trained on; bank: the teacher's ``FeatureBank`` of ``split.hr_train``; weights: None
    (the variant's, from ``make_weights``) or explicit (N,) per-face regression weights;
    distill: a ``DistillConfig`` (the variant, mu, T, kd_weight, ratio, feature_norm,
    adapter_init, mu_schedule, per_identity: see the module docstring); train: a
    ``TrainConfig`` (see ``finetune_config``; its seed seeds shuffling, augmentation, the
    adapter and the random subset); selection: the ``SelectionResult`` (or mask) for
    ``selective``, ``random`` and ``selective-m`` (None: computed from the bank; explicit
    ``weights`` give ``selective-m`` its faces, w > 0); out_dir: ``fit``'s files
    (checkpoint.npz, history.json, curves.png, model.npz = best epoch with the adapter)
    plus ``student.npz`` (the deployable student after the last epoch) and
    ``metrics.json``; resume: continue ``out_dir/checkpoint.npz``; pool: an
    ``UnlabelledPool`` (``tinyface.distill.label_free``) of M faces without labels,
    regressed with weight 1 by the regression variants (``none`` and ``kd`` ignore it;
    see the module docstring); None or an empty pool: the plain run.

    Returns ``{"model": the deployable student (FaceNet, eval mode, last epoch),
    "wrapper": the DistillStudent, "history": fit's history with per-epoch loss parts,
    "metrics": dict (top1, top5, variant, settings, sizes, seconds), "weights": (N,)
    (the labelled faces' weights; pool faces have weight 1; ``selective-m``: 1 on the
    faces its term is taken on)}``.
    """
    if not isinstance(distill, DistillConfig):
        raise TypeError(f"distill must be a DistillConfig, got {type(distill).__name__}")
    if not isinstance(train, TrainConfig):
        raise TypeError(f"train must be a TrainConfig, got {type(train).__name__}")
    if not isinstance(bank, FeatureBank):
        raise TypeError(f"bank must be a FeatureBank, got {type(bank).__name__}")
    variant, mu, T, kd_weight, ratio = (distill.variant, distill.mu, distill.T,
                                        distill.kd_weight, distill.ratio)
    feature_norm, adapter_init, mu_schedule = (distill.feature_norm, distill.adapter_init,
                                               distill.mu_schedule)
    method = distill.method
    n = len(split.y_train)
    reads_logits = variant == "kd" or (method is not None and method.reads == "logits")
    bank.check(n, num_classes=split.num_classes if reads_logits else None)
    if tuple(student.input_shape[1:]) != (split.lr_size, split.lr_size) or \
            student.num_classes != split.num_classes:
        raise ValueError(f"the student takes {student.input_shape} faces and {student.num_classes} "
                         f"identities; the split has {split.num_classes} identities at "
                         f"{split.lr_size}px")
    if method is not None and method.reads == "map":
        _check_attention(bank, student)
    say = log or (lambda msg: None)
    t0 = time.perf_counter()

    if weights is not None:
        w = np.asarray(weights, np.float32)
        if w.shape != (n,):
            raise ValueError(f"weights have shape {w.shape}, expected ({n},)")
        if variant in REGRESSION_VARIANTS and not w.any():
            raise ValueError("the selection is empty: every regression weight is 0")
    elif method is not None and not distill.selective_method:   # no regression weights
        w = np.zeros(n, np.float32)
    else:                                     # selective-m: the selection's mask
        w = make_weights("selective" if distill.selective_method else variant, bank,
                         split.y_train, ratio, train.seed, selection,
                         per_identity=distill.per_identity, log=say)
    faces = w > 0 if distill.selective_method else None     # selective-m: its term's faces
    if faces is not None and not faces.any():
        raise ValueError(f"the selection is empty: '{variant}' has no face to take its term on")
    regress = distill.regress
    if pool is not None:
        pool.check(split.lr_size, bank.dim)
    use_pool = pool is not None and pool.n > 0 and regress
    if use_pool and bank.meta.get("layer", "embedding") != "embedding":
        raise ValueError(f"a label-free pool needs the bank's embedding targets; this bank's "
                         f"are its {bank.meta.get('layer')!r} layer, standardised over its faces")
    m = pool.n if use_pool else 0
    images, labels, w_all = split.lr_train, split.y_train, w
    if use_pool:                              # rows n .. n+m-1: the pool's faces
        images, labels, w_all = union_training_set(split.lr_train, split.y_train, w, pool)
    if out_dir is not None:
        _pool_record(out_dir, pool_signature(pool, variant), resume)

    wrapper = DistillStudent(copy_model(student), teacher_dim=bank.dim, seed=train.seed)
    place(wrapper).train()                    # on the GPU under set_backend("cuda")
    resid = None
    raw = np.concatenate([bank.embeddings, pool.targets]) if use_pool else bank.embeddings
    targets = l2_normalize_forward(raw)[0] if feature_norm == "l2" else raw      # (n+m, Dt)
    adapted = method is not None and method.reads == "adapter"
    # the adapter's least-squares start: on the regressed faces, or (fsim, crd) on the
    # faces of the method's term (every face; selective-m: the selected ones)
    fit_w = w_all if regress else (w if faces is not None else np.ones(n, np.float32)) \
        if adapted else None
    if fit_w is not None and adapter_init == "lstsq" and not resume:
        resid = init_adapter_lstsq(wrapper, images, targets, fit_w)
        wrapper.train()
    steps = steps_per_epoch(train, n + m)
    step_fn = DistillStep(bank, w_all if regress else None, mu, T,
                          kd_weight if variant == "kd" else 0.0, feature_norm=feature_norm,
                          mu_schedule=mu_schedule, total_steps=train.epochs * steps,
                          pool_targets=pool.targets if use_pool else None,
                          method=method, method_weight=distill.weight, seed=train.seed,
                          method_faces=faces)
    done = _checkpoint_epoch(out_dir) if resume and out_dir is not None else 0
    step_fn.step = done * steps
    init_reg = None
    if regress and not resume:
        init_reg = _initial_regression(wrapper, images, targets, w_all, feature_norm)
    say(f"fine-tuning '{variant}': {int((w > 0).sum()) if regress else 0}/{n} faces regressed"
        + (f" + {m} unlabelled faces" if use_pool else "")
        + (f" (a pool of {pool.n} unlabelled faces is ignored: '{variant}' does not regress)"
           if pool is not None and pool.n and not regress else "")
        + (f", mu {mu:g} ({mu_schedule}), {feature_norm} features, adapter {adapter_init}"
           + (f" (residual {resid:.3f})" if resid is not None else "")
           + (f", initial regression loss {init_reg:.3f}" if init_reg is not None else "")
           if regress else "")
        + (f", KD T={T:g} weight {kd_weight:g}" if variant == "kd" else "")
        + (f", {method.name} weight {distill.weight:g}" + (f" (T={T:g})" if reads_logits else "")
           + (f" on {int(faces.sum())}/{n} selected faces" if faces is not None else "")
           + (f", adapter {adapter_init}" if adapted else "")
           + (f" (residual {resid:.3f})" if adapted and resid is not None else "")
           if method is not None else ""))
    # the held-out faces are followed epoch by epoch only when they are validation faces:
    # test faces are seen once, by the last epoch's student
    val = ({"val_images": split.lr_test, "val_labels": split.y_test}
           if split.is_validation else {})
    history = fit(wrapper, images, labels, train, out_dir=out_dir, resume=resume, log=log,
                  step_fn=step_fn, **val)
    parts = {p["epoch"]: p for p in _epoch_parts(step_fn.parts, steps, done,
                                                 step_fn.counts if use_pool else None)}
    for rec in history:
        rec.update({k: v for k, v in parts.get(rec["epoch"], {}).items() if k != "epoch"})
    if out_dir is not None:       # fit wrote history.json without the loss parts
        write_json(Path(out_dir) / "history.json", history)
    # this session's time, plus the epochs a resumed run had already done
    seconds = time.perf_counter() - t0 + sum(r["seconds"] for r in history[:done])

    deployable = wrapper.deployable()
    metrics = evaluate_identification(deployable, split, "student")
    metrics.update(
        variant=variant, mu=float(mu) if regress else None, T=float(T) if variant == "kd" else None,
        kd_weight=float(kd_weight) if variant == "kd" else None,
        ratio=float(ratio) if distill.needs_selection else None,
        regressed_faces=int((w > 0).sum()) if regress else 0, faces=n,
        unlabelled_faces=m, faces_per_epoch=n + m, steps_per_epoch=steps,
        pool=dict(pool.record(), used=use_pool) if pool is not None and pool.n else None,
        feature_norm=feature_norm if regress else None,
        adapter_init=adapter_init if regress else None, mu_schedule=mu_schedule if regress else None,
        adapter_residual=resid, initial_regression_loss=init_reg,
        final_regression_loss=history[-1].get("reg") if history else None,
        student_parameters=deployable.num_parameters(), student_bytes=deployable.nbytes(),
        adapter_parameters=wrapper.adapter_parameters(), epochs=len(history),
        seconds=seconds, config=train.to_dict())
    if method is not None:
        metrics.update(method=method.name, method_weight=distill.weight,
                       method_faces=int(faces.sum()) if faces is not None else n,
                       method_reads=method.reads, T=float(T) if reads_logits else None,
                       adapter_init=adapter_init if adapted else None,
                       final_method_loss=history[-1].get("method") if history else None)
    if out_dir is not None:
        save_model(Path(out_dir) / "student.npz", deployable,
                   {"variant": variant, "top1": metrics["top1"], "epoch": len(history)})
        write_json(Path(out_dir) / "metrics.json", metrics)
    say(f"fine-tuned '{variant}' (seed {train.seed}): top-1 {100 * metrics['top1']:.1f}% "
        f"in {seconds:.0f} s")
    return {"model": deployable, "wrapper": wrapper, "history": history, "metrics": metrics,
            "weights": w}


def _check_attention(bank, student):
    """Refuse a bank without the teacher's attention maps at the student's map size."""
    h, w = student.map_shape[1:]
    if bank.attention is None or bank.attention.shape[1] != h * w:
        have = "none" if bank.attention is None else f"{bank.meta.get('attention_size')}"
        raise ValueError(f"variant 'at' needs the teacher's attention maps pooled to the "
                         f"student's {h}x{w} map in the feature bank (it has {have}): "
                         f"extract_bank(..., attention_size=({h}, {w}))")


def _initial_regression(wrapper, lr_images, targets, w, feature_norm, limit=512):
    """The regression loss at the start (eval mode, no augmentation, up to ``limit``
    weighted faces), for the log and metrics."""
    rows = np.flatnonzero(w > 0)[:limit]
    emb = embed_images(wrapper.student, lr_images[rows])
    pred = wrapper.adapter.forward(input_batch(emb))                    # (M, Dt)
    if feature_norm == "l2":
        pred = ops.l2_normalize_forward(pred)[0]
    loss, _ = feature_regression_loss(pred, np.asarray(targets)[rows], w[rows])
    wrapper.train()
    return float(loss)
