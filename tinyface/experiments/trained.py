"""Reuse a trained stream: load its run folder and check that it fits a split.

A run folder (``train-teacher --out DIR``, ``train_stream(..., out_dir)``) holds
``model.npz``, and usually ``history.json`` (the per-epoch curves) and
``metrics.json`` (whose ``split`` record says which split it was trained on).
Evaluating a model on another split than its own is wrong in a quiet way: the "test"
faces of another seed include faces it was trained on. So ``load_trained`` refuses a
model whose identities, input size or recorded split differ from the split given.

    from tinyface.experiments.trained import load_trained
    run = load_trained("runs/lfw-teacher", split, "teacher")
    run.model, run.history, run.metrics          # FaceNet, list of dicts or None, dict or None
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tinyface.checkpoint import load_model
from tinyface.data import STREAMS

# the split settings that must agree (``FaceSplit.meta`` keys)
SPLIT_KEYS = ("data", "seed", "min_images", "train_fraction", "validation", "lr_method",
              "hr_size", "lr_size")

# a teacher sees HR faces only: the LR settings of the split do not concern it
TEACHER_SPLIT_KEYS = tuple(k for k in SPLIT_KEYS if k not in ("lr_method", "lr_size"))


@dataclass
class TrainedRun:
    """model: the ``FaceNet``; history: ``history.json`` (list of per-epoch dicts) or None;
    metrics: ``metrics.json`` or None; folder: the run folder; path: the model file."""
    model: object
    history: list | None
    metrics: dict | None
    folder: Path
    path: Path


def split_differences(recorded, meta, keys=SPLIT_KEYS):
    """``[(key, recorded value, this split's value)]`` for the keys both dicts hold and
    that differ."""
    return [(k, recorded[k], meta[k]) for k in keys
            if k in recorded and k in meta and recorded[k] != meta[k]]


def _read_json(path):
    return json.loads(path.read_text()) if path.is_file() else None


def load_trained(path, split, stream):
    """Load the ``stream`` (teacher | student) at ``path`` (run folder or model.npz) and
    check it against ``split`` (a ``FaceSplit``). Returns a ``TrainedRun``.

    The split and stream it was trained on are read from the model file's metadata
    (``train_stream`` records them there), else from the folder's ``metrics.json``.
    Raises FileNotFoundError when there is no model file, ValueError when the model was
    trained as the other stream, when its identities or input size do not fit the
    split, or when it records a different split (other data, seed, sizes, ...).
    """
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
    path = Path(path)
    model_path = path / "model.npz" if path.is_dir() else path
    if not model_path.is_file():
        raise FileNotFoundError(f"no trained {stream} at {path}: {model_path} does not exist")
    folder = model_path.parent
    model, meta = load_model(model_path)
    metrics = _read_json(folder / "metrics.json")
    record = meta if isinstance(meta.get("split"), dict) else (metrics or {})
    trained_as = record.get("stream")
    if trained_as in STREAMS and trained_as != stream:
        raise ValueError(f"{model_path} holds a {trained_as} (trained on "
                         f"{'HR' if trained_as == 'teacher' else 'LR'} faces), given as the "
                         f"{stream}")
    size = split.hr_size if stream == "teacher" else split.lr_size
    if model.num_classes != split.num_classes or model.input_shape[-1] != size:
        raise ValueError(f"the {stream} at {path} takes {model.input_shape[-1]}px faces of "
                         f"{model.num_classes} identities; this split has {split.num_classes} "
                         f"identities at {size}px ({split.describe()}): use the data, seed and "
                         f"sizes it was trained with")
    if isinstance(record.get("split"), dict):
        keys = SPLIT_KEYS if stream == "student" else TEACHER_SPLIT_KEYS
        diffs = split_differences(record["split"], split.meta, keys)
        if diffs:
            text = ", ".join(f"{k} {a!r} there, {b!r} here" for k, a, b in diffs)
            raise ValueError(f"the {stream} at {path} was trained on another split ({text}); "
                             f"its test faces would overlap its training faces: use the "
                             f"options it was trained with")
    return TrainedRun(model, _read_json(folder / "history.json"), metrics, folder, model_path)
