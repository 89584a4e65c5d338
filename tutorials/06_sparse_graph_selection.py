"""Tutorial 06: which teacher features to distil, by a sparse graph optimisation.

Selective distillation (Ge, Zhao, Li and Li, IEEE TIP 2019, arXiv 1811.09998) does not
regress the teacher's features on every training face: it "selectively distils the most
informative facial features from the teacher stream by solving a sparse graph
optimization problem". This stage sits between the two streams and the fine-tuning of
tutorial 07: the teacher's features of the HR training faces (the feature bank) become
the nodes of a kNN graph, and a sparse selection over that graph picks the faces whose
features the student will regress. Only that sentence comes from the paper; the graph,
the scores, the objective and the solver are tinyface's design
(``tinyface/select/__init__.py``). The formulation, for teacher features f_i, identities
y_i and teacher logits z_i::

    W_ij = max(0, cos(f_i, f_j))^p   on kNN edges within an identity (either end), p = 16
    u_i  = minmax(mean(softmax(z_i)[y_i], margin_i, (1 + cos(f_i, mu_{y_i})) / 2))
    minimise  f(s) = 1/2 alpha s^T W s  -  u^T s  +  lambda ||s||_1   over s in [0, 1]^N

u rewards informative faces, alpha prices redundancy (selecting both ends of an edge
costs alpha W_ij), lambda sets the sparsity and is bisected until about ``ratio * N``
faces are selected. Projected gradient, then coordinate descent to a binary 1-opt point;
neither stage ever raises f.

The teacher, as in the paper, is a network pretrained on other people: dlib's ResNet
(tutorial 04), whose 128-d descriptors of the HR faces are the features f_i. It was
never trained on these faces, so what it knows about a target face is sometimes wrong:
a face may sit nearer another identity's descriptors than its own. A softmax head on the
descriptors, fitted on the target identities, gives the logits z_i out of fold (each
face scored by a head that never saw it, ``tinyface.distill.frozen_teacher``); its
confidence softmax(z_i)[y_i] shows how often the teacher's knowledge of a face is wrong,
and u makes such faces the last to be selected. (A teacher trained on the same faces,
ours of tutorial 04, is right on almost all of them: it has memorised them.)

Run it:
    python tutorials/06_sparse_graph_selection.py --quick          # about 15 s, synthetic
    python tutorials/06_sparse_graph_selection.py                  # LFW, dlib's teacher
    python tutorials/06_sparse_graph_selection.py --ablation runs/abl-dlib-s1
    python tutorials/06_sparse_graph_selection.py --teacher runs/lfw-teacher   # ours, 256-d

Quick: 16 synthetic identities x 20 faces at 32 px, a teacher-lite trained 10 epochs
(about 7 s); synthetic faces always get a teacher-lite, since the pretrained net sees
them all as one person. Full: LFW-158 (3,020 training faces) and dlib's teacher: its
descriptors of the 3,020 faces take 1.5-3 minutes (20-45 faces/s on a busy 2-core CPU)
and are cached in OUT/ablation; ``--ablation DIR`` reuses the caches of an ablation
folder (default: tutorial 07's, tutorial_out/07/ablation, when it exists; or the
``python -m tinyface ablation --teacher dlib-resnet`` output), and then the whole run
takes about 30 s. ``--bank`` loads a saved bank instead; ``--teacher PATH`` uses our
trained teacher (extracted again in about 20 s; trained first if PATH holds none, about
50 minutes). The toy checks use hand-made and random class-clustered features, not a
teacher.
"""
import json
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinyface import tutorial  # noqa: E402
from tinyface.data import load_split  # noqa: E402
from tinyface.distill import FeatureBank, FrozenTeacher, extract_bank, make_weights  # noqa: E402
from tinyface.experiments import (AblationSettings, load_teacher, plot_graph,  # noqa: E402
                                  plot_selection_montage)
