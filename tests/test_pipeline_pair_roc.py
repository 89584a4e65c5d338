"""pair_roc: same-resolution and cross-resolution verification of DisjointPairs."""
import numpy as np
import pytest

from tinyface.eval.disjoint import DisjointPairs
from tinyface.eval import auc, embed_images, roc_curve
from tinyface.eval.pair_roc import pair_roc


class ColourNet:
    """A fake model: the embedding of a face is its mean colour (3-d), times ``gain``."""

    def __init__(self, gain=1.0, dim=3):
        self.gain, self.dim, self.training, self.calls = gain, dim, False, []

    def train(self, mode=True):
        self.training = mode
        return self

    def embed(self, x):                                   # x: (n, 3, s, s) float32
        self.calls.append(len(x))
        e = self.gain * x.mean(axis=(2, 3))               # (n, 3)
        return np.concatenate([e, np.zeros((len(x), self.dim - 3))], axis=1)


def _pairs(n_folds=4, per_fold=6, seed=0):
    """Identities are colours; same pairs share one, different pairs do not."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(12, 3))
    images, labels = [], []
    for k, c in enumerate(colours):
        for _ in range(3):
            noise = rng.integers(-10, 11, size=(3, 4, 4))
            images.append(np.clip(c[:, None, None] + noise, 0, 255))
            labels.append(k)
    images, labels = np.array(images, np.uint8), np.array(labels)
    a, b, same, fold = [], [], [], []
    for f in range(n_folds):
        for i in range(per_fold):
            k = rng.integers(12)
            r = np.flatnonzero(labels == k)
            a.append(r[0]), b.append(r[1 + i % 2]), same.append(True), fold.append(f)
            k1, k2 = rng.choice(12, size=2, replace=False)
            a.append(np.flatnonzero(labels == k1)[0]), b.append(np.flatnonzero(labels == k2)[1])
            same.append(False), fold.append(f)
    return DisjointPairs(images, np.array(a), np.array(b), np.array(same), np.array(fold))


def test_same_resolution_matches_a_hand_computed_roc():
    pairs = _pairs()
    net = ColourNet()
    res = pair_roc(pairs, (net, pairs.images), batch_size=5)
    assert res["n_pairs"] == 48 and len(res["per_fold"]) == 4
    # the scores are the cosines of mean colours, computed here directly
    x = pairs.images.astype(np.float64) / 255 - 0.5
    m = x.mean(axis=(2, 3))
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    expected = np.sum(m[pairs.a] * m[pairs.b], axis=1)
    np.testing.assert_allclose(res["scores"], expected, atol=1e-5)
    far, tar, _ = roc_curve(expected, pairs.same)
    assert res["auc"] == pytest.approx(auc(far, tar), abs=1e-6)
    assert res["far"][0] == 0 and res["tar"][-1] == 1
    assert res["accuracy"] > 0.8 and 0 <= res["tar_at_far"] <= 1
    assert not net.training                                # eval mode kept / restored


def test_cross_resolution_sides_and_errors():
    pairs = _pairs(seed=1)
    gallery, probe = ColourNet(gain=1.0), ColourNet(gain=3.0)      # cosine ignores the gain
    one = pair_roc(pairs, (gallery, pairs.images))
    two = pair_roc(pairs, (gallery, pairs.images), (probe, pairs.images))
    np.testing.assert_allclose(one["scores"], two["scores"], atol=1e-6)
    # each side embeds only the distinct faces it uses
    assert sum(gallery.calls[-1:]) == len(np.unique(pairs.a))
    assert sum(probe.calls) == len(np.unique(pairs.b))
    with pytest.raises(ValueError, match="one embedding space"):
        pair_roc(pairs, (gallery, pairs.images), (ColourNet(dim=5), pairs.images))
    with pytest.raises(ValueError, match="covering every pair row"):
        pair_roc(pairs, (gallery, pairs.images[:3]))


def test_sides_may_be_precomputed_embeddings():
    pairs = _pairs(seed=2)
    net = ColourNet()
    emb = embed_images(net, pairs.images)                          # (M, 3)
    by_model = pair_roc(pairs, (net, pairs.images))
    by_emb = pair_roc(pairs, emb)
    mixed = pair_roc(pairs, emb, (net, pairs.images))
    for r in (by_emb, mixed):
        np.testing.assert_allclose(r["scores"], by_model["scores"], atol=1e-12)
        assert r["accuracy"] == by_model["accuracy"] and r["auc"] == by_model["auc"]
    with pytest.raises(ValueError, match=r"embeddings must be \(M, D\)"):
        pair_roc(pairs, emb[:5])
