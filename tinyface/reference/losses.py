"""Losses, NumPy reference. Each returns ``(loss, dinput)``: a Python float and the
gradient of the loss with respect to the first argument, in that argument's dtype.

- ``softmax_cross_entropy_loss``: mean over the batch of ``-log softmax(logits)[label]``;
- ``feature_regression_loss``:    weighted mean over samples of ``||pred - target||^2``;
- ``distillation_loss``:          Hinton's soft-target loss,
  ``T**2 * mean_n KL(softmax(teacher / T) || softmax(student / T))``.

Softmaxes subtract the row maximum first, so logits of any magnitude are safe.
"""
import numpy as np


def check_logits(logits, name="logits"):
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] < 1:
        raise ValueError(f"{name} must be (N, K) with K >= 1, got shape {logits.shape}")
    if logits.dtype.kind != "f":
        logits = logits.astype(np.float32)
    return logits


def check_labels(labels, N, K):
    labels = np.asarray(labels)
    if labels.shape != (N,):
        raise ValueError(f"labels must have shape ({N},) to match the logits, got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if N and (labels.min() < 0 or labels.max() >= K):
        bad = labels[(labels < 0) | (labels >= K)][0]
        raise ValueError(f"label {bad} is outside [0, {K}) for logits with {K} classes")
    return labels.astype(np.int64)


def check_regression(pred, target, weights):
    pred = np.asarray(pred)
    if pred.dtype.kind != "f":
        pred = pred.astype(np.float32)
    target = np.asarray(target)
    if pred.ndim != 2 or target.shape != pred.shape:
        raise ValueError(f"pred and target must both be (N, D) of one shape, "
                         f"got {pred.shape} and {target.shape}")
    return pred, target, check_weights(weights, pred.shape[0])


def check_weights(weights, N):
    """weights: (N,) non-negative, or None for all ones; returned as (N,) float64."""
    w = np.ones(N) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (N,):
        raise ValueError(f"weights must have shape ({N},), got {w.shape}")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative")
    return w


def check_temperature(T):
    T = float(T)
    if not T > 0 or not np.isfinite(T):
        raise ValueError(f"temperature T must be a positive number, got {T}")
    return T


def check_nonnegative(name, value):
    """A term's weight or a floor: a finite number >= 0, returned as a float."""
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _log_softmax(z):
    """Row-wise log-softmax of (N, K), float64."""
    z = z - z.max(axis=1, keepdims=True)                          # (N, K), row max 0
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax_cross_entropy_loss(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels.

    logits: (N, K) float, unnormalised class scores;
    labels: (N,) int in [0, K).
    Returns ``(loss, dlogits)``: ``dlogits = (softmax(logits) - onehot(labels)) / N``.
    """
    logits = check_logits(logits)
    N, K = logits.shape
    labels = check_labels(labels, N, K)
    if N == 0:
        return 0.0, np.zeros_like(logits)
    logp = _log_softmax(logits.astype(np.float64))               # (N, K)
    loss = -logp[np.arange(N), labels].mean()
    dlogits = np.exp(logp)                                        # (N, K) softmax
    dlogits[np.arange(N), labels] -= 1.0
    return float(loss), (dlogits / N).astype(logits.dtype)


def feature_regression_loss(pred, target, weights=None):
    """Weighted mean over samples of the squared L2 distance between feature vectors.

    pred:    (N, D) float, the student's features;
    target:  (N, D) float, the teacher's features (a constant);
    weights: (N,) non-negative float, or None for all ones.
    Returns ``(loss, dpred)`` with ``loss = sum_i w_i ||pred_i - target_i||^2 / sum_i w_i``
    and ``dpred = 2 w_i (pred_i - target_i) / sum_i w_i``; all-zero weights give 0, 0.
    """
    pred, target, w = check_regression(pred, target, weights)
    total = w.sum()
    if total == 0:
        return 0.0, np.zeros_like(pred)
    diff = pred.astype(np.float64) - target                       # (N, D)
    loss = (w * (diff ** 2).sum(axis=1)).sum() / total
    dpred = 2.0 * w[:, None] * diff / total                       # (N, D)
    return float(loss), dpred.astype(pred.dtype)


def distillation_loss(student_logits, teacher_logits, T):
    """Hinton's soft-target loss at temperature ``T``.

    student_logits: (N, K) float;
    teacher_logits: (N, K) float (a constant);
    T:              float > 0.
    Returns ``(loss, dstudent)`` with
    ``loss = T**2 / N * sum_n KL(softmax(teacher_n / T) || softmax(student_n / T))`` and
    ``dstudent = T / N * (softmax(student / T) - softmax(teacher / T))``.
    """
    s = check_logits(student_logits, "student_logits")
    t = check_logits(teacher_logits, "teacher_logits")
    if s.shape != t.shape:
        raise ValueError(f"student and teacher logits differ in shape: {s.shape} vs {t.shape}")
    T = check_temperature(T)
    N = s.shape[0]
    if N == 0:
        return 0.0, np.zeros_like(s)
    logp_s = _log_softmax(s.astype(np.float64) / T)              # (N, K)
    logp_t = _log_softmax(t.astype(np.float64) / T)              # (N, K)
    p_t = np.exp(logp_t)
    kl = (p_t * (logp_t - logp_s)).sum(axis=1)                    # (N,)
    loss = T * T * kl.mean()
    dstudent = T / N * (np.exp(logp_s) - p_t)                     # (N, K)
    return float(loss), dstudent.astype(s.dtype)
