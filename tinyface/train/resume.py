"""Resuming a training run: what a checkpoint must match, and the random state it keeps.

``fit(..., resume=True)`` continues from ``OUT/checkpoint.npz`` only when the checkpoint
was written by ``fit`` with the same settings (``TrainConfig.differences``, except the
fields that may change on resume), the same architecture and the same data
(``fingerprint``: count, shape and a CRC of images and labels). Layers that own a
``numpy.random.Generator`` (``nn.Dropout``) have its state saved (``rng_states``) and
restored (``set_rng_states``), so a resumed run ends with exactly the weights of an
uninterrupted one.
"""
from __future__ import annotations

import json
import zlib

import numpy as np

from tinyface.checkpoint import load_training_state

from .config import TrainConfig

STATE_FORMAT = "tinyface-train/1"


class NoCheckpointError(FileNotFoundError):
    """``resume=True`` but ``out_dir`` holds no checkpoint."""

    def __str__(self):  # one line, without FileNotFoundError's "[Errno ...]" decoration
        return self.args[0] if self.args else "no checkpoint"


class ResumeMismatchError(ValueError):
    """The checkpoint was written for another config, architecture or data set."""


# ------------------------------------------------------------------ RNG state
def _generators(module, prefix=""):
    """``(path, generator)`` for every ``np.random.Generator`` attribute in the tree."""
    for attr, value in vars(module).items():
        if isinstance(value, np.random.Generator):
            yield f"{prefix}{attr}", value
    for name, child in getattr(module, "_children", {}).items():
        yield from _generators(child, f"{prefix}{name}.")


def rng_states(model):
    """JSON-able ``{path: bit_generator.state}`` of the model's own generators."""
    return {path: gen.bit_generator.state for path, gen in _generators(model)}


def set_rng_states(model, states):
    """Restore ``rng_states`` output; the generator paths must match exactly."""
    gens = dict(_generators(model))
    if set(gens) != set(states):
        raise ResumeMismatchError(f"the checkpoint's random generators {sorted(states)} do not "
                                  f"match the model's {sorted(gens)}")
    for path, state in states.items():
        gens[path].bit_generator.state = state


def fingerprint(images, labels):
    """Cheap identity of a data set, to refuse resuming on other data."""
    if images is None:
        return None
    return {"n": int(len(images)), "shape": list(images.shape[1:]),
            "crc32": zlib.crc32(np.ascontiguousarray(images)) ^ zlib.crc32(np.ascontiguousarray(labels))}


def _peek_training_record(path):
    """The ``training`` and ``architecture`` records of a checkpoint, without loading it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            record = json.loads(str(data["training"][()]))
            arch = json.loads(str(data["architecture"][()]))
    except Exception as e:  # foreign or model-only file
        raise ResumeMismatchError(f"{path} is not a tinyface training checkpoint "
                                  f"({type(e).__name__}: {e})") from None
    return record, arch


def checkpoint_epoch(path):
    """The last finished epoch recorded in the training checkpoint at ``path``, or None
    when there is none (or it is not one)."""
    try:
        record, _ = _peek_training_record(path)
    except (ResumeMismatchError, OSError):
        return None
    return int(record.get("epoch", 0))


def load_resume(path, model, optimizer, config, data_id):
    """Check that the checkpoint fits this run, then load it; ``(epoch, extra)``."""
    record, arch = _peek_training_record(path)
    extra = record.get("extra", {})
    if extra.get("format") != STATE_FORMAT:
        raise ResumeMismatchError(f"{path} was not written by tinyface.train.fit; cannot resume from it")
    try:
        saved = TrainConfig.from_dict(extra["config"])
    except (ValueError, TypeError) as e:
        raise ResumeMismatchError(f"{path}: unreadable training config ({e})") from None
    diffs = saved.differences(config)
    if diffs:
        text = ", ".join(f"{k} {a!r} in the checkpoint, {b!r} now" for k, a, b in diffs)
        raise ResumeMismatchError(f"cannot resume from {path}: it was written with other settings "
                                  f"({text}); use the same settings or another output folder")
    if arch != model.config():
        raise ResumeMismatchError(f"cannot resume from {path}: it holds another architecture "
                                  f"than the model given; use the same model or another output folder")
    for split in ("train", "val"):
        if extra.get("data", {}).get(split) != data_id[split]:
            raise ResumeMismatchError(f"cannot resume from {path}: the {split} data differ from "
                                      f"the data it was trained on")
    epoch, extra = load_training_state(path, model, optimizer)
    set_rng_states(model, extra["rng"])
    return epoch, extra
