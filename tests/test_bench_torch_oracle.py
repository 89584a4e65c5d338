"""tinyface.bench.torch_oracle: PyTorch conv oracle and timing rows (skips without torch)."""
import numpy as np
import pytest

from tinyface import nn, reference
from tinyface.bench import torch_oracle


def test_load_torch_is_module_or_none():
    torch = torch_oracle.load_torch()
    assert torch is None or hasattr(torch, "nn")


@pytest.mark.parametrize("bias,stride,padding", [(True, 1, 1), (False, 2, 0)])
def test_torch_conv2d_matches_reference_float64(bias, stride, padding):
    pytest.importorskip("torch", reason="PyTorch not installed: the oracle is optional")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4) if bias else None
    out, cache = reference.conv2d_forward(x, w, b, stride, padding)
    dout = rng.standard_normal(out.shape)
    got = torch_oracle.torch_conv2d(x, w, b, stride, padding, dout)
    want = (out,) + tuple(reference.conv2d_backward(dout, cache))
    for name, g, e in zip(("out", "dx", "dw", "db"), got, want):
        if e is None:
            assert g is None, name
        else:
            assert g.dtype == np.float64 and g.shape == e.shape, name
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10, err_msg=name)


def test_torch_conv_rows_join_the_kernel_rows():
    torch = pytest.importorskip("torch", reason="PyTorch not installed: the oracle is optional")
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                          nn.Conv2d(4, 4, 3, padding=1))
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    threads = torch.get_num_threads()
    rows = torch_oracle.torch_conv_rows(model, x, reps=2, threads=1)
    assert torch.get_num_threads() == threads            # restored
    # two distinct convs (the third repeats the second's layer and shape), 2 passes each
    assert [(r["layer"], r["shape"], r["pass_"]) for r in rows] == [
        ("Conv2d 3->4 k3", [2, 3, 8, 8], "forward"), ("Conv2d 3->4 k3", [2, 3, 8, 8], "backward"),
        ("Conv2d 4->4 k3", [2, 4, 8, 8], "forward"), ("Conv2d 4->4 k3", [2, 4, 8, 8], "backward")]
    for r in rows:
        assert r["torch_ms"] > 0 and r["gflops"] > 0
    assert model.training                                 # its mode restored


def test_torch_missing_raises_cleanly(monkeypatch):
    monkeypatch.setattr(torch_oracle, "load_torch", lambda: None)
    with pytest.raises(ImportError, match="PyTorch"):
        torch_oracle.torch_conv2d(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 1, 1)), None, 1, 0,
                                  np.zeros((1, 1, 3, 3)))
