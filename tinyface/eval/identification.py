"""Closed-set identification: top-k accuracy and the CMC curve.

Every probe belongs to one of K known identities; a model gives each probe a score per
identity (classifier logits, or cosine similarities to gallery templates). The *rank*
of a probe is the position of its true identity when the scores are sorted from high
to low (1 = best).

Ties count against the model (strict rank): the rank is 1 + the number of *other*
identities scoring ``>=`` the true one. A probe is top-k correct when rank <= k, i.e.
its true score is strictly above all but at most k-1 of the others. So a constant
scorer gets top-1 = 0 (not 100%, as ``argmax`` picking the first tied index could give
for label 0), and top-k = k / K only through genuine order.

Tiny example, checkable by hand (3 probes, 3 identities)::

    scores = [[0.9, 0.1, 0.0],     # label 0: rank 1
              [0.5, 0.2, 0.3],     # label 1: 0.5 and 0.3 beat 0.2 -> rank 3
              [0.4, 0.4, 0.1]]     # label 1: tied with 0.4 -> rank 2
    topk_accuracy(scores, [0, 1, 1], ks=(1, 2))  ->  {1: 1/3, 2: 2/3}
"""
from __future__ import annotations

import numpy as np

from tinyface.data.split import stream_images

from .extract import l2_normalize, logits_of


def _check_scores_labels(scores, labels):
    """Validate (N, K) scores and (N,) integer labels in 0..K-1."""
    s = np.asarray(scores)
    y = np.asarray(labels)
    if s.ndim != 2:
        raise ValueError(f"scores must be (N, K), got shape {s.shape}")
    if y.ndim != 1:
        raise ValueError(f"labels must be (N,), got shape {y.shape}")
    if len(s) != len(y):
        raise ValueError(f"scores has {len(s)} rows but labels has {len(y)} entries")
    if len(s) == 0 or s.shape[1] == 0:
        raise ValueError(f"empty scores {s.shape}: nothing to evaluate")
    if s.dtype.kind not in "fiu":
        raise ValueError(f"scores must be numeric, got dtype {s.dtype}")
    if s.dtype.kind == "f" and not np.isfinite(s).all():
        raise ValueError(f"scores hold {int((~np.isfinite(s)).sum())} non-finite value(s)")
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    k = s.shape[1]
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"labels out of range: must be in 0..{k - 1} for {k} score columns, "
                         f"got min {y.min()} max {y.max()}")
    return s, y.astype(np.int64)


def true_ranks(scores, labels):
    """1-based rank of each probe's true identity (ties count against, see module doc).

    scores: (N, K); labels: (N,) ints in 0..K-1. Returns (N,) int64 in 1..K.
    """
    s, y = _check_scores_labels(scores, labels)
    true = s[np.arange(len(y)), y]                                   # (N,)
    # others scoring >= the true one; subtract the true column itself
    return (s >= true[:, None]).sum(axis=1).astype(np.int64)         # (N,), 1..K


def _check_ks(ks):
    ks = [int(k) for k in (ks if np.ndim(ks) else [ks])]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    return ks


def topk_accuracy(scores, labels, ks=(1, 5)):
    """Top-k accuracy for each k.

    scores: (N, K) logits or similarities (higher = more likely); labels: (N,) in 0..K-1;
    ks: the k values (k > K gives 1.0). Returns ``{k: accuracy}`` with floats in [0, 1].
    """
    ks = _check_ks(ks)
    r = true_ranks(scores, labels)
    return {k: float(np.mean(r <= k)) for k in ks}


def cmc_curve(scores, labels, max_rank=None):
    """Cumulative match characteristic: the fraction of probes with rank <= r.

    scores: (N, K); labels: (N,); max_rank: R (default K, where the curve reaches 1).
    Returns ``(ranks (R,) int64 = 1..R, rates (R,) float64)``, rates non-decreasing;
    ``rates[0]`` is the top-1 accuracy.
    """
    r = true_ranks(scores, labels)
    k = np.asarray(scores).shape[1]
    R = k if max_rank is None else int(max_rank)
    if R < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    counts = np.bincount(np.minimum(r, R + 1), minlength=R + 2)[1:R + 1]   # (R,) probes at rank r
    rates = np.cumsum(counts) / len(r)
    return np.arange(1, R + 1, dtype=np.int64), rates


