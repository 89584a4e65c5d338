"""Which tier runs the layers: ``"numba"`` (the default), ``"numpy"`` (the reference) or
``"cuda"`` (numba.cuda kernels on a GPU, ``tinyface.cuda``).

Layers never import a kernel module directly; they call ``ops.<name>``, and ``ops``
looks the name up in the active tier's package. Both tiers export the same functions
with the same signatures::

    from tinyface.backend import ops, set_backend
    out, cache = ops.relu_forward(x)
    set_backend("numpy")          # every layer now runs the NumPy reference

The tiers' caches are opaque and differ: run forward and backward on one tier. The
CUDA tier takes and returns GPU arrays (``tinyface.cuda.DeviceTensor``); move a model's
parameters there first with ``model.to("cuda")``.
"""
import contextlib
import importlib
import sys

BACKENDS = {
    "numba": "tinyface.kernels",    # Numba CPU kernels
    "numpy": "tinyface.reference",  # plain NumPy, slow and obvious
    "cuda": "tinyface.cuda",        # numba.cuda kernels: a GPU, or NUMBA_ENABLE_CUDASIM=1
}

_active = {"name": "numba", "package": None}
_overrides = {}


def set_backend(name):
    """Select the tier every layer uses from now on; returns the previous name."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    if name == "cuda":
        from tinyface.cuda import require_cuda
        require_cuda()        # CudaUnavailableError: one line, why, and how to use the CPU
    previous = _active["name"]
    _active["name"], _active["package"] = name, None
    return previous


def get_backend():
    return _active["name"]


def is_device_array(x):
    """True for a GPU array (``tinyface.cuda.DeviceTensor``, or any object with
    ``__cuda_array_interface__``). Imports nothing: no GPU array exists before
    ``tinyface.cuda.arrays`` has been imported."""
    if hasattr(x, "__cuda_array_interface__"):
        return True
    arrays = sys.modules.get("tinyface.cuda.arrays")
    return arrays is not None and arrays.is_device_array(x)


def place(model):
    """Put ``model``'s parameters, gradients and buffers where the active tier computes:
    on the GPU under ``"cuda"``, in host memory otherwise (``model.to``). A model already
    there is left alone. Returns the model."""
    params = model.named_parameters()
    on_gpu = bool(params) and is_device_array(params[0][1])
    want_gpu = _active["name"] == "cuda"
    if on_gpu != want_gpu:
        model.to("cuda" if want_gpu else "cpu")
    return model


class _Ops:
    """Attribute proxy: ``ops.conv2d_forward`` is the active tier's function."""

    def __getattr__(self, name):
        if name in _overrides:
            return _overrides[name]
        package = _active["package"]
        if package is None:
            package = _active["package"] = importlib.import_module(BACKENDS[_active["name"]])
        return getattr(package, name)


ops = _Ops()


@contextlib.contextmanager
def override_ops(**functions):
    """Temporarily replace single ops, e.g. ``override_ops(linear_forward=my_fn)``.

    Benchmarks use it to show what one slow or badly threaded op costs a network.
    """
    saved = dict(_overrides)
    _overrides.update(functions)
    try:
        yield
    finally:
        _overrides.clear()
        _overrides.update(saved)
