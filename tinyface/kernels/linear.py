"""Fully connected layer, Numba tier: ``out = x @ W.T + b`` on the hand-written GEMM.

x: (N, in); W: (out, in) as in PyTorch. The products are

    forward:  out (N, out) = x (N, in) @ W.T            (gemm_nt, rows split over threads)
    backward: dx  (N, in)  = dout (N, out) @ W           (gemm_nn)
              dW  (out, in) = dout.T (out, N) @ x        (gemm_nn on a strided view)
              db  (out,)    = sum over N of dout
"""
import numpy as np

from tinyface.kernels.gemm import matmul


def linear_forward(x, w, b=None):
    """x: (N, in) float; w: (out, in); b: (out,) or None -> out: (N, out), cache."""
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"linear: x {x.shape} and weight {w.shape} do not fit (N, in) @ (out, in).T")
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w, dtype=x.dtype)
    out = matmul(x, w, transpose_b=True)                    # (N, out)
    if b is not None:
        out += b
    return out, (x, w, b is not None)


def linear_backward(dout, cache):
    """dout: (N, out) -> (dx (N, in), dw (out, in), db (out,) or None)."""
    x, w, has_bias = cache
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    dx = matmul(dout, w)                                    # (N, in)
    dw = matmul(dout.T, x)                                  # (out, in)
    db = dout.sum(axis=0) if has_bias else None
    return dx, dw, db
