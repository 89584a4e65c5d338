"""``fit``: mini-batch training with validation, checkpoints after every epoch and exact
resume, around the loop of ``tinyface.train.loop``.

    for epoch in range(start_epoch, config.epochs):     # start_epoch > 0 on --resume
        stats = run_epoch(model, optimizer, schedule, train_images, train_labels, config, epoch)
        val_loss, val_acc = evaluate_classifier(model, val_images, val_labels)
        save_epoch(out_dir, ...)                         # model.npz, history.json, curves.png, checkpoint.npz
        log(f"epoch {epoch + 1}/{config.epochs}  loss ...  ETA ...")

Reproducibility. Every epoch's shuffle and augmentation are seeded by the epoch number
(``tinyface.train.loop``), and layers that own a ``numpy.random.Generator``
(``nn.Dropout``) have its state saved in the checkpoint and restored on resume. With
the same seed, data, model initialisation and Numba thread count, a run is bit-for-bit
repeatable on the CPU, and a run stopped after epoch k and resumed ends with exactly
the weights of an uninterrupted one.

Files in ``out_dir`` after each epoch, each written atomically (temp file + rename), the
checkpoint last, so that whatever the moment of a kill, ``--resume`` finds the last
complete epoch and re-runs what follows (``train.epoch_files``):

- ``model.npz``:      the best model so far by validation accuracy (the last one
  without validation data), readable by ``tinyface.checkpoint.load_model``;
- ``history.json``:   the list of per-epoch dicts that ``fit`` returns;
- ``curves.png``:     loss and accuracy per epoch;
- ``checkpoint.npz``: model, optimizer state, epoch, config, history, RNG states.

A NaN or inf loss stops the run with ``TrainingDiverged``; nothing is written after
the divergence, so the last good checkpoint stays as it was.

No NumPy BLAS call (``@``, ``np.dot``) runs in the loop: it would slow down Numba's
parallel kernels (see ``tinyface.kernels.threading``).

On the GPU. Under ``tinyface.backend.set_backend("cuda")`` (``--device cuda``), ``fit`` moves
the model to the GPU (``model.to("cuda")``) and uses the device optimizer of the same
name (``tinyface.cuda.DeviceSGD``, ``DeviceAdam``, ``DeviceAdamW``): parameters,
activations, gradients and optimizer state stay there for the whole run. Each step
copies one augmented batch up (and its labels) and the loss and the (b, K) logits
down, for the running accuracy; checkpoints copy the weights down once per epoch and
are the same files as on the CPU, so a run can be resumed on either tier. The model
is left on the GPU: evaluate it under the same backend, or ``model.to("cpu")``.
"""
from __future__ import annotations

import os
import time

import numpy as np

from tinyface.backend import get_backend, is_device_array, place
from tinyface.losses import NonFiniteLossError

from .config import TrainConfig
from .epoch_files import CHECKPOINT_FILE, MODEL_FILE, repair_best, save_epoch
from .evaluate import evaluate_classifier
from .loop import StepDiverged, run_epoch
from .optimizer import make_lr_schedule, make_optimizer, steps_per_epoch
from .resume import NoCheckpointError, fingerprint, load_resume

# history keys that depend on the machine's speed, not on the computation
TIMING_KEYS = ("seconds", "faces_per_s")


class TrainingDiverged(RuntimeError):
    """The loss (or the weights) became NaN or infinite; the run was stopped.

    Attributes: ``epoch`` (1-based), ``step`` (1-based, within the epoch; None when the
    weights were found non-finite at the end of the epoch), ``lr``, ``checkpoint``
    (path of the last good checkpoint, or None).
    """

    def __init__(self, message, epoch=None, step=None, lr=None, checkpoint=None):
        super().__init__(message)
        self.epoch, self.step, self.lr, self.checkpoint = epoch, step, lr, checkpoint


