"""Distillation losses on intermediate maps and features, NumPy reference.

Each loss returns ``(loss, dstudent)``: a Python float and the gradient with respect to
the student's input only (the teacher is a constant), in the student's dtype.

- ``attention_map_forward`` / ``attention_map_backward``: the spatial attention map of
  attention transfer (AT), ``a = vec(mean_c f**2) / ||vec(mean_c f**2)||_2``;
- ``at_loss``:   attention transfer, ``beta / 2 * mean_n ||a_s - a_t||_2**2``;
- ``adaptive_pool_matrix`` / ``adaptive_avg_pool`` / ``teacher_attention``: the
  teacher's side of AT stored once (no gradient): its attention map average-pooled to the
  student's size, also for a non-integer ratio of the sides, then normalised;
- ``attention_rows_loss``: AT against such stored teacher rows,
  ``mean_{n,p} (a_s[n, p] - a_t[n, p])**2``;
- ``sp_loss``:   similarity-preserving distillation (SP), ``||G_s - G_t||_F**2 / N**2``
  between the row-normalised batch Gram matrices;
- ``fsim_loss``: weighted mean over faces of ``1 - cos(pred_i, target_i)``.

AT and SP compare maps of different widths without an adapter: AT reduces the channels
to one spatial map, SP reduces each face to its similarities with the other faces of the
batch. FSIM compares vectors of one width (the student's after an adapter when needed).
Maps, norms and Gram matrices are computed in float64 and returned in the input's dtype,
like ``tinyface.reference.losses``. Norms are clamped at ``eps`` (as in
``tinyface.reference.normalize``), so all-zero maps give a zero map and a finite gradient.
"""
import numpy as np

from tinyface.reference.losses import check_nonnegative, check_regression
from tinyface.reference.normalize import (
    DEFAULT_EPS,
    l2_normalize_backward,
    l2_normalize_forward,
)


def _as_float(x):
    """``x`` as a float array (integers become float32)."""
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def pool_factor(s_shape, t_shape):
    """The integer ``k`` with ``t_shape = (N, Ct, k*H, k*W)`` for ``s_shape = (N, Cs, H, W)``.

    ValueError naming both shapes when the teacher map cannot be pooled to the student's.
    """
    s_shape, t_shape = tuple(s_shape), tuple(t_shape)
    prefix = (f"the teacher map {t_shape} cannot be pooled to the student's {s_shape}: ")
    if len(s_shape) != 4 or len(t_shape) != 4:
        raise ValueError(prefix + "both must be (N, C, H, W)")
    if min(s_shape[1:]) < 1 or min(t_shape[1:]) < 1:
        raise ValueError(prefix + "channels, height and width must be >= 1")
    if s_shape[0] != t_shape[0]:
        raise ValueError(prefix + f"batch sizes differ ({t_shape[0]} vs {s_shape[0]})")
    (H, W), (Ht, Wt) = s_shape[2:], t_shape[2:]
    k = Ht // H
    if k < 1 or Ht != k * H or Wt != k * W:
        raise ValueError(prefix + "its height and width must be one integer multiple k >= 1 "
                         "of the student's (H' = k*H, W' = k*W)")
    return k


def _channel_energy(f):
    """f: (N, C, H, W) float. Returns ``mean_c f**2``: (N, H, W) float64."""
    return np.mean(np.square(f, dtype=np.float64), axis=1)


def attention_map_forward(f, eps=DEFAULT_EPS):
    """Spatial attention map of activation-based attention transfer.

    Zagoruyko & Komodakis, "Paying more attention to attention", ICLR 2017, with p = 2:
    ``q = vec(mean_c f_c**2)`` and ``a = q / max(||q||_2, eps)``. The paper sums over the
    channels; the mean differs by the factor C, which the normalisation removes.

    f: (N, C, H, W) float. Returns ``(a, cache)``: a (N, H*W) in f's dtype, rows of unit
    norm (zero for an all-zero map); cache for ``attention_map_backward``.
    """
    f = _as_float(f)
    if f.ndim != 4 or min(f.shape[1:]) < 1:
        raise ValueError(f"f must be (N, C, H, W) with C, H, W >= 1, got shape {f.shape}")
    N = f.shape[0]
    q = _channel_energy(f).reshape(N, -1)                                # (N, H*W) float64
    a, norm_cache = l2_normalize_forward(q, eps)                         # (N, H*W) float64
    return a.astype(f.dtype), (f, norm_cache)


