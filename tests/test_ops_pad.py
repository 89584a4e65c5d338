"""Zero padding op and the ``ZeroPad2d`` layer: gradient checks (both CPU tiers,
float64), Numba against the NumPy reference (float32, seeded random shapes and
targets, batch 1 up to batches that take the parallel kernels), argument errors, and
the layer's forward/backward, config and checkpoint round trips."""
import json

import numba
import numpy as np
import pytest

from tinyface import checkpoint, nn
from tinyface.backend import set_backend
from tinyface.gradcheck import assert_gradient, numerical_gradient
from tinyface.kernels import pad as numba_pad
from tinyface.kernels.threading import PARALLEL_MIN_BATCH, use_parallel
from tinyface.nn.module import build_layer
from tinyface.reference import pad as numpy_pad

TIERS = {"numpy": numpy_pad, "numba": numba_pad}


@pytest.fixture(params=sorted(TIERS))
def tier(request):
    return TIERS[request.param]


@pytest.fixture(params=["numba", "numpy"])
def backend(request):
    previous = set_backend(request.param)
    yield request.param
    set_backend(previous)


# (x shape, (channels, height, width)): channels only (a shortcut), a row and a column
# (a main path), all three, and the identity
GRAD_CASES = [
    ((1, 2, 3, 3), (4, 3, 3)),
    ((2, 3, 2, 2), (3, 3, 3)),
    ((2, 1, 3, 2), (3, 5, 4)),
    ((1, 2, 2, 3), (2, 2, 3)),
]


@pytest.mark.parametrize("shape,target", GRAD_CASES)
def test_zero_pad_gradient(tier, shape, target):
    rng = np.random.default_rng(sum(shape) + sum(target))
    x = rng.standard_normal(shape)
    out, cache = tier.zero_pad_forward(x, *target)
    N, C, H, W = shape
    assert out.shape == (N, *target) and out.dtype == np.float64
    np.testing.assert_array_equal(out[:, :C, :H, :W], x)
    outside = np.ones(out.shape, bool)
    outside[:, :C, :H, :W] = False
    assert not out[outside].any()
    dout = rng.standard_normal(out.shape)
    dx = tier.zero_pad_backward(dout, cache)
    assert dx.flags.c_contiguous and dx.shape == shape
    num = numerical_gradient(lambda: tier.zero_pad_forward(x, *target)[0], x, dout)
    assert_gradient(dx, num, tol=1e-7, name="zero_pad dx")


def test_zero_pad_known_values(tier):
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)                # (1, 1, 2, 2)
    out, cache = tier.zero_pad_forward(x, 2, 3, 3)
    np.testing.assert_array_equal(out[0, 0], [[1, 2, 0], [3, 4, 0], [0, 0, 0]])
    np.testing.assert_array_equal(out[0, 1], np.zeros((3, 3)))
    dout = np.arange(18, dtype=np.float32).reshape(1, 2, 3, 3)
    np.testing.assert_array_equal(tier.zero_pad_backward(dout, cache), [[[[0, 1], [3, 4]]]])


def test_zero_pad_refuses_smaller_targets_and_bad_arguments(tier):
    x = np.ones((2, 3, 4, 5), np.float32)
    for target in [(2, 4, 5), (3, 3, 5), (3, 4, 4), (-1, 4, 5)]:
        with pytest.raises(ValueError, match="smaller than the input") as info:
            tier.zero_pad_forward(x, *target)
        assert "\n" not in str(info.value) and "(3, 4, 5)" in str(info.value)
    with pytest.raises(ValueError, match="must be ints"):
        tier.zero_pad_forward(x, 3.5, 4, 5)
    with pytest.raises(ValueError, match="must be ints"):
        tier.zero_pad_forward(x, None, 4, 5)
    with pytest.raises(ValueError, match=r"zero_pad: x must be \(N, C, H, W\)"):
        tier.zero_pad_forward(np.ones((3, 4, 5), np.float32), 3, 4, 5)
    _, cache = tier.zero_pad_forward(x, 4, 4, 6)
    with pytest.raises(ValueError, match=r"zero_pad_backward: dout.*expected \(2, 4, 4, 6\)"):
        tier.zero_pad_backward(np.ones((2, 3, 4, 5), np.float32), cache)
    out, _ = tier.zero_pad_forward(x, np.int64(4), 4, 5)          # NumPy ints are ints
    assert out.shape == (2, 4, 4, 5)


def _random_case(rng):
    shape = tuple(int(v) for v in rng.integers(1, 7, 4))
    extra = rng.integers(0, 3, 3) * rng.integers(0, 2, 3)         # often 0: axes kept
    return shape, tuple(int(s + e) for s, e in zip(shape[1:], extra))


