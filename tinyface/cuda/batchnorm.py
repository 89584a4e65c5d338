"""Batch normalisation on the GPU.

Same maths and signatures as ``tinyface.kernels.batchnorm``; x is viewed as (N, C, L).
Statistics and per-channel sums are float64, as in the CPU tier. Forward, training:

    1. mean[c]  = sum x / m                    reduce.channel_sums (SUM), two passes
    2. var[c]   = sum (x - mean)^2 / m         reduce.channel_sums (SQDEV), two passes
    3. inv_std  = 1 / sqrt(var + eps); running statistics updated in place   bn_stats_kernel
    4. out      = (x - mean) * inv_std * gamma + beta                        bn_forward_kernel

Evaluation skips 1-2 and reads the running statistics. Backward:

    1. sdy[c] = sum dout, sdyx[c] = sum dout * xhat       reduce.channel_sums (BN_BWD)
    2. dx = gamma * inv_std / m * (m * dout - sdy - xhat * sdyx)    (training)
       dx = gamma * inv_std * dout                                  (evaluation)
    dgamma = sdyx, dbeta = sdy (cast to float32)

The sums are two-pass reductions (per-block partial sums, then an ordered sum): no
atomics, the same result on every run.
"""
import math

import numpy as np
from numba import cuda

from tinyface.cuda.arrays import DeviceTensor, as_device, cast, empty, is_device_array
from tinyface.cuda.launch import TPB, blocks
from tinyface.cuda.reduce import BN_BWD, SQDEV, SUM, channel_sums


@cuda.jit
def bn_stats_kernel(mean, var, running_mean, running_var, training, momentum, eps, m, inv_std):
    """Per channel: inv_std = 1/sqrt(var + eps); in training, blend the batch statistics
    into the running ones (variance unbiased: * m / (m - 1)); in evaluation, copy the
    running statistics into mean and var first.
    mean, var, inv_std: (C,) float64; running_*: (C,) float32. grid: blocks(C); block: TPB."""
    c = cuda.grid(1)
    if c < mean.size:
        if training:
            running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean[c]
            running_var[c] = ((1.0 - momentum) * running_var[c]
                              + momentum * var[c] * (m / (m - 1.0)))
        else:
            mean[c] = running_mean[c]
            var[c] = running_var[c]
        inv_std[c] = 1.0 / math.sqrt(var[c] + eps)


