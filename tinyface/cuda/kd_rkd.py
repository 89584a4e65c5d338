"""Relational knowledge distillation (RKD) on the GPU: distance and angle terms.

Same maths and signatures as ``rkd_distance_loss``, ``rkd_angle_loss`` and ``rkd_loss``
of ``tinyface.reference.kd_relations`` (Park et al. 2019; equations in its docstrings),
whose argument checks are reused. es: (N, Ds) float32 DeviceTensor, et: (N, Dt) (host
or device, a constant). Everything is computed in float64; gradients are float32
DeviceTensors; only per-row (or per-anchor) losses come back, summed on the host.

Distance (O(N**2 D)), one thread per row i in each of three kernels:

1. ``pair_distances_kernel``: ``d_ij = sqrt(max(||e_i - e_j||**2, DIST_EPS))`` (0 on the
   diagonal), ``live_ij`` (1 where a pair passes a gradient), and row sums of d; once
   per side. ``mu = sum d / (N (N - 1))`` is re-added by each thread that needs it from
   the N row sums (O(N), in order, so every thread gets the same bits);
2. ``distance_rows_kernel``: the Huber terms of ``psi_s - psi_t``, ``g = h'(.) / P``
   and the row's share of ``sum_ij g_ij d_ij``;
3. ``distance_grad_kernel``: one thread per element (i, c):
   ``de_ic = sum_j (G_ij + G_ji) (e_ic - e_jc)``, ``G = dL/dd / d`` on live pairs.

Angle (O(N**3 D)), one thread block per anchor j:

1. ``edge_lengths_kernel``: ``r_ji = max(||e_i - e_j||, UNIT_EPS)``, once per side;
2. ``angle_anchor_kernel``: block j, its threads striding over the edges i. Thread i
   loops over k, forms both sides' cosines ``C_jik = <e_i - e_j, e_k - e_j> / (r_ji r_jk)``
   on the fly (no (N, N, N) array), their Huber term, and accumulates
   ``dn_ji = 2 sum_k g_jik n_jk`` into ``du[j, i]`` (an (N, N, Ds) float64 buffer), then
   keeps its part orthogonal to ``n_ji``, over ``r_ji`` (0 for an edge shorter than
   UNIT_EPS). The block adds its threads' losses as a tree in shared memory;
3. ``angle_grad_kernel``: one thread per element (i, c):
   ``de_ic = sum_j du[j, i, c] - sum_k du[i, k, c]``.

``rkd_combine_kernel`` forms ``w_distance * des_d + w_angle * des_a`` in float64, as the
reference does with its two float32 gradients. No atomics: every sum has a fixed order.
Kernels call no device functions and no ``min``/``max`` builtins (see
``tinyface.cuda.losses``).
"""
import math

import numpy as np
from numba import cuda, float64

from tinyface.cuda.arrays import as_device, empty, zeros
from tinyface.cuda.kd_maps import as_constant, host_sum
from tinyface.cuda.launch import TPB, blocks
from tinyface.reference.kd_relations import DIST_EPS, UNIT_EPS
from tinyface.reference.losses import check_nonnegative


# --------------------------------------------------------------------- distance
@cuda.jit
def pair_distances_kernel(e, eps, d, live, row_sum):
    """e: (N, D) float32; eps: DIST_EPS; d, live (out): (N, N) float64; row_sum (out):
    (N,) float64. ``d[i, j] = sqrt(max(||e_i - e_j||**2, eps))`` off the diagonal, 0 on
    it; ``live[i, j] = 1`` where i != j and the squared distance exceeds eps, else 0.
    grid: blocks(N); block: TPB; thread i makes row i."""
    i = cuda.grid(1)
    N, D = e.shape
    if i < N:                                     # bounds guard: the last block overhangs
        acc = 0.0
        for j in range(N):
            sq = 0.0
            for c in range(D):
                v = np.float64(e[i, c]) - np.float64(e[j, c])
                sq += v * v
            live[i, j] = 1.0 if (i != j and sq > eps) else 0.0
            if sq < eps:
                sq = eps
            dist = math.sqrt(sq) if i != j else 0.0
            d[i, j] = dist
            acc += dist
        row_sum[i] = acc


