"""The training loop: learning, determinism, exact resume, divergence, files, hooks."""
import json
import os

import argparse
import dataclasses

import numpy as np
import pytest

from tinyface import losses, nn
from tinyface.checkpoint import load_model
from tinyface.cli import CLIError, build_parser
from tinyface.cli.fields import add_dataclass_options, flag_of
from tinyface.cli.options import TRAIN_OPTIONS, config_from_args
from tinyface.data import load_dataset, to_float
from tinyface.optim import SGD
from tinyface.train import (TIMING_KEYS, NoCheckpointError, ResumeMismatchError, TrainConfig,
                            TrainingDiverged, evaluate_classifier, fit, train_step)
from tinyface.train.config import STREAM_MAX_SHIFT


@pytest.fixture(scope="module")
def faces():
    """5 identities x 12 synthetic faces at 16x16: (60, 3, 16, 16) uint8, labels (60,)."""
    ds = load_dataset("synthetic", n_identities=5, images_per_identity=12, hr_size=16,
                      cache_dir=False)
    val = np.arange(len(ds.labels)) % 4 == 0
    return ds.images[~val], ds.labels[~val], ds.images[val], ds.labels[val]


def small_cnn(seed=0, dropout=False):
    """conv-bn-relu-gap-linear (+ seeded dropout): (N, 3, H, W) -> (N, 5)."""
    nn.manual_seed(seed)
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
              nn.GlobalAvgPool2d(), nn.Linear(8, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(0.2, seed=7))
    return nn.Sequential(*layers, nn.Linear(16, 5))


def config(**changes):
    base = dict(epochs=4, batch_size=16, optimizer="sgd", lr=0.1, seed=3, log_every=0)
    return TrainConfig(**(base | changes))


def quiet(lines):
    return lines.append


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert np.array_equal(sa[name], sb[name]), f"{name} differs"


def strip_timing(history):
    return [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in history]


def test_loss_decreases_and_progress_lines(faces):
    xtr, ytr, xva, yva = faces
    lines = []
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16),
                          nn.ReLU(), nn.GlobalAvgPool2d(), nn.Linear(16, 5))
    history = fit(model, xtr, ytr, config(epochs=30), xva, yva, log=quiet(lines))
    assert [h["epoch"] for h in history] == list(range(1, 31))
    losses_ = [h["train_loss"] for h in history]
    assert np.mean(losses_[-3:]) < 0.7 * losses_[0], losses_
    assert history[-1]["train_acc"] > 0.5 > history[0]["train_acc"]
    assert history[-1]["lr"] < 0.01 < history[0]["lr"]          # cosine, per step
    epoch_lines = [s for s in lines if s.startswith("epoch ")]
    assert len(epoch_lines) == 30
    for word in ("loss", "acc", "val", "lr", "faces/s", "ETA"):
        assert word in epoch_lines[0], epoch_lines[0]
    assert model.training  # left in training mode
    loss, acc = evaluate_classifier(model, xva, yva, batch_size=7)
    assert loss == pytest.approx(history[-1]["val_loss"], rel=1e-5)
    assert acc == history[-1]["val_acc"]


def test_train_step_is_the_hand_written_step_bit_for_bit(faces):
    xtr, ytr, _, _ = faces
    x, y = to_float(xtr[:16]), ytr[:16].astype(np.int64)          # (16, 3, 16, 16), (16,)
    by_hand, stepped = small_cnn(seed=1, dropout=True), small_cnn(seed=1, dropout=True)
    opt_hand = SGD(by_hand, lr=0.1, momentum=0.9, weight_decay=5e-4)
    opt = SGD(stepped, lr=0.1, momentum=0.9, weight_decay=5e-4)
    for _ in range(3):                                  # momentum: the state matters too
        by_hand.zero_grad()
        logits = by_hand.forward(x)
        loss, dlogits = losses.softmax_cross_entropy_loss(logits, y)
        by_hand.backward(dlogits)
        opt_hand.step()
        got, correct = train_step(stepped, opt, x, y)
        assert got == loss
        assert correct == np.count_nonzero(np.argmax(logits, axis=1) == y)
    same_weights(by_hand, stepped)

    # a step_fn replaces forward, loss and backward; a NaN loss stops before the update
    before = {k: v.copy() for k, v in stepped.state_dict().items()}
    with pytest.raises(losses.NonFiniteLossError, match="loss is nan"):
        train_step(stepped, opt, x, y, np.arange(16), lambda m, xb, idx, yb: (float("nan"), 0))
    assert all(np.array_equal(before[k], v) for k, v in stepped.state_dict().items())


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_same_seed_gives_identical_weights(faces, optimizer):
    xtr, ytr, xva, yva = faces
    cfg = config(epochs=2, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 0.01,
                 nesterov=optimizer == "sgd", crop_scale=0.9)
    runs = []
    for _ in range(2):
        model = small_cnn(dropout=True)
        runs.append((model, fit(model, xtr, ytr, cfg, xva, yva, log=quiet([]))))
    same_weights(runs[0][0], runs[1][0])
    assert strip_timing(runs[0][1]) == strip_timing(runs[1][1])
    other = small_cnn(dropout=True)
    fit(other, xtr, ytr, cfg.replace(seed=cfg.seed + 1), log=quiet([]))
    assert not np.array_equal(other.state_dict()["0.weight"], runs[0][0].state_dict()["0.weight"])


