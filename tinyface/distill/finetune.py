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
- ``selective``: CE + feature regression on the faces ``tinyface.select.select`` picks.

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
310 (raw, lstsq). So ``DEFAULT_MU = 1.0`` with l2 features puts the two terms' pull on
the student at the same order; ``feature_norm="none"`` (raw features, the issue's
formula as written) needs mu near 1/150-1/300 for the same balance. ``mu_schedule``:
``constant`` (default), ``linear`` or ``cosine`` decay of mu to 0 over the run.

Learning rate: fine-tuning uses ``DEFAULT_FINETUNE_LR = 0.01`` (SGD, momentum 0.9,
cosine), a fifth of the from-scratch 0.05, so the student stays near its initialisation.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from tinyface.backend import ops, place
from tinyface.distill.bank import FeatureBank
from tinyface.distill.model import DistillStudent
from tinyface.losses import (distillation_loss, feature_regression_loss,
                             softmax_cross_entropy_loss)
from tinyface.reference.normalize import l2_normalize_forward
from tinyface.train.trainer import host_array, input_batch

__all__ = ["VARIANTS", "REGRESSION_VARIANTS", "DEFAULT_MU", "DEFAULT_T", "DEFAULT_KD_WEIGHT",
           "DEFAULT_FINETUNE_LR", "FEATURE_NORMS", "MU_SCHEDULES", "check_ratio",
           "check_variant", "make_weights", "distill_step_fn", "DistillStep", "finetune",
           "init_adapter_lstsq", "copy_model", "finetune_config"]

VARIANTS = ("none", "kd", "full", "random", "selective")
REGRESSION_VARIANTS = ("full", "random", "selective")
FEATURE_NORMS = ("l2", "none")
MU_SCHEDULES = ("constant", "linear", "cosine")

DEFAULT_MU = 1.0
DEFAULT_T = 4.0
DEFAULT_KD_WEIGHT = 1.0
DEFAULT_FINETUNE_LR = 0.01


# ------------------------------------------------------------------ checking
def check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError(f"unknown distillation variant {variant!r}; choose one of "
                         f"{', '.join(VARIANTS)}")
    return variant


