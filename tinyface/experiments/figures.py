"""Figures of the ablation: selected faces, the selection graph, accuracy against ratio."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _figure(w, h):
    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig, path, dpi=110):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def _largest_identities(labels, mask, n):
    """Up to ``n`` identities with the most faces, preferring those with both selected
    and unselected faces; ties by label (deterministic)."""
    labels = np.asarray(labels)
    ids = np.unique(labels)
    counts = np.array([np.sum(labels == k) for k in ids])
    mixed = np.array([0 < mask[labels == k].sum() < np.sum(labels == k) for k in ids])
    order = np.lexsort((ids, -counts, ~mixed))
    return ids[order[:n]]


def plot_selection_montage(hr_images, labels, mask, path, names=None, identities=6,
                           per_identity=10):
    """HR faces of a few identities, one row each: selected faces (green frame) on the
    left, unselected ones (faded, grey frame) on the right, half the columns each when
    both kinds are there. Returns the path."""
    mask = np.asarray(mask, bool)
    ids = _largest_identities(labels, mask, identities)
    if len(ids) == 0:
        raise ValueError("no faces to show")
    cols = int(min(per_identity, max(np.sum(labels == k) for k in ids)))
    fig = _figure(0.9 * cols + 1.6, 0.95 * len(ids) + 0.7)
    axes = fig.subplots(len(ids), cols, squeeze=False)
    for i, k in enumerate(ids):
        rows = np.flatnonzero(labels == k)
        sel_rows, other = rows[mask[rows]], rows[~mask[rows]]
        n_sel = min(len(sel_rows), max(cols - len(other), (cols + 1) // 2))
        rows = np.r_[sel_rows[:n_sel], other[:cols - n_sel]]
        for j in range(cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(rows):
                ax.axis("off")
                continue
            r = rows[j]
            img = hr_images[r].transpose(1, 2, 0)
            sel = bool(mask[r])
            ax.imshow(img if sel else (0.35 * img + 0.65 * 255).astype(np.uint8),
                      interpolation="nearest")
            for side in ax.spines.values():
                side.set_edgecolor("#1a9641" if sel else "#999999")
                side.set_linewidth(3 if sel else 1)
            if j == 0:
                label = names[k] if names is not None else f"id {k}"
                n_sel, n_all = int(mask[labels == k].sum()), int(np.sum(labels == k))
                ax.set_ylabel(f"{str(label)[:16]}\n{n_sel}/{n_all}", fontsize=7, rotation=0,
                              ha="right", va="center")
    fig.suptitle("selected faces (green frame) and unselected faces (faded), per identity",
                 fontsize=9)
    fig.tight_layout()
    return _save_figure(fig, path)


def plot_graph(features, labels, mask, graph, path, identities=5, names=None):
    """The redundancy graph of a few identities in 2-D (PCA of the unit-normalised
    teacher features): edges drawn by weight, selected nodes filled, others hollow."""
    mask = np.asarray(mask, bool)
    labels = np.asarray(labels)
    ids = _largest_identities(labels, mask, identities)
    nodes = np.flatnonzero(np.isin(labels, ids))
    f = np.asarray(features, np.float64)[nodes]
    f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    f -= f.mean(axis=0)
    _, _, vt = np.linalg.svd(f, full_matrices=False)
    xy = f @ vt[:2].T                                                  # (n, 2)
    if xy.shape[1] < 2:
        xy = np.c_[xy, np.zeros(len(xy))]
    sub = sp.csr_matrix(graph)[nodes][:, nodes].tocoo()
    fig = _figure(5.6, 4.6)
    ax = fig.subplots()
    wmax = float(sub.data.max()) if sub.nnz else 1.0
    for i, j, w in zip(sub.row, sub.col, sub.data):
        if i < j and w > 0:
            ax.plot(xy[[i, j], 0], xy[[i, j], 1], color="#555555", linewidth=0.4 + 1.6 * w / wmax,
                    alpha=0.15 + 0.6 * w / wmax, zorder=1)
    for c, k in enumerate(ids):
        colour = f"C{c % 10}"
        on = (labels[nodes] == k) & mask[nodes]
        off = (labels[nodes] == k) & ~mask[nodes]
        ax.scatter(xy[on, 0], xy[on, 1], s=55, color=colour, edgecolors="black", linewidths=0.8,
                   zorder=3, label=str(names[k])[:18] if names is not None else f"id {k}")
        ax.scatter(xy[off, 0], xy[off, 1], s=30, facecolors="white", edgecolors=colour,
                   linewidths=1.2, zorder=2)
    ax.set_title(f"kNN redundancy graph of {len(ids)} identities (PCA of teacher features)\n"
                 f"filled: selected, hollow: not selected; {sub.nnz // 2} edges", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _save_figure(fig, path)


def plot_ratio_curve(curve, path, baselines=None):
    """Top-1 (%) against the selection ratio, selective and random; baselines
    (name -> top-1 in [0, 1]) as horizontal lines."""
    fig = _figure(5.0, 3.8)
    ax = fig.subplots()
    r = np.asarray(curve["ratios"], float)
    for name, style in (("selective", "o-"), ("random", "s--")):
        if curve.get(name):
            ax.plot(r, 100 * np.asarray(curve[name]), style, label=name)
    for i, (name, v) in enumerate((baselines or {}).items()):
        ax.axhline(100 * v, color=f"C{i + 2}", linestyle=":", label=name)
    ax.set_xlabel("selection ratio (faces whose teacher features are regressed)")
    ax.set_ylabel("top-1 identification (%)")
    ax.set_title(f"accuracy against selection ratio (seed {curve.get('seed')})", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_figure(fig, path)
