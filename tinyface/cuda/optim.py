"""SGD on the GPU: ``DeviceSGD``, ``tinyface.optim.SGD``'s update as one fused kernel.

The parameters, gradients and momentum buffers are DeviceTensors; a step launches one
kernel per parameter tensor and copies nothing to the host. The update is
``torch.optim.SGD``'s, step for step (``p``: parameter, ``g``: gradient, ``b``:
momentum buffer)::

    d = g + weight_decay * p
    b = d                                       on the first step (no dampening)
    b = momentum * b + (1 - dampening) * d      afterwards
    d = d + momentum * b   (Nesterov)   or   d = b
    p = p - lr * d

Same constructor, ``step``/``zero_grad``, ``lr`` property (schedules set it between
steps) and ``state_dict``/``load_state_dict`` as the CPU optimizer; the state dict holds
host copies of the momentum buffers, so checkpoints are interchangeable between the two.

Design note on Adam/AdamW: they would follow the same pattern (one fused kernel per
tensor holding m and v on the device, the bias corrections computed on the host per
step and passed as scalars); only SGD is implemented here.
"""
import numpy as np
from numba import cuda

from tinyface.cuda.arrays import DeviceTensor, is_device_array, to_device
from tinyface.cuda.launch import TPB, blocks
from tinyface.optim.optimizer import _as_triples
from tinyface.optim.sgd import SGD


@cuda.jit
def sgd_kernel(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first):
    """One SGD step for one tensor, in place. p, g, buf: (n,) float32 (buf unused
    without momentum); the hyper-parameters: float32; nesterov, first: bool.
    grid: blocks(n); block: TPB; one thread per element."""
    i = cuda.grid(1)
    if i < p.size:
        d = g[i]
        if weight_decay != 0.0:
            d = d + weight_decay * p[i]
        if momentum != 0.0:
            if first:
                b = d                                    # first step: b = d, undampened
            else:
                b = momentum * buf[i] + (np.float32(1.0) - dampening) * d
            buf[i] = b
            if nesterov:
                d = d + momentum * b
            else:
                d = b
        p[i] = p[i] - lr * d


def _check_device_arrays(name, p, g):
    """``(name, param, grad)`` on the GPU: float32 DeviceTensors (host arrays refused)."""
    if not (isinstance(p, DeviceTensor) and isinstance(g, DeviceTensor)):
        kind = "host (NumPy)" if not (is_device_array(p) and is_device_array(g)) else "foreign"
        raise TypeError(f"parameter {name!r}: DeviceSGD updates GPU DeviceTensors, got "
                        f"{kind} arrays; move the model first with "
                        f"tinyface.cuda.module_to(model, 'cuda'), or use tinyface.optim.SGD")
    if p.dtype != np.float32 or g.dtype != np.float32:
        raise TypeError(f"parameter {name!r}: expected float32, got {p.dtype} and {g.dtype}")


class DeviceSGD(SGD):
    """``tinyface.optim.SGD`` for parameters on the GPU (same arguments and checks).

    Args: params (``(name, param, grad)`` triples of DeviceTensors, or a Module moved
    with ``module_to(model, "cuda")``), lr, momentum, dampening, weight_decay, nesterov.
    State per parameter: ``momentum_buffer``, a DeviceTensor, created on the first step.
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        triples = _as_triples(params, _check_device_arrays)
        # the base class checks NumPy triples: hand it host stand-ins of the same shapes,
        # then put the device tensors in their place
        stand_ins = [(n, np.empty(p.shape, np.float32), np.empty(p.shape, np.float32))
                     for n, p, _ in triples]
        super().__init__(stand_ins, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)
        self.params = triples

    def _update(self, name, p, g, state):
        if not p.size:
            return
        buf = state.get("momentum_buffer")
        first = buf is None
        if self.momentum != 0.0 and first:
            buf = state["momentum_buffer"] = DeviceTensor(cuda.device_array(p.shape, np.float32))
        flat = (lambda t: t.data.reshape(t.size))
        f32 = np.float32
        sgd_kernel[blocks(p.size), TPB](flat(p), flat(g), flat(buf if buf is not None else p),
                                        f32(self.lr), f32(self.momentum), f32(self.dampening),
                                        f32(self.weight_decay), bool(self.nesterov), bool(first))

    def zero_grad(self):
        """Fill every gradient with 0, on the GPU."""
        for _, _, g in self.params:
            g.fill(0.0)

    def state_dict(self):
        """As ``SGD.state_dict``, with host copies of the momentum buffers."""
        state = {name: {k: (v.copy_to_host() if isinstance(v, DeviceTensor) else v)
                        for k, v in st.items()} for name, st in self.state.items()}
        return {"type": "SGD", "hyperparams": self.hyperparams(), "state": state}

    def load_state_dict(self, sd):
        """Load an ``SGD`` or ``DeviceSGD`` state dict; buffers go to the GPU."""
        sd = dict(sd, type="DeviceSGD" if sd.get("type") in ("SGD", "DeviceSGD") else sd.get("type"))
        shapes = {name: p.shape for name, p, _ in self.params}
        for name, st in sd.get("state", {}).items():
            for key, v in st.items():
                if isinstance(v, np.ndarray) and name in shapes and v.shape != shapes[name]:
                    raise ValueError(f"optimizer state {name!r}/{key!r}: parameter has shape "
                                     f"{shapes[name]}, state has shape {v.shape}")
        real, self.params = self.params, [(n, np.empty(p.shape, np.float32), None)
                                          for n, p, _ in self.params]
        try:
            super().load_state_dict(sd)
        finally:
            self.params = real
        self.state = {name: {k: (to_device(v) if isinstance(v, np.ndarray) else v)
                             for k, v in st.items()} for name, st in self.state.items()}


PTX_SIGNATURES = {
    "sgd_kernel": ["void(float32[::1], float32[::1], float32[::1], float32, float32, float32, "
                   "float32, boolean, boolean)"],
}
