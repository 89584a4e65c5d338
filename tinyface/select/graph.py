"""Sparse k-nearest-neighbour graph over teacher features, by cosine similarity.

Pipeline, for features ``F: (N, D)``:

1. ``l2_normalise``: rows to unit length, so ``cos_ij = <f_i, f_j>``.
2. ``cosine_knn``: for each node, its ``k`` most similar other nodes (self excluded),
   either among all ``N`` nodes or only among the nodes of its own identity. Returned
   as a directed ``scipy.sparse`` CSR matrix ``C: (N, N)`` holding ``cos_ij`` on the
   kNN edges.
3. ``redundancy_graph``: the symmetric, non-negative edge weights of the selector,

       W_ij = max(0, cos_ij) ** sharpen      on kNN edges (i -> j or j -> i),
       W = max(W, W^T),   W_ii = 0,

   as CSR float64. ``sharpen > 1`` pushes weights of merely similar faces towards 0 and
   keeps near-duplicates (cos near 1) near 1: redundancy means "nearly the same face".
   ``select`` uses ``sharpen = 16`` (``cos^16 ~ exp(-16 (1 - cos))``: 1/e at cos ~ 0.94).

Memory. Nothing ``N x N`` is ever dense. The similarity of one row block to all
candidate columns, ``(rows, N)`` float32, is the largest array; ``rows`` is chosen so
that the block fits ``memory_mb`` (default 256 MB). With ``within_identity=True`` the
candidates of a node are its identity's faces only: one small ``n_c x n_c`` product per
identity, exact, and ``O(sum_c n_c^2 D)`` work instead of ``O(N^2 D)``. These small
products run in one serial Numba kernel on the project's ``gemm_nt``, not BLAS: on a
busy 2-core machine a threaded BLAS call on a 100 x 256 block measured 7.7 ms against
30 us single-threaded, mostly waiting for its second thread.

Cost of the global graph (``within_identity=False``): ``2 N^2 D`` flops, e.g. 5 TFLOP
for 100,000 x 256, over a minute of BLAS on 2 cores. The top-k scan is a serial Numba
kernel (about 1 ns per similarity, against 20 ns for ``np.argpartition``). Serial on
purpose: it runs between BLAS calls, where a parallel Numba region would fight BLAS's
threads (see ``tinyface.kernels.threading``).
"""
import numba
import numpy as np
import scipy.sparse as sp

from tinyface.kernels.gemm import gemm_nt

__all__ = ["l2_normalise", "cosine_knn", "redundancy_graph", "block_rows_for"]

_MIN_NORM = 1e-12


def l2_normalise(features):
    """Rows of ``features: (N, D)`` scaled to unit L2 norm, as float32 ``(N, D)``.

    A zero row stays zero (its cosine with everything is 0): it gets no edges.
    """
    f = np.asarray(features, dtype=np.float32)
    norms = np.sqrt(np.einsum("nd,nd->n", f, f, dtype=np.float64))     # (N,)
    scale = (1.0 / np.maximum(norms, _MIN_NORM)).astype(np.float32)
    return f * scale[:, None]