from tinyface.select import (gradient, objective, redundancy_graph, select, solve,  # noqa: E402
                             target_counts)

QUICK_FACES = {"n_identities": 16, "images_per_identity": 20, "family_size": 1}
SPLIT_KEYS = ("data", "seed", "min_images", "train_fraction", "hr_size", "lr_size")


def options(p):
    p.add_argument("--bank", metavar="NPZ", help="a saved teacher feature bank of this split "
                   "(e.g. runs/ablation-lfw/bank.npz)")
    tutorial.teacher_options(p, "an ablation output folder whose teacher caches to reuse "
                             "(descriptors, head, bank; default: tutorial 07's "
                             f"{tutorial.ABLATION_OUT} when it exists)")
    p.add_argument("--teacher-epochs", type=int, help="epochs when a teacher must be trained "
                   "(default: 10 for the teacher-lite, 40 for ours on LFW)")
    p.add_argument("--ratio", type=float, default=0.5, help="fraction of faces to select")
    p.add_argument("--alpha", type=float, default=1.0, help="weight of the redundancy term")
    p.add_argument("--k", type=int, default=10, help="neighbours per face in the graph")


args = tutorial.parse_args(6, __doc__, extra=options)
t = tutorial.Tutorial(args)
log = lambda msg: print(f"  {msg}")  # noqa: E731
pairs_str = lambda m: "{" + ", ".join(map(str, np.flatnonzero(m))) + "}"  # noqa: E731

# ---------------------------------------------------------------- 1. toy graph by hand
t.section("1. A toy graph checkable by hand: 4 faces, two of them exact duplicates")
F = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)   # (4, 3) features
y4 = np.zeros(4, np.int64)                                              # one identity
u4 = np.array([1.0, 0.9, 0.6, 0.2])                                     # informativeness, by hand
W4 = redundancy_graph(F, k=3, labels=y4, within_identity=True, sharpen=16.0)
print(f"features {F.shape}; faces 0 and 1 are equal, the rest orthogonal; u = {u4.tolist()}")
print(f"W (CSR {W4.shape}, {W4.nnz} stored entries):\n{W4.toarray()}")
by_hand = np.zeros((4, 4))
by_hand[0, 1] = by_hand[1, 0] = 1.0                                     # cos = 1, 1^16 = 1
t.check("max |W - W by hand|", float(np.abs(W4.toarray() - by_hand).max()), below=1e-12)
print("At exactly 2 selected faces lambda adds the same 2 lambda to every pair, so\n"
      "f({i, j}) = alpha W_ij - u_i - u_j + 2 lambda: the duplicates {0, 1} beat {0, 2}\n"
      "(u 1.0 + 0.6) only while alpha - 1.9 < -1.6, i.e. alpha < 0.3.")
print("  alpha   f({0,1})   f({0,2})   best pair by hand   select()   f never rises")
for alpha in (0.0, 0.2, 0.5, 1.0, 2.0, 5.0):
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    hand = [alpha * by_hand[i, j] - u4[i] - u4[j] for i, j in pairs]       # lambda = 0
    lib = [objective(W4, u4, alpha, 0.0, np.isin(np.arange(4), p).astype(float)) for p in pairs]
    best = pairs[int(np.argmin(hand))]
    res = select(F, y4, u=u4, ratio=0.5, k=3, alpha=alpha, seed=args.seed)
    rises = float(np.max(np.diff(res.objective), initial=0.0))
    print(f"  {alpha:5.1f}   {hand[0]:8.2f}   {hand[1]:8.2f}   {str(set(best)):17s}   "
          f"{pairs_str(res.mask):8s}   max step {rises:+.1e}")
    t.check(f"alpha={alpha:g}: max |f by hand - objective()| over the 6 pairs",
            float(np.max(np.abs(np.subtract(hand, lib)))), below=1e-12)
    t.check(f"alpha={alpha:g}: select() picks the hand optimum {set(best)}",
            int(set(np.flatnonzero(res.mask)) == set(best)), equals=1)
    t.check(f"alpha={alpha:g}: largest rise of f over the iterations", rises, below=1e-12)
