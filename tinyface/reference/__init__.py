"""NumPy reference tier: slow, obvious, and what every test compares against.

Same op names and signatures as ``tinyface.kernels`` (the list is
``tinyface.ops_list.OP_NAMES``); arrays in NCHW (or NC). One module per op family.
"""
from tinyface.reference.activation import prelu_backward, prelu_forward, relu_backward, relu_forward
from tinyface.reference.affine import channel_affine_backward, channel_affine_forward
from tinyface.reference.batchnorm import batchnorm_backward, batchnorm_forward
from tinyface.reference.conv import conv2d_backward, conv2d_forward
from tinyface.reference.dropout import dropout_backward, dropout_forward
from tinyface.reference.linear import linear_backward, linear_forward
from tinyface.reference.losses import (distillation_loss, feature_regression_loss,
                                       softmax_cross_entropy_loss)
from tinyface.reference.normalize import l2_normalize_backward, l2_normalize_forward
from tinyface.reference.pad import zero_pad_backward, zero_pad_forward
from tinyface.reference.pool import (avgpool2d_backward, avgpool2d_forward, flatten_backward,
                                     flatten_forward, global_avgpool_backward,
                                     global_avgpool_forward, maxpool2d_backward,
                                     maxpool2d_forward)

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
