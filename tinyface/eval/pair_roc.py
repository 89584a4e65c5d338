"""Verification on identity-disjoint pairs, with ROC: same resolution or cross-resolution.

``tinyface.eval.disjoint`` builds the pairs (``disjoint_pairs``: LFW View 2
pairs of people outside the split, or fresh synthetic identities) and scores one model
on one kind of face (``verify_disjoint``). Here each side of a pair may go through its
own model and faces, and the ROC curve comes back with the accuracy:

    from tinyface.eval.pair_roc import pair_roc
    hr, lr_up = pairs.faces(), pairs.faces(16, upsampled=True)
    same_res = pair_roc(pairs, (teacher, hr))                   # HR vs HR
    cross = pair_roc(pairs, (teacher, hr), (teacher, lr_up))    # HR gallery vs LR probe

A side may also be the embeddings of every face, (M, D), computed once and shared
by several comparisons: ``e_hr = embed_images(teacher, hr)``; ``pair_roc(pairs, e_hr)``.

Side ``a`` (the first face of each pair) is the gallery face, side ``b`` the probe.
Scores are cosine similarities of the embeddings; the accuracy is the 10-fold protocol
(``tinyface.eval.ten_fold_accuracy``: each fold's threshold chosen on the other folds).
"""
from __future__ import annotations

import numpy as np

from .extract import embed_images
from .roc import auc, roc_curve, tar_at_far
from .verification import cosine_scores, ten_fold_accuracy


def _side_embeddings(side, rows, name, batch_size):
    """Embeddings (n, D) at ``rows`` (n,) of a side: ``(model, faces (M, 3, s, s) uint8)``
    or an (M, D) array of embeddings."""
    if isinstance(side, np.ndarray):
        if side.ndim != 2 or (len(rows) and rows.max() >= len(side)):
            raise ValueError(f"side {name}: embeddings must be (M, D) covering every pair "
                             f"row, got shape {side.shape} for rows up to {rows.max()}")
        return side[rows]                                           # (n, D)
    model, faces = side
    faces = np.asarray(faces)
    if faces.ndim != 4 or (len(rows) and rows.max() >= len(faces)):
        raise ValueError(f"side {name}: faces must be (M, 3, s, s) covering every pair row, "
                         f"got shape {faces.shape} for rows up to {rows.max()}")
    used, inv = np.unique(rows, return_inverse=True)                # embed each face once
    emb = embed_images(model, faces[used], batch_size)              # (u, D)
    return emb[inv]                                                 # (n, D)


def pair_roc(pairs, side_a, side_b=None, far_target=1e-2, batch_size=256):
    """Verification of ``pairs`` (a ``DisjointPairs``) by cosine similarity.

    side_a, side_b: ``(model, faces)`` with faces (M, 3, s, s) uint8 indexed like
    ``pairs.images`` (``pairs.faces(...)`` gives HR, LR and LR-upsampled copies), or
    (M, D) embeddings of those faces; side_b None: side_a for both faces. Both sides
    must give the same embedding size.

    Returns a dict: ``accuracy``, ``std`` (over folds), ``per_fold``, ``thresholds``
    (from ``ten_fold_accuracy``); ``far``, ``tar`` (M,) float arrays of the exact ROC;
    ``auc``; ``tar_at_far`` at ``far_target``; ``scores`` (P,); ``n_pairs``.
    """
    side_b = side_a if side_b is None else side_b
    ea = _side_embeddings(side_a, pairs.a, "a", batch_size)         # (P, D)
    eb = _side_embeddings(side_b, pairs.b, "b", batch_size)         # (P, D)
    if ea.shape[1] != eb.shape[1]:
        raise ValueError(f"side a embeds to D={ea.shape[1]}, side b to D={eb.shape[1]}: "
                         f"cosine scores need one embedding space")
    scores = cosine_scores(ea, eb)                                  # (P,)
    folds = ten_fold_accuracy(scores, pairs.same, pairs.fold_ids)
    far, tar, _ = roc_curve(scores, pairs.same)
    return {"accuracy": folds["mean"], "std": folds["std"], "per_fold": folds["per_fold"],
            "thresholds": folds["thresholds"], "far": far, "tar": tar, "auc": auc(far, tar),
            "tar_at_far": tar_at_far(far, tar, far_target), "far_target": far_target,
            "scores": scores, "n_pairs": int(len(scores))}