print("alpha = 0 is plain top-u (the duplicates 0 and 1); any alpha above 0.3 keeps only one.")

# ------------------------------------------------- 2. toy: class-clustered random features
t.section("2. Random class-clustered features (a toy, not a teacher): duplicates and the ratio")
rng = np.random.default_rng(args.seed)
n_id, per_id, dim = 20, 12, 64
centres = rng.standard_normal((n_id, dim))
Fr = np.repeat(centres, per_id, axis=0) + 0.8 * rng.standard_normal((n_id * per_id, dim))
Fr[1::per_id] = Fr[0::per_id]                      # face 1 of each identity duplicates face 0
yr = np.repeat(np.arange(n_id), per_id)
print(f"features {Fr.shape} (20 identities x 12 faces, 64-d), face 1 = face 0 in every identity;"
      f"\nu from the centre score only (no logits); global ratio {args.ratio:g}")
for alpha in (0.0, 10.0):
    res = select(Fr, yr, ratio=args.ratio, k=5, alpha=alpha, per_identity=False, seed=args.seed)
    both = int(np.sum(res.mask[0::per_id] & res.mask[1::per_id]))
    print(f"  alpha {alpha:4g}: {res.summary()}\n    duplicate pairs with both faces "
          f"selected: {both}/{n_id}, lambda {res.lam:.4f}")
    t.check(f"alpha={alpha:g}: |selected ratio - {args.ratio:g}|",
            abs(res.ratio - args.ratio), below=0.01)
    t.check(f"alpha={alpha:g}: |support ratio before the exact count - {args.ratio:g}| / ratio",
            abs(res.support_ratio - args.ratio) / args.ratio, below=0.01 + 1e-12)
    t.check(f"alpha={alpha:g}: largest rise of f", float(np.max(np.diff(res.objective),
                                                                initial=0.0)), below=1e-9)
    if alpha > 1:
        t.check("alpha=10: duplicate pairs selected twice", both, equals=0)

# ---------------------------------------------------------------- 3. the teacher's bank
t.section("3. The teacher's feature bank")
if args.quick:
    split = load_split("synthetic", hr_size=32, lr_size=8, seed=args.seed, cache_dir=args.cache,
                       synthetic=QUICK_FACES)
    data, root = "synthetic", None
else:
    data, root = tutorial.choose_data(args)
    split = load_split(data, data_root=root, seed=args.seed, cache_dir=args.cache)
print(split.describe())
y = split.y_train
lite = args.quick or data == "synthetic"                # the teacher-lite, trained here
settings = AblationSettings(teacher_arch="teacher-lite" if lite else "teacher",
                            batch_size=32 if args.quick else 64,
                            teacher_epochs=args.teacher_epochs or (10 if lite else 40))
choice = None if args.bank else tutorial.choose_teacher(args, data)
if args.bank:
    bank = FeatureBank.load(args.bank).check(len(y), num_classes=split.num_classes)
    recorded = Path(args.bank).with_name("results.json")     # the ablation's record, if any
    if recorded.is_file():
        theirs = json.loads(recorded.read_text()).get("split", {})
        diff = [k for k in SPLIT_KEYS if k in theirs and theirs[k] != split.meta.get(k)]
        if diff:
            raise SystemExit(f"{args.bank} was extracted from another split ({diff}); use the "
                             f"same data options and --seed {theirs.get('seed')}")
    print(f"loaded {args.bank} (teacher {bank.meta.get('teacher')}, key {bank.meta.get('key')})")
elif choice == tutorial.PRETRAINED_TEACHER:   # descriptors + out-of-fold logits of a head
    cache = t.path("ablation")
    tutorial.reuse_caches(tutorial.ablation_source(args, cache), cache)
    ft = FrozenTeacher(choice, split, settings, cache, data=data, data_root=root,
                       cache_dir=args.cache, log=log)
    bank = ft.bank(t.path("ablation/bank.npz"))
    t.saved(t.path("ablation/bank.npz"))
