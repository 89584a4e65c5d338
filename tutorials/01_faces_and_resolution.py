"""Tutorial 1: faces at high and low resolution, and why 16x16 pixels is hard.

The whole paper (Ge et al., TIP 2019, Sections I and III) starts from one fact: a
surveillance camera sees a face at 16x16 pixels, while face CNNs are trained on
sharp faces of 64 px and more. This script loads the faces (HR, 64x64), makes the LR
faces the way every later stage does (``tinyface.data.degrade``: a Gaussian anti-alias
blur with sigma = (s - 1) / 2 for a downscale factor s, then area downsampling to 8,
12, 16, 24 or 32 px), shows them side by side (the code path of ``python -m tinyface
data show``), and measures what is lost, with no network at all: the luminance power
spectrum at each size, the share of the face's detail energy that survives, and how
well faces are identified from raw pixels (1-nearest neighbour) and from a fixed
filter bank (``tinyface.data.probe``) at each size.

Run it:

    python tutorials/01_faces_and_resolution.py --quick   # synthetic, 20 x 12 faces, ~5 s
    python tutorials/01_faces_and_resolution.py           # LFW-158 (LFW3D), ~1.5 min on 2 cores

The full mode uses LFW when ``--data-root`` is given or ``../shared/data`` exists
(otherwise 100 synthetic identities x 20 images); the filter-bank probe is its slow
part (about 45 s on LFW-158 with one thread).
"""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinyface import tutorial  # noqa: E402
from tinyface.data import (LR_SIZES, antialias_sigma, degrade, identification_split,  # noqa: E402
                           load_dataset, montage, pick_faces, split_datasets)
from tinyface.data import (detail_energy_kept, nearest_neighbour_accuracy,  # noqa: E402
                           radial_power_spectrum, resolution_gap)

HR = 64
F_MIN = 4          # "detail": 4 cycles per face and finer (eyes, nostrils, mouth corners)


def extra(p):
    p.add_argument("--spectrum-faces", type=int, default=1000,
                   help="at most this many training faces enter the power spectra")


args = tutorial.parse_args(1, __doc__, extra=extra)
t = tutorial.Tutorial(args)

# ----------------------------------------------------------------------------------
t.section("1. Toy checks: the degradation on images we can reason about by hand")
print("  anti-alias sigma = (s - 1) / 2 HR pixels, s = 64 / LR size:")
for s in (64,) + LR_SIZES[::-1]:
    print(f"    {HR:>2} -> {s:>2} px: s = {HR / s:5.3f}, sigma = {antialias_sigma(HR, s):.4f}")
t.check("sigma for 64 -> 16 (s = 4: (4 - 1) / 2)", antialias_sigma(HR, 16), equals=1.5)
t.check("sigma for 64 -> 8 (s = 8: (8 - 1) / 2)", antialias_sigma(HR, 8), equals=3.5)
t.check("sigma for 64 -> 64 (no downscaling, no blur)", antialias_sigma(HR, 64), equals=0.0)

const = np.full((2, 3, HR, HR), 123, np.uint8)                      # (2, 3, 64, 64)
worst = 0
for s in LR_SIZES:
    lr = degrade(const, s)                                          # (2, 3, s, s)
    back = degrade(const, s, upsample_to=HR)                        # (2, 3, 64, 64)
    assert lr.shape == (2, 3, s, s) and back.shape == const.shape, (lr.shape, back.shape)
    worst = max(worst, int(np.abs(lr.astype(int) - 123).max()), int(np.abs(back.astype(int) - 123).max()))
print(f"  a constant grey image (value 123), degraded to {LR_SIZES} px and back: shapes "
      f"(2, 3, s, s) and (2, 3, 64, 64)")
t.check("largest change of a pixel of a constant image", worst, equals=0)

# A cosine of amplitude A holds A**2 / 2 of power, all at its own frequency.
A, k = 60.0, 8
stripes = 128 + A * np.cos(2 * np.pi * k * np.arange(HR) / HR)      # (64,) k cycles per face
stripes = np.broadcast_to(stripes, (1, 3, HR, HR))                  # (1, 3, 64, 64) vertical bars
freqs, power = radial_power_spectrum(stripes, window=False)         # (R,), (R,)
print(f"  vertical stripes, {k} cycles per image, amplitude {A:.0f}: power in ring {k} = "
      f"{power[k]:.1f} (A^2 / 2 = {A * A / 2:.1f}); rings 0..{freqs[-1]}")
t.check(f"|power[{k}] - A^2/2|", abs(power[k] - A * A / 2), below=1e-9)

# Aliasing: 12 cycles cannot exist on a 16-px grid (its Nyquist is 8); without the
# blur they fold back to 16 - 12 = 4 cycles, a pattern that was never in the face.
bars = np.rint(np.broadcast_to(128 + A * np.cos(2 * np.pi * 12 * np.arange(HR) / HR),
                               (1, 3, HR, HR))).astype(np.uint8)
