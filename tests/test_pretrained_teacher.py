"""The frozen pretrained teacher of the ablation: the softmax head (gradient, determinism,
out-of-fold scores), the teacher's cache keys, the command line with a stand-in for
dlib's network (seconds, no weights needed), and one run on the real weights (skips
without them)."""
import json

import numpy as np
import pytest

from tinyface.distill.softmax_head import (cross_val_logits, fit_softmax_head,
                                           fit_teacher_head, head_loss, l2_rows,
                                           stratified_folds, validation_mask)

quiet = lambda msg: None  # noqa: E731


def _clusters(n_classes=6, per_class=10, dim=8, seed=0, spread=0.6):
    """Descriptors around one random centre per identity: x (N, dim), y (N,)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), per_class)
    return centres[y] + spread * rng.normal(size=(len(y), dim)), y


# ----------------------------------------------------------------- the head
def test_head_loss_gradient_matches_central_differences():
    rng = np.random.default_rng(1)
    x, y = l2_rows(rng.normal(size=(7, 5))), rng.integers(0, 4, 7)
    W, b, pen = rng.normal(size=(5, 4)), rng.normal(size=4), 0.3
    _, dW, db = head_loss(W, b, x, y, pen)
    h = 1e-6
    for grad, param in ((dW, W), (db, b)):
        num = np.zeros_like(param)
        for i in np.ndindex(param.shape):
            old = param[i]
            param[i] = old + h
            jp = head_loss(W, b, x, y, pen)[0]
            param[i] = old - h
            jm = head_loss(W, b, x, y, pen)[0]
            param[i] = old
            num[i] = (jp - jm) / (2 * h)
        rel = np.abs(num - grad).max() / max(np.abs(num).max(), np.abs(grad).max())
        assert rel < 1e-7, f"relative error {rel:.2e}"


def test_head_fit_reaches_the_optimum_and_separates_clusters():
    x, y = _clusters()
    head = fit_softmax_head(x, y, 6, penalty=1e-3)
    assert head.info["converged"]
    _, dW, db = head_loss(head.weight.astype(np.float64), head.bias.astype(np.float64),
                          l2_rows(x), y, 1e-3)
    assert max(np.abs(dW).max(), np.abs(db).max()) < 1e-4        # stationary point
    assert np.mean(head.logits(x).argmax(1) == y) > 0.9
    # a class absent from the faces gets finite logits (its bias is penalised too)
    absent = fit_softmax_head(x[y != 5], y[y != 5], 6, penalty=1e-3).logits(x)
    assert np.all(np.isfinite(absent)) and np.all(absent.argmax(1) != 5)


def test_one_blas_thread_sets_and_restores_openblas_threads():
    from tinyface.distill.softmax_head import _openblas_pools, one_blas_thread
    with one_blas_thread():
        pools = _openblas_pools()
        assert all(get() == 1 for get, _ in pools)
    before = [get() for get, _ in pools]
    with pytest.raises(RuntimeError):
        with one_blas_thread():
            raise RuntimeError("restored even so")
    assert [get() for get, _ in pools] == before


def test_folds_and_validation_split_are_per_identity():
    y = np.repeat(np.arange(4), [10, 7, 5, 1])
    folds = stratified_folds(y, 5, seed=3)
    for c, n in enumerate([10, 7, 5, 1]):
        counts = np.bincount(folds[y == c], minlength=5)
        assert counts.max() - counts.min() <= 1 and counts.sum() == n
    val = validation_mask(y, 0.2, seed=3)
    assert [int(val[y == c].sum()) for c in range(4)] == [2, 1, 1, 0]
    np.testing.assert_array_equal(folds, stratified_folds(y, 5, seed=3))
    assert not np.array_equal(folds, stratified_folds(y, 5, seed=4))


def test_out_of_fold_logits_come_from_heads_that_never_saw_the_face():
    x, y = _clusters(seed=2)
    folds = stratified_folds(y, 5, seed=0)
    oof, _ = cross_val_logits(x, y, 6, 1e-3, folds)
    for f in range(5):
        held = folds == f
        other = fit_softmax_head(x[~held], y[~held], 6, 1e-3)
        np.testing.assert_allclose(oof[held], other.logits(x[held]), rtol=1e-5, atol=1e-5)
    # other labels for fold 0's faces (same folds): fold 0's logits stay where they were,
    # the other folds' move (their heads saw fold 0)
    y2 = y.copy()
    y2[folds == 0] = (y[folds == 0] + 1) % 6
    oof2, _ = cross_val_logits(x, y2, 6, 1e-3, folds)
    np.testing.assert_array_equal(oof2[folds == 0], oof[folds == 0])
    assert np.abs(oof2[folds != 0] - oof[folds != 0]).max() > 1e-3


def test_teacher_head_is_deterministic_and_records_its_choice():
    x, y = _clusters(seed=4)
    a = fit_teacher_head(x, y, 6, penalties=(1e-4, 1e-2), folds=5, seed=0)
    b = fit_teacher_head(x, y, 6, penalties=(1e-4, 1e-2), folds=5, seed=0)
    np.testing.assert_array_equal(a.oof_logits, b.oof_logits)
    np.testing.assert_array_equal(a.head.weight, b.head.weight)
    assert a.record == b.record
    rec = a.record
    assert rec["penalty"] == min(rec["search"], key=lambda r: r["val_nll"])["penalty"]
    assert rec["validation_faces"] == 12 and 0 <= rec["oof_confidence_below_half"] <= 1
    c = fit_teacher_head(x, y, 6, penalties=(1e-4, 1e-2), folds=5, seed=1)
    assert not np.array_equal(a.folds, c.folds)


# ------------------------------------------------- the teacher, with a stand-in
# (the fixtures stand_in, res_stand_in and split are tests/conftest.py's)
def test_frozen_teacher_bank_rows_and_cache_keys(stand_in, split, tmp_path):
    from tinyface.distill.frozen_teacher import FrozenTeacher
    from tinyface.experiments.settings import AblationSettings
    from tinyface.distill.softmax_head import cross_val_logits
    from tinyface.models.pretrained import embed_faces
    settings = AblationSettings(head_penalties=(1e-3, 1e-2))
    lines = []
    ft = FrozenTeacher("dlib-resnet", split, settings, tmp_path, log=lines.append)
    bank = ft.bank(tmp_path / "bank.npz")
    n = len(split.y_train)
    assert bank.embeddings.shape == (n, 16) and bank.logits.shape == (n, split.num_classes)
    np.testing.assert_allclose(bank.embeddings, embed_faces(ft.model, split.hr_train),
                               rtol=1e-5, atol=1e-6)
    fit = ft.fit()                         # the bank's logits are the out-of-fold ones
    oof, _ = cross_val_logits(bank.embeddings, split.y_train, split.num_classes,
                              fit.record["penalty"], fit.folds)
    np.testing.assert_allclose(bank.logits, oof, rtol=1e-5, atol=1e-5)
    rows = ft.rows(None)
    assert set(rows) == {"teacher at HR", "teacher at LR, upsampled"}
    assert all(0 <= r["top1"] <= r["top5"] <= 1 for r in rows.values())
    # the model's classifier is the head without the normalisation (module docstring)
    from tinyface.data import to_float
    emb, z = ft.model.forward_both(to_float(split.hr_test[:3]))
    np.testing.assert_allclose(z, emb @ fit.head.weight + fit.head.bias, rtol=1e-4, atol=1e-4)

    # same teacher and settings: everything is loaded, nothing recomputed
    lines.clear()
    again = FrozenTeacher("dlib-resnet", split, settings, tmp_path, log=lines.append)
    assert again.key == ft.key
    np.testing.assert_array_equal(again.bank(tmp_path / "bank.npz").logits, bank.logits)
    assert any("feature bank: loaded" in m for m in lines)
    assert not any("descriptors of the" in m and "loaded" not in m for m in lines)
    # other head settings, other HR source, other weights: other keys, nothing stale reused
    keys = {ft.key}
    for s, seed in ((AblationSettings(head_penalties=(1e-3,)), 0),
                    (AblationSettings(head_penalties=(1e-3, 1e-2), head_folds=3), 0),
                    (AblationSettings(head_penalties=(1e-3, 1e-2)), 1)):
        stand_in["seed"] = seed
        keys.add(FrozenTeacher("dlib-resnet", split, s, tmp_path, log=quiet).key)
    assert len(keys) == 4
    lines.clear()
    other = FrozenTeacher("dlib-resnet", split, settings, tmp_path, log=lines.append)
    assert other.sha256 != ft.sha256                       # stand_in["seed"] is 1 now
    other.bank(tmp_path / "bank.npz")
    assert any("making it again" in m for m in lines)
    assert any("descriptors of the HR training faces: " in m for m in lines)   # not cached


def test_frozen_teacher_pooled_layer_regresses_standardised_trunk_features(stand_in, split,
                                                                          tmp_path):
    from tinyface.distill.frozen_teacher import FrozenTeacher
    from tinyface.experiments.settings import AblationSettings
    from tinyface.models.pretrained import embed_faces
    emb = FrozenTeacher("dlib-resnet", split, AblationSettings(head_penalties=(1e-3,)),
                        tmp_path, log=quiet).bank(tmp_path / "bank.npz")
    ft = FrozenTeacher("dlib-resnet", split, AblationSettings(head_penalties=(1e-3,),
                                                              teacher_layer="pooled"),
                       tmp_path, log=quiet)
    bank = ft.bank(tmp_path / "bank-pooled.npz")
    pooled = embed_faces(ft.model, split.hr_train, through=len(ft.model.features) - 1)
    assert bank.meta["layer"] == "pooled" and bank.meta["key"] != emb.meta["key"]
    assert bank.embeddings.shape == (len(split.y_train), pooled.shape[1])
    np.testing.assert_allclose(bank.embeddings.mean(0), 0, atol=1e-4)
    std = (pooled - pooled.mean(0)) / (pooled.std(0) + 1e-5)
    np.testing.assert_allclose(bank.embeddings, std, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(bank.logits, emb.logits)   # the head sees descriptors
    assert (tmp_path / "teacher-descriptors" / "train-hr-pooled.npz").is_file()


def test_frozen_teacher_with_its_last_block_tuned(res_stand_in, split, tmp_path):
    from tinyface.distill.frozen_teacher import FrozenTeacher
    from tinyface.experiments.settings import AblationSettings
    frozen = FrozenTeacher("dlib-resnet", split, AblationSettings(), tmp_path, log=quiet)
    lines = []
    settings = AblationSettings(teacher_tune_blocks=1)
    tuned = FrozenTeacher("dlib-resnet", split, settings, tmp_path, log=lines.append)
    assert tuned.sha256 != frozen.sha256 and tuned.key != frozen.key
    assert tuned.tuning["tail_start"] == 3 and (tmp_path / "teacher-tuned.npz").is_file()
    assert any("last 1 block(s) tuned" in m for m in lines)
    assert tuned.record()["tuning"]["settings"]["blocks"] == 1
    lines.clear()
    again = FrozenTeacher("dlib-resnet", split, settings, tmp_path, log=lines.append)
    assert again.sha256 == tuned.sha256 and any("loaded the tuned teacher" in m for m in lines)
    lr = FrozenTeacher("dlib-resnet", split, AblationSettings(teacher_tune_blocks=1,
                                                              teacher_tune_inputs="hr+lr"),
                       tmp_path, log=quiet)
    assert lr.tuning["faces"] == 2 * len(split.y_train) and lr.sha256 != tuned.sha256


def test_ablation_command_with_a_stand_in_teacher(stand_in, tmp_path, capsys):
    from tinyface.cli import main
    out = tmp_path / "abl"
    args = ["ablation", "--quick", "--teacher", "dlib-resnet", "--teacher-weights",
            str(tmp_path / "w"), "--seeds", "1", "--ratios", "", "--variants", "kd,selective",
            "--scratch-epochs", "1", "--finetune-epochs", "1", "--out", str(out)]
    assert main(args) == 0
    assert stand_in["calls"] == [str(tmp_path / "w")]
    res = json.loads((out / "results.json").read_text())
    assert list(res["rows"]) == ["teacher at HR", "teacher at LR, upsampled",
                                 "student from scratch", "student + KD", "student + selective"]
    assert res["bank"]["teacher"] == "dlib-resnet"
    assert all(r["verification"] for r in res["rows"].values())
    t = res["teacher"]
    assert t["pretrained"] and t["head"]["folds"] == 5 and t["hr_source"] == "the split's 32px"
    assert t["head"]["penalties"] == [1e-5, 1e-4, 1e-3]            # --quick's grid
    assert res["sizes"]["adapter_parameters"] == 64 * 16 + 16       # 64-d -> the teacher's 16
    assert "pretrained on other people, frozen" in (out / "results.md").read_text()
    for name in ("train-hr", "test-hr", "test-lr", "pairs-hr", "pairs-lr"):
        assert (out / "teacher-descriptors" / f"{name}.npz").is_file()
    capsys.readouterr()
    assert main(args) == 0                                 # a re-run: every phase cached
    log = capsys.readouterr().out
    assert "loaded its evaluation" in log and "feature bank: loaded" in log
    assert "fine-tuning 1 epochs" not in log and " descriptors in " not in log   # nothing re-run
    assert json.loads((out / "results.json").read_text())["rows"] == res["rows"]


def test_ablation_command_with_a_tuned_stand_in_teacher(res_stand_in, tmp_path):
    from tinyface.cli import main
    out = tmp_path / "abl"
    assert main(["ablation", "--quick", "--teacher", "dlib-resnet", "--seeds", "1", "--ratios",
                 "", "--variants", "full", "--scratch-epochs", "1", "--finetune-epochs", "1",
                 "--teacher-tune-blocks", "1", "--teacher-tune-inputs", "hr+lr",
                 "--teacher-tune-epochs", "2", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["settings"]["teacher_tune_inputs"] == "hr+lr"
    assert res["teacher"]["tuning"]["settings"]["epochs"] == 2
    text = (out / "results.md").read_text()
    assert "its last 1 residual block(s) and embedding layer tuned on the training faces at " \
           "HR and at LR, upsampled (2 epochs, rate 0.0003)" in text
    assert (out / "teacher-tuned.npz").is_file()


@pytest.mark.parametrize("args, message", [
    (["--teacher-weights", "w"], "--teacher-weights is for a pretrained teacher"),
    (["--teacher", "dlib-resnet", "--pretrained-hr-size", "3"], "pretrained_hr_size"),
    (["--teacher", "dlib-resnet", "--head-penalties", "1e-3,0"], "head_penalties must be"),
    (["--teacher", "dlib-resnet", "--head-penalties", "1e-3,x"], "'x' is not a number"),
])
def test_bad_teacher_options_exit_2_with_one_line(tmp_path, capsys, args, message):
    from tinyface.cli import main
    assert main(["ablation", "--quick", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_source_faces_are_the_split_rows_at_another_size(split, monkeypatch):
    """Faces decoded again at another size: the same rows (checked), or a clear error."""
    import tinyface.distill.frozen_teacher as ft
    from tinyface.data import load_dataset
    from tinyface.models.pretrained import resize_faces
    ds = load_dataset("synthetic", hr_size=32, seed=0, n_identities=5, images_per_identity=8)
    ds.images = resize_faces(ds.images, 48)
    monkeypatch.setattr(ft, "_source_dataset", lambda *a: ds)
    train, test = ft.source_faces(split, "folder", 48)
    assert train.shape == (len(split.y_train), 3, 48, 48) and len(test) == len(split.y_test)
    ds.images = ds.images[::-1].copy()                      # other pictures in those rows
    with pytest.raises(ValueError, match="do not match"):
        ft.source_faces(split, "folder", 48)


# -------------------------------------------------------------- real weights
def test_dlib_teacher_on_a_few_synthetic_faces(dlib_weights, tmp_path):
    """dlib's network itself (~20 s on 2 cores): 128-d raw descriptors in the bank, the
    same as embed_faces gives, out-of-fold logits, rows in range."""
    from tinyface.distill.frozen_teacher import FrozenTeacher
    from tinyface.experiments.settings import AblationSettings
    from tinyface.models.pretrained import embed_faces
    from tinyface.data import load_split
    small = load_split("synthetic", hr_size=32, lr_size=8, cache_dir=False,
                       synthetic={"n_identities": 4, "images_per_identity": 6})
    ft = FrozenTeacher("dlib-resnet", small, AblationSettings(head_penalties=(1e-3,)),
                       tmp_path, log=quiet)
    assert ft.input_size == 150 and ft.model.spec["name"] == "dlib-resnet"
    bank = ft.bank()
    assert bank.embeddings.shape == (len(small.y_train), 128)
    np.testing.assert_allclose(bank.embeddings[:2], embed_faces(ft.model, small.hr_train[:2]),
                               rtol=1e-4, atol=1e-5)
    assert 0.2 < np.linalg.norm(bank.embeddings, axis=1).mean() < 5       # raw, not unit
    rows = ft.rows(None)
    assert all(0 <= r["top1"] <= 1 for r in rows.values())