def test_resume_ends_with_exactly_the_same_weights(faces, tmp_path):
    xtr, ytr, xva, yva = faces
    cfg = config(epochs=4, warmup_epochs=1)
    straight = small_cnn(dropout=True)
    full = fit(straight, xtr, ytr, cfg, xva, yva, out_dir=tmp_path / "straight", log=quiet([]))

    # "interrupted": the first run is configured for 4 epochs but stopped after 2
    part = small_cnn(dropout=True)
    stop = {"steps": 0}
    limit = 2 * -(-len(ytr) // cfg.batch_size)

    def stop_after_two_epochs(model, x, idx, labels):
        if stop["steps"] == limit:
            raise KeyboardInterrupt
        stop["steps"] += 1
        logits = model.forward(x)
        loss, d = losses.softmax_cross_entropy_loss(logits, labels)
        model.backward(d)
        return loss, int((logits.argmax(1) == labels).sum())

    with pytest.raises(KeyboardInterrupt):
        fit(part, xtr, ytr, cfg, xva, yva, out_dir=tmp_path / "resumed", log=quiet([]),
            step_fn=stop_after_two_epochs)
    assert len(json.loads((tmp_path / "resumed" / "history.json").read_text())) == 2

    resumed = small_cnn(seed=99, dropout=True)  # other initial weights: all come from the file
    lines = []
    history = fit(resumed, xtr, ytr, cfg, xva, yva, out_dir=tmp_path / "resumed", resume=True,
                  log=quiet(lines))
    assert any("resuming after epoch 2/4" in s for s in lines), lines
    same_weights(straight, resumed)      # parameters and BN running stats, bit for bit
    assert strip_timing(history) == strip_timing(full)
    saved = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert strip_timing(saved) == strip_timing(full)

    # resuming a finished run trains nothing
    again = small_cnn(dropout=True)
    assert strip_timing(fit(again, xtr, ytr, cfg, xva, yva, out_dir=tmp_path / "resumed",
                            resume=True, log=quiet([]))) == strip_timing(full)
    same_weights(again, straight)


def test_resume_without_checkpoint_is_one_clear_error(faces, tmp_path):
    xtr, ytr, _, _ = faces
    with pytest.raises(NoCheckpointError) as info:
        fit(small_cnn(), xtr, ytr, config(), out_dir=tmp_path / "empty", resume=True,
            log=quiet([]))
    message = str(info.value)
    assert "\n" not in message and "checkpoint.npz" in message and "resume" in message
    assert isinstance(info.value, FileNotFoundError)


def test_resume_refuses_other_settings_model_or_data(faces, tmp_path):
    xtr, ytr, _, _ = faces
    fit(small_cnn(), xtr, ytr, config(epochs=1), out_dir=tmp_path, log=quiet([]))
    with pytest.raises(ResumeMismatchError, match="batch_size"):
        fit(small_cnn(), xtr, ytr, config(epochs=1, batch_size=8), out_dir=tmp_path,
            resume=True, log=quiet([]))
    nn.manual_seed(0)
    other = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.PReLU(),
                          nn.GlobalAvgPool2d(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 5))
    with pytest.raises(ResumeMismatchError, match="architecture"):
        fit(other, xtr, ytr, config(epochs=1), out_dir=tmp_path, resume=True, log=quiet([]))
    with pytest.raises(ResumeMismatchError, match="data"):
        fit(small_cnn(), xtr[::-1].copy(), ytr[::-1].copy(), config(epochs=1), out_dir=tmp_path,
            resume=True, log=quiet([]))


