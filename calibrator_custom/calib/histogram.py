"""Exactly mergeable histograms on a power-of-two grid aligned at 0.

A histogram is ``(k, i0, counts)``: bins of width ``w = 2**k``, bin ``i`` covering ``[i*w, (i+1)*w)``,
and int64 ``counts`` of bins ``i0 .. i0 + len(counts) - 1`` (at most ``num_bins``). A value ``x`` falls
in bin ``floor(x / w)``. The histogram also keeps the exact min and max of the values it holds.

Why merging is exact and order-independent
------------------------------------------
Let ``count_k(lo, hi) = floor(hi / 2**k) - floor(lo / 2**k) + 1`` (bins needed at width ``2**k``) and

    W(lo, hi) = min { k >= k_floor(m) : count_k(lo, hi) <= N },   m = max(|lo|, |hi|)

with ``k_floor(m) = max(MIN_EXPONENT, e(m) - INDEX_BITS)`` (``m < 2**e(m)``; keeps every bin index
below ``2**INDEX_BITS``). Every histogram here, whatever way it was built, has ``k = W(min, max)`` of
the values it holds and its counts span exactly ``floor(min/w) .. floor(max/w)`` ("tight"). So the
result is a function of the multiset of values only:

1. Coarsening is exact: ``floor(x / 2w) = floor(floor(x / w) / 2)``, so merging bin pairs of a width-``w``
   histogram gives precisely the histogram of the same values binned at ``2w``.
2. ``count_k`` does not grow with ``k`` (by 1., the bin range at ``2w`` is the halved range at ``w``),
   so the feasible ``k`` form an up-set ``{k >= W}``. ``count_k`` and ``k_floor`` only grow when
   ``[lo, hi]`` grows, so ``W`` is monotone: ``[lo, hi] ⊆ [lo', hi']  =>  W(lo, hi) <= W(lo', hi')``.
3. ``from_values`` bins directly at ``W`` of the batch. ``merge(a, b)`` takes ``k = W`` of the union
   range, which is ``>= k_a, k_b`` by 2., coarsens both exactly (1.) and adds the counts; the union's
   bins are tight because its min and max come from ``a`` or ``b``. ``add_finite`` (streaming) is the
   same merge with the new values binned directly at the union's ``W``, which 1. makes identical.

Hence a single pass, a stream of batches and any merge tree of shards all give the histogram of the
values binned at ``W(global min, global max)``: identical bit for bit, in any order or partition.
Non-finite values are never binned (callers count them separately).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..errors import CalibratorError

#: default maximum number of bins of one histogram
DEFAULT_NUM_BINS = 2048
#: bin indices stay below 2**INDEX_BITS in magnitude: float32 resolution, exact in float32 arithmetic
INDEX_BITS = 24
#: narrowest bin ever used (2**-160 is below float32's smallest subnormal, 2**-149)
MIN_EXPONENT = -160

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


class StatsError(CalibratorError):
    """Calibration statistics are invalid, inconsistent, or cannot be merged, saved or loaded."""


def check_num_bins(num_bins: int) -> int:
    """``num_bins`` as an int, or StatsError unless it is an integer >= 2."""
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 2:
        raise StatsError(f"num_bins must be an integer >= 2 (default {DEFAULT_NUM_BINS}), got {num_bins!r}")
    return int(num_bins)


def _floor_scaled(x: float, k: int) -> int:
    """floor(x / 2**k) for a finite float x, exact (ldexp is exact unless it underflows to -0.0)."""
    r = math.floor(math.ldexp(x, -k))
    return -1 if r == 0 and x < 0 else r


def exponent_floor(lo: float, hi: float) -> int:
    """k_floor(m) = max(MIN_EXPONENT, e - INDEX_BITS) where m = max(|lo|, |hi|) < 2**e."""
    m = max(abs(lo), abs(hi))
    if m == 0:
        return MIN_EXPONENT
    return max(MIN_EXPONENT, math.frexp(m)[1] - INDEX_BITS)


def bins_needed(lo: float, hi: float, k: int) -> int:
    """count_k(lo, hi) = floor(hi / 2**k) - floor(lo / 2**k) + 1."""
    return _floor_scaled(hi, k) - _floor_scaled(lo, k) + 1


def exponent_for(lo: float, hi: float, num_bins: int) -> int:
    """W(lo, hi): smallest k >= k_floor(max(|lo|, |hi|)) with count_k(lo, hi) <= num_bins (finite lo <= hi)."""
    k_min = exponent_floor(lo, hi)
    span = hi / 2 - lo / 2  # halves: hi - lo may overflow float64
    k = k_min if span == 0 else max(k_min, math.frexp(span)[1] + 1 - (num_bins.bit_length() - 1))
    # count_k is non-increasing in k (module docstring), so walk to the smallest feasible k.
    while k > k_min and bins_needed(lo, hi, k - 1) <= num_bins:
        k -= 1
    while bins_needed(lo, hi, k) > num_bins:
        k += 1
    return k


def bin_indices(values: np.ndarray, k: int, offset: int = 0) -> I64:
    """floor(x / 2**k) - offset for every (finite) x, as int64; exact when |x / 2**k| < 2**INDEX_BITS
    and |offset| <= 2**INDEX_BITS (as for every histogram here).

    float16/float32 values with -126 <= k <= 0 are scaled in float32 (a multiplication by a power of
    two >= 1 is exact; subtracting the integer offset from an integer below 2**24 is exact); all others
    in float64, where float32 data cannot underflow and float64 data that underflows to -0.0 is put
    back in bin -1.
    """
    v = np.asarray(values).ravel()
    if v.dtype in (np.float16, np.float32) and -126 <= k <= 0:
        y = np.multiply(v, np.float32(math.ldexp(1.0, -k)), dtype=np.float32)
    else:
        y = np.multiply(v, math.ldexp(1.0, -k), dtype=np.float64)
        if k > 0:
            y[(y == 0) & (v < 0)] = -0.5
    np.floor(y, out=y)
    if offset:
        y -= offset
    return y.astype(np.int64)


@dataclass(frozen=True, eq=False)
class Histogram:
    """Counts of finite values on the grid ``[i * 2**exponent, (i + 1) * 2**exponent)``, i >= first_bin.

    Build with :meth:`from_values` or :meth:`empty`; combine with :meth:`merge` (exact, associative,
    commutative). ``min_value``/``max_value`` are the exact extremes of the counted values (+inf/-inf
    when empty).
    """

    num_bins: int
    exponent: int = 0
    first_bin: int = 0
    counts: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    min_value: float = math.inf
    max_value: float = -math.inf

    def __post_init__(self) -> None:
        object.__setattr__(self, "exponent", int(self.exponent))
        object.__setattr__(self, "first_bin", int(self.first_bin))  # Python int: >> is floor for any shift
        counts = self.counts
        if not isinstance(counts, np.ndarray) or counts.ndim != 1 or counts.dtype != np.int64:
            raise StatsError(f"histogram counts must be a 1-D int64 array, got {counts!r:.80}")
        if len(counts) > self.num_bins:
            raise StatsError(f"histogram has {len(counts)} bins, more than num_bins={self.num_bins}")
        counts.setflags(write=False)  # shared between merged histograms: never mutate

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, num_bins: int = DEFAULT_NUM_BINS) -> Histogram:
        """The histogram of no values (the identity of :meth:`merge`)."""
        return cls(check_num_bins(num_bins))

    @classmethod
    def from_values(cls, values: np.ndarray, num_bins: int = DEFAULT_NUM_BINS) -> Histogram:
        """Histogram of the finite entries of ``values`` (NaN and +-inf are ignored), at width W(min, max)."""
        num_bins = check_num_bins(num_bins)
        v = np.asarray(values)
        if v.dtype.kind != "f":
            v = v.astype(np.float64)
        if v.size == 0:
            return cls(num_bins)
        lo, hi = float(v.min()), float(v.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            v = v[np.isfinite(v)]
            if v.size == 0:
                return cls(num_bins)
            lo, hi = float(v.min()), float(v.max())
        return cls.from_finite(v, lo, hi, num_bins)

    @classmethod
    def from_finite(cls, values: np.ndarray, lo: float, hi: float, num_bins: int) -> Histogram:
        """Histogram of ``values``, which must all be finite with exact min ``lo`` and max ``hi``."""
        return cls(check_num_bins(num_bins)).add_finite(values, lo, hi)

    def add_finite(self, values: np.ndarray, lo: float, hi: float) -> Histogram:
        """``self.merge(from_finite(values, lo, hi))``, binning ``values`` directly at the union's width.

        Same result as the merge (both are the union's histogram at W(union)), without coarsening the
        new values' own histogram: the streaming fast path.
        """
        if values.size == 0:
            return self
        lo, hi = float(lo) + 0.0, float(hi) + 0.0  # -0.0 -> +0.0 so the stored extremes are canonical
        if not self.is_empty:
            lo, hi = min(lo, self.min_value), max(hi, self.max_value)
        k = exponent_for(lo, hi, self.num_bins)
        i0 = _floor_scaled(lo, k)
        n = _floor_scaled(hi, k) - i0 + 1
        idx = bin_indices(values, k, i0)
        counts = np.bincount(idx, minlength=n).astype(np.int64, copy=False)
        if not self.is_empty:
            base = self.coarsen(k)
            start = base.first_bin - i0
            counts[start:start + len(base.counts)] += base.counts
        return Histogram(self.num_bins, k, i0, counts, lo, hi)

    # ------------------------------------------------------------------ properties
    @property
    def is_empty(self) -> bool:
        return len(self.counts) == 0

    @property
    def width(self) -> float:
        """Bin width 2**exponent."""
        return math.ldexp(1.0, self.exponent)

    @property
    def total(self) -> int:
        """Number of values counted."""
        return int(self.counts.sum())

    def edges(self) -> F64:
        """The len(counts) + 1 bin edges, (first_bin + j) * 2**exponent, as float64."""
        return np.ldexp(np.arange(self.first_bin, self.first_bin + len(self.counts) + 1, dtype=np.float64),
                        self.exponent)

    def centers(self) -> F64:
        """Bin centres, (first_bin + j + 1/2) * 2**exponent, as float64."""
        return np.ldexp(np.arange(self.first_bin, self.first_bin + len(self.counts), dtype=np.float64) + 0.5,
                        self.exponent)

    # ------------------------------------------------------------------ combination
    def coarsen(self, exponent: int) -> Histogram:
        """The same values at width 2**exponent (>= the current one): bin i goes to floor(i / 2**d)."""
        d = exponent - self.exponent
        if d < 0:
            raise StatsError(f"cannot refine a histogram from 2**{self.exponent} to 2**{exponent}")
        if d == 0 or self.is_empty:
            return self
        n = len(self.counts)
        first, last = self.first_bin >> d, (self.first_bin + n - 1) >> d  # Python ints: floor for any d
        if d < n.bit_length():
            # 2**d < 2n: lay the bins out from the new first bin's start and sum rows of 2**d.
            factor = 1 << d
            pad = self.first_bin - (first << d)
            buf = np.zeros((last - first + 1) * factor, np.int64)
            buf[pad:pad + n] = self.counts
            counts = buf.reshape(-1, factor).sum(axis=1)
        elif first == last:
            counts = np.array([self.counts.sum()], np.int64)
        else:
            # 2**d >= n + 1 old bins span at most two new ones; the second starts at old bin (last << d).
            split = (last << d) - self.first_bin
            counts = np.array([self.counts[:split].sum(), self.counts[split:].sum()], np.int64)
        return Histogram(self.num_bins, exponent, first, counts, self.min_value, self.max_value)

    def merge(self, other: Histogram) -> Histogram:
        """Histogram of both multisets of values: exact, associative and commutative (module docstring)."""
        if self.num_bins != other.num_bins:
            raise StatsError(f"cannot merge histograms with num_bins {self.num_bins} and {other.num_bins}")
        if other.is_empty:
            return self
        if self.is_empty:
            return other
        lo, hi = min(self.min_value, other.min_value), max(self.max_value, other.max_value)
        k = exponent_for(lo, hi, self.num_bins)
        a, b = self.coarsen(k), other.coarsen(k)
        i0 = min(a.first_bin, b.first_bin)
        counts = np.zeros(max(a.first_bin + len(a.counts), b.first_bin + len(b.counts)) - i0, np.int64)
        counts[a.first_bin - i0:a.first_bin - i0 + len(a.counts)] += a.counts
        counts[b.first_bin - i0:b.first_bin - i0 + len(b.counts)] += b.counts
        return Histogram(self.num_bins, k, i0, counts, lo, hi)

    # ------------------------------------------------------------------ derived
    def percentile(self, q: float | np.ndarray) -> float | F64:
        """Value v with q % of the counted values at or below it: linear inside a bin, clipped to [min, max].

        ``q`` in [0, 100] (scalar or array); q = 0 gives the min, q = 100 the max.
        """
        qa = np.asarray(q, dtype=np.float64)
        if np.isnan(qa).any() or (qa < 0).any() or (qa > 100).any():
            raise StatsError(f"percentile q must lie in [0, 100], got {q!r}")
        if self.is_empty:
            raise StatsError("percentile of an empty histogram (no finite values were seen)")
        cum = np.cumsum(self.counts)
        target = qa / 100.0 * float(cum[-1])
        j = np.minimum(np.searchsorted(cum, target, side="left"), len(cum) - 1)
        before = (cum[j] - self.counts[j]).astype(np.float64)
        frac = (target - before) / self.counts[j]
        v = np.ldexp(self.first_bin + j + frac, self.exponent)
        v = np.clip(v, self.min_value, self.max_value)
        return float(v) if v.ndim == 0 else v

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (self.num_bins == other.num_bins and self.exponent == other.exponent
                and self.first_bin == other.first_bin and self.min_value == other.min_value
                and self.max_value == other.max_value and np.array_equal(self.counts, other.counts))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"Histogram(num_bins={self.num_bins}, width=2**{self.exponent}, first_bin={self.first_bin}, "
                f"bins={len(self.counts)}, total={self.total}, range=[{self.min_value}, {self.max_value}])")
