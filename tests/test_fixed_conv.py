"""Integer kernels of the convolution family (calibrator_custom/fixed/kernels/conv.py).

Three kinds of checks:
* against the float kernels on the dequantized inputs (``check_fixed_op``, at most 1 output LSB)
  for every option: strides, dilations, SAME/VALID and SigmaStar's explicit pads, groups, depth
  multipliers, output cropping, keep_num_dims, adj_x/adj_y, activations, dtype combinations,
  per-channel scales spanning 100x, biases, saturation;
* bit-exact equality with a naive int64 loop reference of the documented formula
  ``clamp(rounding_rshift(acc * M[c], shift[c]) + zp)`` (exact accumulators, float32 / float64 /
  multi-limb carriers, large values);
* property tests of the numeric helpers and negative tests of prepare.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fixedrunner
from calibrator_custom.errors import ModelError, UnsupportedOpError
from calibrator_custom.fixed import fixedpoint as fp
from calibrator_custom.fixed.kernels import conv as fconv
from calibrator_custom.fixed.registry import get_fixed_op
from calibrator_custom.model.options import make_options
from calibrator_custom.ops._common import same_pads
from calibrator_custom.ops.registry import OpContext, TensorInfo
from calibrator_custom.ops.registry import get_op as get_float_op
from fixedrunner import NP, QArr, QOut, check_fixed_op, qrandom

EXPLICIT = ("CAFFE", "ONNXINSIDE", "ONNXOUTSIDE")
ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH")
#: (data, weights, bias, output) dtypes: 8-bit mode, 16-bit mode and the mixed combinations
MODES = {
    "u8": ("UINT8", "INT8", "INT32", "UINT8"),
    "u8-i16out": ("UINT8", "INT8", "INT32", "INT16"),
    "i16": ("INT16", "INT16", "INT64", "INT16"),
    "i16-w8": ("INT16", "INT8", "INT64", "INT16"),
    "u8-w16": ("UINT8", "INT16", "INT64", "INT16"),
    "i8": ("INT8", "INT8", "INT32", "INT8"),
}
MAIN_MODES = ("u8", "i16")


# ------------------------------------------------------------------------------ harness workaround

def _infer_shapes(op_name, inputs, options, output_dtypes):
    """fixedrunner._infer_shapes prepares the float op with no output infos, which the conv
    family's prepare indexes (``ctx.outputs[0]``), and its builder fallback never marks an output;
    give the float prepare an output of unknown shape instead."""
    opdef = get_float_op(op_name)
    feeds = [None if x is None else x.real() for x in inputs]
    infos = tuple(fixedrunner._info(f"x{i}", x, True) for i, x in enumerate(inputs))
    ctx = OpContext(0, op_name, infos, (TensorInfo("y0", (), np.dtype(np.float32)),), options)
    r = opdef.kernel(*feeds, opt=opdef.prepare(ctx))
    return [r.shape]


@pytest.fixture(autouse=True)
def _shapes(monkeypatch):
    monkeypatch.setattr(fixedrunner, "_infer_shapes", _infer_shapes)


# ------------------------------------------------------------------------------ operands

def data(shape, dtype, rng, *, low=None, high=None) -> QArr:
    """A runtime data operand: UINT8 asymmetric, INT8 with a small zero point, INT16 symmetric."""
    if dtype == "UINT8":
        return qrandom(shape, dtype, float(rng.uniform(0.005, 0.02)), int(rng.integers(90, 166)),
                       rng=rng, low=low, high=high)
    if dtype == "INT8":
        return qrandom(shape, dtype, float(rng.uniform(0.005, 0.02)), int(rng.integers(-20, 21)),
                       rng=rng, low=low, high=high)
    return qrandom(shape, dtype, float(rng.uniform(1.0, 4.0) / 32767), 0, rng=rng, low=low, high=high)


def weights(shape, dtype, axis, rng, *, per_channel=True, const=True) -> QArr:
    """Symmetric weights, per-channel scales spanning 100x (shuffled) or one scale."""
    channels = shape[axis]
    scales = np.geomspace(1e-3, 1e-1, channels)
    rng.shuffle(scales)
    scale = scales if per_channel and channels > 1 else float(scales[0])
    return qrandom(shape, dtype, scale, 0, rng=rng, axis=axis, const=const)


def bias(x: QArr, w: QArr, channels: int, dtype: str, taps: int, rng) -> QArr:
    """A constant bias at scale x_scale * w_scale[c], of the size of a typical accumulator."""
    acc_scale = float(x.scale) * np.broadcast_to(np.asarray(w.scale, np.float64), (channels,))
    typical = (255 if x.q.dtype != np.int16 else 32767) * np.iinfo(w.q.dtype).max * np.sqrt(taps) / 4
    q = rng.uniform(-typical, typical, channels)
    q = np.clip(q, *fp.qrange(NP[dtype])).astype(NP[dtype])
    return QArr(q, acc_scale if channels > 1 else float(acc_scale[0]), 0, 0, True)


def conv_opts(padding="SAME", stride=(1, 1), dil=(1, 1), act="NONE", pads=(0, 0, 0, 0), **extra):
    o = {"padding": padding, "stride_h": stride[0], "stride_w": stride[1],
         "dilation_h_factor": dil[0], "dilation_w_factor": dil[1], "fused_activation_function": act}
    if padding in EXPLICIT:
        o.update(padding_top=pads[0], padding_bottom=pads[1], padding_left=pads[2], padding_right=pads[3])
    o.update(extra)
    return o


def _params(op_name, inputs, options, out: QOut, out_shape):
    """prepare() of the integer kernel for these operands."""
    infos = tuple(fixedrunner._info(f"x{i}", x, False) for i, x in enumerate(inputs))
    q = QArr(np.zeros(1, NP[out.dtype]), out.scale, out.zero_point).quantization()
    ctx = OpContext(0, op_name, infos, (TensorInfo("y0", tuple(out_shape), np.dtype(NP[out.dtype]), None, q),),
                    make_options(op_name, options))
    return get_fixed_op(op_name).prepare(ctx)


# ------------------------------------------------------------------------------ CONV_2D vs float

CONV_CASES = [
    # (x shape, (cout, kh, kw, cin_w), options)
    ((1, 9, 10, 5), (6, 3, 3, 5), conv_opts("SAME")),
    ((2, 8, 7, 4), (5, 3, 2, 4), conv_opts("VALID", act="RELU")),
    ((1, 11, 9, 3), (4, 3, 3, 3), conv_opts("SAME", stride=(2, 2), act="RELU6")),
    ((1, 10, 12, 3), (4, 3, 3, 3), conv_opts("VALID", stride=(2, 3), act="RELU_N1_TO_1")),
    ((1, 12, 11, 4), (3, 3, 3, 4), conv_opts("SAME", dil=(2, 3), act="TANH")),
    ((1, 7, 8, 6), (7, 1, 1, 6), conv_opts("VALID")),
    ((1, 9, 9, 6), (5, 1, 1, 6), conv_opts("SAME", stride=(2, 2))),
    ((1, 8, 9, 3), (4, 3, 3, 3), conv_opts("CAFFE", pads=(1, 2, 0, 3))),
    ((1, 8, 9, 3), (4, 3, 2, 3), conv_opts("ONNXINSIDE", stride=(2, 1), pads=(2, 0, 1, 1), act="RELU")),
    ((1, 9, 8, 3), (4, 2, 3, 3), conv_opts("ONNXOUTSIDE", stride=(1, 2), dil=(2, 1), pads=(1, 1, 2, 0))),
    ((1, 8, 8, 6), (6, 3, 3, 2), conv_opts("SAME")),  # 3 groups
    ((1, 7, 9, 4), (8, 3, 3, 1), conv_opts("SAME", stride=(2, 2))),  # groups of one channel (depthwise path)
]


@pytest.mark.parametrize("mode", MAIN_MODES)
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv_2d_options(case, mode):
    xs, ws, opts = CONV_CASES[case]
    xd, wd, bd, od = MODES[mode]
    rng = np.random.default_rng(case)
    x = data(xs, xd, rng)
    w = weights(ws, wd, 0, rng)
    b = bias(x, w, ws[0], bd, int(np.prod(ws[1:])), rng)
    got, ref = check_fixed_op("CONV_2D", [x, w, b], opts, out_dtype=od)
    assert got[0].shape == ref[0].shape and got[0].dtype == np.dtype(NP[od])


@pytest.mark.parametrize("mode", sorted(MODES))
def test_conv_2d_dtype_combinations(mode):
    xd, wd, bd, od = MODES[mode]
    rng = np.random.default_rng(7)
    x = data((1, 7, 6, 4), xd, rng)
    w = weights((5, 3, 3, 4), wd, 0, rng)
    check_fixed_op("CONV_2D", [x, w, bias(x, w, 5, bd, 36, rng)], conv_opts("SAME", act="RELU"), out_dtype=od)


@pytest.mark.parametrize("mode", MAIN_MODES)
def test_conv_2d_per_tensor_weights_no_bias(mode):
    xd, wd, _, od = MODES[mode]
    rng = np.random.default_rng(3)
    x = data((1, 6, 6, 3), xd, rng)
    w = weights((4, 3, 3, 3), wd, 0, rng, per_channel=False)
    got, _ = check_fixed_op("CONV_2D", [x, w], conv_opts("VALID"), out_dtype=od)
    params = _params("CONV_2D", [x, w], conv_opts("VALID"), QOut(od, 0.1, 0), got[0].shape)
    assert params.requant.multiplier.shape == ()  # one multiplier for every channel


@pytest.mark.parametrize("mode", MAIN_MODES)
def test_conv_2d_runtime_weights_and_bias(mode):
    xd, wd, bd, od = MODES[mode]
    rng = np.random.default_rng(4)
    x = data((1, 6, 7, 3), xd, rng)
    w = weights((4, 3, 3, 3), wd, 0, rng, const=False)
    b = bias(x, w, 4, bd, 27, rng)
    b = QArr(b.q, b.scale, 0, 0, const=False)
    check_fixed_op("CONV_2D", [x, w, b], conv_opts("SAME", stride=(2, 1)), out_dtype=od)


def test_conv_2d_bias_at_another_scale_is_rescaled():
    rng = np.random.default_rng(5)
    x = data((1, 6, 6, 3), "UINT8", rng)
    w = weights((4, 3, 3, 3), "INT8", 0, rng)
    b = bias(x, w, 4, "INT32", 27, rng)
    b = QArr((b.q // 4).astype(np.int32), np.asarray(b.scale) * 4, 0, 0, True)
    check_fixed_op("CONV_2D", [x, w, b], conv_opts("SAME"), out_dtype="INT16")


# ------------------------------------------------------------------------------ DEPTHWISE_CONV_2D

DW_CASES = [
    ((1, 9, 10, 4), (1, 3, 3, 4), conv_opts("SAME", act="RELU")),
    ((2, 8, 9, 3), (1, 3, 3, 6), conv_opts("VALID", depth_multiplier=2)),
    ((1, 11, 10, 4), (1, 3, 3, 4), conv_opts("SAME", stride=(2, 2), act="RELU6")),
    ((1, 10, 11, 2), (1, 5, 3, 6), conv_opts("SAME", stride=(1, 3), dil=(1, 2), depth_multiplier=3)),
    ((1, 10, 9, 4), (1, 3, 3, 4), conv_opts("SAME", dil=(2, 2), act="RELU_N1_TO_1")),
    ((1, 8, 9, 3), (1, 3, 3, 3), conv_opts("CAFFE", pads=(1, 1, 1, 1))),
    ((1, 8, 9, 3), (1, 3, 2, 3), conv_opts("ONNXINSIDE", stride=(2, 2), pads=(0, 2, 1, 0))),
    ((1, 8, 9, 3), (1, 2, 3, 6), conv_opts("ONNXOUTSIDE", stride=(2, 1), pads=(2, 1, 0, 2), depth_multiplier=2)),
]


@pytest.mark.parametrize("mode", MAIN_MODES)
@pytest.mark.parametrize("case", range(len(DW_CASES)))
def test_depthwise_conv_2d_options(case, mode):
    xs, ws, opts = DW_CASES[case]
    xd, wd, bd, od = MODES[mode]
    rng = np.random.default_rng(100 + case)
    x = data(xs, xd, rng)
    w = weights(ws, wd, 3, rng)
    b = bias(x, w, ws[3], bd, ws[1] * ws[2], rng)
    check_fixed_op("DEPTHWISE_CONV_2D", [x, w, b], opts, out_dtype=od)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_depthwise_dtype_combinations_no_bias(mode):
    xd, wd, _, od = MODES[mode]
    rng = np.random.default_rng(8)
    check_fixed_op("DEPTHWISE_CONV_2D", [data((1, 6, 7, 3), xd, rng), weights((1, 3, 3, 3), wd, 3, rng)],
                   conv_opts("SAME"), out_dtype=od)


# ------------------------------------------------------------------------------ TRANSPOSE_CONV

TCONV_CASES = [
    # (x shape, (cout, kh, kw, cin), output shape, options)
    ((1, 4, 5, 3), (4, 3, 3, 3), (1, 8, 10, 4), {"padding": "SAME", "stride_h": 2, "stride_w": 2}),
    ((1, 4, 4, 3), (2, 3, 3, 3), (1, 9, 9, 2), {"padding": "VALID", "stride_h": 2, "stride_w": 2}),
    ((2, 3, 4, 2), (3, 2, 2, 2), (2, 6, 8, 3), {"padding": "VALID", "stride_h": 2, "stride_w": 2}),  # k == s
    ((1, 5, 4, 3), (2, 3, 3, 3), (1, 5, 4, 2), {"padding": "SAME", "stride_h": 1, "stride_w": 1,
                                                 "fused_activation_function": "RELU"}),
    ((1, 4, 4, 2), (3, 4, 4, 2), (1, 8, 8, 3), {"padding": "CAFFE", "stride_h": 2, "stride_w": 2,
                                                 "padding_top": 1, "padding_bottom": 1,
                                                 "padding_left": 1, "padding_right": 1}),
    ((1, 3, 4, 2), (2, 3, 3, 2), (1, 6, 7, 2), {"padding": "ONNXOUTSIDE", "stride_h": 2, "stride_w": 2,
                                                 "padding_top": 0, "padding_bottom": 1,
                                                 "padding_left": 1, "padding_right": 1}),
    ((1, 3, 3, 2), (2, 3, 3, 2), (1, 9, 9, 2), {"padding": "ONNXINSIDE", "stride_h": 3, "stride_w": 3,
                                                 "padding_top": 0, "padding_bottom": 0,
                                                 "padding_left": 0, "padding_right": 0}),
]


@pytest.mark.parametrize("mode", MAIN_MODES)
@pytest.mark.parametrize("case", range(len(TCONV_CASES)))
@pytest.mark.parametrize("with_bias", [True, False])
def test_transpose_conv_options(case, mode, with_bias):
    xs, ws, out_shape, opts = TCONV_CASES[case]
    xd, wd, bd, od = MODES[mode]
    rng = np.random.default_rng(200 + case)
    x = data(xs, xd, rng)
    w = weights(ws, wd, 0, rng)
    shape = QArr(np.array(out_shape, np.int32), const=True)
    inputs = [shape, w, x] + ([bias(x, w, ws[0], bd, int(np.prod(ws[1:])), rng)] if with_bias else [])
    got, _ = check_fixed_op("TRANSPOSE_CONV", inputs, opts, out_dtype=od)
    assert got[0].shape == out_shape


# ------------------------------------------------------------------------------ FULLY_CONNECTED

FC_CASES = [
    ((3, 20), 7, {}),
    ((1, 2, 3, 8), 5, {}),  # flattened to [6, 8]
    ((2, 3, 8), 5, {"keep_num_dims": True, "fused_activation_function": "RELU"}),
    ((2, 2, 3, 6), 4, {"keep_num_dims": True, "fused_activation_function": "RELU6"}),
    ((4, 16), 3, {"fused_activation_function": "RELU_N1_TO_1"}),
]


@pytest.mark.parametrize("mode", MAIN_MODES)
@pytest.mark.parametrize("case", range(len(FC_CASES)))
def test_fully_connected_options(case, mode):
    xs, units, opts = FC_CASES[case]
    xd, wd, bd, od = MODES[mode]
    rng = np.random.default_rng(300 + case)
    x = data(xs, xd, rng)
    w = weights((units, xs[-1]), wd, 0, rng)
    got, ref = check_fixed_op("FULLY_CONNECTED", [x, w, bias(x, w, units, bd, xs[-1], rng)], opts,
                              out_dtype=od)
    assert got[0].shape == ref[0].shape


@pytest.mark.parametrize("mode", sorted(MODES))
def test_fully_connected_dtype_combinations_no_bias(mode):
    xd, wd, _, od = MODES[mode]
    rng = np.random.default_rng(9)
    check_fixed_op("FULLY_CONNECTED", [data((2, 12), xd, rng), weights((6, 12), wd, 0, rng)], {},
                   out_dtype=od)


def test_fully_connected_refuses_fused_tanh():
    rng = np.random.default_rng(0)
    with pytest.raises(UnsupportedOpError, match="TANH"):
        _params("FULLY_CONNECTED", [data((2, 4), "UINT8", rng), weights((3, 4), "INT8", 0, rng)],
                {"fused_activation_function": "TANH"}, QOut("UINT8", 0.1, 128), (2, 3))


# ------------------------------------------------------------------------------ BATCH_MATMUL

BMM_CASES = [
    ((2, 3, 5), (5, 4), False, False),
    ((2, 5, 3), (4, 5), True, True),
    ((3, 4, 6), (2, 1, 6, 5), False, False),  # batch broadcast
    ((1, 4, 6), (3, 5, 6), False, True),
    ((6, 4), (6, 3), True, False),
]


@pytest.mark.parametrize("mode", MAIN_MODES)
@pytest.mark.parametrize("case", range(len(BMM_CASES)))
@pytest.mark.parametrize("per_column", [True, False])
def test_batch_matmul_constant_y(case, mode, per_column):
    xs, ys, adj_x, adj_y = BMM_CASES[case]
    xd, wd, _, od = MODES[mode]
    rng = np.random.default_rng(400 + case)
    axis = len(ys) - 2 if adj_y else len(ys) - 1
    y = weights(ys, wd, axis, rng, per_channel=per_column)
    check_fixed_op("BATCH_MATMUL", [data(xs, xd, rng), y], {"adj_x": adj_x, "adj_y": adj_y}, out_dtype=od)


@pytest.mark.parametrize("dtypes", [("INT16", "INT16", "INT16"), ("UINT8", "UINT8", "UINT8"),
                                    ("UINT8", "INT16", "INT16"), ("INT8", "UINT8", "INT8")])
@pytest.mark.parametrize("case", range(len(BMM_CASES)))
def test_batch_matmul_two_runtime_inputs(case, dtypes):
    xs, ys, adj_x, adj_y = BMM_CASES[case]
    rng = np.random.default_rng(500 + case)
    x, y = data(xs, dtypes[0], rng), data(ys, dtypes[1], rng)
    check_fixed_op("BATCH_MATMUL", [x, y], {"adj_x": adj_x, "adj_y": adj_y}, out_dtype=dtypes[2])


# ------------------------------------------------------------------------------ saturation

@pytest.mark.parametrize("mode", MAIN_MODES)
@pytest.mark.parametrize("op_name", ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"])
def test_saturation_at_the_range_ends(op_name, mode):
    xd, wd, bd, od = MODES[mode]
    rng = np.random.default_rng(11)
    if op_name == "FULLY_CONNECTED":
        x, w, opts = data((3, 10), xd, rng), weights((4, 10), wd, 0, rng), {}
    elif op_name == "CONV_2D":
        x, w, opts = data((1, 6, 6, 3), xd, rng), weights((4, 3, 3, 3), wd, 0, rng), conv_opts("SAME")
    else:
        x, w, opts = data((1, 6, 6, 4), xd, rng), weights((1, 3, 3, 4), wd, 3, rng), conv_opts("SAME")
    _, ref = check_fixed_op(op_name, [x, w], opts, out_dtype=od)
    # an output scale covering half of the smaller side: values saturate at both ends
    m = min(float(ref[0].max()), -float(ref[0].min()))
    info = np.iinfo(NP[od])
    out = QOut(od, m / 2 / (127 if od == "UINT8" else info.max), 128 if od == "UINT8" else 0)
    got, _ = check_fixed_op(op_name, [x, w], opts, outputs=[out])
    assert (got[0] == info.min).any() and (got[0] == info.max).any()


@pytest.mark.parametrize("mode", MAIN_MODES)
def test_saturation_with_extreme_inputs(mode):
    """Every input and weight at its range end: the largest accumulators saturate exactly."""
    xd, wd, _, od = MODES[mode]
    xi, wi = np.iinfo(NP[xd]), np.iinfo(NP[wd])
    x = QArr(np.full((1, 5, 5, 8), xi.max, NP[xd]), 0.01, 0)
    w = QArr(np.where(np.arange(4)[:, None, None, None] % 2 == 0, wi.max, wi.min)
             * np.ones((4, 3, 3, 8), np.int64), np.geomspace(1e-3, 1e-1, 4), 0, 0, True)
    w = QArr(w.q.astype(NP[wd]), w.scale, 0, 0, True)
    got, _ = check_fixed_op("CONV_2D", [x, w], conv_opts("VALID"), outputs=[QOut(od, 1e-4, 0)])
    info = np.iinfo(NP[od])
    assert set(np.unique(got[0])) <= {info.min, info.max}


# ------------------------------------------------------------------------------ exact accumulators

def _x_absmax(x: QArr) -> int:
    lo, hi = fp.qrange(x.q.dtype)
    return max(hi - int(x.zero_point), int(x.zero_point) - lo)


def _pads(opts, in_hw, k_hw, stride, dil):
    if opts["padding"] == "SAME":
        _, t, b = same_pads(in_hw[0], k_hw[0], stride[0], dil[0])
        _, l, r = same_pads(in_hw[1], k_hw[1], stride[1], dil[1])
        return t, b, l, r
    if opts["padding"] == "VALID":
        return 0, 0, 0, 0
    return opts["padding_top"], opts["padding_bottom"], opts["padding_left"], opts["padding_right"]


def naive_conv_acc(x: QArr, w: np.ndarray, opts, depthwise: bool) -> np.ndarray:
    """acc[n, oy, ox, o] = sum (x - zp) * w over the window, padding reads the zero point (int64 loops)."""
    xq = x.q.astype(np.int64) - int(x.zero_point)
    n, h, wd, cin = xq.shape
    stride, dil = (opts["stride_h"], opts["stride_w"]), (opts["dilation_h_factor"], opts["dilation_w_factor"])
    if depthwise:
        _, kh, kw, cout = w.shape
    else:
        cout, kh, kw, cin_g = w.shape
        groups = cin // cin_g
    t, b, l, r = _pads(opts, (h, wd), (kh, kw), stride, dil)
    xp = np.zeros((n, h + t + b, wd + l + r, cin), np.int64)
    xp[:, t:t + h, l:l + wd] = xq
    eh, ew = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1
    oh, ow = (xp.shape[1] - eh) // stride[0] + 1, (xp.shape[2] - ew) // stride[1] + 1
    acc = np.zeros((n, oh, ow, cout), np.int64)
    w = w.astype(np.int64)
    for bi, oy, ox in itertools.product(range(n), range(oh), range(ow)):
        win = xp[bi, oy * stride[0]:oy * stride[0] + eh:dil[0], ox * stride[1]:ox * stride[1] + ew:dil[1]]
        for o in range(cout):
            if depthwise:
                acc[bi, oy, ox, o] = int(np.sum(win[:, :, o // (cout // cin)] * w[0, :, :, o]))
            else:
                g = o // (cout // groups)
                acc[bi, oy, ox, o] = int(np.sum(win[:, :, g * cin_g:(g + 1) * cin_g] * w[o]))
    return acc


def naive_tconv_acc(x: QArr, w: np.ndarray, out_shape, stride, pad_tl) -> np.ndarray:
    xq = x.q.astype(np.int64) - int(x.zero_point)
    n, h, wd, cin = xq.shape
    cout, kh, kw, _ = w.shape
    acc = np.zeros(out_shape, np.int64)
    for bi, iy, ix, ky, kx in itertools.product(range(n), range(h), range(wd), range(kh), range(kw)):
        oy, ox = iy * stride[0] + ky - pad_tl[0], ix * stride[1] + kx - pad_tl[1]
        if 0 <= oy < out_shape[1] and 0 <= ox < out_shape[2]:
            acc[bi, oy, ox] += w[:, ky, kx, :].astype(np.int64) @ xq[bi, iy, ix]
    return acc


def reference_output(acc: np.ndarray, x: QArr, w: QArr, b: QArr | None, out: QOut, act: str,
                     abs_sums: np.ndarray) -> np.ndarray:
    """The documented formula: clamp(rounding_rshift((acc + bias) * M[c], shift[c]) + zp), per channel."""
    channels = acc.shape[-1]
    bq = np.zeros(channels, np.int64) if b is None else b.q.astype(np.int64).reshape(-1)
    w_scale = np.broadcast_to(np.asarray(w.scale, np.float64), (channels,))
    real = float(x.scale) * w_scale / float(out.scale)
    y = np.empty(acc.shape, np.int64)
    for c in range(channels):
        bound = _x_absmax(x) * int(abs_sums[c]) + abs(int(bq[c]))
        (m,), (s,) = fconv.requant_multipliers(real[c:c + 1], [bound])
        y[..., c] = fp.rounding_rshift((acc[..., c] + bq[c]) * int(m), int(s)) + int(out.zero_point)
    lo, hi = fconv.activation_range(act if act != "TANH" else "NONE", float(out.scale), int(out.zero_point),
                                    np.dtype(NP[out.dtype]))
    return np.clip(y, lo, hi).astype(NP[out.dtype])


EXACT_CONV = [
    ("CONV_2D", (1, 6, 7, 4), (3, 3, 3, 4), conv_opts("SAME", stride=(2, 1), act="RELU")),
    ("CONV_2D", (1, 7, 6, 4), (4, 3, 2, 2), conv_opts("CAFFE", dil=(2, 1), pads=(1, 0, 2, 1))),
    ("DEPTHWISE_CONV_2D", (1, 7, 7, 3), (1, 3, 3, 6), conv_opts("SAME", stride=(2, 2), act="RELU6")),
    ("DEPTHWISE_CONV_2D", (1, 6, 8, 2), (1, 2, 3, 2), conv_opts("ONNXOUTSIDE", dil=(1, 2), pads=(0, 1, 1, 1))),
]


def _exact_conv_case(op_name, xs, ws, opts, mode, rng):
    xd, wd, bd, od = MODES[mode]
    depthwise = op_name == "DEPTHWISE_CONV_2D"
    x = data(xs, xd, rng)
    w = weights(ws, wd, 3 if depthwise else 0, rng)
    channels = ws[3] if depthwise else ws[0]
    b = bias(x, w, channels, bd, int(np.prod(ws)) // channels, rng)
    acc = naive_conv_acc(x, w.q, opts, depthwise)
    sum_axes = (0, 1, 2) if depthwise else (1, 2, 3)
    abs_sums = np.abs(w.q.astype(np.int64)).sum(axis=sum_axes)
    out = QOut(od, float(np.abs(acc).max()) * float(x.scale) * 0.02 / np.iinfo(NP[od]).max,
               100 if od == "UINT8" else 0)
    return x, w, b, acc, abs_sums, out


@pytest.mark.parametrize("mode", ["u8", "i16", "u8-w16"])
@pytest.mark.parametrize("case", range(len(EXACT_CONV)))
def test_conv_accumulators_are_exact(case, mode):
    op_name, xs, ws, opts = EXACT_CONV[case]
    rng = np.random.default_rng(600 + case)
    x, w, b, acc, abs_sums, out = _exact_conv_case(op_name, xs, ws, opts, mode, rng)
    want = reference_output(acc, x, w, b, out, opts["fused_activation_function"], abs_sums)
    got = fixedrunner.run_fixed(op_name, [x, w, b], [out], [acc.shape], make_options(op_name, opts))[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_transpose_conv_accumulators_are_exact():
    rng = np.random.default_rng(700)
    for mode in ("u8", "i16"):
        xd, wd, bd, od = MODES[mode]
        x = data((1, 3, 4, 3), xd, rng)
        w = weights((2, 3, 3, 3), wd, 0, rng)
        b = bias(x, w, 2, bd, 27, rng)
        out_shape = (1, 6, 8, 2)
        opts = {"padding": "SAME", "stride_h": 2, "stride_w": 2}
        _, pt, _ = same_pads(6, 3, 2)
        _, pl, _ = same_pads(8, 3, 2)
        acc = naive_tconv_acc(x, w.q, out_shape, (2, 2), (pt, pl))
        out = QOut(od, float(np.abs(acc).max()) * float(x.scale) * 0.02 / np.iinfo(NP[od]).max, 0)
        shape = QArr(np.array(out_shape, np.int32), const=True)
        got = fixedrunner.run_fixed("TRANSPOSE_CONV", [shape, w, x, b], [out], [out_shape],
                                    make_options("TRANSPOSE_CONV", opts))[0]
        abs_sums = np.abs(w.q.astype(np.int64)).sum(axis=(1, 2, 3))
        np.testing.assert_array_equal(got, reference_output(acc, x, w, b, out, "NONE", abs_sums))


@pytest.mark.parametrize("mode", ["u8", "i16"])
def test_fully_connected_and_batch_matmul_accumulators_are_exact(mode):
    xd, wd, bd, od = MODES[mode]
    rng = np.random.default_rng(800)
    x = data((3, 2, 9), xd, rng)
    w = weights((5, 9), wd, 0, rng)
    b = bias(x, w, 5, bd, 9, rng)
    xq = x.q.astype(np.int64).reshape(-1, 9) - int(x.zero_point)
    acc = np.array([[sum(int(a) * int(c) for a, c in zip(row, wr)) for wr in w.q] for row in xq])
    out = QOut(od, float(np.abs(acc).max()) * float(x.scale) * 0.05 / np.iinfo(NP[od]).max, 0)
    got = fixedrunner.run_fixed("FULLY_CONNECTED", [x, w, b], [out], [(6, 5)],
                                make_options("FULLY_CONNECTED", {}))[0]
    abs_sums = np.abs(w.q.astype(np.int64)).sum(axis=1)
    np.testing.assert_array_equal(got, reference_output(acc, x, w, b, out, "NONE", abs_sums))
    # BATCH_MATMUL with a runtime y (per tensor, zero point) and adj_y
    y = data((1, 4, 9), xd, rng)
    acc = np.matmul(x.q.astype(np.int64) - int(x.zero_point),
                    np.swapaxes(y.q.astype(np.int64) - int(y.zero_point), -1, -2))
    out = QOut(od, float(np.abs(acc).max()) * float(x.scale) * float(y.scale) * 0.05 / np.iinfo(NP[od]).max, 0)
    got = fixedrunner.run_fixed("BATCH_MATMUL", [x, y], [out], [acc.shape],
                                make_options("BATCH_MATMUL", {"adj_y": True}))[0]
    want = reference_output(acc, x, y, None, out, "NONE", np.full(4, _x_absmax(y) * 9))
    np.testing.assert_array_equal(got, want)


def test_float_kernels_compute_in_float64():
    """The float kernels keep float64 operands in float64 (sums far above 2**24 stay exact)."""
    rng = np.random.default_rng(900)
    x = rng.integers(-32768, 32768, (1, 6, 7, 40)).astype(np.float64)
    for op_name, w, opts in [
        ("CONV_2D", rng.integers(-32768, 32768, (3, 3, 3, 40)), conv_opts("SAME", stride=(2, 1))),
        ("CONV_2D", rng.integers(-32768, 32768, (40, 3, 3, 1)), conv_opts("SAME")),
        ("DEPTHWISE_CONV_2D", rng.integers(-32768, 32768, (1, 3, 3, 40)), conv_opts("SAME", stride=(1, 2))),
    ]:
        depthwise = op_name == "DEPTHWISE_CONV_2D"
        fop = get_float_op(op_name)
        infos = (TensorInfo("x", x.shape, np.dtype(np.float64)),
                 TensorInfo("w", w.shape, np.dtype(np.float64), w.astype(np.float64)))
        params = fop.prepare(OpContext(0, op_name, infos, (TensorInfo("y", (), np.dtype(np.float64)),),
                                       make_options(op_name, opts)))
        y = fop.kernel(x, w.astype(np.float64), opt=params)
        assert y.dtype == np.float64
        want = naive_conv_acc(QArr(x.astype(np.int64), 1.0, 0), w, opts, depthwise)
        assert np.abs(want).max() > 2 ** 30
        np.testing.assert_array_equal(y.astype(np.int64), want)


def test_float_matmul_kernels_compute_in_float64():
    """FULLY_CONNECTED, TRANSPOSE_CONV and BATCH_MATMUL keep float64 operands in float64 too."""
    rng = np.random.default_rng(904)
    big = lambda *shape: rng.integers(-32768, 32768, shape)  # noqa: E731
    f64 = np.dtype(np.float64)
    x, w = big(3, 200), big(4, 200)
    infos = (TensorInfo("x", x.shape, f64), TensorInfo("w", w.shape, f64, w.astype(f64)))
    cases = [("FULLY_CONNECTED", (x, w), infos, {}, x @ w.T)]
    xt, wt = big(1, 3, 3, 50), big(2, 3, 3, 50)
    shape = np.array([1, 7, 7, 2], np.int32)
    infos = (TensorInfo("s", (4,), np.dtype(np.int32), shape), TensorInfo("w", wt.shape, f64, wt.astype(f64)),
             TensorInfo("x", xt.shape, f64))
    want = naive_tconv_acc(QArr(xt, 1.0, 0), wt, (1, 7, 7, 2), (2, 2), (0, 0))
    opts = {"padding": "VALID", "stride_h": 2, "stride_w": 2}
    cases.append(("TRANSPOSE_CONV", (shape, wt, xt), infos, opts, want))
    xb, yb = big(2, 3, 100), big(100, 4)
    infos = (TensorInfo("x", xb.shape, f64), TensorInfo("y", yb.shape, f64))
    cases.append(("BATCH_MATMUL", (xb, yb), infos, {}, np.matmul(xb, yb)))
    for op_name, args, infos, opts, want in cases:
        fop = get_float_op(op_name)
        out = (TensorInfo("y", (), f64),)
        params = fop.prepare(OpContext(0, op_name, infos, out, make_options(op_name, opts)))
        y = fop.kernel(*(a if a.dtype == np.int32 else a.astype(f64) for a in args), opt=params)
        assert y.dtype == np.float64, op_name
        assert np.abs(want).max() > 2 ** 30
        np.testing.assert_array_equal(y.astype(np.int64), want, err_msg=op_name)


def test_runtime_bias_beyond_the_output_range_saturates():
    """A runtime INT64 bias is clipped where the output saturates anyway: same result, no overflow."""
    rng = np.random.default_rng(905)
    x = data((1, 4, 4, 3), "INT16", rng)
    w = weights((4, 3, 3, 3), "INT16", 0, rng)
    acc_scale = float(x.scale) * np.asarray(w.scale)
    b = QArr(np.array([2 ** 62, -2 ** 62, 12345, -(2 ** 63)], np.int64), acc_scale, 0, 0, False)
    opts = conv_opts("SAME")
    acc = naive_conv_acc(x, w.q, opts, False)
    out = QOut("INT16", float(np.abs(acc).max()) * float(acc_scale.max()) / 32767, 0)
    got = fixedrunner.run_fixed("CONV_2D", [x, w, b], [out], [acc.shape], make_options("CONV_2D", opts))[0]
    assert (got[..., 0] == 32767).all() and (got[..., 1] == -32768).all() and (got[..., 3] == -32768).all()
    b2 = QArr(b.q[[2]], float(acc_scale[2]), 0, 0, True)
    w2 = QArr(w.q[[2]], float(np.asarray(w.scale)[2]), 0, 0, True)
    want = fixedrunner.run_fixed("CONV_2D", [x, w2, b2], [out], [acc.shape[:3] + (1,)],
                                 make_options("CONV_2D", opts))[0]
    np.testing.assert_array_equal(got[..., 2:3], want)


def test_large_16bit_layer_uses_float64_and_is_exact():
    """Full-scale INT16 data and weights: sums far beyond float32, bit-exact against int64."""
    rng = np.random.default_rng(901)
    x = QArr(rng.choice(np.array([-32768, 32767, -32767, 32766], np.int16), (1, 5, 5, 64)), 1e-4, 0)
    w = QArr(rng.choice(np.array([-32768, 32767, 1, -1], np.int16), (4, 3, 3, 64)),
             np.array([1e-4, 2e-4, 5e-4, 1e-2]), 0, 0, True)
    opts = conv_opts("SAME")
    acc = naive_conv_acc(x, w.q, opts, False)
    out = QOut("INT16", float(np.abs(acc).max()) * 1e-4 * 1e-2 / 32767 / 3, 0)
    params = _params("CONV_2D", [x, w], opts, out, acc.shape)
    assert params.carrier_dtype == np.float64 and params.limbs == 1
    got = fixedrunner.run_fixed("CONV_2D", [x, w], [out], [acc.shape], make_options("CONV_2D", opts))[0]
    abs_sums = np.abs(w.q.astype(np.int64)).sum(axis=(1, 2, 3))
    np.testing.assert_array_equal(got, reference_output(acc, x, w, None, out, "NONE", abs_sums))


def test_8bit_layer_uses_the_float32_carrier():
    rng = np.random.default_rng(902)
    x = data((1, 8, 8, 16), "UINT8", rng)
    w = weights((8, 3, 3, 16), "INT8", 0, rng)
    params = _params("CONV_2D", [x, w], conv_opts("SAME"), QOut("UINT8", 0.1, 128), (1, 8, 8, 8))
    assert params.carrier_dtype == np.float32
    fixedrunner.assert_integer_params(params)


@pytest.mark.parametrize("case", range(len(EXACT_CONV)))
def test_multi_limb_carrier_is_exact(case, monkeypatch):
    """With a tiny exact limit the weights are split into limbs; the result is unchanged."""
    monkeypatch.setattr(fconv, "EXACT_LIMIT", {fconv.F32: 0, fconv.F64: 1 << 22})
    op_name, xs, ws, opts = EXACT_CONV[case]
    rng = np.random.default_rng(600 + case)
    x, w, b, acc, abs_sums, out = _exact_conv_case(op_name, xs, ws, opts, "i16", rng)
    params = _params(op_name, [x, w, b], opts, out, acc.shape)
    assert params.limbs > 1
    got = fixedrunner.run_fixed(op_name, [x, w, b], [out], [acc.shape], make_options(op_name, opts))[0]
    np.testing.assert_array_equal(got, reference_output(acc, x, w, b, out, opts["fused_activation_function"],
                                                        abs_sums))


def test_multi_limb_runtime_operands_are_exact(monkeypatch):
    monkeypatch.setattr(fconv, "EXACT_LIMIT", {fconv.F32: 0, fconv.F64: 1 << 22})
    rng = np.random.default_rng(903)
    x, y = data((2, 3, 7), "INT16", rng), data((7, 4), "UINT8", rng)
    acc = np.matmul(x.q.astype(np.int64), y.q.astype(np.int64) - int(y.zero_point))
    out = QOut("INT16", float(np.abs(acc).max()) * float(x.scale) * float(y.scale) / 32767, 0)
    params = _params("BATCH_MATMUL", [x, y], {}, out, acc.shape)
    assert params.limbs > 1
    got = fixedrunner.run_fixed("BATCH_MATMUL", [x, y], [out], [acc.shape], make_options("BATCH_MATMUL", {}))[0]
    np.testing.assert_array_equal(got, reference_output(acc, x, y, None, out, "NONE",
                                                        np.full(4, _x_absmax(y) * 7)))


# ------------------------------------------------------------------------------ helpers (properties)

@given(st.lists(st.integers(-2 ** 20, 2 ** 20), min_size=1, max_size=20), st.integers(1, 12),
       st.integers(2, 6))
def test_split_limbs_reconstructs(values, bits, n):
    w = np.array(values, np.int64)
    limbs = fconv.split_limbs(w, bits, n)
    assert len(limbs) == n
    for limb in limbs[:-1]:
        assert limb.min() >= 0 and limb.max() < 1 << bits
    total = sum(limb << (bits * i) for i, limb in enumerate(limbs))
    np.testing.assert_array_equal(total, w)


@given(st.lists(st.integers(-2 ** 40, 2 ** 40), min_size=1, max_size=12),
       st.floats(1e-9, 10.0), st.integers(-2 ** 30, 2 ** 30), st.integers(-200, 200),
       st.sampled_from(["UINT8", "INT8", "INT16", "INT32"]))
def test_requant_matches_fixedpoint_requantize(accs, real, bias_q, zp, dtype):
    acc = np.array(accs, np.int64)
    bound = int(np.abs(acc).max()) + abs(bias_q)
    lo, hi = fp.qrange(NP[dtype])
    zp = int(np.clip(zp, lo, hi))
    rq = fconv.make_requant(np.array([real]), [bound], [bias_q], zp, lo, hi, np.dtype(NP[dtype]))
    m, s = fconv.requant_multipliers(np.array([real]), [bound])
    if int(s[0]) >= 1:
        want = fp.requantize(acc + bias_q, m, s, zp, NP[dtype])
        np.testing.assert_array_equal(rq(acc.reshape(-1, 1)).reshape(-1), want)
    # float carrier input gives the same integers
    if np.abs(acc).max() < 2 ** 53:
        np.testing.assert_array_equal(rq(acc.astype(np.float64).reshape(-1, 1)), rq(acc.reshape(-1, 1)))


@given(st.lists(st.floats(1e-9, 1e3), min_size=1, max_size=8), st.integers(1, 2 ** 50))
def test_requant_multipliers_prefer_float64_exact_ones(reals, bound):
    real = np.array(reals)
    m, s = fconv.requant_multipliers(real, [bound] * real.size)
    assert m.dtype == np.int64 and m.shape == real.shape
    for r, mc, sc in zip(reals, m, s):
        bits = int(mc).bit_length()
        assert int(sc) >= 1 and abs(int(mc) * 2.0 ** -int(sc) - r) <= r * 2.0 ** -bits * (1 + 1e-12)
        if fp.f64_multiplier(r, bound) is not None:  # float64-exact: 24..31 bits, |acc| m + 2**s < 2**53
            assert 24 <= bits <= 31 and bound * int(mc) + (1 << int(sc)) < 2 ** 53
        else:
            assert bits <= fp.multiplier_bits(bound) and bound * int(mc) < 2 ** 62


@given(st.lists(st.floats(1e-6, 1e3), min_size=1, max_size=8), st.integers(1, 2 ** 50))
def test_channel_multipliers_relative_error(reals, bound):
    real = np.array(reals)
    m, s = fconv.channel_multipliers(real, [bound] * real.size)
    bits = fp.multiplier_bits(bound)
    assert np.all(s >= 1)
    approx = m.astype(np.float64) * np.exp2(-s.astype(np.float64))
    assert np.all(np.abs(approx - real) <= real * 2.0 ** -bits * (1 + 1e-12))
    assert all(int(mc) * bound < 2 ** 62 for mc in m)


@given(st.floats(1e-4, 1.0), st.integers(-128, 127), st.sampled_from(["RELU", "RELU6", "RELU_N1_TO_1", "NONE"]))
def test_activation_range(scale, zp, act):
    lo, hi = fconv.activation_range(act, scale, zp, np.dtype(np.int8))
    assert -128 <= lo <= zp <= hi <= 127
    if act in ("RELU", "RELU6"):
        assert lo == max(-128, zp)
    if act == "RELU6":
        assert hi == min(127, zp + int(np.floor(6 / scale + 0.5)))


# ------------------------------------------------------------------------------ negative tests

def test_per_channel_data_is_refused_unless_powers_of_two_on_the_channel_axis():
    rng = np.random.default_rng(0)
    w = weights((2, 3, 3, 2), "INT8", 0, rng)
    x = QArr(rng.integers(0, 255, (1, 4, 4, 2)).astype(np.uint8), np.array([0.1, 0.3]), 0, 3)
    with pytest.raises(UnsupportedOpError, match="powers of two"):
        _params("CONV_2D", [x, w], conv_opts(), QOut("UINT8", 0.1, 0), (1, 4, 4, 2))
    x = QArr(rng.integers(0, 255, (1, 4, 4, 4)).astype(np.uint8), np.array([0.1, 0.2, 0.4, 0.8]), 0, 1)
    with pytest.raises(UnsupportedOpError, match="per channel along axis 1"):
        _params("CONV_2D", [x, weights((2, 3, 3, 4), "INT8", 0, rng)], conv_opts(), QOut("UINT8", 0.1, 0),
                (1, 4, 4, 2))
    y = QArr(rng.integers(-9, 9, (4, 3)).astype(np.int8), 0.1, 0, 0, True)
    xb = QArr(rng.integers(0, 255, (2, 4)).astype(np.uint8), np.array([0.1, 0.2, 0.4, 0.8]), 0, 1)
    with pytest.raises(UnsupportedOpError, match="per-tensor"):
        _params("BATCH_MATMUL", [xb, y], {}, QOut("INT16", 0.1, 0), (2, 3))


# ------------------------------------------------------------------------------ per-channel data / output

def pc_data(shape, rng, *, dtype="UINT8", max_shift=3) -> QArr:
    """Data quantized per channel (last axis): scales grid * 2**k[c], random zero points."""
    channels = shape[-1]
    grid = float(rng.uniform(0.002, 0.01))
    scale = grid * 2.0 ** rng.integers(0, max_shift + 1, channels)
    scale[rng.integers(channels)] = grid
    zp = rng.integers(0, 256, channels) if dtype == "UINT8" else np.zeros(channels, np.int64)
    return qrandom(shape, dtype, scale.astype(np.float32).astype(np.float64), zp, rng=rng, axis=len(shape) - 1)


def pc_out(ref: np.ndarray) -> QOut:
    """A UINT8 quantization per channel (last axis) covering each channel of the float result ``ref``."""
    flat = ref.reshape(-1, ref.shape[-1]).astype(np.float64)
    lo, hi = np.minimum(flat.min(axis=0), 0), np.maximum(flat.max(axis=0), 1e-3)
    scale = (hi - lo) / 255
    return QOut("UINT8", scale, np.round(-lo / scale).astype(np.int64), ref.ndim - 1)


def pc_bias(x: QArr, w: QArr, channels: int, rng) -> QArr:
    """INT32 bias at the input grid scale (the smallest channel scale) times the weight scales."""
    acc_scale = float(np.min(x.scale)) * np.broadcast_to(np.asarray(w.scale, np.float64), (channels,))
    return QArr(rng.integers(-20000, 20000, channels).astype(np.int32), acc_scale, 0, 0, True)


PC_CASES = [
    ("CONV_2D", (1, 7, 8, 5), (6, 3, 3, 5), conv_opts("SAME", act="RELU")),
    ("CONV_2D", (1, 6, 6, 4), (3, 1, 1, 4), conv_opts("VALID", stride=(2, 2))),
    ("CONV_2D", (1, 8, 7, 3), (4, 3, 2, 3), conv_opts("CAFFE", pads=(1, 2, 0, 1), act="RELU6")),
    ("DEPTHWISE_CONV_2D", (1, 7, 7, 3), (1, 3, 3, 6), conv_opts("SAME", stride=(2, 2), act="RELU")),
    ("DEPTHWISE_CONV_2D", (1, 6, 8, 4), (1, 3, 3, 4), conv_opts("ONNXOUTSIDE", pads=(0, 1, 1, 1))),
]


def _pc_operands(case: int, seed: int):
    """(per-channel data, per-channel weights, bias, depthwise?, output channels) of PC_CASES[case]."""
    op_name, xs, ws, _ = PC_CASES[case]
    rng = np.random.default_rng(seed + case)
    depthwise = op_name == "DEPTHWISE_CONV_2D"
    x = pc_data(xs, rng)
    w = weights(ws, "INT8", 3 if depthwise else 0, rng)
    channels = ws[3] if depthwise else ws[0]
    b = pc_bias(x, w, channels, rng)
    return x, w, b, depthwise, channels


@pytest.mark.parametrize("out_kind", ["per_tensor", "per_channel"])
@pytest.mark.parametrize("case", range(len(PC_CASES)))
def test_per_channel_input_and_output_match_the_float_op(case, out_kind):
    op_name, _, _, opts = PC_CASES[case]
    x, w, b, depthwise, channels = _pc_operands(case, 900)
    got, ref = check_fixed_op(op_name, [x, w, b], opts, out_dtype="UINT8")
    if out_kind == "per_channel":
        got, ref = check_fixed_op(op_name, [x, w, b], opts, outputs=[pc_out(ref[0])])
    assert got[0].shape == ref[0].shape and got[0].dtype == np.uint8


def test_per_channel_input_of_fully_connected_and_transpose_conv():
    rng = np.random.default_rng(31)
    x = pc_data((3, 8), rng)
    w = weights((5, 8), "INT8", 0, rng)
    got, ref = check_fixed_op("FULLY_CONNECTED", [x, w, pc_bias(x, w, 5, rng)], {}, out_dtype="INT16")
    assert got[0].shape == ref[0].shape == (3, 5) and got[0].dtype == np.int16
    x = pc_data((1, 4, 5, 3), rng)
    w = weights((4, 3, 3, 3), "INT8", 0, rng)
    shape = QArr(np.array([1, 8, 10, 4], np.int32), None, 0, 0, True)
    got, ref = check_fixed_op("TRANSPOSE_CONV", [shape, w, x, pc_bias(x, w, 4, rng)],
                              {"padding": "SAME", "stride_h": 2, "stride_w": 2}, out_dtype="INT16")
    assert got[0].shape == ref[0].shape == (1, 8, 10, 4)


@pytest.mark.parametrize("case", range(len(PC_CASES)))
def test_per_channel_input_accumulators_are_exact(case):
    """acc = sum ((q - zp[c]) << k[c]) * w, checked against the naive int64 loop and the documented requant."""
    op_name, _, _, opts = PC_CASES[case]
    x, w, b, depthwise, channels = _pc_operands(case, 950)
    grid = float(np.min(x.scale))
    shift = np.round(np.log2(np.asarray(x.scale) / grid)).astype(np.int64)
    on_grid = QArr((x.q.astype(np.int64) - np.asarray(x.zero_point)) << shift, grid, 0, 0)
    acc = naive_conv_acc(on_grid, w.q, opts, depthwise)
    out = QOut("INT16", float(np.abs(acc).max()) * grid * 0.02 / 32767, 0)
    x_absmax = int((np.maximum(255 - np.asarray(x.zero_point), np.asarray(x.zero_point)) << shift).max())
    abs_sums = np.abs(w.q.astype(np.int64)).sum(axis=(0, 1, 2) if depthwise else (1, 2, 3))
    real = grid * np.asarray(w.scale, np.float64) / out.scale
    want = np.empty(acc.shape, np.int64)
    for c in range(channels):
        bq = int(b.q[c])
        (m,), (s,) = fconv.requant_multipliers(real[c:c + 1], [x_absmax * int(abs_sums[c]) + abs(bq)])
        want[..., c] = fp.rounding_rshift((acc[..., c] + bq) * int(m), int(s))
    lo, hi = fconv.activation_range(opts["fused_activation_function"], out.scale, 0, np.dtype(np.int16))
    want = np.clip(want, lo, hi).astype(np.int16)
    got = fixedrunner.run_fixed(op_name, [x, w, b], [out], [acc.shape], make_options(op_name, opts))[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_weights_on_the_wrong_axis_are_refused():
    rng = np.random.default_rng(0)
    w = weights((1, 3, 3, 4), "INT8", 3, rng)
    w = QArr(w.q, w.scale, 0, 3, True)
    with pytest.raises(UnsupportedOpError, match="axis 3"):
        _params("CONV_2D", [data((1, 4, 4, 4), "UINT8", rng), QArr(np.transpose(w.q, (3, 1, 2, 0)).copy(),
                                                                    w.scale, 0, 3, True)],
                conv_opts(), QOut("UINT8", 0.1, 0), (1, 4, 4, 4))


def test_float_input_is_refused():
    rng = np.random.default_rng(0)
    x = QArr(np.zeros((1, 4, 4, 2), np.float32))
    w = weights((2, 3, 3, 2), "INT8", 0, rng)
    infos = (TensorInfo("x", x.q.shape, x.q.dtype), fixedrunner._info("w", w, False))
    ctx = OpContext(0, "CONV_2D", infos, (TensorInfo("y", (1, 4, 4, 2), np.dtype(np.uint8)),),
                    make_options("CONV_2D", conv_opts()))
    with pytest.raises(UnsupportedOpError, match="float32"):
        get_fixed_op("CONV_2D").prepare(ctx)


def test_bias_of_the_wrong_size_is_refused():
    rng = np.random.default_rng(0)
    x, w = data((1, 4, 4, 2), "UINT8", rng), weights((3, 3, 3, 2), "INT8", 0, rng)
    b = QArr(np.zeros(2, np.int32), 0.001, 0, 0, True)
    with pytest.raises(ModelError, match="bias"):
        _params("CONV_2D", [x, w, b], conv_opts(), QOut("UINT8", 0.1, 0), (1, 4, 4, 3))


def test_runtime_bias_at_another_scale_is_refused():
    rng = np.random.default_rng(0)
    x, w = data((1, 4, 4, 2), "UINT8", rng), weights((3, 3, 3, 2), "INT8", 0, rng, per_channel=False)
    b = QArr(np.zeros(3, np.int32), 1.0, 0, 0, False)
    with pytest.raises(UnsupportedOpError, match="runtime bias"):
        _params("CONV_2D", [x, w, b], conv_opts(), QOut("UINT8", 0.1, 0), (1, 4, 4, 3))


def test_wrong_weight_scale_count_is_refused():
    rng = np.random.default_rng(0)
    w = QArr(rng.integers(-127, 127, (3, 3, 3, 2)).astype(np.int8), np.array([0.1, 0.2]), 0, 0, True)
    with pytest.raises(ModelError, match="2 scales for 3"):
        _params("CONV_2D", [data((1, 4, 4, 2), "UINT8", rng), w], conv_opts(), QOut("UINT8", 0.1, 0), (1, 4, 4, 3))
