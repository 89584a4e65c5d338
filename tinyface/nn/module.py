"""The layer base class and ``Sequential``.

A layer is a thin wrapper around a forward/backward op pair:

- ``params``:  dict name -> float32 array, in PyTorch's layout (``weight``, ``bias``);
- ``grads``:   dict with the same keys and shapes, *accumulated* by ``backward``;
- ``buffers``: dict of non-trained state (``running_mean``, ``running_var``);
- ``forward(x)`` caches what ``backward(dout)`` needs and returns the output;
- ``backward(dout)`` returns dx and adds the parameter gradients into ``grads``.

Containers hold children in ``_children`` and name their parameters with dotted
prefixes exactly as PyTorch's ``state_dict`` does (``"0.weight"``, ``"3.running_var"``).
"""
import numpy as np

from tinyface.backend import is_device_array
from tinyface.nn import checks

# layer type name -> class, filled by ``register_layer``; used to rebuild a model
# from its JSON architecture record (see ``Module.config`` and ``build_layer``).
LAYER_TYPES = {}


def register_layer(cls):
    """Class decorator: make ``cls`` buildable from ``{"type": cls.__name__, ...}``."""
    LAYER_TYPES[cls.__name__] = cls
    return cls


def build_layer(config):
    """Rebuild a layer (or a whole model) from ``Module.config()`` output."""
    kind = config.get("type")
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r}; known: {sorted(LAYER_TYPES)}")
    return LAYER_TYPES[kind].from_config(config)


