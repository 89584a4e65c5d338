"""Tutorial 5: the student stream, a 0.15 MB CNN trained on 16x16 faces.

In the paper (Ge et al., TIP 2019, sections III-A and IV) the student is a tiny network
that sees only low-resolution faces and must fit in 0.15 MB while running fast on a
CPU (418 faces/s in the paper). Before any distillation it is trained from scratch on
LR faces: this is the baseline that selective distillation (tutorials 06-07) improves.
Here we check the student's size by hand, write its training step out once (zero_grad,
forward, loss, backward, optimizer step) and watch the loss fall, train it with ``fit``
(that same step, with augmentation, validation and checkpoints around it), measure its
memory in bytes and its speed in faces/s (median, warm-up excluded), and compare its
accuracy with the teacher's
at HR and with the teacher fed the same LR faces upsampled back to 64x64: the teacher
loses most of its accuracy there, which is why a dedicated LR student is needed.

    python tutorials/05_student_stream.py --quick        # ~25 s: synthetic faces
    python tutorials/05_student_stream.py --teacher runs/lfw-teacher   # ~1.5 min, LFW-158
    python tutorials/05_student_stream.py --teacher runs/lfw-teacher --student runs/lfw-student

The full mode uses LFW-158 and trains the student (30 epochs, under a minute on 2
cores). Its teacher is ``--teacher DIR`` (e.g. runs/lfw-teacher, or tutorial 04's
OUT/teacher), or else a teacher-lite trained here for ``--teacher-epochs`` (10 by
default: about 5 minutes on LFW, and a weaker teacher than the 40-epoch one).
``--student DIR`` reuses a trained student instead of training one.
"""
import json
import math
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinyface import tutorial  # noqa: E402
from tinyface.data import degrade, to_float  # noqa: E402
from tinyface.eval import evaluate_identification, plots  # noqa: E402
from tinyface.experiments import (build_stream_model, deployment_report,  # noqa: E402
                                  format_deployment, load_trained, measure_throughput,
                                  train_stream)
from tinyface.losses import softmax_cross_entropy_loss  # noqa: E402
from tinyface.models import (PAPER_FACES_PER_S, PAPER_STUDENT_BYTES,  # noqa: E402
                             STUDENT_MAX_PARAMS, STUDENT_STAGES, build_student, format_summary,
                             summary)
from tinyface.optim import SGD  # noqa: E402
from tinyface.train import LR_MAX_SHIFT, TrainConfig, save_curves, train_step  # noqa: E402

# the same quick faces as tutorials 04 and 08, so that their models can be reused


def extra(p):
    p.add_argument("--teacher", metavar="DIR", help="a trained teacher run folder to reuse "
                   "(e.g. runs/lfw-teacher or tutorial 04's OUT/teacher)")
    p.add_argument("--student", metavar="DIR", help="a trained student run folder to reuse "
                   "(e.g. runs/lfw-student) instead of training one")
    p.add_argument("--teacher-epochs", type=int, help="epochs of the teacher-lite trained "
                   "when --teacher is not given (default: 8 quick, 10 full)")
    p.add_argument("--epochs", type=int, help="student epochs (default: 20 quick, 30 full)")


