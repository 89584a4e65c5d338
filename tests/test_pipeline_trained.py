"""load_trained: a trained stream's folder is loaded and checked against the split."""
import json

import numpy as np
import pytest

from tinyface.checkpoint import save_model
from tinyface.data import load_split
from tinyface.experiments import train_stream
from tinyface.experiments.trained import load_trained, split_differences
from tinyface.train import TrainConfig

TINY = dict(synthetic={"n_identities": 5, "images_per_identity": 6}, cache_dir=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    split = load_split("synthetic", hr_size=32, lr_size=8, seed=2, **TINY)
    out = tmp_path_factory.mktemp("student")
    res = train_stream(split, "student", TrainConfig(epochs=2, batch_size=16, seed=0), out,
                       log=lambda m: None)
    return split, out, res


def test_loads_model_history_and_metrics(run):
    split, out, res = run
    for where in (out, out / "model.npz"):
        got = load_trained(where, split, "student")
        assert len(got.history) == 2 and got.metrics["stream"] == "student"
        assert got.folder == out and got.path == out / "model.npz"
        for k, v in res["model"].state_dict().items():
            np.testing.assert_array_equal(v, got.model.state_dict()[k], err_msg=k)


def test_refuses_other_splits_and_missing_files(run, tmp_path):
    split, out, _ = run
    other_seed = load_split("synthetic", hr_size=32, lr_size=8, seed=3, **TINY)
    with pytest.raises(ValueError, match="another split .*seed 2 there, 3 here"):
        load_trained(out, other_seed, "student")
    other_size = load_split("synthetic", hr_size=32, lr_size=16, seed=2, **TINY)
    with pytest.raises(ValueError, match="takes 8px faces"):
        load_trained(out, other_size, "student")
    with pytest.raises(ValueError, match="holds a student .*given as the teacher"):
        load_trained(out, split, "teacher")                   # a student is not a teacher
    with pytest.raises(FileNotFoundError, match="no trained teacher"):
        load_trained(tmp_path, split, "teacher")
    # a model file alone still records its split and stream
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.npz").write_bytes((out / "model.npz").read_bytes())
    with pytest.raises(ValueError, match="another split .*seed 2 there, 3 here"):
        load_trained(tmp_path / "m", other_seed, "student")
    got = load_trained(tmp_path / "m", split, "student")
    assert got.history is None and got.metrics is None
    # a model saved without that record (and no metrics.json): only the shapes are checked
    save_model(tmp_path / "bare.npz", got.model)
    assert load_trained(tmp_path / "bare.npz", other_seed, "student").metrics is None


def test_split_differences():
    rec = json.loads(json.dumps({"data": "lfw", "seed": 0, "hr_size": 64, "extra": 1}))
    assert split_differences(rec, {"data": "lfw", "seed": 1, "hr_size": 64}) == [("seed", 0, 1)]
    assert split_differences(rec, {"other": 2}) == []
