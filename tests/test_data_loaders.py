"""ORL, LFW and folder loaders on small fixtures that the tests make themselves."""
import io
import warnings

import numpy as np
import pytest
from PIL import Image

from tinyface.data import (DataError, DataWarning, load_dataset, load_folder, load_lfw,
                           load_orl, read_pgm)
from tinyface.data.sources import crop_box

from test_data_helpers import (face_like, make_lfw_tree, make_orl_tree, make_tgz,
                               make_zip, tree_state, truncate, write_jpeg, write_pgm)


# ---------------------------------------------------------------- PGM parser ----
def test_read_pgm_matches_pillow_with_comments_and_ascii(tmp_path):
    arr = face_like(17, 11, 3, grey=True)
    write_pgm(tmp_path / "a.pgm", arr, comment=True)
    got = read_pgm((tmp_path / "a.pgm").read_bytes())
    assert got.shape == (11, 17) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.asarray(Image.open(tmp_path / "a.pgm")))
    ascii_pgm = ("P2\n# c\n3 2\n15\n0 15 3\n6 9 12\n").encode()
    np.testing.assert_array_equal(read_pgm(ascii_pgm), np.array([[0, 255, 51], [102, 153, 204]]))
    sixteen = b"P5\n2 1\n65535\n" + np.array([0, 65535], ">u2").tobytes()
    np.testing.assert_array_equal(read_pgm(sixteen), [[0, 255]])


@pytest.mark.parametrize("data", [b"P5\n92 112\n255\n" + b"\0" * 100, b"P5\n92", b"GIF89a"])
def test_read_pgm_rejects_truncated_or_foreign(data):
    with pytest.raises(ValueError):
        read_pgm(data)


def test_crop_box_is_centred_square():
    assert crop_box(92, 112) == (0.0, 10.0, 92.0, 102.0)
    assert crop_box(250, 250, 0.5) == (62.5, 62.5, 187.5, 187.5)
    with pytest.raises(ValueError):
        crop_box(10, 10, 0.0)


# ---------------------------------------------------------------------- ORL ----
def test_orl_tree_skips_truncated_pgm_with_a_warning(tmp_path):
    root = make_orl_tree(tmp_path / "orl_faces", subjects=3, images=4, truncated=(2, 3))
    before = tree_state(root)
    with pytest.warns(DataWarning) as rec:
        ds = load_orl(root, hr_size=32)
    msgs = [str(w.message) for w in rec]
    assert any("s2/3.pgm" in m and "truncated" in m for m in msgs), msgs
    assert any("1 image(s) could not be read" in m for m in msgs)
    assert ds.images.shape == (11, 3, 32, 32) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.names == ["s1", "s2", "s3"]
    assert ds.counts().tolist() == [4, 3, 4]
    assert len(ds.skipped) == 1 and ds.skipped[0].endswith("s2/3.pgm")
    assert ds.image_index[ds.labels == 1].tolist() == [1, 2, 4]
    # grey replicated to 3 identical channels
    assert (ds.images[:, 0] == ds.images[:, 1]).all() and (ds.images[:, 1] == ds.images[:, 2]).all()
    # centre 92x92 crop of 92x112, resized: compare with a direct Pillow computation
    src = face_like(92, 112, 101, grey=True)
    want = np.asarray(Image.fromarray(src).crop((0, 10, 92, 102)).resize((32, 32), Image.BICUBIC))
    assert np.abs(ds.images[0, 0].astype(int) - want).max() <= 1
    assert tree_state(root) == before, "the source folder was modified"


def test_orl_natural_order_and_data_dir_and_zip(tmp_path):
    root = make_orl_tree(tmp_path / "data" / "orl_faces", subjects=11, images=2)
    ds = load_orl(tmp_path / "data", hr_size=16)            # a data dir holding orl_faces/
    assert ds.names[:3] == ["s1", "s2", "s3"] and ds.names[-1] == "s11"
    z = make_zip(root, tmp_path / "att_faces.zip")
    before = tree_state(z)
    dz = load_orl(z, hr_size=16)
    np.testing.assert_array_equal(dz.images, ds.images)
    assert dz.names == ds.names
    assert tree_state(z) == before