def class_templates(gallery_emb, gallery_labels):
    """One unit-norm template per identity: the mean of its L2-normalised gallery
    embeddings, normalised again.

    gallery_emb: (G, D); gallery_labels: (G,) ints (any values).
    Returns ``(classes (C,) sorted unique labels, templates (C, D))``.
    """
    g = np.asarray(gallery_emb, dtype=np.float64)
    gl = np.asarray(gallery_labels)
    if g.ndim != 2 or gl.ndim != 1 or len(g) != len(gl):
        raise ValueError(f"gallery_emb must be (G, D) and gallery_labels (G,), got "
                         f"{g.shape} and {gl.shape}")
    if len(g) == 0:
        raise ValueError("the gallery is empty")
    if not np.isfinite(g).all():
        raise ValueError("gallery embeddings hold non-finite values")
    classes, inv = np.unique(gl, return_inverse=True)
    sums = np.zeros((len(classes), g.shape[1]))
    np.add.at(sums, inv.ravel(), l2_normalize(g))                    # (C, D)
    return classes, l2_normalize(sums)


def gallery_identification(gallery_emb, gallery_labels, probe_emb, probe_labels, ks=(1, 5)):
    """Identification against a gallery: each probe is scored by cosine similarity to
    every identity's template (:func:`class_templates`). For cross-resolution
    identification (HR gallery, LR probes) and for models without a classifier.

    gallery_emb: (G, D); gallery_labels: (G,); probe_emb: (Q, D); probe_labels: (Q,);
    every probe label must occur in the gallery. ks: as in :func:`topk_accuracy`.

    Returns a dict: ``{k: top-k accuracy}`` for each k (as :func:`topk_accuracy`),
    plus ``"cmc"``: (ranks (C,), rates (C,)), ``"scores"``: (Q, C) cosine similarities,
    ``"classes"``: (C,) the gallery label of each score column.
    """
    ks = _check_ks(ks)
    classes, templates = class_templates(gallery_emb, gallery_labels)
    p = np.asarray(probe_emb, dtype=np.float64)
    pl = np.asarray(probe_labels)
    if p.ndim != 2 or pl.ndim != 1 or len(p) != len(pl):
        raise ValueError(f"probe_emb must be (Q, D) and probe_labels (Q,), got {p.shape} "
                         f"and {pl.shape}")
    if len(p) == 0:
        raise ValueError("no probes")
    if p.shape[1] != templates.shape[1]:
        raise ValueError(f"probe embeddings have D={p.shape[1]}, gallery D={templates.shape[1]}")
    if not np.isfinite(p).all():
        raise ValueError("probe embeddings hold non-finite values")
    pos = np.searchsorted(classes, pl)
    pos = np.minimum(pos, len(classes) - 1)
    unknown = classes[pos] != pl
    if unknown.any():
        raise ValueError(f"{int(unknown.sum())} probe label(s) are not in the gallery "
                         f"(e.g. {pl[unknown][0]!r}): closed-set identification needs every "
                         f"probe identity enrolled")
    scores = l2_normalize(p) @ templates.T                           # (Q, C)
    out = topk_accuracy(scores, pos, ks)
    out["cmc"] = cmc_curve(scores, pos)
    out["scores"] = scores
    out["classes"] = classes
    return out


def evaluate_identification(model, split, stream, upsampled=False, batch_size=256):
    """Closed-set identification on the split's test faces: top-1, top-5 and the CMC.

    stream ``teacher`` sees HR test faces, or with ``upsampled`` the LR faces upsampled
    back to the HR size (the teacher@LR baseline); ``student`` sees the LR faces.
    """
    if stream == "teacher" and upsampled:
        images = split.lr_up_test
    else:
        images = stream_images(split, stream, "test")
    logits = logits_of(model, images, batch_size=batch_size)            # (N, K)
    acc = topk_accuracy(logits, split.y_test, ks=(1, 5))
    ranks, rates = cmc_curve(logits, split.y_test, max_rank=min(20, split.num_classes))
    return {"top1": float(acc[1]), "top5": float(acc[5]),
            "cmc": {"ranks": ranks.tolist(), "rates": rates.tolist()},
            "faces": int(len(images)), "input_size": int(images.shape[-1])}
