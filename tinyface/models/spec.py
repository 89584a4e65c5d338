"""Declarative architecture specs: a JSON-able dict -> layers.

A spec describes a face network in a few lines, so that a tutorial can print one,
change a number and build the result::

    {"name": "student", "input_size": 16, "in_channels": 3,
     "stages": [16, 16, "M", 32, 32, "M", 32],
     "embedding_dim": 64, "embedding_norm": "bn", "num_classes": 158,
     "norm": "bn", "act": "relu", "dropout": 0.0}

Keys (``normalize_spec`` fills the optional ones):

- ``name``:           free text, printed in summaries (default ``"facenet"``);
- ``input_size``:     side of the square input faces, in pixels (required);
- ``in_channels``:    3 for RGB (default);
- ``stages``:         the convolutional trunk, a list of items (required):

  * ``C`` (an int):   conv3x3, stride 1, padding 1, C output channels, then norm and act;
  * ``"M"``:          2x2 max pool, stride 2;
  * ``"A"``:          2x2 average pool, stride 2;
  * ``{"conv": C, "kernel": k, "stride": s}``: conv kxk (odd k), padding k // 2,
    stride s, then norm and act (``kernel`` defaults to 3, ``stride`` to 1);
  * ``{"res": C, "stride": s}``: a ResNet basic block: conv3x3(stride s) + norm + act +
    conv3x3 + norm, added to the input (through conv1x1(stride s) + norm when the
    channels or the stride change), then act;

- ``embedding_dim``:  D, the width of the embedding: global average pool, then
                      ``Linear(C, D)`` (required);
- ``embedding_norm``: ``"bn"`` (a ``BatchNorm1d`` on the embedding, the default) or
                      ``"none"``;
- ``num_classes``:    K, the identities of the classifier ``Linear(D, K)`` (required);
- ``norm``:           ``"bn"`` (``BatchNorm2d`` after every conv, the default) or ``"none"``;
- ``act``:            ``"relu"`` (default) or ``"prelu"`` (one slope per channel);
- ``dropout``:        drop probability between the embedding and the classifier
                      (default 0.0: no dropout layer).

``build_features(spec)`` turns the trunk and the embedding into one ``Sequential``;
``tinyface.models.build_model(spec)`` adds the classifier (a ``FaceNet``).
"""
import copy
import json
import numbers

from tinyface import nn
from tinyface.nn.module import Module, build_layer, register_layer

REQUIRED_KEYS = ("input_size", "stages", "embedding_dim", "num_classes")
DEFAULTS = {"name": "facenet", "in_channels": 3, "embedding_norm": "bn", "norm": "bn",
            "act": "relu", "dropout": 0.0}
# the order in which keys are printed and stored
KEY_ORDER = ("name", "input_size", "in_channels", "stages", "embedding_dim", "embedding_norm",
             "num_classes", "norm", "act", "dropout")
NORMS = ("bn", "none")
ACTS = ("relu", "prelu")


class SpecError(ValueError):
    """A malformed architecture spec (a ``ValueError``: the message says what to fix)."""


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise SpecError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _stage_item(item, i):
    """Check one ``stages`` item; return its canonical JSON form."""
    where = f"stages[{i}]"
    if isinstance(item, str):
        if item not in ("M", "A"):
            raise SpecError(f"{where}: unknown stage {item!r}; use an int (conv3x3), 'M' (max "
                            f"pool), 'A' (average pool), {{'conv': C, ...}} or {{'res': C, ...}}")
        return item
    if isinstance(item, dict):
        if "conv" in item:
            extra = set(item) - {"conv", "kernel", "stride"}
            if extra:
                raise SpecError(f"{where}: unknown key(s) {sorted(extra)} in a conv stage "
                                f"(allowed: conv, kernel, stride)")
            out = {"conv": _positive_int(item["conv"], f"{where}['conv']"),
                   "kernel": _positive_int(item.get("kernel", 3), f"{where}['kernel']"),
                   "stride": _positive_int(item.get("stride", 1), f"{where}['stride']")}
            if out["kernel"] % 2 == 0:
                raise SpecError(f"{where}: kernel must be odd (padding is kernel // 2), got {out['kernel']}")
            return out
        if "res" in item:
            extra = set(item) - {"res", "stride"}
            if extra:
                raise SpecError(f"{where}: unknown key(s) {sorted(extra)} in a res stage "
                                f"(allowed: res, stride)")
            return {"res": _positive_int(item["res"], f"{where}['res']"),
                    "stride": _positive_int(item.get("stride", 1), f"{where}['stride']")}
        raise SpecError(f"{where}: a dict stage needs a 'conv' or a 'res' key, got {item!r}")
    return _positive_int(item, where)


