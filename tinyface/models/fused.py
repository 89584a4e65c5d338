"""A trained VGG-style ``FaceNet`` (the deployable student) as one compiled function.

``FusedNet(model)`` reads the model's layers once and prepares them for
``tinyface.kernels.fused_vgg``: every batch norm folded into the layer before it (in
inference a batch norm is a per-channel scale and shift), the convolution weights laid
out channels last, ``(Cout, 9 * Cin)`` in (i, j, c) order. Its ``forward_both``, ``forward`` and
``embed`` then give what the model gives in eval mode, to float32 rounding, at a
fraction of the cost per face at batch 1: no layer returns to Python.

It takes 3x3 convolutions with stride 1 and padding 1, batch norms, ReLUs, 2x2 max
pools, a global average pool, the embedding ``Linear`` (with its batch norm) and the
classifier; anything else is refused with its name. The weights are copied: a model
trained further needs a new ``FusedNet``.
"""
import numpy as np
from numba.typed import List

from tinyface import nn
from tinyface.kernels import fused_vgg
from tinyface.kernels.threading import use_parallel


def _fold(weight, bias, bn):
    """(W', b') of a layer followed by batch norm ``bn`` in eval mode; W: (Cout, ...)."""
    scale = bn.params["weight"] / np.sqrt(bn.buffers["running_var"] + bn.eps)   # (Cout,)
    w = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    return w, (bias - bn.buffers["running_mean"]) * scale + bn.params["bias"]


class FusedNet:
    """``FusedNet(model)``: ``model``'s inference as one compiled function (see module)."""

    def __init__(self, model):
        layers = list(model.features.children())
        self.input_shape = tuple(model.input_shape)
        codes, self.weights, self.biases, relus = [], List(), List(), []
        i, head = 0, None
        while i < len(layers):
            layer, name = layers[i], f"features.{i}"
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, nn.Conv2d):
                if (layer.kernel_size, layer.stride, layer.padding) != ((3, 3), (1, 1), (1, 1)):
                    raise ValueError(f"FusedNet: {name} is {layer!r}; only 3x3 convolutions "
                                     f"with stride 1 and padding 1 can be fused")
                w = layer.params["weight"].astype(np.float64)
                b = layer.params.get("bias", np.zeros(w.shape[0])).astype(np.float64)
                if isinstance(nxt, nn.BatchNorm2d):
                    w, b = _fold(w, b, nxt)
                    i += 1
                relu = isinstance(layers[i + 1] if i + 1 < len(layers) else None, nn.ReLU)
                i += 1 + relu
                codes.append(fused_vgg.CONV)
                relus.append(relu)
                self.weights.append(np.ascontiguousarray(                  # (Cout, 9 Cin)
                    w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1), np.float32))
                self.biases.append(np.ascontiguousarray(b, np.float32))
                continue
            if isinstance(layer, nn.MaxPool2d) and (layer.kernel_size, layer.stride,
                                                    layer.padding) in ((2, 2, 0), ((2, 2), (2, 2), (0, 0))):
                codes.append(fused_vgg.POOL)
            elif isinstance(layer, nn.GlobalAvgPool2d) and isinstance(nxt, nn.Linear):
                w = nxt.params["weight"].astype(np.float64)
                b = nxt.params["bias"].astype(np.float64)
                after = layers[i + 2] if i + 2 < len(layers) else None
                if isinstance(after, nn.BatchNorm1d):
                    w, b = _fold(w, b, after)
                    i += 1
                head = (np.ascontiguousarray(w, np.float32), np.ascontiguousarray(b, np.float32))
                i += 1
            elif not isinstance(layer, nn.Dropout):
                raise ValueError(f"FusedNet: {name} is {layer!r}, which cannot be fused")
            i += 1
        if head is None or i != len(layers):
            raise ValueError("FusedNet: the features must end with a global average pool and "
                             "the embedding Linear (and its batch norm)")
        self.codes = np.array(codes, dtype=np.int64)
        self.relus = np.array(relus, dtype=np.bool_)
        self.We, self.be = head
        self.Wc = np.ascontiguousarray(model.classifier.params["weight"], np.float32)
        self.bc = np.ascontiguousarray(model.classifier.params["bias"], np.float32)
        c, s, _ = self.input_shape
        pads, rows, outs, layer = [(s + 2) ** 2 * c], [0], [0], 0
        for code in codes:                            # each layer's scratch, in floats
            if code == fused_vgg.CONV:
                cout, depth = self.weights[layer].shape
                pads.append((s + 2) ** 2 * cout)
                rows.append(s * s * depth)
                outs.append(s * s * cout)
                layer += 1
            else:
                s //= 2
        self.scratch = np.array([max(pads), max(rows), max(outs)])

    def forward_both(self, x):
        """x: (N, C, S, S) float faces -> ``(embedding (N, D), logits (N, K))``."""
        x = np.asarray(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape or x.dtype.kind != "f":
            c, s, _ = self.input_shape
            raise ValueError(f"FusedNet: expected float faces of shape (N, {c}, {s}, {s}), "
                             f"got {x.dtype} {tuple(x.shape)}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        emb = np.empty((x.shape[0], self.We.shape[0]), np.float32)     # (N, D)
        logits = np.empty((x.shape[0], self.Wc.shape[0]), np.float32)  # (N, K)
        fn = (fused_vgg.forward_batch_parallel if use_parallel(x.shape[0])
              else fused_vgg.forward_batch_serial)
        fn(x, self.codes, self.weights, self.biases, self.relus, self.We, self.be, self.Wc,
           self.bc, self.scratch, emb, logits)
        return emb, logits

    def forward(self, x):
        """x: (N, C, S, S) float faces -> logits (N, K)."""
        return self.forward_both(x)[1]

    def embed(self, x):
        """x: (N, C, S, S) float faces -> embedding (N, D)."""
        return self.forward_both(x)[0]
