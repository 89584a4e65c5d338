"""The training loop itself: one optimizer step (``train_step``) and one epoch of them
(``run_epoch``). ``fit`` wraps this with validation, checkpoints, resume and logging.

    for epoch in range(config.epochs):                              # run_epoch(..., epoch)
        rng_e = np.random.default_rng([seed, epoch, 1])             # augmentation
        for i, idx in enumerate(iterate_minibatches(N, b, seed=seed, epoch=epoch)):
            x = to_float(augment(train_images[idx], rng_e))         # (b, 3, H, W) float32
            schedule.apply(optimizer, epoch * steps + i)            # this step's rate
            loss, correct = train_step(model, optimizer, x, train_labels[idx])

    def train_step(model, optimizer, x, labels):
        model.zero_grad()
        logits = model.forward(x)                                   # (b, K)
        loss, dlogits = softmax_cross_entropy_loss(logits, labels)
        model.backward(dlogits)
        optimizer.step()

Epoch ``e`` (0-based) shuffles with ``default_rng([seed, e])`` (as
``tinyface.data.iterate_minibatches``) and augments with ``default_rng([seed, e, 1])``,
so an epoch is a function of its number alone and no data RNG state has to be saved.
A NaN or inf loss stops the step before ``optimizer.step()``: the weights stay those of
the last good step.
"""
import math

import numpy as np

from tinyface.data import augment, iterate_minibatches, to_float
from tinyface.losses import NonFiniteLossError, softmax_cross_entropy_loss

from .device import host_array, input_batch
from .optimizer import steps_per_epoch


class StepDiverged(NonFiniteLossError):
    """A step's loss (or gradient) was NaN/inf: ``step`` (1-based within the epoch) and
    ``lr`` (its rate) say where; the ``NonFiniteLossError`` that stopped it is the cause."""

    def __init__(self, message, step, lr):
        super().__init__(message)
        self.step, self.lr = step, lr


def train_step(model, optimizer, x, labels, batch_indices=None, step_fn=None):
    """One step of mini-batch gradient descent; returns ``(loss, correct_count)``.

    x: (b, 3, H, W) float32; labels: (b,) int. By default the loss is softmax
    cross-entropy on the model's logits. ``step_fn(model, x, batch_indices, labels) ->
    (loss, correct_count)`` replaces the forward, loss and backward lines with another
    objective (``tinyface.distill.DistillStep``); batch_indices: (b,) training-set rows.
    Raises ``NonFiniteLossError`` on a NaN/inf loss, before the update.
    """
    model.zero_grad()
    if step_fn is None:
        logits = model.forward(x)                                   # (b, K)
        loss, dlogits = softmax_cross_entropy_loss(logits, labels)  # NaN/inf: raises
        model.backward(dlogits)
        correct = int(np.count_nonzero(np.argmax(host_array(logits), axis=1) == labels))
    else:
        loss, correct = step_fn(model, x, batch_indices, labels)
        loss = float(loss)
        if not math.isfinite(loss):
            raise NonFiniteLossError(f"loss is {loss}")
    optimizer.step()
    return loss, correct


def run_epoch(model, optimizer, schedule, images, labels, config, epoch, step_fn=None,
              progress=None):
    """Epoch ``epoch`` (0-based) of ``config``: shuffle, augment, one ``train_step`` per batch.

    images: (N, 3, H, W) uint8; labels: (N,) int64; schedule: sets each step's rate
    (global step ``epoch * steps + i``); progress: None or ``progress(step, seen,
    loss_sum, correct)``, called after each step. Returns ``{"train_loss", "train_acc",
    "seen", "lr"}`` (lr: the rate of the last step). Raises ``StepDiverged``.
    """
    model.train()
    first = epoch * steps_per_epoch(config, len(images))
    aug_rng = np.random.default_rng([config.seed, epoch, 1])
    batches = iterate_minibatches(len(images), config.batch_size, shuffle=True, seed=config.seed,
                                  epoch=epoch, drop_last=config.drop_last)
    loss_sum, correct, seen, lr = 0.0, 0, 0, optimizer.lr
    for i, idx in enumerate(batches):                               # idx: (b,) rows
        xb = images[idx]                                            # (b, 3, H, W) uint8
        if config.augment:
            xb = augment(xb, aug_rng, flip=config.flip, max_shift=config.max_shift,
                         crop_scale=config.crop_scale, brightness=config.brightness,
                         contrast=config.contrast)
        x = input_batch(to_float(xb))                               # (b, 3, H, W) float32
        lr = schedule.apply(optimizer, first + i)
        try:
            loss, ok = train_step(model, optimizer, x, labels[idx], idx, step_fn)
        except NonFiniteLossError as exc:
            raise StepDiverged(str(exc), step=i + 1, lr=lr) from exc
        loss_sum += loss * len(idx)
        correct += int(ok)
        seen += len(idx)
        if progress is not None:
            progress(i + 1, seen, loss_sum, correct)
    return {"train_loss": loss_sum / seen, "train_acc": correct / seen, "seen": seen, "lr": lr}
