"""Relational and contrastive distillation losses, NumPy reference. Each returns
``(loss, des)``: a Python float and the gradient with respect to the student's
embeddings ``es``, in ``es``'s dtype (computed in float64). The teacher's side is a
constant.

- ``rkd_distance_loss``, ``rkd_angle_loss``, ``rkd_loss``: relational knowledge
  distillation (Park, Kim, Lu, Cho, "Relational knowledge distillation", CVPR 2019):
  the student copies the *shape* of the batch (pairwise distances, triplet angles),
  not the teacher's coordinates, so the two embeddings may differ in dimension;
- ``pkt_loss``: probabilistic knowledge transfer (Passalis & Tefas, "Learning deep
  representations with probabilistic knowledge transfer", ECCV 2018): the student copies
  the teacher's conditional distribution of cosine affinities within the batch;
- ``crd_loss``: contrastive representation distillation (Tian, Krishnan, Isola,
  "Contrastive representation distillation", ICLR 2020), simplified to InfoNCE against
  a bank of teacher embeddings.

Huber below is the smooth L1 loss with ``delta = 1``:
``h(r) = r**2 / 2`` for ``|r| < 1`` and ``|r| - 1/2`` otherwise, ``h'(r) = clip(r, -1, 1)``.
"""
import numpy as np

from tinyface.reference.losses import _log_softmax, check_nonnegative
from tinyface.reference.normalize import (
    check_rows,
    l2_normalize_backward,
    l2_normalize_forward,
)

DIST_EPS = 1e-12     # floor on squared pairwise distances (RKD distance)
UNIT_EPS = 1e-12     # floor on the length of an edge before it is normalised (RKD angle)


def check_pair(es, et):
    """es: (N, Ds), et: (N, Dt), the two sides of one batch of faces; ValueError otherwise."""
    es = check_rows(es, "es")
    et = check_rows(et, "et")
    if es.shape[0] != et.shape[0]:
        raise ValueError(f"es and et must hold the same N faces, got shapes {es.shape} "
                         f"and {et.shape}")
    return es, et


def _huber(r):
    """Smooth L1 with delta 1, elementwise; returns ``(h(r), h'(r))``."""
    a = np.abs(r)
    return np.where(a < 1.0, 0.5 * r * r, a - 0.5), np.clip(r, -1.0, 1.0)


# ------------------------------------------------------------------ RKD distance
def _distance_potentials(e):
    """Pairwise distances divided by their mean over the N (N - 1) ordered pairs i != j.

    e: (N, D) float64. Returns ``(psi, cache)``: psi (N, N) float64 with a zero diagonal,
    ``psi_ij = ||e_i - e_j|| / mu``. Squared distances are floored at ``DIST_EPS``, so
    identical faces get distance ``1e-6`` (not 0: the square root has no derivative at 0)
    and no gradient.
    """
    N = e.shape[0]
    diff = e[:, None, :] - e[None, :, :]                          # (N, N, D)
    sq = np.einsum("ijd,ijd->ij", diff, diff)                     # (N, N)
    off = ~np.eye(N, dtype=bool)
    live = off & (sq > DIST_EPS)                                  # pairs with a gradient
    d = np.sqrt(np.maximum(sq, DIST_EPS)) * off                   # (N, N), zero diagonal
    mu = d.sum() / off.sum()
    return d / mu, (d, mu, off, live)


def _distance_backward(e, g, cache):
    """g: (N, N) dL/dpsi. Returns de: (N, D) float64.

    With ``psi = d / mu`` and ``mu = sum_off d / P``:
    ``dL/dd_kl = g_kl / mu - sum_ij g_ij d_ij / (mu**2 P)`` on the P off-diagonal pairs;
    then ``d_ij = ||e_i - e_j||`` gives, with ``G = dL/dd / d``,
    ``de = (rowsum G + colsum G) e - (G + G^T) e``.
    """
    d, mu, off, live = cache
    dd = (g / mu - (g * d).sum() / (mu * mu * off.sum())) * off  # (N, N)
    G = np.where(live, dd / np.where(live, d, 1.0), 0.0)          # (N, N)
    return (G.sum(axis=1) + G.sum(axis=0))[:, None] * e - (G + G.T) @ e


