"""Other distillation methods as fine-tuning variants: one entry per method (``METHODS``).

Each variant adds one term to the fine-tuning loss (``DistillStep``), next to CE::

    L = CE(student(x_LR), y) + method_weight * loss_m(student side, teacher side)

over the batch's labelled faces, with the teacher side read from the feature bank
(``FeatureBank.embeddings`` (N, Dt), ``FeatureBank.logits`` (N, K)). What each method
reads on the student side (``Method.reads``):

- ``embedding``: the student's embedding phi_s (b, Ds) against the teacher's (b, Dt);
  SP, RKD and PKT compare the batch's relations (similarities, distances, angles,
  affinity distributions), so the widths may differ and no adapter is used;
- ``adapter``: ``A phi_s`` (b, Dt), the training-only adapter's output, against the
  teacher's embedding (FSIM: per-face cosine; CRD: InfoNCE against the bank); the
  gradient reaches the student through A;
- ``logits``: the student's logits (b, K) against the bank's teacher logits (DKD);
- ``map``: the student's last spatial map, before its global average pool, fmap
  (b, C, H, W) (``FaceNet.forward_both(x, keep_map=True)``), against the bank's teacher
  attention rows ``FeatureBank.attention`` (b, H*W) (AT); the gradient goes back into
  the map (``backward_both(..., dmap)``).

``per_face``: the loss is a mean of per-face terms (FSIM, CRD, DKD, AT); SP, RKD and PKT
are batch relations. Each per-face method m has a second variant, ``selective-m``
(``SELECTIVE_METHOD_VARIANTS``: ``selective-fsim``, ``selective-crd``, ``selective-dkd``,
``selective-at``), the paper's selection applied to that method instead of to feature
regression::

    L = CE(student(x_LR), y) + method_weight * mean_{i in S} loss_m,i

where S is the batch's labelled faces that the selection keeps (the same selection, ratio
and informativeness as variant ``selective``: ``make_weights("selective", ...) > 0``); a
batch with none of them has no method term, and CE stays on every labelled face. There is
no feature regression. Its weight is m's (one weight per method), and its row is
``student + selective M`` (``variant_row_name``). ``variant_method`` gives a variant's
``Method`` (m for ``selective-m``), ``is_selective_method`` whether it is one of these.

Default weights (``Method.default_weight``, used when ``DistillConfig.method_weight`` is
None), with where each comes from (``Method.weight_source``):

- SP 3000: RepDistiller (Tian et al.'s benchmark code, ``--distill similarity -b 3000``),
  whose SP loss has the same normalisation, ``||G_s - G_t||_F**2 / N**2``;
- RKD 1: RepDistiller (``--distill rkd -b 1``), with the paper's inner weights 25
  (distance) and 50 (angle), which ``rkd_loss`` applies;
- PKT 468.75: RepDistiller's ``-b 30000`` is on a KL averaged over the N**2 entries;
  ``pkt_loss`` averages over the N faces (N times larger), so 30000 / 64 reproduces
  RepDistiller's term at its batch of 64 (the ablation's batch too);
- FSIM 1: no published default for this loss here (unsure): 1.0;
- CRD 0.8: RepDistiller (``--distill crd -b 0.8``), with its temperature 0.07; our CRD
  is InfoNCE with K = min(16, N - 1) negatives, not RepDistiller's NCE with 16384, so
  the weight is the benchmark's, not re-tuned;
- DKD 1: mdistiller (the DKD authors' code), CE weight 1 and DKD weight 1 with
  alpha 1, beta 8 inside the loss (``dkd_loss``' defaults) at the config's T (4, the
  paper's CIFAR temperature); the code's linear warm-up of the term over 20 epochs is
  left out;
- AT 1000: RepDistiller (``--distill attention -b 1000``), whose AT loss,
  ``(at(f_s) - at(f_t)).pow(2).mean()``, is the mean over faces and H*W positions, as
  ``attention_rows_loss``' (not ``at_loss``' ``beta / 2 * mean_n``, which is H*W / 2 times
  larger); RepDistiller sums it over several intermediate stages, we match one.

Attention transfer's matching stage (Zagoruyko & Komodakis, ICLR 2017). Each network's
last spatial map, just before its global average pool: the teacher's is the input of the
``GlobalAvgPool2d`` of ``teacher.features`` (``bank.pooled_index``), the student's the
input of its own (``FaceNet.pool_index``; shape ``FaceNet.map_shape``). The teacher's
side is computed once, in the bank: ``extract_bank(..., attention_size=(H, W))`` for our
own teacher, ``FrozenTeacher(..., attention_size=(H, W))`` for the pretrained one (in the
same forward pass as its descriptors, of the tuned network when a tail is tuned). Its
attention ``q_t = vec(mean_c t**2)`` (N, H'*W') is average-pooled to the student's H x W
and L2-normalised (``kd_maps.teacher_attention``). When H' = k H and W' = k W the pool
is the k x k mean; otherwise it is adaptive: on each axis student cell i covers teacher
cells [i r, (i+1) r), r = H' / H, and averages the teacher cells weighted by their
overlap, ``P[i, j] = |[i r, (i+1) r) & [j, j+1)| / r``, the 2-d pool being
``P_h q_t P_w^T`` (``kd_maps.adaptive_pool_matrix``; for an integer r = k,
``P[i, j] = 1/k`` on the k cells of the window). dlib's ResNet at 150 px ends on a
2 x 2 map, smaller than the 16 px student's 4 x 4: r = 1/2, and each student cell takes
the one teacher cell it lies in (``P[i, j] = 1``), so its rows hold 4 distinct values
in 16 positions. The student side is
``a_s = vec(mean_c f_s**2) / ||.||`` (``attention_map_forward``) and the term
``mean_{n, p} (a_s - a_t)**2``, with its gradient through ``attention_map_backward``
into fmap. The channel counts may differ; nothing is learnt for the match and nothing
is added to the deployed student (no adapter).

CRD's negatives: for each face, K = min(16, N - 1) other faces of the bank (never the
face itself), drawn without replacement from a generator seeded by (seed, step), so a
run is reproducible and a resumed one draws what the uninterrupted one would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinyface.kernels.kd_relations import rkd_loss
from tinyface.reference.kd_logits import dkd_loss
from tinyface.reference.kd_maps import attention_rows_loss, fsim_loss, sp_loss
from tinyface.reference.kd_relations import crd_loss, pkt_loss

__all__ = ["Method", "MethodInputs", "METHODS", "METHOD_VARIANTS", "READS",
           "CRD_NEGATIVES", "CRD_TAU", "crd_negatives", "SELECTIVE_PREFIX",
           "SELECTIVE_METHOD_VARIANTS", "PER_FACE_METHODS", "variant_method",
           "is_selective_method", "variant_row_name"]

READS = ("embedding", "adapter", "logits", "map")
CRD_NEGATIVES = 16          # K = min(16, N - 1) negatives per face
CRD_TAU = 0.07              # RepDistiller's nce_t


@dataclass(frozen=True)
class MethodInputs:
    """What a method's loss reads for one batch besides the student side.

    rows: (l,) int, the bank rows of the batch's labelled faces; labels: (l,) int;
    bank: the ``FeatureBank``; T: the KD temperature; seed, step: seed the draws (CRD).
    """
    rows: np.ndarray
    labels: np.ndarray
    bank: object
    T: float
    seed: int
    step: int


@dataclass(frozen=True)
class Method:
    """One distillation method as a fine-tuning variant.

    loss: ``(s, inputs) -> (loss, ds)`` for one batch, s: (l, D) float32 the student side
    (``reads``) of the l labelled faces ((l, C, H, W) for ``map``), ds its gradient of
    s's shape."""
    name: str
    citation: str
    reads: str
    default_weight: float
    weight_source: str
    per_face: bool
    row_name: str
    loss: Callable