def attention_map_backward(da, cache):
    """da: (N, H*W). Returns df: (N, C, H, W) in f's dtype.

    With ``a = q / r``: ``dq = (da - a <a, da>) / r`` and ``df = dq * 2 f / C``.
    """
    f, norm_cache = cache
    N, C, H, W = f.shape
    da = np.asarray(da, dtype=np.float64)
    if da.shape != (N, H * W):
        raise ValueError(f"da has shape {da.shape}, the forward output {(N, H * W)}")
    dq = l2_normalize_backward(da, norm_cache).reshape(N, 1, H, W)       # (N, 1, H, W)
    return (dq * 2.0 * np.asarray(f, np.float64) / C).astype(f.dtype)    # (N, C, H, W)


def at_loss(fs, ft, beta=1.0):
    """Attention transfer between one student stage and one teacher stage.

    Zagoruyko & Komodakis, "Paying more attention to attention", ICLR 2017:
    ``L = beta / 2 * ||a_s - a_t||_p`` summed over matched stages, with the attention maps
    ``a`` of ``attention_map_forward`` (p = 2). We implement the squared variant averaged
    over the faces of the batch::

        loss = beta / 2 * mean_n ||a_s[n] - a_t[n]||_2**2

    which is smooth where the maps agree (the unsquared norm has no gradient at 0). The
    authors' released code also averages over the H*W positions, so its beta is ours
    times H*W.

    Matching stages: the teacher's map may be larger by an integer factor k. Its channel
    energy ``mean_c ft**2`` (N, k*H, k*W) is average-pooled over k x k windows to the
    student's H x W and then normalised; so the teacher's map is pooled to the student's
    size, with no adapter: nothing is learnt for the match, nothing to drop at deployment.
    The channel counts may differ freely.

    fs:   (N, Cs, H, W) float, the student's map;
    ft:   (N, Ct, k*H, k*W) float, the teacher's map (a constant), integer k >= 1;
    beta: float >= 0, the weight of the term.
    Returns ``(loss, dfs)``: dfs (N, Cs, H, W) in fs's dtype. Other shapes (also another
    batch size) raise ValueError naming both shapes.
    """
    fs, ft = _as_float(fs), _as_float(ft)
    pool_factor(fs.shape, ft.shape)         # an integer factor, or ValueError naming both shapes
    beta = check_nonnegative("beta", beta)
    N, _, H, W = fs.shape
    if N == 0:
        return 0.0, np.zeros_like(fs)
    a_t = _pooled_attention(ft, (H, W))                                  # (N, H*W) float64
    return _attention_distance(fs, a_t, beta / (2.0 * N))


def _pooled_attention(ft, size, eps=DEFAULT_EPS):
    """ft: (N, C, H', W') float -> (N, h*w) float64: ``mean_c ft**2`` pooled to ``size``
    (``adaptive_avg_pool``) and L2-normalised per face (norms clamped at ``eps``)."""
    q = adaptive_avg_pool(_channel_energy(ft), size).reshape(len(ft), -1)
    return l2_normalize_forward(q, eps)[0]


def _attention_distance(fs, a_t, scale):
    """``(scale * ||a_s - a_t||^2, dfs)`` summed over faces and positions, with ``a_s``
    the student's ``attention_map_forward`` of fs (N, C, H, W) and a_t (N, H*W) a constant."""
    a_s, cache = attention_map_forward(fs.astype(np.float64))            # (N, H*W) float64
    diff = a_s - a_t                                                     # (N, H*W)
    dfs = attention_map_backward(2.0 * scale * diff, cache)              # (N, C, H, W)
    return float(scale * np.sum(diff ** 2)), dfs.astype(fs.dtype)


