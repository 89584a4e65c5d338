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
  * ``{"conv": C, "kernel": k, "stride": s, "padding": p}``: conv kxk, stride s,
    padding p, then norm and act (``kernel`` defaults to 3, ``stride`` to 1, ``padding``
    to k // 2, which needs an odd k; ``"padding": 0`` is "valid", no padding);
  * ``{"pool": "max" | "avg", "kernel": k, "stride": s}``: kxk pooling, stride s
    (default k), no padding;
  * ``{"res": C, "stride": s, "padding": p, "shortcut": "conv" | "pool"}``: a ResNet
    basic block: conv3x3(stride s, padding p) + norm + act + conv3x3 + norm, added to the
    shortcut, then act (``padding`` defaults to 1). The shortcut is the input itself when
    the channels and the size stay; otherwise ``"conv"`` (default) is conv1x1(stride s)
    + norm, and ``"pool"`` (dlib's ResNet) is a 2x2 stride-2 average pool (when s = 2)
    with the new channels filled with zeros, the main path getting a zero row at the
    bottom and a zero column at the right when it comes out one smaller;

- ``embedding_dim``:  D, the width of the embedding: global average pool, then
                      ``Linear(C, D)`` (required);
- ``embedding_norm``: ``"bn"`` (a ``BatchNorm1d`` on the embedding, the default) or
                      ``"none"``;
- ``embedding_bias``: whether the embedding's ``Linear`` has a bias (default true);
- ``num_classes``:    K, the identities of the classifier ``Linear(D, K)`` (required);
- ``norm``:           ``"bn"`` (``BatchNorm2d`` after every conv, the default), ``"affine"``
                      (a per-channel ``Affine2d``, y = x * w + b, as in dlib's ResNet) or
                      ``"none"``;
- ``act``:            ``"relu"`` (default) or ``"prelu"`` (one slope per channel);
- ``dropout``:        drop probability between the embedding and the classifier
                      (default 0.0: no dropout layer).

Optional keys (``padding``, ``shortcut``, ``embedding_bias``) are left out of the
canonical form while they hold their default, so that specs written before they
existed read back, print and fingerprint as they always did.

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
# keys stored only when they differ from their default (see the module docstring)
OPTIONAL_DEFAULTS = {"embedding_bias": True}
# the order in which keys are printed and stored
KEY_ORDER = ("name", "input_size", "in_channels", "stages", "embedding_dim", "embedding_norm",
             "embedding_bias", "num_classes", "norm", "act", "dropout")
NORMS = ("bn", "affine", "none")
EMBEDDING_NORMS = ("bn", "none")
POOLS = {"M": "max", "A": "avg"}          # the 2x2 stride-2 shorthands
SHORTCUTS = ("conv", "pool")
ACTS = ("relu", "prelu")


class SpecError(ValueError):
    """A malformed architecture spec (a ``ValueError``: the message says what to fix)."""


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise SpecError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _nonneg_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise SpecError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_keys(item, allowed, kind, where):
    extra = set(item) - set(allowed)
    if extra:
        raise SpecError(f"{where}: unknown key(s) {sorted(extra)} in a {kind} stage "
                        f"(allowed: {', '.join(allowed)})")


def _stage_item(item, i):
    """Check one ``stages`` item; return its canonical JSON form."""
    where = f"stages[{i}]"
    if isinstance(item, str):
        if item not in POOLS:
            raise SpecError(f"{where}: unknown stage {item!r}; use an int (conv3x3), 'M' (max "
                            f"pool), 'A' (average pool), {{'conv': C, ...}}, {{'pool': ...}} "
                            f"or {{'res': C, ...}}")
        return item
    if isinstance(item, dict):
        if "conv" in item:
            _check_keys(item, ("conv", "kernel", "stride", "padding"), "conv", where)
            out = {"conv": _positive_int(item["conv"], f"{where}['conv']"),
                   "kernel": _positive_int(item.get("kernel", 3), f"{where}['kernel']"),
                   "stride": _positive_int(item.get("stride", 1), f"{where}['stride']")}
            if "padding" in item:
                pad = _nonneg_int(item["padding"], f"{where}['padding']")
                if pad != out["kernel"] // 2 or out["kernel"] % 2 == 0:
                    out["padding"] = pad
            elif out["kernel"] % 2 == 0:
                raise SpecError(f"{where}: an even kernel needs an explicit padding (the "
                                f"default, kernel // 2, keeps the size only for odd kernels), "
                                f"got kernel {out['kernel']}")
            return out
        if "pool" in item:
            _check_keys(item, ("pool", "kernel", "stride"), "pool", where)
            if item["pool"] not in POOLS.values():
                raise SpecError(f"{where}: pool must be 'max' or 'avg', got {item['pool']!r}")
            k = _positive_int(item.get("kernel", 2), f"{where}['kernel']")
            return {"pool": item["pool"], "kernel": k,
                    "stride": _positive_int(item.get("stride", k), f"{where}['stride']")}
        if "res" in item:
            _check_keys(item, ("res", "stride", "padding", "shortcut"), "res", where)
            out = {"res": _positive_int(item["res"], f"{where}['res']"),
                   "stride": _positive_int(item.get("stride", 1), f"{where}['stride']")}
            pad = _nonneg_int(item.get("padding", 1), f"{where}['padding']")
            if pad != 1:
                out["padding"] = pad
            shortcut = item.get("shortcut", "conv")
            if shortcut not in SHORTCUTS:
                raise SpecError(f"{where}: shortcut must be one of {list(SHORTCUTS)}, got "
                                f"{shortcut!r}")
            if shortcut == "pool":
                if out["stride"] > 2:
                    raise SpecError(f"{where}: a 'pool' shortcut pools 2x2 with stride 2, so "
                                    f"the block's stride must be 1 or 2, got {out['stride']}")
                out["shortcut"] = "pool"
            return out
        raise SpecError(f"{where}: a dict stage needs a 'conv', 'pool' or 'res' key, got {item!r}")
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
    out = {**DEFAULTS, **OPTIONAL_DEFAULTS, **copy.deepcopy(spec)}
    if not isinstance(out["embedding_bias"], bool):
        raise SpecError(f"embedding_bias must be true or false, got {out['embedding_bias']!r}")
    out = {k: out[k] for k in KEY_ORDER
           if k not in OPTIONAL_DEFAULTS or out[k] != OPTIONAL_DEFAULTS[k]}
    out["name"] = str(out["name"])
    for key in ("input_size", "in_channels", "embedding_dim", "num_classes"):
        out[key] = _positive_int(out[key], key)
    if not isinstance(out["stages"], (list, tuple)) or not out["stages"]:
        raise SpecError(f"stages must be a non-empty list, got {out['stages']!r}")
    out["stages"] = [_stage_item(item, i) for i, item in enumerate(out["stages"])]
    if not any(not isinstance(s, str) for s in out["stages"]):
        raise SpecError("stages must contain at least one conv (an int or a dict)")
    for key, allowed in (("norm", NORMS), ("embedding_norm", EMBEDDING_NORMS), ("act", ACTS)):
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


def res_geometry(item, size):
    """Sizes of a ``res`` stage on a ``size`` x ``size`` input: ``(main, out)``.

    ``main`` is the side the two convs give; ``out`` the block's output side: ``main``,
    except for a ``pool`` shortcut, whose 2x2 stride-2 average pool gives ``size // 2``
    (the main path is then zero-padded up to it; it is never larger).
    """
    main = _conv_out(size, 3, item["stride"], item.get("padding", 1))
    main = _conv_out(main, 3, 1, 1)
    if item.get("shortcut") == "pool" and item["stride"] == 2:
        return main, size // 2
    return main, main


def trunk_shapes(spec):
    """Per-face shape ``(C, H, W)`` after each ``stages`` item, as a list.

    Raises ``SpecError`` if an item makes the feature map empty, or a ``pool``
    shortcut cannot be matched by padding the main path.
    """
    c, s = spec["in_channels"], spec["input_size"]
    shapes = []
    for i, item in enumerate(spec["stages"]):
        if isinstance(item, str):                       # 2x2 pool, stride 2
            s = _conv_out(s, 2, 2, 0)
        elif isinstance(item, dict) and "pool" in item:
            s = _conv_out(s, item["kernel"], item["stride"], 0)
        elif isinstance(item, dict) and "conv" in item:
            pad = item.get("padding", item["kernel"] // 2)
            c, s = item["conv"], _conv_out(s, item["kernel"], item["stride"], pad)
        elif isinstance(item, dict):                    # res block: stride on its first conv
            main, out = res_geometry(item, s)
            if item.get("shortcut") == "pool":
                if item["res"] < c:
                    raise SpecError(f"stages[{i}]: a 'pool' shortcut zero-fills new channels, "
                                    f"so it cannot go from {c} down to {item['res']} channels")
                if main > out or (out != s and item["stride"] == 1):
                    raise SpecError(f"stages[{i}] ({item!r}): the main path gives {main}x{main} "
                                    f"but the pooled shortcut {out}x{out}; only a main path "
                                    f"smaller than the shortcut can be zero-padded")
            elif main != _conv_out(s, 1, item["stride"], 0):
                raise SpecError(f"stages[{i}] ({item!r}): the main path gives {main}x{main} "
                                f"but the shortcut {_conv_out(s, 1, item['stride'], 0)}x"
                                f"{_conv_out(s, 1, item['stride'], 0)}; use padding 1, or a "
                                f"'pool' shortcut")
            c, s = item["res"], out
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
def _norm(spec, channels):
    """The norm layer after a conv, as a list (empty for ``"none"``)."""
    if spec["norm"] == "bn":
        return [nn.BatchNorm2d(channels)]
    if spec["norm"] == "affine":
        return [nn.Affine2d(channels)]
    return []


def _act(spec, channels):
    return nn.ReLU() if spec["act"] == "relu" else nn.PReLU(channels)


def _conv_block(spec, cin, cout, kernel=3, stride=1, padding=None):
    """conv kxk (padding k // 2 unless given) + norm + act, as a list of layers."""
    padding = kernel // 2 if padding is None else padding
    return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding), *_norm(spec, cout),
            _act(spec, cout)]


def _res_block(spec, item, cin, size):
    """A ``res`` stage on a (cin, size, size) input as a ``Residual``."""
    cout, stride, pad = item["res"], item["stride"], item.get("padding", 1)
    body = [nn.Conv2d(cin, cout, 3, stride=stride, padding=pad), *_norm(spec, cout),
            _act(spec, cout), nn.Conv2d(cout, cout, 3, padding=1), *_norm(spec, cout)]
    main, out = res_geometry(item, size)
    shortcut = None
    if item.get("shortcut") == "pool":
        if main < out:                                  # a zero row below, a zero column right
            body.append(nn.ZeroPad2d(height=out, width=out))
        pool = [nn.AvgPool2d(2)] if stride == 2 else []
        fill = [nn.ZeroPad2d(channels=cout)] if cout != cin else []
        if pool or fill:
            shortcut = nn.Sequential(*pool, *fill)
    elif cin != cout or stride != 1:
        shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride),
                                 *([nn.BatchNorm2d(cout)] if spec["norm"] == "bn" else []))
    return Residual(nn.Sequential(*body), shortcut, _act(spec, cout))


