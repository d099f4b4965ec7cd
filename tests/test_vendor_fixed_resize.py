"""Vendor RESIZE_BILINEAR (calibrator_custom.vendor_fixed.resize) against the vendor's sgs_simulator_fixed.

Single-op models x -> c1 (identity 1x1) -> RESIZE_BILINEAR -> c3 (identity 1x1) from our ModelBuilder,
converted and calibrated at vendor L1 with chosen ranges; the resize's INT16 input and output codes come
from the vendor simulator's dump. Every step must match code for code. The 15-bit fraction helper is checked against exact rational arithmetic.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vendor_fixed_oracle as vo
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.vendor_fixed import KERNELS, layout, resize

_REASON = vo.vendor_missing_reason()
needs_vendor = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")
SAME1 = {"padding": "SAME", "stride_w": 1, "stride_h": 1}


def _fixed(in_hw, size, align_corners, half_pixel, c1_range):
    eye = np.eye(3, dtype=np.float32).reshape(3, 1, 1, 3)
    b = ModelBuilder()
    x = b.input("x", (1, *in_hw, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", eye), b.constant("b1", np.zeros(3, np.float32))], SAME1, name="c1")
    p = b.op("RESIZE_BILINEAR", [y, b.constant("size", np.array(size, np.int32))],
             {"align_corners": align_corners, "half_pixel_centers": half_pixel}, name="p")
    b.output(b.op("CONV_2D", [p, b.constant("w3", eye), b.constant("b3", np.zeros(3, np.float32))], SAME1, name="c3"))
    ranges = {"x": (-1, 1), "c1": c1_range, "p": c1_range, "c3": c1_range}
    tag = f"rz_{in_hw[0]}x{in_hw[1]}_{size[0]}x{size[1]}_{int(align_corners)}{int(half_pixel)}"
    return vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"], mean=(128, 128, 128), std=127.0), tag)


def _inputs(in_hw, seed):
    """Random pixels, saturating 0/255 pixels, and a ramp (all three channels differ)."""
    g = np.random.default_rng(seed)
    shape = (1, *in_hw, 3)
    ramp = (np.arange(np.prod(shape)) * 37 % 256).reshape(shape)
    return [g.integers(0, 256, shape), np.where(g.random(shape) < 0.5, 0, 255), ramp]


def _compare(in_hw, size, align_corners, half_pixel, c1_range, seed):
    """-> (ours - vendor) code differences over all inputs, and the vendor output's shape."""
    fixed = _fixed(in_hw, size, align_corners, half_pixel, c1_range)
    sim = vo.VendorSim(fixed)
    ti, to = sim.tensor("c1"), sim.tensor("p")
    assert (ti.scale, ti.zero_point) == (to.scale, to.zero_point)
    diffs = []
    for x in _inputs(in_hw, seed):
        recs, _ = vo.run_fixed(fixed, x.astype(np.uint8))
        op = next(r["op_index"] for r in recs if r["op"] == "RESIZE_BILINEAR")
        xin = layout.from_dump(vo.record(recs, op, "in", 0)["data"], ti.shape)
        want = layout.from_dump(vo.record(recs, op, "out")["data"], to.shape)
        assert xin.dtype == np.int16 and want.dtype == np.int16
        got = KERNELS["RESIZE_BILINEAR"](xin, size, align_corners, half_pixel)
        assert got.shape == want.shape and got.dtype == want.dtype
        diffs.append(got.astype(np.int64) - want)
    return np.stack(diffs)


INTEGER_STEPS = [  # (in_hw, size, align_corners, half_pixel_centers)
    ((8, 8), (24, 24), False, False), ((8, 8), (32, 32), False, False), ((5, 5), (15, 15), False, False),
    ((6, 6), (30, 30), False, False), ((8, 8), (16, 24), False, False), ((4, 6), (12, 18), False, False),
    ((7, 7), (21, 21), False, True), ((5, 5), (9, 9), True, False), ((4, 4), (10, 10), True, False),
    ((8, 8), (4, 4), False, False), ((8, 8), (16, 16), False, True)]


