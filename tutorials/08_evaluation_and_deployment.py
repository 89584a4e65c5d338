"""Tutorial 8: evaluation and deployment: identification, CMC, verification ROC, speed.

The paper (Ge et al., TIP 2019, section IV) reports closed-set identification (top-1
and the CMC curve), LFW face verification (accuracy and ROC) and the student's cost:
0.15 MB and 418 faces/s. This tutorial measures all of them for the two streams:
identification by the classifiers (for the pretrained teacher, its softmax head on the
descriptors) and by cosine similarity to identity templates (a gallery), including
cross-resolution identification (HR gallery, LR probes); verification on pairs of people
that no model saw in training, at the same resolution and cross-resolution: the first
face of a pair HR through the teacher (the gallery), the second LR (the probe) through
the teacher upsampled, or through the student and the adapter of tutorial 07 into the
teacher's space (``tinyface.distill.cross_resolution``); and the deployable students'
bytes and faces/s against the paper's figures, the cross-resolution student (trunk,
embedding, adapter) included.

    python tutorials/08_evaluation_and_deployment.py --quick     # ~25 s: synthetic faces
    python tutorials/08_evaluation_and_deployment.py             # LFW, dlib's teacher
    python tutorials/08_evaluation_and_deployment.py --ablation runs/abl-dlib-s1
    python tutorials/08_evaluation_and_deployment.py --teacher runs/lfw-teacher \\
        --student runs/lfw-student                                # our trained teacher

Quick mode trains a teacher-lite (8 epochs) and a student (20 epochs) on 20 synthetic
identities (synthetic faces always get a teacher-lite: the pretrained net sees them all
as one person) and verifies 400 pairs of 40 other synthetic identities. The full mode
uses LFW-158 for identification and LFW View 2's pairs whose two people are both outside
LFW-158 (5,274 of the 6,000 pairs) for verification, with dlib's pretrained teacher:
its descriptors of the 3,020 training, 2 x 1,304 test and 2 x 6,592 pair faces take
8-15 minutes on a busy 2-core CPU, once (cached in OUT/ablation). ``--ablation DIR``
(default: tutorial 07's tutorial_out/07/ablation, when it exists) copies those caches
from an ablation folder and takes its scratch student (scratch-seedS) and its distilled
``selective`` student with the adapter (seedS/selective); then the run takes about a
minute. Without them a student is trained here (30 epochs, about a minute) and the
cross-resolution student is it with a least-squares adapter. ``--teacher PATH`` and
``--student PATH`` reuse trained run folders (tutorials 04 and 05 write them). The
README's identity-disjoint protocol that trains one student per LFW fold is ``python -m
tinyface evaluate --data lfw --verification`` (6 minutes).
"""
import json
import os
import textwrap
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinyface import tutorial  # noqa: E402
from tinyface.checkpoint import load_model  # noqa: E402
from tinyface.distill import (DistillStudent, FrozenTeacher, cross_resolution_student,  # noqa: E402
                              cross_scores, init_adapter_lstsq, verify_cross_resolution)
from tinyface.eval import (accuracy_at, auc, best_threshold, cmc_curve, disjoint_pairs,  # noqa: E402
                           embed_images, evaluate_identification, gallery_identification,
                           l2_normalize, pair_roc, plots, roc_curve, tar_at_far, topk_accuracy,
                           verify_disjoint)
from tinyface.experiments import (AblationSettings, deployment_report,  # noqa: E402
                                  format_deployment, load_trained, measure_throughput,
                                  train_stream)
from tinyface.models import (PAPER_FACES_PER_S, PAPER_STUDENT_BYTES, PAPER_STUDENT_MB,  # noqa: E402
                             build_student)
from tinyface.train import LR_MAX_SHIFT, TrainConfig  # noqa: E402

# the same quick faces as tutorials 04 and 05, so that their models can be reused
QUICK_PAIRS = {"n_identities": 40, "images_per_identity": 3, "pairs_per_fold": 20}


