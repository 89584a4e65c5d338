"""Host <-> device: ``DeviceTensor``, explicit copies, and the guard on implicit ones.

A ``DeviceTensor`` is a float32 array in GPU memory: a thin wrapper around a numba
device array (``.data``) with the few array methods the layers and optimizers use
(``shape``, ``dtype``, ``reshape``, ``fill``, ``+=``, ``+``, ``* scalar``, ``[...] = host``), each a
kernel launch, never a trip through host memory. It exposes
``__cuda_array_interface__``, so any CUDA library can read it.

Copies between host and device are of two kinds:

- explicit: ``to_device(x)``, ``to_host(t)``, ``t.copy_to_host()``, ``module_to(model,
  "cuda")``. Use them for the data (one batch in, one loss out);
- implicit: a host array handed to a CUDA op (copied up), or a ``DeviceTensor`` handed
  to NumPy (``np.asarray(t)``, copied down). They work, and ``transfer_counts()`` counts
  them; inside ``with strict_transfers():`` they raise ``HostDeviceMismatch`` instead,
  naming the argument and the explicit call to use. A training step on a model moved to
  the GPU makes none (``tests/test_cuda_step.py`` checks it).

Device dtypes: activations, parameters and gradients are float32; labels int64;
batch-norm statistics float64. A float64 host array is cast to float32 on the way up.
"""
import contextlib

import numpy as np
from numba import cuda

from tinyface.cuda import require_cuda
from tinyface.cuda.elementwise import (add_kernel, axpy_kernel, cast_kernel,
                                       count_nonfinite_kernel, fill_kernel, launch_1d,
                                       scale_kernel)
from tinyface.cuda.launch import SIMULATOR

if SIMULATOR:    # the simulator's device array type, which cuda.is_cuda_array does not know
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

_COUNTS = {"to_device": 0, "to_host": 0}
_STRICT = [False]


class HostDeviceMismatch(TypeError):
    """A host array met device code (or the reverse) inside ``strict_transfers()``."""


def transfer_counts():
    """Implicit copies so far: ``{"to_device": n, "to_host": m}`` (a copy of the counters)."""
    return dict(_COUNTS)


def reset_transfer_counts():
    _COUNTS["to_device"] = _COUNTS["to_host"] = 0


@contextlib.contextmanager
def strict_transfers():
    """Inside this block an implicit host <-> device copy raises ``HostDeviceMismatch``."""
    saved = _STRICT[0]
    _STRICT[0] = True
    try:
        yield
    finally:
        _STRICT[0] = saved


def _implicit(direction, what):
    if _STRICT[0]:
        if direction == "to_device":
            raise HostDeviceMismatch(
                f"{what} is a host (NumPy) array but this op runs on the GPU; copy it with "
                f"tinyface.cuda.to_device(x), or move the model with module_to(model, 'cuda')")
        raise HostDeviceMismatch(
            f"{what}: a GPU DeviceTensor was handed to host (NumPy) code; copy it with "
            f"t.copy_to_host(), or run the layer on the GPU (set_backend('cuda'))")
    _COUNTS[direction] += 1


