"""Distillation losses on features and maps on the GPU: SP, FSIM and AT.

Same maths and signatures as ``tinyface.reference.kd_maps`` (``sp_loss``, ``fsim_loss``,
``attention_rows_loss``; the equations are in its docstrings), whose argument checks
are reused. The student's side is a float32 DeviceTensor; the teacher's (a constant) may
be a host array, copied up explicitly as float32. Every kernel computes in float64, as
the reference does, and writes the gradient in float32; each thread's per-row loss goes
to an (N,) float64 array, and only those N numbers come back, summed on the host into
the Python float every loss returns. The gradient stays on the GPU.

- SP (Tung & Mori 2019): ``gram_rows_kernel`` (one thread per row i: row i of
  ``G = F F^T``, then divided by its norm; once per side), ``sp_rows_kernel`` (one
  thread per row: the squared difference and ``dQ = (dG - G <G, dG>) / r``),
  ``sp_grad_kernel`` (one thread per element of F: ``dF = (dQ + dQ^T) F``);
- FSIM: ``fsim_kernel``, one thread per face (norms, cosine, its gradient);
- AT (Zagoruyko & Komodakis 2017): ``attention_rows_kernel`` (one thread per face: the
  channel energy, its norm, the squared difference, ``dq``), ``attention_grad_kernel``
  (one thread per element of the map: ``df = dq 2 f / C``).

Batches are small (N <= 256, D <= 256): a thread walks its whole row, no shared memory,
no ``syncthreads``. Kernels call no device functions and no ``min``/``max`` builtins
(see ``tinyface.cuda.losses`` for why).
"""
import math

import numpy as np
from numba import cuda

from tinyface.cuda.arrays import as_device, empty, is_device_array, to_device, zeros
from tinyface.cuda.launch import TPB, blocks
from tinyface.cuda.losses import check_regression
from tinyface.reference.normalize import DEFAULT_EPS


# --------------------------------------------------------------------------- SP
@cuda.jit
def gram_rows_kernel(F, eps, G, r):
    """F: (N, D) float32; eps: float64; G: (N, N) float64 (out); r: (N,) float64 (out).
    ``G[i] = (F F^T)[i] / r[i]`` with ``r[i] = max(||(F F^T)[i]||, eps)``.
    grid: blocks(N); block: TPB; thread i makes row i."""
    i = cuda.grid(1)
    N, D = F.shape
    if i < N:                                     # bounds guard: the last block overhangs
        ss = 0.0
        for j in range(N):
            g = 0.0
            for d in range(D):
                g += np.float64(F[i, d]) * np.float64(F[j, d])
            G[i, j] = g
            ss += g * g
        norm = math.sqrt(ss)
        if norm < eps:
            norm = eps
        r[i] = norm
        for j in range(N):
            G[i, j] = G[i, j] / norm


@cuda.jit
def sp_rows_kernel(Gs, Gt, r, scale, row_loss, dQ):
    """Gs, Gt, dQ (out): (N, N) float64; r, row_loss (out): (N,) float64; scale: 1 / N**2.
    ``row_loss[i] = ||Gs[i] - Gt[i]||**2``; with ``dG = 2 scale (Gs - Gt)``,
    ``dQ[i] = (dG[i] - Gs[i] <Gs[i], dG[i]>) / r[i]``. grid: blocks(N); block: TPB."""
    i = cuda.grid(1)
    N = Gs.shape[0]
    if i < N:
        acc = 0.0
        radial = 0.0
        for j in range(N):
            diff = Gs[i, j] - Gt[i, j]
            acc += diff * diff
            dQ[i, j] = 2.0 * scale * diff                 # dG, parked
            radial += Gs[i, j] * dQ[i, j]
        row_loss[i] = acc
        for j in range(N):
            dQ[i, j] = (dQ[i, j] - Gs[i, j] * radial) / r[i]


@cuda.jit
def sp_grad_kernel(dQ, F, dF):
    """dQ: (N, N) float64; F, dF (out): (N, D) float32.
    ``dF[i, d] = sum_j (dQ[i, j] + dQ[j, i]) F[j, d]``. grid: blocks(N * D); block: TPB."""
    k = cuda.grid(1)
    N, D = F.shape
    if k < N * D:
        i = k // D
        d = k - i * D
        acc = 0.0
        for j in range(N):
            acc += (dQ[i, j] + dQ[j, i]) * np.float64(F[j, d])
        dF[i, d] = acc


