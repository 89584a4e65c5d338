"""What low resolution takes away from a face, measured on the pixels alone.

Three measurements, none of which needs a trained network:

- :func:`radial_power_spectrum`: the luminance power spectrum, averaged over images and
  over rings of equal spatial frequency (cycles per image). Normalised so that, without
  the window, the bins sum to the mean squared deviation of a pixel from its image's
  mean (Parseval), e.g. ``A**2 / 2`` for a cosine of amplitude ``A``.
- :func:`detail_energy_kept`: degrade faces to each LR size, upsample them back to the
  HR size, and compare spectra: the share of the HR energy at ``f >= f_min`` cycles per
  image that is still there. An ``s``-pixel image holds nothing above ``s / 2`` cycles
  per image (its Nyquist frequency), and the anti-alias blur removes part of what is below.
- :func:`nearest_neighbour_accuracy`: closed-set identification by the single nearest
  training image (cosine similarity of mean-centred raw pixels), the simplest baseline.
"""
from __future__ import annotations

import numpy as np

from .degrade import LR_SIZES, degrade


def luminance(images: np.ndarray) -> np.ndarray:
    """images: (N, 3, H, W) or (N, H, W), any numeric dtype -> (N, H, W) float64 (RGB mean)."""
    x = np.asarray(images, np.float64)
    if x.ndim == 4:
        return x.mean(axis=1)
    if x.ndim != 3:
        raise ValueError(f"images must be (N, 3, H, W) or (N, H, W), got shape {x.shape}")
    return x


def radial_power_spectrum(images: np.ndarray, window: bool = True):
    """Mean luminance power per ring of spatial frequency.

    images: (N, 3, H, H) or (N, H, H), square. Each image's mean is removed; with
    ``window`` a 2-D Hann window (rescaled to unit mean square) damps the edges, so
    that the border of the crop does not smear power over all frequencies.
    Returns ``(freqs, power)``: freqs (R,) int64 = 0..R-1 cycles per image, where
    R - 1 = round(H / sqrt(2)) is the corner frequency; power (R,) float64, the
    power summed over the frequencies of each ring and averaged over the images.
    """
    g = luminance(images)                                       # (N, H, W)
    if g.shape[1] != g.shape[2] or len(g) == 0:
        raise ValueError(f"need a non-empty stack of square images, got {g.shape}")
    H = g.shape[1]
    g = g - g.mean(axis=(1, 2), keepdims=True)
    if window:
        w = np.outer(np.hanning(H), np.hanning(H))              # (H, H)
        g = g * (w / np.sqrt(np.mean(w ** 2)))
    P = (np.abs(np.fft.fft2(g)) ** 2).mean(axis=0) / H ** 4     # (H, H); sums to mean(g**2)
    f = np.fft.fftfreq(H) * H                                   # (H,) signed cycles per image
    ring = np.rint(np.hypot(f[:, None], f[None, :])).astype(np.int64)   # (H, H)
    power = np.bincount(ring.ravel(), P.ravel())                # (R,)
    return np.arange(len(power), dtype=np.int64), power


def band_share(freqs, power, power_hr, f_min: float) -> float:
    """``sum(power[f >= f_min]) / sum(power_hr[f >= f_min])``: the share of the HR
    spectrum's energy in that band which ``power`` still holds. freqs, power,
    power_hr: (R,) from :func:`radial_power_spectrum` at the same size."""
    band = np.asarray(freqs) >= f_min
    total = float(np.sum(np.asarray(power_hr)[band]))
    if total <= 0:
        raise ValueError(f"the HR spectrum holds no energy at f >= {f_min}")
    return float(np.sum(np.asarray(power)[band]) / total)


def detail_energy_kept(hr_images: np.ndarray, lr_sizes=LR_SIZES, f_min: float = 4.0,
                       method: str = "area", window: bool = True) -> dict:
    """Spectra of the HR faces and of each LR size (degraded with :func:`degrade`, then
    upsampled back to the HR size with bicubic), and the share of the HR energy at
    ``f >= f_min`` cycles per image kept at each size.

    hr_images: (N, 3, H, H) uint8. Returns ``{"freqs": (R,), "hr": (R,) power,
    "lr": {size: (R,) power}, "kept": {size: float in [0, ~1]}}``.
    """
    hr_images = np.asarray(hr_images)
    H = hr_images.shape[-1]
    freqs, p_hr = radial_power_spectrum(hr_images, window)
    lr, kept = {}, {}
    for s in lr_sizes:
        up = degrade(hr_images, int(s), method=method, upsample_to=H)   # (N, 3, H, H)
        _, lr[int(s)] = radial_power_spectrum(up, window)
        kept[int(s)] = band_share(freqs, lr[int(s)], p_hr, f_min)
    return {"freqs": freqs, "hr": p_hr, "lr": lr, "kept": kept}


def _unit_rows(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Mean-centred rows scaled to unit length (zero rows stay zero)."""
    x = x - mean
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def nearest_neighbour_accuracy(train_x, train_y, test_x, test_y, chunk: int = 1024) -> float:
    """Top-1 accuracy of 1-nearest-neighbour identification on raw pixels.

    train_x: (N, ...) images (any shape per image, e.g. (N, 3, 16, 16) uint8);
    train_y: (N,) labels; test_x: (M, ...) same per-image shape; test_y: (M,).
    Pixels are flattened, centred on the training mean and L2-normalised; each test
    image takes the label of the training image of highest cosine similarity
    (the first one on a tie). Returns the fraction of test images labelled correctly.
    """
    a = np.asarray(train_x, np.float64).reshape(len(train_x), -1)   # (N, D)
    b = np.asarray(test_x, np.float64).reshape(len(test_x), -1)     # (M, D)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("need at least one training and one test image")
    if a.shape[1] != b.shape[1] or len(train_y) != len(a) or len(test_y) != len(b):
        raise ValueError(f"shapes do not match: train {a.shape} / {train_y.shape}, "
                         f"test {b.shape} / {test_y.shape}")
    mean = a.mean(axis=0)
    a = _unit_rows(a, mean)
    correct = 0
    for lo in range(0, len(b), chunk):
        sims = _unit_rows(b[lo:lo + chunk], mean) @ a.T             # (chunk, N)
        correct += int(np.sum(train_y[np.argmax(sims, axis=1)] == test_y[lo:lo + chunk]))
    return correct / len(b)
