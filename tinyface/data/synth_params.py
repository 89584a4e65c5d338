"""Random parameters of synthetic faces: identities (coarse + fine) and nuisances.

Coordinates are canonical face coordinates: u to the right, v downwards, the image
spanning [-1, 1] x [-1, 1] at the neutral pose (1 unit = hr_size / 2 pixels, so at
64 px one pixel is 0.031 units and at 16 px it is 0.125 units).

Identities come in *families* of ``family_size`` (think siblings): the coarse
geometry and colours (head, skin, hair, eyes, brows, nose, mouth) are drawn per
family, then perturbed slightly per identity (``family_spread`` of each range). The
fine marks -- moles, freckles, forehead wrinkles, a scar, iris colour, the hair-stroke
texture of the brows and of the hair -- are drawn per identity and are 0.5-2 px wide
at 64 px, so they vanish at 16 px. Telling family members apart therefore needs
high resolution, which is what makes low-resolution recognition genuinely harder.
"""
from __future__ import annotations

import numpy as np

# ---- identity parameter columns (P matrix) ----------------------------------------
ID_COLS = ["a", "b", "cy", "jaw", "skin_r", "skin_g", "skin_b", "hair_r", "hair_g",
           "hair_b", "hairline", "hair_curv", "style", "fringe_amp", "fringe_freq",
           "fringe_phase", "ye", "d", "we", "he", "tilt", "ri", "iris_r", "iris_g",
           "iris_b", "yb", "lb", "tb", "brow_ang", "arch", "brow_dx", "brow_freq",
           "brow_tex_ang", "brow_amp", "brow_phase", "yn", "nw", "ym", "wm", "tu", "tl",
           "mcurv", "lip_r", "lip_g", "lip_b", "blush", "beard", "hair_freq",
           "hair_tex_ang", "hair_phase"]
IDX = {k: i for i, k in enumerate(ID_COLS)}
N_ID = len(ID_COLS)
N_MOLES, N_FRECKLES, N_WRINKLES = 4, 30, 3

# ---- per-image nuisance columns (Q matrix) -----------------------------------------
IMG_COLS = ["tx", "ty", "rot", "scale", "yaw", "smile", "open", "brow_raise", "eye_close",
            "lx", "ly", "lz", "ambient", "gain", "gain_r", "gain_g", "gain_b", "bg_r",
            "bg_g", "bg_b", "bg_gx", "bg_gy", "bg_wave", "bg_freq", "bg_phase",
            "occ_type", "occ_x", "occ_y", "occ_w", "occ_h", "occ_r", "occ_g", "occ_b",
            "noise"]
QDX = {k: i for i, k in enumerate(IMG_COLS)}
N_IMG = len(IMG_COLS)

SKIN_LIGHT = np.array([0.96, 0.80, 0.69])
SKIN_DARK = np.array([0.34, 0.22, 0.15])
HAIR_PALETTE = np.array([[0.07, 0.06, 0.05], [0.22, 0.14, 0.08], [0.42, 0.28, 0.15],
                         [0.82, 0.70, 0.45], [0.58, 0.24, 0.10], [0.62, 0.62, 0.62]])
IRIS_PALETTE = np.array([[0.33, 0.19, 0.09], [0.12, 0.08, 0.06], [0.25, 0.48, 0.80],
                         [0.25, 0.55, 0.30], [0.55, 0.60, 0.66], [0.55, 0.42, 0.18]])

