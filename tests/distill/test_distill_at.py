"""Attention transfer as the fine-tuning variant ``at``: the teacher's pooled attention in
the bank, the student's pre-pool map and its gradient in ``FaceNet``, the step's term."""
import importlib

import numpy as np
import pytest

from tinyface.data import to_float
from tinyface.distill import DistillConfig, DistillStep, extract_bank, finetune, finetune_config
from tinyface.distill.bank import FeatureBank, bank_key
from tinyface.distill.methods import METHODS
from tinyface.experiments import ROW_NAMES
from tinyface.experiments.streams import build_stream_model
from tinyface.reference.kd_maps import (adaptive_avg_pool, adaptive_pool_matrix, at_loss,
                                        attention_map_forward, attention_rows_loss,
                                        teacher_attention)

quiet = lambda msg: None  # noqa: E731
finetune_module = importlib.import_module("tinyface.distill.finetune")


@pytest.fixture(scope="module")
def teacher(split):
    return build_stream_model(split, "teacher", arch="teacher-lite", seed=1).eval()


@pytest.fixture(scope="module")
def student(split):
    return build_stream_model(split, "student", seed=2)


@pytest.fixture(scope="module")
def bank(teacher, student, split):
    return extract_bank(teacher, split.hr_train, batch_size=16,
                        attention_size=student.map_shape[1:])


# ------------------------------------------------------------ pooling (no gradient)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_adaptive_pooling_is_the_window_mean_for_an_integer_factor(k):
    rng = np.random.default_rng(k)
    q = rng.random((3, 2 * k, 3 * k))
    window = q.reshape(3, 2, k, 3, k).mean(axis=(2, 4))                   # (3, 2, 3)
    np.testing.assert_allclose(adaptive_avg_pool(q, (2, 3)), window, rtol=1e-12)
    P = adaptive_pool_matrix(3 * k, 3)
    np.testing.assert_array_equal(P, np.kron(np.eye(3), np.full((1, k), 1.0 / k)))


@pytest.mark.parametrize("sides", [((7, 5), (3, 2)), ((9, 9), (4, 4)), ((2, 3), (3, 5))])
def test_adaptive_pooling_preserves_the_total_for_other_sizes(sides):
    (H, W), (h, w) = sides
    q = np.random.default_rng(0).random((2, H, W))
    out = adaptive_avg_pool(q, (h, w))
    assert out.shape == (2, h, w)
    np.testing.assert_allclose(out.sum(axis=(1, 2)) * (H * W) / (h * w), q.sum(axis=(1, 2)),
                               rtol=1e-12)
    P = adaptive_pool_matrix(H, h)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)            # weighted means
    np.testing.assert_allclose(adaptive_avg_pool(np.ones((1, H, W)), (h, w)), 1.0)


def test_teacher_attention_is_at_loss_teacher_side():
    rng = np.random.default_rng(4)
    fs = rng.normal(size=(3, 5, 2, 2))
    ft = rng.normal(size=(3, 7, 4, 4))
    a_t = teacher_attention(ft, (2, 2))
    assert a_t.dtype == np.float32 and a_t.shape == (3, 4)
    np.testing.assert_allclose(np.linalg.norm(a_t, axis=1), 1.0, rtol=1e-6)
    # at_loss pools by k x k too: same teacher side, losses related by beta / 2 vs 1 / P
    loss, _ = attention_rows_loss(fs, a_t.astype(np.float64))
    ref, _ = at_loss(fs, ft, beta=1.0)
    assert loss == pytest.approx(ref * 2 / 4, rel=1e-6)


def test_attention_rows_loss_gradient_by_finite_differences():
    rng = np.random.default_rng(5)
    fs = rng.normal(size=(3, 4, 3, 3))
    a_t, _ = attention_map_forward(rng.normal(size=(3, 2, 3, 3)))
    loss, dfs = attention_rows_loss(fs, a_t)
    assert dfs.shape == fs.shape and np.isfinite(loss)
    v = rng.normal(size=fs.shape)
    h = 1e-6
    num = (attention_rows_loss(fs + h * v, a_t)[0] - attention_rows_loss(fs - h * v, a_t)[0])
    assert num / (2 * h) == pytest.approx(np.sum(dfs * v), rel=1e-5)


# --------------------------------------------------------------------- bank
def test_bank_attention_rows_are_unit_norm_cached_and_loaded(teacher, split, tmp_path):
    path = tmp_path / "bank.npz"
    plain = extract_bank(teacher, split.hr_train, batch_size=16, cache_path=tmp_path / "p.npz")
    assert plain.attention is None and plain.meta["key"] == bank_key(teacher, split.hr_train)
    bank = extract_bank(teacher, split.hr_train, batch_size=16, cache_path=path,
                        attention_size=(3, 3))      # 2x2 teacher map -> 3x3: adaptive
    assert bank.attention.shape == (bank.n, 9) and bank.attention.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bank.attention, axis=1), 1.0, rtol=1e-5)
    assert bank.meta["key"] == plain.meta["key"] + "-at3x3"
    assert bank.meta["attention_size"] == [3, 3]
    np.testing.assert_array_equal(bank.embeddings, plain.embeddings)
    np.testing.assert_array_equal(bank.logits, plain.logits)
    logs = []
    again = extract_bank(teacher, split.hr_train, cache_path=path, log=logs.append,
                         attention_size=(3, 3))
    assert any("loaded" in m for m in logs)
    np.testing.assert_array_equal(again.attention, bank.attention)
    logs.clear()                                    # another size: extracted again
    other = extract_bank(teacher, split.hr_train, cache_path=path, log=logs.append,
                         attention_size=(2, 2))
    assert not any("loaded" in m for m in logs) and other.attention.shape[1] == 4


