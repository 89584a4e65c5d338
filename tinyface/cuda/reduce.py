"""Per-channel sums on the GPU: a deterministic two-pass reduction.

Batch norm's statistics and gradients, the bias gradients of conv and linear, and
PReLU's slope gradient are all sums, per channel ``c``, over the ``N * L`` values of an
``(N, C, L)`` array. The CPU tier sums them in a loop; here:

1. ``channel_partials``: grid ``(G, C)``. Block ``(g, c)`` strides over channel c's
   values (thread t reads values ``g*TPB + t``, ``+ G*TPB``, ...), accumulating in
   float64, then reduces its TPB partial sums in shared memory as a tree
   (TPB -> TPB/2 -> ... -> 1) and writes one number per quantity: ``parts[q, c, g]``.
2. ``finish_partials``: one thread per ``(q, c)`` adds its G partials in order.

No atomics: the order of every addition is fixed by the launch geometry, so the
result is the same bit for bit on every run (atomics would make it depend on timing).

What is summed (``mode``), for ``a``, ``b``: (N, C, L) float32 and ``mean``, ``istd``: (C,)
float64:

- ``SUM``:    q0 = sum a                               (bias grads; batch mean)
- ``SQDEV``:  q0 = sum (a - mean)^2                    (batch variance, second pass)
- ``BN_BWD``: q0 = sum b, q1 = sum b * (a - mean) * istd     (a = x, b = dout)
- ``PRELU``:  q0 = sum of b * a where a <= 0           (a = x, b = dout: dalpha)
"""
import numpy as np
from numba import cuda, float64

from tinyface.cuda.arrays import DeviceTensor, cast, scratch
from tinyface.cuda.launch import MAX_PARTS, TPB, blocks

SUM, SQDEV, BN_BWD, PRELU = 0, 1, 2, 3


@cuda.jit
def channel_partials(a, b, mean, istd, mode, parts):
    """Pass 1. a, b: (N, C, L) float32; mean, istd: (C,) float64; mode: int;
    parts: (2, C, G) float64. grid: (G, C); block: TPB (a power of two)."""
    s0 = cuda.shared.array(TPB, float64)          # one partial sum per thread, quantity 0
    s1 = cuda.shared.array(TPB, float64)          # ... and quantity 1
    t = cuda.threadIdx.x
    g = cuda.blockIdx.x
    c = cuda.blockIdx.y
    G = cuda.gridDim.x
    L = a.shape[2]
    m = a.shape[0] * L                            # values per channel
    acc0 = 0.0
    acc1 = 0.0
    r = g * TPB + t
    while r < m:                                  # grid-stride loop over the channel
        n = r // L
        i = r - n * L
        v = np.float64(a[n, c, i])
        if mode == SUM:
            acc0 += v
        elif mode == SQDEV:
            d = v - mean[c]
            acc0 += d * d
        elif mode == BN_BWD:
            dy = np.float64(b[n, c, i])
            acc0 += dy
            acc1 += dy * ((v - mean[c]) * istd[c])
        else:                                     # PRELU
            if v <= 0.0:
                acc0 += np.float64(b[n, c, i]) * v
        r += G * TPB
    s0[t] = acc0
    s1[t] = acc1
    cuda.syncthreads()                            # every thread's partial is in shared memory
    step = TPB // 2
    while step > 0:
        if t < step:
            s0[t] += s0[t + step]
            s1[t] += s1[t + step]
        cuda.syncthreads()                        # this tree level is done before the next reads it
        step //= 2
    if t == 0:
        parts[0, c, g] = s0[0]
        parts[1, c, g] = s1[0]


@cuda.jit
def finish_partials(parts, scale, out):
    """Pass 2. parts: (2, C, G) float64; out: (2, C) float64; out[q, c] = scale *
    sum_g parts[q, c, g], in order. grid: blocks(2*C); block: TPB."""
    k = cuda.grid(1)
    C = parts.shape[1]
    if k < 2 * C:
        q = k // C
        c = k - q * C
        s = 0.0
        for g in range(parts.shape[2]):
            s += parts[q, c, g]
        out[q, c] = s * scale


def channel_sums(a3, mode, b3=None, mean=None, istd=None, scale=1.0, out=None):
    """Per-channel sums of an (N, C, L) device array; returns ``out`` (2, C) float64.

    a3, b3: numba device arrays (N, C, L) float32 (b3 defaults to a3);
    mean, istd: (C,) float64 device arrays (needed by SQDEV and BN_BWD);
    scale: multiplies the sums (1/m gives means); out: (2, C) float64 device array or None.
    """
    N, C, L = a3.shape
    G = min(MAX_PARTS, blocks(N * L))
    parts = scratch("reduce.parts", (2, C, G), np.float64)
    if out is None:
        out = cuda.device_array((2, C), dtype=np.float64)
    dummy = scratch("reduce.dummy", (C,), np.float64)   # never read by modes that ignore it
    channel_partials[(G, C), TPB](a3, a3 if b3 is None else b3,
                                   dummy if mean is None else mean,
                                   dummy if istd is None else istd, mode, parts)
    finish_partials[blocks(2 * C), TPB](parts, float(scale), out)
    return out


def sum_row(sums, q):
    """Row q of ``channel_sums``' (2, C) float64 output as a new (C,) float32 DeviceTensor."""
    return cast(DeviceTensor(sums[q]), np.float32)


PTX_SIGNATURES = {
    "channel_partials": ["void(float32[:, :, ::1], float32[:, :, ::1], float64[::1], "
                         "float64[::1], int64, float64[:, :, ::1])"],
    "finish_partials": ["void(float64[:, :, ::1], float64, float64[:, ::1])"],
}
