"""Dropout layer: seeded inverted dropout, the identity in evaluation mode."""
import numpy as np

from tinyface.backend import ops
from tinyface.nn import checks
from tinyface.nn.module import Module, register_layer


@register_layer
class Dropout(Module):
    """Zero each element with probability ``p`` in training, scaling the rest by 1/(1-p).

    p:    drop probability in [0, 1);
    seed: seeds the layer's own ``numpy.random.Generator``, which draws a fresh mask
          seed for every training forward pass: a run is reproducible from ``seed``.
    """

    def __init__(self, p=0.5, seed=0):
        super().__init__()
        self.p = checks.real("Dropout", "p", p, low=0.0, high=1.0, high_open=True)
        self.seed = checks.integer("Dropout", "seed", seed, 0)
        self.rng = np.random.default_rng(self.seed)

    def get_args(self):
        return {"p": self.p, "seed": self.seed}

    def forward(self, x):
        x = self.check_input(x)
        call_seed = int(self.rng.integers(0, 2 ** 63)) if self.training else 0
        out, cache = ops.dropout_forward(x, self.p, self.training, call_seed)
        return self.keep(out, cache)

    def backward(self, dout):
        return ops.dropout_backward(self.check_dout(dout), self.cache)
