"""Tuning a pretrained teacher's last blocks (``distill.teacher_tuning``): the cosine
head's gradient, which layers move, determinism, the LR inputs, and bad settings. A
tiny residual network stands in for dlib's ResNet: seconds."""
import numpy as np
import pytest

from tinyface.distill.teacher_tuning import (TailTuning, cosine_logits_backward,
                                             cosine_logits_forward, tail_start,
                                             tune_teacher_tail)
from tinyface.gradcheck import assert_gradient, numerical_gradient
from tinyface.models import build_model

SPEC = {"input_size": 12, "embedding_dim": 6, "num_classes": 1, "norm": "affine",
        "act": "relu", "embedding_norm": "none", "embedding_bias": False,
        "stages": [{"conv": 4, "kernel": 3, "stride": 2, "padding": 0},      # 12 -> 5
                   {"res": 4}, {"res": 6, "stride": 2, "padding": 0, "shortcut": "pool"},  # -> 2
                   {"res": 6}]}


def _data(n_per=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.integers(40, 215, (k, 3, 1, 1))
    faces = np.concatenate([np.clip(centres[c] + rng.normal(0, 30, (n_per, 3, 12, 12)), 0, 255)
                            for c in range(k)]).astype(np.uint8)
    return faces, np.repeat(np.arange(k), n_per)


def test_cosine_head_gradient_float64():
    rng = np.random.default_rng(0)
    emb, weight = rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    dout = rng.normal(size=(4, 3))
    out, cache = cosine_logits_forward(emb, weight, 7.0)
    e_hat = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    w_hat = weight / np.linalg.norm(weight, axis=1, keepdims=True)
    np.testing.assert_allclose(out, 7.0 * e_hat @ w_hat.T, rtol=1e-12)
    demb, dweight = cosine_logits_backward(dout, cache)
    f = lambda: cosine_logits_forward(emb, weight, 7.0)[0]      # noqa: E731
    assert_gradient(demb, numerical_gradient(f, emb, dout), name="demb")
    assert_gradient(dweight, numerical_gradient(f, weight, dout), name="dweight")


def test_tail_start_counts_residual_blocks_from_the_last():
    model = build_model(SPEC, seed=0)
    kinds = [type(model.features[i]).__name__ for i in range(len(model.features))]
    res = [i for i, k in enumerate(kinds) if k == "Residual"]
    assert len(res) == 3 and [tail_start(model, b) for b in (1, 2, 3)] == res[::-1]
    with pytest.raises(ValueError, match="has 3 residual blocks"):
        tail_start(model, 4)


def test_tuning_moves_only_the_tail_and_learns():
    model = build_model(SPEC, seed=0).eval()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    faces, y = _data()
    tuned, rec = tune_teacher_tail(model, faces, y, TailTuning(blocks=1, epochs=8, lr=0.05,
                                                               batch_size=6, scale=8.0))
    for k, v in model.state_dict().items():                 # the original is untouched
        np.testing.assert_array_equal(v, before[k])
    moved = {k for k, v in tuned.state_dict().items() if not np.array_equal(v, before[k])}
    start, last = tail_start(model, 1), len(model.features) - 1    # last block, embedding
    assert moved and all(k.startswith((f"features.{start}.", f"features.{last}.")) for k in moved)
    assert any(k.startswith(f"features.{last}.") for k in moved)
    hist = rec["history"]
    assert hist[-1]["loss"] < hist[0]["loss"] and rec["faces"] == len(y)
    assert rec["tail_start"] == start and not tuned.training
    again, _ = tune_teacher_tail(model, faces, y, TailTuning(blocks=1, epochs=8, lr=0.05,
                                                             batch_size=6, scale=8.0))
    for k, v in tuned.state_dict().items():                 # deterministic for a seed
        np.testing.assert_array_equal(v, again.state_dict()[k])


def test_lr_inputs_add_the_upsampled_lr_faces():
    model = build_model(SPEC, seed=0).eval()
    faces, y = _data()
    _, rec = tune_teacher_tail(model, faces, y, TailTuning(epochs=1, inputs="hr+lr", lr_size=8))
    assert rec["faces"] == 2 * len(y)


@pytest.mark.parametrize("bad, match", [
    ({"blocks": 0}, "must be >= 1"), ({"epochs": 0}, "must be >= 1"),
    ({"lr": 0.0}, "lr must be"), ({"scale": float("nan")}, "scale must be"),
    ({"weight_decay": -1.0}, "weight_decay must be"), ({"inputs": "lr"}, "inputs must be")])
def test_bad_tuning_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        TailTuning(**bad)


def test_embed_faces_through_stops_at_a_layer():
    from tinyface.models.pretrained import embed_faces
    model = build_model(SPEC, seed=0).eval()
    faces, _ = _data()
    full = embed_faces(model, faces)
    np.testing.assert_array_equal(embed_faces(model, faces, through=len(model.features)), full)
    start = tail_start(model, 1)
    acts = embed_faces(model, faces, through=start)               # (N, C, h, w)
    assert acts.ndim == 4 and len(acts) == len(faces)
    h = acts
    for i in range(start, len(model.features)):
        h = model.features[i].forward(h)
    np.testing.assert_allclose(h, full, rtol=1e-6, atol=1e-6)
