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
from tinyface.distill.config import (ADAPTER_INITS, BASE_VARIANTS, FEATURE_NORMS,
                                     METHOD_VARIANTS, MU_SCHEDULES, SELECTION_VARIANTS,
                                     SELECTIVE_METHOD_VARIANTS, VARIANTS, DistillConfig,
                                     check_ratio, check_variant, check_weight, needs_selection)
from tinyface.distill.methods import METHODS, SELECTIVE_PREFIX, variant_method
from tinyface.distill.finetune import DEFAULT_FINETUNE_LR
from tinyface.distill.softmax_head import DEFAULT_PENALTIES
from tinyface.distill.teacher_tuning import TUNE_INPUTS, TailTuning
from tinyface.option import option
from tinyface.train.config import STREAM_MAX_SHIFT, TrainConfig

__all__ = ["AblationSettings", "run_signature", "option", "DEFAULT_RATIOS", "INFORMATIVENESS",
           "LABEL_FREE_VARIANTS", "LABEL_FREE_POOLS", "STARTS", "SELECTION_VARIANTS",
           "needs_selection"]

DEFAULT_RATIOS = (0.25, 0.5, 0.75, 1.0)
LABEL_FREE_VARIANTS = ("full", "random", "selective")
LABEL_FREE_POOLS = ("disjoint", "all")
# where the selector's node scores u come from: the teacher alone (confidence, margin,
# centre closeness), or the gap between the teacher and each seed's scratch student
INFORMATIVENESS = ("teacher", "student-gap")
STARTS = ("scratch", "random")


def variant_item(name):
    """One ``--variants`` item: ``name``, or the one-line error of an unknown
    ``selective-M`` (M not a per-face method); other unknown names are the option's own."""
    if name.startswith(SELECTIVE_PREFIX):
        check_variant(name)
    return name


def method_weight_item(item):
    """One method term's weight: ``"sp=1000"`` or ``("sp", 1000)`` -> ``("sp", 1000.0)``
    (``ValueError`` unless the name is a method variant and the weight a number >= 0)."""
    if isinstance(item, str):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r} is not METHOD=WEIGHT")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"{item!r}: the weight {value.strip()!r} is not a number") from None
    else:
        name, weight = item
    name = str(name).strip()
    if name in SELECTIVE_METHOD_VARIANTS:             # one weight per method
        raise ValueError(f"{name!r} takes the weight of {variant_method(name).name}: give "
                         f"{variant_method(name).name}=WEIGHT")
    if name not in METHODS:
        raise ValueError(f"{name!r} is not a method variant; choose from {', '.join(METHODS)}")
    return name, check_weight(f"the weight of {name}", weight)


