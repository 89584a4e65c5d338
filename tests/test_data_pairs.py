"""pairs.txt parsing, pair resolution and the evaluation protocols."""
import numpy as np
import pytest

from tinyface.data import (Dataset, DataError, DataWarning, identification_split, load_pairs,
                           parse_pairs, resolve_pairs, split_datasets, verification_split)
from tinyface.data.pairs import fold_identities

PAIRS = """2\t2
Ann\t1\t2
Bob\t1\t3
Ann\t1\tBob\t2
Ann\t2\tBob\t1
Cy\t1\t2
Dee\t2\t3
Cy\t1\tDee\t1
Cy\t2\tDee\t3
"""


def toy_dataset():
    """Ann 2 images, Bob 3, Cy 2, Dee 3, Eve 1 (image i of label k has value 10k+i)."""
    counts = {"Ann": 2, "Bob": 3, "Cy": 2, "Dee": 3, "Eve": 1}
    labels, index = [], []
    for k, n in enumerate(counts.values()):
        labels += [k] * n
        index += list(range(1, n + 1))
    labels, index = np.array(labels), np.array(index)
    images = np.zeros((len(labels), 3, 4, 4), np.uint8)
    images[:, 0, 0, 0] = 10 * labels + index
    return Dataset(images, labels, list(counts), index, source="toy")


def test_parse_pairs_folds_and_entries(tmp_path):
    (tmp_path / "pairs.txt").write_text(PAIRS)
    folds = load_pairs(tmp_path / "pairs.txt")
    assert len(folds) == 2 and [len(f) for f in folds] == [4, 4]
    assert folds[0][0] == (("Ann", 1), ("Ann", 2), True)
    assert folds[0][2] == (("Ann", 1), ("Bob", 2), False)
    assert fold_identities(folds[1]) == {"Cy", "Dee"}
    assert parse_pairs("1\nX 1 2\nX 1 Y 1\n")[0] == [(("X", 1), ("X", 2), True),
                                                    (("X", 1), ("Y", 1), False)]


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    ("two folds\nA 1 2\n", "header"),
    ("1 1\nA 1 2\n", "found 1"),
    ("1 1\nA 1 2 3 4 5\nA 1 B 2\n", ":2: expected 3 fields"),
    ("1 1\nA one 2\nA 1 B 2\n", ":2: image numbers must be integers"),
    ("1 1\nA 1 B 2\nA 1 C 2\n", "0 matched"),
])
def test_parse_pairs_errors_name_the_problem(text, match):
    with pytest.raises(DataError, match=match):
        parse_pairs(text, "p.txt")


def test_resolve_pairs_and_missing_image():
    ds = toy_dataset()
    folds = parse_pairs(PAIRS)
    a, b, same = resolve_pairs(folds, ds)
    assert a.dtype == np.int64 and same.dtype == bool and len(a) == 8
    assert ds.images[a[1], 0, 0, 0] == 11 and ds.images[b[1], 0, 0, 0] == 13   # Bob 1, Bob 3
    assert same.tolist() == [True, True, False, False] * 2
    bad = parse_pairs("1 1\nAnn 1 7\nAnn 1 Zed 1\n")
    with pytest.raises(DataError, match=r"Ann #7 .*Ann has 2 images"):
        resolve_pairs(bad, ds)
    with pytest.warns(DataWarning) as rec:
        a, b, same = resolve_pairs(bad, ds, strict=False)
    msgs = [str(w.message) for w in rec]
    assert len(a) == 0 and len(msgs) == 2 and "Zed" in msgs[1] and "dropped" in msgs[0]
    with pytest.raises(DataError, match="missing pairs"):
        load_pairs("missing pairs")


def test_identification_split():
    ds = toy_dataset()
    train_rows, test_rows = identification_split(ds, min_images=3, train_fraction=0.5, seed=1)
    assert train_rows.dtype == test_rows.dtype == np.int64
    train, test = split_datasets(ds, train_rows, test_rows)
    assert train.names == ["Bob", "Dee"] == test.names
    assert len(train) + len(test) == 6
    assert set(train_rows).isdisjoint(test_rows)
    assert (train.counts() >= 1).all() and (test.counts() >= 1).all()
    # rows and relabelled labels agree with the original dataset
    np.testing.assert_array_equal(train.images, ds.images[train_rows])
    assert ([train.names[k] for k in train.labels]
            == [ds.names[k] for k in ds.labels[train_rows]])
    again, _ = identification_split(ds, min_images=3, seed=1)
    np.testing.assert_array_equal(again, train_rows)
    splits = {tuple(identification_split(ds, 3, seed=s)[0]) for s in range(8)}
    assert len(splits) > 1
    with pytest.raises(DataError, match=">= 9"):
        identification_split(ds, min_images=9)


def test_verification_split_is_identity_disjoint():
    ds = toy_dataset()
    folds = parse_pairs(PAIRS)
    vs = verification_split(ds, folds, test_fold=1)
    assert vs.train.names == ["Ann", "Bob"]                 # identities of the other fold
    assert len(vs.train) == 5 and set(vs.train.names).isdisjoint(fold_identities(folds[1]))
    assert len(vs.a) == 4 and vs.same.tolist() == [True, True, False, False]
    assert {ds.names[l] for l in ds.labels[np.r_[vs.a, vs.b]]} == {"Cy", "Dee"}
    np.testing.assert_array_equal(vs.train.images, ds.images[vs.train_rows])
    with pytest.raises(ValueError):
        verification_split(ds, folds, 2)
