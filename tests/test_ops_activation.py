"""Tests of calibrator_custom/ops/activation.py: LiteRT differential tests (reference kernels) for every
op and option, naive references where LiteRT has no semantics (fused activations on L2_NORMALIZATION),
erfc accuracy, edge values and prepare validation."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from calibrator_custom.errors import ModelError
from calibrator_custom.model.graph import Model
from calibrator_custom.model.options import default_options
from calibrator_custom.ops import activation as A
from calibrator_custom.ops.registry import OpContext, TensorInfo, get_op
from oprunner import (Const, assert_outputs_match, build_single_op, check_against_litert, run_model_litert,
                      run_model_ours, run_ours)

SHAPES = [(), (7,), (3, 5), (2, 3, 4, 5)]
SHAPES_R1 = SHAPES[1:]  # ops on the last axis need rank >= 1


def f32(shape, seed=0, scale=4.0) -> np.ndarray:
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def prepare(op, inputs, options=None):
    ins = tuple(TensorInfo(f"t{i}", tuple(t[0]), np.dtype(t[1]), t[2] if len(t) > 2 else None)
                for i, t in enumerate(inputs))
    ctx = OpContext(5, op, ins, (TensorInfo("y", (), np.dtype(np.float32)),),
                    options if options is not None else default_options(op))
    return get_op(op).prepare(ctx)


# ------------------------------------------------------------------------------------ simple units
@pytest.mark.parametrize("op", ["RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LOGISTIC", "TANH", "HARD_SWISH"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unary_activation(op, shape):
    ours, _ = check_against_litert(op, [f32(shape, 1)])
    assert ours[0].shape == shape and ours[0].dtype == np.float32


def test_logistic_wide_range_and_cutoffs():
    x = np.concatenate([np.linspace(-100, 100, 401), [-9.0, -9.01, 16.61, 16.62, 88.0, -88.0]]).astype(np.float32)
    check_against_litert("LOGISTIC", [x])


def test_hard_swish_breakpoints():
    x = np.array([-4, -3, -2.5, -1e-3, 0, 1e-3, 2.9, 3, 3.1, 100], np.float32)
    ours, _ = check_against_litert("HARD_SWISH", [x])
    np.testing.assert_array_equal(ours[0][[0, 1, 4]], [0, 0, 0])
    assert ours[0][-1] == 100


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_elu(shape):
    # BUILTIN_REF has no ELU; compare with TFLite's builtin kernel and a direct formula
    x = f32(shape, 2)
    model, feeds = build_single_op("ELU", [x])
    data = model.to_bytes()
    ours = run_model_ours(Model.from_bytes(data), feeds)
    ref = run_model_litert(data, feeds, resolver="BUILTIN_WITHOUT_DEFAULT_DELEGATES")
    assert_outputs_match(ours, ref, what="ELU")
    want = np.where(x < 0, np.expm1(x.astype(np.float64)), x)
    np.testing.assert_allclose(ours[0], want, rtol=2e-7, atol=1e-7)


# ------------------------------------------------------------------------------ leaky ReLU, PReLU
@pytest.mark.parametrize("alpha", [0.2, 0.0, 1.0, 1.5, -0.3, 0.01])
@pytest.mark.parametrize("shape", [(7,), (2, 3, 4, 5)], ids=str)
def test_leaky_relu(alpha, shape):
    x = f32(shape, 3)
    ours, _ = check_against_litert("LEAKY_RELU", [x], {"alpha": alpha})
    want = np.where(x > 0, x, x * np.float32(alpha))
    np.testing.assert_array_equal(ours[0], want)


@pytest.mark.parametrize("alpha_shape", [(4,), (1, 1, 4), (2, 1, 4), (2, 3, 4), (1,), ()], ids=str)
@pytest.mark.parametrize("alpha_range", ["unit", "wide"])
@pytest.mark.parametrize("const", [True, False])
def test_prelu(alpha_shape, alpha_range, const):
    x = f32((1, 2, 3, 4), 4)
    alpha = np.asarray(np.random.default_rng(5).uniform(0, 1, alpha_shape)).astype(np.float32)
    if alpha_range == "wide":
        alpha = (alpha * 4 - 2).astype(np.float32)
    ours, _ = check_against_litert("PRELU", [x, Const(alpha) if const else alpha])
    want = np.where(x >= 0, x, x * alpha)
    assert ours[0].shape == want.shape
    np.testing.assert_array_equal(ours[0], want)


def test_prelu_output_takes_broadcast_shape():
    x, alpha = f32((2, 1, 4), 6), np.full((3, 1), 0.25, np.float32)
    (y,) = run_ours("PRELU", [x, Const(alpha)])
    assert y.shape == (2, 3, 4)
    np.testing.assert_array_equal(y, np.where(x >= 0, x, x * alpha))


def test_prelu_params():
    assert prepare("PRELU", [((2, 3), np.float32), ((3,), np.float32, np.array([0, 0.5, 1], np.float32))]).alpha_in_unit
    assert not prepare("PRELU", [((2, 3), np.float32), ((3,), np.float32, np.array([0, 2, 1], np.float32))]).alpha_in_unit
    assert not prepare("PRELU", [((2, 3), np.float32), ((3,), np.float32)]).alpha_in_unit


# ------------------------------------------------------------------------------------------- GELU
@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gelu(approximate, shape):
    ours, _ = check_against_litert("GELU", [f32(shape, 7)], {"approximate": approximate})
    assert ours[0].shape == shape and ours[0].dtype == np.float32


@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_wide_range(approximate):
    x = np.linspace(-20, 20, 4001).astype(np.float32)
    check_against_litert("GELU", [x], {"approximate": approximate})


def test_gelu_exact_matches_math_erfc_to_float32_rounding():
    x = np.concatenate([np.linspace(-12, 12, 20001), [0.0, -0.0, 1e-30, -1e-30, 1e-6]]).astype(np.float32)
    # several blocks of the blocked float64 pipeline, plus a ragged tail
    x = np.concatenate([x] * 4 + [x[:123]])
    (y,) = run_ours("GELU", [x], {"approximate": False})
    want = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x.astype(np.float64)])
    rel = np.abs(y - want) / np.maximum(np.abs(want), 1e-37)
    assert rel.max() <= 6.0e-8  # correctly rounded float32 (half an ulp)


def test_erfc_accuracy():
    z = np.concatenate([np.linspace(-27, 27, 54001), np.geomspace(1e-15, 1e3, 400),
                        -np.geomspace(1e-15, 1e3, 400), [0.0, np.inf, -np.inf]])
    got = A._erfc(z)
    assert got.shape == z.shape and got.dtype == np.float64
    want = np.array([math.erfc(v) for v in z])
    ok = want > 1e-300
    assert np.max(np.abs(got[ok] - want[ok]) / want[ok]) < 2e-11
    assert np.all(got[~ok] < 1e-300)
    assert A._erfc(np.float64(0.5)).shape == ()


# ---------------------------------------------------------------------------- softmax family
@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0, 0.0])
@pytest.mark.parametrize("shape", SHAPES_R1, ids=str)
def test_softmax(beta, shape):
    ours, _ = check_against_litert("SOFTMAX", [f32(shape, 8)], {"beta": beta})
    assert ours[0].shape == shape
    np.testing.assert_allclose(ours[0].sum(axis=-1), 1, rtol=1e-5)


def test_softmax_large_logits_are_stable():
    x = np.array([[1000.0, 999.0, -1000.0], [-50.0, -50.0, -50.0]], np.float32)
    ours, _ = check_against_litert("SOFTMAX", [x], {"beta": 1.0})
    assert np.all(np.isfinite(ours[0]))


@pytest.mark.parametrize("shape", SHAPES_R1, ids=str)
def test_log_softmax(shape):
    ours, _ = check_against_litert("LOG_SOFTMAX", [f32(shape, 9)])
    assert ours[0].shape == shape


@pytest.mark.parametrize("shape", SHAPES_R1, ids=str)
def test_l2_normalization(shape):
    x = f32(shape, 10)
    ours, _ = check_against_litert("L2_NORMALIZATION", [x], {"fused_activation_function": "NONE"})
    assert ours[0].shape == shape


def test_l2_normalization_epsilon():
    x = np.array([[0.0, 0.0, 0.0], [1e-8, 0.0, 0.0], [3.0, 4.0, 0.0]], np.float32)
    ours, _ = check_against_litert("L2_NORMALIZATION", [x], {"fused_activation_function": "NONE"})
    np.testing.assert_allclose(ours[0], [[0, 0, 0], [1e-2, 0, 0], [0.6, 0.8, 0]], rtol=1e-6)


@pytest.mark.parametrize("act", ["NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH"])
def test_l2_normalization_fused_activation_against_loop(act):
    # TFLite rejects activations on L2_NORMALIZATION; ours applies them after normalizing
    x = f32((2, 3, 4), 11) * np.float32(3)
    (y,) = run_ours("L2_NORMALIZATION", [x], {"fused_activation_function": act})
    fn = {"NONE": lambda v: v, "RELU": lambda v: max(v, 0.0), "RELU6": lambda v: min(max(v, 0.0), 6.0),
          "RELU_N1_TO_1": lambda v: min(max(v, -1.0), 1.0), "TANH": math.tanh}[act]
    want = np.empty(x.shape)
    for i in range(2):
        for j in range(3):
            n = max(math.sqrt(sum(float(v) ** 2 for v in x[i, j])), 1e-6)
            for k in range(4):
                want[i, j, k] = fn(float(x[i, j, k]) / n)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------- kernel-level contracts
def test_kernels_return_fresh_ndarrays_and_keep_inputs():
    x = f32((2, 3), 12)
    x.flags.writeable = False
    x0 = np.array(x, np.float32)
    cases = [(A.relu, None), (A.relu6, None), (A.relu_n1_to_1, None), (A.relu_0_to_1, None), (A.elu, None),
             (A.logistic, None), (A.tanh, None), (A.hard_swish, None),
             (A.leaky_relu, prepare("LEAKY_RELU", [((2, 3), np.float32)])),
             (A.gelu, default_options("GELU")), (A.gelu, dataclasses.replace(default_options("GELU"), approximate=True)),
             (A.softmax, dataclasses.replace(default_options("SOFTMAX"), beta=1.0)), (A.log_softmax, None),
             (A.l2_normalization, A.L2NormParams("RELU"))]
    for fn, opt in cases:
        y = fn(x, opt=opt)
        assert type(y) is np.ndarray and y.dtype == np.float32 and y.shape == x.shape, fn.__name__
        assert not np.shares_memory(x, y), fn.__name__
    np.testing.assert_array_equal(x, x0)
    for fn in (A.relu, A.logistic, A.elu, A.hard_swish, A.tanh):
        y = fn(np.array(-1.5, np.float32))
        assert type(y) is np.ndarray and y.shape == ()


def test_special_values():
    x = np.array([np.nan, -np.inf, np.inf, -0.0], np.float32)
    for op in ["RELU", "RELU6", "LOGISTIC", "TANH", "HARD_SWISH"]:
        check_against_litert(op, [x[:3]])
    (y,) = run_ours("ELU", [x])
    assert np.isnan(y[0]) and y[1] == -1 and y[2] == np.inf and y[3] == 0


# ------------------------------------------------------------------------------- prepare errors
@pytest.mark.parametrize("op", ["RELU", "LOGISTIC", "SOFTMAX", "GELU", "L2_NORMALIZATION", "LEAKY_RELU", "ELU"])
def test_prepare_rejects_non_float(op):
    with pytest.raises(ModelError, match=r"op #5 .*has dtype int32; only float32 is supported"):
        prepare(op, [((2, 3), np.int32)])


@pytest.mark.parametrize("op", ["SOFTMAX", "LOG_SOFTMAX", "L2_NORMALIZATION"])
def test_prepare_rejects_scalar_for_last_axis_ops(op):
    with pytest.raises(ModelError, match="needs rank >= 1"):
        prepare(op, [((), np.float32)])


def test_prepare_prelu_errors():
    with pytest.raises(ModelError, match=r"input shapes \(1,4,3\) and \(5,1\) do not broadcast"):
        prepare("PRELU", [((1, 4, 3), np.float32), ((5, 1), np.float32)])
    with pytest.raises(ModelError, match="alpha 't1' has dtype int32"):
        prepare("PRELU", [((1, 4, 3), np.float32), ((3,), np.int32)])
    with pytest.raises(ModelError, match="has 1 inputs, expected 2"):
        prepare("PRELU", [((1, 4, 3), np.float32)])


def test_prepare_l2_rejects_unknown_activation():
    opt = dataclasses.replace(default_options("L2_NORMALIZATION"), fused_activation_function="SIGN_BIT")
    with pytest.raises(ModelError, match="unsupported fused activation 'SIGN_BIT'"):
        prepare("L2_NORMALIZATION", [((2, 3), np.float32)], opt)


def test_prepare_leaky_relu_modes():
    for alpha, mode in [(0.0, "max"), (0.3, "max"), (1.0, "max"), (2.0, "min"), (-0.5, "where")]:
        opt = dataclasses.replace(default_options("LEAKY_RELU"), alpha=alpha)
        assert prepare("LEAKY_RELU", [((2,), np.float32)], opt).mode == mode
