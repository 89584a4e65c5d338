"""Face models: specs, the two-head FaceNet, the zoo's budgets, checkpoints, summaries."""
import json

import numpy as np
import pytest

from tinyface import nn
from tinyface.checkpoint import load_model, save_model
from tinyface.models import (STUDENT_MAX_PARAMS, FaceNet, Residual, SpecError, build_model,
                             build_student, build_teacher, format_spec, format_summary,
                             normalize_spec, parse_spec, student_spec, summary,
                             teacher_lite_spec, teacher_spec, totals)

# a tiny spec that uses every kind of stage (8x8 faces, a few hundred parameters)
TINY = {"name": "tiny", "input_size": 8, "in_channels": 3,
        "stages": [4, "M", {"conv": 6, "kernel": 3, "stride": 1}, {"res": 6},
                   {"res": 8, "stride": 2}, "A"],
        "embedding_dim": 5, "num_classes": 7, "act": "prelu"}


def faces(n, size, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


def grads_of(model):
    return {n: g.copy() for n, g in model.named_grads()}


# ------------------------------------------------------------------ budgets
def test_student_fits_the_budget_and_teacher_is_20x():
    assert STUDENT_MAX_PARAMS == 39321 == int(0.15 * 2 ** 20) // 4
    student, teacher = build_student(), build_teacher(158)
    n_s, n_t = student.num_parameters(), teacher.num_parameters()
    assert n_s == 38670 <= STUDENT_MAX_PARAMS             # 158-way classifier included
    assert student.num_classes == 158 and student.classifier.params["weight"].shape == (158, 64)
    assert n_t >= 20 * n_s
    assert student.nbytes() == 4 * n_s <= 0.15 * 2 ** 20
    assert student.buffer_nbytes() == 4 * student.num_buffers() > 0
    assert build_model(teacher_lite_spec(158)).num_parameters() == n_t


def test_forward_shapes_and_names():
    student = build_student(seed=1)
    x = faces(3, 16)
    assert student.forward(x).shape == (3, 158)
    emb, logits = student.forward_both(x)
    assert emb.shape == (3, 64) and logits.shape == (3, 158) and emb.dtype == np.float32
    assert student.embed(x).shape == (3, 64)
    names = [n for n, _ in student.named_parameters()]
    assert names[0] == "features.0.weight" and names[-2:] == ["classifier.weight", "classifier.bias"]
    teacher = build_teacher(10)
    assert teacher.input_shape == (3, 64, 64) and teacher.embedding_dim == 256
    e, z = teacher.forward_both(faces(2, 64))
    assert e.shape == (2, 256) and z.shape == (2, 10)


def test_wrong_face_size_is_refused_with_shapes():
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16\).*\(2, 3, 64, 64\)"):
        build_student().forward(faces(2, 64))


def test_seeds_are_reproducible():
    a, b, c = build_student(seed=3), build_student(seed=3), build_student(seed=4)
    wa, wb, wc = (m.params["weight"] for m in (a.features[0], b.features[0], c.features[0]))
    np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(wa, wc)


# ----------------------------------------------------------------- gradients
@pytest.mark.parametrize("spec", [TINY, dict(student_spec(11), dropout=0.3)], ids=["tiny", "student"])
def test_backward_both_is_backward_plus_embedding_path(spec):
    model = build_model(spec, seed=0)
    model.train()
    x = faces(4, spec["input_size"])
    emb, logits = model.forward_both(x)
    rng = np.random.default_rng(1)
    de = rng.standard_normal(emb.shape).astype(np.float32)
    dl = rng.standard_normal(logits.shape).astype(np.float32)

    model.zero_grad()
    dx_l = model.backward(dl)
    g_l = grads_of(model)
    model.zero_grad()
    np.testing.assert_array_equal(model.backward_both(None, dl), dx_l)
    for name, g in model.named_grads():
        np.testing.assert_array_equal(g, g_l[name], err_msg=name)

    model.zero_grad()
    dx_e = model.backward_both(de, None)
    g_e = grads_of(model)
    assert not g_e["classifier.weight"].any()              # no logits gradient: untouched
    assert np.abs(g_e["features.0.weight"]).sum() > 0       # the embedding gradient flows
    assert np.abs(dx_e).sum() > 0

    model.zero_grad()
    dx = model.backward_both(de, dl)                        # linear in (de, dl)
    np.testing.assert_allclose(dx, dx_e + dx_l, rtol=1e-4, atol=1e-6)
    for name, g in model.named_grads():
        np.testing.assert_allclose(g, g_e[name] + g_l[name], rtol=1e-4, atol=1e-5, err_msg=name)
    with pytest.raises(ValueError):
        model.backward_both(None, None)


