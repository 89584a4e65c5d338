"""Tutorial 07: fine-tune the student on the teacher's selected features, and compare.

The last stage of selective knowledge distillation (Ge, Zhao, Li and Li, IEEE TIP 2019,
arXiv 1811.09998): the student, already trained on 16x16 faces alone, is fine-tuned so
that its features also match the teacher's HR features, but only on the faces that the
sparse graph selection of tutorial 06 picked::

    L = CE(student(x_LR), y) + mu * mean over selected faces of ||A phi_s(x_LR) - phi_t(x_HR)||^2

phi_s is the student's 64-d embedding, phi_t the teacher's feature of the same face at
HR (the feature bank), and A a linear adapter Linear(64, Dt) that exists only in
training: the deployed student is the bare 0.15 MB network. The teacher, as in the
paper, is pretrained on other people and frozen: dlib's ResNet (tutorial 04), whose
phi_t are 128-d descriptors, so A is Linear(64, 128). It never saw these faces; what it
knows of them is a softmax head on its descriptors fitted on the training identities,
whose out-of-fold logits (each face scored by a head that never saw it) are the KD
soft targets and the selection's confidence. They are wrong for some faces, and those
are the faces a selection can leave out (a teacher trained on these faces, ours of
tutorial 04 with ``--teacher PATH``, has memorised them, and its 256-d embeddings know
every training face). tinyface compares directions by default (both sides
L2-normalised, so a term is 2 - 2 cos; see ``tinyface.distill.finetune``), mu = 3 as in
the ablation. The ablation fine-tunes five variants from the same scratch student:
``none`` (CE only), ``kd`` (Hinton soft targets, T = 4), ``full`` (regression on every
face), ``random`` (a random subset of the selective size) and ``selective``; then
reports top-1 identification and identity-disjoint verification.

Run it:
    python tutorials/07_selective_distillation.py --quick          # about 25 s, synthetic
    python tutorials/07_selective_distillation.py                  # LFW, dlib's teacher
    python tutorials/07_selective_distillation.py --ablation runs/abl-dlib-s1
    python tutorials/07_selective_distillation.py --teacher runs/lfw-teacher   # ours

Quick: 16 synthetic identities x 20 faces (32 px HR, 16 px LR), a teacher-lite trained
8 epochs (synthetic faces always get one: the pretrained net sees them all as one
person), students 12 + 5 epochs, one seed. Full: LFW-158 and dlib's teacher, one seed
(``--seeds 3`` for the README's table), 30 + 30 epochs. The teacher's descriptors of the
3,020 training, 2 x 1,304 test and 2 x 6,592 verification faces take 8-15 minutes on a
busy 2-core CPU (20-45 faces/s), once: they are cached in OUT/ablation/teacher-
descriptors. The six students then take about 40 minutes on a busy 2-core machine
(measured: 295 s for the scratch student, 347-522 s for each variant). ``--ablation
DIR`` copies the caches of another ablation folder (e.g. ``python -m tinyface ablation
--teacher dlib-resnet --out DIR``'s) into OUT/ablation: the teacher's descriptors, head
and bank, and its finished student runs, which are reused where their recorded settings
match (seed, epochs, mu, ratio, bank) and trained again otherwise; with all of them
there the run takes about a minute. With ``--teacher PATH`` our trained teacher is used
(trained first in PATH if it holds none: about 50 minutes). Every phase is cached under
OUT/ablation (``run_ablation``), so a re-run only reports.
"""
import json
import os
from textwrap import indent

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinyface import nn, tutorial  # noqa: E402
from tinyface.checkpoint import load_model  # noqa: E402
from tinyface.data import to_float  # noqa: E402
from tinyface.distill import (BASE_VARIANTS as VARIANTS, DistillConfig,  # noqa: E402
                              DistillStep, DistillStudent, FeatureBank, make_weights)
from tinyface.experiments import (ROW_NAMES, TEACHER_ROWS, AblationSettings,  # noqa: E402
                                  cached_selection, run_ablation)
from tinyface.gradcheck import numerical_gradient  # noqa: E402
from tinyface.models import build_model, student_spec  # noqa: E402
from tinyface.data import load_split  # noqa: E402

