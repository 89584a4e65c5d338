"""Distillation losses on maps and features (AT, SP, FSIM), NumPy reference: gradient
checks in float64, known answers and hand examples, invariances, dtypes, bad input."""
import re

import numpy as np
import pytest

from tinyface.gradcheck import assert_gradient, numerical_gradient
from tinyface.reference.kd_maps import (
    at_loss,
    attention_map_backward,
    attention_map_forward,
    fsim_loss,
    sp_loss,
)

ONE = np.array(1.0)
# (student shape, teacher shape): equal maps, Ct != Cs with H' = 2H, k = 3 on H != W
AT_SHAPES = [((1, 2, 3, 5), (1, 2, 3, 5)), ((2, 3, 4, 4), (2, 5, 8, 8)),
             ((3, 4, 2, 3), (3, 1, 6, 9))]
SP_SHAPES = [((4, 3, 2, 2), (4, 7)), ((3, 5), (3, 2, 3, 3)), ((2, 1), (2, 4))]


def _upsample(f, k):
    """Nearest-neighbour upsampling of (N, C, H, W) by k: (N, C, k*H, k*W)."""
    return np.repeat(np.repeat(f, k, axis=2), k, axis=3)


# --------------------------------------------------------------- gradient checks
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 3, 3), (3, 2, 2, 6)])
def test_attention_map_gradient(shape):
    rng = np.random.default_rng(100 + sum(shape))
    f = rng.standard_normal(shape)
    a, cache = attention_map_forward(f)
    dout = rng.standard_normal(a.shape)
    numeric = numerical_gradient(lambda: attention_map_forward(f)[0], f, dout)
    assert_gradient(attention_map_backward(dout, cache), numeric, tol=1e-6, name="AT map df")


@pytest.mark.parametrize("s_shape,t_shape", AT_SHAPES)
def test_at_loss_gradient(s_shape, t_shape):
    rng = np.random.default_rng(sum(s_shape) + sum(t_shape))
    fs, ft = rng.standard_normal(s_shape), rng.standard_normal(t_shape)
    for beta in (1.0, 0.7):
        numeric = numerical_gradient(lambda beta=beta: at_loss(fs, ft, beta)[0], fs, ONE)
        assert_gradient(at_loss(fs, ft, beta)[1], numeric, tol=1e-6, name=f"AT beta={beta} dfs")


@pytest.mark.parametrize("s_shape,t_shape", SP_SHAPES)
def test_sp_loss_gradient(s_shape, t_shape):
    rng = np.random.default_rng(sum(s_shape) * 7 + sum(t_shape))
    fs, ft = rng.standard_normal(s_shape), rng.standard_normal(t_shape)
    numeric = numerical_gradient(lambda: sp_loss(fs, ft)[0], fs, ONE)
    assert_gradient(sp_loss(fs, ft)[1], numeric, tol=1e-6, name="SP dfs")


@pytest.mark.parametrize("N,D", [(3, 4), (1, 2), (5, 7)])
def test_fsim_loss_gradient(N, D):
    rng = np.random.default_rng(N * 10 + D)
    pred, target = rng.standard_normal((N, D)), rng.standard_normal((N, D))
    some_zero = rng.uniform(0.1, 2.0, N)
    some_zero[0] = 0.0
    for w in (None, rng.uniform(0.1, 2.0, N), some_zero):
        numeric = numerical_gradient(lambda w=w: fsim_loss(pred, target, w)[0], pred, ONE)
        assert_gradient(fsim_loss(pred, target, w)[1], numeric, tol=1e-6, name="FSIM dpred")


# ------------------------------------------------------------------ known answers
def test_attention_map_is_unit_and_keeps_dtype():
    f = np.random.default_rng(1).standard_normal((3, 4, 2, 5)).astype(np.float32)
    a, cache = attention_map_forward(f)
    assert a.shape == (3, 10) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(a, (f ** 2).sum(1).reshape(3, -1)
                               / np.linalg.norm((f ** 2).sum(1).reshape(3, -1), axis=1,
                                                keepdims=True), rtol=1e-5)
    assert attention_map_backward(np.ones((3, 10)), cache).dtype == np.float32
    a, cache = attention_map_forward(np.zeros((1, 2, 2, 2), np.float32))   # eps-guarded
    assert not a.any() and np.all(np.isfinite(attention_map_backward(np.ones((1, 4)), cache)))