def adaptive_pool_matrix(n_in, n_out):
    """(n_out, n_in) float64 weights of area-weighted adaptive average pooling on one axis.

    Student cell ``i`` covers ``[i r, (i + 1) r)`` in teacher cells, ``r = n_in / n_out``;
    teacher cell ``j`` covers ``[j, j + 1)``. The weight is their overlap over the
    student cell's length::

        P[i, j] = |[i r, (i+1) r) & [j, j+1)| / r
                = max(0, min((i+1) n_in, (j+1) n_out) - max(i n_in, j n_out)) / n_in

    (the second form in units of 1 / n_out teacher cells: integers, so the overlaps are
    exact). Each row sums to 1 (a weighted mean) and each column to ``n_out / n_in`` (every
    teacher cell is shared out in full). For ``n_in = k n_out``, ``P[i, j] = 1 / k`` for
    ``j`` in ``[i k, (i + 1) k)``: the k-window mean.
    """
    n_in, n_out = int(n_in), int(n_out)
    if n_in < 1 or n_out < 1:
        raise ValueError(f"adaptive pooling needs sizes >= 1, got {n_in} -> {n_out}")
    i = np.arange(n_out)[:, None]                                        # (n_out, 1)
    j = np.arange(n_in)[None, :]                                         # (1, n_in)
    lo = np.maximum(i * n_in, j * n_out)
    hi = np.minimum((i + 1) * n_in, (j + 1) * n_out)
    return np.maximum(hi - lo, 0) / float(n_in)                          # (n_out, n_in)


def adaptive_avg_pool(q, size):
    """q: (N, H, W) float -> (N, h, w) float64, ``size = (h, w)``: each output cell the
    overlap-weighted mean of the input cells under it (``adaptive_pool_matrix`` on each
    axis, ``P_h q P_w^T``). For ``H = k h`` and ``W = k w`` it is the k x k window mean;
    in every case ``sum(out) * (H W) / (h w) = sum(q)``."""
    q = np.asarray(q, np.float64)
    if q.ndim != 3 or min(q.shape[1:]) < 1:
        raise ValueError(f"q must be (N, H, W) with H, W >= 1, got shape {q.shape}")
    h, w = (int(v) for v in size)
    P_h = adaptive_pool_matrix(q.shape[1], h)                            # (h, H)
    P_w = adaptive_pool_matrix(q.shape[2], w)                            # (w, W)
    return P_h @ q @ P_w.T                                               # (N, h, w)


def teacher_attention(ft, size, eps=DEFAULT_EPS):
    """The teacher's side of attention transfer, pooled to the student's map size.

    ft: (N, C, H', W') float, the teacher's map; size: (h, w), the student's map size.
    Returns (N, h*w) float32: ``vec(pool(mean_c ft**2))`` L2-normalised per face (norms
    clamped at ``eps``), where ``pool`` is ``adaptive_avg_pool`` (the k x k mean when
    ``H' = k h``, ``W' = k w``, as in ``at_loss``). No gradient: the teacher is a constant.
    """
    ft = _as_float(ft)
    if ft.ndim != 4 or min(ft.shape[1:]) < 1:
        raise ValueError(f"ft must be (N, C, H, W) with C, H, W >= 1, got shape {ft.shape}")
    return _pooled_attention(ft, size, eps).astype(np.float32)


def attention_rows_loss(fs, a_t):
    """Attention transfer against stored teacher rows (``teacher_attention``).

    ``loss = mean_{n, p} (a_s[n, p] - a_t[n, p])**2`` over the N faces and P = H*W
    positions, with ``a_s`` the student's ``attention_map_forward``: the normalisation of
    RepDistiller's AT (``(at(f_s) - at(f_t)).pow(2).mean()``), which is ``2 / P`` times
    ``at_loss`` at beta 1. ``dfs = attention_map_backward(2 (a_s - a_t) / (N P))``.

    fs: (N, C, H, W) float, the student's map; a_t: (N, H*W) float, unit rows (a constant).
    Returns ``(loss, dfs)``: dfs (N, C, H, W) in fs's dtype.
    """
    fs = _as_float(fs)
    a_t = np.asarray(a_t, np.float64)
    if fs.ndim != 4 or a_t.shape != (fs.shape[0], fs.shape[2] * fs.shape[3]):
        raise ValueError(f"the student map {fs.shape} and the teacher's attention rows "
                         f"{a_t.shape} must be (N, C, H, W) and (N, H*W)")
    if fs.shape[0] == 0:
        return 0.0, np.zeros_like(fs)
    return _attention_distance(fs, a_t, 1.0 / a_t.size)


