"""The .npz cache: keyed by source and parameters, atomic, skips decoding."""
import os
import warnings

import numpy as np
import pytest

import tinyface.data.lfw as lfw_mod
from tinyface.data import DataWarning, default_data_root, load_dataset
from tinyface.data.cache import cache_key, default_cache_dir, resolve_cache_dir

from test_data_helpers import make_lfw_tree, make_orl_tree, make_tgz, tree_state


def _quiet_load(*a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return load_dataset(*a, **k)


def test_second_load_skips_decoding(tmp_path, monkeypatch):
    tgz = make_tgz(make_lfw_tree(tmp_path / "src"), tmp_path / "lfw.tgz")
    cache = tmp_path / "cache"
    first = _quiet_load("lfw", root=tgz, hr_size=20, cache_dir=cache)
    assert first.meta["from_cache"] is False
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].startswith("lfw-") and files[0].endswith(".npz")

    calls = []
    real = lfw_mod.decode_lfw

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)
    monkeypatch.setattr(lfw_mod, "decode_lfw", counting)
    with pytest.warns(DataWarning, match="2 image"):      # skipped count is remembered
        second = load_dataset("lfw", root=tgz, hr_size=20, cache_dir=cache)
    assert second.meta["from_cache"] is True and not calls
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    np.testing.assert_array_equal(second.image_index, first.image_index)
    assert second.names == first.names and second.skipped == first.skipped
    assert second.images.dtype == np.uint8 and second.labels.dtype == np.int64
    # other parameters -> another entry, decoded again
    third = _quiet_load("lfw", root=tgz, hr_size=24, cache_dir=cache)
    assert third.meta["from_cache"] is False and len(calls) == 10
    assert len(list(cache.glob("lfw-*.npz"))) == 2
    assert not [p for p in cache.iterdir() if p.suffix != ".npz"], "temporary files left"


def test_changed_source_misses_the_cache(tmp_path):
    root = make_orl_tree(tmp_path / "orl", subjects=2, images=2)
    cache = tmp_path / "cache"
    a = _quiet_load("orl", root=root, hr_size=16, cache_dir=cache)
    f = root / "s1" / "1.pgm"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))
    b = _quiet_load("orl", root=root, hr_size=16, cache_dir=cache)
    assert a.meta["from_cache"] is False and b.meta["from_cache"] is False
    c = _quiet_load("orl", root=root, hr_size=16, cache_dir=cache)
    assert c.meta["from_cache"] is True
    assert len(list(cache.glob("orl-*.npz"))) == 2


def test_cache_disabled_and_corrupt_entry(tmp_path):
    root = make_orl_tree(tmp_path / "orl", subjects=2, images=2)
    cache = tmp_path / "cache"
    ds = _quiet_load("orl", root=root, hr_size=16, cache_dir=False)
    assert ds.meta["from_cache"] is False and not cache.exists()
    _quiet_load("orl", root=root, hr_size=16, cache_dir=cache)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(b"not an npz")
    with pytest.warns(DataWarning, match="unreadable cache"):
        again = load_dataset("orl", root=root, hr_size=16, cache_dir=cache)
    assert again.meta["from_cache"] is False
    np.testing.assert_array_equal(again.images, ds.images)
    assert _quiet_load("orl", root=root, hr_size=16, cache_dir=cache).meta["from_cache"]


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYFACE_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    assert resolve_cache_dir(None) == tmp_path / "c"
    assert resolve_cache_dir(False) is None
    assert resolve_cache_dir(str(tmp_path)) == tmp_path
    k1 = cache_key("lfw", {"a": 1, "b": 2})
    assert k1 == cache_key("lfw", {"b": 2, "a": 1}) != cache_key("lfw", {"a": 1, "b": 3})


def test_default_data_root_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYFACE_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.setenv("TINYFACE_DATA", str(tmp_path / "missing"))
    assert default_data_root() is None
    monkeypatch.delenv("TINYFACE_DATA")
    root = default_data_root()
    assert root is None or (root.name == "data" and root.parent.name == "shared")


def test_env_data_root_is_used_by_loaders(tmp_path, monkeypatch):
    make_orl_tree(tmp_path / "orl_faces", subjects=2, images=3)
    monkeypatch.setenv("TINYFACE_DATA", str(tmp_path))
    before = tree_state(tmp_path / "orl_faces")
    ds = _quiet_load("orl", hr_size=8, cache_dir=tmp_path / "cache")
    assert ds.n_identities == 2 and len(ds) == 6
    assert tree_state(tmp_path / "orl_faces") == before