def test_divergence_stops_and_keeps_the_last_good_checkpoint(faces, tmp_path):
    xtr, ytr, _, _ = faces
    per_epoch = -(-len(ytr) // 16)
    names = ("checkpoint.npz", "history.json", "curves.png", "model.npz")
    state = {"steps": 0, "nan_at": per_epoch + 3, "files": None}

    def explode(model, x, idx, labels):
        state["steps"] += 1
        if state["steps"] == per_epoch + 1 and state["files"] is None:  # epoch 1 is saved
            state["files"] = {n: ((tmp_path / n).read_bytes(), os.stat(tmp_path / n).st_mtime_ns)
                              for n in names}
        logits = model.forward(x)
        if state["steps"] == state["nan_at"]:
            logits = logits * np.float32(np.nan)
        loss, d = losses.softmax_cross_entropy_loss(logits, labels)
        model.backward(d)
        return loss, 0

    def unchanged():
        for n in names:
            data, mtime = state["files"][n]
            assert (tmp_path / n).read_bytes() == data, n
            assert os.stat(tmp_path / n).st_mtime_ns == mtime, n
        assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]

    with pytest.raises(TrainingDiverged) as info:
        fit(small_cnn(), xtr, ytr, config(epochs=3, lr=0.3), out_dir=tmp_path,
            log=quiet([]), step_fn=explode)
    message = str(info.value)
    assert "loss became nan at epoch 2 step 3" in message, message
    assert "last good checkpoint (epoch 1)" in message and str(tmp_path) in message
    assert "lower learning rate" in message and "0.3" in message
    assert isinstance(info.value, RuntimeError) and info.value.epoch == 2
    unchanged()
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1
    with np.load(tmp_path / "checkpoint.npz") as data:
        assert json.loads(str(data["training"][()]))["epoch"] == 1

    # diverging in the first epoch of a new run in the same folder touches nothing either
    state.update(steps=0, nan_at=2)
    with pytest.raises(TrainingDiverged, match="no checkpoint was written yet"):
        fit(small_cnn(), xtr, ytr, config(epochs=3, lr=0.3), out_dir=tmp_path,
            log=quiet([]), step_fn=explode)
    unchanged()


def test_real_divergence_from_a_huge_learning_rate(faces):
    xtr, ytr, _, _ = faces
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.GlobalAvgPool2d(),
                          nn.Linear(8, 5))
    with pytest.raises(TrainingDiverged, match="lower learning rate"):
        fit(model, xtr, ytr, config(epochs=3, lr=1e12, momentum=0.0, weight_decay=0.0,
                                    schedule="constant"), log=quiet([]))