def block_rows_for(n_cols, memory_mb):
    """Rows of a float32 ``(rows, n_cols)`` similarity block that fit ``memory_mb``."""
    return int(max(1, min(n_cols, (memory_mb * 2 ** 20) // (4 * max(n_cols, 1)))))


def _topk_rows(sim, k, self_col, out_idx, out_val):
    """Top-``k`` columns of each row of ``sim``, skipping column ``self_col[r]``.

    sim: (B, M) float32; self_col: (B,) int64 (-1: skip nothing);
    out_idx: (B, k) int64, out_val: (B, k) float32, written in place. Slots a row
    cannot fill (M - 1 < k) keep index -1. Among equal values the lower column wins.
    """
    B, M = sim.shape
    for r in range(B):
        for t in range(k):
            out_idx[r, t] = -1
            out_val[r, t] = -np.inf
        thr = -np.inf            # smallest value kept so far
        pos = 0                  # its slot
        skip = self_col[r]
        for j in range(M):
            v = sim[r, j]
            if v > thr and j != skip:
                out_val[r, pos] = v
                out_idx[r, pos] = j
                thr = out_val[r, 0]
                pos = 0
                for t in range(1, k):                        # k is small: rescan
                    if out_val[r, t] < thr:
                        thr = out_val[r, t]
                        pos = t


_topk_rows_jit = numba.njit(cache=True)(_topk_rows)


def _knn_within_groups(fs, start, k, block, out_idx, out_val):
    """kNN of every node among the nodes of its own group, without BLAS.

    fs: (N, D) float32 unit rows sorted by group, group ``g`` at rows
    ``start[g]:start[g + 1]``; k: neighbours; block: rows per similarity block;
    out_idx: (N, k) int64 neighbour rows of ``fs`` (-1: none), out_val: (N, k) float32.
    Each block's similarities come from the project's serial ``gemm_nt``: one small
    product per identity, where a threaded BLAS call would cost more in thread wake-ups
    than in arithmetic (milliseconds each when the other core is busy).
    """
    n_groups = start.shape[0] - 1
    widest = 0
    for g in range(n_groups):
        widest = max(widest, start[g + 1] - start[g])
    sim = np.empty((block, widest), np.float32)
    self_col = np.empty(block, np.int64)
    for g in range(n_groups):
        a, b = start[g], start[g + 1]
        for r0 in range(a, b, block):
            r1 = min(b, r0 + block)
            s = sim[:r1 - r0, :b - a]
            gemm_nt(fs[r0:r1], fs[a:b], s, False)            # (rows, n_c) cosines
            for r in range(r1 - r0):
                self_col[r] = r0 - a + r
            _topk_rows_jit(s, k, self_col[:r1 - r0], out_idx[r0:r1], out_val[r0:r1])
            for r in range(r0, r1):
                for t in range(k):
                    if out_idx[r, t] >= 0:
                        out_idx[r, t] += a                   # group column -> row of fs


_knn_within_groups_jit = numba.njit(cache=True)(_knn_within_groups)


def _knn_among(fq, fc, k, self_col, memory_mb):
    """kNN of query rows ``fq: (Q, D)`` among candidate rows ``fc: (M, D)`` (unit rows).

    self_col: (Q,) int64 candidate column of each query itself (-1 if none).
    Returns ``(idx, val)``: (Q, k') int64 local candidate indices (-1 = none) and
    float32 cosines, ``k' = min(k, M)``.
    """
    q, m = fq.shape[0], fc.shape[0]
    kk = min(k, m)
    idx = np.empty((q, kk), np.int64)
    val = np.empty((q, kk), np.float32)
    rows = block_rows_for(m, memory_mb)
    buf = np.empty((min(rows, q), m), np.float32)             # the one dense block
    for a in range(0, q, rows):
        b = min(q, a + rows)
        sim = np.matmul(fq[a:b], fc.T, out=buf[:b - a])       # (rows, M) cosines
        _topk_rows_jit(sim, kk, self_col[a:b], idx[a:b], val[a:b])
    return idx, val


def _check_features(f, k, labels):
    if f.ndim != 2:
        raise ValueError(f"features must be 2-D (N, D), got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or inf")
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if labels is not None and len(labels) != f.shape[0]:
        raise ValueError(f"labels has {len(labels)} entries but features has {f.shape[0]} rows")


def cosine_knn(features, k=10, labels=None, within_identity=False, memory_mb=256,
               normalised=False):
    """Directed cosine kNN graph.

    features: (N, D) float; k: neighbours per node (self excluded);
    labels: (N,) identity of each node, required when ``within_identity``;
    within_identity: neighbours only among nodes of the same identity (fewer than
        ``k`` when the identity has at most ``k`` faces; none for a single face);
    memory_mb: bound on the dense similarity block; normalised: rows already unit.
    Returns ``C``: (N, N) CSR float32 with ``C_ij = cos(f_i, f_j)`` for each of the
    (at most) ``k`` neighbours ``j`` of ``i``; row ``i`` lists them in column order.
    """
    f = np.asarray(features)
    _check_features(f, k, labels)
    if within_identity and labels is None:
        raise ValueError("within_identity=True needs labels")
    fn = f.astype(np.float32, copy=False) if normalised else l2_normalise(f)
    n = fn.shape[0]
    rows, cols, vals = [], [], []
    if within_identity:
        _, inv = np.unique(np.asarray(labels), return_inverse=True)
        order = np.argsort(inv.ravel(), kind="stable")       # nodes grouped by identity
        start = np.concatenate([[0], np.cumsum(np.bincount(inv.ravel()))]).astype(np.int64)
        fs = np.ascontiguousarray(fn[order])                 # (N, D) rows in group order
        block = block_rows_for(int(np.diff(start).max()), memory_mb)
        idx = np.empty((n, k), np.int64)
        val = np.empty((n, k), np.float32)
        _knn_within_groups_jit(fs, start, int(k), block, idx, val)
        ok = idx >= 0
        rows.append(np.broadcast_to(order[:, None], idx.shape)[ok])
        cols.append(order[idx[ok]])
        vals.append(val[ok])
    elif n > 1:
        idx, val = _knn_among(fn, fn, k, np.arange(n, dtype=np.int64), memory_mb)
        ok = idx >= 0
        rows.append(np.broadcast_to(np.arange(n)[:, None], idx.shape)[ok])
        cols.append(idx[ok])
        vals.append(val[ok])
    if rows:
        r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    else:
        r = c = np.empty(0, np.int64)
        v = np.empty(0, np.float32)
    out = sp.csr_matrix((v, (r, c)), shape=(n, n), dtype=np.float32)
    out.sort_indices()
    return out


def redundancy_graph(features, k=10, labels=None, within_identity=False, sharpen=1.0,
                     memory_mb=256, normalised=False):
    """Edge weights ``W`` of the selector: symmetric, non-negative, zero diagonal.

    Arguments as ``cosine_knn``, plus ``sharpen`` (p >= 1 recommended):
    ``W_ij = max(0, cos_ij) ** p`` on every edge found from either end.
    Returns ``W``: (N, N) CSR float64, ``W == W.T``, explicit zeros removed.
    """
    if not sharpen > 0:
        raise ValueError(f"sharpen must be positive, got {sharpen!r}")
    c = cosine_knn(features, k, labels, within_identity, memory_mb, normalised)
    w = c.astype(np.float64)
    np.maximum(w.data, 0.0, out=w.data)
    if sharpen != 1.0:
        np.power(w.data, sharpen, out=w.data)
    w = w.maximum(w.T).tocsr()                # symmetric: edge kept if either end chose it
    w.eliminate_zeros()                       # the diagonal is empty: self is never a neighbour
    w.sort_indices()
    return w
