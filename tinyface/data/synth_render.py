"""Numba kernels that draw synthetic faces (see :mod:`tinyface.data.synthetic`).

Two stages:

1. :func:`render_templates` draws each identity once, frontal and neutral, into a
   (5, T, T) float32 template at ``T = 2 * hr_size``: premultiplied RGB albedo, alpha
   (face, ears, neck, hair) and a signed "nose side" channel used for shading.
   Shapes are soft masks with a one-texel anti-aliased edge.
2. :func:`render_images` draws each image: inverse pose (shift, in-plane rotation,
   scale, a yaw approximated on the head ellipsoid), expression (smile, open mouth,
   raised brows, closing eyes, as local displacements of the sampling point), bilinear
   template lookup, Lambertian shading from a random light on the head ellipsoid,
   a random background, an optional occlusion and Gaussian sensor noise drawn from a
   counter-based hash (deterministic, thread-safe). Output is uint8 (B, 3, H, W).
"""
import math

import numba
import numpy as np
from numba import prange

from .synth_params import IDX, QDX

JIT = dict(cache=True, fastmath=True, nogil=True)

# identity and image columns, as module-level constants that numba folds in
A, B, CY, JAW = IDX["a"], IDX["b"], IDX["cy"], IDX["jaw"]
SKR, HAR, HL, HCURV = IDX["skin_r"], IDX["hair_r"], IDX["hairline"], IDX["hair_curv"]
STYLE, FAMP, FFREQ, FPH = IDX["style"], IDX["fringe_amp"], IDX["fringe_freq"], IDX["fringe_phase"]
YE, D, WE, HE, TILT = IDX["ye"], IDX["d"], IDX["we"], IDX["he"], IDX["tilt"]
RI, IRR = IDX["ri"], IDX["iris_r"]
YB, LB, TB, BANG = IDX["yb"], IDX["lb"], IDX["tb"], IDX["brow_ang"]
ARCH, BDX, BFREQ = IDX["arch"], IDX["brow_dx"], IDX["brow_freq"]
BTANG, BAMP, BPH = IDX["brow_tex_ang"], IDX["brow_amp"], IDX["brow_phase"]
YN, NW, YM, WM = IDX["yn"], IDX["nw"], IDX["ym"], IDX["wm"]
TU, TL, MC, LIPR = IDX["tu"], IDX["tl"], IDX["mcurv"], IDX["lip_r"]
BLUSH, BEARD = IDX["blush"], IDX["beard"]
HFREQ, HTANG, HPH = IDX["hair_freq"], IDX["hair_tex_ang"], IDX["hair_phase"]

TX, TY, ROT, SCALE, YAW = QDX["tx"], QDX["ty"], QDX["rot"], QDX["scale"], QDX["yaw"]
SMILE, OPEN, BRAISE, ECLOSE = QDX["smile"], QDX["open"], QDX["brow_raise"], QDX["eye_close"]
LX, LY, LZ, AMB, GAIN, GR = (QDX["lx"], QDX["ly"], QDX["lz"], QDX["ambient"], QDX["gain"],
                             QDX["gain_r"])
BGR, BGX, BGY = QDX["bg_r"], QDX["bg_gx"], QDX["bg_gy"]
BGW, BGF, BGP = QDX["bg_wave"], QDX["bg_freq"], QDX["bg_phase"]
OT, OX, OY, OW, OH = QDX["occ_type"], QDX["occ_x"], QDX["occ_y"], QDX["occ_w"], QDX["occ_h"]
ORR, NOISE = QDX["occ_r"], QDX["noise"]


@numba.njit(**JIT)
def _cov(dist, aa):
    """Coverage of a shape at signed distance ``dist`` (negative inside)."""
    c = 0.5 - dist / aa
    return 0.0 if c < 0.0 else (1.0 if c > 1.0 else c)


@numba.njit(**JIT)
def _ell(du, dv, ra, rb):
    """Approximate signed distance to an axis-aligned ellipse."""
    return (math.sqrt((du / ra) ** 2 + (dv / rb) ** 2) - 1.0) * min(ra, rb)


@numba.njit(**JIT)
def _mix(col, r, g, b, w):
    col[0] += (r - col[0]) * w
    col[1] += (g - col[1]) * w
    col[2] += (b - col[2]) * w


