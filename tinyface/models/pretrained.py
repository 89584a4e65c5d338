"""Pretrained teachers: dlib's ResNet face model in tinyface's own layers.

    from tinyface.models import load_pretrained
    from tinyface.data import to_float
    teacher = load_pretrained("dlib-resnet")               # a FaceNet, in eval mode
    desc = teacher.embed(to_float(faces))                  # (N, 3, 150, 150) uint8 -> (N, 128)
    desc = embed_faces(teacher, faces_90px)                # any size: resized to 150, in batches

The weights are face-api.js's port of dlib's network (a TF.js manifest and a uint8
binary, read and checked by ``tinyface.models.weights``). Each tensor maps by name
onto a layer of ``zoo.dlib_resnet_spec``:

- ``<block>/conv/filters`` (kh, kw, Cin, Cout), HWIO -> ``Conv2d.weight`` (Cout, Cin, kh, kw);
- ``<block>/conv/bias`` -> ``Conv2d.bias``;
- ``<block>/scale/weights``, ``<block>/scale/biases`` -> ``Affine2d.weight``, ``.bias``;
- ``fc`` (256, 128) -> the embedding ``Linear.weight`` (128, 256), transposed.

Input. dlib's network reads ``(x - mean_rgb) / 255`` for x in 0..255, with mean_rgb
= (122.782, 117.001, 104.298). tinyface's float faces are ``f = x / 255 - 0.5``
(``tinyface.data.to_float``), so the network's input is ``f + delta`` with
``delta_c = 0.5 - mean_c / 255``. Its first convolution has no padding ("valid"), so
every output sees only real pixels and ``conv(f + delta) = conv(f) + sum(w * delta)``
exactly: the normalisation is folded into the first conv's bias, and the project's
float faces go in as they are.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tinyface.data.augment import to_float
from tinyface.models.dlib_dat import read_dlib_dat
from tinyface.models.facenet import build_model
from tinyface.models.weights import WeightsError, find_weights_dir, read_manifest_weights
from tinyface.models.zoo import DLIB_RESNET_SIZE, dlib_resnet_spec
from tinyface.models.spec import Residual

__all__ = ["PRETRAINED", "DLIB_MEAN_RGB", "load_pretrained", "dlib_layer_names",
           "resize_faces", "embed_faces"]

DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
# the manifest's block names, in the order of the spec's stages
DLIB_BLOCKS = ["conv32_down", None, "conv32_1", "conv32_2", "conv32_3", "conv64_down",
               "conv64_1", "conv64_2", "conv64_3", "conv128_down", "conv128_1", "conv128_2",
               "conv256_down", "conv256_1", "conv256_2", "conv256_down_out"]
PRETRAINED = ("dlib-resnet",)


def dlib_layer_names(model):
    """``{parameter name of model: manifest tensor name}`` for a dlib-resnet ``FaceNet``.

    Stage 0 (the 7x7 conv) is ``features.0`` (conv), ``.1`` (affine), ``.2`` (ReLU);
    stage 1 the max pool (``features.3``); stage i >= 2 the residual block
    ``features.{i + 2}``, whose body is conv, affine, ReLU, conv, affine (``body.0..4``).
    """
    feats = model.features
    pairs = []                                   # (manifest prefix, conv layer, affine layer)
    for i, block in enumerate(DLIB_BLOCKS):
        if i == 0:
            pairs.append((block, "features.0", "features.1"))
        elif block is not None:
            if not isinstance(feats[i + 2], Residual):
                raise ValueError(f"dlib-resnet: features.{i + 2} is not a residual block")
            pairs += [(f"{block}/conv1", f"features.{i + 2}.body.0", f"features.{i + 2}.body.1"),
                      (f"{block}/conv2", f"features.{i + 2}.body.3", f"features.{i + 2}.body.4")]
    names = {}
    for prefix, conv, affine in pairs:
        names[f"{conv}.weight"] = f"{prefix}/conv/filters"
        names[f"{conv}.bias"] = f"{prefix}/conv/bias"
        names[f"{affine}.weight"] = f"{prefix}/scale/weights"
        names[f"{affine}.bias"] = f"{prefix}/scale/biases"
    names[f"features.{len(feats) - 1}.weight"] = "fc"
    return names


def _to_layout(name, array):
    """A manifest tensor in PyTorch's layout: HWIO filters -> OIHW, fc (in, out) -> (out, in)."""
    if name.endswith("/filters"):
        return np.ascontiguousarray(array.transpose(3, 2, 0, 1))
    if name == "fc":
        return np.ascontiguousarray(array.T)
    return np.ascontiguousarray(array)


def fold_input_normalisation(weight, bias, mean_rgb=DLIB_MEAN_RGB):
    """The first conv's bias for tinyface's float faces (module docstring).

    weight: (Cout, 3, kh, kw); bias: (Cout,). Returns the new bias (Cout,) float32.
    """
    delta = 0.5 - np.asarray(mean_rgb, np.float64) / 255.0              # (3,)
    shift = np.einsum("ocij,c->o", weight.astype(np.float64), delta)     # (Cout,)
    return (bias.astype(np.float64) + shift).astype(np.float32)