def normalize_spec(spec):
    """Check ``spec`` and return a complete deep copy (defaults filled, keys ordered).

    Raises ``SpecError`` (a ``ValueError``) naming the first problem: a missing or
    unknown key, a bad value, or a trunk that shrinks the feature map to nothing.
    """
    if not isinstance(spec, dict):
        raise SpecError(f"a spec is a dict, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(KEY_ORDER))
    if unknown:
        raise SpecError(f"unknown spec key(s) {unknown}; known: {list(KEY_ORDER)}")
    missing = [k for k in REQUIRED_KEYS if k not in spec]
    if missing:
        raise SpecError(f"spec is missing key(s) {missing}")
    out = {**DEFAULTS, **copy.deepcopy(spec)}
    out = {k: out[k] for k in KEY_ORDER}
    out["name"] = str(out["name"])
    for key in ("input_size", "in_channels", "embedding_dim", "num_classes"):
        out[key] = _positive_int(out[key], key)
    if not isinstance(out["stages"], (list, tuple)) or not out["stages"]:
        raise SpecError(f"stages must be a non-empty list, got {out['stages']!r}")
    out["stages"] = [_stage_item(item, i) for i, item in enumerate(out["stages"])]
    if not any(not isinstance(s, str) for s in out["stages"]):
        raise SpecError("stages must contain at least one conv (an int or a dict)")
    for key, allowed in (("norm", NORMS), ("embedding_norm", NORMS), ("act", ACTS)):
        if out[key] not in allowed:
            raise SpecError(f"{key} must be one of {list(allowed)}, got {out[key]!r}")
    p = out["dropout"]
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) < 1.0:
        raise SpecError(f"dropout must be a number in [0, 1), got {p!r}")
    out["dropout"] = float(p)
    trunk_shapes(out)     # raises if the feature map vanishes
    return out


def _conv_out(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def trunk_shapes(spec):
    """Per-face shape ``(C, H, W)`` after each ``stages`` item, as a list.

    Raises ``SpecError`` if an item makes the feature map empty.
    """
    c, s = spec["in_channels"], spec["input_size"]
    shapes = []
    for i, item in enumerate(spec["stages"]):
        if isinstance(item, str):                       # 2x2 pool, stride 2
            s = _conv_out(s, 2, 2, 0)
        elif isinstance(item, dict) and "conv" in item:
            c, s = item["conv"], _conv_out(s, item["kernel"], item["stride"], item["kernel"] // 2)
        elif isinstance(item, dict):                    # res block: stride on its first conv
            c, s = item["res"], _conv_out(s, 3, item["stride"], 1)
        else:
            c = item
        if s < 1:
            raise SpecError(f"stages[{i}] ({item!r}) shrinks the {spec['input_size']}x"
                            f"{spec['input_size']} input to an empty feature map; remove a "
                            f"pool or a stride, or use a larger input_size")
        shapes.append((c, s, s))
    return shapes


def format_spec(spec):
    """The spec as JSON text, one key per line (``json.loads`` reads it back)."""
    spec = normalize_spec(spec)
    body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in spec.items())
    return "{\n" + body + "\n}"


def parse_spec(text):
    """A spec from JSON text (e.g. ``format_spec`` output), checked and completed."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"a spec must be JSON: {e}") from None
    return normalize_spec(spec)


# ------------------------------------------------------------------------ layers
def _norm_act(spec, channels):
    layers = [nn.BatchNorm2d(channels)] if spec["norm"] == "bn" else []
    return layers, _act(spec, channels)


def _act(spec, channels):
    return nn.ReLU() if spec["act"] == "relu" else nn.PReLU(channels)


def _conv_block(spec, cin, cout, kernel=3, stride=1):
    """conv kxk (padding k // 2) + norm + act, as a list of layers."""
    norm, act = _norm_act(spec, cout)
    return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2), *norm, act]


