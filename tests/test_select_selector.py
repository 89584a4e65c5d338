"""``tinyface.select.select`` end to end on small clustered teacher outputs, and the
informativeness scores: the properties it promises and its bad-input errors."""
import numpy as np
import pytest

from tinyface.bench.select import synthetic_teacher
from tinyface.select import (SelectionResult, centre_closeness, informativeness, select,
                             teacher_confidence, teacher_margin)


@pytest.fixture(scope="module")
def teacher():
    """600 faces, 20 identities, 30 duplicate pairs (same features, same logits)."""
    f, y, z = synthetic_teacher(600, 32, per_id=30, dup_fraction=0.0, noise=0.9, seed=0)
    pairs = np.array([(g * 30 + t, g * 30 + t + 1) for g in range(20) for t in (0, 2, 4)])
    f[pairs[:, 1]] = f[pairs[:, 0]]
    z[pairs[:, 1]] = z[pairs[:, 0]]
    return f, y, z, pairs


def nonincreasing(h, rel=1e-12):
    h = np.asarray(h)
    return bool(np.all(np.diff(h) <= rel * max(1.0, np.abs(h).max())))


# ------------------------------------------------------------------ informativeness
def test_confidence_and_margin_by_hand():
    z = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    y = np.array([0, 1])
    np.testing.assert_allclose(teacher_confidence(z, y), [0.7, 0.3])
    np.testing.assert_allclose(teacher_margin(z, y), [(1 + 0.5) / 2, (1 - 0.3) / 2])
    # chunking does not change anything
    zz = np.random.default_rng(0).standard_normal((50, 7))
    yy = np.arange(50) % 7
    np.testing.assert_allclose(teacher_confidence(zz, yy, chunk=3), teacher_confidence(zz, yy))


def test_centre_closeness_bounds_and_singletons():
    f, y, _ = synthetic_teacher(90, 8, per_id=30, seed=1)
    y = y.copy()
    y[0] = 77                                           # a single-face identity
    c = centre_closeness(f, y)
    assert c.shape == (90,) and c.min() >= 0 and c.max() <= 1 and c[0] == 1.0
    again = centre_closeness(np.concatenate([f[:1], -f[:1]]), np.array([5, 5]))
    np.testing.assert_allclose(again, [0.5, 0.5], atol=1e-6)    # opposite pair: no centre, cos 0


def test_informativeness_spans_zero_to_one(teacher):
    f, y, z, _ = teacher
    u, scores = informativeness(f, y, z, return_scores=True)
    assert u.min() == 0.0 and u.max() == 1.0 and set(scores) == {"confidence", "margin", "centre"}
    u_centre = informativeness(f, y)                    # no logits: the centre score alone
    assert np.corrcoef(u_centre, scores["centre"])[0, 1] > 0.999
    with pytest.raises(ValueError, match="unknown"):
        informativeness(f, y, z, weights={"beauty": 1.0})
    with pytest.raises(ValueError, match="need the teacher's logits"):
        informativeness(f, y, weights={"margin": 1.0})
    with pytest.raises(ValueError, match="lie in"):
        informativeness(f, y + 100, z)


# ------------------------------------------------------------------ the properties it promises
def test_result_and_objective_decreases(teacher):
    f, y, z, _ = teacher
    r = select(f, y, z, ratio=0.4, alpha=2.0)
    assert isinstance(r, SelectionResult)
    assert r.mask.shape == r.s.shape == r.u.shape == (600,) and r.mask.dtype == bool
    assert r.graph.shape == (600, 600) and set(r.timings) >= {"graph", "informativeness", "solve"}
    assert len(r.objective) > 2 and nonincreasing(r.objective)
    assert r.objective[-1] < r.objective[0]


@pytest.mark.parametrize("per_identity", [False, True])
def test_alpha_zero_is_the_top_u(teacher, per_identity):
    f, y, z, _ = teacher
    u = np.random.default_rng(2).uniform(size=600)
    r = select(f, y, z, ratio=0.3, alpha=0.0, u=u, per_identity=per_identity)
    if per_identity:
        for g in range(20):
            idx = np.flatnonzero(y == g)
            assert set(idx[r.mask[idx]]) == set(idx[np.argsort(-u[idx])[:9]])
    else:
        assert set(r.indices) == set(np.argsort(-u)[:180])
    r2 = select(f, y, z, ratio=0.3, alpha=0.0)          # the teacher's own u
    assert r2.mask.sum() == 180 and r2.u[r2.mask].min() >= r2.u[~r2.mask].max()


