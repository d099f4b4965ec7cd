"""Exact-value tables, computed by hand from the rules in docs/quant_levels.md and the planner's
docstrings: ``activation_quant``, bias quantization and ``build_plan`` at L1-L4 on a one-conv model.

Every expected value is written as the formula it comes from (float32 where the .sim stores float32).
"""
from __future__ import annotations

import numpy as np
import pytest

from calibrator_custom.calib import collect_stats_arrays
from calibrator_custom.config import load_input_config
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import load_model
from calibrator_custom.plan import PlanInputs, TensorQuant
from calibrator_custom.quant.planner import activation_quant, build_plan
from calibrator_custom.quant.ranges import Range
from calibrator_custom.quant.weights import quantize_bias


def f32(x) -> float:
    return float(np.float32(x))


# ------------------------------------------------------------------------------- activation_quant
# UINT8: scale = (hi - lo) / 255, zero point = round_half_away(-lo * 255 / (hi - lo)) clipped to 0..255;
# INT16 / INT8: symmetric, scale = max(-lo, hi) / 32767 (or / 127), zero point 0; min/max = the range.
ACTIVATION_TABLE = [
    (Range(-1.0, 3.0), "UINT8", TensorQuant("UINT8", (f32(4 / 255),), (64,), (-1.0,), (3.0,), 0)),  # 63.75 -> 64
    (Range(-0.5, 254.5), "UINT8", TensorQuant("UINT8", (1.0,), (1,), (-0.5,), (254.5,), 0)),  # 0.5 -> 1 (tie)
    (Range(0.0, 2.0), "UINT8", TensorQuant("UINT8", (f32(2 / 255),), (0,), (0.0,), (2.0,), 0)),
    (Range(-2.0, 0.0), "UINT8", TensorQuant("UINT8", (f32(2 / 255),), (255,), (-2.0,), (0.0,), 0)),
    (Range(-2.0, 1.0), "INT16", TensorQuant("INT16", (f32(2 / 32767),), (0,), (-2.0,), (1.0,), 0)),
    (Range(-0.25, 0.5), "INT16", TensorQuant("INT16", (f32(0.5 / 32767),), (0,), (-0.25,), (0.5,), 0)),
    (Range(-0.5, 0.25), "INT8", TensorQuant("INT8", (f32(0.5 / 127),), (0,), (-0.5,), (0.25,), 0)),
    # a range float32 cannot tell from [0, 0] becomes [-1e-6, 1e-6]
    (Range(0.0, 0.0), "INT16", TensorQuant("INT16", (f32(f32(1e-6) / 32767),), (0,), (f32(-1e-6),), (f32(1e-6),), 0)),
]


@pytest.mark.parametrize("rng, qtype, want", ACTIVATION_TABLE, ids=[f"{r.lo}..{r.hi}-{q}" for r, q, _ in ACTIVATION_TABLE])
def test_activation_quant_table(rng, qtype, want):
    assert activation_quant(rng, qtype) == want


def test_activation_quant_per_channel_uint8_by_hand():
    """Channel 0 [-1, 3] keeps the tensor scale s = 4/255 (4 > 254 * s / 2 = 1.99); channel 1 [-0.25, 0.5]
    (0.75 wide) halves twice: 0.75 <= 254 * s / 4 = 0.996 but > 254 * s / 8 = 0.498, so s / 4; both zero
    points are round(1 / s) = round(63.75) = 64."""
    s = f32(4 / 255)
    got = activation_quant(Range(-1.0, 3.0), "UINT8", (-1.0, -0.25), (3.0, 0.5), axis=3)
    assert got == TensorQuant("UINT8", (s, f32(s / 4)), (64, 64), (-1.0, -0.25), (3.0, 0.5), 3)


# ------------------------------------------------------------------------------- bias quantization
# q = round_half_away(b / (data_scale * weight_scale[c])); INT32 for 8-bit convs, INT64 for 16-bit.
# Power-of-two scales make every quotient exact: ties are real ties.
BIAS_TABLE = [
    # b, data scale, weight scales, bits, expected integers
    ([0.5, -0.25, 3 * 2.0**-9, -3 * 2.0**-9], 2.0**-6, [2.0**-7, 2.0**-8, 2.0**-2, 2.0**-2], 8,
     np.array([4096, -4096, 2, -2], np.int32)),  # 1.5 -> 2 and -1.5 -> -2 (half away from zero)
    ([1.0, -1.0], 2.0**-10, [2.0**-12, 2.0**-20], 16, np.array([2**22, -(2**30)], np.int64)),
    ([2.0**40], 1.0, [1.0], 16, np.array([2**40], np.int64)),  # beyond INT32, an INT64 holds it
    ([2.0**40, -(2.0**40)], 1.0, [1.0, 1.0], 8, np.array([2**31 - 1, -(2**31)], np.int32)),  # saturates
]


@pytest.mark.parametrize("b, ds, ws, bits, want", BIAS_TABLE)
def test_quantize_bias_table(b, ds, ws, bits, want):
    got = quantize_bias(np.array(b), ds, np.array(ws), bits, "b")
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------------------- build_plan L1-L4
W = np.array([0.5, -0.25], np.float32).reshape(2, 1, 1, 1)  # CONV_2D 1x1, 2 output channels
B = np.array([0.25, -0.5], np.float32)