class Module:
    """Base class of every layer and model."""

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self._children = {}
        self.training = True
        self.cache = None
        self.out_shape = None      # shape of the last forward's output (see ``keep``)

    # ----------------------------------------------------------------- compute
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    # ------------------------------------------------------------ bookkeeping
    def add_param(self, name, value):
        """Register a trainable array and a zero gradient of the same shape."""
        value = np.ascontiguousarray(value, dtype=np.float32)
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def add_child(self, name, module):
        self._children[str(name)] = module
        return module

    def children(self):
        return list(self._children.values())

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0.0)
        for child in self._children.values():
            child.zero_grad()

    def to(self, device):
        """Move params, grads and buffers to ``"cuda"`` (GPU DeviceTensors) or back to
        ``"cpu"``, in place; returns self. Build the optimizer afterwards
        (``tinyface.cuda.DeviceSGD`` on the GPU). Without a GPU, raises
        ``tinyface.cuda.CudaUnavailableError`` with a one-line reason."""
        from tinyface.cuda.arrays import module_to  # optional GPU import; cuda/ is above nn/
        return module_to(self, device)

    def train(self, mode=True):
        self.training = bool(mode)
        for child in self._children.values():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def _walk(self, attr, prefix=""):
        for key, value in getattr(self, attr).items():
            yield prefix + key, value
        for cname, child in self._children.items():
            yield from child._walk(attr, prefix + cname + ".")

    def named_parameters(self):
        """All trainable arrays as ``(name, array)`` pairs, PyTorch-style names."""
        return list(self._walk("params"))

    def named_grads(self):
        """All gradient arrays as ``(name, array)`` pairs, same names and order."""
        return list(self._walk("grads"))

    def named_buffers(self):
        return list(self._walk("buffers"))

    def parameters_and_grads(self):
        """``(name, param, grad)`` triples: what optimizers step on."""
        return [(n, p, g) for (n, p), (_, g) in zip(self._walk("params"), self._walk("grads"))]

    def num_parameters(self):
        return int(sum(p.size for _, p in self.named_parameters()))

    def state_dict(self):
        """Parameters and buffers by dotted name (arrays are not copied)."""
        return dict(self.named_parameters()) | dict(self.named_buffers())

    def load_state_dict(self, state):
        """Copy arrays into this model in place, checking every name and shape.

        Raises ``ValueError`` naming the first missing/unexpected/mismatched tensor.
        """
        own = self.state_dict()
        for name, target in own.items():
            if name not in state:
                raise ValueError(f"state is missing tensor {name!r} (expected shape {target.shape})")
            src = np.asarray(state[name])
            if src.shape != target.shape:
                raise ValueError(f"tensor {name!r}: model expects shape {target.shape}, "
                                 f"state has shape {src.shape}")
        extra = [k for k in state if k not in own]
        if extra:
            raise ValueError(f"state has unexpected tensor {extra[0]!r} (shape {np.shape(state[extra[0]])})")
        for name, target in own.items():
            target[...] = np.asarray(state[name], dtype=target.dtype)

    # ----------------------------------------------------- architecture record
    def config(self):
        """A JSON-able record from which ``build_layer`` rebuilds this layer."""
        return {"type": type(self).__name__, **self.get_args()}

    def get_args(self):
        """Constructor keyword arguments; layers with arguments override this."""
        return {}

    @classmethod
    def from_config(cls, config):
        args = {k: v for k, v in config.items() if k != "type"}
        return cls(**args)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_args().items())
        return f"{type(self).__name__}({args})"

    # -------------------------------------------------------------- checking
    def check_input(self, x, ndim=None, channels=None, channel_axis=1, where=None, what="input"):
        """Return ``x`` as a C-contiguous float32 array, or raise a clear one-line error.

        Float arrays of another precision are converted. Integer arrays are refused with
        a ``TypeError`` pointing at ``tinyface.data.to_float`` (0..255 pixels cast to float
        compute garbage); complex/object/bool arrays are refused too. A wrong rank or
        channel count raises ``ValueError`` naming the layer (``where``, default
        ``"<Layer>.forward"``), the expected shape and the given shape; so does an empty
        batch (N = 0). A GPU array (always float32, C-contiguous) is checked the same way
        and passed through without a copy. Only shapes and dtypes are read, never data.
        """
        where = where or self._where("forward")
        if not is_device_array(x):
            x = np.asarray(x)
        checks.refuse_integer_dtype(where, x, what)
        if ndim is not None and x.ndim != ndim:
            want = checks.shape_text(ndim, channels, channel_axis)
            raise ValueError(f"{where}: expected input of shape {want}, got {tuple(x.shape)}")
        if channels is not None and x.shape[channel_axis] != channels:
            want = checks.shape_text(x.ndim, channels, channel_axis)
            raise ValueError(f"{where}: expected input of shape {want}, got {tuple(x.shape)}")
        checks.refuse_empty_batch(where, x)
        if is_device_array(x):
            return x
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float32)
        return x

    def check_grad(self, dout):
        """The upstream gradient as float32: a host array converted, a GPU array as is."""
        return dout if is_device_array(dout) else np.asarray(dout, dtype=np.float32)

    def keep(self, out, cache):
        """Store a forward's ``cache`` and its output's shape (which ``check_dout`` holds
        the next backward's ``dout`` to); returns ``out``."""
        self.cache = cache
        self.out_shape = tuple(out.shape)
        return out

    def check_dout(self, dout):
        """The upstream gradient as float32 (see ``check_grad``), after checking that a
        forward came first (``RuntimeError``) and that ``dout`` has the shape of that
        forward's output (``ValueError`` naming the layer and both shapes)."""
        where = self._where("backward")
        if self.cache is None:
            raise RuntimeError(f"{where} called before forward: run forward(x) first "
                               f"(moving a model with .to() also clears its caches)")
        if not is_device_array(dout):
            dout = np.asarray(dout)
        out_shape = getattr(self, "out_shape", None)
        if out_shape is not None:
            checks.dout_matches(where, dout, out_shape)
        return self.check_grad(dout)

    def _where(self, method):
        return f"{type(self).__name__}.{method}"


@register_layer
class Sequential(Module):
    """Apply layers in order; backward runs them in reverse."""

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_child(str(i), layer)

    def __len__(self):
        return len(self._children)

    def __getitem__(self, i):
        return self.children()[i]

    def forward(self, x):
        for layer in self._children.values():
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(list(self._children.values())):
            dout = layer.backward(dout)
        return dout

    def config(self):
        return {"type": "Sequential", "layers": [c.config() for c in self.children()]}

    @classmethod
    def from_config(cls, config):
        return cls(*[build_layer(c) for c in config["layers"]])

    def __repr__(self):
        lines = [f"  ({n}): {c!r}".replace("\n", "\n  ") for n, c in self._children.items()]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
