"""dlib's ResNet in tinyface's layers: the spec, the weight mapping, the input folding,
PyTorch as an independent oracle (skips without torch), and LFW View 2's known answer
(skips without the shared data)."""
import json

import numpy as np
import pytest

from tinyface.data import to_float
from tinyface.models import (build_model, dlib_resnet_spec, load_pretrained, normalize_spec,
                             trunk_shapes)
from tinyface.models.pretrained import (DLIB_MEAN_RGB, dlib_layer_names, embed_faces,
                                        fold_input_normalisation, resize_faces)
from tinyface.models.weights import WeightsError, find_weights_dir, read_manifest_weights

DLIB_PARAMETERS = 5_614_592


def _weights_dir():
    try:
        return find_weights_dir()
    except WeightsError:
        return None


WEIGHTS = _weights_dir()
needs_weights = pytest.mark.skipif(WEIGHTS is None, reason="dlib's weights not found (no "
                                   "../shared/data/dlib_resnet; run data_scripts/download_teacher.py)")


@pytest.fixture(scope="module")
def teacher():
    return load_pretrained("dlib-resnet")


def test_spec_sizes_and_parameters():
    spec = normalize_spec(dlib_resnet_spec())
    sides = [s for _, s, _ in trunk_shapes(spec)]
    assert sides[:2] == [72, 35]                       # 7x7/2 valid, max pool 3x3/2
    assert sides[-1] == 2 and trunk_shapes(spec)[-1][0] == 256
    assert sorted(set(sides)) == [2, 4, 8, 17, 35, 72]
    model = build_model(spec, seed=0)
    n = sum(v.size for k, v in model.named_parameters() if k.startswith("features."))
    assert n == DLIB_PARAMETERS
    assert len([k for k in dlib_layer_names(model)]) == 117


def test_spec_round_trips_through_json():
    from tinyface.models import format_spec, parse_spec
    spec = dlib_resnet_spec(10)
    again = parse_spec(format_spec(spec))
    assert again == parse_spec(json.dumps(spec))
    assert again["embedding_bias"] is False and again["norm"] == "affine"
    assert again["stages"][0] == {"conv": 32, "kernel": 7, "stride": 2, "padding": 0}


