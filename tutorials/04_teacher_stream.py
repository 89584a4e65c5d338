"""Tutorial 4: the teacher stream, a CNN trained on high-resolution faces.

The paper (Ge et al., TIP 2019, section III-A) first trains a teacher on 64x64 faces:
its features are what the 16x16 student will later learn from. Here the teacher is
the library's VGG-style ``FaceNet`` (eight 3x3 convs with batch norm, a 256-d
embedding, an identity classifier) trained with softmax cross-entropy by
``tinyface.train.fit``. Before training it, we check what can be checked by hand: its
parameter count, its loss at step 0 (about ln K for K identities), and that it can
overfit one batch. Then we train it, plot its curves and measure its identification
accuracy (top-1, top-5, CMC) on the test faces of a 70/30 split.

    python tutorials/04_teacher_stream.py --quick          # ~25 s: teacher-lite, synthetic faces
    python tutorials/04_teacher_stream.py --teacher runs/lfw-teacher   # ~1-2 min: reuse it
    python tutorials/04_teacher_stream.py                  # ~50 min on 2 cores: train on LFW-158

Quick mode trains the teacher-lite (the same layers with a stride-2 first conv, 4x
fewer FLOPs) for 12 epochs on 20 synthetic identities. The full mode trains the
library's default teacher recipe on LFW-158 (40 epochs, SGD 0.05 cosine, batch 64),
unless ``--teacher DIR`` names a trained run folder: then it loads that model, plots
its ``history.json`` and measures its accuracy. The trained teacher goes to
OUT/teacher/, where tutorials 05 and 08 can reuse it (``--teacher OUT/teacher``).
"""
import json
import math

import numpy as np

from tinyface import tutorial

# the same quick faces as tutorials 05 and 08, so that their models can be reused


def extra(p):
    p.add_argument("--teacher", metavar="DIR",
                   help="a trained teacher run folder (e.g. runs/lfw-teacher): load it, plot its "
                        "history.json and measure it, instead of training")
    p.add_argument("--epochs", type=int, help="teacher epochs (default: 12 quick, 40 full)")


def hand_count(stages, embedding_dim, num_classes, in_channels=3):
    """Parameters of the teacher spec, by the formula: conv3x3 = 9 Cin Cout + Cout (bias),
    batch norm = 2 C (scale, shift), Linear(a, b) = a b + b."""
    n, c = 0, in_channels
    for s in stages:
        if s == "M":
            continue
        out = s["conv"] if isinstance(s, dict) else s
        n += 9 * c * out + out + 2 * out
        c = out
    n += c * embedding_dim + embedding_dim + 2 * embedding_dim     # embedding + BatchNorm1d
    return n + embedding_dim * num_classes + num_classes          # classifier


