"""Tests of calibrator_custom/fixed/kernels/activation.py: every op and option against its float kernel
(tests/fixedrunner.check_fixed_op) on inputs covering every input code, with the error bounds the
module docstring states; NaN/inf and saturation values; refusals; hypothesis properties of the
numeric helpers (table builder, quantizer, bit length, integer log)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from calibrator_custom.errors import InputError, ModelError, UnsupportedOpError
from calibrator_custom.fixed.kernels import activation as N
from calibrator_custom.fixed.registry import QParams
from calibrator_custom.model.options import make_options
from calibrator_custom.ops.registry import OpContext, TensorInfo
from fixedrunner import NP, QArr, QOut, check_fixed_op, prepare_fixed, qrandom, run_fixed, run_float, symmetric_out

F32_EPS = 2.0 ** -24  # float32 unit roundoff

# op -> largest |real| of the input (chosen so the interesting part of the op is covered)
UNARY_RANGES = {
    "ABS": 8.0, "NEG": 8.0, "SQUARE": 8.0, "SQRT": 100.0, "RSQRT": 4.0, "EXP": 6.0, "LOG": 50.0,
    "SIN": 10.0, "COS": 10.0, "FLOOR": 10.0, "CEIL": 10.0, "ROUND": 10.0, "RELU": 8.0, "RELU6": 10.0,
    "RELU_N1_TO_1": 3.0, "RELU_0_TO_1": 3.0, "LEAKY_RELU": 8.0, "ELU": 8.0, "LOGISTIC": 12.0,
    "TANH": 5.0, "HARD_SWISH": 8.0, "GELU": 6.0,
}
assert set(UNARY_RANGES) == set(N.UNARY_TABLE_OPS)

# dtype name -> zero point used for inputs of that type
IN_DTYPES = {"INT16": 0, "UINT8": 100, "INT8": -7}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def all_codes(dtype: str, real_max: float, zero_point: int = 0, seed: int = 0, const: bool = False) -> QArr:
    """Every code of ``dtype`` once, shuffled, shaped (k, 256), with a scale mapping the widest side to real_max."""
    info = np.iinfo(NP[dtype])
    codes = rng(seed).permutation(np.arange(info.min, info.max + 1)).astype(NP[dtype]).reshape(-1, 256)
    span = max(info.max - zero_point, zero_point - info.min)
    return QArr(codes, real_max / span, zero_point, const=const)


def finite_out(ref: np.ndarray, dtype: str = "INT16") -> QOut:
    """symmetric_out over the finite values of ``ref`` (NaN/inf excluded)."""
    r = np.asarray(ref, np.float64)
    return symmetric_out(r[np.isfinite(r)], dtype)


def float_ref(op, inputs, options=None):
    opts = make_options(op, options) if options is not None else None
    if opts is None:
        from calibrator_custom.model.options import default_options
        opts = default_options(op)
    return run_float(op, inputs, opts)[0], opts


def qp(dtype: str, scale: float, zero_point: int = 0) -> QParams:
    return QParams(np.asarray(scale, np.float64), np.asarray(zero_point, np.int64), 0, np.dtype(NP[dtype]))


def dq(g: np.ndarray, o: QOut) -> np.ndarray:
    return (g.astype(np.float64) - o.zero_point) * o.scale


# ====================================================================================== unary tables
@pytest.mark.parametrize("dtype", list(IN_DTYPES))
@pytest.mark.parametrize("op", N.UNARY_TABLE_OPS)
def test_unary_table_every_code(op, dtype):
    x = all_codes(dtype, UNARY_RANGES[op], IN_DTYPES[dtype])
    ref, opts = float_ref(op, [x])
    out_dtype = "UINT8" if dtype == "UINT8" else "INT16"
    out = finite_out(ref, out_dtype)
    got, _ = check_fixed_op(op, [x], opts, outputs=[out], tol_lsb=0.5)
    assert got[0].shape == x.q.shape and got[0].dtype == NP[out_dtype]
    assert got[0].shape == ref.shape


@pytest.mark.parametrize("alpha", [0.0, 0.1, 1.0, 1.5, -0.3])
@pytest.mark.parametrize("dtype", ["INT16", "UINT8"])
def test_leaky_relu_alpha(alpha, dtype):
    x = all_codes(dtype, 8.0, IN_DTYPES[dtype])
    check_fixed_op("LEAKY_RELU", [x], {"alpha": alpha}, out_dtype=dtype, tol_lsb=0.5)


@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("dtype", ["INT16", "UINT8", "INT8"])
def test_gelu_approximate(approximate, dtype):
    x = all_codes(dtype, 5.0, IN_DTYPES[dtype])
    got, ref = check_fixed_op("GELU", [x], {"approximate": approximate}, out_dtype="INT16", tol_lsb=0.5)
    if approximate:  # the two forms differ by up to ~5e-4: make sure the option reached the table
        exact, _ = check_fixed_op("GELU", [x], {"approximate": False}, out_dtype="INT16", tol_lsb=0.5)
        assert dtype != "INT16" or not np.array_equal(got[0], exact[0])


@pytest.mark.parametrize("op", ["ABS", "RELU", "TANH", "EXP", "LOGISTIC", "SQUARE"])
@pytest.mark.parametrize("out_factor", [1e-3, 0.3, 40.0])
def test_unary_scale_ratios_and_saturation(op, out_factor):
    """Output scales far finer (most values saturate) and far coarser than the input's."""
    x = all_codes("INT16", UNARY_RANGES[op])
    ref, opts = float_ref(op, [x])
    out = QOut("INT16", float(x.scale) * out_factor)
    got, _ = check_fixed_op(op, [x], opts, outputs=[out], tol_lsb=0.5)
    lim = 32767 * out.scale
    r = ref.astype(np.float64)
    assert np.all(got[0][r > lim + out.scale] == 32767)
    assert np.all(got[0][r < -lim - out.scale] == -32768)


