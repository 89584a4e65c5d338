"""Probabilistic and contrastive distillation on the GPU: PKT and CRD.

Same maths and signatures as ``pkt_loss`` and ``crd_loss`` of
``tinyface.reference.kd_relations`` (Passalis & Tefas 2018; Tian et al. 2020 as
InfoNCE; equations in its docstrings), whose argument checks are reused. The student's
embeddings are a float32 DeviceTensor; the teacher's side (embeddings, the bank) may be
a host array, copied up as float32; CRD's row indices are host arrays, range-checked on
the host and copied up. Everything is computed in float64; gradients are float32
DeviceTensors; only the N per-face losses come back, summed on the host.

PKT, four kernels of one thread per face i:

1. ``pkt_unit_rows_kernel``: ``r_i = ||e_i||``, ``z_i = e_i / (r_i + eps)``; per side;
2. ``pkt_probabilities_kernel``: ``S_ij = (<z_i, z_j> + 1) / 2``, ``rows_i = sum_j S_ij``,
   ``P_ij = S_ij / rows_i`` (diagonal included); per side;
3. ``pkt_rows_kernel``: the row's KL term, ``A = -P_t / (N (P_s + eps))`` and
   ``dS_ij = (A_ij - sum_k A_ik P_s,ik) / rows_i``;
4. ``pkt_grad_kernel``: ``dz_i = sum_j (dS_ij + dS_ji) / 2 z_j`` (into a float64 buffer),
   then ``de_i = dz_i / (r_i + eps) - e_i <e_i, dz_i> / (r_i (r_i + eps)**2)``.

CRD, one kernel of one thread per face n (``crd_kernel``): the K + 1 candidate rows of
the bank (``pos[n]``, then ``neg[n]``), their norms and logits
``<es_n, b_c> / (||es_n|| ||b_c|| tau)``, the log-sum-exp, the row's cross-entropy, then
``dz = sum_k (softmax_k - [k = 0]) b_c / (||b_c|| tau N)`` and ``des = (dz - z <z, dz>) / r``.
Only the candidate rows of the bank are read (the bank itself is uploaded whole).
"""
import math

import numpy as np
from numba import cuda

from tinyface.cuda.arrays import as_device, empty, to_device, zeros
from tinyface.cuda.kd_maps import as_constant, host_sum
from tinyface.cuda.launch import TPB, blocks
from tinyface.reference.kd_relations import check_candidates
from tinyface.reference.losses import check_nonnegative
from tinyface.reference.normalize import DEFAULT_EPS


# ------------------------------------------------------------------------- PKT
@cuda.jit
def pkt_unit_rows_kernel(e, eps, z, r):
    """e: (N, D) float32; eps: float64; z (out): (N, D) float64; r (out): (N,) float64.
    ``r[i] = ||e_i||``, ``z[i] = e_i / (r[i] + eps)``. grid: blocks(N); block: TPB."""
    i = cuda.grid(1)
    N, D = e.shape
    if i < N:                                     # bounds guard: the last block overhangs
        s = 0.0
        for c in range(D):
            v = np.float64(e[i, c])
            s += v * v
        norm = math.sqrt(s)
        r[i] = norm
        for c in range(D):
            z[i, c] = np.float64(e[i, c]) / (norm + eps)


@cuda.jit
def pkt_probabilities_kernel(z, P, rows):
    """z: (N, D) float64; P (out): (N, N) float64; rows (out): (N,) float64.
    ``S_ij = (<z_i, z_j> + 1) / 2``, ``rows[i] = sum_j S_ij``, ``P[i, j] = S_ij / rows[i]``.
    grid: blocks(N); block: TPB."""
    i = cuda.grid(1)
    N, D = z.shape
    if i < N:
        total = 0.0
        for j in range(N):
            dot = 0.0
            for c in range(D):
                dot += z[i, c] * z[j, c]
            S = (dot + 1.0) / 2.0
            P[i, j] = S
            total += S
        rows[i] = total
        for j in range(N):
            P[i, j] = P[i, j] / total