def _res_block(spec, cin, cout, stride):
    bn = spec["norm"] == "bn"
    body = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1)]
    body += [nn.BatchNorm2d(cout)] if bn else []
    body += [_act(spec, cout), nn.Conv2d(cout, cout, 3, padding=1)]
    body += [nn.BatchNorm2d(cout)] if bn else []
    shortcut = None
    if cin != cout or stride != 1:
        shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride),
                                 *([nn.BatchNorm2d(cout)] if bn else []))
    return Residual(nn.Sequential(*body), shortcut, _act(spec, cout))


def build_features(spec):
    """The trunk and the embedding of ``spec`` as one ``Sequential``.

    Returns ``(features, embedding_dim)``; ``features`` maps (N, in_channels, S, S)
    to (N, embedding_dim): convs ..., ``GlobalAvgPool2d``, ``Linear(C, D)`` and, with
    ``embedding_norm="bn"``, ``BatchNorm1d(D)``. Weights come from the generator that
    ``tinyface.nn.manual_seed`` resets.
    """
    spec = normalize_spec(spec)
    layers, c = [], spec["in_channels"]
    for item in spec["stages"]:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        elif item == "A":
            layers.append(nn.AvgPool2d(2))
        elif isinstance(item, dict) and "conv" in item:
            layers += _conv_block(spec, c, item["conv"], item["kernel"], item["stride"])
            c = item["conv"]
        elif isinstance(item, dict):
            layers.append(_res_block(spec, c, item["res"], item["stride"]))
            c = item["res"]
        else:
            layers += _conv_block(spec, c, item)
            c = item
    D = spec["embedding_dim"]
    layers += [nn.GlobalAvgPool2d(), nn.Linear(c, D)]
    if spec["embedding_norm"] == "bn":
        layers.append(nn.BatchNorm1d(D))
    return nn.Sequential(*layers), D


@register_layer
class Residual(Module):
    """``out = act(body(x) + shortcut(x))``; the shortcut is the identity when ``None``.

    body, shortcut: layers mapping (N, C, H, W) to the same output shape (N, C', H', W');
    act:            an activation layer applied after the sum, or ``None``.
    Children are named ``body``, ``shortcut`` and ``act`` (``features.3.body.0.weight``).
    """

    def __init__(self, body, shortcut=None, act=None):
        super().__init__()
        self.body = self.add_child("body", body)
        self.shortcut = self.add_child("shortcut", shortcut) if shortcut is not None else None
        self.act = self.add_child("act", act) if act is not None else None

    def forward(self, x):
        x = self.check_input(x, ndim=4)
        y = self.body.forward(x)                                   # (N, C', H', W')
        s = self.shortcut.forward(x) if self.shortcut is not None else x
        if s.shape != y.shape:
            raise ValueError(f"Residual: body gives {y.shape} but the shortcut gives {s.shape}")
        z = y + s                                                  # (N, C', H', W')
        self.cache = True
        return self.act.forward(z) if self.act is not None else z

    def backward(self, dout):
        if self.cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        dz = self.act.backward(dout) if self.act is not None else self.check_grad(dout)
        dx = self.body.backward(dz)                                # (N, C, H, W)
        return dx + (self.shortcut.backward(dz) if self.shortcut is not None else dz)

    def config(self):
        return {"type": "Residual", "body": self.body.config(),
                "shortcut": None if self.shortcut is None else self.shortcut.config(),
                "act": None if self.act is None else self.act.config()}

    @classmethod
    def from_config(cls, config):
        def opt(c):
            return None if c is None else build_layer(c)
        return cls(build_layer(config["body"]), opt(config.get("shortcut")), opt(config.get("act")))

    def __repr__(self):
        parts = [f"body={self.body!r}"]
        if self.shortcut is not None:
            parts.append(f"shortcut={self.shortcut!r}")
        if self.act is not None:
            parts.append(f"act={self.act!r}")
        return "Residual(\n  " + ",\n  ".join(p.replace("\n", "\n  ") for p in parts) + "\n)"
