"""The CUDA tier against the Numba CPU tier, every op forward and backward, under
numba's CUDA simulator (no GPU needed).

``NUMBA_ENABLE_CUDASIM=1`` must be set before numba is imported, and this pytest
session has imported numba normally, so the checks run once in a child process
(``python -m tinyface.checks.ops kernels``, tiny shapes, ~20-40 s on 2 cores) and
each test below reads its part of the result. Tolerances (error relative to each
tensor's largest value): exact for ReLU, max pooling, flatten and the dropout mask;
1e-6 elementwise; 1e-5 for float64 reductions (batch norm, losses); 1e-4 for the
GEMM-based conv and linear. See ``tinyface/checks/report.py``.
"""
import importlib
import inspect
import subprocess
import sys

import pytest
from numba.core import sigutils

import tinyface.cuda as tc
from tinyface.checks import CHECK_NAMES, format_rows, run_in_simulator
from tinyface.cuda import CudaUnavailableError, cuda_available, require_cuda, simulator_enabled
from tinyface.kernels import MODULES


@pytest.fixture(scope="module")
def sim():
    result = run_in_simulator("kernels", timeout=600)
    if not result.get("rows"):
        pytest.fail(f"the simulator run produced no results (exit {result['returncode']}):\n"
                    f"{result['stderr'][-3000:]}")
    return result


@pytest.mark.parametrize("check", CHECK_NAMES)
def test_cuda_op_matches_cpu_kernel(sim, check):
    rows = [r for r in sim["rows"] if r["check"] == check]
    assert rows, f"no results for {check}"
    bad = [r for r in rows if not r["ok"]]
    assert not bad, "CUDA differs from the CPU kernel:\n" + format_rows(bad)


def test_simulator_run_is_quick_and_clean(sim):
    assert sim["returncode"] == 0, sim["stderr"][-3000:]
    assert sim["seconds"] < 300, f"the simulator run took {sim['seconds']:.0f} s (budget 300 s)"


def test_launches_use_the_signatures_the_ptx_test_compiles(sim):
    """Every kernel launch in the simulator run has a signature listed in its module's
    PTX_SIGNATURES (so tests/test_cuda_ptx.py compiles what a GPU would run), and every
    listed kernel was launched."""
    declared = {}
    for _, name, disp, sig in tc.ptx_signatures():
        declared.setdefault((disp.py_func.__module__, name), set()).add(
            sigutils.normalize_signature(sig)[0])
    launched = {(m, n) for m, n, _ in sim["launches"]}
    missing = [(m, n, s) for m, n, s in sim["launches"]
               if sigutils.normalize_signature(s)[0] not in declared.get((m, n), set())]
    assert not missing, f"launched with signatures not in PTX_SIGNATURES: {missing}"
    assert launched, "no launches were recorded"
    never = sorted(set(declared) - launched)
    assert not never, f"kernels never launched by the checks: {never}"


def test_no_gpu_is_one_line_with_the_cpu_alternative():
    """Without a GPU or the simulator: (False, reason), a one-line error naming the CPU
    way, and the self-check exits 2 with that line, never a traceback."""
    ok, reason = cuda_available()
    if ok or simulator_enabled():
        pytest.skip(f"a CUDA device is available here: {reason}")
    with pytest.raises(CudaUnavailableError) as info:
        require_cuda()
    msg = str(info.value)
    assert "\n" not in msg and "--device cpu" in msg and "NUMBA_ENABLE_CUDASIM" in msg
    proc = subprocess.run([sys.executable, "-m", "tinyface.checks.ops"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("CUDA is not available")


def test_same_ops_and_signatures_as_the_cpu_tier():
    """The backend proxy can dispatch to tinyface.cuda: every op of tinyface.kernels
    exists there with the same name and signature."""
    for mod in MODULES:
        cpu = importlib.import_module(f"tinyface.kernels.{mod}")
        gpu = importlib.import_module(f"tinyface.cuda.{mod}")
        for name, fn in vars(cpu).items():
            if (inspect.isfunction(fn) and fn.__module__ == cpu.__name__
                    and not name.startswith("_") and name.endswith(("_forward", "_backward", "_loss"))):
                assert hasattr(gpu, name), f"tinyface.cuda.{mod} lacks {name}"
                assert inspect.signature(getattr(gpu, name)) == inspect.signature(fn), name
