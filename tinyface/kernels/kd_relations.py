"""RKD angle-wise loss, Numba CPU kernels.

Same maths and signatures as ``rkd_angle_loss`` and ``rkd_loss`` of
``tinyface.reference.kd_relations`` (whose argument check and distance loss are
reused). The O(N**3 D) work runs in two passes, both a ``prange`` whose iterations
write only their own rows, so the result does not depend on the thread count:

1. over the anchors j: the unit edges ``n_ji = (e_i - e_j) / max(||e_i - e_j||, UNIT_EPS)``
   of both sides, their cosines ``C_j = n_j n_j^T`` (upper triangle, i < k; the matrix
   is symmetric), the Huber terms, then ``dn_j = 2 g_j n_j`` and its tangential part
   ``du[j, i] = (dn_ji - n_ji <n_ji, dn_ji>) / ||e_i - e_j||`` (0 on edges shorter than
   UNIT_EPS), into an ``(N, N, D)`` buffer, and the anchor's loss into an ``(N,)`` array;
2. over the faces i: ``de_i = sum_j du[j, i] - sum_k du[i, k]``, in index order.

The cosine products loop i, d, k (k innermost, contiguous in a transposed copy of the
edges), so they vectorise while every dot product is still summed in index order (no
fastmath: the serial and parallel twins give the same bits). Everything is computed in
float64 (the inputs are converted first, as the reference does) and the gradient is cast
back to es's dtype.
"""
import numpy as np
from numba import njit, prange

from tinyface.kernels.threading import compile_pair, use_parallel
from tinyface.reference.kd_relations import UNIT_EPS, check_pair, rkd_distance_loss
from tinyface.reference.losses import check_nonnegative


@njit(cache=True)
def _unit_edges(e, j, n, nT, r):
    """Unit edges from anchor j. e: (N, D) float64; n: (N, D), nT: (D, N), r: (N,) (out).

    ``n[i] = (e_i - e_j) / r[i]`` with ``r[i] = max(||e_i - e_j||, UNIT_EPS)``; nT = n^T.
    """
    N, D = e.shape
    for i in range(N):
        s = 0.0
        for d in range(D):
            v = e[i, d] - e[j, d]
            n[i, d] = v
            s += v * v
        norm = max(np.sqrt(s), UNIT_EPS)
        r[i] = norm
        for d in range(D):
            n[i, d] = n[i, d] / norm
            nT[d, i] = n[i, d]


@njit(cache=True)
def _upper_cosines(n, nT, C):
    """n: (N, D), nT: (D, N), C: (N, N) float64 (out). Fills ``C[i, k] = <n_i, n_k>``, i < k."""
    N, D = n.shape
    for i in range(N):
        for k in range(N):
            C[i, k] = 0.0
        for d in range(D):
            a = n[i, d]
            for k in range(i + 1, N):
                C[i, k] += a * nT[d, k]


def _angle_anchor_kernel(es, et, inv_t, row_loss, du):
    """es: (N, Ds), et: (N, Dt) float64; inv_t: 1 / (N (N - 1) (N - 2));
    row_loss: (N,) float64 (out), the anchor's sum of Huber terms, already over T;
    du: (N, N, Ds) float64 (out), ``du[j, i]`` the gradient on the edge ``e_i - e_j``.
    """
    N, Ds = es.shape
    Dt = et.shape[1]
    for j in prange(N):
        ns = np.empty((N, Ds))
        nsT = np.empty((Ds, N))
        rs = np.empty(N)
        nt = np.empty((N, Dt))
        ntT = np.empty((Dt, N))
        rt = np.empty(N)
        _unit_edges(es, j, ns, nsT, rs)
        _unit_edges(et, j, nt, ntT, rt)
        Cs = np.empty((N, N))
        Ct = np.empty((N, N))
        _upper_cosines(ns, nsT, Cs)
        _upper_cosines(nt, ntT, Ct)
        g = np.zeros((N, N))                      # dL/dC_j + dL/dC_j^T, symmetric
        loss = 0.0
        for i in range(N):
            if i == j:
                continue
            for k in range(i + 1, N):
                if k == j:
                    continue
                diff = Cs[i, k] - Ct[i, k]
                a = abs(diff)
                if a < 1.0:
                    loss += diff * diff         # 2 * h: the triplets (i, j, k) and (k, j, i)
                else:
                    loss += 2.0 * a - 1.0
                gik = 2.0 * min(max(diff, -1.0), 1.0) * inv_t
                g[i, k] = gik
                g[k, i] = gik
        row_loss[j] = loss * inv_t
        for i in range(N):
            dn = du[j, i]
            for d in range(Ds):
                dn[d] = 0.0
            if i == j or rs[i] <= UNIT_EPS:      # direction-less edge: no gradient
                continue
            for k in range(N):
                gik = g[i, k]
                if gik != 0.0:
                    for d in range(Ds):
                        dn[d] += gik * ns[k, d]
            radial = 0.0
            for d in range(Ds):
                radial += ns[i, d] * dn[d]
            inv_r = 1.0 / rs[i]
            for d in range(Ds):
                dn[d] = (dn[d] - ns[i, d] * radial) * inv_r


