"""Optimizers against hand-computed updates on a tiny quadratic, state round trips, errors.

The loss is ``f(p) = 0.5 * sum(a * p**2)``, so ``grad = a * p``. The references below are
written out in float64 Python from the documented formulas; the optimizers run float32.
"""
import math
import tracemalloc

import numpy as np
import pytest

from tinyface.optim import SGD, Adam, AdamW, Optimizer, select_params

A = np.array([1.0, 2.0, 0.5, 3.0])
P0 = np.array([1.0, -2.0, 0.5, 4.0])


def make_quadratic(p0=P0):
    p = np.array(p0, dtype=np.float32)
    g = np.zeros_like(p)
    return [("w", p, g)]


def run(opt, triples, steps=3):
    _, p, g = triples[0]
    for _ in range(steps):
        opt.zero_grad()
        g += (A * p).astype(np.float32)  # grad of the quadratic, accumulated like a layer
        opt.step()
    return p


def sgd_reference(lr, momentum=0.0, dampening=0.0, wd=0.0, nesterov=False, steps=3):
    p, buf = P0.copy(), None
    for _ in range(steps):
        d = A * p + wd * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def adam_reference(lr, b1, b2, eps, wd, decoupled, steps=3):
    p, m, v = P0.copy(), np.zeros(4), np.zeros(4)
    for t in range(1, steps + 1):
        if decoupled:
            p = p * (1 - lr * wd)
        g = A * p + (0.0 if decoupled else wd * p)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


@pytest.mark.parametrize("kw", [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.5),
    dict(momentum=0.9, nesterov=True),
    dict(weight_decay=0.1),
    dict(momentum=0.8, weight_decay=0.1, nesterov=True),
])
def test_sgd_matches_formula(kw):
    triples = make_quadratic()
    p = run(SGD(triples, lr=0.1, **kw), triples)
    ref = sgd_reference(0.1, kw.get("momentum", 0.0), kw.get("dampening", 0.0),
                        kw.get("weight_decay", 0.0), kw.get("nesterov", False))
    np.testing.assert_allclose(p, ref, rtol=1e-6, atol=1e-7)
    assert p.dtype == np.float32


def test_sgd_first_momentum_step_is_undampened_plain_gradient():
    triples = make_quadratic()
    opt = SGD(triples, lr=0.1, momentum=0.9, dampening=0.5)
    p = run(opt, triples, steps=1)
    np.testing.assert_allclose(p, P0 - 0.1 * A * P0, rtol=1e-6)
    np.testing.assert_allclose(opt.state["w"]["momentum_buffer"], A * P0, rtol=1e-6)


def test_sgd_by_hand_three_steps_nesterov():
    # one coordinate, a=1, p0=1, lr=0.1, mu=0.5: written out without any loop
    p = np.array([1.0], np.float32)
    g = np.zeros_like(p)
    opt = SGD([("x", p, g)], lr=0.1, momentum=0.5, nesterov=True)
    expected = []
    p_, b = 1.0, None
    g1 = p_; b = g1; p_ = p_ - 0.1 * (g1 + 0.5 * b); expected.append(p_)          # 0.85
    g2 = p_; b = 0.5 * b + g2; p_ = p_ - 0.1 * (g2 + 0.5 * b); expected.append(p_)
    g3 = p_; b = 0.5 * b + g3; p_ = p_ - 0.1 * (g3 + 0.5 * b); expected.append(p_)
    for want in expected:
        g[...] = p
        opt.step()
        assert p[0] == pytest.approx(want, rel=1e-6)
    assert expected[0] == pytest.approx(0.85)


@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_matches_formula(cls, wd):
    triples = make_quadratic()
    opt = cls(triples, lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd)
    p = run(opt, triples)
    ref = adam_reference(0.01, 0.8, 0.95, 1e-6, wd, decoupled=cls is AdamW)
    np.testing.assert_allclose(p, ref, rtol=1e-6, atol=1e-7)
    assert opt.state["w"]["step"] == 3