@cuda.jit
def distance_rows_kernel(d_s, d_t, sum_s, sum_t, g, row_loss, row_gd):
    """d_s, d_t: (N, N) float64 distances; sum_s, sum_t: (N,) their row sums;
    g (out): (N, N) float64, ``h'(psi_s - psi_t) / P`` off the diagonal (0 on it);
    row_loss, row_gd (out): (N,) float64, the row's Huber terms and ``sum_j g_ij d_s,ij``.
    P = N (N - 1). grid: blocks(N); block: TPB."""
    i = cuda.grid(1)
    N = d_s.shape[0]
    if i < N:
        P = N * (N - 1)
        mu_s = 0.0
        mu_t = 0.0
        for j in range(N):                        # every thread adds the row sums in order
            mu_s += sum_s[j]
            mu_t += sum_t[j]
        mu_s = mu_s / P
        mu_t = mu_t / P
        acc = 0.0
        gd = 0.0
        for j in range(N):
            if j == i:
                g[i, j] = 0.0
                continue
            r = d_s[i, j] / mu_s - d_t[i, j] / mu_t
            a = r if r >= 0.0 else -r
            if a < 1.0:
                acc += 0.5 * r * r
            else:
                acc += a - 0.5
            clip = r
            if clip > 1.0:
                clip = 1.0
            if clip < -1.0:
                clip = -1.0
            g[i, j] = clip / P
            gd += g[i, j] * d_s[i, j]
        row_loss[i] = acc
        row_gd[i] = gd


@cuda.jit
def distance_grad_kernel(e, d, live, row_sum, g, row_gd, de):
    """e, de (out): (N, D) float32; d, live, g: (N, N) float64; row_sum, row_gd: (N,).
    With ``dd_ij = g_ij / mu - S / (mu**2 P)`` (S = sum row_gd, i != j) and
    ``G_ij = dd_ij / d_ij`` on live pairs (else 0):
    ``de[i, c] = sum_j (G_ij + G_ji) (e_ic - e_jc)``. grid: blocks(N * D); block: TPB."""
    k = cuda.grid(1)
    N, D = e.shape
    if k < N * D:
        i = k // D
        c = k - i * D
        P = N * (N - 1)
        mu = 0.0
        S = 0.0
        for j in range(N):
            mu += row_sum[j]
            S += row_gd[j]
        mu = mu / P
        shift = S / (mu * mu * P)
        acc = 0.0
        for j in range(N):
            if j == i:
                continue
            G = 0.0
            if live[i, j] > 0.0:
                G += (g[i, j] / mu - shift) / d[i, j]
            if live[j, i] > 0.0:
                G += (g[j, i] / mu - shift) / d[j, i]
            acc += G * (np.float64(e[i, c]) - np.float64(e[j, c]))
        de[i, c] = acc


# ------------------------------------------------------------------------ angle
@cuda.jit
def edge_lengths_kernel(e, eps, r):
    """e: (N, D) float32; eps: UNIT_EPS; r (out): (N, N) float64,
    ``r[j, i] = max(||e_i - e_j||, eps)``. grid: blocks(N * N); block: TPB."""
    k = cuda.grid(1)
    N, D = e.shape
    if k < N * N:
        j = k // N
        i = k - j * N
        sq = 0.0
        for c in range(D):
            v = np.float64(e[i, c]) - np.float64(e[j, c])
            sq += v * v
        norm = math.sqrt(sq)
        r[j, i] = norm if norm > eps else eps


