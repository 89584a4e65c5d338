"""Losses on the GPU: one thread per row of the (N, K) logits.

Same maths and signatures as ``tinyface.kernels.losses`` (whose argument checks are
reused). Each thread makes the CPU tier's three passes over its row (max, sum of
exponentials, gradient) in float64 and writes its row's loss to an (N,) float64 array;
the gradient stays on the GPU, and only the N row losses come back to be summed into
the Python float every loss returns (the one copy a training step makes).

Kernels call no ``min``/``max`` builtins and no device functions: numba compiles
those for the *current* GPU, so they would stop ``compile_ptx`` from working on a
machine with the CUDA toolkit but no GPU (the PTX test).

Labels, weights and teacher outputs may be host arrays: they are data, copied up
explicitly here (labels are range-checked on the host first). Logits and predictions
are the network's outputs and are expected on the GPU (host ones are copied up, as
an implicit transfer).
"""
import math

import numpy as np
from numba import cuda

from tinyface.cuda.arrays import as_device, empty, is_device_array, to_device
from tinyface.cuda.launch import TPB, blocks
from tinyface.reference.losses import (check_labels as _check_labels,
                                       check_temperature as _check_temperature,
                                       check_weights)


@cuda.jit
def cross_entropy_kernel(logits, labels, row_loss, dlogits):
    """logits, dlogits: (N, K) float32; labels: (N,) int64; row_loss: (N,) float64.
    row_loss[n] = logsumexp(logits[n]) - logits[n, y]; dlogits = (softmax - onehot) / N.
    A label outside [0, K) gives a NaN row loss. grid: blocks(N); block: TPB."""
    n = cuda.grid(1)
    N, K = logits.shape
    if n < N:
        top = np.float64(logits[n, 0])
        for k in range(1, K):
            v = np.float64(logits[n, k])
            if v > top:
                top = v
        s = 0.0
        for k in range(K):
            e = math.exp(np.float64(logits[n, k]) - top)
            dlogits[n, k] = e                                 # parked, rescaled below
            s += e
        y = labels[n]
        inv_n = 1.0 / N
        scale = inv_n / s
        for k in range(K):
            dlogits[n, k] = dlogits[n, k] * scale
        if 0 <= y < K:
            row_loss[n] = math.log(s) - (np.float64(logits[n, y]) - top)
            dlogits[n, y] -= inv_n
        else:
            row_loss[n] = math.nan


@cuda.jit
def distillation_kernel(s, t, T, row_kl, ds):
    """s, t, ds: (N, K) float32; T: float64; row_kl: (N,) float64.
    row_kl[n] = KL(softmax(t_n / T) || softmax(s_n / T));
    ds[n] = T / N * (softmax(s_n / T) - softmax(t_n / T)). grid: blocks(N); block: TPB."""
    n = cuda.grid(1)
    N, K = s.shape
    if n < N:
        inv_t = 1.0 / T
        g = T / N
        ms = np.float64(s[n, 0]) * inv_t
        mt = np.float64(t[n, 0]) * inv_t
        for k in range(1, K):
            vs = np.float64(s[n, k]) * inv_t
            vt = np.float64(t[n, k]) * inv_t
            if vs > ms:
                ms = vs
            if vt > mt:
                mt = vt
        zs = 0.0
        zt = 0.0
        for k in range(K):
            zs += math.exp(np.float64(s[n, k]) * inv_t - ms)
            zt += math.exp(np.float64(t[n, k]) * inv_t - mt)
        lzs = math.log(zs) + ms                               # log-sum-exp of s_n / T
        lzt = math.log(zt) + mt
        kl = 0.0
        for k in range(K):
            logps = np.float64(s[n, k]) * inv_t - lzs
            logpt = np.float64(t[n, k]) * inv_t - lzt
            pt = math.exp(logpt)
            kl += pt * (logpt - logps)
            ds[n, k] = g * (math.exp(logps) - pt)
        row_kl[n] = kl


@cuda.jit
def regression_kernel(pred, target, w, total, row_loss, dpred):
    """pred, target, dpred: (N, D) float32; w: (N,) float64; total: float64 = sum w.
    row_loss[n] = w[n] * ||pred_n - target_n||^2; dpred = 2 w[n] (pred - target) / total.
    grid: blocks(N); block: TPB."""
    n = cuda.grid(1)
    N, D = pred.shape
    if n < N:
        c = 2.0 * w[n] / total
        acc = 0.0
        for d in range(D):
            diff = np.float64(pred[n, d]) - np.float64(target[n, d])
            acc += diff * diff
            dpred[n, d] = c * diff
        row_loss[n] = w[n] * acc


