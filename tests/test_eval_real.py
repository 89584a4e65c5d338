"""LFW verification with a non-learned pixel embedding on the real data (skipped when
absent): the 10-fold protocol on all 6,000 pairs of ``lfw_pairs.txt`` over LFW3D.

Embedding: the grey image at 16x16 (2x2 block means of the 32x32 HR face), minus its
own mean, L2-normalised; the cosine score is then the pixel correlation. A pixel
baseline is known to land around 60-70% on LFW (measured here: 67.7%).
"""
import numpy as np
import pytest

from tinyface.data import default_data_root, degrade, load_dataset, load_pairs
from tinyface.eval import l2_normalize, verify_pairs

ROOT = default_data_root()


@pytest.fixture(scope="module")
def lfw32(tmp_path_factory):
    """(LFW3D at 32x32, the 10 folds of pairs), decoded once into a temporary cache."""
    if ROOT is None:
        pytest.skip("no real data: neither $TINYFACE_DATA nor <repo>/../shared/data is a folder")
    for name in ("lfw3d.tgz", "lfw_pairs.txt"):
        if not (ROOT / name).exists():
            pytest.skip(f"{name} is not in the data root {ROOT}")
    ds = load_dataset("lfw", root=ROOT / "lfw3d.tgz", hr_size=32,
                      cache_dir=tmp_path_factory.mktemp("lfw32_cache"), progress=False)
    return ds, load_pairs(ROOT / "lfw_pairs.txt")


def _grey16(images):
    """(n, 3, 32, 32) uint8 -> (n, 256): grey, 16x16, mean-subtracted, unit norm."""
    g = images.astype(np.float64).mean(axis=1)                     # (n, H, W)
    n, h, w = g.shape
    g = g.reshape(n, 16, h // 16, 16, w // 16).mean(axis=(2, 4)).reshape(n, -1)   # (n, 256)
    return l2_normalize(g - g.mean(axis=1, keepdims=True))


def test_pixel_baseline_lfw_ten_fold(lfw32):
    ds, pairs = lfw32
    res = verify_pairs(lambda idx: _grey16(ds.images[idx]), None, ds, pairs)
    print(f"\npixel baseline, LFW 10-fold: {100 * res['accuracy']:.2f} +- "
          f"{100 * res['std']:.2f}%, AUC {res['auc']:.4f}, "
          f"TAR@FAR=1e-2 {100 * res['tar_at_far']:.1f}%")
    assert res["n_pairs"] == 6000 and res["n_missing"] == 0      # every pair resolved
    assert len(res["per_fold"]) == 10
    assert 0.55 < res["accuracy"] < 0.8
    assert 0.55 < res["auc"] < 0.9


def test_pixel_baseline_cross_resolution_first_folds(lfw32):
    """HR gallery face (32 -> 16 block means) against an LR probe face (degraded to 8x8,
    upsampled back to 16x16): two embedding functions, first 3 folds."""
    ds, pairs = lfw32

    def lr_probe(idx):
        return _grey16(degrade(ds.images[idx], 8, upsample_to=16))

    res = verify_pairs(lambda idx: _grey16(ds.images[idx]), lr_probe, ds, pairs, folds=3)
    print(f"\npixel baseline, cross-resolution (HR 16 vs LR 8->16), folds 1-3: "
          f"{100 * res['accuracy']:.2f}%, AUC {res['auc']:.4f}")
    assert res["folds"] == [0, 1, 2] and res["n_pairs"] == 6000
    assert 0.55 < res["accuracy"] < 0.8
