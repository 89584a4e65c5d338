"""2-D convolution on the GPU: im2col + the tiled GEMM, the whole batch at once.

Layout: NCHW, weights (Cout, Cin, kh, kw), as the CPU tier. With ``K = Cin*kh*kw`` and
``P = OH*OW``:

    forward:  cols[n] (K, P)     = im2col(x[n])                       im2col_kernel
              out[n] (Cout, P)   = W (Cout, K) @ cols[n]   + bias     gemm_tiled, batch N
    backward: dcols[n] (K, P)    = W.T @ dout[n]                      gemm_tiled, batch N
              dx[n]              = col2im(dcols[n])                   col2im_kernel (gather)
              dW (Cout, K)       = sum_n dout[n] @ cols[n].T          gemm_tiled + sum_batches
              db (Cout,)         = sum over n, p of dout               reduce.channel_sums

The output of the batched GEMM lands directly in NCHW order (no transpose). ``col2im``
is written as a gather (one thread per input pixel adds up the columns that read it),
so it needs no atomics and is deterministic. ``cols`` lives in a reusable scratch
buffer (N*K*P floats: 151 MB for the student's 16->16 conv at batch 1,024) and is
recomputed in the backward pass rather than kept.
"""
from numba import cuda, float32

from tinyface.cuda import gemm
from tinyface.cuda.arrays import as_device, empty, scratch
from tinyface.cuda.launch import TPB, blocks
from tinyface.cuda.reduce import SUM, channel_sums, sum_row
from tinyface.kernels.conv import _pair, conv_output_size


@cuda.jit
def im2col_kernel(x, kh, kw, sh, sw, ph, pw, OH, OW, cols):
    """cols[n, (c*kh + i)*kw + j, oh*OW + ow] = x[n, c, oh*sh + i - ph, ow*sw + j - pw]
    (zero in the padding). x: (N, C, H, W); cols: (N, K, P).
    grid: blocks(N*K*P); block: TPB; one thread per element of cols, P fastest, so
    neighbouring threads write neighbouring addresses."""
    t = cuda.grid(1)
    N, K, P = cols.shape
    if t < N * K * P:
        n = t // (K * P)
        r = t - n * (K * P)
        k = r // P
        p = r - k * P
        c = k // (kh * kw)
        ij = k - c * (kh * kw)
        i = ij // kw
        j = ij - i * kw
        oh = p // OW
        ow = p - oh * OW
        ih = oh * sh + i - ph
        iw = ow * sw + j - pw
        if 0 <= ih < x.shape[2] and 0 <= iw < x.shape[3]:
            cols[n, k, p] = x[n, c, ih, iw]
        else:
            cols[n, k, p] = float32(0.0)


