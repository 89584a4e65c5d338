"""Every tutorial runs in ``--quick`` mode: it exits 0, ends with a Summary and three
Exercises, and every file it announces (``saved: PATH``) exists and is not empty.

Each script runs in a child process, as a user would run it, with its output in a
temporary folder; quick mode uses built-in synthetic faces, so no real data is needed.
The helpers in ``tinyface.tutorial`` that choose the teacher of tutorials 06-08 and
reuse an ablation folder's teacher caches are tested on their own at the end.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tinyface import tutorial
from tinyface.data import load_split
from tinyface.eval import embed_images, logits_of
from tinyface.models import WeightsError, build_model, teacher_lite_spec
from tinyface.tutorial import SAVED_PREFIX

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 300


def test_there_are_ten_tutorials_in_order():
    numbers = [int(p.name[:2]) for p in TUTORIALS]
    assert numbers == list(range(1, 11)), [p.name for p in TUTORIALS]


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_in_quick_mode(script, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(script), "--quick", "--seed", "0", "--out", str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
                          cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script.name} exited {proc.returncode}:\n{log[-4000:]}"
    assert "Traceback" not in log, log[-4000:]
    assert "\nSummary\n" in proc.stdout, proc.stdout[-2000:]
    exercises = proc.stdout.split("\nExercises\n", 1)
    assert len(exercises) == 2, proc.stdout[-2000:]
    assert re.findall(r"^  [123]\. ", exercises[1], flags=re.M) == ["  1. ", "  2. ", "  3. "]
    saved = [line[len(SAVED_PREFIX):].strip() for line in proc.stdout.splitlines()
             if line.startswith(SAVED_PREFIX)]
    assert saved, f"{script.name} names no saved file"
    for name in saved:
        path = Path(name) if os.path.isabs(name) else tmp_path / name
        assert path.is_file() and path.stat().st_size > 0, f"{script.name}: {name} missing or empty"
        assert out in path.resolve().parents, f"{script.name}: {name} is outside --out"
    assert "FAILED" not in proc.stdout


def _results(path, teacher, rows):
    cell = lambda v: {"mean": v, "std": 0.01, "values": [v - 0.01, v + 0.01]}  # noqa: E731
    path.write_text(json.dumps({"data": "lfw", "teacher": {"name": teacher},
                                "rows": {k: {"top1": cell(v)} for k, v in rows.items()}}))
    return str(path)


def test_tutorial_10_plots_ablation_results_side_by_side(tmp_path):
    rows = {"teacher at HR": 0.9, "student + CE fine-tuning only": 0.785,
            "student + DKD (Zhao et al.)": 0.77}          # a row below CE-only
    a = _results(tmp_path / "a.json", "dlib-resnet", rows)
    b = _results(tmp_path / "b.json", "teacher", dict(rows, **{"student + SP (Tung & Mori)": 0.79}))
    script = next(p for p in TUTORIALS if p.name.startswith("10_"))
    run = lambda *r: subprocess.run([sys.executable, str(script), "--seed", "0", "--out",  # noqa: E731
                                     str(tmp_path / "out"), "--results", *r], capture_output=True,
                                    text=True, timeout=TIMEOUT_S, cwd=tmp_path,
                                    env=dict(os.environ, MPLBACKEND="Agg"))
    one = run(a)
    assert one.returncode == 0, (one.stdout + one.stderr)[-4000:]
    assert "DKD (Zhao et al.)" in one.stdout.split("\nSummary\n", 1)[1]    # named as below CE
    assert not (tmp_path / "out" / "zoo_compared.png").exists()
    two = run(a, b)
    assert two.returncode == 0, (two.stdout + two.stderr)[-4000:]
    assert (tmp_path / "out" / "zoo_compared.png").stat().st_size > 0
    bad = run(str(tmp_path / "missing.json"))
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--results" in bad.stderr and "missing.json" in bad.stderr


# ------------------------------------------------ the teacher helpers of tutorials 06-08
def _args(**kw):
    return SimpleNamespace(**dict({"quick": False, "teacher": None, "ablation": None}, **kw))


def test_choose_teacher(monkeypatch, tmp_path):
    assert tutorial.choose_teacher(_args(quick=True), "synthetic") is None
    assert tutorial.choose_teacher(_args(), "synthetic") is None       # one person to dlib
    assert tutorial.choose_teacher(_args(teacher="runs/t"), "lfw") == "runs/t"

    def missing(weights=None):
        raise WeightsError("no weights")
    monkeypatch.setattr(tutorial, "find_weights_dir", missing)
    assert tutorial.choose_teacher(_args(), "lfw") is None             # ours, trained
    monkeypatch.setattr(tutorial, "find_weights_dir", lambda weights=None: tmp_path)
    assert tutorial.choose_teacher(_args(), "lfw") == tutorial.PRETRAINED_TEACHER
    assert tutorial.teacher_width(tutorial.PRETRAINED_TEACHER) == 128
    assert tutorial.teacher_width(None) == 256
    assert tutorial.teacher_width(str(tmp_path / "no-such-run")) == 256


def test_reuse_caches_copies_only_what_is_missing(tmp_path, monkeypatch):
    src, dst = tmp_path / "abl", tmp_path / "out" / "ablation"
    (src / "teacher-descriptors").mkdir(parents=True)
    for name, text in (("teacher-descriptors/train-hr.npz", "a"),
                       ("teacher-descriptors/test-hr.npz", "b"), ("teacher-head.npz", "c"),
                       ("bank.npz", "d"), ("results.json", "e")):
        (src / name).write_text(text)
    (dst / "teacher-descriptors").mkdir(parents=True)
    (dst / "teacher-descriptors" / "test-hr.npz").write_text("mine")
    copied = tutorial.reuse_caches(str(src), str(dst))
    assert sorted(copied) == ["bank.npz", "teacher-descriptors/train-hr.npz", "teacher-head.npz"]
    assert (dst / "teacher-descriptors" / "test-hr.npz").read_text() == "mine"   # kept
    assert (dst / "bank.npz").read_text() == "d" and not (dst / "results.json").exists()
    assert (src / "bank.npz").read_text() == "d"                                 # untouched
    assert tutorial.reuse_caches(str(src), str(dst)) == []
    assert tutorial.reuse_caches(None, str(dst)) == []
    # finished student runs: scratch with its metrics, variants with run.json too
    for rel, files in (("scratch-seed0", ("metrics.json", "checkpoint.npz")),
                       ("scratch-seed1", ("checkpoint.npz",)),
                       ("seed0/kd", ("run.json", "metrics.json", "student.npz", "history.json")),
                       ("seed0/selective", ("checkpoint.npz", "model.npz"))):
        (src / rel).mkdir(parents=True)
        for f in files:
            (src / rel / f).write_text(rel)
    assert tutorial.finished_runs(str(src)) == ["scratch-seed0", os.path.join("seed0", "kd")]
    copied = tutorial.reuse_caches(str(src), str(dst), tutorial.finished_runs(str(src)))
    assert len(copied) == 6 and (dst / "seed0" / "kd" / "history.json").read_text() == "seed0/kd"
    # which folder a run reuses
    monkeypatch.chdir(tmp_path)
    assert tutorial.ablation_source(_args(), str(dst)) is None                  # no tutorial 07 run
    assert tutorial.ablation_source(_args(ablation=str(src)), str(dst)) == str(src)
    assert tutorial.ablation_source(_args(ablation=str(src)), str(src)) is None  # its own folder
    os.makedirs(tutorial.ABLATION_OUT)
    assert tutorial.ablation_source(_args(), str(dst)) == tutorial.ABLATION_OUT
    assert tutorial.ablation_source(_args(quick=True), str(dst)) is None
    with pytest.raises(SystemExit):
        tutorial.ablation_source(_args(ablation=str(tmp_path / "missing")), str(dst))


def test_teacher_features_of_a_trained_teacher():
    split = load_split("synthetic", hr_size=32, lr_size=8, seed=0,
                       synthetic={"n_identities": 3, "images_per_identity": 4, "family_size": 1})
    teacher = build_model(teacher_lite_spec(split.num_classes, 32), seed=0)
    tf = tutorial.TeacherFeatures(teacher, split)
    assert not tf.frozen and tf.dim == teacher.embedding_dim
    np.testing.assert_allclose(tf.bank.embeddings, embed_images(teacher, split.hr_train), atol=1e-5)
    np.testing.assert_allclose(tf.test_lr, embed_images(teacher, split.lr_up_test), atol=1e-5)
    np.testing.assert_allclose(tf.logits_hr, logits_of(teacher, split.hr_test), atol=1e-5)
    assert tf.logits_lr.shape == (len(split.y_test), split.num_classes)
    pairs = SimpleNamespace(images=split.hr_test,
                            faces=lambda size=None, up=False, method="bicubic":
                            split.hr_test if size is None else split.lr_up_test)
    hr, lr = tf.pairs(pairs, split.meta["lr_method"])
    np.testing.assert_allclose(hr, tf.test_hr, atol=1e-5)
    np.testing.assert_allclose(lr, tf.test_lr, atol=1e-5)
