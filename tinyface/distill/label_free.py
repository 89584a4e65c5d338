"""Label-free regression: the teacher's features on faces that have no identity label.

Feature regression needs no labels, so the student can also regress the teacher on
faces outside the labelled training set. Which faces (``label_free_pool``): every face
of the dataset except

- the split's test faces (never trained on, with or without labels);
- the split's labelled training faces (already in the labelled set, with their bank
  rows);
- by default (``exclude_pair_identities=True``), every face of every identity in the
  identity-disjoint verification pairs (``tinyface.eval.disjoint``): the verification
  row stays honest, since the student never regresses, even without labels, on a face
  of a person it is later verified on.

On LFW3D with LFW-158 (seed 0): 13,233 faces, 1,304 test, 3,020 training; without the
pair rule the pool is the other 8,909 faces (labelled + pool = the 11,929 faces outside
the test set). Identities with a single face count like any other.

The pool's faces are made as the split makes its own: LR faces by
``degrade(hr, split.lr_size, method=split.meta["lr_method"])`` from the dataset decoded
at the split's HR size (bit-identical to ``split.lr_train`` for the training rows,
checked by the tests); the teacher's HR faces from the dataset decoded at the
teacher's source size (90 px for the pretrained teacher, as
``frozen_teacher.source_faces``; 0: the split's HR faces). Targets are the teacher's
embeddings of those HR faces, in the bank's space (raw descriptors for the frozen
teacher, the embedding for ours; not the bank's standardised ``pooled`` layer).

    ds = load_dataset("lfw", hr_size=split.hr_size)                  # as the split's
    rows, info = label_free_pool(ds, split, pairs)                   # info["text"]
    pool = make_pool(ds, split, rows, embed, info, data="lfw", hr_size=90,
                     known=[(pairs.rows, pairs_hr_descriptors)])
    finetune(student, split, bank, None, DistillConfig("full"), cfg, pool=pool)
    sig["label_free"] = pool_signature(pool, "full")                 # cached runs

How ``finetune`` uses it: see ``tinyface.distill.finetune`` (each epoch is one pass over
labelled + pool faces, shuffled together; CE and KD over the labelled faces of a batch,
the regression over its weighted faces, pool faces with weight 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyface.cache import fingerprint
from tinyface.data import degrade, load_dataset
from tinyface.distill.bank import extract_bank
from tinyface.distill.frozen_teacher import source_faces
from tinyface.distill.config import REGRESSION_VARIANTS
from tinyface.data.split import split_of

__all__ = ["UnlabelledPool", "label_free_pool", "pool_lr_faces", "pool_source_faces",
           "pool_targets", "make_pool", "pool_signature", "union_training_set"]

POOL_RULE = "dataset minus the split's test and training faces"
PAIR_RULE = " minus every face of the verification pairs' identities"


@dataclass
class UnlabelledPool:
    """M faces without labels for the regression.

    lr_images: (M, 3, S, S) uint8 at the split's LR size; targets: (M, Dt) float32, the
    teacher's embeddings of their HR faces (as the bank's); rows: (M,) int64 dataset
    rows or None; meta: JSON-able (counts, rule, where the targets come from).
    """
    lr_images: np.ndarray
    targets: np.ndarray
    meta: dict = field(default_factory=dict)
    rows: np.ndarray = None
    _fingerprint: str = field(default=None, repr=False)

    def __post_init__(self):
        self.lr_images = np.ascontiguousarray(self.lr_images)
        self.targets = np.ascontiguousarray(self.targets, dtype=np.float32)
        x, t = self.lr_images, self.targets
        if x.ndim != 4 or x.shape[1] != 3 or x.dtype != np.uint8:
            raise ValueError(f"pool faces must be (M, 3, S, S) uint8, got {x.dtype} {x.shape}")
        if t.ndim != 2 or len(t) != len(x):
            raise ValueError(f"pool targets must be (M, Dt) with M = {len(x)} faces, got {t.shape}")
        if not np.isfinite(t).all():
            raise ValueError("the pool's targets hold NaN or inf values")
        if self.rows is not None:
            self.rows = np.asarray(self.rows, np.int64)
            if self.rows.shape != (len(x),):
                raise ValueError(f"pool rows have shape {self.rows.shape}, expected ({len(x)},)")

    @classmethod
    def empty(cls, lr_size, dim):
        return cls(np.zeros((0, 3, lr_size, lr_size), np.uint8), np.zeros((0, dim), np.float32))

    @property
    def n(self):
        return int(len(self.lr_images))

    @property
    def dim(self):
        return int(self.targets.shape[1])

    def check(self, lr_size, dim):
        """``ValueError`` unless the faces are ``lr_size`` px and the targets ``dim``-d."""
        if self.lr_images.shape[2:] != (int(lr_size), int(lr_size)):
            raise ValueError(f"the pool's faces are {self.lr_images.shape[-1]}px; the split's LR "
                             f"faces are {int(lr_size)}px")
        if self.dim != int(dim):
            raise ValueError(f"the pool's targets are {self.dim}-d but the bank's are "
                             f"{int(dim)}-d: use the same teacher and layer")
        return self

    def fingerprint(self):
        """The faces' and targets' fingerprint (``tinyface.cache.fingerprint``), 20 hex
        digits."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.lr_images, self.targets, length=20)
        return self._fingerprint

    def record(self):
        """JSON-able: size, fingerprint and meta (for metrics and signatures)."""
        return {"faces": self.n, "fingerprint": self.fingerprint(),
                **{k: v for k, v in self.meta.items() if k != "text"}}


