"""Activation range fitting and weight quantization (the planner's numeric helpers)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from calibrator_custom.calib.histogram import Histogram
from calibrator_custom.quant.planner import activation_quant
from calibrator_custom.quant.ranges import Range, covering, fitted_range, quantization_error
from calibrator_custom.quant.weights import quantize_bias, quantize_weights, round_half_away

arrays = st.integers(0, 2**31 - 1).map(lambda seed: np.random.default_rng(seed))


def _sample(rng, kind: str) -> np.ndarray:
    n = 20000
    if kind == "normal":
        return rng.standard_normal(n) * rng.uniform(0.1, 10)
    if kind == "relu":
        return np.maximum(rng.standard_normal(n), 0) * rng.uniform(0.1, 10)
    return rng.standard_t(2, n)  # heavy tails: clipping pays off


@settings(max_examples=30, deadline=None)
@given(arrays, st.sampled_from(["normal", "relu", "heavy"]), st.sampled_from(["UINT8", "INT16"]))
def test_fitted_range_never_worse_than_minmax(rng, kind, qtype):
    h = Histogram.from_values(_sample(rng, kind))
    r = fitted_range(h, qtype)
    assert r.lo <= 0 <= r.hi
    assert quantization_error(h, r.lo, r.hi, qtype) <= quantization_error(h, h.min_value, h.max_value, qtype)


def test_fitted_range_clips_heavy_tails_for_uint8():
    h = Histogram.from_values(np.random.default_rng(1).standard_t(2, 50000))
    r = fitted_range(h, "UINT8")
    assert r.method != "minmax" and r.hi < h.max_value


def test_quantization_error_hand_computed():
    # values 0.5 (x2) and 3.5 (x1) in unit bins; range [0, 2] UINT8: step 2/255; 3.5 clipped by ~1.5
    h = Histogram.from_values(np.array([0.5, 0.5, 3.5]))
    c = h.centers()
    n = h.counts
    step = 2 / 255
    inside = c <= 2
    want = (n[inside].sum() * step**2 / 12 + sum(k * (x - 2) ** 2 for x, k in zip(c[~inside], n[~inside]))) / 3
    assert quantization_error(h, 0.0, 2.0, "UINT8") == pytest.approx(want)


def test_covering_contains_zero_and_degenerate():
    assert covering(1, 3) == (0.0, 3.0)
    assert covering(-2, -1) == (-2.0, 0.0)
    assert covering(0, 0) == (-1e-6, 1e-6)


def test_activation_quant_int16_and_uint8_formulas():
    q = activation_quant(Range(-4.2300992, 4.5325861), "INT16")
    assert q.qtype == "INT16" and q.zero_point == (0,)
    assert q.scale[0] == pytest.approx(4.5325861 / 32767, rel=1e-6)  # the vendor's doc example
    u = activation_quant(Range(-1.0, 1.0), "UINT8")
    assert u.scale[0] == pytest.approx(2 / 255, rel=1e-6) and u.zero_point == (128,)
    assert all(isinstance(v, float) and np.float32(v) == v for v in (*q.scale, *u.scale))


@settings(max_examples=25, deadline=None)
@given(arrays, st.sampled_from([8, 16]))
def test_per_channel_weights_beat_per_tensor(rng, bits):
    w = rng.standard_normal((6, 3, 3, 4)) * rng.uniform(0.01, 5, size=(6, 1, 1, 1))
    pt = quantize_weights(w, 0, bits, "per_tensor")
    pc = quantize_weights(w, 0, bits, "per_channel")
    assert pc.q.dtype == (np.int8 if bits == 8 else np.int16) and pc.q.shape == w.shape
    qmax = 127 if bits == 8 else 32767
    assert np.abs(pc.q.astype(int)).max() <= qmax

    def err(qw):
        s = qw.scale.reshape(-1, 1, 1, 1)
        return float(np.sum((w - qw.q * s) ** 2))
    assert err(pc) <= err(pt) + 1e-12
    assert np.allclose(pt.scale, pt.scale[0])


def test_weight_clipping_search_hand_case():
    # heavy tails: clipping the few large weights (fraction < 1) lowers the squared error at 8 bits
    w = np.random.default_rng(7).standard_t(2, 5000).reshape(1, -1)
    q = quantize_weights(w, 0, 8, "per_channel")
    top = np.abs(w).max()
    assert q.clip[0] < top
    full = top / 127
    err_full = np.sum((w - np.clip(round_half_away(w / full), -127, 127) * full) ** 2)
    err_fit = np.sum((w - q.q * q.scale[0]) ** 2)
    assert err_fit < err_full


def test_depthwise_axis_and_fitted_weighting():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((1, 3, 3, 8))
    q = quantize_weights(w, 3, 8, "fitted", np.ones(8), None)
    assert q.scale.shape == (8,) and q.q.shape == w.shape
    np.testing.assert_allclose(q.clip, q.scale * 127)


def test_bias_quantization_rounds_and_saturates(caplog):
    b = np.array([0.5, -0.5, 1.0, 1e9])
    q = quantize_bias(b, 0.5, np.array([1.0, 1.0, 0.25, 1e-6]), 8, "bias")
    assert q.dtype == np.int32
    assert q.tolist() == [1, -1, 8, 2**31 - 1]
    assert "saturated" in caplog.text
    assert quantize_bias(b[:3], 0.5, np.ones(3), 16, "b").dtype == np.int64


def test_all_zero_channel_gets_a_usable_scale_and_its_bias_fits():
    """A dead channel (all-zero weights) must not get a tiny scale that overflows its bias."""
    w = np.zeros((3, 1, 1, 2))
    w[0] = 0.5
    w[2] = -2.0
    for bits in (8, 16):
        q = quantize_weights(w, 0, bits, "fitted")
        assert np.all(q.scale > 0) and q.scale[1] >= q.scale[[0, 2]].min()  # not a tiny scale
        assert np.all(q.q[1] == 0)
        b = quantize_bias(np.array([0.1, 0.3, -0.2]), 1 / 32767, q.scale, bits, "bias")
        assert np.all(np.abs(b.astype(np.float64)) < 2**31)


def test_int64_bias_saturates_without_wrapping(caplog):
    q = quantize_bias(np.array([1e30, -1e30]), 1.0, np.ones(2), 16, "huge")
    assert q.dtype == np.int64
    assert q[0] > 2**62 and q[1] == -(2**63)
    assert "saturated" in caplog.text


def _kl_threshold_reference(hist: Histogram, qtype: str) -> float | None:
    """TensorRT's entropy threshold as a plain loop over np.array_split buckets (the definition)."""
    c = hist.centers()
    n = hist.counts.astype(np.float64)
    mags = np.abs(c)
    order = np.argsort(mags, kind="stable")
    mags, n = mags[order], n[order]
    top = float(mags.max()) if mags.size else 0.0
    if top <= 0 or n.sum() == 0:
        return None
    hist_m, edges = np.histogram(mags, bins=512, range=(0, top), weights=n)
    levels = 128 if qtype == "UINT8" else 1024
    best = None
    for i in range(levels, 513, 8):
        ref = hist_m[:i].copy()
        ref[i - 1] += hist_m[i:].sum()
        q = np.zeros(i)
        for ch in np.array_split(np.arange(i), levels):
            nz = hist_m[ch] > 0
            if nz.any():
                q[ch[nz]] = hist_m[ch].sum() / nz.sum()
        p = ref / ref.sum()
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum((q / q.sum())[mask], 1e-12))))
        if best is None or kl < best[0]:
            best = (kl, float(edges[i]))
    return None if best is None else best[1]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100.0), tail=st.floats(1.0, 50.0),
       sparse=st.booleans())