def check_ratio(ratio):
    """Return ``ratio`` as a float, or raise ``ValueError`` unless it is in (0, 1]."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(ratio)) or not 0.0 < float(ratio) <= 1.0:
        raise ValueError(f"the selection ratio must be in (0, 1], got {ratio!r}")
    return float(ratio)


def _selection_mask(selection, n):
    mask = getattr(selection, "mask", selection)
    mask = np.asarray(mask)
    if mask.shape != (n,):
        raise ValueError(f"the selection has shape {mask.shape} but there are {n} training faces")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("the selection must be a boolean mask (or 0/1 values)")
        mask = mask.astype(bool)
    if not mask.any():
        raise ValueError("the selection is empty: no face is selected for distillation; "
                         "raise the ratio or check the selector's settings")
    return mask


def _selection_per_identity(selection, default):
    params = getattr(selection, "params", None)
    if isinstance(params, dict) and "per_identity" in params:
        return bool(params["per_identity"])
    return default


# ------------------------------------------------------------------- weights
def make_weights(variant, bank, labels, ratio=0.5, seed=0, selection=None, *,
                 per_identity=True, select_kwargs=None, log=None):
    """Per-face regression weights ``(N,) float32`` for ``variant``.

    none, kd: zeros (no regression); full: ones; selective: the selection mask
    (``selection``: a ``SelectionResult`` or an (N,) bool mask; None: run
    ``tinyface.select.select(bank.embeddings, labels, bank.logits, ratio,
    per_identity=per_identity, seed=seed, **select_kwargs)``); random: a random subset
    drawn with ``seed`` of the selective size: the same count in every identity as the
    selection when it is per identity (``selection.params["per_identity"]``, else the
    ``per_identity`` argument), the same total count otherwise; without a selection the
    counts are the selector's targets for ``ratio``.
    Raises ``ValueError`` for an unknown variant, a ratio outside (0, 1], a bank that
    does not match ``labels``, or an empty selection.
    """
    check_variant(variant)
    ratio = check_ratio(ratio)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be an (N,) int array, got {labels.dtype} {labels.shape}")
    n = len(labels)
    if isinstance(bank, FeatureBank):
        bank.check(n)
    if variant in ("none", "kd"):
        return np.zeros(n, np.float32)
    if variant == "full":
        return np.ones(n, np.float32)
    if selection is None and variant == "selective":
        selection = _run_selection(bank, labels, ratio, seed, per_identity, select_kwargs, log)
    if variant == "selective":
        return _selection_mask(selection, n).astype(np.float32)
    # random: the selective size, drawn with the seed
    _, groups = np.unique(labels, return_inverse=True)
    groups = groups.ravel()
    if selection is not None:
        mask = _selection_mask(selection, n)
        per_id = _selection_per_identity(selection, bool(per_identity))
        counts = (np.bincount(groups, weights=mask, minlength=groups.max() + 1).astype(np.int64)
                  if per_id else np.array([int(mask.sum())]))
    else:
        from tinyface.select import target_counts
        per_id = bool(per_identity)
        sizes = np.bincount(groups) if per_id else np.array([n])
        counts = target_counts(ratio, sizes, per_id)
    rng = np.random.default_rng([int(seed), 0x5EED])
    w = np.zeros(n, np.float32)
    if per_id:
        for g, m in enumerate(counts):
            rows = np.flatnonzero(groups == g)
            w[rng.choice(rows, size=int(m), replace=False)] = 1.0
    else:
        w[rng.choice(n, size=int(counts[0]), replace=False)] = 1.0
    if not w.any():
        raise ValueError("the random subset is empty; raise the ratio")
    return w


def _run_selection(bank, labels, ratio, seed, per_identity, select_kwargs, log):
    from tinyface.select import select
    kwargs = dict(select_kwargs or {})
    kwargs.setdefault("per_identity", bool(per_identity))
    return select(bank.embeddings, labels, bank.logits, ratio=ratio, seed=seed,
                  dim=bank.dim, log=log, **kwargs)


# ---------------------------------------------------------------------- step
def _mu_factor(schedule, step, total):
    if schedule == "constant" or total is None or total <= 1:
        return 1.0
    t = min(max(step / (total - 1), 0.0), 1.0)
    if schedule == "linear":
        return 1.0 - t
    return 0.5 * (1.0 + math.cos(math.pi * t))


class DistillStep:
    """The ``step_fn`` of distillation fine-tuning (see the module docstring for L).

    Call: ``(model, x, batch_indices, labels) -> (loss, correct)`` with ``model`` a
    ``DistillStudent``, x: (b, 3, S, S) float32 LR faces (augmented), batch_indices:
    (b,) rows of the training set (= rows of the bank), labels: (b,).
    Runs forward, the losses, and backward through the adapter and the student
    (``backward_both``); gradients accumulate into the parameters' ``grads``.
    ``parts``: per call, ``(ce, kd, reg)`` (None when a term is off); ``step``: the
    number of calls so far (drives the mu schedule; set it when resuming).
    """

    def __init__(self, bank, weights, mu=DEFAULT_MU, T=DEFAULT_T, kd_weight=0.0, *,
                 feature_norm="l2", mu_schedule="constant", total_steps=None):
        if not isinstance(bank, FeatureBank):
            raise TypeError(f"bank must be a FeatureBank, got {type(bank).__name__}")
        if feature_norm not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {FEATURE_NORMS}, got {feature_norm!r}")
        if mu_schedule not in MU_SCHEDULES:
            raise ValueError(f"mu_schedule must be one of {MU_SCHEDULES}, got {mu_schedule!r}")
        if not (isinstance(mu, (int, float)) and math.isfinite(mu) and mu >= 0):
            raise ValueError(f"mu must be a number >= 0, got {mu!r}")
        if not (isinstance(kd_weight, (int, float)) and math.isfinite(kd_weight) and kd_weight >= 0):
            raise ValueError(f"kd_weight must be a number >= 0, got {kd_weight!r}")
        if kd_weight > 0 and not (isinstance(T, (int, float)) and T > 0):
            raise ValueError(f"the temperature T must be > 0, got {T!r}")
        self.bank, self.mu, self.T, self.kd_weight = bank, float(mu), float(T), float(kd_weight)
        self.feature_norm, self.mu_schedule, self.total_steps = feature_norm, mu_schedule, total_steps
        if weights is not None:
            weights = np.asarray(weights, np.float32)
            if weights.shape != (bank.n,):
                raise ValueError(f"weights have shape {weights.shape} but the feature bank has "
                                 f"{bank.n} faces")
            if (weights < 0).any() or not np.isfinite(weights).all():
                raise ValueError("weights must be finite and >= 0")
        self.regress = weights is not None and self.mu > 0 and bool(np.any(weights > 0))
        self.weights = weights
        self.kd = self.kd_weight > 0
        # the targets, normalised once (the bank itself is never changed)
        self.targets = (l2_normalize_forward(bank.embeddings)[0] if feature_norm == "l2"
                        else bank.embeddings) if self.regress else None
        self.step = 0
        self.parts = []

    def mu_at(self, step):
        return self.mu * _mu_factor(self.mu_schedule, step, self.total_steps)

    def regression(self, adapter, emb, idx):
        """``(loss, dpred)`` of the regression term for a batch: adapter forward on
        emb (b, Ds), then the weighted loss against the bank rows ``idx``."""
        w = self.weights[idx]                                           # (b,)
        pred = adapter.forward(emb)                                     # (b, Dt)
        target = self.targets[idx]                                      # (b, Dt)
        if self.feature_norm == "l2":
            p_hat, cache = ops.l2_normalize_forward(pred)               # (b, Dt) unit rows
            loss, dhat = feature_regression_loss(p_hat, target, w)
            return loss, ops.l2_normalize_backward(dhat, cache)         # (b, Dt)
        return feature_regression_loss(pred, target, w)

    def __call__(self, model, x, batch_indices, labels):
        idx = np.asarray(batch_indices)
        emb, logits = model.student.forward_both(x)                     # (b, Ds), (b, K)
        ce, dlogits = softmax_cross_entropy_loss(logits, labels)
        loss, kd_loss, reg = ce, None, None
        if self.kd:
            kd_loss, dkd = distillation_loss(logits, self.bank.logits[idx], self.T)
            loss += self.kd_weight * kd_loss
            dlogits = dlogits + self.kd_weight * dkd                    # Python float: any tier
        demb = None
        if self.regress and self.weights[idx].sum() > 0:
            mu = self.mu_at(self.step)
            reg, dpred = self.regression(model.adapter, emb, idx)
            loss += mu * reg
            if mu > 0:
                demb = model.adapter.backward(float(mu) * dpred)        # (b, Ds)
        model.student.backward_both(demb, dlogits)
        self.step += 1
        self.parts.append((ce, kd_loss, reg))
        correct = int(np.count_nonzero(np.argmax(host_array(logits), axis=1) == labels))
        return loss, correct


def distill_step_fn(bank, weights, mu=DEFAULT_MU, T=DEFAULT_T, kd_weight=0.0, **kwargs):
    """A ``step_fn`` for ``tinyface.train.fit`` (a ``DistillStep``).

    weights: (N,) per-face regression weights, or None for no regression (variants
    ``none`` and ``kd``); mu: weight of the regression term; kd_weight: weight of the
    Hinton term at temperature ``T`` (0: off). kwargs: ``feature_norm``,
    ``mu_schedule``, ``total_steps`` (see ``DistillStep``).
    """
    return DistillStep(bank, weights, mu, T, kd_weight, **kwargs)


# ------------------------------------------------------------------- helpers
def copy_model(model):
    """An independent copy of a model (architecture, parameters, buffers, RNG states)."""
    from tinyface.nn.module import build_layer
    from tinyface.train import rng_states, set_rng_states
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
    from tinyface.eval import embed_images
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
    from tinyface.train import TrainConfig
    return TrainConfig(epochs=epochs, batch_size=batch_size, optimizer="sgd", lr=lr,
                       schedule="cosine", seed=seed, **kwargs)


def _checkpoint_epoch(out_dir):
    path = Path(out_dir) / "checkpoint.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return int(json.loads(str(data["training"][()]))["epoch"])
    except Exception:
        return 0


def _epoch_parts(parts, steps, epochs_done):
    """Per-epoch means of the (ce, kd, reg) parts recorded in this session."""
    out = []
    for e in range(len(parts) // steps):
        chunk = parts[e * steps:(e + 1) * steps]
        rec = {"epoch": epochs_done + e + 1}
        for j, name in enumerate(("ce", "kd", "reg")):
            vals = [p[j] for p in chunk if p[j] is not None]
            rec[name] = float(np.mean(vals)) if vals else None
        out.append(rec)
    return out


# ------------------------------------------------------------------ finetune
def finetune(student, split, bank, variant, config, mu=DEFAULT_MU, T=DEFAULT_T, ratio=0.5,
             selection=None, out_dir=None, log=print, *, kd_weight=DEFAULT_KD_WEIGHT,
             weights=None, feature_norm="l2", adapter_init="lstsq", mu_schedule="constant",
             per_identity=True, resume=False):
    """Fine-tune a copy of ``student`` on ``split``'s LR training faces with ``variant``.

    student: the trained ``FaceNet`` (never modified); split: the ``FaceSplit`` it was
    trained on; bank: the teacher's ``FeatureBank`` of ``split.hr_train``; variant: one
    of ``VARIANTS``; config: a ``TrainConfig`` (see ``finetune_config``; its seed seeds
    shuffling, augmentation, the adapter and the random subset); mu, T, ratio: see the
    module docstring; selection: the ``SelectionResult`` (or mask) for ``selective`` and
    ``random`` (None: computed from the bank); weights: explicit (N,) regression weights
    instead of the variant's; kd_weight: weight of the Hinton term (``kd`` only);
    feature_norm: ``l2`` | ``none``; adapter_init: ``lstsq`` | ``random``;
    mu_schedule: ``constant`` | ``linear`` | ``cosine``; out_dir: ``fit``'s files
    (checkpoint.npz, history.json, curves.png, model.npz = best epoch with the adapter)
    plus ``student.npz`` (the deployable student after the last epoch) and
    ``metrics.json``; resume: continue ``out_dir/checkpoint.npz``.

    Returns ``{"model": the deployable student (FaceNet, eval mode, last epoch),
    "wrapper": the DistillStudent, "history": fit's history with per-epoch loss parts,
    "metrics": dict (top1, top5, variant, settings, sizes, seconds), "weights": (N,)}``.
    """
    from tinyface.checkpoint import save_model
    from tinyface.pipeline import evaluate_identification
    from tinyface.pipeline.streams import write_json
    from tinyface.train import fit, steps_per_epoch

    check_variant(variant)
    ratio = check_ratio(ratio)
    if feature_norm not in FEATURE_NORMS:
        raise ValueError(f"feature_norm must be one of {FEATURE_NORMS}, got {feature_norm!r}")
    if adapter_init not in ("lstsq", "random"):
        raise ValueError(f"adapter_init must be 'lstsq' or 'random', got {adapter_init!r}")
    if not isinstance(bank, FeatureBank):
        raise TypeError(f"bank must be a FeatureBank, got {type(bank).__name__}")
    n = len(split.y_train)
    bank.check(n, num_classes=split.num_classes if variant == "kd" else None)
    if tuple(student.input_shape[1:]) != (split.lr_size, split.lr_size) or \
            student.num_classes != split.num_classes:
        raise ValueError(f"the student takes {student.input_shape} faces and {student.num_classes} "
                         f"identities; the split has {split.num_classes} identities at "
                         f"{split.lr_size}px")
    say = log or (lambda msg: None)
    t0 = time.perf_counter()

    if weights is not None:
        w = np.asarray(weights, np.float32)
        if w.shape != (n,):
            raise ValueError(f"weights have shape {w.shape}, expected ({n},)")
        if variant in REGRESSION_VARIANTS and not w.any():
            raise ValueError("the selection is empty: every regression weight is 0")
    else:
        w = make_weights(variant, bank, split.y_train, ratio, config.seed, selection,
                         per_identity=per_identity, log=say)
    regress = variant in REGRESSION_VARIANTS

    wrapper = DistillStudent(copy_model(student), teacher_dim=bank.dim, seed=config.seed)
    place(wrapper).train()                    # on the GPU under set_backend("cuda")
    resid = None
    targets = (l2_normalize_forward(bank.embeddings)[0] if feature_norm == "l2" else bank.embeddings)
    if regress and adapter_init == "lstsq" and not resume:
        resid = init_adapter_lstsq(wrapper, split.lr_train, targets, w)
        wrapper.train()
    steps = steps_per_epoch(config, n)
    step_fn = DistillStep(bank, w if regress else None, mu, T,
                          kd_weight if variant == "kd" else 0.0, feature_norm=feature_norm,
                          mu_schedule=mu_schedule, total_steps=config.epochs * steps)
    done = _checkpoint_epoch(out_dir) if resume and out_dir is not None else 0
    step_fn.step = done * steps
    init_reg = None
    if regress and not resume:
        init_reg = _initial_regression(wrapper, split.lr_train, targets, w, feature_norm)
    say(f"fine-tuning '{variant}': {int((w > 0).sum()) if regress else 0}/{n} faces regressed"
        + (f", mu {mu:g} ({mu_schedule}), {feature_norm} features, adapter {adapter_init}"
           + (f" (residual {resid:.3f})" if resid is not None else "")
           + (f", initial regression loss {init_reg:.3f}" if init_reg is not None else "")
           if regress else "")
        + (f", KD T={T:g} weight {kd_weight:g}" if variant == "kd" else ""))
    history = fit(wrapper, split.lr_train, split.y_train, config, val_images=split.lr_test,
                  val_labels=split.y_test, out_dir=out_dir, resume=resume, log=log,
                  step_fn=step_fn)
    parts = {p["epoch"]: p for p in _epoch_parts(step_fn.parts, steps, done)}
    for rec in history:
        rec.update({k: v for k, v in parts.get(rec["epoch"], {}).items() if k != "epoch"})
    if out_dir is not None:       # fit wrote history.json without the loss parts
        write_json(Path(out_dir) / "history.json", history)
    seconds = time.perf_counter() - t0

    deployable = wrapper.deployable()
    metrics = evaluate_identification(deployable, split, "student")
    metrics.update(
        variant=variant, mu=float(mu) if regress else None, T=float(T) if variant == "kd" else None,
        kd_weight=float(kd_weight) if variant == "kd" else None,
        ratio=float(ratio) if variant in ("random", "selective") else None,
        regressed_faces=int((w > 0).sum()) if regress else 0, faces=n,
        feature_norm=feature_norm if regress else None,
        adapter_init=adapter_init if regress else None, mu_schedule=mu_schedule if regress else None,
        adapter_residual=resid, initial_regression_loss=init_reg,
        final_regression_loss=history[-1].get("reg") if history else None,
        student_parameters=deployable.num_parameters(), student_bytes=deployable.nbytes(),
        adapter_parameters=wrapper.adapter_parameters(), epochs=len(history),
        seconds=seconds, config=config.to_dict())
    if out_dir is not None:
        save_model(Path(out_dir) / "student.npz", deployable,
                   {"variant": variant, "top1": metrics["top1"], "epoch": len(history)})
        write_json(Path(out_dir) / "metrics.json", metrics)
    say(f"fine-tuned '{variant}' (seed {config.seed}): top-1 {100 * metrics['top1']:.1f}% "
        f"in {seconds:.0f} s")
    return {"model": deployable, "wrapper": wrapper, "history": history, "metrics": metrics,
            "weights": w}


def _initial_regression(wrapper, lr_images, targets, w, feature_norm, limit=512):
    """The regression loss at the start (eval mode, no augmentation, up to ``limit``
    weighted faces), for the log and metrics."""
    from tinyface.eval import embed_images
    rows = np.flatnonzero(w > 0)[:limit]
    emb = embed_images(wrapper.student, lr_images[rows])
    pred = wrapper.adapter.forward(input_batch(emb))                    # (M, Dt)
    if feature_norm == "l2":
        pred = ops.l2_normalize_forward(pred)[0]
    loss, _ = feature_regression_loss(pred, np.asarray(targets)[rows], w[rows])
    wrapper.train()
    return float(loss)
