"""Losses: known values, numerical stability, gradient checks (both tiers, float64),
Numba against the reference, and the public wrappers' NonFiniteLossError."""
import numpy as np
import pytest

import tinyface.losses as public
from tinyface.backend import get_backend, set_backend
from tinyface.gradcheck import assert_gradient, numerical_gradient
from tinyface.kernels import losses as numba_loss
from tinyface.reference import losses as numpy_loss

TIERS = {"numpy": numpy_loss, "numba": numba_loss}
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(params=sorted(TIERS))
def L(request):
    return TIERS[request.param]


@pytest.fixture(params=sorted(TIERS))
def backend(request):
    previous = set_backend(request.param)
    yield request.param
    set_backend(previous)


# ------------------------------------------------------------------ known values
def test_cross_entropy_uniform_logits_is_log_k(L):
    for K in (2, 10, 1000):
        loss, grad = L.softmax_cross_entropy_loss(np.zeros((3, K), np.float32), np.array([0, 1, K - 1]))
        assert isinstance(loss, float)
        assert loss == pytest.approx(np.log(K), rel=1e-6)
        assert grad.dtype == np.float32 and grad.shape == (3, K)
        np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-6)


def test_cross_entropy_hand_example(L):
    logits = np.array([[1.0, 2.0, 3.0]])
    loss, grad = L.softmax_cross_entropy_loss(logits, np.array([2]))
    p = np.exp(logits) / np.exp(logits).sum()
    assert loss == pytest.approx(-np.log(p[0, 2]), rel=1e-12)
    np.testing.assert_allclose(grad, p - [[0, 0, 1]], rtol=1e-12)
    assert grad.dtype == np.float64


def test_cross_entropy_stable_for_huge_logits(L):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((4, 6))
    labels = np.array([0, 5, 2, 3])
    small = L.softmax_cross_entropy_loss(base, labels)
    for shift in (1e4, -1e4):
        loss, grad = L.softmax_cross_entropy_loss(base + shift, labels)   # shift invariance
        assert np.isfinite(loss) and np.all(np.isfinite(grad))
        assert loss == pytest.approx(small[0], rel=1e-9)
    loss, grad = L.softmax_cross_entropy_loss(np.array([[1e4, 0.0], [0.0, 1e4]], np.float32),
                                              np.array([1, 1]))
    assert loss == pytest.approx(0.5 * 1e4, rel=1e-6) and np.all(np.isfinite(grad))


def test_cross_entropy_rejects_bad_labels(L):
    logits = np.zeros((2, 3), np.float32)
    for labels in ([0, 3], [-1, 0]):
        with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
            L.softmax_cross_entropy_loss(logits, np.array(labels))
    with pytest.raises(ValueError, match="shape"):
        L.softmax_cross_entropy_loss(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="integers"):
        L.softmax_cross_entropy_loss(logits, np.array([0.0, 1.0]))


def test_feature_regression_known_values(L):
    pred = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, 1.0]], np.float32)
    target = np.array([[0.0, 0.0], [1.0, 1.0], [3.0, 1.0]], np.float32)   # sq. dists 5, 2, 0
    loss, grad = L.feature_regression_loss(pred, target)
    assert loss == pytest.approx(7 / 3, rel=1e-6)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, 2 * (pred - target) / 3, rtol=1e-6)
    w = np.array([1.0, 3.0, 0.0])
    loss, grad = L.feature_regression_loss(pred, target, w)
    assert loss == pytest.approx((5 + 3 * 2) / 4, rel=1e-6)
    np.testing.assert_allclose(grad, 2 * w[:, None] * (pred - target) / 4, rtol=1e-6)
    loss, grad = L.feature_regression_loss(pred, target, np.zeros(3))
    assert loss == 0.0 and not grad.any() and grad.shape == pred.shape
    with pytest.raises(ValueError, match="weights"):
        L.feature_regression_loss(pred, target, np.ones(2))


def test_distillation_zero_when_student_equals_teacher(L):
    logits = np.random.default_rng(3).standard_normal((5, 7)).astype(np.float32) * 4
    for T in (1.0, 4.0):
        loss, grad = L.distillation_loss(logits, logits.copy(), T)
        assert abs(loss) < 1e-6 and np.abs(grad).max() < 1e-7
    loss, _ = L.distillation_loss(logits, logits[::-1].copy(), 2.0)
    assert loss > 0.01


def test_distillation_matches_definition(L):
    rng = np.random.default_rng(4)
    s, t, T = rng.standard_normal((3, 5)), rng.standard_normal((3, 5)), 3.0
    ps = np.exp(s / T) / np.exp(s / T).sum(1, keepdims=True)
    pt = np.exp(t / T) / np.exp(t / T).sum(1, keepdims=True)
    expect = T * T * np.mean(np.sum(pt * np.log(pt / ps), axis=1))
    loss, _ = L.distillation_loss(s, t, T)
    assert loss == pytest.approx(expect, rel=1e-10)
    with pytest.raises(ValueError, match="temperature"):
        L.distillation_loss(s, t, 0.0)


