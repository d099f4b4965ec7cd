"""Activation ranges: from min/max (L1, L2) or fitted to the histogram (L3 and up).

The fitted range of a tensor is chosen among candidates from three methods -- percentiles, the
KL-divergence (entropy) threshold and an MSE search -- by the quantization error each candidate
actually causes on that tensor's histogram: ``E = sum_in n * step**2 / 12 + sum_out n * d**2`` where
``step`` is the quantization step the range gives for the tensor's integer type, ``n`` the bin
counts, and ``d`` the distance of a clipped bin centre to the range. The min/max range is always a
candidate, so fitting never does worse than min/max by this measure.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..calib.histogram import Histogram
from ..calib.review import RANGE_LIMIT  # noqa: F401 - re-exported

#: quantization steps a range spans, per integer type (symmetric types leave out the most negative code)
RANGE_STEPS = {"UINT8": 255, "INT8": 254, "INT16": 65534}
PERCENTILES = (99.9, 99.99, 99.999)
MSE_FRACTIONS = tuple(np.round(np.linspace(0.3, 1.0, 36), 4))


@dataclass(frozen=True)
class Range:
    """A real range [lo, hi] (lo <= 0 <= hi) and how it was chosen."""

    lo: float
    hi: float
    method: str = "minmax"
    #: per-channel ranges that replace the statistics' (an imported quant_param's min/max lists)
    channel_lo: tuple[float, ...] | None = None
    channel_hi: tuple[float, ...] | None = None


def covering(lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi] widened to contain 0 (a quantized zero must exist); a degenerate range becomes [-1e-6, 1e-6]."""
    lo, hi = min(0.0, float(lo)), max(0.0, float(hi))
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo <= 0:
        return -1e-6, 1e-6
    return lo, hi


def minmax_range(lo: float, hi: float) -> Range:
    lo, hi = covering(lo, hi)
    return Range(lo, hi, "minmax")


def _step(lo: float, hi: float, qtype: str) -> float:
    if qtype == "UINT8":
        return (hi - lo) / RANGE_STEPS[qtype]
    return 2 * max(-lo, hi) / RANGE_STEPS[qtype]


def quantization_error(hist: Histogram, lo: float, hi: float, qtype: str) -> float:
    """Expected squared error per value of quantizing the histogram's values into [lo, hi] with ``qtype``."""
    if hist.is_empty:
        return 0.0
    if qtype != "UINT8":  # symmetric types use the larger magnitude on both sides
        m = max(-lo, hi)
        lo, hi = -m, m
    c = hist.centers()
    n = hist.counts.astype(np.float64)
    step = _step(lo, hi, qtype)
    clip_d = np.where(c > hi, c - hi, np.where(c < lo, lo - c, 0.0))
    inside = clip_d == 0
    err = np.sum(n[inside]) * step * step / 12 + np.sum(n * clip_d * clip_d)
    return float(err / max(1.0, n.sum()))


def _percentile_candidates(hist: Histogram) -> list[Range]:
    out = []
    for p in PERCENTILES:
        lo = float(hist.percentile(100 - p))
        hi = float(hist.percentile(p))
        lo, hi = covering(lo, hi)
        out.append(Range(lo, hi, f"percentile{p}"))
    return out


def _mse_candidates(hist: Histogram, qtype: str) -> list[Range]:
    """The fraction of the min/max range (``MSE_FRACTIONS``) with the smallest ``quantization_error``
    (all fractions at once: the same sums, row by row, as one call per fraction)."""
    lo0, hi0 = covering(hist.min_value, hist.max_value)
    f = np.asarray(MSE_FRACTIONS, np.float64)[:, None]
    lo, hi = lo0 * f, hi0 * f
    if qtype != "UINT8":
        m = np.maximum(-lo, hi)
        lo, hi = -m, m
    c = hist.centers()[None, :]
    n = hist.counts.astype(np.float64)
    step = (hi - lo) / RANGE_STEPS[qtype]  # both formulas of _step for the (symmetric) range used
    clip_d = np.where(c > hi, c - hi, np.where(c < lo, lo - c, 0.0))
    inside = clip_d == 0
    err = (np.where(inside, n, 0.0).sum(axis=1) * step[:, 0] * step[:, 0] / 12
           + (n * clip_d * clip_d).sum(axis=1)) / max(1.0, n.sum())
    k = int(np.argmin(err)) if not hist.is_empty else 0
    return [Range(lo0 * MSE_FRACTIONS[k], hi0 * MSE_FRACTIONS[k], "mse")]


def _kl_candidate(hist: Histogram, qtype: str) -> list[Range]:
    """The entropy-calibration threshold on |x| (TensorRT's method) over the histogram's magnitude bins."""
    c = hist.centers()
    n = hist.counts.astype(np.float64)
    mags = np.abs(c)
    order = np.argsort(mags, kind="stable")
    mags, n = mags[order], n[order]
    # magnitude histogram on 512 uniform bins
    top = float(mags.max()) if mags.size else 0.0
    if top <= 0 or n.sum() == 0:
        return []
    nb = 512
    hist_m, edges = np.histogram(mags, bins=nb, range=(0, top), weights=n)
    levels = 128 if qtype == "UINT8" else 1024
    nz_m = hist_m > 0
    best = None
    for i in range(levels, nb + 1, 8):
        ref = hist_m[:i].copy()
        ref[i - 1] += hist_m[i:].sum()
        if ref.sum() == 0:
            continue
        # quantize hist_m[:i] into `levels` buckets (np.array_split's chunks: the first i % levels one
        # longer) and expand back, each bucket's mass spread evenly over its non-empty bins
        size, extra = divmod(i, levels)
        sizes = np.full(levels, size)
        sizes[:extra] += 1
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        mass = np.add.reduceat(hist_m[:i], starts)
        count = np.add.reduceat(nz_m[:i].astype(np.int64), starts)
        q = np.where(nz_m[:i], np.repeat(mass / np.maximum(count, 1), sizes), 0.0)
        p = ref / ref.sum()
        qs = q.sum()
        if qs == 0:
            continue
        qn = q / qs
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(qn[mask], 1e-12))))
        if best is None or kl < best[0]:
            best = (kl, float(edges[i]))
    if best is None:
        return []
    t = best[1]
    lo = -t if hist.min_value < 0 else 0.0
    lo, hi = covering(max(lo, hist.min_value), min(t, hist.max_value))
    return [Range(lo, hi, "kl")]


def fitted_range(hist: Histogram, qtype: str) -> Range:
    """The candidate range (min/max, percentiles, KL, MSE) with the smallest quantization error."""
    base = minmax_range(hist.min_value, hist.max_value)
    if hist.is_empty:
        return base
    cands = [base] + _percentile_candidates(hist) + _mse_candidates(hist, qtype) + _kl_candidate(hist, qtype)
    scored = [(quantization_error(hist, r.lo, r.hi, qtype), k, r) for k, r in enumerate(cands)]
    return min(scored)[2]