def load_pretrained(name="dlib-resnet", weights=None, num_classes=1, check_sha256=True):
    """A pretrained teacher stream as a ``FaceNet`` in eval mode.

    name:        ``"dlib-resnet"`` (the only one);
    weights:     a folder holding the two weight files, or the path of one of them, or
                 dlib's own ``.dat`` file (full precision: ``tinyface.models.dlib_dat``);
                 ``None`` searches ``$TINYFACE_DATA/dlib_resnet/``, ``../shared/data/
                 dlib_resnet/`` and the download script's cache folder, in that order;
    num_classes: size of the placeholder classifier ``Linear(128, K)`` (random: fit a
                 head on the target identities before using ``forward``);
    check_sha256: compare the files with the published checksums (sizes and tensor
                 counts are always checked).
    Raises ``WeightsError`` (a ``ValueError``) with one line naming the file and the
    download command when the files are missing, truncated or do not match.
    """
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained model {name!r}; known: {', '.join(PRETRAINED)}")
    if weights is not None and str(weights).endswith(".dat"):
        folder = Path(weights)                          # dlib's own full-precision file
        tensors = read_dlib_dat(folder)
    else:
        folder = find_weights_dir(weights)
        tensors = read_manifest_weights(folder, check_sha256=check_sha256)
    model = build_model(dlib_resnet_spec(num_classes), seed=0)
    params = dict(model.named_parameters())
    names = dlib_layer_names(model)
    unused = set(tensors) - set(names.values())
    if unused:
        raise WeightsError(f"{folder}: the manifest holds tensors dlib-resnet does not use: "
                           f"{sorted(unused)[:3]}")
    for pname, tname in names.items():
        if tname not in tensors:
            raise WeightsError(f"{folder}: the manifest has no tensor {tname!r} (for {pname})")
        value = _to_layout(tname, tensors[tname])
        if value.shape != params[pname].shape:
            raise WeightsError(f"{folder}: tensor {tname!r} has shape {value.shape} in "
                               f"tinyface's layout, {pname} needs {params[pname].shape}")
        params[pname][...] = value
    params["features.0.bias"][...] = fold_input_normalisation(params["features.0.weight"],
                                                              params["features.0.bias"])
    model.eval()
    model.pretrained = {"name": name, "folder": str(folder)}
    return model


def resize_faces(faces, size=DLIB_RESNET_SIZE):
    """faces: (N, 3, h, w) uint8 -> (N, 3, size, size) uint8, bicubic (PIL) per face.

    Faces already at ``size`` are returned as they are.
    """
    faces = np.asarray(faces)
    if faces.ndim != 4 or faces.shape[1] != 3 or faces.dtype != np.uint8:
        raise ValueError(f"resize_faces: expected (N, 3, H, W) uint8 RGB faces, got "
                         f"{faces.dtype} {faces.shape}")
    if faces.shape[2:] == (size, size):
        return faces
    out = np.empty((len(faces), 3, size, size), np.uint8)               # (N, 3, S, S)
    for i, face in enumerate(faces):
        img = Image.fromarray(np.ascontiguousarray(face.transpose(1, 2, 0)))
        out[i] = np.asarray(img.resize((size, size), Image.BICUBIC)).transpose(2, 0, 1)
    return out


def embed_faces(teacher, faces, batch_size=64, progress=None, log=None, through=None):
    """The teacher's embedding of uint8 faces of any size, batch by batch.

    teacher: a ``FaceNet`` (its ``input_size`` S); faces: (N, 3, h, w) uint8, resized to
    S x S bicubically when h, w differ (``log`` is told once), converted with
    ``to_float`` one batch at a time, so memory holds one float batch, never N faces.
    progress: print a line every ~10 s (default: when stderr is a terminal or N > 500);
    through: None, or k to stop after ``teacher.features[:k]`` (its activations there).
    Returns (N, D) float32, or with ``through`` (N, C, h, w) float32.
    """
    faces = np.asarray(faces)
    if faces.ndim != 4 or faces.dtype != np.uint8:
        raise ValueError(f"embed_faces: expected (N, 3, H, W) uint8 faces, got {faces.dtype} "
                         f"{faces.shape}; pass the uint8 faces, not to_float's output")
    size = teacher.spec["input_size"]
    if faces.shape[2:] != (size, size) and log is not None:
        log(f"{teacher.spec['name']}: resizing {len(faces)} faces from {faces.shape[2]}x"
            f"{faces.shape[3]} to {size}x{size} (bicubic) batch by batch")
    if progress is None:
        progress = len(faces) > 500 or sys.stderr.isatty()
    was_training = teacher.training
    teacher.eval()
    out = (np.empty((len(faces), teacher.embedding_dim), np.float32) if through is None
           else None)                           # with ``through``: sized by the first batch
    start = last = time.perf_counter()
    try:
        for i in range(0, len(faces), batch_size):
            batch = to_float(resize_faces(faces[i:i + batch_size], size))   # (B, 3, S, S)
            if through is None:
                out[i:i + len(batch)] = teacher.embed(batch)
            else:
                h = batch
                for k in range(int(through)):
                    h = teacher.features[k].forward(h)
                if out is None:
                    out = np.empty((len(faces),) + h.shape[1:], np.float32)  # (N, C, h, w)
                out[i:i + len(batch)] = h
            now = time.perf_counter()
            if progress and now - last > 10 and i + len(batch) < len(faces):
                done = i + len(batch)
                eta = (now - start) / done * (len(faces) - done)
                print(f"  {teacher.spec['name']}: {done}/{len(faces)} faces, "
                      f"{done / (now - start):.0f} faces/s, about {eta:.0f} s left",
                      file=sys.stderr, flush=True)
                last = now
    finally:
        teacher.train(was_training)
    return out
