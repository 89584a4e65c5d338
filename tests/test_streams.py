"""The two streams end to end on tiny synthetic data: split, training, evaluation, CLI."""
import json

import numpy as np
import pytest

from tinyface.cli import main
from tinyface.data import load_dataset
from tinyface.eval import evaluate_identification
from tinyface.data import load_split
from tinyface.experiments import train_stream
from tinyface.experiments.fold_verification import verification_experiment
from tinyface.train import TrainConfig

TINY = dict(synthetic={"n_identities": 6, "images_per_identity": 8}, cache_dir=False)


@pytest.fixture(scope="module")
def split():
    return load_split("synthetic", hr_size=32, lr_size=8, seed=1, **TINY)


def test_split_shapes_and_determinism(split):
    assert split.hr_train.shape[1:] == (3, 32, 32) and split.lr_train.shape[1:] == (3, 8, 8)
    assert split.lr_up_test.shape == split.hr_test.shape
    assert split.num_classes == 6 and set(split.y_test) == set(range(6))
    again = load_split("synthetic", hr_size=32, lr_size=8, seed=1, **TINY)
    np.testing.assert_array_equal(split.lr_train, again.lr_train)
    np.testing.assert_array_equal(split.y_test, again.y_test)
    with pytest.raises(ValueError, match="train_fraction"):
        load_split("synthetic", train_fraction=1.5, **TINY)


def test_train_and_evaluate_both_streams(split, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=16, seed=0)
    for stream in ("student", "teacher"):
        res = train_stream(split, stream, cfg, tmp_path / stream,
                           arch="teacher-lite" if stream == "teacher" else None, log=lambda m: None)
        metrics = json.loads((tmp_path / stream / "metrics.json").read_text())
        assert 0.0 <= metrics["top1"] <= metrics["top5"] <= 1.0
        assert metrics["stream"] == stream and metrics["epochs"] == 2
        for name in ("model.npz", "checkpoint.npz", "history.json", "curves.png"):
            assert (tmp_path / stream / name).is_file(), name
        assert res["model"].num_classes == split.num_classes
    up = evaluate_identification(res["model"], split, "teacher", upsampled=True)
    assert up["input_size"] == 32 and up["faces"] == len(split.y_test)
    assert up["cmc"]["rates"][-1] == pytest.approx(1.0)


ARGS = ["--identities", "5", "--images-per-identity", "6", "--hr-size", "32", "--lr-size", "8",
        "--epochs", "1", "--batch-size", "16", "--seed", "3"]


def test_cli_train_student_evaluate_and_errors(tmp_path, capsys):
    out = str(tmp_path / "s")
    assert main(["train-student", *ARGS, "--out", out]) == 0
    assert "student test top-1" in capsys.readouterr().out
    assert "student test top-1" in (tmp_path / "s" / "log.txt").read_text()
    assert main(["evaluate", "--student", out, *ARGS, "--out", str(tmp_path / "ev")]) == 0
    text = capsys.readouterr().out
    assert "| student at LR | 8px |" in text
    assert (tmp_path / "ev" / "cmc.png").is_file()
    # the same model against a split of another size: one clear line
    assert main(["evaluate", "--student", out, *ARGS[:-6], "--lr-size", "16",
                 "--out", str(tmp_path / "ev2")]) == 2
    assert "takes 8px faces" in capsys.readouterr().err
    # --resume with no checkpoint, and a missing data root: one line each
    assert main(["train-student", *ARGS, "--out", str(tmp_path / "none"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint" in err
    assert main(["train-student", "--data", "lfw", "--data-root", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err
    assert main(["evaluate", "--out", str(tmp_path / "y")]) == 2
    assert main(["evaluate", "--verification", "--out", str(tmp_path / "z")]) == 2
    assert "--data lfw" in capsys.readouterr().err


def test_demo_runs_small(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--identities", "4", "--images-per-identity", "6", "--teacher-epochs", "1",
                 "--student-epochs", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for row in ("teacher at HR", "teacher on LR, upsampled", "student at LR"):
        assert row in text
    for name in ("cmc.png", "top1.png", "results.md", "metrics.json",
                 "teacher/curves.png", "student/model.npz"):
        assert (out / name).is_file(), name


def test_verification_experiment_on_made_up_folds():
    """Two identity-disjoint folds of pairs over synthetic identities."""
    ds = load_dataset("synthetic", n_identities=8, images_per_identity=5, hr_size=32,
                      seed=0, cache_dir=False)
    names = ds.names

    def fold(ids):
        same = [((names[i], 1), (names[i], 2), True) for i in ids]
        diff = [((names[ids[0]], 3), (names[ids[1]], 3), False), ((names[ids[2]], 4), (names[ids[3]], 4), False)]
        return same + diff

    pairs = [fold([0, 1, 2, 3]), fold([4, 5, 6, 7])]
    res = verification_experiment(ds, pairs, TrainConfig(epochs=1, batch_size=8), lr_size=8,
                                  folds=1, log=lambda m: None)
    assert res["folds"] == 1 and len(res["student"]["per_fold"]) == 1
    assert 0.0 <= res["student"]["accuracy"] <= 1.0
    assert "cross" not in res
    cross = verification_experiment(ds, pairs, TrainConfig(epochs=1, batch_size=8), lr_size=8,
                                    folds=1, cross_resolution=True, log=lambda m: None)
    assert 0.0 <= cross["cross"]["accuracy"] <= 1.0 and len(cross["cross"]["roc"]["far"]) > 1
    with pytest.raises(ValueError, match="folds"):
        verification_experiment(ds, pairs, TrainConfig(epochs=1), folds=3, log=lambda m: None)
