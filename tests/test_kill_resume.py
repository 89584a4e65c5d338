"""A training run killed (SIGKILL) inside any write of its files, then resumed, ends
with the files of an uninterrupted run.

Each case runs ``train-student`` in a child process whose ``tinyface.atomic.atomic_write``
kills the process at the n-th write of one file, after the temporary file is complete
and before it is renamed: the worst moment for an atomic write. The same command with
``--resume`` (which also takes over the killed run's stale lock) must then give the same
``model.npz`` and ``metrics.json`` as a run that was never interrupted.
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")

DRIVER = r"""
import os, signal, sys
import tinyface.atomic as atomic

target, nth = os.environ.get("KILL_FILE"), int(os.environ.get("KILL_AT", "0"))
real, seen = atomic.atomic_write, [0]


def killing(path, write):
    if os.path.basename(path) == target:
        seen[0] += 1
        if seen[0] == nth:
            with open(os.fspath(path) + ".killed.tmp", "wb") as f:
                write(f)                         # the temporary file is whole, not renamed
            os.kill(os.getpid(), signal.SIGKILL)
    return real(path, write)


atomic.atomic_write = killing
from tinyface.cli import main
sys.exit(main(sys.argv[1:]))
"""

ARGS = ["train-student", "--identities", "4", "--images-per-identity", "8", "--hr-size", "16",
        "--lr-size", "8", "--batch-size", "16", "--epochs", "3",
        "--val-fraction", "0"]         # model.npz is then written every epoch, like the others

# (file, n-th write of it): every file of the last epoch (a kill there used to leave a
# stale model.npz beside a finished checkpoint), the checkpoint of a middle epoch, and
# the final metrics
CASES = [("model.npz", 3), ("history.json", 3), ("curves.png", 3), ("checkpoint.npz", 3),
         ("checkpoint.npz", 2), ("metrics.json", 1)]


def _run(out, kill=None, resume=False):
    env = dict(os.environ, NUMBA_NUM_THREADS="1")     # one thread count for every run
    if kill:
        env.update(KILL_FILE=kill[0], KILL_AT=str(kill[1]))
    cmd = [sys.executable, "-c", DRIVER, *ARGS, "--out", str(out)] + (["--resume"] if resume else [])
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _model(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _metrics(path):
    m = json.loads(path.read_text())
    m.pop("train_seconds")
    return m


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    done = _run(out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("kill", CASES, ids=[f"{f}-{n}" for f, n in CASES])
def test_killed_inside_a_write_then_resumed_ends_like_an_uninterrupted_run(
        kill, uninterrupted, tmp_path):
    killed = _run(tmp_path, kill=kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _run(tmp_path, resume=True)
    assert resumed.returncode == 0, resumed.stderr
    want, got = _model(uninterrupted / "model.npz"), _model(tmp_path / "model.npz")
    assert sorted(want) == sorted(got)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert _metrics(tmp_path / "metrics.json") == _metrics(uninterrupted / "metrics.json")


def test_killed_before_the_first_checkpoint_resume_says_so(tmp_path):
    killed = _run(tmp_path, kill=("checkpoint.npz", 1))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _run(tmp_path, resume=True)
    assert resumed.returncode == 2 and "Traceback" not in resumed.stderr
    assert "no checkpoint to resume from" in resumed.stderr
    assert _run(tmp_path).returncode == 0                  # a new run takes the stale lock