def crd_negatives(rows, n, seed, step, k=CRD_NEGATIVES):
    """(l, K) int64 negatives for the faces ``rows`` (l,) of a bank of ``n`` faces:
    K = min(k, n - 1) distinct other faces per row, never the face itself, drawn by
    ``np.random.default_rng([seed, step])``."""
    rows = np.asarray(rows, np.int64)
    K = min(int(k), n - 1)
    if K < 1:
        raise ValueError(f"CRD needs a bank of at least 2 faces, got {n}")
    rng = np.random.default_rng([int(seed), int(step)])
    pick = np.argsort(rng.random((len(rows), n - 1)), axis=1)[:, :K]    # (l, K) in [0, n-1)
    return pick + (pick >= rows[:, None])                                # skip the face itself


def _teacher(inputs):
    return inputs.bank.embeddings[inputs.rows]                           # (l, Dt)


def _sp(s, inputs):
    return sp_loss(s, _teacher(inputs))


def _rkd(s, inputs):
    return rkd_loss(s, _teacher(inputs))


def _pkt(s, inputs):
    return pkt_loss(s, _teacher(inputs))


def _fsim(s, inputs):
    return fsim_loss(s, _teacher(inputs))


def _crd(s, inputs):
    neg = crd_negatives(inputs.rows, inputs.bank.n, inputs.seed, inputs.step)
    return crd_loss(s, inputs.bank.embeddings, inputs.rows, neg, tau=CRD_TAU)


