"""Figures for evaluation results, written to PNG files (Agg backend, no windows).

Each function takes plain data (dicts of arrays / numbers), writes one figure to
``path`` (parent folders are created) and returns the path as a ``pathlib.Path``.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FIGSIZE = (5.0, 3.8)
DPI = 120


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _check_curves(curves, what):
    if not curves:
        raise ValueError(f"no {what} curves to plot")
    out = {}
    for name, (x, y) in curves.items():
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
            raise ValueError(f"{what} curve {name!r}: x and y must be 1-D, non-empty, equal "
                             f"length; got {x.shape} and {y.shape}")
        out[str(name)] = (x, y)
    return out


def plot_cmc(curves, path, title="CMC curve"):
    """CMC curves: ``curves`` maps a name to ``(ranks (R,), rates (R,))`` (as from
    :func:`tinyface.eval.cmc_curve`). Identification rate (%) against rank."""
    curves = _check_curves(curves, "CMC")
    fig, ax = plt.subplots(figsize=FIGSIZE)
    max_rank = 1
    for name, (r, rate) in curves.items():
        ax.plot(r, 100 * rate, marker="o" if len(r) <= 20 else None, ms=3,
                label=f"{name} (top-1 {100 * rate[0]:.1f}%)")
        max_rank = max(max_rank, int(r.max()))
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate (%)")
    ax.set_title(title)
    ax.set_xlim(1, max_rank)
    if max_rank > 50:
        ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def plot_roc(curves, path, log_far=True, title="ROC curve"):
    """ROC curves: ``curves`` maps a name to ``(far (M,), tar (M,))`` (as from
    :func:`tinyface.eval.roc_curve`). With ``log_far`` the FAR axis is logarithmic
    (points at FAR = 0 are not drawn there), the usual view for face verification."""
    curves = _check_curves(curves, "ROC")
    fig, ax = plt.subplots(figsize=FIGSIZE)
    lowest = 1.0
    for name, (far, tar) in curves.items():
        if log_far:
            keep = far > 0
            far, tar = far[keep], tar[keep]
            if len(far):
                lowest = min(lowest, float(far.min()))
        ax.plot(far, tar, label=name)
    if log_far:
        ax.set_xscale("log")
        ax.set_xlim(max(lowest, 1e-4), 1.0)
    else:
        ax.plot([0, 1], [0, 1], ls=":", c="grey", label="chance")
        ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false accept rate" + (" (log)" if log_far else ""))
    ax.set_ylabel("true accept rate")
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def plot_training_curves(history, path, title="training"):
    """Per-epoch curves: ``history`` is a list of dicts, one per epoch, with an
    ``epoch`` key (else the position counts from 1) and any of ``*loss*`` keys (left
    panel) and ``*acc*`` keys (right panel, fractions in [0, 1] shown as %). Keys
    missing in some epochs leave gaps."""
    if not history:
        raise ValueError("history is empty: nothing to plot")
    epochs = np.array([h.get("epoch", i + 1) for i, h in enumerate(history)], dtype=float)
    keys = []
    for h in history:
        keys += [k for k in h if k != "epoch" and k not in keys]
    loss_keys = [k for k in keys if "loss" in k]
    acc_keys = [k for k in keys if "acc" in k]
    if not loss_keys and not acc_keys:
        raise ValueError(f"history has no loss or accuracy keys (got {keys})")

    def series(k):
        return np.array([float(h[k]) if h.get(k) is not None else np.nan for h in history])

    panels = [(loss_keys, "loss", 1.0), (acc_keys, "accuracy (%)", 100.0)]
    panels = [p for p in panels if p[0]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (ks, ylabel, scale) in zip(axes[0], panels):
        for k in ks:
            ax.plot(epochs, scale * series(k), marker="o" if len(epochs) <= 30 else None,
                    ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def _mean_std(name, v):
    """A table cell, a number or ``(mean, std)``, as two floats."""
    if np.ndim(v) == 0:
        return float(v), 0.0
    if len(v) == 2:
        return float(v[0]), float(v[1])
    raise ValueError(f"row {name!r}: expected a number or (mean, std), got {v!r}")


def plot_bars(table, path, ylabel, title=None):
    """Bar chart: ``table`` maps a row name to a value or to ``(mean, std)`` (drawn as
    an error bar). Values are written above the bars. ``title`` defaults to ``ylabel``."""
    if not table:
        raise ValueError("table is empty: nothing to plot")
    names = [str(name) for name in table]
    means, stds = zip(*(_mean_std(name, v) for name, v in table.items()))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 1.5), 3.8))
    x = np.arange(len(names))
    ax.bar(x, means, yerr=stds if any(stds) else None, capsize=4, color="C0", alpha=0.85)
    for xi, m, s in zip(x, means, stds):
        ax.annotate(f"{m:.3g}", (xi, m + s), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30 if len(names) > 4 else 0,
                       ha="right" if len(names) > 4 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(ylabel if title is None else title)
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def plot_compared(tables, path, xlabel, title=None):
    """Several tables of the same rows, one marker per table on each row's line, with
    ``mean +- std`` as a horizontal error bar; the axis spans the values only, so
    differences of a point stay visible. ``tables`` maps a series label (say, a teacher
    regime) to a table as in :func:`plot_bars`; rows are drawn in first-seen order and
    a row a table lacks is left empty."""
    if not tables or not any(tables.values()):
        raise ValueError("no tables, or only empty ones: nothing to plot")
    rows = list(dict.fromkeys(str(r) for table in tables.values() for r in table))
    fig, ax = plt.subplots(figsize=(7.0, 0.32 * len(rows) + 1.4))
    step = 0.6 / max(1, len(tables) - 1) if len(tables) > 1 else 0.0
    for k, (label, table) in enumerate(tables.items()):
        cells = {str(r): _mean_std(r, v) for r, v in table.items()}
        y = [len(rows) - 1 - rows.index(r) + 0.3 - k * step for r in cells]
        means, stds = zip(*cells.values()) if cells else ((), ())
        ax.errorbar(means, y, xerr=stds, fmt="o", ms=4, capsize=3, color=f"C{k}",
                    label=str(label))
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels(rows[::-1], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(xlabel if title is None else title, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)
