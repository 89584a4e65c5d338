"""``selective-m``: a per-face method's term on the selected faces only. The step's term
and gradient are the plain method's on the selected rows, the other rows get none, the
names are checked, and ``finetune`` takes the faces from the selection."""
import numpy as np
import pytest

from tinyface.distill import (DistillConfig, DistillStep, FeatureBank, finetune,
                              finetune_config, make_weights)
from tinyface.distill.config import (SELECTION_VARIANTS, SELECTIVE_METHOD_VARIANTS, VARIANTS,
                                     needs_selection)
from tinyface.distill.methods import METHODS, PER_FACE_METHODS, variant_method
from tinyface.experiments import ROW_NAMES
from tinyface.losses import softmax_cross_entropy_loss
from tinyface.nn.linear import Linear

quiet = lambda msg: None  # noqa: E731
N, DT, K = 12, 10, 4                          # bank faces, teacher width, identities


# ----------------------------------------------------------------- names
def test_selective_variants_are_the_per_face_methods():
    assert PER_FACE_METHODS == ("fsim", "crd", "dkd", "at")
    assert SELECTIVE_METHOD_VARIANTS == ("selective-fsim", "selective-crd", "selective-dkd",
                                         "selective-at")
    assert VARIANTS[-4:] == SELECTIVE_METHOD_VARIANTS
    assert set(SELECTIVE_METHOD_VARIANTS) < set(SELECTION_VARIANTS)
    for name in PER_FACE_METHODS:
        cfg = DistillConfig(f"selective-{name}", method_weight=0.3)
        assert cfg.method is METHODS[name] and variant_method(f"selective-{name}") is METHODS[name]
        assert cfg.selective_method and cfg.needs_selection and not cfg.regress
        assert cfg.weight == 0.3 and DistillConfig(f"selective-{name}").weight == \
            METHODS[name].default_weight
        assert ROW_NAMES[f"selective-{name}"] == f"student + selective {name.upper()}"
        assert not DistillConfig(name).selective_method and not needs_selection(name)
    assert needs_selection("random") and needs_selection("selective")
    assert not needs_selection("full") and DistillConfig("selective").method is None


@pytest.mark.parametrize("name", ["selective-sp", "selective-rkd", "selective-pkt",
                                  "selective-nst", "selective-"])
def test_selective_of_a_batch_relation_is_a_one_line_error(name):
    with pytest.raises(ValueError) as err:
        DistillConfig(name)
    msg = str(err.value)
    assert len(msg.splitlines()) == 1 and f"unknown distillation variant {name!r}" in msg
    assert "per-face methods only (fsim, crd, dkd, at)" in msg


def test_step_refuses_method_faces_without_a_per_face_method():
    bank = _bank()
    mask = np.ones(N, bool)
    for method in (None, "sp"):
        with pytest.raises(ValueError, match="method_faces restricts a per-face method"):
            DistillStep(bank, None, method=method, method_faces=mask)
    with pytest.raises(ValueError, match=r"method_faces must be an \(12,\) bool mask"):
        DistillStep(bank, None, method="fsim", method_faces=mask[:5])


# ------------------------------------------------------------------ step
def _bank(seed=0):
    rng = np.random.default_rng(seed)
    attention = rng.random((N, 4))
    attention /= np.linalg.norm(attention, axis=1, keepdims=True)      # (N, h*w) unit rows
    return FeatureBank(rng.normal(size=(N, DT)).astype(np.float32),
                       2 * rng.normal(size=(N, K)).astype(np.float32), {}, attention)


class _Student:
    """Returns a known embedding, logits (and pre-pool map); records the gradients."""

    def __init__(self, emb, logits, fmap):
        self.emb, self.logits, self.fmap, self.got = emb, logits, fmap, None

    def forward_both(self, x, keep_map=False):
        return (self.emb, self.logits, self.fmap) if keep_map else (self.emb, self.logits)

    def backward_both(self, demb, dlogits, dmap=None):
        self.got = {"embedding": demb, "adapter": demb, "logits": dlogits, "map": dmap}


class _Model:
    def __init__(self, student, adapter):
        self.student, self.adapter = student, adapter


def _adapter(seed=0):
    lin = Linear(6, DT)
    rng = np.random.default_rng(seed)
    lin.params["weight"][...] = rng.normal(size=(DT, 6)) / np.sqrt(6)
    lin.params["bias"][...] = rng.normal(size=DT) * 0.1
    return lin