def _smooth_tiny(seed):
    """TINY with average pools and PReLU slopes of 1: no kinks, so that a float32
    central difference converges (max pools and ReLU kinks make it jump by 10-50%)."""
    model = build_model({**TINY, "stages": ["A" if s == "M" else s for s in TINY["stages"]]},
                        seed=seed)
    for _, module in _modules(model):
        if isinstance(module, nn.PReLU):
            module.params["weight"][...] = 1.0
    return model


def _modules(module):
    for child in module.children():
        yield type(child).__name__, child
        yield from _modules(child)


def test_directional_derivatives_match_finite_differences():
    """float32 layers: a central difference along a random direction.

    On this smooth model the relative error is below 2e-3 for h = 1e-3 over many
    seeds (float32 round-off dominates); the tolerance is 2e-2. The exact check is
    ``test_gradients_match_torch_autograd``.
    """
    model = _smooth_tiny(seed=0)
    model.train()                                           # batch statistics: BN in the loop
    rng = np.random.default_rng(0)
    x = faces(6, 8, seed=2)
    emb, logits = model.forward_both(x)
    a = rng.standard_normal(emb.shape)
    b = rng.standard_normal(logits.shape)

    def loss():
        e, z = model.forward_both(x)
        return float(np.sum(e.astype(np.float64) * a) + np.sum(z.astype(np.float64) * b))

    loss()
    model.zero_grad()
    dx = model.backward_both(a.astype(np.float32), b.astype(np.float32))
    grads = grads_of(model)
    h = 1e-3
    checks = [("x", x, dx)] + [(n, p, grads[n]) for n, p in model.named_parameters()
                               if n in ("features.0.weight", "features.2.weight",
                                        "features.7.body.3.weight", "features.8.shortcut.0.weight",
                                        "features.11.weight", "classifier.weight")]
    assert len(checks) == 7
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


def _to_torch(module, torch):
    """The same network in PyTorch (float64), weights copied."""
    tnn = torch.nn
    if isinstance(module, nn.Sequential):
        return tnn.Sequential(*[_to_torch(c, torch) for c in module.children()])
    if isinstance(module, Residual):
        body = _to_torch(module.body, torch)
        short = tnn.Identity() if module.shortcut is None else _to_torch(module.shortcut, torch)
        act = _to_torch(module.act, torch)

        class TorchResidual(tnn.Module):
            def __init__(self):
                super().__init__()
                self.body, self.shortcut, self.act = body, short, act

            def forward(self, x):
                return self.act(self.body(x) + self.shortcut(x))
        return TorchResidual()
    simple = {nn.ReLU: lambda: tnn.ReLU(), nn.MaxPool2d: lambda: tnn.MaxPool2d(2),
              nn.AvgPool2d: lambda: tnn.AvgPool2d(2),
              nn.GlobalAvgPool2d: lambda: tnn.Sequential(tnn.AdaptiveAvgPool2d(1), tnn.Flatten())}
    if type(module) in simple:
        return simple[type(module)]()
    layer = {nn.Conv2d: lambda m: tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size,
                                             m.stride, m.padding),
             nn.Linear: lambda m: tnn.Linear(m.in_features, m.out_features),
             nn.BatchNorm2d: lambda m: tnn.BatchNorm2d(m.num_features),
             nn.BatchNorm1d: lambda m: tnn.BatchNorm1d(m.num_features),
             nn.PReLU: lambda m: tnn.PReLU(m.num_parameters)}[type(module)](module).double()
    with torch.no_grad():
        for key, value in module.params.items():
            getattr(layer, key).copy_(torch.from_numpy(value.astype(np.float64)))
    return layer


