"""ReLU and PReLU, NumPy reference.

PReLU follows PyTorch's ``nn.PReLU``: ``out = x if x > 0 else alpha * x`` with one
shared ``alpha`` (shape ``(1,)``) or one per channel (shape ``(C,)``, channel axis 1).
"""
import numpy as np


def relu_forward(x):
    """out = max(x, 0).

    x: any shape, float.
    Returns ``out`` (x's shape and dtype) and a cache for ``relu_backward``.
    """
    x = np.asarray(x)
    out = np.maximum(x, 0).astype(x.dtype, copy=False)
    return out, out


def relu_backward(dout, cache):
    """dx = dout where the forward output was positive, else 0.

    dout:  float array of the output's shape;
    cache: from ``relu_forward``.
    """
    out = cache
    dout = np.asarray(dout)
    if dout.shape != out.shape:
        raise ValueError(f"relu_backward: dout has shape {dout.shape}, expected {out.shape}")
    return np.where(out > 0, dout, 0).astype(out.dtype)


def _alpha_view(x, alpha):
    """alpha as an array broadcastable against x: (1,) -> scalar, (C,) -> (1, C, 1, ...)."""
    alpha = np.asarray(alpha)
    if alpha.ndim != 1 or alpha.size < 1:
        raise ValueError(f"prelu: alpha must have shape (1,) or (C,), got {alpha.shape}")
    if alpha.size == 1:
        if x.ndim < 1:
            raise ValueError("prelu: x must have at least one dimension")
        return alpha.reshape(()), ()
    if x.ndim < 2 or x.shape[1] != alpha.size:
        raise ValueError(f"prelu: alpha has {alpha.size} values but x has shape {x.shape}; "
                         f"expected x of shape (N, {alpha.size}, ...)")
    shape = (1, alpha.size) + (1,) * (x.ndim - 2)
    return alpha.reshape(shape), tuple(a for a in range(x.ndim) if a != 1)


def prelu_forward(x, alpha):
    """out = x where x > 0, else alpha * x.

    x:     (N, C, ...) float (any shape with at least one axis when alpha has one value);
    alpha: (1,) or (C,) float, the learnt negative slope(s).
    Returns ``out`` (x's shape and dtype) and a cache for ``prelu_backward``.
    """
    x = np.asarray(x)
    a, _ = _alpha_view(x, alpha)
    out = np.where(x > 0, x, a.astype(x.dtype) * x).astype(x.dtype)
    return out, (x, np.asarray(alpha))


def prelu_backward(dout, cache):
    """Gradients of PReLU.

    dout:  float array of the output's shape;
    cache: from ``prelu_forward``.
    Returns ``(dx, dalpha)``: ``dx = dout`` where x > 0 else ``alpha * dout``;
    ``dalpha = sum(dout * x)`` over the x <= 0 entries (per channel), alpha's shape/dtype.
    """
    x, alpha = cache
    dout = np.asarray(dout)
    if dout.shape != x.shape:
        raise ValueError(f"prelu_backward: dout has shape {dout.shape}, expected {x.shape}")
    a, axes = _alpha_view(x, alpha)
    pos = x > 0
    dx = np.where(pos, dout, a.astype(x.dtype) * dout).astype(x.dtype)
    contrib = np.where(pos, 0.0, dout.astype(np.float64) * x)   # x's shape, float64
    if alpha.size == 1:
        dalpha = np.array([contrib.sum()])                       # (1,)
    else:
        dalpha = contrib.sum(axis=axes)                          # (C,)
    return dx, dalpha.astype(alpha.dtype)