@numba.njit(**JIT)
def _texel(p, moles, freckles, wrinkles, scars, u, v, aa, col, out):
    """Template value at canonical (u, v): fills col (albedo RGB) and out[0:2] =
    (alpha, nose side)."""
    a, b, cy = p[A], p[B], p[CY]
    sr, sg, sb = p[SKR], p[SKR + 1], p[SKR + 2]
    dv = v - cy
    a_eff = a * (1.0 - p[JAW] * (dv / b) ** 2) if dv > 0 else a
    face = _cov(_ell(u, dv, a_eff, b), aa)
    neck = _cov(max(abs(u) - 0.42 * a, cy + 0.55 * b - v), aa)
    ears = _cov(_ell(abs(u) - a * 0.97, v - p[YE] - 0.06, 0.075, 0.13), aa)
    alpha = max(face, max(neck, ears))
    col[0], col[1], col[2] = sr * 0.85, sg * 0.85, sb * 0.85
    _mix(col, sr * 0.93, sg * 0.9, sb * 0.9, ears)
    _mix(col, sr, sg, sb, face)
    # blush and beard shadow (coarse)
    bl = p[BLUSH] * math.exp(-((abs(u) - 0.5 * a) ** 2 + (v - p[YN]) ** 2) / 0.02)
    col[0] += bl * 0.5
    col[1] -= bl * 0.3
    col[2] -= bl * 0.3
    if p[BEARD] > 0 and v > p[YN] + 0.02:
        w = p[BEARD] * face * min(1.0, (v - p[YN] - 0.02) / 0.08)
        w *= 0.7 + 0.3 * math.sin(u * 140.0 + v * 90.0) * math.sin(v * 150.0 - u * 60.0)
        _mix(col, p[HAR] * 0.8, p[HAR + 1] * 0.8, p[HAR + 2] * 0.8, w)
    # eyes and brows
    for s in (-1.0, 1.0):
        du, dvv = u - s * p[D], v - p[YE]
        ct, st = math.cos(s * p[TILT]), math.sin(s * p[TILT])
        eu, ev = ct * du + st * dvv, -st * du + ct * dvv
        if abs(eu) < p[WE] * 1.15 and abs(ev) < p[HE] * 1.6:
            t = min(1.0, (eu / p[WE]) ** 2)
            he = p[HE] * (1.0 - t)
            eye = _cov(max(abs(ev) - he, abs(eu) - p[WE]), aa)
            if eye > 0:
                _mix(col, 0.93, 0.91, 0.88, eye)
                ri = math.sqrt(eu * eu + ev * ev)
                iris = _cov(ri - p[RI], aa) * eye
                shade = 1.0 - 0.35 * ri / p[RI]
                _mix(col, p[IRR] * shade, p[IRR + 1] * shade, p[IRR + 2] * shade, iris)
                _mix(col, 0.03, 0.03, 0.03, _cov(ri - 0.45 * p[RI], aa) * eye)
            inside = _cov(abs(eu) - p[WE], aa)
            upper = _cov(abs(ev + he + 0.003) - 0.008, aa) * inside
            lower = _cov(abs(ev - he - 0.002) - 0.005, aa) * inside
            _mix(col, sr * 0.3, sg * 0.25, sb * 0.25, max(upper * 0.85, lower * 0.35))
        bu = u - s * (p[D] + p[BDX])
        bv = v - p[YB]
        cb, sb_ = math.cos(s * p[BANG]), math.sin(s * p[BANG])
        ru, rv = cb * bu - sb_ * bv, sb_ * bu + cb * bv
        t = min(1.0, (ru / p[LB]) ** 2)
        rv += p[ARCH] * (1.0 - t)
        taper = 1.0 - 0.55 * t * (1.0 if s * ru > 0 else 0.0)     # thinner at the tail
        brow = _cov(max(abs(ru) - p[LB], abs(rv) - p[TB] * taper), aa)
        if brow > 0:
            ang = p[BTANG] * s
            tex = 0.5 + 0.5 * math.sin(p[BFREQ] * (ru * math.cos(ang) + rv * math.sin(ang)) + p[BPH])
            k = 1.0 - p[BAMP] * tex
            _mix(col, p[HAR] * 0.6 * k, p[HAR + 1] * 0.6 * k, p[HAR + 2] * 0.6 * k, brow * 0.95)
    # nose: nostrils, tip shadow, side channel for shading
    for s in (-1.0, 1.0):
        n = _cov(_ell(u - s * 0.42 * p[NW], v - p[YN], 0.028, 0.016), aa)
        _mix(col, sr * 0.35, sg * 0.25, sb * 0.22, n * 0.9)
    tip = math.exp(-(u * u / (2 * p[NW] ** 2) + (v - p[YN] + 0.045) ** 2 / 0.0015))
    col[0] *= 1.0 + 0.06 * tip
    col[1] *= 1.0 + 0.06 * tip
    col[2] *= 1.0 + 0.06 * tip
    side = 0.0
    if v > p[YE] + 0.03 and v < p[YN]:
        side = math.copysign(math.exp(-((abs(u) - 0.45 * p[NW]) / 0.035) ** 2), u)
    # mouth
    mu = u / p[WM]
    if abs(mu) < 1.0:
        taper = math.sqrt(1.0 - mu * mu)
        vc = p[YM] - p[MC] * (1.0 - mu * mu)
        up = _cov(max(vc - p[TU] * taper - v, v - vc), aa)
        lo = _cov(max(v - vc - p[TL] * taper, vc - v), aa)
        _mix(col, p[LIPR], p[LIPR + 1], p[LIPR + 2], max(up, lo * 0.9))
        line = _cov(abs(v - vc) - 0.006, aa) * taper
        _mix(col, p[LIPR] * 0.4, p[LIPR + 1] * 0.3, p[LIPR + 2] * 0.3, line)
    # fine marks
    for k in range(moles.shape[0]):
        if moles[k, 3] > 0:
            m = _cov(math.sqrt((u - moles[k, 0]) ** 2 + (v - moles[k, 1]) ** 2) - moles[k, 2], aa)
            _mix(col, 0.22, 0.13, 0.09, m * moles[k, 3] * face)
    for k in range(freckles.shape[0]):
        if freckles[k, 3] > 0:
            r = math.sqrt((u - freckles[k, 0]) ** 2 + (v - freckles[k, 1]) ** 2)
            m = _cov(r - freckles[k, 2], aa)
            _mix(col, sr * 0.6, sg * 0.45, sb * 0.35, m * freckles[k, 3] * face)
    for k in range(wrinkles.shape[0]):
        if wrinkles[k, 4] > 0 and abs(u) < wrinkles[k, 2]:
            vw = wrinkles[k, 0] + wrinkles[k, 1] * u * u
            m = _cov(abs(v - vw) - wrinkles[k, 3], aa) * (1.0 - (u / wrinkles[k, 2]) ** 2)
            _mix(col, sr * 0.55, sg * 0.5, sb * 0.48, m * wrinkles[k, 4] * face)
    for k in range(scars.shape[0]):
        if scars[k, 5] != 0:
            du, dvv = u - scars[k, 0], v - scars[k, 1]
            ca, sa = math.cos(scars[k, 2]), math.sin(scars[k, 2])
            along, across = ca * du + sa * dvv, -sa * du + ca * dvv
            m = _cov(max(abs(along) - scars[k, 3], abs(across) - scars[k, 4]), aa)
            f = 1.0 + scars[k, 5]
            _mix(col, min(1.0, sr * f), min(1.0, sg * f * 0.95), min(1.0, sb * f * 0.95), m * face)
    # hair, on top
    st = p[STYLE]
    hl = p[HL] + p[HCURV] * u * u
    if st == 3.0:
        hl += 0.08 + p[FAMP] * math.sin(p[FFREQ] * u + p[FPH])
    elif st == 2.0:
        hl = -0.95 + 0.6 * u * u
    outer = _cov(_ell(u, v - cy + 0.03, a + 0.07, b + 0.07), aa)
    hair = outer * _cov(v - hl, aa)
    if st == 1.0:
        big = _cov(_ell(u, v - cy + 0.03, a + 0.15, b + 0.1), aa)
        hair = max(hair, big * _cov(max(0.86 * a - abs(u), v - cy - 0.5 * b), aa))
        hair = max(hair, big * _cov(max(0.8 * a - abs(u), v - p[YE] + 0.02), aa))
    elif st == 2.0:
        hair = max(hair, outer * _cov(max(0.82 * a - abs(u), v - p[YE] - 0.05), aa)
                   * _cov(p[YE] - 0.35 - v, aa))
    if hair > 0:
        ang = p[HTANG]
        tex = 1.0 + 0.18 * math.sin(p[HFREQ] * (u * math.cos(ang) + v * math.sin(ang)) + p[HPH])
        _mix(col, p[HAR] * tex, p[HAR + 1] * tex, p[HAR + 2] * tex, hair)
    alpha = max(alpha, hair)
    out[0] = alpha
    out[1] = side * face


