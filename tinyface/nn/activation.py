"""Activation layers: ``ReLU`` and ``PReLU`` (PyTorch's names, parameters and defaults)."""
import numpy as np

from tinyface.backend import ops
from tinyface.nn import checks
from tinyface.nn.module import Module, register_layer


@register_layer
class ReLU(Module):
    """out = max(x, 0), any input shape."""

    def forward(self, x):
        x = self.check_input(x)
        out, cache = ops.relu_forward(x)
        return self.keep(out, cache)

    def backward(self, dout):
        return ops.relu_backward(self.check_dout(dout), self.cache)


@register_layer
class PReLU(Module):
    """out = x if x > 0 else a * x, with learnt slope(s) ``weight``.

    num_parameters: 1 (one slope shared by all channels) or C (one per channel of an
                    (N, C, ...) input);
    init:           initial slope, 0.25 as in PyTorch.
    """

    def __init__(self, num_parameters=1, init=0.25):
        super().__init__()
        self.num_parameters = checks.integer("PReLU", "num_parameters", num_parameters, 1)
        self.init = checks.real("PReLU", "init", init)
        self.add_param("weight", np.full(self.num_parameters, self.init, dtype=np.float32))

    def get_args(self):
        return {"num_parameters": self.num_parameters, "init": self.init}

    def forward(self, x):
        if self.num_parameters > 1:
            ndim = np.ndim(x) if np.ndim(x) >= 2 else 2
            x = self.check_input(x, ndim=ndim, channels=self.num_parameters)
        else:
            x = self.check_input(x)
            if x.ndim < 1:
                raise ValueError(f"PReLU.forward: expected input with a batch axis, got shape {x.shape}")
        out, cache = ops.prelu_forward(x, self.params["weight"])
        return self.keep(out, cache)

    def backward(self, dout):
        dx, dalpha = ops.prelu_backward(self.check_dout(dout), self.cache)
        self.grads["weight"] += dalpha
        return dx