def test_gradients_match_torch_autograd():
    """Exact check against float64 autograd (PyTorch as an optional oracle)."""
    torch = pytest.importorskip("torch")
    model = build_model(TINY, seed=0)
    model.train()
    features, classifier = _to_torch(model.features, torch), _to_torch(model.classifier, torch)
    rng = np.random.default_rng(3)
    x = faces(6, 8, seed=4)
    emb, logits = model.forward_both(x)
    a, b = rng.standard_normal(emb.shape), rng.standard_normal(logits.shape)
    model.zero_grad()
    dx = model.backward_both(a.astype(np.float32), b.astype(np.float32))

    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    et = features(xt)
    zt = classifier(et)
    ((et * torch.from_numpy(a)).sum() + (zt * torch.from_numpy(b)).sum()).backward()
    np.testing.assert_allclose(emb, et.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logits, zt.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-3, atol=1e-4)
    torch_grads = {f"features.{n}": p.grad.numpy() for n, p in features.named_parameters()}
    torch_grads |= {f"classifier.{n}": p.grad.numpy() for n, p in classifier.named_parameters()}
    ours = dict(model.named_grads())
    assert len(ours) == len(torch_grads) == 40
    for name, g in ours.items():
        np.testing.assert_allclose(g, torch_grads[name], rtol=1e-3, atol=1e-4, err_msg=name)


def test_embed_then_embedding_backward():
    model = build_model(TINY, seed=0)
    e = model.embed(faces(2, 8))
    assert model.backward_both(np.ones_like(e), None).shape == (2, 3, 8, 8)
    model.embed(faces(2, 8))
    with pytest.raises(RuntimeError, match="forward_both"):
        model.backward_both(None, np.ones((2, 7), np.float32))


# ------------------------------------------------------------ spec and model
def test_spec_defaults_printing_and_errors():
    spec = normalize_spec({"input_size": 8, "stages": [4], "embedding_dim": 3, "num_classes": 2})
    assert spec["norm"] == "bn" and spec["act"] == "relu" and spec["dropout"] == 0.0
    text = format_spec(student_spec())
    assert '"stages": [16, 16, "M", 32, 32, "M", 32]' in text
    assert parse_spec(text) == normalize_spec(student_spec())
    assert json.loads(format_spec(TINY))["stages"][3] == {"res": 6, "stride": 1}
    bad = [({**TINY, "colour": 1}, "unknown spec key"),
           ({k: v for k, v in TINY.items() if k != "stages"}, "missing"),
           ({**TINY, "stages": [4, "X"]}, r"stages\[1\]"),
           ({**TINY, "stages": [4, "M", "M", "M", "M"]}, "empty feature map"),
           ({**TINY, "act": "tanh"}, "act"),
           ({**TINY, "num_classes": 0}, "num_classes"),
           ({**TINY, "dropout": 1.0}, "dropout"),
           ({**TINY, "stages": [{"conv": 4, "kernel": 2}]}, "odd")]
    for spec, message in bad:
        with pytest.raises(SpecError, match=message):
            build_model(spec)


def test_residual_blocks_and_plain_layers():
    model = build_model(TINY)
    blocks = [m for m in model.features.children() if isinstance(m, Residual)]
    assert len(blocks) == 2
    assert blocks[0].shortcut is None and blocks[1].shortcut is not None   # 6->6 s1; 6->8 s2
    names = dict(model.named_parameters())
    assert "features.7.body.0.weight" in names and "features.8.shortcut.0.weight" in names
    assert isinstance(model.features[-1], nn.BatchNorm1d)
    order = [r["name"] for r in summary(model)]
    assert order.index("features.7.body.4") < order.index("features.7") < order.index("features.7.act")
    no_bn = build_model({**TINY, "norm": "none", "embedding_norm": "none"})
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in no_bn.features.children())


