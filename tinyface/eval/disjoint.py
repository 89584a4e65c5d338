"""Identity-disjoint verification of models trained on an identification split.

The ablation's students (and the teacher) are trained on the split's identities
(LFW-158 on LFW). Verification must use faces of people they never saw, so:

- ``lfw``: LFW View 2 ``pairs.txt`` (all 10 folds), restricted to the pairs whose two
  identities are both outside the split's identities. Each fold's threshold is the
  best one on the other folds' restricted pairs (``ten_fold_accuracy``). On LFW3D
  with LFW-158's people removed, 5,274 of the 6,000 pairs remain (2,404 matched,
  2,870 mismatched, 497-561 per fold, 6,592 distinct faces). The kept pairs are no
  longer exactly balanced, so ``n_same`` and ``n_diff`` are reported next to the
  accuracy, and the AUC (threshold-free) with it.
- ``synthetic``: faces of *other* synthetic identities, generated from another seed
  (``data seed + 10007``; identities are drawn independently per seed, so they are
  disjoint by construction). Identities are dealt to 10 folds (no identity in two
  folds, as in LFW) and each fold gets ``pairs_per_fold`` matched and as many
  mismatched pairs, drawn with a fixed seed: a deterministic, balanced pairs set.
- ``orl`` and ``folder``: every identity is in the split, none is left: verification
  is ``n/a`` (``disjoint_pairs`` returns None and the reason).

Embeddings are the models' (the student at the LR size; the teacher at HR, or on the
LR faces upsampled back), compared by cosine similarity.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from tinyface.data import DataError, degrade, find_pairs_file, load_dataset, load_pairs

from .extract import embed_images
from .roc import auc, roc_curve
from .verification import cosine_scores, resolve_folds, ten_fold_accuracy

__all__ = ["DisjointPairs", "disjoint_pairs", "verify_disjoint", "verify_embeddings",
           "NA_NOTES", "synthetic_pairs"]

NA_NOTES = {
    "orl": "n/a: ORL has no disjoint identities left (all 40 are in the split)",
    "folder": "n/a: a folder dataset has no pairs file and no identities left out of the split",
}
SYNTHETIC_SEED_OFFSET = 10007


@dataclass
class DisjointPairs:
    """Verification pairs of identities unseen in training.

    images: (M, 3, H, W) uint8 HR faces (only those the pairs use); a, b: (P,) int64
    rows of ``images``; same: (P,) bool; fold_ids: (P,) int64; source: where they
    come from; meta: counts and settings (JSON-able).
    """
    images: np.ndarray
    a: np.ndarray
    b: np.ndarray
    same: np.ndarray
    fold_ids: np.ndarray
    source: str = ""
    meta: dict = field(default_factory=dict)
    rows: np.ndarray = None       # (M,) rows of ``images`` in the dataset they came from
    _degraded: dict = field(default_factory=dict, repr=False)

    @property
    def n_pairs(self):
        return int(len(self.a))

    @property
    def n_same(self):
        return int(self.same.sum())

    @property
    def n_diff(self):
        return self.n_pairs - self.n_same

    @property
    def n_folds(self):
        return int(len(np.unique(self.fold_ids)))

    def faces(self, lr_size=None, upsampled=False, method="bicubic"):
        """The pairs' faces: HR (``lr_size`` None), LR, or LR upsampled back to HR."""
        if lr_size is None:
            return self.images
        key = (int(lr_size), bool(upsampled), method)
        if key not in self._degraded:
            up = self.images.shape[-1] if upsampled else None
            self._degraded[key] = degrade(self.images, lr_size=int(lr_size), method=method,
                                          upsample_to=up)
        return self._degraded[key]

    def describe(self):
        return (f"{self.n_pairs} identity-disjoint pairs ({self.n_same} same, {self.n_diff} "
                f"different) in {self.n_folds} folds, {len(self.images)} faces; {self.source}")


