"""Seeded inverted dropout on the GPU: the CPU tier's SplitMix64 hash, ported.

Element ``i``'s draw is SplitMix64 of ``key + (i + 1) * GAMMA`` (all uint64, modulo
2**64), a pure function of the seed and the flat index. Every thread hashes its own
index, so the GPU draws exactly the CPU tier's mask (``tests/test_cuda_kernels.py``
compares them element for element), whatever the launch geometry. Nothing is stored:
the backward pass recomputes the mask from the key.

Every operand of the hash is unsigned (``np.uint64``): in numba, int64 mixed with
uint64 becomes float64 and the hash would silently break.
"""
import warnings

import numpy as np
from numba import cuda, float32

from tinyface.cuda.arrays import as_device, empty
from tinyface.cuda.launch import SIMULATOR, TPB, blocks
from tinyface.reference.dropout import check_dropout_args as _check_args

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_ONE = np.uint64(1)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)


@cuda.jit
def dropout_kernel(x, key, threshold, scale, out):
    """out[i] = x[i] * scale if element i is kept, else 0.
    x, out: (n,) float32; key, threshold: uint64; scale: float32.
    grid: blocks(n); block: TPB; one thread per element."""
    i = cuda.grid(1)
    if i < x.size:
        z = key + (np.uint64(i) + _ONE) * _GAMMA
        z = (z ^ (z >> _S30)) * _MIX1
        z = (z ^ (z >> _S27)) * _MIX2
        z = z ^ (z >> _S31)
        if (z >> _S11) >= threshold:             # top 53 bits against floor(p * 2**53)
            out[i] = x[i] * scale
        else:
            out[i] = float32(0.0)


def _apply(x, key, threshold, scale):
    out = empty(x.shape)
    if x.size:
        with warnings.catch_warnings():
            if SIMULATOR:     # simulated threads do the uint64 wrap-around in NumPy scalars
                warnings.simplefilter("ignore", RuntimeWarning)
            dropout_kernel[blocks(x.size), TPB](x.data.reshape(x.size), np.uint64(key),
                                                np.uint64(threshold), np.float32(scale),
                                                out.data.reshape(x.size))
    return out


def dropout_forward(x, p, training, seed):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    x: any shape, float32 DeviceTensor; p: float in [0, 1); training: bool (the
    identity otherwise, as with p == 0); seed: int, selects the mask.
    Returns ``out`` and a cache for ``dropout_backward``.
    """
    p, key, threshold = _check_args(p, seed)
    x = as_device(x, "dropout_forward: x")
    if not training or p == 0.0:
        return x, (None, x.shape)
    scale = np.float32(1.0 / (1.0 - p))
    return _apply(x, key, threshold, scale), ((key, threshold, scale), x.shape)


def dropout_backward(dout, cache):
    """dx = dout * mask / (1 - p), the mask recomputed from the forward's key."""
    state, shape = cache
    if tuple(np.shape(dout)) != tuple(shape):
        raise ValueError(f"dropout_backward: dout has shape {np.shape(dout)}, expected {shape}")
    dout = as_device(dout, "dropout_backward: dout")
    if state is None:
        return dout
    key, threshold, scale = state
    return _apply(dout, key, threshold, scale)


PTX_SIGNATURES = {
    "dropout_kernel": ["void(float32[::1], uint64, uint64, float32, float32[::1])"],
}
