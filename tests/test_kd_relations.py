"""Relational, contrastive and decoupled distillation losses (NumPy reference): gradient
checks in float64, known answers, invariances, slow loop definitions, bad input."""
import itertools

import numpy as np
import pytest

from tinyface.gradcheck import assert_gradient, numerical_gradient
from tinyface.kernels import kd_relations as kernels
from tinyface.reference.kd_logits import dkd_loss
from tinyface.reference.kd_relations import (
    crd_loss,
    pkt_loss,
    rkd_angle_loss,
    rkd_distance_loss,
    rkd_loss,
)
from tinyface.reference.losses import distillation_loss

ONE = np.array(1.0)
# the NumPy reference, and the Numba kernel of RKD's angle term (same contract)
RELATIONAL = {"rkd_distance": rkd_distance_loss, "rkd_angle": rkd_angle_loss,
              "rkd": rkd_loss, "pkt": pkt_loss,
              "rkd_angle_numba": kernels.rkd_angle_loss, "rkd_numba": kernels.rkd_loss}


def huber(r):
    return 0.5 * r * r if abs(r) < 1 else abs(r) - 0.5


def slow_rkd_distance(es, et):
    """The definition, one pair at a time."""
    N = len(es)
    pairs = [(i, j) for i in range(N) for j in range(N) if i != j]
    ds = {p: np.linalg.norm(es[p[0]] - es[p[1]]) for p in pairs}
    dt = {p: np.linalg.norm(et[p[0]] - et[p[1]]) for p in pairs}
    mu_s, mu_t = np.mean(list(ds.values())), np.mean(list(dt.values()))
    return np.mean([huber(ds[p] / mu_s - dt[p] / mu_t) for p in pairs])


def slow_cos(e, i, j, k):
    u, v = e[i] - e[j], e[k] - e[j]
    return u @ v / (np.linalg.norm(u) * np.linalg.norm(v))


def slow_rkd_angle(es, et):
    trip = [t for t in itertools.permutations(range(len(es)), 3)]
    return np.mean([huber(slow_cos(es, *t) - slow_cos(et, *t)) for t in trip])


def slow_pkt(es, et):
    def probs(e):
        z = e / np.linalg.norm(e, axis=1, keepdims=True)
        S = (z @ z.T + 1) / 2
        return S / S.sum(axis=1, keepdims=True)
    Ps, Pt = probs(es), probs(et)
    return np.mean([np.sum(Pt[i] * np.log(Pt[i] / Ps[i])) for i in range(len(es))])


def crd_inputs(rng, N=5, D=6, M=9, K=4):
    es = rng.standard_normal((N, D))
    bank = rng.standard_normal((M, D))
    return es, bank, rng.integers(0, M, N), rng.integers(0, M, (N, K))


# --------------------------------------------------------------- gradient checks
@pytest.mark.parametrize("name", sorted(RELATIONAL))
@pytest.mark.parametrize("N,Ds,Dt", [(3, 2, 5), (5, 4, 3), (7, 3, 3)])
def test_relational_gradients(name, N, Ds, Dt):
    rng = np.random.default_rng(100 * N + 10 * Ds + Dt)
    es = rng.standard_normal((N, Ds))
    et = rng.standard_normal((N, Dt)) * np.array([3.0] + [0.3] * (Dt - 1))   # anisotropic
    loss_fn = RELATIONAL[name]
    loss, des = loss_fn(es, et)
    assert isinstance(loss, float) and loss > 0 and des.dtype == np.float64
    num = numerical_gradient(lambda: loss_fn(es, et)[0], es, ONE)
    assert_gradient(des, num, tol=1e-6, name=f"{name} des")


@pytest.mark.parametrize("tau", [0.07, 1.0])
def test_crd_gradient(tau):
    es, bank, pos, neg = crd_inputs(np.random.default_rng(7))
    _, des = crd_loss(es, bank, pos, neg, tau)
    num = numerical_gradient(lambda: crd_loss(es, bank, pos, neg, tau)[0], es, ONE)
    assert_gradient(des, num, tol=1e-6, name=f"CRD tau={tau} des")


