"""Identity-disjoint LFW verification: one model per test fold.

For test fold f, the LFW View 2 protocol allows training only on the identities named
in the other nine folds (the folds share no identity). So for each evaluated fold f:

1. train a student on the LR faces of the other folds' identities (those with at
   least two images, since a classifier needs them);
2. embed every pair's faces with that student, choose the cosine threshold that is
   best on the other nine folds' pairs, and measure the accuracy on fold f's pairs.

With ``cross_resolution`` a teacher is also trained per fold on the same identities'
HR faces, and each pair is scored as HR gallery face (first of the pair, teacher at
HR) against LR probe face (second, the teacher on the LR face upsampled back).
``folds=K`` evaluates the first K folds only (each fold costs one training run).
"""
from __future__ import annotations

import time

import numpy as np

from tinyface.data import degrade, verification_split
from tinyface.eval import auc, indexed_fn, roc_curve, tar_at_far, verify_pairs
from tinyface.models import build_model, spec_by_name
from tinyface.train import fit


def _train_on(images, labels, arch, input_size, config, log):
    keep = np.bincount(labels)[labels] >= 2
    images, labels = images[keep], labels[keep]
    _, labels = np.unique(labels, return_inverse=True)
    spec = spec_by_name(arch, num_classes=int(labels.max()) + 1)
    spec["input_size"] = input_size
    model = build_model(spec, seed=config.seed)
    fit(model, images, labels, config, log=log)
    return model.eval(), len(labels), int(labels.max()) + 1


def verification_experiment(ds, pairs, config, lr_size=16, folds=None, cross_resolution=False,
                            teacher_config=None, teacher_arch="teacher-lite", log=print):
    """Per-fold training and scoring; returns a JSON-able dict of results.

    ds: the full LFW ``Dataset`` (HR, (N, 3, H, W) uint8); pairs: 10 folds from
    ``tinyface.data.load_pairs``; config: ``TrainConfig`` of each fold's student;
    teacher_config: of each fold's teacher (``cross_resolution`` only).
    """
    n_folds = len(pairs) if folds is None else int(folds)
    if not 1 <= n_folds <= len(pairs):
        raise ValueError(f"folds must be in 1..{len(pairs)}, got {folds}")
    hr = ds.hr_size
    lr = degrade(ds.images, lr_size=lr_size, method="bicubic")             # (N, 3, l, l)
    lr_up = degrade(ds.images, lr_size=lr_size, method="bicubic", upsample_to=hr)
    rows = {"student": [], "cross": []}
    fold_scores = {"student": [], "cross": []}
    for f in range(n_folds):
        t0 = time.perf_counter()
        vs = verification_split(ds, pairs, f)
        train_rows, labels = vs.train_rows, vs.train.labels
        log(f"fold {f + 1}/{n_folds}: training a student on {vs.train.n_identities} identities "
            f"of the other folds ({len(train_rows)} faces)")
        student, n_used, k = _train_on(lr[train_rows], labels, "student", lr_size, config, log)
        res = verify_pairs(indexed_fn(student.embed, lr), None, ds, pairs)
        rows["student"].append(res["per_fold"][f])
        fold_scores["student"].append((res["scores"][res["fold_ids"] == f], res["same"][res["fold_ids"] == f]))
        msg = f"fold {f + 1}: student {100 * res['per_fold'][f]:.1f}%"
        if cross_resolution:
            teacher, _, _ = _train_on(ds.images[train_rows], labels, teacher_arch, hr,
                                      teacher_config or config, log)
            cres = verify_pairs(indexed_fn(teacher.embed, ds.images),
                                indexed_fn(teacher.embed, lr_up), ds, pairs)
            rows["cross"].append(cres["per_fold"][f])
            fold_scores["cross"].append((cres["scores"][cres["fold_ids"] == f],
                                         cres["same"][cres["fold_ids"] == f]))
            msg += f", cross-resolution (teacher HR vs LR) {100 * cres['per_fold'][f]:.1f}%"
        log(msg + f" ({time.perf_counter() - t0:.0f} s)")
    out = {"folds": n_folds, "lr_size": lr_size}
    for key in ("student", "cross"):
        if not rows[key]:
            continue
        scores = np.concatenate([s for s, _ in fold_scores[key]])
        same = np.concatenate([y for _, y in fold_scores[key]])
        far, tar, _ = roc_curve(scores, same)
        out[key] = {"accuracy": float(np.mean(rows[key])), "std": float(np.std(rows[key])),
                    "per_fold": [float(v) for v in rows[key]], "auc": float(auc(far, tar)),
                    "tar_at_far_1e-2": float(tar_at_far(far, tar, 1e-2)),
                    "roc": {"far": far.tolist(), "tar": tar.tolist()}}
    return out
