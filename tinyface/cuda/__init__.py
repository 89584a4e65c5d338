"""numba.cuda tier: every op as a CUDA kernel, the data kept on the GPU.

Same op names and signatures as ``tinyface.kernels`` (the Numba CPU tier) and
``tinyface.reference`` (NumPy): ``set_backend("cuda")`` makes ``tinyface.backend.ops``
hold the functions ``cuda_ops()`` returns. The ops take and return ``DeviceTensor`` objects (float32
arrays in GPU memory, see ``tinyface.cuda.arrays``); a host array handed to an op is
copied to the GPU, and the copy is counted (``transfer_counts()``) or, inside
``strict_transfers()``, refused with a message saying how to move it on purpose.

    from tinyface import cuda as tcuda
    ok, reason = tcuda.cuda_available()         # (True, "...") or (False, "why not")
    model = tcuda.module_to(model, "cuda")      # params, grads, buffers -> GPU, in place
    opt = tcuda.DeviceSGD(model.parameters_and_grads(), lr=0.1, momentum=0.9)

Modules, one per op family, each a CPU-reference-first file in the style of llm.c's
``dev/cuda``: ``gemm`` (the shared-memory tiled matrix product under conv and linear),
``conv``, ``linear``, ``batchnorm``, ``activation``, ``pool``, ``dropout``, ``losses``,
``affine`` (per-channel scale and shift), ``pad`` (zero padding), ``optim`` (device SGD),
``reduce`` (the deterministic two-pass per-channel sums), ``arrays`` (host <-> device),
``launch`` (block sizes, simulator switch), and the distillation methods' losses with
their gradients: ``kd_maps`` (SP, FSIM, AT), ``kd_rkd`` (RKD), ``kd_relations`` (PKT,
CRD), ``kd_logits`` (DKD), ``kd_rows`` (the batch rows a term covers). The self-checks
(CUDA against CPU, at tiny shapes under the simulator or real shapes on a GPU) live
outside the tier, in ``tinyface.checks``.

Importing this package is cheap: it imports neither numba.cuda nor any kernel until an
op or helper is first used (``cuda_ops()``, ``tinyface.cuda.relu_forward``,
``tinyface.cuda.to_device``, ...). Without a GPU, ``NUMBA_ENABLE_CUDASIM=1`` (set before
numba is imported) runs every kernel in numba's simulator: one Python thread per CUDA
thread, so only tiny shapes (the tests) are practical.
"""
import ctypes.util
import functools
import os
import sys
import types

import numpy as np

from tinyface.ops_list import OP_FAMILIES, OP_NAMES


def _numpy_compat():
    """Give NumPy back ``np.row_stack`` where it is gone, before numba.cuda compiles anything.

    The out-of-tree ``numba-cuda`` package (0.30 and older, seen on an H100 machine with
    NumPy 2.5) registers an overload for ``np.row_stack`` when it builds its typing
    registries, at the first kernel compile; NumPy 2.5 removed that name (deprecated
    since 2.0 as an alias of ``np.vstack``), so every compile failed with an
    AttributeError. The alias is the function it always was, set only where missing.
    """
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack


_numpy_compat()

# the kernel modules the PTX test compiles (each has a ``PTX_SIGNATURES`` dict)
KERNEL_MODULES = ["gemm", "reduce", "elementwise", "conv", "linear", "batchnorm", "activation",
                  "pool", "dropout", "losses", "normalize", "affine", "pad", "optim",
                  "kd_rows", "kd_maps", "kd_rkd", "kd_relations", "kd_logits"]

HOW_TO_CPU = ("run on the CPU with --device cpu (tinyface.backend.set_backend('numba')), or set "
              "NUMBA_ENABLE_CUDASIM=1 before starting Python to simulate the GPU "
              "(slow: tiny shapes only)")


class CudaUnavailableError(RuntimeError):
    """No GPU (and no simulator): the message is one line saying what to do instead."""


def simulator_enabled():
    """True when numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1``).

    numba reads the variable once, when it is first imported; this reports what numba
    uses (or, before numba is imported, what it will use).
    """
    if "numba" in sys.modules:           # read numba's setting without importing numba
        return bool(sys.modules["numba"].config.ENABLE_CUDASIM)
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def simulate_unless_gpu():
    """Call before numba is imported: where no NVIDIA driver is installed, turn numba's
    CUDA simulator on (``NUMBA_ENABLE_CUDASIM=1``) so that the CUDA tier still runs
    (slowly, for tiny shapes). Returns ``"gpu"`` or ``"simulator"``: what numba will use.
    Once numba is imported the choice is made; this then only reports it."""
    if "numba" in sys.modules or simulator_enabled():
        return "simulator" if simulator_enabled() else "gpu"
    if ctypes.util.find_library("cuda") is None and not os.path.exists("/dev/nvidiactl"):
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        return "simulator"
    return "gpu"


def cuda_available():
    """``(ok, reason)``: can the CUDA tier run here, and a one-line reason either way.

    ``ok`` is True with a real GPU (the reason names it) or under the simulator.
    Never raises and never prints.
    """
    try:
        from numba import cuda       # optional GPU import: numba's CUDA target may be missing
    except Exception as exc:  # numba without its CUDA target
        return False, (f"numba.cuda cannot be imported ({type(exc).__name__}: {exc}); "
                       f"install the GPU extra with pip install -e '.[cuda]'")
    if simulator_enabled():
        return True, ("numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1): every GPU thread runs "
                      "as a Python thread, for tests on tiny shapes, not for speed")
    try:
        if not cuda.is_available():
            return False, f"no CUDA GPU found ({_driver_error(cuda)})"
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        cc = dev.compute_capability
        return True, f"{name} (compute capability {cc[0]}.{cc[1]})"
    except Exception as exc:
        return False, f"the CUDA driver failed: {_first_line(exc)}"


