"""``Conv2d``: a thin layer over ``conv2d_forward`` / ``conv2d_backward``."""
from tinyface.backend import ops
from tinyface.nn import checks
from tinyface.nn.init import uniform_fan_in
from tinyface.nn.module import Module, register_layer


@register_layer
class Conv2d(Module):
    """2-D convolution, PyTorch's layout and defaults.

    params: ``weight`` (out_channels, in_channels, kh, kw), ``bias`` (out_channels,).
    forward: x (N, in_channels, H, W) float32 -> (N, out_channels, OH, OW), N >= 1.
    Channel counts, kernel size and stride are integers >= 1 (ints or (h, w) pairs),
    padding >= 0; anything else raises a one-line ``ValueError`` naming the argument.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.in_channels = checks.integer("Conv2d", "in_channels", in_channels, 1)
        self.out_channels = checks.integer("Conv2d", "out_channels", out_channels, 1)
        self.kernel_size = checks.pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = checks.pair("Conv2d", "stride", stride, 1)
        self.padding = checks.pair("Conv2d", "padding", padding, 0)
        self.use_bias = checks.boolean("Conv2d", "bias", bias)
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
        x = self.check_input(x, ndim=4, channels=self.in_channels)        # (N, Cin, H, W)
        checks.window_fits("Conv2d.forward", x.shape, self.kernel_size, self.stride, self.padding)
        out, cache = ops.conv2d_forward(x, self.params["weight"], self.params.get("bias"),
                                        self.stride, self.padding)
        return self.keep(out, cache)                                      # (N, Cout, OH, OW)

    def backward(self, dout):
        dx, dw, db = ops.conv2d_backward(self.check_dout(dout), self.cache)
        self.grads["weight"] += dw
        if self.use_bias:
            self.grads["bias"] += db
        return dx
