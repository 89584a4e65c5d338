"""Cross-resolution verification: the HR gallery through the teacher, the LR probe through
the student + adapter, in the teacher's space. The teacher and student here are tiny stand-ins
(seconds). One test runs dlib's ResNet on 8 faces and skips when its weights are absent."""
import numpy as np
import pytest

from tinyface import nn
from tinyface.checkpoint import load_model, save_model
from tinyface.data import to_float
from tinyface.distill.cross_resolution import (CrossResolutionStudent, cross_resolution_student,
                                               cross_scores, gallery_descriptors,
                                               verify_cross_resolution, verify_two_sided)
from tinyface.distill.model import DistillStudent
from tinyface.eval.disjoint import (DisjointPairs, synthetic_pairs, verify_disjoint,
                                           verify_embeddings)
from tinyface.eval import embed_images
from tinyface.models import build_model, build_student
from tinyface.models.zoo import PAPER_STUDENT_BYTES

TRUNK = [4, "M", 8]


def student_spec(ds=6, norm="bn"):
    return {"name": "tiny-student", "input_size": 16, "in_channels": 3, "stages": list(TRUNK),
            "embedding_dim": ds, "embedding_norm": norm, "num_classes": 5}


def tiny_wrapper(ds=6, dt=8, seed=0, norm="bn"):
    return DistillStudent(build_model(student_spec(ds, norm), seed=seed), teacher_dim=dt,
                          seed=seed + 1).eval()


def tiny_teacher(seed=3, first=(), dt=8):
    """A stand-in teacher: 32x32 faces -> ``dt``-d, ``first`` stages before the trunk."""
    spec = {"name": "tiny-teacher", "input_size": 32, "in_channels": 3,
            "stages": list(first) + ["M"] * (not first) + list(TRUNK), "embedding_dim": dt,
            "embedding_norm": "none", "num_classes": 1}
    return build_model(spec, seed=seed).eval()


def randomise_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for name, b in model.named_buffers():
        b[...] = rng.uniform(0.5, 1.5, b.shape) if "var" in name else rng.normal(0, 0.2, b.shape)


@pytest.fixture(scope="module")
def pairs():
    """80 identity-disjoint synthetic pairs (40 same) over 60 faces of 32 px, 10 folds."""
    return synthetic_pairs(hr_size=32, n_identities=20, images_per_identity=3, pairs_per_fold=4)


