"""Tutorial 4: the teacher stream, a pretrained CNN that knows faces, and one trained here.

The paper (Ge et al., TIP 2019, section III-A) distils a teacher that works on high-
resolution faces into a 16x16 student. Part 1 imports a real one, dlib's ResNet (5.6 M
parameters, 150x150 faces -> 128-d descriptors, trained on ~3 M faces of people outside
LFW), step by step as ``tinyface.models.load_pretrained`` does it: find the files,
dequantise the uint8 tensors, build the spec, transpose the filters, fold the input
normalisation. It computes one descriptor by hand in NumPy, checks the library's layers
against it and verifies LFW pairs by descriptor distance (dlib's threshold 0.6). It needs
dlib's weights (``../shared/data/dlib_resnet/`` or ``python data_scripts/download_teacher.py``)
and is skipped, saying so, without them.

Part 2 trains our own teacher, the library's VGG-style ``FaceNet`` (eight 3x3 convs with
batch norm, a 256-d embedding, an identity classifier): its parameters by hand, its loss at
step 0 (about ln K), an overfit of one batch, training (the teacher-lite: a stride-2 first
conv, 4x fewer FLOPs; into OUT/teacher/, for tutorials 05 and 08), its curves and its
top-1, top-5 and CMC on the test faces of a 70/30 split.

    python tutorials/04_teacher_stream.py --quick   # ~40 s: 12 synthetic faces; 12 epochs, 20 ids
    python tutorials/04_teacher_stream.py           # 3-5 min: 400 LFW pairs; 3 epochs, LFW-158
    python tutorials/04_teacher_stream.py --teacher runs/lfw-teacher   # reuse a trained teacher
    python tutorials/04_teacher_stream.py --arch teacher --epochs 40   # ~50 min: the recipe
"""
import json
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from tinyface import tutorial
from tinyface.data import find_pairs_file, load_dataset, load_pairs, to_float
from tinyface.eval import best_threshold, evaluate_identification, plots, resolve_folds
from tinyface.experiments import build_stream_model, load_trained, train_stream
from tinyface.losses import softmax_cross_entropy_loss
from tinyface.models import (DLIB_MEAN_RGB, TEACHER_STAGES, WeightsError, build_model,
                             build_student, compare_with_manifest, dlib_resnet_spec, embed_faces,
                             find_weights_dir, fold_input_normalisation, format_manifest,
                             format_summary, load_pretrained, read_dlib_dat, read_manifest,
                             read_manifest_weights, resize_faces, spec_by_name, summary, totals)
from tinyface.reference import avgpool2d_forward, conv2d_forward, maxpool2d_forward
from tinyface.train import TrainConfig, fit, save_curves

# face-api.js's residual blocks after the 7x7 conv and the max pool, in order
DLIB_RESIDUALS = ["conv32_1", "conv32_2", "conv32_3", "conv64_down", "conv64_1", "conv64_2",
                  "conv64_3", "conv128_down", "conv128_1", "conv128_2", "conv256_down",
                  "conv256_1", "conv256_2", "conv256_down_out"]
THRESHOLD = 0.6                                  # dlib's: same person when the distance < 0.6


def extra(p):
    p.add_argument("--teacher", metavar="DIR",
                   help="a trained teacher run folder (e.g. runs/lfw-teacher): load it, plot its "
                        "history.json and measure it, instead of training")
    p.add_argument("--arch", choices=["teacher", "teacher-lite"], default="teacher-lite",
                   help="part 2's teacher")
    p.add_argument("--epochs", type=int, help="teacher epochs (default: 12 quick, 3 full)")
    p.add_argument("--pairs", type=int, default=400, help="LFW pairs for dlib's teacher (full)")


