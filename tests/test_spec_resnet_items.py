"""The spec items dlib's ResNet needs: valid and strided convs, pool stages, the
per-channel affine norm, pool-shortcut residual blocks, a bias-free embedding; their
shapes, their canonical JSON, their errors, and gradients through them."""
import json

import numpy as np
import pytest

from tinyface import nn
from tinyface.losses import softmax_cross_entropy_loss
from tinyface.optim import Adam
from tinyface.models import SpecError, build_model, format_spec, normalize_spec, trunk_shapes

BASE = {"input_size": 17, "embedding_dim": 5, "num_classes": 3, "norm": "affine",
        "act": "prelu", "embedding_norm": "none", "embedding_bias": False}
STAGES = [{"conv": 4, "kernel": 3, "stride": 2, "padding": 0},       # 17 -> 8
          {"pool": "avg", "kernel": 2},                              # 8 -> 4
          {"res": 4},                                                # 4 -> 4
          {"res": 6, "stride": 2, "padding": 0, "shortcut": "pool"}]  # main 1, padded to 2
TINY = {**BASE, "stages": STAGES}


def faces(n, size, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 3, size, size)).astype(np.float32)


def test_shapes_follow_the_geometry():
    assert [s[1:] for s in trunk_shapes(normalize_spec(TINY))] == [(8, 8), (4, 4), (4, 4), (2, 2)]
    model = build_model(TINY, seed=0)
    emb, logits = model.forward_both(faces(2, 17))
    assert emb.shape == (2, 5) and logits.shape == (2, 3)
    block = model.features[5]                                 # conv, affine, prelu, pool, res, res
    assert isinstance(block.body[-1], nn.ZeroPad2d)           # the main path's zero row/column
    assert [type(m).__name__ for m in block.shortcut] == ["AvgPool2d", "ZeroPad2d"]
    assert "bias" not in model.features[-1].params            # bias-free embedding
    assert isinstance(model.features[1], nn.Affine2d)


def test_canonical_form_keeps_old_specs_unchanged():
    old = {"input_size": 16, "stages": [8, "M", {"conv": 8, "kernel": 3, "stride": 2},
                                        {"res": 8, "stride": 1}],
           "embedding_dim": 4, "num_classes": 2}
    spec = normalize_spec(old)
    assert "embedding_bias" not in spec
    assert spec["stages"][2] == {"conv": 8, "kernel": 3, "stride": 2}
    assert spec["stages"][3] == {"res": 8, "stride": 1}
    # a default given explicitly is dropped from the canonical form
    again = normalize_spec({**old, "embedding_bias": True,
                            "stages": [8, "M", {"conv": 8, "kernel": 3, "stride": 2, "padding": 1},
                                       {"res": 8, "padding": 1, "shortcut": "conv"}]})
    assert again == spec
    assert normalize_spec(json.loads(format_spec(TINY))) == normalize_spec(TINY)


@pytest.mark.parametrize("stages,match", [
    ([{"conv": 4, "kernel": 2}], "even kernel needs an explicit padding"),
    ([{"conv": 4, "padding": -1}], "non-negative"),
    ([{"pool": "min"}], "'max' or 'avg'"),
    ([4, {"pool": "max", "size": 2}], "unknown key"),
    ([4, {"res": 4, "shortcut": "zero"}], "shortcut must be one of"),
    ([4, {"res": 4, "stride": 3, "shortcut": "pool"}], "stride must be 1 or 2"),
    ([8, {"res": 4, "stride": 2, "shortcut": "pool"}], "cannot go from 8 down to 4"),
    ([4, {"res": 4, "padding": 0}], "use padding 1"),
    ([4, {"pool": "max", "kernel": 40}], "empty feature map"),
])
def test_bad_items_are_refused_with_a_reason(stages, match):
    with pytest.raises(SpecError, match=match):
        normalize_spec({**BASE, "stages": stages})


def test_embedding_bias_must_be_a_bool():
    with pytest.raises(SpecError, match="embedding_bias"):
        normalize_spec({**TINY, "embedding_bias": "no"})


def test_directional_derivatives_through_the_new_items():
    """float32, smooth model (average pools, PReLU slopes of 1): a central difference
    along random directions, as in test_models (tolerance 2e-2)."""
    model = build_model(TINY, seed=1)
    for name, p in model.named_parameters():
        if name.endswith(".weight") and p.ndim == 1 and "features" in name:
            p[...] = np.random.default_rng(7).uniform(0.5, 1.5, p.shape)   # affine scales
    for module in _modules(model):
        if isinstance(module, nn.PReLU):
            module.params["weight"][...] = 1.0
    model.train()
    rng = np.random.default_rng(0)
    x = faces(3, 17, seed=2)
    emb, logits = model.forward_both(x)
    a, b = rng.standard_normal(emb.shape), rng.standard_normal(logits.shape)

    def loss():
        e, z = model.forward_both(x)
        return float(np.sum(e.astype(np.float64) * a) + np.sum(z.astype(np.float64) * b))

    loss()
    model.zero_grad()
    dx = model.backward_both(a.astype(np.float32), b.astype(np.float32))
    grads = dict(model.named_grads())
    checks = [("x", x, dx)] + [(n, p, grads[n]) for n, p in model.named_parameters()
                               if n in ("features.0.weight", "features.1.weight",
                                        "features.1.bias", "features.5.body.0.weight",
                                        "features.5.body.4.weight", "features.7.weight")]
    assert len(checks) == 7
    h = 1e-3
    for name, arr, grad in checks:
        v = rng.standard_normal(arr.shape).astype(np.float32)
        old = arr.copy()
        arr += h * v
        plus = loss()
        arr[...] = old - h * v
        minus = loss()
        arr[...] = old
        numeric = (plus - minus) / (2 * h)
        analytic = float(np.sum(grad.astype(np.float64) * v))
        assert abs(numeric - analytic) <= 2e-2 * (abs(numeric) + abs(analytic)), \
            f"{name}: numeric {numeric:.5f} vs analytic {analytic:.5f}"


def test_a_pool_shortcut_network_trains():
    """Such a network can be trained, not only imported: 30 Adam steps more than halve the loss."""
    model = build_model(TINY, seed=0)
    model.train()
    x, y = faces(12, 17, seed=3), np.arange(12) % 3
    opt = Adam(model.parameters_and_grads(), lr=0.01)
    losses = []
    for _ in range(30):
        model.zero_grad()
        loss, dlogits = softmax_cross_entropy_loss(model.forward(x), y)
        model.backward(dlogits)
        opt.step()
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0]


def _modules(module):
    for child in module.children():
        yield child
        yield from _modules(child)