def test_adam_bias_correction_first_step_moves_by_lr():
    # with bias correction, step 1 is lr * g / (|g| + eps) = lr * sign(g) for eps << |g|
    triples = make_quadratic()
    p = run(Adam(triples, lr=0.01), triples, steps=1)
    np.testing.assert_allclose(p, P0 - 0.01 * np.sign(P0), rtol=1e-6)
    # without it the first step would be (1-b1)/sqrt(1-b2) = 3.16x smaller: make sure not
    uncorrected = P0 - 0.01 * (0.1 * A * P0) / (np.sqrt(0.001) * np.abs(A * P0))
    assert not np.allclose(p, uncorrected, rtol=1e-3)


def test_adamw_decoupled_decay_differs_from_adam_l2():
    t1, t2, t3, t4 = (make_quadratic() for _ in range(4))
    adam = run(Adam(t1, lr=0.01, weight_decay=0.5), t1)
    adamw = run(AdamW(t2, lr=0.01, weight_decay=0.5), t2)
    assert np.max(np.abs(adam - adamw)) > 1e-4
    # with no decay they are the same optimizer
    np.testing.assert_array_equal(run(Adam(t3, lr=0.01), t3), run(AdamW(t4, lr=0.01, weight_decay=0), t4))
    assert AdamW(make_quadratic()).weight_decay == 0.01 and Adam(make_quadratic()).weight_decay == 0.0


