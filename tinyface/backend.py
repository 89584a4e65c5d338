"""Which tier runs the layers: ``"numba"`` (the default), ``"numpy"`` (the reference) or
``"cuda"`` (numba.cuda kernels on a GPU, ``tinyface.cuda``).

Layers never import a kernel module directly; they call ``ops.<name>``, and ``ops`` is a
``Backend``: one plain attribute per op of ``tinyface.ops_list.OP_NAMES``, holding the
active tier's function. Every tier exports the same functions with the same
signatures::

    from tinyface.backend import ops, set_backend
    out, cache = ops.relu_forward(x)          # tinyface.kernels.activation.relu_forward
    set_backend("numpy")          # every layer now runs the NumPy reference

Where each function comes from: ``tinyface/kernels/__init__.py`` (numba),
``tinyface/reference/__init__.py`` (numpy) and ``tinyface.cuda.cuda_ops`` (cuda).

The tiers' caches are opaque and differ: run forward and backward on one tier. The
CUDA tier takes and returns GPU arrays (``tinyface.cuda.DeviceTensor``); move a model's
parameters there first with ``model.to("cuda")``.
"""
import contextlib
import dataclasses
import sys
from collections.abc import Callable

from tinyface import kernels, reference
from tinyface.ops_list import OP_NAMES

BACKENDS = {
    "numba": "tinyface.kernels",    # Numba CPU kernels
    "numpy": "tinyface.reference",  # plain NumPy, slow and obvious
    "cuda": "tinyface.cuda",        # numba.cuda kernels: a GPU, or NUMBA_ENABLE_CUDASIM=1
}


@dataclasses.dataclass(eq=False)
class Backend:
    """One tier's ops as plain attributes: the fields are ``OP_NAMES``, family by family.

    ``tier(name)`` builds one per tier, once; ``ops`` is the active one, whose attributes
    ``set_backend`` and ``override_ops`` replace (the layers hold ``ops`` itself).
    Forward ops return ``(out, cache)``, backward ops take ``(dout, cache)``, losses
    return ``(loss, grad)``.
    """

    name: str
    # conv
    conv2d_forward: Callable
    conv2d_backward: Callable
    # linear
    linear_forward: Callable
    linear_backward: Callable
    # batchnorm
    batchnorm_forward: Callable
    batchnorm_backward: Callable
    # activation
    relu_forward: Callable
    relu_backward: Callable
    prelu_forward: Callable
    prelu_backward: Callable
    # pool
    maxpool2d_forward: Callable
    maxpool2d_backward: Callable
    avgpool2d_forward: Callable
    avgpool2d_backward: Callable
    global_avgpool_forward: Callable
    global_avgpool_backward: Callable
    flatten_forward: Callable
    flatten_backward: Callable
    # dropout
    dropout_forward: Callable
    dropout_backward: Callable
    # losses
    softmax_cross_entropy_loss: Callable
    distillation_loss: Callable
    feature_regression_loss: Callable
    # normalize
    l2_normalize_forward: Callable
    l2_normalize_backward: Callable
    # affine
    channel_affine_forward: Callable
    channel_affine_backward: Callable
    # pad
    zero_pad_forward: Callable
    zero_pad_backward: Callable

    @classmethod
    def from_table(cls, name, table):
        """The backend named ``name`` of ``table``, a mapping ``{op name: function}`` that
        holds every name of ``OP_NAMES`` (a tier package's ``vars``, or ``cuda_ops()``)."""
        missing = [op for op in OP_NAMES if op not in table]
        if missing:
            raise TypeError(f"tier {name!r} lacks the ops {missing}")
        return cls(name, **{op: table[op] for op in OP_NAMES})


def _cuda():
    """The ``tinyface.cuda`` package, imported on demand."""
    from tinyface import cuda     # optional GPU import: the GPU tier, a floor above this one
    return cuda


def _tier_table(name):
    """``{op name: function}`` of the tier ``name``."""
    if name == "numba":
        return vars(kernels)
    if name == "numpy":
        return vars(reference)
    return _cuda().cuda_ops()       # imports the CUDA kernel modules (numba.cuda)


_TIERS = {}


def _check_name(name):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")


def tier(name):
    """The ``Backend`` of tier ``name`` (``"numba"``, ``"numpy"`` or ``"cuda"``), built once."""
    _check_name(name)
    if name not in _TIERS:
        _TIERS[name] = Backend.from_table(name, _tier_table(name))
    return _TIERS[name]


# the active backend: the layers call ops.<name>
ops = dataclasses.replace(tier("numba"))
_overrides = {}


def _install(name):
    """Make ``ops`` tier ``name``'s functions, with the ops ``override_ops`` replaced."""
    active = tier(name)
    ops.name = name
    for op in OP_NAMES:
        setattr(ops, op, _overrides.get(op, getattr(active, op)))


def set_backend(name):
    """Select the tier every layer uses from now on; returns the previous name."""
    _check_name(name)
    if name == "cuda":
        _cuda().require_cuda()    # CudaUnavailableError: one line, why, and how to use the CPU
    previous = ops.name
    _install(name)
    return previous


def get_backend():
    return ops.name


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
    want_gpu = ops.name == "cuda"
    if on_gpu != want_gpu:
        model.to("cuda" if want_gpu else "cpu")
    return model


@contextlib.contextmanager
def override_ops(**functions):
    """Temporarily replace single ops, e.g. ``override_ops(linear_forward=my_fn)``; the
    replacements hold across ``set_backend`` until the block ends.

    Benchmarks use it to show what one slow or badly threaded op costs a network.
    """
    unknown = sorted(set(functions) - set(OP_NAMES))
    if unknown:
        raise TypeError(f"override_ops: {unknown} are not ops (see tinyface.ops_list.OP_NAMES)")
    saved = dict(_overrides)
    _overrides.update(functions)
    _install(ops.name)
    try:
        yield
    finally:
        _overrides.clear()
        _overrides.update(saved)
        _install(ops.name)
