"""Fully connected layer on the GPU: ``out = x @ W.T + b`` on the tiled GEMM.

x: (N, in); W: (out, in) as in PyTorch. The products (``gemm_tiled`` with batch 1):

    forward:  out (N, out)  = x (N, in) @ W.T + b        trans_b, bias per column
    backward: dx  (N, in)   = dout (N, out) @ W
              dW  (out, in) = dout.T (out, N) @ x        trans_a, split-K over N + sum_batches
              db  (out,)    = sum over N of dout          reduce.channel_sums

dW's inner dimension is the batch (1,024 at the student's batch): it is cut into
``gemm.K_CHUNK``-long chunks, one block row each, so that a 64x128 weight still keeps
hundreds of blocks busy; the chunks' partial products are then added in order.
"""
from tinyface.cuda import gemm
from tinyface.cuda.arrays import as_device, empty
from tinyface.cuda.reduce import SUM, channel_sums, sum_row


def linear_forward(x, w, b=None):
    """x: (N, in) float32 DeviceTensor; w: (out, in); b: (out,) or None
    -> out: (N, out) DeviceTensor, cache. Host arrays are copied up."""
    x = as_device(x, "linear_forward: x")
    w = as_device(w, "linear_forward: weight")
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"linear: x {x.shape} and weight {w.shape} do not fit (N, in) @ (out, in).T")
    N, D = x.shape[0], w.shape[0]
    out = empty((N, D))                                           # (N, out)
    x3 = x.data.reshape(1, N, -1)                                 # (1, N, in)
    w3 = w.data.reshape(1, D, -1)                                 # (1, out, in)
    if b is None:
        gemm.batched_matmul(x3, w3, out.data.reshape(1, N, D), trans_b=True)
    else:
        b = as_device(b, "linear_forward: bias")
        gemm.batched_matmul(x3, w3, out.data.reshape(1, N, D), trans_b=True,
                            bias=b.data, bias_mode=gemm.BIAS_COL)
    return out, (x, w, b is not None)


def linear_backward(dout, cache):
    """dout: (N, out) -> (dx (N, in), dw (out, in), db (out,) or None), DeviceTensors."""
    x, w, has_bias = cache
    N, D = x.shape[0], w.shape[0]
    dout = as_device(dout, "linear_backward: dout")
    if dout.shape != (N, D):
        raise ValueError(f"linear_backward: dout has shape {dout.shape}, expected {(N, D)}")
    g3 = dout.data.reshape(1, N, D)                               # (1, N, out)
    dx = empty(x.shape)                                           # (N, in)
    gemm.batched_matmul(g3, w.data.reshape(1, D, -1), dx.data.reshape(1, N, -1))
    dw = empty(w.shape)                                           # (out, in)
    gemm.matmul_sum(g3, x.data.reshape(1, N, -1), dw.data, trans_a=True)
    db = sum_row(channel_sums(dout.data.reshape(N, D, 1), SUM), 0) if has_bias else None
    return dx, dw, db


PTX_SIGNATURES = {}        # all of linear's work is done by gemm and reduce kernels