else:
    teacher = load_teacher(split, settings, choice or t.path("teacher"), log)
    bank = extract_bank(teacher, split.hr_train, cache_path=t.path("bank.npz"), log=log)
    t.saved(t.path("bank.npz"))
oof = "out of fold" in str(bank.meta.get("logits", ""))     # a pretrained teacher's head
where = bank.meta["logits"] if oof else "its classifier, on faces it was trained on"
print(f"features phi_t(x_HR): {bank.embeddings.shape} ({bank.meta.get('teacher')}), logits: "
      f"{bank.logits.shape} ({where}), labels: {y.shape}")
t.check("bank rows - training faces", bank.n - len(y), equals=0)
z = bank.logits - bank.logits.max(1, keepdims=True)                      # (N, K)
conf = np.exp(z[np.arange(len(y)), y]) / np.exp(z).sum(1)                # (N,) softmax(z)[y]
right = bank.logits.argmax(1) == y                                       # (N,)
teacher_top1, low_conf = float(right.mean()), float(np.mean(conf < 0.5))
if oof:
    print(f"What the pretrained teacher knows of each face, by a head that never saw it: the "
          f"right identity\nfor {100 * teacher_top1:.1f}% of the training faces; for the "
          f"{100 * low_conf:.1f}% with a confidence p(y) < 0.5 it is unsure or wrong\nabout "
          f"whose face it is, and regressing its descriptor may teach the student a wrong place")
    head = bank.meta.get("head", {})                  # what the head's fit recorded
    if "oof_top1" in head:
        t.check("|top-1 of the bank's logits - the head's recorded out-of-fold top-1|",
                abs(teacher_top1 - head["oof_top1"]), below=1e-9)
        t.check("|share with p(y) < 0.5 - the head's record|",
                abs(low_conf - head["oof_confidence_below_half"]), below=1e-9)
else:
    print(f"the teacher on its own training faces: top-1 {100 * teacher_top1:.1f}%, "
          f"{100 * low_conf:.1f}% with p(y) < 0.5 (faces it was trained on)")

# ---------------------------------------------------------------- 4. the selection
t.section(f"4. Select {args.ratio:g} of each identity's faces (k {args.k}, alpha {args.alpha:g})")
res = select(bank.embeddings, y, bank.logits, ratio=args.ratio, k=args.k, alpha=args.alpha,
             per_identity=True, seed=args.seed, log=log)
W, u, mask = res.graph, res.u, res.mask
print(res.summary())
print(f"W: {W.shape} CSR, {W.nnz // 2} edges (mean degree {W.nnz / W.shape[0]:.1f}); "
      f"u: {u.shape}; mask: {mask.shape}, {int(mask.sum())} selected")
t.check("max |W - W^T|", float(abs(W - W.T).max()) if W.nnz else 0.0, below=1e-12)
t.check("max |diag W|", float(np.abs(W.diagonal()).max()), below=1e-12)
t.check("largest rise of f over the iterations", float(np.max(np.diff(res.objective),
                                                              initial=0.0)), below=1e-9)
_, groups = np.unique(y, return_inverse=True)
want = target_counts(args.ratio, np.bincount(groups), per_identity=True)   # (G,)
got = np.bincount(groups, weights=mask, minlength=len(want)).astype(int)
t.check("identities whose count differs from max(1, round(ratio n_c))",
        int(np.sum(got != want)), equals=0)
t.check("same seed, same selection (faces that differ on a re-run)", int(np.sum(
    select(bank.embeddings, y, bank.logits, ratio=args.ratio, k=args.k, alpha=args.alpha,
           per_identity=True, seed=args.seed).mask != mask)), equals=0)