@needs_vendor
@pytest.mark.parametrize("c1_range", [(-1.0, 1.0), (-3.0, 4.0)])
@pytest.mark.parametrize("in_hw,size,align_corners,half_pixel", INTEGER_STEPS)
def test_resize_bilinear_integer_steps_match_vendor(in_hw, size, align_corners, half_pixel, c1_range):
    assert resize.integer_step(size[0], in_hw[0], align_corners)
    assert resize.integer_step(size[1], in_hw[1], align_corners)
    d = _compare(in_hw, size, align_corners, half_pixel, c1_range, seed=sum(in_hw) + sum(size))
    assert np.abs(d).max() == 0, f"{int((d != 0).sum())}/{d.size} codes differ, worst {np.abs(d).max()} LSB"


OTHER_STEPS = [  # (in_hw, size, align_corners, half_pixel_centers): one non-integer axis at least
    ((8, 8), (12, 12), False, False), ((8, 8), (20, 20), False, False), ((8, 8), (6, 6), False, False),
    ((9, 9), (5, 5), False, False), ((7, 5), (11, 13), False, False), ((8, 8), (24, 12), False, False),
    ((8, 8), (13, 19), False, True), ((6, 6), (12, 12), True, False), ((9, 9), (24, 24), True, False),
    ((6, 10), (9, 15), True, False), ((5, 7), (17, 10), False, False), ((8, 8), (16, 16), True, False),
    ((16, 16), (30, 30), True, False), ((10, 10), (16, 16), True, False)]


@needs_vendor
@pytest.mark.parametrize("c1_range", [(-1.0, 1.0), (-3.0, 4.0)])
@pytest.mark.parametrize("in_hw,size,align_corners,half_pixel", OTHER_STEPS)
def test_resize_bilinear_other_steps_match_vendor(in_hw, size, align_corners, half_pixel, c1_range):
    assert not (resize.integer_step(size[0], in_hw[0], align_corners)
                and resize.integer_step(size[1], in_hw[1], align_corners))
    d = _compare(in_hw, size, align_corners, half_pixel, c1_range, seed=sum(in_hw) + sum(size))
    assert np.abs(d).max() == 0, f"{int((d != 0).sum())}/{d.size} codes differ, worst {np.abs(d).max()} LSB"


@needs_vendor
def test_resize_bilinear_impulses_match_vendor():
    """Impulses read the 2D corner weights directly: one nonzero code per 3 x 3 block (so every output sees
    at most one), 24 x 24 -> 60 x 60 (fractions 0.2 .. 0.8 with float32 position effects), 9 offsets."""
    in_hw, size = (24, 24), (60, 60)
    fixed = _fixed(in_hw, size, False, False, (-1.0, 1.0))
    sim = vo.VendorSim(fixed)
    g = np.random.default_rng(5)
    for r in range(9):
        x = np.full((1, *in_hw, 3), 128, np.uint8)  # pixel 128 is code 0 with mean 128
        x[0, r % 3::3, r // 3::3] = g.integers(0, 256, (8, 8, 3))
        recs, _ = vo.run_fixed(fixed, x)
        op = next(q["op_index"] for q in recs if q["op"] == "RESIZE_BILINEAR")
        xin = layout.from_dump(vo.record(recs, op, "in", 0)["data"], sim.tensor("c1").shape)
        want = layout.from_dump(vo.record(recs, op, "out")["data"], sim.tensor("p").shape)
        assert (xin[0, np.arange(24) % 3 != r % 3] == 0).all(), "background codes are 0"
        got = KERNELS["RESIZE_BILINEAR"](xin, size)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.array_equal(got, want), f"offset {r}: {int((got != want).sum())}/{want.size} codes differ"


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.booleans())
def test_taps_q15_match_rational_rounding(out_size, in_size, align_corners):
    lo, hi, f = resize._taps_q15(out_size, in_size, align_corners)
    assert lo.shape == hi.shape == f.shape == (out_size,) and f.dtype == np.int64
    step = Fraction(in_size - 1, out_size - 1) if align_corners and out_size > 1 else Fraction(in_size, out_size)
    for d in range(out_size):
        src = d * step
        want_lo = min(int(src), in_size - 1)
        want_hi = min(want_lo + 1, in_size - 1)
        frac = src - int(src)
        want_f = 0 if want_hi == want_lo else int(frac * 2 ** 15 + Fraction(1, 2))
        assert (lo[d], hi[d], f[d]) == (want_lo, want_hi, want_f)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4), st.booleans(), st.integers(0, 2 ** 31))
