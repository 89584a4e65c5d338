"""One whole student training step (forward, backward, SGD with momentum and weight
decay) on the CUDA backend matches the CPU backend, under numba's CUDA simulator.

The student's spec (every layer type: conv, batch norm 2-D and 1-D, ReLU, max pool,
global average pool, linear, dropout) at a quarter of its width and 4x4 input, batch 4,
so that the simulator (one Python thread per GPU thread) takes well under a minute. At
batch 2 the 1x1 batch norms amplify rounding differences: even the NumPy and Numba CPU
tiers then differ by 3e-4 after one step.
"""
import pytest

from tinyface.checks import TOL, format_rows, run_in_simulator


@pytest.fixture(scope="module")
def step():
    result = run_in_simulator("step", timeout=600)
    if "step" not in result:
        pytest.fail(f"the simulator run produced no results (exit {result['returncode']}):\n"
                    f"{result['stderr'][-3000:]}")
    return result["step"]


def test_loss_matches_cpu(step):
    assert step["loss_err"] <= TOL["reduction"], (step["loss_cpu"], step["loss_gpu"])


def test_logits_weights_and_running_stats_match_cpu(step):
    names = {r["tensor"] for r in step["rows"]}
    assert {"features.0.weight", "classifier.weight", "features.1.running_var"} <= names
    bad = [r for r in step["rows"] if not r["ok"]]
    assert not bad, "GPU step differs from the CPU step:\n" + format_rows(bad)


def test_step_stays_on_the_device(step):
    """Parameters, activations, gradients and optimizer state stay on the GPU: the
    forward, backward and SGD step make no implicit host <-> device copy."""
    if not step["nn_device_ready"]:
        pytest.skip("tinyface.nn layers copy GPU arrays to the host (Module.check_input "
                    f"uses np.asarray): {step['model_transfers']} copies per step; needs tinyface.nn "
                    "to pass GPU arrays through (Module.check_input / check_grad)")
    assert step["model_transfers"] == [0] * step["steps"]
    assert step["loss_transfers"] == [0] * step["steps"]
