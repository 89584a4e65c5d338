"""Learning-rate schedules: the rate as a closed-form function of the step (or epoch) t.

Each schedule has ``lr_at(t)`` (also callable: ``schedule(t)``) for an integer t >= 0,
and ``apply(optimizer, t)``, which sets ``optimizer.lr`` and returns the rate. Whether
t counts optimizer steps or epochs is the caller's choice; call ``apply`` once per t.

- ``ConstantLR(base_lr)``: always ``base_lr``. (Not torch's ``ConstantLR``, which scales
  the first iterations by a factor.)
- ``StepLR(base_lr, step_size, gamma)``: ``base_lr * gamma ** (t // step_size)``, as
  ``torch.optim.lr_scheduler.StepLR``.
- ``CosineLR(base_lr, total_steps, min_lr)``: ``torch``'s ``CosineAnnealingLR`` with
  ``T_max=total_steps, eta_min=min_lr`` on ``0 <= t <= total_steps``; after that it
  stays at ``min_lr`` (torch's would climb back up).
- ``LinearWarmup(schedule_or_base_lr, warmup_steps, start_factor)``: ramps linearly
  from ``start_factor * base`` to ``base`` over the first ``warmup_steps``, then runs
  the wrapped schedule *shifted*: at ``t >= warmup_steps`` the rate is
  ``inner.lr_at(t - warmup_steps)``. During warm-up it equals torch's
  ``LinearLR(start_factor, 1.0, total_iters=warmup_steps)``.
"""
import math


def _check_t(t):
    if int(t) != t or t < 0:
        raise ValueError(f"schedule step must be an integer >= 0, got {t!r}")
    return int(t)


class Schedule:
    """Base class: subclasses implement ``lr_at(t)`` and set ``base_lr``."""

    base_lr = None

    def lr_at(self, t):
        raise NotImplementedError

    def __call__(self, t):
        return self.lr_at(t)

    def apply(self, optimizer, t):
        """Set ``optimizer.lr`` to the rate at step ``t``; return that rate."""
        lr = self.lr_at(t)
        optimizer.lr = lr
        return lr

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _positive_lr(base_lr):
    base_lr = float(base_lr)
    if not base_lr >= 0.0:
        raise ValueError(f"base_lr must be >= 0, got {base_lr}")
    return base_lr


class ConstantLR(Schedule):
    """The rate ``base_lr`` at every step."""

    def __init__(self, base_lr):
        self.base_lr = _positive_lr(base_lr)

    def lr_at(self, t):
        _check_t(t)
        return self.base_lr


class StepLR(Schedule):
    """``base_lr * gamma ** (t // step_size)``: decay by ``gamma`` every ``step_size`` steps."""

    def __init__(self, base_lr, step_size, gamma=0.1):
        self.base_lr = _positive_lr(base_lr)
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"step_size must be an integer >= 1, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        if not self.gamma > 0.0:
            raise ValueError(f"gamma must be > 0, got {gamma}")

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (_check_t(t) // self.step_size)


class CosineLR(Schedule):
    """Half a cosine from ``base_lr`` at t=0 down to ``min_lr`` at ``t = total_steps``.

    ``lr(t) = min_lr + (base_lr - min_lr) * (1 + cos(pi * t / total_steps)) / 2``,
    with t clamped to ``total_steps`` (the rate then stays at ``min_lr``).
    """

    def __init__(self, base_lr, total_steps, min_lr=0.0):
        self.base_lr = _positive_lr(base_lr)
        if int(total_steps) != total_steps or total_steps < 1:
            raise ValueError(f"total_steps must be an integer >= 1, got {total_steps!r}")
        self.total_steps, self.min_lr = int(total_steps), float(min_lr)
        if not 0.0 <= self.min_lr <= self.base_lr:
            raise ValueError(f"min_lr must be in [0, base_lr={self.base_lr}], got {min_lr}")

    def lr_at(self, t):
        t = min(_check_t(t), self.total_steps)
        cos = (1.0 + math.cos(math.pi * t / self.total_steps)) / 2.0
        return self.min_lr + (self.base_lr - self.min_lr) * cos


class LinearWarmup(Schedule):
    """Linear warm-up in front of another schedule (or of a constant rate).

    Args:
        schedule_or_base_lr: a ``Schedule``, or a number meaning ``ConstantLR(number)``.
        warmup_steps: length of the ramp, integer >= 0 (0: no warm-up).
        start_factor: the rate at t=0 is ``start_factor * base``, in (0, 1].

    ``base`` is the wrapped schedule's rate at its own t=0. For ``t < warmup_steps``:
    ``base * (start_factor + (1 - start_factor) * t / warmup_steps)``; afterwards
    ``inner.lr_at(t - warmup_steps)``, so the ramp ends exactly at ``base``.
    """

    def __init__(self, schedule_or_base_lr, warmup_steps, start_factor=0.1):
        inner = schedule_or_base_lr
        self.inner = inner if isinstance(inner, Schedule) else ConstantLR(inner)
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        self.warmup_steps, self.start_factor = int(warmup_steps), float(start_factor)
        if not 0.0 < self.start_factor <= 1.0:
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
        self.base_lr = self.inner.lr_at(0)

    def lr_at(self, t):
        t = _check_t(t)
        if t >= self.warmup_steps:
            return self.inner.lr_at(t - self.warmup_steps)
        frac = t / self.warmup_steps
        return self.base_lr * (self.start_factor + (1.0 - self.start_factor) * frac)


SCHEDULE_NAMES = ("constant", "step", "cosine")


def make_schedule(name, base_lr, total_steps, warmup_steps=0, *, step_size=None,
                  gamma=0.1, min_lr=0.0, start_factor=0.1):
    """Build a schedule by name (for the command line).

    Args:
        name: "constant", "step" or "cosine".
        base_lr: the peak rate (reached at the end of warm-up).
        total_steps: length of the whole run, warm-up included.
        warmup_steps: linear warm-up length (0: none); the decay runs over the
            remaining ``total_steps - warmup_steps`` steps.
        step_size: for "step": decay interval (default: a third of the decay steps,
            rounded up, so the rate drops by ``gamma`` at most twice).
        gamma: for "step": decay factor.
        min_lr: for "cosine": the final rate.
        start_factor: warm-up starts at ``start_factor * base_lr``.
    """
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {list(SCHEDULE_NAMES)}")
    if int(total_steps) != total_steps or total_steps < 1:
        raise ValueError(f"total_steps must be an integer >= 1, got {total_steps!r}")
    if int(warmup_steps) != warmup_steps or not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be an integer in [0, total_steps={total_steps}), "
                         f"got {warmup_steps!r}")
    decay_steps = int(total_steps) - int(warmup_steps)
    if name == "constant":
        sched = ConstantLR(base_lr)
    elif name == "step":
        sched = StepLR(base_lr, step_size if step_size is not None else math.ceil(decay_steps / 3), gamma)
    else:
        sched = CosineLR(base_lr, decay_steps, min_lr)
    return LinearWarmup(sched, warmup_steps, start_factor) if warmup_steps else sched
