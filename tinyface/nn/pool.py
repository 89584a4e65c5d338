"""Pooling and reshaping layers: ``MaxPool2d``, ``AvgPool2d``, ``GlobalAvgPool2d``,
``Flatten``.

``kernel_size``, ``stride`` and ``padding`` are ints or ``(h, w)`` pairs; ``stride=None``
means ``stride = kernel_size``, as in PyTorch. Output size per axis:
``floor((H + 2 * padding - kernel) / stride) + 1``.
"""
from tinyface.backend import ops
from tinyface.nn import checks
from tinyface.nn.module import Module, register_layer


def _hw(v):
    return v if isinstance(v, tuple) else (v, v)


class _Pool2d(Module):
    """kernel_size and stride are integers >= 1, padding an integer in [0, kernel // 2]
    (PyTorch's rule), each an int or an (h, w) pair; N >= 1 at forward."""
    _op = None   # "maxpool2d" or "avgpool2d"

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = checks.int_or_pair(name, "kernel_size", kernel_size, 1)
        self.stride = (self.kernel_size if stride is None
                       else checks.int_or_pair(name, "stride", stride, 1))
        self.padding = checks.int_or_pair(name, "padding", padding, 0)
        if any(p > k // 2 for p, k in zip(_hw(self.padding), _hw(self.kernel_size))):
            raise ValueError(f"{name}: padding must be at most half the kernel size "
                             f"{self.kernel_size}, got {padding!r}")

    def get_args(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def forward(self, x):
        x = self.check_input(x, ndim=4)                                   # (N, C, H, W)
        checks.window_fits(self._where("forward"), x.shape, _hw(self.kernel_size),
                           _hw(self.stride), _hw(self.padding), what="window")
        out, cache = getattr(ops, self._op + "_forward")(
            x, self.kernel_size, self.stride, self.padding)
        return self.keep(out, cache)                                      # (N, C, OH, OW)

    def backward(self, dout):
        return getattr(ops, self._op + "_backward")(self.check_dout(dout), self.cache)


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
        out, cache = ops.global_avgpool_forward(x)
        return self.keep(out, cache)

    def backward(self, dout):
        return ops.global_avgpool_backward(self.check_dout(dout), self.cache)


@register_layer
class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), row-major (PyTorch's ``nn.Flatten()``)."""

    def forward(self, x):
        x = self.check_input(x)
        if x.ndim < 2:
            raise ValueError(f"Flatten.forward: expected input of shape (N, ...) with at least "
                             f"2 axes, got {x.shape}")
        out, cache = ops.flatten_forward(x)
        return self.keep(out, cache)

    def backward(self, dout):
        return ops.flatten_backward(self.check_dout(dout), self.cache)
