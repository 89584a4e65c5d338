"""Tutorial 10: a zoo of distillation methods, each loss by hand, then side by side.

Selective distillation (tutorials 06-07) regresses the teacher's features on chosen faces.
The field has many other ways to pass a teacher's knowledge to a student; tinyface has
seven of them as fine-tuning variants (``tinyface.distill.METHODS``), each adding one term
to the student's loss, ``L = CE + weight * loss_m``, at its published default weight:

- SP (Tung & Mori, ICCV 2019): the batch's similarities, row-normalised Gram matrices;
- RKD (Park et al., CVPR 2019): the batch's distances (over their mean) and angles;
- PKT (Passalis & Tefas, ECCV 2018): each face's distribution of cosine affinities;
- FSIM (feature cosine, after F-SKD): 1 - cos between A phi_s and phi_t, face by face;
- CRD (Tian et al., ICLR 2020): InfoNCE, each face's teacher against other faces';
- DKD (Zhao et al., CVPR 2022): Hinton's KD split into target and non-target parts;
- AT (Zagoruyko & Komodakis, ICLR 2017): where the last feature map is active.

SP, RKD and PKT compare relations within the batch, so the student's 64-d embedding is
compared with the teacher's 256-d one directly; FSIM and CRD read the training-only
adapter's output A phi_s; DKD reads logits; AT the student's map before its global pool.
Section 1 computes every loss by hand on a batch of three faces and checks it against
the library (``tinyface.reference.kd_maps``, ``kd_relations``, ``kd_logits``), with
what each promises; section 2 checks their gradients; section 3 draws what each
compares; section 4 fine-tunes one student per method from one scratch student.

Run it:
    python tutorials/10_distillation_zoo.py --quick       # about 30 s, synthetic faces
    python tutorials/10_distillation_zoo.py               # larger synthetic set, 3-5 min
    python tutorials/10_distillation_zoo.py --results runs/zoo-lfw-dlib/results.json \
        runs/zoo-lfw-own/results.json           # the two teacher regimes side by side

Quick: 16 synthetic identities x 20 faces (32 px HR, 16 px LR), a teacher-lite trained
15 epochs, a scratch student 12 epochs, then 6 fine-tuning epochs per method at batch
32. Full: 40 identities x 30 faces, 30 + 30 epochs, 20 fine-tuning epochs at batch 64
(PKT's default weight assumes 64). ``--results PATH`` skips the training and plots the
rows of an ablation's results.json instead (``python -m tinyface ablation --variants
none,sp,rkd,...``: the LFW run of docs/distillation_zoo.md), or this tutorial's own
OUT/zoo_results.json, which has the same layout; given several, it also draws their
students' rows side by side (zoo_compared.png), labelled by each run's teacher. The zoo's faces are always synthetic
(``--data-root`` is not read): the LFW zoo is the ablation's, plotted with ``--results``.
"""
import json
from itertools import permutations

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinyface import tutorial  # noqa: E402
from tinyface.atomic import write_json  # noqa: E402
from tinyface.data import load_split  # noqa: E402
from tinyface.distill import (METHOD_VARIANTS, METHODS, DistillConfig, extract_bank,  # noqa: E402
                              finetune, finetune_config)
from tinyface.eval import plots  # noqa: E402
from tinyface.experiments import (ROW_NAMES, method_weight_item, read_results,  # noqa: E402
                                  results_label, train_stream)
from tinyface.gradcheck import numerical_gradient  # noqa: E402
from tinyface.reference import kd_logits, kd_maps, kd_relations  # noqa: E402
from tinyface.train import LR_MAX_SHIFT, TrainConfig  # noqa: E402

QUICK = dict(faces={"n_identities": 16, "images_per_identity": 20, "family_size": 1},
             teacher=15, scratch=12, finetune=6, batch=32)
FULL = dict(faces={"n_identities": 40, "images_per_identity": 30, "family_size": 1},
            teacher=30, scratch=30, finetune=20, batch=64)


