"""Every tutorial runs in ``--quick`` mode: it exits 0, ends with a Summary and three
Exercises, and every file it announces (``saved: PATH``) exists and is not empty.

Each script runs in a child process, as a user would run it, with its output in a
temporary folder; quick mode uses built-in synthetic faces, so no real data is needed.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tinyface.tutorial import SAVED_PREFIX

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 300


def test_there_are_nine_tutorials_in_order():
    numbers = [int(p.name[:2]) for p in TUTORIALS]
    assert numbers == list(range(1, 10)), [p.name for p in TUTORIALS]


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
