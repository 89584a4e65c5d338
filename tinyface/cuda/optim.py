"""Optimizers on the GPU: ``DeviceSGD``, ``DeviceAdam`` and ``DeviceAdamW``.

Each is its CPU optimizer's update (``tinyface.optim``) as one fused kernel per
parameter tensor: the parameters, gradients and state (momentum buffers, Adam's two
moments) are DeviceTensors, and a step copies nothing to the host. The per-step
scalars (learning rate, Adam's bias corrections) are computed on the host, as the CPU
optimizers do, and passed to the kernel as float32 arguments.

SGD is ``torch.optim.SGD``'s update, step for step (``p``: parameter, ``g``: gradient,
``b``: momentum buffer)::

    d = g + weight_decay * p
    b = d                                       on the first step (no dampening)
    b = momentum * b + (1 - dampening) * d      afterwards
    d = d + momentum * b   (Nesterov)   or   d = b
    p = p - lr * d

Adam and AdamW are ``tinyface.optim.adam``'s (and ``torch.optim``'s), with ``t`` the
step count::

    p = p * (1 - lr * weight_decay)             AdamW (decoupled decay)
    g = g + weight_decay * p                    Adam (L2 penalty in the gradient)
    m = m + (1 - beta1) * (g - m)
    v = beta2 * v + (1 - beta2) * g * g
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

Same constructors, ``step``/``zero_grad``, ``lr`` property (schedules set it between
steps) and ``state_dict``/``load_state_dict`` as the CPU optimizers; a state dict holds
host copies of the state and the CPU optimizer's type name, so checkpoints are
interchangeable between the tiers.
"""
import math

import numpy as np
from numba import cuda

from tinyface.cuda.arrays import DeviceTensor, is_device_array, to_device
from tinyface.cuda.launch import TPB, blocks
from tinyface.optim.optimizer import _as_triples
from tinyface.optim.adam import Adam
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


@cuda.jit
def adam_kernel(p, g, m, v, beta2, one_minus_beta1, one_minus_beta2, eps, l2, shrink,
                step_size, bc2_sqrt):
    """One Adam/AdamW step for one tensor, in place. p, g, m, v: (n,) float32.

    Scalars (float32), computed on the host in float64 as the CPU optimizer does, so
    that both round alike: ``l2`` (Adam's weight decay, 0 for AdamW), ``shrink``
    (AdamW's ``1 - lr * weight_decay``, 1 for Adam), ``step_size = lr / (1 - beta1**t)``
    and ``bc2_sqrt = sqrt(1 - beta2**t)``.
    grid: blocks(n); block: TPB; one thread per element."""
    i = cuda.grid(1)
    if i < p.size:
        pi = p[i]
        if shrink != 1.0:
            pi = pi * shrink                                    # AdamW: decoupled decay
        gi = g[i]
        if l2 != 0.0:
            gi = gi + l2 * pi                                   # Adam: L2 in the gradient
        mi = m[i] + one_minus_beta1 * (gi - m[i])
        vi = beta2 * v[i] + one_minus_beta2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        denom = math.sqrt(vi) / bc2_sqrt + eps
        p[i] = pi - (mi / denom) * step_size


def _check_device_arrays(name, p, g):
    """``(name, param, grad)`` on the GPU: float32 DeviceTensors (host arrays refused)."""
    if not (isinstance(p, DeviceTensor) and isinstance(g, DeviceTensor)):
        kind = "host (NumPy)" if not (is_device_array(p) and is_device_array(g)) else "foreign"
        raise TypeError(f"parameter {name!r}: the device optimizers update GPU DeviceTensors, "
                        f"got {kind} arrays; move the model first with model.to('cuda'), or "
                        f"use the optimizers of tinyface.optim")
    if p.dtype != np.float32 or g.dtype != np.float32:
        raise TypeError(f"parameter {name!r}: expected float32, got {p.dtype} and {g.dtype}")


def _flat(t):
    """The (n,) view of a DeviceTensor's numba array."""
    return t.data.reshape(t.size)


