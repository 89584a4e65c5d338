"""``python -m tinyface ablation``: a quick run on synthetic faces, its files, its cache,
and one-line errors for bad settings."""
import json
from types import SimpleNamespace

import pytest

from tinyface.cli import main
from tinyface.experiments.report import read_results, results_label
from tinyface.experiments.settings import AblationSettings, run_signature

FILES = ("results.md", "results.json", "ablation.png", "verification.png",
         "selection_montage.png", "graph.png", "ratio_curve.png")
ROWS = ("teacher at HR", "teacher at LR, upsampled", "student from scratch",
        "student + CE fine-tuning only", "student + KD", "student + full", "student + random",
        "student + selective")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    assert main(["ablation", "--quick", "--out", str(out)]) == 0
    return out


def test_quick_ablation_writes_table_plots_and_json(quick_run, capsys):
    for name in FILES:
        assert (quick_run / name).is_file(), name
    res = json.loads((quick_run / "results.json").read_text())
    assert list(res["rows"]) == list(ROWS)
    for name in ROWS[2:]:
        row = res["rows"][name]
        assert len(row["top1"]["values"]) == 2 and row["top1"]["std"] >= 0
        assert 0 <= row["top1"]["mean"] <= 1 and row["verification"] is not None
    settings = res["settings"]
    for stage in ("scratch", "finetune"):        # the recipe reaches every training run
        assert settings[f"{stage}_weight_decay"] == 3e-3
    scratch = json.loads((quick_run / "scratch-seed0" / "metrics.json").read_text())["config"]
    assert (scratch["lr"], scratch["weight_decay"]) == (settings["scratch_lr"], 3e-3)
    sizes = res["sizes"]
    assert sizes["adapter_parameters"] == 64 * 256 + 256 and not sizes["adapter_deployed"]
    assert sizes["student_bytes"] == 4 * sizes["student_parameters"]
    curve = res["ratio_curve"]
    assert curve["ratios"] == [0.5, 1.0] and len(curve["selective"]) == len(curve["random"]) == 2
    assert curve["selective"][1] == curve["random"][1]        # ratio 1: both are "full"
    text = (quick_run / "results.md").read_text()
    for name in ROWS:
        assert f"| {name} |" in text
    assert "±" in text and "weight decay 0.003" in text


def test_results_read_back_with_a_label_naming_the_teacher(quick_run, tmp_path):
    res = read_results(quick_run / "results.json")
    assert list(res["rows"]) == list(ROWS)
    assert results_label(res) == "synthetic, our teacher (teacher)"   # trained in OUT/teacher
    assert results_label({"data": "lfw", "teacher": {"name": "teacher", "pretrained": False,
                                                     "path": "runs/lfw-teacher"}}) \
        == "lfw, our teacher (lfw-teacher)"
    (tmp_path / "rowless.json").write_text('{"data": "lfw"}')
    (tmp_path / "broken.json").write_text('{"rows": ')
    for name, says in (("missing.json", "cannot read"), ("broken.json", "cannot read"),
                       ("rowless.json", "no 'rows'")):
        with pytest.raises(ValueError, match=f"{name}: .*{says}"):
            read_results(tmp_path / name)


def test_rerun_loads_every_phase_from_the_cache(quick_run, capsys):
    before = json.loads((quick_run / "results.json").read_text())
    assert main(["ablation", "--quick", "--out", str(quick_run)]) == 0
    out = capsys.readouterr().out
    assert "fine-tuning '" not in out and "training on" not in out
    assert "loaded" in out
    after = json.loads((quick_run / "results.json").read_text())
    assert after["rows"] == before["rows"]


