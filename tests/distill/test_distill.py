"""Distillation fine-tuning on tiny synthetic data: feature bank, weights, adapter, step,
``finetune``, identity-disjoint verification pairs."""
import numpy as np
import pytest

from tinyface.checkpoint import load_model
from tinyface.distill import (VARIANTS, DistillConfig, DistillStep, DistillStudent, FeatureBank,
                              copy_model, extract_bank, finetune, finetune_config, make_weights)
from tinyface.eval.disjoint import disjoint_pairs, verify_disjoint
from tinyface.models import FaceNet
from tinyface.data import load_split
from tinyface.select import select
from tinyface.train import TrainConfig, make_optimizer

quiet = lambda msg: None  # noqa: E731


def mu1(variant, **kw):
    """The tests' fine-tuning settings: ``variant`` with mu 1."""
    return DistillConfig(variant, mu=1.0, **kw)


@pytest.fixture(scope="module")
def selection(bank, split):
    return select(bank.embeddings, split.y_train, bank.logits, ratio=0.5, per_identity=True)


# -------------------------------------------------------------------- bank
def test_bank_shapes_values_and_cache_round_trip(teacher, split, bank, tmp_path):
    n = len(split.y_train)
    assert bank.embeddings.shape == (n, 256) and bank.logits.shape == (n, split.num_classes)
    assert bank.embeddings.dtype == np.float32 and bank.logits.dtype == np.float32
    # batches do not matter (eval mode): one batch of 5 faces gives the same rows
    from tinyface.data import to_float
    teacher.eval()
    e, z = teacher.forward_both(to_float(split.hr_train[3:8]))
    np.testing.assert_allclose(bank.embeddings[3:8], e, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bank.logits[3:8], z, rtol=1e-4, atol=1e-4)

    path = tmp_path / "bank.npz"
    lines = []
    first = extract_bank(teacher, split.hr_train, cache_path=path, log=lines.append)
    assert path.is_file() and not any("loaded" in m for m in lines)
    lines.clear()
    again = extract_bank(teacher, split.hr_train, cache_path=path, log=lines.append)
    assert any("loaded" in m for m in lines)
    np.testing.assert_array_equal(first.embeddings, again.embeddings)
    np.testing.assert_array_equal(first.logits, again.logits)
    assert FeatureBank.load(path).meta["key"] == first.meta["key"]
    # another key (another teacher or other faces): extracted again, not reused
    lines.clear()
    extract_bank(teacher, split.hr_train, cache_path=path, key="other", log=lines.append)
    assert any("extracting again" in m for m in lines)
    assert FeatureBank.load(path).meta["key"] == "other"
    assert not list(tmp_path.glob(".*tmp"))            # no temporary file left behind


