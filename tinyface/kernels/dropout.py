"""Seeded inverted dropout, Numba CPU kernel.

Same maths, signatures and *masks* as ``tinyface.reference.dropout``: element ``i``'s
draw is SplitMix64 of ``key + (i + 1) * GAMMA``, a pure function of the seed and the
flat index, so the ``prange`` iterations need no shared generator state and the mask
is the same on any number of threads. Nothing is stored: the backward pass recomputes
the mask from the seed (a few integer multiplies per element, cheaper than a mask's
memory traffic).
"""
import numpy as np
from numba import prange

from tinyface.kernels.threading import compile_pair, use_parallel
from tinyface.reference.dropout import check_dropout_args as _check_args

# uint64 constants: keep every operand of the hash unsigned (int64 mixed with uint64
# would turn into float64 in Numba)
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)


def _dropout_kernel(x, key, threshold, scale, out):
    """x, out: (N, M); key, threshold: uint64; scale: x's dtype.

    out[n, i] = x[n, i] * scale if element n*M+i is kept, else 0.
    """
    N, M = x.shape
    for n in prange(N):
        base = np.uint64(n * M + 1)
        for i in range(M):
            z = key + (base + np.uint64(i)) * _GAMMA
            z = (z ^ (z >> _S30)) * _MIX1
            z = (z ^ (z >> _S27)) * _MIX2
            z = z ^ (z >> _S31)
            if (z >> _S11) >= threshold:
                out[n, i] = x[n, i] * scale
            else:
                out[n, i] = 0.0


_dropout = compile_pair(_dropout_kernel)


def _apply(x, key, threshold, scale):
    """Run the kernel on x viewed as (N, M); return the masked, scaled copy."""
    out = np.empty_like(x)
    if x.size:
        n = x.shape[0] if x.ndim else 1
        kernel = _dropout[1] if use_parallel(n) else _dropout[0]
        with np.errstate(over="ignore"):         # uint64 wrap-around is the point (NUMBA_DISABLE_JIT)
            kernel(x.reshape(n, -1), np.uint64(key), np.uint64(threshold), scale,
                   out.reshape(n, -1))
    return out


def dropout_forward(x, p, training, seed):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    x:        any shape, float32 (or float64);
    p:        float in [0, 1), the drop probability;
    training: bool; in evaluation mode (or with p == 0) the output is x itself;
    seed:     int, selects the mask (same seed, same shape: same mask).
    Returns ``out`` (x's shape and dtype) and a cache for ``dropout_backward``.
    """
    x = np.asarray(x)
    p, key, threshold = _check_args(p, seed)
    if not training or p == 0.0:
        return x, (None, x.shape)
    if x.dtype.kind != "f":
        raise TypeError(f"dropout_forward: x must be a float array, got dtype {x.dtype}")
    x = np.ascontiguousarray(x)
    scale = x.dtype.type(1.0 / (1.0 - p))
    return _apply(x, key, threshold, scale), ((key, threshold, scale), x.shape)


def dropout_backward(dout, cache):
    """dx = dout * mask / (1 - p), the mask recomputed from the forward's seed.

    dout: float array of the output's shape; cache: from ``dropout_forward``.
    """
    state, shape = cache
    if np.shape(dout) != shape:
        raise ValueError(f"dropout_backward: dout has shape {np.shape(dout)}, expected {shape}")
    if state is None:
        return np.asarray(dout)
    key, threshold, scale = state
    return _apply(np.ascontiguousarray(dout, dtype=scale.dtype), key, threshold, scale)
