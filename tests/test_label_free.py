"""Label-free regression: which faces qualify (``label_free_pool``), how their faces are
made, and ``finetune`` with an ``UnlabelledPool`` (CE on labelled faces only, the
regression on every pool face, exact equality without one, determinism, resume,
signatures). Small synthetic data and a tiny LFW tree: seconds."""
import dataclasses
import importlib

import numpy as np
import pytest

from tinyface.data import identification_split, load_dataset
from tinyface.distill import DistillConfig, DistillStep, FeatureBank, finetune, finetune_config
from tinyface.distill.label_free import (UnlabelledPool, label_free_pool, make_pool,
                                         pool_lr_faces, pool_signature, pool_source_faces)
from tinyface.eval.disjoint import disjoint_pairs
from tinyface.data import load_split
from tinyface.train.resume import ResumeMismatchError

quiet = lambda msg: None  # noqa: E731


def mu1(variant, **kw):
    """The tests' fine-tuning settings: ``variant`` with mu 1."""
    return DistillConfig(variant, mu=1.0, **kw)

# the split keeps Al_Big and Bo_Big (>= 10 faces); the kept pairs use Cy, Di, Ed, Fa, Gi
# (both identities outside the split); Ha_Solo and Io_Few are in no pair
PEOPLE = {"Al_Big": 12, "Bo_Big": 10, "Cy_Small": 3, "Di_Small": 2, "Ed_Small": 2,
          "Fa_Small": 1, "Gi_Small": 2, "Ha_Solo": 1, "Io_Few": 3}
PAIR_PEOPLE = {"Cy_Small", "Di_Small", "Ed_Small", "Fa_Small", "Gi_Small"}
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


@pytest.fixture(scope="module")
def lfw(tmp_path_factory):
    from test_data_helpers import make_lfw_tree
    root = tmp_path_factory.mktemp("lfw")
    make_lfw_tree(root, people=PEOPLE, corrupt=False, empty=False)
    (root / "pairs.txt").write_text(LFW_PAIRS)
    split = load_split("lfw", data_root=root, hr_size=16, lr_size=8, cache_dir=False)
    ds = load_dataset("lfw", root=root, hr_size=16, cache_dir=False)
    pairs, _ = disjoint_pairs("lfw", split, data_root=root, cache_dir=False)
    return root, split, ds, pairs


def _names(ds, rows):
    return {ds.names[k] for k in ds.labels[rows]}


def _has_face(faces, face):
    return any(np.array_equal(f, face) for f in faces)


# ------------------------------------------------------------------ the rule
def test_pool_excludes_test_training_and_pair_identities(lfw):
    root, split, ds, pairs = lfw
    rows, info = label_free_pool(ds, split, pairs)
    assert _names(ds, rows) == {"Ha_Solo", "Io_Few"} and len(rows) == 4
    assert info["faces"] == 4 and info["singletons"] == 1 and info["identities"] == 2
    assert info["pair_identities"] == 5 and info["pair_identity_faces"] == 10
    assert info["test_faces"] == len(split.y_test) and info["train_faces"] == len(split.y_train)
    assert "4 faces of 2 identities" in info["text"]
    # the flag off: every face outside the split, the pairs' identities included
    every, info_off = label_free_pool(ds, split, pairs, exclude_pair_identities=False)
    assert _names(ds, every) == PAIR_PEOPLE | {"Ha_Solo", "Io_Few"} and len(every) == 14
    assert info_off["pair_identities"] == 0 and set(rows) <= set(every)
    np.testing.assert_array_equal(label_free_pool(ds, split, None)[0], every)
    # checked on the pixels, apart from the rows: no test face and no training face
    for r in every:
        assert not _has_face(split.hr_test, ds.images[r])
        assert not _has_face(split.hr_train, ds.images[r])
    pair_faces = {f.tobytes() for f in pairs.images}
    assert not any(ds.images[r].tobytes() in pair_faces for r in rows)
    assert sum(ds.images[r].tobytes() in pair_faces for r in every) == len(pairs.images)