@pytest.mark.parametrize("out_dtype", ["INT8", "UINT8", "INT32"])
def test_unary_output_dtypes(out_dtype):
    x = all_codes("INT16", 6.0)
    ref, opts = float_ref("TANH", [x])
    got, _ = check_fixed_op("TANH", [x], opts, outputs=[finite_out(ref, out_dtype)], tol_lsb=0.5)
    assert got[0].dtype == NP[out_dtype]
    # INT32 output: 0.5 LSB of a 2**31 range, i.e. the float32 precision of the float kernel itself
    if out_dtype == "INT32":
        o = finite_out(ref, "INT32")
        assert np.max(np.abs(dq(got[0], o) - ref)) <= 0.5 * o.scale * (1 + 1e-9)


def test_unary_int16_to_uint8_asymmetric_output():
    x = all_codes("INT16", 8.0)
    ref, opts = float_ref("ELU", [x])
    out = QOut("UINT8", (float(ref.max()) + 1.0) / 255, 26)
    check_fixed_op("ELU", [x], opts, outputs=[out], tol_lsb=0.5)


@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 4), (1, 2, 3, 4, 5)], ids=str)
def test_unary_shapes(shape):
    x = qrandom(shape, "INT16", rng=rng(3))
    got, _ = check_fixed_op("LOGISTIC", [x], tol_lsb=0.5)
    assert got[0].shape == shape


# --------------------------------------------------------------------- values outside the domain
def _run_unary(op, x: QArr, out: QOut, options=None):
    opts = make_options(op, options) if options is not None else None
    return run_fixed(op, [x], [out], [x.q.shape], opts)[0]


@pytest.mark.parametrize("dtype", ["INT16", "UINT8"])
def test_domain_edges_sqrt_rsqrt_log(dtype):
    zp = IN_DTYPES[dtype]
    x = all_codes(dtype, 10.0, zp)
    real = x.real()
    out = QOut(dtype, 0.01, 0 if dtype == "INT16" else 20)
    lo, hi = np.iinfo(NP[dtype]).min, np.iinfo(NP[dtype]).max
    neg, zero = real < 0, real == 0
    sq = _run_unary("SQRT", x, out)
    assert np.all(sq[neg] == out.zero_point)  # sqrt(x < 0) -> value at 0 (real 0)
    rs = _run_unary("RSQRT", x, out)
    assert np.all(rs[neg | zero] == hi)  # rsqrt(x <= 0) -> +inf -> qmax
    lg = _run_unary("LOG", x, out)
    assert np.all(lg[neg | zero] == lo)  # log(x <= 0) -> -inf -> qmin
    # positive codes still agree with the float kernel (check_fixed_op skips NaN references)
    for op in ("SQRT", "RSQRT", "LOG"):
        check_fixed_op(op, [x], outputs=[out], tol_lsb=0.5)


def test_exp_overflow_saturates():
    x = all_codes("INT16", 120.0)  # exp overflows float32 above ~88.7
    got = _run_unary("EXP", x, QOut("INT16", 1.0))
    assert np.all(got[x.real() > 89] == 32767)
    assert np.all(got[x.real() < -1] == 0)
    check_fixed_op("EXP", [x], outputs=[QOut("INT16", 1.0)], tol_lsb=0.5)


def test_quantize_reals_special_values():
    out = qp("INT16", 0.5, 3)
    got = N.quantize_reals(np.array([np.inf, -np.inf, np.nan, 0.25, -0.25, -0.75, 1e30], np.float32), out)
    assert got.dtype == np.int16
    # 0.25/0.5 = 0.5 -> rounds half up to 1; -0.5 -> 0; -1.5 -> -1
    np.testing.assert_array_equal(got, [32767, -32768, 3, 4, 3, 2, 32767])


def test_nan_result_gives_zero_point():
    # POW(-2, 0.5) is NaN: the output zero point
    base = QArr(np.array([-2, 2], np.int8), 1.0, 0)
    e = QArr(np.array([1], np.int16), 0.5, 0, const=True)
    got = run_fixed("POW", [base, e], [QOut("UINT8", 0.01, 40)], [(2,)])[0]
    np.testing.assert_array_equal(got, [40, 40 + round(math.sqrt(2) / 0.01)])


# ---------------------------------------------------------------------------- plain integer ABS/NEG
@pytest.mark.parametrize("op", ["ABS", "NEG"])
def test_plain_int32_abs_neg(op):
    x = QArr(rng(1).integers(-1000, 1000, (3, 7)).astype(np.int32))
    got, _ = check_fixed_op(op, [x], outputs=[QOut("INT32")])
    assert got[0].dtype == np.int32


# --------------------------------------------------------------------------------------- refusals
def _ctx(op, inputs, outputs, options=None) -> OpContext:
    return OpContext(3, op, tuple(inputs), tuple(outputs), options)


def _qinfo(name, shape, dtype, scale=0.1, zp=0, data=None, axis=0):
    from calibrator_custom.model.graph import Quantization
    s = tuple(np.atleast_1d(scale).astype(float).tolist())
    z = tuple(np.atleast_1d(np.broadcast_to(zp, np.shape(np.atleast_1d(scale)))).astype(int).tolist())
    return TensorInfo(name, tuple(shape), np.dtype(dtype), data, Quantization(scale=s, zero_point=z,
                                                                            quantized_dimension=axis))