@numba.njit(parallel=True, **JIT)
def render_templates(P, moles, freckles, wrinkles, scars, T):
    """Identity templates: (I, 5, T, T) float32 (premultiplied RGB, alpha, nose side)."""
    n = P.shape[0]
    out = np.zeros((n, 5, T, T), np.float32)
    aa = 2.0 / T
    for i in prange(n):
        col = np.zeros(3)
        tmp = np.zeros(2)
        for y in range(T):
            v = (y + 0.5) * aa - 1.0
            for x in range(T):
                u = (x + 0.5) * aa - 1.0
                _texel(P[i], moles[i], freckles[i], wrinkles[i], scars[i], u, v, aa, col, tmp)
                al = tmp[0]
                for c in range(3):
                    out[i, c, y, x] = min(max(col[c], 0.0), 1.0) * al
                out[i, 3, y, x] = al
                out[i, 4, y, x] = tmp[1]
    return out


_U64 = np.uint64


@numba.njit(**JIT)
def _gauss(seed, counter):
    """Approximately standard-normal number from a hash of (seed, counter)."""
    z = _U64(seed) * _U64(0x9E3779B97F4A7C15) + _U64(counter) * _U64(0xD1B54A32D192ED03)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    z = z ^ (z >> _U64(31))
    m = _U64(0xFFFF)
    s = float(z & m) + float((z >> _U64(16)) & m) + float((z >> _U64(32)) & m) + float(z >> _U64(48))
    return (s / 65536.0 - 2.0) * 1.7320508


