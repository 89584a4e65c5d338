"""The files ``fit`` writes after each epoch, and their repair on resume.

Each file is written atomically (temp file, fsync, rename; ``tinyface.atomic``), in this
order, the checkpoint last:

1. ``model.npz``: the best epoch so far (when this epoch is it);
2. ``history.json``: the per-epoch records;
3. ``curves.png``: loss and accuracy per epoch;
4. ``checkpoint.npz``: what ``--resume`` needs.

A kill at any moment therefore leaves a complete checkpoint of an earlier epoch, and
every file written after it is rewritten when ``--resume`` re-runs the epochs that
follow: with the same seed, data and thread count the re-run is bit-identical, so the
run ends with the files of an uninterrupted one.
"""
from __future__ import annotations

import json
import os

from tinyface.atomic import write_bytes_atomic
from tinyface.checkpoint import load_metadata, save_model, save_training_state

from .curves import save_curves
from .resume import STATE_FORMAT, rng_states

CHECKPOINT_FILE = "checkpoint.npz"
HISTORY_FILE = "history.json"
CURVES_FILE = "curves.png"
MODEL_FILE = "model.npz"


def save_epoch(out_dir, model, optimizer, config, history, best, data_id, improved, metadata):
    """Write the epoch's files, each atomically, the checkpoint last: ``model.npz`` (if
    ``improved``), ``history.json``, ``curves.png``, then ``checkpoint.npz``. A kill at
    any moment leaves the previous checkpoint, from which ``--resume`` re-runs this
    epoch and rewrites every file after it."""
    e1 = history[-1]["epoch"]
    if improved:
        _save_best(out_dir, model, config, history[-1], best, metadata)
    write_bytes_atomic(os.path.join(out_dir, HISTORY_FILE),
                       (json.dumps(history, indent=1) + "\n").encode())
    save_curves(history, os.path.join(out_dir, CURVES_FILE))
    extra = {"format": STATE_FORMAT, "config": config.to_dict(), "architecture": model.config(),
             "history": history, "best": best, "rng": rng_states(model), "data": data_id,
             "metadata": metadata or {}}
    save_training_state(os.path.join(out_dir, CHECKPOINT_FILE), model, optimizer, e1, extra)


def _save_best(out_dir, model, config, record, best, metadata):
    """``model.npz``: ``model`` as the best epoch so far (``record`` its history entry)."""
    which = "best val acc" if best["val_acc"] is not None else "last epoch"
    save_model(os.path.join(out_dir, MODEL_FILE), model,
               {"epoch": record["epoch"], "selected": which, "val_acc": best["val_acc"],
                "val_loss": best["val_loss"], "train_acc": record["train_acc"],
                "config": config.to_dict(), **(metadata or {})})


def repair_best(out_dir, model, config, history, best, metadata, log):
    """On resume: make ``model.npz`` the checkpoint's best epoch when the checkpoint's own
    weights are that epoch and the file is missing or holds another epoch (a kill
    between the two writes of an earlier version, or a deleted file)."""
    path = os.path.join(out_dir, MODEL_FILE)
    if best is None or not history or best["epoch"] != history[-1]["epoch"]:
        return
    try:
        held = load_metadata(path).get("epoch")
    except (FileNotFoundError, ValueError):
        held = None
    if held != best["epoch"]:
        _save_best(out_dir, model, config, history[-1], best, metadata)
        log(f"rewrote {path} from the checkpoint (epoch {best['epoch']}; it held "
            f"{'nothing' if held is None else f'epoch {held}'})")
