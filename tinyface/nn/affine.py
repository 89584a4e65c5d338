"""Per-channel affine and zero-padding layers: ``Affine2d`` and ``ZeroPad2d``.

``Affine2d(C)`` is ``y = x * weight[c] + bias[c]`` on an (N, C, H, W) input: batch
norm's learnt scale and shift without the statistics (dlib's ``affine_con`` layer, or
a batch norm frozen for inference). ``ZeroPad2d(channels, height, width)`` pads at the
*end* of the channel, row and column axes (None keeps an axis): the zero-filled extra
channels of a ResNet downsampling shortcut, and the zero row at the bottom / column
at the right that matches a residual main path to it. (PyTorch's ``nn.ZeroPad2d``
takes per-side amounts and never pads channels: this one takes the target sizes.)
"""
import numpy as np

from tinyface.backend import ops
from tinyface.nn import checks
from tinyface.nn.module import Module, register_layer


@register_layer
class Affine2d(Module):
    """out[n, c, h, w] = x[n, c, h, w] * weight[c] + bias[c].

    num_features: C, the input's channels. Parameters ``weight`` (ones) and ``bias``
    (zeros), float32 of shape (C,): a new layer is the identity.
    """

    def __init__(self, num_features):
        super().__init__()
        self.num_features = checks.integer("Affine2d", "num_features", num_features, 1)
        self.add_param("weight", np.ones(self.num_features, dtype=np.float32))
        self.add_param("bias", np.zeros(self.num_features, dtype=np.float32))

    def get_args(self):
        return {"num_features": self.num_features}

    def forward(self, x):
        x = self.check_input(x, ndim=4, channels=self.num_features)
        out, cache = ops.channel_affine_forward(x, self.params["weight"], self.params["bias"])
        return self.keep(out, cache)

    def backward(self, dout):
        dx, dw, db = ops.channel_affine_backward(self.check_dout(dout), self.cache)
        self.grads["weight"] += dw
        self.grads["bias"] += db
        return dx


def _size_or_none(value, name):
    if value is None:
        return None
    if not checks.is_integer(value) or int(value) < 1:
        raise ValueError(f"ZeroPad2d: {name} must be an integer >= 1 or None, got {value!r}")
    return int(value)


@register_layer
class ZeroPad2d(Module):
    """(N, C, H, W) -> (N, channels, height, width), x at ``out[:, :C, :H, :W]`` and
    zeros elsewhere. Each size None keeps that axis; a size smaller than the input's
    raises ``ValueError`` at forward. No parameters."""

    def __init__(self, channels=None, height=None, width=None):
        super().__init__()
        self.channels = _size_or_none(channels, "channels")
        self.height = _size_or_none(height, "height")
        self.width = _size_or_none(width, "width")

    def get_args(self):
        return {"channels": self.channels, "height": self.height, "width": self.width}

    def forward(self, x):
        x = self.check_input(x, ndim=4)
        _, C, H, W = x.shape
        target = tuple(have if want is None else want
                       for want, have in ((self.channels, C), (self.height, H), (self.width, W)))
        if any(t < h for t, h in zip(target, (C, H, W))):
            raise ValueError(f"ZeroPad2d.forward: cannot pad an input of shape {tuple(x.shape)} down to "
                             f"(N, {target[0]}, {target[1]}, {target[2]}); every size must be "
                             f"at least the input's")
        out, cache = ops.zero_pad_forward(x, *target)
        return self.keep(out, cache)

    def backward(self, dout):
        return ops.zero_pad_backward(self.check_dout(dout), self.cache)
