"""``python -m tinyface data ...`` and data_scripts/prepare.py."""
import subprocess
import sys
from pathlib import Path

import pytest

from tinyface.cli import main

from test_data_helpers import make_lfw_tree, png_size

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--n-identities", "5", "--images-per-identity", "3"]


def test_info_synthetic(capsys):
    assert main(["data", "info", "--data", "synthetic", *SMALL, "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "identities:  5" in out and "images:      15" in out and "64x64" in out


def test_show_writes_a_montage(tmp_path, capsys):
    png = tmp_path / "m.png"
    assert main(["data", "show", *SMALL, "--n-faces", "3", "--out", str(png)]) == 0
    assert "wrote" in capsys.readouterr().out
    w, h = png_size(png)
    assert w > 400 and h > 250
    one = tmp_path / "one.png"
    assert main(["data", "show", *SMALL, "--n-faces", "2", "--lr-size", "16",
                 "--out", str(one)]) == 0
    assert png_size(one)[0] < w                              # HR + a single LR column


def test_folder_info_with_warnings_and_prepare(tmp_path, capsys):
    root = make_lfw_tree(tmp_path, top="faces")
    cache = tmp_path / "cache"
    args = ["--data", "folder", "--data-root", str(root), "--cache", str(cache), "--hr-size", "32"]
    assert main(["data", "info", *args]) == 0
    cap = capsys.readouterr()
    assert "identities:  4" in cap.out and "skipped (unreadable) files: 2" in cap.out
    assert "warning: skipped corrupt or unreadable image" in cap.err and "Eve_Empty" in cap.err
    assert main(["data", "prepare", *args, "--lr-sizes", "8,16"]) == 0
    out = capsys.readouterr().out
    assert "from cache:  yes" in out and "8x8, 16x16" in out
    assert len(list(cache.glob("lr-*.npz"))) == 2


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "info", "--data", "folder"]) == 2
    assert capsys.readouterr().err.strip() == \
        "error: the folder dataset needs a root: --data-root PATH (one sub-folder per identity)"
    assert main(["data", "info", "--data", "lfw", "--data-root", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "show", "--lr-sizes", "a,b"])


def test_help_shows_every_option_with_a_default():
    for action in ("info", "show", "prepare"):
        r = subprocess.run([sys.executable, "-m", "tinyface", "data", action, "--help"],
                           capture_output=True, text=True, cwd=REPO, timeout=60)
        assert r.returncode == 0
        text = " ".join(r.stdout.split())
        for opt in ("--data ", "--data-root", "--hr-size", "--cache", "--seed"):
            assert opt in text
        assert "(default: synthetic)" in text and "(default: 64)" in text


def test_prepare_script_runs(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "data_scripts" / "prepare.py"), *SMALL,
                        "--lr-sizes", "8", "--cache", str(tmp_path)],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "identities:  5" in r.stdout and "LR sizes:    8x8" in r.stdout