# --------------------------------------------------------------------- helpers
def _check_data(images, labels, what):
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype != np.uint8:
        desc = (f"{images.dtype} array of shape {images.shape}" if isinstance(images, np.ndarray)
                else type(images).__name__)
        raise ValueError(f"{what} images must be a uint8 array (N, C, H, W) as tinyface.data "
                         f"returns them, got a {desc}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(images):
        raise ValueError(f"{what} labels must be an int array (N,) with N={len(images)}, "
                         f"got {labels.dtype} array of shape {labels.shape}")
    if len(images) == 0:
        raise ValueError(f"{what} set is empty")
    if labels.min() < 0:
        raise ValueError(f"{what} labels must be >= 0, got {labels.min()}")
    return labels.astype(np.int64, copy=False)


def format_duration(seconds):
    """``45s``, ``3m25s``, ``2h05m``."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _format_lr(lr):
    return f"{lr:.4f}" if lr >= 1e-3 else f"{lr:.2e}"


def _nonfinite_tensor(model):
    for name, arr in model.state_dict().items():
        if not (arr.all_finite() if is_device_array(arr) else np.all(np.isfinite(arr))):
            return name
    return None


def _what_went_wrong(exc):
    """``"loss became nan"`` from a ``NonFiniteLossError`` message ("loss is nan at ...")."""
    head = str(exc).split(" at ")[0].strip()
    return head.replace(" is ", " became ", 1) if " is " in head else "loss became non-finite"


def _progress_log(log, config, epoch, n, steps, t0):
    """The ``progress`` of ``run_epoch``: a line every ``config.log_every`` seconds
    within epoch ``epoch`` (1-based) of ``steps`` steps over ``n`` faces, begun at ``t0``."""
    last_note = t0

    def progress(step, seen, loss_sum, correct):
        nonlocal last_note
        now = time.perf_counter()
        if now - last_note >= config.log_every and step < steps:
            last_note = now
            rate = seen / (now - t0)
            log(f"  epoch {epoch}/{config.epochs}  step {step}/{steps}  loss {loss_sum / seen:.3f}  "
                f"acc {100 * correct / seen:.1f}%  {rate:.0f} faces/s  "
                f"epoch ETA {format_duration((n - seen) / rate)}")
    return progress


# ------------------------------------------------------------------------ fit
def fit(model, train_images, train_labels, config=None, val_images=None, val_labels=None,
        out_dir=None, resume=False, log=print, step_fn=None, metadata=None):
    """Train ``model`` by mini-batch gradient descent; return the history.

    Args:
        model: a ``tinyface.nn.Module`` with ``forward(x) -> logits (N, K)`` and
            ``backward(dlogits)`` (any module when ``step_fn`` computes its own loss).
        train_images: (N, 3, H, W) uint8 at the model's input size (degrade HR -> LR
            beforehand); train_labels: (N,) int in [0, K).
        config: a ``TrainConfig`` (None: defaults).
        val_images, val_labels: optional validation set (same layout), evaluated with
            ``evaluate_classifier`` after each epoch.
        out_dir: folder for ``checkpoint.npz``, ``history.json``, ``curves.png`` and
            ``model.npz``, written after each epoch (None: write nothing).
        resume: continue from ``out_dir/checkpoint.npz``. Raises ``NoCheckpointError``
            when there is none, ``ResumeMismatchError`` when it was written with other
            settings, another architecture or other training data.
        log: callable taking one line of text (progress and notes).
        step_fn: ``(model, x, batch_indices, labels) -> (loss, correct_count)``: runs
            forward and backward for one batch (x: (b, 3, H, W) float32, augmented;
            batch_indices: (b,) rows of the training set; labels: (b,)). Gradients are
            zeroed before and the optimizer steps after (``loop.train_step``).
            Default (None): softmax cross-entropy on the model's logits.
        metadata: JSON-able dict added to ``model.npz``'s metadata (e.g. the split and
            stream, which ``experiments.load_trained`` checks).

    Returns:
        list of per-epoch dicts: ``epoch`` (1-based), ``train_loss``, ``train_acc``,
        ``val_loss``, ``val_acc`` (None without validation data), ``lr`` (the rate of
        the epoch's last step), ``seconds`` (the whole epoch), ``faces_per_s``
        (training only). A resumed run returns the whole history, earlier epochs included.

    Raises:
        TrainingDiverged: the loss or the weights became NaN/inf (nothing is written
            after that; the last good checkpoint is kept).
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    config.validate()
    train_labels = _check_data(train_images, train_labels, "training")
    if (val_images is None) != (val_labels is None):
        raise ValueError("give both val_images and val_labels, or neither")
    if val_images is not None:
        val_labels = _check_data(val_images, val_labels, "validation")
        if val_images.shape[1:] != train_images.shape[1:]:
            raise ValueError(f"validation images are {val_images.shape[1:]}, training images "
                             f"{train_images.shape[1:]}: both must be at the model's input size")
    n = len(train_images)
    steps = steps_per_epoch(config, n)
    if steps == 0:
        raise ValueError(f"drop_last with batch_size {config.batch_size} > {n} training faces "
                         f"leaves no batch: lower batch_size")

    on_gpu = get_backend() == "cuda"
    place(model)                    # params, grads, buffers to the GPU under "cuda"
    optimizer = make_optimizer(config, model)
    schedule = make_lr_schedule(config, steps)
    data_id = {"train": fingerprint(train_images, train_labels),
               "val": fingerprint(val_images, val_labels)}

    ckpt_path = os.path.join(out_dir, CHECKPOINT_FILE) if out_dir is not None else None
    history, start_epoch, best, saved_epoch = [], 0, None, None
    if resume:
        if out_dir is None:
            raise ValueError("resume needs out_dir (the folder holding checkpoint.npz)")
        if not os.path.isfile(ckpt_path):
            raise NoCheckpointError(f"no checkpoint to resume from: {ckpt_path} does not exist "
                                    f"(run without --resume to start a new run)")
        start_epoch, extra = load_resume(ckpt_path, model, optimizer, config, data_id)
        history, best, saved_epoch = extra["history"], extra["best"], start_epoch
        repair_best(out_dir, model, config, history, best, metadata, log)
        if start_epoch >= config.epochs:
            log(f"{ckpt_path} has already finished all {config.epochs} epochs; nothing to do")
            return history
        log(f"resuming after epoch {start_epoch}/{config.epochs} from {ckpt_path}")
    elif ckpt_path is not None and os.path.exists(ckpt_path):
        log(f"note: {ckpt_path} exists and will be overwritten after epoch 1 "
            f"(pass resume / --resume to continue it instead)")

    log(f"training on {n} faces of {train_images.shape[2]}x{train_images.shape[3]}"
        f"{f', validating on {len(val_images)}' if val_images is not None else ''}: "
        f"{config.epochs} epochs x {steps} steps of {config.batch_size}, {config.optimizer} "
        f"lr {config.learning_rate:g} ({config.schedule}), seed {config.seed}"
        f"{', on the GPU' if on_gpu else ''}")

    def diverged(what, epoch, step, lr):
        if saved_epoch is not None:
            kept = f"the last good checkpoint (epoch {saved_epoch}) is kept in {out_dir}"
        elif out_dir is not None:
            kept = "no checkpoint was written yet"
        else:
            kept = "no checkpoint is kept (no out_dir)"
        where = f"epoch {epoch} step {step}/{steps}" if step is not None else f"the end of epoch {epoch}"
        peak = config.learning_rate
        now = f"now {peak:.4g}" + (f", {lr:.4g} at this step" if lr != peak else "")
        return TrainingDiverged(f"{what} at {where}; {kept}; try a lower learning rate "
                                f"({now})", epoch=epoch, step=step, lr=lr,
                                checkpoint=ckpt_path if saved_epoch is not None else None)

    wall_times = []   # per epoch of this session, checkpoint writing included
    for epoch in range(start_epoch, config.epochs):
        e1 = epoch + 1
        t0 = time.perf_counter()
        progress = _progress_log(log, config, e1, n, steps, t0) if config.log_every else None
        try:
            stats = run_epoch(model, optimizer, schedule, train_images, train_labels, config,
                              epoch, step_fn, progress)
        except StepDiverged as exc:
            raise diverged(_what_went_wrong(exc), e1, exc.step, exc.lr) from exc.__cause__
        train_seconds = time.perf_counter() - t0
        lr = stats["lr"]

        bad = _nonfinite_tensor(model)
        if bad is not None:
            raise diverged(f"weights became non-finite ({bad})", e1, None, lr)
        val_loss = val_acc = None
        if val_images is not None:
            try:
                val_loss, val_acc = evaluate_classifier(model, val_images, val_labels,
                                                        config.eval_batch_size)
            except NonFiniteLossError as exc:
                raise diverged("validation " + _what_went_wrong(exc), e1, None, lr) from exc
        seconds = time.perf_counter() - t0
        record = {"epoch": e1, "train_loss": stats["train_loss"], "train_acc": stats["train_acc"],
                  "val_loss": val_loss, "val_acc": val_acc, "lr": lr, "seconds": seconds,
                  "faces_per_s": stats["seen"] / train_seconds if train_seconds > 0 else None}
        history.append(record)

        improved = val_acc is None or best is None or \
            (val_acc, -val_loss) > (best["val_acc"], -best["val_loss"])
        if improved:
            best = {"epoch": e1, "val_acc": val_acc, "val_loss": val_loss}
        if out_dir is not None:
            save_epoch(out_dir, model, optimizer, config, history, best, data_id, improved,
                        metadata)
            saved_epoch = e1

        wall_times.append(time.perf_counter() - t0)
        recent = wall_times[1:] or wall_times   # the first epoch includes JIT compilation
        eta = sum(recent) / len(recent) * (config.epochs - e1)
        val_text = f"  val {100 * val_acc:.1f}%" if val_acc is not None else ""
        log(f"epoch {e1}/{config.epochs}  loss {record['train_loss']:.3f}  "
            f"acc {100 * record['train_acc']:.1f}%{val_text}  lr {_format_lr(lr)}  "
            f"{record['faces_per_s'] or 0:.0f} faces/s  {seconds:.1f} s  ETA {format_duration(eta)}")

    if best is not None and best["val_acc"] is not None:
        log(f"best val acc {100 * best['val_acc']:.1f}% at epoch {best['epoch']}"
            + (f"; model saved to {os.path.join(out_dir, MODEL_FILE)}" if out_dir is not None else ""))
    return history
