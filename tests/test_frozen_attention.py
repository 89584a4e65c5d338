"""Attention transfer (``at``) with the pretrained teacher: the frozen teacher's bank carries
the attention rows of its pre-pool map, made in the descriptors' forward pass, of the
tuned network when a tail is tuned, cached without touching the descriptors' files and
keys. A tiny network stands in for dlib's (seconds); one test runs dlib's own network on
a few faces and fine-tunes a student with ``at`` against it (skips without the weights)."""
import json

import numpy as np
import pytest

from tinyface.data import load_split, to_float
from tinyface.distill import DistillConfig, finetune, finetune_config
from tinyface.distill.bank import map_attention_size
from tinyface.distill.descriptor_cache import attention_path
from tinyface.distill.frozen_teacher import FrozenTeacher
from tinyface.experiments.settings import AblationSettings
from tinyface.experiments.streams import build_stream_model
from tinyface.models.pretrained import embed_faces, resize_faces
from tinyface.reference.kd_maps import teacher_attention

quiet = lambda msg: None  # noqa: E731

SETTINGS = dict(head_penalties=(1e-3,))
# the fixtures stand_in (a pre-pool map (16, 16, 16)), res_stand_in (map (8, 15, 15)) and
# split are tests/conftest.py's


def _direct(model, faces, size):
    """The attention rows computed directly: the network's pre-pool map, then
    ``teacher_attention``."""
    _, _, fmap = model.eval().forward_both(to_float(faces), keep_map=True)
    return teacher_attention(fmap, size)


def _made(lines, what="HR training faces"):
    """Log lines of passes that ran the teacher over ``what``."""
    return [m for m in lines if f"of the {what}: " in m]


