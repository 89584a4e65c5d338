"""The settings of distillation fine-tuning (``DistillConfig``): each with its one default,
each checked once, when the config is made.

    distill = DistillConfig("selective", mu=3.0, ratio=0.5)   # ValueError on a bad setting
    res = finetune(student, split, bank, None, distill, finetune_config(epochs=30))

The loss and the meaning of every setting are in ``tinyface.distill.finetune``'s
docstring. ``DistillStep`` (the training step) takes the loss settings one by one and
checks them with the same functions as ``DistillConfig``.

The default ``mu = 3.0`` is the ablation's: with L2-normalised features and the
least-squares adapter, on LFW-158 (seed 0, the ablation's scratch recipe) the regression
variants gave full 81.0 / selective 80.9 % top-1 at mu 1, 81.0 / 82.1 at mu 3 and
80.4 / 79.9 at mu 10. Those figures are of the split's test faces, measured before the
settings were screened on validation faces, and mu was not screened again since (the
pretrained teacher's validation screen chose ``--mu 10`` for its own regime:
docs/ablation_dlib.md).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from tinyface.distill.methods import (METHOD_VARIANTS, PER_FACE_METHODS, SELECTIVE_PREFIX,
                                      SELECTIVE_METHOD_VARIANTS, is_selective_method,
                                      variant_method)
from tinyface.select.selector import check_ratio

__all__ = ["DistillConfig", "VARIANTS", "BASE_VARIANTS", "METHOD_VARIANTS",
           "SELECTIVE_METHOD_VARIANTS", "REGRESSION_VARIANTS", "SELECTION_VARIANTS",
           "FEATURE_NORMS", "needs_selection",
           "MU_SCHEDULES", "ADAPTER_INITS", "check_variant", "check_ratio",
           "check_feature_norm", "check_mu_schedule", "check_weight", "check_temperature"]

# the ablation's five variants (its default), then the other methods (``distill.methods``),
# then the per-face methods on the selected faces only (``selective-m``)
BASE_VARIANTS = ("none", "kd", "full", "random", "selective")
VARIANTS = BASE_VARIANTS + METHOD_VARIANTS + SELECTIVE_METHOD_VARIANTS
REGRESSION_VARIANTS = ("full", "random", "selective")
# the variants that use the selection (``random``: its size)
SELECTION_VARIANTS = ("random", "selective") + SELECTIVE_METHOD_VARIANTS
FEATURE_NORMS = ("l2", "none")
MU_SCHEDULES = ("constant", "linear", "cosine")
ADAPTER_INITS = ("lstsq", "random")


# ------------------------------------------------------------------ checking
def _one_of(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_variant(variant):
    """Return ``variant``, or raise ``ValueError`` unless it is one of ``VARIANTS``."""
    if isinstance(variant, str) and variant.startswith(SELECTIVE_PREFIX) \
            and variant not in VARIANTS:
        raise ValueError(f"unknown distillation variant {variant!r}: selective-M is defined "
                         f"for the per-face methods only ({', '.join(PER_FACE_METHODS)})")
    if variant not in VARIANTS:
        raise ValueError(f"unknown distillation variant {variant!r}; choose one of "
                         f"{', '.join(VARIANTS)}")
    return variant


def needs_selection(variant):
    """Whether ``variant`` uses the selection (``SELECTION_VARIANTS``)."""
    return variant in SELECTION_VARIANTS


def check_feature_norm(feature_norm):
    return _one_of("feature_norm", feature_norm, FEATURE_NORMS)


def check_mu_schedule(mu_schedule):
    return _one_of("mu_schedule", mu_schedule, MU_SCHEDULES)


def check_weight(name, value):
    """Return a loss weight (``mu``, ``kd_weight``) as a float; ``ValueError`` unless it
    is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def check_temperature(T):
    """Return the KD temperature ``T`` as a float; ``ValueError`` unless it is > 0."""
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not math.isfinite(T) or T <= 0:
        raise ValueError(f"the temperature T must be a number > 0, got {T!r}")
    return float(T)


# -------------------------------------------------------------------- config
@dataclass
class DistillConfig:
    """The settings of one distillation fine-tuning run (JSON-able, ``to_dict``).

    variant: one of ``VARIANTS``; mu: weight of the feature regression (regression
    variants); T, kd_weight: temperature and weight of the Hinton term (``kd``);
    ratio: fraction of faces selected (``SELECTION_VARIANTS``), in (0, 1];
    feature_norm: ``l2`` | ``none``; adapter_init: ``lstsq`` | ``random``;
    mu_schedule: ``constant`` | ``linear`` | ``cosine``; per_identity: select (and draw
    the random subset) inside each identity; method_weight: the weight of a method
    variant's term (``distill.methods``: sp, rkd, pkt, fsim, crd, dkd, at, and
    ``selective-m``, which takes m's), None for the method's default
    (``Method.default_weight``; see ``weight``).
    """
    variant: str = "selective"
    mu: float = 3.0
    T: float = 4.0
    kd_weight: float = 1.0
    ratio: float = 0.5
    feature_norm: str = "l2"
    adapter_init: str = "lstsq"
    mu_schedule: str = "constant"
    per_identity: bool = True
    method_weight: float | None = None

    def __post_init__(self):
        check_variant(self.variant)
        self.mu = check_weight("mu", self.mu)
        self.T = check_temperature(self.T)
        self.kd_weight = check_weight("kd_weight", self.kd_weight)
        self.ratio = check_ratio(self.ratio)
        check_feature_norm(self.feature_norm)
        _one_of("adapter_init", self.adapter_init, ADAPTER_INITS)
        check_mu_schedule(self.mu_schedule)
        if isinstance(self.per_identity, str) or self.per_identity not in (True, False):
            raise ValueError(f"per_identity must be True or False, got {self.per_identity!r}")
        self.per_identity = bool(self.per_identity)
        if self.method_weight is not None:
            self.method_weight = check_weight("method_weight", self.method_weight)

    @property
    def method(self):
        """The variant's ``Method`` (``distill.methods``; m for ``selective-m``), or None
        for the base variants."""
        return variant_method(self.variant)

    @property
    def selective_method(self):
        """Whether the method's term is taken on the selected faces only (``selective-m``)."""
        return is_selective_method(self.variant)

    @property
    def needs_selection(self):
        """Whether the variant uses the selection (``SELECTION_VARIANTS``)."""
        return needs_selection(self.variant)

    @property
    def weight(self):
        """The method term's weight: ``method_weight``, or the method's default (None
        for the base variants)."""
        if self.method is None:
            return None
        return self.method.default_weight if self.method_weight is None else self.method_weight

    @property
    def regress(self):
        """Whether the variant regresses the teacher's features."""
        return self.variant in REGRESSION_VARIANTS

    def replace(self, **changes):
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)
