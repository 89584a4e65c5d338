"""Layers with PyTorch's names, parameter layouts and defaults.

Each layer holds ``params`` and ``grads`` dicts with matching keys (plus ``buffers``),
runs ``forward(x)`` / ``backward(dout)`` through the active backend's ops, and is
rebuilt from its JSON record by ``build_layer(layer.config())``.

Inputs are float arrays with a batch axis, N >= 1 (integer dtypes such as the uint8
faces of ``tinyface.data`` are refused: convert them with ``tinyface.data.to_float``).
Bad constructor arguments, input shapes, empty batches and gradients whose shape is not
the last forward's output raise one-line errors naming the layer (``nn/checks.py``).
"""
from tinyface.nn.module import Module, Sequential, build_layer, register_layer, LAYER_TYPES
from tinyface.nn.init import manual_seed
from tinyface.nn.conv import Conv2d
from tinyface.nn.linear import Linear
from tinyface.nn.norm import BatchNorm1d, BatchNorm2d
from tinyface.nn.activation import PReLU, ReLU
from tinyface.nn.pool import AvgPool2d, Flatten, GlobalAvgPool2d, MaxPool2d
from tinyface.nn.dropout import Dropout
from tinyface.nn.affine import Affine2d, ZeroPad2d

__all__ = [
    "Module", "Sequential", "build_layer", "register_layer", "LAYER_TYPES", "manual_seed",
    "Conv2d", "Linear", "BatchNorm1d", "BatchNorm2d", "ReLU", "PReLU",
    "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "Flatten", "Dropout", "Affine2d", "ZeroPad2d",
]