@cuda.jit
def pkt_rows_kernel(P_s, P_t, rows, eps, inv_n, row_loss, dS):
    """P_s, P_t, dS (out): (N, N) float64; rows: (N,) the student's row sums of S;
    eps: float64; inv_n: 1 / N; row_loss (out): (N,) float64.
    ``row_loss[i] = sum_j P_t,ij (log(P_t,ij + eps) - log(P_s,ij + eps))``;
    ``dS[i, j] = (A_ij - sum_k A_ik P_s,ik) / rows[i]``, ``A = -inv_n P_t / (P_s + eps)``.
    grid: blocks(N); block: TPB."""
    i = cuda.grid(1)
    N = P_s.shape[0]
    if i < N:
        acc = 0.0
        radial = 0.0
        for j in range(N):
            pt = P_t[i, j]
            ps = P_s[i, j]
            acc += pt * (math.log(pt + eps) - math.log(ps + eps))
            A = -inv_n * pt / (ps + eps)
            dS[i, j] = A                                  # A, parked
            radial += A * ps
        row_loss[i] = acc
        for j in range(N):
            dS[i, j] = (dS[i, j] - radial) / rows[i]


@cuda.jit
def pkt_grad_kernel(dS, z, e, r, eps, dz, de):
    """dS: (N, N) float64; z, dz (work): (N, D) float64; e, de (out): (N, D) float32;
    r: (N,) float64 norms; eps: float64. ``dz_i = sum_j (dS_ij + dS_ji) / 2 z_j``;
    ``de_i = dz_i / (r_i + eps) - e_i <e_i, dz_i> / (r_i (r_i + eps)**2)`` (r_i = 0
    counts as 1 in the second term's denominator). grid: blocks(N); block: TPB."""
    i = cuda.grid(1)
    N, D = e.shape
    if i < N:
        radial = 0.0
        for c in range(D):
            acc = 0.0
            for j in range(N):
                acc += (dS[i, j] + dS[j, i]) / 2.0 * z[j, c]
            dz[i, c] = acc
            radial += np.float64(e[i, c]) * acc
        ri = r[i]
        safe = ri if ri > 0.0 else 1.0
        for c in range(D):
            de[i, c] = (dz[i, c] / (ri + eps)
                        - np.float64(e[i, c]) * radial / (safe * (ri + eps) * (ri + eps)))


# ------------------------------------------------------------------------- CRD
@cuda.jit
def crd_kernel(es, bank, pos, neg, inv_tau, eps, inv_n, logits, bnorm, dz, row_loss, des):
    """es, des (out): (N, D) float32; bank: (M, D) float32; pos: (N,) int64; neg: (N, K)
    int64; inv_tau: 1 / tau; eps: float64; inv_n: 1 / N; logits, bnorm (work): (N, K + 1)
    float64; dz (work): (N, D) float64; row_loss (out): (N,) float64.
    Candidate k of face n is bank row ``pos[n]`` (k = 0) or ``neg[n, k - 1]``.
    ``row_loss[n] = logsumexp(logits[n]) - logits[n, 0]``. grid: blocks(N); block: TPB."""
    n = cuda.grid(1)
    N, D = es.shape
    K1 = neg.shape[1] + 1
    if n < N:
        s = 0.0
        for c in range(D):
            v = np.float64(es[n, c])
            s += v * v
        r = math.sqrt(s)
        if r < eps:
            r = eps
        top = -math.inf
        for k in range(K1):
            row = pos[n] if k == 0 else neg[n, k - 1]
            sb = 0.0
            dot = 0.0
            for c in range(D):
                b = np.float64(bank[row, c])
                sb += b * b
                dot += np.float64(es[n, c]) * b
            rb = math.sqrt(sb)
            if rb < eps:
                rb = eps
            bnorm[n, k] = rb
            logit = dot / (r * rb) * inv_tau
            logits[n, k] = logit
            if logit > top:
                top = logit
        z = 0.0
        for k in range(K1):
            z += math.exp(logits[n, k] - top)
        lse = math.log(z) + top
        row_loss[n] = lse - logits[n, 0]
        for k in range(K1):                       # logits -> dL/dlogit, times 1 / (N tau)
            p = math.exp(logits[n, k] - lse)
            if k == 0:
                p -= 1.0
            logits[n, k] = p * inv_n * inv_tau
        radial = 0.0
        for c in range(D):
            acc = 0.0
            for k in range(K1):
                row = pos[n] if k == 0 else neg[n, k - 1]
                acc += logits[n, k] * np.float64(bank[row, c]) / bnorm[n, k]
            dz[n, c] = acc
            radial += np.float64(es[n, c]) / r * acc
        for c in range(D):
            des[n, c] = (dz[n, c] - np.float64(es[n, c]) / r * radial) / r


