"""Other distillation methods as fine-tuning variants (``tinyface.distill.methods``): each
fine-tunes, its term's gradient is the reference loss's, its settings are checked."""
import numpy as np
import pytest

from tinyface.distill import (METHOD_VARIANTS, METHODS, VARIANTS, DistillConfig, DistillStep,
                              FeatureBank, finetune, finetune_config)
from tinyface.distill.methods import MethodInputs, crd_negatives
from tinyface.experiments import ROW_NAMES, AblationSettings
from tinyface.nn.linear import Linear

quiet = lambda msg: None  # noqa: E731
# the methods on vectors; ``at`` reads a feature map: tests/distill/test_distill_at.py
VECTOR_METHODS = tuple(n for n in METHOD_VARIANTS if METHODS[n].reads != "map")


# ---------------------------------------------------------------- registry
def test_every_method_is_a_variant_with_a_row_and_a_documented_weight():
    assert set(METHOD_VARIANTS) == {"sp", "rkd", "pkt", "fsim", "crd", "dkd", "at"}
    assert VARIANTS[:5] == ("none", "kd", "full", "random", "selective")
    assert AblationSettings().variants == VARIANTS[:5]          # the ablation's default
    for name, m in METHODS.items():
        assert m.name == name and m.reads in ("embedding", "adapter", "logits", "map")
        assert m.default_weight > 0 and m.weight_source and m.citation
        assert ROW_NAMES[name] == m.row_name
        assert m.per_face == (name in ("fsim", "crd", "dkd", "at"))
    assert DistillConfig("sp").weight == 3000.0
    assert DistillConfig("sp", method_weight=2).weight == 2.0
    assert DistillConfig("kd").weight is None and DistillConfig("kd").method is None


def test_config_refuses_an_unknown_variant_and_a_negative_method_weight():
    with pytest.raises(ValueError, match="unknown distillation variant 'nst'"):
        DistillConfig("nst")
    for bad in (-1.0, float("nan"), "1"):
        with pytest.raises(ValueError, match="method_weight"):
            DistillConfig("rkd", method_weight=bad)
    with pytest.raises(ValueError, match="method_weight"):
        DistillStep(_bank(), None, method="rkd", method_weight=-0.5)


def test_crd_negatives_are_seeded_distinct_and_never_the_face_itself():
    rows = np.array([0, 3, 7, 7, 19])
    neg = crd_negatives(rows, 20, seed=1, step=4)
    assert neg.shape == (5, 16) and neg.min() >= 0 and neg.max() < 20
    assert not (neg == rows[:, None]).any()
    assert all(len(set(r)) == 16 for r in neg)
    np.testing.assert_array_equal(neg, crd_negatives(rows, 20, seed=1, step=4))
    assert not np.array_equal(neg, crd_negatives(rows, 20, seed=1, step=5))
    assert crd_negatives(rows[:2], 5, 0, 0).shape == (2, 4)      # K = min(16, N - 1)


# ------------------------------------------------------------ the gradient
def _bank(n=12, dt=10, k=4, seed=0):
    rng = np.random.default_rng(seed)
    return FeatureBank(rng.normal(size=(n, dt)).astype(np.float32),
                       rng.normal(size=(n, k)).astype(np.float32) * 2)


class _FakeStudent:
    """A student whose forward returns a known embedding and logits and whose backward
    records the gradients it is given."""

    def __init__(self, emb, logits):
        self.emb, self.logits, self.got = emb, logits, None

    def forward_both(self, x):
        return self.emb, self.logits

    def backward_both(self, demb, dlogits):
        self.got = (demb, dlogits)


def _linear(d_in, d_out, seed=0):
    """A ``Linear(d_in, d_out)`` with seeded parameters."""
    lin = Linear(d_in, d_out)
    rng = np.random.default_rng(seed)
    lin.params["weight"][...] = rng.normal(size=(d_out, d_in)) / np.sqrt(d_in)
    lin.params["bias"][...] = rng.normal(size=d_out) * 0.1
    return lin


class _Model:
    def __init__(self, student, adapter):
        self.student, self.adapter = student, adapter