# ------------------------------------------------------------------------- FSIM
@cuda.jit
def fsim_kernel(p, t, w, eps, total, row_loss, dp):
    """p, t, dp (out): (N, D) float32; w: (N,) float64; eps, total (= sum w): float64;
    row_loss (out): (N,) float64. With ``u = p / max(||p||, eps)``, ``v = t / max(||t||,
    eps)``, ``cos = <u, v>``: ``row_loss[n] = w[n] (1 - cos)`` and, with
    ``dy = -w[n] v / total``, ``dp[n] = (dy - u <u, dy>) / max(||p||, eps)``.
    grid: blocks(N); block: TPB."""
    n = cuda.grid(1)
    N, D = p.shape
    if n < N:
        sp = 0.0
        st = 0.0
        for d in range(D):
            a = np.float64(p[n, d])
            b = np.float64(t[n, d])
            sp += a * a
            st += b * b
        rp = math.sqrt(sp)
        rt = math.sqrt(st)
        if rp < eps:
            rp = eps
        if rt < eps:
            rt = eps
        cos = 0.0
        radial = 0.0                                      # <u, dy>
        c = -w[n] / total
        for d in range(D):
            u = np.float64(p[n, d]) / rp
            v = np.float64(t[n, d]) / rt
            cos += u * v
            radial += u * (c * v)
        row_loss[n] = w[n] * (1.0 - cos)
        for d in range(D):
            u = np.float64(p[n, d]) / rp
            dp[n, d] = (c * (np.float64(t[n, d]) / rt) - u * radial) / rp


# --------------------------------------------------------------------------- AT
@cuda.jit
def attention_rows_kernel(f, a_t, eps, scale, dq, row_loss):
    """f: (N, C, P) float32; a_t: (N, P) float32; eps, scale (1 / (N P)): float64;
    dq (out): (N, P) float64; row_loss (out): (N,) float64.
    ``q = mean_c f**2``, ``a = q / max(||q||, eps)``, ``row_loss[n] = ||a - a_t[n]||**2``;
    with ``da = 2 scale (a - a_t)``, ``dq = (da - a <a, da>) / max(||q||, eps)``.
    grid: blocks(N); block: TPB; thread n takes face n."""
    n = cuda.grid(1)
    N, C, P = f.shape
    if n < N:
        ss = 0.0
        for p in range(P):
            q = 0.0
            for c in range(C):
                v = np.float64(f[n, c, p])
                q += v * v
            q = q / C
            dq[n, p] = q                                  # q, parked
            ss += q * q
        r = math.sqrt(ss)
        if r < eps:
            r = eps
        acc = 0.0
        radial = 0.0
        for p in range(P):
            a = dq[n, p] / r
            diff = a - np.float64(a_t[n, p])
            acc += diff * diff
            radial += a * (2.0 * scale * diff)
        row_loss[n] = acc
        for p in range(P):
            a = dq[n, p] / r
            da = 2.0 * scale * (a - np.float64(a_t[n, p]))
            dq[n, p] = (da - a * radial) / r


@cuda.jit
def attention_grad_kernel(f, dq, df):
    """f, df (out): (N, C, P) float32; dq: (N, P) float64.
    ``df[n, c, p] = dq[n, p] * 2 f[n, c, p] / C``. grid: blocks(N * C * P); block: TPB."""
    k = cuda.grid(1)
    N, C, P = f.shape
    if k < N * C * P:
        n = k // (C * P)
        rest = k - n * C * P
        c = rest // P
        p = rest - c * P
        df[n, c, p] = dq[n, p] * 2.0 * np.float64(f[n, c, p]) / C


# ----------------------------------------------------------------------- the ops
def as_constant(a, name, dtype=np.float32):
    """The teacher's side, a constant: a device array as it is, a host one copied up."""
    if is_device_array(a):
        return as_device(a, name, dtype=dtype)
    return to_device(np.asarray(a), dtype=dtype)


def host_sum(row_loss):
    """The one copy down: an (N,) float64 device array summed on the host."""
    return float(row_loss.copy_to_host().sum())


