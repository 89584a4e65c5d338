"""Tutorial 8: evaluation and deployment: identification, CMC, verification ROC, speed.

The paper (Ge et al., TIP 2019, section IV) reports closed-set identification (top-1
and the CMC curve), LFW face verification (accuracy and ROC) and the student's cost:
0.15 MB and 418 faces/s. This tutorial measures all of them for the two streams:
identification by the classifiers and by cosine similarity to identity templates
(a gallery), including cross-resolution identification (HR gallery, LR probes);
verification on pairs of people that no model saw in training, at the same resolution
and cross-resolution (the first face of a pair HR, the second LR); and the deployable
student's bytes and faces/s against the paper's figures.

    python tutorials/08_evaluation_and_deployment.py --quick     # ~25 s: synthetic faces
    python tutorials/08_evaluation_and_deployment.py --teacher runs/lfw-teacher \\
        --student runs/lfw-student                                # ~6 min on LFW
    python tutorials/08_evaluation_and_deployment.py --teacher runs/lfw-teacher  # + ~1 min

Quick mode trains a teacher-lite (8 epochs) and a student (20 epochs) on 20 synthetic
identities and verifies 400 pairs of 40 other synthetic identities. The full mode uses
LFW-158 for identification and LFW View 2's pairs whose two people are both outside
LFW-158 (5,274 of the 6,000 pairs) for verification; it reuses ``--teacher`` and
``--student`` run folders (tutorials 04 and 05 write them to OUT/teacher and
OUT/student), else trains a student (under a minute) and a teacher-lite
(``--teacher-epochs``, 10 by default: about 5 minutes). The README's identity-disjoint
protocol that trains one student per LFW fold is ``python -m tinyface evaluate --data
lfw --verification`` (6 minutes).
"""
import json
import textwrap

import numpy as np

from tinyface import tutorial

# the same quick faces as tutorials 04 and 05, so that their models can be reused
QUICK_PAIRS = {"n_identities": 40, "images_per_identity": 3, "pairs_per_fold": 20}


def extra(p):
    p.add_argument("--teacher", metavar="DIR", help="a trained teacher run folder to reuse")
    p.add_argument("--student", metavar="DIR", help="a trained student run folder to reuse")
    p.add_argument("--teacher-epochs", type=int, help="epochs of the teacher-lite trained when "
                   "--teacher is not given (default: 8 quick, 10 full)")
    p.add_argument("--epochs", type=int, help="student epochs when --student is not given "
                   "(default: 20 quick, 30 full)")