def main():
    args = tutorial.parse_args(4, __doc__, extra=extra)
    t = tutorial.Tutorial(args, title="Tutorial 4: the teacher stream")

    from tinyface.data import to_float
    from tinyface.eval import plots
    from tinyface.losses import softmax_cross_entropy_loss
    from tinyface.models import build_model, build_student, spec_by_name, summary, totals
    from tinyface.models.zoo import TEACHER_STAGES
    from tinyface.pipeline import evaluate_identification, train_stream
    from tinyface.pipeline.streams import build_stream_model
    from tinyface.pipeline.trained import load_trained
    from tinyface.train import TrainConfig, fit, save_curves

    arch = "teacher-lite" if args.quick else "teacher"

    t.section("1. Toy check: the teacher's parameters, counted by hand")
    by_hand = hand_count(TEACHER_STAGES, 256, 158)
    teacher158 = build_model(spec_by_name("teacher", 158), seed=0)
    lite158 = build_model(spec_by_name("teacher-lite", 158), seed=0)
    print(f"  teacher stages {TEACHER_STAGES}, 256-d embedding, 158 identities (LFW-158)")
    print(f"  by hand: sum of 9*Cin*Cout + Cout + 2*Cout over the convs, + 256*256 + 256 + 2*256,"
          f" + 256*158 + 158 = {by_hand:,}")
    t.check("teacher parameters (model zoo)", teacher158.num_parameters(), equals=by_hand)
    t.check("teacher-lite parameters (stride-2 first conv, same weights)",
            lite158.num_parameters(), equals=by_hand)
    for name, m in (("teacher", teacher158), ("teacher-lite", lite158)):
        tot = totals(summary(m))
        print(f"  {name}: {tot['params']:,} parameters = {tot['bytes']:,} bytes "
              f"({tot['megabytes']:.2f} MB), {tot['flops'] / 1e6:.0f} MFLOP per 64x64 face")

    t.section("2. The faces: HR training and test faces of a per-identity split")
    split, _ = tutorial.load_faces(args)
    K = split.num_classes
    print(f"  {split.describe()}")
    print(f"  hr_train {split.hr_train.shape} {split.hr_train.dtype}, "
          f"y_train {split.y_train.shape}; hr_test {split.hr_test.shape}")
    t.check("identities with test faces", len(np.unique(split.y_test)), equals=K)

    t.section(f"3. Check: the untrained {arch}'s loss at step 0 is about ln K")
    model = build_stream_model(split, "teacher", arch=arch, seed=args.seed).train()
    x = to_float(split.hr_train[:64])                                   # (64, 3, 64, 64) float32
    logits = model.forward(x)                                           # (64, K)
    loss0, _ = softmax_cross_entropy_loss(logits, split.y_train[:64])
    print(f"  x {x.shape} {x.dtype} in [{x.min():.2f}, {x.max():.2f}] -> logits {logits.shape}")
    print(f"  loss {loss0:.4f}, ln K = ln {K} = {math.log(K):.4f}")
    t.check("|loss - ln K| / ln K at step 0", abs(loss0 - math.log(K)) / math.log(K), below=0.1)

    t.section("4. Check: it overfits one batch of 16 faces")
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(len(split.y_train), size=16, replace=False)
    tiny = build_stream_model(split, "teacher", arch=arch, seed=args.seed)
    one = TrainConfig(epochs=20, batch_size=16, augment=False, lr=0.02, weight_decay=0.0,
                      schedule="constant", seed=args.seed, log_every=0)
    hist = fit(tiny, split.hr_train[idx], split.y_train[idx], one, log=lambda m: None)
    losses = [h["train_loss"] for h in hist]                            # one step per epoch
    print("  loss per step: " + " ".join(f"{v:.3f}" for v in losses[:6]) + " ... "
          + " ".join(f"{v:.4f}" for v in losses[-3:]))
    t.check("loss after 20 steps", losses[-1], below=0.05)
    t.check("accuracy on the batch at the last step", hist[-1]["train_acc"], equals=1.0)
    t.saved(save_curves(hist, t.path("overfit_one_batch.png"),
                        title=f"{arch}: one batch of 16 faces, one step per epoch"))

    if args.teacher:
        t.section(f"5. The trained teacher at {args.teacher} (no training)")
        try:
            run = load_trained(args.teacher, split, "teacher")
        except (FileNotFoundError, ValueError) as exc:
            raise SystemExit(f"--teacher {args.teacher}: {exc}")
        teacher, history = run.model, run.history
        print(f"  {teacher!r}, {teacher.num_parameters():,} parameters, from {run.path}")
        if run.metrics:
            cfg = run.metrics.get("config", {})
            minutes = run.metrics.get("train_seconds", 0) / 60
            print(f"  trained {run.metrics.get('epochs')} epochs in {minutes:.0f} min "
                  f"(batch {cfg.get('batch_size')}, {cfg.get('optimizer')}, {cfg.get('schedule')})")
        train_seconds = run.metrics.get("train_seconds") if run.metrics else None
    else:
        epochs = args.epochs or (12 if args.quick else 40)
        batch = 32 if args.quick else 64
        t.section(f"5. Train the {arch}: {epochs} epochs, batch {batch}, SGD 0.05 cosine")
        cfg = TrainConfig(epochs=epochs, batch_size=batch, seed=args.seed,
                          log_every=0 if args.quick else 60)
        res = train_stream(split, "teacher", cfg, t.path("teacher"), arch=arch,
                           log=lambda m: print("  " + m))
        teacher, history = res["model"], res["history"]
        train_seconds = res["metrics"]["train_seconds"]
        for name in ("model.npz", "checkpoint.npz", "history.json", "curves.png", "metrics.json"):
            t.saved(t.path(f"teacher/{name}"))
    if history:
        last = history[-1]
        best = max(history, key=lambda h: h["val_acc"] or 0)
        print(f"  {len(history)} epochs: train loss {history[0]['train_loss']:.3f} -> "
              f"{last['train_loss']:.3f}, train acc {100 * last['train_acc']:.1f}%, "
              f"best val acc {100 * best['val_acc']:.1f}% (epoch {best['epoch']})")
        t.check("train loss, last epoch / first epoch",
                last["train_loss"] / history[0]["train_loss"], below=0.9)
        t.saved(save_curves(history, t.path("curves.png"),
                            title=f"teacher, {split.meta['data']}, {K} identities"))

    t.section("6. Identification accuracy on the test faces (HR, 64x64)")
    ev = evaluate_identification(teacher, split, "teacher")
    ranks, rates = np.array(ev["cmc"]["ranks"]), np.array(ev["cmc"]["rates"])
    print(f"  {ev['faces']} test faces of {K} identities: top-1 {100 * ev['top1']:.1f}%, "
          f"top-5 {100 * ev['top5']:.1f}% (chance: {100 / K:.1f}% top-1)")
    t.check("top-1 / chance", ev["top1"] * K, above=3.0)
    t.check("CMC non-decreasing (smallest step)", float(np.min(np.diff(rates))) if len(rates) > 1
            else 0.0, above=-1e-12)
    t.check("|CMC at rank 1 - top-1|", abs(rates[0] - ev["top1"]), below=1e-12)
    if args.teacher and run.metrics and "top1" in run.metrics:
        t.check("|top-1 - top-1 recorded in metrics.json|", abs(ev["top1"] - run.metrics["top1"]),
                below=1e-9)
    t.saved(plots.plot_cmc({"teacher at HR": (ranks, rates)}, t.path("cmc.png"),
                           title=f"teacher CMC, {split.meta['data']}, {K} identities"))
    out = {"arch": teacher.spec["name"], "parameters": teacher.num_parameters(), "top1": ev["top1"],
           "top5": ev["top5"], "cmc": ev["cmc"], "train_seconds": train_seconds,
           "split": split.meta, "reused": args.teacher}
    with open(t.path("results.json"), "w") as f:
        json.dump(out, f, indent=1)
    t.saved(t.path("results.json"))

    t.finish(summary=[
        f"the teacher has {by_hand:,} parameters with 158 identities "
        f"({4 * by_hand / 2 ** 20:.2f} MB), {by_hand / build_student(158).num_parameters():.0f}x "
        f"the 0.15 MB student; the teacher-lite has the same weights and 4x fewer FLOPs",
        f"at step 0 its loss is {loss0:.3f} ~ ln {K} = {math.log(K):.3f}: the classifier starts "
        f"uniform; it overfits one batch (loss {losses[-1]:.4f} after 20 steps)",
        f"{teacher.spec['name']} on {split.meta['data']}: top-1 {100 * ev['top1']:.1f}%, "
        f"top-5 {100 * ev['top5']:.1f}% on {ev['faces']} HR test faces"
        + (f", trained in {train_seconds:.0f} s" if train_seconds else ""),
        "tutorial 05 trains the 16x16 student and feeds this teacher LR faces; "
        "reuse it with --teacher " + (args.teacher or t.path("teacher")),
    ], exercises=[
        "Train with --epochs 4 and then --epochs 24 (quick mode): how do the train and val "
        "curves separate, and when does the best validation epoch stop moving?",
        "Change the one-batch check to lr=0.2: does the loss still reach 0.05 in 20 steps? "
        "What does that say about the learning rate the full recipe uses (0.05)?",
        "Compute by hand the parameters of a teacher with a 128-d embedding: how many bytes "
        "does it save? Why do the last two convs hold most of the bytes while every stage "
        "costs about the same FLOPs (see models.summary)?",
    ])


if __name__ == "__main__":
    main()
