"""Checkpoints: exact round trips, mismatch messages, atomic writes, foreign files.

The model is a ``Sequential`` of a toy layer defined here (one ``weight`` parameter,
one ``running`` buffer), so these tests do not depend on the real layers.
"""
import json
import os

import numpy as np
import pytest

from tinyface import checkpoint
from tinyface.checkpoint import (load_model, load_training_state, load_weights, save_model,
                                 save_training_state)
from tinyface.nn.module import Module, Sequential, register_layer
from tinyface.optim import SGD, Adam


@register_layer
class CheckpointToyLayer(Module):
    """y = x @ weight.T; ``running`` tracks the mean input. weight: (n_out, n_in)."""

    def __init__(self, n_in, n_out, seed=0):
        super().__init__()
        self.n_in, self.n_out, self.seed = n_in, n_out, seed
        rng = np.random.default_rng(seed)
        self.add_param("weight", rng.standard_normal((n_out, n_in)))
        self.buffers["running"] = np.zeros(n_in, np.float32)

    def get_args(self):
        return {"n_in": self.n_in, "n_out": self.n_out, "seed": self.seed}


def toy_model(sizes=(3, 4, 2), seed=0):
    layers = [CheckpointToyLayer(a, b, seed + i) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))]
    model = Sequential(*layers)
    for i, layer in enumerate(layers):
        layer.buffers["running"][...] = np.arange(layer.n_in) + 10 * i + 0.25
    return model


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert sa[name].dtype == sb[name].dtype == np.float32
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)


def test_round_trip_is_exact(tmp_path):
    model = toy_model()
    meta = {"epoch": np.int64(7), "acc": np.float32(0.5), "note": "hi", "ids": np.arange(3)}
    path = save_model(tmp_path / "m.npz", model, metadata=meta)
    assert path == str(tmp_path / "m.npz") and os.path.isfile(path)
    loaded, got_meta = load_model(path)
    assert isinstance(loaded, Sequential) and loaded.config() == model.config()
    assert_same_state(model, loaded)
    assert got_meta == {"epoch": 7, "acc": 0.5, "note": "hi", "ids": [0, 1, 2]}
    with np.load(path, allow_pickle=False) as data:
        assert "param/0.weight" in data.files and "buffer/1.running" in data.files
        assert json.loads(str(data["architecture"][()]))["type"] == "Sequential"


def test_npz_suffix_added_and_load_weights_in_place(tmp_path):
    model = toy_model(seed=1)
    path = save_model(tmp_path / "weights", model)
    assert path.endswith("weights.npz")
    target = toy_model(seed=5)
    ref = target.state_dict()["0.weight"]
    assert load_weights(target, path) == {}
    assert target.state_dict()["0.weight"] is ref  # loaded in place
    assert_same_state(model, target)
    assert_same_state(model, load_model(tmp_path / "weights")[0])  # suffix optional on load


def test_architecture_mismatch_names_tensor_and_both_shapes(tmp_path):
    path = save_model(tmp_path / "m.npz", toy_model((3, 4, 2)))
    other = toy_model((3, 5, 2))
    with pytest.raises(ValueError) as err:
        load_weights(other, path)
    msg = str(err.value)
    assert "'0.weight'" in msg and "(5, 3)" in msg and "(4, 3)" in msg and str(path) in msg
    with pytest.raises(ValueError, match="missing tensor '2.weight'"):
        load_weights(toy_model((3, 4, 2, 2)), path)
    with pytest.raises(ValueError, match="unexpected tensor '1.weight'"):
        load_weights(toy_model((3, 4)), path)


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    model = toy_model()
    path = save_model(tmp_path / "m.npz", model)
    before = open(path, "rb").read()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")  # a partial write, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    changed = toy_model(seed=9)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, changed)
    with pytest.raises(OSError, match="disk full"):
        save_model(tmp_path / "new.npz", changed)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]
    assert open(path, "rb").read() == before
    assert_same_state(model, load_model(path)[0])