def test_pool_refuses_a_dataset_that_is_not_the_splits(lfw):
    root, split, ds, pairs = lfw
    import dataclasses
    lied = dataclasses.replace(split, meta=dict(split.meta, seed=3))    # not how it was made
    with pytest.raises(ValueError, match="differ from the split's"):
        label_free_pool(ds, lied, pairs)
    big = load_dataset("lfw", root=root, hr_size=32, cache_dir=False)
    with pytest.raises(ValueError, match="hr_size=16"):
        label_free_pool(big, split, pairs)
    fewer = dataclasses.replace(split, meta=dict(split.meta, min_images=2))
    with pytest.raises(ValueError, match="does not give the split's"):
        label_free_pool(ds, fewer, pairs)
    with pytest.raises(ValueError, match="decoded at 32px"):
        pool_lr_faces(big, [0], split)


def test_pool_faces_are_made_as_the_splits(lfw):
    root, split, ds, pairs = lfw
    meta = split.meta
    train_rows, _ = identification_split(ds, meta["min_images"], meta["train_fraction"],
                                         meta["seed"])
    # the split's own training rows give exactly its LR faces
    np.testing.assert_array_equal(pool_lr_faces(ds, train_rows, split), split.lr_train)
    rows, info = label_free_pool(ds, split, pairs, exclude_pair_identities=False)
    big = load_dataset("lfw", root=root, hr_size=32, cache_dir=False)
    hr = pool_source_faces(ds, rows, split, "lfw", 32, root, False)
    assert hr.shape == (len(rows), 3, 32, 32)
    np.testing.assert_array_equal(hr, big.images[rows])
    # targets: reused where known, computed in one call for the others
    calls = []

    def first6(faces):
        return faces.reshape(len(faces), -1)[:, :6].astype(np.float32)

    def embed(faces):
        calls.append(len(faces))
        return first6(faces)

    known_rows = rows[:5]
    known = np.full((5, 6), 7.0, np.float32)
    pool = make_pool(ds, split, rows, embed, info, data="lfw", hr_size=32, data_root=root,
                     cache_dir=False, known=[(known_rows, known)])
    assert calls == [len(rows) - 5] and pool.n == len(rows) and pool.dim == 6
    np.testing.assert_array_equal(pool.targets[:5], known)
    np.testing.assert_array_equal(pool.targets[5:], first6(hr[5:]))
    np.testing.assert_array_equal(pool.lr_images, pool_lr_faces(ds, rows, split))
    assert pool.meta["faces"] == len(rows) and pool.meta["hr_source"] == "32px"
    empty = make_pool(ds, split, rows[:0], embed, dim=6)
    assert empty.n == 0 and empty.dim == 6 and len(calls) == 1


# ----------------------------------------------------------------- finetune
@pytest.fixture(scope="module")
def tiny():
    from tinyface.experiments.streams import build_stream_model
    split = load_split("synthetic", hr_size=16, lr_size=8, cache_dir=False,
                       synthetic={"n_identities": 5, "images_per_identity": 6})
    rng = np.random.default_rng(0)
    n = len(split.y_train)
    bank = FeatureBank(rng.standard_normal((n, 12)), rng.standard_normal((n, split.num_classes)))
    m = 23
    pool = UnlabelledPool(rng.integers(0, 256, (m, 3, 8, 8), dtype=np.uint8),
                          rng.standard_normal((m, 12)).astype(np.float32), {"rule": "test"})
    student = build_stream_model(split, "student", seed=0)
    return split, bank, pool, student