def options(p):
    p.add_argument("--results", metavar="PATH", nargs="+", help="plot the rows of an "
                   "ablation's results.json (or OUT/zoo_results.json) instead of training "
                   "the zoo; several: their students' rows side by side")
    p.add_argument("--epochs", type=int, help="fine-tuning epochs (default: 6 quick, 20 full)")
    p.add_argument("--method-weights", metavar="M=W,...", default="",
                   help="term weights, e.g. sp=30,pkt=5 (unnamed: each method's default)")


args = tutorial.parse_args(10, __doc__, extra=options)
t = tutorial.Tutorial(args)
np.set_printoptions(precision=3, suppress=True)
try:                                               # --method-weights sp=30,pkt=5
    mw = dict(method_weight_item(item) for item in args.method_weights.split(",") if item)
except ValueError as e:
    raise SystemExit(f"--method-weights {args.method_weights!r}: {e}")


def rel(a, b):
    """Norm-wise relative difference ||a - b|| / (||a|| + ||b||); 0 when both are 0."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def huber(r):                                      # smooth L1 with delta 1 (RKD's l_delta)
    return 0.5 * r * r if abs(r) < 1 else abs(r) - 0.5


# ------------------------------------------------------------ 1. each loss by hand
t.section("1. Seven losses by hand on a batch of three faces")
print("The methods as tinyface.distill.METHODS records them (reads, default weight, paper):")
for m in METHODS.values():
    print(f"  {m.name:4s}  {m.reads:9s}  {m.default_weight:7.4g}  {m.citation}")
rng = np.random.default_rng(args.seed)
N, T, TAU = 3, 4.0, 0.07                          # faces; DKD's temperature; CRD's (RepDistiller)
es = np.round(rng.normal(size=(N, 4)), 1)          # phi_s: student embeddings (3, Ds = 4)
et = np.round(rng.normal(size=(N, 6)), 1)          # phi_t: teacher embeddings (3, Dt = 6)
A = np.round(rng.normal(size=(6, 4)) / 2, 1)       # the adapter's weight (Dt, Ds)
ps = es @ A.T                                      # A phi_s: (3, 6), what FSIM and CRD read
bank = np.vstack([et, np.round(rng.normal(size=(2, 6)), 1)])   # (5, 6): rows 0-2 are et
zs, zt = (np.round(rng.normal(size=(N, 4)) * 2, 1) for _ in "st")  # logits (3, K = 4)
labels = np.array([0, 2, 1])
fs = np.round(rng.normal(size=(N, 2, 2, 2)), 1)    # student map (3, C = 2, 2, 2)
ft = np.round(rng.normal(size=(N, 3, 4, 4)), 1)    # teacher map (3, C = 3, 4, 4)
print(f"phi_s {es.shape}:\n{es}\nphi_t {et.shape}:\n{et}\nA phi_s {ps.shape}:\n{ps}\n"
      f"CRD's bank {bank.shape}: phi_t and two more faces\nlogits z_s:\n{zs}\nz_t:\n{zt}\n"
      f"labels {labels}\nstudent map {fs.shape}:\n{fs.reshape(N, -1)}\nteacher map "
      f"{ft.shape}, its channel mean of squares:\n{(ft ** 2).mean(1).reshape(N, -1)}")
print("(hand and library are both float64: expect differences near 1e-16)")
lib = {}                                           # name -> library loss on the toy batch


def compare(name, hand, value, bound=1e-12):
    lib[name] = value
    print(f"{name}: by hand {hand:.6g}, library {value:.6g}")
    t.check(f"{name}: |hand - library| / |library|", rel(hand, value), below=bound)


# SP, Tung & Mori 2019, eqs. 2-4: G = F F^T, G~[i,:] = G[i,:] / ||G[i,:]||_2,
#   L_SP = ||G~_t - G~_s||_F^2 / b^2
def gram_rows(F):
    return unit(F @ F.T)                           # (3, 3): G[i, j] = <f_i, f_j>, rows to 1
Gs, Gt = gram_rows(es), gram_rows(et)
compare("SP", np.sum((Gs - Gt) ** 2) / N ** 2, kd_maps.sp_loss(es, et)[0])


# RKD, Park et al. 2019, eqs. 3-7: psi_D(i, j) = ||t_i - t_j|| / mu (mu: the mean distance
# over the pairs), psi_A(i, j, k) = <e_ij, e_kj> with e_ij = (t_i - t_j) / ||t_i - t_j||,
# the cosine of the angle at vertex j; L = sum l_delta(psi(t) - psi(s)), l_delta smooth L1
PAIRS = [(i, j) for i in range(N) for j in range(N) if i != j]     # 6 ordered pairs
TRIPLETS = list(permutations(range(N), 3))                          # 6 triplets (i, j, k)


def distances(e):
    d = np.array([[np.linalg.norm(e[i] - e[j]) for j in range(N)] for i in range(N)])
    return d / np.mean([d[p] for p in PAIRS])                   # (3, 3), mean off-diagonal 1


def angles(e):
    return np.array([unit(e[i] - e[j]) @ unit(e[k] - e[j]) for i, j, k in TRIPLETS])


Ds_, Dt_, Cs, Ct = distances(es), distances(et), angles(es), angles(et)
dist_hand = np.mean([huber(Ds_[p] - Dt_[p]) for p in PAIRS])
angle_hand = np.mean([huber(c) for c in Cs - Ct])
compare("RKD distance", dist_hand, kd_relations.rkd_distance_loss(es, et)[0])
compare("RKD angle", angle_hand, kd_relations.rkd_angle_loss(es, et)[0])
compare("RKD (25 distance + 50 angle, the paper's)", 25 * dist_hand + 50 * angle_hand,
        kd_relations.rkd_loss(es, et)[0])


# PKT, Passalis & Tefas 2018, eqs. 8-11 with the cosine kernel K(a, b) = (cos(a, b) + 1) / 2:
# p_j|i = K(x_i, x_j) / sum_k K(x_i, x_k), L = sum_i sum_j p^t_j|i log(p^t_j|i / p^s_j|i)
# (as the authors' code: the diagonal kept, eps = 1e-7 on the norms and in the logs; / N)
def affinities(e, eps=1e-7):
    z = e / (np.linalg.norm(e, axis=1, keepdims=True) + eps)
    S = (z @ z.T + 1) / 2                          # (3, 3), in [0, 1]
    return S / S.sum(axis=1, keepdims=True)        # each face's distribution over the batch
Ps, Pt = affinities(es), affinities(et)
compare("PKT", np.sum(Pt * (np.log(Pt + 1e-7) - np.log(Ps + 1e-7))) / N,
        kd_relations.pkt_loss(es, et)[0])

# FSIM: mean over faces of 1 - cos(A phi_s_i, phi_t_i)
cos = np.array([ps[i] @ et[i] / (np.linalg.norm(ps[i]) * np.linalg.norm(et[i])) for i in range(N)])
compare("FSIM", np.mean(1 - cos), kd_maps.fsim_loss(ps, et)[0])

# CRD, Tian et al. 2020, as InfoNCE: with z = unit(A phi_s), b = unit(bank rows),
# L = -1/N sum_i log( exp(<z_i, b_i>/tau) / sum_{c in {i} + neg(i)} exp(<z_i, b_c>/tau) )
neg = np.array([[c for c in range(len(bank)) if c != i] for i in range(N)])   # (3, 4)
crd_logits = np.array([[unit(ps[i]) @ unit(bank[c]) for c in [i, *neg[i]]]
                       for i in range(N)]) / TAU   # (3, 5): column 0 is the face's own teacher
crd_hand = -np.mean([row[0] - np.log(np.exp(row).sum()) for row in crd_logits])
compare("CRD", crd_hand, kd_relations.crd_loss(ps, bank, np.arange(N), neg, tau=TAU)[0])


# DKD, Zhao et al. 2022, eqs. 1-7: b = [p_y, 1 - p_y], q = p_{c != y} / (1 - p_y);
# KD = TCKD + (1 - p^t_y) NCKD, DKD = T^2 (alpha TCKD + beta NCKD), alpha 1, beta 8 (their code)
def softmax(u):
    e = np.exp(u - u.max())
    return e / e.sum()


def kl(p, q):
    return float(np.sum(p * np.log(p / q)))


tckd, nckd, kd, pty = (np.zeros(N) for _ in range(4))
for n, y in enumerate(labels):
    p_s, p_t = softmax(zs[n] / T), softmax(zt[n] / T)
    tckd[n] = kl(np.array([p_t[y], 1 - p_t[y]]), np.array([p_s[y], 1 - p_s[y]]))
    nckd[n] = kl(np.delete(p_t, y) / (1 - p_t[y]), np.delete(p_s, y) / (1 - p_s[y]))
    kd[n], pty[n] = kl(p_t, p_s), p_t[y]
print(f"per face: TCKD {tckd}, NCKD {nckd}, Hinton's KL {kd}")
t.check("max |KD - (TCKD + (1 - p^t_y) NCKD)| (Zhao et al.'s eq. 7)",
        float(np.abs(kd - (tckd + (1 - pty) * nckd)).max()), below=1e-12)
compare("DKD", T * T * np.mean(tckd + 8 * nckd), kd_logits.dkd_loss(zs, zt, labels, T=T)[0])


# AT, Zagoruyko & Komodakis 2017, eq. 2: Q = vec(sum_c A_c^2), L = ||Q_s/||Q_s|| - Q_t/||Q_t|| ||;
# squared and averaged over faces and positions (RepDistiller's), with the channel mean
# (the normalisation cancels C); the teacher's 4 x 4 energy is pooled over 2 x 2 windows
a_s = unit((fs ** 2).mean(axis=1).reshape(N, -1))                          # (3, 4)
a_t = unit((ft ** 2).mean(axis=1).reshape(N, 2, 2, 2, 2).mean(axis=(2, 4)).reshape(N, -1))
rows_t = kd_maps.teacher_attention(ft, (2, 2))     # (3, 4) float32, as the bank stores them
t.check("teacher attention rows: |hand - library| / |library| (float32 rows)", rel(a_t, rows_t),
        below=1e-6)
compare("AT", np.mean((a_s - a_t) ** 2), kd_maps.attention_rows_loss(fs, rows_t)[0], bound=1e-6)

print("\nWhat each promises:")
zero = {"SP": kd_maps.sp_loss(et, et), "RKD": kd_relations.rkd_loss(et, et),
        "PKT": kd_relations.pkt_loss(et, et), "FSIM": kd_maps.fsim_loss(et, et),
        "DKD": kd_logits.dkd_loss(zt, zt, labels, T=T),
        "AT": kd_maps.attention_rows_loss(ft, kd_maps.teacher_attention(ft, (4, 4)))}
for name, (value, _) in zero.items():
    t.check(f"{name} of the teacher against itself", abs(value), below=1e-9)
scaled = {"SP": lambda s: kd_maps.sp_loss(s * es, et), "RKD distance":
          lambda s: kd_relations.rkd_distance_loss(s * es, et),
          "RKD angle": lambda s: kd_relations.rkd_angle_loss(s * es, et),
          "PKT": lambda s: kd_relations.pkt_loss(s * es, et),
          "FSIM": lambda s: kd_maps.fsim_loss(s * ps, et),
          "AT": lambda s: kd_maps.attention_rows_loss(s * fs, rows_t)}
for name, f in scaled.items():
    t.check(f"{name}: |loss(10 x student) - loss(student)| / loss", rel(f(10.0)[0], f(1.0)[0]),
            below=1e-6)
crd_self = kd_relations.crd_loss(et, bank, np.arange(N), neg, tau=TAU)[0]
print(f"CRD is not built to reach 0: with A phi_s = phi_t it is still {crd_self:.3g} (the "
      f"negatives keep a share of each softmax), against {lib['CRD']:.3g} for A phi_s; DKD is "
      f"not scale-free: logits x 2 give {kd_logits.dkd_loss(2 * zs, zt, labels, T=T)[0]:.3g}, "
      f"not {lib['DKD']:.3g}")
t.check("CRD(phi_t) < CRD(A phi_s)", crd_self - lib["CRD"], below=0.0)

# ------------------------------------------------------------ 2. the gradients
t.section("2. Each library gradient against central differences (float64, h = 1e-6)")
grads = {"SP": (lambda x: kd_maps.sp_loss(x, et), es),
         "RKD": (lambda x: kd_relations.rkd_loss(x, et), es),
         "PKT": (lambda x: kd_relations.pkt_loss(x, et), es),
         "FSIM": (lambda x: kd_maps.fsim_loss(x, et), ps),
         "CRD": (lambda x: kd_relations.crd_loss(x, bank, np.arange(N), neg, tau=TAU), ps),
         "DKD": (lambda x: kd_logits.dkd_loss(x, zt, labels, T=T), zs),
         "AT": (lambda x: kd_maps.attention_rows_loss(x, rows_t), fs)}
for name, (f, x0) in grads.items():
    x = x0.copy()
    numeric = numerical_gradient(lambda: np.array(f(x)[0]), x, np.array(1.0), h=1e-6)
    t.check(f"{name}: ||d - numeric|| / (||d|| + ||numeric||) for d of {x0.shape}",
            rel(f(x0)[1], numeric), below=1e-6)

# ------------------------------------------------------------ 3. pictures
t.section("3. What each method compares on the three faces")
fig, axes = plt.subplots(2, 4, figsize=(15, 6.6))


def pair(ax, s, te, title):
    """Student (left) and teacher (right) matrices side by side, values written in."""
    img = s if te is None else np.hstack([s, np.full((len(s), 1), np.nan), te])
    ax.imshow(img, cmap="viridis")
    mid = (np.nanmin(img) + np.nanmax(img)) / 2
    for (r, c), v in np.ndenumerate(img):
        if np.isfinite(v):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="k" if v > mid else "w")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks(range(len(s)))
    ax.set_ylabel("face i", fontsize=8)


def bars(ax, groups, names, ticks, title):
    w = 0.8 / len(groups)
    for g, (vals, name) in enumerate(zip(groups, names)):
        ax.bar(np.arange(len(vals)) + (g - (len(groups) - 1) / 2) * w, vals, w, label=name)
    ax.set_xticks(range(len(ticks)))
    ax.set_xticklabels(ticks, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)


pair(axes[0, 0], Gs, Gt, f"SP: row-normalised Gram, student | teacher\nloss {lib['SP']:.3g}")
pair(axes[0, 1], Ds_, Dt_, f"RKD: distance / mean distance\ndistance loss "
     f"{lib['RKD distance']:.3g}")
one = [n for n, (i, j, k) in enumerate(TRIPLETS) if i < k]      # ijk and kji: one angle
bars(axes[0, 2], [Cs[one], Ct[one]], ["student", "teacher"],
     [f"at {j} ({i}{j}{k})" for i, j, k in np.array(TRIPLETS)[one]],
     f"RKD: cos of the angle at each face\nangle loss {lib['RKD angle']:.3g}")
pair(axes[0, 3], Ps, Pt, f"PKT: affinity distributions p(j|i)\nloss {lib['PKT']:.3g}")
bars(axes[1, 0], [cos], ["cos(A phi_s, phi_t)"], ["face 0", "face 1", "face 2"],
     f"FSIM: cos per face, loss = mean of 1 - cos\nloss {lib['FSIM']:.3g}")
axes[1, 0].set_ylim(-1, 1)
pair(axes[1, 1], crd_logits, None, f"CRD: <z_i, b_c> / tau, own teacher first\n"
     f"loss {lib['CRD']:.3g}")
axes[1, 1].set_xticks(range(5), ["own"] + ["other"] * 4, fontsize=8)
bars(axes[1, 2], [T * T * tckd, T * T * 8 * nckd], ["T^2 TCKD", "T^2 beta NCKD"],
     [f"face {n}, y={y}" for n, y in enumerate(labels)], f"DKD: target | non-target parts\n"
     f"loss {lib['DKD']:.3g}")
mosaic = np.full((5, 8), np.nan)                   # rows: student, teacher; a 2 x 2 per face
for n in range(N):
    mosaic[0:2, 3 * n:3 * n + 2] = a_s[n].reshape(2, 2)
    mosaic[3:5, 3 * n:3 * n + 2] = a_t[n].reshape(2, 2)
axes[1, 3].imshow(mosaic, cmap="magma")
axes[1, 3].set_title(f"AT: attention of faces 0-2, student (top), teacher\nloss {lib['AT']:.3g}",
                     fontsize=9)
axes[1, 3].axis("off")
t.save_figure(fig, "what_each_compares.png", dpi=80)

# ------------------------------------------------------------ 4. the zoo
t.section("4. The zoo: one scratch student, fine-tuned once per method")
first = {}                                         # row -> its epoch-1 term / CE
if args.results:
    try:
        loaded = [read_results(path) for path in args.results]
    except ValueError as e:
        raise SystemExit(f"--results {e}")
    rows, data = loaded[0]["rows"], results_label(loaded[0])
    print(f"the table of {args.results[0]} ({data}; {loaded[0].get('describe', '')}):")
else:
    cfg = QUICK if args.quick else FULL
    epochs = args.epochs or cfg["finetune"]
    quiet = lambda m: None  # noqa: E731
    split = load_split("synthetic", hr_size=32, lr_size=16, seed=args.seed,
                       cache_dir=args.cache, synthetic=cfg["faces"])
    print(f"{split.describe()}; teacher-lite {cfg['teacher']} epochs, scratch student "
          f"{cfg['scratch']}, fine-tuning {epochs}, batch {cfg['batch']}")
    teacher = train_stream(split, "teacher", TrainConfig(
        epochs=cfg["teacher"], batch_size=cfg["batch"], lr=0.02, seed=args.seed, log_every=0),
        t.path("teacher"), arch="teacher-lite", log=quiet)
    scratch = train_stream(split, "student", TrainConfig(
        epochs=cfg["scratch"], batch_size=cfg["batch"], lr=0.03, weight_decay=3e-3,
        seed=args.seed, max_shift=LR_MAX_SHIFT, log_every=0), t.path("scratch"), log=quiet)
    student = scratch["model"]
    bank = extract_bank(teacher["model"], split.hr_train, attention_size=student.map_shape[1:])
    print(f"teacher at HR {100 * teacher['metrics']['top1']:.1f}% top-1, scratch student "
          f"{100 * scratch['metrics']['top1']:.1f}%; bank {bank.embeddings.shape} features, "
          f"{bank.logits.shape} logits, {bank.attention.shape} attention rows (student map "
          f"{student.map_shape})")
    rows, sizes = {ROW_NAMES["scratch"]: scratch["metrics"]["top1"]}, []
    print("\n  variant   weight   top-1 %   epoch 1: CE, weight x term   s")
    for v in ("none",) + METHOD_VARIANTS:
        dc = DistillConfig(v, method_weight=mw.get(v))
        res = finetune(student, split, bank, None, dc, finetune_config(
            epochs, args.seed, batch_size=cfg["batch"], weight_decay=3e-3), log=quiet)
        h0, top1 = res["history"][0], res["metrics"]["top1"]
        rows[ROW_NAMES[v]] = top1
        sizes.append(res["model"].nbytes())
        if dc.weight is not None:                  # what the term weighs against CE
            first[ROW_NAMES[v]] = dc.weight * h0["method"] / h0["ce"]
        term = "" if dc.weight is None else f"{dc.weight * h0['method']:.3g}"
        print(f"  {v:7s}  {dc.weight or 0:7.4g}  {100 * top1:7.1f}   {h0['ce']:6.3f}, {term:>10s}"
              f"   {res['metrics']['seconds']:5.1f}")
    rows = {k: {"top1": {"mean": v, "std": 0.0, "values": [v]}} for k, v in rows.items()}
    data = f"synthetic faces, {split.num_classes} identities"
    t.saved(write_json(t.path("zoo_results.json"), {"data": data, "rows": rows,
                                                    "describe": split.describe()}))
    t.check("fine-tuned students whose deployed bytes differ from the scratch student's",
            sum(b != student.nbytes() for b in sizes), equals=0)
percent = lambda rows: {name: (100 * r["top1"]["mean"], 100 * r["top1"]["std"])  # noqa: E731
                        for name, r in rows.items()}
top = percent(rows)
print("\n  row                                        top-1 %")
for name, (m, s) in top.items():
    print(f"  {name:42s} {m:5.1f}" + (f" +- {s:.1f}" if s else ""))
t.saved(plots.plot_bars(top, t.path("zoo_top1.png"), ylabel="top-1 identification (%)",
                        title=f"distillation zoo, {data}"))
if args.results and len(args.results) > 1:        # the students' rows, run against run
    students = {}                                  # a run's label -> its students' rows
    for path, r in zip(args.results, loaded):
        label = results_label(r) if results_label(r) not in students else path
        students[label] = {name.removeprefix("student + "): cell for name, cell
                           in percent(r["rows"]).items() if name.startswith("student")}
    t.saved(plots.plot_compared(students, t.path("zoo_compared.png"),
                                xlabel="top-1 identification (%), mean ± std over seeds",
                                title="the students, one marker per run"))

best = max((n for n in top if not n.startswith("teacher")), key=lambda n: top[n][0])
base = top.get(ROW_NAMES["none"], (None,))[0]
below = [n for n in top if base is not None and n.startswith("student +") and top[n][0] < base]
t.finish(
    summary=[
        "SP, RKD and PKT compare relations inside the batch (similarities, distances, angles, "
        "affinity distributions), so student and teacher widths may differ; FSIM and CRD "
        "compare A phi_s with phi_t face by face; DKD splits KD into TCKD + beta NCKD; AT "
        "compares where the last map is active.",
        "Every loss written from its paper's equation matches the library to float64 "
        "rounding (AT to float32, its stored teacher rows), and every library gradient "
        "matches central differences.",
        "SP, RKD, PKT, FSIM, DKD and AT are 0 for a student equal to its teacher; SP, RKD, "
        "PKT, FSIM and AT ignore the student's scale; CRD keeps a floor set by the "
        "negatives, and DKD depends on the logits' scale.",
        f"Zoo on {data}: best row {best} ({top[best][0]:.1f}%)" + (
            "" if base is None else f"; CE fine-tuning only {base:.1f}%, below it: " + (
                ", ".join(n.split("+ ")[1] + (f" (term {first[n]:.1f}x CE at epoch 1)"
                                              if n in first else "") for n in below)
                or "none")) + ". The published weights were set for other networks and "
        "batches" + ("" if args.results else f"; one test face is {100 / len(split.y_test):.1f}"
                     f" points here") + ".",
    ],
    exercises=[
        "Lower each method's weight until its epoch-1 term is about the size of CE "
        "(--method-weights sp=30,pkt=5,dkd=0.1): which methods then beat CE fine-tuning?",
        "In section 1, give SP, RKD, PKT and FSIM a student that is the teacher rotated "
        "(et @ Q, Q orthogonal from np.linalg.qr): which losses are 0, and why can FSIM "
        "without its adapter not be?",
        "Give CRD more negatives (a larger bank in section 1, or CRD_NEGATIVES in "
        "tinyface.distill.methods): how do its floor at A phi_s = phi_t and its loss change?",
    ])
