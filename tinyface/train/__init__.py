"""Training: mini-batch gradient descent with augmentation, validation, atomic
checkpoints after every epoch, exact ``--resume`` and training curves.

    from tinyface.train import TrainConfig, fit
    cfg = TrainConfig(epochs=10, batch_size=64, optimizer="sgd", lr=0.05)
    history = fit(model, train_images, train_labels, cfg, val_images, val_labels,
                  out_dir="runs/student")        # checkpoint.npz, history.json, curves.png, model.npz
    history = fit(model, ..., out_dir="runs/student", resume=True)   # continue after a stop

Modules: ``config`` (``TrainConfig``), ``trainer`` (``fit``, ``evaluate_classifier``,
``TrainingDiverged``), ``resume`` (what a checkpoint must match, RNG states),
``epoch_files`` (the files of each epoch, the checkpoint last), ``curves`` (the PNG).
"""
from .config import DEFAULT_LR, OPTIMIZERS, TrainConfig
from .curves import render_curves, save_curves
from .resume import NoCheckpointError, ResumeMismatchError, rng_states, set_rng_states
from .epoch_files import CHECKPOINT_FILE, CURVES_FILE, HISTORY_FILE, MODEL_FILE
from .trainer import (TIMING_KEYS, TrainingDiverged, classification_step, evaluate_classifier, fit,
                      format_duration, make_lr_schedule, make_optimizer, steps_per_epoch)

__all__ = ["TrainConfig", "OPTIMIZERS", "DEFAULT_LR", "fit", "evaluate_classifier",
           "classification_step", "TrainingDiverged", "NoCheckpointError",
           "ResumeMismatchError", "make_optimizer", "make_lr_schedule", "steps_per_epoch",
           "rng_states", "set_rng_states", "format_duration", "render_curves", "save_curves",
           "CHECKPOINT_FILE", "HISTORY_FILE", "CURVES_FILE", "MODEL_FILE", "TIMING_KEYS"]
