"""Optimizers and schedules against torch.optim (optional: skipped without PyTorch).

Both sides start from the same float32 tensors and receive the same random gradients
for 5 steps; the parameters must agree to float32 rounding (rtol 1e-5).
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch not installed: parity tests are optional")

from tinyface.optim import SGD, Adam, AdamW, CosineLR, LinearWarmup, StepLR, make_schedule  # noqa: E402

SHAPES = [(4, 3), (3,), (2, 3, 3, 3)]
STEPS = 5

CASES = [
    (SGD, torch.optim.SGD, dict(lr=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, weight_decay=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=5e-2, nesterov=True)),
    (Adam, torch.optim.Adam, dict()),
    (Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    (AdamW, torch.optim.AdamW, dict()),
    (AdamW, torch.optim.AdamW, dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.3)),
]


@pytest.mark.parametrize("ours, theirs, kw", CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_trajectory_matches_torch(ours, theirs, kw):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    triples = [(f"p{i}", a.copy(), np.zeros_like(a)) for i, a in enumerate(init)]
    tparams = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    opt = ours(triples, **kw)
    topt = theirs(tparams, foreach=False, **kw)
    for step in range(STEPS):
        if step == 3:  # a schedule changing lr mid-run
            opt.lr = opt.lr * 0.5
            for group in topt.param_groups:
                group["lr"] = group["lr"] * 0.5
        for (_, _, g), tp in zip(triples, tparams):
            g[...] = rng.standard_normal(g.shape).astype(np.float32)
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for (name, p, _), tp in zip(triples, tparams):
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} after step {step + 1}")


def torch_lrs(make_sched, base_lr, n):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_sched(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_step_lr_matches_torch():
    want = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.3), 0.2, 12)
    ours = StepLR(0.2, step_size=3, gamma=0.3)
    np.testing.assert_allclose([ours.lr_at(t) for t in range(12)], want, rtol=1e-12)


def test_cosine_matches_torch():
    t_max = 17
    want = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=t_max, eta_min=0.01),
                     0.5, t_max + 1)
    ours = CosineLR(0.5, total_steps=t_max, min_lr=0.01)
    np.testing.assert_allclose([ours.lr_at(t) for t in range(t_max + 1)], want, rtol=1e-10)


def test_warmup_matches_torch_linear_lr():
    want = torch_lrs(lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.2, total_iters=6),
                     0.3, 10)
    ours = LinearWarmup(0.3, warmup_steps=6, start_factor=0.2)
    np.testing.assert_allclose([ours.lr_at(t) for t in range(10)], want, rtol=1e-10)


def test_warmup_then_cosine_matches_torch_sequential_lr():
    lr_sched = torch.optim.lr_scheduler

    def make(o):
        warm = lr_sched.LinearLR(o, start_factor=0.1, total_iters=4)
        cos = lr_sched.CosineAnnealingLR(o, T_max=16)
        return lr_sched.SequentialLR(o, [warm, cos], milestones=[4])

    want = torch_lrs(make, 0.1, 21)
    ours = make_schedule("cosine", 0.1, total_steps=20, warmup_steps=4, start_factor=0.1)
    np.testing.assert_allclose([ours.lr_at(t) for t in range(21)], want, rtol=1e-9, atol=1e-15)