def build_features(spec):
    """The trunk and the embedding of ``spec`` as one ``Sequential``.

    Returns ``(features, embedding_dim)``; ``features`` maps (N, in_channels, S, S)
    to (N, embedding_dim): convs ..., ``GlobalAvgPool2d``, ``Linear(C, D)`` (without
    bias when ``embedding_bias`` is false) and, with ``embedding_norm="bn"``,
    ``BatchNorm1d(D)``. Weights come from the generator that ``tinyface.nn.manual_seed``
    resets.
    """
    spec = normalize_spec(spec)
    layers, c = [], spec["in_channels"]
    sizes = [spec["input_size"]] + [s for _, s, _ in trunk_shapes(spec)]   # side before each item
    for item, size in zip(spec["stages"], sizes):
        if item == "M" or (isinstance(item, dict) and item.get("pool") == "max"):
            k, s = (2, 2) if item == "M" else (item["kernel"], item["stride"])
            layers.append(nn.MaxPool2d(k, stride=s))
        elif item == "A" or (isinstance(item, dict) and item.get("pool") == "avg"):
            k, s = (2, 2) if item == "A" else (item["kernel"], item["stride"])
            layers.append(nn.AvgPool2d(k, stride=s))
        elif isinstance(item, dict) and "conv" in item:
            layers += _conv_block(spec, c, item["conv"], item["kernel"], item["stride"],
                                  item.get("padding"))
            c = item["conv"]
        elif isinstance(item, dict):
            layers.append(_res_block(spec, item, c, size))
            c = item["res"]
        else:
            layers += _conv_block(spec, c, item)
            c = item
    D = spec["embedding_dim"]
    layers += [nn.GlobalAvgPool2d(), nn.Linear(c, D, bias=spec.get("embedding_bias", True))]
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
        out = self.act.forward(z) if self.act is not None else z
        return self.keep(out, True)

    def backward(self, dout):
        dout = self.check_dout(dout)                               # (N, C', H', W')
        dz = self.act.backward(dout) if self.act is not None else dout
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
