"""The kernels are plain Python functions: with NUMBA_DISABLE_JIT=1 they still run and agree."""
import os
import subprocess
import sys

SCRIPT = r"""
import numpy as np
from tinyface import kernels, reference
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 2, 5, 4)); w = rng.standard_normal((3, 2, 3, 2)); b = rng.standard_normal(3)
o1, c1 = kernels.conv2d_forward(x, w, b, 2, 1); o2, c2 = reference.conv2d_forward(x, w, b, 2, 1)
assert np.allclose(o1, o2)
g = rng.standard_normal(o1.shape)
for a, r in zip(kernels.conv2d_backward(g, c1), reference.conv2d_backward(g, c2)):
    assert np.allclose(a, r)
x = rng.standard_normal((5, 3)); w = rng.standard_normal((4, 3))
assert np.allclose(kernels.linear_forward(x, w)[0], reference.linear_forward(x, w)[0])
import numba
print("ok", numba.config.DISABLE_JIT)
"""


def test_kernels_run_as_plain_python():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok 1"