def test_folding_the_input_normalisation_is_exact():
    """conv(f + delta) with valid padding == conv(f) with the folded bias."""
    from tinyface.reference.conv import conv2d_forward
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 7, 7))
    b = rng.normal(size=4)
    x = rng.integers(0, 256, size=(2, 3, 11, 11)).astype(np.uint8)
    theirs = (x.astype(np.float64) - np.array(DLIB_MEAN_RGB).reshape(1, 3, 1, 1)) / 255.0
    want, _ = conv2d_forward(theirs, w, b, stride=2, padding=0)
    got, _ = conv2d_forward(to_float(x).astype(np.float64), w,
                            fold_input_normalisation(w, b).astype(np.float64), stride=2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_resize_faces():
    rng = np.random.default_rng(1)
    faces = rng.integers(0, 256, size=(2, 3, 90, 90)).astype(np.uint8)
    out = resize_faces(faces)
    assert out.shape == (2, 3, 150, 150) and out.dtype == np.uint8
    assert resize_faces(out) is out
    with pytest.raises(ValueError, match="uint8"):
        resize_faces(faces.astype(np.float32))


def test_embed_faces_refuses_float_faces():
    model = build_model({**dlib_resnet_spec(), "input_size": 150}, seed=0)
    with pytest.raises(ValueError, match="uint8"):
        embed_faces(model, np.zeros((1, 3, 150, 150), np.float32))


def test_unknown_pretrained_name():
    with pytest.raises(ValueError, match="unknown pretrained model"):
        load_pretrained("resnet-50")


@needs_weights
def test_load_pretrained_maps_every_tensor(teacher):
    tensors = read_manifest_weights(WEIGHTS)
    params = dict(teacher.named_parameters())
    assert not teacher.training
    assert teacher.embedding_dim == 128 and teacher.spec["input_size"] == 150
    w = tensors["conv64_down/conv1/conv/filters"]                      # (3, 3, 32, 64) HWIO
    np.testing.assert_array_equal(params["features.7.body.0.weight"], w.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(params["features.19.weight"], tensors["fc"].T)
    np.testing.assert_array_equal(params["features.17.body.4.bias"],
                                  tensors["conv256_down_out/conv2/scale/biases"])


@needs_weights
def test_matches_pytorch_built_from_the_same_files(teacher):
    """An independent forward pass: PyTorch, the manifest's tensors, face-api.js's ops."""
    torch = pytest.importorskip("torch", reason="PyTorch not installed: the oracle is optional")
    F = torch.nn.functional
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in read_manifest_weights(WEIGHTS).items()}

    def conv(x, name, stride, padding, relu=True):
        w = t[f"{name}/conv/filters"].permute(3, 2, 0, 1)
        y = F.conv2d(x, w, t[f"{name}/conv/bias"], stride=stride, padding=padding)
        y = y * t[f"{name}/scale/weights"].view(1, -1, 1, 1) + t[f"{name}/scale/biases"].view(1, -1, 1, 1)
        return F.relu(y) if relu else y

    def residual(x, name):
        return F.relu(conv(conv(x, f"{name}/conv1", 1, 1), f"{name}/conv2", 1, 1, relu=False) + x)

    def residual_down(x, name):
        y = conv(conv(x, f"{name}/conv1", 2, 0), f"{name}/conv2", 1, 1, relu=False)
        s = F.avg_pool2d(x, 2, 2)
        if s.shape[2] != y.shape[2]:
            y = F.pad(y, (0, 1, 0, 1))                # a zero column right, a zero row below
        if s.shape[1] != y.shape[1]:
            s = torch.cat([s, torch.zeros_like(s)], dim=1)
        return F.relu(y + s)

    rng = np.random.default_rng(2)
    faces = rng.integers(0, 256, size=(3, 3, 150, 150)).astype(np.uint8)
    x = (torch.from_numpy(faces).float() - torch.tensor(DLIB_MEAN_RGB).view(1, 3, 1, 1)) / 255
    with torch.no_grad():
        y = F.max_pool2d(conv(x, "conv32_down", 2, 0), 3, 2)
        for name in ["conv32_1", "conv32_2", "conv32_3", "conv64_down", "conv64_1", "conv64_2",
                     "conv64_3", "conv128_down", "conv128_1", "conv128_2", "conv256_down",
                     "conv256_1", "conv256_2", "conv256_down_out"]:
            y = residual_down(y, name) if "down" in name else residual(y, name)
        want = (y.mean(dim=(2, 3)) @ t["fc"]).numpy()
    got = teacher.embed(to_float(faces))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@needs_weights
def test_lfw_view2_known_answer(teacher):
    """LFW3D faces resized to 150 bicubic, Euclidean distance, 10-fold thresholds:
    90.5 +- 1.5 % with an independent implementation (shared/data/dlib_resnet/README.md)."""
    from tinyface.data import load_dataset, load_pairs
    from tinyface.data.lfw import find_pairs_file
    from tinyface.eval.verification import resolve_folds, ten_fold_accuracy
    pairs_file = find_pairs_file()
    if pairs_file is None:
        pytest.skip("LFW's pairs file not found next to the shared data")
    ds = load_dataset("lfw", hr_size=90)
    a, b, same, folds, _ = resolve_folds(load_pairs(pairs_file), ds)
    rows, inv = np.unique(np.r_[a, b], return_inverse=True)
    emb = embed_faces(teacher, ds.images[rows], batch_size=64)            # (R, 128)
    dist = np.linalg.norm(emb[inv[:len(a)]] - emb[inv[len(a):]], axis=1)
    res = ten_fold_accuracy(-dist, same, folds)
    assert abs(res["mean"] - 0.905) < 0.004, res["mean"]
    assert abs(np.mean((dist < 0.6) == same) - 0.895) < 0.004
