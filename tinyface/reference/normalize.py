"""Row-wise L2 normalisation, NumPy reference: ``y = x / max(||x||, eps)``.

The step before a cosine comparison, and before the normalised feature regression of
distillation (``tinyface.distill``): regressing unit vectors matches directions, not
lengths. With ``r = max(||x||, eps)`` per row and ``y = x / r``, the gradient is the
part of ``dy`` orthogonal to ``y``, scaled by ``1 / r``::

    dx = (dy - y * <y, dy>) / r

(rows shorter than ``eps`` use the same formula: they are treated as normalised).
Norms are accumulated in float64.
"""
import numpy as np

DEFAULT_EPS = 1e-12


def check_rows(x, name="x"):
    """``x`` as an (N, D) float array (integers become float32); ValueError otherwise."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {x.shape}")
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    return x


def l2_normalize_forward(x, eps=DEFAULT_EPS):
    """x: (N, D) float. Returns ``(y, cache)``: y (N, D) of x's dtype, rows of unit norm;
    cache ``(y, r)`` with r (N, 1) float64, the clamped row norms."""
    x = check_rows(x)
    r = np.maximum(np.sqrt(np.sum(np.square(x, dtype=np.float64), axis=1, keepdims=True)),
                   eps)                                                  # (N, 1) float64
    y = (x / r).astype(x.dtype)                                          # (N, D)
    return y, (y, r)


def l2_normalize_backward(dy, cache):
    """dy: (N, D). Returns dx: (N, D) ``(dy - y <y, dy>) / r``, in y's dtype."""
    y, r = cache
    dy = np.asarray(dy)
    if dy.shape != y.shape:
        raise ValueError(f"dy has shape {dy.shape}, the forward output {y.shape}")
    radial = np.sum(np.asarray(y, np.float64) * dy, axis=1, keepdims=True)  # (N, 1)
    return ((dy - y * radial) / r).astype(y.dtype)
