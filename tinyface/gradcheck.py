"""Numerical gradient checks (central differences), in the style of cs231n.

Use float64 inputs on tiny shapes: with ``h = 1e-5`` the central difference has a
truncation error of order ``h**2`` and a round-off error of order ``eps / h``, so a
correct float64 backward pass agrees to a relative error far below ``1e-6``.
"""
import numpy as np


def numerical_gradient(f, x, dout, h=1e-5):
    """Vector-Jacobian product ``d/dx sum(f(x) * dout)`` by central differences.

    f:    callable taking no arguments and returning an array (it reads ``x``);
    x:    the float64 array to perturb; it is modified in place and restored;
    dout: array of f's output shape, the upstream gradient.
    Returns an array of ``x``'s shape.
    """
    grad = np.zeros_like(x)
    flat_x = x.reshape(-1)                 # a view: perturbing it perturbs x
    flat_g = grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + h
        plus = np.sum(np.asarray(f(), dtype=np.float64) * dout)
        flat_x[i] = old - h
        minus = np.sum(np.asarray(f(), dtype=np.float64) * dout)
        flat_x[i] = old
        flat_g[i] = (plus - minus) / (2.0 * h)
    return grad


def relative_error(a, b, floor=1e-8):
    """``max |a - b| / max(floor, |a| + |b|)``, elementwise then the maximum."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(floor, np.abs(a) + np.abs(b))))


def assert_gradient(analytic, numeric, tol=1e-6, name="gradient"):
    """Raise ``AssertionError`` when the relative error exceeds ``tol``; return it."""
    err = relative_error(analytic, numeric)
    if not err < tol:
        raise AssertionError(f"{name}: relative error {err:.3e} (should be < {tol:.0e})")
    return err
