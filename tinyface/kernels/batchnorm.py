"""Batch normalisation, Numba CPU kernels.

Same maths and signatures as ``tinyface.reference.batchnorm``. ``x`` is viewed as
``(N, C, L)``; one ``prange`` iteration owns one channel and makes all its passes over
that channel's ``N * L`` values while they are warm in cache:

- forward:  mean, then biased variance (two passes, accumulated in float64), then
            ``out = (x - mean) * inv_std * gamma + beta``;
- backward: ``sum(dout)`` and ``sum(dout * xhat)``, then dx.

The inner loop runs over the contiguous ``L = H * W`` values of one (sample, channel)
plane. Statistics and per-channel scales are float64 whatever the data dtype; values
are read with an explicit ``np.float64(...)`` so that the accumulation is float64 under
``NUMBA_DISABLE_JIT=1`` too (NumPy would keep ``0.0 + float32`` in float32).
"""
import numpy as np
from numba import prange

from tinyface.kernels.threading import compile_pair, use_parallel
from tinyface.reference.batchnorm import _check as _check_shapes  # shared argument checks


def _bn_forward_kernel(x, gamma, beta, mean, var, inv_std, training, eps, out):
    """x, out: (N, C, L); gamma, beta: (C,); mean, var, inv_std: (C,) float64.

    Training: writes the batch mean/biased variance into ``mean``/``var``.
    Evaluation: reads them (the running statistics). Always writes ``inv_std``.
    """
    N, C, L = x.shape
    m = N * L
    for c in prange(C):
        if training:
            s = 0.0
            for n in range(N):
                for i in range(L):
                    s += np.float64(x[n, c, i])
            mu = s / m
            s2 = 0.0
            for n in range(N):
                for i in range(L):
                    d = np.float64(x[n, c, i]) - mu
                    s2 += d * d
            mean[c] = mu
            var[c] = s2 / m
        mu = mean[c]
        istd = 1.0 / np.sqrt(var[c] + eps)
        inv_std[c] = istd
        scale = gamma[c] * istd
        shift = beta[c]
        for n in range(N):
            for i in range(L):
                out[n, c, i] = (x[n, c, i] - mu) * scale + shift


def _bn_backward_kernel(dout, x, gamma, mean, inv_std, training, dx, dgamma, dbeta):
    """dout, x, dx: (N, C, L); gamma: (C,); mean, inv_std, dgamma, dbeta: (C,) float64."""
    N, C, L = x.shape
    m = N * L
    for c in prange(C):
        mu = mean[c]
        istd = inv_std[c]
        sdy = 0.0
        sdyx = 0.0
        for n in range(N):
            for i in range(L):
                dy = np.float64(dout[n, c, i])
                sdy += dy
                sdyx += dy * ((x[n, c, i] - mu) * istd)
        dbeta[c] = sdy
        dgamma[c] = sdyx
        scale = gamma[c] * istd
        if training:
            k = scale / m
            for n in range(N):
                for i in range(L):
                    xhat = (x[n, c, i] - mu) * istd
                    dx[n, c, i] = k * (m * dout[n, c, i] - sdy - xhat * sdyx)
        else:
            for n in range(N):
                for i in range(L):
                    dx[n, c, i] = scale * dout[n, c, i]


# reassoc: let LLVM vectorise the float64 sums (4-5x faster; the order of the additions
# changes, not their precision)
_forward_serial, _forward_parallel = compile_pair(_bn_forward_kernel, fastmath={"reassoc"})
_backward_serial, _backward_parallel = compile_pair(_bn_backward_kernel, fastmath={"reassoc"})


def _check(x, gamma, beta, running_mean, running_var, training):
    if x.dtype.kind != "f":
        raise TypeError(f"batchnorm: x must be a float array, got dtype {x.dtype}")
    _check_shapes(x, gamma, beta, running_mean, running_var, training)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, training):
    """Normalise each channel, then scale by ``gamma`` and shift by ``beta``.

    x:            (N, C, H, W) or (N, C) or (N, C, L) float32 (or float64);
    gamma, beta:  (C,) float, the layer's ``weight`` and ``bias``;
    running_mean: (C,) float, updated in place when ``training``;
    running_var:  (C,) float, updated in place when ``training``;
    momentum:     float, weight of the new batch statistics in the running ones;
    eps:          float, added to the variance;
    training:     bool, batch statistics (True) or running statistics (False).
    Returns ``out`` of x's shape and dtype, and a cache for ``batchnorm_backward``.
    """
    x = np.ascontiguousarray(x)
    _check(x, gamma, beta, running_mean, running_var, training)
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, -1)                                     # (N, C, L)
    m = x3.shape[0] * x3.shape[2]
    g = np.ascontiguousarray(gamma, dtype=x.dtype)               # (C,)
    b = np.ascontiguousarray(beta, dtype=x.dtype)                # (C,)
    training = bool(training)
    if training:
        mean = np.empty(C, dtype=np.float64)                     # (C,) filled by the kernel
        var = np.empty(C, dtype=np.float64)                      # (C,)
    else:
        mean = np.array(running_mean, dtype=np.float64)          # (C,) copies
        var = np.array(running_var, dtype=np.float64)            # (C,)
    inv_std = np.empty(C, dtype=np.float64)                      # (C,)
    out = np.empty_like(x3)                                      # (N, C, L)
    kernel = _forward_parallel if use_parallel(N) else _forward_serial
    kernel(x3, g, b, mean, var, inv_std, training, float(eps), out)
    if training:
        running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean
        running_var[...] = (1.0 - momentum) * running_var + momentum * var * (m / (m - 1))
    cache = (x3, g, mean, inv_std, training, x.shape, np.asarray(gamma).dtype)
    return out.reshape(x.shape), cache


def batchnorm_backward(dout, cache):
    """Gradients of batch normalisation.

    dout:  float array of the forward output's shape;
    cache: from ``batchnorm_forward``.
    Returns ``(dx, dgamma, dbeta)``: dx of x's shape and dtype, dgamma/dbeta (C,) in
    gamma's dtype.
    """
    x3, g, mean, inv_std, training, shape, gdtype = cache
    dout = np.asarray(dout)
    if dout.shape != shape:
        raise ValueError(f"batchnorm_backward: dout has shape {dout.shape}, expected {shape}")
    dout3 = np.ascontiguousarray(dout, dtype=x3.dtype).reshape(x3.shape)  # (N, C, L)
    N, C, _ = x3.shape
    dx = np.empty_like(x3)                                       # (N, C, L)
    dgamma = np.empty(C, dtype=np.float64)                       # (C,)
    dbeta = np.empty(C, dtype=np.float64)                        # (C,)
    kernel = _backward_parallel if use_parallel(N) else _backward_serial
    kernel(dout3, x3, g, mean, inv_std, training, dx, dgamma, dbeta)
    return dx.reshape(shape), dgamma.astype(gdtype), dbeta.astype(gdtype)
