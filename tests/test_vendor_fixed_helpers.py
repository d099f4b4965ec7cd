"""Numeric helpers of calibrator_custom.vendor_fixed against Python-integer / naive references (no vendor SDK needed)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from calibrator_custom.vendor_fixed import conv, elementwise, layout, pool, tables
from calibrator_custom.vendor_fixed.rounding import shift_round_half_away, shift_round_half_up

ints = st.integers(-(2 ** 40), 2 ** 40)


def _half_away(a: int, k: int) -> int:
    q = Fraction(a, 2 ** k)
    r = int(abs(q) + Fraction(1, 2))  # floor(|q| + 1/2)
    return r if a >= 0 else -r


@given(st.lists(ints, min_size=1, max_size=20), st.integers(0, 24))
def test_shift_round_half_away_matches_fraction_reference(values, k):
    got = shift_round_half_away(np.array(values, np.int64), k)
    assert got.dtype == np.int64 and got.shape == (len(values),)
    assert got.tolist() == [_half_away(v, k) for v in values]


@given(st.lists(ints, min_size=1, max_size=20), st.integers(1, 24))
def test_shift_round_half_up_matches_floor_reference(values, n):
    got = shift_round_half_up(np.array(values, np.int64), n)
    assert got.tolist() == [int((Fraction(v, 2 ** n) + Fraction(1, 2)).__floor__()) for v in values]


def test_half_away_and_half_up_differ_only_on_negative_ties():
    a = np.array([-3, -2, -1, 1, 2, 3], np.int64)
    assert shift_round_half_away(a, 1).tolist() == [-2, -1, -1, 1, 1, 2]
    assert shift_round_half_up(a, 1).tolist() == [-1, -1, 0, 1, 1, 2]


def _naive_conv(x, w, pad_value, stride, padding):
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    if padding == "SAME":
        oh, ow = -(-h // stride), -(-wd // stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - wd, 0)
        top, left = ph // 2, pw // 2
    else:
        oh, ow, top, left = (h - kh) // stride + 1, (wd - kw) // stride + 1, 0, 0
    out = np.zeros((n, oh, ow, o), np.int64)
    for b in range(n):
        for y in range(oh):
            for xx in range(ow):
                for oc in range(o):
                    s = 0
                    for a in range(kh):
                        for bb in range(kw):
                            yy, x2 = y * stride + a - top, xx * stride + bb - left
                            for ic in range(c):
                                v = x[b, yy, x2, ic] if 0 <= yy < h and 0 <= x2 < wd else pad_value
                                s += int(v) * int(w[oc, a, bb, ic])
                    out[b, y, xx, oc] = s
    return out


def test_accumulate_matches_naive_loops():
    g = np.random.default_rng(0)
    for stride, padding in ((1, "SAME"), (2, "SAME"), (2, "VALID")):
        x = g.integers(0, 256, (1, 7, 6, 3))
        w = g.integers(-127, 128, (4, 3, 3, 3))
        got = conv.accumulate(x, w, 77, (stride, stride), (1, 1), padding)
        want = _naive_conv(x, w, 77, stride, padding)
        assert got.shape == want.shape and np.array_equal(got, want)


def test_requantize_hand_computed():
    # identity conv of the vendor dump: input codes 129, 127, 130, 131 (zero point 128), weight 127,
    # bias row 0 = -8128 (= -128*127 / 2), k = 1, M = 16577, N = 13 (m = 2.0236); vendor: 259, -255, 514, 773
    acc = np.array([129, 127, 130, 131], np.int64) * 127
    q = conv.requantize(acc, np.full(4, -8128), np.full(4, 16577), 1, 13, 0, np.int16)
    assert q.dtype == np.int16 and q.tolist() == [259, -255, 514, 773]


def test_unpack_conv_weights_inverts_the_documented_layout():
    g = np.random.default_rng(1)
    w = g.integers(-127, 128, (40, 3, 3, 3)).astype(np.int8)
    blocks = []
    for g0 in range(0, 40, 16):
        for a in range(3):
            for b in range(3):
                blk = w[g0:g0 + 16, a, b, :].ravel()
                blocks.append(np.pad(blk, (0, -blk.size % 32)))
    got = layout.unpack_conv_weights(np.concatenate(blocks).tobytes(), w.shape)
    assert got.dtype == np.int8 and np.array_equal(got, w)


def test_from_dump_layouts():
    data = np.arange(2 * 3 * 16, dtype=np.uint8)  # blocked: 2 channel blocks x 3 pixels x 16
    got = layout.from_dump(data, (1, 1, 3, 20))
    assert got.shape == (1, 1, 3, 20)
    assert got[0, 0, 1, :].tolist() == list(range(16, 32)) + list(range(64, 68))
    rows = np.arange(3 * 24, dtype=np.int16)
    got16 = layout.from_dump(rows, (1, 3, 20), blocked=False)
    assert got16[0, 2, :].tolist() == list(range(48, 68))


def test_max_pool_hand_computed():
    x = np.arange(16, dtype=np.int16).reshape(1, 4, 4, 1)
    assert pool.max_pool2d(x)[..., 0].tolist() == [[[5, 7], [13, 15]]]


def _naive_depthwise(x, zp, w, stride, dilation, padding):
    """Python-loop reference: sum over the window of x * w, the input zero point as padding (int64)."""
    n, h, wd, c = x.shape
    _, kh, kw, co = w.shape
    mult = co // c
    sh, sw = stride
    dh, dw = dilation
    if padding == "VALID":
        oh, ow, pt, pl = (h - (kh - 1) * dh - 1) // sh + 1, (wd - (kw - 1) * dw - 1) // sw + 1, 0, 0
    else:
        oh, ow = -(-h // sh), -(-wd // sw)
        pt = max((oh - 1) * sh + (kh - 1) * dh + 1 - h, 0) // 2
        pl = max((ow - 1) * sw + (kw - 1) * dw + 1 - wd, 0) // 2
    acc = np.zeros((n, oh, ow, co), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            for a in range(kh):
                for b in range(kw):
                    y, xx = oy * sh + a * dh - pt, ox * sw + b * dw - pl
                    v = x[:, y, xx, :].astype(np.int64) if 0 <= y < h and 0 <= xx < wd else np.full((n, c), zp)
                    acc[:, oy, ox, :] += np.repeat(v, mult, axis=-1) * w[0, a, b, :]
    return acc


@given(st.integers(0, 2 ** 31 - 1), st.sampled_from([(1, 1), (2, 2), (1, 2)]), st.sampled_from(["SAME", "VALID"]),
       st.sampled_from([1, 2]), st.sampled_from([(1, 1), (2, 1)]), st.sampled_from([3, 5]))
def test_depthwise_accumulator_matches_naive_loops(seed, stride, padding, mult, dilation, k):
    """The reference depthwise accumulator (the input zero point as padding) against Python loops;
    the prepared float32 path is checked against this reference in test_vendor_fixed_fast."""
    g = np.random.default_rng(seed)
    c = int(g.integers(1, 20))
    eff_h, eff_w = (k - 1) * dilation[0] + 1, (k - 1) * dilation[1] + 1  # VALID needs the whole window
    x = g.integers(0, 256, (1, eff_h + int(g.integers(0, 7)), eff_w + int(g.integers(0, 7)), c)).astype(np.uint8)
    w = g.integers(-127, 128, (1, k, k, c * mult)).astype(np.int8)
    zp = int(g.integers(0, 256))
    acc = conv.accumulate_depthwise(x, w, zp, stride, dilation, padding)
    want = _naive_depthwise(x, zp, w.astype(np.int64), stride, dilation, padding)
    assert acc.dtype == np.int64 and acc.shape == want.shape
    assert np.array_equal(acc, want)


# ---------------------------------------------------------------- table ops, MUL (tables.py, elementwise.py)
@given(st.lists(st.integers(1, 2 ** 52), min_size=1, max_size=30))
def test_bit_length_matches_python(values):
    got = tables._bit_length(np.array(values, np.int64))
    assert got.dtype == np.int64 and got.tolist() == [v.bit_length() for v in values]


@given(st.lists(st.integers(0, 32767), min_size=3, max_size=40), st.integers(0, 24), st.integers(1, 2 ** 15),
       st.integers(0, 17), st.data())
def test_interpolate_matches_fraction_reference(table, shift, multiplier, mshift, data):
    """The vendor table interpolation against Python integers: fraction truncated to 15 bits, two half-up roundings."""
    n = len(table) - 1
    offsets = data.draw(st.lists(st.integers(0, (n << shift) - 1), min_size=1, max_size=20))
    got = tables.interpolate(np.array(table), np.array(offsets, np.int64), shift, multiplier, mshift)
    assert got.dtype == np.int64 and got.shape == (len(offsets),)
    b = min(shift, 15)
    want = []
    for o in offsets:
        i, f = o >> shift, (o & ((1 << shift) - 1)) >> (shift - b)
        t = (Fraction(table[i] * 2 ** b + (table[i + 1] - table[i]) * f, 2 ** b) + Fraction(1, 2)).__floor__()
        want.append((Fraction(t * multiplier, 2 ** mshift) + Fraction(1, 2)).__floor__())
    assert got.tolist() == want


@given(st.floats(6.0, 200.0), st.lists(st.integers(-32767, 32767), min_size=1, max_size=50))
def test_logistic_and_tanh_codes_are_symmetric(x_range, codes):
    """sigmoid(-x) = 1 - sigmoid(x) up to the final halving; tanh odd; both monotone in the code."""
    s = x_range / 32767
    c = np.array(sorted(set(codes)), np.int64)
    lg, lgm = tables.logistic_codes(c, s).astype(np.int64), tables.logistic_codes(-c, s).astype(np.int64)
    th, thm = tables.tanh_int16_codes(c, s).astype(np.int64), tables.tanh_int16_codes(-c, s).astype(np.int64)
    assert set((lg + lgm).tolist()) <= {32767, 32768} and np.array_equal(th, -thm)
    assert np.all(np.diff(lg) >= 0) and np.all(np.diff(th) >= 0)
    assert lg.min() >= 0 and lg.max() <= 32767 and np.abs(th).max() <= 32767


@given(st.floats(10.0, 40.0), st.lists(st.lists(st.integers(-16000, 16000), min_size=2, max_size=6), min_size=1,
                                          max_size=10), st.integers(-16000, 16000))
def test_softmax_is_shift_invariant_and_monotone(x_range, rows, shift):
    c = min(len(r) for r in rows)
    x = np.array([r[:c] for r in rows], np.int64)
    s = x_range / 32767
    q = tables.softmax(x, s)
    assert q.dtype == np.int16 and q.shape == x.shape
    y = np.clip(x + shift, -32767, 32767)
    if np.array_equal(y - y.max(-1, keepdims=True), x - x.max(-1, keepdims=True)):
        assert np.array_equal(tables.softmax(y, s), q), "only the differences to the row maximum count"
    order = np.argsort(x, -1, kind="stable")
    assert np.all(np.diff(np.take_along_axis(q.astype(np.int64), order, -1), axis=-1) >= 0)
    assert np.all(np.abs(q.astype(np.int64).sum(-1) - 32768) <= c)


@given(st.floats(1e-5, 1e-3), st.floats(1e-5, 1e-3), st.floats(1e-7, 0.1))
def test_mul_params_split_the_15_bit_multiplier_shift(s1, s2, s_out):
    k1, m, k2 = elementwise.mul_params(s1, s2, s_out)
    n = 14 - int(np.floor(np.log2(s1 * s2 / s_out)))
    assert k1 + k2 == n and k2 in (20, 21) and 16384 <= m <= 32768


def _requant_reference(w, x_range, b0, mult, k, n, zp, out_dtype, clamp, out_w):
    """conv_plan.prepare_requant's bounds and rows by Python-integer loops over the channels, or None."""
    from calibrator_custom.vendor_fixed.conv_plan import _I32
    dt = np.dtype(out_dtype)
    rest = n - k
    if rest < 1 or k < 0 or dt not in conv._LIMITS:
        return None
    x_lo, x_hi = x_range
    cols = [[int(v) for v in col] for col in np.asarray(w).T]
    if max(abs(x_lo), abs(x_hi)) * max((sum(abs(v) for v in col) for col in cols), default=0) + \
            (1 << max(k - 1, 0)) >= 2 ** 24:
        return None
    rng = []
    for col in cols:
        p, q = sum(v for v in col if v > 0), sum(v for v in col if v < 0)
        rng.append((_half_away(min(x_lo * p, x_hi * p) + min(x_lo * q, x_hi * q), k),
                    _half_away(max(x_lo * p, x_hi * p) + max(x_lo * q, x_hi * q), k)))
    const = (1 << (rest - 1)) + (int(zp) if dt == np.dtype(np.int16) else 0) * (1 << rest)
    b0, mult = [int(v) for v in b0], [int(v) for v in mult]
    if max(abs(v) for v in b0 + mult + [const]) >= _I32:  # the rows are int32
        return None
    sat = any(min(lo, lo + b) < conv.ACC16_MIN or max(hi, hi + b) > conv.ACC16_MAX for (lo, hi), b in zip(rng, b0))
    for (lo, hi), b, m in zip(rng, b0, mult):
        a_lo, a_hi = (conv.ACC16_MIN, conv.ACC16_MAX) if sat else (lo + b, hi + b)
        terms = [abs(lo) + abs(b), abs(hi) + abs(b)] if sat else [abs(lo * m), abs(hi * m)]
        terms += [abs(a * m) + abs(const) + (0 if sat else abs(b * m)) for a in (a_lo, a_hi)]
        if max(terms) >= _I32:
            return None
    lo, hi = conv._LIMITS[dt]
    if clamp is not None:
        lo, hi = max(lo, clamp[0]), min(hi, clamp[1])
    add = [const] * len(b0) if sat else [b * m + const for b, m in zip(b0, mult)]
    return k, rest, mult * out_w, add * out_w, (b0 * out_w if sat else None), lo, hi, dt


