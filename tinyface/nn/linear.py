"""``Linear``: a thin layer over ``linear_forward`` / ``linear_backward``."""
from tinyface.backend import ops
from tinyface.nn import checks
from tinyface.nn.init import uniform_fan_in
from tinyface.nn.module import Module, register_layer


@register_layer
class Linear(Module):
    """Fully connected layer, PyTorch's layout and defaults.

    params: ``weight`` (out_features, in_features), ``bias`` (out_features,).
    forward: x (N, in_features) float32 -> (N, out_features), N >= 1.
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = checks.integer("Linear", "in_features", in_features, 1)
        self.out_features = checks.integer("Linear", "out_features", out_features, 1)
        self.use_bias = checks.boolean("Linear", "bias", bias)
        self.add_param("weight", uniform_fan_in((self.out_features, self.in_features), self.in_features))
        if self.use_bias:
            self.add_param("bias", uniform_fan_in((self.out_features,), self.in_features))

    def get_args(self):
        return dict(in_features=self.in_features, out_features=self.out_features, bias=self.use_bias)

    def forward(self, x):
        x = self.check_input(x, ndim=2, channels=self.in_features)       # (N, in)
        out, cache = ops.linear_forward(x, self.params["weight"], self.params.get("bias"))
        return self.keep(out, cache)                                     # (N, out)

    def backward(self, dout):
        dx, dw, db = ops.linear_backward(self.check_dout(dout), self.cache)
        self.grads["weight"] += dw
        if self.use_bias:
            self.grads["bias"] += db
        return dx