_, p12 = radial_power_spectrum(bars, window=False)
_, raw = radial_power_spectrum(degrade(bars, 16, blur=False, upsample_to=HR), window=False)
_, aa = radial_power_spectrum(degrade(bars, 16, upsample_to=HR), window=False)
print(f"  12-cycle stripes at 16 px: without blur {raw.sum() / p12.sum():.1%} of the power "
      f"survives, at {int(np.argmax(raw))} cycles; with the blur {aa.sum() / p12.sum():.2%}")
t.check("ring where 12 unblurred cycles land at 16 px (16 - 12)", int(np.argmax(raw)), equals=4)
t.check("aliased power share with the anti-alias blur", float(aa.sum() / p12.sum()), below=0.02)

# ----------------------------------------------------------------------------------
t.section("2. The faces: HR and every LR size")
name, root = tutorial.choose_data(args)
if name == "lfw":
    full = load_dataset("lfw", root=root, hr_size=HR, cache_dir=args.cache)
    print(f"  LFW: {len(full)} images of {full.n_identities} identities; keeping identities "
          f"with >= 10 images (LFW-158)")
else:
    n_id, per = (20, 12) if args.quick else (100, 20)
    full = load_dataset("synthetic", hr_size=HR, seed=args.seed, n_identities=n_id,
                        images_per_identity=per)
train_rows, test_rows = identification_split(full, min_images=10, train_fraction=0.7,
                                             seed=args.seed)       # (n,) int64 rows of full
rows = np.concatenate([train_rows, test_rows])
ds = full.subset(rows, relabel=True)                                # the kept identities
train, test = split_datasets(full, train_rows, test_rows)          # relabelled as ds
K = train.n_identities
print(f"  {name}: {K} identities, {len(train)} train / {len(test)} test faces (70/30 per identity)")
print(f"  HR images {ds.images.shape} {ds.images.dtype}, labels {ds.labels.shape}")
t.check("HR image shape", ds.images.shape[1:], equals=(3, HR, HR))
for s in LR_SIZES:
    lr = degrade(ds.images[:4], s)
    print(f"    LR {s:>2} px: {lr.shape}  ({s * s * 3:>5} numbers per face, "
          f"{s * s * 3 / (HR * HR * 3):.1%} of HR)")
t.check("16 px LR shape", degrade(ds.images[:4], 16).shape, equals=(4, 3, 16, 16))

picked = pick_faces(ds, n=6, seed=args.seed)                        # rows of 6 identities
path = montage(ds.images[picked], t.path("montage.png"), lr_sizes=LR_SIZES,
               names=[ds.names[ds.labels[r]] for r in picked], method="area",
               title=f"{name}: HR {HR}px and LR (area)")
t.saved(str(path))

# ----------------------------------------------------------------------------------
t.section("3. What the LR sizes keep: power spectra")
spec_imgs = train.images[:args.spectrum_faces]                      # (n, 3, 64, 64)
spec = detail_energy_kept(spec_imgs, LR_SIZES, f_min=F_MIN)
hr_p = spec["hr"]
f = spec["freqs"]
print(f"  {len(spec_imgs)} faces; HR detail share (energy at >= {F_MIN} cycles per face): "
      f"{hr_p[f >= F_MIN].sum() / hr_p[f >= 1].sum():.1%} of the non-constant energy")
print("    size  Nyquist  sigma   detail energy kept")
for s in LR_SIZES:
    print(f"    {s:>3}px  {s / 2:>5.0f}   {antialias_sigma(HR, s):5.2f}   {spec['kept'][s]:8.1%}")
kept = [spec["kept"][s] for s in LR_SIZES]
t.check("detail energy kept grows with the LR size", bool(np.all(np.diff(kept) > 0)), equals=True)
t.check("detail energy kept at 16 px (the student's input)", spec["kept"][16], below=0.5)

# ----------------------------------------------------------------------------------
t.section("4. What the LR sizes keep: identities")
print(f"  1-NN on raw pixels (cosine, {len(train)} gallery faces) and the fixed filter-bank "
      f"probe (ridge; its own 50/50 split, LR faces upsampled to {HR} px)")
nn_acc = {}
for s in (HR,) + LR_SIZES:
    tr = train.images if s == HR else degrade(train.images, s)      # (Ntr, 3, s, s)
    te = test.images if s == HR else degrade(test.images, s)        # (Nte, 3, s, s)
    nn_acc[s] = nearest_neighbour_accuracy(tr, train.labels, te, test.labels)
probe = resolution_gap(ds, LR_SIZES)                                # {size: accuracy}
chance = 1.0 / K
print(f"    size   1-NN pixels   probe    (chance {chance:.1%})")
for s in (HR,) + LR_SIZES[::-1]:
    print(f"    {s:>3}px   {nn_acc[s]:9.1%}   {probe[s]:6.1%}")