def test_replace_classifier():
    teacher = build_model({**teacher_spec(500), "input_size": 16})
    w0 = teacher.features[0].params["weight"].copy()
    teacher.replace_classifier(158, seed=5)
    assert teacher.num_classes == 158 == teacher.spec["num_classes"]
    assert teacher.forward(faces(2, 16)).shape == (2, 158)
    np.testing.assert_array_equal(teacher.features[0].params["weight"], w0)
    other = build_model({**teacher_spec(500), "input_size": 16}).replace_classifier(158, seed=5)
    np.testing.assert_array_equal(other.classifier.params["weight"],
                                  teacher.classifier.params["weight"])
    assert [n for n, _ in teacher.named_parameters()][-1] == "classifier.bias"


@pytest.mark.parametrize("spec", [TINY, dict(student_spec(), dropout=0.2)], ids=["tiny", "student"])
def test_checkpoint_round_trip(tmp_path, spec):
    model = build_model(spec, seed=0)
    x = faces(4, spec["input_size"])
    for _ in range(2):
        model.forward_both(x)                              # move the running statistics
    model.eval()
    path = save_model(tmp_path / "m.npz", model, metadata={"epoch": 2})
    loaded, meta = load_model(path)
    assert isinstance(loaded, FaceNet) and meta == {"epoch": 2}
    assert loaded.spec == model.spec and loaded.config() == model.config()
    loaded.eval()
    e0, z0 = model.forward_both(x)
    e1, z1 = loaded.forward_both(x)
    np.testing.assert_array_equal(e0, e1)
    np.testing.assert_array_equal(z0, z1)


# ------------------------------------------------------------------- summary
@pytest.mark.parametrize("make", [build_student, lambda: build_teacher(158),
                                  lambda: build_model(TINY)], ids=["student", "teacher", "tiny"])
def test_summary_totals_match_the_model(make):
    model = make()
    model.train()
    mean = model.features[1].buffers["running_mean"].copy()
    rows = summary(model)
    assert model.training and model.features[1].training        # modes restored
    np.testing.assert_array_equal(model.features[1].buffers["running_mean"], mean)
    t = totals(rows)
    assert t["params"] == model.num_parameters() and t["bytes"] == model.nbytes()
    assert t["buffers"] == model.num_buffers()
    assert rows[-1]["name"] == "classifier" and rows[-1]["output"] == (model.num_classes,)
    text = format_summary(rows)
    assert f"{model.num_parameters():,}" in text and f"{t['flops']:,}" in text
    assert "MB" in text and "FLOPs/face" in text


def test_flops_of_known_layers():
    spec = {"input_size": 5, "in_channels": 2, "stages": [4], "embedding_dim": 3,
            "num_classes": 2, "norm": "none", "embedding_norm": "none"}
    rows = {r["name"]: r for r in summary(build_model(spec))}
    assert rows["features.0"]["flops"] == 2 * 4 * 2 * 3 * 3 * 5 * 5     # conv: 3,600
    assert rows["features.0"]["output"] == (4, 5, 5) and rows["features.0"]["params"] == 4 * 2 * 9 + 4
    assert rows["features.1"]["flops"] == 4 * 5 * 5                     # ReLU: elements
    assert rows["features.2"]["flops"] == 4 * 5 * 5                     # global pool: inputs
    assert rows["features.3"]["flops"] == 2 * 4 * 3                     # Linear 4->3
    assert rows["classifier"]["flops"] == 2 * 3 * 2
    student = totals(summary(build_student()))
    assert student["flops"] == 3521856                                  # pinned, see zoo.py
