"""2-D convolution, NumPy reference: slow and obvious.

Loops over the kernel's (i, j) offsets; each offset contributes a strided window of
the padded input times one (Cout, Cin) slice of the weights.
"""
import numpy as np


def _pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """x: (N, Cin, H, W); w: (Cout, Cin, kh, kw); b: (Cout,) or None.

    Returns out: (N, Cout, OH, OW) with ``OH = (H + 2*ph - kh) // sh + 1``, and a cache.
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    N, C, H, W = x.shape
    Cout, Cin, kh, kw = w.shape
    if C != Cin:
        raise ValueError(f"conv2d: input has {C} channels, weight expects {Cin}")
    OH, OW = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))     # (N, C, H+2ph, W+2pw)
    out = np.zeros((N, Cout, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            window = xp[:, :, i:i + sh * OH:sh, j:j + sw * OW:sw]   # (N, C, OH, OW)
            out += np.einsum("nchw,oc->nohw", window, w[:, :, i, j])
    if b is not None:
        out += b.reshape(1, Cout, 1, 1)
    return out, (x, w, b is not None, (sh, sw, ph, pw))


def conv2d_backward(dout, cache):
    """dout: (N, Cout, OH, OW) -> (dx (N,Cin,H,W), dw (Cout,Cin,kh,kw), db (Cout,) or None)."""
    x, w, has_bias, (sh, sw, ph, pw) = cache
    N, C, H, W = x.shape
    Cout, Cin, kh, kw = w.shape
    OH, OW = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros_like(xp)                                   # (N, C, H+2ph, W+2pw)
    dw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            window = xp[:, :, i:i + sh * OH:sh, j:j + sw * OW:sw]   # (N, C, OH, OW)
            dw[:, :, i, j] = np.einsum("nohw,nchw->oc", dout, window)
            dxp[:, :, i:i + sh * OH:sh, j:j + sw * OW:sw] += np.einsum("nohw,oc->nchw", dout, w[:, :, i, j])
    dx = dxp[:, :, ph:ph + H, pw:pw + W]
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return np.ascontiguousarray(dx), dw, db