def test_zero_pad_numba_matches_reference():
    rng = np.random.default_rng(17)
    cases = [((1, 1, 1, 1), (1, 1, 1)), ((1, 16, 7, 7), (32, 8, 8)),
             ((PARALLEL_MIN_BATCH, 3, 2, 5), (3, 3, 6)), ((64, 8, 5, 5), (16, 6, 6)),
             ((33, 4, 3, 3), (4, 3, 3))]
    cases += [_random_case(rng) for _ in range(12)]
    for trial, (shape, target) in enumerate(cases):
        x = rng.standard_normal(shape).astype(np.float32)
        dout = rng.standard_normal((shape[0], *target)).astype(np.float32)
        res = {}
        for name, tier in TIERS.items():
            out, cache = tier.zero_pad_forward(x, *target)
            res[name] = (out, tier.zero_pad_backward(dout, cache))
        msg = f"trial {trial}: x {shape} -> {target}, parallel kernels: {use_parallel(shape[0])}"
        for label, a, b in zip(["out", "dx"], res["numba"], res["numpy"]):
            assert a.dtype == b.dtype == np.float32 and a.shape == b.shape, f"{label}, {msg}"
            np.testing.assert_array_equal(a, b, err_msg=f"{label}, {msg}")


def test_parallel_kernel_overwrites_every_cell():
    """The forward fills an uninitialised array: garbage in the output must not survive
    (checked on both halves of the compiled pair at a batch that takes the parallel one)."""
    if numba.get_num_threads() > 1:
        assert use_parallel(64)
    x = np.random.default_rng(3).standard_normal((64, 5, 4, 3)).astype(np.float32)
    want, _ = numpy_pad.zero_pad_forward(x, 8, 6, 5)
    for kernel in numba_pad._forward:
        out = np.full(want.shape, np.nan, np.float32)
        kernel(x, out)
        np.testing.assert_array_equal(out, want)


def test_empty_batch():
    for tier in TIERS.values():
        out, cache = tier.zero_pad_forward(np.zeros((0, 2, 3, 3), np.float32), 3, 3, 4)
        assert out.shape == (0, 3, 3, 4)
        assert tier.zero_pad_backward(out, cache).shape == (0, 2, 3, 3)


# --------------------------------------------------------------------- the layer
def test_zeropad2d_none_keeps_an_axis(backend):
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5))    # float64 in: float32 out
    cases = [(dict(channels=6), (2, 6, 4, 5)), (dict(height=5, width=6), (2, 3, 5, 6)),
             (dict(), (2, 3, 4, 5)), (dict(channels=3, height=4, width=7), (2, 3, 4, 7))]
    for args, want in cases:
        layer = nn.ZeroPad2d(**args)
        assert layer.params == {} and layer.num_parameters() == 0
        out = layer.forward(x)
        assert out.shape == want and out.dtype == np.float32, args
        np.testing.assert_array_equal(out[:, :3, :4, :5], x.astype(np.float32))
        assert out.sum(dtype=np.float64) == pytest.approx(x.astype(np.float32).sum(), rel=1e-6)
        dout = np.random.default_rng(5).standard_normal(want).astype(np.float32)
        dx = layer.backward(dout)
        assert dx.dtype == np.float32
        np.testing.assert_array_equal(dx, dout[:, :3, :4, :5])


def test_zeropad2d_checks_arguments_and_input():
    for bad in (dict(channels=0), dict(height=-2), dict(width=2.5), dict(channels=True)):
        with pytest.raises(ValueError, match="ZeroPad2d"):
            nn.ZeroPad2d(**bad)
    layer = nn.ZeroPad2d(channels=4, height=3)
    with pytest.raises(ValueError, match=r"ZeroPad2d.*\(2, 5, 3, 3\).*at least"):
        layer.forward(np.zeros((2, 5, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"ZeroPad2d.*\(N, C, H, W\).*\(2, 3, 3\)"):
        layer.forward(np.zeros((2, 3, 3), np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((2, 4, 3, 3), np.float32))


def test_zeropad2d_config_and_checkpoint_round_trip(tmp_path):
    model = nn.Sequential(nn.Affine2d(2), nn.ZeroPad2d(channels=4), nn.Affine2d(4),
                          nn.ZeroPad2d(height=4, width=5))
    rng = np.random.default_rng(6)
    for _, p in model.named_parameters():
        p[...] = rng.standard_normal(p.shape)
    record = json.loads(json.dumps(model.config()))               # None -> null -> None
    assert record["layers"][1] == {"type": "ZeroPad2d", "channels": 4, "height": None,
                                   "width": None}
    assert build_layer(record).config() == model.config()
    loaded, _ = checkpoint.load_model(checkpoint.save_model(tmp_path / "pad", model))
    assert loaded.config() == model.config()
    x = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    out = model.forward(x)
    assert out.shape == (3, 4, 4, 5)
    np.testing.assert_array_equal(loaded.forward(x), out)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_array_equal(loaded.backward(dout), model.backward(dout))