def sp_loss(fs, ft):
    """Similarity-preserving distillation on the GPU (``reference.kd_maps.sp_loss``).

    fs: (N, ...) float32 DeviceTensor, the student's features (flattened per face);
    ft: (N, ...) float, the teacher's (host or device, a constant).
    Returns ``(loss, dfs)``: ``||G_s - G_t||_F**2 / N**2`` and a DeviceTensor of fs's shape.
    """
    fs = as_device(fs, "fs")
    ft_shape = tuple(np.shape(ft))
    if fs.ndim < 1 or len(ft_shape) < 1 or fs.shape[0] != ft_shape[0]:
        raise ValueError(f"student features {fs.shape} and teacher features {ft_shape} "
                         f"must be (N, ...) with one batch size N")
    N = fs.shape[0]
    if N == 0:
        return 0.0, zeros(fs.shape)
    F_s = fs.reshape(N, -1)                                              # (N, Ds)
    F_t = as_constant(ft, "ft").reshape(N, -1)                           # (N, Dt)
    G_s = cuda.device_array((N, N), np.float64)
    G_t = cuda.device_array((N, N), np.float64)
    r_s = cuda.device_array(N, np.float64)
    r_t = cuda.device_array(N, np.float64)
    gram_rows_kernel[blocks(N), TPB](F_s.data, DEFAULT_EPS, G_s, r_s)
    gram_rows_kernel[blocks(N), TPB](F_t.data, DEFAULT_EPS, G_t, r_t)
    dQ = cuda.device_array((N, N), np.float64)
    row_loss = cuda.device_array(N, np.float64)
    sp_rows_kernel[blocks(N), TPB](G_s, G_t, r_s, 1.0 / (N * N), row_loss, dQ)
    dF = empty(F_s.shape)
    sp_grad_kernel[blocks(F_s.size), TPB](dQ, F_s.data, dF.data)
    return host_sum(row_loss) / (N * N), dF.reshape(fs.shape)


def fsim_loss(pred, target, weights=None):
    """One minus the cosine per face on the GPU (``reference.kd_maps.fsim_loss``).

    pred: (N, D) float32 DeviceTensor, the student's features; target: (N, D), the
    teacher's (host or device, a constant); weights: as ``losses.check_regression``.
    Returns ``(loss, dpred)``; all-zero weights give 0 and a zero gradient.
    """
    pred, w = check_regression(pred, target, weights)
    N = pred.shape[0]
    total = float(w.sum())
    if total == 0:
        return 0.0, zeros(pred.shape)
    target = as_constant(target, "target")
    row_loss = cuda.device_array(N, np.float64)
    dpred = empty(pred.shape)
    fsim_kernel[blocks(N), TPB](pred.data, target.data, to_device(w, np.float64).data,
                                DEFAULT_EPS, total, row_loss, dpred.data)
    return host_sum(row_loss) / total, dpred


def attention_rows_loss(fs, a_t):
    """Attention transfer against stored teacher rows on the GPU
    (``reference.kd_maps.attention_rows_loss``).

    fs: (N, C, H, W) float32 DeviceTensor, the student's map; a_t: (N, H*W) float, the
    teacher's unit attention rows (host or device, a constant).
    Returns ``(loss, dfs)``: ``mean_{n, p} (a_s - a_t)**2`` and a (N, C, H, W) DeviceTensor.
    """
    fs = as_device(fs, "fs")
    at_shape = tuple(np.shape(a_t))
    if fs.ndim != 4 or at_shape != (fs.shape[0], fs.shape[2] * fs.shape[3]):
        raise ValueError(f"the student map {fs.shape} and the teacher's attention rows "
                         f"{at_shape} must be (N, C, H, W) and (N, H*W)")
    N, C, H, W = fs.shape
    if N == 0:
        return 0.0, zeros(fs.shape)
    P = H * W
    f3 = fs.reshape(N, C, P)                                             # (N, C, P)
    a_t = as_constant(a_t, "a_t")
    scale = 1.0 / (N * P)
    dq = cuda.device_array((N, P), np.float64)
    row_loss = cuda.device_array(N, np.float64)
    attention_rows_kernel[blocks(N), TPB](f3.data, a_t.data, DEFAULT_EPS, scale, dq, row_loss)
    df = empty(f3.shape)
    attention_grad_kernel[blocks(f3.size), TPB](f3.data, dq, df.data)
    return scale * host_sum(row_loss), df.reshape(fs.shape)


_F2, _F3, _D1, _D2 = "float32[:, ::1]", "float32[:, :, ::1]", "float64[::1]", "float64[:, ::1]"
PTX_SIGNATURES = {
    "gram_rows_kernel": [f"void({_F2}, float64, {_D2}, {_D1})"],
    "sp_rows_kernel": [f"void({_D2}, {_D2}, {_D1}, float64, {_D1}, {_D2})"],
    "sp_grad_kernel": [f"void({_D2}, {_F2}, {_F2})"],
    "fsim_kernel": [f"void({_F2}, {_F2}, {_D1}, float64, float64, {_D1}, {_F2})"],
    "attention_rows_kernel": [f"void({_F3}, {_F2}, float64, float64, {_D2}, {_D1})"],
    "attention_grad_kernel": [f"void({_F3}, {_D2}, {_F3})"],
}
