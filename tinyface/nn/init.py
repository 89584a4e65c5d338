"""Seeded parameter initialisation, PyTorch's defaults.

Layers draw their initial weights from one module-level generator, so that
``manual_seed(s)`` followed by building a model gives the same weights every time::

    tinyface.nn.init.manual_seed(0)
    model = build_student()          # deterministic

PyTorch's default for Conv2d and Linear (``kaiming_uniform_(a=sqrt(5))``) comes down to
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for both the weight and the bias.
"""
import numpy as np

_state = {"rng": np.random.default_rng(0)}


def manual_seed(seed):
    """Reset the initialisation generator."""
    _state["rng"] = np.random.default_rng(seed)


def get_rng():
    return _state["rng"]


def uniform_fan_in(shape, fan_in):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as float32, drawn from the shared generator."""
    bound = 1.0 / np.sqrt(max(1, fan_in))
    return get_rng().uniform(-bound, bound, size=shape).astype(np.float32)