def test_unary_refuses_int32_and_per_channel_inputs():
    from calibrator_custom.fixed.registry import get_fixed_op
    prep = get_fixed_op("TANH").prepare
    out = _qinfo("y", (4,), np.int16)
    with pytest.raises(UnsupportedOpError, match="at most 16-bit"):
        prep(_ctx("TANH", [_qinfo("x", (4,), np.int32)], [out]))
    with pytest.raises(UnsupportedOpError, match="per channel"):
        prep(_ctx("TANH", [_qinfo("x", (4,), np.int16, scale=[0.1, 0.2, 0.3, 0.4])], [out]))
    with pytest.raises(ModelError, match="no quantization"):
        prep(_ctx("TANH", [TensorInfo("x", (4,), np.dtype(np.int16))], [out]))


# ============================================================================================== POW
@pytest.mark.parametrize("exponent", [2.0, 3.0, 0.5, -1.0, 0.0, 1.75, -2.5])
@pytest.mark.parametrize("dtype", ["INT16", "UINT8"])
def test_pow_constant_scalar_exponent(exponent, dtype):
    x = all_codes(dtype, 4.0, IN_DTYPES[dtype])
    e = QArr(np.array([round(exponent * 8192)], np.int16), 1 / 8192, 0, const=True)
    ref, opts = float_ref("POW", [x, e])
    out = finite_out(ref, "INT16")
    check_fixed_op("POW", [x, e], opts, outputs=[out], tol_lsb=0.5)


def test_pow_constant_exponent_tensor_broadcast():
    x = qrandom((2, 1, 1, 5), "INT16", 3.0 / 32767, rng=rng(4))
    e = QArr(np.array([[8192, -8192, 16384], [24576, 16384, 0], [4096, 8192, 8192], [0, 0, 1]], np.int16)[..., None],
             1 / 8192, 0, const=True)  # exponents 1, -1, 2, 3, 0.5, 0, ... shape (4, 3, 1)
    ref, opts = float_ref("POW", [x, e])
    got, _ = check_fixed_op("POW", [x, e], opts, outputs=[finite_out(ref)], tol_lsb=0.5)
    assert got[0].shape == (2, 4, 3, 5) == ref.shape


def test_pow_constant_base_runtime_exponent():
    base = QArr(np.array([200, -300, 16384], np.int16).reshape(3, 1, 1), 1 / 8192, 0, const=True)  # 0.024, -0.037, 2
    ex = all_codes("INT16", 3.0)
    ref, opts = float_ref("POW", [base, ex])
    check_fixed_op("POW", [base, ex], opts, outputs=[finite_out(ref)], tol_lsb=0.5)


@pytest.mark.parametrize("dtypes", [("UINT8", "UINT8"), ("INT8", "UINT8"), ("INT8", "INT8")])
def test_pow_two_runtime_8bit(dtypes):
    a = all_codes(dtypes[0], 3.0, IN_DTYPES[dtypes[0]]).q.reshape(-1, 1)
    b = all_codes(dtypes[1], 2.5, IN_DTYPES[dtypes[1]], seed=1).q.reshape(1, -1)
    xa = QArr(a, 3.0 / 155 if dtypes[0] == "UINT8" else 3.0 / 121, IN_DTYPES[dtypes[0]])
    xb = QArr(b, 2.5 / 155 if dtypes[1] == "UINT8" else 2.5 / 121, IN_DTYPES[dtypes[1]])
    ref, opts = float_ref("POW", [xa, xb])
    got, _ = check_fixed_op("POW", [xa, xb], opts, outputs=[finite_out(ref)], tol_lsb=0.5)
    assert got[0].shape == (256, 256)


def pow_tol(params, out: QOut) -> float:
    """Stated exp/log bound over the whole output range + the float32 rounding of the reference."""
    y_max = np.iinfo(NP[out.dtype]).max - np.iinfo(NP[out.dtype]).min + 1.0
    return N.pow_error_bound_lsb(params, y_max) + y_max * 2 * F32_EPS


@pytest.mark.parametrize("case", [
    ("INT16", 4.0, 0, "INT16", 3.0, 64.0),      # a in +-4, b in +-3
    ("INT16", 8.0, -20000, "INT16", 0.5, 4.0),  # asymmetric base, mostly positive
    ("INT16", 2.0, 0, "INT16", 8.0, 1.0),       # large exponents: most results saturate or vanish
    ("INT16", 3.0, 0, "UINT8", 2.0, 16.0),      # 65536 x 256 codes: too many for a pair table
    ("UINT8", 5.0, 0, "INT16", 2.0, 30.0),
], ids=str)
def test_pow_two_runtime_wide_exp_log(case):
    da, ra, za, db, rb, out_max = case
    a = qrandom((256, 256), da, ra / 32767 if da == "INT16" else ra / 255, za, rng=rng(20))
    b = qrandom((256, 256), db, rb / 32767 if db == "INT16" else rb / 128, 0 if db == "INT16" else 128,
                rng=rng(21))
    out = QOut("INT16", out_max / 32767)
    params = _prepare_params("POW", [a, b], out, None)
    assert isinstance(params, N.PowExpLogParams)
    tol = pow_tol(params, out)
    assert tol < 0.55
    got, _ = check_fixed_op("POW", [a, b], outputs=[out], tol_lsb=tol)
    assert got[0].shape == (256, 256) and got[0].dtype == np.int16


def test_pow_exp_log_special_values():
    """0**b (b > 0: 0, b = 0: 1, b < 0: +inf), negative bases with even/odd/fractional exponents."""
    a = QArr(np.array([0, 0, 0, -2000, -2000, -2000, 2000, -1], np.int16), 1e-3, 0)
    b = QArr(np.array([1500, 0, -1000, 2000, 3000, 1500, -1000, 0], np.int16), 1e-3, 0)
    out = QOut("INT16", 1e-3, 5)
    params = _prepare_params("POW", [a, b], out, None)
    assert isinstance(params, N.PowExpLogParams)
    got = run_fixed("POW", [a, b], [out], [(8,)])[0]
    # 0, 1, inf, (-2)**2 = 4, (-2)**3 = -8, NaN, 2**-1 = 0.5, (-0.001)**0 = 1
    np.testing.assert_array_equal(got, [5, 1005, 32767, 4005, -7995, 5, 505, 1005])