@pytest.mark.parametrize("per_identity", [False, True])
@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.8])
def test_large_alpha_never_selects_both_duplicates(teacher, ratio, per_identity):
    f, y, z, pairs = teacher
    r = select(f, y, z, ratio=ratio, alpha=20.0, per_identity=per_identity)
    assert not np.any(r.mask[pairs[:, 0]] & r.mask[pairs[:, 1]])
    plain = select(f, y, z, ratio=ratio, alpha=0.0, per_identity=per_identity)
    if ratio >= 0.5:                                    # ... which top-u alone does
        assert np.any(plain.mask[pairs[:, 0]] & plain.mask[pairs[:, 1]])


@pytest.mark.parametrize("ratio", [0.05, 0.25, 0.5, 0.75, 1.0])
def test_ratio_within_one_percent(teacher, ratio):
    f, y, z, _ = teacher
    f2, y2, z2 = np.tile(f, (2, 1)), np.tile(y, 2), np.tile(z, (2, 1))   # N = 1,200
    r = select(f2, y2, z2, ratio=ratio, alpha=1.0)
    assert abs(r.ratio - ratio) <= 0.01 * ratio + 1e-12
    assert r.converged and abs(r.support_ratio - ratio) <= 0.01 * ratio + 1e-12


def test_per_identity_keeps_every_identity(teacher):
    f, y, z, _ = teacher
    r = select(f, y, z, ratio=0.1, per_identity=True)
    np.testing.assert_array_equal(np.bincount(y, weights=r.mask), 3)
    assert r.lam.shape == (20,)
    r1 = select(f, y, z, ratio=0.01, per_identity=True)   # rounds to 0: one face each
    np.testing.assert_array_equal(np.bincount(y, weights=r1.mask), 1)


def test_deterministic_for_a_seed(teacher):
    f, y, z, _ = teacher
    a = select(f, y, z, ratio=0.5, alpha=1.0, seed=7)
    b = select(f, y, z, ratio=0.5, alpha=1.0, seed=7)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.s, b.s)
    assert a.objective == b.objective and a.lam == b.lam
    c = select(f, y, z, ratio=0.5, alpha=1.0, seed=8)
    assert c.mask.sum() == a.mask.sum()


def test_lbfgsb_relaxation_also_works(teacher):
    f, y, z, pairs = teacher
    r = select(f, y, z, ratio=0.5, alpha=20.0, method="lbfgsb")
    assert r.mask.sum() == 300 and nonincreasing(r.objective)
    assert not np.any(r.mask[pairs[:, 0]] & r.mask[pairs[:, 1]])


# ------------------------------------------------------------------ bad input
def test_feature_bank_that_does_not_match_the_dataset(teacher):
    f, y, z, _ = teacher
    with pytest.raises(ValueError, match="600 rows but the dataset has 599 labels"):
        select(f, y[:-1], z)
    with pytest.raises(ValueError, match="32-d but the teacher's features are 64-d"):
        select(f, y, z, dim=64)
    with pytest.raises(ValueError, match="logits have 10 rows"):
        select(f, y, z[:10])
    with pytest.raises(ValueError, match="2-D"):
        select(f[0], y)
    with pytest.raises(ValueError, match="empty"):
        select(f[:0], y[:0])
    bad = f.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="1 NaN or inf"):
        select(bad, y, z)


@pytest.mark.parametrize("ratio", [0, -0.1, 1.01, 2, float("nan"), True, "half"])
def test_ratio_outside_zero_one(teacher, ratio):
    f, y, z, _ = teacher
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\]"):
        select(f, y, z, ratio=ratio)


def test_empty_selection_and_other_parameters(teacher):
    f, y, z, _ = teacher
    with pytest.raises(ValueError, match="selection would be empty"):
        select(f, y, z, ratio=1e-4)                     # round(0.06) = 0 faces
    with pytest.raises(ValueError, match="k must be"):
        select(f, y, z, k=0)
    with pytest.raises(ValueError, match="alpha"):
        select(f, y, z, alpha=-1.0)
    with pytest.raises(ValueError, match="u must be"):
        select(f, y, z, u=np.ones(5))
