"""Batch normalisation, NumPy reference.

``x`` is ``(N, C, H, W)`` (BatchNorm2d) or ``(N, C)`` / ``(N, C, L)`` (BatchNorm1d); all
are handled as ``(N, C, L)`` with per-channel statistics over the ``m = N * L`` values.

Training mode normalises with the batch mean and the *biased* batch variance and
updates the running statistics in place, as PyTorch does::

    running_mean = (1 - momentum) * running_mean + momentum * mean
    running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)

Evaluation mode normalises with the running statistics.
"""
import numpy as np


def _check(x, gamma, beta, running_mean, running_var, training):
    if x.ndim < 2:
        raise ValueError(f"batchnorm: x must be (N, C, ...), got shape {x.shape}")
    C = x.shape[1]
    for name, a in (("gamma", gamma), ("beta", beta),
                    ("running_mean", running_mean), ("running_var", running_var)):
        if np.shape(a) != (C,):
            raise ValueError(f"batchnorm: {name} must have shape ({C},), got {np.shape(a)}")
    m = x.size // max(C, 1)
    if training and m < 2:
        raise ValueError(f"batchnorm: expected more than 1 value per channel when training, "
                         f"got input of shape {x.shape}")


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, training):
    """Normalise each channel, then scale by ``gamma`` and shift by ``beta``.

    x:            (N, C, H, W) or (N, C) or (N, C, L) float;
    gamma, beta:  (C,) float, the layer's ``weight`` and ``bias``;
    running_mean: (C,) float, updated in place when ``training``;
    running_var:  (C,) float, updated in place when ``training``;
    momentum:     float, weight of the new batch statistics in the running ones;
    eps:          float, added to the variance;
    training:     bool, batch statistics (True) or running statistics (False).
    Returns ``out`` of x's shape and dtype, and a cache for ``batchnorm_backward``.
    """
    x = np.asarray(x)
    _check(x, gamma, beta, running_mean, running_var, training)
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, -1)                                   # (N, C, L)
    m = x3.shape[0] * x3.shape[2]
    if training:
        mean = x3.mean(axis=(0, 2), dtype=np.float64)          # (C,)
        var = x3.var(axis=(0, 2), dtype=np.float64)            # (C,) biased
        running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean
        running_var[...] = (1.0 - momentum) * running_var + momentum * var * (m / (m - 1))
    else:
        mean = np.asarray(running_mean, dtype=np.float64).copy()  # (C,)
        var = np.asarray(running_var, dtype=np.float64).copy()    # (C,)
    inv_std = 1.0 / np.sqrt(var + eps)                          # (C,)
    xhat = (x3 - mean[None, :, None]) * inv_std[None, :, None]  # (N, C, L) float64
    g = np.asarray(gamma, dtype=np.float64)[None, :, None]      # (1, C, 1)
    b = np.asarray(beta, dtype=np.float64)[None, :, None]       # (1, C, 1)
    out = (g * xhat + b).astype(x.dtype).reshape(x.shape)
    cache = (xhat, inv_std, np.asarray(gamma), bool(training), x.shape, x.dtype)
    return out, cache


def batchnorm_backward(dout, cache):
    """Gradients of batch normalisation.

    dout:  float array of the forward output's shape;
    cache: from ``batchnorm_forward``.
    Returns ``(dx, dgamma, dbeta)``: dx of x's shape and dtype, dgamma/dbeta (C,) in
    gamma's dtype.

    Training: with ``m = N * L`` and sums over (N, L) per channel::

        dx = gamma * inv_std / m * (m * dout - sum(dout) - xhat * sum(dout * xhat))

    Evaluation (the statistics are constants): ``dx = dout * gamma * inv_std``.
    """
    xhat, inv_std, gamma, training, shape, dtype = cache
    dout = np.asarray(dout)
    if dout.shape != shape:
        raise ValueError(f"batchnorm_backward: dout has shape {dout.shape}, expected {shape}")
    N, C, L = xhat.shape
    m = N * L
    dy = dout.reshape(N, C, L).astype(np.float64)               # (N, C, L)
    dbeta = dy.sum(axis=(0, 2))                                  # (C,)
    dgamma = (dy * xhat).sum(axis=(0, 2))                        # (C,)
    scale = (gamma.astype(np.float64) * inv_std)[None, :, None]  # (1, C, 1)
    if training:
        dx = scale / m * (m * dy - dbeta[None, :, None] - xhat * dgamma[None, :, None])
    else:
        dx = scale * dy
    return (dx.astype(dtype).reshape(shape), dgamma.astype(gamma.dtype),
            dbeta.astype(gamma.dtype))
