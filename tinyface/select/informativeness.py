"""Node informativeness ``u``: how much the teacher has to teach about each face.

Three scores, each mapped to [0, 1] by its natural affine map (no data-dependent scale):

- confidence  ``p_i = softmax(z_i)[y_i]``: the teacher's probability of the true identity.
  A confident teacher gives a reliable target; a confused one would teach its errors.
- margin      ``(1 + p_i[y_i] - max_{c != y_i} p_i[c]) / 2``: 1/2 means a tie with the
  strongest wrong identity, below 1/2 a misclassified face.
- centre      ``(1 + cos(f_i, mu_{y_i})) / 2``, ``mu_c`` the mean of identity ``c``'s
  unit-normalised features: how typical the face is of its identity in the teacher's
  space. A single-face identity scores 1.

``informativeness`` combines them as a weighted mean (default: equal weights of the
available scores; the centre score alone without logits) and then stretches the result
to span [0, 1] exactly (min-max), so that ``alpha`` in the selector means the same
whatever the teacher's calibration. These choices are ours: the paper's abstract does
not say how informativeness is scored.

Logits are processed in row chunks, so the softmax never holds more than
``chunk x C`` temporaries (a 100,000 x 1,000 float32 logit bank is 400 MB by itself).
"""
import numpy as np
import scipy.sparse as sp

from tinyface.select.graph import l2_normalise

__all__ = ["teacher_confidence", "teacher_margin", "centre_closeness", "informativeness",
           "student_gap", "SCORES"]

SCORES = ("confidence", "margin", "centre")


def _check_logits(logits, labels):
    z = np.asarray(logits)
    y = np.asarray(labels)
    if z.ndim != 2:
        raise ValueError(f"logits must be 2-D (N, C), got shape {z.shape}")
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"logits has {z.shape[0]} rows but there are {y.shape[0]} labels")
    if y.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers in [0, C) to index logits, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
        raise ValueError(f"labels must lie in [0, {z.shape[1]}) to index the logits' "
                         f"{z.shape[1]} columns, got range [{y.min()}, {y.max()}]")
    return z, y


def _softmax_scores(logits, labels, chunk):
    """Per row: ``(p_true, p_best_other)``, each (N,) float64, chunk by chunk."""
    z, y = _check_logits(logits, labels)
    n, c = z.shape
    p_true = np.empty(n, np.float64)
    p_other = np.zeros(n, np.float64)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        zb = z[a:b].astype(np.float64)                       # (B, C)
        if not np.all(np.isfinite(zb)):
            raise ValueError("logits contain NaN or inf")
        zb -= zb.max(axis=1, keepdims=True)
        np.exp(zb, out=zb)
        zb /= zb.sum(axis=1, keepdims=True)                  # (B, C) probabilities
        rows = np.arange(b - a)
        p_true[a:b] = zb[rows, y[a:b]]
        if c > 1:
            zb[rows, y[a:b]] = -1.0                          # hide the true class
            p_other[a:b] = zb.max(axis=1)
    return p_true, p_other


def teacher_confidence(logits, labels, chunk=8192):
    """``softmax(logits)[i, labels[i]]``. logits: (N, C); labels: (N,) int. Returns (N,) in [0, 1]."""
    return _softmax_scores(logits, labels, chunk)[0]


def teacher_margin(logits, labels, chunk=8192):
    """``(1 + p_true - p_best_wrong) / 2``. logits: (N, C); labels: (N,) int. Returns (N,) in [0, 1]."""
    p_true, p_other = _softmax_scores(logits, labels, chunk)
    return 0.5 * (1.0 + p_true - p_other)


def student_gap(teacher_logits, student_logits, labels, stretch=True, chunk=8192):
    """``p_t(y_i) * (1 - p_s(y_i))``: the teacher recognises the face, the LR student not yet.

    A score for the faces where the teacher's features have the most to add to what the
    student already knows (our design, not the paper's): the teacher's probability of
    the true identity on the HR face times the student's probability of missing it on
    the LR face. teacher_logits, student_logits: (N, C) on the same faces; labels: (N,).
    Returns (N,) float64, stretched to span [0, 1] (min-max) unless ``stretch=False``.
    """
    zt, zs = np.asarray(teacher_logits), np.asarray(student_logits)
    if zt.shape != zs.shape:
        raise ValueError(f"teacher logits {zt.shape} and student logits {zs.shape} must have "
                         f"one shape (N, C)")
    u = teacher_confidence(zt, labels, chunk) * (1.0 - teacher_confidence(zs, labels, chunk))
    if stretch:
        lo, hi = float(u.min()), float(u.max())
        u = (u - lo) / (hi - lo) if hi > lo else np.ones_like(u)
    return u


def centre_closeness(features, labels, normalised=False, chunk=65536):
    """``(1 + cos(f_i, mu_{y_i})) / 2``, ``mu_c`` the mean unit feature of identity ``c``.

    features: (N, D) float; labels: (N,) any hashable-sortable identity labels.
    Returns (N,) float64 in [0, 1].
    """
    fn = np.asarray(features, np.float32) if normalised else l2_normalise(features)
    _, inv = np.unique(np.asarray(labels), return_inverse=True)
    n, g = fn.shape[0], int(inv.max()) + 1 if inv.size else 0
    onehot = sp.csr_matrix((np.ones(n, np.float32), (inv, np.arange(n))), shape=(g, n))
    centres = l2_normalise(onehot @ fn)                      # (G, D) unit mean directions
    out = np.empty(n, np.float64)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        out[a:b] = np.einsum("nd,nd->n", fn[a:b], centres[inv[a:b]], dtype=np.float64)
    singles = np.bincount(inv, minlength=g)[inv] == 1
    out[singles] = 1.0
    return np.clip(0.5 * (1.0 + out), 0.0, 1.0)


def informativeness(features, labels, logits=None, weights=None, stretch=True,
                    return_scores=False):
    """Node scores ``u``: a weighted mean of the scores in ``SCORES``, stretched to [0, 1].

    features: (N, D) float teacher embeddings; labels: (N,) int identities;
    logits: (N, C) teacher logits or None (then only the centre score is available);
    weights: dict score name -> weight >= 0 (default: 1 for each available score);
    stretch: min-max rescale the mean to span [0, 1] (constant scores become all 1).
    Returns u: (N,) float64 in [0, 1], and with ``return_scores`` also the dict of the
    individual scores.
    """
    if weights is None:
        weights = {name: 1.0 for name in SCORES if logits is not None or name == "centre"}
    unknown = set(weights) - set(SCORES)
    if unknown:
        raise ValueError(f"unknown informativeness score(s) {sorted(unknown)}; choose from {SCORES}")
    if any(not (w >= 0) for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"informativeness weights must be >= 0 with a positive sum, got {weights}")
    scores = {}
    if weights.get("confidence", 0) > 0 or weights.get("margin", 0) > 0:
        if logits is None:
            raise ValueError("the confidence and margin scores need the teacher's logits")
        p_true, p_other = _softmax_scores(logits, labels, 8192)
        scores["confidence"] = p_true
        scores["margin"] = 0.5 * (1.0 + p_true - p_other)
    if weights.get("centre", 0) > 0:
        scores["centre"] = centre_closeness(features, labels)
    total = sum(w for name, w in weights.items() if w > 0)
    u = sum(w * scores[name] for name, w in weights.items() if w > 0) / total
    if stretch:
        lo, hi = float(u.min()), float(u.max())
        u = (u - lo) / (hi - lo) if hi > lo else np.ones_like(u)
    return (u, scores) if return_scores else u
