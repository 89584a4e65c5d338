"""The procedural synthetic faces: shape, determinism, speed and difficulty."""

import numpy as np
import pytest

from tinyface.data import generate_synthetic, load_dataset
from tinyface.data.probe import resolution_gap


def test_shapes_labels_names():
    ds = generate_synthetic(n_identities=7, images_per_identity=3, hr_size=48, seed=0)
    assert ds.images.shape == (21, 3, 48, 48) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == sorted(ds.labels.tolist())
    assert ds.counts().tolist() == [3] * 7 and ds.names[0] == "id0000" and len(ds.names) == 7
    assert ds.image_index.tolist()[:4] == [1, 2, 3, 1]
    assert 30 < ds.images.mean() < 220 and ds.images.std() > 20
    # images of one identity differ (nuisances), but are more alike than others
    assert (ds.images[0] != ds.images[1]).any()


def test_same_seed_same_arrays_other_seed_other_faces():
    a = load_dataset("synthetic", n_identities=6, images_per_identity=4, seed=3)
    b = load_dataset("synthetic", n_identities=6, images_per_identity=4, seed=3)
    c = load_dataset("synthetic", n_identities=6, images_per_identity=4, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.meta["key"] == b.meta["key"] != c.meta["key"]
    assert np.abs(a.images.astype(int) - c.images).mean() > 10


@pytest.mark.parametrize("size", [16, 32, 64, 112])
def test_renders_at_any_size(size):
    ds = generate_synthetic(2, 2, hr_size=size, seed=1)
    assert ds.images.shape == (4, 3, size, size)


def test_nuisance_zero_is_nearly_constant_per_identity():
    ds = generate_synthetic(3, 4, seed=2, nuisance=0.0, occlusion_prob=0.0, noise_max=1.0)
    x = ds.images.astype(float)
    # only the background colour changes: compare the face centre
    c = x[:, :, 20:44, 20:44]
    within = np.abs(c[0] - c[1]).mean()
    between = np.abs(c[0] - c[4]).mean()
    assert within < 3 < between


def test_ten_thousand_faces():
    ds = generate_synthetic(n_identities=500, images_per_identity=20, hr_size=64, seed=0)
    assert len(ds) == 10_000 and ds.images.shape == (10_000, 3, 64, 64)
    assert ds.images.dtype == np.uint8 and len(np.unique(ds.labels)) == 500


def test_low_resolution_is_clearly_harder():
    """Proxy for 'a small CNN at 16x16 clearly trails one at 64x64': the same fixed
    filter-bank + ridge probe on HR faces and on LR faces upsampled back."""
    ds = generate_synthetic(n_identities=100, images_per_identity=20, seed=0)
    acc = resolution_gap(ds, lr_sizes=(16,))
    chance = 1 / 100
    assert 0.5 < acc[64] < 0.95, acc                      # learnable, not trivial
    assert acc[16] > 10 * chance, acc                      # LR still carries identity
    assert acc[64] - acc[16] >= 0.10, acc                  # but clearly less of it
