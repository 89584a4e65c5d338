"""The op dispatch: every tier implements every op of ``tinyface.ops_list`` with the
reference's signature, ``Backend`` holds exactly those ops, and ``set_backend`` and
``override_ops`` change what ``ops.<name>`` is."""
import dataclasses
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

from tinyface import backend, kernels, nn, reference
from tinyface.backend import Backend, get_backend, ops, override_ops, set_backend
from tinyface.ops_list import OP_FAMILIES, OP_NAMES


def _parameters(fn):
    return list(inspect.signature(fn).parameters)


def test_the_op_list_has_each_name_once():
    assert len(OP_NAMES) == len(set(OP_NAMES))
    assert all(name.endswith(("_forward", "_backward", "_loss")) for name in OP_NAMES)


def test_backend_fields_are_the_op_list():
    fields = [f.name for f in dataclasses.fields(Backend)]
    assert fields == ["name", *OP_NAMES]


@pytest.mark.parametrize("tier", [reference, kernels], ids=["numpy", "numba"])
def test_cpu_tiers_export_every_op_with_the_reference_signature(tier):
    assert sorted(tier.__all__) == sorted(OP_NAMES)
    for name in OP_NAMES:
        assert _parameters(getattr(tier, name)) == _parameters(getattr(reference, name)), name


@pytest.mark.parametrize("tier", [reference, kernels], ids=["numpy", "numba"])
def test_each_op_lives_in_its_family_module(tier):
    for family, names in OP_FAMILIES.items():
        for name in names:
            module = getattr(tier, name).__module__
            if not (tier is kernels and name.startswith("flatten_")):   # the reference's
                assert module == f"{tier.__name__}.{family}", (name, module)


def test_the_cuda_tier_exports_every_op_with_the_reference_signature():
    """In a child process under the simulator (numba reads NUMBA_ENABLE_CUDASIM once, at
    import): the CUDA op table, the package attributes and the signatures."""
    code = (
        "import inspect\n"
        "from tinyface import cuda, reference\n"
        "from tinyface.ops_list import OP_NAMES\n"
        "table = cuda.cuda_ops()\n"
        "assert sorted(table) == sorted(OP_NAMES), sorted(set(table) ^ set(OP_NAMES))\n"
        "par = lambda f: list(inspect.signature(f).parameters)\n"
        "for n in OP_NAMES:\n"
        "    assert getattr(cuda, n) is table[n], n\n"
        "    assert par(table[n]) == par(getattr(reference, n)), n\n"
        "for n in cuda.HELPERS:\n"
        "    getattr(cuda, n)\n"
        "print('ok')\n")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)
    if proc.returncode and "numba.cuda" in proc.stderr and "ModuleNotFoundError" in proc.stderr:
        pytest.skip("numba's CUDA target is not installed")
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_importing_the_cuda_package_imports_no_numba():
    """``simulate_unless_gpu`` must run before numba is imported."""
    code = "import sys, tinyface.cuda\nprint('numba' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


def test_set_backend_switches_every_op():
    previous = set_backend("numpy")
    try:
        assert get_backend() == "numpy" and ops.name == "numpy"
        for name in OP_NAMES:
            assert getattr(ops, name) is getattr(reference, name), name
        assert set_backend("numba") == "numpy"
        for name in OP_NAMES:
            assert getattr(ops, name) is getattr(kernels, name), name
    finally:
        set_backend(previous)


def test_tiers_are_built_once():
    assert backend.tier("numpy") is backend.tier("numpy")
    assert backend.tier("numba").conv2d_forward is kernels.conv2d_forward


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend"):
        set_backend("tpu")
    assert get_backend() in backend.BACKENDS


def test_override_holds_across_set_backend_and_is_undone():
    def fake(x):
        return x, None

    previous = get_backend()
    with override_ops(relu_forward=fake):
        assert ops.relu_forward is fake
        set_backend("numpy")
        assert ops.relu_forward is fake and ops.relu_backward is reference.relu_backward
        set_backend(previous)
    assert ops.relu_forward is backend.tier(previous).relu_forward
    with pytest.raises(TypeError, match="not ops"):
        with override_ops(no_such_op=fake):
            pass


def test_layers_run_on_the_selected_tier():
    """A layer calls ``ops``: the reference and the kernels give the same ReLU."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    layer = nn.ReLU()
    out_numba = layer.forward(x)
    previous = set_backend("numpy")
    try:
        out_numpy = layer.forward(x)
    finally:
        set_backend(previous)
    np.testing.assert_array_equal(out_numba, out_numpy)