# coarse, family-level parameters: (name, low, high)
_COARSE = [("a", 0.56, 0.68), ("b", 0.72, 0.84), ("cy", 0.02, 0.10), ("jaw", 0.0, 0.35),
           ("hairline", -0.62, -0.36), ("hair_curv", 0.0, 0.4), ("fringe_amp", 0.0, 0.05),
           ("fringe_freq", 6.0, 14.0), ("fringe_phase", 0.0, 6.283),
           ("ye", -0.13, -0.01), ("d", 0.20, 0.30), ("we", 0.085, 0.12), ("he", 0.035, 0.055),
           ("tilt", -0.15, 0.15), ("gap", 0.075, 0.13), ("lb", 0.09, 0.14),
           ("tb", 0.015, 0.035), ("brow_ang", -0.2, 0.25), ("arch", 0.0, 0.04),
           ("brow_dx", -0.02, 0.03), ("nose_len", 0.20, 0.30), ("nw", 0.07, 0.12),
           ("mouth_gap", 0.12, 0.20), ("wm", 0.13, 0.22), ("tu", 0.02, 0.04),
           ("tl", 0.025, 0.05), ("mcurv", -0.02, 0.03), ("blush", 0.0, 0.10),
           ("skin_t", 0.0, 1.0)]


def sample_identities(n: int, rng: np.random.Generator, family_size: int = 4,
                      family_spread: float = 0.02):
    """Draw ``n`` identities.

    Returns ``(P, moles, freckles, wrinkles, scars)``: P (n, N_ID) float64 (columns
    :data:`ID_COLS`); moles (n, 4, 4) [u, v, radius, strength]; freckles (n, 30, 4);
    wrinkles (n, 3, 5) [v, curvature, half length, width, strength]; scars (n, 1, 6)
    [u, v, angle, half length, width, signed strength]. Unused marks have strength 0.
    """
    family_size = max(1, int(family_size))
    nf = -(-n // family_size)
    fam = np.arange(n) // family_size
    P = np.zeros((n, N_ID))
    c = {}
    for name, lo, hi in _COARSE:
        base = rng.uniform(lo, hi, nf)[fam]
        jitter = rng.normal(0.0, family_spread * (hi - lo), n)
        c[name] = np.clip(base + jitter, lo, hi)
    for k in ("a", "b", "cy", "jaw", "hairline", "hair_curv", "fringe_amp", "fringe_freq",
              "fringe_phase", "ye", "d", "we", "he", "tilt", "lb", "tb", "brow_ang", "arch",
              "brow_dx", "nw", "wm", "tu", "tl", "mcurv", "blush"):
        P[:, IDX[k]] = c[k]
    skin = (1 - c["skin_t"])[:, None] * SKIN_LIGHT + c["skin_t"][:, None] * SKIN_DARK
    skin = skin + rng.normal(0, 0.025, (nf, 3))[fam] + rng.normal(0, 0.01, (n, 3))
    P[:, IDX["skin_r"]:IDX["skin_b"] + 1] = np.clip(skin, 0.05, 1.0)
    hair = HAIR_PALETTE[rng.integers(0, len(HAIR_PALETTE), nf)][fam]
    hair = hair + rng.normal(0, 0.04, (nf, 3))[fam] + rng.normal(0, 0.015, (n, 3))
    P[:, IDX["hair_r"]:IDX["hair_b"] + 1] = np.clip(hair, 0.02, 0.95)
    P[:, IDX["style"]] = rng.choice(4, nf, p=[0.45, 0.25, 0.1, 0.2])[fam]
    P[:, IDX["yb"]] = c["ye"] - c["gap"]
    P[:, IDX["yn"]] = c["ye"] + c["nose_len"]
    P[:, IDX["ym"]] = P[:, IDX["yn"]] + c["mouth_gap"]
    lip = skin * np.array([0.82, 0.55, 0.55]) + rng.normal(0, 0.02, (n, 3))
    P[:, IDX["lip_r"]:IDX["lip_b"] + 1] = np.clip(lip, 0.02, 1.0)
    P[:, IDX["beard"]] = np.where(rng.random(nf) < 0.2, rng.uniform(0.2, 0.5, nf), 0.0)[fam]

    # ---- fine, per-identity marks ----
    P[:, IDX["ri"]] = P[:, IDX["he"]] * rng.uniform(0.6, 0.8, n)
    iris = IRIS_PALETTE[rng.integers(0, len(IRIS_PALETTE), n)] + rng.normal(0, 0.03, (n, 3))
    P[:, IDX["iris_r"]:IDX["iris_b"] + 1] = np.clip(iris, 0.02, 1.0)
    P[:, IDX["brow_freq"]] = rng.uniform(70.0, 120.0, n)
    P[:, IDX["brow_tex_ang"]] = rng.uniform(-0.9, 0.9, n)
    P[:, IDX["brow_amp"]] = rng.uniform(0.25, 0.6, n)
    P[:, IDX["brow_phase"]] = rng.uniform(0, 2 * np.pi, n)
    P[:, IDX["hair_freq"]] = rng.uniform(60.0, 110.0, n)
    P[:, IDX["hair_tex_ang"]] = rng.uniform(-1.2, 1.2, n)
    P[:, IDX["hair_phase"]] = rng.uniform(0, 2 * np.pi, n)

    a, b, cy = c["a"], c["b"], c["cy"]
    moles = np.zeros((n, N_MOLES, 4))
    nm = rng.integers(1, N_MOLES + 1, n)
    moles[..., 0] = rng.uniform(-0.75, 0.75, (n, N_MOLES)) * a[:, None]
    moles[..., 1] = rng.uniform(P[:, IDX["hairline"]] + 0.08, cy + 0.6 * b, (N_MOLES, n)).T
    moles[..., 2] = rng.uniform(0.018, 0.03, (n, N_MOLES))
    moles[..., 3] = rng.uniform(0.55, 0.9, (n, N_MOLES)) * (np.arange(N_MOLES) < nm[:, None])

    freckles = np.zeros((n, N_FRECKLES, 4))
    nfr = np.where(rng.random(n) < 0.4, rng.integers(12, N_FRECKLES + 1, n), 0)
    side = rng.choice([-1.0, 1.0], (n, N_FRECKLES))
    freckles[..., 0] = side * rng.uniform(0.06, 0.5, (n, N_FRECKLES))
    freckles[..., 1] = (c["ye"] + 0.06)[:, None] + rng.uniform(0, 0.22, (n, N_FRECKLES))
    freckles[..., 2] = rng.uniform(0.011, 0.017, (n, N_FRECKLES))
    freckles[..., 3] = (rng.uniform(0.35, 0.6, (n, N_FRECKLES))
                        * (np.arange(N_FRECKLES) < nfr[:, None]))

    wrinkles = np.zeros((n, N_WRINKLES, 5))
    nw = np.where(rng.random(n) < 0.55, rng.integers(1, N_WRINKLES + 1, n), 0)
    top, bot = P[:, IDX["hairline"]] + 0.07, P[:, IDX["yb"]] - 0.06
    frac = np.sort(rng.uniform(0, 1, (n, N_WRINKLES)), axis=1)
    wrinkles[..., 0] = top[:, None] + frac * np.maximum(bot - top, 0.02)[:, None]
    wrinkles[..., 1] = rng.uniform(-0.25, 0.25, (n, N_WRINKLES))
    wrinkles[..., 2] = rng.uniform(0.12, 0.32, (n, N_WRINKLES))
    wrinkles[..., 3] = rng.uniform(0.007, 0.012, (n, N_WRINKLES))
    wrinkles[..., 4] = rng.uniform(0.25, 0.45, (n, N_WRINKLES)) * (np.arange(N_WRINKLES) < nw[:, None])

    scars = np.zeros((n, 1, 6))
    has = rng.random(n) < 0.35
    scars[:, 0, 0] = rng.uniform(-0.6, 0.6, n) * a
    scars[:, 0, 1] = rng.uniform(c["ye"] + 0.05, cy + 0.55 * b)
    scars[:, 0, 2] = rng.uniform(0, np.pi, n)
    scars[:, 0, 3] = rng.uniform(0.05, 0.11, n)
    scars[:, 0, 4] = rng.uniform(0.007, 0.012, n)
    scars[:, 0, 5] = rng.choice([-0.4, 0.3], n) * has
    return P, moles, freckles, wrinkles, scars


def sample_nuisance(n: int, rng: np.random.Generator, nuisance: float = 0.5,
                    occlusion_prob: float = 0.15, noise_max: float = 8.0):
    """Draw per-image nuisances: Q (n, N_IMG) float64, columns :data:`IMG_COLS`.

    ``nuisance`` scales pose, expression and illumination ranges (0.5 = default,
    1.0 = strong, 0.0 = frontal, neutral, evenly lit). Occlusion types: 0 none, 1 sunglasses,
    2 face mask / scarf, 3 a random patch. ``noise`` is a per-pixel std in 0..255 units.
    """
    s = float(nuisance)
    Q = np.zeros((n, N_IMG))
    q = lambda k: QDX[k]  # noqa: E731
    Q[:, q("tx")] = np.clip(rng.normal(0, 0.045 * s, n), -0.1, 0.1)
    Q[:, q("ty")] = np.clip(rng.normal(0, 0.045 * s, n), -0.1, 0.1)
    Q[:, q("rot")] = np.clip(rng.normal(0, 0.13 * s, n), -0.3, 0.3)
    Q[:, q("scale")] = np.exp(rng.uniform(-0.09, 0.09, n) * s)
    Q[:, q("yaw")] = np.clip(rng.normal(0, 0.12 * s, n), -0.3, 0.3)
    Q[:, q("smile")] = rng.uniform(-0.4, 1.0, n) * s
    Q[:, q("open")] = np.clip(rng.normal(0, 0.6, n), 0, 1) * s * (rng.random(n) < 0.5)
    Q[:, q("brow_raise")] = np.clip(rng.normal(0, 0.6, n), -1, 1) * s
    Q[:, q("eye_close")] = np.where(rng.random(n) < 0.15, rng.uniform(0.5, 0.9, n),
                                    rng.uniform(0, 0.3, n)) * s
    ang = rng.uniform(-1.0, 1.0, n) * 1.1 * s
    elev = rng.uniform(-0.5, 0.35, n) * s
    Q[:, q("lx")] = np.sin(ang) * np.cos(elev)
    Q[:, q("ly")] = np.sin(elev)
    Q[:, q("lz")] = np.cos(ang) * np.cos(elev)
    Q[:, q("ambient")] = 1.0 - rng.uniform(0.45, 0.7, n) * min(s, 1.0) if s > 0 else 1.0
    Q[:, q("gain")] = rng.uniform(0.8, 1.2, n) ** s
    Q[:, q("gain_r"):q("gain_b") + 1] = np.exp(rng.normal(0, 0.06 * s, (n, 3)))
    Q[:, q("bg_r"):q("bg_b") + 1] = rng.uniform(0.1, 0.9, (n, 3))
    Q[:, q("bg_gx")] = rng.normal(0, 0.15, n)
    Q[:, q("bg_gy")] = rng.normal(0, 0.15, n)
    Q[:, q("bg_wave")] = rng.uniform(0, 0.12, n)
    Q[:, q("bg_freq")] = rng.uniform(2, 10, n)
    Q[:, q("bg_phase")] = rng.uniform(0, 2 * np.pi, n)
    occ = rng.random(n) < occlusion_prob
    Q[:, q("occ_type")] = np.where(occ, rng.choice([1, 2, 3], n, p=[0.35, 0.3, 0.35]), 0)
    Q[:, q("occ_x")] = rng.uniform(-0.7, 0.7, n)
    Q[:, q("occ_y")] = rng.uniform(-0.6, 0.7, n)
    Q[:, q("occ_w")] = rng.uniform(0.2, 0.4, n)
    Q[:, q("occ_h")] = rng.uniform(0.2, 0.4, n)
    Q[:, q("occ_r"):q("occ_b") + 1] = rng.uniform(0.05, 0.95, (n, 3))
    Q[:, q("noise")] = rng.uniform(1.0, max(noise_max, 1.0), n) / 255.0
    return Q
