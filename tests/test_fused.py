"""The fused inference path against the layer-by-layer model in eval mode, and what it
refuses."""
import numpy as np
import pytest

from tinyface.models import FusedNet, build_model, build_student, teacher_lite_spec, teacher_spec


def _trained_looking(model, seed):
    """Give every batch norm running statistics and an affine that are not the identity."""
    rng = np.random.default_rng(seed)
    for layer in list(model.features.children()):
        if "running_var" in getattr(layer, "buffers", {}):
            C = layer.buffers["running_var"].shape[0]
            layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, C)
            layer.buffers["running_mean"][:] = rng.normal(0.0, 0.3, C)
            layer.params["weight"][:] = rng.uniform(0.5, 1.5, C)
            layer.params["bias"][:] = rng.normal(0.0, 0.2, C)
    return model.eval()


@pytest.mark.parametrize("n", [1, 3, 8])          # 8: the faces split across threads
def test_fused_student_matches_the_model(n):
    model = _trained_looking(build_student(158, seed=1), seed=2)
    x = np.random.default_rng(n).standard_normal((n, 3, 16, 16)).astype(np.float32)
    emb, logits = model.forward_both(x)
    fused = FusedNet(model)
    femb, flogits = fused.forward_both(x)
    np.testing.assert_allclose(femb, emb, rtol=1e-4, atol=1e-4 * np.abs(emb).max())
    np.testing.assert_allclose(flogits, logits, rtol=1e-4, atol=1e-4 * np.abs(logits).max())
    np.testing.assert_array_equal(fused.forward(x), flogits)
    np.testing.assert_array_equal(fused.embed(x), femb)


def test_fused_teacher_matches_the_model():
    """The VGG teacher (64x64, channels up to 256) has the same kinds of layers."""
    model = _trained_looking(build_model(teacher_spec(10), seed=3), seed=4)
    x = np.random.default_rng(5).standard_normal((2, 3, 64, 64)).astype(np.float32)
    emb, logits = model.forward_both(x)
    femb, flogits = FusedNet(model).forward_both(x)
    np.testing.assert_allclose(femb, emb, rtol=1e-3, atol=1e-3 * np.abs(emb).max())
    np.testing.assert_allclose(flogits, logits, rtol=1e-3, atol=1e-3 * np.abs(logits).max())


def test_what_cannot_be_fused_is_refused_by_name():
    with pytest.raises(ValueError, match="features.0 is .*stride 1 and padding 1"):
        FusedNet(build_model(teacher_lite_spec(10), seed=0))          # a stride-2 first conv


def test_bad_faces_are_a_one_line_error():
    fused = FusedNet(build_student(158, seed=0).eval())
    for bad in (np.zeros((2, 3, 15, 15), np.float32), np.zeros((2, 3, 16, 16), np.uint8)):
        with pytest.raises(ValueError, match=r"expected float faces of shape \(N, 3, 16, 16\)"):
            fused.forward_both(bad)
