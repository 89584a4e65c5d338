"""Pictures: a montage of the same faces at HR and at every LR size (PNG).

Uses matplotlib's Agg canvas directly (no pyplot, no global backend change).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .degrade import LR_SIZES, degrade


def montage(hr_images: np.ndarray, out, lr_sizes=LR_SIZES, names=None, method: str = "area",
            title: str | None = None, cell_inches: float = 1.1) -> Path:
    """Write a PNG grid: one row per face, columns HR then each LR size (shown
    enlarged with nearest-neighbour pixels).

    hr_images: (N, 3, H, W) uint8; names: optional N row labels. Returns the path.
    """
    hr_images = np.asarray(hr_images)
    n = len(hr_images)
    if n == 0:
        raise ValueError("no images to show")
    H = hr_images.shape[-1]
    cols = [(f"HR {H}px", hr_images)]
    cols += [(f"{s}px", degrade(hr_images, s, method=method)) for s in lr_sizes if s != H]
    fig = Figure(figsize=(cell_inches * len(cols) + (1.2 if names else 0.2),
                          cell_inches * n + (0.6 if title else 0.35)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, len(cols), squeeze=False)
    for j, (label, imgs) in enumerate(cols):
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(imgs[i].transpose(1, 2, 0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=9)
            if j == 0 and names is not None:
                ax.set_ylabel(str(names[i])[:18], fontsize=7, rotation=0, ha="right",
                              va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def pick_faces(ds, n: int = 6, seed: int = 0) -> np.ndarray:
    """Rows of ``n`` different identities (first image of each), chosen by ``seed``:
    (min(n, identities),) int64."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(ds.n_identities)
    counts = ds.counts()
    ids = [k for k in ids if counts[k] > 0][:n]
    return np.array([int(np.flatnonzero(ds.labels == k)[0]) for k in ids], np.int64)
