"""``python -m tinyface info``: tables and totals, and one-line errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tinyface import nn
from tinyface.checkpoint import save_model
from tinyface.cli import main
from tinyface.models import build_student, format_spec, student_spec, teacher_spec


def run_info(capsys, *argv):
    rc = main(["info", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_student_is_the_default(capsys):
    rc, out, err = run_info(capsys)
    assert rc == 0 and err == ""
    assert "FaceNet(student: 3x16x16 -> 64-d embedding -> 158 classes)" in out
    assert "features.0" in out and "classifier" in out and "16x16x16" in out
    assert "parameters: 38,670 (0.1475 MB" in out
    assert "FLOPs/face: 3,521,856" in out
    assert "39,321 float32 parameters; this model is 98.3% of it (within)" in out


def test_teacher_with_classes(capsys):
    rc, out, _ = run_info(capsys, "teacher", "--num-classes", "10")
    assert rc == 0
    assert "FaceNet(teacher: 3x64x64 -> 256-d embedding -> 10 classes)" in out
    n = build_student().num_parameters()
    total = int(out.split("parameters: ")[1].split(" ")[0].replace(",", ""))
    assert total == 1281086 - (256 * 158 + 158) + (256 * 10 + 10)      # 10-way classifier
    assert total >= 20 * n
    assert "(over)" in out and "FLOPs/face: 423," in out


def test_checkpoint_and_spec_file(capsys, tmp_path):
    path = save_model(tmp_path / "s.npz", build_student(num_classes=12, seed=1), {"epoch": 3})
    rc, out, _ = run_info(capsys, path)
    assert rc == 0 and "-> 12 classes" in out and "'epoch': 3" in out
    spec_file = tmp_path / "narrow.json"
    spec_file.write_text(format_spec({**student_spec(), "stages": [8, "M", 16]}))
    rc, out, _ = run_info(capsys, str(spec_file), "--num-classes", "5")
    assert rc == 0 and '"stages": [8, "M", 16]' in out and "-> 5 classes" in out


@pytest.mark.parametrize("argv, message", [
    (["teachr"], "unknown model 'teachr'"),
    (["missing/model.npz"], "no checkpoint file at 'missing/model.npz'"),
    (["student", "--num-classes", "0"], "--num-classes must be at least 1"),
])
def test_one_line_errors(capsys, argv, message):
    rc, out, err = run_info(capsys, *argv)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_wrong_architecture_checkpoint_names_the_mismatch(capsys, tmp_path):
    """A file whose architecture record (teacher) does not fit its weights (student)."""
    good = save_model(tmp_path / "student.npz", build_student())
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["architecture"] = np.array(json.dumps({"type": "FaceNet", "spec": teacher_spec(158)}))
    bad = tmp_path / "mixed.npz"
    np.savez(bad, **arrays)
    rc, out, err = run_info(capsys, str(bad))
    assert rc == 2 and err.count("\n") == 1
    assert "does not fit this model" in err and "features.0.weight" in err
    assert "(32, 3, 3, 3)" in err and "(16, 3, 3, 3)" in err


def test_foreign_checkpoints_are_refused(capsys, tmp_path):
    seq = save_model(tmp_path / "seq.npz", nn.Sequential(nn.Linear(3, 2)))
    rc, _, err = run_info(capsys, seq)
    assert rc == 2 and "holds a Sequential, not a tinyface face model" in err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    rc, _, err = run_info(capsys, str(junk))
    assert rc == 2 and err.count("\n") == 1 and "is not a tinyface checkpoint" in err


def test_help_runs_as_a_module():
    res = subprocess.run([sys.executable, "-m", "tinyface", "info", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "MODEL" in res.stdout and "--num-classes" in res.stdout
