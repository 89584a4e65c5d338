"""Training input: float conversion, augmentation and a seeded batch iterator.

Normalisation (:func:`to_float`): ``x / 255 - 0.5``, float32 in [-0.5, 0.5], NCHW;
:func:`to_uint8` inverts it. Augmentation works on uint8 or float batches (NCHW);
brightness and contrast amounts are fractions of the full range (255 for uint8,
1.0 for floats from :func:`to_float`).
"""
from __future__ import annotations

import numpy as np


def to_float(images: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) uint8 -> (N, 3, H, W) float32 in [-0.5, 0.5] (``x / 255 - 0.5``)."""
    return np.asarray(images, np.float32) * np.float32(1.0 / 255.0) - np.float32(0.5)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_float`: float32 (N, 3, H, W) -> uint8 (rounded, clipped)."""
    return np.clip((np.asarray(x, np.float32) + 0.5) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def augment(images: np.ndarray, rng: np.random.Generator, flip: bool = True,
            max_shift: float = 0.06, crop_scale: float = 0.9, brightness: float = 0.1,
            contrast: float = 0.15) -> np.ndarray:
    """Random horizontal flips, shifts, crops and brightness/contrast jitter.

    images: (N, C, H, W) uint8 or float; returns the same shape and dtype.
    flip: mirror half of the images left-right. max_shift: translation up to this
    fraction of the side (edge pixels repeated). crop_scale: zoom into a random
    crop covering between ``crop_scale`` and 1 of the side, resized back to the side
    (bilinear). brightness: add up to +-brightness of the full range. contrast:
    scale around each image's mean by a factor in [1 - contrast, 1 + contrast].
    """
    x = np.asarray(images)
    n, c, h, w = x.shape
    if n == 0:
        return x.copy()
    fx = x.astype(np.float32)
    zoom = rng.uniform(crop_scale, 1.0, n) if crop_scale < 1.0 else np.ones(n)
    sx = rng.uniform(-max_shift, max_shift, n) * w
    sy = rng.uniform(-max_shift, max_shift, n) * h
    # room left by the crop is also used for shifting, so crops are random crops
    sx += rng.uniform(-0.5, 0.5, n) * (1 - zoom) * w
    sy += rng.uniform(-0.5, 0.5, n) * (1 - zoom) * h
    mirror = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    gx = np.arange(w, dtype=np.float32) + 0.5 - w / 2
    gy = np.arange(h, dtype=np.float32) + 0.5 - h / 2
    src_x = w / 2 - 0.5 + gx[None, :] * zoom[:, None] + sx[:, None]          # (n, w)
    src_x = np.where(mirror[:, None], w - 1 - src_x, src_x)
    src_y = h / 2 - 0.5 + gy[None, :] * zoom[:, None] + sy[:, None]          # (n, h)
    x0 = np.clip(np.floor(src_x), 0, w - 1).astype(np.int64)
    y0 = np.clip(np.floor(src_y), 0, h - 1).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    wx = np.clip(src_x - x0, 0, 1).astype(np.float32)[:, None, None, :]
    wy = np.clip(src_y - y0, 0, 1).astype(np.float32)[:, None, :, None]
    b = np.arange(n)[:, None, None, None]
    ch = np.arange(c)[None, :, None, None]
    r0 = fx[b, ch, y0[:, None, :, None], x0[:, None, None, :]] * (1 - wx) \
        + fx[b, ch, y0[:, None, :, None], x1[:, None, None, :]] * wx
    r1 = fx[b, ch, y1[:, None, :, None], x0[:, None, None, :]] * (1 - wx) \
        + fx[b, ch, y1[:, None, :, None], x1[:, None, None, :]] * wx
    out = r0 * (1 - wy) + r1 * wy
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    if contrast:
        k = rng.uniform(1 - contrast, 1 + contrast, n).astype(np.float32)[:, None, None, None]
        mean = out.mean(axis=(1, 2, 3), keepdims=True)
        out = (out - mean) * k + mean
    if brightness:
        out += (rng.uniform(-brightness, brightness, n) * scale).astype(np.float32)[:, None, None, None]
    if x.dtype == np.uint8:
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return out.astype(x.dtype)


def iterate_minibatches(data, batch_size: int, shuffle: bool = True, seed: int = 0,
                        epoch: int = 0, drop_last: bool = False):
    """Yield mini-batches.

    data: an int ``n`` (yields (b,) int64 index arrays), an array, or a tuple/list of
    arrays with the same first dimension (yields tuples of slices). With ``shuffle``
    the order is a permutation drawn from ``default_rng([seed, epoch])``: the same
    (seed, epoch) always gives the same batches, each epoch a different order.
    """
    if isinstance(data, (int, np.integer)):
        n, arrays, single = int(data), None, False
    elif isinstance(data, (tuple, list)):
        arrays = [np.asarray(a) for a in data]
        n, single = len(arrays[0]), False
        if any(len(a) != n for a in arrays):
            raise ValueError("all arrays must have the same length")
    else:
        arrays, single = [np.asarray(data)], True
        n = len(arrays[0])
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    order = (np.random.default_rng([int(seed), int(epoch)]).permutation(n) if shuffle
             else np.arange(n))
    stop = n - (n % batch_size) if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        if arrays is None:
            yield idx
        elif single:
            yield arrays[0][idx]
        else:
            yield tuple(a[idx] for a in arrays)