def test_pooled_bank_is_the_trunk_before_the_embedding(teacher, split, bank, tmp_path):
    from tinyface.data import to_float
    from tinyface.distill.bank import layer_dim, pooled_index
    pooled = extract_bank(teacher, split.hr_train, batch_size=16, layer="pooled")
    i = pooled_index(teacher)
    layers = teacher.features.children()
    assert type(layers[i + 1]).__name__ == "Linear"
    teacher.eval()
    h = to_float(split.hr_train)                             # (N, 3, 32, 32)
    for layer in layers[:i + 1]:
        h = layer.forward(h)                                 # ends (N, C) after the pool
    h = np.asarray(h, np.float64).reshape(len(h), -1)
    assert (h >= 0).all()                                    # after a ReLU
    want = (h - h.mean(axis=0)) / (h.std(axis=0) + 1e-5)     # standardised per coordinate
    assert pooled.embeddings.shape == (len(split.y_train), layer_dim(teacher, "pooled"))
    np.testing.assert_allclose(pooled.embeddings, want, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(pooled.logits, bank.logits)   # same teacher, same scores
    # its own cache key: a pooled bank is never taken for an embedding bank
    assert pooled.meta["key"] != bank.meta["key"] and pooled.meta["layer"] == "pooled"
    path = tmp_path / "bank.npz"
    extract_bank(teacher, split.hr_train, cache_path=path)
    lines = []
    extract_bank(teacher, split.hr_train, cache_path=path, layer="pooled", log=lines.append)
    assert any("extracting again" in m for m in lines)
    with pytest.raises(ValueError, match="unknown feature layer 'conv3'"):
        extract_bank(teacher, split.hr_train, layer="conv3")


def test_bank_mismatch_errors_name_both_numbers(bank, split, teacher):
    n = len(split.y_train)
    bank.check(n, dim=256, num_classes=split.num_classes)
    with pytest.raises(ValueError, match=rf"{n} faces.*{n + 3} training faces"):
        bank.check(n + 3)
    with pytest.raises(ValueError, match=r"256-d but 64-d"):
        bank.check(n, dim=64)
    with pytest.raises(ValueError, match=rf"{bank.n} faces.*{n - 1}"):
        make_weights("full", bank, split.y_train[:-1])
    with pytest.raises(ValueError, match="shape"):
        extract_bank(teacher, split.lr_train)           # LR faces for an HR teacher
    bad = FeatureBank(bank.embeddings[:-1], bank.logits[:-1])
    with pytest.raises(ValueError, match=rf"{n - 1} faces but the dataset has {n}"):
        finetune(_dummy_student(split), split, bad, None, mu1("full"), finetune_config(epochs=1))


def _dummy_student(split):
    from tinyface.experiments.streams import build_stream_model
    return build_stream_model(split, "student", seed=0)


# ----------------------------------------------------------------- weights
def test_weights_per_variant(bank, split, selection):
    y = split.y_train
    n = len(y)
    assert np.array_equal(make_weights("full", bank, y), np.ones(n, np.float32))
    for v in ("none", "kd"):
        assert not make_weights(v, bank, y).any()
    sel = make_weights("selective", bank, y, selection=selection)
    assert sel.dtype == np.float32 and np.array_equal(sel.astype(bool), selection.mask)
    # without a selection, selective runs the selector itself
    assert np.array_equal(make_weights("selective", bank, y, seed=0), sel)
    r0 = make_weights("random", bank, y, seed=0, selection=selection)
    assert r0.sum() == selection.mask.sum()
    for k in np.unique(y):                              # per identity, like the selection
        assert r0[y == k].sum() == selection.mask[y == k].sum()
    assert np.array_equal(r0, make_weights("random", bank, y, seed=0, selection=selection))
    assert not np.array_equal(r0, make_weights("random", bank, y, seed=1, selection=selection))
    # a global selection: the same total count
    glob = select(bank.embeddings, y, bank.logits, ratio=0.3, per_identity=False)
    rg = make_weights("random", bank, y, ratio=0.3, seed=2, selection=glob)
    assert rg.sum() == glob.mask.sum()


@pytest.mark.parametrize("ratio", [0.0, -0.5, 1.5, float("nan")])
def test_bad_ratio_is_a_clear_error(bank, split, ratio):
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\]"):
        make_weights("selective", bank, split.y_train, ratio=ratio)


@pytest.mark.parametrize("setting, value, words", [
    ("ratio", 0.0, r"ratio must be in \(0, 1\]"), ("ratio", 1.5, "ratio"),
    ("ratio", float("nan"), "ratio"), ("ratio", "half", "ratio"),
    ("variant", "fancy", "unknown distillation variant 'fancy'"),
    ("feature_norm", "l1", "feature_norm must be one of l2, none"),
    ("adapter_init", "zeros", "adapter_init"), ("mu_schedule", "step", "mu_schedule"),
    ("mu", -1.0, "mu must be"), ("kd_weight", float("inf"), "kd_weight"), ("T", 0.0, "T must"),
    ("per_identity", "yes", "per_identity")])
def test_distill_config_refuses_a_bad_setting_in_one_line(setting, value, words):
    with pytest.raises(ValueError, match=words) as err:
        DistillConfig(**{setting: value})
    assert "\n" not in str(err.value)