@pytest.mark.parametrize("N,K,T", [(1, 2, 1.0), (4, 3, 4.0), (6, 10, 2.5)])
def test_dkd_gradient(N, K, T):
    rng = np.random.default_rng(N * 10 + K)
    s, t = rng.standard_normal((N, K)) * 3, rng.standard_normal((N, K)) * 3
    labels = t.argmax(axis=1)        # a teacher that is right: b_t far from b_s
    for alpha, beta in ((1.0, 8.0), (1.0, 0.0), (0.0, 1.0)):
        def f(alpha=alpha, beta=beta):
            return dkd_loss(s, t, labels, alpha, beta, T)[0]
        assert_gradient(dkd_loss(s, t, labels, alpha, beta, T)[1], numerical_gradient(f, s, ONE),
                        tol=1e-6, name=f"DKD alpha={alpha} beta={beta} T={T}")


# ------------------------------------------------------------------ known answers
def test_zero_for_identical_student_and_teacher():
    e = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    for name, loss_fn in RELATIONAL.items():
        loss, des = loss_fn(e, e.copy())
        assert des.dtype == np.float32 and des.shape == e.shape
        assert abs(loss) < 1e-12 and np.abs(des).max() < 1e-6, name
    logits = np.random.default_rng(2).standard_normal((5, 7)).astype(np.float32) * 4
    loss, dlogits = dkd_loss(logits, logits.copy(), np.array([0, 6, 3, 3, 1]))
    assert dlogits.dtype == np.float32
    assert abs(loss) < 1e-10 and np.abs(dlogits).max() < 1e-7


def test_rkd_distance_three_points_on_a_line():
    es = np.array([[0.0], [1.0], [2.0]])          # distances 1, 1, 2: mean 4/3
    et = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])   # distances 1, 2, 3: mean 2
    # potentials 3/4, 3/4, 3/2 against 1/2, 1, 3/2: differences 1/4, -1/4, 0
    loss, _ = rkd_distance_loss(es, et)
    assert loss == pytest.approx((1 / 32 + 1 / 32 + 0) / 3, rel=1e-12)


def test_rkd_angle_line_against_equilateral_triangle():
    es = np.array([[0.0], [1.0], [2.0]])          # cosines 1, -1, 1 at the three vertices
    et = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])   # all 1/2
    # differences 1/2, -3/2 (Huber's linear branch: 1), 1/2: (1/8 + 1 + 1/8) / 3
    loss, _ = rkd_angle_loss(es, et)
    assert loss == pytest.approx(5 / 12, rel=1e-12)
    loss, _ = rkd_loss(es, et)
    d, _ = rkd_distance_loss(es, et)
    assert loss == pytest.approx(25 * d + 50 * 5 / 12, rel=1e-12)


def test_pkt_two_faces_by_hand():
    es = np.array([[1.0, 0.0], [0.0, 1.0]])   # S = [[1, 1/2], [1/2, 1]]: rows (2/3, 1/3)
    et = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])   # S = 1: rows (1/2, 1/2)
    expect = 0.5 * np.log(0.5 / (2 / 3)) + 0.5 * np.log(0.5 / (1 / 3))
    assert pkt_loss(es, et, eps=0.0)[0] == pytest.approx(expect, rel=1e-12)
    assert pkt_loss(es, et)[0] == pytest.approx(expect, rel=1e-5)


def test_dkd_three_classes_by_hand():
    s = np.zeros((2, 3))                                  # uniform: b_s = 1/3
    t = np.log(np.array([[2.0, 1.0, 1.0], [2.0, 3.0, 1.0]]))
    labels = np.array([0, 0])
    tckd = 0.5 * np.log(0.5 / (1 / 3)) + 0.5 * np.log(0.5 / (2 / 3))   # face 0; q_t = q_s
    nckd = 0.75 * np.log(0.75 / 0.5) + 0.25 * np.log(0.25 / 0.5)       # face 1; b_t = b_s
    loss, _ = dkd_loss(s, t, labels, alpha=1.0, beta=8.0, T=1.0)
    assert loss == pytest.approx((tckd + 8 * nckd) / 2, rel=1e-12)
    loss, _ = dkd_loss(2 * s, 2 * t, labels, alpha=1.0, beta=8.0, T=2.0)   # same p, T**2 = 4
    assert loss == pytest.approx(4 * (tckd + 8 * nckd) / 2, rel=1e-12)


