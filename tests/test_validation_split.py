"""The validation split (``carve_validation``, ``load_split(validation=F)``): the faces
that choose settings are training faces, never test faces, and every consumer that
re-derives the split from the image files (the frozen teacher's source faces, the
unlabelled pool) sees the same carve. Synthetic faces and a tiny LFW tree: seconds."""
import numpy as np
import pytest

from tinyface.data import (carve_validation, identification_split, load_dataset, split_datasets,
                           split_from_meta)
from tinyface.distill.label_free import label_free_pool
from tinyface.eval.disjoint import disjoint_pairs
from tinyface.data import load_split

from test_label_free import LFW_PAIRS, PEOPLE


def _bytes(faces):
    return {f.tobytes() for f in faces}


def test_carve_holds_out_a_fraction_of_each_identitys_training_faces():
    ds = load_dataset("synthetic", n_identities=6, images_per_identity=12, hr_size=16)
    sp = identification_split(ds, min_images=2, train_fraction=0.7, seed=0)
    tr, va, held = carve_validation(ds, sp, 0.25, seed=0)
    n_train = np.bincount(ds.labels[sp[0]])
    assert np.array_equal(np.bincount(ds.labels[va]), np.round(0.25 * n_train))
    assert np.array_equal(np.bincount(ds.labels[tr]) + np.bincount(ds.labels[va]), n_train)
    # validation and training rows partition the original training rows; no test row
    rows = np.concatenate([tr, va])
    assert sorted(rows) == sorted(sp[0])
    assert not set(rows) & set(sp[1])
    np.testing.assert_array_equal(held, sp[1])
    # deterministic for a seed, another carve for another seed
    _, again, _ = carve_validation(ds, sp, 0.25, seed=0)
    np.testing.assert_array_equal(again, va)
    _, other, _ = carve_validation(ds, sp, 0.25, seed=1)
    assert not np.array_equal(other, va)


def test_carve_refuses_bad_fractions_and_single_face_identities():
    ds = load_dataset("synthetic", n_identities=3, images_per_identity=4, hr_size=16)
    sp = identification_split(ds, min_images=2, train_fraction=0.5, seed=0)
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="validation fraction must be in"):
            carve_validation(ds, sp, bad)
    tiny = identification_split(ds, min_images=2, train_fraction=0.25, seed=0)  # 1 each
    with pytest.raises(ValueError, match="at least 2 per identity"):
        carve_validation(ds, tiny, 0.5)


def test_load_split_with_validation_measures_training_faces_only():
    full = load_split("synthetic", hr_size=32, lr_size=8, seed=0)
    val = load_split("synthetic", hr_size=32, lr_size=8, seed=0, validation=0.2)
    assert val.is_validation and not full.is_validation
    assert val.meta["validation"] == 0.2 and "validation faces" in val.describe()
    assert len(val.y_train) + len(val.y_test) == len(full.y_train)
    train = _bytes(full.hr_train)
    assert _bytes(val.hr_test) <= train and _bytes(val.hr_train) <= train
    assert not _bytes(val.hr_test) & _bytes(full.hr_test)
    assert val.lr_up_test.shape == (len(val.y_test), 3, 32, 32)
    # the LR faces are the HR faces' degradation, as in any split
    lr = {f.tobytes() for f in full.lr_train}
    assert _bytes(val.lr_test) <= lr
    with pytest.raises(ValueError, match="validation fraction"):
        load_split("synthetic", hr_size=32, lr_size=8, validation=1.0)


@pytest.fixture(scope="module")
def lfw(tmp_path_factory):
    from test_data_helpers import make_lfw_tree
    root = tmp_path_factory.mktemp("lfw")
    make_lfw_tree(root, people=PEOPLE, corrupt=False, empty=False)
    (root / "pairs.txt").write_text(LFW_PAIRS)
    return root


def test_split_from_meta_gives_the_carved_faces(lfw):
    split = load_split("lfw", data_root=lfw, hr_size=16, lr_size=8, cache_dir=False,
                       validation=0.3)
    ds = load_dataset("lfw", root=lfw, hr_size=16, cache_dir=False)
    train_rows, test_rows, held = split_from_meta(ds, split.meta)
    np.testing.assert_array_equal(ds.images[train_rows], split.hr_train)
    np.testing.assert_array_equal(ds.images[test_rows], split.hr_test)
    np.testing.assert_array_equal(train_rows, split.train_rows)
    np.testing.assert_array_equal(test_rows, split.test_rows)
    train, test = split_datasets(ds, train_rows, test_rows)
    np.testing.assert_array_equal(train.labels, split.y_train)
    np.testing.assert_array_equal(test.labels, split.y_test)
    assert len(held) > 0 and not set(held) & (set(train_rows) | set(test_rows))


def test_unlabelled_pool_of_a_validation_split_leaves_out_the_test_faces(lfw):
    full = load_split("lfw", data_root=lfw, hr_size=16, lr_size=8, cache_dir=False)
    val = load_split("lfw", data_root=lfw, hr_size=16, lr_size=8, cache_dir=False,
                     validation=0.3)
    ds = load_dataset("lfw", root=lfw, hr_size=16, cache_dir=False)
    pairs, _ = disjoint_pairs("lfw", full, data_root=lfw, cache_dir=False)
    rows_full, _ = label_free_pool(ds, full, pairs)
    rows_val, info = label_free_pool(ds, val, pairs)
    np.testing.assert_array_equal(rows_val, rows_full)      # the same pool either way
    assert not _bytes(ds.images[rows_val]) & _bytes(full.hr_test)
    assert info["test_faces"] == len(full.y_test) + len(val.y_test)