def deployment_figure(rep, rep158, path):
    """Two panels: bytes against 0.15 MB, faces/s against 418 faces/s."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m = rep158["memory"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.3))
    names = ["paper\n0.15 MB", "ours, with\n158-way classifier", "ours,\nembedding only"]
    kb = [m["paper_bytes"] / 1024, m["param_bytes"] / 1024, m["embedding_bytes"] / 1024]
    ax1.bar(names, kb, color=["grey", "C0", "C0"])
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


def main():
    args = tutorial.parse_args(8, __doc__, extra=extra)
    t = tutorial.Tutorial(args, title="Tutorial 8: evaluation and deployment")

    from tinyface.distill.verification import disjoint_pairs, verify_disjoint
    from tinyface.eval import (accuracy_at, auc, best_threshold, cmc_curve, embed_images,
                               gallery_identification, plots, roc_curve, tar_at_far,
                               topk_accuracy)
    from tinyface.models import build_student
    from tinyface.pipeline import evaluate_identification, train_stream
    from tinyface.pipeline.deployment import (PAPER_FACES_PER_S, PAPER_STUDENT_MB,
                                              deployment_report, format_deployment,
                                              measure_throughput)
    from tinyface.pipeline.pair_roc import pair_roc
    from tinyface.pipeline.trained import load_trained
    from tinyface.train import TrainConfig
    from tinyface.train.config import LR_MAX_SHIFT

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

    t.section("2. The faces and the two trained streams")
    split, root = tutorial.load_faces(args)
    K = split.num_classes
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
    teacher = stream("teacher", args.teacher, "teacher-lite",
                     args.teacher_epochs or (8 if args.quick else 10), batch)
    student = stream("student", args.student, "student",
                     args.epochs or (20 if args.quick else 30), batch)

    t.section("3. Identification: classifiers, and cosine to a gallery of identity templates")
    rows = {"teacher at HR": evaluate_identification(teacher, split, "teacher"),
            "teacher on LR, upsampled": evaluate_identification(teacher, split, "teacher",
                                                                upsampled=True),
            "student at LR": evaluate_identification(student, split, "student")}
    curves = {k: (v["cmc"]["ranks"], v["cmc"]["rates"]) for k, v in rows.items()}
    g_hr = embed_images(teacher, split.hr_train)                        # (N_train, 256)
    print(f"  gallery: the teacher's embeddings of the HR training faces {g_hr.shape}, "
          f"averaged per identity -> templates ({K}, {g_hr.shape[1]})")
    gal = {"teacher, HR gallery vs HR probes": (g_hr, embed_images(teacher, split.hr_test)),
           "teacher, HR gallery vs LR probes (cross-res.)": (g_hr, embed_images(teacher,
                                                                                split.lr_up_test)),
           "student, LR gallery vs LR probes": (embed_images(student, split.lr_train),
                                                embed_images(student, split.lr_test))}
    for name, (g, p) in gal.items():
        r = gallery_identification(g, split.y_train, p, split.y_test, ks=(1, 5))
        rows[name] = {"top1": r[1], "top5": r[5]}
        n = min(20, K)
        curves[name] = (r["cmc"][0][:n], r["cmc"][1][:n])
    print(f"  {len(split.y_test)} probes of {K} identities (chance {100 / K:.1f}%):")
    for name, r in rows.items():
        print(f"  | {name:<46} | top-1 {100 * r['top1']:5.1f}% | top-5 {100 * r['top5']:5.1f}% |")
    t.check("student top-1 / chance", rows["student at LR"]["top1"] * K, above=3.0)
    t.check("cross-res. top-1 minus same-res. top-1 (LR probes are harder)",
            rows["teacher, HR gallery vs LR probes (cross-res.)"]["top1"]
            - rows["teacher, HR gallery vs HR probes"]["top1"], below=0.0)
    t.saved(plots.plot_cmc(curves, t.path("cmc.png"),
                           title=f"CMC, {split.meta['data']}, {K} identities"))

    t.section("4. Verification on pairs of people no model was trained on, with ROC")
    pairs, note = disjoint_pairs(split.meta["data"], split, data_root=root, cache_dir=args.cache,
                                 synthetic=QUICK_PAIRS if args.quick else None)
    print(f"  {note}")
    hr, lr = pairs.faces(), pairs.faces(split.lr_size)   # (M, 3, 64, 64), (M, 3, 16, 16)
    lr_up = pairs.faces(split.lr_size, upsampled=True)                 # (M, 3, 64, 64)
    print(f"  faces: HR {hr.shape}, LR {lr.shape}, LR upsampled {lr_up.shape}; pairs a, b "
          f"{pairs.a.shape}, same {pairs.same.shape}, {pairs.n_folds} folds")
    e_hr, e_up = embed_images(teacher, hr), embed_images(teacher, lr_up)   # (M, 256) each
    ver = {f"student, LR {split.lr_size}px": pair_roc(pairs, (student, lr)),
           "teacher, HR": pair_roc(pairs, e_hr),
           "teacher, LR upsampled": pair_roc(pairs, e_up),
           "teacher, HR vs LR (cross-res.)": pair_roc(pairs, e_hr, e_up)}   # gallery a, probe b
    for name, r in ver.items():
        print(f"  | {name:<32} | {100 * r['accuracy']:5.1f} +- {100 * r['std']:4.1f}% | AUC "
              f"{r['auc']:.3f} | TAR {100 * r['tar_at_far']:5.1f}% at FAR 1e-2 |")
    same_lib = verify_disjoint(student, pairs, split.lr_size)
    sv = ver[f"student, LR {split.lr_size}px"]
    t.check("|accuracy - verify_disjoint's| (two library paths)",
            abs(same_lib["accuracy"] - sv["accuracy"]), below=1e-12)
    t.check("student AUC (0.5 is chance)", sv["auc"], above=0.5)
    t.check("teacher HR AUC (0.5 is chance)", ver["teacher, HR"]["auc"], above=0.5)
    t.saved(plots.plot_roc({f"{k} (AUC {v['auc']:.3f})": (v["far"], v["tar"])
                            for k, v in ver.items()},
                           t.path("roc.png"), title=f"verification, {pairs.n_pairs} unseen pairs"))

    t.section("5. Deployment: the student's bytes and faces/s against the paper's")
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
    t.saved(deployment_figure(rep, rep158, t.path("deployment.png")))
    b1, b256 = rep["speed"][1]["faces_per_s"], rep["speed"][256]["faces_per_s"]

    with open(t.path("results.json"), "w") as f:
        json.dump({"identification": {k: {"top1": v["top1"], "top5": v["top5"]}
                                      for k, v in rows.items()},
                   "verification": {k: {m: v[m] for m in ("accuracy", "std", "auc", "tar_at_far",
                                                          "n_pairs")} for k, v in ver.items()},
                   "pairs": pairs.meta, "memory": rep["memory"], "memory_lfw158": rep158["memory"],
                   "faces_per_s": {str(b): s["faces_per_s"] for b, s in rep["speed"].items()},
                   "split": split.meta}, f, indent=1)
    t.saved(t.path("results.json"))

    cr = ver["teacher, HR vs LR (cross-res.)"]
    t.finish(summary=[
        f"identification top-1: teacher at HR {100 * rows['teacher at HR']['top1']:.1f}%, "
        f"on upsampled LR {100 * rows['teacher on LR, upsampled']['top1']:.1f}%, student "
        f"{100 * rows['student at LR']['top1']:.1f}%; an HR gallery with LR probes: "
        f"{100 * rows['teacher, HR gallery vs LR probes (cross-res.)']['top1']:.1f}%",
        f"verification on {pairs.n_pairs} unseen pairs: student {100 * sv['accuracy']:.1f}% "
        f"(AUC {sv['auc']:.3f}), teacher HR {100 * ver['teacher, HR']['accuracy']:.1f}%, "
        f"cross-resolution {100 * cr['accuracy']:.1f}% (AUC {cr['auc']:.3f})",
        f"the LFW-158 student takes {rep158['memory']['param_bytes']:,} bytes "
        f"({100 * rep158['memory']['fraction_of_paper']:.1f}% of {PAPER_STUDENT_MB} MB); "
        f"the trained one runs at "
        f"{b1:,.0f} faces/s at batch 1, {b256:,.0f} at batch 256 (paper: {PAPER_FACES_PER_S:.0f})",
        "accuracy needs a protocol: thresholds from other folds, pairs of unseen people, and "
        "speed as a median after warm-up",
    ], exercises=[
        "Score the cross-resolution pairs with the student on the LR side and the teacher on "
        "the HR side: why can't pair_roc compare them, and what would the adapter of tutorial "
        "07 (64 -> 256) change?",
        "Set far_target=1e-3 in pair_roc on LFW: how many different pairs does that FAR allow, "
        "and how stable is the TAR there across seeds?",
        "Run `python -m tinyface evaluate --data lfw --verification --folds 2` and compare its "
        "per-fold students with the single LFW-158 student here: which protocol is fairer?",
    ])


if __name__ == "__main__":
    main()