def _gather_kernel(du, de):
    """du: (N, N, D) float64; de: (N, D) float64 (out), ``sum_j du[j, i] - sum_k du[i, k]``."""
    N, _, D = du.shape
    for i in prange(N):
        for d in range(D):
            de[i, d] = 0.0
        for j in range(N):
            for d in range(D):
                de[i, d] += du[j, i, d]
        for k in range(N):
            for d in range(D):
                de[i, d] -= du[i, k, d]


_angle_anchor = compile_pair(_angle_anchor_kernel)
_gather = compile_pair(_gather_kernel)


def rkd_angle_loss(es, et):
    """RKD angle-wise loss (Park et al. 2019), as ``tinyface.reference.kd_relations``.

    es: (N, Ds) float, the student's embeddings; et: (N, Dt) float, the teacher's.
    ``loss = 1 / (N (N - 1) (N - 2)) * sum_{i, j, k distinct} huber(cos_ijk(es) - cos_ijk(et))``
    with the cosine at the vertex j; edges shorter than ``UNIT_EPS`` have cosine 0 and no
    gradient. Cost O(N**3 (Ds + Dt)) time, O(N**2 Ds) memory. N < 3 gives
    ``(0.0, zeros)``. Returns ``(loss, des)``: a float and des (N, Ds) in es's dtype.
    """
    es, et = check_pair(es, et)
    N, Ds = es.shape
    if N < 3:
        return 0.0, np.zeros_like(es)
    e_s = np.ascontiguousarray(es, dtype=np.float64)               # (N, Ds)
    e_t = np.ascontiguousarray(et, dtype=np.float64)               # (N, Dt)
    inv_t = 1.0 / (N * (N - 1) * (N - 2))
    row_loss = np.empty(N, np.float64)                             # (N,)
    du = np.empty((N, N, Ds), np.float64)                          # (N, N, Ds)
    de = np.empty((N, Ds), np.float64)                             # (N, Ds)
    pick = 1 if use_parallel(N) else 0
    _angle_anchor[pick](e_s, e_t, inv_t, row_loss, du)
    _gather[pick](du, de)
    return float(row_loss.sum()), de.astype(es.dtype)


def rkd_loss(es, et, w_distance=25.0, w_angle=50.0):
    """RKD, ``w_distance * rkd_distance_loss + w_angle * rkd_angle_loss``.

    es: (N, Ds) float; et: (N, Dt) float. The distance term is the NumPy reference's
    (O(N**2 D)), the angle term this module's kernel. Returns ``(loss, des)``, des (N, Ds)
    in es's dtype, as the reference ``rkd_loss``.
    """
    w_distance = check_nonnegative("w_distance", w_distance)
    w_angle = check_nonnegative("w_angle", w_angle)
    ld, gd = rkd_distance_loss(es, et)
    la, ga = rkd_angle_loss(es, et)
    des = w_distance * gd.astype(np.float64) + w_angle * ga.astype(np.float64)
    return w_distance * ld + w_angle * la, des.astype(gd.dtype)
