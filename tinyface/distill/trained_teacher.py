"""Our own teacher, trained on the split's HR training faces: loaded, resumed or trained,
and its two rows of the ablation (``tinyface.distill.frozen_teacher`` is the pretrained
counterpart).

    teacher = load_teacher(split, settings, "runs/ablation/teacher", print)
    rows = evaluate_teacher(teacher, split, pairs, "bicubic", print)
"""
from __future__ import annotations

import json
from pathlib import Path

from tinyface.distill.report import TEACHER_ROWS

__all__ = ["load_teacher", "evaluate_teacher", "ver_summary", "SPLIT_KEYS"]


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def load_teacher(split, settings, path, log):
    """The teacher for ``split``: loaded from ``path``, resumed, or trained there."""
    from tinyface.pipeline import load_stream, train_stream
    from tinyface.train import ResumeMismatchError, TrainConfig
    path = Path(path)
    if path.suffix == ".npz":
        if path.is_file():
            log(f"teacher: loading {path}")
            return _fits(load_stream(path), split, path)
        folder = path.parent
    else:
        folder = path
    if (folder / "metrics.json").is_file() and (folder / "model.npz").is_file():
        log(f"teacher: loading the trained teacher in {folder}")
        return _fits(load_stream(folder), split, folder)
    cfg = TrainConfig(epochs=settings.teacher_epochs, batch_size=settings.batch_size,
                      seed=int(split.meta.get("seed", 0)), augment=settings.augment)
    resume = (folder / "checkpoint.npz").is_file()
    log(f"teacher: {'resuming' if resume else 'training'} a {settings.teacher_arch} for "
        f"{settings.teacher_epochs} epochs in {folder} (trained once, then cached)")
    try:
        res = train_stream(split, "teacher", cfg, folder, arch=settings.teacher_arch,
                           resume=resume, log=log)
    except ResumeMismatchError as exc:
        raise ValueError(f"cannot resume the teacher in {folder}: {str(exc).splitlines()[0]}") from None
    return res["model"]


SPLIT_KEYS = ("data", "seed", "train_fraction", "min_images", "hr_size", "lr_method")


def _fits(teacher, split, where):
    where = Path(where)
    metrics = _read_json((where if where.is_dir() else where.parent) / "metrics.json")
    trained_on = (metrics or {}).get("split")
    if isinstance(trained_on, dict):
        diff = [k for k in SPLIT_KEYS if k in trained_on and trained_on[k] != split.meta.get(k)]
        if diff:
            text = ", ".join(f"{k} {trained_on[k]!r} there, {split.meta.get(k)!r} here" for k in diff)
            raise ValueError(f"the teacher in {where} was trained on another split ({text}); its "
                             f"training faces could include this split's test faces: use the "
                             f"same data options and --seed, or another --teacher path")
    if teacher.num_classes != split.num_classes or teacher.input_shape[-1] != split.hr_size:
        raise ValueError(f"the teacher in {where} takes {teacher.input_shape[-1]}px faces of "
                         f"{teacher.num_classes} identities, but the split has "
                         f"{split.num_classes} identities at {split.hr_size}px; train it on "
                         f"this split (another --teacher path) or use the matching data options")
    return teacher


def evaluate_teacher(teacher, split, pairs, method, say):
    """Our trained teacher's two rows: identification and verification."""
    from tinyface.distill.verification import verify_disjoint
    from tinyface.pipeline import evaluate_identification
    rows = {}
    for name, up in zip(TEACHER_ROWS, (False, True)):
        say(f"teacher: evaluating '{name}'")
        ident = evaluate_identification(teacher, split, "teacher", upsampled=up)
        ver = (verify_disjoint(teacher, pairs, split.lr_size if up else None, upsampled=up,
                               method=method) if pairs is not None else None)
        rows[name] = {"top1": ident["top1"], "top5": ident["top5"],
                      "verification": ver_summary(ver)}
    return rows


def ver_summary(ver):
    """The verification numbers a row keeps (None stays None)."""
    return None if ver is None else {k: ver[k] for k in ("accuracy", "std", "auc")}
