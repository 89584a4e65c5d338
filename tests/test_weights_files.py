"""tinyface.models.weights: the TF.js manifest + binary reader and where it finds dlib's files.

Synthetic manifests written in tmp_path check the decoding bit for bit and every error;
dlib's real files are checked when ``default_data_root()/dlib_resnet`` exists.
"""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tinyface.data.dataset import default_data_root
from tinyface.models import weights as W
from tinyface.models.weights import (DLIB_FILES, WeightsError, find_weights_dir, read_manifest,
                                     read_manifest_weights)

MANIFEST, BINARY = DLIB_FILES["manifest"], DLIB_FILES["binary"]
COMMAND = DLIB_FILES["download_command"]


def synthetic_tensors(seed=0):
    """[(name, shape, raw, quantization)]: a uint8 filter, a float32 bias, a uint8 fc."""
    rng = np.random.default_rng(seed)
    return [
        ("block/conv/filters", (2, 2, 1, 3), rng.integers(0, 256, 12, dtype=np.uint8),
         {"dtype": "uint8", "scale": 0.0123456789, "min": -1.5}),
        ("block/conv/bias", (3,), rng.standard_normal(3).astype(np.float32), None),
        ("fc", (3, 2), rng.integers(0, 256, 6, dtype=np.uint8),
         {"dtype": "uint8", "scale": 3.3e-4, "min": -0.04}),
    ]


