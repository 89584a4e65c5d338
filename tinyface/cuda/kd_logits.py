"""Decoupled knowledge distillation (DKD) on the GPU: one thread per row of the logits.

Same maths and signature as ``tinyface.reference.kd_logits.dkd_loss`` (Zhao et al.
2022; the decomposition into TCKD and NCKD is in that module's docstring), whose
argument checks are reused. Each thread works in log space in float64 at ``u = logits
/ T``, as the reference does: per side it takes the row's maximum and the maximum over
the non-target classes, the two log-sum-exps ``lse_all`` and ``lse_other``, then

- ``log b = u_y - lse_all``, ``log(1 - b) = lse_other - lse_all``,
  ``log q_c = u_c - lse_other`` (c != y);
- ``row_loss = alpha TCKD + beta NCKD``;
- ``ds_y = T / N alpha (b_s - b_t)``,
  ``ds_c = T / N (alpha q_s,c (b_t - b_s) + beta (q_s,c - q_t,c))`` for c != y.

The student's logits are a float32 DeviceTensor; the teacher's may be a host array
(copied up as float32); labels are host integers, range-checked on the host and copied
up. Only the N row losses come back, summed on the host into ``T**2 / N * sum``.
Kernels call no device functions and no ``min``/``max`` builtins (see
``tinyface.cuda.losses``).
"""
import math

import numpy as np
from numba import cuda

from tinyface.cuda.arrays import as_device, empty, to_device, zeros
from tinyface.cuda.kd_maps import as_constant, host_sum
from tinyface.cuda.launch import TPB, blocks
from tinyface.reference.kd_logits import check_dkd


@cuda.jit
def dkd_kernel(s, t, labels, T, alpha, beta, g, row_loss, ds):
    """s, t, ds (out): (N, K) float32, K >= 2; labels: (N,) int64 in [0, K);
    T: the temperature; alpha, beta: float64; g: T / N; row_loss (out): (N,) float64.
    grid: blocks(N); block: TPB; thread n takes row n."""
    n = cuda.grid(1)
    N, K = s.shape
    if n < N:                                     # bounds guard: the last block overhangs
        y = labels[n]
        # maxima of u = logits / T over all classes and over the non-targets
        ms = -math.inf
        mt = -math.inf
        os_ = -math.inf
        ot = -math.inf
        for c in range(K):
            us = np.float64(s[n, c]) / T
            ut = np.float64(t[n, c]) / T
            if us > ms:
                ms = us
            if ut > mt:
                mt = ut
            if c != y:
                if us > os_:
                    os_ = us
                if ut > ot:
                    ot = ut
        zs = 0.0
        zt = 0.0
        zs_o = 0.0
        zt_o = 0.0
        for c in range(K):
            us = np.float64(s[n, c]) / T
            ut = np.float64(t[n, c]) / T
            zs += math.exp(us - ms)
            zt += math.exp(ut - mt)
            if c != y:
                zs_o += math.exp(us - os_)
                zt_o += math.exp(ut - ot)
        lse_s = math.log(zs) + ms
        lse_t = math.log(zt) + mt
        lso_s = math.log(zs_o) + os_                      # log-sum-exp over c != y
        lso_t = math.log(zt_o) + ot
        log_b_s = np.float64(s[n, y]) / T - lse_s
        log_b_t = np.float64(t[n, y]) / T - lse_t
        log_nb_s = lso_s - lse_s
        log_nb_t = lso_t - lse_t
        b_s = math.exp(log_b_s)
        b_t = math.exp(log_b_t)
        tckd = b_t * (log_b_t - log_b_s) + math.exp(log_nb_t) * (log_nb_t - log_nb_s)
        nckd = 0.0
        for c in range(K):
            if c == y:
                ds[n, c] = g * alpha * (b_s - b_t)
                continue
            log_q_s = np.float64(s[n, c]) / T - lso_s
            log_q_t = np.float64(t[n, c]) / T - lso_t
            q_s = math.exp(log_q_s)
            q_t = math.exp(log_q_t)
            nckd += q_t * (log_q_t - log_q_s)
            ds[n, c] = g * (alpha * q_s * (b_t - b_s) + beta * (q_s - q_t))
        row_loss[n] = alpha * tckd + beta * nckd


def dkd_loss(logits_s, logits_t, labels, alpha=1.0, beta=8.0, T=4.0):
    """DKD at temperature ``T`` on the GPU (``reference.kd_logits.dkd_loss``).

    logits_s: (N, K) float32 DeviceTensor, K >= 2; logits_t: (N, K) (host or device, a
    constant); labels: (N,) int in [0, K) (host); alpha, beta: finite >= 0; T > 0.
    Returns ``(loss, dlogits_s)``: ``T**2 / N * sum_n (alpha TCKD_n + beta NCKD_n)`` and
    an (N, K) DeviceTensor.
    """
    s = as_device(logits_s, "logits_s")
    if s.ndim != 2 or tuple(np.shape(logits_t)) != s.shape:
        raise ValueError(f"logits_s and logits_t must be (N, K) of one shape, got "
                         f"{s.shape} and {tuple(np.shape(logits_t))}")
    labels, alpha, beta, T = check_dkd(s.shape, labels, alpha, beta, T)
    N = s.shape[0]
    if N == 0:
        return 0.0, zeros(s.shape)
    row_loss = cuda.device_array(N, np.float64)
    ds = empty(s.shape)
    dkd_kernel[blocks(N), TPB](s.data, as_constant(logits_t, "logits_t").data,
                               to_device(labels, np.int64).data, T, alpha, beta,
                               T / N, row_loss, ds.data)
    return T * T * host_sum(row_loss) / N, ds


_F2 = "float32[:, ::1]"
PTX_SIGNATURES = {
    "dkd_kernel": [f"void({_F2}, {_F2}, int64[::1], float64, float64, float64, float64, "
                   f"float64[::1], {_F2})"],
}
