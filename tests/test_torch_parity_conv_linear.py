"""Optional oracle: Conv2d and Linear forward/backward against PyTorch (skips without torch)."""
import numpy as np
import pytest

from tinyface import nn

torch = pytest.importorskip("torch", reason="PyTorch not installed: parity tests are optional")


@pytest.mark.parametrize("cin,cout,k,stride,padding,bias,shape", [
    (3, 16, 3, 1, 1, True, (4, 16, 16)),
    (4, 6, (3, 2), 2, (1, 2), True, (3, 9, 7)),
    (5, 3, 1, 1, 0, False, (2, 5, 5)),
    (2, 4, 5, 2, 2, True, (1, 11, 13)),
])
def test_conv2d_matches_torch(cin, cout, k, stride, padding, bias, shape):
    rng = np.random.default_rng(0)
    ours = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias)
    theirs = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.params["weight"]))
        if bias:
            theirs.bias.copy_(torch.from_numpy(ours.params["bias"]))
    x = rng.standard_normal((shape[0], cin) + shape[1:]).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = theirs(xt)
    y = ours.forward(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = rng.standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.from_numpy(g))
    dx = ours.backward(g)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.grads["weight"], theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    if bias:
        np.testing.assert_allclose(ours.grads["bias"], theirs.bias.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n,fin,fout,bias", [(1, 3, 4, True), (300, 64, 128, True), (7, 9, 2, False)])
def test_linear_matches_torch(n, fin, fout, bias):
    rng = np.random.default_rng(1)
    ours = nn.Linear(fin, fout, bias=bias)
    theirs = torch.nn.Linear(fin, fout, bias=bias)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.params["weight"]))
        if bias:
            theirs.bias.copy_(torch.from_numpy(ours.params["bias"]))
    x = rng.standard_normal((n, fin)).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = theirs(xt)
    y = ours.forward(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = rng.standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.grads["weight"], theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
