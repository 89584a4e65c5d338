"""What goes wrong, handled: validation that is not the test set, models checked against
the split and stream they were trained on, one run per --out, unwritable folders, a
full disk, NaN weights, Ctrl-C, and training time across --resume."""
import errno
import re
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinyface.atomic
from tinyface.checkpoint import load_model, save_model
from tinyface.cli import main
from tinyface.data import load_split
from tinyface.experiments import train_stream
from tinyface.runlock import LOCK_NAME, FolderError, FolderLockedError, hold_folder
import tinyface.train.epoch_files as epoch_files
from tinyface.train import TrainConfig

TINY = dict(synthetic={"n_identities": 5, "images_per_identity": 8}, cache_dir=False)
CLI_TINY = ["--identities", "5", "--images-per-identity", "8", "--hr-size", "32",
            "--lr-size", "8", "--batch-size", "16"]


def quiet(_msg):
    pass


def _student(out, epochs=2, **kwargs):
    return main(["train-student", *CLI_TINY, "--epochs", str(epochs), "--out", str(out),
                 *kwargs.get("extra", [])])


def ctrl_c_in_epoch(monkeypatch, epoch):
    """Make Ctrl-C strike while epoch ``epoch``'s files are written (at its curves, so
    model.npz and history.json are new and the checkpoint is the epoch before's);
    returns a function that lifts it."""
    real = epoch_files.save_curves

    def curves(history, path):
        if len(history) == epoch:
            raise KeyboardInterrupt
        return real(history, path)

    monkeypatch.setattr(epoch_files, "save_curves", curves)
    return lambda: monkeypatch.setattr(epoch_files, "save_curves", real)


@pytest.fixture(scope="module")
def split():
    return load_split("synthetic", hr_size=32, lr_size=8, seed=0, **TINY)


# ------------------------------------------------------------- validation
def test_stream_picks_its_epoch_on_faces_carved_from_training(split, tmp_path):
    res = train_stream(split, "student", TrainConfig(epochs=3, batch_size=16), tmp_path,
                       log=quiet)
    m, hist = res["metrics"], res["history"]
    n_val = len(split.y_train) - m["train_faces"]
    assert m["validation"] == 0.2 and n_val == 5                 # 1 of each identity's 5-6
    best = max(hist, key=lambda r: (r["val_acc"], -r["val_loss"]))
    assert m["kept_epoch"] == best["epoch"] and m["val_acc"] == best["val_acc"]
    _, meta = load_model(tmp_path / "model.npz")
    assert meta["epoch"] == best["epoch"] and meta["stream"] == "student"
    assert meta["split"] == split.meta


def test_validation_zero_trains_on_every_face_and_keeps_the_last_epoch(split, tmp_path):
    res = train_stream(split, "student", TrainConfig(epochs=2, batch_size=16), tmp_path,
                       log=quiet, validation=0)
    m = res["metrics"]
    assert m["train_faces"] == len(split.y_train) and m["kept_epoch"] == 2
    assert m["val_acc"] is None and all(r["val_acc"] is None for r in res["history"])