def test_step_is_in_place_and_leaves_grads_alone():
    triples = make_quadratic()
    _, p, g = triples[0]
    ref = p  # what a layer holds
    for opt in (SGD(triples, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
                Adam(triples, weight_decay=0.1), AdamW(triples)):
        g[...] = [1, 2, 3, 4]
        before = p.copy()
        opt.step()
        assert ref is triples[0][1] and not np.array_equal(before, ref)
        np.testing.assert_array_equal(g, [1, 2, 3, 4])
    opt.zero_grad()
    assert not g.any() and g is triples[0][2]


@pytest.mark.parametrize("make", [
    lambda t: SGD(t, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda t: SGD(t, lr=0.05, momentum=0.9, dampening=0.1),
    lambda t: Adam(t, lr=0.01, weight_decay=0.1),
    lambda t: AdamW(t, lr=0.01, betas=(0.5, 0.9)),
])
def test_state_dict_round_trip_continues_identically(make):
    rng = np.random.default_rng(0)
    names = ["0.weight", "0.bias", "2.weight"]
    shapes = [(3, 4), (3,), (2, 3)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads_seq = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(6)]

    def triples_from(arrays):
        return [(n, a.copy(), np.zeros_like(a)) for n, a in zip(names, arrays)]

    def steps(opt, triples, grads_list):
        for grads in grads_list:
            for (_, _, g), src in zip(triples, grads):
                g[...] = src
            opt.step()

    ta = triples_from(init)
    opt_a = make(ta)
    steps(opt_a, ta, grads_seq[:3])
    sd = opt_a.state_dict()
    opt_a.lr = opt_a.lr * 0.5  # lr is part of the state: the resumed one must follow
    sd["hyperparams"]["lr"] = opt_a.lr
    snapshot = [p.copy() for _, p, _ in ta]
    steps(opt_a, ta, grads_seq[3:])

    tb = triples_from(snapshot)
    opt_b = make(tb)
    opt_b.load_state_dict(sd)
    steps(opt_b, tb, grads_seq[3:])
    for (_, pa, _), (_, pb, _) in zip(ta, tb):
        np.testing.assert_array_equal(pa, pb)
    # the saved dict is a copy, not a view of live state
    key = next(k for k, v in sd["state"]["0.weight"].items() if isinstance(v, np.ndarray))
    assert not np.shares_memory(sd["state"]["0.weight"][key], opt_a.state["0.weight"][key])


def test_bad_arguments_raise():
    t = make_quadratic()
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(t, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(t, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        SGD(t, lr=-0.1)
    with pytest.raises(ValueError, match="learning rate"):
        Adam(t, lr=-1e-3)
    with pytest.raises(ValueError, match="momentum"):
        SGD(t, lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="weight_decay"):
        SGD(t, lr=0.1, weight_decay=-1)
    with pytest.raises(ValueError, match="betas"):
        Adam(t, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps"):
        AdamW(t, eps=-1.0)
    opt = SGD(t, lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        opt.lr = -0.01
    with pytest.raises(ValueError, match="learning rate"):
        opt.lr = float("nan")
    assert opt.lr == 0.1
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="twice"):
        SGD(t + t, lr=0.1)
    with pytest.raises(ValueError, match="shape"):
        SGD([("w", np.zeros(3, np.float32), np.zeros(4, np.float32))], lr=0.1)
    with pytest.raises(TypeError, match="triples"):
        SGD([np.zeros(3, np.float32)], lr=0.1)


def test_load_state_dict_rejects_foreign_state():
    t = make_quadratic()
    sgd = SGD(t, lr=0.1, momentum=0.9)
    run(sgd, t, steps=1)
    with pytest.raises(ValueError, match="'SGD', not 'Adam'"):
        Adam(make_quadratic()).load_state_dict(sgd.state_dict())
    other = SGD([("v", np.zeros(4, np.float32), np.zeros(4, np.float32))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="unknown parameter 'w'"):
        other.load_state_dict(sgd.state_dict())
    wrong = SGD([("w", np.zeros(5, np.float32), np.zeros(5, np.float32))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"\(5,\).*\(4,\)"):
        wrong.load_state_dict(sgd.state_dict())
    bad = sgd.state_dict()
    bad["hyperparams"]["nesterov"], bad["hyperparams"]["momentum"] = True, 0.0
    fresh = SGD(make_quadratic(), lr=0.3, momentum=0.5)
    with pytest.raises(ValueError, match="Nesterov"):
        fresh.load_state_dict(bad)
    assert (fresh.lr, fresh.momentum, fresh.nesterov) == (0.3, 0.5, False)  # rolled back


def test_select_params_freezes_by_prefix_and_pattern():
    def trip(n):
        return (n, np.ones(2, np.float32), np.ones(2, np.float32))
    triples = [trip("0.weight"), trip("0.bias"), trip("10.weight"), trip("1.running")]
    names = lambda ts: [t[0] for t in ts]  # noqa: E731
    assert names(select_params(triples, include="0")) == ["0.weight", "0.bias"]
    assert names(select_params(triples, include="0.")) == ["0.weight", "0.bias"]
    assert names(select_params(triples, exclude="*.bias")) == ["0.weight", "10.weight", "1.running"]
    assert names(select_params(triples, include=["0", "10"], exclude="*.bias")) == ["0.weight", "10.weight"]
    with pytest.raises(ValueError, match="'2'"):
        select_params(triples, exclude="2")
    # frozen parameters do not move
    chosen = select_params(triples, exclude="0")
    SGD(chosen, lr=1.0).step()
    assert np.all(triples[0][1] == 1) and np.all(triples[2][1] == 0)


def test_optimizer_accepts_a_module_like_object():
    class Fake:
        def parameters_and_grads(self):
            return make_quadratic()
    opt = SGD(Fake(), lr=0.1)
    assert [n for n, _, _ in opt.params] == ["w"] and isinstance(opt, Optimizer)
    assert "SGD(1 tensors" in repr(opt)


@pytest.mark.parametrize("make", [
    lambda t: SGD(t, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
    lambda t: SGD(t, lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.1),
    lambda t: Adam(t, weight_decay=0.1),
    lambda t: AdamW(t),
])
def test_steps_make_no_parameter_sized_temporaries(make):
    n = 1 << 20  # 4 MiB of float32
    p = np.ones(n, np.float32)
    g = np.full(n, 0.5, np.float32)
    opt = make([("big", p, g)])
    opt.step()  # the first step allocates state and scratch
    tracemalloc.start()
    try:
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * 4 // 8, f"step allocated {peak} bytes"
    assert math.isfinite(float(p[0])) and p.dtype == np.float32
