"""Every CUDA kernel compiles to PTX for sm_90 (H100) with ``numba.cuda.compile_ptx``,
with the argument types the ops launch it with (``PTX_SIGNATURES`` in each module of
``tinyface.cuda``; ``tests/test_cuda_kernels.py`` checks that the launches use exactly
these). Needs the CUDA toolkit (NVVM and libdevice; numba-cuda also wants NVRTC), not
a GPU; skips, saying why, without it.
"""
import importlib

import pytest

import tinyface.cuda as tc

SIGNATURES = tc.ptx_signatures()


def _no_ptx_reason():
    """None when numba.cuda can compile PTX here, else why not (one line)."""
    if tc.simulator_enabled():
        return "NUMBA_ENABLE_CUDASIM=1: the simulator cannot compile PTX"
    try:
        from numba import cuda          # optional GPU import: numba may lack its CUDA target

        def probe(a):
            a[0] = 1.0
        cuda.compile_ptx(probe, "void(float32[::1])", cc=(9, 0))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return (f"numba.cuda cannot compile PTX here, the CUDA toolkit is missing or "
                f"incomplete ({type(exc).__name__}: {first}); install it or set CUDA_HOME")
    return None


NO_PTX = _no_ptx_reason()


@pytest.mark.parametrize("module,name,kernel,sig", SIGNATURES,
                         ids=[f"{m}.{n}[{i}]" for i, (m, n, _, _) in enumerate(SIGNATURES)])
def test_kernel_compiles_to_sm90_ptx(module, name, kernel, sig):
    if NO_PTX:
        pytest.skip(NO_PTX)
    from numba import cuda              # optional GPU import: NO_PTX says it imports
    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
    assert ".target sm_90" in ptx
    assert ".entry" in ptx


def test_every_kernel_has_a_ptx_signature():
    """No kernel in tinyface.cuda is left out of the PTX check."""
    if tc.simulator_enabled():
        pytest.skip("under the simulator kernels are not CUDA dispatchers")
    from numba.cuda.dispatcher import CUDADispatcher   # optional GPU import: not simulated
    missing = []
    for mod in tc.KERNEL_MODULES:
        module = importlib.import_module(f"tinyface.cuda.{mod}")
        for attr, obj in vars(module).items():
            if (isinstance(obj, CUDADispatcher) and obj.py_func.__module__ == module.__name__
                    and not obj.targetoptions.get("device")):
                if not module.PTX_SIGNATURES.get(attr):
                    missing.append(f"{mod}.{attr}")
    assert not missing, f"kernels without PTX_SIGNATURES: {missing}"