def test_attention_rows_are_the_pre_pool_maps_made_in_the_descriptors_pass(stand_in, split,
                                                                         tmp_path):
    lines = []
    ft = FrozenTeacher("dlib-resnet", split, AblationSettings(**SETTINGS), tmp_path,
                       log=lines.append, attention_size=(3, 3))
    bank = ft.bank(tmp_path / "bank.npz")
    assert len(_made(lines)) == 1 and "attention rows (3x3)" in _made(lines)[0]  # one pass
    assert bank.attention.shape == (len(split.y_train), 9)
    assert bank.meta["key"].endswith("-at3x3") and bank.meta["attention_size"] == [3, 3]
    np.testing.assert_allclose(bank.attention, _direct(ft.model, split.hr_train, (3, 3)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bank.embeddings, embed_faces(ft.model, split.hr_train))
    lines.clear()                                  # loaded again: the bank and its rows
    again = FrozenTeacher("dlib-resnet", split, AblationSettings(**SETTINGS), tmp_path,
                          log=lines.append, attention_size=(3, 3))
    np.testing.assert_array_equal(again.bank(tmp_path / "bank.npz").attention, bank.attention)
    assert any("feature bank: loaded" in m for m in lines) and not _made(lines)
    np.testing.assert_array_equal(again.attention(), bank.attention)   # its own file
    assert not _made(lines)
    lines.clear()                                  # another size: the rows only, made again
    other = FrozenTeacher("dlib-resnet", split, AblationSettings(**SETTINGS), tmp_path,
                          log=lines.append, attention_size=(2, 2)).bank(tmp_path / "bank.npz")
    assert [m.split(":")[1] for m in _made(lines)] == [" attention rows (2x2) of the HR "
                                                        "training faces"]
    np.testing.assert_allclose(other.attention, _direct(ft.model, split.hr_train, (2, 2)),
                               rtol=1e-5, atol=1e-6)


def test_runs_without_at_keep_their_descriptors_and_bank_key(stand_in, split, tmp_path):
    settings = AblationSettings(**SETTINGS)
    plain = FrozenTeacher("dlib-resnet", split, settings, tmp_path, log=quiet)
    key = plain.bank(tmp_path / "bank.npz").meta["key"]
    assert key == f"dlib-resnet-{plain.key}"             # the key the bank always had
    desc_file = tmp_path / "teacher-descriptors" / "train-hr.npz"
    before = desc_file.read_bytes()
    lines = []
    at = FrozenTeacher("dlib-resnet", split, settings, tmp_path, log=lines.append,
                       attention_size=(2, 2))
    assert at.key == plain.key                           # the rows' cache is the teacher's
    assert at.bank(tmp_path / "bank.npz").meta["key"] == key + "-at2x2"
    assert any("loaded the descriptors of the HR training faces" in m for m in lines)
    assert desc_file.read_bytes() == before              # never rewritten for the rows
    assert attention_path(desc_file).is_file()
    lines.clear()
    again = FrozenTeacher("dlib-resnet", split, settings, tmp_path, log=lines.append)
    assert again.bank(tmp_path / "bank.npz").meta["key"] == key
    assert again.bank(tmp_path / "bank.npz").attention is None
    assert not _made(lines) and desc_file.read_bytes() == before
    # at first, in a fresh folder: the descriptors it wrote are those a plain run loads
    fresh = tmp_path / "fresh"
    FrozenTeacher("dlib-resnet", split, settings, fresh, log=quiet,
                  attention_size=(2, 2)).bank()
    lines.clear()
    np.testing.assert_array_equal(
        FrozenTeacher("dlib-resnet", split, settings, fresh, log=lines.append).bank().embeddings,
        plain.bank().embeddings)
    assert not _made(lines)
    with pytest.raises(ValueError, match="attention_size"):
        plain.attention()
    # the size the ablation asks for: only when a variant reads the map
    assert map_attention_size(["none", "kd", "full", "crd"], split) is None
    assert map_attention_size(["none", "at"], split) == tuple(
        build_stream_model(split, "student").map_shape[1:])


def test_attention_rows_come_from_the_tuned_network(res_stand_in, split, tmp_path):
    frozen = FrozenTeacher("dlib-resnet", split, AblationSettings(**SETTINGS), tmp_path / "f",
                           log=quiet, attention_size=(3, 3))
    tuned = FrozenTeacher("dlib-resnet", split, AblationSettings(**SETTINGS, teacher_tune_blocks=1,
                                                                 teacher_tune_epochs=2),
                          tmp_path / "t", log=quiet, attention_size=(3, 3))
    att = tuned.bank().attention
    np.testing.assert_allclose(att, _direct(tuned.model, split.hr_train, (3, 3)),
                               rtol=1e-5, atol=1e-6)
    assert np.abs(att - frozen.bank().attention).max() > 1e-4


def test_ablation_runs_at_with_a_stand_in_teacher(stand_in, tmp_path, capsys):
    from tinyface.cli import main
    out = tmp_path / "abl"
    args = ["ablation", "--quick", "--teacher", "dlib-resnet", "--seeds", "1", "--ratios", "",
            "--variants", "none,at", "--label-free", "", "--scratch-epochs", "1",
            "--finetune-epochs", "1", "--out", str(out)]
    assert main(args) == 0
    res = json.loads((out / "results.json").read_text())
    assert "student + AT (Zagoruyko & Komodakis)" in res["rows"]
    size = res["bank"]["attention_size"]
    assert res["bank"]["key"].endswith("-at{}x{}".format(*size))
    run = next(r for r in res["runs"] if r["variant"] == "at")
    assert np.isfinite(run["top1"])
    metrics = json.loads((out / "seed0" / "at" / "metrics.json").read_text())
    assert metrics["method"] == "at" and metrics["method_reads"] == "map"
    assert np.isfinite(metrics["final_method_loss"]) and metrics["final_method_loss"] > 0
    capsys.readouterr()
    assert main(args) == 0                                 # a re-run: every phase cached
    log = capsys.readouterr().out
    assert "feature bank: loaded" in log and " descriptors in " not in log
    assert "fine-tuning 1 epochs" not in log


# -------------------------------------------------------------- real weights
def test_dlib_attention_rows_and_a_short_at_fine_tuning(dlib_weights, tmp_path):
    """dlib's network (~15 s on one core): its pre-pool map is 2 x 2 at 150 px, spread
    over the 16 px student's 4 x 4; the bank's rows equal the direct computation, and a
    student fine-tunes one epoch with ``at`` against them."""
    small = load_split("synthetic", hr_size=32, lr_size=16, cache_dir=False,
                       synthetic={"n_identities": 4, "images_per_identity": 6})
    size = map_attention_size(["at"], small)
    assert size == (4, 4)
    ft = FrozenTeacher("dlib-resnet", small, AblationSettings(**SETTINGS), tmp_path,
                       log=quiet, attention_size=size)
    assert ft.model.map_shape == (256, 2, 2)
    bank = ft.bank()
    faces = resize_faces(small.hr_train[:3], 150)
    direct = _direct(ft.model, faces, size)
    np.testing.assert_allclose(bank.attention[:3], direct, rtol=1e-4, atol=1e-6)
    cells = direct.reshape(3, 4, 4)               # each teacher cell over 2 x 2 student cells
    np.testing.assert_array_equal(cells, np.repeat(np.repeat(cells[:, ::2, ::2], 2, 1), 2, 2))
    student = build_stream_model(small, "student", seed=0)
    res = finetune(student, small, bank, None, DistillConfig("at"),
                   finetune_config(epochs=1, batch_size=8, seed=0), log=quiet)
    rec = res["history"][-1]
    assert np.isfinite(rec["train_loss"]) and rec["method"] > 0
    assert res["metrics"]["method"] == "at"


@pytest.mark.parametrize("variants,size", [(("none", "full"), None), (("none", "at"), (2, 2)),
                                           (("selective-at",), (2, 2)),
                                           (("selective-fsim", "sp"), None)])
def test_map_attention_size_follows_every_map_reading_variant(split, variants, size):
    # the student's pre-pool map on 8 px faces is 2x2; selective-at reads it as at does
    assert map_attention_size(variants, split) == size
