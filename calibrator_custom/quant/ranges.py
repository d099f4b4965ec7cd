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


def quantization_error(hist: Histogram, lo: float, hi: float, qtype: str) -> float:
    """Expected squared error per value of quantizing the histogram's values into [lo, hi] with ``qtype``."""
    if hist.is_empty:
        return 0.0
    return float(quantization_errors(hist, np.array([lo], np.float64), np.array([hi], np.float64), qtype)[0])


def quantization_errors(hist: Histogram, lo: np.ndarray, hi: np.ndarray, qtype: str) -> np.ndarray:
    """``quantization_error`` of each range ``[lo[k], hi[k]]`` at once (one row per range, each row's
    sums the same whatever the number of rows)."""
    lo = np.asarray(lo, np.float64)[:, None]
    hi = np.asarray(hi, np.float64)[:, None]
    if qtype != "UINT8":  # symmetric types use the larger magnitude on both sides
        m = np.maximum(-lo, hi)
        lo, hi = -m, m
    c = hist.centers()[None, :]
    n = hist.counts.astype(np.float64)
    step = (hi[:, 0] - lo[:, 0]) / RANGE_STEPS[qtype]  # the range made symmetric above for INT8 / INT16
    clip_d = np.where(c > hi, c - hi, np.where(c < lo, lo - c, 0.0))
    inside = np.where(clip_d == 0, n, 0.0).sum(axis=1)
    return (inside * step * step / 12 + (n * clip_d * clip_d).sum(axis=1)) / max(1.0, n.sum())


def _percentile_candidates(hist: Histogram) -> list[Range]:
    p = np.asarray(PERCENTILES, np.float64)
    v = hist.percentile(np.concatenate([100 - p, p]))  # every percentile in one pass over the counts
    out = []
    for k, pk in enumerate(PERCENTILES):
        lo, hi = covering(float(v[k]), float(v[len(p) + k]))
        out.append(Range(lo, hi, f"percentile{pk}"))
    return out


def _mse_candidates(hist: Histogram, qtype: str) -> list[Range]:
    """The fraction of the min/max range (``MSE_FRACTIONS``) with the smallest ``quantization_error``
    (the first of equal ones)."""
    lo0, hi0 = covering(hist.min_value, hist.max_value)
    f = np.asarray(MSE_FRACTIONS, np.float64)
    err = quantization_errors(hist, lo0 * f, hi0 * f, qtype)
    k = int(np.argmin(err)) if not hist.is_empty else 0
    return [Range(lo0 * MSE_FRACTIONS[k], hi0 * MSE_FRACTIONS[k], "mse")]


def _kl_candidate(hist: Histogram, qtype: str) -> list[Range]:
    """The entropy-calibration threshold on |x| (TensorRT's method) over the histogram's magnitude bins:
    every threshold's divergence at once, one row per threshold."""
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
    levels = 128 if qtype == "UINT8" else 1024
    ends = np.arange(levels, nb + 1, 8)  # candidate thresholds: the first ``i`` bins kept
    if not ends.size:
        return []
    hist_m, edges = np.histogram(mags, bins=nb, range=(0, top), weights=n)
    j = np.arange(nb)[None, :]
    i = ends[:, None]
    valid = j < i
    # hist_m[:i] in ``levels`` buckets as np.array_split makes them (the first i % levels one bin longer)
    size, extra = np.divmod(i, levels)
    long_end = extra * (size + 1)
    bucket = np.where(j < long_end, j // (size + 1), extra + (j - long_end) // np.maximum(size, 1))
    flat = np.where(valid, np.arange(len(ends))[:, None] * levels + bucket, len(ends) * levels)
    nz = hist_m > 0
    mass = np.bincount(flat.ravel(), np.broadcast_to(hist_m, flat.shape).ravel(), len(ends) * levels + 1)
    count = np.bincount(flat.ravel(), np.broadcast_to(nz, flat.shape).ravel().astype(np.float64),
                        len(ends) * levels + 1)
    # each bucket's mass spread evenly over its non-empty bins; the reference keeps the clipped tail
    q = np.where(valid & nz, mass[flat] / np.maximum(count[flat], 1), 0.0)
    ref = np.where(valid, hist_m, 0.0)
    tail = np.concatenate([np.cumsum(hist_m[::-1])[::-1], [0.0]])[ends]
    ref[np.arange(len(ends)), ends - 1] += tail
    rs, qs = ref.sum(axis=1, keepdims=True), q.sum(axis=1, keepdims=True)
    ok = (rs[:, 0] > 0) & (qs[:, 0] > 0)
    p = ref / np.where(rs > 0, rs, 1.0)
    qn = q / np.where(qs > 0, qs, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / np.maximum(qn, 1e-12)), 0.0)
    kl = np.where(ok, terms.sum(axis=1), np.inf)
    if not ok.any():
        return []
    t = float(edges[ends[int(np.argmin(kl))]])  # the first of equal divergences, as the loop kept
    lo = -t if hist.min_value < 0 else 0.0
    lo, hi = covering(max(lo, hist.min_value), min(t, hist.max_value))
    return [Range(lo, hi, "kl")]


def fitted_range(hist: Histogram, qtype: str) -> Range:
    """The candidate range (min/max, percentiles, KL, MSE) with the smallest quantization error."""
    base = minmax_range(hist.min_value, hist.max_value)
    if hist.is_empty:
        return base
    cands = [base] + _percentile_candidates(hist) + _mse_candidates(hist, qtype) + _kl_candidate(hist, qtype)
    err = quantization_errors(hist, np.array([r.lo for r in cands]), np.array([r.hi for r in cands]), qtype)
    return cands[int(np.argmin(err))]  # the first of equal errors: min/max before the fitted ones
