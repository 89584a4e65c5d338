"""Training losses, public API: check the inputs, run the active tier's op, and stop
loudly when the loss is not finite.

Each function returns ``(loss, grad)``: the loss as a Python float and its gradient with
respect to the first argument (same shape and dtype), ready for ``model.backward``::

    loss, dlogits = softmax_cross_entropy_loss(logits, labels)
    model.backward(dlogits)

A NaN or infinite loss (or gradient) raises ``NonFiniteLossError`` (a
``FloatingPointError``) instead of silently poisoning the weights. Pass
``where="epoch 3, step 120"`` to say where.
"""
import numpy as np

from tinyface.backend import is_device_array, ops

__all__ = ["NonFiniteLossError", "softmax_cross_entropy_loss", "feature_regression_loss",
           "distillation_loss"]


class NonFiniteLossError(FloatingPointError):
    """The loss came out NaN or infinite."""


def _finite_or_raise(loss, grad, name, where, **inputs):
    """Return ``(float(loss), grad)``, or raise ``NonFiniteLossError`` naming the culprit."""
    if np.isfinite(loss):
        if grad.all_finite() if is_device_array(grad) else np.all(np.isfinite(grad)):
            return float(loss), grad
        what = "gradient is " + ("nan" if np.isnan(grad).any() else "inf")
    else:
        what = "loss is " + ("nan" if np.isnan(loss) else "inf")
    bad = []
    for arg, value in inputs.items():
        if value is None:
            continue
        value = np.asarray(value)
        if value.dtype.kind == "f":
            count = int(value.size - np.count_nonzero(np.isfinite(value)))
            if count:
                bad.append(f"{arg} has {count} non-finite value(s)")
    detail = f" ({'; '.join(bad)})" if bad else ""
    place = f"{where} in {name}" if where else name
    raise NonFiniteLossError(f"{what} at {place}{detail}; "
                             f"lower the learning rate or check the inputs")


def _float_array(a, name):
    if is_device_array(a):
        return a                       # GPU arrays are float32 already (or refused by the op)
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        a = a.astype(np.float32)
    elif a.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array, got dtype {a.dtype}")
    return a


def softmax_cross_entropy_loss(logits, labels, *, where=None):
    """Mean softmax cross-entropy.

    logits: (N, K) float32, unnormalised class scores;
    labels: (N,) int in [0, K) (ValueError otherwise);
    where:  optional text naming the training step, for the error message.
    Returns ``(loss, dlogits)``.
    """
    logits = _float_array(logits, "logits")
    loss, grad = ops.softmax_cross_entropy_loss(logits, labels)
    return _finite_or_raise(loss, grad, "softmax_cross_entropy_loss", where, logits=logits)


def feature_regression_loss(pred, target, weights=None, *, where=None):
    """Weighted mean over samples of ``||pred_i - target_i||^2``.

    pred, target: (N, D) float32; weights: (N,) non-negative float or None (all ones);
    where: optional text naming the training step, for the error message.
    Returns ``(loss, dpred)``.
    """
    pred = _float_array(pred, "pred")
    target = _float_array(target, "target")
    loss, grad = ops.feature_regression_loss(pred, target, weights)
    return _finite_or_raise(loss, grad, "feature_regression_loss", where, pred=pred,
                            target=target, weights=weights)


def distillation_loss(student_logits, teacher_logits, T, *, where=None):
    """Hinton's soft-target loss ``T**2 * mean KL(softmax(t / T) || softmax(s / T))``.

    student_logits, teacher_logits: (N, K) float32; T: temperature > 0;
    where: optional text naming the training step, for the error message.
    Returns ``(loss, dstudent)``.
    """
    s = _float_array(student_logits, "student_logits")
    t = _float_array(teacher_logits, "teacher_logits")
    loss, grad = ops.distillation_loss(s, t, T)
    return _finite_or_raise(loss, grad, "distillation_loss", where, student_logits=s,
                            teacher_logits=t)