# ----------------------------------------------------------------------- the ops
def pkt_loss(es, et, eps=1e-7):
    """PKT on the GPU (``reference.kd_relations.pkt_loss``, cosine kernel).

    es: (N, Ds) float32 DeviceTensor; et: (N, Dt) (host or device, a constant);
    eps: finite >= 0. Returns ``(loss, des)``: ``1 / N sum_i KL(P_t,i || P_s,i)``.
    """
    es = as_device(es, "es")
    et_shape = tuple(np.shape(et))
    if es.ndim != 2 or len(et_shape) != 2 or es.shape[0] != et_shape[0]:
        raise ValueError(f"es and et must hold the same N faces as (N, D) arrays, got "
                         f"shapes {es.shape} and {et_shape}")
    eps = check_nonnegative("eps", eps)
    N, D = es.shape
    if N == 0:
        return 0.0, zeros(es.shape)
    et = as_constant(et, "et")
    z_s = cuda.device_array((N, D), np.float64)
    z_t = cuda.device_array((N, et.shape[1]), np.float64)
    r_s, r_t, rows_s, rows_t, row_loss = (cuda.device_array(N, np.float64) for _ in range(5))
    P_s, P_t, dS = (cuda.device_array((N, N), np.float64) for _ in range(3))
    pkt_unit_rows_kernel[blocks(N), TPB](es.data, eps, z_s, r_s)
    pkt_unit_rows_kernel[blocks(N), TPB](et.data, eps, z_t, r_t)
    pkt_probabilities_kernel[blocks(N), TPB](z_s, P_s, rows_s)
    pkt_probabilities_kernel[blocks(N), TPB](z_t, P_t, rows_t)
    pkt_rows_kernel[blocks(N), TPB](P_s, P_t, rows_s, eps, 1.0 / N, row_loss, dS)
    dz = cuda.device_array((N, D), np.float64)
    des = empty(es.shape)
    pkt_grad_kernel[blocks(N), TPB](dS, z_s, es.data, r_s, eps, dz, des.data)
    return host_sum(row_loss) / N, des


def crd_loss(es, bank, pos, neg, tau=0.07):
    """Contrastive distillation (InfoNCE against the bank) on the GPU
    (``reference.kd_relations.crd_loss``).

    es: (N, D) float32 DeviceTensor; bank: (M, D) (host or device, a constant);
    pos: (N,) int in [0, M) and neg: (N, K) int in [0, M), K >= 1 (host: range-checked,
    then copied up); tau > 0. Returns ``(loss, des)``: ``-mean_i log softmax(logits_i)[0]``.
    """
    es = as_device(es, "es")
    bank_shape = tuple(np.shape(bank))
    if es.ndim != 2 or len(bank_shape) != 2 or bank_shape[1] != es.shape[1]:
        raise ValueError(f"es and bank must be (N, D) and (M, D) with one D, got shapes "
                         f"{es.shape} and {bank_shape}")
    N, D = es.shape
    M = bank_shape[0]
    pos, neg, tau = check_candidates(pos, neg, tau, N, M)
    if N == 0:
        return 0.0, zeros(es.shape)
    K1 = neg.shape[1] + 1
    logits = cuda.device_array((N, K1), np.float64)
    bnorm = cuda.device_array((N, K1), np.float64)
    dz = cuda.device_array((N, D), np.float64)
    row_loss = cuda.device_array(N, np.float64)
    des = empty(es.shape)
    crd_kernel[blocks(N), TPB](es.data, as_constant(bank, "bank").data,
                               to_device(pos, np.int64).data, to_device(neg, np.int64).data,
                               1.0 / tau, DEFAULT_EPS, 1.0 / N, logits, bnorm, dz, row_loss,
                               des.data)
    return host_sum(row_loss) / N, des


_F2, _D1, _D2 = "float32[:, ::1]", "float64[::1]", "float64[:, ::1]"
PTX_SIGNATURES = {
    "pkt_unit_rows_kernel": [f"void({_F2}, float64, {_D2}, {_D1})"],
    "pkt_probabilities_kernel": [f"void({_D2}, {_D2}, {_D1})"],
    "pkt_rows_kernel": [f"void({_D2}, {_D2}, {_D1}, float64, float64, {_D1}, {_D2})"],
    "pkt_grad_kernel": [f"void({_D2}, {_D2}, {_F2}, {_D1}, float64, {_D2}, {_F2})"],
    "crd_kernel": [f"void({_F2}, {_F2}, int64[::1], int64[:, ::1], float64, float64, "
                   f"float64, {_D2}, {_D2}, {_D2}, {_D1}, {_F2})"],
}