def pool_signature(pool, variant):
    """What a cached ``finetune`` run of ``variant`` depends on in the pool: None when
    the run does not use it (no pool, an empty one, or ``none``/``kd``, which ignore
    it), else ``{"faces", "fingerprint"}``. Add it to the run's signature only when not
    None, so runs without a pool keep their signature and never match one with it."""
    if pool is None or pool.n == 0 or variant not in REGRESSION_VARIANTS:
        return None
    return {"faces": pool.n, "fingerprint": pool.fingerprint()}


def union_training_set(lr_train, y_train, weights, pool):
    """Labelled + pool faces as one training set for ``fit``.

    Returns ``(images (N+M, 3, S, S) uint8, labels (N+M,) int64, weights (N+M,)
    float32)``: the pool's labels are placeholders (0), never read (``DistillStep``
    takes CE over rows < N only); its weights are 1.
    """
    m = pool.n
    images = np.concatenate([lr_train, pool.lr_images])
    labels = np.concatenate([np.asarray(y_train, np.int64), np.zeros(m, np.int64)])
    return images, labels, np.concatenate([np.asarray(weights, np.float32),
                                           np.ones(m, np.float32)])


# ---------------------------------------------------------------- which faces
def _split_rows(ds, split):
    """The split's (train, test) rows of ``ds``, checked against the split. A validation
    split's test rows include the held-out test faces, which the pool never takes."""
    train_rows, test_rows, held = split_of(ds, split)
    if not (np.array_equal(ds.images[train_rows], split.hr_train)
            and np.array_equal(ds.images[test_rows], split.hr_test)):
        raise ValueError("the dataset's faces differ from the split's: load it as the split "
                         "was loaded (same data, root and seed)")
    return train_rows, np.concatenate([test_rows, held]).astype(np.int64)


def _pair_rows_in(ds, pairs):
    """The pairs' faces as rows of ``ds``, or None when they come from another dataset
    (synthetic pairs: other identities by construction; checked, no face of ``ds``)."""
    if pairs.rows is not None:
        rows = np.asarray(pairs.rows, np.int64)
        if len(rows) and rows.max() >= len(ds):
            raise ValueError(f"the pairs use row {rows.max()}, the dataset has {len(ds)} faces")
        if pairs.images.shape[1:] == ds.images.shape[1:] and \
                not np.array_equal(ds.images[rows], pairs.images):
            raise ValueError("the pairs' faces are not the dataset's rows they name: were "
                             "they made from another dataset?")
        return rows
    if pairs.images.shape[1:] != ds.images.shape[1:]:
        raise ValueError("the pairs do not say which dataset rows they use, and their faces "
                         "are another size than the dataset's: cannot check that they are "
                         "not the dataset's faces")
    seen = {f.tobytes() for f in ds.images}
    if any(f.tobytes() in seen for f in pairs.images):
        raise ValueError("the pairs' faces are in the dataset but the pairs do not say which "
                         "rows: their identities cannot be excluded")
    return None


