"""Zero padding at the end of the channel and spatial axes on the GPU: one thread per
output element forward, one per input element backward.

Same maths and signatures as ``tinyface.kernels.pad``: ``out[:, :C, :H, :W] = x``,
zeros elsewhere; the gradient is the crop ``dout[:, :C, :H, :W]``. Pure copies: the
two tiers agree bit for bit.
"""
import numpy as np
from numba import cuda, float32

from tinyface.cuda.arrays import as_device, empty
from tinyface.cuda.launch import TPB, blocks
from tinyface.reference.pad import pad_geometry as _geometry   # shared argument checks


@cuda.jit
def zero_pad_forward_kernel(x, out):
    """out[n, c, h, w] = x[n, c, h, w] inside x's extent, else 0.
    x: (N, C, H, W) float32; out: (N, Co, Ho, Wo) float32, Co >= C, Ho >= H, Wo >= W.
    grid: blocks(N*Co*Ho*Wo); block: TPB; one thread per output element."""
    t = cuda.grid(1)
    N, Co, Ho, Wo = out.shape
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    if t < N * Co * Ho * Wo:                      # bounds guard: the last block overhangs
        w = t % Wo
        h = (t // Wo) % Ho
        c = (t // (Wo * Ho)) % Co
        n = t // (Wo * Ho * Co)
        if c < C and h < H and w < W:
            out[n, c, h, w] = x[n, c, h, w]
        else:
            out[n, c, h, w] = float32(0.0)


@cuda.jit
def zero_pad_backward_kernel(dout, dx):
    """dx[n, c, h, w] = dout[n, c, h, w]: the crop to dx's extent.
    dout: (N, Co, Ho, Wo) float32; dx: (N, C, H, W) float32.
    grid: blocks(N*C*H*W); block: TPB; one thread per input element."""
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    if t < N * C * H * W:
        w = t % W
        h = (t // W) % H
        c = (t // (W * H)) % C
        n = t // (W * H * C)
        dx[n, c, h, w] = dout[n, c, h, w]


def zero_pad_forward(x, channels, height, width):
    """Pad x with zeros at the end of its channel, row and column axes, on the GPU.

    x: (N, C, H, W) float32 DeviceTensor; channels >= C, height >= H, width >= W: ints.
    Returns ``out`` (N, channels, height, width) and a cache for ``zero_pad_backward``.
    """
    x = as_device(x, "zero_pad_forward: x")
    Co, Ho, Wo = _geometry(x.shape, channels, height, width)
    out = empty((x.shape[0], Co, Ho, Wo))
    if out.size:
        zero_pad_forward_kernel[blocks(out.size), TPB](x.data, out.data)
    return out, (x.shape, out.shape)


def zero_pad_backward(dout, cache):
    """The crop back to the input's extent. Returns dx (N, C, H, W), a DeviceTensor."""
    shape, out_shape = cache
    if tuple(np.shape(dout)) != out_shape:
        raise ValueError(f"zero_pad_backward: dout has shape {np.shape(dout)}, "
                         f"expected {out_shape}")
    dout = as_device(dout, "zero_pad_backward: dout")
    dx = empty(shape)
    if dx.size:
        zero_pad_backward_kernel[blocks(dx.size), TPB](dout.data, dx.data)
    return dx


_F4 = "float32[:, :, :, ::1]"
PTX_SIGNATURES = {
    "zero_pad_forward_kernel": [f"void({_F4}, {_F4})"],
    "zero_pad_backward_kernel": [f"void({_F4}, {_F4})"],
}