def rkd_distance_loss(es, et):
    """RKD distance-wise loss (Park et al. 2019, distance-wise distillation loss).

    es: (N, Ds) float, the student's embeddings; et: (N, Dt) float, the teacher's.
    With the distance potential ``psi(e)_ij = ||e_i - e_j|| / mu``, ``mu`` the mean
    distance over the pairs ``i != j`` of the batch,
    ``loss = 1 / (N (N - 1)) * sum_{i != j} huber(psi(es)_ij - psi(et)_ij)``.
    The paper's code averages over all N**2 entries, zero diagonal included, which is
    ``(N - 1) / N`` times this. Squared distances are floored at ``DIST_EPS = 1e-12``
    (identical faces: distance 1e-6, no gradient through that pair). Invariant to a
    scaling of either side. Cost O(N**2 D). N < 2 gives ``(0.0, zeros)``.
    Returns ``(loss, des)``, des (N, Ds) in es's dtype.
    """
    es, et = check_pair(es, et)
    N = es.shape[0]
    if N < 2:
        return 0.0, np.zeros_like(es)
    e = es.astype(np.float64)
    psi_s, cache = _distance_potentials(e)                        # (N, N)
    psi_t, _ = _distance_potentials(et.astype(np.float64))        # (N, N)
    off = cache[2]
    P = off.sum()
    h, dh = _huber(psi_s - psi_t)
    loss = (h * off).sum() / P
    des = _distance_backward(e, dh * off / P, cache)
    return float(loss), des.astype(es.dtype)


# --------------------------------------------------------------------- RKD angle
def _angle_cosines(e):
    """Cosines of every triplet's angle, vertex first.

    e: (N, D) float64. Returns ``(C, cache)``: C (N, N, N) float64 with
    ``C[j, i, k] = <n_ji, n_jk>`` where ``n_ji = (e_i - e_j) / max(||e_i - e_j||, UNIT_EPS)``,
    the cosine of the angle at e_j between e_i - e_j and e_k - e_j. An edge between
    identical faces has no direction: its unit vector is 0, its cosines 0, and it
    passes no gradient.
    """
    N, D = e.shape
    u = e[None, :, :] - e[:, None, :]                             # (N, N, D), u[j, i] = e_i - e_j
    n, norm_cache = l2_normalize_forward(u.reshape(N * N, D), eps=UNIT_EPS)
    n = n.reshape(N, N, D)                                        # unit edges from each vertex
    C = n @ n.transpose(0, 2, 1)                                  # (N, N, N)
    return C, (n, norm_cache)


def _angle_backward(g, cache):
    """g: (N, N, N) dL/dC. Returns de: (N, D) float64.

    ``C[j] = n_j n_j^T`` gives ``dn_j = (g_j + g_j^T) n_j``; each unit edge passes the part
    of its gradient orthogonal to itself, over its length; ``u[j, i] = e_i - e_j`` sends
    ``+du[j, i]`` to e_i and ``-du[j, i]`` to e_j.
    """
    n, norm_cache = cache
    N, _, D = n.shape
    dn = (g + g.transpose(0, 2, 1)) @ n                           # (N, N, D)
    du = l2_normalize_backward(dn.reshape(N * N, D), norm_cache)  # (N*N, D)
    du = np.where(norm_cache[1] > UNIT_EPS, du, 0.0).reshape(N, N, D)
    return du.sum(axis=0) - du.sum(axis=1)


def rkd_angle_loss(es, et):
    """RKD angle-wise loss (Park et al. 2019, angle-wise distillation loss).

    es: (N, Ds) float, the student's embeddings; et: (N, Dt) float, the teacher's.
    For every triplet of distinct faces (i, j, k) the angle potential is the cosine at j,
    ``cos_ijk(e) = <e_i - e_j, e_k - e_j> / (||e_i - e_j|| ||e_k - e_j||)``, and
    ``loss = 1 / (N (N - 1) (N - 2)) * sum_{i, j, k distinct} huber(cos_ijk(es) - cos_ijk(et))``.
    The paper's code averages over all N**3 entries, the degenerate ones (two equal
    indices) included. Edges shorter than ``UNIT_EPS`` (identical faces) count as
    direction-less: cosine 0, no gradient. Invariant to a scaling of either side.

    Cost: O(N**3 D) time and O(N**3 + N**2 D) memory (the (N, N, N) cosines), fine for
    N <= 64; N < 3 has no triplet and gives ``(0.0, zeros)``.
    Returns ``(loss, des)``, des (N, Ds) in es's dtype.
    """
    es, et = check_pair(es, et)
    N = es.shape[0]
    if N < 3:
        return 0.0, np.zeros_like(es)
    C_s, cache = _angle_cosines(es.astype(np.float64))           # (N, N, N)
    C_t, _ = _angle_cosines(et.astype(np.float64))               # (N, N, N)
    idx = np.arange(N)
    distinct = ((idx[:, None, None] != idx[None, :, None])
                & (idx[:, None, None] != idx[None, None, :])
                & (idx[None, :, None] != idx[None, None, :]))     # (N, N, N)
    T = N * (N - 1) * (N - 2)
    h, dh = _huber(C_s - C_t)
    loss = (h * distinct).sum() / T
    des = _angle_backward(dh * distinct / T, cache)
    return float(loss), des.astype(es.dtype)