lam_node = np.asarray(res.lam)[groups]                          # (N,) lambda of each face
g = gradient(W, u, args.alpha, lam_node, mask.astype(float))    # (N,) df/ds_i at the answer
ident = int(np.bincount(groups).argmax())
rows = np.flatnonzero(groups == ident)[:12]
print(f"\nWhy, for identity {split.names[ident]} (first {len(rows)} faces): g_i = alpha (W s)_i "
      f"- u_i + lambda; adding a face changes f by g_i, so unselected faces have g_i >= 0")
print("  face    u     selected  strongest edge (W_ij, j selected?)   g_i")
for i in rows:
    nb = W[i]
    j = int(nb.indices[nb.data.argmax()]) if nb.nnz else -1
    edge = f"{nb.data.max():.3f} to {j} ({'yes' if mask[j] else 'no'})" if j >= 0 else "none"
    print(f"  {i:5d}  {u[i]:.3f}  {'yes' if mask[i] else 'no ':3s}       {edge:28s}  {g[i]:+.3f}")
wrong = int(np.sum(mask & (g > 1e-12)) + np.sum(~mask & (g < -1e-12)))
print(f"faces whose g_i sign disagrees with their choice: {wrong} (swaps at the exact count "
      f"may leave a few)")
print(f"edge weights: median {np.median(W.data):.3f}, 90th percentile "
      f"{np.percentile(W.data, 90):.3f} (1 = the same face to the teacher)")
print(f"mean u: selected {u[mask].mean():.3f}, the others {u[~mask].mean():.3f}"
      + (": redundancy outweighs u here (near-duplicate features), so alpha decides"
         if u[mask].mean() < u[~mask].mean() else ""))
# the selection at least beats top-u and random subsets of the same size at its own objective
# (at equal counts per identity lambda adds the same to each, so it is left out)
f_of = lambda m: objective(W, u, args.alpha, 0.0, np.asarray(m, float))  # noqa: E731
top_u = select(bank.embeddings, y, bank.logits, ratio=args.ratio, k=args.k, alpha=0.0,
               per_identity=True, seed=args.seed).mask                # (N,) alpha = 0
f_sel, f_top = f_of(mask), f_of(top_u)
f_rand = [f_of(make_weights("random", bank, y, args.ratio, seed=s, selection=res))
          for s in range(10)]
print(f"f without lambda: selected {f_sel:.3f}, top-u {f_top:.3f}, best of 10 random subsets "
      f"with the same counts {min(f_rand):.3f}")
misknown = ~right                                # (N,) the teacher names another identity
share = lambda m: 100 * float(misknown[m].mean())  # noqa: E731
print(f"faces whose teacher logits name another identity: {int(misknown.sum())} "
      f"({share(np.ones_like(mask)):.1f}%); of the selected {share(mask):.1f}%, of top-u "
      f"{share(top_u):.1f}%; their mean u {u[misknown].mean() if misknown.any() else 0:.3f} "
      f"against {u[right].mean():.3f}")
if misknown.sum() >= 10:
    t.check("mean u of the wrongly known faces - of the others", float(u[misknown].mean()
                                                                      - u[right].mean()), below=0.0)
    print("u pushes them out (top-u takes few of them)" + (
        "; alpha pulls some back in: a face the teacher places\naway from its identity is "
        "also far from the faces already selected, so it adds little redundancy"
        if share(mask) > share(top_u) else ", and alpha keeps them out"))
t.check("f(selected) - f(top-u)", f_sel - f_top, below=1e-9)
t.check("f(selected) - f(best random subset)", f_sel - min(f_rand), below=1e-9)

