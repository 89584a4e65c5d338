"""The op checks in a child process under numba's CUDA simulator (what the tests run)."""
import json
import os
import subprocess
import sys
import tempfile
import time


def run_in_simulator(what="kernels", timeout=600, extra_args=()):
    """Run ``python -m tinyface.checks.ops what`` under numba's CUDA simulator in a
    child process and return
    its JSON result (plus ``returncode``, ``stderr`` and ``seconds``).

    A child process, because ``NUMBA_ENABLE_CUDASIM`` is read once, when numba is first
    imported: the caller (a pytest session) has numba imported normally.
    """
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "result.json")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "tinyface.checks.ops", what,
                               "--json", path, *extra_args], env=env, capture_output=True,
                              text=True, timeout=timeout)
        result = {}
        if os.path.exists(path):
            with open(path) as f:
                result = json.load(f)
    result.update(returncode=proc.returncode, stderr=proc.stderr,
                  seconds=time.perf_counter() - t0)
    return result
