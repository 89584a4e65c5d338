"""Training curves as a PNG (loss and accuracy per epoch), written atomically.

    save_curves(history, "runs/a/curves.png")

``history`` is ``fit``'s list of per-epoch dicts (``epoch``, ``train_loss``,
``train_acc``, ``val_loss``, ``val_acc``, ``lr``). Matplotlib drives the Agg canvas
directly (no pyplot, so no global backend switch).
"""
import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tinyface.atomic import write_bytes_atomic


def render_curves(history, title=None):
    """The curves as PNG bytes: left, train/val loss; right, train/val accuracy (%)."""
    epochs = [h["epoch"] for h in history]

    def series(key, scale=1.0):
        pts = [(e, h[key] * scale) for e, h in zip(epochs, history) if h.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, key, scale, label in ((ax_loss, "loss", 1.0, "cross-entropy loss"),
                                  (ax_acc, "acc", 100.0, "accuracy (%)")):
        for split, style in (("train", "-o"), ("val", "-s")):
            xs, ys = series(f"{split}_{key}", scale)
            if xs:
                ax.plot(xs, ys, style, markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(loc="best")
    if epochs:
        for ax in (ax_loss, ax_acc):
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    ax_acc.set_ylim(0, 100)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save_curves(history, path, title=None):
    """Render ``history`` (see ``render_curves``) to ``path`` atomically; return ``path``."""
    return write_bytes_atomic(path, render_curves(history, title))
