"""ReLU and PReLU, Numba CPU kernels.

Same maths and signatures as ``tinyface.reference.activation``. Elementwise loops over
``x`` viewed as ``(N, M)`` (ReLU) or ``(N, C, L)`` (PReLU), ``prange`` over the batch.
PReLU's ``dalpha`` is reduced into per-sample partial sums ``(N, C)`` so parallel
iterations never write the same cell; the wrapper adds the partials up.
"""
import numpy as np
from numba import prange

from tinyface.kernels.threading import compile_pair, use_parallel


def _relu_forward_kernel(x, out):
    """x, out: (N, M). NaN passes through, as in np.maximum and PyTorch."""
    N, M = x.shape
    for n in prange(N):
        for i in range(M):
            v = x[n, i]
            out[n, i] = 0.0 if v <= 0.0 else v


def _relu_backward_kernel(dout, out, dx):
    """dout, out, dx: (N, M)."""
    N, M = out.shape
    for n in prange(N):
        for i in range(M):
            dx[n, i] = dout[n, i] if out[n, i] > 0.0 else 0.0


def _prelu_forward_kernel(x, alpha, out):
    """x, out: (N, C, L); alpha: (C,)."""
    N, C, L = x.shape
    for n in prange(N):
        for c in range(C):
            a = alpha[c]
            for i in range(L):
                v = x[n, c, i]
                out[n, c, i] = v if v > 0.0 else a * v


def _prelu_backward_kernel(dout, x, alpha, dx, dalpha_part):
    """dout, x, dx: (N, C, L); alpha: (C,); dalpha_part: (N, C) float64."""
    N, C, L = x.shape
    for n in prange(N):
        for c in range(C):
            a = alpha[c]
            s = 0.0
            for i in range(L):            # branch-free: the sign of x is unpredictable
                v = x[n, c, i]
                g = dout[n, c, i]
                pos = v > 0.0
                dx[n, c, i] = g if pos else a * g
                s += 0.0 if pos else np.float64(g) * v
            dalpha_part[n, c] = s


_relu_fwd = compile_pair(_relu_forward_kernel)
_relu_bwd = compile_pair(_relu_backward_kernel)
_prelu_fwd = compile_pair(_prelu_forward_kernel)
_prelu_bwd = compile_pair(_prelu_backward_kernel, fastmath={"reassoc"})  # vectorised sum


def _pick(pair, n):
    return pair[1] if use_parallel(n) else pair[0]


def _rows(x):
    """x viewed as (N, M), N the leading axis (1 for a 0-d array)."""
    n = x.shape[0] if x.ndim >= 1 else 1
    return x.reshape(n, x.size // n)


def _float(x, name):
    x = np.ascontiguousarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: x must be a float array, got dtype {x.dtype}")
    return x


def relu_forward(x):
    """out = max(x, 0).

    x: any shape, float32 (or float64).
    Returns ``out`` (x's shape and dtype) and a cache for ``relu_backward``.
    """
    x = _float(x, "relu_forward")
    out = np.empty_like(x)
    if x.size:
        _pick(_relu_fwd, _rows(x).shape[0])(_rows(x), _rows(out))
    return out, out


def relu_backward(dout, cache):
    """dx = dout where the forward output was positive, else 0.

    dout:  float array of the output's shape;
    cache: from ``relu_forward``.
    """
    out = cache
    if np.shape(dout) != out.shape:
        raise ValueError(f"relu_backward: dout has shape {np.shape(dout)}, expected {out.shape}")
    dout = np.ascontiguousarray(dout, dtype=out.dtype)
    dx = np.empty_like(out)
    if out.size:
        _pick(_relu_bwd, _rows(out).shape[0])(_rows(dout), _rows(out), _rows(dx))
    return dx


def _channels(x, alpha):
    """x as (N, C, L) matching alpha (C,) (C = 1 for a shared alpha)."""
    if alpha.ndim != 1 or alpha.size < 1:
        raise ValueError(f"prelu: alpha must have shape (1,) or (C,), got {alpha.shape}")
    if alpha.size == 1:
        if x.ndim < 1:
            raise ValueError("prelu: x must have at least one dimension")
        return x.reshape(x.shape[0], 1, -1) if x.size else x.reshape(x.shape[0], 1, 0)
    if x.ndim < 2 or x.shape[1] != alpha.size:
        raise ValueError(f"prelu: alpha has {alpha.size} values but x has shape {x.shape}; "
                         f"expected x of shape (N, {alpha.size}, ...)")
    return x.reshape(x.shape[0], x.shape[1], -1) if x.size else x.reshape(x.shape[:2] + (0,))


def prelu_forward(x, alpha):
    """out = x where x > 0, else alpha * x.

    x:     (N, C, ...) float32 (any shape with at least one axis when alpha has one value);
    alpha: (1,) or (C,) float, the learnt negative slope(s).
    Returns ``out`` (x's shape and dtype) and a cache for ``prelu_backward``.
    """
    x = _float(x, "prelu_forward")
    alpha_in = np.asarray(alpha)
    x3 = _channels(x, alpha_in)                                  # (N, C, L)
    a = np.ascontiguousarray(alpha_in, dtype=x.dtype)            # (C,)
    out3 = np.empty_like(x3)                                     # (N, C, L)
    if x.size:
        _pick(_prelu_fwd, x3.shape[0])(x3, a, out3)
    return out3.reshape(x.shape), (x3, a, x.shape, alpha_in.dtype)


def prelu_backward(dout, cache):
    """Gradients of PReLU.

    dout:  float array of the output's shape;
    cache: from ``prelu_forward``.
    Returns ``(dx, dalpha)``: dx of x's shape and dtype, dalpha of alpha's shape/dtype.
    """
    x3, a, shape, adtype = cache
    if np.shape(dout) != shape:
        raise ValueError(f"prelu_backward: dout has shape {np.shape(dout)}, expected {shape}")
    dout3 = np.ascontiguousarray(dout, dtype=x3.dtype).reshape(x3.shape)  # (N, C, L)
    dx3 = np.empty_like(x3)                                      # (N, C, L)
    part = np.zeros(x3.shape[:2], dtype=np.float64)              # (N, C) per-sample sums
    if x3.size:
        _pick(_prelu_bwd, x3.shape[0])(dout3, x3, a, dx3, part)
    return dx3.reshape(shape), part.sum(axis=0).astype(adtype)