@given(st.integers(1, 6), st.integers(1, 5), st.data())
def test_prepare_requant_matches_a_python_integer_loop(taps, channels, data):
    """The vectorized bounds and rows of conv_plan.prepare_requant equal the per-channel integer loop, including
    where a bound fails (None): saturating and folded biases, UINT8 / INT16 inputs and outputs, large multipliers,
    codes as int8 / int16 (their most negative value included) or int64."""
    from calibrator_custom.vendor_fixed.conv_plan import prepare_requant
    wide = data.draw(st.booleans())
    qmax = 32767 if wide else 127
    codes = data.draw(st.lists(st.integers(-qmax - 1, qmax), min_size=taps * channels, max_size=taps * channels))
    w = np.array(codes, data.draw(st.sampled_from([np.int64, np.int16 if wide else np.int8]))).reshape(taps, channels)
    x_range = (-32768, 32767) if wide else data.draw(st.sampled_from([(0, 255), (-128, 127)]))
    b0 = data.draw(st.lists(st.integers(-40000, 40000), min_size=channels, max_size=channels))
    mult = data.draw(st.lists(st.integers(0, 2 ** 32), min_size=channels, max_size=channels))
    k, n = data.draw(st.integers(0, 12)), data.draw(st.integers(0, 31))
    zp = data.draw(st.integers(-100, 100))
    out_dtype = data.draw(st.sampled_from([np.uint8, np.int16]))
    clamp = data.draw(st.sampled_from([None, (0, 100), (-50, 30000)]))
    got = prepare_requant(w, x_range, b0, mult, k, n, zp, out_dtype, clamp, 3)
    want = _requant_reference(w, x_range, b0, mult, k, n, zp, out_dtype, clamp, 3)
    assert (got is None) == (want is None)
    if got is None:
        return
    for arr in (got.mult_row, got.add_row):
        assert arr.dtype == np.int32 and arr.shape == (3 * channels,)
    assert (got.k, got.rest, got.mult_row.tolist(), got.add_row.tolist(),
            None if got.bias_row is None else got.bias_row.tolist(), got.lo, got.hi, got.out_dtype) == want
