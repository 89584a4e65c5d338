"""The selection problem's solver: gradient, monotone objective, 1-opt vertices, the
alpha = 0 closed form, duplicates, the lambda bisection and the exact count."""
import numpy as np
import pytest
import scipy.sparse as sp

from tinyface.select.solver import (fit_lambda, gradient, lipschitz_bound, match_targets, objective,
                                    projected_gradient, lbfgsb, round_to_vertex, solve)


def random_graph(n=120, density=0.08, seed=0):
    """Symmetric non-negative CSR with zero diagonal, weights in (0, 1]."""
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=density, random_state=rng, format="csr")
    w = a.maximum(a.T).tocsr()
    w.setdiag(0)
    w.eliminate_zeros()
    return w, rng.uniform(0, 1, n)


def nonincreasing(history, rel=1e-12):
    h = np.asarray(history)
    slack = rel * max(1.0, np.abs(h).max())
    return bool(np.all(np.diff(h) <= slack))


def test_gradient_matches_central_differences():
    w, u = random_graph(30)
    rng = np.random.default_rng(1)
    s = rng.uniform(0, 1, 30)
    lam = rng.uniform(-0.5, 0.5, 30)
    g = gradient(w, u, 2.5, lam, s)
    eps = 1e-6
    for i in range(30):
        e = np.zeros(30)
        e[i] = eps
        num = (objective(w, u, 2.5, lam, s + e) - objective(w, u, 2.5, lam, s - e)) / (2 * eps)
        assert num == pytest.approx(g[i], rel=1e-6, abs=1e-8)


def test_objective_is_affine_in_each_coordinate():
    # W_ii = 0: f(s + d e_i) = f(s) + g_i(s) d exactly, the basis of the vertex rounding
    w, u = random_graph(25)
    s = np.random.default_rng(2).uniform(0, 1, 25)
    g = gradient(w, u, 3.0, 0.2, s)
    for i in (0, 7, 24):
        e = np.zeros(25)
        e[i] = 0.7
        assert objective(w, u, 3.0, 0.2, s + e) == pytest.approx(
            objective(w, u, 3.0, 0.2, s) + 0.7 * g[i], rel=1e-12, abs=1e-12)


def test_lipschitz_bound_covers_the_spectrum():
    w, _ = random_graph(60)
    assert lipschitz_bound(w, 2.0) >= 2.0 * np.abs(np.linalg.eigvalsh(w.toarray())).max() - 1e-12
    assert lipschitz_bound(sp.csr_matrix((5, 5)), 1.0) == 0.0


@pytest.mark.parametrize("relax", [projected_gradient, lbfgsb])
@pytest.mark.parametrize("alpha", [0.5, 5.0])
def test_relaxation_objective_decreases(relax, alpha):
    w, u = random_graph(200, seed=3)
    s0 = np.random.default_rng(4).uniform(0, 1, 200)
    s, hist = relax(w, u, alpha, 0.1, s0, 1e-8, 300)
    assert len(hist) > 2
    assert nonincreasing(hist) and hist[-1] < hist[0]
    assert s.min() >= 0 and s.max() <= 1
    assert hist[-1] == pytest.approx(objective(w, u, alpha, 0.1, s), rel=1e-10)


def test_projected_gradient_descent_lemma_per_step():
    # with step 1/L each step lowers f by at least L/2 ||s_new - s||^2
    w, u = random_graph(80, seed=5)
    L = lipschitz_bound(w, 3.0)
    s = np.random.default_rng(6).uniform(0, 1, 80)
    for _ in range(20):
        s_new, _ = projected_gradient(w, u, 3.0, 0.0, s, tol=0, max_iter=1)
        drop = objective(w, u, 3.0, 0.0, s) - objective(w, u, 3.0, 0.0, s_new)
        assert drop >= 0.5 * L * np.sum((s_new - s) ** 2) - 1e-12
        s = s_new


def test_rounding_reaches_a_binary_one_opt_point():
    w, u = random_graph(150, seed=7)
    s0 = np.full(150, 0.5)
    order = np.random.default_rng(0).permutation(150)
    s, hist = round_to_vertex(w, u, 4.0, 0.2, s0, order)
    assert set(np.unique(s)) <= {0.0, 1.0}
    assert nonincreasing([objective(w, u, 4.0, 0.2, s0)] + hist)
    g = gradient(w, u, 4.0, 0.2, s)
    assert np.all(g[s == 1] <= 1e-12) and np.all(g[s == 0] >= -1e-12)   # no flip helps