def _logits(x, name):
    x = as_device(x, name)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"{name} must be (N, K) with K >= 1, got shape {x.shape}")
    return x


def _data(a, name, dtype):
    """Data arguments (labels, weights, teacher outputs): an explicit copy up if host."""
    if is_device_array(a):
        return as_device(a, name, dtype=dtype)
    return to_device(np.asarray(a), dtype=dtype)


def softmax_cross_entropy_loss(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels, on the GPU.

    logits: (N, K) float32 DeviceTensor; labels: (N,) int in [0, K) (host or device).
    Returns ``(loss, dlogits)``: a Python float and the (N, K) DeviceTensor
    ``(softmax(logits) - onehot(labels)) / N``.
    """
    logits = _logits(logits, "logits")
    N, K = logits.shape
    if not is_device_array(labels):
        labels = _check_labels(labels, N, K)                      # range-checked on the host
    elif tuple(np.shape(labels)) != (N,):
        raise ValueError(f"labels must have shape ({N},) to match the logits, got {np.shape(labels)}")
    labels = _data(labels, "labels", np.int64)
    dlogits = empty((N, K))
    if N == 0:
        return 0.0, dlogits
    row_loss = cuda.device_array(N, dtype=np.float64)
    cross_entropy_kernel[blocks(N), TPB](logits.data, labels.data, row_loss, dlogits.data)
    return float(row_loss.copy_to_host().sum() / N), dlogits


def check_regression(pred, target, weights):
    """The arguments of a weighted per-face loss on the GPU (``feature_regression_loss``,
    ``kd_maps.fsim_loss``): pred (N, D), a DeviceTensor (a host array is copied up);
    target (N, D), host or device, of which only the shape is read here; weights as
    ``reference.losses.check_weights``. Returns ``(pred, w)``, w (N,) float64 on the host."""
    pred = as_device(pred, "pred")
    if pred.ndim != 2 or tuple(np.shape(target)) != pred.shape:
        raise ValueError(f"pred and target must both be (N, D) of one shape, "
                         f"got {pred.shape} and {tuple(np.shape(target))}")
    return pred, check_weights(weights, pred.shape[0])


def feature_regression_loss(pred, target, weights=None):
    """Weighted mean over samples of ``||pred_i - target_i||^2``, on the GPU.

    pred: (N, D) float32 DeviceTensor; target: (N, D) (host or device, a constant);
    weights: (N,) non-negative (host), or None for all ones.
    Returns ``(loss, dpred)``; all-zero weights give 0 and a zero gradient.
    """
    pred, w = check_regression(pred, target, weights)
    N = pred.shape[0]
    total = float(w.sum())
    dpred = empty(pred.shape)
    if total == 0:
        return 0.0, dpred.fill(0)
    target = _data(target, "target", np.float32)
    row_loss = cuda.device_array(N, dtype=np.float64)
    regression_kernel[blocks(N), TPB](pred.data, target.data, to_device(w, np.float64).data,
                                      total, row_loss, dpred.data)
    return float(row_loss.copy_to_host().sum() / total), dpred


def distillation_loss(student_logits, teacher_logits, T):
    """Hinton's soft-target loss at temperature ``T``, on the GPU.

    student_logits: (N, K) float32 DeviceTensor; teacher_logits: (N, K) (host or
    device, a constant); T: float > 0.
    Returns ``(loss, dstudent)`` with ``loss = T**2 / N * sum_n KL(...)`` and
    ``dstudent = T / N * (softmax(student / T) - softmax(teacher / T))``.
    """
    s = _logits(student_logits, "student_logits")
    if tuple(np.shape(teacher_logits)) != s.shape:
        raise ValueError(f"student and teacher logits differ in shape: {s.shape} vs "
                         f"{tuple(np.shape(teacher_logits))}")
    T = _check_temperature(T)
    t = _data(teacher_logits, "teacher_logits", np.float32)
    N = s.shape[0]
    ds = empty(s.shape)
    if N == 0:
        return 0.0, ds
    row_kl = cuda.device_array(N, dtype=np.float64)
    distillation_kernel[blocks(N), TPB](s.data, t.data, T, row_kl, ds.data)
    return float(T * T * row_kl.copy_to_host().sum() / N), ds


_F2, _D1 = "float32[:, ::1]", "float64[::1]"
PTX_SIGNATURES = {
    "cross_entropy_kernel": [f"void({_F2}, int64[::1], {_D1}, {_F2})"],
    "distillation_kernel": [f"void({_F2}, {_F2}, float64, {_D1}, {_F2})"],
    "regression_kernel": [f"void({_F2}, {_F2}, {_D1}, float64, {_D1}, {_F2})"],
}
