"""BatchNorm, activation, pooling and dropout layers: PyTorch names and defaults,
gradient accumulation, train/eval behaviour, input checking, config records; both
backends."""
import json

import numpy as np
import pytest

from tinyface import nn
from tinyface.backend import set_backend
from tinyface.nn.module import build_layer


@pytest.fixture(params=["numba", "numpy"])
def backend(request):
    previous = set_backend(request.param)
    yield request.param
    set_backend(previous)


# (factory, input shape): every layer of this family with a valid input
LAYERS = [
    (lambda: nn.BatchNorm2d(3), (2, 3, 4, 5)),
    (lambda: nn.BatchNorm1d(4), (5, 4)),
    (lambda: nn.BatchNorm1d(2), (3, 2, 6)),
    (lambda: nn.ReLU(), (2, 3, 4)),
    (lambda: nn.PReLU(), (2, 3, 4, 4)),
    (lambda: nn.PReLU(3, init=0.1), (2, 3, 5)),
    (lambda: nn.MaxPool2d(2), (2, 3, 4, 6)),
    (lambda: nn.MaxPool2d((3, 2), stride=(2, 1), padding=1), (1, 2, 5, 4)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1), (2, 2, 5, 5)),
    (lambda: nn.GlobalAvgPool2d(), (2, 3, 2, 3)),
    (lambda: nn.Flatten(), (2, 3, 2, 2)),
    (lambda: nn.Dropout(0.3, seed=4), (4, 10)),
]
IDS = ["bn2d", "bn1d", "bn1d-3d", "relu", "prelu", "prelu-c", "maxpool", "maxpool-pad",
       "avgpool", "gap", "flatten", "dropout"]


def test_parameter_names_shapes_and_defaults():
    bn = nn.BatchNorm2d(5)
    assert bn.eps == 1e-5 and bn.momentum == 0.1
    assert sorted(bn.params) == ["bias", "weight"] and sorted(bn.grads) == ["bias", "weight"]
    assert sorted(bn.buffers) == ["running_mean", "running_var"]
    np.testing.assert_array_equal(bn.params["weight"], np.ones(5))
    np.testing.assert_array_equal(bn.params["bias"], np.zeros(5))
    np.testing.assert_array_equal(bn.buffers["running_mean"], np.zeros(5))
    np.testing.assert_array_equal(bn.buffers["running_var"], np.ones(5))
    for a in list(bn.params.values()) + list(bn.buffers.values()):
        assert a.dtype == np.float32 and a.shape == (5,)
    assert [n for n, _ in nn.Sequential(nn.BatchNorm1d(2)).named_buffers()] == \
        ["0.running_mean", "0.running_var"]
    p = nn.PReLU()
    assert list(p.params) == ["weight"] and p.params["weight"].shape == (1,)
    assert p.params["weight"][0] == np.float32(0.25) and p.params["weight"].dtype == np.float32
    assert nn.PReLU(num_parameters=7).params["weight"].shape == (7,)
    for layer in (nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2), nn.GlobalAvgPool2d(),
                  nn.Flatten(), nn.Dropout()):
        assert layer.params == {} and layer.num_parameters() == 0
    assert nn.MaxPool2d(3).stride == 3 and nn.AvgPool2d(2, 1).stride == 1
    assert nn.Dropout().p == 0.5


@pytest.mark.parametrize("factory,shape", LAYERS, ids=IDS)
def test_forward_backward_accumulate_and_zero_grad(backend, factory, shape):
    layer = factory()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)                       # float64 input
    out = layer.forward(x)
    assert out.dtype == np.float32
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = layer.backward(dout)
    assert dx.shape == shape and dx.dtype == np.float32
    first = {k: g.copy() for k, g in layer.grads.items()}
    layer.backward(dout)
    for k in first:
        assert first[k].any(), k
        np.testing.assert_allclose(layer.grads[k], 2 * first[k], rtol=1e-6, err_msg=k)
    layer.zero_grad()
    assert all(not g.any() for g in layer.grads.values())


