"""Tests of calibrator_custom/ops/elementwise.py: LiteRT differential tests (reference kernels) for every
op, dtype and option, plus prepare validation, edge values and naive-loop references."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from calibrator_custom.errors import InputError, ModelError
from calibrator_custom.model.graph import Model
from calibrator_custom.model.options import default_options
from calibrator_custom.ops import elementwise as E
from calibrator_custom.ops.registry import OpContext, TensorInfo, get_op
from oprunner import (Const, assert_outputs_match, build_single_op, check_against_litert, run_model_litert,
                      run_model_ours, run_ours)

ACTS = ["NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH"]
# (shape a, shape b): equal, scalar, trailing, middle, both sides, rank mismatch, 5-D
BCAST = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), ()), ((1, 3, 4), (4,)), ((2, 3, 4), (3, 1)),
         ((2, 1, 4), (1, 3, 1)), ((3,), (2, 1, 1, 3)), ((2, 1, 2, 3, 2), (1, 3, 1, 1, 2))]
BCAST4 = BCAST[:6]  # ops whose TFLite kernels broadcast up to 4-D only


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def f32(shape, seed=0, scale=3.0) -> np.ndarray:
    return (rng(seed).standard_normal(shape) * scale).astype(np.float32)


def ints(shape, lo=-20, hi=20, seed=0, dtype=np.int32) -> np.ndarray:
    return rng(seed).integers(lo, hi, shape).astype(dtype)


def nonzero_ints(shape, seed=1, dtype=np.int32) -> np.ndarray:
    v = rng(seed).integers(1, 7, shape) * rng(seed + 1).choice([-1, 1], shape)
    return np.asarray(v).astype(dtype)


def check_other_resolver(op, inputs, options=None, **kw):
    """Like check_against_litert, against the optimized kernels (for ops BUILTIN_REF lacks)."""
    model, feeds = build_single_op(op, inputs, options, **kw)
    data = model.to_bytes()
    ours = run_model_ours(Model.from_bytes(data), feeds)
    ref = run_model_litert(data, feeds, resolver="BUILTIN_WITHOUT_DEFAULT_DELEGATES")
    assert_outputs_match(ours, ref, what=op)
    return ours, ref


def ctx_for(op, inputs, options=None, outputs=None) -> OpContext:
    """An OpContext from (shape, dtype[, data]) tuples."""
    ins = tuple(None if t is None else TensorInfo(f"t{i}", tuple(t[0]), np.dtype(t[1]), t[2] if len(t) > 2 else None)
                for i, t in enumerate(inputs))
    outs = outputs or (TensorInfo("y", (), np.dtype(np.float32)),)
    return OpContext(3, op, ins, outs, options if options is not None else default_options(op))


def prepare(op, inputs, options=None, outputs=None):
    return get_op(op).prepare(ctx_for(op, inputs, options, outputs))


# ------------------------------------------------------------------------------ ADD/SUB/MUL/DIV
@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL", "DIV"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shapes", BCAST, ids=str)
def test_arith_float(op, act, shapes):
    a, b = f32(shapes[0], 1), f32(shapes[1], 2)
    if op == "DIV":
        b = np.where(np.abs(b) < 0.1, np.float32(0.5), b).astype(np.float32)
    ours, _ = check_against_litert(op, [a, b], {"fused_activation_function": act})
    assert ours[0].shape == np.broadcast_shapes(*shapes) and ours[0].dtype == np.float32


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL", "DIV"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shapes", [BCAST[0], BCAST[3], BCAST[4]], ids=str)
def test_arith_int32(op, act, shapes):
    a = ints(shapes[0], seed=3)
    b = nonzero_ints(shapes[1], seed=4) if op == "DIV" else ints(shapes[1], seed=4)
    ours, _ = check_against_litert(op, [a, b], {"fused_activation_function": act})
    assert ours[0].dtype == np.int32


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("act", ["NONE", "RELU6"])
def test_arith_int64(op, act):
    a, b = ints((2, 3, 4), seed=5, dtype=np.int64), ints((3, 1), seed=6, dtype=np.int64)
    ours, _ = check_against_litert(op, [a, b], {"fused_activation_function": act})
    assert ours[0].dtype == np.int64


@pytest.mark.parametrize("op", ["ADD", "MUL", "DIV"])
def test_arith_constant_operand(op):
    check_against_litert(op, [f32((1, 4, 4, 3), 7), Const(np.array([0.5, -2.0, 4.0], np.float32))],
                         {"fused_activation_function": "RELU"})


def test_float_results_clamp_to_flt_max_like_tflite():
    a = np.array([1.0, -1.0, 0.0, 3e38, np.inf, np.nan], np.float32)
    b = np.array([0.0, 0.0, 2.0, 3e38, 1.0, 1.0], np.float32)
    ours, ref = check_against_litert("DIV", [a, np.where(b == 3e38, np.float32(1e-3), b)],
                                     {"fused_activation_function": "NONE"})
    big = np.finfo(np.float32).max
    np.testing.assert_array_equal(ours[0][:2], [big, -big])
    assert ours[0][2] == 0
    ours, _ = check_against_litert("ADD", [a, b], {"fused_activation_function": "NONE"})
    assert ours[0][3] == big and ours[0][4] == big and np.isnan(ours[0][5])


def test_int_div_truncates_against_loop():
    a, b = ints((50,), -100, 100, seed=8), nonzero_ints((50,), seed=9)
    (y,) = run_ours("DIV", [a, b], {"fused_activation_function": "NONE"})
    want = [int(x / d) if x * d >= 0 else -(abs(x) // abs(d)) for x, d in zip(a.tolist(), b.tolist())]
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("op", ["DIV", "FLOOR_DIV", "FLOOR_MOD"])
def test_int_division_by_zero_raises(op):
    opt = default_options(op)
    params = get_op(op).prepare(ctx_for(op, [((3,), np.int32), ((3,), np.int32)], opt))
    kernel = get_op(op).kernel
    with pytest.raises(InputError, match="division by zero"):
        kernel(np.array([1, 2, 3], np.int32), np.array([1, 0, 3], np.int32), opt=params)


def test_float_floor_div_by_zero_raises_like_tflite():
    params = prepare("FLOOR_DIV", [((2,), np.float32), ((2,), np.float32)])
    with pytest.raises(InputError, match="division by zero"):
        E.floor_div(np.ones(2, np.float32), np.array([1.0, -0.0], np.float32), opt=params)


def test_sign_bit_activation_is_ignored():
    p = prepare("ADD", [((2,), np.float32), ((2,), np.float32)],
                dataclasses.replace(default_options("ADD"), fused_activation_function="SIGN_BIT"))
    y = E.add(np.array([-5, 5], np.float32), np.array([0, 1], np.float32), opt=p)
    np.testing.assert_array_equal(y, [-5, 6])


# ------------------------------------------------------------------------ other binary numeric
@pytest.mark.parametrize("op", ["MAXIMUM", "MINIMUM"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.int8, np.uint8])
@pytest.mark.parametrize("shapes", [BCAST[0], BCAST[2], BCAST[4], BCAST[6]], ids=str)
def test_max_min(op, dtype, shapes):
    if dtype == np.float32:
        a, b = f32(shapes[0], 10), f32(shapes[1], 11)
    else:
        lo = 0 if dtype == np.uint8 else -100
        a, b = ints(shapes[0], lo, 100, 10, dtype), ints(shapes[1], lo, 100, 11, dtype)
    ours, _ = check_against_litert(op, [a, b])
    assert ours[0].dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
@pytest.mark.parametrize("shapes", BCAST4, ids=str)
def test_squared_difference(dtype, shapes):
    a = f32(shapes[0], 12) if dtype == np.float32 else ints(shapes[0], seed=12)
    b = f32(shapes[1], 13) if dtype == np.float32 else ints(shapes[1], seed=13)
    check_against_litert("SQUARED_DIFFERENCE", [a, b])


@pytest.mark.parametrize("shapes", BCAST4, ids=str)
def test_pow_float(shapes):
    a = np.abs(f32(shapes[0], 14)) + np.float32(0.1)
    check_against_litert("POW", [a, f32(shapes[1], 15, 1.5)])


def test_pow_float_negative_base_integral_exponent():
    check_against_litert("POW", [f32((2, 5), 16), Const(np.array([0, 1, 2, 3, -1], np.float32))])


@pytest.mark.parametrize("shapes", [BCAST[0], BCAST[3]], ids=str)
def test_pow_int32(shapes):
    check_against_litert("POW", [ints(shapes[0], -9, 9, 17), ints(shapes[1], 0, 6, 18)])


def test_pow_int32_negative_exponent_raises():
    p = prepare("POW", [((2,), np.int32), ((2,), np.int32)])
    with pytest.raises(InputError, match="negative exponent"):
        E.pow_(np.array([2, 3], np.int32), np.array([1, -1], np.int32), opt=p)


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
@pytest.mark.parametrize("shapes", BCAST4, ids=str)
def test_floor_div(dtype, shapes):
    if dtype == np.float32:
        a, b = f32(shapes[0], 19, 10), f32(shapes[1], 20)
        b = np.where(np.abs(b) < 0.1, np.float32(0.7), b).astype(np.float32)
    else:
        a, b = ints(shapes[0], -50, 50, 19), nonzero_ints(shapes[1], 20)
    check_against_litert("FLOOR_DIV", [a, b])


def test_floor_div_exact_multiples_float():
    # quotients that are exact integers or land just below one: TFLite divides in float64
    a = np.array([6.0, -6.0, 0.3, -0.3, 1e-7, 7.0, -7.0], np.float32)
    b = np.array([3.0, 3.0, 0.1, 0.1, 3.0, -2.0, 2.0], np.float32)
    ours, _ = check_against_litert("FLOOR_DIV", [a, b])
    want = [math.floor(float(x) / float(y)) for x, y in zip(a, b)]
    np.testing.assert_array_equal(ours[0], want)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
@pytest.mark.parametrize("shapes", BCAST4, ids=str)
def test_floor_mod(dtype, shapes):
    if dtype == np.float32:
        a, b = f32(shapes[0], 21, 10), f32(shapes[1], 22)
        b = np.where(np.abs(b) < 0.1, np.float32(-0.7), b).astype(np.float32)
    else:
        a, b = ints(shapes[0], -50, 50, 21, dtype), nonzero_ints(shapes[1], 22, dtype)
    ours, _ = check_against_litert("FLOOR_MOD", [a, b])
    assert ours[0].dtype == dtype


def test_floor_mod_sign_follows_divisor_against_loop():
    a, b = ints((40,), -30, 30, 23), nonzero_ints((40,), 24)
    (y,) = run_ours("FLOOR_MOD", [a, b])
    np.testing.assert_array_equal(y, [x - math.floor(x / d) * d for x, d in zip(a.tolist(), b.tolist())])


# --------------------------------------------------------------------------------- unary ops
UNARY_FLOAT = {
    "ABS": lambda s: f32(s, 30), "NEG": lambda s: f32(s, 31), "SQUARE": lambda s: f32(s, 32),
    "SQRT": lambda s: np.abs(f32(s, 33)), "RSQRT": lambda s: np.abs(f32(s, 34)) + np.float32(0.01),
    "EXP": lambda s: f32(s, 35), "LOG": lambda s: np.abs(f32(s, 36)) + np.float32(1e-3),
    "SIN": lambda s: f32(s, 37, 5), "COS": lambda s: f32(s, 38, 5), "FLOOR": lambda s: f32(s, 39),
}


@pytest.mark.parametrize("op", sorted(UNARY_FLOAT))
@pytest.mark.parametrize("shape", [(), (7,), (2, 3, 4, 5)], ids=str)
def test_unary_float(op, shape):
    x = np.asarray(UNARY_FLOAT[op](shape), np.float32)
    ours, _ = check_against_litert(op, [x])
    assert ours[0].shape == shape and ours[0].dtype == np.float32


@pytest.mark.parametrize("op", ["CEIL", "ROUND"])
def test_ceil_round(op):
    # BUILTIN_REF lacks CEIL/ROUND; compare with TFLite's builtin kernels and exact expectations
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49, -3.51, 0.0, 7.0, -7.2], np.float32)
    ours, _ = check_other_resolver(op, [x])
    want = np.ceil(x) if op == "CEIL" else [0, 2, 2, 0, -2, -2, 3, -4, 0, 7, -7]
    np.testing.assert_array_equal(ours[0], want)
    check_other_resolver(op, [f32((2, 3, 4), 41)])


def test_unary_special_values():
    (y,) = run_ours("SQRT", [np.array([-1.0, 0.0, 4.0], np.float32)])
    assert np.isnan(y[0]) and y[1] == 0 and y[2] == 2
    (y,) = run_ours("LOG", [np.array([0.0, -1.0, 1.0], np.float32)])
    assert y[0] == -np.inf and np.isnan(y[1]) and y[2] == 0
    (y,) = run_ours("RSQRT", [np.array([0.0, 4.0], np.float32)])
    np.testing.assert_array_equal(y, [np.inf, 0.5])


@pytest.mark.parametrize("op,dtype", [("ABS", np.int32), ("NEG", np.int32), ("NEG", np.int64)])
def test_unary_int(op, dtype):
    ours, _ = check_against_litert(op, [ints((3, 4), seed=42, dtype=dtype)])
    assert ours[0].dtype == dtype


# ---------------------------------------------------------------------------------------- cast
CASTS = [
    (np.float32, np.int32), (np.float32, np.int64), (np.float32, np.bool_), (np.float32, np.uint8),
    (np.int32, np.float32), (np.int32, np.int64), (np.int32, np.bool_), (np.int64, np.int32),
    (np.int64, np.float32), (np.bool_, np.float32), (np.bool_, np.int32), (np.uint8, np.float32),
    (np.int8, np.float32), (np.int16, np.int32), (np.uint8, np.int32),
]


@pytest.mark.parametrize("src,dst", CASTS, ids=lambda d: np.dtype(d).name)
def test_cast(src, dst):
    if src == np.float32:
        x = np.array([-2.7, -1.5, -0.5, -0.0, 0.0, 0.3, 0.5, 1.5, 2.9, 100.99], np.float32)
        if dst == np.uint8:
            x = np.abs(x) * 2
    elif src == np.bool_:
        x = np.array([True, False, True])
    else:
        info = np.iinfo(src)
        x = ints((12,), max(info.min, -300), min(info.max, 300), 43, src)
    ours, ref = check_against_litert("CAST", [x], output_dtypes=[dst])
    assert ours[0].dtype == dst and ours[0].shape == x.shape


def test_cast_float_to_int_truncates():
    (y,) = run_ours("CAST", [np.array([-2.7, -0.5, 0.5, 2.7], np.float32)], output_dtypes=[np.int32])
    np.testing.assert_array_equal(y, [-2, 0, 0, 2])


def test_cast_constant_input_is_folded():
    (y,) = run_ours("CAST", [Const(np.array([1.9, -1.9], np.float32))], output_dtypes=[np.int32])
    np.testing.assert_array_equal(y, [1, -1])


# ---------------------------------------------------------------------------------- comparisons
COMPARE = ["GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "EQUAL", "NOT_EQUAL"]


@pytest.mark.parametrize("op", COMPARE)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
@pytest.mark.parametrize("shapes", [BCAST[0], BCAST[1], BCAST[3], BCAST[4]], ids=str)
def test_compare(op, dtype, shapes):
    a, b = ints(shapes[0], -3, 3, 50, dtype), ints(shapes[1], -3, 3, 51, dtype)  # many ties
    ours, _ = check_against_litert(op, [a, b])
    assert ours[0].dtype == np.bool_ and ours[0].shape == np.broadcast_shapes(*shapes)


@pytest.mark.parametrize("op", ["EQUAL", "NOT_EQUAL"])
def test_equality_bool(op):
    check_against_litert(op, [np.array([[True, False], [False, True]]), np.array([True, True])])


@pytest.mark.parametrize("op", COMPARE)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16])
def test_compare_small_ints(op, dtype):
    # LiteRT aborts on unquantized 8/16-bit comparisons; compare the raw values against numpy
    lo = 0 if dtype == np.uint8 else -5
    a, b = ints((3, 4), lo, 5, 52, dtype), ints((4,), lo, 5, 53, dtype)
    (y,) = run_ours(op, [a, b])
    ref = {"GREATER": a > b, "GREATER_EQUAL": a >= b, "LESS": a < b, "LESS_EQUAL": a <= b,
           "EQUAL": a == b, "NOT_EQUAL": a != b}[op]
    assert y.dtype == np.bool_
    np.testing.assert_array_equal(y, ref)


# --------------------------------------------------------------------------------------- select
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.bool_, np.uint8])
@pytest.mark.parametrize("cond_shape", [(2, 3, 4), (2,), ()], ids=str)
def test_select(dtype, cond_shape):
    x, y = ints((2, 3, 4), -9, 9, 60, dtype), ints((2, 3, 4), -9, 9, 61, dtype)
    if dtype == np.uint8:
        x, y = ints((2, 3, 4), 0, 9, 60, dtype), ints((2, 3, 4), 0, 9, 61, dtype)
    cond = np.asarray(rng(62).random(cond_shape) > 0.5)
    ours, _ = check_against_litert("SELECT", [cond, x, y])
    assert ours[0].dtype == dtype and ours[0].shape == (2, 3, 4)


@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 3, 4), (2, 3, 4)), ((3, 1), (2, 1, 4), ()),
                                    ((), (2, 3), (3,)), ((1, 4), (3, 1), (2, 1, 1))], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_select_v2(shapes, dtype):
    cond = np.asarray(rng(63).random(shapes[0]) > 0.5)
    x, y = ints(shapes[1], -9, 9, 64, dtype), ints(shapes[2], -9, 9, 65, dtype)
    ours, _ = check_against_litert("SELECT_V2", [cond, x, y])
    assert ours[0].shape == np.broadcast_shapes(*shapes)


def test_select_rank_one_condition_against_loop():
    cond = np.array([True, False, True])
    x, y = f32((3, 2, 2), 66), f32((3, 2, 2), 67)
    (out,) = run_ours("SELECT", [cond, x, y])
    for i in range(3):
        np.testing.assert_array_equal(out[i], x[i] if cond[i] else y[i])


# -------------------------------------------------------------------------------------- logical
@pytest.mark.parametrize("op", ["LOGICAL_AND", "LOGICAL_OR"])
@pytest.mark.parametrize("shapes", [BCAST[0], BCAST[1], BCAST[4]], ids=str)
def test_logical_binary(op, shapes):
    a, b = rng(70).random(shapes[0]) > 0.5, rng(71).random(shapes[1]) > 0.5
    ours, _ = check_against_litert(op, [np.asarray(a), np.asarray(b)])
    assert ours[0].dtype == np.bool_


def test_logical_not():
    check_against_litert("LOGICAL_NOT", [rng(72).random((3, 4)) > 0.5])


# ------------------------------------------------------------------------- kernel-level contracts
def test_zero_d_inputs_give_ndarrays():
    p = prepare("ADD", [((), np.float32), ((), np.float32)])
    y = E.add(np.array(1.5, np.float32), np.array(2.0, np.float32), opt=p)
    assert type(y) is np.ndarray and y.shape == () and y.dtype == np.float32 and y == 3.5
    for fn in (E.sqrt, E.neg, E.round_):
        assert type(fn(np.array(4.0, np.float32))) is np.ndarray
    assert type(E.greater(np.array(1), np.array(0))) is np.ndarray


def test_inputs_are_not_modified():
    a, b = f32((3, 4), 80), f32((4,), 81)
    a.flags.writeable = False
    b.flags.writeable = False
    for op in ("ADD", "SUB", "MUL", "DIV"):
        p = prepare(op, [((3, 4), np.float32), ((4,), np.float32)],
                    dataclasses.replace(default_options(op), fused_activation_function="RELU6"))
        get_op(op).kernel(a, b, opt=p)
    E.squared_difference(a, b, opt=prepare("SQUARED_DIFFERENCE", [((3, 4), np.float32), ((4,), np.float32)]))


# ------------------------------------------------------------------------------- prepare errors
@pytest.mark.parametrize("op", ["ADD", "MUL", "MAXIMUM", "EQUAL", "LOGICAL_AND", "FLOOR_MOD"])
def test_prepare_rejects_non_broadcasting_shapes(op):
    dtype = np.bool_ if op.startswith("LOGICAL") else np.float32
    with pytest.raises(ModelError, match=r"op #3 .*input shapes \(1,4,3\) and \(1,5,3\) do not broadcast"):
        prepare(op, [((1, 4, 3), dtype), ((1, 5, 3), dtype)])


def test_prepare_select_v2_names_all_shapes():
    with pytest.raises(ModelError, match=r"input shapes \(2\), \(3\) and \(2\) do not broadcast"):
        prepare("SELECT_V2", [((2,), np.bool_), ((3,), np.float32), ((2,), np.float32)])


@pytest.mark.parametrize("op", ["ADD", "SUB", "POW", "GREATER", "MINIMUM"])
def test_prepare_rejects_mixed_dtypes(op):
    with pytest.raises(ModelError, match="input dtypes differ"):
        prepare(op, [((2,), np.float32), ((2,), np.int32)])


@pytest.mark.parametrize("op,dtype", [("ADD", np.int8), ("DIV", np.int64), ("SQRT", np.int32),
                                      ("EXP", np.float16), ("LOGICAL_NOT", np.float32),
                                      ("FLOOR_DIV", np.int64), ("GREATER", np.bool_)])
def test_prepare_rejects_unsupported_dtype(op, dtype):
    n = 1 if op in ("SQRT", "EXP", "LOGICAL_NOT") else 2
    with pytest.raises(ModelError, match=f"input dtype {np.dtype(dtype).name} is not supported"):
        prepare(op, [((2,), dtype)] * n)


def test_prepare_checks_input_count():
    with pytest.raises(ModelError, match="has 1 inputs, expected 2"):
        prepare("ADD", [((2,), np.float32)])


def test_prepare_select_errors():
    with pytest.raises(ModelError, match="condition 't0' has dtype float32, expected bool"):
        prepare("SELECT", [((2,), np.float32), ((2,), np.float32), ((2,), np.float32)])
    with pytest.raises(ModelError, match=r"x and y shapes \(2,3\) and \(3\) differ"):
        prepare("SELECT", [((2,), np.bool_), ((2, 3), np.float32), ((3,), np.float32)])
    with pytest.raises(ModelError, match=r"condition shape \(3\) must equal x's shape \(2,3\)"):
        prepare("SELECT", [((3,), np.bool_), ((2, 3), np.float32), ((2, 3), np.float32)])
    assert prepare("SELECT", [((2,), np.bool_), ((2, 3, 4), np.float32), ((2, 3, 4), np.float32)]).cond_expand == 2


def test_prepare_cast_rejects_strings():
    with pytest.raises(ModelError, match="output dtype"):
        prepare("CAST", [((2,), np.float32)], outputs=(TensorInfo("y", (2,), np.dtype("S1")),))


def test_model_load_reports_broadcast_error():
    with pytest.raises(ModelError, match=r"do not broadcast"):
        build_single_op("ADD", [f32((1, 4, 3)), f32((1, 5, 3))], {"fused_activation_function": "NONE"})


@pytest.mark.parametrize("op", ["MAXIMUM", "MINIMUM"])
def test_max_min_nan_like_tflite(op):
    a = np.array([[np.nan, 1.0, np.nan, 2.0]], np.float32)
    b = np.array([[1.0, np.nan, np.nan, 1.0], [np.nan, 3.0, 0.0, -1.0]], np.float32)
    ours, _ = check_against_litert(op, [a, b])
    np.testing.assert_array_equal(np.isnan(ours[0]), np.isnan(b))
