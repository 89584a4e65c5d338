"""Train and evaluate the two streams: the teacher on HR faces, the student on LR faces.

This is the paper's initialisation stage. Each stream is a ``FaceNet`` (embedding +
identity classifier) trained with softmax cross-entropy by ``tinyface.train.fit``.
"""
from __future__ import annotations

from pathlib import Path

from tinyface.atomic import write_json
from tinyface.checkpoint import load_model
from tinyface.data import stream_images, validation_rows
from tinyface.eval import evaluate_identification
from tinyface.models import build_model, spec_by_name
from tinyface.train import fit

# the fraction of each identity's training faces a stream holds out to pick its epoch
STREAM_VALIDATION = 0.2


def build_stream_model(split, stream, arch=None, seed=0):
    """A fresh ``FaceNet`` for ``stream`` sized to the split (classes, input size).

    arch: a zoo name (``teacher``, ``teacher-lite``, ``student``); default: the stream's.
    """
    spec = spec_by_name(arch or stream, num_classes=split.num_classes)
    spec["input_size"] = split.hr_size if stream == "teacher" else split.lr_size
    return build_model(spec, seed=seed)


def train_stream(split, stream, config, out_dir, arch=None, resume=False, log=print,
                 validation=STREAM_VALIDATION):
    """Train one stream on ``split``; write its files to ``out_dir``; return a result dict.

    validation: the fraction of each identity's training faces held out (by the split's
    seed, ``data.validation_rows``) to pick the best epoch on; the stream trains on the
    rest. 0: train on every training face and keep the last epoch. The test faces are
    seen once, by the kept model.

    out_dir gets model.npz (the kept model), checkpoint.npz, history.json, curves.png
    (from ``fit``) and metrics.json (top-1/top-5 on the test faces, the kept epoch, the
    validation faces, training seconds, the architecture).
    """
    model = build_stream_model(split, stream, arch=arch, seed=config.seed)
    out_dir = Path(out_dir)
    images, labels = stream_images(split, stream, "train"), split.y_train
    val = {}
    if validation:
        tr, va = validation_rows(labels, validation, int(split.meta.get("seed", 0)),
                                 names=split.names)
        val = {"val_images": images[va], "val_labels": labels[va]}
        images, labels = images[tr], labels[tr]
    held = (f"; {len(labels)} faces to train on, {len(val['val_labels'])} "
            f"({validation:g} of each identity's) to pick the epoch" if val
            else "; every training face, the last epoch kept")
    log(f"{stream}: {model.spec['name']}, {model.num_parameters():,} parameters, "
        f"input {model.input_shape}; {split.describe()}{held}")
    record = {"stream": stream, "split": split.meta, "validation": float(validation)}
    history = fit(model, images, labels, config, out_dir=out_dir, resume=resume, log=log,
                  metadata=record, **val)
    best, meta = load_model(out_dir / "model.npz")
    metrics = evaluate_identification(best, split, stream)
    metrics.update(stream=stream, arch=best.spec["name"], parameters=best.num_parameters(),
                   train_seconds=sum(r["seconds"] for r in history), epochs=len(history),
                   kept_epoch=meta.get("epoch"), val_acc=meta.get("val_acc"),
                   validation=float(validation), train_faces=int(len(labels)),
                   split=split.meta, config=config.to_dict())
    write_json(out_dir / "metrics.json", metrics)
    return {"model": best, "history": history, "metrics": metrics}


def load_stream(path):
    """A trained stream's ``FaceNet`` from a ``model.npz`` file or its run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.npz"
    model, _ = load_model(path)
    return model