def test_integer_step_path_equals_loop_reference(in_h, in_w, k_h, k_w, align_corners, seed):
    """The vectorized separable path against a per-output loop of the documented formula."""
    out_h = (in_h - 1) * k_h + 1 if align_corners else in_h * k_h
    out_w = (in_w - 1) * k_w + 1 if align_corners else in_w * k_w
    x = np.random.default_rng(seed).integers(-32768, 32768, (1, in_h, in_w, 2)).astype(np.int16)
    got = resize.resize_bilinear(x, (out_h, out_w), align_corners)
    assert got.shape == (1, out_h, out_w, 2) and got.dtype == np.int16
    ly, hy, fy = resize._taps_q15(out_h, in_h, align_corners)
    lx, hx, fx = resize._taps_q15(out_w, in_w, align_corners)
    xi = x.astype(np.int64)
    for oy in range(out_h):
        for ox in range(out_w):
            for c in range(2):
                def along_w(row):
                    return (xi[0, row, lx[ox], c] * (32768 - fx[ox]) + xi[0, row, hx[ox], c] * fx[ox] + 16384) >> 15
                v = (along_w(ly[oy]) * (32768 - fy[oy]) + along_w(hy[oy]) * fy[oy] + 16384) >> 15
                assert got[0, oy, ox, c] == np.clip(v, -32768, 32767)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 12), st.integers(1, 12), st.booleans(), st.integers(0, 2 ** 31))
def test_other_step_path_equals_loop_reference(in_h, in_w, out_h, out_w, align_corners, seed):
    """The vectorized 2D path against a per-output loop of the documented formula in float32 scalars."""
    x = np.random.default_rng(seed).integers(-32768, 32768, (1, in_h, in_w, 2)).astype(np.int16)
    got = resize._bilinear_2d(x.astype(np.int64), out_h, out_w, align_corners)
    assert got.shape == (1, out_h, out_w, 2)
    f32 = np.float32

    def tap(d, n_out, n_in):
        num, den = (n_in - 1, n_out - 1) if align_corners and n_out > 1 else (n_in, n_out)
        src = f32(d) * (f32(num) / f32(den))
        lo = int(np.floor(src))
        return min(lo, n_in - 1), min(lo + 1, n_in - 1), f32(src - f32(lo))

    for oy in range(out_h):
        ly, hy, fy = tap(oy, out_h, in_h)
        for ox in range(out_w):
            lx, hx, fx = tap(ox, out_w, in_w)
            w11 = f32(fy * fx)
            ws = [f32(f32(f32(1) - fx) - fy) + w11, f32(fx - w11), f32(fy - w11), w11]
            shift = 16 if max(int(np.floor(float(w) * 65536 + 0.5)) for w in ws) <= 32767 else 15
            ints = [int(np.floor(float(w) * 2 ** shift + 0.5)) for w in ws]
            for c in range(2):
                codes = [int(x[0, ly, lx, c]), int(x[0, ly, hx, c]), int(x[0, hy, lx, c]), int(x[0, hy, hx, c])]
                assert got[0, oy, ox, c] == sum(a * b for a, b in zip(codes, ints)) >> shift