@cuda.jit
def col2im_kernel(dcols, kh, kw, sh, sw, ph, pw, OH, OW, dx):
    """dx[n, c, h, w] = sum of dcols[n, k, p] over the (k, p) whose im2col read x[n, c, h, w].

    dcols: (N, K, P); dx: (N, C, H, W). grid: blocks(N*C*H*W); block: TPB; one thread
    per input pixel (a gather: no two threads write the same cell, no atomics).
    Pixel (h, w) is read by kernel offset (i, j) at output (oh, ow) when
    ``oh*sh = h + ph - i`` and ``ow*sw = w + pw - j``.
    """
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    if t < N * C * H * W:
        w = t % W
        h = (t // W) % H
        c = (t // (W * H)) % C
        n = t // (W * H * C)
        s = float32(0.0)
        for i in range(kh):
            a = h + ph - i
            if a < 0 or a % sh != 0:
                continue
            oh = a // sh
            if oh >= OH:
                continue
            for j in range(kw):
                b = w + pw - j
                if b < 0 or b % sw != 0:
                    continue
                ow = b // sw
                if ow >= OW:
                    continue
                s += dcols[n, (c * kh + i) * kw + j, oh * OW + ow]
        dx[n, c, h, w] = s


def _geometry(x_shape, w_shape, stride, padding):
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    N, C, H, W = x_shape
    Cout, Cin, kh, kw = w_shape
    if C != Cin:
        raise ValueError(f"conv2d: input has {C} channels, weight expects {Cin}")
    OH, OW = conv_output_size(H, W, kh, kw, sh, sw, ph, pw)
    if OH < 1 or OW < 1:
        raise ValueError(f"conv2d: input {H}x{W} too small for kernel {kh}x{kw} "
                         f"with padding {(ph, pw)}")
    return kh, kw, sh, sw, ph, pw, OH, OW


def _im2col(x, geom, name):
    kh, kw, sh, sw, ph, pw, OH, OW = geom
    N, C = x.shape[:2]
    cols = scratch(name, (N, C * kh * kw, OH * OW))               # (N, K, P)
    im2col_kernel[blocks(cols.size), TPB](x.data, kh, kw, sh, sw, ph, pw, OH, OW, cols)
    return cols


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """Convolution (cross-correlation, as PyTorch's Conv2d) on the GPU.

    x: (N, Cin, H, W) float32 DeviceTensor (a host array is copied up);
    w: (Cout, Cin, kh, kw); b: (Cout,) or None; stride, padding: int or (h, w) pair.
    Returns out: (N, Cout, OH, OW) DeviceTensor and the cache for ``conv2d_backward``.
    """
    x = as_device(x, "conv2d_forward: x")
    w = as_device(w, "conv2d_forward: weight")
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d: x {x.shape} and weight {w.shape} must both be 4-D")
    geom = _geometry(x.shape, w.shape, stride, padding)
    N, Cout = x.shape[0], w.shape[0]
    OH, OW = geom[6], geom[7]
    cols = _im2col(x, geom, "conv.cols")                          # (N, K, P)
    out = empty((N, Cout, OH * OW))                               # (N, Cout, P)
    w3 = w.data.reshape(1, Cout, -1)                              # (1, Cout, K)
    if b is None:
        gemm.batched_matmul(w3, cols, out.data)
    else:
        b = as_device(b, "conv2d_forward: bias")
        gemm.batched_matmul(w3, cols, out.data, bias=b.data, bias_mode=gemm.BIAS_ROW)
    return out.reshape(N, Cout, OH, OW), (x, w, b is not None, geom)


def conv2d_backward(dout, cache):
    """dout: (N, Cout, OH, OW) -> (dx (N,Cin,H,W), dw (Cout,Cin,kh,kw), db (Cout,) or None),
    all DeviceTensors."""
    x, w, has_bias, geom = cache
    kh, kw, sh, sw, ph, pw, OH, OW = geom
    N, Cout = x.shape[0], w.shape[0]
    dout = as_device(dout, "conv2d_backward: dout")
    if dout.shape != (N, Cout, OH, OW):
        raise ValueError(f"conv2d_backward: dout has shape {dout.shape}, expected {(N, Cout, OH, OW)}")
    g3 = dout.data.reshape(N, Cout, OH * OW)                      # (N, Cout, P)
    w3 = w.data.reshape(1, Cout, -1)                              # (1, Cout, K)
    K = w3.shape[2]
    # dx: dcols = W.T @ dout[n], then the gather back to pixels
    dcols = scratch("conv.dcols", (N, K, OH * OW))                # (N, K, P)
    gemm.batched_matmul(w3, g3, dcols, trans_a=True)
    dx = empty(x.shape)                                           # (N, Cin, H, W)
    col2im_kernel[blocks(dx.size), TPB](dcols, kh, kw, sh, sw, ph, pw, OH, OW, dx.data)
    # dW = sum_n dout[n] @ cols[n].T, with cols recomputed
    cols = _im2col(x, geom, "conv.cols")                          # (N, K, P)
    dw = empty((Cout, K))                                         # (Cout, K)
    gemm.matmul_sum(g3, cols, dw.data, trans_b=True)
    db = None
    if has_bias:
        db = sum_row(channel_sums(g3, SUM), 0)                   # (Cout,) float32
    return dx, dw.reshape(w.shape), db


PTX_SIGNATURES = {
    "im2col_kernel": ["void(float32[:, :, :, ::1], int64, int64, int64, int64, int64, int64, "
                      "int64, int64, float32[:, :, ::1])"],
    "col2im_kernel": ["void(float32[:, :, ::1], int64, int64, int64, int64, int64, int64, "
                      "int64, int64, float32[:, :, :, ::1])"],
}
