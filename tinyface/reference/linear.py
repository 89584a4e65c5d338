"""Fully connected layer, NumPy reference: ``out = x @ W.T + b``."""


def linear_forward(x, w, b=None):
    """x: (N, in); w: (out, in); b: (out,) or None -> out: (N, out), cache."""
    out = x @ w.T
    if b is not None:
        out = out + b
    return out, (x, w, b is not None)


def linear_backward(dout, cache):
    """dout: (N, out) -> (dx (N, in), dw (out, in), db (out,) or None)."""
    x, w, has_bias = cache
    dx = dout @ w
    dw = dout.T @ x
    db = dout.sum(axis=0) if has_bias else None
    return dx, dw, db
