"""The ops every tier implements, by family: the contract between the layers and the tiers.

``tinyface.reference`` (NumPy), ``tinyface.kernels`` (Numba CPU) and ``tinyface.cuda``
(numba.cuda) each export every name below with the reference's signature, and
``tinyface.backend.Backend`` holds one tier's functions under these names. Each family
is one module in every tier (``tinyface.<tier>.<family>``).

A layer op is a pair::

    out, cache = <op>_forward(x, ...)          # cache: opaque, tier-specific
    dx, ...    = <op>_backward(dout, cache)    # gradients of the inputs, then the params

and a loss is one call, ``loss, grad = <name>_loss(...)``.
"""

OP_FAMILIES = {
    "conv": ("conv2d_forward", "conv2d_backward"),
    "linear": ("linear_forward", "linear_backward"),
    "batchnorm": ("batchnorm_forward", "batchnorm_backward"),
    "activation": ("relu_forward", "relu_backward", "prelu_forward", "prelu_backward"),
    "pool": ("maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
             "global_avgpool_forward", "global_avgpool_backward",
             "flatten_forward", "flatten_backward"),
    "dropout": ("dropout_forward", "dropout_backward"),
    "losses": ("softmax_cross_entropy_loss", "distillation_loss", "feature_regression_loss"),
    "normalize": ("l2_normalize_forward", "l2_normalize_backward"),
    "affine": ("channel_affine_forward", "channel_affine_backward"),
    "pad": ("zero_pad_forward", "zero_pad_backward"),
}

# every op name, family by family in the order above
OP_NAMES = tuple(name for names in OP_FAMILIES.values() for name in names)