def test_solve_history_is_monotone_through_both_stages():
    w, u = random_graph(300, seed=8)
    order = np.random.default_rng(0).permutation(300)
    sol = solve(w, u, 2.0, 0.3, np.full(300, 0.5), order)
    assert nonincreasing(sol.history) and sol.history[-1] < sol.history[0]
    assert sol.history[-1] == pytest.approx(objective(w, u, 2.0, 0.3, sol.s), rel=1e-10)
    assert sol.relax_iters >= 1 and sol.sweeps >= 1


def test_alpha_zero_selects_exactly_the_top_u():
    w, u = random_graph(500, seed=9)
    for m in (1, 37, 250, 499, 500):
        sol = fit_lambda(w, u, 0.0, [m])
        assert sol.converged and sol.counts[0] == m
        mask = match_targets(w, u, 0.0, sol.lam[0], sol.s, [m])
        assert set(np.flatnonzero(mask)) == set(np.argsort(-u)[:m])


def test_large_alpha_never_keeps_both_duplicates():
    n = 200
    w, u = random_graph(n, density=0.02, seed=10)
    w = w.multiply(0.05).tolil()                          # weak background redundancy
    pairs = [(2 * i, 2 * i + 1) for i in range(20)]
    for i, j in pairs:                                    # exact duplicates: W_ij = 1
        w[i, j] = w[j, i] = 1.0
        u[j] = u[i]
    w = w.tocsr()
    for ratio in (0.2, 0.5, 0.7):
        m = int(round(ratio * n))
        sol = fit_lambda(w, u, 50.0, [m])
        mask = match_targets(w, u, 50.0, sol.lam[0], sol.s, [m])
        assert mask.sum() == m
        assert not any(mask[i] and mask[j] for i, j in pairs)


def test_bisection_hits_the_ratio_within_one_percent():
    w, u = random_graph(1000, density=0.01, seed=11)
    for m in (100, 500, 900):
        sol = fit_lambda(w, u, 1.0, [m], tol=0.01)
        assert sol.converged
        assert abs(sol.counts[0] - m) <= 0.01 * m
        assert sol.steps == len(sol.trace)


def test_per_group_lambdas_and_exact_counts():
    w, u = random_graph(600, density=0.02, seed=12)
    groups = np.random.default_rng(0).integers(0, 6, 600)
    sizes = np.bincount(groups)
    targets = np.maximum(1, np.round(0.3 * sizes)).astype(int)
    sol = fit_lambda(w, u, 1.0, targets, groups, tol=0.01)
    assert sol.lam.shape == (6,)
    mask = match_targets(w, u, 1.0, sol.lam[groups], sol.s, targets, groups)
    np.testing.assert_array_equal(np.bincount(groups, weights=mask, minlength=6), targets)


def test_same_seed_same_answer():
    w, u = random_graph(400, seed=13)
    a = fit_lambda(w, u, 2.0, [150], seed=3)
    b = fit_lambda(w, u, 2.0, [150], seed=3)
    np.testing.assert_array_equal(a.s, b.s)
    assert a.history == b.history and np.array_equal(a.lam, b.lam)


def test_unknown_method_is_an_error():
    w, u = random_graph(10)
    with pytest.raises(ValueError, match="method"):
        solve(w, u, 1.0, 0.0, np.zeros(10), np.arange(10), method="newton")


def test_swaps_only_lower_the_objective_at_the_exact_count():
    w, u = random_graph(300, density=0.05, seed=14)
    w = w.multiply(3.0).tocsr()                           # strong redundancy: swaps matter
    s = (np.random.default_rng(0).uniform(size=300) < 0.5).astype(float)
    f_of = lambda mask: objective(w, u, 2.0, 0.0, mask.astype(float))   # noqa: E731
    counted = match_targets(w, u, 2.0, 0.0, s, [120], max_swaps=0)
    swapped, (changes, swaps) = match_targets(w, u, 2.0, 0.0, s, [120], return_stats=True)
    assert counted.sum() == swapped.sum() == 120 and swaps > 0
    assert f_of(swapped) < f_of(counted)
    g = gradient(w, u, 2.0, 0.0, swapped.astype(float))
    assert g[~swapped].min() >= g[swapped].max() - 2.0 * w.max() - 1e-12   # no clear gain left