def faces_figure(split, path, n=4):
    """What each stream sees: HR (teacher), LR (student), LR upsampled (teacher on LR)."""
    rows = [int(np.flatnonzero(split.y_test == k)[0]) for k in range(min(n, split.num_classes))]
    cols = [(f"HR {split.hr_size}px (teacher)", split.hr_test),
            (f"LR {split.lr_size}px (student)", split.lr_test),
            (f"LR upsampled to {split.hr_size}px", split.lr_up_test)]
    fig, axes = plt.subplots(len(rows), 3, figsize=(4.8, 1.6 * len(rows)), squeeze=False)
    for j, (title, imgs) in enumerate(cols):
        for i, r in enumerate(rows):
            axes[i, j].imshow(imgs[r].transpose(1, 2, 0), interpolation="nearest")
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main():
    args = tutorial.parse_args(5, __doc__, extra=extra)
    t = tutorial.Tutorial(args, title="Tutorial 5: the student stream")

    t.section("1. Toy checks: the student's bytes by hand, and a flat face stays flat")
    convs, c, n = [s for s in STUDENT_STAGES if s != "M"], 3, 0
    for out in convs:                       # conv3x3 with bias + batch norm (scale, shift)
        n += 9 * c * out + out + 2 * out
        c = out
    n += c * 64 + 64 + 2 * 64 + 64 * 158 + 158          # embedding + BatchNorm1d + classifier
    student158 = build_student(158, seed=0)
    print(f"  stages {STUDENT_STAGES}, 64-d embedding, 158 identities: by hand {n:,} parameters "
          f"= {4 * n:,} bytes")
    t.check("student parameters (model zoo)", student158.num_parameters(), equals=n)
    t.check("bytes / the paper's 0.15 MB (157,286 bytes)", 4 * n / PAPER_STUDENT_BYTES, below=1.0)
    print(f"  budget: {STUDENT_MAX_PARAMS:,} float32 parameters; a 128-d embedding's classifier "
          f"alone would take {128 * 158 + 158:,}")
    print(textwrap.indent(format_summary(summary(student158),
                                         title="the deployable student, per layer:"), "  "))
    flat = np.full((1, 3, 64, 64), 123, np.uint8)
    lr_flat = degrade(flat, lr_size=16, method="bicubic")               # (1, 3, 16, 16)
    up_flat = degrade(flat, lr_size=16, method="bicubic", upsample_to=64)   # (1, 3, 64, 64)
    print(f"  a flat grey 64x64 face (value 123) -> {lr_flat.shape} -> {up_flat.shape}")
    t.check("max |LR - 123| (blur and bicubic keep a constant)",
            int(np.abs(lr_flat.astype(int) - 123).max()), below=2)
    t.check("max |LR upsampled - 123|", int(np.abs(up_flat.astype(int) - 123).max()), below=2)

    t.section("2. The faces: the same split as tutorial 04, degraded to LR")
    split, _ = tutorial.load_faces(args)
    K = split.num_classes
    print(f"  {split.describe()}")
    print(f"  lr_train {split.lr_train.shape}, lr_test {split.lr_test.shape}, "
          f"lr_up_test {split.lr_up_test.shape} (LR test faces upsampled back, for the teacher)")
    print(f"  pixels per face: HR {3 * split.hr_size ** 2:,}, LR {3 * split.lr_size ** 2:,} "
          f"({(split.hr_size // split.lr_size) ** 2}x fewer)")
    t.saved(faces_figure(split, t.path("faces_hr_lr.png")))

    t.section("3. The training step by hand: the loss starts at about ln K and falls")
    x, y = to_float(split.lr_train[:64]), split.y_train[:64]            # (64, 3, 16, 16), (64,)
    defaults = TrainConfig()                # the optimizer fit builds by default: SGD
    by_hand = build_stream_model(split, "student", seed=args.seed).train()
    opt = SGD(by_hand, lr=defaults.learning_rate, momentum=defaults.momentum,
              weight_decay=defaults.weight_decay)
    hand_losses = []
    for _ in range(10):                     # ten steps on the same 64 faces
        by_hand.zero_grad()
        logits = by_hand.forward(x)                                     # (64, K)
        loss, dlogits = softmax_cross_entropy_loss(logits, y)           # dlogits: (64, K)
        by_hand.backward(dlogits)           # every layer's grads, output to input
        opt.step()                          # b = momentum * b + grad + wd * w; w -= lr * b
        hand_losses.append(loss)
    loss0 = hand_losses[0]
    print(f"  x {x.shape} -> logits (64, {K}); loss {loss0:.4f}, ln {K} = {math.log(K):.4f}")
    t.check("|loss - ln K| / ln K at step 0", abs(loss0 - math.log(K)) / math.log(K), below=0.1)
    print(f"  SGD lr {defaults.learning_rate:g}, momentum {defaults.momentum:g}, loss per step: "
          + " ".join(f"{v:.3f}" for v in hand_losses))
    t.check("loss at step 9 / step 0", hand_losses[-1] / loss0, below=0.9)
    twin = build_stream_model(split, "student", seed=args.seed).train()
    twin_opt = SGD(twin, lr=defaults.learning_rate, momentum=defaults.momentum,
                   weight_decay=defaults.weight_decay)
    step_losses = [train_step(twin, twin_opt, x, y)[0] for _ in range(10)]
    hand_w, twin_w = by_hand.state_dict(), twin.state_dict()
    print("  fit repeats exactly this step (tinyface.train.train_step), on shuffled, augmented "
          "batches\n  with a per-step learning rate, validation and checkpoints around it:")
    t.check("steps where train_step's loss differs from the hand-written one",
            sum(a != b for a, b in zip(step_losses, hand_losses)), equals=0)
    t.check("weights where train_step's differ after 10 steps",
            sum(not np.array_equal(hand_w[k], twin_w[k]) for k in hand_w), equals=0)

    def log(line):                          # fit's lines, without one per epoch
        if not line.lstrip().startswith("epoch "):
            print("  " + line)

    def reuse(path, stream):
        try:
            return load_trained(path, split, stream)
        except (FileNotFoundError, ValueError) as exc:
            raise SystemExit(f"--{stream} {path}: {exc}")

    t.section("4. The student on LR faces")
    if args.student:
        run = reuse(args.student, "student")
        student, history = run.model, run.history
        seconds = run.metrics.get("train_seconds") if run.metrics else None
        print(f"  reusing {run.path}: {student!r}")
    else:
        epochs = args.epochs or (20 if args.quick else 30)
        cfg = TrainConfig(epochs=epochs, batch_size=32 if args.quick else 64, seed=args.seed,
                          max_shift=LR_MAX_SHIFT, log_every=0)   # no sub-pixel shifts at LR
        res = train_stream(split, "student", cfg, t.path("student"),
                           log=log)
        student, history = res["model"], res["history"]
        seconds = res["metrics"]["train_seconds"]
        for name in ("model.npz", "checkpoint.npz", "history.json", "curves.png", "metrics.json"):
            t.saved(t.path(f"student/{name}"))
        print(f"  trained {epochs} epochs in {seconds:.1f} s")
    if history:
        t.check("student train loss, last / first epoch",
                history[-1]["train_loss"] / history[0]["train_loss"], below=0.9)
        t.saved(save_curves(history, t.path("student_curves.png"),
                            title=f"student, {split.meta['data']}, {K} identities"))

    t.section("5. The teacher, at HR and fed the LR faces upsampled")
    if args.teacher:
        run = reuse(args.teacher, "teacher")
        teacher = run.model
        print(f"  reusing {run.path}: {teacher!r}")
    else:
        epochs = args.teacher_epochs or (8 if args.quick else 10)
        print(f"  no --teacher given: training a teacher-lite for {epochs} epochs "
              f"(tutorial 04 trains a better one; reuse it with --teacher)")
        res = train_stream(split, "teacher", TrainConfig(epochs=epochs, batch_size=32 if args.quick
                                                         else 64, seed=args.seed, log_every=0),
                           t.path("teacher"), arch="teacher-lite", log=log)
        teacher = res["model"]
        for name in ("model.npz", "checkpoint.npz", "history.json", "curves.png", "metrics.json"):
            t.saved(t.path(f"teacher/{name}"))
    results = {"teacher at HR": evaluate_identification(teacher, split, "teacher"),
               "teacher on LR, upsampled": evaluate_identification(teacher, split, "teacher",
                                                                    upsampled=True),
               "student at LR": evaluate_identification(student, split, "student")}
    print(f"\n  | model | faces | top-1 | top-5 |   ({len(split.y_test)} test faces, chance "
          f"{100 / K:.1f}%)")
    for name, r in results.items():
        print(f"  | {name:<24} | {r['input_size']}px | {100 * r['top1']:5.1f}% "
              f"| {100 * r['top5']:5.1f}% |")
    s1, tl1, th1 = (results[k]["top1"] for k in ("student at LR", "teacher on LR, upsampled",
                                                 "teacher at HR"))
    t.check("student top-1 / chance", s1 * K, above=3.0)
    if split.meta["data"] == "synthetic":
        print(f"  teacher top-1, LR upsampled minus HR: {100 * (tl1 - th1):+.1f} points. On these "
              f"synthetic faces identity lives mostly in coarse traits that survive 16x16 (head, "
              f"skin, hair), so the loss is small; on LFW-158 it is 85.0% -> 36.0%")
    else:
        t.check("teacher top-1: LR upsampled minus HR (LR hurts the teacher)", tl1 - th1,
                below=0.0)
    t.check("student top-1 minus the teacher's on upsampled LR faces", s1 - tl1, above=0.0)
    t.saved(plots.plot_cmc({k: (v["cmc"]["ranks"], v["cmc"]["rates"]) for k, v in results.items()},
                           t.path("cmc.png"), title=f"CMC, {split.meta['data']}, {K} identities"))

    t.section("6. Memory and speed of the student (median of timed calls, warm-up excluded)")
    rep = deployment_report(student, batch_sizes=(1, 256), reps=30 if args.quick else 100)
    print(textwrap.indent(format_deployment(rep, name=f"this student ({K} identities)"), "  "))
    if K != 158:                            # quick mode: the LFW-sized one as well
        rep158 = deployment_report(student158, batch_sizes=(1,), reps=30)
        print(textwrap.indent(format_deployment(rep158, name="the LFW-158 deployable student"),
                              "  "))
    else:
        rep158 = rep
    t.check("LFW-158 student bytes / 0.15 MB", rep158["memory"]["fraction_of_paper"], below=1.0)
    tspeed = measure_throughput(teacher, batch_sizes=(1, 32), reps=5, warmup=1)
    ratio = rep["speed"][1]["faces_per_s"] / tspeed[1]["faces_per_s"]
    print(f"  the teacher ({teacher.spec['name']}): {tspeed[1]['faces_per_s']:.0f} faces/s at "
          f"batch 1, {tspeed[32]['faces_per_s']:.0f} at batch 32; the student is {ratio:.0f}x "
          f"faster at batch 1 (speed is measured, not checked: it depends on the machine's load)")
    t.saved(plots.plot_bars({"paper student": PAPER_FACES_PER_S,
                             "student b1": rep["speed"][1]["faces_per_s"],
                             "student b256": rep["speed"][256]["faces_per_s"],
                             "teacher b1": tspeed[1]["faces_per_s"],
                             "teacher b32": tspeed[32]["faces_per_s"]},
                            t.path("faces_per_s.png"), ylabel="faces/s (inference)",
                            title="speed on this CPU vs the paper's 418 faces/s"))
    with open(t.path("results.json"), "w") as f:
        json.dump({"identification": {k: {m: v[m] for m in ("top1", "top5", "faces", "input_size")}
                                      for k, v in results.items()},
                   "memory": rep["memory"], "memory_lfw158": rep158["memory"],
                   "faces_per_s": {str(b): s["faces_per_s"] for b, s in rep["speed"].items()},
                   "teacher_faces_per_s": {str(b): s["faces_per_s"] for b, s in tspeed.items()},
                   "student_train_seconds": seconds, "split": split.meta}, f, indent=1)
    t.saved(t.path("results.json"))

    b1, b256 = rep["speed"][1]["faces_per_s"], rep["speed"][256]["faces_per_s"]
    t.finish(summary=[
        f"the LFW-158 student has {n:,} parameters = {4 * n:,} bytes, "
        f"{100 * 4 * n / PAPER_STUDENT_BYTES:.1f}% of the paper's 0.15 MB "
        f"({rep158['memory']['buffer_bytes']:,} bytes of batch-norm statistics besides)",
        f"it runs at {b1:,.0f} faces/s at batch 1 and {b256:,.0f} at batch 256 on this CPU "
        f"(paper: {PAPER_FACES_PER_S:.0f}), {ratio:.0f}x the teacher's speed at batch 1",
        f"top-1 on {split.meta['data']}: teacher at HR {100 * th1:.1f}%, the same teacher on "
        f"upsampled LR faces {100 * tl1:.1f}%, student at LR {100 * s1:.1f}%",
        "the teacher's HR features do not transfer to LR inputs by upsampling; tutorials 06-07 "
        "distil them into the student instead",
    ], exercises=[
        "Rerun with a student trained on 8x8 faces (load_split(..., lr_size=8)): how much top-1 "
        "does the student lose, and how much does the teacher on upsampled faces lose?",
        "Time the student at batch sizes 1, 4, 16, 64 and 256 with measure_throughput: where "
        "does faces/s stop growing, and why is batch 1 so much slower per face?",
        "Fine-tune the teacher on upsampled LR faces for a few epochs (fit with "
        "degrade(..., upsample_to=64) training faces): does it beat the student, at what cost?",
    ])


if __name__ == "__main__":
    main()
