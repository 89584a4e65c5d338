"""Optimizers, learning-rate schedules and parameter selection (freezing layers).

Typical use::

    opt = AdamW(model.parameters_and_grads(), lr=1e-3)
    sched = make_schedule("cosine", 1e-3, total_steps, warmup_steps=100)
    for t in range(total_steps):
        sched.apply(opt, t)
        opt.zero_grad(); loss_backward(); opt.step()
"""
from .adam import Adam, AdamW
from .optimizer import Optimizer, select_params
from .schedules import (SCHEDULE_NAMES, ConstantLR, CosineLR, LinearWarmup, Schedule,
                        StepLR, make_schedule)
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "select_params", "Schedule", "ConstantLR",
           "StepLR", "CosineLR", "LinearWarmup", "make_schedule", "SCHEDULE_NAMES"]