def extra(p):
    tutorial.teacher_options(p, "an ablation output folder to reuse: its teacher caches "
                             "(copied into OUT/ablation), its scratch student and its distilled "
                             "selective student (default: tutorial 07's "
                             f"{tutorial.ABLATION_OUT} when it exists)")
    p.add_argument("--student", metavar="DIR", help="a trained student run folder to reuse")
    p.add_argument("--teacher-epochs", type=int, help="epochs of the teacher-lite trained when "
                   "no teacher is given (default: 8 quick, 10 full)")
    p.add_argument("--epochs", type=int, help="student epochs when no student is given "
                   "(default: 20 quick, 30 full)")


def deployment_figure(rep, rep158, cross_bytes, path):
    """Two panels: bytes against 0.15 MB, faces/s against 418 faces/s."""
    m = rep158["memory"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.6, 3.4))
    names = ["paper\n0.15 MB", "ours, with\n158-way classifier", "ours,\nembedding only",
             "cross-res.\n(+ adapter)"]
    kb = [m["paper_bytes"] / 1024, m["param_bytes"] / 1024, m["embedding_bytes"] / 1024,
          cross_bytes / 1024]
    ax1.bar(names, kb, color=["grey", "C0", "C0", "C2"])
    ax1.axhline(m["paper_bytes"] / 1024, color="grey", linestyle=":", linewidth=0.8)
    ax1.set_ylabel("KiB (float32 parameters)")
    ax1.set_title("student memory", fontsize=10)
    speeds = {"paper": rep["paper"]["faces_per_s"]}
    speeds.update({f"ours, batch {b}": s["faces_per_s"] for b, s in rep["speed"].items()})
    ax2.bar(list(speeds), list(speeds.values()), color=["grey"] + ["C1"] * (len(speeds) - 1))
    ax2.set_ylabel("faces/s (median, after warm-up)")
    ax2.set_title("student speed on this CPU", fontsize=10)
    for ax, vals in ((ax1, kb), (ax2, list(speeds.values()))):
        for i, v in enumerate(vals):
            ax.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def reused_run(path, split, bank_key=None):
    """The model in ``path`` (a run folder's checkpoint.npz: the last epoch) if the run was
    made on this split (and from the bank ``bank_key``), else None."""
    folder = os.path.dirname(path)
    record = next((json.load(open(os.path.join(folder, f))) for f in ("run.json", "metrics.json")
                   if os.path.isfile(os.path.join(folder, f))), None)
    if not os.path.isfile(path) or record is None:
        return None
    rec = record.get("sig", record)
    here = json.loads(json.dumps(split.meta, default=str))
    if rec.get("split") != here or (bank_key is not None and rec.get("bank") != bank_key):
        print(f"  not reusing {folder}: made on another split or from another teacher")
        return None
    print(f"  reusing {path}")
    return load_model(path)[0].eval()


