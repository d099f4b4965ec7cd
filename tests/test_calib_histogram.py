"""Histograms on the power-of-two grid: exact binning, minimal width, exact order-free merging."""
from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from calibrator_custom.calib.histogram import (DEFAULT_NUM_BINS, MIN_EXPONENT, Histogram, StatsError,
                                                bin_indices, exponent_for)

f32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
f32_wide = st.one_of(f32, st.floats(-4.0, 4.0, width=32), st.sampled_from([0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38]))
f64 = st.floats(allow_nan=False, allow_infinity=False)
small_bins = st.sampled_from([2, 3, 4, 7, 16, 64, 2048])


def exact_bin(x: float, k: int) -> int:
    """floor(x / 2**k) in exact rational arithmetic (independent of the float code under test)."""
    return math.floor(Fraction(x) / Fraction(2) ** k)


def reference(values, num_bins: int) -> tuple[int, int, list[int]]:
    """(k, first bin, counts) from the definition: smallest feasible k on the grid, exact counting."""
    xs = [float(v) for v in values]
    lo, hi = min(xs), max(xs)
    m = max(abs(lo), abs(hi))
    k_floor = MIN_EXPONENT if m == 0 else max(MIN_EXPONENT, math.frexp(m)[1] - 24)
    k = k_floor
    while exact_bin(hi, k) - exact_bin(lo, k) + 1 > num_bins:
        k += 1
    bins = Counter(exact_bin(x, k) for x in xs)
    first = exact_bin(lo, k)
    return k, first, [bins.get(first + j, 0) for j in range(exact_bin(hi, k) - first + 1)]


def check_against_reference(h: Histogram, values, num_bins: int) -> None:
    assert h.counts.dtype == np.int64 and h.counts.ndim == 1
    assert 1 <= len(h.counts) <= num_bins
    k, first, counts = reference(values, num_bins)
    assert (h.exponent, h.first_bin) == (k, first)
    assert h.counts.tolist() == counts


# ------------------------------------------------------------------ binning and width
@given(st.lists(f32_wide, min_size=1, max_size=60), small_bins)
def test_from_values_matches_exact_definition(values, num_bins):
    arr = np.array(values, np.float32)
    check_against_reference(Histogram.from_values(arr, num_bins), arr, num_bins)


@given(st.lists(f64, min_size=1, max_size=40), small_bins)
def test_float64_values_match_exact_definition(values, num_bins):
    arr = np.array(values, np.float64)
    check_against_reference(Histogram.from_values(arr, num_bins), arr, num_bins)


@given(st.lists(f32_wide, min_size=1, max_size=60), small_bins)
def test_every_value_lies_in_its_bin(values, num_bins):
    arr = np.array(values, np.float32)
    h = Histogram.from_values(arr, num_bins)
    edges = h.edges()
    assert edges.shape == (len(h.counts) + 1,) and edges.dtype == np.float64
    j = bin_indices(arr, h.exponent) - h.first_bin
    assert ((0 <= j) & (j < len(h.counts))).all()
    for x, jj in zip(arr.tolist(), j.tolist()):
        assert Fraction(edges[jj]) <= Fraction(x) < Fraction(edges[jj + 1])
        assert edges[jj] == math.ldexp(h.first_bin + jj, h.exponent)