def _weights_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_ce_sees_only_labelled_faces_and_the_regression_every_pool_face(tiny, monkeypatch):
    import tinyface.distill.step as step_mod
    fit_mod = importlib.import_module("tinyface.train.fit")   # the module, where fit looks it up
    split, bank, pool, student = tiny
    n, m = len(split.y_train), pool.n
    seen = []                           # per step: (idx, CE rows, CE labels, regression idx, w)
    ce_orig, reg_orig, call_orig = (step_mod.softmax_cross_entropy_loss,
                                    DistillStep.regression, DistillStep.__call__)

    def call(self, model, x, idx, labels):
        seen.append({"idx": np.array(idx)})
        return call_orig(self, model, x, idx, labels)

    def ce(logits, labels):
        seen[-1].update(ce_rows=len(logits), ce_labels=np.array(labels))
        return ce_orig(logits, labels)

    def reg(self, adapter, emb, idx):
        seen[-1].update(reg_idx=np.array(idx), w=self.weights[idx].copy())
        return reg_orig(self, adapter, emb, idx)

    val_sizes = []
    eval_orig = fit_mod.evaluate_classifier

    def evaluate(model, images, labels, *a, **k):
        val_sizes.append(len(images))
        return eval_orig(model, images, labels, *a, **k)

    monkeypatch.setattr(step_mod, "softmax_cross_entropy_loss", ce)
    monkeypatch.setattr(DistillStep, "regression", reg)
    monkeypatch.setattr(DistillStep, "__call__", call)
    monkeypatch.setattr(fit_mod, "evaluate_classifier", evaluate)
    cfg = finetune_config(epochs=1, batch_size=16, seed=0)
    res = finetune(student, split, bank, None, mu1("selective", ratio=0.5), cfg, pool=pool,
                   log=quiet)
    assert len(seen) == -(-(n + m) // 16) == res["metrics"]["steps_per_epoch"]
    assert any((s["idx"] >= n).any() and (s["idx"] < n).any() for s in seen)   # mixed batches
    ce_total, pool_regressed = 0, set()
    for s in seen:
        lab = s["idx"] < n
        if lab.any():                    # CE on the labelled rows, with their true labels
            assert s["ce_rows"] == lab.sum()
            np.testing.assert_array_equal(s["ce_labels"], split.y_train[s["idx"][lab]])
            ce_total += s["ce_rows"]
        else:
            assert "ce_rows" not in s
        np.testing.assert_array_equal(s["reg_idx"], s["idx"])
        assert (s["w"][~lab] == 1).all()                     # every pool face, weight 1
        np.testing.assert_array_equal(s["w"][lab], res["weights"][s["idx"][lab]])
        pool_regressed |= set(s["idx"][~lab].tolist())
    assert ce_total == n and pool_regressed == set(range(n, n + m))
    assert val_sizes == []               # test faces are not followed epoch by epoch
    if not split.is_validation:
        carved = dataclasses.replace(split, meta=dict(split.meta, validation=0.2))
        finetune(student, carved, bank, None, mu1("selective", ratio=0.5), cfg, pool=pool,
                 log=quiet)
        assert val_sizes == [len(split.y_test)]          # validation faces: followed
    met = res["metrics"]
    assert (met["faces"], met["unlabelled_faces"], met["faces_per_epoch"]) == (n, m, n + m)
    assert met["pool"]["fingerprint"] == pool.fingerprint() and met["pool"]["used"]
    assert 0 <= res["history"][0]["labelled_acc"] <= 1


def test_labelled_terms_of_a_mixed_batch_are_means_over_the_labelled_rows(tiny):
    split, bank, pool, _ = tiny
    n, k = bank.n, split.num_classes
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((6, k)).astype(np.float32)
    idx = np.array([0, n + 2, 3, n, 5, n + 7])
    labels = np.array([split.y_train[0], 0, split.y_train[3], 0, split.y_train[5], 0])
    step = DistillStep(bank, None, kd_weight=0.0, pool_targets=pool.targets)
    ce, kd, d = step.labelled_terms(logits, idx, labels)
    lab = idx < n
    z = logits[lab].astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = labels[lab]
    assert kd is None and ce == pytest.approx(-np.mean(np.log(p[np.arange(3), y])), rel=1e-5)
    want = p.copy()
    want[np.arange(3), y] -= 1
    np.testing.assert_allclose(d[lab], want / 3, rtol=1e-4, atol=1e-6)    # mean over l = 3
    assert not d[~lab].any()
    assert step.labelled_terms(logits[[1, 3]], idx[[1, 3]], labels[[1, 3]]) == (None, None, None)


def test_without_a_pool_the_run_is_exactly_todays(tiny):
    split, bank, pool, student = tiny
    cfg = finetune_config(epochs=1, batch_size=16, seed=2)
    plain = finetune(student, split, bank, None, mu1("full"), cfg, log=quiet)
    empty = finetune(student, split, bank, None, mu1("full"), cfg, log=quiet,
                     pool=UnlabelledPool.empty(split.lr_size, bank.dim))
    assert _weights_equal(plain["wrapper"], empty["wrapper"])
    assert empty["metrics"]["unlabelled_faces"] == 0 and empty["metrics"]["pool"] is None
    # none and kd ignore a pool
    for v in ("none", "kd"):
        a = finetune(student, split, bank, None, mu1(v), cfg, log=quiet)
        b = finetune(student, split, bank, None, mu1(v), cfg, log=quiet, pool=pool)
        assert _weights_equal(a["wrapper"], b["wrapper"]), v
        assert b["metrics"]["unlabelled_faces"] == 0 and not b["metrics"]["pool"]["used"]
    # with the pool the run differs
    used = finetune(student, split, bank, None, mu1("full"), cfg, log=quiet, pool=pool)
    assert not _weights_equal(plain["wrapper"], used["wrapper"])


def test_pool_runs_are_deterministic_and_depend_on_the_targets(tiny):
    split, bank, pool, student = tiny
    cfg = finetune_config(epochs=1, batch_size=16, seed=5)
    a = finetune(student, split, bank, None, mu1("full"), cfg, log=quiet, pool=pool)
    b = finetune(student, split, bank, None, mu1("full"), cfg, log=quiet, pool=pool)
    assert _weights_equal(a["wrapper"], b["wrapper"])
    other = UnlabelledPool(pool.lr_images, pool.targets[::-1].copy())
    c = finetune(student, split, bank, None, mu1("full"), cfg, log=quiet, pool=other)
    assert not _weights_equal(a["wrapper"], c["wrapper"])
    d = finetune(student, split, bank, None, mu1("full"),
                 finetune_config(epochs=1, batch_size=16, seed=6), log=quiet, pool=pool)
    assert not _weights_equal(a["wrapper"], d["wrapper"])


def test_label_free_epochs_and_start_enter_only_the_runs_they_change(tiny):
    from tinyface.experiments.settings import AblationSettings, run_signature
    import dataclasses
    split, bank, pool, _ = tiny
    bank = dataclasses.replace(bank, meta=dict(bank.meta, key="k"))
    base, longer = AblationSettings(), AblationSettings(label_free_epochs=60)
    for variant in ("full", "kd"):                     # rows without the pool: unchanged
        assert run_signature(base, split, bank, variant, 0, None) == \
            run_signature(longer, split, bank, variant, 0, None)
    assert run_signature(base, split, bank, "full", 0, None, pool=pool) != \
        run_signature(longer, split, bank, "full", 0, None, pool=pool)
    fresh = AblationSettings(start="random")
    assert run_signature(fresh, split, bank, "kd", 0, None)["start"] == "random"
    assert "start" not in run_signature(base, split, bank, "kd", 0, None)
    with pytest.raises(ValueError, match="start must be one of"):
        AblationSettings(start="zero")


def test_signature_and_resume_key_on_the_pool(tiny, tmp_path, monkeypatch):
    split, bank, pool, student = tiny
    other = UnlabelledPool(pool.lr_images, pool.targets * 2)
    assert pool_signature(None, "full") is None
    assert pool_signature(UnlabelledPool.empty(8, 12), "full") is None
    assert pool_signature(pool, "kd") is None and pool_signature(pool, "none") is None
    sig = pool_signature(pool, "selective")
    assert sig == {"faces": pool.n, "fingerprint": pool.fingerprint()}
    assert pool_signature(other, "full")["fingerprint"] != sig["fingerprint"]
    with pytest.raises(ValueError, match="8px"):
        UnlabelledPool(np.zeros((2, 3, 4, 4), np.uint8), np.zeros((2, 12))).check(8, 12)
    with pytest.raises(ValueError, match="12-d"):
        pool.check(8, 12 + 1)

    # resume: an interrupted pool run ends with the weights of an uninterrupted one
    cfg = finetune_config(epochs=2, batch_size=16, seed=4)
    whole = finetune(student, split, bank, None, mu1("full"), cfg, out_dir=tmp_path / "whole",
                     log=quiet, pool=pool)
    steps = whole["metrics"]["steps_per_epoch"]
    original = DistillStep.__call__

    def stop_in_epoch_2(self, *args):
        if self.step == steps + 1:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(DistillStep, "__call__", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        finetune(student, split, bank, None, mu1("full"), cfg, out_dir=tmp_path / "cut",
                 log=quiet, pool=pool)
    monkeypatch.setattr(DistillStep, "__call__", original)
    with pytest.raises(ResumeMismatchError, match="label-free pool"):
        finetune(student, split, bank, None, mu1("full"), cfg, out_dir=tmp_path / "cut", log=quiet,
                 pool=other, resume=True)
    with pytest.raises(ResumeMismatchError):
        finetune(student, split, bank, None, mu1("full"), cfg, out_dir=tmp_path / "cut", log=quiet,
                 resume=True)
    resumed = finetune(student, split, bank, None, mu1("full"), cfg, out_dir=tmp_path / "cut",
                       log=quiet, pool=pool, resume=True)
    assert _weights_equal(whole["wrapper"], resumed["wrapper"])
