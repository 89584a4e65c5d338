"""ReLU and PReLU on the GPU: one thread per element.

Same maths and signatures as ``tinyface.kernels.activation``. ReLU's cache is its
output (dx = dout where out > 0). PReLU views x as ``(N, C, L)`` (C = 1 for a shared
slope); its slope gradient is a per-channel sum, done by the deterministic two-pass
reduction of ``tinyface.cuda.reduce`` (mode PRELU).
"""
import numpy as np
from numba import cuda, float32

from tinyface.cuda.arrays import as_device, empty
from tinyface.cuda.launch import TPB, blocks
from tinyface.cuda.reduce import PRELU, channel_sums, sum_row


@cuda.jit
def relu_forward_kernel(x, out):
    """out = max(x, 0); NaN passes through. x, out: (n,). grid: blocks(n); block: TPB."""
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        out[i] = float32(0.0) if v <= 0.0 else v


@cuda.jit
def relu_backward_kernel(dout, out, dx):
    """dx = dout where out > 0, else 0. All (n,). grid: blocks(n); block: TPB."""
    i = cuda.grid(1)
    if i < dx.size:
        dx[i] = dout[i] if out[i] > 0.0 else float32(0.0)


@cuda.jit
def prelu_forward_kernel(x, alpha, out):
    """out = x if x > 0 else alpha[c] * x. x, out: (N, C, L); alpha: (C,).
    grid: blocks(N*C*L); block: TPB."""
    t = cuda.grid(1)
    N, C, L = x.shape
    if t < N * C * L:
        n = t // (C * L)
        c = (t // L) % C
        i = t % L
        v = x[n, c, i]
        out[n, c, i] = v if v > 0.0 else alpha[c] * v


@cuda.jit
def prelu_backward_kernel(dout, x, alpha, dx):
    """dx = dout if x > 0 else alpha[c] * dout. All (N, C, L) but alpha (C,).
    grid: blocks(N*C*L); block: TPB."""
    t = cuda.grid(1)
    N, C, L = x.shape
    if t < N * C * L:
        n = t // (C * L)
        c = (t // L) % C
        i = t % L
        g = dout[n, c, i]
        dx[n, c, i] = g if x[n, c, i] > 0.0 else alpha[c] * g


def _flat(t):
    return t.data.reshape(t.size)


def relu_forward(x):
    """out = max(x, 0). x: any shape, float32 DeviceTensor. Returns (out, cache)."""
    x = as_device(x, "relu_forward: x")
    out = empty(x.shape)
    if x.size:
        relu_forward_kernel[blocks(x.size), TPB](_flat(x), _flat(out))
    return out, out


def relu_backward(dout, cache):
    """dx = dout where the forward output was positive, else 0."""
    out = cache
    if tuple(np.shape(dout)) != out.shape:
        raise ValueError(f"relu_backward: dout has shape {np.shape(dout)}, expected {out.shape}")
    dout = as_device(dout, "relu_backward: dout")
    dx = empty(out.shape)
    if out.size:
        relu_backward_kernel[blocks(out.size), TPB](_flat(dout), _flat(out), _flat(dx))
    return dx


def _channels(x_shape, alpha_shape):
    """x's shape as (N, C, L) matching alpha (C,) (C = 1 for a shared alpha); the same
    checks and messages as the CPU tier."""
    if len(alpha_shape) != 1 or alpha_shape[0] < 1:
        raise ValueError(f"prelu: alpha must have shape (1,) or (C,), got {alpha_shape}")
    C = alpha_shape[0]
    size = int(np.prod(x_shape))
    if C == 1:
        if len(x_shape) < 1:
            raise ValueError("prelu: x must have at least one dimension")
        return (x_shape[0], 1, size // x_shape[0] if x_shape[0] else 0)
    if len(x_shape) < 2 or x_shape[1] != C:
        raise ValueError(f"prelu: alpha has {C} values but x has shape {x_shape}; "
                         f"expected x of shape (N, {C}, ...)")
    return (x_shape[0], C, size // (x_shape[0] * C) if x_shape[0] else 0)


def prelu_forward(x, alpha):
    """out = x where x > 0, else alpha * x.

    x: (N, C, ...) float32 DeviceTensor; alpha: (1,) or (C,). Returns (out, cache).
    """
    x = as_device(x, "prelu_forward: x")
    a = as_device(alpha, "prelu_forward: alpha")
    shape3 = _channels(x.shape, a.shape)                         # (N, C, L)
    x3 = x.data.reshape(shape3)
    out = empty(x.shape)
    if x.size:
        prelu_forward_kernel[blocks(x.size), TPB](x3, a.data, out.data.reshape(shape3))
    return out, (x, a, shape3)


def prelu_backward(dout, cache):
    """Returns (dx of x's shape, dalpha of alpha's shape), DeviceTensors."""
    x, a, shape3 = cache
    if tuple(np.shape(dout)) != x.shape:
        raise ValueError(f"prelu_backward: dout has shape {np.shape(dout)}, expected {x.shape}")
    dout = as_device(dout, "prelu_backward: dout")
    x3 = x.data.reshape(shape3)
    g3 = dout.data.reshape(shape3)
    dx = empty(x.shape)
    if x.size:
        prelu_backward_kernel[blocks(x.size), TPB](g3, x3, a.data, dx.data.reshape(shape3))
    dalpha = sum_row(channel_sums(x3, PRELU, b3=g3), 0)           # (C,) float32
    return dx, dalpha.reshape(a.shape)


PTX_SIGNATURES = {
    "relu_forward_kernel": ["void(float32[::1], float32[::1])"],
    "relu_backward_kernel": ["void(float32[::1], float32[::1], float32[::1])"],
    "prelu_forward_kernel": ["void(float32[:, :, ::1], float32[::1], float32[:, :, ::1])"],
    "prelu_backward_kernel": ["void(float32[:, :, ::1], float32[:, :, ::1], float32[::1], "
                              "float32[:, :, ::1])"],
}