QUICK_FACES = {"n_identities": 16, "images_per_identity": 20, "family_size": 1}
QUICK_PAIRS = {"n_identities": 20, "images_per_identity": 4, "pairs_per_fold": 6}


def options(p):
    tutorial.teacher_options(p, "an ablation output folder whose caches to copy into "
                             "OUT/ablation: the teacher's descriptors, head and bank, and the "
                             "finished student runs (default: tutorial_out/07/ablation when "
                             "--out puts this run elsewhere; else none)")
    p.add_argument("--seeds", type=int, default=1, help="students per variant (mean +- std)")
    p.add_argument("--epochs", type=int, help="fine-tuning epochs (default: 5 quick, 30 full)")
    p.add_argument("--mu", type=float, default=DistillConfig.mu,
                   help="weight of the regression term (the ablation's default)")
    p.add_argument("--ratio", type=float, default=DistillConfig.ratio,
                   help="fraction of faces selected")


args = tutorial.parse_args(7, __doc__, extra=options)
t = tutorial.Tutorial(args)
data, root = ("synthetic", None) if args.quick else tutorial.choose_data(args)
teacher_choice = tutorial.choose_teacher(args, data)   # "dlib-resnet", a path, or None
dt = tutorial.teacher_width(teacher_choice)            # Dt: 128 (dlib) or 256 (ours)


