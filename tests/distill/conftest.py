"""Fixtures the distillation tests of this folder share, each made once per test
session: a tiny synthetic split (6 identities x 8 faces, HR 32 px, LR 8 px), a
teacher-lite trained one epoch on its HR faces, a student trained two epochs on its LR
faces, and the teacher's feature bank of the HR training faces. Tests read them and never
change them; a module may define its own of the same name (``test_distill_at.py``)."""
import pytest

from tinyface.data import load_split
from tinyface.distill import extract_bank
from tinyface.experiments import train_stream
from tinyface.train import TrainConfig

TINY = dict(synthetic={"n_identities": 6, "images_per_identity": 8}, cache_dir=False)


def _quiet(msg):
    pass


@pytest.fixture(scope="session")
def split():
    return load_split("synthetic", hr_size=32, lr_size=8, **TINY)


@pytest.fixture(scope="session")
def teacher(split, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    return train_stream(split, "teacher", TrainConfig(epochs=1, batch_size=16), out,
                        arch="teacher-lite", log=_quiet)["model"]


@pytest.fixture(scope="session")
def student(split, tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    return train_stream(split, "student", TrainConfig(epochs=2, batch_size=16), out,
                        log=_quiet)["model"]


@pytest.fixture(scope="session")
def bank(teacher, split):
    return extract_bank(teacher, split.hr_train, batch_size=16)