def test_kl_candidate_matches_the_bucket_loop(seed, scale, tail, sparse):
    from calibrator_custom.quant.ranges import _kl_candidate

    r = np.random.default_rng(seed)
    x = r.normal(0, scale, 4000)
    x[:5] *= tail
    if sparse:
        x = np.round(x / scale) * scale  # many empty bins between occupied ones
    hist = Histogram.from_values(x)
    want = _kl_threshold_reference(hist, "UINT8")
    got = _kl_candidate(hist, "UINT8")
    assert isinstance(got, list)
    if want is None:
        assert got == []
        return
    lo = -want if hist.min_value < 0 else 0.0
    expect = covering(max(lo, hist.min_value), min(want, hist.max_value))
    assert len(got) == 1 and (got[0].lo, got[0].hi) == expect


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100.0), tail=st.floats(1.0, 50.0),
       qtype=st.sampled_from(["UINT8", "INT8", "INT16"]), shift=st.floats(-1.0, 1.0))
def test_mse_candidate_is_the_best_fraction_by_quantization_error(seed, scale, tail, qtype, shift):
    from calibrator_custom.quant.ranges import MSE_FRACTIONS, _mse_candidates

    r = np.random.default_rng(seed)
    x = r.normal(shift * scale, scale, 3000)
    x[:3] *= tail
    hist = Histogram.from_values(x)
    lo0, hi0 = covering(hist.min_value, hist.max_value)
    errs = [quantization_error(hist, lo0 * f, hi0 * f, qtype) for f in MSE_FRACTIONS]
    k = int(np.argmin(errs))  # the first of equal errors, as a loop keeping strict improvements
    got = _mse_candidates(hist, qtype)
    assert len(got) == 1 and got[0].method == "mse"
    assert (got[0].lo, got[0].hi) == (lo0 * MSE_FRACTIONS[k], hi0 * MSE_FRACTIONS[k])


