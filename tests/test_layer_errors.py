"""Clear one-line errors from the layers and FaceNet: integer (uint8) faces, bad
constructor arguments, wrong-shaped gradients, empty batches and wrong input shapes.

Every check is a shape/dtype check in ``tinyface.nn`` (``nn/checks.py``); the op tiers
are not involved, so each case runs in milliseconds.
"""
import numpy as np
import pytest

from tinyface import nn
from tinyface.backend import set_backend
from tinyface.data import to_float
from tinyface.models import Residual, build_model
from tinyface.nn.module import Module

# a tiny FaceNet: 8x8 faces, conv, residual block, pool, BN embedding, dropout
TINY = {"name": "tiny", "input_size": 8, "in_channels": 3,
        "stages": [4, "M", {"res": 4}, "A"], "embedding_dim": 5, "num_classes": 7,
        "dropout": 0.2}


@pytest.fixture(params=["numba", "numpy"])
def backend(request):
    previous = set_backend(request.param)
    yield request.param
    set_backend(previous)


def uint8_faces(n, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, size, size)).astype(np.uint8)


class FakeDeviceArray:
    """Stands for a GPU array: shape and dtype only, and ``__cuda_array_interface__``,
    so that any attempt to read or copy its data would fail."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (0, False), "version": 2}

    def __array__(self, *args, **kwargs):
        raise AssertionError("a device array must not be copied to the host")


# ------------------------------------------------- 1. integer (uint8) faces refused
def test_facenet_refuses_uint8_faces_at_every_entry():
    model = build_model(TINY, seed=0).eval()
    x = uint8_faces(4)                                           # (4, 3, 8, 8) uint8, 0..255
    for entry in ("forward", "forward_both", "embed"):
        with pytest.raises(TypeError, match=rf"^FaceNet\.{entry} got uint8 faces \(4, 3, 8, 8\): "
                                            r".*tinyface\.data\.to_float \(0\.\.255 -> "):
            getattr(model, entry)(x)
    with pytest.raises(TypeError, match="int64 faces"):
        model.forward(x.astype(np.int64))
    assert model.forward(to_float(x)).shape == (4, 7)           # the converted faces run
    assert model.embed(to_float(x)).shape == (4, 5)


def test_first_layers_refuse_integer_input_naming_the_layer():
    x = uint8_faces(2)
    with pytest.raises(TypeError, match=r"^Conv2d\.forward got uint8 input.*to_float"):
        nn.Conv2d(3, 4, 3).forward(x)
    with pytest.raises(TypeError, match=r"^Linear\.forward got int32 input \(2, 6\).*to_float"):
        nn.Linear(6, 2).forward(np.ones((2, 6), np.int32))
    with pytest.raises(TypeError, match=r"^Affine2d\.forward got uint8 input"):
        nn.Affine2d(3).forward(x)
    with pytest.raises(TypeError, match=r"^Flatten\.forward got uint8 input"):
        nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)).forward(x)   # whichever is first


def test_integer_check_reads_only_the_dtype_of_device_arrays():
    # a GPU array is never copied: the check reads .dtype and .shape only
    layer = nn.Conv2d(3, 4, 3)
    with pytest.raises(TypeError, match=r"^Conv2d\.forward got uint8 input \(2, 3, 8, 8\)"):
        layer.check_input(FakeDeviceArray((2, 3, 8, 8), np.uint8), ndim=4, channels=3)
    ok = FakeDeviceArray((2, 3, 8, 8), np.float32)
    assert layer.check_input(ok, ndim=4, channels=3) is ok
    model = build_model(TINY, seed=0)
    with pytest.raises(TypeError, match=r"^FaceNet\.embed got uint8 faces"):
        model.embed(FakeDeviceArray((2, 3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"^FaceNet\.forward: expected faces of shape \(N, 3, 8, 8\)"):
        model.forward(FakeDeviceArray((2, 3, 9, 9), np.float32))


# ------------------------------------------- 2. constructor arguments, one ValueError
BAD_ARGS = [
    (lambda: nn.Conv2d(3, 0, 3), r"^Conv2d: out_channels must be an integer >= 1, got 0$"),
    (lambda: nn.Conv2d(0, 4, 3), r"^Conv2d: in_channels must be an integer >= 1, got 0$"),
    (lambda: nn.Conv2d(3, 4, 0), r"^Conv2d: kernel_size must be an integer >= 1"),
    (lambda: nn.Conv2d(3, 4, (3, 0)), r"^Conv2d: kernel_size must be .*got \(3, 0\)$"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), r"^Conv2d: stride must be an integer >= 1"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), r"^Conv2d: padding must be an integer >= 0"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), r"^Conv2d: kernel_size must be"),
    (lambda: nn.Conv2d(3.5, 4, 3), r"^Conv2d: in_channels must be an integer >= 1, got 3\.5$"),
    (lambda: nn.Conv2d(3, 4, 3, bias="no"), r"^Conv2d: bias must be True or False"),
    (lambda: nn.Linear(0, 3), r"^Linear: in_features must be an integer >= 1, got 0$"),
    (lambda: nn.Linear(3, -2), r"^Linear: out_features must be an integer >= 1, got -2$"),
    (lambda: nn.BatchNorm2d(0), r"^BatchNorm2d: num_features must be an integer >= 1, got 0$"),
    (lambda: nn.BatchNorm1d(4, eps=0), r"^BatchNorm1d: eps must be > 0, got 0$"),
    (lambda: nn.BatchNorm1d(4, momentum=1.5), r"^BatchNorm1d: momentum must be in \[0, 1\]"),
    (lambda: nn.MaxPool2d(0), r"^MaxPool2d: kernel_size must be an integer >= 1"),
    (lambda: nn.MaxPool2d(2, stride=0), r"^MaxPool2d: stride must be an integer >= 1"),
    (lambda: nn.AvgPool2d(2, padding=-1), r"^AvgPool2d: padding must be an integer >= 0"),
    (lambda: nn.AvgPool2d(2, padding=2), r"^AvgPool2d: padding must be at most half"),
    (lambda: nn.Dropout(1.0), r"^Dropout: p must be in \[0, 1\), got 1\.0$"),
    (lambda: nn.Dropout(-0.1), r"^Dropout: p must be in \[0, 1\)"),
    (lambda: nn.Dropout(0.5, seed=-1), r"^Dropout: seed must be an integer >= 0"),
    (lambda: nn.PReLU(0), r"^PReLU: num_parameters must be an integer >= 1, got 0$"),
    (lambda: nn.Affine2d(0), r"^Affine2d: num_features must be an integer >= 1, got 0$"),
    (lambda: nn.ZeroPad2d(channels=0), r"^ZeroPad2d: channels must be an integer >= 1"),
]


@pytest.mark.parametrize("make,pattern", BAD_ARGS, ids=[p.split(":")[0][1:] + f"-{i}"
                                                        for i, (_, p) in enumerate(BAD_ARGS)])
def test_constructors_raise_one_line_value_errors(make, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        make()
    assert "\n" not in str(info.value)


# ------------------------------------------- 3. backward checks dout against forward
def layer_cases():
    """(layer, input shape, a wrong dout shape) for every layer with a backward."""
    return [
        (nn.Conv2d(3, 16, 3), (8, 3, 16, 16), (8, 16, 15, 15)),
        (nn.Linear(6, 4), (5, 6), (5, 3)),
        (nn.BatchNorm2d(3), (2, 3, 4, 4), (2, 3, 4, 5)),
        (nn.BatchNorm1d(4), (3, 4), (4, 4)),
        (nn.ReLU(), (2, 3, 4), (2, 3)),
        (nn.PReLU(3), (2, 3, 4), (2, 3, 5)),
        (nn.MaxPool2d(2), (2, 3, 4, 6), (2, 3, 4, 6)),
        (nn.AvgPool2d(3, stride=2, padding=1), (2, 2, 5, 5), (2, 2, 2, 2)),
        (nn.GlobalAvgPool2d(), (2, 3, 4, 4), (2, 4)),
        (nn.Flatten(), (2, 3, 2, 2), (2, 3, 4)),
        (nn.Dropout(0.3), (4, 10), (4, 11)),
        (nn.Affine2d(3), (2, 3, 4, 4), (2, 3, 4, 3)),
        (nn.ZeroPad2d(channels=4), (2, 3, 4, 4), (2, 3, 4, 4)),
        (Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1)), act=nn.ReLU()),
         (2, 2, 4, 4), (2, 2, 4, 3)),
    ]


@pytest.mark.parametrize("index", range(len(layer_cases())))
def test_backward_names_layer_and_both_shapes(backend, index):
    layer, in_shape, bad = layer_cases()[index]
    name = type(layer).__name__
    with pytest.raises(RuntimeError, match=rf"^{name}\.backward called before forward"):
        layer.backward(np.zeros(bad, np.float32))
    out = layer.forward(np.random.default_rng(0).standard_normal(in_shape).astype(np.float32))
    want = str(tuple(out.shape)).replace("(", r"\(").replace(")", r"\)")
    got = str(bad).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=rf"^{name}\.backward: dout must be {want} like the "
                                         rf"forward's output, got {got}$"):
        layer.backward(np.zeros(bad, np.float32))
    assert layer.backward(np.ones(out.shape, np.float32)).shape == in_shape   # right shape runs


def test_conv2d_backward_message_from_the_report():
    layer = nn.Conv2d(3, 16, 3)
    layer.forward(np.zeros((8, 3, 16, 16), np.float32))
    with pytest.raises(ValueError) as info:
        layer.backward(np.zeros((8, 16, 15, 15), np.float32))
    assert str(info.value) == ("Conv2d.backward: dout must be (8, 16, 14, 14) like the "
                               "forward's output, got (8, 16, 15, 15)")


def test_facenet_backward_checks_both_heads():
    model = build_model(TINY, seed=0)
    with pytest.raises(RuntimeError, match=r"^FaceNet\.backward_both called before forward"):
        model.backward(np.zeros((2, 7), np.float32))
    model.forward_both(to_float(uint8_faces(2)))
    with pytest.raises(ValueError, match=r"^FaceNet\.backward_both: dlogits must be \(2, 7\) "
                                         r"like the forward's output, got \(3, 7\)$"):
        model.backward(np.zeros((3, 7), np.float32))
    with pytest.raises(ValueError, match=r"dembedding must be \(2, 5\).*got \(2, 6\)$"):
        model.backward_both(np.zeros((2, 6), np.float32), None)
    assert model.backward(np.ones((2, 7), np.float32)).shape == (2, 3, 8, 8)


def test_moving_clears_the_forward_so_backward_says_so():
    layer = nn.Linear(3, 2)
    layer.forward(np.zeros((2, 3), np.float32))
    layer.cache = None                            # what Module.to() does to every layer
    with pytest.raises(RuntimeError, match=r"^Linear\.backward called before forward"):
        layer.backward(np.zeros((2, 2), np.float32))


# ------------------------------------- 4. empty batches, wrong rank, wrong channels
EMPTY = [
    (lambda: nn.Conv2d(3, 4, 3), (0, 3, 8, 8)),
    (lambda: nn.Linear(6, 2), (0, 6)),
    (lambda: nn.BatchNorm2d(3), (0, 3, 4, 4)),
    (lambda: nn.BatchNorm1d(4), (0, 4)),
    (lambda: nn.ReLU(), (0, 3)),
    (lambda: nn.PReLU(3), (0, 3, 4)),
    (lambda: nn.MaxPool2d(2), (0, 3, 4, 4)),
    (lambda: nn.AvgPool2d(2), (0, 3, 4, 4)),
    (lambda: nn.GlobalAvgPool2d(), (0, 3, 4, 4)),
    (lambda: nn.Flatten(), (0, 3, 2, 2)),
    (lambda: nn.Dropout(0.3), (0, 10)),
    (lambda: nn.Affine2d(3), (0, 3, 4, 4)),
    (lambda: nn.ZeroPad2d(channels=4), (0, 3, 4, 4)),
]


@pytest.mark.parametrize("make,shape", EMPTY, ids=[str(i) for i in range(len(EMPTY))])
def test_empty_batch_is_refused_naming_layer_and_shape(backend, make, shape):
    layer = make()
    text = str(shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=rf"^{type(layer).__name__}\.forward: empty batch, "
                                         rf"got input of shape {text}"):
        layer.forward(np.zeros(shape, np.float32))


def test_facenet_empty_batch_and_wrong_rank():
    model = build_model(TINY, seed=0)
    with pytest.raises(ValueError, match=r"^FaceNet\.embed: empty batch, got input of shape "
                                         r"\(0, 3, 8, 8\)"):
        model.embed(np.zeros((0, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"^FaceNet\.forward: expected faces of shape "
                                         r"\(N, 3, 8, 8\), got \(3, 8, 8\)$"):
        model.forward(np.zeros((3, 8, 8), np.float32))           # one face without N


def test_wrong_rank_channels_and_size_name_the_layer_and_expected_shape():
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"^Conv2d\.forward: expected input of shape "
                                         r"\(N, 3, H, W\), got \(3, 16, 16\)$"):
        conv.forward(np.zeros((3, 16, 16), np.float32))
    with pytest.raises(ValueError, match=r"^Conv2d\.forward: expected input of shape "
                                         r"\(N, 3, H, W\), got \(2, 1, 16, 16\)$"):
        conv.forward(np.zeros((2, 1, 16, 16), np.float32))
    with pytest.raises(ValueError, match=r"^Conv2d\.forward: input \(2, 3, 2, 2\) is smaller "
                                         r"than the kernel 3x3"):
        conv.forward(np.zeros((2, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"^MaxPool2d\.forward: input \(1, 3, 1, 1\) is smaller"):
        nn.MaxPool2d(2).forward(np.zeros((1, 3, 1, 1), np.float32))
    with pytest.raises(ValueError, match=r"^Residual\.forward: expected input of shape "
                                         r"\(N, C, H, W\), got \(2, 4\)$"):
        Residual(nn.ReLU()).forward(np.zeros((2, 4), np.float32))   # one line, not the repr


def test_module_check_input_still_converts_floats():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)[:, ::-1]        # float64, not contiguous
    y = Module().check_input(x, ndim=2)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    np.testing.assert_array_equal(y, x)