@pytest.fixture(scope="module")
def one_conv(tmp_path_factory):
    """GRAY image input (mean 0, std 1: the normalized range is [0, 255]) -> CONV_2D 1x1 -> output,
    calibrated on an all-0 and an all-255 image, so channel 0 (0.5 x + 0.25) spans [0.25, 127.75] and
    channel 1 (-0.25 x - 0.5) spans [-64.25, -0.5]."""
    d = tmp_path_factory.mktemp("one_conv")
    b = ModelBuilder()
    x = b.input("img", (1, 2, 2, 1))
    y = b.op("CONV_2D", [x, b.constant("w", W), b.constant("b", B)],
             {"padding": "VALID", "stride_w": 1, "stride_h": 1}, name="out")
    b.output(y)
    b.save(d / "net_float.sim")
    (d / "c.ini").write_text("[INPUT_CONFIG]\ninputs=img;\ntraining_input_formats=GRAY;\ninput_formats=GRAY;\n"
                             "mean=0;\nstd_value=1;\n[OUTPUT_CONFIG]\noutputs=out;\ndequantizations=TRUE;\n")
    feeds = [[np.full((1, 2, 2, 1), v, np.float32)] for v in (0.0, 255.0)]
    stats = collect_stats_arrays(d / "net_float.sim", feeds)
    model = load_model(d / "net_float.sim")
    return PlanInputs.create(model, stats, load_input_config(d / "c.ini", model))


def _indices(pi):
    g = pi.graph
    names = {t.name: i for i, t in enumerate(g.tensors)}
    return names["img"], names["w"], names["b"], names["out"]


@pytest.mark.parametrize("level", ["L1", "L2", "L3", "L4"])
def test_build_plan_one_conv_by_hand(one_conv, level):
    """Input: UINT8 (its only reader is an 8-bit conv), the image range [0, 255]: scale 1, zero point 0.
    Output: a model output, INT16, range [-64.25, 127.75] (min/max at L1/L2; at L3/L4 the fitted range is
    min/max too: the values sit at the extremes, where any clipping costs more than INT16 rounding saves):
    scale 127.75 / 32767, reported min/max per channel. Weights INT8: L1 one scale for the tensor, max|w| / 127 = 0.5 / 127; L2-L4 per
    output channel, max|w[c]| / 127 (a single weight per channel: its own magnitude has zero error, so
    neither the clipping search nor the energy-weighted one moves it). Bias INT32 at input scale x weight
    scale (the input scale is 1)."""
    pi = one_conv
    i_in, i_w, i_b, i_out = _indices(pi)
    plan = build_plan(pi, level)
    assert plan.level == level and plan.conv_bits == {0: 8}
    assert plan.tensors[i_in] == TensorQuant("UINT8", (1.0,), (0,), (0.0,), (255.0,), 0)
    # min/max report each channel's calibrated range (last axis), within the range used
    assert plan.tensors[i_out] == TensorQuant("INT16", (f32(127.75 / 32767),), (0,), (0.25, -64.25), (127.75, -0.5), 0)
    assert plan.u8_views == {}
    ws = (f32(0.5 / 127),) * 2 if level == "L1" else (f32(0.5 / 127), f32(0.25 / 127))
    wq = plan.constants[i_w]
    assert wq.quant == TensorQuant("INT8", ws, (0, 0), tuple(-f32(s * 127) for s in ws), tuple(f32(s * 127) for s in ws), 0)
    # -0.25 / (0.5 / 127) = -63.5 (a hair more in float32): -64 at L1; -127 per channel
    want_w = [127, -64] if level == "L1" else [127, -127]
    assert wq.data.dtype == np.int8 and wq.data.shape == (2, 1, 1, 1)
    np.testing.assert_array_equal(wq.data.ravel(), want_w)
    bq = plan.constants[i_b]
    assert bq.quant.qtype == "INT32" and bq.quant.scale == ws
    # 0.25 / (0.5 / 127) = 63.5 (+ float32 error) -> 64; -0.5 / (0.5 / 127) = -127; -0.5 / (0.25 / 127) = -254
    want_b = [64, -127] if level == "L1" else [64, -254]
    assert bq.data.dtype == np.int32
    np.testing.assert_array_equal(bq.data, want_b)
    assert plan.dequantize_outputs == {i_out: True}


def test_build_plan_one_conv_16_bit_weights(one_conv):
    """With the conv recommended 16-bit: the input becomes INT16 (scale 255 / 32767) and the weights INT16
    per channel, max|w[c]| / 32767, so each is +-32767."""
    pi = one_conv
    i_in, i_w, _, _ = _indices(pi)
    plan = build_plan(pi, "L4", frozenset({0}))
    assert plan.conv_bits == {0: 16}
    assert plan.tensors[i_in] == TensorQuant("INT16", (f32(255 / 32767),), (0,), (0.0,), (255.0,), 0)
    wq = plan.constants[i_w]
    assert wq.quant.qtype == "INT16" and wq.quant.scale == (f32(0.5 / 32767), f32(0.25 / 32767))
    np.testing.assert_array_equal(wq.data.ravel(), [32767, -32767])
    assert plan.constants[_indices(pi)[2]].quant.qtype == "INT64"
