"""HR -> LR degradation, augmentation, float conversion and the batch iterator."""
import numpy as np
import pytest

from tinyface.data import (LR_SIZES, antialias_sigma, augment, degrade, iterate_minibatches,
                           jpeg_compress, to_float, to_uint8)


def batch(n=4, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)


@pytest.mark.parametrize("lr", LR_SIZES)
@pytest.mark.parametrize("method", ["area", "bicubic"])
def test_degrade_shapes(lr, method):
    out = degrade(batch(), lr, method=method)
    assert out.shape == (4, 3, lr, lr) and out.dtype == np.uint8
    up = degrade(batch(), lr, method=method, upsample_to=64)
    assert up.shape == (4, 3, 64, 64) and up.dtype == np.uint8


def test_sigma_rule_and_area_is_block_mean():
    assert antialias_sigma(64, 16) == 1.5 and antialias_sigma(64, 64) == 0.0
    assert antialias_sigma(64, 8) == 3.5
    x = batch(2)
    out = degrade(x, 16, method="area", blur=False)
    mean = x.reshape(2, 3, 16, 4, 16, 4).astype(float).mean((3, 5))
    assert np.abs(out - mean).max() <= 1
    blurred = degrade(x, 16, method="area")
    assert blurred.std() < out.std()                          # anti-alias blur smooths noise
    const = np.full((1, 3, 64, 64), 77, np.uint8)
    for kw in ({}, {"method": "bicubic"}, {"upsample_to": 64}):
        assert (degrade(const, 12, **kw) == 77).all()


def test_noise_jpeg_and_determinism():
    x = batch(3)
    a = degrade(x, 16, noise_std=5, jpeg_quality=30, seed=1)
    b = degrade(x, 16, noise_std=5, jpeg_quality=30, seed=1)
    c = degrade(x, 16, noise_std=5, jpeg_quality=30, seed=2)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    clean = degrade(x, 16)
    assert 2 < np.abs(degrade(x, 16, noise_std=5).astype(int) - clean).mean() < 6
    j = jpeg_compress(clean, 10)
    assert j.shape == clean.shape and (j != clean).any()
    with pytest.raises(ValueError):
        degrade(x.astype(np.float32), 16)
    with pytest.raises(ValueError):
        degrade(x, 16, method="magic")


def test_to_float_roundtrip():
    x = batch(2, 8)
    f = to_float(x)
    assert f.dtype == np.float32 and f.shape == x.shape
    assert -0.5 <= f.min() and f.max() <= 0.5
    np.testing.assert_array_equal(to_uint8(f), x)


def test_augment_dtype_shape_determinism():
    x = batch(8, 32)
    a = augment(x, np.random.default_rng(3))
    b = augment(x, np.random.default_rng(3))
    assert a.dtype == np.uint8 and a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    assert (a != x).any()
    f = augment(to_float(x), np.random.default_rng(3))
    assert f.dtype == np.float32 and f.shape == x.shape
    assert np.abs(to_uint8(f).astype(int) - a).max() <= 2     # same transform on both dtypes


def test_augment_flip_only_and_identity():
    x = batch(16, 16)
    kw = dict(max_shift=0.0, crop_scale=1.0, brightness=0.0, contrast=0.0)
    out = augment(x, np.random.default_rng(0), **kw)
    flipped = [(o == xi[..., ::-1]).all() for o, xi in zip(out, x)]
    kept = [(o == xi).all() for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)
    same = augment(x, np.random.default_rng(0), flip=False, **kw)
    np.testing.assert_array_equal(same, x)


def test_augment_shift_and_jitter_are_small():
    x = np.zeros((50, 3, 32, 32), np.uint8)
    x[:, :, 12:20, 12:20] = 200
    out = augment(x, np.random.default_rng(1), flip=False, brightness=0, contrast=0)
    ys, xs = np.nonzero(out[:, 0].mean(0) > 20)
    assert 5 <= ys.min() <= 12 and 19 <= ys.max() <= 26          # moved by a few pixels
    centres = [np.argwhere(o[0] > 100).mean(0) for o in out]
    assert np.std(centres) > 0.5
    g = np.full((20, 3, 8, 8), 128, np.uint8)
    j = augment(g, np.random.default_rng(2), flip=False, max_shift=0, crop_scale=1,
                brightness=0.1, contrast=0.0)
    assert 0 < np.abs(j.astype(int) - 128).max() <= 26


def test_iterate_minibatches():
    batches = list(iterate_minibatches(10, 4, seed=0))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    again = list(iterate_minibatches(10, 4, seed=0))
    assert all((p == q).all() for p, q in zip(batches, again))
    other = np.concatenate(list(iterate_minibatches(10, 4, seed=0, epoch=1)))
    assert (other != np.concatenate(batches)).any()
    assert [len(b) for b in iterate_minibatches(10, 4, drop_last=True)] == [4, 4]
    plain = np.concatenate(list(iterate_minibatches(10, 3, shuffle=False)))
    assert plain.tolist() == list(range(10))
    X, y = np.arange(20).reshape(10, 2), np.arange(10) * 10
    for xb, yb in iterate_minibatches((X, y), 3, seed=5):
        assert (xb[:, 0] // 2 * 10 == yb).all()
    only = list(iterate_minibatches(y, 5, seed=5))
    assert sorted(np.concatenate(only).tolist()) == y.tolist()
    with pytest.raises(ValueError):
        list(iterate_minibatches((X, y[:5]), 2))
