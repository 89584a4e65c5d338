"""Fine-tuning the last block(s) of a pretrained teacher on the target identities.

The pretrained teacher (``distill.frozen_teacher``) is frozen by default. This module
tries the other option the paper's regime allows: adapt its last residual block(s)
and its embedding layer to the target training faces, keeping the trunk frozen.

    tuned, record = tune_teacher_tail(teacher, hr_train, y_train, TailTuning(blocks=1))

Recipe (``TailTuning``):

1. The frozen trunk's activations entering the tail are computed once (``embed_faces``
   with ``through``): (N, 256, 4, 4) for dlib's ResNet with one tuned block.
   ``inputs="hr+lr"`` adds the same faces degraded to LR and upsampled back, so that
   the tail also learns to recognise LR faces ("towards LR").
2. The tail (those blocks, the global pool and the bias-free embedding ``Linear``) is
   trained with a cosine-softmax head, logits = s * n(W) . n(e), cross-entropy, SGD
   with momentum 0.9, a cosine learning rate and weight decay. W starts at the class
   means of the normalised pretrained descriptors, so the first step is already a
   sensible classifier and the tail moves only as far as the labels ask. The rate is
   small: dlib's convolution weights are about 1e-3 in size (its affine layers carry
   the scale), and on 534 training faces of 20 identities a rate of 3e-3 took the
   training accuracy from 98 % (the initial head) to 46 % within one epoch; 3e-4 kept
   it at 95 %. ``scale`` 32 rather than 16: the cosines of dlib's descriptors are
   compressed (that head's cross-entropy was 2.1 at s = 16, 1.4 at 32).
3. The tuned copy of the teacher is returned; the original is untouched.

No augmentation is possible on cached activations, and the tuned tail has seen every
training face with its label: a softmax head fitted afterwards on its descriptors is
more confident on those faces than out-of-fold scores of a frozen teacher would be.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from tinyface.data import degrade
from tinyface.losses import softmax_cross_entropy_loss
from tinyface.models.pretrained import embed_faces
from tinyface.models.spec import Residual
from tinyface.nn import Sequential
from tinyface.optim import SGD, select_params
from tinyface.reference.normalize import l2_normalize_backward, l2_normalize_forward

TUNE_INPUTS = ("hr", "hr+lr")

__all__ = ["TUNE_INPUTS", "TailTuning", "tail_start", "tune_teacher_tail", "cosine_logits_forward",
           "cosine_logits_backward"]


@dataclass
class TailTuning:
    """Settings of ``tune_teacher_tail`` (validated on creation)."""
    blocks: int = 1               # residual blocks tuned, counted from the last
    epochs: int = 10
    lr: float = 3e-4
    weight_decay: float = 5e-4
    scale: float = 32.0           # s of the cosine-softmax head
    inputs: str = "hr"            # or "hr+lr": also the training faces at LR, upsampled
    lr_size: int = 16             # ... degraded as the split's are
    lr_method: str = "bicubic"
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self):
        if int(self.blocks) < 1 or int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise ValueError(f"blocks, epochs and batch_size must be >= 1, got {self.blocks}, "
                             f"{self.epochs}, {self.batch_size}")
        for name in ("lr", "scale"):
            if not (float(getattr(self, name)) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)}")
        if not float(self.weight_decay) >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.inputs not in TUNE_INPUTS:
            raise ValueError(f"inputs must be one of {', '.join(TUNE_INPUTS)}, got "
                             f"{self.inputs!r}")

    def to_dict(self):
        return asdict(self)


def tail_start(model, blocks):
    """Index in ``model.features`` of the first of its last ``blocks`` residual blocks."""
    res = [i for i in range(len(model.features)) if isinstance(model.features[i], Residual)]
    if int(blocks) > len(res):
        raise ValueError(f"{model.spec['name']} has {len(res)} residual blocks, asked to tune "
                         f"{blocks}")
    return res[-int(blocks)]


def cosine_logits_forward(emb, weight, scale):
    """The cosine-softmax head (small matrices: the reference tier, any float dtype).
    emb: (B, D), weight: (K, D) -> ``(logits (B, K) = scale * n(emb) . n(weight)^T,
    cache)``."""
    e_hat, e_cache = l2_normalize_forward(emb)                       # (B, D)
    w_hat, w_cache = l2_normalize_forward(weight)                    # (K, D)
    return scale * e_hat @ w_hat.T, (e_hat, e_cache, w_hat, w_cache, scale)


def cosine_logits_backward(dlogits, cache):
    """dlogits: (B, K) -> ``(demb (B, D), dweight (K, D))``."""
    e_hat, e_cache, w_hat, w_cache, scale = cache
    de_hat = scale * dlogits @ w_hat                                 # (B, D)
    dw_hat = scale * dlogits.T @ e_hat                               # (K, D)
    return l2_normalize_backward(de_hat, e_cache), l2_normalize_backward(dw_hat, w_cache)


def tune_teacher_tail(teacher, faces, labels, settings=None, log=None):
    """Fine-tune a copy of ``teacher``'s tail on ``faces`` (module docstring).

    teacher: a pretrained ``FaceNet`` (left as it is); faces: (N, 3, h, w) uint8 HR
    training faces; labels: (N,) int64 in [0, K). Returns ``(tuned FaceNet in eval
    mode, record)``, record a JSON-able dict of the settings, the loss and training
    accuracy per epoch, and the seconds spent.
    """
    cfg = settings or TailTuning()
    say = log or (lambda msg: None)
    labels = np.asarray(labels, np.int64)
    t0 = time.perf_counter()
    tuned = copy.deepcopy(teacher).eval()
    start = tail_start(tuned, cfg.blocks)
    inputs = [faces]
    if cfg.inputs == "hr+lr":
        up = degrade(faces, lr_size=cfg.lr_size, method=cfg.lr_method,
                     upsample_to=faces.shape[-1])   # (N, 3, h, w)
        inputs.append(up)
    say(f"teacher tuning: the frozen trunk's activations of {len(faces)} faces"
        f"{' at HR and at LR, upsampled' if cfg.inputs == 'hr+lr' else ''} (layers 0-{start - 1})")
    acts = np.concatenate([embed_faces(tuned, f, batch_size=cfg.batch_size, log=say,
                                       through=start) for f in inputs])    # (N', C, h, w)
    y = np.concatenate([labels] * len(inputs))                             # (N',)
    tail = Sequential(*[tuned.features[i] for i in range(start, len(tuned.features))])
    k = int(labels.max()) + 1
    # the head starts at the class means of the normalised pretrained descriptors
    emb = np.concatenate([tail.forward(acts[i:i + 256]) for i in range(0, len(acts), 256)])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True) + 1e-12
    weight = np.stack([emb[y == c].mean(0) for c in range(k)]).astype(np.float32)  # (K, D)
    dweight = np.zeros_like(weight)
    tail.train()
    opt = SGD(select_params(tail) + [("head.weight", weight, dweight)], lr=cfg.lr,
              momentum=0.9, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    steps_per_epoch = -(-len(acts) // cfg.batch_size)
    total, history = cfg.epochs * steps_per_epoch, []
    say(f"teacher tuning: {cfg.blocks} block(s) and the embedding layer, "
        f"{tail.num_parameters():,} parameters, on {len(acts)} faces, {cfg.epochs} epochs")
    step = 0
    for epoch in range(cfg.epochs):
        order, loss_sum, correct = rng.permutation(len(acts)), 0.0, 0
        for i in range(0, len(acts), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            opt.lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            tail.zero_grad()
            dweight[...] = 0
            e = tail.forward(acts[idx])                                    # (B, D)
            logits, cache = cosine_logits_forward(e, weight, cfg.scale)           # (B, K)
            loss, dlogits = softmax_cross_entropy_loss(logits, y[idx], where="teacher tuning")
            de, dw = cosine_logits_backward(dlogits, cache)
            dweight += dw
            tail.backward(de)
            opt.step()
            loss_sum += float(loss) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            step += 1
        history.append({"epoch": epoch + 1, "loss": loss_sum / len(acts),
                        "train_acc": correct / len(acts)})
        say(f"  teacher tuning epoch {epoch + 1}/{cfg.epochs}: loss {history[-1]['loss']:.3f}, "
            f"training accuracy {100 * history[-1]['train_acc']:.1f}%")
    tuned.eval()
    record = {"settings": cfg.to_dict(), "tail_start": start, "faces": int(len(acts)),
              "parameters": int(tail.num_parameters()), "history": history,
              "seconds": time.perf_counter() - t0}
    return tuned, record
