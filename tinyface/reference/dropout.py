"""Seeded inverted dropout, NumPy reference.

The mask is a pure function of ``(seed, element index)``, so both tiers (and any
number of threads) draw the identical mask. Each element's 64-bit draw is SplitMix64,
a counter-based generator::

    key    = mix(seed + GAMMA)                    (all arithmetic modulo 2**64)
    draw_i = mix(key + (i + 1) * GAMMA)           i: flat C-order index into x
    mix(z) = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
             z ^= z >> 31

Element ``i`` is kept when the top 53 bits of ``draw_i`` are ``>= floor(p * 2**53)``,
i.e. with probability ``1 - p``; kept elements are scaled by ``1 / (1 - p)`` so the
expected output equals the input and evaluation mode is the identity.
"""
import numpy as np

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def _mix_int(z):
    """SplitMix64's finaliser on a Python int (modulo 2**64)."""
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def check_dropout_args(p, seed):
    """Validate ``p`` and ``seed``; return ``(p, key, threshold)`` as Python numbers."""
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"dropout seed must be an int, got {seed!r}")
    key = _mix_int((int(seed) + GAMMA) & MASK64)
    threshold = int(p * 2.0 ** 53)                  # exact: p * 2**53 is exact in float64
    return p, key, threshold


def dropout_mask(size, key, threshold):
    """Boolean keep-mask of ``size`` flat elements (True: kept)."""
    z = np.uint64(key) + np.arange(1, size + 1, dtype=np.uint64) * np.uint64(GAMMA)  # (size,)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)) >= np.uint64(threshold)


def dropout_forward(x, p, training, seed):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    x:        any shape, float;
    p:        float in [0, 1), the drop probability;
    training: bool; in evaluation mode (or with p == 0) the output is x itself;
    seed:     int, selects the mask (same seed, same shape: same mask).
    Returns ``out`` (x's shape and dtype) and a cache for ``dropout_backward``.
    """
    x = np.asarray(x)
    p, key, threshold = check_dropout_args(p, seed)
    if not training or p == 0.0:
        return x, (None, x.shape)
    scale = x.dtype.type(1.0 / (1.0 - p))
    keep = dropout_mask(x.size, key, threshold).reshape(x.shape)
    out = np.where(keep, x * scale, x.dtype.type(0))
    return out, ((keep, scale), x.shape)


def dropout_backward(dout, cache):
    """dx = dout * mask / (1 - p), the same mask as the forward pass.

    dout: float array of the output's shape; cache: from ``dropout_forward``.
    """
    state, shape = cache
    dout = np.asarray(dout)
    if dout.shape != shape:
        raise ValueError(f"dropout_backward: dout has shape {dout.shape}, expected {shape}")
    if state is None:
        return dout
    keep, scale = state
    dout = dout.astype(scale.dtype, copy=False)
    return np.where(keep, dout * scale, scale.dtype.type(0))