def main():
    args = tutorial.parse_args(8, __doc__, extra=extra)
    t = tutorial.Tutorial(args, title="Tutorial 8: evaluation and deployment")

    t.section("1. Toy checks, by hand")
    scores = [[0.9, 0.1, 0.0], [0.5, 0.2, 0.3], [0.4, 0.4, 0.1]]      # 3 probes x 3 identities
    acc = topk_accuracy(scores, [0, 1, 1], ks=(1, 2))
    print("  identification: probe ranks 1, 3 (0.5 and 0.3 beat 0.2) and 2 (a tie counts against)")
    t.check("|top-1 - 1/3|", abs(acc[1] - 1 / 3), below=1e-12)
    t.check("|top-2 - 2/3|", abs(acc[2] - 2 / 3), below=1e-12)
    t.check("CMC at rank 3 (every probe found)", float(cmc_curve(scores, [0, 1, 1])[1][-1]),
            equals=1.0)
    s, same = np.array([0.9, 0.6, 0.4, 0.1]), np.array([True, False, True, False])
    far, tar, _ = roc_curve(s, same)
    print(f"  verification: scores {s.tolist()}, same {same.astype(int).tolist()}; ROC points "
          f"(FAR, TAR) {list(zip(far.tolist(), tar.tolist()))}")
    print("  AUC by hand: 3 of the 4 (same, different) score pairs are ordered right -> 3/4")
    t.check("|AUC - 0.75|", abs(auc(far, tar) - 0.75), below=1e-12)
    t.check("TAR at FAR = 0", tar_at_far(far, tar, 0.0), equals=0.5)
    ordered = np.array([0.1, 0.4, 0.6, 0.9]), np.array([False, False, True, True])
    th = best_threshold(*ordered)
    t.check("|best threshold - 0.5| (midway between 0.4 and 0.6)", abs(th - 0.5), below=1e-12)
    t.check("accuracy at it", accuracy_at(*ordered, th), equals=1.0)
    gal, prb = np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[3.0, 4.0], [0.0, -1.0]])  # (2, 2)
    toy = SimpleNamespace(a=np.array([0, 1, 0]), b=np.array([0, 1, 1]))   # gallery a, probe b
    print("  cross-resolution: gallery [1, 0], [0, 2]; probes [3, 4], [0, -1]; pairs (0, 0), "
          "(1, 1), (0, 1) -> cosines 3/5, -1, 0")
    t.check("max |cross_scores - by hand|", float(np.abs(cross_scores(gal, prb, toy)
                                                         - [0.6, -1.0, 0.0]).max()), below=1e-12)

    t.section("2. The faces, the teacher and the student")
    split, root = tutorial.load_faces(args)
    K, data = split.num_classes, split.meta["data"]
    method = split.meta.get("lr_method", "bicubic")
    print(f"  {split.describe()}")

    def log(line):                          # fit's lines, without one per epoch
        if not line.lstrip().startswith("epoch "):
            print("  " + line)

    def stream(name, path, arch, epochs, batch):
        if path:
            try:
                run = load_trained(path, split, name)
            except (FileNotFoundError, ValueError) as exc:
                raise SystemExit(f"--{name} {path}: {exc}")
            print(f"  {name}: reusing {run.path} ({run.model!r})")
            return run.model
        print(f"  {name}: training a {arch} for {epochs} epochs")
        shift = LR_MAX_SHIFT if name == "student" else TrainConfig.max_shift  # none at LR
        res = train_stream(split, name, TrainConfig(epochs=epochs, batch_size=batch, seed=args.seed,
                                                    max_shift=shift, log_every=0),
                           t.path(name), arch=arch, log=log)
        for f in ("model.npz", "checkpoint.npz", "history.json", "curves.png", "metrics.json"):
            t.saved(t.path(f"{name}/{f}"))
        return res["model"]

    batch = 32 if args.quick else 64
    choice = tutorial.choose_teacher(args, data)
    cache = t.path("ablation")
    src = tutorial.ablation_source(args, cache)     # an ablation folder to reuse, or None
    if choice == tutorial.PRETRAINED_TEACHER:      # frozen, with a head on the 158 identities
        tutorial.reuse_caches(src, cache)
        teacher = FrozenTeacher(choice, split, AblationSettings(), cache, data=data,
                                data_root=root, cache_dir=args.cache, log=log)
    else:
        teacher = stream("teacher", choice, "teacher-lite",
                         args.teacher_epochs or (8 if args.quick else 10), batch)
    tf = tutorial.TeacherFeatures(teacher, split, t.path("ablation/bank.npz") if
                                  isinstance(teacher, FrozenTeacher) else None, log)
    Dt = tf.dim
    student = distilled = None
    if src and not args.student:
        print(f"  from the ablation folder {src}:")
        student = reused_run(f"{src}/scratch-seed{args.seed}/checkpoint.npz", split)
        distilled = reused_run(f"{src}/seed{args.seed}/selective/checkpoint.npz", split,
                               tf.bank.meta["key"])
    student = student or stream("student", args.student, "student",
                                args.epochs or (20 if args.quick else 30), batch)
    print(f"  teacher: {tf.name}, {Dt}-d features of the HR training faces "
          f"{tf.bank.embeddings.shape}; student: {student!r}")

    # the cross-resolution students: the student's embedding mapped into the teacher's space
    lsq = DistillStudent(student, teacher_dim=Dt, seed=args.seed)
    resid = init_adapter_lstsq(lsq, split.lr_train, l2_normalize(tf.bank.embeddings),
                               np.ones(len(split.y_train)))
    cross = {"student + least-squares adapter": cross_resolution_student(lsq).eval()}
    print(f"  least-squares adapter Linear(64, {Dt}) onto the teacher's unit features: "
          f"relative residual {resid:.3f}")
    if distilled is not None:
        cross["selective student (tutorial 07)"] = cross_resolution_student(distilled).eval()

    t.section("3. Identification: classifiers, and cosine to a gallery of identity templates")

    def ident(logits):
        acc = topk_accuracy(logits, split.y_test, ks=(1, 5))
        ranks, rates = cmc_curve(logits, split.y_test, max_rank=min(20, K))
        return {"top1": acc[1], "top5": acc[5], "cmc": {"ranks": ranks, "rates": rates}}

    rows = {"teacher at HR": ident(tf.logits_hr), "teacher on LR, upsampled": ident(tf.logits_lr),
            "student at LR": evaluate_identification(student, split, "student")}
    curves = {k: (v["cmc"]["ranks"], v["cmc"]["rates"]) for k, v in rows.items()}
    g_hr = tf.bank.embeddings                                           # (N_train, Dt)
    print(f"  gallery: the teacher's features of the HR training faces {g_hr.shape}, "
          f"averaged per identity -> templates ({K}, {Dt})")
    xs0 = list(cross.values())[-1]                       # the best cross-resolution student
    gal = {"teacher, HR gallery vs HR probes": (g_hr, tf.test_hr),
           "teacher, HR gallery vs LR probes (cross-res.)": (g_hr, tf.test_lr),
           "teacher HR gallery vs student LR probes": (g_hr, embed_images(xs0, split.lr_test)),
           "student, LR gallery vs LR probes": (embed_images(student, split.lr_train),
                                                embed_images(student, split.lr_test))}
    for name, (g, p) in gal.items():
        r = gallery_identification(g, split.y_train, p, split.y_test, ks=(1, 5))
        rows[name] = {"top1": r[1], "top5": r[5]}
        n = min(20, K)
        curves[name] = (r["cmc"][0][:n], r["cmc"][1][:n])
    print(f"  {len(split.y_test)} probes of {K} identities (chance {100 / K:.1f}%); the "
          f"student probes go through {list(cross)[-1]}:")
    for name, r in rows.items():
        print(f"  | {name:<46} | top-1 {100 * r['top1']:5.1f}% | top-5 {100 * r['top5']:5.1f}% |")
    t.check("student top-1 / chance", rows["student at LR"]["top1"] * K, above=3.0)
    t.check("cross-res. top-1 minus same-res. top-1 (LR probes are harder)",
            rows["teacher, HR gallery vs LR probes (cross-res.)"]["top1"]
            - rows["teacher, HR gallery vs HR probes"]["top1"], below=0.0)
    t.saved(plots.plot_cmc(curves, t.path("cmc.png"),
                           title=f"CMC, {data}, {K} identities"))

    t.section("4. Verification on pairs of people no model was trained on, with ROC")
    pairs, note = disjoint_pairs(data, split, data_root=root, cache_dir=args.cache,
                                 synthetic=QUICK_PAIRS if args.quick else None)
    print(f"  {note}")
    lr = pairs.faces(split.lr_size, False, method)                     # (M, 3, 16, 16)
    print(f"  faces: HR {pairs.images.shape}, LR {lr.shape}; pairs a, b {pairs.a.shape}, same "
          f"{pairs.same.shape}, {pairs.n_folds} folds")
    e_hr, e_up = tf.pairs(pairs, method)                   # (M, Dt) each: HR, LR upsampled
    ver = {f"student, LR {split.lr_size}px": pair_roc(pairs, (student, lr)),
           "teacher, HR": pair_roc(pairs, e_hr),
           "teacher, LR upsampled": pair_roc(pairs, e_up),
           "teacher HR vs teacher LR up (cross)": pair_roc(pairs, e_hr, e_up)}  # gallery a, probe b
    for name, xs in cross.items():          # HR gallery (teacher) vs LR probe (student + A)
        short = "least squares" if name.startswith("student +") else "selective"
        ver[f"teacher HR vs {short} LR (cross)"] = pair_roc(pairs, e_hr, embed_images(xs, lr))
        lib = verify_cross_resolution(e_hr, xs, pairs, split.lr_size, method,
                                      same_resolution=False)
        t.check(f"{short}: |accuracy - verify_cross_resolution's|",
                abs(lib["accuracy"] - ver[f"teacher HR vs {short} LR (cross)"]["accuracy"]),
                below=1e-12)
    for name, r in ver.items():
        print(f"  | {name:<38} | {100 * r['accuracy']:5.1f} +- {100 * r['std']:4.1f}% | AUC "
              f"{r['auc']:.3f} | TAR {100 * r['tar_at_far']:5.1f}% at FAR 1e-2 |")
    same_lib = verify_disjoint(student, pairs, split.lr_size, method=method)
    sv = ver[f"student, LR {split.lr_size}px"]
    t.check("|accuracy - verify_disjoint's| (two library paths)",
            abs(same_lib["accuracy"] - sv["accuracy"]), below=1e-12)
    t.check("student AUC (0.5 is chance)", sv["auc"], above=0.5)
    t.check("teacher HR AUC (0.5 is chance)", ver["teacher, HR"]["auc"], above=0.5)
    t.saved(plots.plot_roc({f"{k} (AUC {v['auc']:.3f})": (v["far"], v["tar"])
                            for k, v in ver.items()},
                           t.path("roc.png"), title=f"verification, {pairs.n_pairs} unseen pairs"))

    t.section("5. Deployment: the students' bytes and faces/s against the paper's")
    rep = deployment_report(student, batch_sizes=(1, 256), reps=30 if args.quick else 100)
    print(textwrap.indent(format_deployment(rep, name=f"trained student ({K} identities)"), "  "))
    if K != 158:                            # quick mode: the LFW-sized one as well
        rep158 = deployment_report(build_student(158, seed=0), batch_sizes=(1,), reps=30)
        print(textwrap.indent(format_deployment(rep158, name="LFW-158 deployable student"), "  "))
    else:
        rep158 = rep
    emb = measure_throughput(student, batch_sizes=(1,), reps=30, fn=student.embed)
    print(f"  embedding only (verification): {emb[1]['faces_per_s']:,.0f} faces/s at batch 1")
    t.check("LFW-158 student bytes / 0.15 MB", rep158["memory"]["fraction_of_paper"], below=1.0)
    trunk = rep["memory"]["embedding_bytes"] // 4                 # parameters without classifier
    Ds = student.embedding_dim
    by_hand = 4 * (trunk + Ds * Dt + Dt)
    max_dt = (PAPER_STUDENT_BYTES // 4 - trunk) // (Ds + 1)       # the widest adapter that fits
    xs_speed = measure_throughput(xs0, batch_sizes=(1,), reps=30, fn=xs0.embed)[1]["faces_per_s"]
    print(f"  cross-resolution student ({list(cross)[-1]}): {xs0!r}\n    trunk + embedding "
          f"{trunk:,} + adapter {Ds} x {Dt} + {Dt} = {xs0.num_parameters():,} parameters = "
          f"{xs0.nbytes():,} bytes, {100 * xs0.nbytes() / PAPER_STUDENT_BYTES:.1f}% of "
          f"{PAPER_STUDENT_MB} MB ({'fits' if xs0.fits_budget() else 'over budget'}: the "
          f"budget takes Dt <= {max_dt}); {xs_speed:,.0f} faces/s at batch 1")
    t.check("cross-res. student bytes - 4 (trunk + Ds Dt + Dt)", xs0.nbytes() - by_hand, equals=0)
    t.check(f"fits_budget() == (Dt {Dt} <= {max_dt})", int(xs0.fits_budget() == (Dt <= max_dt)),
            equals=1)
    if isinstance(teacher, FrozenTeacher):
        t.check("cross-res. student into dlib's 128-d space: bytes / 0.15 MB",
                xs0.nbytes() / PAPER_STUDENT_BYTES, below=1.0)
    t.saved(deployment_figure(rep, rep158, xs0.nbytes(), t.path("deployment.png")))
    b1, b256 = rep["speed"][1]["faces_per_s"], rep["speed"][256]["faces_per_s"]

    with open(t.path("results.json"), "w") as f:
        json.dump({"teacher": {"name": tf.name, "dim": Dt},
                   "identification": {k: {"top1": v["top1"], "top5": v["top5"]}
                                      for k, v in rows.items()},
                   "verification": {k: {m: v[m] for m in ("accuracy", "std", "auc", "tar_at_far",
                                                          "n_pairs")} for k, v in ver.items()},
                   "cross_resolution_student": {"name": list(cross)[-1], "bytes": xs0.nbytes(),
                                                "fits_budget": xs0.fits_budget(),
                                                "faces_per_s_batch1": xs_speed},
                   "pairs": pairs.meta, "memory": rep["memory"], "memory_lfw158": rep158["memory"],
                   "faces_per_s": {str(b): s["faces_per_s"] for b, s in rep["speed"].items()},
                   "split": split.meta}, f, indent=1)
    t.saved(t.path("results.json"))

    cr = ver["teacher HR vs teacher LR up (cross)"]
    xr = ver[list(ver)[-1]]
    t.finish(summary=[
        f"teacher {tf.name} ({Dt}-d): identification top-1 at HR "
        f"{100 * rows['teacher at HR']['top1']:.1f}%, on upsampled LR "
        f"{100 * rows['teacher on LR, upsampled']['top1']:.1f}%; student "
        f"{100 * rows['student at LR']['top1']:.1f}%; an HR gallery with LR probes: "
        f"{100 * rows['teacher, HR gallery vs LR probes (cross-res.)']['top1']:.1f}% (teacher), "
        f"{100 * rows['teacher HR gallery vs student LR probes']['top1']:.1f}% (student)",
        f"verification on {pairs.n_pairs} unseen pairs: student {100 * sv['accuracy']:.1f}% "
        f"(AUC {sv['auc']:.3f}), teacher HR {100 * ver['teacher, HR']['accuracy']:.1f}%; HR "
        f"gallery vs LR probe {100 * cr['accuracy']:.1f}% with the teacher on both sides, "
        f"{100 * xr['accuracy']:.1f}% (AUC {xr['auc']:.3f}) with the {list(cross)[-1]} on the "
        f"LR side",
        f"the LFW-158 student takes {rep158['memory']['param_bytes']:,} bytes "
        f"({100 * rep158['memory']['fraction_of_paper']:.1f}% of {PAPER_STUDENT_MB} MB), the "
        f"cross-resolution one {xs0.nbytes():,} ({'fits' if xs0.fits_budget() else 'over'}; "
        f"the budget takes Dt <= {max_dt}); the trained one runs at {b1:,.0f} faces/s at batch 1, "
        f"{b256:,.0f} at batch 256 (paper: {PAPER_FACES_PER_S:.0f})",
        "accuracy needs a protocol: thresholds from other folds, pairs of unseen people, and "
        "speed as a median after warm-up",
    ], exercises=[
        "Compare the least-squares adapter with the distilled student's (run tutorial 07 "
        "first): how much of the cross-resolution accuracy does the adapter alone give, and "
        "how much the fine-tuning?",
        "Set far_target=1e-3 in pair_roc on LFW: how many different pairs does that FAR allow, "
        "and how stable is the TAR there across seeds?",
        "Run `python -m tinyface evaluate --data lfw --verification --folds 2` and compare its "
        "per-fold students with the single LFW-158 student here: which protocol is fairer?",
    ])


if __name__ == "__main__":
    main()