@cuda.jit
def angle_anchor_kernel(es, et, r_s, r_t, eps, inv_T, du, anchor_loss):
    """es: (N, Ds), et: (N, Dt) float32; r_s, r_t: (N, N) float64 edge lengths;
    eps: UNIT_EPS; inv_T: 1 / (N (N - 1) (N - 2)); du (out): (N, N, Ds) float64;
    anchor_loss (out): (N,) float64. Block j: ``anchor_loss[j] = sum_{i, k} h(C_s - C_t)``
    over distinct (i, j, k), and ``du[j, i]`` the gradient through the unit edge n_ji.
    grid: N blocks; block: TPB (a power of two); thread t takes edges t, t + TPB, ..."""
    part = cuda.shared.array(TPB, float64)        # one partial loss per thread
    j = cuda.blockIdx.x
    t = cuda.threadIdx.x
    N, Ds = es.shape
    Dt = et.shape[1]
    acc = 0.0
    i = t
    while i < N:
        for c in range(Ds):
            du[j, i, c] = 0.0
        if i != j:
            for k in range(N):
                if k == i or k == j:
                    continue
                dot_s = 0.0
                for c in range(Ds):
                    dot_s += ((np.float64(es[i, c]) - np.float64(es[j, c]))
                              * (np.float64(es[k, c]) - np.float64(es[j, c])))
                dot_t = 0.0
                for c in range(Dt):
                    dot_t += ((np.float64(et[i, c]) - np.float64(et[j, c]))
                              * (np.float64(et[k, c]) - np.float64(et[j, c])))
                x = dot_s / (r_s[j, i] * r_s[j, k]) - dot_t / (r_t[j, i] * r_t[j, k])
                a = x if x >= 0.0 else -x
                if a < 1.0:
                    acc += 0.5 * x * x
                else:
                    acc += a - 0.5
                if x > 1.0:
                    x = 1.0
                if x < -1.0:
                    x = -1.0
                w = 2.0 * x * inv_T / r_s[j, k]           # 2 g_jik / r_jk
                for c in range(Ds):
                    du[j, i, c] += w * (np.float64(es[k, c]) - np.float64(es[j, c]))
            if r_s[j, i] > eps:                   # keep the part orthogonal to n_ji, over r_ji
                radial = 0.0
                for c in range(Ds):
                    radial += (np.float64(es[i, c]) - np.float64(es[j, c])) * du[j, i, c]
                radial = radial / r_s[j, i]
                for c in range(Ds):
                    n = (np.float64(es[i, c]) - np.float64(es[j, c])) / r_s[j, i]
                    du[j, i, c] = (du[j, i, c] - n * radial) / r_s[j, i]
            else:                                 # a direction-less edge passes nothing
                for c in range(Ds):
                    du[j, i, c] = 0.0
        i += TPB
    part[t] = acc
    cuda.syncthreads()                            # every thread's partial is in shared memory
    step = TPB // 2
    while step > 0:
        if t < step:
            part[t] += part[t + step]
        cuda.syncthreads()                        # this tree level is done before the next reads it
        step //= 2
    if t == 0:
        anchor_loss[j] = part[0]


@cuda.jit
def angle_grad_kernel(du, de):
    """du: (N, N, D) float64; de (out): (N, D) float32,
    ``de[i, c] = sum_j du[j, i, c] - sum_k du[i, k, c]``. grid: blocks(N * D); block: TPB."""
    k = cuda.grid(1)
    N, _, D = du.shape
    if k < N * D:
        i = k // D
        c = k - i * D
        acc = 0.0
        for j in range(N):
            acc += du[j, i, c]
        for j in range(N):
            acc -= du[i, j, c]
        de[i, c] = acc


@cuda.jit
def rkd_combine_kernel(wd, gd, wa, ga, out):
    """gd, ga, out (out): (M,) float32 (flattened gradients); wd, wa: float64.
    ``out = wd * gd + wa * ga`` in float64. grid: blocks(M); block: TPB."""
    k = cuda.grid(1)
    if k < out.shape[0]:
        out[k] = wd * np.float64(gd[k]) + wa * np.float64(ga[k])


# ----------------------------------------------------------------------- the ops
def _pair(es, et):
    """es as a DeviceTensor, et uploaded: both (N, D), one N; ValueError otherwise."""
    es = as_device(es, "es")
    et_shape = tuple(np.shape(et))
    if es.ndim != 2 or len(et_shape) != 2 or es.shape[0] != et_shape[0]:
        raise ValueError(f"es and et must hold the same N faces as (N, D) arrays, got "
                         f"shapes {es.shape} and {et_shape}")
    return es, as_constant(et, "et")


