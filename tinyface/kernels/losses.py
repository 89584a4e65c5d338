"""Losses, Numba CPU kernels.

Same maths and signatures as ``tinyface.reference.losses`` (whose argument checks are
reused). Cross-entropy and distillation run a ``prange`` over the rows of the
``(N, K)`` logits; each row makes three passes (max, sum of exponentials, gradient),
accumulating in float64 (values read as ``np.float64(...)``, which also holds under
``NUMBA_DISABLE_JIT=1``). Per-row losses go to an ``(N,)`` array summed afterwards.
"""
import numpy as np
from numba import njit, prange

from tinyface.kernels.threading import compile_pair, use_parallel
from tinyface.reference.losses import (check_labels as _check_labels,
                                       check_logits as _check_logits,
                                       check_regression as _check_regression,
                                       check_temperature as _check_temperature)


def _cross_entropy_kernel(logits, labels, row_loss, dlogits):
    """logits, dlogits: (N, K); labels: (N,) int64; row_loss: (N,) float64."""
    N, K = logits.shape
    inv_n = 1.0 / N
    for n in prange(N):
        top = np.float64(logits[n, 0])
        for k in range(1, K):
            if logits[n, k] > top:
                top = np.float64(logits[n, k])
        s = 0.0
        for k in range(K):                   # one exp per element, parked in dlogits
            e = np.exp(logits[n, k] - top)
            dlogits[n, k] = e
            s += e
        y = labels[n]
        row_loss[n] = np.log(s) - (logits[n, y] - top)
        scale = inv_n / s
        for k in range(K):
            dlogits[n, k] = dlogits[n, k] * scale
        dlogits[n, y] -= inv_n


def _distillation_kernel(s, t, T, row_kl, ds):
    """s, t, ds: (N, K); T: float; row_kl: (N,) float64.

    row_kl[n] = KL(softmax(t_n / T) || softmax(s_n / T));
    ds[n]     = T / N * (softmax(s_n / T) - softmax(t_n / T)).
    """
    N, K = s.shape
    inv_t = 1.0 / T
    g = T / N
    for n in prange(N):
        ms = np.float64(s[n, 0]) * inv_t
        mt = np.float64(t[n, 0]) * inv_t
        for k in range(1, K):
            ms = max(ms, np.float64(s[n, k]) * inv_t)
            mt = max(mt, np.float64(t[n, k]) * inv_t)
        zs = 0.0
        zt = 0.0
        for k in range(K):
            zs += np.exp(np.float64(s[n, k]) * inv_t - ms)
            zt += np.exp(np.float64(t[n, k]) * inv_t - mt)
        lzs = np.log(zs) + ms            # log-sum-exp of s_n / T
        lzt = np.log(zt) + mt
        kl = 0.0
        for k in range(K):
            logps = np.float64(s[n, k]) * inv_t - lzs
            logpt = np.float64(t[n, k]) * inv_t - lzt
            pt = np.exp(logpt)
            kl += pt * (logpt - logps)
            ds[n, k] = g * (np.exp(logps) - pt)
        row_kl[n] = kl


@njit(cache=True, fastmath={"reassoc"})
def _regression_kernel(pred, target, w, total, dpred):
    """pred, target, dpred: (N, D); w: (N,) float64; returns the weighted loss."""
    N, D = pred.shape
    loss = 0.0
    for n in range(N):
        c = 2.0 * w[n] / total
        s = 0.0
        for d in range(D):
            diff = np.float64(pred[n, d]) - target[n, d]
            s += diff * diff
            dpred[n, d] = c * diff
        loss += w[n] * s
    return loss / total


_cross_entropy = compile_pair(_cross_entropy_kernel)
_distillation = compile_pair(_distillation_kernel)


def softmax_cross_entropy_loss(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels.

    logits: (N, K) float32 (or float64), unnormalised class scores;
    labels: (N,) int in [0, K).
    Returns ``(loss, dlogits)``: ``dlogits = (softmax(logits) - onehot(labels)) / N``.
    """
    logits = np.ascontiguousarray(_check_logits(logits))
    N, K = logits.shape
    labels = np.ascontiguousarray(_check_labels(labels, N, K))   # (N,) int64
    dlogits = np.empty_like(logits)                               # (N, K)
    if N == 0:
        return 0.0, dlogits
    row_loss = np.empty(N, dtype=np.float64)                      # (N,)
    kernel = _cross_entropy[1] if use_parallel(N) else _cross_entropy[0]
    kernel(logits, labels, row_loss, dlogits)
    return float(row_loss.sum() / N), dlogits


def feature_regression_loss(pred, target, weights=None):
    """Weighted mean over samples of the squared L2 distance between feature vectors.

    pred:    (N, D) float32 (or float64), the student's features;
    target:  (N, D) float, the teacher's features (a constant);
    weights: (N,) non-negative float, or None for all ones.
    Returns ``(loss, dpred)`` with ``loss = sum_i w_i ||pred_i - target_i||^2 / sum_i w_i``
    and ``dpred = 2 w_i (pred_i - target_i) / sum_i w_i``; all-zero weights give 0, 0.
    """
    pred, target, w = _check_regression(pred, target, weights)
    pred = np.ascontiguousarray(pred)
    total = float(w.sum())
    if total == 0:
        return 0.0, np.zeros_like(pred)
    target = np.ascontiguousarray(target, dtype=pred.dtype)
    dpred = np.empty_like(pred)                                   # (N, D)
    loss = _regression_kernel(pred, target, np.ascontiguousarray(w), total, dpred)
    return float(loss), dpred


def distillation_loss(student_logits, teacher_logits, T):
    """Hinton's soft-target loss at temperature ``T``.

    student_logits: (N, K) float32 (or float64);
    teacher_logits: (N, K) float (a constant);
    T:              float > 0.
    Returns ``(loss, dstudent)`` with
    ``loss = T**2 / N * sum_n KL(softmax(teacher_n / T) || softmax(student_n / T))`` and
    ``dstudent = T / N * (softmax(student / T) - softmax(teacher / T))``.
    """
    s = np.ascontiguousarray(_check_logits(student_logits, "student_logits"))
    t = _check_logits(teacher_logits, "teacher_logits")
    if s.shape != t.shape:
        raise ValueError(f"student and teacher logits differ in shape: {s.shape} vs {t.shape}")
    T = _check_temperature(T)
    t = np.ascontiguousarray(t, dtype=s.dtype)
    N = s.shape[0]
    ds = np.empty_like(s)                                         # (N, K)
    if N == 0:
        return 0.0, ds
    row_kl = np.empty(N, dtype=np.float64)                        # (N,)
    kernel = _distillation[1] if use_parallel(N) else _distillation[0]
    kernel(s, t, T, row_kl, ds)
    return float(T * T * row_kl.sum() / N), ds

