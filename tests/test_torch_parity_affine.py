"""Optional oracle: Affine2d and ZeroPad2d forward/backward against PyTorch (skips
without torch). PyTorch has no per-channel affine layer: its equivalent is a depthwise
1x1 convolution (``Conv2d(C, C, 1, groups=C)``), whose weight (C, 1, 1, 1) is ours
reshaped. Zero padding at the end of three axes is ``F.pad(x, (0, dw, 0, dh, 0, dc))``.
Both CPU backends; float32."""
import numpy as np
import pytest

from tinyface import nn
from tinyface.backend import set_backend

torch = pytest.importorskip("torch", reason="PyTorch not installed: parity tests are optional")

TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(params=["numba", "numpy"], autouse=True)
def backend(request):
    previous = set_backend(request.param)
    yield request.param
    set_backend(previous)


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (8, 16, 7, 7), (2, 1, 1, 9)])
def test_affine2d_matches_torch_depthwise_conv(shape):
    rng = np.random.default_rng(sum(shape))
    C = shape[1]
    ours = nn.Affine2d(C)
    ours.params["weight"][...] = rng.standard_normal(C)
    ours.params["bias"][...] = rng.standard_normal(C)
    theirs = torch.nn.Conv2d(C, C, 1, groups=C, bias=True)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.params["weight"].reshape(C, 1, 1, 1)))
        theirs.bias.copy_(torch.from_numpy(ours.params["bias"]))
    for _ in range(2):                                           # gradients accumulate
        x = rng.standard_normal(shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = theirs(xt)
        y = ours.forward(x)
        np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
        g = rng.standard_normal(y.shape).astype(np.float32)
        yt.backward(torch.from_numpy(g))
        np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), **TOL)
    np.testing.assert_allclose(ours.grads["weight"], theirs.weight.grad.numpy().reshape(C),
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ours.grads["bias"], theirs.bias.grad.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("args,shape", [(dict(channels=8), (2, 5, 3, 3)),
                                        (dict(height=5, width=5), (3, 2, 4, 4)),
                                        (dict(channels=4, height=3, width=6), (1, 2, 3, 2))])
def test_zeropad2d_matches_torch_pad(args, shape):
    rng = np.random.default_rng(len(args))
    N, C, H, W = shape
    dc, dh, dw = (args.get(k, s) - s for k, s in (("channels", C), ("height", H), ("width", W)))
    x = rng.standard_normal(shape).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = torch.nn.functional.pad(xt, (0, dw, 0, dh, 0, dc))
    layer = nn.ZeroPad2d(**args)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    g = rng.standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(layer.backward(g), xt.grad.numpy())