def test_failed_rename_leaves_no_temp(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("rename failed")
    monkeypatch.setattr(checkpoint.os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        save_model(tmp_path / "m.npz", toy_model())
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_saved_file_mode_follows_umask(tmp_path):
    path = save_model(tmp_path / "m.npz", toy_model())
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_missing_and_foreign_files_raise_clearly(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_model(missing)
    text = tmp_path / "notes.npz"
    text.write_text("not a zip at all")
    with pytest.raises(ValueError, match=r"notes\.npz.*not a tinyface checkpoint"):
        load_model(text)
    plain = tmp_path / "plain.npz"
    np.savez(plain, weight=np.ones(3))
    with pytest.raises(ValueError, match=r"plain\.npz.*not a tinyface checkpoint"):
        load_weights(toy_model(), plain)
    obj = tmp_path / "pickled.npz"
    np.savez(obj, __tinyface__=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"pickled\.npz.*not a tinyface checkpoint"):
        load_model(obj)
    model_only = save_model(tmp_path / "m.npz", toy_model())
    model = toy_model()
    with pytest.raises(ValueError, match="model only"):
        load_training_state(model_only, model, SGD(model.parameters_and_grads(), lr=0.1))


def test_unknown_layer_type_names_the_path(tmp_path):
    path = save_model(tmp_path / "m.npz", toy_model())
    with np.load(path) as data:
        arrays = dict(data)
    arrays["architecture"] = np.array(json.dumps({"type": "NoSuchLayer"}))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"m\.npz.*unknown layer type 'NoSuchLayer'"):
        load_model(path)


def fake_training(model, opt, rng, steps):
    """Pull each weight toward 0 with noisy gradients drawn from ``rng``."""
    for _ in range(steps):
        opt.zero_grad()
        for _, p, g in model.parameters_and_grads():
            g += p + rng.standard_normal(p.shape).astype(np.float32)
        opt.step()
        model[0].buffers["running"] += 1.0


@pytest.mark.parametrize("make_opt", [
    lambda m: SGD(m.parameters_and_grads(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda m: Adam(m.parameters_and_grads(), lr=0.01, weight_decay=1e-2),
])
def test_training_state_resumes_exactly(tmp_path, make_opt):
    model = toy_model()
    opt = make_opt(model)
    rng = np.random.default_rng(123)
    fake_training(model, opt, rng, 3)
    opt.lr *= 0.5
    path = save_training_state(tmp_path / "train.npz", model, opt, epoch=3,
                               extra={"rng": rng.bit_generator.state, "best": 0.25})
    fake_training(model, opt, rng, 4)

    resumed = toy_model(seed=42)
    opt2 = make_opt(resumed)
    epoch, extra = load_training_state(path, resumed, opt2)
    assert epoch == 3 and extra["best"] == 0.25 and opt2.lr == opt.lr
    rng2 = np.random.default_rng()
    rng2.bit_generator.state = extra["rng"]
    fake_training(resumed, opt2, rng2, 4)
    assert_same_state(model, resumed)
    for name in opt.state:
        for key, value in opt.state[name].items():
            np.testing.assert_array_equal(value, opt2.state[name][key])
    # a training state is also a model checkpoint
    assert load_model(path)[0].config() == model.config()


def test_training_state_into_wrong_optimizer_or_model_changes_nothing(tmp_path):
    model = toy_model()
    opt = SGD(model.parameters_and_grads(), lr=0.1, momentum=0.9)
    fake_training(model, opt, np.random.default_rng(0), 2)
    path = save_training_state(tmp_path / "t.npz", model, opt, epoch=2)
    other = toy_model(seed=3)
    before = {k: v.copy() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match="'SGD', not 'Adam'"):
        load_training_state(path, other, Adam(other.parameters_and_grads()))
    small = toy_model((3, 5, 2))
    small_opt = SGD(small.parameters_and_grads(), lr=0.3, momentum=0.5)
    with pytest.raises(ValueError, match="does not fit"):
        load_training_state(path, small, small_opt)
    assert small_opt.lr == 0.3 and small_opt.state == {}
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def _rewrite_header(path, change):
    with np.load(path) as data:
        arrays = dict(data)
    header = json.loads(str(arrays["__tinyface__"][()]))
    change(header)
    arrays["__tinyface__"] = np.array(json.dumps(header))
    np.savez(path, **arrays)


LOAD_FRESH = """
import sys
from tinyface.checkpoint import load_model
assert "tinyface.models" not in sys.modules and "tinyface.distill" not in sys.modules
model, _ = load_model(sys.argv[1])
print(type(model).__name__, type(model).__module__)
"""


@pytest.mark.parametrize("legacy", [False, True])
def test_load_model_imports_the_modules_that_define_the_layers(tmp_path, legacy):
    """A fresh interpreter that imported only the checkpoint module rebuilds a FaceNet:
    from the modules the file records, or (files without that record) the fallback table."""
    import subprocess
    import sys

    from tinyface.models import build_student
    path = save_model(tmp_path / "student.npz", build_student(5, seed=0))
    with np.load(path) as data:
        layers = json.loads(str(data["__tinyface__"][()]))["layers"]
    assert layers["FaceNet"] == "tinyface.models.facenet" and layers["Conv2d"] == "tinyface.nn.conv"
    if legacy:
        _rewrite_header(path, lambda h: h.pop("layers"))
    out = subprocess.run([sys.executable, "-c", LOAD_FRESH, path], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["FaceNet", "tinyface.models.facenet"]


def test_recorded_modules_outside_the_package_are_never_imported(tmp_path):
    path = save_model(tmp_path / "m.npz", toy_model())
    with np.load(path) as data:
        arrays = dict(data)
    arrays["architecture"] = np.array(json.dumps({"type": "NoSuchLayer"}))
    np.savez(path, **arrays)
    _rewrite_header(path, lambda h: h["layers"].update(NoSuchLayer="no_such_module_anywhere"))
    with pytest.raises(ValueError, match="unknown layer type 'NoSuchLayer'"):
        load_model(path)
