"""Numba CPU tier: the kernels the layers run.

Every op is a ``*_forward(...) -> (out, cache)`` / ``*_backward(dout, cache)`` pair with
the same signature as its NumPy reference in ``tinyface.reference`` (the list is
``tinyface.ops_list.OP_NAMES``). Kernels are plain Python functions wrapped by
``numba.njit(cache=True)`` at module level and compiled at their first call (so
importing this package compiles nothing, and ``NUMBA_DISABLE_JIT=1`` runs them as
Python); they are generic in the float dtype: float32 in training, float64 in gradient
checks.

Internal layout: NCHW, the same as the public API, unless a module says otherwise.
``flatten_forward``/``flatten_backward`` are the reference's (a reshape needs no kernel).
"""
from tinyface.kernels.activation import prelu_backward, prelu_forward, relu_backward, relu_forward
from tinyface.kernels.affine import channel_affine_backward, channel_affine_forward
from tinyface.kernels.batchnorm import batchnorm_backward, batchnorm_forward
from tinyface.kernels.conv import conv2d_backward, conv2d_forward
from tinyface.kernels.dropout import dropout_backward, dropout_forward
from tinyface.kernels.linear import linear_backward, linear_forward
from tinyface.kernels.losses import (distillation_loss, feature_regression_loss,
                                     softmax_cross_entropy_loss)
from tinyface.kernels.normalize import l2_normalize_backward, l2_normalize_forward
from tinyface.kernels.pad import zero_pad_backward, zero_pad_forward
from tinyface.kernels.pool import (avgpool2d_backward, avgpool2d_forward, flatten_backward,
                                   flatten_forward, global_avgpool_backward,
                                   global_avgpool_forward, maxpool2d_backward,
                                   maxpool2d_forward)
from tinyface.ops_list import OP_FAMILIES

# the op-family modules, one per family of tinyface.ops_list (the same in every tier)
MODULES = list(OP_FAMILIES)

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "linear_forward", "linear_backward",
    "batchnorm_forward", "batchnorm_backward",
    "relu_forward", "relu_backward", "prelu_forward", "prelu_backward",
    "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
    "global_avgpool_forward", "global_avgpool_backward", "flatten_forward", "flatten_backward",
    "dropout_forward", "dropout_backward",
    "softmax_cross_entropy_loss", "distillation_loss", "feature_regression_loss",
    "l2_normalize_forward", "l2_normalize_backward",
    "channel_affine_forward", "channel_affine_backward",
    "zero_pad_forward", "zero_pad_backward",
]