def test_distill_config_holds_the_one_default_of_each_setting():
    from tinyface.experiments.settings import AblationSettings
    d, a = DistillConfig(), AblationSettings()
    assert d.mu == 3.0 == a.mu and d.ratio == 0.5
    for name in ("mu", "T", "kd_weight", "ratio", "feature_norm", "adapter_init", "mu_schedule",
                 "per_identity"):
        assert getattr(a, name) == getattr(d, name), name
    assert DistillConfig("full", ratio=1).ratio == 1.0 and DistillConfig().to_dict()["mu"] == 3.0
    with pytest.raises(ValueError, match="ratio"):
        d.replace(ratio=2.0)


def test_finetune_takes_a_distill_config(bank, split):
    with pytest.raises(TypeError, match="DistillConfig"):
        finetune(_dummy_student(split), split, bank, None, "full", finetune_config(epochs=1))


def test_empty_selection_and_unknown_variant(bank, split):
    empty = np.zeros(len(split.y_train), bool)
    for v in ("selective", "random"):
        with pytest.raises(ValueError, match="selection is empty"):
            make_weights(v, bank, split.y_train, selection=empty)
    with pytest.raises(ValueError, match="unknown distillation variant 'fancy'"):
        make_weights("fancy", bank, split.y_train)
    with pytest.raises(ValueError, match="selection is empty"):
        finetune(_dummy_student(split), split, bank, None, mu1("selective"),
                 finetune_config(epochs=1), selection=empty, log=quiet)


# ----------------------------------------------------- adapter and the step
def _reference_regression(E, W, b, targets, w, norm):
    """float64 reference: sum_i w_i ||n(E_i W^T + b) - n(t_i)||^2 / sum_i w_i."""
    P = E @ W.T + b
    t = targets.astype(np.float64)
    if norm == "l2":
        P = P / np.linalg.norm(P, axis=1, keepdims=True)
        t = t / np.linalg.norm(t, axis=1, keepdims=True)
    return float(np.sum(w * np.sum((P - t) ** 2, axis=1)) / np.sum(w))


@pytest.mark.parametrize("norm", ["l2", "none"])
def test_adapter_gradient_matches_finite_differences(bank, student, norm):
    rng = np.random.default_rng(0)
    wrapper = DistillStudent(student, teacher_dim=bank.dim, seed=3)
    idx = np.array([0, 2, 5, 7, 9])
    weights = np.zeros(bank.n, np.float32)
    weights[[0, 5, 9]] = 1.0
    weights[2] = 0.5
    step = DistillStep(bank, weights, mu=1.0, feature_norm=norm)
    E = rng.standard_normal((len(idx), 64)).astype(np.float32)
    wrapper.zero_grad()
    loss, dpred = step.regression(wrapper.adapter, E, idx)
    dE = wrapper.adapter.backward(dpred)
    W = wrapper.adapter.params["weight"].astype(np.float64)
    b = wrapper.adapter.params["bias"].astype(np.float64)
    E64, T, w = E.astype(np.float64), bank.embeddings[idx], weights[idx].astype(np.float64)
    assert loss == pytest.approx(_reference_regression(E64, W, b, T, w, norm), rel=1e-4)
    h = 1e-6
    for arr, grad in ((E64, dE), (W, wrapper.adapter.grads["weight"]), (b, wrapper.adapter.grads["bias"])):
        scale = np.abs(grad).max()
        for flat in rng.choice(arr.size, size=6, replace=False):
            pos = np.unravel_index(flat, arr.shape)
            old = arr[pos]
            arr[pos] = old + h
            up = _reference_regression(E64, W, b, T, w, norm)
            arr[pos] = old - h
            down = _reference_regression(E64, W, b, T, w, norm)
            arr[pos] = old
            numeric = (up - down) / (2 * h)
            assert abs(numeric - grad[pos]) <= 2e-3 * scale + 1e-6, (norm, pos, numeric, grad[pos])