# --------------------------------------------------------------------- DeviceTensor
class DeviceTensor:
    """A float32 (or int64/float64) array in GPU memory, C-contiguous.

    ``data`` is the numba device array. Arithmetic is limited to what layers and
    optimizers need: ``t += u``, ``t + u`` (elementwise, u a DeviceTensor or host
    array), ``t.fill(v)``, ``t[...] = host_array``; views by ``reshape`` and ``t[i]``.
    """

    __slots__ = ("data",)
    __array_priority__ = 1000            # ``host + t`` defers to ``t.__radd__``

    def __init__(self, data):
        self.data = data

    # ------------------------------------------------------------ array protocol
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return np.dtype(self.data.dtype)

    @property
    def ndim(self):
        return len(self.data.shape)

    @property
    def size(self):
        return int(self.data.size)

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    @property
    def __cuda_array_interface__(self):
        return self.data.__cuda_array_interface__

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        where = "simulator" if SIMULATOR else "cuda"
        return f"DeviceTensor(shape={self.shape}, dtype={self.dtype}, device={where})"

    def reshape(self, *shape):
        """A view of another shape (no copy). ``-1`` is allowed, as in NumPy."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = tuple(int(s) for s in shape)
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1])) or 1
            shape = tuple(self.size // known if s == -1 else s for s in shape)
        if int(np.prod(shape)) != self.size:
            raise ValueError(f"cannot reshape a DeviceTensor of shape {self.shape} into {shape}")
        return DeviceTensor(self.data.reshape(shape))

    def ravel(self):
        return self.reshape(self.size)

    def __getitem__(self, key):
        return DeviceTensor(self.data[key])

    def __setitem__(self, key, value):
        """``t[...] = array``: copy a whole array in (host or device), same shape."""
        if not (key is Ellipsis or key == slice(None)):
            raise TypeError("DeviceTensor supports only whole-array assignment, t[...] = value")
        if isinstance(value, DeviceTensor):
            if value.shape != self.shape:
                raise ValueError(f"shape {value.shape} does not match {self.shape}")
            self.data.copy_to_device(value.data)
            return
        host = np.ascontiguousarray(value, dtype=self.dtype)
        if host.shape != self.shape:
            raise ValueError(f"shape {host.shape} does not match {self.shape}")
        self.data.copy_to_device(host)

    # -------------------------------------------------------------- host copies
    def copy_to_host(self):
        """An explicit copy into a new NumPy array."""
        return self.data.copy_to_host()

    numpy = copy_to_host

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)``: an implicit copy to the host (counted; refused when strict)."""
        _implicit("to_host", f"DeviceTensor{self.shape}")
        host = self.data.copy_to_host()
        return host if dtype is None else host.astype(dtype, copy=False)

    # --------------------------------------------------------------- arithmetic
    def copy(self):
        out = empty(self.shape, self.dtype)
        out.data.copy_to_device(self.data)
        return out

    def fill(self, value):
        launch_1d(fill_kernel, self.size, self.data.reshape(self.size), self.dtype.type(value))
        return self

    def __iadd__(self, other):
        other = as_device(other, "the right-hand side of +=", dtype=self.dtype)
        if other.shape != self.shape:
            raise ValueError(f"+=: shapes {self.shape} and {other.shape} differ")
        axpy(1.0, other, self)
        return self

    def __add__(self, other):
        other = as_device(other, "the right-hand side of +", dtype=self.dtype)
        if other.shape != self.shape:
            raise ValueError(f"+: shapes {self.shape} and {other.shape} differ")
        out = empty(self.shape, self.dtype)
        launch_1d(add_kernel, self.size, self.data.reshape(self.size),
                   other.data.reshape(self.size), out.data.reshape(self.size))
        return out

    __radd__ = __add__

    def __mul__(self, a):
        """``t * a`` for a Python or NumPy scalar ``a``: a new DeviceTensor (elementwise
        products of two arrays are not supported)."""
        if not np.isscalar(a) or isinstance(a, (bool, np.bool_, str)):
            return NotImplemented
        out = empty(self.shape, self.dtype)
        launch_1d(scale_kernel, self.size, self.dtype.type(a), self.data.reshape(self.size),
                   out.data.reshape(self.size))
        return out

    __rmul__ = __mul__

    def all_finite(self):
        """True when no element is NaN or inf (counted on the GPU; one int comes back)."""
        count = cuda.to_device(np.zeros(1, dtype=np.int64))
        launch_1d(count_nonfinite_kernel, self.size, self.data.reshape(self.size), count)
        return int(count.copy_to_host()[0]) == 0


# ------------------------------------------------------------------------ helpers
def _is_raw_device_array(x):
    """A numba device array (the simulator's FakeCUDAArray too) or another CUDA array."""
    if SIMULATOR:
        return isinstance(x, FakeCUDAArray)
    return cuda.is_cuda_array(x)


def _wrap_raw(x):
    if SIMULATOR or isinstance(x, cuda.devicearray.DeviceNDArray):
        return DeviceTensor(x)
    return DeviceTensor(cuda.as_cuda_array(x))          # CuPy, PyTorch, ...: no copy


def is_device_array(x):
    """True for a ``DeviceTensor`` or any CUDA array (numba, CuPy, ...)."""
    return isinstance(x, DeviceTensor) or _is_raw_device_array(x)


def empty(shape, dtype=np.float32):
    """An uninitialised DeviceTensor."""
    return DeviceTensor(cuda.device_array(tuple(int(s) for s in shape), dtype=np.dtype(dtype)))


def zeros(shape, dtype=np.float32):
    return empty(shape, dtype).fill(0)


def to_device(x, dtype=np.float32):
    """An explicit copy of a host array to the GPU (a DeviceTensor passes through).

    x: any array-like; floats are cast to ``dtype`` (float32 by default).
    """
    if isinstance(x, DeviceTensor):
        return x
    if _is_raw_device_array(x):
        return _wrap_raw(x)
    host = np.ascontiguousarray(x, dtype=dtype)
    return DeviceTensor(cuda.to_device(host))


