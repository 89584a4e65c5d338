"""Our own teacher, trained on the split's HR training faces: loaded, resumed or trained,
and its two rows of the ablation (``tinyface.distill.frozen_teacher`` is the pretrained
counterpart).

    teacher = load_teacher(split, settings, "runs/ablation/teacher", print)
    rows = evaluate_teacher(teacher, split, pairs, "bicubic", print)
"""
from __future__ import annotations

from pathlib import Path

from tinyface.eval import evaluate_identification
from tinyface.eval.disjoint import verify_disjoint
from tinyface.experiments.report import TEACHER_ROWS
from tinyface.experiments.streams import train_stream
from tinyface.experiments.trained import load_trained
from tinyface.train import ResumeMismatchError, TrainConfig

__all__ = ["load_teacher", "evaluate_teacher", "ver_summary"]


def load_teacher(split, settings, path, log):
    """The teacher for ``split``: loaded from ``path`` (``load_trained``: a teacher of
    another split is a ``ValueError``), resumed, or trained there."""
    path = Path(path)
    if path.suffix == ".npz":
        if path.is_file():
            log(f"teacher: loading {path}")
            return load_trained(path, split, "teacher").model
        folder = path.parent
    else:
        folder = path
    if (folder / "metrics.json").is_file() and (folder / "model.npz").is_file():
        log(f"teacher: loading the trained teacher in {folder}")
        return load_trained(folder, split, "teacher").model
    cfg = TrainConfig(epochs=settings.teacher_epochs, batch_size=settings.batch_size,
                      seed=int(split.meta.get("seed", 0)), augment=settings.augment)
    resume = (folder / "checkpoint.npz").is_file()
    log(f"teacher: {'resuming' if resume else 'training'} a {settings.teacher_arch} for "
        f"{settings.teacher_epochs} epochs in {folder} (trained once, then cached)")
    try:
        res = train_stream(split, "teacher", cfg, folder, arch=settings.teacher_arch,
                           resume=resume, log=log, validation=0)   # the last epoch
    except ResumeMismatchError as exc:
        raise ValueError(f"cannot resume the teacher in {folder}: {str(exc).splitlines()[0]}") from None
    return res["model"]


def evaluate_teacher(teacher, split, pairs, method, say):
    """Our trained teacher's two rows: identification and verification."""
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
