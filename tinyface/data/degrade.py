"""High resolution -> low resolution, the way a surveillance camera would see a face.

Pipeline of :func:`degrade`, in order:

1. Gaussian anti-alias blur with ``sigma = (s - 1) / 2`` HR pixels, where
   ``s = H / lr_size`` is the downscaling factor (the rule scikit-image uses; 1.5 px
   for 64 -> 16, no blur when ``s <= 1``), reflect padding;
2. downsampling with Pillow: ``"area"`` (``Image.BOX``, the mean over each LR pixel's
   footprint) or ``"bicubic"`` (``Image.BICUBIC``, Pillow's anti-aliased bicubic);
3. optional Gaussian sensor noise, ``noise_std`` in 0..255 units;
4. optional JPEG compression at ``jpeg_quality`` (1..95);
5. optional upsampling back to ``upsample_to`` pixels (bicubic by default), to
   feed LR faces to a network trained on HR input (the "teacher@LR" baseline).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter1d

LR_SIZES = (8, 12, 16, 24, 32)
_RESAMPLE = {"area": Image.BOX, "box": Image.BOX, "bicubic": Image.BICUBIC,
             "bilinear": Image.BILINEAR, "nearest": Image.NEAREST, "lanczos": Image.LANCZOS}


def antialias_sigma(hr_size: int, lr_size: int) -> float:
    """Gaussian sigma (HR pixels) used before downscaling ``hr_size -> lr_size``."""
    s = hr_size / float(lr_size)
    return max(0.0, (s - 1.0) / 2.0)


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each channel: images (N, C, H, W) uint8 or float -> float32, same shape."""
    x = np.asarray(images, dtype=np.float32)
    if sigma > 0:
        x = gaussian_filter1d(x, sigma, axis=-1, mode="reflect")
        x = gaussian_filter1d(x, sigma, axis=-2, mode="reflect")
    return x


def _resize_all(x: np.ndarray, size: int, resample) -> np.ndarray:
    """Resize (N, 3, H, W) uint8 to (N, 3, size, size) uint8 with Pillow."""
    out = np.empty((len(x), 3, size, size), np.uint8)
    hwc = x.transpose(0, 2, 3, 1)
    for i in range(len(x)):
        im = Image.fromarray(np.ascontiguousarray(hwc[i]))
        out[i] = np.asarray(im.resize((size, size), resample)).transpose(2, 0, 1)
    return out


def degrade(images: np.ndarray, lr_size: int = 16, method: str = "area", blur: bool = True,
            sigma: float | None = None, noise_std: float = 0.0, jpeg_quality: int | None = None,
            upsample_to: int | None = None, upsample_method: str = "bicubic",
            seed: int = 0) -> np.ndarray:
    """Degrade HR faces to LR.

    images: (N, 3, H, W) uint8 (square). Returns (N, 3, lr_size, lr_size) uint8, or
    (N, 3, upsample_to, upsample_to) uint8 when ``upsample_to`` is given.
    ``sigma`` overrides the anti-alias rule :func:`antialias_sigma`; ``blur=False``
    skips the blur. ``noise_std`` (0..255 units) and ``seed`` give reproducible noise.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be (N, 3, H, W) uint8, got {images.shape} {images.dtype}")
    if method not in _RESAMPLE or upsample_method not in _RESAMPLE:
        raise ValueError(f"method must be one of {sorted(_RESAMPLE)}")
    lr_size = int(lr_size)
    if lr_size < 1:
        raise ValueError("lr_size must be >= 1")
    H = images.shape[-1]
    if blur:
        s = antialias_sigma(H, lr_size) if sigma is None else float(sigma)
        if s > 0:
            images = np.clip(gaussian_blur(images, s) + 0.5, 0, 255).astype(np.uint8)
    out = images if lr_size == H else _resize_all(images, lr_size, _RESAMPLE[method])
    rng = np.random.default_rng(seed)
    if noise_std and noise_std > 0:
        noisy = out.astype(np.float32) + rng.normal(0.0, noise_std, out.shape).astype(np.float32)
        out = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        out = jpeg_compress(out, int(jpeg_quality))
    if upsample_to is not None and int(upsample_to) != out.shape[-1]:
        out = _resize_all(out, int(upsample_to), _RESAMPLE[upsample_method])
    return out


def jpeg_compress(images: np.ndarray, quality: int = 30) -> np.ndarray:
    """JPEG encode + decode each image: (N, 3, h, w) uint8 -> same shape, uint8."""
    if not 1 <= quality <= 100:
        raise ValueError("jpeg_quality must be in 1..100")
    out = np.empty_like(images)
    for i in range(len(images)):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(images[i].transpose(1, 2, 0))).save(
            buf, format="JPEG", quality=quality)
        buf.seek(0)
        out[i] = np.asarray(Image.open(buf).convert("RGB")).transpose(2, 0, 1)
    return out


def upsample(images: np.ndarray, size: int, method: str = "bicubic") -> np.ndarray:
    """Resize (N, 3, h, w) uint8 to (N, 3, size, size) uint8 with Pillow."""
    return _resize_all(np.asarray(images), int(size), _RESAMPLE[method])