# ------------------------------------------------------------------ FaceNet
def test_facenet_with_the_map_is_identical_without_a_map_gradient(split):
    model = build_stream_model(split, "student", seed=3)
    x = to_float(split.lr_train[:6])
    rng = np.random.default_rng(0)
    demb = rng.normal(size=(6, model.embedding_dim)).astype(np.float32)
    dlog = rng.normal(size=(6, model.num_classes)).astype(np.float32)
    runs = []
    for keep in (False, True):
        model.zero_grad()
        out = model.forward_both(x, keep_map=True) if keep else model.forward_both(x)
        dx = model.backward_both(demb, dlog)
        runs.append((out[:2], dx, {k: np.array(v) for k, v in model.named_grads()}))
        if keep:
            assert out[2].shape == (6,) + model.map_shape
    (o0, dx0, g0), (o1, dx1, g1) = runs
    for a, b in zip(o0, o1):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(dx0, dx1)
    assert g0.keys() == g1.keys()
    for k in g0:
        np.testing.assert_array_equal(g0[k], g1[k])


def test_facenet_map_gradient_by_finite_differences(split):
    model = build_stream_model(split, "student", seed=4).eval()
    x = to_float(split.lr_train[:4])
    rng = np.random.default_rng(1)
    C, H, W = model.map_shape
    R = rng.normal(size=(4, C, H, W))
    E = rng.normal(size=(4, model.embedding_dim))

    def loss(xx):
        emb, _, fmap = model.forward_both(xx, keep_map=True)
        return float(np.sum(R * fmap) + np.sum(E * emb))

    loss(x)
    dx = model.backward_both(E.astype(np.float32), None, R.astype(np.float32))
    only_map = (model.forward_both(x, keep_map=True),
                model.backward_both(None, None, R.astype(np.float32)))[1]
    assert dx.shape == x.shape and np.abs(only_map).sum() > 0
    v = rng.normal(size=x.shape).astype(np.float32)
    h = 1e-3            # the model runs in float32 (ReLU and max-pool kinks): a relative bound
    num = (loss(x + h * v) - loss(x - h * v)) / (2 * h)
    assert num == pytest.approx(float(np.sum(dx.astype(np.float64) * v)), rel=0.1)
    model.forward_both(x)                           # a plain forward: no map to send into
    with pytest.raises(RuntimeError, match="keep_map"):
        model.backward_both(None, None, R.astype(np.float32))


# --------------------------------------------------------------- the variant
def test_at_is_a_method_variant_with_its_row():
    m = METHODS["at"]
    assert m.reads == "map" and m.default_weight == 1000.0 and m.per_face
    assert ROW_NAMES["at"] == m.row_name
    assert DistillConfig("at").weight == 1000.0


def test_at_fine_tunes_with_finite_losses(student, split, bank):
    cfg = finetune_config(epochs=2, batch_size=16, seed=0)
    res = finetune(student, split, bank, None, DistillConfig("at"), cfg, log=quiet)
    hist, m = res["history"], res["metrics"]
    assert len(hist) == 2
    for rec in hist:
        assert np.isfinite(rec["train_loss"]) and np.isfinite(rec["ce"])
        assert rec["method"] is not None and np.isfinite(rec["method"]) and rec["method"] > 0
    assert m["method"] == "at" and m["method_reads"] == "map"
    assert m["student_parameters"] == student.num_parameters()    # no adapter deployed


def test_at_refuses_a_bank_without_attention(student, split, teacher):
    plain = extract_bank(teacher, split.hr_train, batch_size=16)
    cfg = finetune_config(epochs=1, batch_size=16, seed=0)
    with pytest.raises(ValueError, match="attention_size"):
        finetune(student, split, plain, None, DistillConfig("at"), cfg, log=quiet)
    with pytest.raises(ValueError, match="attention"):
        DistillStep(plain, None, method="at")


class _MapStudent:
    """Returns fixed outputs and records the gradients it is given."""

    def __init__(self, emb, logits, fmap):
        self.out, self.got = (emb, logits, fmap), None

    def forward_both(self, x, keep_map=False):
        return self.out if keep_map else self.out[:2]

    def backward_both(self, demb, dlogits, dmap=None):
        self.got = (demb, dlogits, dmap)


class _Model:
    def __init__(self, student):
        self.student, self.adapter = student, None


def test_step_sends_the_reference_gradient_into_the_map_of_labelled_rows():
    rng = np.random.default_rng(7)
    n, dt = 10, 5
    attention, _ = attention_map_forward(rng.normal(size=(n, 3, 2, 2)))
    bank = FeatureBank(rng.normal(size=(n, dt)), rng.normal(size=(n, 4)), {}, attention)
    idx = np.array([0, 10, 3, 11, 5, 9])                   # rows 10, 11: a pool's faces
    labels = np.array([0, 0, 1, 0, 2, 3])
    fmap = rng.normal(size=(6, 4, 2, 2)).astype(np.float32)
    student = _MapStudent(rng.normal(size=(6, 8)).astype(np.float32),
                          rng.normal(size=(6, 4)).astype(np.float32), fmap)
    step = DistillStep(bank, None, method="at", method_weight=0.5,
                       pool_targets=rng.normal(size=(2, dt)).astype(np.float32))
    loss, _ = step(_Model(student), None, idx, labels)
    demb, dlogits, dmap = student.got
    lab = np.array([0, 2, 4, 5])
    ref_loss, ref = attention_rows_loss(fmap[lab], attention[idx[lab]])
    assert demb is None and dlogits is not None and step.parts[-1][3] == pytest.approx(ref_loss)
    assert not dmap[[1, 3]].any()
    np.testing.assert_allclose(dmap[lab], 0.5 * ref, rtol=1e-5, atol=1e-8)