def label_free_pool(ds, split, pairs=None, exclude_pair_identities=True):
    """Dataset rows that may be regressed without labels (module docstring's rule).

    ds: the dataset the split was made from (``load_dataset`` with the split's data
    and root, at the split's HR size); split: the ``FaceSplit``; pairs: its
    ``DisjointPairs`` (None: no pairs, nothing more excluded). Returns
    ``(rows (M,) int64 ascending, info)``, info a JSON-able dict of counts with a
    one-line ``text`` for the report. ``ValueError`` when ``ds`` does not give the
    split's faces, or the pairs' faces cannot be placed in it.
    """
    if ds.hr_size != split.hr_size:
        raise ValueError(f"the dataset is decoded at {ds.hr_size}px: load it at the split's "
                         f"hr_size={split.hr_size} (as the split's faces, checked bit for bit)")
    train_rows, test_rows = _split_rows(ds, split)
    keep = np.ones(len(ds), bool)
    keep[test_rows] = False
    keep[train_rows] = False
    info = {"dataset_faces": int(len(ds)), "test_faces": int(len(test_rows)),
            "train_faces": int(len(train_rows)),
            "exclude_pair_identities": bool(exclude_pair_identities),
            "pair_identities": 0, "pair_identity_faces": 0}
    rule = POOL_RULE
    if pairs is not None and exclude_pair_identities:
        rule += PAIR_RULE
        prow = _pair_rows_in(ds, pairs)
        if prow is None:
            info["pairs_note"] = "the pairs' faces are not in the dataset (other identities)"
        else:
            ids = np.unique(ds.labels[prow])
            in_pairs = np.isin(ds.labels, ids)
            info["pair_identities"] = int(len(ids))
            info["pair_identity_faces"] = int(in_pairs.sum())
            keep &= ~in_pairs
    rows = np.flatnonzero(keep).astype(np.int64)
    counts = np.bincount(ds.labels[rows], minlength=ds.n_identities)
    info.update(rule=rule, faces=int(len(rows)), identities=int((counts > 0).sum()),
                singletons=int((counts == 1).sum()))
    excl = (f", {info['pair_identity_faces']} faces of the pairs' {info['pair_identities']} "
            f"identities" if info["pair_identities"] else "")
    info["text"] = (f"label-free pool: {info['faces']} faces of {info['identities']} identities "
                    f"({info['singletons']} with one face), of {info['dataset_faces']}: excluded "
                    f"{info['test_faces']} test, {info['train_faces']} labelled training faces"
                    f"{excl}")
    return rows, info


# --------------------------------------------------------------- their faces
def pool_lr_faces(ds, rows, split):
    """The LR faces of ``rows``, made as the split makes its LR faces: (M, 3, lr, lr)
    uint8. ``ds`` must be decoded at the split's HR size."""
    if ds.hr_size != split.hr_size:
        raise ValueError(f"the dataset is decoded at {ds.hr_size}px; the split degrades its "
                         f"{split.hr_size}px faces: load it at hr_size={split.hr_size}")
    method = split.meta.get("lr_method", "bicubic")
    return degrade(ds.images[np.asarray(rows)], lr_size=split.lr_size, method=method)


def pool_source_faces(ds, rows, split, data=None, size=0, data_root=None, cache_dir=None):
    """The teacher's HR faces of ``rows``: decoded at ``size`` from the image files (the
    same rows of the same files, checked), or ``ds``'s own faces when ``size`` is 0 or
    the dataset's size, or for synthetic data (no files). (M, 3, s, s) uint8."""
    rows = np.asarray(rows)
    data = data or split.meta.get("data", "synthetic")
    if data == "synthetic" or not size or int(size) == ds.hr_size:
        return ds.images[rows]
    src = load_dataset(data, root=data_root, hr_size=int(size), cache_dir=cache_dir)
    if len(src) != len(ds) or src.names != ds.names or not (
            np.array_equal(src.labels, ds.labels)
            and np.array_equal(src.image_index, ds.image_index)):
        raise ValueError(f"{data} at {size}px does not have the same faces as at {ds.hr_size}px")
    return src.images[rows]