def _search_clip_reference(w, axis, bits, method, energy=None, in_axis=None):
    """The clip search on signed values, one fraction at a time (the definition)."""
    from calibrator_custom.quant.weights import FINE_GRID, GRID, QMAX, dead_channel_clip

    qmax = QMAX[bits]
    w = np.asarray(w, np.float64)
    w2 = np.moveaxis(w, axis, -1).reshape(-1, w.shape[axis])
    absmax = np.max(np.abs(w2), axis=0)
    absmax = np.where(absmax > 0, absmax, dead_channel_clip(absmax))
    weight = None
    if energy is not None:
        shape = [1] * w.ndim
        shape[in_axis] = energy.size
        weight = np.moveaxis(np.broadcast_to(energy.reshape(shape), w.shape), axis, -1).reshape(-1, w.shape[axis])
    best, clip = np.full(absmax.shape, np.inf), absmax.copy()
    for f in (GRID if method == "per_channel" else FINE_GRID):
        c = absmax * f
        s = c / qmax
        d = w2 - np.clip(round_half_away(w2 / s), -qmax, qmax) * s
        err = (d * d if weight is None else d * d * weight).sum(axis=0)
        better = err < best * (1 - 1e-12)
        best, clip = np.where(better, err, best), np.where(better, c, clip)
    return clip


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), bits=st.sampled_from([8, 16]), method=st.sampled_from(["per_channel", "fitted"]),
       weighted=st.booleans(), grid_values=st.booleans())
def test_clip_search_matches_the_signed_definition(seed, bits, method, weighted, grid_values):
    from calibrator_custom.quant.weights import search_clip

    r = np.random.default_rng(seed)
    w = r.normal(0, 0.2, (6, 3, 3, 5))
    if grid_values:  # exact ties at half steps
        w = np.round(w * 64) / 64
    w[1] = 0.0  # a dead channel
    energy = r.uniform(0.1, 4.0, 5) if weighted else None
    got = search_clip(w, 0, bits, method, energy, 3 if weighted else None)
    want = _search_clip_reference(w, 0, bits, method, energy, 3 if weighted else None)
    assert got.shape == (6,) and got.dtype == np.float64
    np.testing.assert_array_equal(got, want)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), bits=st.sampled_from([8, 16]), method=st.sampled_from(["per_channel", "fitted"]),
       weighted=st.booleans(), channels=st.sampled_from([2, 3, 16]))
def test_clip_search_of_a_depthwise_conv_written_as_a_full_conv_matches_the_definition(seed, bits, method, weighted,
                                                                                     channels):
    """Mostly zeros (output channel o reads input channel o only, some taps zero, one channel dead): the
    search leaves the zeros out of its passes and still chooses what the definition does."""
    from calibrator_custom.quant.weights import search_clip

    r = np.random.default_rng(seed)
    w = np.zeros((channels, 3, 3, channels))
    for o in range(channels):
        w[o, :, :, o] = r.normal(0, 0.2, (3, 3)) * (r.random((3, 3)) < 0.8)
    w[channels - 1] = 0.0
    energy = r.uniform(0.1, 4.0, channels) if weighted else None
    got = search_clip(w, 0, bits, method, energy, 3 if weighted else None)
    want = _search_clip_reference(w, 0, bits, method, energy, 3 if weighted else None)
    np.testing.assert_array_equal(got, want)


def _channel_u8_reference(scale, cmin, cmax, max_shift=4):
    """channel_u8_quant one channel at a time (the definition)."""
    from calibrator_custom.quant.planner import f32

    scales, zps = [], []
    for lo_c, hi_c in zip(cmin, cmax):
        lo_c, hi_c = min(float(lo_c), 0.0), max(float(hi_c), 0.0)
        k = 0
        while k < max_shift and hi_c - lo_c <= 254 * scale * 2.0 ** -(k + 1):
            k += 1
        s = f32(scale * 2.0 ** -k)
        scales.append(s)
        zps.append(int(np.clip(round_half_away(np.array(-lo_c / s)), 0, 255)))
    return tuple(scales), tuple(zps)


@settings(max_examples=100, deadline=None)
@given(ranges=st.lists(st.tuples(st.floats(-50, 0), st.floats(0, 50)), min_size=0, max_size=12),
       shift=st.integers(0, 6), exact_halves=st.booleans())
def test_channel_u8_quant_matches_the_per_channel_loop(ranges, shift, exact_halves):
    from calibrator_custom.quant.planner import channel_u8_quant, f32

    cmin = [lo for lo, _ in ranges]
    cmax = [hi for _, hi in ranges]
    if exact_halves and ranges:  # spans exactly at a halving boundary
        cmax[0] = cmin[0] + 254 * 0.1 / 4
    span = max([h - l for l, h in zip(cmin, cmax)] + [1e-3])
    scale = f32(max(span, 1e-3) / 255) if not exact_halves else 0.1
    got = channel_u8_quant(scale, cmin, cmax, shift)
    assert got == _channel_u8_reference(scale, cmin, cmax, shift)
    assert all(isinstance(v, float) for v in got[0]) and all(isinstance(v, int) for v in got[1])

