"""Fixtures the tests of the pretrained teacher share (``test_pretrained_teacher.py``,
``test_frozen_attention.py``, ``test_cross_resolution.py``): a tiny FaceNet standing in for
dlib's network, the small synthetic split it sees, and the skip of the tests that run
dlib's own network when its weights are absent. A module may define its own fixture of
the same name (``split`` in ``test_streams.py``), as ``tests/distill/conftest.py`` does."""
import pytest

from tinyface.data import load_split
from tinyface.models import build_model
from tinyface.models.weights import find_weights_dir

STAND_IN = {"name": "stand-in", "input_size": 32, "in_channels": 3, "stages": [8, "M", 16],
            "embedding_dim": 16, "embedding_norm": "none", "num_classes": 1, "norm": "bn",
            "act": "relu", "dropout": 0.0}                 # pre-pool map (16, 16, 16)
RES_STAND_IN = dict(STAND_IN, norm="affine", embedding_bias=False,   # map (8, 15, 15)
                    stages=[{"conv": 8, "kernel": 3, "stride": 2, "padding": 0}, {"res": 8}])


@pytest.fixture
def stand_in(monkeypatch):
    """``load_pretrained`` (as the frozen teacher calls it) returns a tiny FaceNet
    (32 px -> 16-d); ``calls`` records the weights argument, ``seed`` picks its weights."""
    state = {"calls": [], "seed": 0, "spec": STAND_IN}

    def fake(name="dlib-resnet", weights=None, num_classes=1, check_sha256=True):
        state["calls"].append(weights)
        model = build_model(dict(state["spec"], num_classes=num_classes),
                            seed=state["seed"]).eval()
        model.pretrained = {"name": name, "folder": str(weights)}
        return model
    monkeypatch.setattr("tinyface.distill.frozen_teacher.load_pretrained", fake)
    return state


@pytest.fixture
def res_stand_in(stand_in):
    """The stand-in with an affine norm and a residual block, a tail the teacher's tuning
    can train (``teacher_tune_blocks=1``)."""
    stand_in["spec"] = RES_STAND_IN
    return stand_in


@pytest.fixture(scope="module")
def split():
    return load_split("synthetic", hr_size=32, lr_size=8, cache_dir=False,
                      synthetic={"n_identities": 5, "images_per_identity": 8})


@pytest.fixture
def dlib_weights():
    """The folder of dlib's weights; the test skips when they are not found."""
    try:
        return find_weights_dir()
    except Exception:
        pytest.skip("dlib's weights not found (no ../shared/data/dlib_resnet; run "
                    "data_scripts/download_teacher.py)")