def pool_targets(embed, faces, rows, known=(), log=None):
    """The teacher's embeddings (M, D) float32 of ``faces`` (M, ...) at dataset ``rows``.

    embed: ``faces -> (k, D)`` (e.g. ``FrozenTeacher.descriptors`` under a name, which
    caches them); known: ``(rows_k, embeddings_k)`` pairs already computed for the same
    teacher and source faces (the pairs' HR descriptors, say): those rows are copied,
    only the others are embedded, in one call.
    """
    rows = np.asarray(rows, np.int64)
    if len(rows) == 0:
        raise ValueError("no faces to embed (an empty pool: see make_pool's dim)")
    out, have = None, np.zeros(len(rows), bool)
    where = {int(r): i for i, r in enumerate(rows)}
    for krows, kemb in known:
        kemb = np.asarray(kemb, np.float32)
        if len(krows) != len(kemb):
            raise ValueError(f"known embeddings: {len(krows)} rows but {len(kemb)} embeddings")
        if out is None:
            out = np.zeros((len(rows), kemb.shape[1]), np.float32)
        for j, r in enumerate(np.asarray(krows).tolist()):
            i = where.get(int(r))
            if i is not None and not have[i]:
                out[i], have[i] = kemb[j], True
    missing = np.flatnonzero(~have)
    if log:
        log(f"label-free pool: {int(have.sum())} teacher embeddings reused, "
            f"{len(missing)} to compute")
    if len(missing):
        new = np.asarray(embed(faces[missing]), np.float32)
        if out is None:
            out = np.zeros((len(rows), new.shape[1]), np.float32)
        out[missing] = new
    return out


def make_pool(ds, split, rows, embed, info=None, *, data=None, hr_size=0, data_root=None,
              cache_dir=None, known=(), dim=None, log=None):
    """The ``UnlabelledPool`` of ``rows`` (from ``label_free_pool``): LR faces as the
    split's, targets ``embed`` of the HR source faces at ``hr_size`` (0: ``ds``'s own),
    ``known`` embeddings reused (see ``pool_targets``); info: ``label_free_pool``'s
    counts, kept in ``meta``. dim: the targets' width, needed only for an empty pool."""
    rows = np.asarray(rows, np.int64)
    meta = dict(info or {})
    meta.update(lr_size=int(split.lr_size), lr_method=split.meta.get("lr_method", "bicubic"))
    if len(rows) == 0:
        if dim is None:
            raise ValueError("an empty pool needs dim (the teacher's embedding width)")
        pool = UnlabelledPool.empty(split.lr_size, int(dim))
        pool.meta, pool.rows = meta, rows
        return pool
    lr = pool_lr_faces(ds, rows, split)
    hr = pool_source_faces(ds, rows, split, data, hr_size, data_root, cache_dir)
    targets = pool_targets(embed, hr, rows, known, log)
    meta["hr_source"] = f"{hr.shape[-1]}px"
    return UnlabelledPool(lr, targets, meta, rows)


def ablation_pool(split, pool_rule, frozen, teacher, pairs, dim, data, data_root, cache_dir,
                  log):
    """The ablation's unlabelled pool: ``label_free_pool`` by ``pool_rule`` ("disjoint"
    leaves out the verification people, "all" keeps them), targets from the frozen
    teacher's cached descriptors (``frozen``) or our ``teacher``'s embeddings; the
    verification faces' descriptors are reused where the pool has them."""
    ds = load_dataset(data, root=data_root, hr_size=split.hr_size, cache_dir=cache_dir)
    rows, info = label_free_pool(ds, split, pairs, exclude_pair_identities=pool_rule == "disjoint")
    log(info["text"])
    known = []
    if frozen is not None and pairs is not None and getattr(pairs, "rows", None) is not None:
        known = [(pairs.rows, frozen.descriptors(
            "pairs-hr", source_faces(split, data, frozen.size, data_root, cache_dir,
                                     pairs=pairs)))]
    if frozen is not None:
        def embed(faces):
            return frozen.descriptors(f"label-free-{pool_rule}-hr", faces)
    else:
        def embed(faces):
            return extract_bank(teacher, faces).embeddings
    return make_pool(ds, split, rows, embed, info, data=data,
                     hr_size=frozen.size if frozen is not None else 0, data_root=data_root,
                     cache_dir=cache_dir, known=known, dim=dim, log=log)