# ------------------------------------------------------------------ the model
def test_cross_student_is_features_then_adapter_and_shares_arrays():
    w = tiny_wrapper()
    randomise_bn(w)
    xs = cross_resolution_student(w)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (5, 3, 16, 16)).astype(np.float32)
    out = xs.embed(x)                                                      # (5, 8)
    assert out.shape == (5, 8) and out.dtype == np.float32
    assert (xs.embedding_dim, xs.student_dim, xs.input_shape) == (8, 6, (3, 16, 16))
    np.testing.assert_allclose(out, w.adapter.forward(w.student.embed(x)), rtol=1e-6, atol=1e-6)
    assert not any("classifier" in n for n, _ in xs.named_parameters())
    assert xs.features is w.student.features and xs.adapter is w.adapter      # shared
    twin = CrossResolutionStudent.from_distill(w, copy=True)
    w.adapter.params["bias"] += 1.0                                       # shows in xs only
    np.testing.assert_allclose(xs.forward(x), out + 1.0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(twin.forward(x), out, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected faces of shape \(N, 3, 16, 16\)"):
        xs.forward(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="adapter takes 5-d input but the student's embedding"):
        CrossResolutionStudent(w.student.features, nn.Linear(5, 8), (3, 16, 16))


def test_checkpoint_round_trip(tmp_path):
    xs = cross_resolution_student(tiny_wrapper(seed=4), copy=True)
    randomise_bn(xs, seed=1)
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (4, 3, 16, 16)).astype(np.float32)
    path = save_model(tmp_path / "xs", xs, metadata={"variant": "selective"})
    back, meta = load_model(path)
    assert isinstance(back, CrossResolutionStudent) and meta == {"variant": "selective"}
    assert back.config() == xs.config() and back.input_shape == xs.input_shape
    assert [n for n, _ in back.named_parameters()][-2:] == ["adapter.weight", "adapter.bias"]
    np.testing.assert_array_equal(back.eval().forward(x), xs.forward(x))


def test_checkpoint_loads_in_a_fresh_process(tmp_path):
    """load_model registers the layer itself: nothing else need be imported first."""
    import subprocess
    import sys
    path = save_model(tmp_path / "xs", cross_resolution_student(tiny_wrapper(seed=4), copy=True))
    code = ("from tinyface.checkpoint import load_model; "
            f"m, _ = load_model({str(path)!r}); print(type(m).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "CrossResolutionStudent"


def test_budget_default_student_fits_without_its_classifier_oversized_does_not():
    student = build_student()                                  # 64-d, 158-way classifier
    xs = cross_resolution_student(DistillStudent(student, teacher_dim=128, seed=0))
    classifier = 64 * 158 + 158
    assert xs.num_parameters() == student.num_parameters() - classifier + 64 * 128 + 128 == 36_720
    assert xs.nbytes() == 146_880 <= PAPER_STUDENT_BYTES and xs.fits_budget()
    assert 4 * (student.num_parameters() + 64 * 128 + 128) > PAPER_STUDENT_BYTES  # with it: no
    assert not xs.fits_budget(budget_bytes=xs.nbytes() - 1)
    big = cross_resolution_student(DistillStudent(build_student(), teacher_dim=256, seed=0))
    assert big.nbytes() == 4 * (28_400 + 64 * 256 + 256) > PAPER_STUDENT_BYTES
    assert not big.fits_budget()


# ------------------------------------------------------------ the verification
def test_width_mismatch_is_a_clear_error_before_any_embedding(pairs, monkeypatch):
    teacher = tiny_teacher()
    monkeypatch.setattr(teacher, "embed", lambda x: pytest.fail("the teacher ran"))
    msg = r"student maps into D=5, the teacher's space has D=8"
    with pytest.raises(ValueError, match=msg):
        verify_cross_resolution(teacher, tiny_wrapper(dt=5), pairs)
    with pytest.raises(ValueError, match=msg):
        verify_cross_resolution(np.zeros((len(pairs.images), 8), np.float32),
                                cross_resolution_student(tiny_wrapper(dt=5)), pairs)
    with pytest.raises(ValueError, match=r"one row per face of the pairs \(60\)"):
        verify_cross_resolution(np.zeros((59, 8), np.float32), tiny_wrapper(), pairs)


def test_side_a_is_the_teacher_on_hr_side_b_the_student_on_lr(pairs, monkeypatch):
    teacher, w = tiny_teacher(), tiny_wrapper()
    randomise_bn(w)
    xs = cross_resolution_student(w)
    seen = {"teacher": [], "student": []}
    t_embed, s_forward = teacher.embed, xs.features.forward
    monkeypatch.setattr(teacher, "embed", lambda x: seen["teacher"].append(x.shape) or t_embed(x))
    monkeypatch.setattr(xs.features, "forward",
                        lambda x: seen["student"].append(x.shape) or s_forward(x))
    res = verify_cross_resolution(teacher, xs, pairs)
    assert {s[1:] for s in seen["teacher"]} == {(3, 32, 32)}
    assert {s[1:] for s in seen["student"]} == {(3, 16, 16)}
    assert sum(s[0] for s in seen["teacher"]) == sum(s[0] for s in seen["student"]) == 60
    gallery = t_embed(to_float(pairs.images))                                  # (60, 8)
    probe = xs.embed(to_float(pairs.faces(16)))                                # (60, 8)
    want = verify_two_sided(gallery, probe, pairs)
    assert res["accuracy"] == want["accuracy"] and res["per_fold"] == want["per_fold"]
    assert (res["gallery"], res["probe"], res["input_size"], res["dim"]) == (
        "teacher at 32px", "student at 16px", 16, 8)
    ga, pb = gallery[pairs.a], probe[pairs.b]                       # (P, 8) each
    cosine = np.sum(ga * pb, 1) / (np.linalg.norm(ga, axis=1) * np.linalg.norm(pb, axis=1))
    np.testing.assert_allclose(cross_scores(gallery, probe, pairs), cosine, rtol=1e-5)
    swapped = verify_two_sided(probe, gallery, pairs)               # the swap is visible
    assert res["auc"] == want["auc"] and abs(swapped["auc"] - want["auc"]) > 1e-4
    # the same-resolution rows: teacher vs teacher, and the student's usual (Ds-d) row
    ref = res["same_resolution"]
    assert ref["teacher_hr"]["accuracy"] == verify_embeddings(gallery, pairs)["accuracy"]
    assert ref["student_lr"]["accuracy"] == verify_disjoint(w.student, pairs, 16)["accuracy"]
    assert ref["student_lr_adapted"]["accuracy"] == verify_embeddings(probe, pairs)["accuracy"]
    # a DistillStudent is taken as it is; precomputed descriptors give the same numbers
    again = verify_cross_resolution(gallery_descriptors(teacher, pairs), w, pairs,
                                    same_resolution=False)
    assert again["accuracy"] == res["accuracy"] and "same_resolution" not in again


def test_swapping_the_sides_breaks_a_gallery_probe_set():
    """Gallery rows and probe rows are disjoint; only the teacher knows the gallery rows and
    only the student the probe rows: right wiring gives 1.0, swapped about chance."""
    n_id, per = 20, 4
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(n_id), per)                          # (80,)
    gallery_row = np.arange(n_id) * per
    a, b, same, fold = [], [], [], []
    for row in np.flatnonzero(np.arange(len(labels)) % per):           # the probes
        k = labels[row]
        other = (k + 1 + rng.integers(n_id - 1)) % n_id
        a += [gallery_row[k], gallery_row[other]]
        b += [row, row]
        same += [True, False]
        fold += [k % 10] * 2
    pairs = DisjointPairs(np.zeros((len(labels), 3, 32, 32), np.uint8), np.array(a),
                          np.array(b), np.array(same), np.array(fold))
    one_hot = np.eye(n_id, dtype=np.float32)[labels]                   # (80, 20)
    is_gallery = np.isin(np.arange(len(labels)), gallery_row)[:, None]
    teacher = np.where(is_gallery, one_hot, rng.normal(size=one_hot.shape)).astype(np.float32)
    student = np.where(~is_gallery, one_hot, rng.normal(size=one_hot.shape)).astype(np.float32)
    right = verify_cross_resolution(teacher, student, pairs)
    wrong = verify_cross_resolution(student, teacher, pairs)
    assert right["accuracy"] == 1.0 and right["auc"] == 1.0
    assert wrong["accuracy"] < 0.75 and right["same_resolution"]["teacher_hr"]["accuracy"] < 0.75


def test_a_student_that_reproduces_the_teacher_matches_teacher_vs_teacher():
    """The teacher: 2x2 average pool, then the student's trunk, its embedding folded with the
    adapter (A (W x + b) + c). The HR faces are the LR faces pixel-doubled, so the student on
    LR faces gives the teacher's HR descriptors (float rounding aside)."""
    w = tiny_wrapper(norm="none", seed=5)
    randomise_bn(w, seed=2)
    teacher = tiny_teacher(first=["A"])
    t_layers, s_layers = teacher.features.children(), w.student.features.children()
    for t, s in zip(t_layers[1:-1], s_layers[:-1]):
        t.load_state_dict(s.state_dict())
    A, c = w.adapter.params["weight"].astype(np.float64), w.adapter.params["bias"]
    W, b = s_layers[-1].params["weight"], s_layers[-1].params["bias"]
    t_layers[-1].params["weight"][...] = A @ W
    t_layers[-1].params["bias"][...] = A @ b + c
    lr16 = synthetic_pairs(hr_size=16, n_identities=20, images_per_identity=3, pairs_per_fold=4)
    hr = lr16.images.repeat(2, axis=2).repeat(2, axis=3)                    # (60, 3, 32, 32)
    pairs = DisjointPairs(hr, lr16.a, lr16.b, lr16.same, lr16.fold_ids)
    res = verify_cross_resolution(teacher, w, pairs, probe_faces=lr16.images)
    gallery = embed_images(teacher, hr)
    probe = cross_resolution_student(w).embed(to_float(lr16.images))
    np.testing.assert_allclose(probe, gallery, rtol=1e-4, atol=1e-5)
    tt = res["same_resolution"]["teacher_hr"]
    assert res["accuracy"] == tt["accuracy"] and res["per_fold"] == tt["per_fold"]
    assert abs(res["auc"] - tt["auc"]) < 1e-9 and 0.5 < res["accuracy"] < 1.0
    # without the fold it is another network: the numbers move
    other = verify_cross_resolution(tiny_teacher(first=["A"], seed=9), w, pairs,
                                    probe_faces=lr16.images)
    assert other["per_fold"] != res["per_fold"]


# ----------------------------------------------------------- dlib's ResNet, 8 faces
def test_dlib_teacher_gallery_against_the_default_student(dlib_weights):
    from tinyface.models import embed_faces, load_pretrained
    teacher = load_pretrained("dlib-resnet")
    pairs = synthetic_pairs(hr_size=32, n_identities=4, images_per_identity=2, pairs_per_fold=1,
                            n_folds=2)                                     # 4 pairs, 8 faces
    w = DistillStudent(build_student(num_classes=4), teacher_dim=128, seed=0)
    res = verify_cross_resolution(teacher, w, pairs)
    gallery = embed_faces(teacher, pairs.images)                             # (8, 128)
    assert res["gallery"] == "teacher at 150px" and res["dim"] == 128 and res["n_pairs"] == 4
    again = verify_cross_resolution(gallery, w, pairs)
    assert again["per_fold"] == res["per_fold"]
    assert again["same_resolution"]["teacher_hr"] == res["same_resolution"]["teacher_hr"] | {
        "input_size": None}
    with pytest.raises(ValueError, match="student maps into D=64, the teacher's space has D=128"):
        verify_cross_resolution(gallery, DistillStudent(build_student(4), teacher_dim=64), pairs)
