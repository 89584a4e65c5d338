"""Unrolling receptive fields, the step both convolution paths start from.

``im2col`` writes one sample's windows as columns, ``cols[(c, i, j), p]`` for output
pixel p; ``col2im_add`` adds such columns back into the sample's gradient. ``conv.py``
places a few samples side by side, ``conv_blocked.py`` a whole chunk of the batch.
"""
import numba

JIT = dict(cache=True, fastmath=True)


@numba.njit(**JIT)
def im2col(x, kh, kw, sh, sw, ph, pw, OH, OW, cols, off):
    """x: (C, H, W) one sample -> cols[:, off:off + OH*OW] of cols: (C*kh*kw, G*OH*OW).

    Zeros where the window overlaps the padding.
    """
    C, H, W = x.shape
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = cols[(c * kh + i) * kw + j]              # (G*OH*OW,)
                for oh in range(OH):
                    ih = oh * sh + i - ph
                    base = off + oh * OW
                    if ih < 0 or ih >= H:
                        for ow in range(OW):
                            row[base + ow] = 0.0
                    else:
                        xr = x[c, ih]                          # (W,)
                        for ow in range(OW):
                            iw = ow * sw + j - pw
                            row[base + ow] = xr[iw] if 0 <= iw < W else 0.0


@numba.njit(**JIT)
def col2im_add(cols, kh, kw, sh, sw, ph, pw, OH, OW, dx, off):
    """Scatter-add cols[:, off:off + OH*OW] back into dx: (C, H, W)."""
    C, H, W = dx.shape
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = cols[(c * kh + i) * kw + j]
                for oh in range(OH):
                    ih = oh * sh + i - ph
                    if ih < 0 or ih >= H:
                        continue
                    base = off + oh * OW
                    for ow in range(OW):
                        iw = ow * sw + j - pw
                        if 0 <= iw < W:
                            dx[c, ih, iw] += row[base + ow]