def rel(a, b):
    """Norm-wise relative difference ||a - b|| / (||a|| + ||b||)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-30))


# ------------------------------------------------------- 1. the regression term by hand
t.section("1. The regression term on 2 faces, by hand")
emb = np.array([[1, 0], [0, 2]], np.float32)                    # phi_s: (2 faces, Ds = 2)
A = np.array([[1, 0], [0, 1], [1, 1]], np.float32)              # adapter weight: (Dt = 3, Ds)
phi_t = np.array([[0, 0, 1], [0, 0, 2]], np.float32)            # teacher: (2 faces, Dt = 3)
print(f"phi_s {emb.shape} = {emb.tolist()}\nA {A.shape} = {A.tolist()}, bias 0\n"
      f"phi_t {phi_t.shape} = {phi_t.tolist()}")
print("A phi_s = [1, 0, 1] and [0, 2, 2]; residuals r = [1, 0, 0] and [0, 2, 0], "
      "||r||^2 = 1 and 4")
adapter = nn.Linear(2, 3)
adapter.params["weight"][...] = A
adapter.params["bias"][...] = 0.0
bank2 = FeatureBank(phi_t, np.zeros((2, 2), np.float32))        # logits unused here
idx = np.arange(2)
hand = {  # weights -> (loss, dL/dpred, dL/dphi_s = dL/dpred A), worked out above
    (1, 0): (1.0, [[2, 0, 0], [0, 0, 0]], [[2, 0], [0, 0]]),    # only face 0 selected
    (1, 1): (2.5, [[1, 0, 0], [0, 2, 0]], [[1, 0], [0, 2]]),    # both: the mean (1 + 4) / 2
}
for w, (loss_h, dpred_h, demb_h) in hand.items():
    step = DistillStep(bank2, np.array(w, np.float32), mu=1.0, feature_norm="none")
    loss, dpred = step.regression(adapter, emb, idx)            # dpred: (2, 3)
    demb = adapter.backward(dpred)                              # (2, 2)
    print(f"weights {w}: loss {loss:g} (by hand {loss_h:g}), dL/dpred {dpred.tolist()}, "
          f"dL/dphi_s {demb.tolist()}")
    t.check(f"weights {w}: |loss - by hand|", abs(loss - loss_h), below=1e-6)
    t.check(f"weights {w}: max |dL/dphi_s - by hand|", float(np.abs(demb - demb_h).max()),
            below=1e-6)

print("\nWith L2-normalised features (the default) a face's term is "
      "||A phi_s/|A phi_s| - phi_t/|phi_t| ||^2 = 2 - 2 cos;\nhere both cosines are 1/sqrt(2), "
      "so the loss is 2 - sqrt(2) whatever the weights.")
step = DistillStep(bank2, np.ones(2, np.float32), mu=1.0, feature_norm="l2")
loss, dpred = step.regression(adapter, emb, idx)
t.check("l2 loss - (2 - sqrt 2)", abs(loss - (2 - np.sqrt(2))), below=1e-6)
x64 = emb.astype(np.float64)                                    # perturbed by the check
numeric = numerical_gradient(lambda: step.regression(adapter, x64.astype(np.float32), idx)[0],
                             x64, 1.0, h=1e-2)
analytic = adapter.backward(step.regression(adapter, emb, idx)[1])
print(f"dL/dphi_s analytic {np.round(analytic.astype(np.float64), 4).tolist()}\n"
      f"          central differences {np.round(numeric, 4).tolist()}")
t.check("l2: relative error of dL/dphi_s (float32, h = 1e-2)", rel(analytic, numeric), below=1e-3)

# ----------------------------------------------- 2. the whole loss, and the adapter's bytes
t.section("2. L = CE + mu * regression on a toy batch; the adapter is not deployed")
student = build_model(student_spec(num_classes=3, input_size=16), seed=args.seed)
wrapper = DistillStudent(student, teacher_dim=dt, seed=args.seed).train()
rng = np.random.default_rng(args.seed)
x = to_float(rng.integers(0, 256, (4, 3, 16, 16), dtype=np.uint8))      # (4, 3, 16, 16)
toy_bank = FeatureBank(rng.standard_normal((4, dt)), rng.standard_normal((4, 3)))
mu = 0.5
step = DistillStep(toy_bank, np.array([1, 0, 1, 0], np.float32), mu=mu)
loss, _ = step(wrapper, x, np.arange(4), np.array([0, 1, 2, 0]))    # (L, correct)
ce, _, reg = step.parts[-1]
print(f"x {x.shape}, phi_t {toy_bank.embeddings.shape}, weights [1, 0, 1, 0], mu {mu}: "
      f"CE {ce:.4f}, regression {reg:.4f}, L {loss:.4f}")
t.check("|L - (CE + mu * regression)|", abs(loss - (ce + mu * reg)), below=1e-5)
adapter_params = wrapper.num_parameters() - student.num_parameters()
print(f"student {student.num_parameters():,} parameters ({student.nbytes():,} bytes); adapter "
      f"{adapter_params:,} = 64 x {dt} + {dt} (Dt = {dt}, this run's teacher); deployed: "
      f"{wrapper.deployable().nbytes():,} bytes")
t.check(f"adapter parameters - (64 * {dt} + {dt})", adapter_params - (64 * dt + dt), equals=0)
t.check("deployed bytes - the bare student's bytes",
        wrapper.deployable().nbytes() - student.nbytes(), equals=0)

# ----------------------------------------------------------------- 3. the five variants
t.section("3. The ablation: scratch student, then none, KD, full, random and selective")
if args.quick:
    split = load_split("synthetic", hr_size=32, lr_size=16, seed=args.seed, cache_dir=args.cache,
                       synthetic=QUICK_FACES)
    settings = AblationSettings(
        seeds=args.seeds, first_seed=args.seed, teacher_arch="teacher-lite", teacher_epochs=8,
        scratch_epochs=12, finetune_epochs=args.epochs or 5, batch_size=32, mu=args.mu,
        ratio=args.ratio, ratios=(), verification=QUICK_PAIRS)
else:
    split = load_split(data, data_root=root, seed=args.seed, cache_dir=args.cache)
    lite = {"teacher_arch": "teacher-lite", "teacher_epochs": 8} if data == "synthetic" else {}
    settings = AblationSettings(seeds=args.seeds, first_seed=args.seed,
                                finetune_epochs=args.epochs or 30, mu=args.mu, ratio=args.ratio,
                                ratios=(), **lite)
print(f"{split.describe()}; {settings.seeds} seed(s), {settings.scratch_epochs} scratch + "
      f"{settings.finetune_epochs} fine-tuning epochs, mu {settings.mu:g}, ratio {settings.ratio:g}")
out = t.path("ablation")
src = tutorial.ablation_source(args, out)         # another ablation folder, or None
if src is not None:                                  # the teacher, and the finished students
    wanted = {f"scratch-seed{s}" for s in settings.seed_list} | {
        os.path.join(f"seed{s}", v) for s in settings.seed_list for v in settings.variants}
    runs = [r for r in tutorial.finished_runs(src)
            if r in wanted and not os.path.exists(os.path.join(out, r))]
    tutorial.reuse_caches(src, out, (tutorial.TEACHER_CACHES if teacher_choice ==
                                     tutorial.PRETRAINED_TEACHER else ()) + tuple(runs))
results = run_ablation(split, settings, out, teacher_path=teacher_choice, data=data,
                       data_root=root, cache_dir=args.cache,
                       log=lambda m: None if m.startswith("epoch") else print(indent(m, "  ")))
frozen = results["teacher"].get("pretrained", False)
print(f"cached runs (reused on a re-run): {out}/"
      + ("teacher-descriptors/, teacher-head.npz" if frozen else "teacher") +
      ", teacher_eval.json, bank.npz, selection/, scratch-seed*/, seed*/VARIANT/")
for f in results["files"] + [f"{out}/results.json"]:
    t.saved(f)

n = len(split.y_train)
sizes = results["sizes"]
tr = {k: 100 * results["rows"][k]["top1"]["mean"] for k in TEACHER_ROWS}
print(f"\nteacher: {results['teacher']['name']}, {dt}-d features; test top-1 at HR "
      f"{tr[TEACHER_ROWS[0]]:.1f}%, on LR faces upsampled {tr[TEACHER_ROWS[1]]:.1f}%")
if frozen:
    head = results["teacher"]["head"]
    print(f"its head, out of fold on the {n} training faces (the KD targets and the "
          f"selection's confidence):\n  right identity {100 * head['oof_top1']:.1f}%, "
          f"p(y) < 0.5 for {100 * head['oof_confidence_below_half']:.1f}%: what the "
          f"teacher knows of those faces is unsure or wrong")
print("\n  variant     top-1 %   verification %   regressed faces   regression start -> end   s")
for r in results["runs"]:
    v = r["variant"]
    ver = f"{100 * r['verification']['accuracy']:.1f}" if r.get("verification") else "n/a"
    reg = (f"{r['initial_regression_loss']:.3f} -> {r['final_regression_loss']:.3f}"
           if r.get("initial_regression_loss") is not None else "-")
    print(f"  {v:10s}  {100 * r['top1']:7.1f}   {ver:>14s}   {r.get('regressed_faces') or 0:15d}"
          f"   {reg:>23s}   {r.get('seconds') or 0:.0f}")
print("  (regression start: eval mode, unaugmented, least-squares adapter; end: the last epoch's\n"
      "   training mean, augmented and with batch norm in training mode: not one to one)")
fine = [r for r in results["runs"] if r["variant"] != "scratch"]
t.check("variants whose deployed bytes differ from the scratch student's",
        sum(r["student_bytes"] != sizes["student_bytes"] for r in fine), equals=0)
counts = {r["variant"]: r["regressed_faces"] for r in fine if r["seed"] == args.seed}
t.check("faces regressed by 'full' - N", counts["full"] - n, equals=0)
t.check("faces regressed by 'random' - by 'selective'", counts["random"] - counts["selective"],
        equals=0)
t.check("faces regressed by 'none' and 'kd'", counts["none"] + counts["kd"], equals=0)

# loss curves of every variant of the first seed, from fit's history.json
fig, ax = plt.subplots(figsize=(5.4, 3.4))
for c, v in enumerate(VARIANTS):
    hist = json.loads(open(f"{out}/seed{args.seed}/{v}/history.json").read())
    ax.plot([h["epoch"] for h in hist], [h["train_loss"] for h in hist], "o-", markersize=3,
            color=f"C{c}", label=v)
ax.xaxis.get_major_locator().set_params(integer=True)
ax.set_xlabel("fine-tuning epoch")
ax.set_ylabel("training loss L")
ax.set_title(f"L per epoch, seed {args.seed} (regression variants: CE + mu * reg)", fontsize=9)
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
t.save_figure(fig, "loss_curves.png", dpi=100)

# ------------------------------------------------------------ 4. inside one real step
t.section("4. Inside one fine-tuning step on the real faces (selective, seed's scratch student)")
bank = FeatureBank.load(f"{out}/bank.npz")
t.check("the bank's width - Dt of section 2", bank.dim - dt, equals=0)
sel = cached_selection(bank, split.y_train, settings.ratio, settings, split.meta["seed"],
                       f"{out}/selection/ratio-{settings.ratio:g}.npz", bank.meta["key"],
                       lambda m: print(f"  {m}"))
w = make_weights("selective", bank, split.y_train, settings.ratio, selection=sel)
scratch, _ = load_model(f"{out}/scratch-seed{args.seed}/checkpoint.npz")
wrapper = DistillStudent(scratch, teacher_dim=bank.dim, seed=args.seed).train()
rows = np.sort(np.random.default_rng(args.seed).choice(len(split.y_train), 16, replace=False))
xb = to_float(split.lr_train[rows])
step = DistillStep(bank, w, mu=settings.mu)
emb_b = wrapper.student.embed(xb)
print(f"x_LR {xb.shape}; phi_s(x_LR) {emb_b.shape}; A phi_s {wrapper.adapter.forward(emb_b).shape};"
      f" phi_t(x_HR) {bank.embeddings[rows].shape}; weights {w[rows].astype(int).tolist()}")
loss_b, _ = step(wrapper, xb, rows, split.y_train[rows])
ce, _, reg = step.parts[-1]
reg = 0.0 if reg is None else reg
print(f"CE {ce:.4f} + mu {settings.mu:g} * regression {reg:.4f} = L {loss_b:.4f} "
      f"(a random adapter here; fine-tuning starts from the least-squares one)")
t.check("|L - (CE + mu * regression)| on real faces", abs(loss_b - (ce + settings.mu * reg)),
        below=1e-4)

rows_t = results["rows"]
best = max(VARIANTS, key=lambda v: rows_t[ROW_NAMES[v]]["top1"]["mean"])
top = lambda name: 100 * rows_t[name]["top1"]["mean"]  # noqa: E731
t.finish(
    summary=[
        "L = CE + mu * mean over selected faces of ||A phi_s(x_LR) - phi_t(x_HR)||^2; the "
        "2-face example and its gradient match the hand calculation.",
        f"The adapter (64 x {dt} + {dt} = {adapter_params:,} parameters) trains with the student "
        f"and is dropped: every deployed student is {sizes['student_bytes']:,} bytes.",
        f"The teacher ({results['teacher']['name']}, {dt}-d) reaches {tr[TEACHER_ROWS[0]]:.1f}% "
        f"top-1 at HR and {tr[TEACHER_ROWS[1]]:.1f}% on LR faces upsampled"
        + (f"; out of fold it knows {100 * head['oof_top1']:.1f}% of the training faces" if frozen
           else "") + ".",
        f"{split.meta['data']}, {settings.seeds} seed(s): scratch {top('student from scratch'):.1f}%"
        + "".join(f", {v} {top(ROW_NAMES[v]):.1f}%" for v in VARIANTS)
        + f" top-1; best here: {best}"
        + (f" (one test face is {100 / len(split.y_test):.1f} points: tiny-set differences are "
           f"noise)." if len(split.y_test) < 500 else
           " (one seed ranks nothing: compare the README's ablation over 3 seeds)."
           if settings.seeds == 1 else "."),
        f"This run of the ablation took {results['timings']['total']:.0f} s; training the five "
        f"variants took {sum(r.get('seconds') or 0 for r in fine):.0f} s (as their runs "
        f"record it{', copied from ' + src if src else ''}); everything is cached in {out}.",
    ],
    exercises=[
        "Rerun with --seeds 3: are the differences between full, random and selective larger "
        "than the standard deviations over seeds? (The teacher's caches are reused.)",
        "Set --mu 1 (or 10) and compare the regression variants with 'none': at which mu "
        "does feature regression start to hurt the cross-entropy?",
        "Fine-tune with feature_norm='none' (tinyface.distill.finetune) and mu = 1: how large "
        "is the initial regression loss, and what happens to the training loss?",
    ])