def test_pow_constant_with_many_distinct_values_uses_exp_log():
    many = QArr(rng(22).integers(-16000, 16000, (1000,)).astype(np.int16), 1e-4, 0, const=True)
    x = all_codes("INT16", 4.0).q.reshape(-1)[:1000]
    x = QArr(np.abs(x).astype(np.int16), 4.0 / 32768)
    out = QOut("INT16", 8.0 / 32767)
    params = _prepare_params("POW", [x, many], out, None)
    assert isinstance(params, N.PowExpLogParams)
    check_fixed_op("POW", [x, many], outputs=[out], tol_lsb=pow_tol(params, out))


def test_pow_refuses_extreme_operand_ranges():
    a = QArr(np.array([1, 2], np.int16), 1e-30, 0)
    b = QArr(np.array([1, 30000], np.int16), 1e6, 0)
    with pytest.raises(UnsupportedOpError, match="too few fraction bits"):
        run_fixed("POW", [a, b], [QOut("INT16", 0.01)], [(2,)])


@given(st.integers(-31 * 2 ** 30, 33 * 2 ** 30 - 1))
def test_exp2_fixed_accuracy(u):
    got = int(N._exp2_fixed(np.array([u], np.int64))[0])
    want = 2.0 ** (u * 2.0 ** -30)
    assert abs(got - want) <= 0.5 + want * 2.0 ** -29


def test_pow_plain_int32():
    a = QArr(rng(0).integers(-9, 9, (3, 4)).astype(np.int32))
    b = QArr(rng(1).integers(0, 5, (4,)).astype(np.int32))
    check_fixed_op("POW", [a, b], outputs=[QOut("INT32")])
    with pytest.raises(InputError, match="negative exponent"):
        run_fixed("POW", [a, QArr(np.array([-1], np.int32))], [QOut("INT32")], [(3, 4)])


# ============================================================================================ PRELU
PRELU_TOL = 0.5 + 2.0 ** -11 + 32768 * 4 * F32_EPS  # stated bound + the float32 product alpha*x


@pytest.mark.parametrize("alpha_const", [True, False])
@pytest.mark.parametrize("dtype", ["INT16", "UINT8"])
@pytest.mark.parametrize("shapes", [((3, 4, 8), (8,)), ((2, 3, 4, 8), (1, 1, 8)), ((5, 6), ()),
                                    ((2, 3, 4), (2, 3, 4))], ids=str)
def test_prelu(alpha_const, dtype, shapes):
    xs, as_ = shapes
    x = qrandom(xs, dtype, 6.0 / 32767 if dtype == "INT16" else 8.0 / 255, IN_DTYPES[dtype], rng=rng(5))
    # alphas in [-0.6, 1.8]: in [0, 1], negative and > 1
    a = QArr(np.asarray(rng(6).integers(-9830, 29491, as_, endpoint=True), np.int16), 1.8 / 29491, 0,
             const=alpha_const)
    got, _ = check_fixed_op("PRELU", [x, a], out_dtype=dtype, tol_lsb=PRELU_TOL)
    assert got[0].shape == xs


def test_prelu_every_code_and_per_channel_alpha():
    x = all_codes("INT16", 4.0)  # (256, 256): last axis 256 channels
    scales = np.linspace(1e-5, 3e-5, 256)
    a = QArr(rng(7).integers(-32768, 32767, (256,), endpoint=True).astype(np.int16), scales, 0, const=True)
    check_fixed_op("PRELU", [x, a], tol_lsb=PRELU_TOL)


@pytest.mark.parametrize("out_factor", [1e-2, 50.0])
def test_prelu_scale_ratios_and_saturation(out_factor):
    x = all_codes("INT16", 4.0)
    a = QArr(np.array([-20000], np.int16), 1e-4, 0, const=True)  # alpha = -2
    out = QOut("INT16", float(x.scale) * out_factor)
    got, ref = check_fixed_op("PRELU", [x, a], outputs=[out], tol_lsb=PRELU_TOL)
    if out_factor < 1:
        assert np.all(got[0][ref[0] > 32768 * out.scale] == 32767)


def test_prelu_uint8_alpha_with_zero_point():
    x = qrandom((4, 16), "UINT8", 0.05, 120, rng=rng(8))
    a = QArr(rng(9).integers(0, 255, (16,), endpoint=True).astype(np.uint8), 0.01, 60, const=False)
    check_fixed_op("PRELU", [x, a], out_dtype="UINT8", tol_lsb=PRELU_TOL)