def test_train_seconds_after_resume_is_the_total(split, tmp_path, monkeypatch):
    cfg = TrainConfig(epochs=3, batch_size=16)
    lift = ctrl_c_in_epoch(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        train_stream(split, "student", cfg, tmp_path, log=quiet)
    lift()
    res = train_stream(split, "student", cfg, tmp_path, log=quiet, resume=True)
    seconds = [r["seconds"] for r in res["history"]]
    assert len(seconds) == 3
    assert res["metrics"]["train_seconds"] == pytest.approx(sum(seconds), rel=1e-12)


# ----------------------------------------------------- evaluate's checks
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert _student(out, epochs=1) == 0
    return out


def test_evaluate_refuses_another_seed(trained, tmp_path, capsys):
    code = main(["evaluate", *CLI_TINY, "--student", str(trained), "--seed", "1",
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "another split (seed 0 there, 1 here)" in err
    assert main(["evaluate", *CLI_TINY, "--student", str(trained), "--out", str(tmp_path)]) == 0


def test_evaluate_refuses_a_student_given_as_teacher(trained, tmp_path, capsys):
    # same input size on both sides (--hr-size 8), so only the recorded stream tells
    code = main(["evaluate", *CLI_TINY[:4], "--hr-size", "8", "--lr-size", "8",
                 "--teacher", str(trained), "--out", str(tmp_path)])
    assert code == 2 and "holds a student" in capsys.readouterr().err


def test_lr_larger_than_hr_is_refused(tmp_path, capsys):
    code = main(["train-student", "--identities", "5", "--images-per-identity", "8",
                 "--hr-size", "8", "--lr-size", "16", "--epochs", "1", "--out", str(tmp_path)])
    assert code == 2 and "LR side (16px) is larger than the HR side (8px)" in capsys.readouterr().err


def test_nan_weights_are_refused_at_load_naming_file_and_tensor(trained, tmp_path):
    arrays = dict(np.load(trained / "model.npz"))
    arrays["param/features.0.weight"] = arrays["param/features.0.weight"].copy()
    arrays["param/features.0.weight"].flat[3] = np.nan
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=r"bad.npz.*'features.0.weight' holds 1 non-finite"):
        load_model(tmp_path / "bad.npz")


def test_ablation_refuses_a_teacher_path_that_does_not_exist(tmp_path, capsys):
    code = main(["ablation", "--quick", "--teacher", str(tmp_path / "typo"), "--out",
                 str(tmp_path / "abl")])
    assert code == 2 and "--train-teacher" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


# ------------------------------------------------------- the output folder
def test_a_second_run_on_one_folder_is_refused_naming_the_holder(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_NAME).write_text(json.dumps(
            {"pid": holder.pid, "host": os.uname().nodename, "started": "now"}))
        with pytest.raises(FolderLockedError, match=f"PID {holder.pid}"):
            with hold_folder(tmp_path):
                pass
        assert _student(tmp_path, epochs=1) == 2
        assert f"in use by another run (PID {holder.pid}" in capsys.readouterr().err
        assert not (tmp_path / "model.npz").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over, then removed at the end
    with hold_folder(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_an_unwritable_out_is_one_line(tmp_path, capsys, where):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if where == "file" else tmp_path / "f" / "sub"
    assert _student(out, epochs=1) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: cannot write to {out}: a file is in the way (it must be a folder)"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="a read-only folder is writable by root")
def test_a_read_only_out_is_one_line(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(FolderError, match="not writable"):
            with hold_folder(out):
                pass
    finally:
        out.chmod(0o700)


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    real, written = tinyface.atomic.atomic_write, []

    def full_at_the_second_checkpoint(path, write):
        if os.path.basename(path) == "checkpoint.npz":
            written.append(path)
            if len(written) == 2:
                raise OSError(errno.ENOSPC, "No space left on device", path)
        return real(path, write)

    monkeypatch.setattr(tinyface.atomic, "atomic_write", full_at_the_second_checkpoint)
    assert _student(tmp_path, epochs=2) == 2
    err = capsys.readouterr().err
    assert "checkpoint.npz: No space left on device" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    from tinyface.train.resume import checkpoint_epoch
    assert checkpoint_epoch(tmp_path / "checkpoint.npz") == 1
    assert not (tmp_path / LOCK_NAME).exists()


def test_ctrl_c_says_the_checkpoint_is_intact_and_how_to_resume(tmp_path, capsys, monkeypatch):
    lift = ctrl_c_in_epoch(monkeypatch, 2)
    assert _student(tmp_path, epochs=3) == 130
    err = capsys.readouterr().err
    assert "checkpoint.npz (epoch 1 of 3) is intact" in err and "--resume" in err
    assert not (tmp_path / LOCK_NAME).exists()
    lift()
    assert _student(tmp_path, epochs=3, extra=["--resume"]) == 0


def test_resume_rewrites_a_missing_model_file(tmp_path, capsys, monkeypatch):
    lift = ctrl_c_in_epoch(monkeypatch, 2)
    assert _student(tmp_path, epochs=2, extra=["--val-fraction", "0"]) == 130
    (tmp_path / "model.npz").unlink()                     # lost: the checkpoint is epoch 1
    lift()
    assert _student(tmp_path, epochs=2, extra=["--val-fraction", "0", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "rewrote" in out and "epoch 1; it held nothing" in out
    _, meta = load_model(tmp_path / "model.npz")
    assert meta["epoch"] == 2


def test_save_model_of_a_diverged_model_cannot_be_loaded_back(tmp_path, trained):
    model, _ = load_model(trained / "model.npz")
    model.state_dict()["features.0.weight"][...] = np.inf
    save_model(tmp_path / "inf.npz", model)
    with pytest.raises(ValueError, match="inf.npz.*non-finite"):
        load_model(tmp_path / "inf.npz")


# ------------------------------------------------------ messages and help
def test_warnings_print_as_one_line(tmp_path, capsys):
    from PIL import Image
    rng = np.random.default_rng(0)
    for who in ("a", "b"):
        (tmp_path / "faces" / who).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
                tmp_path / "faces" / who / f"{i}.png")
    (tmp_path / "faces" / "a" / "bad.png").write_bytes(b"not a png")
    assert main(["train-student", "--data", "folder", "--data-root", str(tmp_path / "faces"),
                 "--hr-size", "16", "--lr-size", "8", "--epochs", "1", "--cache", str(tmp_path / "c"),
                 "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("warning: ") for line in err), err
    assert any("bad.png" in line for line in err)


@pytest.mark.parametrize("command", ["demo", "train-teacher", "train-student", "evaluate",
                                     "ablation", "bench", "info", "data info"])
def test_help_shows_each_default_once_and_never_none(command, capsys):
    with pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text
    assert not re.search(r"\(default[^)]*\) \(default:", text), text
    if command == "bench":
        assert "(default: 10)" in text                       # --reps


def test_a_file_output_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code = main(["data", "show", "--identities", "2", "--images-per-identity", "2",
                 "--out", str(tmp_path / "f" / "montage.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
