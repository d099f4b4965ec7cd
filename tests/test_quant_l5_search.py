"""L5's 16-bit choice (quant.l5_search) against brute force and hand-computed cases."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from calibrator_custom.quant import l5_search as ls


def _brute_knapsack(values, costs, capacity) -> float:
    best = 0.0
    for r in range(len(values) + 1):
        for sub in itertools.combinations(range(len(values)), r):
            if sum(costs[k] for k in sub) <= capacity:
                best = max(best, sum(values[k] for k in sub))
    return best


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.tuples(st.floats(-1.0, 10.0, allow_nan=False), st.integers(0, 12)), max_size=8),
       capacity=st.integers(0, 30))
def test_knapsack_matches_brute_force(items, capacity):
    values = [v for v, _ in items]
    costs = [c for _, c in items]
    got = ls.knapsack(values, costs, capacity)
    assert isinstance(got, frozenset)
    assert all(0 <= k < len(items) for k in got)
    assert sum(costs[k] for k in got) <= capacity
    assert all(values[k] > 0 for k in got)
    assert sum(values[k] for k in got) == pytest.approx(_brute_knapsack(values, costs, capacity), abs=1e-9)


def test_knapsack_hand_case_prefers_value_per_cost_only_when_it_fits():
    # cheapest-first would take items 0 and 1 (value 2); the optimum within 10 is item 2 (value 5)
    assert ls.knapsack([1.0, 1.0, 5.0], [3, 3, 10], 10) == frozenset({2})
    assert ls.knapsack([1.0, 1.0, 5.0], [3, 3, 10], 15) == frozenset({0, 2})
    assert ls.knapsack([1.0, 1.0, 5.0], [3, 3, 10], 16) == frozenset({0, 1, 2})
    with pytest.raises(ValueError):
        ls.knapsack([1.0], [1, 2], 3)


@settings(max_examples=100, deadline=None)
@given(costs=st.lists(st.integers(0, 10**9), min_size=1, max_size=10), budget=st.floats(1.0, 5e9))
def test_scaled_costs_keep_every_choice_feasible(costs, budget):
    icost, cap = ls.scaled_costs(costs, budget)
    assert icost.dtype == np.int64 and icost.shape == (len(costs),)
    # any set within the integer capacity is within the real budget
    for r in range(1, min(len(costs), 4) + 1):
        for sub in itertools.combinations(range(len(costs)), r):
            if sum(icost[k] for k in sub) <= cap:
                assert sum(costs[k] for k in sub) <= budget


def _rows(rng, n, m):
    return [rng.normal(size=(n, m)) * rng.uniform(0.1, 2.0, size=(n, 1)) for _ in range(2)]


def test_predicted_nsr_is_the_norm_of_the_summed_errors():
    rng = np.random.default_rng(1)
    rows = _rows(rng, 5, 40)
    signal = np.array([100.0, 50.0])
    g = ls.gram(rows)
    assert g.shape == (2, 5, 5)
    eight = np.array([True, False, True, True, False])
    want = [np.sum(r[eight].sum(axis=0) ** 2) / s for r, s in zip(rows, signal)]
    np.testing.assert_allclose(ls.predicted_nsr(g, signal, eight), want, rtol=1e-12)
    d = ls.diagonal(g)
    want_d = [np.sum(r[eight] ** 2) / s for r, s in zip(rows, signal)]
    np.testing.assert_allclose(ls.predicted_nsr(d, signal, eight), want_d, rtol=1e-12)


def test_sensitivity_is_the_relative_drop_of_the_worst_output():
    rng = np.random.default_rng(2)
    rows = _rows(rng, 4, 30)
    signal = np.array([10.0, 20.0])
    g = ls.gram(rows)
    full = ls.predicted_nsr(g, signal, np.ones(4, bool)).max()
    for k in range(4):
        x = np.ones(4, bool)
        x[k] = False
        want = (full - ls.predicted_nsr(g, signal, x).max()) / full
        assert ls.sensitivity(g, signal)[k] == pytest.approx(want, rel=1e-9, abs=1e-15)
    assert np.all(ls.sensitivity(np.zeros((1, 3, 3)), np.ones(1)) == 0)


def _brute_choice(g, signal, costs, budget, eligible) -> float:
    n = g.shape[1]
    best = np.inf
    for r in range(n + 1):
        for sub in itertools.combinations([k for k in range(n) if eligible[k]], r):
            if sum(costs[k] for k in sub) <= budget:
                x = np.ones(n, bool)
                x[list(sub)] = False
                best = min(best, ls.predicted_nsr(g, signal, x).max())
    return best


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 7), share=st.floats(0.0, 1.0), diag=st.booleans())
def test_choose_upgrades_feasible_and_near_the_brute_force_optimum(seed, n, share, diag):
    rng = np.random.default_rng(seed)
    rows = _rows(rng, n, 12)
    g = ls.gram(rows)
    if diag:
        g = ls.diagonal(g)
    signal = rng.uniform(1.0, 100.0, size=2)
    costs = rng.integers(1, 100, size=n).astype(float)
    budget = share * costs.sum()
    eligible = rng.random(n) < 0.8
    got = ls.choose_upgrades(g, signal, costs, budget, eligible)
    assert isinstance(got, frozenset)
    assert sum(costs[k] for k in got) <= budget + 1e-9
    assert all(eligible[k] for k in got)
    x = np.ones(n, bool)
    x[list(got)] = False
    score = ls.predicted_nsr(g, signal, x).max()
    assert score <= ls.predicted_nsr(g, signal, np.ones(n, bool)).max() + 1e-12  # never worse than none
    opt = _brute_choice(g, signal, costs, budget, eligible)
    if diag and len(signal) and n <= 7:
        # independent errors, one output dominating or not: the searches reach the optimum's neighbourhood
        assert score <= opt * 1.5 + 1e-12


def test_choose_upgrades_single_output_independent_errors_is_the_knapsack_optimum():
    # one output, independent errors: minimising the worst nsr is exactly a knapsack on the powers
    power = np.array([5.0, 4.0, 4.0, 1.0])
    g = np.diag(power)[None]
    costs = np.array([10.0, 5.0, 5.0, 1.0])
    got = ls.choose_upgrades(g, np.ones(1), costs, 10.0)
    assert got == frozenset({1, 2})  # 8 removed for 10 MACs; the biggest single one removes only 5
    assert ls.choose_upgrades(g, np.ones(1), costs, 0.0) == frozenset()


def test_independent_is_the_diagonal_of_the_gram_of_orthogonal_errors():
    rng = np.random.default_rng(4)
    rows = _rows(rng, 4, 25)
    power = np.stack([np.sum(r ** 2, axis=1) for r in rows], axis=1)  # [convs, outputs]
    g = ls.independent(power)
    assert g.shape == (2, 4, 4)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, ls.diagonal(ls.gram(rows)), rtol=1e-12)
    eight = np.array([True, True, False, True])
    np.testing.assert_allclose(ls.predicted_nsr(g, np.ones(2), eight), power[eight].sum(axis=0), rtol=1e-12)


def test_output_sensitivity_is_the_largest_relative_drop_of_any_output():
    """Per conv, the brute-force maximum over outputs of (nsr_all - nsr_without_k) / nsr_all; an output
    with no noise is skipped; a conv that only the quieter output depends on still counts."""
    rng = np.random.default_rng(4)
    rows = _rows(rng, 4, 30)
    signal = np.array([10.0, 20.0])
    g = ls.gram(rows)
    got = ls.output_sensitivity(g, signal)
    assert got.shape == (4,) and got.dtype == np.float64
    full = ls.predicted_nsr(g, signal, np.ones(4, bool))
    for k in range(4):
        x = np.ones(4, bool)
        x[k] = False
        after = ls.predicted_nsr(g, signal, x)
        want = max((full[o] - after[o]) / full[o] for o in range(2))
        assert got[k] == pytest.approx(want, rel=1e-9, abs=1e-15)
    # independent noises: conv 0 feeds only output 0 (the noisiest), conv 1 only output 1
    g2 = np.zeros((2, 2, 2))
    g2[0, 0, 0], g2[1, 1, 1] = 9.0, 1.0
    sig = np.array([1.0, 1.0])
    np.testing.assert_allclose(ls.output_sensitivity(g2, sig), [1.0, 1.0])
    np.testing.assert_allclose(ls.sensitivity(g2, sig), [1.0 - 1.0 / 9.0, 0.0])
    g3 = np.zeros((2, 2, 2))
    g3[0, 0, 0] = 4.0  # output 1 has no noise
    np.testing.assert_allclose(ls.output_sensitivity(g3, sig), [1.0, 0.0])
    assert np.all(ls.output_sensitivity(np.zeros((1, 3, 3)), np.ones(1)) == 0)
    assert ls.output_sensitivity(np.zeros((2, 0, 0)), np.ones(2)).shape == (0,)


def _naive_leave_one_out(lo, hi):
    n = lo.shape[0]
    out_lo = np.full(lo.shape, np.inf)
    out_hi = np.full(hi.shape, -np.inf)
    for k in range(n):
        for m in range(n):
            if m != k:
                out_lo[k] = np.minimum(out_lo[k], lo[m])
                out_hi[k] = np.maximum(out_hi[k], hi[m])
    return out_lo, out_hi


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_leave_one_out_matches_a_loop_over_the_other_samples(n):
    rng = np.random.default_rng(n)
    lo = rng.normal(size=(n, 5)).round(1)  # ties between samples included
    hi = lo + rng.uniform(0.0, 2.0, size=(n, 5)).round(1)
    got_lo, got_hi = ls.leave_one_out(lo, hi)
    want_lo, want_hi = _naive_leave_one_out(lo, hi)
    assert got_lo.shape == lo.shape and got_hi.shape == hi.shape
    np.testing.assert_array_equal(got_lo, want_lo)
    np.testing.assert_array_equal(got_hi, want_hi)


def test_leave_one_out_hand_case():
    # channel 0: sample 1 holds the minimum (0), so without it the minimum is sample 0's 1;
    # channel 1: sample 2 holds the maximum (9), without it sample 0's 4
    lo = np.array([[1.0, -2.0], [0.0, -1.0], [3.0, -3.0]])
    hi = np.array([[2.0, 4.0], [5.0, 3.0], [4.0, 9.0]])
    got_lo, got_hi = ls.leave_one_out(lo, hi)
    np.testing.assert_array_equal(got_lo, [[0.0, -3.0], [1.0, -3.0], [0.0, -2.0]])
    np.testing.assert_array_equal(got_hi, [[5.0, 9.0], [4.0, 9.0], [5.0, 4.0]])
    with pytest.raises(ValueError):
        ls.leave_one_out(lo, hi[:, :1])