def _dkd(s, inputs):
    return dkd_loss(s, inputs.bank.logits[inputs.rows], inputs.labels, T=inputs.T)


def _at(s, inputs):
    bank = inputs.bank
    if bank.attention is None:
        raise ValueError("variant 'at' needs the teacher's attention maps in the feature "
                         "bank: extract_bank(..., attention_size=(H, W)), or for the "
                         "pretrained teacher FrozenTeacher(..., attention_size=(H, W))")
    return attention_rows_loss(s, bank.attention[inputs.rows])         # s: (l, C, H, W)


_REPDISTILLER = "RepDistiller (Tian et al., ICLR 2020 benchmark code)"
METHODS = {m.name: m for m in (
    Method("sp", "Tung & Mori, Similarity-preserving knowledge distillation, ICCV 2019",
           "embedding", 3000.0, f"{_REPDISTILLER}: -b 3000, same loss normalisation", False,
           "student + SP (Tung & Mori)", _sp),
    Method("rkd", "Park, Kim, Lu & Cho, Relational knowledge distillation, CVPR 2019",
           "embedding", 1.0, f"{_REPDISTILLER}: -b 1, inner weights 25 / 50 (the paper's)",
           False, "student + RKD (Park et al.)", _rkd),
    Method("pkt", "Passalis & Tefas, Learning deep representations with probabilistic "
                  "knowledge transfer, ECCV 2018",
           "embedding", 30000.0 / 64, f"{_REPDISTILLER}: -b 30000 on a mean over N**2 "
                                      "entries, = 30000 / 64 on our mean over faces at "
                                      "batch 64", False,
           "student + PKT (Passalis & Tefas)", _pkt),
    Method("fsim", "feature-similarity distillation (1 - cosine), after F-SKD (2023)",
           "adapter", 1.0, "no published default for this loss: 1.0", True,
           "student + FSIM (feature cosine)", _fsim),
    Method("crd", "Tian, Krishnan & Isola, Contrastive representation distillation, "
                  "ICLR 2020 (InfoNCE against the bank)",
           "adapter", 0.8, f"{_REPDISTILLER}: -b 0.8, temperature 0.07", True,
           "student + CRD (Tian et al.)", _crd),
    Method("dkd", "Zhao, Cui, Song, Qiu & Liang, Decoupled knowledge distillation, CVPR 2022",
           "logits", 1.0, "mdistiller (the authors' code): weight 1, alpha 1, beta 8, T 4",
           True, "student + DKD (Zhao et al.)", _dkd),
    Method("at", "Zagoruyko & Komodakis, Paying more attention to attention, ICLR 2017",
           "map", 1000.0, f"{_REPDISTILLER}: -b 1000, same loss normalisation (mean over "
                          "faces and positions), one stage instead of several", True,
           "student + AT (Zagoruyko & Komodakis)", _at),
)}
METHOD_VARIANTS = tuple(METHODS)

# ``selective-m``: a per-face method's term on the selected faces only (module docstring)
SELECTIVE_PREFIX = "selective-"
PER_FACE_METHODS = tuple(name for name, m in METHODS.items() if m.per_face)
SELECTIVE_METHOD_VARIANTS = tuple(SELECTIVE_PREFIX + name for name in PER_FACE_METHODS)


def is_selective_method(variant):
    """Whether ``variant`` is a ``selective-m`` variant (m a per-face method)."""
    return variant in SELECTIVE_METHOD_VARIANTS


def variant_method(variant):
    """The ``Method`` a variant runs: m for ``m`` and ``selective-m``; None otherwise."""
    if is_selective_method(variant):
        return METHODS[variant[len(SELECTIVE_PREFIX):]]
    return METHODS.get(variant)


def variant_row_name(variant):
    """A method variant's row in the ablation's report: m's own (``Method.row_name``), or
    ``student + selective M`` for ``selective-m``."""
    method = variant_method(variant)
    if method is None:
        raise ValueError(f"{variant!r} is not a method variant")
    if is_selective_method(variant):
        return f"student + selective {method.name.upper()}"
    return method.row_name
