"""Verification: cosine scores, thresholds, the 10-fold protocol, ROC/AUC/TAR@FAR
(each against a slow brute-force version), and verify_pairs on a tiny dataset."""
import numpy as np
import pytest

from tinyface.data import Dataset, DataError
from tinyface.eval import (accuracy_at, auc, best_threshold, cosine_scores, indexed_fn,
                           roc_curve, tar_at_far, ten_fold_accuracy, threshold_at_far,
                           verify_pairs)


def _toy_scores(n=600, n_folds=10, seed=0, decimals=None):
    """Synthetic verification scores: same pairs shifted up; optional rounding for ties."""
    rng = np.random.default_rng(seed)
    same = np.tile(np.r_[np.ones(n // (2 * n_folds), bool), np.zeros(n // (2 * n_folds), bool)],
                   n_folds)
    s = rng.standard_normal(n) * 0.3 + 0.5 * same
    if decimals is not None:
        s = np.round(s, decimals)
    folds = np.repeat(np.arange(n_folds), n // n_folds)
    return s, same, folds


# ----------------------------------------------------------------- brute force
def _brute_best_threshold(s, y):
    """Same candidates as the library (lowest score, midpoints, above max), tried one by
    one with a Python loop; first (lowest) best wins."""
    u = np.unique(s)
    cands = [u[0]] + [(u[i - 1] + u[i]) / 2 for i in range(1, len(u))] + [u[-1] + max(1, abs(u[-1]))]
    accs = [np.mean((s >= t) == y) for t in cands]
    return cands[int(np.argmax(accs))], max(accs)


def _brute_oracle_accuracy(s, y):
    """The best accuracy any threshold can reach (thresholds at every score and +inf)."""
    return max(np.mean((s >= t) == y) for t in list(s) + [np.inf])


def _brute_ten_fold(s, y, f, k):
    accs, ths = [], []
    for fold in np.unique(f)[:k]:
        t, _ = _brute_best_threshold(s[f != fold], y[f != fold])
        ths.append(t)
        accs.append(np.mean((s[f == fold] >= t) == y[f == fold]))
    return accs, ths


def _brute_roc(s, y):
    ts = np.r_[np.inf, np.sort(np.unique(s))[::-1]]
    tar = np.array([np.mean(s[y] >= t) for t in ts])
    far = np.array([np.mean(s[~y] >= t) for t in ts])
    return far, tar, ts


def _brute_auc(s, y):
    """Mann-Whitney: P(same score > different score) + half the ties."""
    d = s[y][:, None] - s[~y][None, :]
    return np.mean(d > 0) + 0.5 * np.mean(d == 0)


# ----------------------------------------------------------------------- cosine
def test_cosine_scores_known_vectors():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0], [0.0, 0.0], [2.0, 0.0]])
    b = np.array([[0.0, 5.0], [2.0, 2.0], [-3.0, -4.0], [1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(cosine_scores(a, b), [0.0, 1.0, -1.0, 0.0, np.sqrt(0.5)],
                               atol=1e-12)
    with pytest.raises(ValueError, match="differ"):
        cosine_scores(a, b[:3])
    with pytest.raises(ValueError, match="empty"):
        cosine_scores(np.zeros((0, 2)), np.zeros((0, 2)))


# --------------------------------------------------------------------- threshold
def test_best_threshold_separable_is_perfect():
    s = np.array([0.9, 0.8, 0.75, 0.3, 0.2, -0.1])
    y = np.array([1, 1, 1, 0, 0, 0], bool)
    t = best_threshold(s, y)
    assert 0.3 < t <= 0.75
    assert t == pytest.approx(0.525)
    assert accuracy_at(s, y, t) == 1.0


@pytest.mark.parametrize("decimals", [None, 1])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_threshold_matches_brute_force(seed, decimals):
    s, y, _ = _toy_scores(n=300, seed=seed, decimals=decimals)
    t = best_threshold(s, y)
    bt, bacc = _brute_best_threshold(s, y)
    assert t == pytest.approx(bt)
    assert accuracy_at(s, y, t) == pytest.approx(bacc)
    assert bacc == pytest.approx(_brute_oracle_accuracy(s, y))


def test_best_threshold_edges():
    # all same: accept everything; all different: accept nothing
    assert accuracy_at([0.1, 0.5], [True, True], best_threshold([0.1, 0.5], [True, True])) == 1
    assert accuracy_at([0.1, 0.5], [False, False], best_threshold([0.1, 0.5], [False, False])) == 1
    # reversed scores: the best single threshold is still found (here: accept none)
    s = np.array([0.1, 0.2, 0.8, 0.9])
    y = np.array([True, True, False, False])
    assert accuracy_at(s, y, best_threshold(s, y)) == 0.5
    # adjacent floats: the midpoint must separate them
    lo = 0.3
    hi = np.nextafter(lo, 1.0)
    t = best_threshold([lo, hi], [False, True])
    assert lo < t <= hi and accuracy_at([lo, hi], [False, True], t) == 1.0


def test_threshold_validation():
    with pytest.raises(ValueError, match="entries"):
        best_threshold([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="empty"):
        best_threshold([], [])
    with pytest.raises(ValueError, match="non-finite"):
        best_threshold([0.1, np.nan], [True, False])


# ---------------------------------------------------------------------- 10-fold
@pytest.mark.parametrize("decimals", [None, 1])
def test_ten_fold_matches_brute_force(decimals):
    s, y, f = _toy_scores(n=600, seed=3, decimals=decimals)
    res = ten_fold_accuracy(s, y, f)
    accs, ths = _brute_ten_fold(s, y, f, 10)
    np.testing.assert_allclose(res["per_fold"], accs)
    np.testing.assert_allclose(res["thresholds"], ths)
    assert res["mean"] == pytest.approx(np.mean(accs))
    assert res["std"] == pytest.approx(np.std(accs))
    assert res["stderr"] == pytest.approx(np.std(accs, ddof=1) / np.sqrt(10))
    assert res["folds"] == list(range(10))
    assert 0.7 < res["mean"] < 0.95


def test_ten_fold_threshold_comes_from_other_folds():
    # fold 0 is shifted: a threshold chosen on fold 0 itself would get it all right,
    # the one chosen on the other folds gets its same pairs wrong
    s, y, f = _toy_scores(n=200, seed=4)
    s = np.where(y, 1.0, 0.0) + 0.01 * np.arange(200) / 200
    s[f == 0] -= 5.0
    res = ten_fold_accuracy(s, y, f)
    assert res["per_fold"][0] == 0.5
    assert all(a == 1.0 for a in res["per_fold"][1:])


def test_ten_fold_first_k_folds():
    s, y, f = _toy_scores(n=600, seed=5)
    full = ten_fold_accuracy(s, y, f)
    part = ten_fold_accuracy(s, y, f, n_folds=3)
    assert part["folds"] == [0, 1, 2] and len(part["per_fold"]) == 3
    np.testing.assert_allclose(part["per_fold"], full["per_fold"][:3])
    np.testing.assert_allclose(part["thresholds"], full["thresholds"][:3])
    accs, _ = _brute_ten_fold(s, y, f, 3)
    assert part["mean"] == pytest.approx(np.mean(accs))
    # fold ids need not be 0..K-1; they are taken in increasing order
    shuffled = ten_fold_accuracy(s, y, 10 * (9 - f), n_folds=2)
    np.testing.assert_allclose(shuffled["per_fold"], full["per_fold"][::-1][:2])
    for bad in (0, 11):
        with pytest.raises(ValueError, match="n_folds"):
            ten_fold_accuracy(s, y, f, n_folds=bad)
    with pytest.raises(ValueError, match="at least 2 folds"):
        ten_fold_accuracy(s, y, np.zeros(600, int))
    with pytest.raises(ValueError, match="fold_ids"):
        ten_fold_accuracy(s, y, f[:10])


# -------------------------------------------------------------------------- ROC
@pytest.mark.parametrize("decimals", [None, 1])
def test_roc_and_auc_match_brute_force(decimals):
    s, y, _ = _toy_scores(n=400, seed=6, decimals=decimals)
    far, tar, th = roc_curve(s, y)
    bfar, btar, bth = _brute_roc(s, y)
    np.testing.assert_allclose(far, bfar)
    np.testing.assert_allclose(tar, btar)
    np.testing.assert_array_equal(th, bth)
    assert far[0] == tar[0] == 0 and far[-1] == tar[-1] == 1
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(tar) >= 0)
    assert auc(far, tar) == pytest.approx(_brute_auc(s, y), abs=1e-12)


def test_auc_known_cases():
    y = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    perfect = np.r_[np.linspace(1, 2, 50), np.linspace(-1, 0, 50)]
    assert auc(*roc_curve(perfect, y)[:2]) == 1.0
    assert auc(*roc_curve(-perfect, y)[:2]) == 0.0
    assert auc(*roc_curve(np.zeros(100), y)[:2]) == 0.5          # all tied
    rng = np.random.default_rng(7)
    yr = rng.random(6000) < 0.5
    assert auc(*roc_curve(rng.standard_normal(6000), yr)[:2]) == pytest.approx(0.5, abs=0.03)


def test_tar_at_far():
    # 4 different pairs (FAR steps of 0.25), 4 same pairs
    s = np.array([0.9, 0.8, 0.6, 0.4, 0.7, 0.5, 0.3, 0.2])
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    far, tar, th = roc_curve(s, y)
    assert tar_at_far(far, tar, 0.0) == 0.5           # accept 0.9, 0.8 before the first FA
    assert tar_at_far(far, tar, 0.25) == 0.75         # 0.7 false-accepted, then 0.6
    assert tar_at_far(far, tar, 0.49) == 0.75         # no interpolation towards 0.5
    assert tar_at_far(far, tar, 1.0) == 1.0
    assert threshold_at_far(far, th, 0.25) == 0.6
    with pytest.raises(ValueError):
        tar_at_far(far, tar, 1.5)
    with pytest.raises(ValueError, match="both"):
        roc_curve([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="non-decreasing"):
        auc([0.5, 0.2], [0.0, 1.0])


# ------------------------------------------------------------------ verify_pairs
def _tiny_dataset(n_id=20, per_id=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_id), per_id)
    images = rng.integers(0, 256, (len(labels), 3, 4, 4)).astype(np.uint8)
    return Dataset(images, labels, [f"person{k}" for k in range(n_id)])


def _tiny_pairs(ds, n_folds=4, per_fold=10, seed=0):
    """pairs.txt-style folds: per_fold same + per_fold different pairs each."""
    rng = np.random.default_rng(seed)
    per_id = int(ds.counts()[0])
    folds = []
    for _ in range(n_folds):
        fold = []
        for _ in range(per_fold):
            k = int(rng.integers(ds.n_identities))
            i, j = rng.choice(per_id, 2, replace=False) + 1
            fold.append(((ds.names[k], int(i)), (ds.names[k], int(j)), True))
        for _ in range(per_fold):
            k, m = rng.choice(ds.n_identities, 2, replace=False)
            fold.append(((ds.names[k], int(rng.integers(per_id)) + 1),
                         (ds.names[m], int(rng.integers(per_id)) + 1), False))
        folds.append(fold)
    return folds


def _identity_embed(ds, noise, seed, calls=None):
    """embeddings = one-hot of the identity + Gaussian noise (fixed per row)."""
    rng = np.random.default_rng(seed)
    table = np.eye(ds.n_identities)[ds.labels] + noise * rng.standard_normal(
        (len(ds), ds.n_identities))

    def fn(idx):
        if calls is not None:
            calls.append(np.asarray(idx).copy())
        return table[idx]
    return fn


def test_verify_pairs_one_fn_high_accuracy_and_dedup():
    ds = _tiny_dataset()
    pairs = _tiny_pairs(ds)
    calls = []
    res = verify_pairs(_identity_embed(ds, 0.2, 0, calls), None, ds, pairs, batch_size=7)
    assert res["n_pairs"] == 80 and res["n_missing"] == 0
    assert res["accuracy"] >= 0.95 and res["auc"] >= 0.98 and res["tar_at_far"] >= 0.8
    assert len(res["per_fold"]) == 4 and res["folds"] == [0, 1, 2, 3]
    assert res["fold_ids"].tolist() == list(np.repeat(np.arange(4), 20))
    asked = np.concatenate(calls)
    assert len(asked) == len(set(asked.tolist())) == len(np.unique(np.r_[res["a"], res["b"]]))
    assert max(len(c) for c in calls) <= 7
    # a and b rows are the pairs' images
    e = pairs[1][3]
    r = 20 + 3
    assert (ds.names[ds.labels[res["a"][r]]], ds.image_index[res["a"][r]]) == e[0]
    assert (ds.names[ds.labels[res["b"][r]]], ds.image_index[res["b"][r]]) == e[1]
    # identity embeddings without noise: perfect
    perfect = verify_pairs(_identity_embed(ds, 0.0, 0), None, ds, pairs)
    assert perfect["accuracy"] == 1.0 and perfect["auc"] == 1.0


def test_verify_pairs_cross_resolution_two_fns_and_first_k_folds():
    ds = _tiny_dataset(seed=1)
    lr = ds.images[:, :, ::2, ::2]                      # a stand-in for degraded probes
    pairs = _tiny_pairs(ds, n_folds=5, seed=1)
    table = np.eye(ds.n_identities)[ds.labels]
    seen = {"a": [], "b": []}

    def fn_hr(idx):
        seen["a"].append(np.asarray(idx).copy())
        return table[idx] + 0.1

    def fn_lr(idx):
        seen["b"].append(np.asarray(idx).copy())
        return table[idx] * 2 + 0.3                    # another embedding space scale/shift

    res = verify_pairs(fn_hr, fn_lr, ds, pairs, folds=2)
    assert np.array_equal(np.sort(np.concatenate(seen["a"])), np.unique(res["a"]))
    assert np.array_equal(np.sort(np.concatenate(seen["b"])), np.unique(res["b"]))
    assert res["folds"] == [0, 1] and len(res["per_fold"]) == 2
    assert res["accuracy"] == 1.0
    assert len(res["scores"]) == 100                  # every pair still scored
    assert res["roc"][0][-1] == 1.0
    # indexed_fn closes over an image array: HR vs LR images reach the embed functions
    shapes = {}

    def embed(x):
        shapes.setdefault(x.shape[-1], x.dtype)
        return x.reshape(len(x), -1)[:, :12]

    res = verify_pairs(indexed_fn(embed, ds.images), indexed_fn(embed, lr), ds, pairs)
    assert shapes == {4: np.float32, 2: np.float32}
    assert 0.0 <= res["accuracy"] <= 1.0


def test_verify_pairs_missing_images_and_errors():
    ds = _tiny_dataset()
    pairs = _tiny_pairs(ds)
    pairs[0][0] = (("nobody", 1), ("person0", 1), True)
    fn = _identity_embed(ds, 0.1, 0)
    with pytest.raises(DataError, match="nobody"):
        verify_pairs(fn, None, ds, pairs)
    with pytest.warns(UserWarning):
        res = verify_pairs(fn, None, ds, pairs, strict=False)
    assert res["n_pairs"] == 79 and res["n_missing"] == 1
    with pytest.raises(ValueError, match="returned shape"):
        verify_pairs(lambda idx: np.zeros((1, 3)), None, ds, _tiny_pairs(ds))
    with pytest.raises(ValueError, match="non-finite"):
        verify_pairs(lambda idx: np.full((len(idx), 3), np.nan), None, ds, _tiny_pairs(ds))
    with pytest.raises(ValueError, match="D="):
        verify_pairs(lambda idx: np.ones((len(idx), 3)), lambda idx: np.ones((len(idx), 4)),
                     ds, _tiny_pairs(ds))
    with pytest.raises(ValueError, match="no pairs"):
        verify_pairs(fn, None, ds, [])
