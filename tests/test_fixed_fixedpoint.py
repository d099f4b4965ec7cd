"""The fixed-point helpers against Python big-integer / exact-rational references."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from calibrator_custom.fixed.fixedpoint import (
    F64_EXACT_LIMIT, F64_MIN_BITS, FloorAffine, Rescale, f64_multiplier, isqrt, multiplier_bits, quantize_multiplier,
    qrange, requantize, rounding_divide,
    rounding_rshift, saturate,
)

I64_SAFE = st.integers(-(2**62), 2**62 - 1)


def ref_rshift(x: int, s: int) -> int:
    """floor(x / 2**s + 1/2) with Python integers (s >= 1); x * 2**-s otherwise."""
    if s <= 0:
        return x << -s
    return (2 * x + (1 << s)) // (1 << (s + 1))


@given(I64_SAFE, st.integers(0, 62))
def test_rounding_rshift_matches_bigint(x, s):
    got = rounding_rshift(np.array([x], np.int64), s)
    assert got.dtype == np.int64 and got.shape == (1,)
    assert int(got[0]) == ref_rshift(x, s)


@given(st.lists(st.tuples(st.integers(-(2**40), 2**40), st.integers(-8, 40)), min_size=1, max_size=20))
def test_rounding_rshift_per_element_shift(pairs):
    x = np.array([p[0] for p in pairs], np.int64)
    s = np.array([p[1] for p in pairs], np.int64)
    got = rounding_rshift(x, s)
    assert [int(v) for v in got] == [ref_rshift(a, b) for a, b in pairs]


@given(st.floats(1e-12, 1e6, allow_nan=False, allow_infinity=False), st.integers(8, 31))
def test_quantize_multiplier_is_the_nearest_bits_wide_mantissa(real, bits):
    m, s = quantize_multiplier(real, bits)
    m, s = int(m), int(s)
    assert (1 << (bits - 1)) <= m <= (1 << bits) or s == 62
    approx = Fraction(m) / Fraction(2) ** s
    # relative error at most half a unit in the multiplier's last place
    assert abs(approx - Fraction(real)) <= Fraction(real) / (1 << bits)


def test_quantize_multiplier_extremes():
    m, s = quantize_multiplier([0.0, 1.0, 2.0**-70, 2.0**40])
    assert m.dtype == np.int64 and s.dtype == np.int64
    assert (int(m[0]), int(s[0])) == (0, 0)
    assert int(m[1]) == 1 << 30 and int(s[1]) == 30
    assert int(s[2]) == 62 and int(m[2]) * 2.0**-62 == pytest.approx(2.0**-70, rel=1e-6)
    assert int(m[3]) * 2.0 ** -int(s[3]) == 2.0**40
    with pytest.raises(ValueError):
        quantize_multiplier(-1.0)
    with pytest.raises(ValueError):
        quantize_multiplier(float("nan"))


@given(st.integers(1, 2**61))
def test_multiplier_bits_keep_products_in_int64(bound):
    b = multiplier_bits(bound)
    assert 1 <= b <= 31
    assert bound * (1 << b) < 2**62 or b == 1


@given(st.lists(st.integers(-(2**31), 2**31), min_size=1, max_size=30),
       st.floats(1e-6, 100.0), st.integers(-300, 300), st.sampled_from(["UINT8", "INT8", "INT16", "INT32"]))
def test_requantize_matches_bigint(acc, real, zp, dtype_name):
    dtype = {"UINT8": np.uint8, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32}[dtype_name]
    m, s = quantize_multiplier(real, multiplier_bits(2**31))
    got = requantize(np.array(acc, np.int64), m, s, zp, dtype)
    assert got.dtype == dtype and got.shape == (len(acc),)
    lo, hi = qrange(dtype)
    want = [min(hi, max(lo, ref_rshift(a * int(m), int(s)) + zp)) for a in acc]
    assert [int(v) for v in got] == want


def test_saturate_extremes():
    x = np.array([-(2**62), -32769, -32768, 0, 32767, 32768, 2**62], np.int64)
    got = saturate(x, np.int16)
    assert got.dtype == np.int16
    assert got.tolist() == [-32768, -32768, -32768, 0, 32767, 32767, 32767]
    assert saturate(x, np.uint8).tolist() == [0, 0, 0, 0, 255, 255, 255]


@given(st.integers(-(2**50), 2**50), st.integers(-(2**30), 2**30).filter(lambda d: d != 0))
def test_rounding_divide_half_away_from_zero(num, den):
    got = int(rounding_divide(np.array([num]), np.array([den]))[0])
    q = Fraction(num, den)
    want = int(abs(q) + Fraction(1, 2)) * (1 if q >= 0 else -1)
    assert got == want


@given(st.integers(0, 2**63 - 1))
def test_isqrt_matches_python(n):
    import math
    got = isqrt(np.array([n], np.int64))
    assert got.dtype == np.int64
    assert int(got[0]) == math.isqrt(n)


def test_isqrt_vector_and_negative():
    import math
    n = np.array([0, 1, 2, 3, 4, 99, 100, 2**62, 2**63 - 1], np.int64)
    assert isqrt(n).tolist() == [math.isqrt(int(v)) for v in n]
    with pytest.raises(ValueError):
        isqrt(np.array([-1]))


@given(st.floats(1e-4, 1.0), st.floats(1e-4, 1.0), st.integers(0, 255), st.integers(-20, 20))
def test_rescale_matches_exact_rational(in_scale, out_scale, in_zp, out_zp):
    r = Rescale.between(in_scale, in_zp, out_scale, out_zp, np.uint8, np.int16)
    q = np.arange(256, dtype=np.uint8)
    got = r(q)
    assert got.dtype == np.int16 and got.shape == (256,)
    m, s = int(r.multiplier), int(r.shift)
    want = [min(32767, max(-32768, ref_rshift((int(v) - in_zp) * m, s) + out_zp)) for v in q]
    assert got.tolist() == want
    # and the integer map is within half an output LSB (+ multiplier rounding) of the real map
    real = (q.astype(np.float64) - in_zp) * in_scale / out_scale + out_zp
    inside = (real > -32768) & (real < 32767)
    assert np.all(np.abs(got[inside] - real[inside]) <= 0.5 + 1e-6 * np.abs(real[inside]) + 1e-9)


def test_rescale_identity_is_a_no_op():
    q = np.arange(-5, 5, dtype=np.int16)
    r = Rescale.between(0.1, 0, 0.1, 0, np.int16, np.int16)
    assert r.identity and r(q) is q


# ------------------------------------------------------------------ float64-exact requantization
OUT_DTYPES = st.sampled_from([np.uint8, np.int8, np.int16])
IN_DTYPES = st.sampled_from([np.uint8, np.int8, np.int16])


def ref_floor_affine(x: int, m: int, s: int, o: int, lo: int, hi: int) -> int:
    """clip(floor((x * m + o) / 2**s), lo, hi) with Python integers."""
    return min(hi, max(lo, (x * m + o) >> s))


@given(st.lists(st.floats(2.0**-24, 2.0**6), min_size=1, max_size=6), IN_DTYPES, OUT_DTYPES,
       st.integers(-40, 40), st.integers(-40, 40), st.data())
def test_floor_affine_matches_bigint(reals, in_dtype, out_dtype, zp_in, zp_out, data):
    lo_in, hi_in = qrange(in_dtype)
    lo, hi = qrange(out_dtype)
    x_bound = max(-lo_in, hi_in)
    zp_out = min(hi, max(lo, zp_out))
    m, s = f64_multiplier(np.array(reals), x_bound)  # always found for <= 16-bit inputs in this range
    assert m.dtype == np.int64 and m.shape == (len(reals),)
    assert np.all(m >= 1 << (F64_MIN_BITS - 1)) and np.all(m < 1 << 31) and np.all(s >= 1)
    # the multiplier is the nearest of its width: relative error <= 2**-bits
    for r, mi, si in zip(reals, m, s):
        bits = int(mi).bit_length()
        assert abs(Fraction(int(mi), 2 ** int(si)) - Fraction(r)) <= Fraction(r) * Fraction(1, 2 ** (bits - 1))
    offsets = [-zp_in * int(mi) + (1 << (int(si) - 1)) + (zp_out << int(si)) for mi, si in zip(m, s)]
    fa = FloorAffine.build(m, s, np.array(offsets, object), x_bound, lo, hi, out_dtype)
    assert fa is not None
    rows = data.draw(st.lists(st.lists(st.integers(lo_in, hi_in), min_size=len(reals), max_size=len(reals)),
                              min_size=1, max_size=8))
    rows += [[lo_in] * len(reals), [hi_in] * len(reals)]  # the extremes
    x = np.array(rows, dtype=in_dtype)
    got = fa(x)
    assert got.dtype == np.dtype(out_dtype) and got.shape == x.shape
    want = [[ref_floor_affine(int(v), int(m[c]), int(s[c]), offsets[c], lo, hi) for c, v in enumerate(row)]
            for row in rows]
    assert got.tolist() == want


@given(st.integers(-(2**24), 2**24), st.integers(1, 2**31 - 1), st.integers(1, 40), st.integers(-1000, 1000))
def test_floor_affine_on_float_carriers(x, m, s, zp):
    """float32 / float64 arrays holding exact integers (the conv carriers) give the same integers."""
    offset = (1 << (s - 1)) + (zp << s)
    fa = FloorAffine.build(m, s, offset, 2**24, -32768, 32767, np.int16)
    if fa is None:
        assert 2**24 * m + (1 << s) >= F64_EXACT_LIMIT
        return
    want = ref_floor_affine(x, m, s, offset, -32768, 32767)
    for dtype in (np.float32, np.float64, np.int64):
        got = fa(np.array([[x]], dtype))
        assert got.dtype == np.int16 and got.shape == (1, 1) and int(got[0, 0]) == want


def test_floor_affine_refuses_inexact_maps():
    assert FloorAffine.build(2**31 - 1, 40, 1 << 39, 2**23, 0, 255, np.uint8) is None  # 2**54 > 2**53
    split = FloorAffine.build(2**30, 40, (1 << 39) + (8000 << 40), 2**20, 0, 255, np.uint8)
    assert split.whole is not None and int(split.whole) == 8000 and int(split.offset) == 1 << 39
    assert FloorAffine.build(3, 0, 0, 10, 0, 255, np.uint8) is None  # shift < 1
    assert FloorAffine.build(3, 2, 2, 10, 0, 2**20, np.int32) is None  # wide output: int64 path
    assert f64_multiplier(1.0, 2**40) is None


def test_rescale_uses_the_float64_path_only_when_exact():
    fast = Rescale.between(0.01, 3, 0.5, 7, np.int16, np.uint8)
    assert fast.fast is not None and 24 <= int(fast.multiplier).bit_length() <= 31
    wide = Rescale.between(0.01, 0, 0.5, 0, np.int32, np.int16)
    assert wide.fast is None and int(wide.multiplier).bit_length() == multiplier_bits(2**31)