@pytest.mark.parametrize("factory,shape", LAYERS, ids=IDS)
def test_backends_agree(factory, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    results = []
    for name in ("numba", "numpy"):
        previous = set_backend(name)
        try:
            layer = factory()
            out = layer.forward(x)
            dx = layer.backward(np.ones_like(out))
            results.append((out, dx, *layer.grads.values(), *layer.buffers.values()))
        finally:
            set_backend(previous)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("factory,shape", LAYERS, ids=IDS)
def test_int_input_refused_and_config_round_trip(factory, shape):
    layer = factory()
    x = np.random.default_rng(2).integers(-3, 4, shape)
    with pytest.raises(TypeError, match=r"int64 input.*tinyface\.data\.to_float"):
        layer.forward(x)                                 # integers (e.g. uint8 pixels) refused
    out = layer.forward(x.astype(np.float64))            # other float dtypes are converted
    assert out.dtype == np.float32
    record = json.loads(json.dumps(layer.config()))      # JSON turns tuples into lists
    clone = build_layer(record)
    assert type(clone) is type(layer) and clone.config() == layer.config()
    assert {k: v.shape for k, v in clone.params.items()} == {k: v.shape for k, v in layer.params.items()}
    with pytest.raises(RuntimeError, match="before forward"):
        clone.backward(np.zeros(out.shape, np.float32))


def test_wrong_shapes_name_layer_and_shapes():
    cases = [
        (nn.BatchNorm2d(3), (2, 4, 5, 5), r"BatchNorm2d.*\(N, 3, H, W\).*\(2, 4, 5, 5\)"),
        (nn.BatchNorm2d(3), (2, 3, 5), r"BatchNorm2d.*\(N, 3, H, W\).*\(2, 3, 5\)"),
        (nn.BatchNorm1d(4), (2, 3), r"BatchNorm1d.*\(N, 4\).*\(2, 3\)"),
        (nn.BatchNorm1d(4), (2, 4, 1, 1), r"BatchNorm1d.*\(N, 4\).*\(2, 4, 1, 1\)"),
        (nn.PReLU(3), (2, 4, 5), r"PReLU.*\(N, 3, L\).*\(2, 4, 5\)"),
        (nn.MaxPool2d(2), (2, 3, 4), r"MaxPool2d.*\(N, C, H, W\).*\(2, 3, 4\)"),
        (nn.AvgPool2d(2), (3, 4), r"AvgPool2d.*\(N, C, H, W\).*\(3, 4\)"),
        (nn.GlobalAvgPool2d(), (2, 3), r"GlobalAvgPool2d.*\(N, C, H, W\).*\(2, 3\)"),
        (nn.Flatten(), (5,), r"Flatten.*\(5,\)"),
    ]
    for layer, shape, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            layer.forward(np.zeros(shape, np.float32))


def test_batchnorm_train_eval_switch(backend):
    bn = nn.BatchNorm2d(2)
    x = np.random.default_rng(3).standard_normal((4, 2, 3, 3)).astype(np.float32) * 2 + 1
    out_train = bn.forward(x)
    np.testing.assert_allclose(out_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    stats = {k: v.copy() for k, v in bn.buffers.items()}
    assert not np.allclose(stats["running_mean"], 0)
    bn.eval()
    assert not bn.training
    out_eval = bn.forward(x)
    assert not np.allclose(out_eval, out_train, atol=1e-3)
    expect = (x - stats["running_mean"][:, None, None]) / np.sqrt(stats["running_var"][:, None, None] + 1e-5)
    np.testing.assert_allclose(out_eval, expect, rtol=1e-5, atol=1e-5)
    for k, v in bn.buffers.items():
        np.testing.assert_array_equal(v, stats[k])      # eval leaves running stats alone
    dx = bn.backward(np.ones_like(x))                   # eval backward: dout * gamma * inv_std
    np.testing.assert_allclose(dx, np.broadcast_to(
        1 / np.sqrt(stats["running_var"][:, None, None] + 1e-5), x.shape), rtol=1e-5)
    bn.train()
    bn.forward(x)
    assert not np.allclose(bn.buffers["running_mean"], stats["running_mean"])


def test_dropout_train_eval_and_fresh_masks(backend):
    x = np.ones((8, 100), np.float32)
    layer = nn.Dropout(0.5, seed=1)
    a = layer.forward(x)
    b = layer.forward(x)
    assert set(np.unique(a)) == {0.0, 2.0}
    assert (a != b).any()                               # a fresh mask per training call
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, b)                # gradient uses the latest mask
    again = nn.Dropout(0.5, seed=1)
    np.testing.assert_array_equal(again.forward(x), a)  # reproducible from the layer seed
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(2 * x), 2 * x)
    for p in (-0.5, 1.0):
        with pytest.raises(ValueError, match="Dropout"):
            nn.Dropout(p)


def test_sequential_of_basic_layers(backend):
    model = nn.Sequential(nn.BatchNorm2d(2), nn.PReLU(2), nn.MaxPool2d(2), nn.AvgPool2d(1),
                          nn.Dropout(0.2, seed=3), nn.GlobalAvgPool2d(), nn.BatchNorm1d(2),
                          nn.ReLU())
    x = np.random.default_rng(4).standard_normal((3, 2, 4, 6)).astype(np.float32)
    out = model.forward(x)
    assert out.shape == (3, 2)
    dx = model.backward(np.ones_like(out))
    assert dx.shape == x.shape
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "6.weight", "6.bias"]
    clone = build_layer(json.loads(json.dumps(model.config())))
    assert clone.config() == model.config()
