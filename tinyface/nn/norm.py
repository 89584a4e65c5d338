"""Batch normalisation layers (PyTorch's ``BatchNorm2d`` / ``BatchNorm1d``).

Parameters ``weight`` (ones) and ``bias`` (zeros); buffers ``running_mean`` (zeros) and
``running_var`` (ones), all float32 of shape ``(num_features,)``. In training mode
(``layer.train()``) the layer normalises with batch statistics and updates the running
ones with ``momentum``; in evaluation mode (``layer.eval()``) it uses the running ones.
"""
import numpy as np

from tinyface.backend import ops
from tinyface.nn import checks
from tinyface.nn.module import Module, register_layer


class _BatchNorm(Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        name = type(self).__name__
        self.num_features = checks.integer(name, "num_features", num_features, 1)
        self.eps = checks.real(name, "eps", eps, low=0.0, low_open=True)
        self.momentum = checks.real(name, "momentum", momentum, low=0.0, high=1.0)
        C = self.num_features
        self.add_param("weight", np.ones(C, dtype=np.float32))
        self.add_param("bias", np.zeros(C, dtype=np.float32))
        self.buffers["running_mean"] = np.zeros(C, dtype=np.float32)
        self.buffers["running_var"] = np.ones(C, dtype=np.float32)

    def get_args(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum}

    def _ndim(self, x):
        raise NotImplementedError

    def forward(self, x):
        x = self.check_input(x, ndim=self._ndim(x), channels=self.num_features)
        out, cache = ops.batchnorm_forward(
            x, self.params["weight"], self.params["bias"], self.buffers["running_mean"],
            self.buffers["running_var"], self.momentum, self.eps, self.training)
        return self.keep(out, cache)

    def backward(self, dout):
        dx, dgamma, dbeta = ops.batchnorm_backward(self.check_dout(dout), self.cache)
        self.grads["weight"] += dgamma
        self.grads["bias"] += dbeta
        return dx


@register_layer
class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, H, W) per channel of an (N, C, H, W) input."""

    def _ndim(self, x):
        return 4


@register_layer
class BatchNorm1d(_BatchNorm):
    """Batch normalisation per feature of an (N, C) (or (N, C, L)) input."""

    def _ndim(self, x):
        return 3 if np.ndim(x) == 3 else 2
