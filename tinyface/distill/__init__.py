"""Selective knowledge distillation, part 2: fine-tune the student on the teacher's features.

    from tinyface.distill import extract_bank, finetune, finetune_config
    bank = extract_bank(teacher, split.hr_train, cache_path="runs/x/bank.npz")   # (N, 256)
    sel = tinyface.select.select(bank.embeddings, split.y_train, bank.logits, ratio=0.5,
                                 per_identity=True)
    res = finetune(student, split, bank, "selective", finetune_config(epochs=30, seed=0),
                   selection=sel)
    res["model"]        # the deployable student (the adapter is dropped), res["metrics"]

The student (trained on LR faces alone: the two streams' initialisation) is fine-tuned
with ``L = CE + mu * mean over selected faces of ||n(A phi_s(x_LR)) - n(phi_t(x_HR))||^2``,
A a training-only ``Linear(64, 256)`` adapter and n the L2 normalisation (see
``tinyface.distill.finetune`` for the scale argument, the defaults and the variants
``none``, ``kd``, ``full``, ``random``, ``selective``).

Modules: ``bank`` (the teacher feature bank, cached ``.npz``), ``model``
(``DistillStudent``: student + adapter as one trainable, checkpointable module),
``finetune`` (weights per variant, the training step, ``finetune``), ``verification``
(identity-disjoint pairs for models trained on an identification split), ``settings``
(``AblationSettings``, the ablation's recipe), ``trained_teacher`` (our teacher, trained
on the split), ``frozen_teacher`` (a pretrained one, ``--teacher dlib-resnet``, frozen,
with a ``softmax_head`` fitted on the target identities and out-of-fold logits),
``ablation`` (the whole experiment, ``python -m tinyface ablation``), ``report`` and
``figures`` (its table and plots).
"""
from tinyface.distill.bank import FeatureBank, bank_key, extract_bank
from tinyface.distill.finetune import (DEFAULT_FINETUNE_LR, DEFAULT_KD_WEIGHT, DEFAULT_MU,
                                       DEFAULT_T, FEATURE_NORMS, MU_SCHEDULES,
                                       REGRESSION_VARIANTS, VARIANTS, DistillStep, check_ratio,
                                       check_variant, copy_model, distill_step_fn, finetune,
                                       finetune_config, init_adapter_lstsq, make_weights)
from tinyface.distill.model import DistillStudent

__all__ = ["FeatureBank", "extract_bank", "bank_key", "DistillStudent", "VARIANTS",
           "REGRESSION_VARIANTS", "DEFAULT_MU", "DEFAULT_T", "DEFAULT_KD_WEIGHT",
           "DEFAULT_FINETUNE_LR", "FEATURE_NORMS", "MU_SCHEDULES", "check_ratio",
           "check_variant", "make_weights", "distill_step_fn", "DistillStep", "finetune",
           "finetune_config", "init_adapter_lstsq", "copy_model"]