@given(st.integers(0, 2 ** 32 - 1), st.floats(1e-3, 1e3), st.sampled_from([("INT16", 0), ("UINT8", 90)]))
def test_prelu_float64_form_matches_bigint(seed, out_factor, out):
    """Constant per-channel alpha, input zero point 0: one signed multiplier per channel for x < 0,
    ``f64_multiplier`` for both branches, equal to the documented formula in Python integers."""
    from calibrator_custom.fixed.fixedpoint import f64_multiplier
    g = rng(seed % 1000)
    x = QArr(g.integers(-32768, 32767, (3, 5, 6), endpoint=True).astype(np.int16), 4.0 / 32767)
    alpha_q = g.integers(-32768, 32767, (1, 1, 6), endpoint=True).astype(np.int16)
    alpha_q[0, 0, 0] = 0  # a zero slope too
    a = QArr(alpha_q, 2.0 / 32767, 0, const=True)
    o = QOut(out[0], float(np.float32(4.0 * out_factor / 32767)), out[1])
    params = prepare_fixed("PRELU", [x, a], [o], [(3, 5, 6)])
    assert params.fast is not None
    got = run_fixed("PRELU", [x, a], [o], [(3, 5, 6)])[0]
    assert got.dtype == np.dtype(NP[out[0]]) and got.shape == (3, 5, 6)
    s_in, s_a, s_out = float(x.scale), float(a.scale), float(o.scale)
    pm, ps = (int(v) for v in f64_multiplier(s_in / s_out, 32768))
    neg_real = s_in * s_a * alpha_q.reshape(-1).astype(np.float64) / s_out
    nm, ns = f64_multiplier(np.abs(neg_real), 32768)
    lo, hi = np.iinfo(NP[out[0]]).min, np.iinfo(NP[out[0]]).max
    want = np.empty(x.q.shape, np.int64)
    for idx in np.ndindex(x.q.shape):
        v, c = int(x.q[idx]), idx[-1]
        m, s = (pm, ps) if v >= 0 else (int(nm[c]) * (-1 if neg_real[c] < 0 else 1), int(ns[c]))
        want[idx] = min(hi, max(lo, ((v * m + (1 << (s - 1))) >> s) + out[1]))
    np.testing.assert_array_equal(got, want)


# ========================================================================================== SOFTMAX
def softmax_tol(params, n: int, out: QOut, x: QArr, beta: float) -> float:
    """Stated bound + the float32 reference's own error (x - max in float32, exp, sum, divide)."""
    outq = qp(out.dtype, out.scale, out.zero_point)
    bound = N.softmax_error_bound_lsb(n, outq, params.exp_bits)
    xmax = float(np.max(np.abs(x.real())))
    y_lsb = min(1.0 / out.scale, np.iinfo(NP[out.dtype]).max - out.zero_point + 1)
    return bound + y_lsb * F32_EPS * (4 * abs(beta) * xmax + 2 * math.log2(n) + 8)


def _prepare_params(op, inputs, out: QOut, options):
    from calibrator_custom.fixed.registry import get_fixed_op
    infos = [_qinfo(f"x{i}", x.q.shape, x.q.dtype, x.scale, x.zero_point) for i, x in enumerate(inputs)]
    o = _qinfo("y", inputs[0].q.shape, NP[out.dtype], out.scale, out.zero_point)
    return get_fixed_op(op).prepare(_ctx(op, infos, [o], make_options(op, options)))


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0, -1.0, 0.0])
@pytest.mark.parametrize("dtype", ["INT16", "UINT8"])
def test_softmax_beta(beta, dtype):
    x = qrandom((3, 40), dtype, 8.0 / 32767 if dtype == "INT16" else 10.0 / 255, IN_DTYPES[dtype], rng=rng(10))
    out = QOut(dtype, 1.0 / (np.iinfo(NP[dtype]).max))
    params = _prepare_params("SOFTMAX", [x], out, {"beta": beta})
    tol = softmax_tol(params, 40, out, x, beta)
    got, ref = check_fixed_op("SOFTMAX", [x], {"beta": beta}, outputs=[out], tol_lsb=tol)
    assert got[0].shape == (3, 40) and got[0].dtype == NP[dtype]
    if beta == 0.0:
        assert np.all(got[0] == round(1 / 40 / out.scale))