class _OnDevice:
    """What the device optimizers share: their CPU class's checks on host stand-ins,
    ``zero_grad`` on the GPU, and state dicts that hold host copies under the CPU
    class's type name (``host_type``). Put it first in the bases, before the CPU class."""

    host_type = None

    def __init__(self, params, *args, **hyper):
        triples = _as_triples(params, _check_device_arrays)
        # the CPU class checks NumPy triples: hand it host stand-ins of the same shapes,
        # then put the device tensors in their place
        stand_ins = [(n, np.empty(p.shape, np.float32), np.empty(p.shape, np.float32))
                     for n, p, _ in triples]
        super().__init__(stand_ins, *args, **hyper)
        self.params = triples

    def zero_grad(self):
        """Fill every gradient with 0, on the GPU."""
        for _, _, g in self.params:
            g.fill(0.0)

    def state_dict(self):
        """The CPU optimizer's state dict: host copies of the device state."""
        state = {name: {k: (v.copy_to_host() if isinstance(v, DeviceTensor) else v)
                        for k, v in st.items()} for name, st in self.state.items()}
        return {"type": self.host_type, "hyperparams": self.hyperparams(), "state": state}

    def load_state_dict(self, sd):
        """Load a state dict of the CPU class (or this one); the state goes to the GPU."""
        if sd.get("type") in (self.host_type, type(self).__name__):
            sd = dict(sd, type=type(self).__name__)
        real, self.params = self.params, [(n, np.empty(p.shape, np.float32), None)
                                          for n, p, _ in self.params]
        try:
            super().load_state_dict(sd)               # checks names, shapes, hyper-params
        finally:
            self.params = real
        self.state = {name: {k: (to_device(v) if isinstance(v, np.ndarray) else v)
                             for k, v in st.items()} for name, st in self.state.items()}


class DeviceSGD(_OnDevice, SGD):
    """``tinyface.optim.SGD`` for parameters on the GPU (same arguments and checks).

    Args: params (``(name, param, grad)`` triples of DeviceTensors, or a Module moved
    with ``model.to("cuda")``), lr, momentum, dampening, weight_decay, nesterov.
    State per parameter: ``momentum_buffer``, a DeviceTensor, created on the first step.
    """

    host_type = "SGD"

    def _update(self, name, p, g, state):
        if not p.size:
            return
        buf = state.get("momentum_buffer")
        first = buf is None
        if self.momentum != 0.0 and first:
            buf = state["momentum_buffer"] = DeviceTensor(cuda.device_array(p.shape, np.float32))
        f32 = np.float32
        sgd_kernel[blocks(p.size), TPB](_flat(p), _flat(g), _flat(buf if buf is not None else p),
                                        f32(self.lr), f32(self.momentum), f32(self.dampening),
                                        f32(self.weight_decay), bool(self.nesterov), bool(first))


class DeviceAdam(_OnDevice, Adam):
    """``tinyface.optim.Adam`` for parameters on the GPU (same arguments and checks).

    State per parameter: ``step`` (int, on the host), ``exp_avg`` and ``exp_avg_sq``
    (DeviceTensors, zero on the first step).
    """

    host_type = "Adam"

    def _update(self, name, p, g, state):
        if not p.size:
            return
        if not state:
            state["step"] = 0
            state["exp_avg"] = DeviceTensor(cuda.device_array(p.shape, np.float32)).fill(0.0)
            state["exp_avg_sq"] = DeviceTensor(cuda.device_array(p.shape, np.float32)).fill(0.0)
        state["step"] += 1
        t = state["step"]
        b1, b2 = self.betas
        lr, wd, f32 = self.lr, self.weight_decay, np.float32
        l2, shrink = (0.0, 1.0 - lr * wd) if self.decoupled else (wd, 1.0)
        adam_kernel[blocks(p.size), TPB](
            _flat(p), _flat(g), _flat(state["exp_avg"]), _flat(state["exp_avg_sq"]),
            f32(b2), f32(1.0 - b1), f32(1.0 - b2), f32(self.eps), f32(l2), f32(shrink),
            f32(lr / (1.0 - b1 ** t)), f32(math.sqrt(1.0 - b2 ** t)))


class DeviceAdamW(DeviceAdam):
    """``tinyface.optim.AdamW`` for parameters on the GPU: decoupled weight decay
    (default 1e-2), otherwise ``DeviceAdam``."""

    host_type = "AdamW"
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


DEVICE_OPTIMIZERS = {"SGD": DeviceSGD, "Adam": DeviceAdam, "AdamW": DeviceAdamW}


def device_optimizer(optimizer_cls):
    """The device class of a CPU optimizer class (``SGD`` -> ``DeviceSGD``, ...)."""
    try:
        return DEVICE_OPTIMIZERS[optimizer_cls.__name__]
    except KeyError:
        raise ValueError(f"no device version of {optimizer_cls.__name__}; "
                         f"choose one of {sorted(DEVICE_OPTIMIZERS)}") from None


PTX_SIGNATURES = {
    "sgd_kernel": ["void(float32[::1], float32[::1], float32[::1], float32, float32, float32, "
                   "float32, boolean, boolean)"],
    "adam_kernel": ["void(float32[::1], float32[::1], float32[::1], float32[::1], float32, "
                    "float32, float32, float32, float32, float32, float32, float32)"],
}
