"""The training step of distillation fine-tuning: ``DistillStep``, the ``step_fn`` that
``tinyface.train.fit`` calls once per batch (the loss is given in
``tinyface.distill.finetune``'s docstring).

    step = DistillStep(bank, weights, mu=3.0)               # weights: (N,) or (N + M,)
    loss, correct = step(wrapper, x, batch_indices, labels)  # forward, losses, backward

Its loss settings default to ``DistillConfig``'s and are checked by the same functions.
A method variant (``tinyface.distill.methods``) adds one term, ``method_weight * loss_m``,
on the batch's labelled faces: ``DistillStep(bank, None, method="sp", method_weight=3000)``.
"""
from __future__ import annotations

import math

import numpy as np

from tinyface.backend import get_backend, ops
from tinyface.distill.bank import FeatureBank
from tinyface.distill.config import (DistillConfig, check_feature_norm, check_mu_schedule,
                                     check_temperature, check_weight)
from tinyface.distill.methods import METHODS, Method, MethodInputs
from tinyface.distill.methods_cuda import cuda_method_term
from tinyface.losses import (distillation_loss, feature_regression_loss,
                             softmax_cross_entropy_loss)
from tinyface.reference.normalize import l2_normalize_forward
from tinyface.train import host_array, input_batch

__all__ = ["DistillStep"]

# ---------------------------------------------------------------------- step
def _method_faces(faces, method, n):
    """``method_faces`` checked: None, or an (n,) bool mask for a per-face method."""
    if faces is None:
        return None
    if method is None or not method.per_face:
        raise ValueError("method_faces restricts a per-face method's term; "
                         f"{'no method' if method is None else repr(method.name)} is not one")
    faces = np.asarray(faces)
    if faces.shape != (n,) or not np.isin(faces, (0, 1)).all():
        raise ValueError(f"method_faces must be an ({n},) bool mask, got {faces.dtype} "
                         f"{faces.shape}")
    return faces.astype(bool)


def _mu_factor(schedule, step, total):
    if schedule == "constant" or total is None or total <= 1:
        return 1.0
    t = min(max(step / (total - 1), 0.0), 1.0)
    if schedule == "linear":
        return 1.0 - t
    return 0.5 * (1.0 + math.cos(math.pi * t))