def test_at_zero_for_identical_and_scaled_teacher():
    rng = np.random.default_rng(2)
    fs = rng.standard_normal((3, 4, 3, 2)).astype(np.float32)
    for ft in (fs.copy(), 2.5 * fs, _upsample(fs, 2), np.concatenate([fs, -3 * fs], axis=1)):
        loss, grad = at_loss(fs, ft, beta=10.0)
        assert abs(loss) < 1e-10 and np.abs(grad).max() < 1e-5
        assert grad.dtype == np.float32 and grad.shape == fs.shape
    loss, _ = at_loss(fs, fs[::-1].copy())
    assert loss > 1e-3


def test_at_hand_example():
    # face 0: student energy all on the left cell, teacher's (pooled) all on the right:
    # a_s = [1, 0], a_t = [0, 1], squared distance 2. Face 1: uniform maps, distance 0.
    fs = np.array([[[[5.0, 0.0]]], [[[1.0, 1.0]]]])                       # (2, 1, 1, 2)
    ft = np.zeros((2, 2, 2, 4))                                           # (2, 2, 2, 4), k = 2
    ft[0, :, :, 2:] = 1.0
    ft[1] = 3.0
    assert at_loss(fs, ft)[0] == pytest.approx(0.5, rel=1e-12)             # 1/2 * (2 + 0) / 2
    assert at_loss(fs, ft, beta=4.0)[0] == pytest.approx(2.0, rel=1e-12)
    # one face, student [1, 1] -> a_s = [1, 1] / sqrt 2 against a_t = [1, 0]:
    # ||a_s - a_t||^2 = (1 - 1/sqrt 2)^2 + 1/2 = 2 - sqrt 2
    ft = np.zeros((1, 1, 2, 4))
    ft[0, 0, :, :2] = 1.0
    assert at_loss(fs[1:], ft, beta=2.0)[0] == pytest.approx(2 - np.sqrt(2), rel=1e-12)
    # the energy is pooled, not the signed activations: a +-1 checkerboard has energy 1 in
    # every cell, so it matches the uniform student exactly
    ft = np.where(np.indices((2, 4)).sum(0) % 2 == 0, 1.0, -1.0)[None, None]   # (1, 1, 2, 4)
    assert at_loss(fs[1:], ft)[0] == pytest.approx(0.0, abs=1e-12)


def test_sp_zero_for_identical_and_scaled_teacher():
    rng = np.random.default_rng(3)
    fs = rng.standard_normal((5, 3, 2, 2)).astype(np.float32)
    for ft in (fs.copy(), 4.0 * fs, 0.01 * fs.reshape(5, -1)):
        loss, grad = sp_loss(fs, ft)
        assert abs(loss) < 1e-10 and np.abs(grad).max() < 1e-5
        assert grad.dtype == np.float32 and grad.shape == fs.shape
    assert sp_loss(fs, rng.standard_normal((5, 9)))[0] > 1e-3


def test_sp_hand_example():
    # G_s = I; the teacher's two faces are parallel, so every entry of G_t is 1 / sqrt 2:
    # ||G_s - G_t||_F^2 = 2 (1 - 1/sqrt 2)^2 + 2 / 2 = 4 - 2 sqrt 2, over N^2 = 4
    fs = np.eye(2)
    ft = np.array([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0]])                      # D = 3 != 2
    loss, grad = sp_loss(fs, ft)
    assert loss == pytest.approx(1 - np.sqrt(2) / 2, rel=1e-12)
    assert grad.shape == (2, 2) and grad.dtype == np.float64