@pytest.mark.parametrize("name", VECTOR_METHODS)
def test_step_gradient_of_the_method_term_is_the_reference_gradient(name):
    bank = _bank()
    rng = np.random.default_rng(3)
    idx = np.array([1, 4, 5, 9, 2, 11, 0, 7])
    labels = rng.integers(0, 4, size=len(idx))
    emb = rng.normal(size=(len(idx), 6)).astype(np.float32)            # (b, Ds)
    logits = rng.normal(size=(len(idx), 4)).astype(np.float32)         # (b, K)
    adapter = _linear(6, bank.dim)
    weight = 0.7
    step = DistillStep(bank, None, method=name, method_weight=weight, seed=5)
    step.step = 3
    student = _FakeStudent(emb, logits)
    model = _Model(student, adapter)
    adapter.zero_grad()
    loss, _ = step(model, None, idx, labels)
    ce, kd, reg, m_loss = step.parts[-1]
    assert kd is None and reg is None and np.isfinite(m_loss)
    assert loss == pytest.approx(ce + weight * m_loss)
    demb, dlogits = student.got
    method = METHODS[name]
    inputs = MethodInputs(rows=idx, labels=labels, bank=bank, T=step.T, seed=5, step=3)
    if method.reads == "adapter":
        pred = emb.astype(np.float64) @ adapter.params["weight"].T.astype(np.float64) \
            + adapter.params["bias"]
        ref_loss, dpred = method.loss(pred.astype(np.float32), inputs)
        ref = weight * dpred.astype(np.float64) @ adapter.params["weight"].astype(np.float64)
        assert adapter.grads["weight"].any()                      # A is trained too
    else:
        side = logits if method.reads == "logits" else emb
        ref_loss, ref = method.loss(side, inputs)
        ref = weight * ref
        assert not adapter.grads["weight"].any()
    assert m_loss == pytest.approx(ref_loss, rel=1e-6)
    got = dlogits - _ce_grad(logits, labels) if method.reads == "logits" else demb
    if method.reads != "logits":
        assert dlogits is not None        # CE still flows into the logits
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
    # and the reference gradient is the loss's: central differences on a few coordinates
    side = emb if method.reads == "embedding" else logits if method.reads == "logits" else None
    if side is not None:
        base = side.astype(np.float64)
        for pos in [(0, 0), (3, 2), (7, 1)]:
            h = 1e-3
            up, down = base.copy(), base.copy()
            up[pos] += h
            down[pos] -= h
            num = (method.loss(up, inputs)[0] - method.loss(down, inputs)[0]) / (2 * h)
            assert num * weight == pytest.approx(ref[pos], rel=2e-3, abs=1e-5), (name, pos)


def _ce_grad(logits, labels):
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    return p / len(labels)


def test_method_term_reads_only_the_labelled_rows():
    bank = _bank(n=12)
    rng = np.random.default_rng(1)
    idx = np.array([0, 12, 3, 13, 5, 6])                  # rows 12, 13: a pool's faces
    pool = rng.normal(size=(2, bank.dim)).astype(np.float32)
    emb = rng.normal(size=(6, 5)).astype(np.float32)
    student = _FakeStudent(emb, rng.normal(size=(6, 4)).astype(np.float32))
    step = DistillStep(bank, None, method="sp", method_weight=1.0, pool_targets=pool)
    step(_Model(student, _linear(5, bank.dim)), None, idx, np.array([0, 0, 1, 0, 2, 3]))
    demb = student.got[0]
    assert not demb[[1, 3]].any() and demb[[0, 2, 4, 5]].any()
    lab = np.array([0, 2, 4, 5])
    inputs = MethodInputs(rows=idx[lab], labels=None, bank=bank, T=4.0, seed=0, step=0)
    np.testing.assert_allclose(demb[lab], METHODS["sp"].loss(emb[lab], inputs)[1], rtol=1e-5,
                               atol=1e-7)


# ------------------------------------------------------------ fine-tuning
@pytest.mark.parametrize("name", VECTOR_METHODS)
def test_each_method_variant_fine_tunes_with_finite_losses(name, student, split, bank):
    cfg = finetune_config(epochs=2, batch_size=16, seed=0)
    res = finetune(student, split, bank, None, DistillConfig(name), cfg, log=quiet)
    hist, m = res["history"], res["metrics"]
    assert len(hist) == 2
    for rec in hist:
        assert np.isfinite(rec["train_loss"]) and np.isfinite(rec["ce"])
        assert rec["method"] is not None and np.isfinite(rec["method"])
        assert rec["reg"] is None and rec["kd"] is None
    assert m["variant"] == name and m["method"] == name
    assert m["method_weight"] == METHODS[name].default_weight
    assert m["regressed_faces"] == 0 and not res["weights"].any()
    assert m["final_method_loss"] == hist[-1]["method"]
    assert m["adapter_residual"] is not None if METHODS[name].reads == "adapter" else \
        m["adapter_residual"] is None
    assert m["student_parameters"] == student.num_parameters() and 0 <= m["top1"] <= 1


def test_base_variants_keep_three_parts_and_no_method_key(student, split, bank):
    cfg = finetune_config(epochs=1, batch_size=16, seed=0)
    res = finetune(student, split, bank, None, DistillConfig("kd"), cfg, log=quiet)
    assert "method" not in res["history"][0] and "method" not in res["metrics"]
