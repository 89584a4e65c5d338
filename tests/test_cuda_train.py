"""``tinyface.train.fit`` on the CUDA backend matches the CPU backend, under numba's
CUDA simulator: the same epoch loss, the same weights after the run, a ``model.npz``
that reads back on the CPU with the GPU's weights, and no implicit host <-> device copy
(``tinyface.checks.training``, in a child process with ``NUMBA_ENABLE_CUDASIM=1``).

One epoch of two SGD steps of the shrunken student (4x4 faces, a quarter of the
width), so that the simulator takes about a minute. Adam's weights are not compared
here: see ``tinyface/checks/training.py`` for why; ``DeviceAdam`` is checked on equal
gradients by the ``adam`` op check (``tests/test_cuda_kernels.py``).
"""
import json
import os
import subprocess
import sys

import pytest

from tinyface.checks import TOL, format_rows


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    path = tmp_path_factory.mktemp("training_check") / "result.json"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "tinyface.checks.training", "--optimizer",
                           "sgd", "--json", str(path)], env=env, capture_output=True,
                          text=True, timeout=600)
    if not path.exists():
        pytest.fail(f"tinyface.checks.training wrote no result (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(path.read_text())[0]


def test_epoch_loss_matches_cpu(result):
    assert result["loss_err"] <= TOL["gemm"], (result["losses_cpu"], result["losses_gpu"])


def test_weights_and_running_stats_match_cpu(result):
    bad = [r for r in result["rows"] if not r["ok"]]
    assert not bad, "fit on the GPU differs from the CPU:\n" + format_rows(bad)


def test_saved_model_reads_back_on_the_cpu(result):
    assert result["reloaded_err"] == 0.0


def test_training_makes_no_implicit_copies(result):
    assert result["transfers"] == {"to_device": 0, "to_host": 0}
    assert result["passed"]