@pytest.mark.parametrize("args, message", [
    (["--ratio", "1.5"], "ratio must be in (0, 1]"),
    (["--ratio", "0"], "ratio must be in (0, 1]"),
    (["--ratios", "0.5,2"], "--ratios"),
    (["--variants", "none,fancy"], "unknown variant 'fancy'"),
    (["--scratch-weight-decay", "-1"], "the scratch weight decay must be a finite number >= 0"),
    (["--finetune-weight-decay", "nan"], "the finetune weight decay must be a finite number"),
    (["--finetune-lr", "0"], "the finetune lr must be a finite number > 0"),
    (["--label-free-epochs", "-1"], "label_free_epochs must be >= 0"),
    (["--teacher-tune-blocks", "1"], "tunes a pretrained teacher"),
    (["--teacher", "dlib-resnet", "--teacher-tune-blocks", "1", "--teacher-tune-rate", "0"],
     "lr must be a finite number > 0"),
    (["--validation", "1"], "validation fraction must be in (0, 1)"),
    (["--method-weights", "sp"], "'sp' is not METHOD=WEIGHT"),
    (["--method-weights", "sp=x"], "the weight 'x' is not a number"),
    (["--method-weights", "full=1"], "'full' is not a method variant"),
    (["--method-weights", "sp=-1"], "the weight of sp must be a number >= 0"),
    (["--method-weights", "sp=1,sp=2"], "a method's weight is given twice"),
    (["--variants", "selective-sp"], "per-face methods only (fsim, crd, dkd, at)"),
    (["--method-weights", "selective-fsim=1"], "'selective-fsim' takes the weight of fsim"),
])
def test_bad_settings_exit_2_with_one_line(tmp_path, capsys, args, message):
    assert main(["ablation", "--quick", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())                        # nothing was started


def test_teacher_of_another_split_is_a_clear_error(quick_run, tmp_path, capsys):
    code = main(["ablation", "--quick", "--identities", "5", "--teacher",
                 str(quick_run / "teacher"), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "8 identities" in err and "5 identities" in err


def test_teacher_trained_on_another_split_is_refused(quick_run, tmp_path, capsys):
    code = main(["ablation", "--quick", "--seed", "1", "--teacher", str(quick_run / "teacher"),
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "another split" in err and "seed 0 there, 1 here" in err


def test_empty_selection_is_a_clear_error(quick_run, tmp_path, capsys):
    code = main(["ablation", "--quick", "--teacher", str(quick_run / "teacher"), "--ratio", "0.001",
                 "--global-selection", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "empty" in err


def test_student_gap_selects_per_seed_and_reuses_the_other_runs(quick_run, tmp_path, capsys):
    """--informativeness student-gap: one selection per seed (from its scratch student),
    only the selective runs are redone, and the other rows are the cached ones."""
    import shutil
    out = tmp_path / "gap"
    shutil.copytree(quick_run, out)
    assert main(["ablation", "--quick", "--out", str(out), "--informativeness",
                 "student-gap"]) == 0
    log = capsys.readouterr().out
    for seed in (0, 1):
        assert (out / f"seed{seed}" / "selection" / "ratio-0.5.npz").is_file()
        assert f"-- selective, seed {seed}, ratio 0.5: fine-tuning" in log
        assert f"full, seed {seed}: loading" in log
    a, b = (json.loads((d / "results.json").read_text()) for d in (quick_run, out))
    assert b["settings"]["informativeness"] == "student-gap"
    assert a["rows"]["student + full"] == b["rows"]["student + full"]


def test_student_gap_score():
    import numpy as np
    from tinyface.select import student_gap
    y = np.array([0, 1, 1])
    zt = np.log(np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]))     # teacher p(y): .9 .5 .8
    zs = np.log(np.array([[0.9, 0.1], [0.6, 0.4], [0.9, 0.1]]))     # student p(y): .9 .4 .1
    raw = student_gap(zt, zs, y, stretch=False)
    np.testing.assert_allclose(raw, [0.9 * 0.1, 0.5 * 0.6, 0.8 * 0.9])
    np.testing.assert_allclose(student_gap(zt, zs, y), (raw - raw.min()) / np.ptp(raw))
    with pytest.raises(ValueError, match="one shape"):
        student_gap(zt, zs[:, :1], y)


def test_pooled_teacher_layer_regresses_the_trunk_features(quick_run, tmp_path, capsys):
    # the quick run's teacher, reused: only the bank and the fine-tuning differ
    assert main(["ablation", "--quick", "--teacher", str(quick_run / "teacher"), "--out",
                 str(tmp_path), "--teacher-layer", "pooled", "--variants", "full",
                 "--seeds", "1", "--ratios", ""]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["settings"]["teacher_layer"] == "pooled" and res["bank"]["layer"] == "pooled"
    assert (tmp_path / "bank-pooled.npz").is_file() and not (tmp_path / "bank.npz").exists()
    assert "the teacher's pooled" in (tmp_path / "results.md").read_text()
    assert res["rows"]["student + full"]["top1"]["values"]


def test_command_line_defaults_are_the_settings_defaults():
    # the parser repeats each default for --help: they must be AblationSettings' own
    from tinyface.cli import build_parser
    from tinyface.cli.ablation import settings_from_args
    from tinyface.experiments.ablation import AblationSettings
    args = build_parser().parse_args(["ablation"])
    assert settings_from_args(args).to_dict() == AblationSettings().to_dict()


def test_validation_screen_measures_carved_training_faces(quick_run, tmp_path, capsys):
    """--validation F: the rows are measured on F of each identity's training faces,
    the students train on the rest, verification is not measured (its pairs are test
    faces), and nothing is reused from the test-face run."""
    assert main(["ablation", "--quick", "--validation", "0.25", "--out", str(tmp_path),
                 "--variants", "none,full", "--seeds", "1", "--ratios", ""]) == 0
    log = capsys.readouterr().out
    assert "validation faces" in log and "verification not measured" in log
    a, b = (json.loads((d / "results.json").read_text()) for d in (quick_run, tmp_path))
    assert b["split"]["validation"] == 0.25 and "validation" not in a["split"]
    n_val = b["rows"]["student + full"]
    assert n_val["verification"] is None or not n_val["verification"].get("values")
    assert b["describe"].count("validation faces") == 1
    assert "top-1 on the split's validation faces" in (tmp_path / "results.md").read_text()


def test_distilling_from_the_start_trains_a_fresh_student(quick_run, tmp_path, capsys):
    import shutil
    out = tmp_path / "start"
    shutil.copytree(quick_run, out)
    assert main(["ablation", "--quick", "--out", str(out), "--start", "random",
                 "--variants", "full", "--seeds", "1", "--ratios", ""]) == 0
    log = capsys.readouterr().out
    assert "distilling from a fresh student" in log
    assert "scratch student, seed 0: loading" in log       # the scratch row is reused
    res = json.loads((out / "results.json").read_text())
    assert res["settings"]["start"] == "random"
    old = json.loads((quick_run / "results.json").read_text())
    assert res["rows"]["student + full"] != old["rows"]["student + full"]


def test_method_weights_reach_each_run_and_its_signature():
    named = AblationSettings(variants=("sp", "crd"), method_weights={"sp": 1000})
    plain = AblationSettings(variants=("sp", "crd"))
    assert named.distill_config("sp", 0.5).weight == 1000.0
    assert named.distill_config("crd", 0.5).weight == plain.distill_config("crd", 0.5).weight
    assert named.to_dict()["method_weights"] == {"sp": 1000.0}
    split, bank = SimpleNamespace(meta={"seed": 0}), SimpleNamespace(meta={"key": "k"})

    def sig(settings, variant):
        return run_signature(settings, split, bank, variant, 0, 0.5)
    assert sig(named, "sp") != sig(plain, "sp")            # a new weight: a new run
    assert sig(named, "crd") == sig(plain, "crd")          # an unnamed one: the cached run
    assert "method_weight" not in sig(plain, "sp")         # the default runs' signatures kept


def test_selective_methods_run_on_the_selection(quick_run, tmp_path, capsys):
    """--variants selective-fsim,selective-crd: the selection phase runs, each method's term
    is taken on the selected faces, the scratch students are the cached ones."""
    import shutil
    out = tmp_path / "selective-methods"
    shutil.copytree(quick_run, out)
    assert main(["ablation", "--quick", "--out", str(out), "--variants",
                 "selective-fsim,selective-crd", "--seeds", "1", "--ratios", ""]) == 0
    log = capsys.readouterr().out
    assert "selection at ratio 0.5: loaded" in log and "scratch student, seed 0: loading" in log
    res = json.loads((out / "results.json").read_text())
    names = ("student + selective FSIM", "student + selective CRD")
    assert list(res["rows"])[-2:] == list(names) and "0.5" in res["selection"]
    selected = res["selection"]["0.5"]["selected"]
    for variant in ("selective-fsim", "selective-crd"):
        assert f"-- {variant}, seed 0, ratio 0.5: fine-tuning" in log
        metrics = json.loads((out / "seed0" / variant / "metrics.json").read_text())
        assert metrics["method_faces"] == selected < metrics["faces"]
        assert metrics["ratio"] == 0.5 and metrics["regressed_faces"] == 0
    text = (out / "results.md").read_text()
    assert all(f"| {name} |" in text for name in names) and "Selective methods" in text


def test_method_weight_reaches_selective_runs_and_their_signature():
    named = AblationSettings(variants=("fsim", "selective-fsim"), method_weights={"fsim": 2})
    plain = AblationSettings(variants=("fsim", "selective-fsim"))
    assert named.distill_config("selective-fsim", 0.5).weight == 2.0
    assert named.distill_config("fsim", 0.5).weight == 2.0
    assert plain.distill_config("selective-fsim", 0.5).weight == 1.0     # fsim's default
    split, bank = SimpleNamespace(meta={"seed": 0}), SimpleNamespace(meta={"key": "k"})

    def sig(settings, variant, ratio=0.5):
        return run_signature(settings, split, bank, variant, 0, ratio)
    assert sig(named, "selective-fsim")["method_weight"] == 2.0
    assert "method_weight" not in sig(plain, "selective-fsim")
    assert sig(plain, "selective-fsim") != sig(plain, "selective-fsim", 0.25)    # its ratio
    assert {"ratio", "k", "alpha", "per_identity", "feature_norm"} <= set(sig(plain,
                                                                              "selective-fsim"))
    gap = AblationSettings(variants=("selective-dkd",), informativeness="student-gap")
    assert sig(gap, "selective-dkd")["informativeness"] == "student-gap"
    assert sig(gap, "selective-dkd")["T"] == gap.T
    with pytest.raises(ValueError, match=r"per-face methods only \(fsim, crd, dkd, at\)"):
        AblationSettings(variants=("selective-sp",))