def _gram_rows(F):
    """F: (N, D) float64. Returns ``(G, cache)``: the Gram matrix ``F F^T`` (N, N) with
    each row L2-normalised, and the normalisation's cache."""
    return l2_normalize_forward(F @ F.T)


def sp_loss(fs, ft):
    """Similarity-preserving knowledge distillation.

    Tung & Mori, "Similarity-preserving knowledge distillation", ICCV 2019: with the
    features of a batch flattened per face into ``F`` (N, D), ``G = F F^T`` (N, N) and each
    row of G divided by its L2 norm::

        loss = ||G_s - G_t||_F**2 / N**2

    The student matches how similar the faces of the batch are to each other, not the
    features themselves: D may differ between student and teacher, and the loss does not
    change when either side's features are scaled (the Gram rows are normalised).
    With ``dG = 2 (G_s - G_t) / N**2``, ``dQ = (dG - G_s <G_s, dG>_rows) / r`` and
    ``dF = (dQ + dQ^T) F_s``.

    fs: (N, ...) float, the student's features (any rank, flattened per face);
    ft: (N, ...) float, the teacher's features (a constant).
    Returns ``(loss, dfs)``: dfs of fs's shape and dtype. A batch-size mismatch raises
    ValueError naming both shapes.
    """
    fs, ft = _as_float(fs), _as_float(ft)
    if fs.ndim < 1 or ft.ndim < 1 or fs.shape[0] != ft.shape[0]:
        raise ValueError(f"student features {fs.shape} and teacher features {ft.shape} "
                         f"must be (N, ...) with one batch size N")
    N = fs.shape[0]
    if N == 0:
        return 0.0, np.zeros_like(fs)
    F_s = fs.reshape(N, -1).astype(np.float64)                           # (N, Ds)
    G_s, cache = _gram_rows(F_s)                                         # (N, N)
    G_t, _ = _gram_rows(ft.reshape(N, -1).astype(np.float64))            # (N, N)
    diff = G_s - G_t                                                     # (N, N)
    loss = np.sum(diff ** 2) / (N * N)
    dQ = l2_normalize_backward(2.0 * diff / (N * N), cache)              # (N, N)
    dF = (dQ + dQ.T) @ F_s                                               # (N, Ds)
    return float(loss), dF.reshape(fs.shape).astype(fs.dtype)


def fsim_loss(pred, target, weights=None):
    """Feature-similarity distillation: one minus the cosine between face features.

    A per-face cosine loss, in the spirit of the feature-similarity distillation of F-SKD
    (2023) for low-resolution faces::

        loss = sum_i w_i (1 - cos(pred_i, target_i)) / sum_i w_i

    with ``cos(p, t) = <p, t> / (max(||p||, eps) max(||t||, eps))``. It matches directions,
    not lengths; the weights restrict it to selected faces (all-zero weights give 0, 0).
    With ``u = p / ||p||`` and ``v = t / ||t||``:
    ``dpred_i = -w_i (v_i - u_i cos_i) / (||p_i|| sum_j w_j)``.

    pred:    (N, D) float, the student's features (after an adapter when widths differ);
    target:  (N, D) float, the teacher's features (a constant);
    weights: (N,) non-negative float, or None for all ones.
    Returns ``(loss, dpred)``: dpred (N, D) in pred's dtype. Other shapes raise ValueError
    naming both shapes.
    """
    pred, target, w = check_regression(pred, target, weights)
    total = w.sum()
    if total == 0:
        return 0.0, np.zeros_like(pred)
    u, cache = l2_normalize_forward(pred.astype(np.float64))            # (N, D) unit rows
    v, _ = l2_normalize_forward(np.asarray(target, np.float64))          # (N, D) unit rows
    cos = np.sum(u * v, axis=1)                                          # (N,)
    loss = np.sum(w * (1.0 - cos)) / total
    dpred = l2_normalize_backward(-w[:, None] * v / total, cache)        # (N, D)
    return float(loss), dpred.astype(pred.dtype)