@pytest.mark.parametrize("n", [1, 7, 1000, 16384])
def test_softmax_lengths_every_code(n):
    x = all_codes("INT16", 12.0)
    q = np.resize(x.q.reshape(-1), (max(1, 65536 // n), n))
    x = QArr(q, x.scale, 0)
    out = QOut("INT16", 1.0 / 32767)
    params = _prepare_params("SOFTMAX", [x], out, {"beta": 1.0})
    tol = softmax_tol(params, n, out, x, 1.0)
    assert N.softmax_error_bound_lsb(n, qp("INT16", 1 / 32767), params.exp_bits) < 0.5 + 2.0 ** -16
    check_fixed_op("SOFTMAX", [x], {"beta": 1.0}, outputs=[out], tol_lsb=tol)


@pytest.mark.parametrize("in_scale", [1e-5, 1e-3, 0.05])
@pytest.mark.parametrize("out_scale", [1 / 32767, 0.5 / 32767, 4e-3, 1e-7])
def test_softmax_scale_ratios_and_saturation(in_scale, out_scale):
    """Tiny input scales (near-uniform), coarse ones (one-hot), and outputs covering only part of [0, 1]."""
    x = qrandom((4, 33), "INT16", in_scale, rng=rng(11))
    out = QOut("INT16", out_scale)
    params = _prepare_params("SOFTMAX", [x], out, {"beta": 1.0})
    got, ref = check_fixed_op("SOFTMAX", [x], {"beta": 1.0}, outputs=[out],
                              tol_lsb=softmax_tol(params, 33, out, x, 1.0))
    assert np.all(got[0][ref[0] > 32767.5 * out_scale] == 32767)


@pytest.mark.parametrize("shape", [(9,), (2, 3, 17), (2, 2, 2, 5)], ids=str)
def test_softmax_ranks_and_uint8_output_zero_point(shape):
    x = qrandom(shape, "INT16", 4.0 / 32767, rng=rng(12))
    out = QOut("UINT8", 1.2 / 255, 30)  # covers [-0.14, 1.06]
    params = _prepare_params("SOFTMAX", [x], out, {"beta": 1.0})
    got, _ = check_fixed_op("SOFTMAX", [x], {"beta": 1.0}, outputs=[out],
                            tol_lsb=softmax_tol(params, shape[-1], out, x, 1.0))
    assert got[0].shape == shape and got[0].min() >= 30


def test_softmax_equal_row_and_empty():
    x = QArr(np.full((2, 5), 1234, np.int16), 0.01, 0)
    got, _ = check_fixed_op("SOFTMAX", [x], {"beta": 1.0}, outputs=[QOut("INT16", 1 / 32767)], tol_lsb=0.5)
    assert np.all(got[0] == round(32767 / 5))
    empty = run_fixed("SOFTMAX", [QArr(np.zeros((0, 4), np.int16), 0.01)], [QOut("INT16", 1 / 32767)], [(0, 4)],
                      make_options("SOFTMAX", {"beta": 1.0}))[0]
    assert empty.shape == (0, 4) and empty.dtype == np.int16


@given(st.integers(1, 1 << 16), st.floats(1e-6, 10.0), st.sampled_from(["INT16", "UINT8", "INT8"]),
       st.floats(1e-8, 1.0))
def test_softmax_tables_fit_int64(n, in_scale, out_dtype, out_scale):
    """P keeps every T entry and every row sum below 2**62, and E[0] = 2**P exactly."""
    out = qp(out_dtype, out_scale, 0)
    p = N.softmax_exp_bits(n, out)
    assert 1 <= p <= 50
    e = N.exp_table(qp("INT16", in_scale), 1.0, p)
    assert e[0] == 1 << p and np.all(np.diff(e) <= 0) and e.min() >= 0
    assert n * (1 << p) < 2 ** 62
    assert (1 << p) * min(math.ceil(1 / out_scale), n * (out.qmax + 1)) <= 2 ** 62


# ====================================================================================== LOG_SOFTMAX
def log_softmax_tol(params, n: int, out: QOut, x: QArr) -> float:
    outq = qp(out.dtype, out.scale, out.zero_point)
    y_max = np.iinfo(NP[out.dtype]).max - np.iinfo(NP[out.dtype]).min
    bound = N.log_softmax_error_bound_lsb(n, outq, params.exp_bits, y_max)
    xmax = float(np.max(np.abs(x.real())))
    return bound + F32_EPS * (6 * xmax + 4 * math.log(n + 1) + 4) / out.scale


@pytest.mark.parametrize("dtype", ["INT16", "UINT8", "INT8"])
@pytest.mark.parametrize("n", [1, 10, 1000])
def test_log_softmax(dtype, n):
    x = all_codes(dtype, 8.0, IN_DTYPES[dtype])
    x = QArr(np.resize(x.q.reshape(-1), (max(2, 65536 // n // 8), n)), x.scale, x.zero_point)
    ref, _ = float_ref("LOG_SOFTMAX", [x])
    out = symmetric_out(ref, "INT16" if dtype == "INT16" else dtype)
    params = _prepare_params("LOG_SOFTMAX", [x], out, None)
    tol = log_softmax_tol(params, n, out, x)
    assert tol < 0.52
    got, _ = check_fixed_op("LOG_SOFTMAX", [x], outputs=[out], tol_lsb=tol)
    assert got[0].shape == x.q.shape and got[0].dtype == NP[out.dtype]


@pytest.mark.parametrize("in_scale,out_scale", [(1e-4, 2e-5), (1e-3, 1e-3), (0.05, 1e-3), (2e-3, 0.4)])
def test_log_softmax_scale_ratios_and_saturation(in_scale, out_scale):
    x = qrandom((3, 50), "INT16", in_scale, rng=rng(13))
    out = QOut("INT16", out_scale)
    params = _prepare_params("LOG_SOFTMAX", [x], out, None)
    got, ref = check_fixed_op("LOG_SOFTMAX", [x], outputs=[out], tol_lsb=log_softmax_tol(params, 50, out, x))
    assert np.all(got[0][ref[0] < -32768.5 * out_scale] == -32768)


def test_log_softmax_refuses_extreme_scales():
    x = qrandom((2, 4), "INT16", 1.0)
    with pytest.raises(UnsupportedOpError, match="scales out of range"):
        run_fixed("LOG_SOFTMAX", [x], [QOut("INT16", 1e-8)], [(2, 4)])


@given(st.integers(1, 2 ** 63 - 1), st.integers(0, 62))
def test_ln_fixed_accuracy(n, minus_log2):
    got = int(N.ln_fixed(np.array([n], np.int64), minus_log2)[0])
    want = math.log(n) - minus_log2 * math.log(2)
    assert abs(got * 2.0 ** -N.LN_FRAC_BITS - want) <= N.LN_ERROR


def test_ln_fixed_powers_of_two_and_neighbours():
    ns = np.array([1, 2, 3, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 62 - 1, 2 ** 62, 2 ** 63 - 1], np.int64)
    got = N.ln_fixed(ns) * 2.0 ** -N.LN_FRAC_BITS
    want = np.array([math.log(int(v)) for v in ns])
    assert np.max(np.abs(got - want)) <= N.LN_ERROR


# ================================================================================= L2_NORMALIZATION
def l2_tol(out: QOut, act: str = "NONE") -> float:
    """Stated bound (|y/s_out| <= qmax - qmin) + float32 reference error (sum, sqrt, divide, tanh)."""
    y_max = 1.0 / out.scale
    bound = 0.5 + min(y_max, 65536) * 2.0 ** -29
    if act == "TANH":
        bound = 0.5 + (2.0 ** -20 + 2.0 ** -29) / out.scale
    return bound + min(y_max, 65536) * 8 * F32_EPS


@pytest.mark.parametrize("act", ["NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH"])
@pytest.mark.parametrize("dtype", ["INT16", "UINT8", "INT8"])
def test_l2_normalization_activations(act, dtype):
    x = all_codes(dtype, 5.0, IN_DTYPES[dtype])
    x = QArr(x.q.reshape(-1, 16), x.scale, x.zero_point)
    ref, opts = float_ref("L2_NORMALIZATION", [x], {"fused_activation_function": act})
    out = symmetric_out(ref, "INT16" if dtype == "INT16" else "UINT8")
    got, _ = check_fixed_op("L2_NORMALIZATION", [x], opts, outputs=[out], tol_lsb=l2_tol(out, act))
    assert got[0].shape == x.q.shape


@pytest.mark.parametrize("n", [1, 3, 64, 4096])
def test_l2_normalization_lengths(n):
    x = qrandom((3, n), "INT16", 2.0 / 32767, rng=rng(14))
    out = QOut("INT16", 1 / 32767)
    check_fixed_op("L2_NORMALIZATION", [x], outputs=[out], tol_lsb=l2_tol(out))


@pytest.mark.parametrize("out_scale", [1 / 32767, 0.3 / 32767, 1e-7, 0.2, 3.0])
def test_l2_normalization_output_scales(out_scale):
    """Fine output scales saturate, coarse ones (even > 2: every value rounds to 0) stay exact."""
    x = qrandom((5, 7), "INT16", 1e-2, rng=rng(15))
    x = QArr(np.concatenate([x.q, np.array([[1, 0, 0, 0, 0, 0, -2]], np.int16)]), x.scale)  # small row
    out = QOut("INT16", out_scale)
    got, ref = check_fixed_op("L2_NORMALIZATION", [x], outputs=[out], tol_lsb=l2_tol(out))
    if out_scale > 2:
        assert np.all(got[0] == 0)


def test_l2_normalization_zero_rows_and_epsilon():
    # all-zero row -> zero point; s_in < 1e-6 makes small rows use x * s_in / 1e-6
    x = QArr(np.array([[0, 0, 0], [1, -1, 2], [3000, 4000, 0]], np.int16), 1e-8, 0)
    ref, _ = float_ref("L2_NORMALIZATION", [x])
    out = QOut("UINT8", 2.0 / 255, 128)
    got, _ = check_fixed_op("L2_NORMALIZATION", [x], outputs=[out], tol_lsb=l2_tol(out))
    assert np.all(got[0][0] == 128)
    np.testing.assert_allclose(ref[1], np.array([1, -1, 2]) * 1e-8 / 1e-6, rtol=1e-5)  # epsilon branch taken


def test_l2_normalization_refuses_sign_bit():
    x = qrandom((2, 4), "INT16")
    with pytest.raises((UnsupportedOpError, ModelError)):
        run_fixed("L2_NORMALIZATION", [x], [QOut("INT16", 1 / 32767)], [(2, 4)],
                  make_options("L2_NORMALIZATION", {"fused_activation_function": "SIGN_BIT"}))


# ============================================================================ numeric helper properties
@given(st.sampled_from(["INT16", "UINT8", "INT8", "INT32"]), st.floats(1e-6, 1e3), st.integers(-300, 300),
       st.lists(st.floats(-1e6, 1e6) | st.sampled_from([math.nan, math.inf, -math.inf]), min_size=1, max_size=30))
def test_quantize_reals_round_half_up_and_saturate(dtype, scale, zp, values):
    info = np.iinfo(NP[dtype])
    zp = int(np.clip(zp, info.min, info.max))
    out = qp(dtype, scale, zp)
    y = np.asarray(values, np.float64)
    got = N.quantize_reals(y, out)
    assert got.dtype == NP[dtype] and got.shape == y.shape
    for v, g in zip(y, got.tolist()):
        if math.isnan(v):
            assert g == zp
        elif math.isinf(v):
            assert g == (info.max if v > 0 else info.min)
        else:
            assert g == min(max(math.floor(v / scale + 0.5) + zp, info.min), info.max)


@given(st.sampled_from(["INT16", "UINT8", "INT8"]), st.floats(1e-5, 1.0), st.integers(-128, 255))
def test_code_reals_roundtrip(dtype, scale, zp):
    info = np.iinfo(NP[dtype])
    zp = int(np.clip(zp, info.min, info.max))
    p = qp(dtype, scale, zp)
    reals = N.code_reals(p)
    assert reals.dtype == np.float32 and reals.size == info.max - info.min + 1
    np.testing.assert_array_equal(N.quantize_reals(reals, p), np.arange(info.min, info.max + 1))


TABLE_OPS = ["TANH", "EXP", "SQRT", "LOG", "HARD_SWISH", "GELU", "LEAKY_RELU", "SIN"]


@given(st.sampled_from(TABLE_OPS), st.sampled_from(["UINT8", "INT8"]), st.floats(1e-3, 0.2),
       st.integers(-128, 255), st.sampled_from(["INT16", "UINT8", "INT8"]), st.floats(1e-4, 1.0),
       st.integers(-20, 20))
def test_build_unary_table_matches_per_code_float(op, in_dtype, in_scale, in_zp, out_dtype, out_scale, out_zp):
    """Each entry is the float kernel at that one code, quantized; monotone ops give monotone tables."""
    ii, oi = np.iinfo(NP[in_dtype]), np.iinfo(NP[out_dtype])
    inp = qp(in_dtype, in_scale, int(np.clip(in_zp, ii.min, ii.max)))
    out = qp(out_dtype, out_scale, int(np.clip(out_zp, oi.min, oi.max)))
    opts = make_options(op, {"alpha": 0.2} if op == "LEAKY_RELU" else None) if op in ("LEAKY_RELU", "GELU") else None
    ctx = _ctx(op, [TensorInfo("x", (4,), NP[in_dtype])], [TensorInfo("y", (4,), NP[out_dtype])], opts)
    table = N.build_unary_table(ctx, inp, out)
    assert table.dtype == NP[out_dtype] and table.size == ii.max - ii.min + 1
    for c in (ii.min, int(inp.zero_point), ii.max, (ii.min + ii.max) // 2):
        real = np.float32((c - int(inp.zero_point)) * float(inp.scale))
        if op in ("SQRT", "LOG"):
            real = max(real, np.float32(0))
        y = N.eval_float_op(ctx, [np.array([real], np.float32)])
        assert table[c - ii.min] == N.quantize_reals(y, out)[0]
    if op in ("TANH", "EXP", "SQRT", "LOG", "LEAKY_RELU"):
        assert np.all(np.diff(table.astype(np.int64)) >= 0)


@given(st.lists(st.integers(0, 2 ** 63 - 1), min_size=1, max_size=40))
def test_bit_length(values):
    got = N.bit_length(np.array(values, np.int64))
    assert got.tolist() == [v.bit_length() for v in values]


def test_all_ops_registered():
    from calibrator_custom.fixed.registry import supported_fixed_ops
    have = set(supported_fixed_ops())
    assert set(N.UNARY_TABLE_OPS) | {"POW", "PRELU", "SOFTMAX", "LOG_SOFTMAX", "L2_NORMALIZATION"} <= have


def test_pow_exp_log_trivial_operands():
    """Bases in {-1, 0, 1} and exponents all 0 (log tables of zeros): no oversized shifts."""
    a = QArr(np.tile(np.array([-1, 0, 1], np.int16), 100), 1.0, 0)
    b = QArr(np.zeros(300, np.int16), 1.0, 0)
    b2 = QArr(np.tile(np.array([0, 2, 3], np.int16), 100), 1.0, 0)
    out = QOut("INT16", 1 / 64)
    for e in (b, b2):
        params = _prepare_params("POW", [a, e], out, {})
        assert isinstance(params, N.PowExpLogParams)
        got, ref = check_fixed_op("POW", [a, e], outputs=[out], tol_lsb=0.5)
        np.testing.assert_array_equal(got[0], np.round(ref[0] * 64))


# ================================================== stated bounds against exact float64 references
def _exact_err_lsb(got: np.ndarray, exact: np.ndarray, out: QOut) -> np.ndarray:
    info = np.iinfo(got.dtype)
    want = np.clip(exact, (info.min - out.zero_point) * out.scale, (info.max - out.zero_point) * out.scale)
    return np.abs(dq(got, out) - want) / out.scale


def _real64(x: QArr) -> np.ndarray:
    return (x.q.astype(np.float64) - x.zero_point) * x.scale


@pytest.mark.parametrize("beta", [1.0, -0.7])
def test_softmax_and_log_softmax_bounds_exact(beta):
    """Without the float32 reference's noise the stated bounds hold as written."""
    x = qrandom((64, 300), "INT16", 10.0 / 32767, rng=rng(30))
    r = _real64(x)
    ref = np.exp(beta * (r - (r.max(-1, keepdims=True) if beta > 0 else r.min(-1, keepdims=True))))
    ref /= ref.sum(-1, keepdims=True)
    out = QOut("INT16", 1 / 32767)
    params = _prepare_params("SOFTMAX", [x], out, {"beta": beta})
    got = run_fixed("SOFTMAX", [x], [out], [x.q.shape], make_options("SOFTMAX", {"beta": beta}))[0]
    assert _exact_err_lsb(got, ref, out).max() <= N.softmax_error_bound_lsb(300, qp("INT16", out.scale),
                                                                            params.exp_bits)
    d = r - r.max(-1, keepdims=True)
    lref = d - np.log(np.exp(d).sum(-1, keepdims=True))
    out = QOut("INT16", 12.0 / 32767)
    params = _prepare_params("LOG_SOFTMAX", [x], out, None)
    got = run_fixed("LOG_SOFTMAX", [x], [out], [x.q.shape])[0]
    bound = N.log_softmax_error_bound_lsb(300, qp("INT16", out.scale), params.exp_bits, 32768)
    assert _exact_err_lsb(got, lref, out).max() <= bound


def test_l2_and_prelu_bounds_exact():
    x = qrandom((200, 40), "INT16", 3.0 / 32767, rng=rng(31))
    r = _real64(x)
    out = QOut("INT16", 1 / 32767)
    got = run_fixed("L2_NORMALIZATION", [x], [out], [x.q.shape])[0]
    ref = r / np.sqrt((r * r).sum(-1, keepdims=True))
    assert _exact_err_lsb(got, ref, out).max() <= 0.5 + 32768 * 2.0 ** -29
    a = QArr(rng(32).integers(-32768, 32767, (40,), endpoint=True).astype(np.int16), 2.0 / 32767, 0, const=True)
    out = QOut("INT16", 3.0 / 32767)
    got = run_fixed("PRELU", [x, a], [out], [x.q.shape])[0]
    ref = np.where(r >= 0, r, r * _real64(a))
    assert _exact_err_lsb(got, ref, out).max() <= 0.5 + 32768 * 2.0 ** -27


def test_pow_exp_log_bound_exact():
    a = qrandom((256, 256), "INT16", 4.0 / 32767, rng=rng(33))
    b = qrandom((256, 256), "INT16", 3.0 / 32767, rng=rng(34))
    out = QOut("INT16", 64.0 / 32767)
    params = _prepare_params("POW", [a, b], out, None)
    got = run_fixed("POW", [a, b], [out], [(256, 256)])[0]
    with np.errstate(all="ignore"):  # the tables see the float32 dequantized operands, as the float op does
        ref = np.power(a.real().astype(np.float64), b.real().astype(np.float64))
    ok = np.isfinite(ref)
    assert _exact_err_lsb(got[ok], ref[ok], out).max() <= N.pow_error_bound_lsb(params, 32768)
