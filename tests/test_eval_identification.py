"""Identification metrics (top-k, CMC, gallery/probe), batched extraction, and plots."""
import numpy as np
import pytest

from tinyface import nn
from tinyface.eval import (class_templates, cmc_curve, embed_images, gallery_identification,
                           l2_normalize, logits_of, predict_batches, topk_accuracy, true_ranks)


# ------------------------------------------------------------------ top-k, hand-made
def test_topk_hand_example():
    scores = np.array([[0.9, 0.1, 0.0],     # label 0: rank 1
                       [0.5, 0.2, 0.3],     # label 1: rank 3
                       [0.4, 0.4, 0.1],     # label 1: tied with 0.4 -> rank 2 (strict)
                       [0.1, 0.2, 0.7]])    # label 2: rank 1
    labels = np.array([0, 1, 1, 2])
    np.testing.assert_array_equal(true_ranks(scores, labels), [1, 3, 2, 1])
    acc = topk_accuracy(scores, labels, ks=(1, 2, 3, 5))
    assert acc == {1: 0.5, 2: 0.75, 3: 1.0, 5: 1.0}


def test_topk_constant_scorer_gets_nothing_at_top1():
    acc = topk_accuracy(np.zeros((6, 4)), np.arange(6) % 4, ks=(1, 4))
    assert acc == {1: 0.0, 4: 1.0}


def test_topk_matches_argsort_without_ties():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((200, 30))
    y = rng.integers(0, 30, 200)
    order = np.argsort(-s, axis=1)
    for k in (1, 5, 10):
        expect = np.mean([y[i] in order[i, :k] for i in range(200)])
        assert topk_accuracy(s, y, ks=(k,))[k] == pytest.approx(expect)


def test_topk_validation():
    with pytest.raises(ValueError, match="rows"):
        topk_accuracy(np.zeros((3, 4)), np.zeros(2, int))
    with pytest.raises(ValueError, match="out of range"):
        topk_accuracy(np.zeros((2, 4)), np.array([0, 4]))
    with pytest.raises(ValueError, match="out of range"):
        topk_accuracy(np.zeros((2, 4)), np.array([-1, 0]))
    with pytest.raises(ValueError, match="empty"):
        topk_accuracy(np.zeros((0, 4)), np.zeros(0, int))
    with pytest.raises(ValueError, match="integers"):
        topk_accuracy(np.zeros((2, 4)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="non-finite"):
        topk_accuracy(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="ks"):
        topk_accuracy(np.zeros((2, 4)), np.array([0, 1]), ks=(0,))


# ------------------------------------------------------------------------- CMC
def test_cmc_monotone_ends_at_one_and_starts_at_top1():
    rng = np.random.default_rng(1)
    s = rng.standard_normal((300, 25))
    y = rng.integers(0, 25, 300)
    s[np.arange(300), y] += 1.0
    ranks, rates = cmc_curve(s, y)
    assert ranks.tolist() == list(range(1, 26))
    assert np.all(np.diff(rates) >= 0)
    assert rates[-1] == 1.0
    acc = topk_accuracy(s, y, ks=(1, 5))
    assert rates[0] == pytest.approx(acc[1]) and rates[4] == pytest.approx(acc[5])
    r10, rate10 = cmc_curve(s, y, max_rank=10)
    assert len(r10) == 10 and np.allclose(rate10, rates[:10])
    with pytest.raises(ValueError):
        cmc_curve(s, y, max_rank=0)


# ------------------------------------------------------------- gallery / probe
def test_gallery_identification_clean_and_cross_domain():
    rng = np.random.default_rng(2)
    n_id, d = 12, 32
    centres = rng.standard_normal((n_id, d))
    gl = np.repeat(np.arange(n_id) * 3 + 7, 4)            # arbitrary label values
    g = centres[np.repeat(np.arange(n_id), 4)] + 0.3 * rng.standard_normal((4 * n_id, d))
    pl_idx = rng.integers(0, n_id, 60)
    p = 2.5 * centres[pl_idx] + 0.3 * rng.standard_normal((60, d))   # scale must not matter
    res = gallery_identification(g, gl, p, pl_idx * 3 + 7, ks=(1, 5))
    assert res[1] == 1.0 and res[5] == 1.0
    assert res["scores"].shape == (60, n_id)
    assert res["classes"].tolist() == sorted(set(gl.tolist()))
    assert res["cmc"][1][-1] == 1.0
    # noisy probes: lower, but well above chance (1/12)
    pn = centres[pl_idx] + 2.0 * rng.standard_normal((60, d))
    res = gallery_identification(g, gl, pn, pl_idx * 3 + 7)
    assert 0.25 < res[1] <= res[5] <= 1.0


def test_class_templates_are_unit_means():
    g = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 5.0]])
    classes, t = class_templates(g, np.array([4, 4, 9]))
    assert classes.tolist() == [4, 9]
    np.testing.assert_allclose(t, [[np.sqrt(0.5), np.sqrt(0.5)], [0.0, 1.0]])


