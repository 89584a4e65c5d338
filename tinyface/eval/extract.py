"""Run a model over many images in batches: embeddings and logits for evaluation.

Models take float32 (N, 3, H, W) and return (N, D). Evaluation must see the model in
eval mode (batch norm on running statistics, dropout off): :func:`embed_images` and
:func:`logits_of` switch it for the call and restore the previous mode afterwards;
:func:`predict_batches` calls whatever function it is given and leaves modes alone.

    from tinyface.eval import embed_images, l2_normalize
    emb = l2_normalize(embed_images(student, lr_images))        # (N, D) float32

:func:`indexed_fn` builds the ``embed_fn(indices) -> (n, D)`` callables that
:func:`tinyface.eval.verification.verify_pairs` takes.
"""
from __future__ import annotations

import numpy as np

from tinyface.backend import place
from tinyface.data.augment import to_float


def l2_normalize(x, eps=1e-12):
    """Rows scaled to unit L2 norm: x (N, D) -> (N, D) (any leading shape; the last axis
    is normalised). Rows with norm below ``eps`` are divided by ``eps`` (stay ~0, no NaN).
    Float inputs keep their dtype; integer inputs become float64."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))          # (N, 1)
    return x / np.maximum(norm, x.dtype.type(eps))


def predict_batches(fn, images, batch_size=256, transform=None):
    """Apply ``fn`` to ``images`` in batches and stack the outputs.

    fn: callable, batch (n, ...) -> (n, D) array (e.g. ``model.forward``, ``model.embed``;
    the model is expected to be in eval mode already).
    images: (N, C, H, W) uint8 or float array (any (N, ...) array fn accepts), N >= 1.
    transform: optional callable applied to each batch before ``fn``, e.g.
    :func:`tinyface.data.to_float` for uint8 images.
    Returns (N, D) (or (N, ...), whatever fn returns per row), the dtype of fn's output.
    Each batch output is copied at once, so fn may reuse its output buffer.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x = np.asarray(images)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"no images to run: got an array of shape {x.shape}")
    n = len(x)
    out = None
    for start in range(0, n, batch_size):
        batch = x[start:start + batch_size]                         # (n_b, C, H, W)
        if transform is not None:
            batch = transform(batch)
        y = fn(batch)                                               # (n_b, D)
        y = y.copy_to_host() if hasattr(y, "copy_to_host") else np.asarray(y)  # GPU -> host
        if y.ndim < 1 or len(y) != len(batch):
            raise ValueError(f"fn returned shape {y.shape} for a batch of {len(batch)}; "
                             f"expected ({len(batch)}, D)")
        if out is None:
            out = np.empty((n,) + y.shape[1:], dtype=y.dtype)
        elif y.shape[1:] != out.shape[1:]:
            raise ValueError(f"fn returned rows of shape {y.shape[1:]} after {out.shape[1:]}")
        out[start:start + len(batch)] = y
    return out


class _EvalMode:
    """Context manager: ``model.eval()`` inside (the model placed where the active backend
    computes, see ``tinyface.backend.place``), previous training mode restored after."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        if hasattr(self.model, "named_parameters"):
            place(self.model)                      # on the GPU under set_backend("cuda")
        self.was_training = bool(getattr(self.model, "training", False))
        if hasattr(self.model, "train"):
            self.model.train(False)
        return self.model

    def __exit__(self, *exc):
        if hasattr(self.model, "train"):
            self.model.train(self.was_training)
        return False


def eval_mode(model):
    """``with eval_mode(model): ...`` runs the block with the model in eval mode."""
    return _EvalMode(model)


def embed_images(model, images_uint8, batch_size=256):
    """Embeddings of uint8 images: (N, 3, H, W) uint8 -> (N, D) via ``model.embed``
    on :func:`tinyface.data.to_float` batches, in eval mode. Not normalised: apply
    :func:`l2_normalize` for cosine comparisons."""
    if not hasattr(model, "embed"):
        raise TypeError(f"{type(model).__name__} has no embed() method; use "
                        f"predict_batches with the function that gives its features")
    with eval_mode(model):
        return predict_batches(model.embed, images_uint8, batch_size, transform=to_float)


def logits_of(model, images_uint8, batch_size=256):
    """Class scores of uint8 images: (N, 3, H, W) uint8 -> (N, K) via ``model.forward``
    on :func:`tinyface.data.to_float` batches, in eval mode."""
    with eval_mode(model):
        return predict_batches(model.forward, images_uint8, batch_size, transform=to_float)


def indexed_fn(fn, images, transform="to_float"):
    """An ``embed_fn(indices) -> (n, D)`` for :func:`verify_pairs`: applies ``fn`` to
    ``transform(images[indices])``.

    fn: e.g. ``model.embed`` (put the model in eval mode first, e.g. ``model.eval()``).
    images: (N, 3, H, W) array indexed by dataset row (HR images, or the degraded LR
    copies for a low-resolution probe). transform: ``"to_float"`` (default,
    :func:`tinyface.data.to_float`, for uint8 images), a callable, or None.
    """
    if transform == "to_float":
        transform = to_float
    x = np.asarray(images)

    def embed_fn(indices):
        batch = x[np.asarray(indices, dtype=np.int64)]
        return fn(transform(batch) if transform is not None else batch)

    return embed_fn
