"""Training: mini-batch gradient descent with augmentation, validation, atomic
checkpoints after every epoch, exact ``--resume`` and training curves.

    from tinyface.train import TrainConfig, fit
    cfg = TrainConfig(epochs=10, batch_size=64, optimizer="sgd", lr=0.05)
    history = fit(model, train_images, train_labels, cfg, val_images, val_labels,
                  out_dir="runs/student")        # checkpoint.npz, history.json, curves.png, model.npz
    history = fit(model, ..., out_dir="runs/student", resume=True)   # continue after a stop

The step that ``fit`` repeats (``train_step``)::

    model.zero_grad()
    logits = model.forward(x)                                   # (b, K)
    loss, dlogits = softmax_cross_entropy_loss(logits, labels)
    model.backward(dlogits)
    optimizer.step()

Modules: ``loop`` (``train_step``, ``run_epoch``: the loop itself), ``fit`` (``fit``:
resume, validation, epoch files, ETA, ``TrainingDiverged``), ``config``
(``TrainConfig``), ``optimizer`` (``make_optimizer``, ``steps_per_epoch``,
``make_lr_schedule``), ``evaluate`` (``evaluate_classifier``), ``device`` (host <-> GPU
batches), ``resume`` (what a checkpoint must match, RNG states), ``epoch_files`` (the
files of each epoch, the checkpoint last), ``curves`` (the PNG).
"""
from .config import DEFAULT_LR, LR_MAX_SHIFT, OPTIMIZERS, TrainConfig
from .curves import render_curves, save_curves
from .device import host_array, input_batch
from .epoch_files import CHECKPOINT_FILE, CURVES_FILE, HISTORY_FILE, MODEL_FILE
from .evaluate import evaluate_classifier
from .fit import TIMING_KEYS, TrainingDiverged, fit, format_duration
from .loop import StepDiverged, run_epoch, train_step
from .optimizer import make_lr_schedule, make_optimizer, steps_per_epoch
from .resume import NoCheckpointError, ResumeMismatchError, rng_states, set_rng_states

__all__ = ["TrainConfig", "OPTIMIZERS", "DEFAULT_LR", "LR_MAX_SHIFT", "fit", "train_step",
           "run_epoch", "evaluate_classifier", "TrainingDiverged", "StepDiverged",
           "NoCheckpointError", "ResumeMismatchError", "make_optimizer", "make_lr_schedule",
           "steps_per_epoch", "host_array", "input_batch", "rng_states", "set_rng_states",
           "format_duration", "render_curves", "save_curves", "CHECKPOINT_FILE",
           "HISTORY_FILE", "CURVES_FILE", "MODEL_FILE", "TIMING_KEYS"]
