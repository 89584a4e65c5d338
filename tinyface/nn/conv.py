"""``Conv2d``: a thin layer over ``conv2d_forward`` / ``conv2d_backward``."""
from tinyface.backend import ops
from tinyface.nn.init import uniform_fan_in
from tinyface.nn.module import Module, register_layer


def _pair(v):
    return tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


@register_layer
class Conv2d(Module):
    """2-D convolution, PyTorch's layout and defaults.

    params: ``weight`` (out_channels, in_channels, kh, kw), ``bias`` (out_channels,).
    forward: x (N, in_channels, H, W) float32 -> (N, out_channels, OH, OW).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        if min(self.in_channels, self.out_channels, *self.kernel_size, *self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: invalid arguments {self.get_args()}")
        self.use_bias = bool(bias)
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        self.add_param("weight", uniform_fan_in((self.out_channels, self.in_channels, kh, kw), fan_in))
        if self.use_bias:
            self.add_param("bias", uniform_fan_in((self.out_channels,), fan_in))

    def get_args(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding), bias=self.use_bias)

    def forward(self, x):
        x = self.check_input(x, ndim=4, channels=self.in_channels)
        out, self.cache = ops.conv2d_forward(x, self.params["weight"], self.params.get("bias"),
                                             self.stride, self.padding)
        return out

    def backward(self, dout):
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        dx, dw, db = ops.conv2d_backward(dout, self.cache)
        self.grads["weight"] += dw
        if self.use_bias:
            self.grads["bias"] += db
        return dx
