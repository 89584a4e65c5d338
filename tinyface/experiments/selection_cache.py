"""The ablation's cached selections: ``select`` on the teacher's feature bank, kept in an
``.npz`` under the signature of what it was made from (``tinyface.cache``).

    sel = cached_selection(bank, y_train, 0.5, settings, seed, "out/selection/ratio-0.5.npz",
                           bank.meta["key"], print)
    sel.mask, sel.u, sel.s, sel.graph     # a tinyface.select.SelectionResult
    selection_info(sel)                   # what results.json records of it

``AblationSelections`` holds an ablation run's selections, each made once.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from tinyface.atomic import json_default, savez_atomic
from tinyface.eval import logits_of
from tinyface.cache import matches, signature
from tinyface.select import SelectionResult, select, student_gap

__all__ = ["cached_selection", "all_selected", "selection_info", "selection_signature",
           "AblationSelections"]

# the SelectionResult fields kept in the cache's JSON metadata (the arrays are its own)
_SCALARS = ("lam", "objective", "objective_final", "ratio", "target_ratio", "support_ratio",
            "converged", "steps", "changes", "swaps", "timings", "params")


def selection_signature(key, ratio, settings, seed, u_key=None):
    """What a selection depends on: the bank (its ``key``), the ratio, the selector's
    settings, the split's seed and (``u_key``) informativeness other than the teacher's."""
    return {"bank": key, "ratio": ratio, "k": settings.k, "alpha": settings.alpha,
            "per_identity": settings.per_identity, "seed": seed, "u": u_key}


def cached_selection(bank, labels, ratio, settings, seed, path, key, log, u=None, u_key=None):
    """``select`` on the bank at ``ratio``, cached in ``path`` under its signature (``key``:
    the bank's, ``bank.meta["key"]``). ``u``: the informativeness to use instead of the
    teacher's (named by ``u_key``)."""
    path = Path(path)
    sig = selection_signature(key, ratio, settings, seed, u_key)
    cached = _load(path, sig, log)
    if cached is not None:
        log(f"selection at ratio {ratio:g}: loaded {path}")
        return cached
    res = select(bank.embeddings, labels, bank.logits, ratio=ratio, k=settings.k,
                 alpha=settings.alpha, per_identity=settings.per_identity, seed=seed, u=u,
                 dim=bank.dim, log=lambda m: log(f"  selection: {m}"))
    log(f"selection at ratio {ratio:g}: {res.summary()}")
    res.graph = res.graph.tocsr()
    _save(path, sig, res)
    return res


def _save(path, sig, res):
    g = res.graph
    meta = {"signature": signature(sig), **{k: getattr(res, k) for k in _SCALARS}}
    path.parent.mkdir(parents=True, exist_ok=True)
    savez_atomic(path, {"mask": res.mask, "u": res.u, "s": res.s, "g_data": g.data,
                        "g_indices": g.indices, "g_indptr": g.indptr,
                        "g_shape": np.array(g.shape),
                        "meta": np.array(json.dumps(meta, default=json_default))})


def _load(path, sig, log):
    """The ``SelectionResult`` cached in ``path`` under ``sig``, or None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            meta = json.loads(str(d["meta"][()]))
            if not matches(meta.get("signature"), sig):
                return None
            g = sp.csr_matrix((d["g_data"], d["g_indices"], d["g_indptr"]),
                              shape=tuple(d["g_shape"]))
            lam = meta["lam"]
            return SelectionResult(mask=d["mask"].astype(bool), s=d["s"], u=d["u"], graph=g,
                                   **{k: meta[k] for k in _SCALARS if k != "lam"},
                                   lam=np.asarray(lam) if isinstance(lam, list) else lam)
    except Exception as exc:  # unreadable: recompute
        log(f"selection: ignoring {path} ({type(exc).__name__}: {exc})")
        return None


def all_selected(n, settings):
    """Every one of ``n`` faces selected (a ratio of 1: no selection is solved)."""
    return SelectionResult(mask=np.ones(n, bool), s=np.ones(n), u=np.zeros(n),
                           graph=sp.csr_matrix((n, n)), lam=0.0, objective=[],
                           objective_final=0.0, ratio=1.0, target_ratio=1.0, support_ratio=1.0,
                           converged=True, steps=0,
                           params={"per_identity": settings.per_identity})


def selection_info(sel):
    """What results.json records of a selection (its counts only when none was solved)."""
    info = {"selected": int(sel.mask.sum()), "faces": int(sel.mask.size), "ratio": sel.ratio}
    if sel.timings:
        info.update(converged=sel.converged, steps=sel.steps,
                    objective_final=float(sel.objective_final),
                    seconds=sel.timings.get("total"))
    return info


class AblationSelections:
    """The selections of an ablation run, each made once: one per ratio from the teacher's
    scores (``out/selection/ratio-R.npz``), or with ``informativeness="student-gap"`` one
    per seed and ratio from that seed's scratch student (``out/seedS/selection/...``)."""

    def __init__(self, bank, split, settings, out, log):
        self.bank, self.split, self.settings, self.out, self.log = bank, split, settings, out, log
        self.seed = int(split.meta.get("seed", 0))
        self.gap = settings.informativeness == "student-gap"
        self.shared, self.per_seed, self._gap_u = {}, {}, {}

    def _cached(self, r, folder, u=None, u_key=None):
        return cached_selection(self.bank, self.split.y_train, r, self.settings, self.seed,
                                folder / "selection" / f"ratio-{r:g}.npz", self.bank.meta["key"],
                                self.log, u=u, u_key=u_key)

    def prepare(self, ratios, needs_sel):
        """The selections known before any student is trained (``ratios`` below 1; a
        ratio of 1 selects every face)."""
        for r in ratios:
            if r < 1.0 and not self.gap:         # student-gap: per seed, once trained
                self.shared[r] = self._cached(r, self.out)
        if self.settings.ratio >= 1.0 and needs_sel:
            self.shared[1.0] = all_selected(len(self.split.y_train), self.settings)
        return self

    def get(self, seed, r, student):
        """The selection a run of ``seed`` at ratio ``r`` uses (made on first use);
        ``student``: that seed's scratch student (the student-gap scores)."""
        if r >= 1.0 or not self.gap:
            if r not in self.shared:
                self.shared[r] = self._cached(r, self.out)
            return self.shared[r]
        if (seed, r) not in self.per_seed:
            if seed not in self._gap_u:
                self._gap_u[seed] = student_gap(self.bank.logits,
                                                logits_of(student, self.split.lr_train),
                                                self.split.y_train)
            self.per_seed[(seed, r)] = self._cached(
                r, self.out / f"seed{seed}", u=self._gap_u[seed],
                u_key=f"student-gap, scratch seed {seed}")
        return self.per_seed[(seed, r)]

    def record(self, first_seed):
        """results.json's record: ratio -> ``selection_info`` (the first seed's, per seed)."""
        if self.gap:
            self.shared.update({r: sel for (seed, r), sel in self.per_seed.items()
                                if seed == first_seed})
        return {f"{r:g}": selection_info(s) for r, s in self.shared.items()}
