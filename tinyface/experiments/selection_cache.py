"""The ablation's cached selections (``cached_selection``) and the small JSON helpers
its caches share.

    sel = cached_selection(bank, y_train, 0.5, settings, seed, "out/selection/ratio-0.5.npz",
                           bank.meta["key"], print)
    sel.mask, sel.u, sel.s, sel.graph     # what the report and the fine-tuning runs need

Split out of ``tinyface.experiments.ablation``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from tinyface.select import select

__all__ = ["CachedSelection", "cached_selection", "all_selected", "read_json", "same_json"]


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def same_json(a, b):
    """JSON-level equality (tuples and lists alike)."""
    return json.loads(json.dumps(a, default=str)) == json.loads(json.dumps(b, default=str))


class CachedSelection:
    """What the ablation keeps of a ``SelectionResult``: mask, u, s, graph, params."""

    def __init__(self, mask, u, s, graph, params, info):
        self.mask, self.u, self.s, self.graph = mask, u, s, graph
        self.params, self.info = params, info

    @property
    def ratio(self):
        return float(self.mask.mean())


def cached_selection(bank, labels, ratio, settings, seed, path, key, log, u=None, u_key=None):
    """``select`` on the bank at ``ratio``, cached in ``path`` under ``key``. ``u``: the
    informativeness to use instead of the teacher's (named by ``u_key`` in the cache)."""
    path = Path(path)
    sig = {"bank": key, "ratio": ratio, "k": settings.k, "alpha": settings.alpha,
           "per_identity": settings.per_identity, "seed": seed, "u": u_key}
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as d:
                meta = json.loads(str(d["meta"][()]))
                if same_json(meta.get("sig"), sig):
                    g = sp.csr_matrix((d["g_data"], d["g_indices"], d["g_indptr"]),
                                      shape=tuple(d["g_shape"]))
                    log(f"selection at ratio {ratio:g}: loaded {path}")
                    return CachedSelection(d["mask"].astype(bool), d["u"], d["s"], g,
                                           meta["params"], meta["info"])
        except Exception as exc:  # unreadable: recompute
            log(f"selection: ignoring {path} ({type(exc).__name__}: {exc})")
    t0 = time.perf_counter()
    res = select(bank.embeddings, labels, bank.logits, ratio=ratio, k=settings.k,
                 alpha=settings.alpha, per_identity=settings.per_identity, seed=seed, u=u,
                 dim=bank.dim, log=lambda m: log(f"  selection: {m}"))
    log(f"selection at ratio {ratio:g}: {res.summary()}")
    info = {"selected": int(res.mask.sum()), "faces": int(res.mask.size), "ratio": res.ratio,
            "converged": res.converged, "steps": res.steps,
            "objective_final": float(res.objective_final), "seconds": time.perf_counter() - t0}
    g = res.graph.tocsr()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, mask=res.mask, u=res.u, s=res.s, g_data=g.data, g_indices=g.indices,
                 g_indptr=g.indptr, g_shape=np.array(g.shape),
                 meta=np.array(json.dumps({"sig": sig, "params": res.params, "info": info},
                                          default=str)))
    tmp.replace(path)
    return CachedSelection(res.mask, res.u, res.s, g, res.params, info)


def all_selected(n, settings):
    return CachedSelection(np.ones(n, bool), np.zeros(n), np.ones(n), sp.csr_matrix((n, n)),
                           {"per_identity": settings.per_identity}, {"selected": n, "faces": n,
                                                                      "ratio": 1.0})