def test_gallery_identification_validation():
    g, gl = np.eye(3), np.arange(3)
    with pytest.raises(ValueError, match="not in the gallery"):
        gallery_identification(g, gl, np.eye(3)[:1], np.array([5]))
    with pytest.raises(ValueError, match="D="):
        gallery_identification(g, gl, np.ones((1, 4)), np.array([0]))
    with pytest.raises(ValueError, match="empty"):
        gallery_identification(np.zeros((0, 3)), np.zeros(0, int), g, gl)
    with pytest.raises(ValueError):
        gallery_identification(g, gl[:2], g, gl)


# ------------------------------------------------------------------ extraction
def test_l2_normalize():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    y = l2_normalize(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[0.6, 0.8], [0.0, 0.0]])
    assert l2_normalize(np.array([[1, 1]])).dtype == np.float64


def test_predict_batches_reused_buffer_and_transform():
    buf = np.zeros((4, 2))

    def fn(batch):                      # returns a view of a reused buffer, like some layers
        n = len(batch)
        buf[:n, 0] = batch.reshape(n, -1).sum(axis=1)
        buf[:n, 1] = -1
        return buf[:n]

    x = np.arange(10 * 3 * 2 * 2).reshape(10, 3, 2, 2).astype(np.uint8)
    out = predict_batches(fn, x, batch_size=4, transform=lambda b: b.astype(np.float64) * 2)
    np.testing.assert_allclose(out[:, 0], 2 * x.reshape(10, -1).sum(axis=1))
    assert out.shape == (10, 2)
    with pytest.raises(ValueError, match="no images"):
        predict_batches(fn, x[:0])
    with pytest.raises(ValueError, match="expected"):
        predict_batches(lambda b: np.zeros((1, 2)), x, batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        predict_batches(fn, x, batch_size=0)


def test_logits_and_embed_run_in_eval_mode_and_restore():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * 4 * 4, 5))
    model.embed = model.forward       # a stand-in for a model with an embedding head
    x = np.random.default_rng(3).integers(0, 256, (37, 3, 4, 4)).astype(np.uint8)
    model.train()
    out1 = logits_of(model, x, batch_size=8)
    assert model.training                                  # mode restored
    out2 = embed_images(model, x, batch_size=16)
    model.eval()
    from tinyface.data import to_float
    direct = model.forward(to_float(x))
    assert out1.shape == (37, 5)
    np.testing.assert_allclose(out1, direct, rtol=1e-5, atol=1e-6)   # no dropout applied
    np.testing.assert_allclose(out2, direct, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="embed"):
        embed_images(nn.Sequential(nn.Flatten()), x)


# ----------------------------------------------------------------------- plots
def _is_png(path):
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_importing_eval_leaves_the_plots_unloaded():
    """``tinyface.eval`` never imports its plotting module (nor pyplot): callers that
    plot import it, ``from tinyface.eval import plots``."""
    import subprocess
    import sys
    code = ("import sys, tinyface.eval; "
            "print('tinyface.eval.plots' in sys.modules, 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_plots_write_png(tmp_path):
    from tinyface.eval import plots
    rng = np.random.default_rng(4)
    s = rng.standard_normal((50, 8))
    y = rng.integers(0, 8, 50)
    p = plots.plot_cmc({"teacher": cmc_curve(s + 3 * np.eye(8)[y], y), "student": cmc_curve(s, y)},
                       tmp_path / "cmc.png")
    assert _is_png(p)
    from tinyface.eval import roc_curve
    same = rng.random(400) < 0.5
    far, tar, _ = roc_curve(rng.standard_normal(400) + same, same)
    assert _is_png(plots.plot_roc({"a": (far, tar)}, tmp_path / "roc_log.png"))
    assert _is_png(plots.plot_roc({"a": (far, tar)}, tmp_path / "sub" / "roc.png", log_far=False))
    hist = [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.1 * e, "val_acc": 0.08 * e}
            for e in range(1, 6)]
    assert _is_png(plots.plot_training_curves(hist, tmp_path / "train.png"))
    assert _is_png(plots.plot_bars({"HR": (0.9, 0.01), "LR": 0.6, "KD": (0.75, 0.02)},
                                   tmp_path / "bars.png", ylabel="accuracy"))
    with pytest.raises(ValueError):
        plots.plot_bars({}, tmp_path / "x.png", ylabel="y")
    with pytest.raises(ValueError, match="mean, std"):
        plots.plot_bars({"a": (1, 2, 3)}, tmp_path / "x.png", ylabel="y")
    two = {"ours": {"full": (80.8, 0.4), "KD": 78.1}, "dlib": {"KD": (80.2, 0.5), "AT": 79.3}}
    assert _is_png(plots.plot_compared(two, tmp_path / "compared.png", xlabel="top-1 (%)"))
    assert _is_png(plots.plot_compared({"one": {"full": 80.8}}, tmp_path / "one.png", "top-1"))
    for empty in ({}, {"ours": {}}):
        with pytest.raises(ValueError, match="nothing to plot"):
            plots.plot_compared(empty, tmp_path / "x.png", xlabel="y")
    with pytest.raises(ValueError):
        plots.plot_training_curves([], tmp_path / "x.png")