def test_distill_step_lowers_the_regression_loss(bank, student, split):
    from tinyface.data import to_float
    wrapper = DistillStudent(copy_model(student), teacher_dim=bank.dim, seed=0)
    wrapper.train()
    idx = np.arange(16)
    x, y = to_float(split.lr_train[idx]), split.y_train[idx]
    step = DistillStep(bank, np.ones(bank.n, np.float32), mu=1.0)
    opt = make_optimizer(TrainConfig(lr=0.1), wrapper)
    for _ in range(20):
        wrapper.zero_grad()
        loss, correct = step(wrapper, x, idx, y)
        opt.step()
    ce0, kd0, reg0 = step.parts[0]
    assert kd0 is None and step.step == 20
    assert step.parts[-1][2] < 0.5 * reg0
    assert np.isfinite(loss) and 0 <= correct <= 16
    # KD: the loss is CE + weight * T^2 KL, and the adapter gets no gradient
    kd = DistillStep(bank, None, mu=1.0, T=4.0, kd_weight=0.5)
    wrapper.zero_grad()
    loss, _ = kd(wrapper, x, idx, y)
    ce, kl, reg = kd.parts[0]
    assert reg is None and loss == pytest.approx(ce + 0.5 * kl)
    assert not wrapper.adapter.grads["weight"].any()


# ---------------------------------------------------------------- finetune
def test_finetune_keeps_the_input_and_returns_a_deployable_student(student, split, bank,
                                                                    selection, tmp_path):
    before = {k: v.copy() for k, v in student.state_dict().items()}
    cfg = finetune_config(epochs=1, batch_size=16, seed=0)
    res = finetune(student, split, bank, None, mu1("selective"), cfg, selection=selection,
                   out_dir=tmp_path / "sel", log=quiet)
    for k, v in student.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    model, m = res["model"], res["metrics"]
    assert isinstance(model, FaceNet) and model is not student and not model.training
    assert model.num_parameters() == student.num_parameters() == m["student_parameters"]
    assert m["student_bytes"] == 4 * student.num_parameters()
    assert m["adapter_parameters"] == 64 * 256 + 256
    assert m["regressed_faces"] == selection.mask.sum() and 0 <= m["top1"] <= 1
    assert res["history"][0]["reg"] is not None and res["history"][0]["kd"] is None
    changed = any(not np.array_equal(v, before[k]) for k, v in model.state_dict().items())
    assert changed
    for name in ("student.npz", "metrics.json", "checkpoint.npz", "model.npz", "history.json"):
        assert (tmp_path / "sel" / name).is_file(), name
    saved, _ = load_model(tmp_path / "sel" / "student.npz")
    assert isinstance(saved, FaceNet)
    wrapped, _ = load_model(tmp_path / "sel" / "checkpoint.npz")    # student + adapter
    assert isinstance(wrapped, DistillStudent) and wrapped.teacher_dim == 256
    # deterministic per seed, and every variant runs
    again = finetune(student, split, bank, None, mu1("selective"), cfg, selection=selection,
                     log=quiet)
    for k, v in again["model"].state_dict().items():
        np.testing.assert_array_equal(v, model.state_dict()[k], err_msg=k)
    # at and selective-at need attention maps: test_distill_at.py, test_selective_methods.py
    for v in (v for v in VARIANTS if v not in ("at", "selective-at")):
        r = finetune(student, split, bank, None, mu1(v), cfg, selection=selection, log=quiet)
        assert r["metrics"]["variant"] == v
        assert r["model"].num_parameters() == student.num_parameters()
    with pytest.raises(ValueError, match="unknown distillation variant"):
        finetune(student, split, bank, None, DistillConfig("bogus"), cfg, log=quiet)


