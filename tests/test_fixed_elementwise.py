"""Tests of the elementwise integer kernels (calibrator_custom/fixed/kernels/elementwise.py).

Arithmetic ops go through ``check_fixed_op`` (float op on the dequantized inputs) with the stated
bound plus the float32 reference's own rounding; hypothesis tests hold the bounds against float64
(or exact Fraction) references. Comparisons, FLOOR_DIV/FLOOR_MOD and the exactness claims are
checked against exact rational arithmetic, and through the harness on cases where the float32
reference is itself exact (power-of-two scales) or the values are well separated. CAST goes through
the data-movement harness of test_fixed_shape.py, with an exact Fraction reference for the
truncating cast.
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibrator_custom.errors import ModelError, UnsupportedOpError
from calibrator_custom.fixed.kernels import elementwise as ew
from calibrator_custom.fixed.registry import get_fixed_op
from calibrator_custom.model.options import default_options, make_options
from calibrator_custom.ops.registry import OpContext, TensorInfo
from fixedrunner import (NP, QArr, QOut, assert_integer_params, check_fixed_op, prepare_fixed, qrandom, run_fixed,
                         symmetric_out)
from test_fixed_shape import DTYPES, HALF, ZERO_POINT, check, qdata

# the kernels' bound (0.5 + 2**-16 LSB inside a 16-bit range) plus the float32 reference's rounding
TOL = 0.51
BCAST = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), ()), ((1, 3, 4), (4,)), ((2, 3, 4), (3, 1)),
         ((2, 1, 4), (1, 3, 1)), ((3,), (2, 1, 1, 3)), ((2, 1, 2, 3, 2), (1, 3, 1, 1, 2))]
# (dtype, zero point) of an input
QTYPES = [("INT16", 0), ("UINT8", 128), ("UINT8", 3), ("INT8", 0), ("INT8", -5), ("INT32", 0)]
RATIOS = [1e-3, 0.37, 1.0, 8.0, 1e3]
ACTS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH", "SIGN_BIT"]
ARITH = ["ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE"]
COMPARE = ["GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "EQUAL", "NOT_EQUAL"]
PY_COMPARE = {"GREATER": lambda x, y: x > y, "GREATER_EQUAL": lambda x, y: x >= y,
              "LESS": lambda x, y: x < y, "LESS_EQUAL": lambda x, y: x <= y,
              "EQUAL": lambda x, y: x == y, "NOT_EQUAL": lambda x, y: x != y}


# ----------------------------------------------------------------------------------------- helpers
def q(shape, dtype="INT16", scale=None, zp=0, seed=0, const=False, low=None, high=None) -> QArr:
    """Random quantized operand; INT32 operands stay within 20 bits so products fit the checks."""
    if dtype == "INT32" and low is None:
        low, high = -(1 << 20), 1 << 20
    return qrandom(shape, dtype, scale, zp, rng=np.random.default_rng(seed), const=const, low=low, high=high)


def f32(x: float) -> float:
    """A float32-representable scale, as every scale read from a model is."""
    return float(np.float32(x))


def divisor(shape, dtype="INT16", scale=None, zp=0, seed=1, const=False, min_abs=None) -> QArr:
    """A random operand with no zero real value (|q - zp| >= min_abs)."""
    x = q(shape, dtype, scale, zp, seed, const)
    lo, hi = np.iinfo(NP[dtype]).min, np.iinfo(NP[dtype]).max
    min_abs = min_abs or max(1, (hi - lo) // 16)
    v = x.q.astype(np.int64) - zp
    v = np.where(np.abs(v) < min_abs, np.where(v < 0, -min_abs, min_abs), v)
    v = np.clip(v + zp, lo, hi)
    v = np.where(v == zp, zp + (1 if zp < hi else -1), v)
    return QArr(v.astype(NP[dtype]), x.scale, zp, const=const)


def real(x: QArr) -> list[Fraction]:
    """Exact real values of an operand (flattened)."""
    return [Fraction(float(x.scale)) * (int(v) - int(x.zero_point)) for v in x.q.reshape(-1)]


def out_q(o: QOut, got: np.ndarray) -> list[Fraction]:
    return [Fraction(float(o.scale)) * (int(v) - int(o.zero_point)) for v in got.reshape(-1)]


def fixed(op, inputs, outputs, shape, options=None) -> np.ndarray:
    return run_fixed(op, inputs, outputs, [shape], options)[0]


def opts(op, **values):
    return make_options(op, values)


def _prepare(op, inputs, out: QOut, options=None, out_shape=(4,)):
    """prepare() of the fixed op on quantized operands (returns its params)."""
    infos = tuple(TensorInfo(f"x{i}", x.q.shape, x.q.dtype, x.q if x.const else None, x.quantization())
                  for i, x in enumerate(inputs))
    oq = None if out.scale is None else QArr(np.zeros(1, NP[out.dtype]), out.scale, out.zero_point).quantization()
    outs = (TensorInfo("y", out_shape, np.dtype(NP[out.dtype]), None, oq),)
    ctx = OpContext(0, op, infos, outs, options if options is not None else default_options(op))
    return get_fixed_op(op).prepare(ctx)


# ----------------------------------------------------------------------------- numeric helpers
@given(st.integers(-(1 << 62), 1 << 62), st.one_of(st.just(0), st.integers(1 << 30, (1 << 31) - 1)),
       st.integers(-31, 100))
def test_mul_rshift_matches_python_ints(x, m, s):
    got = int(ew.mul_rshift(np.array([x], np.int64), m, s)[0])
    want = (x * m * (1 << -s)) if s <= 0 else (x * m + (1 << (s - 1))) >> s
    if s >= 31 or abs(want) < 1 << 31:
        assert got == want
    else:  # saturating: beyond every output dtype, with the right sign
        assert abs(got) >= 1 << 31 and (got > 0) == (want > 0)


@given(st.floats(1e-30, 1e30))
def test_normalized_multiplier_precision(r):
    m, s = ew.normalized_multiplier(r)
    assert 1 << 30 <= m < 1 << 31
    assert abs(Fraction(m) / Fraction(2) ** s - Fraction(r)) <= Fraction(r) / (1 << 31)


def test_normalized_multiplier_zero():
    assert ew.normalized_multiplier(0.0) == (0, 0)


@given(st.floats(1e-9, 1e2).map(f32), st.floats(1e-9, 1e2).map(f32), st.integers(-128, 127),
       st.lists(st.tuples(st.integers(-32768, 32767), st.integers(-128, 127)), min_size=1, max_size=20))
def test_exact_grid_holds_real_values(sa, sb, zb, pairs):
    xa = ew.QIn(sa, 0, 65535, None)  # the widest 16-bit |q - z|
    xb = ew.QIn(sb, zb, 256, None)
    grid = ew._exact_grid((xa, xb))
    ratio = max(sa, sb) / min(sa, sb)
    if grid is None:
        assert ratio > 2 ** 21  # float32 scales within 2**21 of each other always fit
        return
    (ga, gb), k = grid
    qa = np.array([p[0] for p in pairs], np.int64)
    qb = np.array([p[1] for p in pairs], np.int64)
    for t, qq, s, z in ((ew.to_grid(qa, ga), qa, sa, 0), (ew.to_grid(qb, gb), qb, sb, zb)):
        for tv, qv in zip(t, qq):
            assert Fraction(int(tv), 1 << k) == Fraction(s) * (int(qv) - z)


# ------------------------------------------------------------------------------ ADD, SUB, MUL, ...
@pytest.mark.parametrize("op", ARITH)
@pytest.mark.parametrize("sa,sb", BCAST)
def test_arith_broadcast(op, sa, sb):
    check_fixed_op(op, [q(sa, seed=1), q(sb, seed=2)], tol_lsb=TOL)


@pytest.mark.parametrize("op", ARITH)
@pytest.mark.parametrize("ta", QTYPES)
@pytest.mark.parametrize("tb", QTYPES[:4])
def test_arith_mixed_dtypes(op, ta, tb):
    a = q((2, 3, 4), ta[0], zp=ta[1], seed=3)
    b = q((3, 4), tb[0], zp=tb[1], seed=4)
    check_fixed_op(op, [a, b], tol_lsb=TOL)


@pytest.mark.parametrize("op", ARITH)
@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("out", [("INT16", 0), ("UINT8", None), ("INT8", 0), ("INT32", 0)])
def test_arith_scale_ratios_and_outputs(op, ratio, out):
    a = q((4, 5), "INT16", scale=1e-3, seed=5)
    b = q((4, 5), "UINT8", scale=1e-3 * ratio, zp=100, seed=6)
    ref = check_fixed_op(op, [a, b], outputs=[QOut("INT16", 1.0)])[1][0]  # any output: shapes
    o = symmetric_out(ref, out[0]) if out[1] is None else symmetric_out(ref, out[0], out[1])
    if out[0] == "INT32":  # an LSB the float32 reference can resolve
        o = QOut("INT32", float(np.max(np.abs(ref))) / 2 ** 16)
    check_fixed_op(op, [a, b], outputs=[o], tol_lsb=TOL)


@pytest.mark.parametrize("op", ARITH + ["DIV"])
@pytest.mark.parametrize("which", [0, 1])
def test_arith_const_operand(op, which):
    x = q((2, 3, 4), seed=7)
    c = (divisor((4,), "INT16", seed=8, const=True) if op == "DIV" and which == 1
         else q((4,), "INT16", seed=8, const=True, low=-900, high=3000))
    y = divisor((2, 3, 4), seed=9) if op == "DIV" and which == 0 else x
    check_fixed_op(op, [c, y] if which == 0 else [x, c], tol_lsb=TOL)


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL", "DIV"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("out", [("INT16", 0), ("UINT8", 40)])
def test_arith_fused_activation(op, act, out):
    a = q((3, 8), scale=3.0 / 32767, seed=10)
    b = divisor((8,), scale=3.0 / 32767, seed=11) if op == "DIV" else q((8,), scale=3.0 / 32767, seed=11)
    o = QOut(out[0], 2.5 / 32767 if out[0] == "INT16" else 3.0 / 215, out[1])
    check_fixed_op(op, [a, b], {"fused_activation_function": act}, outputs=[o], tol_lsb=TOL)


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL", "DIV", "CONCATENATION"])
@pytest.mark.parametrize("act,scale", [("RELU6", 6 / 1000.7), ("RELU6", 6 / 1000.3),
                                       ("RELU_N1_TO_1", 1 / 100.6), ("RELU_N1_TO_1", 1 / 100.4)])
def test_activation_bounds_inside_the_output_range(op, act, scale):
    """The clamp bound 6 (or +-1) falls between two output steps: it rounds to the nearer one."""
    a = q((6, 8), scale=20.0 / 32767, seed=78)
    b = divisor((6, 8), scale=3.0 / 32767, seed=79) if op == "DIV" else q((6, 8), scale=20.0 / 32767, seed=79)
    options = {"fused_activation_function": act, **({"axis": 0} if op == "CONCATENATION" else {})}
    got, _ = check_fixed_op(op, [a, b], options, outputs=[QOut("INT16", scale)], tol_lsb=TOL)
    hi = round(6 / scale if act == "RELU6" else 1 / scale)
    assert got[0].max() == hi


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM"])
@pytest.mark.parametrize("out", [("INT16", 0), ("UINT8", 250), ("INT8", -100)])
def test_arith_saturates(op, out):
    """Output range far narrower than the results: most values clip to the range ends."""
    a = q((6, 7), seed=12)
    b = divisor((7,), seed=13) if op == "DIV" else q((7,), seed=13)
    o = QOut(out[0], 0.01 / np.iinfo(NP[out[0]]).max, out[1])
    got, ref = check_fixed_op(op, [a, b], outputs=[o], tol_lsb=TOL)
    lo, hi = np.iinfo(got[0].dtype).min, np.iinfo(got[0].dtype).max
    assert np.isin(got[0], [lo, hi]).mean() > 0.5


def test_add_sub_exact_on_equal_scales():
    a, b = q((50,), seed=14), q((50,), seed=15)
    b = QArr(b.q, a.scale)
    o = QOut("INT16", a.scale)
    for op, fn in (("ADD", np.add), ("SUB", np.subtract)):
        got = fixed(op, [a, b], [o], (50,))
        want = np.clip(fn(a.q.astype(np.int64), b.q.astype(np.int64)), -32768, 32767)
        np.testing.assert_array_equal(got, want)


def test_mul_extreme_values_round_exactly():
    """Full-range int16 products at a power-of-two output scale round half up exactly."""
    a = QArr(np.array([-32768, -32768, 32767, -3, 3, 5], np.int16), 2.0 ** -8)
    b = QArr(np.array([-32768, 32767, 32767, 1, 1, -1], np.int16), 2.0 ** -8)
    got = fixed("MUL", [a, b], [QOut("INT32", 2.0 ** -15)], (6,))
    p = a.q.astype(np.int64) * b.q.astype(np.int64)
    want = np.clip((p + 1) >> 1, -(1 << 31), (1 << 31) - 1)  # 2**-16 / 2**-15 = 1/2, half up
    np.testing.assert_array_equal(got, want)


def test_mul_full_range_int32():
    """INT32 x INT32 (zero point 0): the exact 62-bit product, one rounding."""
    v = np.array([-(1 << 31), -(1 << 31), (1 << 31) - 1, 123456789, -7, 0], np.int32)
    w = np.array([-(1 << 31), (1 << 31) - 1, (1 << 31) - 1, -987654, 3, 5], np.int32)
    a, b = QArr(v, 2.0 ** -20), QArr(w, 2.0 ** -20)
    got = fixed("MUL", [a, b], [QOut("INT32", 2.0 ** -9)], (6,))
    want = [min(max((int(x) * int(y) + (1 << 30)) >> 31, -(1 << 31)), (1 << 31) - 1) for x, y in zip(v, w)]
    np.testing.assert_array_equal(got, want)


@given(st.sampled_from(["ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE"]),
       st.sampled_from(QTYPES[:5]), st.sampled_from(QTYPES[:5]),
       st.floats(1e-4, 1e2), st.floats(1e-4, 1e2), st.integers(0, 2 ** 32 - 1))
def test_arith_bound_against_float64(op, ta, tb, sa, sb, seed):
    """The stated bound (0.5 + 2**-10 LSB here, the grid/multiplier terms being far smaller) vs float64."""
    a = q((40,), ta[0], sa, ta[1], seed)
    b = divisor((40,), tb[0], sb, tb[1], seed + 1) if op == "DIV" else q((40,), tb[0], sb, tb[1], seed + 1)
    ra = (a.q.astype(np.float64) - ta[1]) * sa
    rb = (b.q.astype(np.float64) - tb[1]) * sb
    exact = {"ADD": lambda: ra + rb, "SUB": lambda: ra - rb, "MUL": lambda: ra * rb, "DIV": lambda: ra / rb,
             "SQUARED_DIFFERENCE": lambda: (ra - rb) ** 2}[op]()
    o = symmetric_out(exact, "INT16")
    got = fixed(op, [a, b], [o], (40,)).astype(np.float64) * o.scale
    err = np.abs(got - np.clip(exact, -32768 * o.scale, 32767 * o.scale)) / o.scale
    assert err.max() <= 0.5 + 2.0 ** -10


@given(st.sampled_from(["ADD", "SUB"]), st.sampled_from(QTYPES[:3]), st.sampled_from(QTYPES[:3]),
       st.sampled_from([("INT16", 0), ("UINT8", 128), ("INT8", -5)]),
       st.floats(1e-4, 1e2), st.floats(1e-4, 1e2), st.floats(0.05, 20.0), st.integers(0, 2 ** 32 - 1))
def test_add_sub_float64_form_matches_bigint(op, ta, tb, out, sa, sb, out_factor, seed):
    """The single-rounding float64 ADD/SUB equals its documented integer formula (Python integers)."""
    a = q((5, 8), ta[0], sa, ta[1], seed)
    b = q((8,), tb[0], sb, tb[1], seed + 1)  # broadcast along the rows
    span = (np.abs(a.q.astype(np.float64) - ta[1]).max() * sa + np.abs(b.q.astype(np.float64) - tb[1]).max() * sb)
    o = QOut(out[0], span * out_factor / np.iinfo(NP[out[0]]).max, out[1])
    params = prepare_fixed(op, [a, b], [o], [(5, 8)])
    assert params.fast is not None  # <= 16-bit operands: the float64 form applies
    got = fixed(op, [a, b], [o], (5, 8))
    assert got.dtype == np.dtype(NP[out[0]]) and got.shape == (5, 8)
    # the documented multipliers: the largest shift with |q_a| m_a + |q_b| m_b + 2**shift < 2**53
    xa, xb = (max(-int(np.iinfo(NP[t]).min), int(np.iinfo(NP[t]).max)) for t in (ta[0], tb[0]))
    ra, rb = Fraction(float(np.float32(sa))) / Fraction(o.scale), Fraction(float(np.float32(sb))) / Fraction(o.scale)
    for shift in range(62, 0, -1):
        ma, mb = round(float(ra) * 2.0 ** shift), round(float(rb) * 2.0 ** shift)
        if xa * ma + xb * mb + (1 << shift) < 2 ** 53:
            break
    mb = -mb if op == "SUB" else mb
    lo, hi = np.iinfo(NP[out[0]]).min, np.iinfo(NP[out[0]]).max
    want = np.empty((5, 8), np.int64)
    for i in range(5):
        for j in range(8):
            t = (int(a.q[i, j]) - ta[1]) * ma + (int(b.q[j]) - tb[1]) * mb + (1 << (shift - 1))
            want[i, j] = min(hi, max(lo, (t >> shift) + out[1]))
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------------------------------- DIV
@pytest.mark.parametrize("sa,sb", BCAST)
def test_div_broadcast(sa, sb):
    check_fixed_op("DIV", [q(sa, seed=16), divisor(sb, seed=17)], tol_lsb=TOL)


@pytest.mark.parametrize("ta", QTYPES)
@pytest.mark.parametrize("tb", QTYPES[:5])
@pytest.mark.parametrize("ratio", [1e-3, 1.0, 1e3])
def test_div_dtypes_and_ratios(ta, tb, ratio):
    a = q((5, 6), ta[0], scale=0.01, zp=ta[1], seed=18)
    b = divisor((6,), tb[0], scale=0.01 * ratio, zp=tb[1], seed=19)
    check_fixed_op("DIV", [a, b], tol_lsb=TOL)


@pytest.mark.parametrize("act,want", [("NONE", [32767, -32768, 0]), ("RELU", [32767, 0, 0]),
                                      ("RELU6", [6000, 0, 0]), ("RELU_N1_TO_1", [1000, -1000, 0])])
def test_div_by_zero_saturates(act, want):
    a = QArr(np.array([5, -5, 0], np.int16), 0.1)
    b = QArr(np.array([7, 7, 7], np.uint8), 0.5, 7)
    got = fixed("DIV", [a, b], [QOut("INT16", 1e-3)], (3,), opts("DIV", fused_activation_function=act))
    np.testing.assert_array_equal(got, want)


def test_div_by_zero_uint8_output():
    a = QArr(np.array([5, -5, 0], np.int16), 0.1)
    b = QArr(np.zeros(3, np.int16), 0.5)
    got = fixed("DIV", [a, b], [QOut("UINT8", 0.1, 30)], (3,))
    np.testing.assert_array_equal(got, [255, 0, 30])


# ---------------------------------------------------------------------------- MAXIMUM / MINIMUM
@pytest.mark.parametrize("op,fn", [("MAXIMUM", np.maximum), ("MINIMUM", np.minimum)])
def test_min_max_exact_on_matching_quantization(op, fn):
    a, b = q((3, 4), "UINT8", 0.1, 10, seed=20), q((4,), "UINT8", 0.1, 10, seed=21)
    got = fixed(op, [a, b], [QOut("UINT8", 0.1, 10)], (3, 4))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, fn(a.q, b.q))


# -------------------------------------------------------------------------- SQUARED_DIFFERENCE
@pytest.mark.parametrize("out", ["INT16", "INT32", "UINT8"])
def test_squared_difference_output_widths(out):
    a, b = q((5, 6), seed=22), q((6,), "INT8", 0.02, 3, seed=23)
    if out != "INT32":
        check_fixed_op("SQUARED_DIFFERENCE", [a, b], out_dtype=out, tol_lsb=TOL)
        return
    ref = (a.real().astype(np.float64) - b.real()) ** 2
    check_fixed_op("SQUARED_DIFFERENCE", [a, b], outputs=[QOut("INT32", float(ref.max()) / 2 ** 16)], tol_lsb=TOL)


def test_squared_difference_grid_bits():
    for out, h in {"INT16": 20, "UINT8": 20, "INT32": 14}.items():
        a, b = q((4,), seed=24), q((4,), seed=25)
        p = _prepare("SQUARED_DIFFERENCE", [a, b], QOut(out, 1e-3))
        assert p.half_bits == h
        assert p.cap ** 2 < 1 << 62


# ------------------------------------------------------------------------------------ comparisons
@pytest.mark.parametrize("op", COMPARE)
@pytest.mark.parametrize("sa,sb", BCAST[:6])
def test_compare_power_of_two_scales_match_float(op, sa, sb):
    """Power-of-two scales: the float32 reference is exact too, ties included."""
    a = q(sa, "INT16", 2.0 ** -6, seed=26, low=-40, high=40)
    b = q(sb, "UINT8", 2.0 ** -5, 128, seed=27, low=108, high=148)
    got, ref = check_fixed_op(op, [a, b])
    assert got[0].dtype == np.bool_


@pytest.mark.parametrize("op", COMPARE)
@pytest.mark.parametrize("ta,tb", [(QTYPES[0], QTYPES[1]), (QTYPES[2], QTYPES[4]), (QTYPES[5], QTYPES[0])])
@pytest.mark.parametrize("ratio", RATIOS)
def test_compare_exact_float32_scales(op, ta, tb, ratio):
    """Float32 scales (as read from a model): the result equals the exact rational comparison."""
    sa, sb = f32(0.0123), f32(0.0123 * ratio)
    a = q((300,), ta[0], sa, ta[1], seed=28)
    b = q((300,), tb[0], sb, tb[1], seed=29)
    p = _prepare(op, [a, b], QOut("BOOL"), out_shape=(300,))
    # 16-bit inputs always get the exact grid; INT32 ones within a smaller scale ratio
    assert p.exact or (ta[0] == "INT32" and ratio < 0.01)
    got = fixed(op, [a, b], [QOut("BOOL")], (300,))
    unit = Fraction(min(sa, sb)) / 2 ** 10  # far above the rounded grid's error
    want = [PY_COMPARE[op](x, y) for x, y in zip(real(a), real(b))]
    keep = [p.exact or abs(x - y) > unit for x, y in zip(real(a), real(b))]
    np.testing.assert_array_equal(got[keep], np.array(want)[keep])


@pytest.mark.parametrize("op", COMPARE)
def test_compare_exact_ties(op):
    """Equal reals on grids 4/3 apart (0.25 and 0.1875) compare equal; the float32 reference agrees."""
    a = QArr(np.array([3, 6, -9, 0, 4], np.int16), 0.25)
    b = QArr(np.array([132, 136, 116, 128, 133], np.uint8), 0.1875, 128)  # 4, 8, -12, 0, 5 steps
    assert [x == y for x, y in zip(real(a), real(b))] == [True, True, True, True, False]
    assert _prepare(op, [a, b], QOut("BOOL"), out_shape=(5,)).exact
    got, _ = check_fixed_op(op, [a, b])
    np.testing.assert_array_equal(got[0], [PY_COMPARE[op](x, y) for x, y in zip(real(a), real(b))])


@given(st.sampled_from(COMPARE), st.floats(1e-5, 1.0), st.floats(1e-3, 1e3), st.integers(0, 2 ** 32 - 1))
def test_compare_rounded_grid_bound(op, sa, ratio, seed):
    """float64 scales (no exact grid): correct wherever the reals differ by more than the grid error."""
    a, b = q((200,), "INT16", sa, 0, seed), q((200,), "UINT8", sa * ratio, 77, seed + 1)
    p = _prepare(op, [a, b], QOut("BOOL"), out_shape=(200,))
    got = fixed(op, [a, b], [QOut("BOOL")], (200,))
    unit = Fraction(min(sa, sa * ratio)) / 2 ** 20
    for g, x, y in zip(got, real(a), real(b)):
        if abs(x - y) > 2 * unit or p.exact:
            assert g == PY_COMPARE[op](x, y)


@pytest.mark.parametrize("op", COMPARE)
@pytest.mark.parametrize("factor", [1.0, 2.0, 0.25])
def test_compare_rounded_grid_power_of_two_scales_exact(op, factor):
    """Scales 1/3 and 1/3 * 2**n (not float32): the rounded grid, still exact, ties included."""
    s = 1 / 3.0
    a = q((200,), "INT16", s, seed=30, low=-20, high=20)
    b = q((200,), "UINT8", s * factor, 100, seed=31, low=60, high=140)
    tie = np.round(a.q[:100] / factor).astype(np.int64) + 100  # ties wherever a / factor is whole
    b = QArr(np.concatenate([tie, b.q[100:]]).astype(np.uint8), b.scale, 100)
    assert not _prepare(op, [a, b], QOut("BOOL"), out_shape=(200,)).exact
    got = fixed(op, [a, b], [QOut("BOOL")], (200,))
    want = [PY_COMPARE[op](x, y) for x, y in zip(real(a), real(b))]
    np.testing.assert_array_equal(got, want)
    assert any(x == y for x, y in zip(real(a), real(b)))


@pytest.mark.parametrize("op", COMPARE)
def test_compare_const_threshold(op):
    x = q((4, 6), "INT16", 0.001, seed=32)
    c = QArr(np.array(0, np.int16), 0.5, const=True)  # x > 0 masks
    got, _ = check_fixed_op(op, [x, c])
    np.testing.assert_array_equal(got[0], PY_COMPARE[op](x.q.astype(np.int64), 0))


# -------------------------------------------------------------------------- FLOOR_DIV / FLOOR_MOD
@pytest.mark.parametrize("op", ["FLOOR_DIV", "FLOOR_MOD"])
@pytest.mark.parametrize("sa,sb", BCAST[:6])
@pytest.mark.parametrize("tb", [("INT16", 0), ("UINT8", 128), ("INT8", -3)])
def test_floor_ops_power_of_two_scales_match_float(op, sa, sb, tb):
    a = q(sa, "INT16", 2.0 ** -4, seed=33)
    b = divisor(sb, tb[0], 2.0 ** -3, tb[1], seed=34, min_abs=1)
    check_fixed_op(op, [a, b], tol_lsb=0.5)


@pytest.mark.parametrize("op", ["FLOOR_DIV", "FLOOR_MOD"])
@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("out", ["INT16", "UINT8", "INT32"])
def test_floor_ops_exact_against_fractions(op, ratio, out):
    sa, sb = f32(0.0137), f32(0.0137 * ratio)
    a = q((300,), "INT16", sa, seed=35)
    b = divisor((300,), "UINT8", sb, 128, seed=36, min_abs=1)
    exact = []
    for x, y in zip(real(a), real(b)):
        fq = math.floor(x / y)
        exact.append(Fraction(fq) if op == "FLOOR_DIV" else x - fq * y)
    o = symmetric_out(np.array([float(v) for v in exact]), out)
    got = fixed(op, [a, b], [o], (300,))
    lo, hi = (np.iinfo(NP[out]).min - o.zero_point) * Fraction(o.scale), \
        (np.iinfo(NP[out]).max - o.zero_point) * Fraction(o.scale)
    s_y = Fraction(o.scale)
    for g, e in zip(out_q(o, got), exact):  # the stated bound: 0.5 + 2**-31 |y| LSB
        e = min(max(e, lo), hi)
        assert abs(g - e) <= s_y / 2 + abs(e) / 2 ** 31


def test_floor_ops_zero_divisor():
    a = QArr(np.array([5, -5, 0], np.int16), 0.25)
    b = QArr(np.array([3, 3, 3], np.uint8), 0.5, 3)
    o = QOut("INT16", 0.01)
    np.testing.assert_array_equal(fixed("FLOOR_DIV", [a, b], [o], (3,)), [32767, -32768, 0])
    np.testing.assert_array_equal(fixed("FLOOR_MOD", [a, b], [o], (3,)), [0, 0, 0])


@pytest.mark.parametrize("op", ["FLOOR_DIV", "FLOOR_MOD"])
def test_floor_ops_refuse_inexact_scales(op):
    a, b = q((4,), "INT16", 1 / 3.0), divisor((4,), "INT16", 0.1)
    with pytest.raises(UnsupportedOpError, match=f"{op}.*exact common grid"):
        _prepare(op, [a, b], QOut("INT16", 0.1))


# ----------------------------------------------------------------------------------------- SELECT
@pytest.mark.parametrize("cshape,xshape", [((2, 3), (2, 3)), ((), (2, 3)), ((2,), (2, 3, 4))])
@pytest.mark.parametrize("tx,ty", [(QTYPES[0], QTYPES[0]), (QTYPES[1], QTYPES[4]), (QTYPES[5], QTYPES[2])])
def test_select(cshape, xshape, tx, ty):
    cond = QArr(np.random.default_rng(37).random(cshape) > 0.5)
    x, y = q(xshape, tx[0], 0.02, tx[1], seed=38), q(xshape, ty[0], 0.3, ty[1], seed=39)
    check_fixed_op("SELECT", [cond, x, y], tol_lsb=TOL)


@pytest.mark.parametrize("cshape,xshape,yshape", [((2, 3, 4), (2, 3, 4), (2, 3, 4)), ((3, 1), (2, 3, 4), (4,)),
                                                  ((), (3,), (2, 1)), ((2, 1, 1), (1, 3, 1), (1, 1, 4))])
@pytest.mark.parametrize("out", ["INT16", "UINT8"])
def test_select_v2_broadcast(cshape, xshape, yshape, out):
    cond = QArr(np.random.default_rng(40).random(cshape) > 0.5)
    x, y = q(xshape, "INT16", 0.001, seed=41), q(yshape, "UINT8", 0.05, 200, seed=42, const=True)
    check_fixed_op("SELECT_V2", [cond, x, y], out_dtype=out, tol_lsb=TOL)


def test_select_exact_on_matching_quantization():
    cond = QArr(np.random.default_rng(43).random((3, 4)) > 0.5)
    x, y = q((3, 4), "UINT8", 0.1, 9, seed=44), q((3, 4), "UINT8", 0.1, 9, seed=45)
    got = fixed("SELECT_V2", [cond, x, y], [QOut("UINT8", 0.1, 9)], (3, 4))
    np.testing.assert_array_equal(got, np.where(cond.q, x.q, y.q))


# ---------------------------------------------------------------------------- CONCATENATION / PACK
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("act", ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
def test_concatenation(axis, act):
    shapes = []
    for i in range(3):
        s = [2, 3, 4]
        s[axis] = i + 1
        shapes.append(tuple(s))
    xs = [q(shapes[0], "INT16", 8.0 / 32767, seed=46), q(shapes[1], "UINT8", 0.05, 120, seed=47),
          q(shapes[2], "INT8", 0.002, -4, seed=48, const=True)]
    check_fixed_op("CONCATENATION", xs, {"axis": axis, "fused_activation_function": act}, tol_lsb=TOL)


@pytest.mark.parametrize("out", [("INT16", 0), ("UINT8", 7), ("INT8", 0)])
def test_concatenation_saturates(out):
    xs = [q((2, 3), "INT16", 0.01, seed=49), q((2, 2), "INT16", 0.02, seed=50)]
    check_fixed_op("CONCATENATION", xs, {"axis": 1}, outputs=[QOut(out[0], 0.05, out[1])], tol_lsb=TOL)


def test_concatenation_exact_on_matching_quantization():
    xs = [q((2, 3), "UINT8", 0.1, 5, seed=51), q((2, 1), "UINT8", 0.1, 5, seed=52)]
    got = fixed("CONCATENATION", xs, [QOut("UINT8", 0.1, 5)], (2, 4), opts("CONCATENATION", axis=1))
    np.testing.assert_array_equal(got, np.concatenate([x.q for x in xs], axis=1))


@pytest.mark.parametrize("act", ["TANH", "SIGN_BIT"])
def test_concatenation_refuses_nonlinear_activation(act):
    xs = [q((2, 3), seed=53), q((2, 3), seed=54)]
    with pytest.raises(UnsupportedOpError, match=f"CONCATENATION.*{act}"):
        _prepare("CONCATENATION", xs, QOut("INT16", 0.1), opts("CONCATENATION", axis=0, fused_activation_function=act),
                 (4, 3))


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_pack(axis):
    xs = [q((2, 3), "INT16", 0.001, seed=55), q((2, 3), "UINT8", 0.1, 128, seed=56),
          q((2, 3), "INT8", 0.01, seed=57, const=True)]
    check_fixed_op("PACK", xs, {"values_count": 3, "axis": axis}, tol_lsb=TOL)


# ---------------------------------------------------------------------------------------- LOGICAL
@pytest.mark.parametrize("op", ["LOGICAL_AND", "LOGICAL_OR"])
@pytest.mark.parametrize("sa,sb", BCAST[:6])
def test_logical_binary(op, sa, sb):
    r = np.random.default_rng(58)
    check_fixed_op(op, [QArr(r.random(sa) > 0.5), QArr(r.random(sb) > 0.5)])


def test_logical_not():
    check_fixed_op("LOGICAL_NOT", [QArr(np.random.default_rng(59).random((3, 4)) > 0.5)])


# ---------------------------------------------------------------------- unquantized (plain) operands
def _int32(shape, seed, low=-50, high=50, nonzero=False):
    v = np.random.default_rng(seed).integers(low, high, shape)
    if nonzero:
        v = np.where(v == 0, 3, v)
    return QArr(v.astype(np.int32))


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE",
                                "FLOOR_DIV", "FLOOR_MOD", *COMPARE])
def test_plain_int32_runs_the_float_kernel(op):
    a, b = _int32((2, 3), 60), _int32((3,), 61, nonzero=True)
    got, _ = check_fixed_op(op, [a, b])
    assert got[0].dtype in (np.int32, np.bool_)


def test_plain_int32_activation():
    a, b = _int32((2, 3), 62), _int32((3,), 63)
    check_fixed_op("ADD", [a, b], {"fused_activation_function": "RELU6"})


def test_plain_shape_ops():
    xs = [_int32((2,), 64), _int32((2,), 65)]
    check_fixed_op("CONCATENATION", xs, {"axis": 0})
    check_fixed_op("PACK", xs, {"values_count": 2, "axis": 0})
    cond = QArr(np.array([True, False]))
    check_fixed_op("SELECT_V2", [cond, *xs])
    check_fixed_op("SELECT", [cond, *xs])


@pytest.mark.parametrize("op", ["EQUAL", "NOT_EQUAL"])
def test_plain_bool_equality(op):
    r = np.random.default_rng(66)
    check_fixed_op(op, [QArr(r.random((3, 4)) > 0.5), QArr(r.random((4,)) > 0.5)])


# --------------------------------------------------------------------------------- refusals, errors
def test_per_channel_input_refused():
    a = QArr(np.zeros((2, 3), np.int16), [0.1, 0.2, 0.3], 0, axis=1)
    with pytest.raises(UnsupportedOpError, match="ADD: input 0.*per channel"):
        _prepare("ADD", [a, q((2, 3), seed=67)], QOut("INT16", 0.1), out_shape=(2, 3))


def test_mixed_quantized_and_plain_rejected():
    with pytest.raises(ModelError, match="mixes quantized and plain"):
        _prepare("ADD", [q((3,), seed=68), _int32((3,), 69)], QOut("INT16", 0.1), out_shape=(3,))


def test_quantized_inputs_need_quantized_output():
    with pytest.raises(ModelError, match="mixes quantized and plain"):
        _prepare("MUL", [q((3,), seed=70), q((3,), seed=71)], QOut("INT16"), out_shape=(3,))


def test_non_broadcasting_shapes_rejected():
    with pytest.raises(ModelError, match="do not broadcast"):
        _prepare("SUB", [q((2, 3), seed=72), q((4,), seed=73)], QOut("INT16", 0.1), out_shape=(2, 3))


def test_compare_output_must_be_bool():
    with pytest.raises(ModelError, match="expected bool"):
        _prepare("LESS", [q((3,), seed=74), q((3,), seed=75)], QOut("INT16", 0.1), out_shape=(3,))


def test_mul_int32_operands_too_wide():
    a = QArr(np.zeros(3, np.int32), 0.1, 7)
    with pytest.raises(UnsupportedOpError, match="MUL: the product of the inputs' ranges"):
        _prepare("MUL", [a, a], QOut("INT16", 0.1), out_shape=(3,))


def test_int64_quantized_input_refused():
    a = QArr(np.zeros(3, np.int64), 0.1)
    with pytest.raises(UnsupportedOpError, match="dtype int64"):
        _prepare("MAXIMUM", [a, a], QOut("INT16", 0.1), out_shape=(3,))


def test_prepare_params_are_integer_only():
    a, b = q((3,), seed=76), divisor((3,), seed=77)
    for op in ARITH + ["DIV", "FLOOR_DIV", "FLOOR_MOD"]:
        sb = QArr(b.q, f32(0.01)) if op.startswith("FLOOR") else b
        sa = QArr(a.q, f32(0.02)) if op.startswith("FLOOR") else a
        assert_integer_params(_prepare(op, [sa, sb], QOut("INT16", 0.1), out_shape=(3,)))


# ---------------------------------------------------------------------------------- CAST
# the shared data-movement harness of test_fixed_shape.py (check: against the float kernel)
def cast_check(x, out, ref_dtype, tol=0.0):
    return check("CAST", [x], None, outputs=[out], tol_lsb=tol, output_dtypes=[ref_dtype])


@pytest.mark.parametrize("src,dst", [("INT32", "INT16"), ("INT16", "INT32"), ("UINT8", "INT8"),
                                     ("INT32", "INT64"), ("INT64", "INT32"), ("INT8", "UINT8")])
def test_cast_plain_integers_wrap_like_numpy(src, dst):
    x = QArr(np.random.default_rng(3).integers(-70000, 70000, (3, 5)).astype(NP[src]))
    got, _ = cast_check(x, QOut(dst), dst)
    np.testing.assert_array_equal(got[0], x.q.astype(NP[dst]))


def test_cast_bool_both_ways():
    b = QArr(np.array([[True, False], [False, True]]))
    got, _ = cast_check(b, QOut("INT32"), "INT32")
    np.testing.assert_array_equal(got[0], [[1, 0], [0, 1]])
    x = QArr(np.array([-3, 0, 7], np.int16))
    got, _ = cast_check(x, QOut("BOOL"), "BOOL")
    np.testing.assert_array_equal(got[0], [True, False, True])


@pytest.mark.parametrize("dtype", DTYPES)
def test_cast_quantized_to_bool_is_real_nonzero(dtype):
    x = qdata((4, 6), dtype, 8)
    x = dataclasses.replace(x, q=np.where(np.arange(24).reshape(4, 6) % 3 == 0, x.zero_point, x.q)
                            .astype(x.q.dtype))
    got, _ = cast_check(x, QOut("BOOL"), "BOOL")
    np.testing.assert_array_equal(got[0], x.q != x.zero_point)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [3 / 256, 0.25, 5.0, 37 / 64])
@pytest.mark.parametrize("dst", ["INT32", "INT16", "INT64"])
def test_cast_quantized_to_int_truncates_like_the_float_op(dtype, scale, dst):
    """Scales with <= 8 mantissa bits keep the float32 reference exact, so results must match."""
    x = qrandom((5, 7), dtype, scale, ZERO_POINT[dtype], rng=np.random.default_rng(9))
    if dst == "INT16" and scale * 65535 >= 32767:
        x = dataclasses.replace(x, q=(x.q // 8).astype(x.q.dtype) if dtype != "UINT8" else x.q)
    got, ref = cast_check(x, QOut(dst), dst)
    assert got[0].dtype == NP[dst]


@given(st.integers(-32768, 32767), st.integers(-300, 300),
       st.floats(1e-9, 2.0 ** 25, allow_nan=False, allow_infinity=False))
def test_trunc_cast_is_exact(q, zp, scale):
    """trunc(scale * (q - zp)) from the two-limb mantissa equals the exact rational result."""
    x = QArr(np.array([q], np.int32).astype(np.int16), scale, zp)
    p = prepare_fixed("CAST", [x], [QOut("INT64")], output_shapes=[(1,)])
    y = ew.cast(x.q, opt=p)
    exact = Fraction(scale) * (q - zp)
    want = int(exact) if exact >= 0 else -int(-exact)
    assert int(y[0]) == want


def test_cast_quantized_to_quantized_and_plain_to_quantized():
    x = qdata((3, 4), "INT16", 10)
    cast_check(x, QOut("UINT8", x.scale * 200, 128), "FLOAT32", HALF)
    cast_check(x, QOut("INT16", x.scale, 0), "FLOAT32", 0)
    plain = QArr(np.array([[-70000, -5, 0, 3], [12, 99, 1000, 70000]], np.int32))
    cast_check(plain, QOut("INT16", 0.37, 0), "FLOAT32", HALF)
    b = QArr(np.array([True, False, True]))
    got, _ = cast_check(b, QOut("UINT8", 1 / 200, 20), "FLOAT32", HALF)
    np.testing.assert_array_equal(got[0], [220, 20, 220])


def test_cast_refusals():
    x32 = QArr(np.array([1, 2], np.int32), 0.5)
    with pytest.raises(UnsupportedOpError, match="8- and 16-bit"):
        prepare_fixed("CAST", [x32], [QOut("INT32")], output_shapes=[(2,)])
    big = QArr(np.array([1, 2], np.int16), 2.0 ** 30)
    with pytest.raises(UnsupportedOpError, match="too large"):
        prepare_fixed("CAST", [big], [QOut("INT32")], output_shapes=[(2,)])
    f = QArr(np.array([1, 2], np.float32))
    with pytest.raises(UnsupportedOpError, match="boundary"):
        prepare_fixed("CAST", [f], [QOut("INT32")], output_shapes=[(2,)])
    i64 = QArr(np.array([1, 2], np.int64))
    with pytest.raises(UnsupportedOpError, match="int64"):
        prepare_fixed("CAST", [i64], [QOut("INT16", 0.1)], output_shapes=[(2,)])
