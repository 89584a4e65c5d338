"""Per-layer summary: output shape, parameters, bytes and FLOPs per face.

``summary(model, input_shape)`` runs one zero face through the model in evaluation
mode, recording what each layer produces, then restores the model's modes. (It
overwrites the layers' forward caches: do not call it between a forward and its
backward.) FLOPs are for one face, forward, inference:

- ``Conv2d``: 2 * Cout * Cin * kh * kw * OH * OW (multiply-adds x 2; bias adds not counted);
- ``Linear``: 2 * in * out;
- memory-bound layers count about one operation per element: batch norm, activations,
  dropout and the residual sum per output element, pools per input element;
  ``Flatten`` 0.

Bytes are the float32 parameters (4 per parameter); buffers (batch-norm running
statistics) are counted in their own column and not in the model's size.
"""
import numpy as np

from tinyface import nn
from tinyface.nn.module import Sequential


def layer_flops(layer, in_shape, out_shape):
    """Forward FLOPs for one face; shapes are per face (no batch axis)."""
    n_out, n_in = int(np.prod(out_shape)), int(np.prod(in_shape))
    if isinstance(layer, nn.Conv2d):
        kh, kw = layer.kernel_size
        return 2 * n_out * layer.in_channels * kh * kw
    if isinstance(layer, nn.Linear):
        return 2 * layer.in_features * layer.out_features
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d, nn.GlobalAvgPool2d)):
        return n_in
    if isinstance(layer, nn.Flatten):
        return 0
    return n_out          # batch norm, activations, dropout, residual sum


def _describe(layer):
    """Short type text, e.g. ``Conv2d(3->16, k3, s1, p1)``."""
    if isinstance(layer, nn.Conv2d):
        return (f"Conv2d({layer.in_channels}->{layer.out_channels}, k{layer.kernel_size[0]}, "
                f"s{layer.stride[0]}, p{layer.padding[0]})")
    if isinstance(layer, nn.Linear):
        return f"Linear({layer.in_features}->{layer.out_features})"
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return f"{type(layer).__name__}({layer.num_features})"
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        return f"{type(layer).__name__}({layer.kernel_size})"
    if isinstance(layer, nn.PReLU):
        return f"PReLU({layer.num_parameters})"
    if isinstance(layer, nn.Dropout):
        return f"Dropout({layer.p})"
    if layer.children():
        return f"{type(layer).__name__} (sum)"
    return type(layer).__name__


def _modules(module, prefix=""):
    """``(dotted name, module)`` for every module below ``module`` (not itself)."""
    for name, child in module._children.items():
        full = prefix + name
        yield full, child
        yield from _modules(child, full + ".")


def summary(model, input_shape=None):
    """Rows describing each layer of ``model`` for one face, in execution order.

    model:       any ``Module``; a ``FaceNet`` supplies its own ``input_shape``;
    input_shape: per-face ``(C, H, W)`` (a leading batch axis is ignored).
    Each row is a dict: ``name`` (dotted, e.g. ``features.0``), ``type``, ``output``
    (per-face shape tuple), ``params``, ``bytes`` (float32 params), ``buffers``
    (buffer elements) and ``flops``. A container layer with its own computation (the
    residual sum) gets a row after its children (before its ``act``), with only its own
    parameters, so the rows' ``params`` add up to ``model.num_parameters()``.
    """
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
        if input_shape is None:
            raise ValueError(f"summary: give input_shape for a {type(model).__name__}")
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) == 4:
        input_shape = input_shape[1:]
    modules = [(n, m) for n, m in _modules(model) if not isinstance(m, Sequential)]
    modes = [(m, m.training) for _, m in _modules(model)] + [(model, model.training)]
    rows = []

    def hook(name, module):
        original = module.forward

        def forward(x):
            in_shape = np.shape(x)[1:]
            start = len(rows)
            out = original(x)
            own = sum(p.size for p in module.params.values())
            # a residual block sums before its activation: put its row above the act's
            at = next((i for i in range(start, len(rows)) if rows[i]["name"] == name + ".act"),
                      len(rows))
            rows.insert(at, {"name": name, "type": _describe(module),
                             "output": tuple(out.shape[1:]), "params": int(own),
                             "bytes": 4 * int(own),
                             "buffers": int(sum(b.size for b in module.buffers.values())),
                             "flops": int(layer_flops(module, in_shape, out.shape[1:]))})
            return out
        module.forward = forward

    try:
        for name, module in modules:
            hook(name, module)
        model.eval()
        model.forward(np.zeros((1, *input_shape), dtype=np.float32))
    finally:
        for _, module in modules:
            module.__dict__.pop("forward", None)
        for module, mode in modes:
            module.training = mode
    return rows


def totals(rows):
    """``{"params", "bytes", "megabytes", "buffers", "flops"}`` summed over ``rows``."""
    params = sum(r["params"] for r in rows)
    return {"params": params, "bytes": 4 * params, "megabytes": 4 * params / 2 ** 20,
            "buffers": sum(r["buffers"] for r in rows), "flops": sum(r["flops"] for r in rows)}


def _shape_text(shape):
    return "x".join(str(d) for d in shape)


def format_summary(rows, title=None):
    """A text table of ``summary`` rows, with the totals underneath."""
    head = ("layer", "type", "output", "params", "bytes", "FLOPs/face")
    body = [(r["name"], r["type"], _shape_text(r["output"]), f"{r['params']:,}",
             f"{r['bytes']:,}", f"{r['flops']:,}") for r in rows]
    t = totals(rows)
    foot = ("total", "", "", f"{t['params']:,}", f"{t['bytes']:,}", f"{t['flops']:,}")
    widths = [max(len(row[i]) for row in [head, foot, *body]) for i in range(len(head))]
    right = (False, False, True, True, True, True)

    def line(row):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(row, widths, right)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = ([title] if title else []) + [line(head), rule, *map(line, body), rule, line(foot), ""]
    lines.append(f"parameters: {t['params']:,} ({t['megabytes']:.4f} MB as float32, "
                 f"{t['bytes']:,} bytes; 1 MB = 2**20 bytes)")
    lines.append(f"buffers:    {t['buffers']:,} floats (batch-norm running statistics, "
                 f"not counted above)")
    lines.append(f"FLOPs/face: {t['flops']:,} ({t['flops'] / 1e6:.2f} MFLOP forward)")
    return "\n".join(lines)