def test_orl_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_orl(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither sX"):
        load_orl(tmp_path / "empty")


# ---------------------------------------------------------------------- LFW ----
@pytest.fixture
def lfw_tree(tmp_path):
    return make_lfw_tree(tmp_path / "src")


def _load_warned(fn, *a, **k):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = fn(*a, **k)
    return ds, [str(w.message) for w in rec]


def test_lfw_folder_and_archive_agree_and_skip_bad_files(lfw_tree, tmp_path):
    before = tree_state(lfw_tree)
    ds, msgs = _load_warned(load_lfw, lfw_tree, hr_size=24)
    assert ds.names == ["Alice_Anders", "Bob_Brown", "Carla_Cruz", "Dan_Dunn"]
    assert ds.counts().tolist() == [3, 1, 1, 3]
    assert len(ds.skipped) == 2
    assert any("Bob_Brown_0002.jpg" in m for m in msgs)
    assert any("Dan_Dunn_0004.jpg" in m for m in msgs)
    assert any("2 image(s) could not be read" in m for m in msgs)
    assert any("empty identity folder" in m and "Eve_Empty" in m for m in msgs)
    assert ds.image_index[ds.labels == 3].tolist() == [1, 2, 3]
    assert ds.index_of("Alice_Anders", 2) == 1
    with pytest.raises(DataError, match="Bob_Brown #2"):
        ds.index_of("Bob_Brown", 2)
    tgz = make_tgz(lfw_tree, tmp_path / "lfw.tgz")
    tgz_before = tree_state(tgz)
    dt, _ = _load_warned(load_lfw, tgz, hr_size=24)
    np.testing.assert_array_equal(dt.images, ds.images)
    np.testing.assert_array_equal(dt.labels, ds.labels)
    assert dt.names == ds.names and len(dt.skipped) == 2
    # a data folder holding lfw.tgz is found too
    dd, _ = _load_warned(load_lfw, tmp_path, hr_size=24)
    assert dd.source.endswith("lfw.tgz")
    assert tree_state(lfw_tree) == before and tree_state(tgz) == tgz_before


def test_lfw_crop_ratio_and_auto_crop(tmp_path):
    root = make_lfw_tree(tmp_path / "a", people={"Big_Face": 1}, corrupt=False, empty=False,
                         size=(250, 250))
    src = np.asarray(Image.open(root / "Big_Face" / "Big_Face_0001.jpg"))
    ds = load_lfw(root, hr_size=20)                     # auto: 0.5 for 250 px images
    want = np.asarray(Image.fromarray(src).resize((20, 20), Image.BICUBIC,
                                                  box=(62.5, 62.5, 187.5, 187.5)))
    assert np.abs(ds.images[0].transpose(1, 2, 0).astype(int) - want).mean() < 4
    full = load_lfw(root, hr_size=20, crop=1.0)
    assert np.abs(full.images[0].astype(int) - ds.images[0]).mean() > 4


def test_truncated_archive_is_a_clear_error(lfw_tree, tmp_path):
    tgz = make_tgz(lfw_tree, tmp_path / "lfw.tgz")
    truncate(tgz, 0.5)
    before = tree_state(tgz)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"lfw\.tgz is truncated or corrupt"):
            load_lfw(tgz, hr_size=16)
    assert tree_state(tgz) == before


def test_load_dataset_reports_unknown_and_missing(tmp_path):
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="needs a root"):
        load_dataset("folder")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("lfw", root=tmp_path / "missing", cache_dir=False)
    with pytest.raises(TypeError, match="n_identities"):
        load_dataset("orl", root=tmp_path, n_identities=3)


# ------------------------------------------------------------------- folder ----
def test_folder_any_format_non_square_and_empty(tmp_path):
    root = tmp_path / "faces"
    (root / "zed").mkdir(parents=True)
    (root / "amy").mkdir()
    (root / "nobody").mkdir()
    Image.fromarray(face_like(40, 30, 1)).save(root / "amy" / "b.png")
    Image.fromarray(face_like(30, 40, 2)).save(root / "amy" / "a.bmp")
    write_jpeg(root / "zed" / "x.jpg", face_like(50, 50, 3))
    (root / "zed" / "notes.txt").write_text("ignored")
    (root / "zed" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    before = tree_state(root)
    ds, msgs = _load_warned(load_folder, root, hr_size=16)
    assert ds.names == ["amy", "zed"] and ds.counts().tolist() == [2, 1]
    assert ds.images.shape == (3, 3, 16, 16)
    assert any("bad.png" in m for m in msgs) and any("nobody" in m for m in msgs)
    assert ds.image_index.tolist() == [1, 2, 1]
    # amy's first image is a.bmp (sorted), 30x40 -> centre 30x30 square
    want = np.asarray(Image.fromarray(face_like(30, 40, 2)).resize((16, 16), Image.BICUBIC,
                                                                    box=(0, 5, 30, 35)))
    assert np.abs(ds.images[0].transpose(1, 2, 0).astype(int) - want).max() <= 1
    assert tree_state(root) == before


def test_folder_with_nothing_readable(tmp_path):
    (tmp_path / "f" / "a").mkdir(parents=True)
    (tmp_path / "f" / "a" / "x.jpg").write_bytes(b"nope")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="no readable images"):
            load_folder(tmp_path / "f")


def test_corrupt_jpeg_bytes_never_crash(tmp_path):
    root = tmp_path / "f" / "p"
    root.mkdir(parents=True)
    good = io.BytesIO()
    Image.fromarray(face_like(20, 20, 5)).save(good, format="JPEG")
    data = good.getvalue()
    for k, blob in enumerate([data[:10], data[: len(data) // 2], b"", data[:2] + b"\0" * 50]):
        (root / f"bad{k}.jpg").write_bytes(blob)
    (root / "good.jpg").write_bytes(data)
    ds, msgs = _load_warned(load_folder, tmp_path / "f", hr_size=8)
    assert len(ds) == 1 and len(ds.skipped) == 4
    assert sum("bad" in m for m in msgs) >= 4