def descriptor_by_hand(w, face):
    """dlib's descriptor of one face in float64 NumPy, following face-api.js, from the
    manifest's tensors as they are (HWIO filters, the input normalisation not folded).

    w: {name: array} (``read_manifest_weights``); face: (3, 150, 150) uint8. Returns (128,).
    """
    def relu(z):
        return np.maximum(z, 0.0)

    def conv(x, name, stride, padding, act=True):             # conv + bias, scale, ReLU
        f = w[f"{name}/conv/filters"].transpose(3, 2, 0, 1).astype(np.float64)  # HWIO -> OIHW
        y, _ = conv2d_forward(x, f, w[f"{name}/conv/bias"].astype(np.float64), stride, padding)
        y = y * w[f"{name}/scale/weights"][:, None, None] + w[f"{name}/scale/biases"][:, None, None]
        return relu(y) if act else y

    x = (face.astype(np.float64) - np.reshape(DLIB_MEAN_RGB, (3, 1, 1))) / 255  # (3, 150, 150)
    y, _ = maxpool2d_forward(conv(x[None], "conv32_down", 2, 0), 3, 2)        # (1, 32, 35, 35)
    for name in DLIB_RESIDUALS:
        if "down" not in name:                 # 3x3 "same" convs: relu(conv2(conv1(y)) + y)
            y = relu(conv(conv(y, f"{name}/conv1", 1, 1), f"{name}/conv2", 1, 1, act=False) + y)
            continue
        main = conv(conv(y, f"{name}/conv1", 2, 0), f"{name}/conv2", 1, 1, act=False)  # /2, valid
        short, _ = avgpool2d_forward(y, 2, 2)                             # (1, C, H//2, W//2)
        if main.shape[1] > short.shape[1]:                                # new channels: zeros
            short = np.concatenate([short, np.zeros_like(short)], axis=1)
        dh, dw = short.shape[2] - main.shape[2], short.shape[3] - main.shape[3]   # 0 or 1
        main = np.pad(main, ((0, 0), (0, 0), (0, dh), (0, dw)))         # zeros bottom, right
        y = relu(main + short)                                            # 17, 8, 4, 2 px
    return y.mean(axis=(2, 3))[0] @ w["fc"]                               # (256,) @ (256, 128)


def demo_faces(args):
    """(faces (M, 3, h, w) uint8, rows ia, ib (P,), same (P,) bool, what): ``--pairs`` LFW
    pairs, half same, in the full mode with LFW, else 12 synthetic faces and their 66 pairs."""
    root = None if args.quick else tutorial.real_data_root(args)
    pairs_file = find_pairs_file(root) if root else None
    if pairs_file is None:
        print(f"  {'quick mode' if args.quick else 'no LFW pairs'}: 12 synthetic faces, 66 pairs")
        ds = load_dataset("synthetic", n_identities=6, images_per_identity=2, seed=args.seed)
        ia, ib = np.triu_indices(len(ds.labels), 1)
        return ds.images, ia, ib, ds.labels[ia] == ds.labels[ib], "synthetic"
    ds = load_dataset("lfw", root=root, hr_size=90, cache_dir=args.cache)
    a, b, same, _, _ = resolve_folds(load_pairs(pairs_file), ds)
    rng = np.random.default_rng(args.seed)
    n = args.pairs // 2
    pick = np.r_[rng.choice(np.flatnonzero(same), n, replace=False),
                 rng.choice(np.flatnonzero(~same), n, replace=False)]          # (2n,)
    rows, inv = np.unique(np.r_[a[pick], b[pick]], return_inverse=True)
    print(f"  {2 * n} of LFW View 2's {len(a):,} pairs ({pairs_file.name}), {len(rows)} faces")
    return ds.images[rows], inv[:2 * n], inv[2 * n:], same[pick], "LFW View 2"


