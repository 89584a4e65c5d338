"""The real datasets of ../shared/data (or $TINYFACE_DATA); skipped when absent.

LFW3D is decoded once per session into a temporary cache and reused.
"""
import time

import numpy as np
import pytest

from tinyface.cli import main
from tinyface.data import (default_data_root, find_pairs_file, identification_split,
                           load_dataset, load_pairs, resolve_pairs, split_datasets,
                           verification_split)
from tinyface.data.pairs import fold_identities

from test_data_helpers import tree_state

ROOT = default_data_root()
needs_data = pytest.mark.skipif(ROOT is None, reason="no real data: neither $TINYFACE_DATA nor "
                                                     "<repo>/../shared/data is a folder")


def _has(name):
    return ROOT is not None and (ROOT / name).exists()


@pytest.fixture(scope="session")
def lfw_cached(tmp_path_factory):
    """(dataset, first-load seconds, cached-load seconds, cache dir)."""
    if not _has("lfw3d.tgz"):
        pytest.skip("lfw3d.tgz is not in the data root")
    cache = tmp_path_factory.mktemp("lfw_cache")
    t = time.perf_counter()
    first = load_dataset("lfw", root=ROOT / "lfw3d.tgz", cache_dir=cache)
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    second = load_dataset("lfw", root=ROOT / "lfw3d.tgz", cache_dir=cache)
    t_cached = time.perf_counter() - t
    assert first.meta["from_cache"] is False and second.meta["from_cache"] is True
    np.testing.assert_array_equal(first.images, second.images)
    return second, t_first, t_cached, cache


@needs_data
def test_orl_counts():
    if not _has("orl_faces"):
        pytest.skip("orl_faces is not in the data root")
    before = tree_state(ROOT / "orl_faces")
    ds = load_dataset("orl", cache_dir=False)
    assert ds.n_identities == 40 and len(ds) == 400 and not ds.skipped
    assert (ds.counts() == 10).all() and ds.images.shape == (400, 3, 64, 64)
    assert ds.names[:2] == ["s1", "s2"] and ds.image_index[:10].tolist() == list(range(1, 11))
    assert tree_state(ROOT / "orl_faces") == before


@needs_data
def test_lfw3d_counts_and_speed(lfw_cached):
    ds, t_first, t_cached, _ = lfw_cached
    print(f"\nLFW3D first load {t_first:.2f} s, cached load {t_cached:.2f} s")
    assert ds.n_identities == 5749 and len(ds) == 13233 and not ds.skipped
    assert ds.images.shape == (13233, 3, 64, 64) and ds.images.dtype == np.uint8
    c = ds.counts()
    assert [(c >= k).sum() for k in (2, 5, 10, 20)] == [1680, 423, 158, 62]
    assert t_first < 60 and t_cached < 3


@needs_data
def test_pairs_all_present_and_protocols(lfw_cached):
    ds = lfw_cached[0]
    path = find_pairs_file()
    if path is None:
        pytest.skip("no lfw_pairs.txt in the data root")
    folds = load_pairs(path)
    assert len(folds) == 10 and all(len(f) == 600 for f in folds)
    assert all(sum(e[2] for e in f) == 300 for f in folds)
    a, b, same = resolve_pairs(folds, ds)                     # raises if any image is missing
    assert len(a) == 6000 and same.sum() == 3000
    assert (ds.labels[a[same]] == ds.labels[b[same]]).all()
    assert (ds.labels[a[~same]] != ds.labels[b[~same]]).all()
    ids = [fold_identities(f) for f in folds]
    assert all(ids[i].isdisjoint(ids[j]) for i in range(10) for j in range(i + 1, 10))
    vs = verification_split(ds, folds, 3)
    assert set(vs.train.names).isdisjoint(ids[3]) and len(vs.a) == 600
    train, test = split_datasets(ds, *identification_split(ds, min_images=10, seed=0))
    assert train.n_identities == 158 == test.n_identities


@needs_data
def test_cli_info_lfw(lfw_cached, capsys):
    cache = lfw_cached[3]
    assert main(["data", "info", "--data", "lfw", "--data-root", str(ROOT),
                 "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "identities:  5749" in out and "images:      13233" in out
    assert "6000 in 10 folds" in out and "from cache" in out