@dataclass
class AblationSettings:
    """Every setting of an ablation run (JSON-able; written to results.json)."""
    seeds: int = option(3, "students per row (seeds SEED, SEED+1, ...)")
    first_seed: int = 0
    scratch_epochs: int = option(30, "epochs from scratch (LR only)")
    finetune_epochs: int = option(30, "epochs of fine-tuning")
    teacher_epochs: int = option(40, "epochs of a teacher trained here")
    teacher_arch: str = option("teacher", "architecture of a teacher trained here",
                               choices=("teacher", "teacher-lite"))
    batch_size: int = option(64, "faces per step")
    # from-scratch recipe: stronger weight decay and a lower rate than ``train-student``'s
    # defaults (0.05, 5e-4); the student reaches 99 % training accuracy either way, and on
    # LFW-158 (3 seeds, 30 epochs) this lifted test top-1 from 75.5 to 77.6 %
    scratch_lr: float = option(0.03, "SGD learning rate from scratch (train-student's default "
                                     "is 0.05)")
    scratch_weight_decay: float = option(
        3e-3, "weight decay from scratch: stronger than train-student's 5e-4, which on "
              "LFW-158 lifts the scratch student by about 2 points of top-1")
    finetune_lr: float = option(DEFAULT_FINETUNE_LR, "SGD learning rate of fine-tuning")
    finetune_weight_decay: float = option(3e-3, "weight decay of fine-tuning")
    augment: bool = option(True, "no flips, shifts or jitter", flag="--no-augment")
    # students' random shifts, as a fraction of the side: none by default, because at
    # 16 px a shift of a fraction of a pixel is a bilinear blur (measured on LFW-158,
    # seed 0, 30 epochs: 72.0% top-1 with shifts of up to 1 px, 75.8% without)
    max_shift: float = option(STREAM_MAX_SHIFT["student"],
                              "students' random shifts as a fraction of the side (0.0625: up "
                              "to 1 px at 16 px); none by default, because at 16 px a "
                              "sub-pixel shift blurs the face")
    # the default: the five variants of the selective-distillation ablation; the other
    # methods (distill.methods) and their selective-m versions run when named
    variants: tuple = option(BASE_VARIANTS, "comma-separated variants to run; also "
                             f"{', '.join(METHOD_VARIANTS)}: other distillation methods at "
                             "their default weights; and "
                             f"{', '.join(SELECTIVE_METHOD_VARIANTS)}: a per-face method's "
                             "term on the selected faces only (the selection of selective, "
                             "the method's weight)", items=VARIANTS, item=variant_item,
                             item_name="variant")
    # the distillation settings' defaults are DistillConfig's (mu 3: see distill.config)
    mu: float = option(DistillConfig.mu, "weight of the feature regression")
    # a method variant's term weight (DistillConfig.method_weight); unnamed: its default
    method_weights: tuple = option((), "method variants' term weights, e.g. sp=1000,crd=0.4 "
                                   "(unnamed: each method's default, distill.methods; "
                                   "fsim=W also weighs selective-fsim)",
                                   item=method_weight_item, metavar="M=W,...")
    T: float = option(DistillConfig.T, "KD temperature")
    kd_weight: float = option(DistillConfig.kd_weight, "weight of the KD term")
    ratio: float = option(DistillConfig.ratio, "selection ratio, in (0, 1]")
    ratios: tuple = option(DEFAULT_RATIOS, "ratios of the accuracy-vs-ratio curve (first seed; "
                           "'' for none)", item=float, check=check_ratio)
    alpha: float = option(1.0, "selector: weight of redundancy")
    k: int = option(10, "selector: neighbours per face in the graph")
    per_identity: bool = option(DistillConfig.per_identity, "select RATIO of all faces "
                                "(default: RATIO of each identity's faces)",
                                flag="--global-selection")
    feature_norm: str = option(DistillConfig.feature_norm, "L2-normalise the adapted student "
                               "and teacher features before regressing", choices=FEATURE_NORMS)
    teacher_layer: str = option(                # regression targets: see distill.bank
        "embedding", "regression targets: the teacher's embedding, or the pooled output of "
                     "its last convolution stage (the embedding layer's input)",
        choices=BANK_LAYERS)
    adapter_init: str = option(DistillConfig.adapter_init, "adapter start: least squares on "
                               "the student's embeddings, or random", choices=ADAPTER_INITS)
    mu_schedule: str = option(DistillConfig.mu_schedule, "mu over the fine-tuning steps "
                              "(linear/cosine: decay to 0)", choices=MU_SCHEDULES)
    informativeness: str = option(              # or "student-gap": see select.student_gap
        "teacher", "selector's node scores: the teacher's confidence, margin and centre "
                   "closeness; or student-gap, p_teacher(y) * (1 - p_student(y)) with each "
                   "seed's scratch student (a selection per seed)", choices=INFORMATIVENESS)
    verification: dict = field(default_factory=dict)   # synthetic pairs options
    # a pretrained teacher (``--teacher dlib-resnet``; see distill.frozen_teacher): its HR
    # faces are decoded from the image files at this side (LFW3D's native 90 px; 0: the
    # split's --hr-size faces), then resized to the net's input; its softmax head on the
    # target identities takes the penalty of ``head_penalties`` with the lowest
    # cross-entropy on ``head_val_fraction`` of each identity's training faces, and
    # scores the training faces out of fold over ``head_folds`` folds
    pretrained_hr_size: int = option(
        90, "with --teacher dlib-resnet: side at which its HR faces are decoded from the "
            "image files (90: LFW3D's own size), then resized to 150; 0: the --hr-size faces")
    head_penalties: tuple = option(
        DEFAULT_PENALTIES, "with --teacher dlib-resnet: L2 penalties tried for its softmax "
        "head, the one of lowest cross-entropy on a validation split of the training faces "
        "is kept (default: tinyface.distill.softmax_head.DEFAULT_PENALTIES, decades around "
        "what LFW-158 takes)", item=float, metavar="P,P,...", cli_default=None)
    head_folds: int = 5
    head_val_fraction: float = 0.2
    # label-free regression (``distill.label_free``): these regression variants are run a
    # second time with the unlabelled pool of LFW faces outside the labelled and test
    # faces; ``label_free_pool``: "disjoint" also leaves out every face of the people in
    # the verification pairs (so that row stays honest), "all" keeps them; it regresses
    # the teacher's embedding, so a run with teacher_layer "pooled" leaves it out
    label_free: tuple = option(
        ("full",), "regression variants run a second time with label-free regression on "
                   "the unlabelled faces of the dataset (outside the labelled and test "
                   "faces); '' for none", metavar="V,V,...")
    label_free_pool: str = option(
        "disjoint", "disjoint: also leave out every face of the people in the verification "
                    "pairs, so that row stays honest; all: keep them", choices=LABEL_FREE_POOLS)
    # label-free rows' fine-tuning epochs (0: finetune_epochs)
    label_free_epochs: int = option(0, "fine-tuning epochs of the label-free rows (0: "
                                       "--finetune-epochs)")
    # distil from the start: the variants start from a fresh student and train
    # scratch_epochs + finetune_epochs with the scratch recipe ("random"), instead of
    # fine-tuning the scratch student ("scratch")
    start: str = option("scratch", "scratch: fine-tune each seed's scratch student; random: "
                                   "distil from the start, a fresh student trained scratch + "
                                   "fine-tuning epochs with the scratch recipe", choices=STARTS)
    # a pretrained teacher's last residual blocks tuned on the target training faces
    # before anything else (``distill.teacher_tuning``; 0: frozen): its inputs ("hr", or
    # "hr+lr" with their LR versions upsampled), learning rate and epochs
    teacher_tune_blocks: int = option(0, "with --teacher dlib-resnet: tune its last B residual "
                                         "blocks and its embedding layer on the training faces "
                                         "first (0: frozen)", metavar="B")
    teacher_tune_inputs: str = option(
        TailTuning.inputs, "with --teacher-tune-blocks: the training faces at HR, or also at "
                           "LR, upsampled (a teacher tuned towards LR inputs)",
        choices=TUNE_INPUTS)
    teacher_tune_rate: float = option(TailTuning.lr, "with --teacher-tune-blocks: SGD learning "
                                                     "rate of the tuning")
    teacher_tune_epochs: int = option(TailTuning.epochs, "with --teacher-tune-blocks: epochs of "
                                                         "the tuning")

    def __post_init__(self):
        self.variants = tuple(self.variants)
        pairs = (self.method_weights.items() if isinstance(self.method_weights, dict)
                 else self.method_weights)
        self.method_weights = tuple(method_weight_item(p) for p in pairs)
        names = [n for n, _ in self.method_weights]
        if len(set(names)) < len(names):
            raise ValueError(f"a method's weight is given twice: {', '.join(names)}")
        self.label_free = tuple(self.label_free)
        self.ratios = tuple(float(r) for r in self.ratios)
        self.head_penalties = tuple(float(p) for p in self.head_penalties)
        self.validate()

    def validate(self):
        if not self.variants:
            raise ValueError("no variants to run")
        # the distillation settings are DistillConfig's: it validates them (each variant)
        for v in self.variants:
            self.distill_config(v, self.ratio)
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
        if not 0.0 <= float(self.max_shift) < 0.5:
            raise ValueError(f"max_shift must be in [0, 0.5), got {self.max_shift}")
        if self.informativeness not in INFORMATIVENESS:
            raise ValueError(f"informativeness must be one of {INFORMATIVENESS}")
        for name, low in (("scratch_lr", None), ("finetune_lr", None),
                          ("scratch_weight_decay", 0.0), ("finetune_weight_decay", 0.0)):
            v = float(getattr(self, name))
            if not (v > 0 if low is None else v >= low) or not math.isfinite(v):
                what = "> 0" if low is None else ">= 0"
                raise ValueError(f"the {name.replace('_', ' ')} must be a finite number "
                                 f"{what}, got {getattr(self, name)}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
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

    def train_config(self, seed, epochs, lr, weight_decay):
        """The ``TrainConfig`` of one student run (from scratch or fine-tuning): SGD with
        a cosine schedule at ``lr``, these settings' batch, augmentation and shifts."""
        return TrainConfig(epochs=epochs, batch_size=self.batch_size, optimizer="sgd", lr=lr,
                           weight_decay=weight_decay, schedule="cosine", seed=seed,
                           augment=self.augment, max_shift=self.max_shift)

    def distill_config(self, variant, ratio):
        """The ``DistillConfig`` of one fine-tuning run: ``variant`` at ``ratio``, the
        other distillation settings these settings' own."""
        return DistillConfig(variant, mu=self.mu, T=self.T, kd_weight=self.kd_weight,
                             ratio=ratio, feature_norm=self.feature_norm,
                             adapter_init=self.adapter_init, mu_schedule=self.mu_schedule,
                             per_identity=self.per_identity,
                             method_weight=self.method_weight(variant))

    def method_weight(self, variant):
        """The weight named for ``variant``'s method (m's for ``selective-m``: one weight
        per method), or None (the method's default; a base variant)."""
        method = variant_method(variant)
        return None if method is None else dict(self.method_weights).get(method.name)

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
        d["method_weights"] = dict(self.method_weights)
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
    if needs_selection(variant):          # random, selective, selective-m
        sig.update(ratio=ratio, k=settings.k, alpha=settings.alpha,
                   per_identity=settings.per_identity)
    method = variant_method(variant)      # m for m and selective-m
    weight = settings.method_weight(variant)
    if weight is not None:                # unnamed: the default, and the old signature
        sig.update(method_weight=weight)
    if method is not None and method.reads == "logits":
        sig.update(T=settings.T)
    if method is not None and method.reads == "adapter":
        sig.update(feature_norm=settings.feature_norm, adapter_init=settings.adapter_init)
    if variant in ("selective",) + SELECTIVE_METHOD_VARIANTS \
            and settings.informativeness != "teacher":
        sig.update(informativeness=settings.informativeness)
    label_free = pool_signature(pool, variant)
    if label_free:
        sig.update(label_free=label_free)
        if settings.label_free_epochs:
            sig.update(label_free_epochs=settings.label_free_epochs)
    return sig