def test_dkd_recouples_into_hinton_kd():
    rng = np.random.default_rng(5)
    s, t, T = rng.standard_normal((1, 6)) * 2, rng.standard_normal((1, 6)) * 2, 3.0
    label = np.array([4])
    p_t = np.exp(t / T) / np.exp(t / T).sum()
    tckd, _ = dkd_loss(s, t, label, alpha=1.0, beta=0.0, T=T)
    nckd, _ = dkd_loss(s, t, label, alpha=0.0, beta=1.0, T=T)
    kd, _ = distillation_loss(s, t, T)
    assert tckd + (1 - p_t[0, 4]) * nckd == pytest.approx(kd, rel=1e-10)


def test_relational_match_slow_definitions():
    rng = np.random.default_rng(11)
    es = rng.standard_normal((6, 3))
    et = np.concatenate([rng.standard_normal((5, 4)) * 0.05, [[4.0, 0, 0, 0]]])   # one far face
    assert rkd_distance_loss(es, et)[0] == pytest.approx(slow_rkd_distance(es, et), rel=1e-12)
    assert rkd_angle_loss(es, et)[0] == pytest.approx(slow_rkd_angle(es, et), rel=1e-12)
    assert pkt_loss(es, et, eps=0.0)[0] == pytest.approx(slow_pkt(es, et), rel=1e-12)


def test_crd_orthogonal_bank_gives_log_k_plus_one():
    es = np.array([[2.0, 0.0, 0.0]])
    bank = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [0.0, -1.0, 1.0]])
    loss, des = crd_loss(es, bank, np.array([0]), np.array([[1, 2]]))
    assert loss == pytest.approx(np.log(3), rel=1e-12)
    assert des[0, 0] == 0.0 and np.abs(des).max() > 1.0   # tangential: a length has no say


def test_identical_faces_are_guarded():
    es = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])   # faces 0 and 1 coincide
    et = np.random.default_rng(3).standard_normal((4, 3))
    for name, loss_fn in RELATIONAL.items():
        loss, des = loss_fn(es, et)
        assert np.isfinite(loss) and np.all(np.isfinite(des)) and np.abs(des).max() < 1e3, name


def test_small_batches_have_no_pairs_or_triplets():
    e = np.ones((1, 3), np.float32)
    assert rkd_distance_loss(e, e)[0] == 0.0
    loss, des = rkd_angle_loss(np.eye(2), np.eye(2)[::-1])
    assert loss == 0.0 and not des.any()


# -------------------------------------------------------------------- invariance
@pytest.mark.parametrize("name", ["rkd_distance", "rkd_angle", "pkt"])
def test_scale_invariance(name):
    rng = np.random.default_rng(21)
    es, et = rng.standard_normal((6, 4)), rng.standard_normal((6, 7))
    loss_fn = RELATIONAL[name]
    if name == "pkt":       # exact without the norm's eps; with it, up to eps / ||e||
        base = pkt_loss(es, et)[0]
        for c in (0.5, 7.0, 1e3):
            assert pkt_loss(c * es, et)[0] == pytest.approx(base, rel=1e-6)
            assert pkt_loss(es, c * et)[0] == pytest.approx(base, rel=1e-6)
        def loss_fn(a, b):
            return pkt_loss(a, b, eps=0.0)
    base = loss_fn(es, et)[0]
    assert base > 1e-3
    for c in (1e-3, 0.5, 7.0, 1e3):
        assert loss_fn(c * es, et)[0] == pytest.approx(base, rel=1e-9), f"student x{c}"
        assert loss_fn(es, c * et)[0] == pytest.approx(base, rel=1e-9), f"teacher x{c}"


def test_dtype_float32_in_float32_out():
    rng = np.random.default_rng(4)
    es, et = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((5, 6))
    for name, loss_fn in RELATIONAL.items():
        loss, des = loss_fn(es, et)
        assert isinstance(loss, float) and des.dtype == np.float32, name
    e, bank, pos, neg = crd_inputs(rng)
    assert crd_loss(e.astype(np.float32), bank, pos, neg)[1].dtype == np.float32
    loss, dl = dkd_loss(es, es[::-1].copy(), np.array([0, 1, 2, 0, 1]))
    assert isinstance(loss, float) and dl.dtype == np.float32