def test_files_written_each_epoch(faces, tmp_path):
    xtr, ytr, xva, yva = faces
    history = fit(small_cnn(), xtr, ytr, config(epochs=2), xva, yva, out_dir=tmp_path,
                  log=quiet([]))
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved == history
    assert set(saved[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                             "seconds", "faces_per_s"}
    png = (tmp_path / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    best, meta = load_model(tmp_path / "model.npz")
    assert meta["selected"] == "best val acc"
    assert meta["val_acc"] == max(h["val_acc"] for h in history)
    assert best(np.zeros((1, 3, 16, 16), np.float32)).shape == (1, 5)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz", "curves.png", "history.json",
                                            "model.npz"]


def test_step_fn_hook_is_called_with_augmented_floats_and_indices(faces):
    xtr, ytr, _, _ = faces
    calls = []

    def step(model, x, idx, labels):
        calls.append((x.dtype, x.shape, idx.copy(), labels.copy()))
        assert np.array_equal(labels, ytr[idx])
        assert -0.5 <= x.min() and x.max() <= 0.5
        logits = model.forward(x)
        loss, d = losses.softmax_cross_entropy_loss(logits, labels)
        model.backward(d)
        return loss, 0

    history = fit(small_cnn(), xtr, ytr, config(epochs=2, batch_size=20), log=quiet([]),
                  step_fn=step)
    assert len(calls) == 2 * 3
    assert all(dt == np.float32 and shape[1:] == (3, 16, 16) for dt, shape, _, _ in calls)
    first_epoch = np.concatenate([c[2] for c in calls[:3]])
    assert sorted(first_epoch) == list(range(len(ytr)))        # each face once per epoch
    assert history[0]["train_acc"] == 0.0 and history[0]["val_acc"] is None


def test_in_epoch_progress_lines(faces):
    xtr, ytr, _, _ = faces
    lines = []
    fit(small_cnn(), xtr, ytr, config(epochs=1, batch_size=4, log_every=1e-9), log=quiet(lines))
    inner = [s for s in lines if s.startswith("  epoch 1/1  step ")]
    assert inner and "faces/s" in inner[0] and "ETA" in inner[0]


def test_config_round_trip_and_validation():
    cfg = TrainConfig(epochs=3, optimizer="adamw", lr=np.float32(2e-3), nesterov=False,
                      warmup_epochs=0.5, flip=False, seed=np.int64(4))
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert TrainConfig.from_dict(d) == cfg
    assert type(d["seed"]) is int and type(d["lr"]) is float
    assert TrainConfig().learning_rate == 0.05 and TrainConfig(optimizer="adam").learning_rate == 1e-3
    with pytest.raises(ValueError, match="unknown setting"):
        TrainConfig.from_dict(d | {"label_smoothing": 0.1})
    for bad in (dict(optimizer="rmsprop"), dict(schedule="poly"), dict(epochs=0),
                dict(lr=-1.0), dict(warmup_epochs=20), dict(batch_size=2.5)):
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_bad_inputs_are_refused(faces):
    xtr, ytr, _, _ = faces
    with pytest.raises(ValueError, match="uint8"):
        fit(small_cnn(), xtr.astype(np.float32), ytr, config(), log=quiet([]))
    with pytest.raises(ValueError, match="labels"):
        fit(small_cnn(), xtr, ytr[:-1], config(), log=quiet([]))
    with pytest.raises(ValueError, match="out_dir"):
        fit(small_cnn(), xtr, ytr, config(), resume=True, log=quiet([]))


def _command(name):
    """The sub-parser of command ``name``."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def test_training_options_are_train_configs_fields(monkeypatch):
    """Every TrainConfig option of train-student is in its --help with TrainConfig's help
    text, and the default arguments give the command's recipe."""
    monkeypatch.setenv("COLUMNS", "1000")           # one line per option's help
    p = _command("train-student")
    text = p.format_help()
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name in TRAIN_OPTIONS:
        f = fields[name]
        assert flag_of(f) in text and f.metadata["help"] in text, name
    assert "--resume" in text                       # not a setting: a plain option
    recipes = {"train-student": dict(epochs=30, batch_size=64, max_shift=STREAM_MAX_SHIFT["student"]),
               "train-teacher": dict(epochs=40, batch_size=64, max_shift=STREAM_MAX_SHIFT["teacher"]),
               "evaluate": dict(epochs=20, batch_size=128, max_shift=STREAM_MAX_SHIFT["student"])}
    for command, recipe in recipes.items():
        args = _command(command).parse_args([])
        assert config_from_args(args) == TrainConfig(**recipe), command
    args = p.parse_args(["--no-augment", "--lr", "0.01", "--schedule", "step", "--seed", "2"])
    assert config_from_args(args) == TrainConfig(epochs=30, lr=0.01, schedule="step",
                                                 augment=False, seed=2,
                                                 max_shift=STREAM_MAX_SHIFT["student"])
    with pytest.raises(CLIError, match="warmup_epochs"):
        config_from_args(p.parse_args(["--warmup-epochs", "30"]))


def test_recipe_defaults_are_checked():
    with pytest.raises(KeyError, match="momentum"):
        add_dataclass_options(argparse.ArgumentParser(), TrainConfig, ["epochs"],
                              defaults={"momentum": 0.5})
    with pytest.raises(ValueError, match="no-augment"):
        add_dataclass_options(argparse.ArgumentParser(), TrainConfig, ["augment"],
                              defaults={"augment": False})
