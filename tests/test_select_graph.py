"""The selector's kNN cosine graph: against a dense brute force on small inputs, the
within-identity restriction, the redundancy weights, the bounded dense block, bad input."""
import numpy as np
import pytest
import scipy.sparse as sp

from tinyface.select import graph
from tinyface.select.graph import block_rows_for, cosine_knn, l2_normalise, redundancy_graph


def clustered(n_id=12, per_id=15, dim=24, noise=0.8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_id, dim))
    labels = np.repeat(np.arange(n_id), per_id)
    feats = centres[labels] + noise * rng.standard_normal((labels.size, dim))
    perm = rng.permutation(labels.size)                    # identities interleaved
    return feats[perm].astype(np.float32), labels[perm]


def dense_cos(f):
    fn = f.astype(np.float64) / np.linalg.norm(f.astype(np.float64), axis=1, keepdims=True)
    return fn @ fn.T


def brute_knn(f, k, labels=None):
    """Neighbour sets by a full argsort of the dense cosine matrix."""
    c = dense_cos(f)
    np.fill_diagonal(c, -np.inf)
    if labels is not None:
        c[labels[:, None] != labels[None, :]] = -np.inf
    out = []
    for row in c:
        order = np.argsort(-row, kind="stable")[:k]
        out.append(set(order[np.isfinite(row[order])].tolist()))
    return out


def test_l2_normalise_unit_rows_and_zero_row():
    f = np.array([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]], np.float32)
    fn = l2_normalise(f)
    assert fn.dtype == np.float32
    np.testing.assert_allclose(fn, [[0.6, 0.8], [0, 0], [1, 0]], rtol=1e-6)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_global_knn_matches_brute_force(k):
    f, _ = clustered(seed=k)
    c = cosine_knn(f, k)
    assert sp.isspmatrix_csr(c) and c.shape == (f.shape[0],) * 2 and c.dtype == np.float32
    cos = dense_cos(f)
    expected = brute_knn(f, k)
    for i in range(f.shape[0]):
        cols = c.indices[c.indptr[i]:c.indptr[i + 1]]
        assert set(cols.tolist()) == expected[i]
        np.testing.assert_allclose(c.data[c.indptr[i]:c.indptr[i + 1]], cos[i, cols], atol=1e-5)
    assert np.all(c.diagonal() == 0)


def test_within_identity_matches_brute_force_and_never_crosses():
    f, y = clustered(n_id=10, per_id=13)
    y[:3] = 99                                            # an identity of 3 faces (< k)
    y[3] = 100                                            # a single face: no edges
    c = cosine_knn(f, 5, labels=y, within_identity=True).tocoo()
    assert np.all(y[c.row] == y[c.col])
    expected = brute_knn(f, 5, y)
    csr = c.tocsr()
    for i in range(f.shape[0]):
        assert set(csr.indices[csr.indptr[i]:csr.indptr[i + 1]].tolist()) == expected[i]
    assert csr[3].nnz == 0
    assert all(csr[i].nnz == 2 for i in np.flatnonzero(y == 99))


def test_block_size_does_not_change_the_graph():
    f, y = clustered(seed=3)
    big = cosine_knn(f, 7, memory_mb=256)
    tiny = cosine_knn(f, 7, memory_mb=1e-3)               # one row per block
    np.testing.assert_array_equal(big.indptr, tiny.indptr)
    np.testing.assert_array_equal(big.indices, tiny.indices)
    np.testing.assert_allclose(big.data, tiny.data, atol=1e-6)    # BLAS rounds per block shape


def test_no_dense_n_by_n_block_above_5000(monkeypatch):
    n = 6000
    rng = np.random.default_rng(0)
    f = rng.standard_normal((n, 8)).astype(np.float32)
    shapes = []
    original = graph._topk_rows_jit

    def spy(sim, *args):
        shapes.append(sim.shape)
        return original(sim, *args)

    monkeypatch.setattr(graph, "_topk_rows_jit", spy)
    c = cosine_knn(f, 3, memory_mb=16)
    assert c.nnz == 3 * n
    rows = max(s[0] for s in shapes)
    assert rows == block_rows_for(n, 16) < n
    assert rows * n * 4 <= 16 * 2 ** 20
    # the default budget at the benchmark's size
    assert block_rows_for(100_000, 256) * 100_000 * 4 <= 256 * 2 ** 20


@pytest.mark.parametrize("sharpen", [1.0, 8.0])
def test_redundancy_graph_symmetric_nonnegative_weights(sharpen):
    f, y = clustered(seed=5)
    f[:3] = -f[3:6]                                       # some negative cosines too
    k = 6
    w = redundancy_graph(f, k, sharpen=sharpen)
    assert w.dtype == np.float64
    assert abs(w - w.T).max() == 0
    assert w.data.min() > 0 and np.all(w.diagonal() == 0)
    knn = brute_knn(f, k)
    cos = dense_cos(f)
    dense = w.toarray()
    for i in range(f.shape[0]):
        for j in range(f.shape[0]):
            linked = (j in knn[i] or i in knn[j]) and cos[i, j] > 0
            want = cos[i, j] ** sharpen if linked else 0.0
            assert dense[i, j] == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_exact_duplicates_get_weight_one():
    f, y = clustered(seed=6)
    f[1] = f[0]
    w = redundancy_graph(f, 4, y, within_identity=False, sharpen=8.0)
    assert w[0, 1] == pytest.approx(1.0, abs=1e-5) and w[1, 0] == w[0, 1]


def test_bad_input_is_a_clear_error():
    f, y = clustered()
    with pytest.raises(ValueError, match="NaN"):
        bad = f.copy()
        bad[4, 2] = np.nan
        cosine_knn(bad, 3)
    with pytest.raises(ValueError, match="k must be"):
        cosine_knn(f, 0)
    with pytest.raises(ValueError, match="2-D"):
        cosine_knn(f[0], 3)
    with pytest.raises(ValueError, match="labels has"):
        cosine_knn(f, 3, labels=y[:-1], within_identity=True)
    with pytest.raises(ValueError, match="needs labels"):
        cosine_knn(f, 3, within_identity=True)
    with pytest.raises(ValueError, match="sharpen"):
        redundancy_graph(f, 3, sharpen=0)