def _run(name, idx, labels, faces, rows=None, pool=None, seed=3):
    """One step of ``name`` (``method_faces=faces``) on the batch positions ``rows``
    (None: all) of a fixed batch; returns (step, method-side gradient, adapter grads)."""
    rng = np.random.default_rng(seed)
    b = len(idx)
    emb = rng.normal(size=(b, 6)).astype(np.float32)
    logits = rng.normal(size=(b, K)).astype(np.float32)
    fmap = rng.normal(size=(b, 3, 2, 2)).astype(np.float32)
    rows = np.arange(b) if rows is None else rows
    student = _Student(emb[rows], logits[rows], fmap[rows])
    adapter = _adapter()
    adapter.zero_grad()
    step = DistillStep(_bank(), None, method=name, method_weight=0.7, seed=5,
                       method_faces=faces, pool_targets=pool)
    step.step = 2
    step(_Model(student, adapter), None, idx[rows], labels[rows])
    grad = student.got[METHODS[name].reads]
    if METHODS[name].reads == "logits":                      # less CE's part
        lab = idx[rows] < N
        ce = np.zeros(grad.shape, np.float32)
        ce[lab] = softmax_cross_entropy_loss(logits[rows][lab], labels[rows][lab])[1]
        grad = grad - ce
    return step, grad, {k: v.copy() for k, v in adapter.grads.items()}


@pytest.mark.parametrize("name", PER_FACE_METHODS)
def test_selective_step_is_the_plain_method_on_the_selected_rows(name):
    faces = np.zeros(N, bool)
    faces[[0, 2, 5, 7, 9, 11]] = True                       # the selection over the bank
    idx = np.array([5, 12, 1, 9, 4, 0, 13, 11])             # 12, 13: a pool's faces
    labels = np.array([1, 0, 3, 2, 0, 1, 0, 3])
    pool = np.random.default_rng(1).normal(size=(2, DT)).astype(np.float32)
    sel, g_sel, a_sel = _run(name, idx, labels, faces, pool=pool)
    keep = np.array([0, 3, 5, 7])                           # selected and labelled
    plain, g_plain, a_plain = _run(name, idx, labels, None, rows=keep, pool=pool)
    np.testing.assert_array_equal(sel.method_rows(idx), keep)
    assert sel.parts[-1][3] == pytest.approx(plain.parts[-1][3], rel=1e-6)
    np.testing.assert_allclose(g_sel[keep], g_plain, rtol=1e-5, atol=1e-7)
    others = np.setdiff1d(np.arange(len(idx)), keep)
    assert not g_sel[others].any() and g_sel[keep].any()    # no method gradient elsewhere
    for k in a_sel:                                          # the adapter's (fsim, crd)
        np.testing.assert_allclose(a_sel[k], a_plain[k], rtol=1e-5, atol=1e-7)
    assert sel.parts[-1][0] != pytest.approx(plain.parts[-1][0])     # CE: every labelled face


@pytest.mark.parametrize("name", PER_FACE_METHODS)
def test_a_batch_without_a_selected_face_has_no_method_term(name):
    faces = np.zeros(N, bool)
    faces[[0, 2]] = True
    idx = np.array([1, 3, 4, 12])
    labels = np.array([0, 1, 2, 0])
    step, grad, adapter = _run(name, idx, labels, faces,
                               pool=np.ones((1, DT), np.float32))
    ce, kd, reg, m_loss = step.parts[-1]
    assert m_loss is None and reg is None and np.isfinite(ce)
    assert grad is None or not grad.any()
    assert not any(g.any() for g in adapter.values())


# ------------------------------------------------------------ fine-tuning
def test_finetune_takes_the_term_on_the_selection(student, split, bank):
    n = len(split.y_train)
    mask = np.zeros(n, bool)
    mask[::3] = True
    cfg = finetune_config(epochs=1, batch_size=16, seed=0)
    res = finetune(student, split, bank, None, DistillConfig("selective-fsim", ratio=0.5),
                   cfg, selection=mask, log=quiet)
    m = res["metrics"]
    np.testing.assert_array_equal(res["weights"] > 0, mask)
    assert m["variant"] == "selective-fsim" and m["method"] == "fsim"
    assert m["method_faces"] == mask.sum() and m["regressed_faces"] == 0 and m["ratio"] == 0.5
    assert m["adapter_residual"] is not None and np.isfinite(res["history"][0]["method"])
    assert res["history"][0]["reg"] is None
    # no selection given: the selective variant's (the selector on the bank)
    res = finetune(student, split, bank, None, DistillConfig("selective-dkd", ratio=0.5),
                   cfg, log=quiet)
    ref = make_weights("selective", bank, split.y_train, 0.5, 0)
    np.testing.assert_array_equal(res["weights"], ref)
    assert 0 < res["metrics"]["method_faces"] == (ref > 0).sum() < n
    with pytest.raises(ValueError, match="the selection is empty"):
        finetune(student, split, bank, np.zeros(n), DistillConfig("selective-crd"), cfg,
                 log=quiet)