def rkd_distance_loss(es, et):
    """RKD distance-wise loss on the GPU. es: (N, Ds) float32 DeviceTensor; et: (N, Dt).
    Returns ``(loss, des)``; N < 2 gives ``(0.0, zeros)``."""
    es, et = _pair(es, et)
    N = es.shape[0]
    if N < 2:
        return 0.0, zeros(es.shape)
    d_s, live, d_t, live_t, g = (cuda.device_array((N, N), np.float64) for _ in range(5))
    sum_s, sum_t, row_loss, row_gd = (cuda.device_array(N, np.float64) for _ in range(4))
    pair_distances_kernel[blocks(N), TPB](es.data, DIST_EPS, d_s, live, sum_s)
    pair_distances_kernel[blocks(N), TPB](et.data, DIST_EPS, d_t, live_t, sum_t)
    distance_rows_kernel[blocks(N), TPB](d_s, d_t, sum_s, sum_t, g, row_loss, row_gd)
    des = empty(es.shape)
    distance_grad_kernel[blocks(es.size), TPB](es.data, d_s, live, sum_s, g, row_gd, des.data)
    return host_sum(row_loss) / (N * (N - 1)), des


def rkd_angle_loss(es, et):
    """RKD angle-wise loss on the GPU. es: (N, Ds) float32 DeviceTensor; et: (N, Dt).
    Returns ``(loss, des)``; N < 3 gives ``(0.0, zeros)``. Work buffer: (N, N, Ds) float64."""
    es, et = _pair(es, et)
    N, Ds = es.shape
    if N < 3:
        return 0.0, zeros(es.shape)
    r_s = cuda.device_array((N, N), np.float64)
    r_t = cuda.device_array((N, N), np.float64)
    edge_lengths_kernel[blocks(N * N), TPB](es.data, UNIT_EPS, r_s)
    edge_lengths_kernel[blocks(N * N), TPB](et.data, UNIT_EPS, r_t)
    du = cuda.device_array((N, N, Ds), np.float64)
    anchor_loss = cuda.device_array(N, np.float64)
    T = N * (N - 1) * (N - 2)
    angle_anchor_kernel[N, TPB](es.data, et.data, r_s, r_t, UNIT_EPS, 1.0 / T, du, anchor_loss)
    des = empty(es.shape)
    angle_grad_kernel[blocks(es.size), TPB](du, des.data)
    return host_sum(anchor_loss) / T, des


def rkd_loss(es, et, w_distance=25.0, w_angle=50.0):
    """RKD, ``w_distance * rkd_distance_loss + w_angle * rkd_angle_loss``, on the GPU.
    es: (N, Ds) float32 DeviceTensor; et: (N, Dt). Returns ``(loss, des)``."""
    w_distance = check_nonnegative("w_distance", w_distance)
    w_angle = check_nonnegative("w_angle", w_angle)
    ld, gd = rkd_distance_loss(es, et)
    la, ga = rkd_angle_loss(es, et)
    des = empty(gd.shape)
    if des.size:
        rkd_combine_kernel[blocks(des.size), TPB](w_distance, gd.ravel().data, w_angle,
                                                  ga.ravel().data, des.ravel().data)
    return w_distance * ld + w_angle * la, des


_F1, _F2, _D1, _D2 = "float32[::1]", "float32[:, ::1]", "float64[::1]", "float64[:, ::1]"
PTX_SIGNATURES = {
    "pair_distances_kernel": [f"void({_F2}, float64, {_D2}, {_D2}, {_D1})"],
    "distance_rows_kernel": [f"void({_D2}, {_D2}, {_D1}, {_D1}, {_D2}, {_D1}, {_D1})"],
    "distance_grad_kernel": [f"void({_F2}, {_D2}, {_D2}, {_D1}, {_D2}, {_D1}, {_F2})"],
    "edge_lengths_kernel": [f"void({_F2}, float64, {_D2})"],
    "angle_anchor_kernel": [f"void({_F2}, {_F2}, {_D2}, {_D2}, float64, float64, "
                            f"float64[:, :, ::1], {_D1})"],
    "angle_grad_kernel": [f"void(float64[:, :, ::1], {_F2})"],
    "rkd_combine_kernel": [f"void(float64, {_F1}, float64, {_F1}, {_F1})"],
}