def write_weights(folder, tensors=None, shards=1, edit=None):
    """Write a manifest + binary (optionally split into shards) into folder; return folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = synthetic_tensors() if tensors is None else tensors
    blob = b"".join(raw.astype("<f4" if q is None else np.uint8).tobytes()
                    for _, _, raw, q in tensors)
    cut = [len(blob) * i // shards for i in range(shards + 1)]
    paths = [BINARY if shards == 1 else f"shard{i}.bin" for i in range(shards)]
    for i, p in enumerate(paths):
        (folder / p).write_bytes(blob[cut[i]:cut[i + 1]])
    weights = []
    for name, shape, _, q in tensors:
        w = {"name": name, "shape": list(shape), "dtype": "float32"}
        if q is not None:
            w["quantization"] = q
        weights.append(w)
    manifest = [{"paths": paths, "weights": weights}]
    if edit:
        edit(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def expected_values(tensors):
    out = {}
    for name, shape, raw, q in tensors:
        if q is None:
            out[name] = raw.reshape(shape)
        else:   # TF.js: q * scale + min in float64, stored as float32
            out[name] = (raw.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
            out[name] = out[name].reshape(shape)
    return out


def assert_one_line(exc_info, *names):
    msg = str(exc_info.value)
    assert "\n" not in msg and "\r" not in msg, msg
    assert COMMAND in msg, msg
    for n in names:
        assert str(n) in msg, msg


# --- reading back ---------------------------------------------------------------------------

@pytest.mark.parametrize("shards", [1, 2])
def test_synthetic_manifest_reads_back_exactly(tmp_path, shards):
    tensors = synthetic_tensors()
    folder = write_weights(tmp_path, tensors, shards=shards)
    w = read_manifest_weights(folder, check_sha256=False)
    want = expected_values(tensors)
    assert list(w) == [t[0] for t in tensors]                       # manifest order
    for name in want:
        assert w[name].dtype == np.float32 and w[name].shape == want[name].shape
        assert np.array_equal(w[name].view(np.uint32), want[name].view(np.uint32)), name
    # one value by hand: q * scale + min
    q0 = int(tensors[0][2][0])
    assert w["block/conv/filters"].ravel()[0] == np.float32(q0 * 0.0123456789 - 1.5)
    # a manifest path works as well as its folder
    w2 = read_manifest_weights(folder / MANIFEST, check_sha256=False)
    assert all(np.array_equal(w[k], w2[k]) for k in w)


def test_read_manifest_gives_offsets_and_quantisation(tmp_path):
    folder = write_weights(tmp_path)
    e = read_manifest(folder)
    assert [x.name for x in e] == ["block/conv/filters", "block/conv/bias", "fc"]
    assert [x.offset for x in e] == [0, 12, 24] and [x.nbytes for x in e] == [12, 12, 6]
    assert [x.quantized for x in e] == [True, False, True]
    assert e[0].scale == 0.0123456789 and e[0].min == -1.5
    assert e[1].scale is None and e[1].min is None
    assert "fc" in W.format_manifest(e).splitlines()[2]


def test_known_checksums_accept_the_known_files(tmp_path, monkeypatch):
    folder = write_weights(tmp_path)
    for key, name in (("manifest_sha256", MANIFEST), ("binary_sha256", BINARY)):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        monkeypatch.setitem(DLIB_FILES, key, digest)
    monkeypatch.setitem(DLIB_FILES, "binary_size", (folder / BINARY).stat().st_size)
    assert list(read_manifest_weights(folder)) == ["block/conv/filters", "block/conv/bias", "fc"]
    # same manifest, a binary of the right size but other bytes
    blob = bytearray((folder / BINARY).read_bytes())
    blob[0] ^= 1
    (folder / BINARY).write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="sha256") as ei:
        read_manifest_weights(folder)
    assert_one_line(ei, folder / BINARY)


# --- every bad input: one line, the file, the download command -------------------------------

def _truncate(folder):
    p = folder / BINARY
    p.write_bytes(p.read_bytes()[:-5])


def _grow(folder):
    p = folder / BINARY
    p.write_bytes(p.read_bytes() + b"\0" * 4)


BAD = {
    "missing manifest": (lambda f: (f / MANIFEST).unlink(), MANIFEST, "missing"),
    "missing binary": (lambda f: (f / BINARY).unlink(), BINARY, "missing"),
    "truncated binary": (_truncate, BINARY, "truncated"),
    "binary longer than the manifest says": (_grow, BINARY, "does not match"),
    "broken JSON": (lambda f: (f / MANIFEST).write_text('[{"paths": ["x.bin"], "weig'),
                    MANIFEST, "JSON"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_give_one_line_errors(tmp_path, case):
    spoil, name, what = BAD[case]
    folder = write_weights(tmp_path)
    spoil(folder)
    with pytest.raises(WeightsError, match=what) as ei:
        read_manifest_weights(folder, check_sha256=False)
    assert_one_line(ei, folder / name)
    assert isinstance(ei.value, ValueError)


def _add_tensor(m):
    m[0]["weights"].append({"name": "extra", "shape": [2], "dtype": "float32"})


def _drop_tensor(m):
    m[0]["weights"].pop()


def _reshape(m):
    m[0]["weights"][0]["shape"] = [2, 2, 1, 4]


def _dtype(kind):
    def edit(m):
        if kind == "int32":
            m[0]["weights"][1]["dtype"] = "int32"
        else:
            m[0]["weights"][0]["quantization"]["dtype"] = kind
    return edit


@pytest.mark.parametrize("edit,what", [
    (_add_tensor, "truncated"),                  # the manifest wants more bytes than there are
    (_drop_tensor, "does not match"),            # fewer tensors than the binary holds
    (_reshape, "truncated"),
    (_dtype("int32"), "dtype 'int32'"),
    (_dtype("uint16"), "'uint16'"),
    (lambda m: m[0]["weights"][0].pop("shape"), "shape"),
    (lambda m: m[0].pop("paths"), "paths"),
    (lambda m: m[0]["weights"].append(dict(m[0]["weights"][1])), "twice"),
])
def test_manifest_that_does_not_match_the_binary(tmp_path, edit, what):
    folder = write_weights(tmp_path, edit=edit)
    with pytest.raises(WeightsError, match=what) as ei:
        read_manifest_weights(folder, check_sha256=False)
    assert_one_line(ei)
    assert str(folder) in str(ei.value)


def test_wrong_checksum_is_refused_by_default(tmp_path):
    folder = write_weights(tmp_path)                      # well formed, but not dlib's files
    with pytest.raises(WeightsError, match="sha256") as ei:
        read_manifest_weights(folder)
    assert_one_line(ei, folder / MANIFEST, "check_sha256=False")


# --- where the files are found ---------------------------------------------------------------

@pytest.fixture
def places(tmp_path, monkeypatch):
    """Four folders, each with the two files: explicit, TINYFACE_DATA, shared, cache."""
    d = {k: tmp_path / k for k in ("explicit", "env", "shared", "cache")}
    for k in ("explicit",):
        write_weights(d[k])
    for k in ("env", "shared"):
        write_weights(d[k] / "dlib_resnet")
    write_weights(d["cache"] / "dlib_resnet")
    monkeypatch.setenv("TINYFACE_CACHE", str(d["cache"]))
    monkeypatch.delenv("TINYFACE_DATA", raising=False)
    return d


def test_search_order(places, monkeypatch):
    d = places
    shared_root = d["shared"]
    monkeypatch.setattr(W, "default_data_root", lambda: shared_root)
    assert find_weights_dir(d["explicit"]) == d["explicit"]                 # explicit first
    assert find_weights_dir(d["explicit"] / MANIFEST) == d["explicit"]      # or either file
    assert find_weights_dir(str(d["explicit"] / BINARY)) == d["explicit"]
    assert find_weights_dir() == d["shared"] / "dlib_resnet"                # shared > cache
    monkeypatch.setattr(W, "default_data_root", lambda: None)
    assert find_weights_dir() == d["cache"] / "dlib_resnet"                 # then the cache


def test_tinyface_data_comes_before_shared_and_cache(places, monkeypatch):
    d = places
    monkeypatch.setenv("TINYFACE_DATA", str(d["env"]))   # the real default_data_root()
    assert find_weights_dir() == d["env"] / "dlib_resnet"
    (d["env"] / "dlib_resnet" / BINARY).unlink()          # incomplete: TINYFACE_DATA replaces
    assert find_weights_dir() == d["cache"] / "dlib_resnet"   # shared/, so the cache is next


def test_nothing_found_names_the_places_and_the_command(places, monkeypatch):
    d = places
    monkeypatch.setattr(W, "default_data_root", lambda: d["shared"])
    (d["shared"] / "dlib_resnet" / MANIFEST).unlink()
    (d["cache"] / "dlib_resnet" / BINARY).unlink()
    with pytest.raises(WeightsError, match="not found") as ei:
        find_weights_dir()
    assert_one_line(ei, d["shared"] / "dlib_resnet", d["cache"] / "dlib_resnet", MANIFEST, BINARY)


@pytest.mark.parametrize("bad", ["missing-folder", "no-binary", "other-file"])
def test_explicit_path_never_falls_back(places, bad):
    d = places
    if bad == "missing-folder":
        p, name = d["explicit"] / "nope", "nope"
    elif bad == "no-binary":
        (d["explicit"] / BINARY).unlink()
        p, name = d["explicit"], BINARY
    else:
        p = d["explicit"] / "notes.txt"
        p.write_text("hi")
        name = "notes.txt"
    with pytest.raises(WeightsError) as ei:
        find_weights_dir(p)
    assert_one_line(ei, name)


# --- dlib's real files (shared/data, or TINYFACE_DATA) ----------------------------------------

def _real_folder():
    root = default_data_root()
    folder = root / "dlib_resnet" if root is not None else None
    if folder is None or not (folder / MANIFEST).is_file() or not (folder / BINARY).is_file():
        pytest.skip("dlib's weights are not under default_data_root()/dlib_resnet "
                    f"(get them with: {COMMAND})")
    return folder


def test_real_dlib_manifest():
    folder = _real_folder()
    entries = read_manifest(folder)
    w = read_manifest_weights(folder)                       # checks sha256 and size too
    assert len(w) == len(entries) == 117
    assert sum(a.size for a in w.values()) == 5_614_592
    assert sum(e.quantized for e in entries) == 109
    assert [e.name for e in entries if not e.quantized] == [
        f"conv64_{b}/conv{i}/conv/filters" for b in ("down", "1", "2", "3") for i in (1, 2)]
    first = next(iter(w))
    assert first == "conv32_down/conv/filters" and w[first].shape == (7, 7, 3, 32)
    assert w["fc"].shape == (256, 128) and list(w)[-1] == "fc"
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in w.values())
    # a uint8 tensor lies on its grid: (value - min) / scale is an integer in 0..255
    e = entries[0]
    q = (w[e.name].astype(np.float64) - e.min) / e.scale
    assert np.abs(q - np.round(q)).max() < 1e-3 and q.min() > -0.5 and q.max() < 255.5


# --- dlib's own .dat (tinyface.models.dlib_dat) -----------------------------------------------

def dlib_int(v):
    """dlib's compact integer: a header byte (count of bytes, 0x80 if negative), then LE bytes."""
    mag = abs(v).to_bytes(max(1, (abs(v).bit_length() + 7) // 8), "little")
    return bytes([len(mag) | (0x80 if v < 0 else 0)]) + mag


def dlib_tensor(a):
    a = np.asarray(a, np.float32)
    shape = a.shape + (1,) * (4 - a.ndim)
    return dlib_int(2) + b"".join(dlib_int(d) for d in shape) + a.astype("<f4").tobytes()


def tiny_dat(rng, channels=2):
    """29 con_/affine_ pairs of 1x1 convs (channels -> channels; the first 3 -> channels) + fc."""
    from tinyface.models.dlib_dat import CONVS
    blob, want = [dlib_int(1), dlib_int(13), b"loss_metric_2"], {}
    for i, name in enumerate(CONVS):
        k, nf, kh = (3 if i == 0 else channels), channels, (3 if i == 0 else 1)
        f = rng.standard_normal((nf, k, kh, kh)).astype(np.float32)
        b = rng.standard_normal(nf).astype(np.float32)
        g, beta = rng.standard_normal((2, nf)).astype(np.float32)
        blob += [dlib_int(1), dlib_int(5), b"con_4", dlib_tensor(np.concatenate([f.ravel(), b])),
                 *map(dlib_int, (nf, kh, kh, 1, 1, 0, 0)), dlib_int(1),
                 *map(dlib_int, (nf, k, kh, kh)), b"\x01\x01relu_"]
        blob += [dlib_int(1), dlib_int(7), b"affine_", dlib_tensor(np.concatenate([g, beta]))]
        want[f"{name}/conv/filters"] = f.transpose(2, 3, 1, 0)
        want[f"{name}/conv/bias"], want[f"{name}/scale/weights"] = b, g
        want[f"{name}/scale/biases"] = beta
    fc = rng.standard_normal((channels, 4)).astype(np.float32)
    blob += [dlib_int(1), dlib_int(4), b"fc_2", dlib_int(4), dlib_int(channels), dlib_tensor(fc)]
    want["fc"] = fc
    return b"".join(blob), want


def test_dlib_integer_encoding():
    assert dlib_int(32) == b"\x01\x20" and dlib_int(4736) == b"\x02\x80\x12"
    assert dlib_int(-17) == b"\x81\x11"


def test_tiny_dat_reads_back_in_manifest_layout(tmp_path):
    from tinyface.models.dlib_dat import read_dlib_dat
    blob, want = tiny_dat(np.random.default_rng(1))
    (tmp_path / "tiny.dat").write_bytes(blob)
    got = read_dlib_dat(tmp_path / "tiny.dat")
    assert list(got) == list(want) and len(got) == 117
    for k in want:
        assert got[k].dtype == np.float32 and np.array_equal(got[k], want[k]), k
    assert got["conv32_down/conv/filters"].shape == (3, 3, 3, 2)          # HWIO
    (tmp_path / "cut.dat").write_bytes(blob[: len(blob) - 7])
    with pytest.raises(WeightsError, match="truncated") as ei:
        read_dlib_dat(tmp_path / "cut.dat")
    assert "cut.dat" in str(ei.value) and "\n" not in str(ei.value)
    (tmp_path / "no_fc.dat").write_bytes(blob[: blob.rfind(b"\x01\x04fc_2")])
    with pytest.raises(WeightsError, match="found 116 tensors, expected 117"):
        read_dlib_dat(tmp_path / "no_fc.dat")


def test_real_dat_matches_the_dequantised_manifest():
    """dlib's float32 weights: the manifest's uint8 ones lie within scale/2 of them."""
    from tinyface.models.dlib_dat import DLIB_DAT, compare_with_manifest, read_dlib_dat
    folder = _real_folder()
    if not (folder / DLIB_DAT["name"]).is_file():
        pytest.skip(f"no {DLIB_DAT['name']} in {folder}")
    dat = read_dlib_dat(folder / DLIB_DAT["name"])
    man = read_manifest_weights(folder)
    assert list(dat) == list(man)
    for name, diff, step in compare_with_manifest(dat, man, read_manifest(folder)):
        if step is None:
            assert diff == 0.0, name                          # face-api kept them float32
        else:
            assert diff <= 0.5 * step * (1 + 1e-3) + 1e-9, (name, diff, step)