print(f"  From HR to 16 px, 1-NN loses {100 * (nn_acc[HR] - nn_acc[16]):.1f} points and the probe "
      f"{100 * (probe[HR] - probe[16]):.1f}; to 8 px, {100 * (nn_acc[HR] - nn_acc[8]):.1f} and "
      f"{100 * (probe[HR] - probe[8]):.1f}.\n"
      "  Raw pixels match on coarse things (head shape, skin, hair, pose, light, background),\n"
      "  which a small face keeps; the probe's filters also read fine detail (marks, the shape\n"
      "  of eyes and mouth), which goes first. Below 16 px even the coarse structure goes.")
t.check("1-NN at HR over chance (ratio)", nn_acc[HR] / chance, above=2.0)
t.check("probe accuracy lost from HR to 8 px (points)", 100 * (probe[HR] - probe[8]), above=0.0)

# ----------------------------------------------------------------------------------
t.section("5. Figures and numbers")
fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.7))
ax = axes[0]
ax.loglog(f[1:], hr_p[1:], "k-", lw=2, label=f"HR {HR}px")
for i, s in enumerate(LR_SIZES):
    ax.loglog(f[1:], np.maximum(spec["lr"][s][1:], 1e-6), color=f"C{i}", label=f"{s}px")
    ax.axvline(s / 2, color=f"C{i}", ls=":", lw=1)
ax.set_ylim(hr_p[1:].max() * 1e-6, hr_p[1:].max() * 3)
ax.set_xlabel("spatial frequency (cycles per face)")
ax.set_ylabel("luminance power")
ax.set_title("power spectrum (dotted: LR Nyquist)")
ax.legend(fontsize=7)
ax = axes[1]
ax.plot(LR_SIZES, [100 * v for v in kept], "o-")
ax.set_xticks(LR_SIZES)
ax.set_xlabel("LR size (px)")
ax.set_ylabel(f"% of HR energy at >= {F_MIN} cycles")
ax.set_title("detail energy that survives")
ax.set_ylim(0, 100)
ax = axes[2]
sizes = list(LR_SIZES) + [HR]
ax.plot(sizes, [100 * nn_acc[s] for s in sizes], "o-", label="1-NN, raw pixels")
ax.plot(sizes, [100 * probe[s] for s in sizes], "s-", label="filter-bank probe")
ax.axhline(100 * chance, color="gray", ls="--", label="chance")
ax.set_xscale("log", base=2)
ax.set_xticks(sizes)
ax.set_xticklabels([str(s) for s in sizes])
ax.set_xlabel("face size (px)")
ax.set_ylabel("top-1 identification (%)")
ax.set_title(f"{name}: {K} identities")
ax.legend(fontsize=7)
t.save_figure(fig, "resolution.png", dpi=80)

results = {"data": name, "identities": K, "train": len(train), "test": len(test),
           "sigma": {s: antialias_sigma(HR, s) for s in LR_SIZES},
           "detail_energy_kept": spec["kept"], "nn_pixels": nn_acc, "probe": probe,
           "chance": chance}
with open(t.path("resolution.json"), "w") as fh:
    json.dump(results, fh, indent=1)
t.saved(t.path("resolution.json"))

t.finish(
    summary=[
        "degrade() blurs with sigma = (s-1)/2 and downsamples: a constant face stays "
        "constant, stripes above the LR Nyquist frequency are removed instead of aliased",
        f"an s-px face holds nothing above s/2 cycles per face: at 16 px only "
        f"{spec['kept'][16]:.0%} of the HR detail energy (>= {F_MIN} cycles) survives "
        f"({spec['kept'][8]:.0%} at 8 px, {spec['kept'][32]:.0%} at 32 px)",
        f"identification ({name}, {K} identities): raw-pixel 1-NN {nn_acc[HR]:.0%} at HR and "
        f"{nn_acc[16]:.0%} at 16 px; the filter-bank probe {probe[HR]:.0%} and {probe[16]:.0%}",
        "the student (later tutorials) must recover identity from the coarse structure that "
        "is left; the teacher, which saw the details, guides it (distillation)",
    ],
    exercises=[
        "Degrade with method='bicubic' instead of 'area' (and with blur=False): how do the "
        "spectra and the 16 px accuracies change? Where does aliasing show up?",
        "Add sensor noise (degrade(..., noise_std=8)) or JPEG (jpeg_quality=30) at 16 px: "
        "which of the two measures (detail energy, 1-NN accuracy) notices it more, and why?",
        "Replace raw pixels by their mean-removed, per-image normalised version before the "
        "1-NN: does the HR-LR gap grow or shrink? What does that say about what pixels match on?",
    ])
