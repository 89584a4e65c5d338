"""Evaluation: closed-set identification, LFW verification, ROC, figures.

- :mod:`.identification`: top-k accuracy, CMC curve, gallery/probe identification
  (cosine to identity templates, for cross-resolution and classifier-free models);
- :mod:`.verification`: cosine scores, best threshold, the LFW 10-fold protocol
  (each fold's threshold chosen on the other folds; ``n_folds=K`` for quick runs),
  and :func:`verify_pairs`, the pairs-file pipeline with optional cross-resolution
  (HR gallery face against LR probe face);
- :mod:`.disjoint`: identity-disjoint pairs for models trained on an identification
  split (LFW View 2 pairs of people outside it, or fresh synthetic identities);
- :mod:`.pair_roc`: those pairs scored with ROC, each side through its own model;
- :mod:`.roc`: exact ROC curve, AUC, TAR at a fixed FAR;
- :mod:`.extract`: batched embeddings / logits in eval mode, L2 normalisation;
- :mod:`.plots`: CMC, ROC, training-curve and bar-chart PNGs (imported on demand:
  ``from tinyface.eval import plots``, so that matplotlib loads only when needed).

Convention: higher score = more alike; a pair is accepted when ``score >= threshold``.
"""
from .extract import (embed_images, eval_mode, indexed_fn, l2_normalize, logits_of,
                      predict_batches)
from .identification import (class_templates, cmc_curve, evaluate_identification,
                             gallery_identification, topk_accuracy, true_ranks)
from .roc import auc, roc_curve, tar_at_far, threshold_at_far
from .disjoint import DisjointPairs, disjoint_pairs, synthetic_pairs, verify_disjoint, verify_embeddings
from .pair_roc import pair_roc
from .verification import (accuracy_at, best_threshold, cosine_scores, resolve_folds,
                           ten_fold_accuracy, verify_pairs)

__all__ = ["predict_batches", "embed_images", "logits_of", "l2_normalize", "eval_mode",
           "indexed_fn", "topk_accuracy", "cmc_curve", "true_ranks", "class_templates",
           "gallery_identification", "evaluate_identification", "roc_curve", "auc", "tar_at_far", "threshold_at_far",
           "cosine_scores", "best_threshold", "accuracy_at", "ten_fold_accuracy",
           "resolve_folds", "verify_pairs", "DisjointPairs", "disjoint_pairs", "synthetic_pairs",
           "verify_disjoint", "verify_embeddings", "pair_roc"]