# --------------------------------------------------------------------------- CRD
def test_crd_lower_when_the_positive_is_the_most_similar():
    rng = np.random.default_rng(8)
    es = rng.standard_normal((1, 8))
    bank = rng.standard_normal((6, 8))
    sims = (bank / np.linalg.norm(bank, axis=1, keepdims=True)) @ es[0]
    order = np.argsort(sims)                    # least to most similar
    best, worst, rest = order[-1], order[0], order[1:-1]
    good, _ = crd_loss(es, bank, np.array([best]), np.append(rest, worst)[None])
    bad, _ = crd_loss(es, bank, np.array([worst]), np.append(rest, best)[None])
    assert good < bad
    exact, _ = crd_loss(es, bank, np.array([best]), np.append(rest, worst)[None], tau=0.01)
    assert exact < good                         # a colder softmax trusts the ranking more


def test_crd_decreases_along_minus_gradient():
    es, bank, pos, neg = crd_inputs(np.random.default_rng(9), N=8, D=5, M=20, K=6)
    loss, des = crd_loss(es, bank, pos, neg)
    step = 1e-3 / np.abs(des).max()
    after, _ = crd_loss(es - step * des, bank, pos, neg)
    assert after < loss
    assert loss - after == pytest.approx(step * np.sum(des * des), rel=1e-2)   # first order


# --------------------------------------------------------------------- bad input
def test_relational_reject_bad_shapes():
    e = np.zeros((4, 3))
    for loss_fn in RELATIONAL.values():
        with pytest.raises(ValueError, match=r"\(4, 3\) and \(5, 3\)"):
            loss_fn(e, np.zeros((5, 3)))
        with pytest.raises(ValueError, match=r"es must be \(N, D\), got shape \(4,\)"):
            loss_fn(np.zeros(4), e)
        with pytest.raises(ValueError, match=r"et must be \(N, D\), got shape \(4, 3, 1\)"):
            loss_fn(e, np.zeros((4, 3, 1)))
    with pytest.raises(ValueError, match="w_angle"):
        rkd_loss(e, e, w_angle=-1.0)
    with pytest.raises(ValueError, match="eps"):
        pkt_loss(e, e, eps=-1.0)


def test_crd_rejects_bad_input():
    es, bank, pos, neg = crd_inputs(np.random.default_rng(10), N=3, D=4, M=5, K=2)
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(5, 6\)"):
        crd_loss(es, np.zeros((5, 6)), pos, neg)
    with pytest.raises(ValueError, match=r"pos index 5 is outside \[0, 5\)"):
        crd_loss(es, bank, np.array([0, 5, 1]), neg)
    with pytest.raises(ValueError, match=r"neg index -1 is outside \[0, 5\)"):
        crd_loss(es, bank, pos, np.array([[0, 1], [2, -1], [3, 4]]))
    with pytest.raises(ValueError, match=r"pos must have shape \(3,\), got \(2,\)"):
        crd_loss(es, bank, pos[:2], neg)
    with pytest.raises(ValueError, match=r"neg must be \(N, K\) = \(3, K\).*\(3,\)"):
        crd_loss(es, bank, pos, neg[:, 0])
    with pytest.raises(ValueError, match="integers"):
        crd_loss(es, bank, pos.astype(float), neg)
    with pytest.raises(ValueError, match="tau"):
        crd_loss(es, bank, pos, neg, tau=0.0)


def test_dkd_rejects_bad_input():
    s = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"label 3 is outside \[0, 3\)"):
        dkd_loss(s, s, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"\(2, 3\) vs \(2, 4\)"):
        dkd_loss(s, np.zeros((2, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        dkd_loss(s, s, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"K >= 2.*\(2, 1\)"):
        dkd_loss(np.zeros((2, 1)), np.zeros((2, 1)), np.array([0, 0]))
    with pytest.raises(ValueError, match="temperature"):
        dkd_loss(s, s, np.array([0, 1]), T=0.0)
    with pytest.raises(ValueError, match="beta"):
        dkd_loss(s, s, np.array([0, 1]), beta=np.nan)