def test_distillation_stable_for_huge_logits(L):
    s = np.array([[1e4, 0.0, -1e4]], np.float32)
    loss, grad = L.distillation_loss(s, s[:, ::-1].copy(), 1.0)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))


# --------------------------------------------------------------- gradient checks
@pytest.mark.parametrize("N,K", [(1, 3), (3, 5), (2, 2)])
def test_loss_gradients(L, N, K):
    rng = np.random.default_rng(N * 10 + K)
    logits = rng.standard_normal((N, K)) * 2
    labels = rng.integers(0, K, N)
    one = np.array(1.0)
    f = lambda: L.softmax_cross_entropy_loss(logits, labels)[0]
    assert_gradient(L.softmax_cross_entropy_loss(logits, labels)[1],
                    numerical_gradient(f, logits, one), tol=1e-6, name="CE dlogits")

    teacher = rng.standard_normal((N, K)) * 2
    for T in (1.0, 4.0):
        f = lambda: L.distillation_loss(logits, teacher, T)[0]
        assert_gradient(L.distillation_loss(logits, teacher, T)[1],
                        numerical_gradient(f, logits, one), tol=1e-6, name=f"KD T={T} dstudent")

    target = rng.standard_normal((N, K))
    for w in (None, rng.uniform(0.1, 2.0, N)):
        f = lambda: L.feature_regression_loss(logits, target, w)[0]
        assert_gradient(L.feature_regression_loss(logits, target, w)[1],
                        numerical_gradient(f, logits, one), tol=1e-6, name="regression dpred")


# ------------------------------------------------------- Numba against reference
def test_losses_numba_match_reference():
    rng = np.random.default_rng(555)
    for trial in range(15):
        N, K = int(rng.integers(1, 12)), int(rng.integers(1, 40))
        scale = float(rng.choice([0.1, 1.0, 10.0, 100.0]))
        logits = (rng.standard_normal((N, K)) * scale).astype(np.float32)
        teacher = (rng.standard_normal((N, K)) * scale).astype(np.float32)
        labels = rng.integers(0, K, N)
        w = rng.uniform(0, 2, N) if trial % 2 else None
        T = float(rng.uniform(0.5, 8))
        msg = f"trial {trial}: N={N}, K={K}, scale={scale}, T={T:.2f}"
        res = {name: (tier.softmax_cross_entropy_loss(logits, labels),
                      tier.distillation_loss(logits, teacher, T),
                      tier.feature_regression_loss(logits, teacher, w))
               for name, tier in TIERS.items()}
        for label, (la, ga), (lb, gb) in zip(["CE", "KD", "regression"], res["numba"], res["numpy"]):
            assert ga.dtype == gb.dtype == np.float32, f"{label}, {msg}"
            assert la == pytest.approx(lb, rel=RTOL, abs=ATOL), f"{label} loss, {msg}"
            np.testing.assert_allclose(ga, gb, rtol=RTOL, atol=ATOL * max(1.0, np.abs(gb).max()),
                                       err_msg=f"{label} grad, {msg}")


# ---------------------------------------------------------------- public wrappers
def test_public_losses_dispatch_to_backend(backend):
    assert get_backend() == backend
    rng = np.random.default_rng(8)
    logits = rng.standard_normal((4, 6)).astype(np.float32)
    labels = np.array([1, 2, 3, 0])
    loss, grad = public.softmax_cross_entropy_loss(logits, labels)
    ref = numpy_loss.softmax_cross_entropy_loss(logits, labels)
    assert loss == pytest.approx(ref[0], rel=1e-6)
    np.testing.assert_allclose(grad, ref[1], rtol=1e-5, atol=1e-7)
    loss, _ = public.distillation_loss(logits, logits, 2.0)
    assert abs(loss) < 1e-6
    loss, _ = public.feature_regression_loss(logits, logits + 1)
    assert loss == pytest.approx(6.0, rel=1e-6)
    with pytest.raises(ValueError, match="outside"):
        public.softmax_cross_entropy_loss(logits, np.array([1, 2, 3, 6]))


def test_public_losses_raise_on_non_finite(backend):
    logits = np.zeros((2, 3), np.float32)
    logits[1, 2] = np.nan
    assert issubclass(public.NonFiniteLossError, FloatingPointError)
    with pytest.raises(public.NonFiniteLossError, match="loss is nan at epoch 2.*learning rate") as err:
        public.softmax_cross_entropy_loss(logits, np.array([0, 1]), where="epoch 2, step 7")
    assert "logits has 1 non-finite" in str(err.value)
    with pytest.raises(public.NonFiniteLossError, match="loss is nan"):
        public.distillation_loss(logits, np.zeros((2, 3), np.float32), 4.0)
    with np.errstate(over="ignore"):                 # the overflow is the point
        big = np.full((2, 3), 1e200)                 # float64: the squared distance overflows
        with pytest.raises(public.NonFiniteLossError, match="loss is inf"):
            public.feature_regression_loss(big, -big)
        big = np.full((2, 3), 3e38, np.float32)      # finite loss, float32 gradient overflows
        with pytest.raises(public.NonFiniteLossError, match="gradient is inf"):
            public.feature_regression_loss(big, -big)