# ------------------------------------------------------------ verification
def test_synthetic_disjoint_pairs_and_verification(split, student):
    opts = {"n_identities": 20, "images_per_identity": 3, "pairs_per_fold": 4}
    pairs, note = disjoint_pairs("synthetic", split, synthetic=opts)
    assert pairs.n_pairs == 80 and pairs.n_same == 40 and pairs.n_folds == 10
    assert "disjoint" in note
    again, _ = disjoint_pairs("synthetic", split, synthetic=opts)
    np.testing.assert_array_equal(pairs.a, again.a)
    np.testing.assert_array_equal(pairs.images, again.images)
    # other identities than the split's: the images differ from every training face
    assert not any(np.array_equal(pairs.images[0], f) for f in split.hr_train)
    res = verify_disjoint(student, pairs, split.lr_size)
    assert 0 <= res["accuracy"] <= 1 and res["n_pairs"] == 80 and res["input_size"] == 8
    none, note = disjoint_pairs("orl", split)
    assert none is None and note.startswith("n/a")


LFW_PAIRS = """2 3
Al_Big 1 2
Cy_Small 1 2
Di_Small 1 2
Al_Big 1 Cy_Small 1
Cy_Small 3 Ed_Small 1
Di_Small 1 Ed_Small 2
Bo_Big 1 3
Ed_Small 1 2
Gi_Small 1 2
Gi_Small 1 Fa_Small 1
Bo_Big 2 Gi_Small 2
Fa_Small 1 Cy_Small 2
"""


def test_lfw_pairs_are_restricted_to_identities_outside_the_split(tmp_path):
    from test_data_helpers import make_lfw_tree
    people = {"Al_Big": 12, "Bo_Big": 10, "Cy_Small": 3, "Di_Small": 2, "Ed_Small": 2,
              "Fa_Small": 1, "Gi_Small": 2}
    make_lfw_tree(tmp_path, people=people, corrupt=False, empty=False)
    (tmp_path / "pairs.txt").write_text(LFW_PAIRS)
    lfw_split = load_split("lfw", data_root=tmp_path, hr_size=16, lr_size=8, cache_dir=False)
    assert sorted(lfw_split.names) == ["Al_Big", "Bo_Big"]           # the >= 10 images rule
    pairs, note = disjoint_pairs("lfw", lfw_split, data_root=tmp_path, cache_dir=False)
    assert pairs.n_pairs == 8 and pairs.n_same == 4 and pairs.n_folds == 2
    assert pairs.meta["pairs_total"] == 12 and pairs.meta["excluded_identities"] == 2
    assert "8 identity-disjoint pairs" in note
    assert len(pairs.images) == 10              # the distinct faces of the kept pairs
    np.testing.assert_array_equal(pairs.fold_ids, [0, 0, 0, 0, 1, 1, 1, 1])
    model = _dummy_student(lfw_split)
    res = verify_disjoint(model, pairs, 8)
    assert res["n_pairs"] == 8 and len(res["per_fold"]) == 2


def test_interrupted_finetune_resumes_to_the_same_weights(student, split, bank, selection,
                                                         tmp_path, monkeypatch):
    cfg = finetune_config(epochs=2, batch_size=16, seed=4)
    whole = finetune(student, split, bank, None, mu1("selective"), cfg, selection=selection,
                     out_dir=tmp_path / "whole", log=quiet)
    steps = -(-len(split.y_train) // 16)
    original = DistillStep.__call__

    def stop_in_epoch_2(self, *args):
        if self.step == steps + 1:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(DistillStep, "__call__", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        finetune(student, split, bank, None, mu1("selective"), cfg, selection=selection,
                 out_dir=tmp_path / "cut", log=quiet)
    monkeypatch.setattr(DistillStep, "__call__", original)
    resumed = finetune(student, split, bank, None, mu1("selective"), cfg, selection=selection,
                       out_dir=tmp_path / "cut", log=quiet, resume=True)
    for k, v in whole["wrapper"].state_dict().items():      # student and adapter
        np.testing.assert_array_equal(v, resumed["wrapper"].state_dict()[k], err_msg=k)
    assert len(resumed["history"]) == 2
