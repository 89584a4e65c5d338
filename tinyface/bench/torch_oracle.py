"""PyTorch as an optional oracle and speed baseline for the convolutions (never required).

:func:`load_torch` returns the ``torch`` module or None, so callers skip cleanly when it
is not installed. :func:`torch_conv2d` runs one convolution forward and backward in
PyTorch and returns NumPy arrays, to compare with ``tinyface.kernels.conv2d_*``.
:func:`torch_conv_rows` times every distinct Conv2d layer of a model with PyTorch at the
same shapes as :func:`tinyface.bench.kernels.bench_layers` (same ``layer``, ``shape`` and
``pass_`` fields, so the two tables join), with PyTorch limited to ``threads`` threads.
Timings use :func:`tinyface.bench.timing.median_seconds` (warm-up outside, medians).
"""
import numpy as np

from tinyface import nn
from tinyface.bench.kernels import _describe, layer_flops
from tinyface.bench.timing import median_seconds


def load_torch():
    """The ``torch`` module, or None when PyTorch is not installed."""
    try:
        import torch  # optional: PyTorch is never required, so it is imported only here
    except ImportError:
        return None
    return torch


def torch_conv2d(x, w, b, stride, padding, dout):
    """One conv2d forward and backward in PyTorch (needs torch).

    x: (N, Cin, H, W); w: (Cout, Cin, kh, kw); b: (Cout,) or None; dout: the output's
    shape. Arrays keep their float dtype. Returns ``(out, dx, dw, db)`` as NumPy arrays
    (``db`` None without a bias).
    """
    torch = load_torch()
    if torch is None:
        raise ImportError("torch_conv2d needs PyTorch")
    xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    wt = torch.from_numpy(np.ascontiguousarray(w)).requires_grad_(True)
    bt = None if b is None else torch.from_numpy(np.ascontiguousarray(b)).requires_grad_(True)
    out = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding)
    wrt = (xt, wt) if bt is None else (xt, wt, bt)
    grads = torch.autograd.grad(out, wrt, torch.from_numpy(np.ascontiguousarray(dout)))
    grads = [g.numpy() for g in grads] + [None] * (3 - len(grads))
    return (out.detach().numpy(), *grads)


def torch_conv_rows(model, x, reps=10, threads=1, label="student"):
    """Time each distinct Conv2d of ``model`` in PyTorch, forward and backward (needs torch).

    model: a ``tinyface.nn.Sequential`` (its layers' forward gives the shapes); x: the
    model's float32 input (N, C, H, W); threads: PyTorch's intra-op threads during the
    timing (restored after). The backward pass is ``autograd.grad`` of dx, dw and db.
    Returns rows ``dict(net, layer, shape, pass_, torch_ms, gflops)``.
    """
    torch = load_torch()
    if torch is None:
        raise ImportError("torch_conv_rows needs PyTorch")
    saved = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    rows, seen, was_training = [], set(), model.training
    try:
        model.eval()
        for layer in model.children():
            y = layer.forward(x)
            key = (_describe(layer), x.shape)
            if isinstance(layer, nn.Conv2d) and key not in seen:
                seen.add(key)
                xt = torch.from_numpy(x).requires_grad_(True)
                wt = torch.from_numpy(layer.params["weight"]).requires_grad_(True)
                b = layer.params.get("bias")
                bt = None if b is None else torch.from_numpy(b).requires_grad_(True)
                conv = torch.nn.functional.conv2d
                st, pd = layer.stride, layer.padding
                dout = torch.from_numpy(
                    np.random.default_rng(0).standard_normal(y.shape).astype(np.float32))
                wrt = (xt, wt) if bt is None else (xt, wt, bt)
                with torch.no_grad():
                    t_fwd = median_seconds(lambda: conv(xt, wt, bt, stride=st, padding=pd),
                                           reps=reps, warmup=2)
                out = conv(xt, wt, bt, stride=st, padding=pd)
                t_bwd = median_seconds(lambda: torch.autograd.grad(out, wrt, dout, retain_graph=True),
                                       reps=reps, warmup=2)
                flops = layer_flops(layer, x.shape, y.shape)
                for name, t, work in (("forward", t_fwd, 1.0), ("backward", t_bwd, 2.0)):
                    rows.append(dict(net=label, layer=key[0], shape=list(x.shape), pass_=name,
                                     torch_ms=t * 1e3, gflops=flops * work / t / 1e9))
            x = y
    finally:
        torch.set_num_threads(saved)
        model.train(was_training)
    return rows