class DistillStep:
    """The ``step_fn`` of distillation fine-tuning (see the module docstring for L).

    Call: ``(model, x, batch_indices, labels) -> (loss, correct)`` with ``model`` a
    ``DistillStudent``, x: (b, 3, S, S) float32 LR faces (augmented), batch_indices:
    (b,) rows of the training set, labels: (b,). Rows ``0 .. N-1`` (N = ``bank.n``) are
    the labelled faces, the bank's rows; rows ``N .. N+M-1`` are the M unlabelled faces
    of ``pool_targets`` (M, Dt), whose labels are placeholders and never read: CE and KD
    see only the batch's labelled faces (their mean is over those), the regression every
    face of the batch with a non-zero weight (its weighted mean is over those).
    weights: (N,) per-face regression weights, (N + M,) with a pool, or None.
    Runs forward, the losses, and backward through the adapter and the student
    (``backward_both``); gradients accumulate into the parameters' ``grads``.
    ``parts``: per call, ``(ce, kd, reg)`` (None when a term is off or has no face in
    the batch); ``counts``: per call, ``(labelled, regressed, correct)`` faces;
    ``step``: the number of calls so far (drives the mu schedule; set it when resuming).
    kd_weight: 0 (the default) leaves the Hinton term out; T is read only when it is on.
    method: None, or a method variant's name or ``Method`` (``distill.methods``), whose
    term ``method_weight * loss_m`` (method_weight None: the method's default) is taken
    on the batch's labelled rows; its gradient flows into the embedding, through the
    adapter, into the logits, or into the student's pre-pool map (``reads == "map"``, AT:
    the student then runs ``forward_both(x, keep_map=True)`` and the map's gradient goes
    in through ``backward_both(..., dmap)``) (``Method.reads``). Then ``parts`` holds
    ``(ce, kd, reg, method)``. seed: with the step count, seeds the method's draws (CRD).
    method_faces: None (the term on every labelled face), or an (N,) bool mask of the
    labelled faces a per-face method's term is taken on (``selective-m``: the selected
    faces; ``method_rows``); a batch with none of them has no method term.
    """

    def __init__(self, bank, weights, mu=DistillConfig.mu, T=DistillConfig.T, kd_weight=0.0, *,
                 feature_norm=DistillConfig.feature_norm, mu_schedule=DistillConfig.mu_schedule,
                 total_steps=None, pool_targets=None, method=None, method_weight=None,
                 seed=0, method_faces=None):
        if not isinstance(bank, FeatureBank):
            raise TypeError(f"bank must be a FeatureBank, got {type(bank).__name__}")
        check_feature_norm(feature_norm)
        check_mu_schedule(mu_schedule)
        check_weight("mu", mu)
        check_weight("kd_weight", kd_weight)
        if kd_weight > 0:
            check_temperature(T)
        self.bank, self.mu, self.T, self.kd_weight = bank, float(mu), float(T), float(kd_weight)
        self.feature_norm, self.mu_schedule, self.total_steps = feature_norm, mu_schedule, total_steps
        self.n_labelled = bank.n
        targets = bank.embeddings                                       # (N, Dt)
        if pool_targets is not None:
            pool_targets = np.asarray(pool_targets, np.float32)
            if pool_targets.ndim != 2 or pool_targets.shape[1] != bank.dim:
                raise ValueError(f"pool targets have shape {pool_targets.shape}; the bank's "
                                 f"are {bank.dim}-d")
            targets = np.concatenate([targets, pool_targets])           # (N + M, Dt)
        if weights is not None:
            weights = np.asarray(weights, np.float32)
            if weights.shape != (len(targets),):
                m = len(targets) - bank.n
                raise ValueError(f"weights have shape {weights.shape} but there are "
                                 f"{len(targets)} faces ({bank.n} in the feature bank, "
                                 f"{m} in the pool)")
            if (weights < 0).any() or not np.isfinite(weights).all():
                raise ValueError("weights must be finite and >= 0")
        self.regress = weights is not None and self.mu > 0 and bool(np.any(weights > 0))
        self.weights = weights
        self.kd = self.kd_weight > 0
        # the targets, normalised once (the bank itself is never changed)
        self.targets = (l2_normalize_forward(targets)[0] if feature_norm == "l2"
                        else targets) if self.regress else None
        self.method = METHODS[method] if isinstance(method, str) else method
        if self.method is not None and not isinstance(self.method, Method):
            raise TypeError(f"method must be a Method or one of {', '.join(METHODS)}, "
                            f"got {type(method).__name__}")
        self.method_weight = None
        if self.method is not None:
            self.method_weight = (self.method.default_weight if method_weight is None
                                  else check_weight("method_weight", method_weight))
            if self.method.reads == "logits":
                check_temperature(T)
            if self.method.reads == "map" and bank.attention is None:
                raise ValueError(f"method {self.method.name!r} needs the teacher's attention "
                                 f"maps in the feature bank: extract_bank(..., "
                                 f"attention_size=(H, W)) with the student's map size")
        self.method_faces = _method_faces(method_faces, self.method, bank.n)
        self.seed = int(seed)
        self.step = 0
        self.parts = []
        self.counts = []

    def mu_at(self, step):
        return self.mu * _mu_factor(self.mu_schedule, step, self.total_steps)

    def regression(self, adapter, emb, idx):
        """``(loss, dpred)`` of the regression term for a batch: adapter forward on
        emb (b, Ds), then the weighted loss against the target rows ``idx``."""
        w = self.weights[idx]                                           # (b,)
        pred = adapter.forward(emb)                                     # (b, Dt)
        target = self.targets[idx]                                      # (b, Dt)
        if self.feature_norm == "l2":
            p_hat, cache = ops.l2_normalize_forward(pred)               # (b, Dt) unit rows
            loss, dhat = feature_regression_loss(p_hat, target, w)
            return loss, ops.l2_normalize_backward(dhat, cache)         # (b, Dt)
        return feature_regression_loss(pred, target, w)

    def labelled_terms(self, logits, idx, labels):
        """``(ce, kd, dlogits)`` for a batch: CE (+ KD) over its labelled rows only.

        A batch of labelled faces alone takes the plain path (the losses on the whole
        batch). A mixed batch gathers the labelled rows' logits on the host, takes the
        same losses on those l rows (means over l), and scatters their gradient into a
        (b, K) array whose unlabelled rows are 0. No labelled row: (None, None, None).
        """
        lab = idx < self.n_labelled                                     # (b,) bool
        if lab.all():
            ce, dlogits = softmax_cross_entropy_loss(logits, labels)
            kd = None
            if self.kd:
                kd, dkd = distillation_loss(logits, self.bank.logits[idx], self.T)
                dlogits = dlogits + self.kd_weight * dkd                # Python float: any tier
            return ce, kd, dlogits
        rows = np.flatnonzero(lab)                                      # (l,)
        if len(rows) == 0:
            return None, None, None
        z = input_batch(np.ascontiguousarray(host_array(logits)[rows]))    # (l, K)
        ce, dz = softmax_cross_entropy_loss(z, labels[rows])
        dz = np.array(host_array(dz), np.float32)                       # (l, K)
        kd = None
        if self.kd:
            kd, dkd = distillation_loss(z, self.bank.logits[idx[rows]], self.T)
            dz += self.kd_weight * host_array(dkd)
        dlogits = np.zeros(tuple(logits.shape), np.float32)             # (b, K)
        dlogits[rows] = dz
        return ce, kd, input_batch(dlogits)

    def method_rows(self, idx):
        """The batch positions (l,) the method's term is taken on: its labelled rows,
        those of ``method_faces`` only when it is given."""
        lab = idx < self.n_labelled                                     # (b,) bool
        if self.method_faces is not None:
            lab[lab] = self.method_faces[idx[lab]]
        return np.flatnonzero(lab)

    def method_term(self, model, emb, logits, idx, labels, fmap=None):
        """``(loss, demb, dlogits, dmap)`` of the method's term on the batch's labelled
        rows: the weighted gradient of what the method reads (``Method.reads``), demb
        (b, Ds), dlogits (b, K) or dmap (b, C, H, W), the other two None; unlabelled rows
        get 0. fmap: the student's pre-pool map, for a method reading the map.
        No labelled row: (None, None, None, None). Under the CUDA backend the term is the
        method's GPU loss (``methods_cuda.cuda_method_term``): the side stays on the GPU
        and the gradient is a DeviceTensor; otherwise ``Method.loss`` on the host."""
        rows = self.method_rows(idx)                                    # (l,)
        if len(rows) == 0:
            return None, None, None, None
        reads, wt = self.method.reads, self.method_weight
        if reads == "adapter":
            side = model.adapter.forward(emb)                           # (b, Dt)
        elif reads == "map":
            side = fmap                                                 # (b, C, H, W)
        else:
            side = emb if reads == "embedding" else logits              # (b, Ds) | (b, K)
        inputs = MethodInputs(rows=idx[rows], labels=np.asarray(labels)[rows],
                              bank=self.bank, T=self.T, seed=self.seed, step=self.step)
        if get_backend() == "cuda":       # the GPU's loss: the side and its gradient stay there
            loss, grad = cuda_method_term(self.method, side, rows, inputs, wt)
        else:
            host = np.asarray(host_array(side), np.float32)
            loss, ds = self.method.loss(np.ascontiguousarray(host[rows]), inputs)
            grad = np.zeros(host.shape, np.float32)                     # (b, D) | (b, C, H, W)
            grad[rows] = wt * np.asarray(ds, np.float64)
            grad = input_batch(grad)
        if reads == "logits":
            return loss, None, grad, None
        if reads == "map":
            return loss, None, None, grad
        if reads == "adapter":
            grad = model.adapter.backward(grad)                         # (b, Ds)
        return loss, grad, None, None

    def __call__(self, model, x, batch_indices, labels):
        idx = np.asarray(batch_indices)
        reads_map = self.method is not None and self.method.reads == "map"
        fmap = None
        if reads_map:
            emb, logits, fmap = model.student.forward_both(x, keep_map=True)   # + (b, C, H, W)
        else:
            emb, logits = model.student.forward_both(x)                 # (b, Ds), (b, K)
        ce, kd_loss, dlogits = self.labelled_terms(logits, idx, labels)
        loss = 0.0 if ce is None else ce if kd_loss is None else ce + self.kd_weight * kd_loss
        demb, reg, n_reg = None, None, 0
        if self.regress:
            n_reg = int(np.count_nonzero(self.weights[idx] > 0))
        if n_reg:
            mu = self.mu_at(self.step)
            reg, dpred = self.regression(model.adapter, emb, idx)
            loss += mu * reg
            if mu > 0:
                demb = model.adapter.backward(float(mu) * dpred)        # (b, Ds)
        m_loss = dmap = None
        if self.method is not None:
            m_loss, m_demb, m_dlogits, dmap = self.method_term(model, emb, logits, idx,
                                                               labels, fmap)
            if m_loss is not None:
                loss += self.method_weight * m_loss
                if m_demb is not None:
                    demb = m_demb if demb is None else demb + m_demb
                if m_dlogits is not None:
                    dlogits = m_dlogits if dlogits is None else dlogits + m_dlogits
        if dmap is not None:
            model.student.backward_both(demb, dlogits, dmap)
        elif demb is not None or dlogits is not None:
            model.student.backward_both(demb, dlogits)
        self.step += 1
        self.parts.append((ce, kd_loss, reg) if self.method is None
                          else (ce, kd_loss, reg, m_loss))
        lab = idx < self.n_labelled
        correct = int(np.count_nonzero(np.argmax(host_array(logits), axis=1)[lab] == labels[lab]))
        self.counts.append((int(lab.sum()), n_reg, correct))
        return loss, correct