@cuda.jit
def bn_forward_kernel(x, gamma, beta, mean, inv_std, out):
    """out = (x - mean[c]) * (gamma[c] * inv_std[c]) + beta[c].
    x, out: (N, C, L) float32; gamma, beta: (C,) float32; mean, inv_std: (C,) float64.
    grid: blocks(N*C*L); block: TPB."""
    t = cuda.grid(1)
    N, C, L = x.shape
    if t < N * C * L:
        n = t // (C * L)
        c = (t // L) % C
        i = t % L
        out[n, c, i] = (x[n, c, i] - mean[c]) * (gamma[c] * inv_std[c]) + beta[c]


@cuda.jit
def bn_backward_kernel(dout, x, gamma, mean, inv_std, sums, training, dx):
    """dx of batch norm. dout, x, dx: (N, C, L) float32; gamma: (C,) float32;
    mean, inv_std: (C,) float64; sums: (2, C) float64 = (sum dout, sum dout * xhat).
    grid: blocks(N*C*L); block: TPB."""
    t = cuda.grid(1)
    N, C, L = x.shape
    if t < N * C * L:
        n = t // (C * L)
        c = (t // L) % C
        i = t % L
        scale = gamma[c] * inv_std[c]
        if training:
            m = N * L
            xhat = (x[n, c, i] - mean[c]) * inv_std[c]
            dx[n, c, i] = scale / m * (m * dout[n, c, i] - sums[0, c] - xhat * sums[1, c])
        else:
            dx[n, c, i] = scale * dout[n, c, i]


def _check(x, gamma, beta, running_mean, running_var, training):
    if x.ndim < 2:
        raise ValueError(f"batchnorm: x must be (N, C, ...), got shape {x.shape}")
    C = x.shape[1]
    for name, a in (("gamma", gamma), ("beta", beta),
                    ("running_mean", running_mean), ("running_var", running_var)):
        if tuple(np.shape(a)) != (C,):
            raise ValueError(f"batchnorm: {name} must have shape ({C},), got {np.shape(a)}")
    if training and x.size // max(C, 1) < 2:
        raise ValueError(f"batchnorm: expected more than 1 value per channel when training, "
                         f"got input of shape {x.shape}")


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, training):
    """Normalise each channel, then scale by ``gamma`` and shift by ``beta``, on the GPU.

    x:            (N, C, H, W), (N, C) or (N, C, L) float32 DeviceTensor;
    gamma, beta:  (C,) float32, the layer's ``weight`` and ``bias``;
    running_mean, running_var: (C,) float32, updated in place when ``training``
                  (DeviceTensors; host arrays are copied up, updated, and copied back);
    momentum, eps: floats; training: bool.
    Returns ``out`` (x's shape) and a cache for ``batchnorm_backward``.
    """
    x = as_device(x, "batchnorm_forward: x")
    _check(x, gamma, beta, running_mean, running_var, training)
    N, C = x.shape[:2]
    x3 = x.data.reshape(N, C, -1)                                 # (N, C, L)
    m = N * x3.shape[2]
    g = as_device(gamma, "batchnorm_forward: gamma")
    b = as_device(beta, "batchnorm_forward: beta")
    rm = as_device(running_mean, "batchnorm_forward: running_mean")
    rv = as_device(running_var, "batchnorm_forward: running_var")
    training = bool(training)
    if training:
        mean = channel_sums(x3, SUM, scale=1.0 / m)[0]            # (C,) float64
        var = channel_sums(x3, SQDEV, mean=mean, scale=1.0 / m)[0]
    else:
        mean = cuda.device_array(C, dtype=np.float64)             # filled from the running stats
        var = cuda.device_array(C, dtype=np.float64)
    inv_std = cuda.device_array(C, dtype=np.float64)              # (C,)
    bn_stats_kernel[blocks(C), TPB](mean, var, rm.data, rv.data, training, float(momentum),
                                    float(eps), float(m), inv_std)
    out = empty(x.shape)
    bn_forward_kernel[blocks(x.size), TPB](x3, g.data, b.data, mean, inv_std,
                                           out.data.reshape(x3.shape))
    if training:                           # host running statistics: copy the update back
        for host, dev in ((running_mean, rm), (running_var, rv)):
            if not is_device_array(host):
                host[...] = dev.copy_to_host()
    return out, (x, g, mean, inv_std, training)


def batchnorm_backward(dout, cache):
    """Returns ``(dx, dgamma, dbeta)``: dx of x's shape, dgamma/dbeta (C,), DeviceTensors."""
    x, g, mean, inv_std, training = cache
    if tuple(np.shape(dout)) != x.shape:
        raise ValueError(f"batchnorm_backward: dout has shape {np.shape(dout)}, expected {x.shape}")
    dout = as_device(dout, "batchnorm_backward: dout")
    N, C = x.shape[:2]
    x3 = x.data.reshape(N, C, -1)                                 # (N, C, L)
    g3 = dout.data.reshape(x3.shape)
    sums = channel_sums(x3, BN_BWD, b3=g3, mean=mean, istd=inv_std)   # (2, C) float64
    dx = empty(x.shape)
    bn_backward_kernel[blocks(x.size), TPB](g3, x3, g.data, mean, inv_std, sums, training,
                                            dx.data.reshape(x3.shape))
    return dx, cast(DeviceTensor(sums[1])), cast(DeviceTensor(sums[0]))


_F3, _D1 = "float32[:, :, ::1]", "float64[::1]"
PTX_SIGNATURES = {
    "bn_stats_kernel": [f"void({_D1}, {_D1}, float32[::1], float32[::1], boolean, float64, "
                        f"float64, float64, {_D1})"],
    "bn_forward_kernel": [f"void({_F3}, float32[::1], float32[::1], {_D1}, {_D1}, {_F3})"],
    "bn_backward_kernel": [f"void({_F3}, {_F3}, float32[::1], {_D1}, {_D1}, "
                           f"float64[:, ::1], boolean, {_F3})"],
}
