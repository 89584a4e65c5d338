"""RKD angle loss, Numba kernel (``tinyface.kernels.kd_relations``) against the NumPy
reference: value and gradient over random shapes, repeatability, a float64 gradient
check, the guards and bad weights (its gradient checks, known answers, invariances and
bad shapes run with the reference's, in ``test_kd_relations.py``)."""
import numpy as np
import pytest

from tinyface.gradcheck import assert_gradient, numerical_gradient
from tinyface.kernels import kd_relations as kern
from tinyface.reference import kd_relations as ref

ONE = np.array(1.0)
SHAPES = [(3, 2, 5), (4, 70, 3), (9, 16, 16), (17, 3, 40), (31, 64, 8), (40, 33, 70)]


def rel_grad_error(a, b):
    """max |a - b| over max |b|: the gradient's error relative to its scale."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N,Ds,Dt", SHAPES)
def test_angle_matches_reference(N, Ds, Dt, dtype):
    rng = np.random.default_rng(1000 * N + 10 * Ds + Dt)
    es = rng.standard_normal((N, Ds)).astype(dtype)
    et = (rng.standard_normal((N, Dt)) * np.linspace(3.0, 0.3, Dt)).astype(dtype)
    loss, des = kern.rkd_angle_loss(es, et)
    loss_ref, des_ref = ref.rkd_angle_loss(es, et)
    assert isinstance(loss, float) and des.dtype == dtype and des.shape == es.shape
    tight = dtype == np.float64
    assert loss == pytest.approx(loss_ref, rel=1e-10 if tight else 1e-5)
    assert rel_grad_error(des, des_ref) < (1e-10 if tight else 1e-5)


@pytest.mark.parametrize("w_distance,w_angle", [(25.0, 50.0), (0.0, 1.0), (2.0, 0.0)])
def test_rkd_loss_matches_reference(w_distance, w_angle):
    rng = np.random.default_rng(3)
    es, et = rng.standard_normal((12, 6)).astype(np.float32), rng.standard_normal((12, 9))
    loss, des = kern.rkd_loss(es, et, w_distance, w_angle)
    loss_ref, des_ref = ref.rkd_loss(es, et, w_distance, w_angle)
    assert isinstance(loss, float) and des.dtype == np.float32
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    assert rel_grad_error(des, des_ref) < 1e-5


def test_repeated_calls_are_bit_identical():
    rng = np.random.default_rng(5)
    es, et = rng.standard_normal((33, 20)).astype(np.float32), rng.standard_normal((33, 7))
    l1, g1 = kern.rkd_angle_loss(es, et)
    l2, g2 = kern.rkd_angle_loss(es, et)
    assert l1 == l2 and np.array_equal(g1, g2)


def test_serial_and_parallel_twins_agree_bit_for_bit():
    rng = np.random.default_rng(6)
    N, Ds = 11, 5
    es, et = rng.standard_normal((N, Ds)), rng.standard_normal((N, 4))
    inv_t = 1.0 / (N * (N - 1) * (N - 2))
    out = []
    for pick in (0, 1):
        row_loss, du = np.empty(N), np.empty((N, N, Ds))
        de = np.empty((N, Ds))
        kern._angle_anchor[pick](es, et, inv_t, row_loss, du)
        kern._gather[pick](du, de)
        out.append((row_loss, de))
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])


@pytest.mark.parametrize("N,Ds,Dt", [(3, 2, 5), (6, 4, 3)])
def test_angle_gradient_central_differences(N, Ds, Dt):
    rng = np.random.default_rng(10 * N + Ds)
    es = rng.standard_normal((N, Ds))
    et = rng.standard_normal((N, Dt)) * np.array([3.0] + [0.3] * (Dt - 1))
    loss, des = kern.rkd_angle_loss(es, et)
    assert loss > 0 and des.dtype == np.float64
    num = numerical_gradient(lambda: kern.rkd_angle_loss(es, et)[0], es, ONE)
    assert_gradient(des, num, tol=1e-6, name="kernel rkd_angle des")


def test_known_answer_and_small_batches():
    es = np.array([[0.0], [1.0], [2.0]])
    et = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    assert kern.rkd_angle_loss(es, et)[0] == pytest.approx(5 / 12, rel=1e-12)
    loss, des = kern.rkd_angle_loss(np.eye(2), np.eye(2)[::-1])
    assert loss == 0.0 and not des.any()
    e = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    loss, des = kern.rkd_angle_loss(e, e.copy())
    assert abs(loss) < 1e-12 and np.abs(des).max() < 1e-6


def test_identical_faces_match_reference():
    es = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [-1.0, 0.5]])
    et = np.random.default_rng(3).standard_normal((5, 3))
    loss, des = kern.rkd_angle_loss(es, et)
    loss_ref, des_ref = ref.rkd_angle_loss(es, et)
    assert np.isfinite(loss) and np.all(np.isfinite(des))
    assert loss == pytest.approx(loss_ref, rel=1e-10)
    assert rel_grad_error(des, des_ref) < 1e-10


def test_integer_and_non_contiguous_input():
    rng = np.random.default_rng(8)
    es = rng.integers(-3, 4, (7, 6))                  # integers: float32, as check_rows does
    et = rng.standard_normal((5, 7)).T               # (7, 5), not C-contiguous
    loss, des = kern.rkd_angle_loss(es, et)
    loss_ref, des_ref = ref.rkd_angle_loss(es, et)
    assert des.dtype == des_ref.dtype == np.float32
    assert loss == pytest.approx(loss_ref, rel=1e-10)
    assert rel_grad_error(des, des_ref) < 1e-6


def test_rkd_loss_rejects_bad_weights():
    e = np.zeros((4, 3))
    with pytest.raises(ValueError, match="w_angle"):
        kern.rkd_loss(e, e, w_angle=-1.0)
    with pytest.raises(ValueError, match="w_distance"):
        kern.rkd_loss(e, e, w_distance=np.inf)
