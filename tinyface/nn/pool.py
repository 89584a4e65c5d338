"""Pooling and reshaping layers: ``MaxPool2d``, ``AvgPool2d``, ``GlobalAvgPool2d``,
``Flatten``.

``kernel_size``, ``stride`` and ``padding`` are ints or ``(h, w)`` pairs; ``stride=None``
means ``stride = kernel_size``, as in PyTorch. Output size per axis:
``floor((H + 2 * padding - kernel) / stride) + 1``.
"""
from tinyface.backend import ops
from tinyface.nn.module import Module, register_layer


def _int_or_pair(v, name):
    """Normalise an int or a 2-sequence (a JSON list after a config round trip)."""
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        return (int(v[0]), int(v[1]))
    return int(v)


class _Pool2d(Module):
    _op = None   # "maxpool2d" or "avgpool2d"

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _int_or_pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _int_or_pair(stride, "stride")
        self.padding = _int_or_pair(padding, "padding")

    def get_args(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def forward(self, x):
        x = self.check_input(x, ndim=4)
        out, self.cache = getattr(ops, self._op + "_forward")(
            x, self.kernel_size, self.stride, self.padding)
        return out

    def backward(self, dout):
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        return getattr(ops, self._op + "_backward")(self.check_grad(dout), self.cache)


@register_layer
class MaxPool2d(_Pool2d):
    """Max over each window; padded cells never win."""
    _op = "maxpool2d"


@register_layer
class AvgPool2d(_Pool2d):
    """Mean over each window; zero padding counts in the divisor (count_include_pad)."""
    _op = "avgpool2d"


@register_layer
class GlobalAvgPool2d(Module):
    """(N, C, H, W) -> (N, C), the mean over H and W
    (PyTorch: ``AdaptiveAvgPool2d(1)`` followed by ``Flatten()``)."""

    def forward(self, x):
        x = self.check_input(x, ndim=4)
        out, self.cache = ops.global_avgpool_forward(x)
        return out

    def backward(self, dout):
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        return ops.global_avgpool_backward(self.check_grad(dout), self.cache)


@register_layer
class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), row-major (PyTorch's ``nn.Flatten()``)."""

    def forward(self, x):
        x = self.check_input(x)
        if x.ndim < 2:
            raise ValueError(f"{self!r}: expected input of shape (N, ...) with at least 2 axes, "
                             f"got {x.shape}")
        out, self.cache = ops.flatten_forward(x)
        return out

    def backward(self, dout):
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        return ops.flatten_backward(self.check_grad(dout), self.cache)
