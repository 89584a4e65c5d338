"""The deployment report: bytes counted by hand, speed measured (never asserted as a rate)."""
import numpy as np
import pytest

from tinyface.models import STUDENT_MAX_PARAMS, build_model, build_student, student_spec
from tinyface.experiments.deployment import (PAPER_FACES_PER_S, PAPER_STUDENT_BYTES,
                                          deployment_report, format_deployment, model_memory,
                                          measure_throughput)


def test_paper_budget_is_0_15_mebibytes():
    assert PAPER_STUDENT_BYTES == 157_286 == 4 * STUDENT_MAX_PARAMS + 2
    assert PAPER_FACES_PER_S == 418


def test_student_memory_by_hand():
    m = model_memory(build_student(158, seed=0))
    assert m["params"] == 38_670 and m["param_bytes"] == 154_680
    assert m["classifier_bytes"] == 4 * (64 * 158 + 158)
    assert m["embedding_bytes"] == m["param_bytes"] - m["classifier_bytes"]
    # running mean and variance of BatchNorm2d 16, 16, 32, 32, 32 and BatchNorm1d 64, float32
    assert m["buffer_bytes"] == 4 * 2 * (16 + 16 + 32 + 32 + 32 + 64)
    assert m["fraction_of_paper"] == pytest.approx(154_680 / 157_286)
    assert m["megabytes"] == pytest.approx(154_680 / 2 ** 20)


def test_throughput_and_report_restore_the_mode():
    spec = dict(student_spec(5), stages=[4, "M", 8], embedding_dim=8, input_size=8)
    model = build_model(spec, seed=0).train()
    calls = []

    def fn(x):
        calls.append(x.shape)
        return model.forward(x)

    speed = measure_throughput(model, batch_sizes=(1, 3), reps=4, warmup=2, fn=fn)
    assert model.training                                   # mode restored
    assert calls.count((1, 3, 8, 8)) == 6 and calls.count((3, 3, 8, 8)) == 6   # 2 warm-up + 4
    for b, s in speed.items():
        assert s["batch"] == b and s["median_s"] > 0
        assert s["faces_per_s"] == pytest.approx(b / s["median_s"])
    report = deployment_report(model, batch_sizes=(2,), reps=3)
    assert set(report["speed"]) == {2}
    assert report["speedup_vs_paper"][2] == pytest.approx(report["speed"][2]["faces_per_s"] / 418)
    text = format_deployment(report)
    assert f"{model.num_parameters():,} float32 parameters" in text and "batch    2" in text
    with pytest.raises(ValueError, match="batch sizes"):
        measure_throughput(model, batch_sizes=(0,))
    assert np.isfinite(report["seconds"])
