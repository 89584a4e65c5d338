"""The batch rows a distillation term is taken on, gathered and scattered on the GPU.

A method variant's term (``tinyface.distill.methods``) covers the batch's labelled faces
only, rows ``sel`` (l,) of the b faces. The CPU path does it on the host
(``host[rows]``, then ``grad[rows] = weight * ds``); here the student side never leaves
the GPU:

1. ``gather_rows``: the l rows ``x[sel]`` of a (b, ...) device array, as (l, ...);
2. the loss (``kd_maps``, ``kd_rkd``, ``kd_relations``, ``kd_logits``) on those rows;
3. ``scatter_rows``: a zeroed (b, ...) gradient with ``weight * ds[i]`` at row ``sel[i]``
   (``weight * ds`` in float64, then rounded to float32, as the CPU path rounds it).

Only ``sel`` goes up (a small index array). One thread per element; no shared memory.
"""
import numpy as np
from numba import cuda

from tinyface.cuda.arrays import as_device, empty, to_device, zeros
from tinyface.cuda.launch import TPB, blocks


@cuda.jit
def gather_rows_kernel(x, sel, out):
    """x: (b, F) float32; sel: (l,) int64 in [0, b); out: (l, F) float32,
    ``out[i] = x[sel[i]]``. grid: blocks(l * F); block: TPB; one thread per element."""
    k = cuda.grid(1)
    l, F = out.shape
    if k < l * F:                                 # bounds guard: the last block overhangs
        i = k // F
        f = k - i * F
        out[i, f] = x[sel[i], f]


@cuda.jit
def scatter_rows_kernel(ds, sel, weight, out):
    """ds: (l, F) float32; sel: (l,) int64, distinct rows of out; weight: float64;
    out: (b, F) float32, zero outside ``sel``: ``out[sel[i]] = weight * ds[i]`` (in
    float64). grid: blocks(l * F); block: TPB."""
    k = cuda.grid(1)
    l, F = ds.shape
    if k < l * F:
        i = k // F
        f = k - i * F
        out[sel[i], f] = weight * np.float64(ds[i, f])


def _rows(sel, b):
    sel = np.asarray(sel)
    if sel.ndim != 1 or sel.dtype.kind not in "iu":
        raise ValueError(f"sel must be a 1-d integer array, got shape {sel.shape}, "
                         f"dtype {sel.dtype}")
    if sel.size and (sel.min() < 0 or sel.max() >= b):
        raise ValueError(f"sel holds rows outside [0, {b})")
    return sel.astype(np.int64)


def gather_rows(x, sel):
    """x: (b, ...) float32 DeviceTensor; sel: (l,) int (host). Returns the (l, ...)
    DeviceTensor ``x[sel]``."""
    x = as_device(x, "x")
    b = x.shape[0]
    sel = _rows(sel, b)
    out = empty((len(sel),) + x.shape[1:])
    if out.size:
        F = x.size // b
        gather_rows_kernel[blocks(out.size), TPB](x.reshape(b, F).data,
                                                  to_device(sel, np.int64).data,
                                                  out.reshape(len(sel), F).data)
    return out


def scatter_rows(ds, sel, shape, weight=1.0):
    """ds: (l, ...) float32 DeviceTensor; sel: (l,) distinct int rows (host); shape:
    (b, ...) with ``shape[1:] == ds.shape[1:]``. Returns a new (b, ...) DeviceTensor,
    ``weight * ds[i]`` at row ``sel[i]`` and 0 elsewhere."""
    ds = as_device(ds, "ds")
    shape = tuple(int(s) for s in shape)
    sel = _rows(sel, shape[0])
    if ds.shape != (len(sel),) + shape[1:]:
        raise ValueError(f"ds has shape {ds.shape}; {len(sel)} rows of {shape} expected")
    if len(np.unique(sel)) != len(sel):
        raise ValueError("sel must hold distinct rows")
    out = zeros(shape)
    if ds.size:
        F = ds.size // len(sel)
        scatter_rows_kernel[blocks(ds.size), TPB](ds.reshape(len(sel), F).data,
                                                  to_device(sel, np.int64).data,
                                                  float(weight), out.reshape(shape[0], F).data)
    return out


_F2, _I1 = "float32[:, ::1]", "int64[::1]"
PTX_SIGNATURES = {
    "gather_rows_kernel": [f"void({_F2}, {_I1}, {_F2})"],
    "scatter_rows_kernel": [f"void({_F2}, {_I1}, float64, {_F2})"],
}