def to_host(x):
    """An explicit copy to a NumPy array (a host array passes through)."""
    if isinstance(x, DeviceTensor):
        return x.copy_to_host()
    if _is_raw_device_array(x):
        return _wrap_raw(x).copy_to_host()
    return np.asarray(x)


def as_device(x, what, dtype=np.float32):
    """The device array an op computes on.

    A DeviceTensor passes through (its dtype must be ``dtype``); another CUDA array is
    wrapped without a copy; a host array is copied up (an implicit transfer: counted,
    refused inside ``strict_transfers()``). ``what`` names the argument in messages.
    """
    dtype = np.dtype(dtype)
    if not isinstance(x, DeviceTensor) and _is_raw_device_array(x):
        x = _wrap_raw(x)
    if isinstance(x, DeviceTensor):
        if x.dtype != dtype:
            raise TypeError(f"{what}: expected a {dtype} device array, got {x.dtype}; the CUDA "
                            f"tier keeps {dtype} on the GPU (convert on the host first)")
        if not x.data.is_c_contiguous():
            raise ValueError(f"{what}: the device array must be C-contiguous")
        return x
    host = np.asarray(x)
    if host.dtype.kind not in "fiub":
        raise TypeError(f"{what}: expected a numeric array, got dtype {host.dtype}")
    _implicit("to_device", what)
    return DeviceTensor(cuda.to_device(np.ascontiguousarray(host, dtype=dtype)))


def axpy(a, x, y):
    """y += a * x, in place (DeviceTensors of one shape)."""
    launch_1d(axpy_kernel, y.size, y.dtype.type(a), x.data.reshape(x.size),
               y.data.reshape(y.size))
    return y


def cast(src, dtype=np.float32):
    """A new DeviceTensor: ``src`` converted to ``dtype`` on the GPU."""
    out = empty(src.shape, dtype)
    launch_1d(cast_kernel, src.size, src.data.reshape(src.size), out.data.reshape(src.size))
    return out


# ------------------------------------------------------------------ scratch buffers
_SCRATCH = {}
SCRATCH_LIMIT = 32          # distinct (name, shape, dtype) buffers kept


def scratch(name, shape, dtype=np.float32):
    """A reusable device work buffer (e.g. conv's im2col columns), not zeroed.

    Safe to reuse across ops because every kernel runs on the default stream, in order:
    a later op's kernels start only after an earlier op's kernels finished with it.
    Never return one from an op, and never cache one for a backward pass.
    """
    key = (name, tuple(int(s) for s in shape), np.dtype(dtype).str)
    buf = _SCRATCH.get(key)
    if buf is None:
        if len(_SCRATCH) >= SCRATCH_LIMIT:
            _SCRATCH.clear()
        buf = _SCRATCH[key] = cuda.device_array(key[1], dtype=np.dtype(dtype))
    return buf


def clear_scratch():
    """Free the work buffers (they are re-made on demand)."""
    _SCRATCH.clear()


# ------------------------------------------------------------------ whole models
def module_to(module, device):
    """Move a layer or model's params, grads and buffers to ``"cuda"`` or ``"cpu"``.

    The arrays are replaced in each layer's ``params``/``grads``/``buffers`` dicts (in
    place in the dicts, so the model object stays the same); layer caches are dropped.
    Build the optimizer after moving (``DeviceSGD`` on the GPU, ``SGD`` on the CPU).
    Moving to "cuda" raises ``CudaUnavailableError`` (one line) without a GPU or the
    simulator. Returns the module.
    """
    device = str(device).lower()
    if device in ("gpu", "cuda:0"):
        device = "cuda"
    if device not in ("cuda", "cpu"):
        raise ValueError(f"device must be 'cuda' or 'cpu', got {device!r}")
    if device == "cuda":
        require_cuda()
    move = to_device if device == "cuda" else to_host

    def visit(m):
        for attr in ("params", "grads", "buffers"):
            table = getattr(m, attr, None)
            if table:
                for key, value in list(table.items()):
                    moved = move(value)
                    if device == "cpu":
                        moved = np.ascontiguousarray(moved, dtype=np.float32)
                    table[key] = moved
        if hasattr(m, "cache"):
            m.cache = None
        for child in getattr(m, "_children", {}).values():
            visit(child)

    visit(module)
    return module
