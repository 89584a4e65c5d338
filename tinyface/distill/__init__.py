"""Selective knowledge distillation, part 2: fine-tune the student on the teacher's features.

    from tinyface.distill import DistillConfig, extract_bank, finetune, finetune_config
    bank = extract_bank(teacher, split.hr_train, cache_path="runs/x/bank.npz")   # (N, 256)
    sel = tinyface.select.select(bank.embeddings, split.y_train, bank.logits, ratio=0.5,
                                 per_identity=True)
    res = finetune(student, split, bank, None, DistillConfig("selective", ratio=0.5),
                   finetune_config(epochs=30, seed=0), selection=sel)
    res["model"]        # the deployable student (the adapter is dropped), res["metrics"]

The student (trained on LR faces alone: the two streams' initialisation) is fine-tuned
with ``L = CE + mu * mean over selected faces of ||n(A phi_s(x_LR)) - n(phi_t(x_HR))||^2``,
A a training-only ``Linear(64, 256)`` adapter and n the L2 normalisation (see
``tinyface.distill.finetune`` for the scale argument, the defaults and the variants
``none``, ``kd``, ``full``, ``random``, ``selective``; and other methods as variants,
``sp``, ``rkd``, ``pkt``, ``fsim``, ``crd``, ``dkd``, ``at``, with ``selective-m`` for
the per-face ones, taken on the selected faces only: ``methods``; their GPU twins:
``methods_cuda``).

Modules: ``config`` (``DistillConfig``: every setting of a run, its default and its
check), ``methods`` (the other distillation methods, one entry each), ``bank`` (the
teacher feature bank, cached ``.npz``), ``model``
(``DistillStudent``: student + adapter as one trainable, checkpointable module),
``weights`` (the per-face weights of each variant), ``step`` (``DistillStep``, the
training step), ``finetune`` (``finetune``), ``label_free`` (unlabelled faces regressed
on the teacher's targets), ``cross_resolution``, ``frozen_teacher`` (a pretrained
teacher, ``--teacher dlib-resnet``, frozen, with a ``softmax_head`` fitted on the target
identities and out-of-fold logits) and ``teacher_tuning`` (its last blocks tuned on the
target faces). The experiments built on them (the ablation, its settings, report and
figures) are in ``tinyface.experiments``.
"""
from tinyface.distill.bank import FeatureBank, bank_key, extract_bank
from tinyface.distill.config import (ADAPTER_INITS, BASE_VARIANTS, FEATURE_NORMS,
                                     MU_SCHEDULES, REGRESSION_VARIANTS, VARIANTS, DistillConfig,
                                     check_ratio, check_variant)
from tinyface.distill.methods import (METHOD_VARIANTS, METHODS, SELECTIVE_METHOD_VARIANTS,
                                      Method)
from tinyface.distill.finetune import (DEFAULT_FINETUNE_LR, copy_model, finetune,
                                       finetune_config, init_adapter_lstsq)
from tinyface.distill.model import DistillStudent
from tinyface.distill.frozen_teacher import FrozenTeacher, source_faces
from tinyface.distill.cross_resolution import (cross_resolution_student, cross_scores,
                                               verify_cross_resolution)
from tinyface.distill.step import DistillStep
from tinyface.distill.weights import make_weights

__all__ = ["FeatureBank", "extract_bank", "bank_key", "DistillStudent", "DistillConfig",
           "VARIANTS", "REGRESSION_VARIANTS", "DEFAULT_FINETUNE_LR", "FEATURE_NORMS",
           "MU_SCHEDULES", "ADAPTER_INITS", "check_ratio", "check_variant", "make_weights",
           "DistillStep", "finetune", "finetune_config", "init_adapter_lstsq", "copy_model"]
__all__ += ["BASE_VARIANTS", "METHOD_VARIANTS", "SELECTIVE_METHOD_VARIANTS", "METHODS", "Method"]
__all__ += ["FrozenTeacher", "source_faces", "cross_resolution_student", "cross_scores",
            "verify_cross_resolution"]
