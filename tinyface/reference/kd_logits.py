"""Decoupled knowledge distillation (DKD), NumPy reference (Zhao, Cui, Song, Qiu, Liang,
"Decoupled knowledge distillation", CVPR 2022).

Hinton's soft-target KL splits, per face with label y and ``p = softmax(logits / T)``, into

- the binary distribution ``b = [p_y, 1 - p_y]`` (target against all non-targets), and
- ``q = p_{c != y} / (1 - p_y)``, the distribution over the K - 1 non-target classes,

as ``KL(p_t || p_s) = KL(b_t || b_s) + (1 - p_t,y) KL(q_t || q_s)``, i.e.
``KD = TCKD + (1 - p_t,y) NCKD`` (Zhao et al. 2022, their reformulation of KD). DKD
drops the teacher's ``1 - p_t,y`` coupling and weighs the two parts freely:
``DKD = T**2 * mean_n (alpha * TCKD_n + beta * NCKD_n)``.

Everything is computed in log space in float64 (row maxima subtracted), so logits of any
magnitude are safe.
"""
import numpy as np

from tinyface.reference.losses import (check_labels, check_logits, check_nonnegative,
                                       check_temperature)


def _logsumexp(u):
    """Row-wise log-sum-exp of (N, K) float64; -inf entries count as absent."""
    m = u.max(axis=1, keepdims=True)                              # (N, 1), finite
    return (m + np.log(np.exp(u - m).sum(axis=1, keepdims=True)))[:, 0]


def _decoupled(u, labels):
    """u: (N, K) float64, logits / T; labels: (N,) int.

    Returns ``(log_b, log_nb, log_q, other)``: log p_y (N,), log (1 - p_y) (N,), log q
    (N, K) with 0 at the target (masked out: ``other`` (N, K) bool is False there).
    """
    N, K = u.shape
    rows = np.arange(N)
    other = np.ones((N, K), dtype=bool)
    other[rows, labels] = False
    lse_all = _logsumexp(u)                                       # (N,)
    lse_other = _logsumexp(np.where(other, u, -np.inf))           # (N,)
    log_b = u[rows, labels] - lse_all
    log_nb = lse_other - lse_all
    log_q = np.where(other, u - lse_other[:, None], 0.0)          # (N, K)
    return log_b, log_nb, log_q, other


def check_dkd(shape, labels, alpha, beta, T):
    """DKD's arguments past the logits, for the logits' shape (N, K), K >= 2 (every tier):
    labels (N,) int in [0, K); alpha, beta finite >= 0; T > 0.
    Returns ``(labels, alpha, beta, T)``: labels int64, the rest floats."""
    N, K = shape
    if K < 2:
        raise ValueError(f"DKD needs K >= 2 classes (a target and a non-target), "
                         f"got logits of shape {shape}")
    labels = check_labels(labels, N, K)
    T = check_temperature(T)
    alpha, beta = check_nonnegative("alpha", alpha), check_nonnegative("beta", beta)
    return labels, alpha, beta, T


def dkd_loss(logits_s, logits_t, labels, alpha=1.0, beta=8.0, T=4.0):
    """DKD at temperature ``T`` (Zhao et al. 2022; defaults as in the paper's code).

    logits_s: (N, K) float, the student's logits, K >= 2;
    logits_t: (N, K) float, the teacher's (a constant);
    labels:   (N,) int in [0, K);
    alpha, beta: finite >= 0, the weights of TCKD and NCKD; T > 0.
    With b, q as in the module docstring at temperature T,
    ``TCKD_n = sum_{two bins} b_t log(b_t / b_s)``,
    ``NCKD_n = sum_{c != y} q_t,c log(q_t,c / q_s,c)`` and
    ``loss = T**2 / N * sum_n (alpha TCKD_n + beta NCKD_n)``.

    Gradient, with ``u = logits_s / T`` and ``ds = T / N * du``:
    TCKD gives ``du_y = b_s - b_t`` (the target probabilities) and
    ``du_c = q_s,c (b_t - b_s)`` for c != y; NCKD gives ``du_c = q_s,c - q_t,c`` for c != y,
    0 at the target. Returns ``(loss, dlogits_s)``, dlogits_s (N, K) in logits_s's dtype.
    """
    s = check_logits(logits_s, "logits_s")
    t = check_logits(logits_t, "logits_t")
    if s.shape != t.shape:
        raise ValueError(f"logits_s and logits_t differ in shape: {s.shape} vs {t.shape}")
    labels, alpha, beta, T = check_dkd(s.shape, labels, alpha, beta, T)
    N = s.shape[0]
    if N == 0:
        return 0.0, np.zeros_like(s)
    rows = np.arange(N)
    log_b_s, log_nb_s, log_q_s, other = _decoupled(s.astype(np.float64) / T, labels)
    log_b_t, log_nb_t, log_q_t, _ = _decoupled(t.astype(np.float64) / T, labels)
    b_s, b_t = np.exp(log_b_s), np.exp(log_b_t)                   # (N,)
    q_s = np.exp(log_q_s) * other                                 # (N, K), 0 at the target
    q_t = np.exp(log_q_t) * other
    tckd = b_t * (log_b_t - log_b_s) + np.exp(log_nb_t) * (log_nb_t - log_nb_s)   # (N,)
    nckd = (q_t * (log_q_t - log_q_s)).sum(axis=1)                                # (N,)
    loss = T * T * (alpha * tckd + beta * nckd).mean()
    du = alpha * q_s * (b_t - b_s)[:, None] + beta * (q_s - q_t)  # (N, K), non-targets
    du[rows, labels] = alpha * (b_s - b_t)
    return float(loss), (T / N * du).astype(s.dtype)
