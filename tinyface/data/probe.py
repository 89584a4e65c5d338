"""A cheap difficulty probe: how much identity information survives at a resolution.

The CNNs of the project are not needed: :func:`pooled_features` is a fixed,
hand-made one-layer "CNN" (difference-of-Gaussians and gradient filters at 0.8 and
1.6 px, colour-opponent detail, rectified and average-pooled over 8x8 windows with
stride 4, plus 4x4-pooled colour), and :func:`ridge_accuracy` a ridge-regression
classifier on top. :func:`resolution_gap` degrades the faces to each LR size,
upsamples them back to the HR size and runs the same probe, so the only difference
between the accuracies is the information the LR faces lost.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .dataset import Dataset
from .degrade import degrade


def pooled_features(images: np.ndarray) -> np.ndarray:
    """images: (N, 3, H, W) uint8 -> (N, F) float32 pooled filter responses."""
    x = np.asarray(images, np.float32) / 255.0
    lum = x.mean(1)
    maps = []
    for sig in (0.8, 1.6):
        dog = lum - ndi.gaussian_filter(lum, (0, sig, sig))
        maps += [np.maximum(dog, 0), np.maximum(-dog, 0)]
        maps.append(np.abs(ndi.gaussian_filter(lum, (0, sig, sig), order=(0, 0, 1))))
        maps.append(np.abs(ndi.gaussian_filter(lum, (0, sig, sig), order=(0, 1, 0))))
    opp = (x[:, 0] - x[:, 1], x[:, 2] - 0.5 * (x[:, 0] + x[:, 1]))
    for o in opp:
        maps.append(np.abs(o - ndi.gaussian_filter(o, (0, 1.5, 1.5))))
    m = np.stack(maps, 1)
    pooled = ndi.uniform_filter(m, (1, 1, 8, 8))[:, :, 2::4, 2::4]
    coarse = ndi.uniform_filter(x, (1, 1, 4, 4))[:, :, 2::4, 2::4]
    n = len(x)
    return np.concatenate([np.sqrt(np.maximum(pooled, 0)).reshape(n, -1),
                           coarse.reshape(n, -1)], 1).astype(np.float32)


def ridge_accuracy(f_train, y_train, f_test, y_test, lam: float = 0.01) -> float:
    """Ridge classifier (one-hot targets, standardised features, ``lam`` relative to
    the mean kernel diagonal). f_*: (N, F) float; y_*: (N,) int. Returns accuracy."""
    f_train = np.asarray(f_train, np.float64)
    f_test = np.asarray(f_test, np.float64)
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
    a, b = (f_train - mu) / sd, (f_test - mu) / sd
    classes, yi = np.unique(y_train, return_inverse=True)
    Y = np.eye(len(classes))[yi]
    K = a @ a.T
    coef = np.linalg.solve(K + lam * np.trace(K) / len(K) * np.eye(len(K)), Y)
    pred = classes[np.argmax((b @ a.T) @ coef, 1)]
    return float((pred == np.asarray(y_test)).mean())


def resolution_gap(ds: Dataset, lr_sizes=(16,), train_fraction: float = 0.5) -> dict:
    """Probe accuracy at the HR size and at each LR size (degraded, then upsampled).

    Images are split per identity: the first ``train_fraction`` of each identity's
    images train, the rest test. Returns ``{size: accuracy}``; chance is 1/identities.
    """
    counts = ds.counts()
    train = ds.image_index <= np.maximum(1, np.round(counts * train_fraction))[ds.labels]
    H = ds.hr_size
    out = {}
    for size in (H,) + tuple(s for s in lr_sizes if s != H):
        x = ds.images if size == H else degrade(ds.images, size, upsample_to=H)
        f = pooled_features(x)
        out[size] = ridge_accuracy(f[train], ds.labels[train], f[~train], ds.labels[~train])
    return out
