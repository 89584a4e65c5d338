"""``TrainConfig``: every setting of a training run, as one JSON-able dataclass.

The config is saved in each checkpoint; ``--resume`` refuses a checkpoint written with
different settings (see ``RESUME_FREE_FIELDS`` for the few that may change).

    cfg = TrainConfig(epochs=10, optimizer="adamw", lr=1e-3)
    cfg.to_dict()                       # plain dict, for JSON
    TrainConfig.from_dict(d)            # unknown keys raise ValueError
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

import numpy as np

from tinyface.optim import SCHEDULE_NAMES
from tinyface.option import option

OPTIMIZERS = ("sgd", "adam", "adamw")

# learning rate used when ``lr`` is None
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}

# fields that only change logging or evaluation speed: a resumed run may differ in them
# and still end with exactly the same weights
RESUME_FREE_FIELDS = ("log_every", "eval_batch_size")


# random shifts of low-resolution faces: none. At 16 px a shift by a fraction of a pixel
# is a bilinear blur that the test faces never have (LFW-158, seed 0, 30 epochs: 72.0%
# top-1 with shifts of up to 1 px, 75.8% without). HR faces keep the default shifts.
# Each stream's default, read by every command and runner that trains one:
STREAM_MAX_SHIFT = {"teacher": 0.0625, "student": 0.0}
LR_MAX_SHIFT = STREAM_MAX_SHIFT["student"]


@dataclass
class TrainConfig:
    """Settings of one training run.

    Optimisation:
        epochs: passes over the training set (>= 1).
        batch_size: faces per step (>= 1); the last batch of an epoch may be smaller
            unless ``drop_last``.
        optimizer: "sgd" (momentum, optional Nesterov), "adam" or "adamw".
        lr: peak learning rate; None picks ``DEFAULT_LR[optimizer]`` (0.05 for SGD,
            1e-3 for Adam/AdamW).
        momentum, nesterov: SGD only.
        weight_decay: L2 penalty (SGD, Adam) or decoupled decay (AdamW), on every
            parameter.
        schedule: "constant", "step" or "cosine" (see ``tinyface.optim.make_schedule``),
            applied per optimizer step.
        warmup_epochs: linear warm-up length in epochs (may be fractional; 0: none).
        min_lr: the final rate of the cosine schedule.
        drop_last: skip an epoch's final, smaller batch.

    Augmentation (``tinyface.data.augment``, seeded per epoch; ``augment=False`` turns
    it all off):
        flip: mirror half of the faces left-right.
        max_shift: translation up to this fraction of the image side (0.0625 is one
            pixel at 16x16, four at 64x64).
        crop_scale: zoom into a random crop covering ``crop_scale``..1 of the side
            (1.0: no zoom).
        brightness: add up to +-this fraction of the full range.
        contrast: scale around the mean by a factor in [1 - contrast, 1 + contrast].

    Bookkeeping:
        seed: seeds the shuffling and augmentation of every epoch (the model's own
            initialisation is the caller's: ``nn.manual_seed``).
        log_every: seconds between in-epoch progress lines (0: never).
        eval_batch_size: batch size of the validation pass.
    """

    # the fields made with ``option`` are also the training commands' options
    # (``tinyface.cli.options.TRAIN_OPTIONS``); a command may put its own recipe's default
    # in the parser (``--epochs``, ``--batch-size``, ``--max-shift`` per stream)
    epochs: int = option(20, "passes over the training faces")
    batch_size: int = option(64, "faces per step")
    optimizer: str = option("sgd", "SGD with momentum 0.9, Adam or AdamW", choices=OPTIMIZERS)
    lr: float | None = option(None, f"peak learning rate (default: {DEFAULT_LR['sgd']:g} for "
                                    f"sgd, {DEFAULT_LR['adam']:g} for adam/adamw)")
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = option(5e-4, "weight decay")
    schedule: str = option("cosine", "learning-rate schedule over all steps",
                           choices=SCHEDULE_NAMES)
    warmup_epochs: float = option(0.0, "linear warm-up length")
    min_lr: float = 0.0
    drop_last: bool = False
    augment: bool = option(True, "turn off flips, shifts and brightness/contrast jitter",
                           flag="--no-augment")
    flip: bool = True
    max_shift: float = option(                            # HR faces: STREAM_MAX_SHIFT above
        STREAM_MAX_SHIFT["teacher"],
        "random shifts up to this fraction of the face side (0.0625: 4 px at 64 px, 1 px at "
        "16 px); LR faces default to none, since a sub-pixel shift of a 16 px face is a blur")
    crop_scale: float = 1.0
    brightness: float = 0.1
    contrast: float = 0.15
    seed: int = 0
    log_every: float = 10.0
    eval_batch_size: int = 256

    def __post_init__(self):
        # NumPy scalars (from argparse-free callers) become plain ints/floats, for JSON
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)):
                setattr(self, f.name, int(v) if f.type == "int" else float(v) if "float" in f.type else v)
            elif isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and "float" in f.type:
                setattr(self, f.name, float(v))
            elif isinstance(v, np.bool_):
                setattr(self, f.name, bool(v))
        self.validate()

    # ----------------------------------------------------------------- checking
    def validate(self):
        """Raise ``ValueError`` naming the first bad setting; return ``self``."""
        def need(ok, text):
            if not ok:
                raise ValueError(f"TrainConfig: {text}")

        need(_is_int(self.epochs) and self.epochs >= 1, f"epochs must be an integer >= 1, got {self.epochs!r}")
        need(_is_int(self.batch_size) and self.batch_size >= 1,
             f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        need(self.optimizer in OPTIMIZERS,
             f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        need(self.lr is None or (_is_num(self.lr) and self.lr > 0 and math.isfinite(self.lr)),
             f"lr must be a number > 0 (or None for the optimizer's default), got {self.lr!r}")
        need(_is_num(self.momentum) and self.momentum >= 0, f"momentum must be >= 0, got {self.momentum!r}")
        need(not self.nesterov or self.optimizer != "sgd" or self.momentum > 0,
             "nesterov needs momentum > 0")
        need(_is_num(self.weight_decay) and self.weight_decay >= 0,
             f"weight_decay must be >= 0, got {self.weight_decay!r}")
        need(self.schedule in SCHEDULE_NAMES,
             f"schedule must be one of {', '.join(SCHEDULE_NAMES)}, got {self.schedule!r}")
        need(_is_num(self.warmup_epochs) and 0 <= self.warmup_epochs < self.epochs,
             f"warmup_epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs!r}")
        need(_is_num(self.min_lr) and 0 <= self.min_lr <= self.learning_rate,
             f"min_lr must be in [0, lr={self.learning_rate}], got {self.min_lr!r}")
        need(_is_num(self.max_shift) and 0 <= self.max_shift < 0.5,
             f"max_shift is a fraction of the side in [0, 0.5), got {self.max_shift!r}")
        need(_is_num(self.crop_scale) and 0 < self.crop_scale <= 1,
             f"crop_scale must be in (0, 1], got {self.crop_scale!r}")
        need(_is_num(self.brightness) and 0 <= self.brightness <= 1,
             f"brightness must be in [0, 1], got {self.brightness!r}")
        need(_is_num(self.contrast) and 0 <= self.contrast < 1,
             f"contrast must be in [0, 1), got {self.contrast!r}")
        need(_is_int(self.seed) and self.seed >= 0, f"seed must be an integer >= 0, got {self.seed!r}")
        need(_is_num(self.log_every) and self.log_every >= 0, f"log_every must be >= 0 seconds, got {self.log_every!r}")
        need(_is_int(self.eval_batch_size) and self.eval_batch_size >= 1,
             f"eval_batch_size must be an integer >= 1, got {self.eval_batch_size!r}")
        return self

    @property
    def learning_rate(self):
        """The peak learning rate actually used: ``lr``, or the optimizer's default."""
        return float(self.lr) if self.lr is not None else DEFAULT_LR.get(self.optimizer, 0.05)

    # -------------------------------------------------------------------- JSON
    def to_dict(self):
        """A plain dict of every field (JSON-able)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """Build from ``to_dict`` output; missing keys take defaults, unknown keys raise."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"TrainConfig: unknown setting(s) {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(sorted(names))}")
        return cls(**d)

    def replace(self, **changes):
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def differences(self, other, ignore=RESUME_FREE_FIELDS):
        """``[(field, self value, other value)]`` for fields that differ, except ``ignore``."""
        a, b = self.to_dict(), other.to_dict()
        return [(k, a[k], b[k]) for k in a if k not in ignore and a[k] != b[k]]


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)