t.saved(plot_selection_montage(split.hr_train, y, mask, t.path("montage.png"), names=split.names))
t.saved(plot_graph(bank.embeddings, y, mask, W, t.path("graph.png"), names=split.names))
print("\nThe solve from a cold start s0 = clip(u - lambda, 0, 1), at each alpha's own lambda")
print("  alpha   relaxation steps   sweeps   f(s0)        f(final)     largest rise")
order = np.random.default_rng(args.seed).permutation(len(y))          # the sweep order
fig, ax = plt.subplots(figsize=(5.4, 3.4))
for c, a in enumerate((0.25, args.alpha, 4.0)):
    lam_a = np.asarray(select(bank.embeddings, y, bank.logits, ratio=args.ratio, k=args.k,
                              alpha=a, per_identity=True, seed=args.seed).lam)[groups]  # (N,)
    sol = solve(W, u, a, lam_a, np.clip(u - lam_a, 0.0, 1.0), order)
    h = np.asarray(sol.history)                                       # f per iterate
    rise = float(np.max(np.diff(h), initial=0.0))
    print(f"  {a:5.2f}   {sol.relax_iters:16d}   {sol.sweeps:6d}   {h[0]:10.3f}   {h[-1]:10.3f}"
          f"   {rise:.1e}")
    t.check(f"alpha={a:g}, cold start: largest rise of f", rise, below=1e-9)
    ax.plot((h - h[-1]) / max(h[0] - h[-1], 1e-12), "-", color=f"C{c}",
            label=f"alpha {a:g} (f {h[0]:.1f} -> {h[-1]:.1f})")
    ax.axvline(sol.relax_iters, color=f"C{c}", linestyle=":", linewidth=0.8)
ax.set_xlabel("iterate: projected gradient, then sweeps (after the dotted line)")
ax.set_ylabel("(f - f_final) / (f_0 - f_final)")
ax.set_title("the objective never rises (cold start, lambda fixed)", fontsize=9)
ax.grid(True, alpha=0.3)
ax.legend(fontsize=7)
t.save_figure(fig, "objective.png", dpi=100)

# ---------------------------------------------------------------- 5. alpha, lambda, k
t.section("5. The effect of alpha, lambda (through the target ratio) and k")


def redundancy(graph, m):
    """1/2 s^T W s: the summed edge weight between selected faces."""
    s = m.astype(float)
    return 0.5 * float(s @ (graph @ s))


def overlap(m, other):
    """Fraction of the faces selected in ``m`` that ``other`` selects too."""
    return float(np.sum(m & other) / max(np.sum(m), 1))


def run(**kw):
    base = dict(ratio=args.ratio, k=args.k, alpha=args.alpha, per_identity=True, seed=args.seed)
    return select(bank.embeddings, y, bank.logits, **dict(base, **kw))


alphas = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
top_u = run(alpha=0.0).mask
print("  alpha   mean u selected   1/2 s^T W s   selected faces also in top-u")
a_rows = []
for a in alphas:
    r = run(alpha=a)
    a_rows.append((u[r.mask].mean(), redundancy(W, r.mask), overlap(r.mask, top_u)))
    print(f"  {a:5.2f}   {a_rows[-1][0]:15.3f}   {a_rows[-1][1]:11.2f}   {a_rows[-1][2]:28.1%}")
t.check("redundancy at the largest alpha / at alpha = 0", a_rows[-1][1] / max(a_rows[0][1], 1e-12),
        below=1.0)

ratios = [0.1, 0.25, 0.5, 0.75, 0.9]
print("\n  ratio   lambda (global)   selected   support before exact count   converged")
r_rows = []
for r_ in ratios:
    r = run(ratio=r_, per_identity=False)
    r_rows.append(r.lam)
    print(f"  {r_:5.2f}   {r.lam:15.4f}   {r.ratio:8.4f}   {r.support_ratio:26.4f}   {r.converged}")
    t.check(f"ratio {r_:g}: |selected - target|", abs(r.ratio - r_), below=0.01)
t.check("lambda falls as the ratio rises (increasing steps)", int(np.sum(np.diff(r_rows) > 0)),
        equals=0)