@numba.njit(**JIT)
def _sample(tpl, su, sv, out):
    """Bilinear lookup of the 5 template channels at canonical (su, sv); zero outside."""
    T = tpl.shape[1]
    fx = (su + 1.0) * 0.5 * T - 0.5
    fy = (sv + 1.0) * 0.5 * T - 0.5
    x0, y0 = int(math.floor(fx)), int(math.floor(fy))
    wx, wy = fx - x0, fy - y0
    for c in range(5):
        out[c] = 0.0
    for j in range(2):
        yy = y0 + j
        if yy < 0 or yy >= T:
            continue
        wyy = wy if j else 1.0 - wy
        for i in range(2):
            xx = x0 + i
            if xx < 0 or xx >= T:
                continue
            w = wyy * (wx if i else 1.0 - wx)
            for c in range(5):
                out[c] += w * tpl[c, yy, xx]


@numba.njit(parallel=True, **JIT)
def render_images(templates, tid, P, Q, H, seed, first, out):
    """Draw images into ``out`` (B, 3, H, W) uint8. templates (I, 5, T, T) float32;
    tid (B,) int64 template of each image; P (B, N_ID) identity rows; Q (B, N_IMG);
    ``first``: global number of the first image (keys the noise)."""
    nb = Q.shape[0]
    aa = 2.0 / H
    for b in prange(nb):
        p, q, tpl = P[b], Q[b], templates[tid[b]]
        smp = np.zeros(5)
        col = np.zeros(3)
        a, bb, cy = p[A], p[B], p[CY]
        cr, sr, sc = math.cos(q[ROT]), math.sin(q[ROT]), q[SCALE]
        cyw, syw = math.cos(q[YAW]), math.sin(q[YAW])
        amb, gain = q[AMB], q[GAIN]
        ot = int(q[OT])
        op = q[OPEN]
        for y in range(H):
            py = (y + 0.5) * aa - 1.0
            for x in range(H):
                px = (x + 0.5) * aa - 1.0
                dx, dy = px - q[TX], py - q[TY]
                u = (cr * dx + sr * dy) / sc
                v = (-sr * dx + cr * dy) / sc
                nx, ny = u / a, (v - cy) / bb
                u += q[YAW] * math.sqrt(max(0.0, 1.0 - nx * nx - ny * ny)) * a
                # expression: local displacements of the sampling point
                du, dv = 0.0, 0.0
                for s in (-1.0, 1.0):
                    g = math.exp(-((u - s * p[WM]) ** 2 + (v - p[YM]) ** 2) / 0.0072)
                    dv += q[SMILE] * 0.03 * g
                    du -= s * q[SMILE] * 0.012 * g
                au = abs(u)
                dv += q[BRAISE] * 0.03 * math.exp(-((au - p[D]) ** 2 / 0.034 + (v - p[YB]) ** 2 / 0.0072))
                dv += (v - p[YE]) * q[ECLOSE] * 1.2 * math.exp(
                    -((au - p[D]) ** 2 / (2 * p[WE] ** 2) + (v - p[YE]) ** 2 / (4.5 * p[HE] ** 2)))
                if op > 0 and v > p[YM] - 0.01:
                    dv -= op * 0.05 * math.exp(-(u * u / (2.4 * p[WM] ** 2) + (v - p[YM] - 0.05) ** 2 / 0.016))
                su, sv = u + du, v + dv
                _sample(tpl, su, sv, smp)
                alpha = min(smp[3], 1.0)
                # shading: head ellipsoid normal + nose side, yaw, in-plane rotation
                nx, ny = su / a, (sv - cy) / bb
                r2 = nx * nx + ny * ny
                if r2 > 0.9:
                    nx, ny, r2 = nx * math.sqrt(0.9 / r2), ny * math.sqrt(0.9 / r2), 0.9
                nz = math.sqrt(1.0 - r2)
                nx += 0.8 * smp[4]
                nx, nz = nx * cyw - nz * syw, nx * syw + nz * cyw
                nx, ny = cr * nx - sr * ny, sr * nx + cr * ny
                nn = math.sqrt(nx * nx + ny * ny + nz * nz)
                lam = max(0.0, (nx * q[LX] + ny * q[LY] + nz * q[LZ]) / nn)
                shade = (amb + (1.0 - amb) * 1.2 * lam) * gain
                for c in range(3):
                    col[c] = smp[c] * shade * q[GR + c]
                if op > 0:
                    m = _cov(_ell(su, sv - p[YM] - op * 0.02, p[WM] * 0.7, op * 0.035 + 1e-4), aa) * alpha
                    _mix(col, 0.25 * shade, 0.06 * shade, 0.06 * shade, m)
                bgk = 1.0 + q[BGX] * px + q[BGY] * py + q[BGW] * math.sin(q[BGF] * (px + 0.6 * py) + q[BGP])
                for c in range(3):
                    col[c] += (1.0 - alpha) * q[BGR + c] * bgk
                if ot == 1:    # sunglasses, following the face
                    lens = _cov(_ell(au - p[D], v - p[YE], p[WE] * 1.5, p[HE] * 2.4), aa / sc)
                    bridge = _cov(max(abs(v - p[YE] + p[HE]) - 0.012, au - p[D] + p[WE]), aa / sc)
                    k = 0.25 + 0.2 * math.exp(-((u + 0.3 * p[D]) ** 2 + (v - p[YE] + 0.02) ** 2) / 0.002)
                    _mix(col, q[ORR] * k, q[ORR + 1] * k, q[ORR + 2] * k, max(lens, bridge) * 0.97)
                elif ot == 2:  # face mask / scarf over the lower face
                    dvm = v - cy
                    m = _cov(max(_ell(u, dvm, a * 1.05, bb * 1.04), p[YN] - 0.02 - v), aa / sc)
                    m = max(m, _cov(max(abs(u) - 0.5 * a, cy + 0.5 * bb - v), aa / sc))
                    k = shade * (1.0 + 0.04 * math.sin(60.0 * v))
                    _mix(col, q[ORR] * k, q[ORR + 1] * k, q[ORR + 2] * k, m)
                elif ot == 3:  # an object in front of the camera
                    m = _cov(max(abs(px - q[OX]) - q[OW], abs(py - q[OY]) - q[OH]), aa)
                    k = 0.85 + 0.15 * math.sin(25.0 * (px - py))
                    _mix(col, q[ORR] * k, q[ORR + 1] * k, q[ORR + 2] * k, m)
                base = (((first + b) * H + y) * H + x) * 3
                for c in range(3):
                    val = col[c] + q[NOISE] * _gauss(seed, base + c)
                    val = val * 255.0 + 0.5
                    out[b, c, y, x] = 0 if val < 0 else (255 if val > 255 else np.uint8(val))
