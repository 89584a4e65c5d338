"""Learning-rate schedules: values at chosen steps, warm-up shape, monotone cosine."""
import math

import numpy as np
import pytest

from tinyface.optim import SGD, ConstantLR, CosineLR, LinearWarmup, StepLR, make_schedule


def test_step_lr_values():
    s = StepLR(0.1, step_size=3, gamma=0.5)
    got = [s.lr_at(t) for t in (0, 2, 3, 5, 6, 9)]
    assert got == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.0125])
    assert StepLR(1.0, 10).lr_at(25) == pytest.approx(0.01)  # default gamma 0.1


def test_cosine_values_and_monotone():
    s = CosineLR(1.0, total_steps=10, min_lr=0.1)
    assert s.lr_at(0) == 1.0
    assert s.lr_at(5) == pytest.approx(0.55)
    assert s.lr_at(10) == pytest.approx(0.1)
    assert s.lr_at(2) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 0.2)) / 2)
    assert s.lr_at(50) == pytest.approx(0.1)  # held at min_lr past the end
    values = np.array([s.lr_at(t) for t in range(15)])
    assert np.all(np.diff(values) <= 0) and np.all(np.diff(values[:11]) < 0)


def test_linear_warmup_starts_low_and_reaches_base():
    inner = CosineLR(0.4, total_steps=20)
    s = LinearWarmup(inner, warmup_steps=5, start_factor=0.25)
    assert s.lr_at(0) == pytest.approx(0.1)
    assert s.lr_at(1) == pytest.approx(0.4 * (0.25 + 0.75 / 5))
    ramp = [s.lr_at(t) for t in range(6)]
    assert all(a < b for a, b in zip(ramp, ramp[1:]))
    assert s.lr_at(5) == pytest.approx(0.4) and s.base_lr == 0.4
    assert s.lr_at(15) == pytest.approx(inner.lr_at(10))  # the inner schedule is shifted
    assert s.lr_at(25) == pytest.approx(0.0)


def test_warmup_of_a_number_and_zero_warmup():
    s = LinearWarmup(0.2, warmup_steps=4)
    assert s.lr_at(0) == pytest.approx(0.02) and s.lr_at(4) == s.lr_at(100) == 0.2
    inner = StepLR(0.2, 2)
    assert [LinearWarmup(inner, 0).lr_at(t) for t in range(5)] == [inner.lr_at(t) for t in range(5)]


def test_apply_sets_optimizer_lr():
    p = np.zeros(2, np.float32)
    opt = SGD([("p", p, np.zeros_like(p))], lr=1.0)
    s = StepLR(0.1, step_size=2)
    assert s.apply(opt, 3) == pytest.approx(0.01)
    assert opt.lr == pytest.approx(0.01)
    assert s(0) == s.lr_at(0) == 0.1


def test_make_schedule():
    assert isinstance(make_schedule("constant", 0.3, 10), ConstantLR)
    assert make_schedule("constant", 0.3, 10).lr_at(9) == 0.3
    cos = make_schedule("cosine", 1.0, total_steps=12, warmup_steps=2, min_lr=0.0)
    assert cos.lr_at(0) == pytest.approx(0.1) and cos.lr_at(2) == pytest.approx(1.0)
    assert cos.lr_at(7) == pytest.approx(0.5) and cos.lr_at(12) == pytest.approx(0.0)
    step = make_schedule("step", 1.0, total_steps=9, gamma=0.5)  # step_size = 3
    assert [step.lr_at(t) for t in (0, 3, 6, 8)] == pytest.approx([1.0, 0.5, 0.25, 0.25])
    assert make_schedule("step", 1.0, 9, step_size=4).lr_at(4) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        make_schedule("linear", 0.1, 10)
    with pytest.raises(ValueError, match="warmup_steps"):
        make_schedule("cosine", 0.1, 10, warmup_steps=10)


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="step_size"):
        StepLR(0.1, 0)
    with pytest.raises(ValueError, match="total_steps"):
        CosineLR(0.1, 0)
    with pytest.raises(ValueError, match="min_lr"):
        CosineLR(0.1, 10, min_lr=0.5)
    with pytest.raises(ValueError, match="base_lr"):
        ConstantLR(-1.0)
    with pytest.raises(ValueError, match="start_factor"):
        LinearWarmup(0.1, 5, start_factor=0.0)
    with pytest.raises(ValueError, match="integer >= 0"):
        StepLR(0.1, 2).lr_at(-1)
    with pytest.raises(ValueError, match="integer >= 0"):
        CosineLR(0.1, 2).lr_at(0.5)