ks = [1, 3, 5, 10] if args.quick else [3, 5, 10, 20, 40]
ref = run().mask
print(f"\n  k    edges   1/2 s^T W_k s   selected faces also selected at k = {args.k}")
k_rows = []
for k in ks:
    r = run(k=k)
    k_rows.append((r.graph.nnz // 2, overlap(r.mask, ref)))
    print(f"  {k:3d}  {k_rows[-1][0]:6d}   {redundancy(r.graph, r.mask):13.2f}   "
          f"{k_rows[-1][1]:8.1%}")

fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.2))
ax = axes[0]
ax.plot(alphas, [v[1] for v in a_rows], "o-", color="C3")
ax.set_xscale("symlog", linthresh=0.25)
ax.set_xlabel("alpha")
ax.set_ylabel("1/2 s^T W s (redundancy)", color="C3")
ax2 = ax.twinx()
ax2.plot(alphas, [v[0] for v in a_rows], "s--", color="C0")
ax2.set_ylabel("mean u of selected", color="C0")
ax.set_title("alpha trades u for redundancy", fontsize=9)
axes[1].plot(ratios, r_rows, "o-")
axes[1].set_xlabel("target ratio")
axes[1].set_ylabel("lambda found by bisection")
axes[1].set_title("lambda sets the sparsity", fontsize=9)
axes[2].plot(ks, [v[0] for v in k_rows], "o-", color="C2")
axes[2].set_xlabel("k (neighbours per face)")
axes[2].set_ylabel("edges", color="C2")
ax3 = axes[2].twinx()
ax3.plot(ks, [100 * v[1] for v in k_rows], "s--", color="C1")
ax3.set_ylabel(f"% of selected also selected at k = {args.k}", color="C1")
axes[2].set_title("k: how many faces can be redundant", fontsize=9)
for a in axes:
    a.grid(True, alpha=0.3)
fig.suptitle(f"selection on {split.meta['data']} ({len(y)} faces), ratio {args.ratio:g}",
             fontsize=9)
t.save_figure(fig, "effects.png", dpi=90)

t.finish(
    summary=[
        f"W is a symmetric kNN cosine graph with sharpened weights cos^16 (1 for an exact "
        f"duplicate, 1/e at cos 0.94): {W.nnz // 2} edges over {len(y)} faces here.",
        "f(s) = 1/2 alpha s^T W s - u^T s + lambda ||s||_1: alpha = 0 is top-u; a large alpha "
        "never keeps both of two duplicates; f never rises during the solve.",
        f"lambda is bisected to the target count: {int(mask.sum())}/{len(y)} faces selected, "
        f"{res.timings['total']:.2f} s; mean u {u[mask].mean():.3f} selected vs "
        f"{u[~mask].mean():.3f} not (median edge weight {np.median(W.data):.3f}).",
        f"Raising alpha from 0 to {alphas[-1]:g} cut the selected faces' redundancy from "
        f"{a_rows[0][1]:.2f} to {a_rows[-1][1]:.2f} at a mean u of {a_rows[-1][0]:.3f} "
        f"(from {a_rows[0][0]:.3f}).",
        f"The teacher ({bank.meta.get('teacher')}, {bank.dim}-d) knows {100 * teacher_top1:.1f}% "
        f"of the training faces' identities{' out of fold' if oof else ' (in-sample)'}; the "
        f"faces it gets wrong have a low u: {share(top_u):.1f}% of top-u, {share(mask):.1f}% of "
        f"the selection at alpha {args.alpha:g}, {share(np.ones_like(mask)):.1f}% of all.",
    ],
    exercises=[
        "In section 1, set u = [1.0, 0.9, 0.85, 0.2]: at which alpha does select() stop "
        "picking the duplicates? Work it out by hand first.",
        "Select with sharpen=1 instead of 16 (select(..., sharpen=1.0)): how do the edge "
        "weights, the redundancy and the overlap with top-u change, and why?",
        "Compare per_identity=True with per_identity=False at ratio 0.25: which identities "
        "lose all their faces in the global selection, and what is their mean u?",
    ])