def pretrained_teacher(t, args):
    """Part 1, sections 1-5: a dict of what it measured, or None without the weights."""
    t.section("1. dlib's weights: the files, the manifest, uint8 dequantisation by hand")
    try:
        folder = find_weights_dir()          # $TINYFACE_DATA, ../shared/data, then the cache
    except WeightsError as exc:
        print(f"  part 1 skipped, no pretrained teacher here: {exc}")
        return None
    entries = read_manifest(folder)                      # names, shapes, offsets, scale/min
    print(f"  {folder}: {len(entries)} tensors, {sum(e.quantized for e in entries)} of them "
          "uint8 (value = q * scale + min), the others float32")
    print("\n".join("  " + s for s in format_manifest(entries[:5]).splitlines()))
    e = entries[0]
    q = np.fromfile(e.files[0], np.uint8, count=4, offset=e.offset)    # its first 4 bytes
    by_hand = (q.astype(np.float64) * e.scale + e.min).astype(np.float32)
    w = read_manifest_weights(folder)                                   # {name: float32}
    print(f"  {e.name}, its first 4 bytes q = {q.tolist()}: q * {e.scale:.6g} + "
          f"({e.min:.6g}) = {by_hand}")
    t.check("|by hand - read_manifest_weights| (TF.js decodes the same way)",
            float(np.abs(by_hand - w[e.name].ravel()[:4]).max()), equals=0.0)
    dat = folder / "dlib_face_recognition_resnet_model_v1.dat"
    if dat.is_file():                        # dlib's own float32 weights, when they are here
        rows = compare_with_manifest(read_dlib_dat(dat), w, entries)
        worst = max(diff / (step / 2) for _, diff, step in rows if step)
        print(f"  against dlib's float32 .dat: the worst uint8 value is {worst:.5f} x scale/2 "
              "away, i.e. each is dlib's float rounded to the nearest of 256 steps")
        t.check("max |uint8 value - dlib's float32| / (scale / 2) - 1 (float32 rounding)",
                worst - 1, below=1e-3)

    t.section("2. The network: dlib_resnet_spec, 150x150 RGB -> 128-d descriptor")
    rows = summary(build_model(dlib_resnet_spec(), seed=0))
    table = format_summary(rows).splitlines()
    print("\n".join("  " + s for s in table[:7] + ["..."] + table[-9:]))
    n_net = totals(rows)["params"] - sum(r["params"] for r in rows if r["name"] == "classifier")
    flops = totals(rows)["flops"]
    print(f"  {n_net:,} parameters without the placeholder classifier Linear(128, 1); "
          f"{flops / 1e9:.2f} GFLOP per face")
    t.check("parameters of the spec = values in the manifest", n_net,
            equals=sum(e.size for e in entries))

    t.section("3. Into tinyface's layers: HWIO -> OIHW, the input normalisation folded")
    f0, b0 = w["conv32_down/conv/filters"], w["conv32_down/conv/bias"]   # (7, 7, 3, 32), (32,)
    oihw = f0.transpose(3, 2, 0, 1)                                      # (32, 3, 7, 7)
    print(f"  conv32_down/conv/filters {f0.shape} (kh, kw, Cin, Cout) -> Conv2d.weight "
          f"{oihw.shape} (Cout, Cin, kh, kw); fc {w['fc'].shape} -> Linear.weight (128, 256)")
    delta = 0.5 - np.array(DLIB_MEAN_RGB) / 255                         # (3,)
    folded = fold_input_normalisation(oihw, b0)                         # b + sum w * delta
    print(f"  dlib reads (x - mean_rgb) / 255 = to_float(x) + delta, delta = 0.5 - mean_rgb / "
          f"255 = {np.round(delta, 4)}; the 7x7 conv has no padding, so conv(f + delta) = conv(f)"
          f" + sum_cij w[o, c, i, j] delta_c: bias[:3] {np.array2string(b0[:3], precision=3)}"
          f" -> {np.array2string(folded[:3], precision=4)}")
    teacher = load_pretrained("dlib-resnet", weights=folder)
    params = dict(teacher.named_parameters())
    print(f"  load_pretrained: {teacher!r}, eval mode: {not teacher.training}; section 4's "
          "hand forward normalises (x - mean_rgb) / 255 itself, so it checks the fold too")
    t.check("|features.0.weight - filters transposed|",
            float(np.abs(params["features.0.weight"] - oihw).max()), equals=0.0)
    t.check("|features.0.bias - folded bias|",
            float(np.abs(params["features.0.bias"] - folded).max()), equals=0.0)

    t.section("4. Check: one descriptor by hand (NumPy, float64, face-api.js's ops)")
    faces, ia, ib, same, what = demo_faces(args)
    face = resize_faces(faces[:1])                                      # (1, 3, 150, 150)
    t0 = time.perf_counter()
    mine = descriptor_by_hand(w, face[0])                               # (128,) float64
    hand_s = time.perf_counter() - t0
    theirs = teacher.embed(to_float(face))[0]                           # (128,) float32
    rel = float(np.linalg.norm(mine - theirs) / np.linalg.norm(mine))
    print(f"  a {faces.shape[2]}px face resized to 150 (bicubic); by hand in {hand_s:.1f} s: "
          f"{np.round(mine[:4], 4)} ..., teacher.embed {theirs[:4]} ..., length "
          f"{np.linalg.norm(mine):.3f}")
    t.check("relative error ||by hand - teacher.embed|| / ||by hand||", rel, below=1e-4)

    t.section(f"5. Does it know faces? Verification of {what} pairs, distance < {THRESHOLD}")
    t0 = time.perf_counter()
    emb = embed_faces(teacher, faces, log=lambda m: print("  " + m))    # (M, 128)
    per_s = len(faces) / (time.perf_counter() - t0)
    t.check("|embed_faces (batched) - teacher.embed, face 0|",
            float(np.abs(emb[0] - theirs).max()), below=1e-5)
    dist = np.linalg.norm(emb[ia] - emb[ib], axis=1)                    # (P,) Euclidean
    acc = float(np.mean((dist < THRESHOLD) == same))
    best = -best_threshold(-dist, same)                                 # fitted on these pairs
    acc_best = float(np.mean((dist < best) == same))
    print(f"  {len(faces)} faces in {len(faces) / per_s:.1f} s ({per_s:.0f} faces/s, resizing "
          f"included); distance same {dist[same].mean():.3f}, different {dist[~same].mean():.3f}"
          f"; accuracy at {THRESHOLD}: {100 * acc:.1f}%, at {best:.3f} (fitted here, "
          f"optimistic): {100 * acc_best:.1f}% of {len(dist)} pairs")
    if what == "synthetic":
        print("  synthetic faces are not real faces: the pretrained teacher finds them all alike")
    else:
        t.check(f"accuracy at {THRESHOLD} on {len(dist)} LFW pairs (89.5% on all 6,000)",
                acc, above=0.85)
        t.check("mean distance, different / same pairs",
                float(dist[~same].mean() / dist[same].mean()), above=1.3)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    bins = np.linspace(0, max(1.0, 1.05 * dist.max()), 43)
    ax.hist(dist[same], bins, alpha=0.6, label=f"same person ({same.sum()})")
    ax.hist(dist[~same], bins, alpha=0.6, label=f"different people ({(~same).sum()})")
    ax.axvline(THRESHOLD, color="k", ls="--", label=f"threshold {THRESHOLD}")
    ax.set(xlabel="Euclidean distance of the 128-d descriptors", ylabel="pairs",
           title=f"dlib's ResNet on {len(dist)} {what} pairs")
    ax.legend(fontsize=8)
    grid = np.linspace(0.2, 1.0, 161)
    ax2.plot(grid, [100 * np.mean((dist < g) == same) for g in grid])
    ax2.axvline(THRESHOLD, color="k", ls="--")
    ax2.set(xlabel="threshold", ylabel="accuracy (%)", title=f"{100 * acc:.1f}% at "
            f"{THRESHOLD}; {100 * acc_best:.1f}% at {best:.2f}, fitted on these pairs")
    t.save_figure(fig, "dlib_distances.png")
    return {"parameters": n_net, "gflop": flops / 1e9, "hand_rel_error": rel,
            "hand_seconds": hand_s, "faces_per_s": per_s, "pairs": what, "n_pairs": len(dist),
            "accuracy_at_0.6": acc, "best_threshold": best, "accuracy_at_best": acc_best}


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

    print("\nPart 1: a pretrained teacher, dlib's ResNet, loaded step by step")
    dlib = pretrained_teacher(t, args)

    print("\nPart 2: our own teacher, trained on the HR faces")
    arch = "teacher-lite" if args.quick else args.arch
    t.section("6. Toy check: the teacher's parameters, counted by hand")
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

    t.section("7. The faces: HR training and test faces of a per-identity split")
    split, _ = tutorial.load_faces(args)
    K = split.num_classes
    print(f"  {split.describe()}")
    print(f"  hr_train {split.hr_train.shape} {split.hr_train.dtype}, "
          f"y_train {split.y_train.shape}; hr_test {split.hr_test.shape}")
    t.check("identities with test faces", len(np.unique(split.y_test)), equals=K)

    t.section(f"8. Check: the untrained {arch}'s loss at step 0 is about ln K")
    model = build_stream_model(split, "teacher", arch=arch, seed=args.seed).train()
    x = to_float(split.hr_train[:64])                                   # (64, 3, 64, 64) float32
    logits = model.forward(x)                                           # (64, K)
    loss0, _ = softmax_cross_entropy_loss(logits, split.y_train[:64])
    print(f"  x {x.shape} {x.dtype} in [{x.min():.2f}, {x.max():.2f}] -> logits {logits.shape}")
    print(f"  loss {loss0:.4f}, ln K = ln {K} = {math.log(K):.4f}")
    t.check("|loss - ln K| / ln K at step 0", abs(loss0 - math.log(K)) / math.log(K), below=0.1)

    t.section("9. Check: it overfits one batch of 16 faces")
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
        t.section(f"10. The trained teacher at {args.teacher} (no training)")
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
        epochs = args.epochs or (12 if args.quick else 3)
        batch = 32 if args.quick else 64
        t.section(f"10. Train the {arch}: {epochs} epochs, batch {batch}, SGD 0.05 cosine")
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

    t.section("11. Identification accuracy on the test faces (HR, 64x64)")
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
           "split": split.meta, "reused": args.teacher, "dlib_resnet": dlib}
    with open(t.path("results.json"), "w") as f:
        json.dump(out, f, indent=1)
    t.saved(t.path("results.json"))

    part1 = ["part 1 was skipped: no dlib weights (python data_scripts/download_teacher.py)"]
    if dlib is not None:
        part1 = [f"dlib's ResNet ({dlib['parameters']:,} parameters, {dlib['gflop']:.2f} GFLOP a "
                 "face) is tinyface's layers plus two facts: HWIO filters become OIHW, and "
                 "(x - mean) / 255 folds into the first conv's bias; a descriptor by hand agrees "
                 f"to {dlib['hand_rel_error']:.1e}",
                 f"on {dlib['n_pairs']} {dlib['pairs']} pairs it is right "
                 f"{100 * dlib['accuracy_at_0.6']:.1f}% of the time at dlib's threshold 0.6 "
                 f"({dlib['faces_per_s']:.0f} faces/s here)"]
    t.finish(summary=part1 + [
        f"our teacher has {by_hand:,} parameters with 158 identities "
        f"({4 * by_hand / 2 ** 20:.2f} MB), {by_hand / build_student(158).num_parameters():.0f}x "
        f"the 0.15 MB student; the teacher-lite has the same weights and 4x fewer FLOPs",
        f"at step 0 its loss is {loss0:.3f} ~ ln {K} = {math.log(K):.3f}: the classifier starts "
        f"uniform; it overfits one batch (loss {losses[-1]:.4f} after 20 steps)",
        f"{teacher.spec['name']} on {split.meta['data']}: top-1 {100 * ev['top1']:.1f}%, "
        f"top-5 {100 * ev['top5']:.1f}% on {ev['faces']} HR test faces"
        + (f", trained in {train_seconds:.0f} s" if train_seconds else ""),
        "tutorial 05 trains the 16x16 student and feeds this teacher LR faces; reuse it with "
        f"--teacher {args.teacher or t.path('teacher')}"
        + ("" if args.teacher or args.quick else " (train it with --arch teacher --epochs 40)"),
    ], exercises=[
        "Compute section 4's descriptor from dlib's full-precision tensors (read_dlib_dat on "
        "the .dat) instead of the uint8 ones: how far apart are the two, against the 0.6 "
        "threshold? And with the input normalisation forgotten (x / 255 only)?",
        "Feed dlib's teacher the LFW faces at 16 px upsampled to 150: how does the histogram "
        "of section 5 move, and what is left of the accuracy at 0.6? This is the gap the "
        "student of tutorial 05 has to close.",
        "Train our teacher with --epochs 4 and then --epochs 24 (quick mode): how do the train "
        "and val curves separate, and when does the best validation epoch stop moving?",
    ])


if __name__ == "__main__":
    main()