def _lfw_pairs(split, data_root, cache_dir, log):
    ds = load_dataset("lfw", root=data_root, hr_size=split.hr_size, cache_dir=cache_dir)
    pairs_file = find_pairs_file(data_root)
    if pairs_file is None:
        raise DataError("no lfw_pairs.txt or pairs.txt next to the LFW data; put LFW's "
                        "pairs.txt beside it or give --data-root")
    folds = load_pairs(pairs_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b, same, fold_ids, missing = resolve_folds(folds, ds, strict=False)
    seen = set(split.names)
    unseen = np.array([name not in seen for name in ds.names], bool)        # per identity
    keep = unseen[ds.labels[a]] & unseen[ds.labels[b]]
    total = len(a)
    a, b, same, fold_ids = a[keep], b[keep], same[keep], fold_ids[keep]
    if len(np.unique(fold_ids)) < 2:
        raise ValueError(f"only {len(a)} LFW pairs avoid the split's {len(seen)} identities; "
                         f"the 10-fold protocol needs pairs in at least 2 folds")
    rows, inv = np.unique(np.r_[a, b], return_inverse=True)
    out = DisjointPairs(ds.images[rows], inv[:len(a)].astype(np.int64),
                        inv[len(a):].astype(np.int64), same.astype(bool),
                        fold_ids.astype(np.int64), source=f"LFW {pairs_file.name}, pairs of "
                        f"identities outside the split's {len(seen)}", rows=rows)
    out.meta = {"pairs_file": str(pairs_file), "pairs_total": int(total + missing),
                "pairs_missing_images": int(missing), "pairs_kept": out.n_pairs,
                "n_same": out.n_same, "n_diff": out.n_diff, "faces": int(len(rows)),
                "excluded_identities": len(seen)}
    if log:
        log(f"verification: {out.describe()} (of {total + missing} LFW pairs)")
    return out


def synthetic_pairs(hr_size=64, n_identities=40, images_per_identity=6, pairs_per_fold=30,
                    n_folds=10, seed=SYNTHETIC_SEED_OFFSET):
    """A deterministic, balanced pairs set over freshly generated synthetic identities.

    Identities are dealt to ``n_folds`` folds; each fold gets ``pairs_per_fold``
    matched pairs (two different images of one of its identities) and as many
    mismatched ones (two of its identities). Needs 2 identities per fold.
    """
    if n_identities < 2 * n_folds or images_per_identity < 2:
        raise ValueError(f"synthetic verification needs >= {2 * n_folds} identities and >= 2 "
                         f"images each, got {n_identities} x {images_per_identity}")
    ds = load_dataset("synthetic", hr_size=hr_size, seed=int(seed), n_identities=int(n_identities),
                      images_per_identity=int(images_per_identity))
    rng = np.random.default_rng([int(seed), 0xF01D])
    ids = rng.permutation(int(n_identities))
    by_id = [np.flatnonzero(ds.labels == k) for k in range(int(n_identities))]
    a, b, same, fold = [], [], [], []
    for f in range(n_folds):
        members = ids[f::n_folds]
        for _ in range(pairs_per_fold):
            k = rng.choice(members)
            i, j = rng.choice(by_id[k], size=2, replace=False)
            a.append(i), b.append(j), same.append(True), fold.append(f)
        for _ in range(pairs_per_fold):
            k1, k2 = rng.choice(members, size=2, replace=False)
            a.append(rng.choice(by_id[k1])), b.append(rng.choice(by_id[k2]))
            same.append(False), fold.append(f)
    out = DisjointPairs(ds.images, np.array(a, np.int64), np.array(b, np.int64),
                        np.array(same, bool), np.array(fold, np.int64),
                        source=f"synthetic identities of seed {seed} (disjoint from the split's)")
    out.meta = {"seed": int(seed), "identities": int(n_identities),
                "images_per_identity": int(images_per_identity), "pairs_kept": out.n_pairs,
                "n_same": out.n_same, "n_diff": out.n_diff, "faces": int(len(ds.images))}
    return out


def disjoint_pairs(data, split, data_root=None, cache_dir=None, synthetic=None, log=None):
    """Identity-disjoint pairs for ``split``'s models: ``(DisjointPairs or None, note)``.

    data: the split's dataset name; data_root, cache_dir: as for ``load_split`` (lfw);
    synthetic: dict for synthetic data: ``seed`` (the split's data seed, default 0),
    ``n_identities`` (40), ``images_per_identity`` (6), ``pairs_per_fold`` (30).
    The note says where the pairs come from, or why there are none.
    """
    if data == "lfw":
        p = _lfw_pairs(split, data_root, cache_dir, log)
        return p, p.describe()
    if data == "synthetic":
        opts = dict(synthetic or {})
        seed = int(opts.pop("seed", 0)) + SYNTHETIC_SEED_OFFSET
        p = synthetic_pairs(hr_size=split.hr_size, seed=seed, **opts)
        if log:
            log(f"verification: {p.describe()}")
        return p, p.describe()
    note = NA_NOTES.get(data, f"n/a: no identity-disjoint pairs for {data}")
    if log:
        log(f"verification: {note}")
    return None, note


def verify_disjoint(model, pairs, lr_size=None, upsampled=False, method="bicubic",
                    batch_size=256):
    """Verification accuracy of ``model`` on ``pairs`` (10-fold protocol on their folds).

    lr_size: None for HR faces (the teacher at HR), else the LR side (the student; or
    the teacher with ``upsampled``). Returns a JSON-able dict: ``accuracy`` (mean over
    folds), ``std``, ``per_fold``, ``auc``, ``n_pairs``, ``n_same``, ``n_diff``.
    """
    faces = pairs.faces(lr_size, upsampled, method)
    emb = embed_images(model, faces, batch_size)                       # (M, D)
    return verify_embeddings(emb, pairs, input_size=int(faces.shape[-1]))


def verify_embeddings(emb, pairs, input_size=None):
    """``verify_disjoint``'s scores from embeddings already computed.

    emb: (M, D), one row per face of ``pairs.images``; input_size: recorded as is.
    Also ``accuracy_euclidean``: the same protocol on minus the Euclidean distance of
    the raw embeddings (how dlib compares its descriptors).
    """
    emb = np.asarray(emb)
    if emb.ndim != 2 or len(emb) != len(pairs.images):
        raise ValueError(f"need one embedding per face of the pairs ({len(pairs.images)}), got "
                         f"shape {emb.shape}")
    scores = cosine_scores(emb[pairs.a], emb[pairs.b])                 # (P,)
    res = ten_fold_accuracy(scores, pairs.same, pairs.fold_ids)
    far, tar, _ = roc_curve(scores, pairs.same)
    dist = np.linalg.norm(emb[pairs.a].astype(np.float64) - emb[pairs.b], axis=1)   # (P,)
    euclid = ten_fold_accuracy(-dist, pairs.same, pairs.fold_ids)
    return {"accuracy": res["mean"], "std": res["std"], "per_fold": res["per_fold"],
            "auc": float(auc(far, tar)), "accuracy_euclidean": euclid["mean"],
            "n_pairs": pairs.n_pairs, "n_same": pairs.n_same,
            "n_diff": pairs.n_diff, "input_size": input_size}