def rkd_loss(es, et, w_distance=25.0, w_angle=50.0):
    """RKD, ``w_distance * rkd_distance_loss + w_angle * rkd_angle_loss``.

    es: (N, Ds) float; et: (N, Dt) float. The default weights are the paper's (25 and 50,
    Park et al. 2019, metric learning experiments). Returns ``(loss, des)``.
    """
    w_distance = check_nonnegative("w_distance", w_distance)
    w_angle = check_nonnegative("w_angle", w_angle)
    ld, gd = rkd_distance_loss(es, et)
    la, ga = rkd_angle_loss(es, et)
    des = w_distance * gd.astype(np.float64) + w_angle * ga.astype(np.float64)
    return w_distance * ld + w_angle * la, des.astype(gd.dtype)


# ------------------------------------------------------------------------- PKT
def _pkt_probabilities(e, eps):
    """Conditional affinity distributions of a batch.

    e: (N, D) float64. With ``z_i = e_i / (||e_i|| + eps)`` and ``S = (z z^T + 1) / 2``
    (cosines mapped to [0, 1]), ``P_ij = S_ij / sum_k S_ik``; the diagonal is included,
    as in the paper's code. Returns ``(P, cache)``, P (N, N) float64 with rows summing to 1.
    """
    r = np.sqrt(np.sum(e * e, axis=1, keepdims=True))             # (N, 1)
    z = e / (r + eps)                                             # (N, D)
    S = (z @ z.T + 1.0) / 2.0                                     # (N, N), in [0, 1]
    rows = S.sum(axis=1, keepdims=True)                           # (N, 1), >= S_ii ~ 1
    return S / rows, (e, r, z, rows)


def pkt_loss(es, et, eps=1e-7):
    """PKT (Passalis & Tefas 2018, probabilistic knowledge transfer, cosine kernel).

    es: (N, Ds) float, the student's embeddings; et: (N, Dt) float, the teacher's.
    P_s, P_t: (N, N) conditional probabilities ``P_ij = S_ij / sum_k S_ik`` of the cosine
    affinities ``S_ij = (cos(e_i, e_j) + 1) / 2`` within the batch, diagonal included
    (as the paper's code does), and
    ``loss = 1 / N * sum_i sum_j P_t,ij log((P_t,ij + eps) / (P_s,ij + eps))``,
    KL(P_t || P_s) summed over each face's row and averaged over faces (the paper's code
    averages over all N**2 entries, which is this divided by N). ``eps`` also guards the
    norms, ``z = e / (||e|| + eps)``, so a zero embedding has cosine 0 with every face.
    Invariant to a scaling of either side (up to eps).

    Gradient: ``dL/dP_s = -P_t / (N (P_s + eps))``, through the row normalisation
    ``dS_ik = (A_ik - sum_j A_ij P_ij) / rowsum_i``, then ``dz = (dC + dC^T) z`` with
    ``dC = dS / 2``, then ``de = dz / (r + eps) - e <e, dz> / (r (r + eps)**2)``.
    Returns ``(loss, des)``, des (N, Ds) in es's dtype.
    """
    es, et = check_pair(es, et)
    eps = check_nonnegative("eps", eps)
    N = es.shape[0]
    if N == 0:
        return 0.0, np.zeros_like(es)
    P_s, (e, r, z, rows) = _pkt_probabilities(es.astype(np.float64), eps)
    P_t, _ = _pkt_probabilities(et.astype(np.float64), eps)
    loss = (P_t * (np.log(P_t + eps) - np.log(P_s + eps))).sum() / N
    A = -P_t / (N * (P_s + eps))                                  # (N, N) dL/dP_s
    dS = (A - (A * P_s).sum(axis=1, keepdims=True)) / rows        # (N, N)
    dC = dS / 2.0
    dz = (dC + dC.T) @ z                                          # (N, D)
    radial = np.sum(e * dz, axis=1, keepdims=True)                # (N, 1)
    r_safe = np.where(r > 0, r, 1.0)
    des = dz / (r + eps) - e * radial / (r_safe * (r + eps) ** 2)
    return float(loss), des.astype(es.dtype)