@given(st.lists(f32_wide, min_size=1, max_size=60), small_bins)
def test_width_is_the_smallest_that_fits(values, num_bins):
    arr = np.array(values, np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    k = exponent_for(lo, hi, num_bins)
    assert exact_bin(hi, k) - exact_bin(lo, k) + 1 <= num_bins
    m = max(abs(lo), abs(hi))
    k_floor = MIN_EXPONENT if m == 0 else max(MIN_EXPONENT, math.frexp(m)[1] - 24)
    assert k == k_floor or exact_bin(hi, k - 1) - exact_bin(lo, k - 1) + 1 > num_bins


@given(st.lists(st.one_of(f32, st.sampled_from([math.nan, math.inf, -math.inf])), max_size=60))
def test_counts_sum_to_number_of_finite_values(values):
    arr = np.array(values, np.float32)
    h = Histogram.from_values(arr)
    finite = arr[np.isfinite(arr)]
    assert h.total == finite.size
    if finite.size:
        assert (h.min_value, h.max_value) == (float(finite.min()), float(finite.max()))
    else:
        assert h.is_empty and h == Histogram.empty()


def test_constant_and_zero_tensors():
    z = Histogram.from_values(np.zeros((4, 5), np.float32))
    assert z.counts.tolist() == [20] and z.first_bin == 0 and z.exponent == MIN_EXPONENT
    assert (z.min_value, z.max_value) == (0.0, 0.0)
    c = Histogram.from_values(np.full(7, -3.25, np.float32))
    assert c.counts.tolist() == [7]
    assert c.edges()[0] <= -3.25 < c.edges()[1]
    assert c.percentile(50) == -3.25  # clipped to [min, max]
    # -0.0 is stored as +0.0, so results do not depend on which zero came first
    assert Histogram.from_values(np.array([-0.0, 0.0])) == Histogram.from_values(np.array([0.0, -0.0]))
    assert math.copysign(1, Histogram.from_values(np.array([-0.0])).min_value) == 1


def test_hand_computed_histogram():
    # values in [-1, 1) need 2/w <= 4 bins -> w = 2**-1; bins [-1,-.5) [-.5,0) [0,.5) [.5,1)
    h = Histogram.from_values(np.array([-1.0, -0.25, 0.0, 0.1, 0.75, 0.5], np.float32), num_bins=4)
    assert (h.exponent, h.first_bin) == (-1, -2)
    assert h.counts.tolist() == [1, 1, 2, 2]
    np.testing.assert_array_equal(h.edges(), [-1.0, -0.5, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(h.centers(), [-0.75, -0.25, 0.25, 0.75])
    # percentile: 50 % of 6 values = 3 -> inside bin [0, .5) holding 2 values, half-way -> 0.25
    assert h.percentile(50) == 0.25
    assert h.percentile(0) == -1.0 and h.percentile(100) == 0.75


def test_percentile_is_monotone_and_close_to_numpy():
    x = np.random.default_rng(0).standard_normal(100_000).astype(np.float32)
    h = Histogram.from_values(x)
    qs = np.linspace(0, 100, 41)
    p = h.percentile(qs)
    assert p.shape == qs.shape and p.dtype == np.float64
    assert (np.diff(p) >= 0).all()
    np.testing.assert_allclose(p, np.percentile(x, qs), atol=2 * h.width)


def test_bad_arguments_raise_stats_error():
    with pytest.raises(StatsError, match="num_bins"):
        Histogram.from_values(np.ones(3), num_bins=1)
    with pytest.raises(StatsError, match=r"\[0, 100\]"):
        Histogram.from_values(np.ones(3)).percentile(101)
    with pytest.raises(StatsError, match="empty"):
        Histogram.empty().percentile(50)
    with pytest.raises(ValueError):  # StatsError is a ValueError, like the vendor's errors
        Histogram.from_values(np.ones(3)).merge(Histogram.from_values(np.ones(3), num_bins=16))


# ------------------------------------------------------------------ coarsening and merging
@given(st.lists(f32_wide, min_size=1, max_size=40), st.integers(0, 200), small_bins)
def test_coarsen_equals_binning_at_the_coarser_width(values, d, num_bins):
    arr = np.array(values, np.float32)
    h = Histogram.from_values(arr, num_bins)
    c = h.coarsen(h.exponent + d)
    k = h.exponent + d
    bins = Counter(exact_bin(float(x), k) for x in arr)
    first = min(bins)
    assert c.first_bin == first and c.total == h.total
    assert c.counts.tolist() == [bins.get(first + j, 0) for j in range(max(bins) - first + 1)]


@st.composite
def sharded(draw):
    values = draw(st.lists(f32_wide, min_size=1, max_size=80))
    cuts = sorted(draw(st.lists(st.integers(0, len(values)), max_size=6)))
    shards = [values[a:b] for a, b in zip([0] + cuts, cuts + [len(values)])]
    order = draw(st.permutations(range(len(shards))))
    return values, shards, order, draw(small_bins)


@given(sharded())
def test_merging_shards_in_any_order_equals_the_single_pass(case):
    values, shards, order, num_bins = case
    single = Histogram.from_values(np.array(values, np.float32), num_bins)
    parts = [Histogram.from_values(np.array(s, np.float32), num_bins) for s in shards]
    left = Histogram.empty(num_bins)
    for i in order:  # left fold in a random order
        left = left.merge(parts[i])
    assert left == single

    def tree(hs):  # balanced merge tree
        return hs[0] if len(hs) == 1 else tree(hs[: len(hs) // 2]).merge(tree(hs[len(hs) // 2:]))

    assert tree([parts[i] for i in order]) == single
    streamed = Histogram.empty(num_bins)
    for s in shards:  # the collector's fast path: bin each batch at the running width
        arr = np.array(s, np.float32)
        if arr.size:
            streamed = streamed.add_finite(arr, float(arr.min()), float(arr.max()))
    assert streamed == single


@given(st.lists(f32_wide, min_size=1, max_size=30), st.lists(f32_wide, min_size=1, max_size=30),
       st.lists(f32_wide, min_size=1, max_size=30))
def test_merge_is_associative_and_commutative(a, b, c):
    ha, hb, hc = (Histogram.from_values(np.array(v, np.float32), 16) for v in (a, b, c))
    assert ha.merge(hb) == hb.merge(ha)
    assert ha.merge(hb).merge(hc) == ha.merge(hb.merge(hc))
    assert ha.merge(Histogram.empty(16)) == ha


def test_growing_range_while_streaming():
    # starts as a constant, then the range grows by many orders of magnitude in both directions
    batches = [np.zeros(5, np.float32), np.full(3, 1e-20, np.float32), np.array([1e-3, -2.0], np.float32),
               np.array([3e30], np.float32), np.array([-1e-38, 5.0], np.float32)]
    streamed = Histogram.empty()
    for b in batches:
        streamed = streamed.add_finite(b, float(b.min()), float(b.max()))
    allv = np.concatenate(batches)
    assert streamed == Histogram.from_values(allv)
    check_against_reference(streamed, allv, DEFAULT_NUM_BINS)


def test_histograms_are_immutable():
    h = Histogram.from_values(np.arange(10, dtype=np.float32))
    with pytest.raises(ValueError):
        h.counts[0] = 5