def test_fsim_known_answers():
    rng = np.random.default_rng(4)
    pred = rng.standard_normal((4, 6)).astype(np.float32)
    loss, grad = fsim_loss(pred, 3.0 * pred)
    assert abs(loss) < 1e-7 and np.abs(grad).max() < 1e-6
    assert grad.dtype == np.float32 and grad.shape == pred.shape
    loss, _ = fsim_loss(pred, -pred)
    assert loss == pytest.approx(2.0, rel=1e-7)
    loss, grad = fsim_loss(pred, rng.standard_normal((4, 6)), np.zeros(4))
    assert loss == 0.0 and not grad.any() and grad.shape == pred.shape


def test_fsim_hand_example():
    # face 0 orthogonal (cos 0), face 1 parallel (cos 1). d cos_0 / d pred_0 = [0, 1]
    pred = np.array([[1.0, 0.0], [1.0, 1.0]])
    target = np.array([[0.0, 1.0], [2.0, 2.0]])
    loss, grad = fsim_loss(pred, target)
    assert loss == pytest.approx(0.5, rel=1e-12)
    np.testing.assert_allclose(grad, [[0.0, -0.5], [0.0, 0.0]], atol=1e-12)
    assert fsim_loss(pred, target, np.array([3.0, 1.0]))[0] == pytest.approx(0.75, rel=1e-12)
    assert fsim_loss(pred, target, np.array([0.0, 1.0]))[0] == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------- invariances
def test_sp_unchanged_when_teacher_scaled():
    rng = np.random.default_rng(5)
    fs, ft = rng.standard_normal((6, 4)), rng.standard_normal((6, 2, 3))
    loss, grad = sp_loss(fs, ft)
    assert loss > 1e-3
    for c in (1e-3, 0.5, 7.0):
        scaled = sp_loss(fs, c * ft)
        assert scaled[0] == pytest.approx(loss, rel=1e-10)
        np.testing.assert_allclose(scaled[1], grad, rtol=1e-8, atol=1e-12)


def test_at_unchanged_when_student_scaled():
    rng = np.random.default_rng(6)
    fs, ft = rng.standard_normal((2, 3, 2, 4)), rng.standard_normal((2, 6, 4, 8))
    loss, grad = at_loss(fs, ft)
    assert loss > 1e-3
    for c in (1e-3, 0.5, 7.0):
        scaled = at_loss(c * fs, ft)
        assert scaled[0] == pytest.approx(loss, rel=1e-10)
        np.testing.assert_allclose(scaled[1], grad / c, rtol=1e-8, atol=1e-12)
        assert at_loss(fs, c * ft)[0] == pytest.approx(loss, rel=1e-10)


# ------------------------------------------------------------------- bad input
def test_at_rejects_teacher_that_cannot_be_pooled():
    fs = np.zeros((2, 3, 2, 2))
    for t_shape in [(2, 3, 5, 5), (2, 3, 4, 6), (2, 3, 1, 1), (2, 3, 4)]:
        with pytest.raises(ValueError, match="cannot be pooled") as err:
            at_loss(fs, np.zeros(t_shape))
        assert str(t_shape) in str(err.value) and "(2, 3, 2, 2)" in str(err.value)
    with pytest.raises(ValueError, match="beta"):
        at_loss(fs, np.zeros((2, 3, 4, 4)), beta=-1.0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        attention_map_forward(np.zeros((2, 4)))


def test_batch_mismatch_names_both_shapes():
    cases = [(at_loss, (2, 3, 2, 2), (3, 3, 4, 4)), (sp_loss, (2, 5), (3, 5)),
             (sp_loss, (4, 2, 2), (2, 8)), (fsim_loss, (2, 4), (3, 4)),
             (fsim_loss, (2, 4), (2, 5))]
    for loss, s_shape, t_shape in cases:
        with pytest.raises(ValueError) as err:
            loss(np.ones(s_shape), np.ones(t_shape))
        for shape in (s_shape, t_shape):
            assert re.search(re.escape(str(shape)), str(err.value)), (loss.__name__, err.value)
    with pytest.raises(ValueError, match="non-negative"):
        fsim_loss(np.ones((2, 3)), np.ones((2, 3)), np.array([1.0, -1.0]))
