"""Loss and accuracy of a classifier on a labelled set, in eval mode (``evaluate_classifier``).

``fit`` calls it on the validation faces after each epoch; the epoch with the best
validation accuracy (ties: lower loss) is the one kept in ``model.npz``.
"""
import numpy as np

from tinyface.backend import place
from tinyface.data import to_float
from tinyface.losses import softmax_cross_entropy_loss

from .device import host_array, input_batch


def evaluate_classifier(model, images, labels, batch_size=256):
    """Mean cross-entropy and accuracy of ``model`` on a labelled set, in eval mode.

    images: (N, 3, H, W) uint8 (converted with ``to_float``) or float32 (used as is);
    labels: (N,) int. Returns ``(loss, acc)`` as floats, acc in [0, 1]. The model's
    train/eval mode is restored afterwards; no gradient is computed.
    Raises ``NonFiniteLossError`` if a logit is NaN/inf.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    n = len(images)
    if n == 0 or len(labels) != n:
        raise ValueError(f"evaluate_classifier: need N >= 1 images and N labels, "
                         f"got {n} images and {len(labels)} labels")
    was_training = model.training
    place(model).eval()
    loss_sum, correct = 0.0, 0
    try:
        for i in range(0, n, batch_size):
            xb = images[i:i + batch_size]
            x = to_float(xb) if xb.dtype == np.uint8 else xb
            yb = labels[i:i + batch_size]
            logits = model.forward(input_batch(x))                 # (b, K)
            loss, _ = softmax_cross_entropy_loss(logits, yb, where=f"evaluation batch {i // batch_size}")
            loss_sum += loss * len(yb)
            correct += int(np.count_nonzero(np.argmax(host_array(logits), axis=1) == yb))
    finally:
        model.train(was_training)
    return loss_sum / n, correct / n