def _first_line(exc):
    """The first sentence of an exception's message, on one line (numba's driver errors
    span several lines)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text.split(". ")[0].rstrip(":. ") or type(exc).__name__


def _driver_error(cuda):
    """numba's own reason for having no GPU, on one line."""
    try:
        cuda.current_context()
    except Exception as exc:
        return _first_line(exc)
    return "numba.cuda.is_available() is False"


def require_cuda():
    """Raise ``CudaUnavailableError`` (one line: why, and how to use the CPU) unless the
    CUDA tier can run; return the availability reason otherwise."""
    ok, reason = cuda_available()
    if not ok:
        raise CudaUnavailableError(f"CUDA is not available: {reason}; {HOW_TO_CPU}")
    return reason


@functools.cache
def submodules():
    """The tier's submodules, imported on the first call: a namespace ``submodules().conv``,
    ``submodules().arrays``, ... (every name of ``KERNEL_MODULES``, and ``arrays``).

    Lazy (the optional GPU import): every kernel module imports numba.cuda, which must
    come after the simulator switch (``simulate_unless_gpu``) and which a CPU-only
    install may lack; importing ``tinyface.cuda`` itself stays cheap and GPU-free.
    """
    from tinyface.cuda import (activation, affine, arrays, batchnorm, conv,  # optional GPU import
                               dropout, elementwise, gemm, kd_logits, kd_maps, kd_relations,
                               kd_rkd, kd_rows, launch, linear, losses, normalize, optim, pad,
                               pool, reduce)
    return types.SimpleNamespace(
        gemm=gemm, reduce=reduce, elementwise=elementwise, conv=conv, linear=linear,
        batchnorm=batchnorm, activation=activation, pool=pool, dropout=dropout, losses=losses,
        normalize=normalize, affine=affine, pad=pad, optim=optim, arrays=arrays, launch=launch,
        kd_rows=kd_rows, kd_maps=kd_maps, kd_rkd=kd_rkd, kd_relations=kd_relations,
        kd_logits=kd_logits)


@functools.cache
def cuda_ops():
    """The CUDA tier's ops, ``{name: function}`` for every name of
    ``tinyface.ops_list.OP_NAMES``: each family's ops from the module of the same name
    (``OP_FAMILIES``; imports the kernel modules: see ``submodules``)."""
    m = submodules()
    return {op: getattr(getattr(m, family), op)
            for family, names in OP_FAMILIES.items() for op in names}


# the GPU helpers ``tinyface.cuda.<name>`` reaches, and the submodule each lives in
HELPERS = {
    "DeviceTensor": "arrays", "HostDeviceMismatch": "arrays", "to_device": "arrays",
    "to_host": "arrays", "as_device": "arrays", "empty": "arrays", "zeros": "arrays",
    "is_device_array": "arrays", "module_to": "arrays", "transfer_counts": "arrays",
    "reset_transfer_counts": "arrays", "strict_transfers": "arrays", "clear_scratch": "arrays",
    "DeviceSGD": "optim", "DeviceAdam": "optim", "DeviceAdamW": "optim",
    "DEVICE_OPTIMIZERS": "optim", "device_optimizer": "optim",
    # the tiled GEMM, its launch sizes and the CUDA-event timer
    "batched_matmul": "gemm", "TILE": "launch", "TPB": "launch", "blocks": "launch",
    "gpu_ms": "launch",
    # the distillation methods' losses (same names and arguments as the NumPy references
    # in tinyface.reference.kd_*), and the gather/scatter of the batch rows they cover
    "sp_loss": "kd_maps", "fsim_loss": "kd_maps", "attention_rows_loss": "kd_maps",
    "rkd_distance_loss": "kd_rkd", "rkd_angle_loss": "kd_rkd", "rkd_loss": "kd_rkd",
    "pkt_loss": "kd_relations", "crd_loss": "kd_relations", "dkd_loss": "kd_logits",
    "gather_rows": "kd_rows", "scatter_rows": "kd_rows",
}


def ptx_signatures():
    """Every kernel and the signatures it is launched with: ``[(module, name, dispatcher,
    signature string), ...]``, what ``tests/test_cuda_ptx.py`` compiles for sm_90."""
    out = []
    for mod in KERNEL_MODULES:
        module = getattr(submodules(), mod)
        for name, sigs in module.PTX_SIGNATURES.items():
            for sig in sigs:
                out.append((mod, name, getattr(module, name), sig))
    return out


def __getattr__(name):
    """``tinyface.cuda.<op>`` (every name of ``OP_NAMES``) and ``tinyface.cuda.<helper>``
    (every name of ``HELPERS``), looked up on first use so that importing the package
    imports no GPU code (see ``submodules``)."""
    if name in OP_NAMES:
        return cuda_ops()[name]
    if name in HELPERS:
        return getattr(getattr(submodules(), HELPERS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(OP_NAMES) | set(HELPERS))