# ------------------------------------------------------------------------- CRD
def _check_indices(idx, name, shape, M):
    idx = np.asarray(idx)
    if idx.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {idx.shape}")
    if idx.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= M):
        bad = idx[(idx < 0) | (idx >= M)][0]
        raise ValueError(f"{name} index {bad} is outside [0, {M}) for a bank of {M} rows")
    return idx.astype(np.int64)


def check_candidates(pos, neg, tau, N, M):
    """CRD's rows of a bank of M rows for N faces (every tier): pos (N,) and neg (N, K),
    K >= 1, ints in [0, M); tau > 0. Returns ``(pos, neg, tau)``: int64 rows, a float."""
    neg = np.asarray(neg)
    if neg.ndim != 2 or neg.shape[0] != N or neg.shape[1] < 1:
        raise ValueError(f"neg must be (N, K) = ({N}, K) with K >= 1, got shape {neg.shape}")
    pos = _check_indices(pos, "pos", (N,), M)
    neg = _check_indices(neg, "neg", neg.shape, M)
    tau = float(tau)
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"temperature tau must be a positive number, got {tau}")
    return pos, neg, tau


def crd_loss(es, bank, pos, neg, tau=0.07):
    """Contrastive distillation, InfoNCE against teacher embeddings (after Tian et al. 2020).

    es:   (N, D) float, the student's embeddings, already projected to the bank's D;
    bank: (M, D) float, teacher embeddings (a constant);
    pos:  (N,) int in [0, M), the row of each face's own teacher embedding;
    neg:  (N, K) int in [0, M), K >= 1 negatives per face, drawn by the caller (seeded;
          the caller also keeps ``pos`` out of ``neg`` if it wants to);
    tau:  float > 0, the temperature.
    With ``z = es / ||es||`` and ``b = bank / ||bank||`` row-wise,
    ``logits_i = [z_i . b_pos(i), z_i . b_neg(i, 1), ..., z_i . b_neg(i, K)] / tau`` and
    ``loss = mean_i CE(logits_i, 0) = -mean_i log softmax(logits_i)[0]``.

    Differences from the paper: CRD trains learned projection heads on both sides and
    scores pairs by NCE (a binary critic against a uniform noise distribution, with
    normalisation constants), drawing thousands of negatives from a memory bank of teacher
    features updated with momentum during training. Here the bank is a fixed array, the
    student side is projected by the caller, the teacher side not at all, and the critic is
    the K + 1-way softmax of InfoNCE. Returns ``(loss, des)``, des (N, D) in es's dtype.
    """
    es = check_rows(es, "es")
    bank = check_rows(bank, "bank")
    N, D = es.shape
    M = bank.shape[0]
    if bank.shape[1] != D:
        raise ValueError(f"es and bank must share D, got shapes {es.shape} and {bank.shape}")
    pos, neg, tau = check_candidates(pos, neg, tau, N, M)
    if N == 0:
        return 0.0, np.zeros_like(es)
    z, z_cache = l2_normalize_forward(es.astype(np.float64))     # (N, D)
    b, _ = l2_normalize_forward(bank.astype(np.float64))         # (M, D)
    cand = b[np.concatenate([pos[:, None], neg], axis=1)]         # (N, K + 1, D)
    logits = np.einsum("nd,nkd->nk", z, cand) / tau               # (N, K + 1)
    logp = _log_softmax(logits)
    loss = -logp[:, 0].mean()
    dlogits = np.exp(logp)                                        # softmax
    dlogits[:, 0] -= 1.0
    dz = np.einsum("nk,nkd->nd", dlogits / N, cand) / tau         # (N, D)
    des = l2_normalize_backward(dz, z_cache)
    return float(loss), des.astype(es.dtype)
