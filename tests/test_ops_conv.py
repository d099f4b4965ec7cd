"""CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED and BATCH_MATMUL float kernels.

Differential tests against LiteRT's reference kernels for everything LiteRT has, and against naive
Python-loop references for SigmaStar's explicit padding modes (CAFFE / ONNXINSIDE / ONNXOUTSIDE),
grouped / bias-less convolutions and direct kernel calls.
"""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from calibrator_custom.errors import ModelError, UnsupportedOpError
from calibrator_custom.ops import conv
from calibrator_custom.ops.registry import OpContext, TensorInfo
from oprunner import Const, build_single_op, check_against_litert, run_ours

ACTS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH")
EXPLICIT = ("CAFFE", "ONNXINSIDE", "ONNXOUTSIDE")


def rnd(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def act_ref(y: np.ndarray, act: str) -> np.ndarray:
    """TFLite's float conv-family kernels clamp with CalculateActivationRange: fused TANH is a no-op."""
    return {"NONE": lambda v: v, "RELU": lambda v: np.maximum(v, 0),
            "RELU6": lambda v: np.clip(v, 0, 6), "RELU_N1_TO_1": lambda v: np.clip(v, -1, 1),
            "TANH": lambda v: v}[act](y)


def conv_opts(padding="SAME", stride=(1, 1), dil=(1, 1), act="NONE", pads=(0, 0, 0, 0), **extra):
    o = {"padding": padding, "stride_h": stride[0], "stride_w": stride[1],
         "dilation_h_factor": dil[0], "dilation_w_factor": dil[1], "fused_activation_function": act}
    if padding in EXPLICIT:
        o.update(padding_top=pads[0], padding_bottom=pads[1], padding_left=pads[2],
                 padding_right=pads[3])
    o.update(extra)
    return o


# ------------------------------------------------------------------------------ naive references

def naive_conv(x, w, b, stride, dil, pads, out_hw=None, depthwise=False, act="NONE"):
    """Python-loop convolution over explicitly padded input (OHWI or depthwise weights)."""
    n, h, wd, cin = x.shape
    t, bo, l, r = pads
    xp = np.zeros((n, h + t + bo, wd + l + r, cin), np.float64)
    xp[:, t:t + h, l:l + wd] = x
    if depthwise:
        _, kh, kw, cout = w.shape
        m = cout // cin
    else:
        cout, kh, kw, cin_g = w.shape
        groups = cin // cin_g
    eh, ew = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1
    oh = (xp.shape[1] - eh) // stride[0] + 1 if out_hw is None else out_hw[0]
    ow = (xp.shape[2] - ew) // stride[1] + 1 if out_hw is None else out_hw[1]
    y = np.zeros((n, oh, ow, cout), np.float64)
    for bi, oy, ox in itertools.product(range(n), range(oh), range(ow)):
        win = xp[bi, oy * stride[0]:oy * stride[0] + eh:dil[0], ox * stride[1]:ox * stride[1] + ew:dil[1]]
        for o in range(cout):
            if depthwise:
                y[bi, oy, ox, o] = np.sum(win[:, :, o // m] * w[0, :, :, o])
            else:
                g = o // (cout // groups)
                y[bi, oy, ox, o] = np.sum(win[:, :, g * cin_g:(g + 1) * cin_g] * w[o])
    if b is not None:
        y += b
    return act_ref(y, act).astype(np.float32)


def naive_tconv(x, w, b, out_hw, stride, pad_tl, act="NONE"):
    n, h, wd, cin = x.shape
    cout, kh, kw, _ = w.shape
    y = np.zeros((n, out_hw[0], out_hw[1], cout), np.float64)
    for bi, iy, ix, ky, kx in itertools.product(range(n), range(h), range(wd), range(kh), range(kw)):
        oy, ox = iy * stride[0] + ky - pad_tl[0], ix * stride[1] + kx - pad_tl[1]
        if 0 <= oy < out_hw[0] and 0 <= ox < out_hw[1]:
            y[bi, oy, ox] += w[:, ky, kx, :] @ x[bi, iy, ix]
    if b is not None:
        y += b
    return act_ref(y, act).astype(np.float32)


def assert_close(ours, ref, rtol=1e-5):
    assert ours.shape == ref.shape and ours.dtype == ref.dtype, (ours.shape, ours.dtype, ref.shape, ref.dtype)
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    assert float(np.max(np.abs(ours.astype(np.float64) - ref))) <= rtol * scale


# ------------------------------------------------------------------------------ CONV_2D

GEOMS = [  # (input hw, kernel hw, stride, dilation)
    ((9, 10), (3, 3), (1, 1), (1, 1)),
    ((9, 10), (3, 3), (2, 2), (1, 1)),
    ((9, 10), (3, 3), (1, 2), (1, 1)),
    ((9, 10), (3, 3), (1, 1), (2, 2)),
    ((11, 8), (3, 2), (2, 1), (1, 3)),
    ((9, 10), (5, 5), (2, 2), (1, 1)),
    ((8, 8), (1, 1), (1, 1), (1, 1)),
    ((9, 9), (1, 1), (2, 2), (1, 1)),
    ((7, 12), (4, 4), (3, 2), (1, 1)),
]


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("gi", range(len(GEOMS)))
def test_conv2d_geometry_vs_litert(padding, gi):
    (h, w), (kh, kw), stride, dil = GEOMS[gi]
    x, wt, b = rnd(1, h, w, 5, seed=gi), rnd(7, kh, kw, 5, seed=gi + 50), rnd(7, seed=gi + 99)
    act = ACTS[gi % len(ACTS)]
    ours, _ = check_against_litert("CONV_2D", [x, Const(wt), Const(b)],
                                   conv_opts(padding, stride, dil, act))
    assert ours[0].dtype == np.float32


@pytest.mark.parametrize("act", ACTS)
def test_conv2d_activations_vs_litert(act):
    x, wt, b = rnd(2, 6, 7, 3, seed=1, scale=2), rnd(4, 3, 3, 3, seed=2), rnd(4, seed=3)
    check_against_litert("CONV_2D", [x, Const(wt), Const(b)], conv_opts("SAME", (1, 1), (1, 1), act))


def test_conv2d_runtime_weights_vs_litert():
    x, wt, b = rnd(1, 6, 6, 4, seed=4), rnd(3, 3, 3, 4, seed=5), rnd(3, seed=6)
    check_against_litert("CONV_2D", [x, wt, Const(b)], conv_opts("SAME", (2, 2)))


def test_conv2d_grouped_vs_litert():
    x, wt, b = rnd(1, 6, 7, 6, seed=7), rnd(4, 3, 3, 3, seed=8), rnd(4, seed=9)
    check_against_litert("CONV_2D", [x, Const(wt), Const(b)], conv_opts("SAME", (1, 1)))


@pytest.mark.parametrize("const_w", [True, False])
def test_conv2d_one_channel_groups_vs_litert(const_w):
    """One input channel per group: run through the depthwise kernel."""
    x, wt, b = rnd(1, 7, 6, 4, seed=7), rnd(8, 3, 3, 1, seed=8), rnd(8, seed=9)
    check_against_litert("CONV_2D", [x, Const(wt) if const_w else wt, Const(b)],
                         conv_opts("SAME", (2, 1), act="RELU"))


@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
@pytest.mark.parametrize("off_diagonal", [False, True])
def test_conv2d_diagonal_weights_vs_litert(stride, off_diagonal):
    """A CONV_2D whose output channel o reads input channel o alone (how the vendor's converter stores a 5 x 5
    depthwise) runs through the depthwise kernel; one weight off the diagonal keeps the full conv. Both
    against LiteRT."""
    c = 6
    x, b = rnd(1, 11, 10, c, seed=20), rnd(c, seed=21)
    wt = np.zeros((c, 5, 5, c), np.float32)
    idx = np.arange(c)
    wt[idx, :, :, idx] = rnd(c, 5, 5, seed=22)
    if off_diagonal:
        wt[1, 2, 3, 4] = 0.5
    opts = SimpleNamespace(**conv_opts("SAME", stride))
    params = conv._prepare_conv(_ctx("CONV_2D", [(x, False), (wt, True), (b, True)], opts))
    assert (params.dw is not None) == (not off_diagonal)
    check_against_litert("CONV_2D", [x, Const(wt), Const(b)], conv_opts("SAME", stride, act="RELU6"))


@pytest.mark.parametrize("groups", [1, 2, 4, 8])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv2d_grouped_no_bias_naive(groups, padding):
    x, wt = rnd(2, 7, 6, 8, seed=10), rnd(8, 3, 3, 8 // groups, seed=11)
    (y,) = run_ours("CONV_2D", [x, Const(wt), None], conv_opts(padding, (2, 1)))
    # SAME: 7 rows, stride 2 -> 4 rows, total pad 2; 6 cols, stride 1 -> total pad 2
    pads = (1, 1, 1, 1) if padding == "SAME" else (0, 0, 0, 0)
    assert_close(y, naive_conv(x, wt, None, (2, 1), (1, 1), pads))


@pytest.mark.parametrize("padding", EXPLICIT)
@pytest.mark.parametrize("case", [
    ((8, 9), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    ((8, 9), (3, 3), (2, 2), (1, 1), (0, 1, 2, 0)),
    ((8, 9), (3, 2), (1, 2), (2, 1), (2, 0, 1, 3)),
    ((6, 6), (1, 1), (1, 1), (1, 1), (1, 2, 0, 1)),
    ((7, 7), (5, 5), (2, 1), (1, 1), (2, 2, 2, 2)),
])
def test_conv2d_explicit_padding_naive(padding, case):
    (h, w), (kh, kw), stride, dil, pads = case
    x, wt, b = rnd(1, h, w, 3, seed=12), rnd(4, kh, kw, 3, seed=13), rnd(4, seed=14)
    (y,) = run_ours("CONV_2D", [x, Const(wt), Const(b)],
                    conv_opts(padding, stride, dil, "RELU", pads))
    assert_close(y, naive_conv(x, wt, b, stride, dil, pads, act="RELU"))


@pytest.mark.parametrize("stride,dil", [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((1, 1), (2, 1)),
                                        ((1, 2), (1, 2))])
def test_conv2d_many_chunks_vs_litert(monkeypatch, stride, dil):
    """Tiny im2col chunks: several chunks per image, batch 2."""
    monkeypatch.setattr(conv, "_COL_CHUNK_BYTES", 1 << 13)
    x, wt, b = rnd(2, 21, 17, 12, seed=15), rnd(10, 3, 3, 12, seed=16), rnd(10, seed=17)
    check_against_litert("CONV_2D", [x, Const(wt), Const(b)], conv_opts("SAME", stride, dil, "RELU"))


# ------------------------------------------------------------------------------ DEPTHWISE_CONV_2D

DW_GEOMS = [
    ((9, 10), (3, 3), (1, 1), (1, 1)),
    ((9, 10), (3, 3), (2, 2), (1, 1)),
    ((10, 9), (5, 5), (1, 1), (1, 1)),
    ((10, 9), (5, 5), (2, 1), (1, 1)),
    ((9, 10), (3, 3), (1, 1), (2, 3)),
    ((8, 11), (2, 4), (1, 3), (1, 1)),
]


@pytest.mark.parametrize("mult", [1, 2, 3])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("gi", range(len(DW_GEOMS)))
def test_depthwise_vs_litert(mult, padding, gi):
    (h, w), (kh, kw), stride, dil = DW_GEOMS[gi]
    c = 4
    x, wt, b = rnd(1, h, w, c, seed=gi), rnd(1, kh, kw, c * mult, seed=gi + 1), rnd(c * mult, seed=3)
    act = ACTS[(gi + mult) % len(ACTS)]
    ours, _ = check_against_litert("DEPTHWISE_CONV_2D", [x, Const(wt), Const(b)],
                                   conv_opts(padding, stride, dil, act, depth_multiplier=mult))
    assert ours[0].shape[-1] == c * mult


@pytest.mark.parametrize("act", ACTS)
def test_depthwise_activations_batch_vs_litert(act):
    x, wt, b = rnd(2, 7, 6, 5, seed=20, scale=2), rnd(1, 3, 3, 5, seed=21), rnd(5, seed=22)
    check_against_litert("DEPTHWISE_CONV_2D", [x, Const(wt), Const(b)],
                         conv_opts("SAME", (1, 1), (1, 1), act, depth_multiplier=1))


def test_depthwise_runtime_weights_vs_litert():
    x, wt, b = rnd(1, 6, 6, 3, seed=23), rnd(1, 3, 3, 6, seed=24), rnd(6, seed=25)
    check_against_litert("DEPTHWISE_CONV_2D", [x, wt, Const(b)],
                         conv_opts("SAME", (2, 2), depth_multiplier=2))


@pytest.mark.parametrize("k,stride,dil,mult", [
    (3, (1, 1), (1, 1), 1), (3, (2, 2), (1, 1), 1), (3, (1, 2), (2, 1), 2), (3, (3, 1), (1, 3), 1),
    (3, (3, 3), (2, 2), 1), (5, (2, 2), (3, 3), 1), (5, (1, 4), (1, 2), 2), (4, (2, 3), (1, 1), 3)])
def test_depthwise_stride_phases_batch_vs_litert(k, stride, dil, mult):
    """Strides split the input in column phases; dilations make taps skip columns in a phase."""
    x, wt, b = rnd(2, 19, 23, 6, seed=26), rnd(1, k, k, 6 * mult, seed=27), rnd(6 * mult, seed=28)
    for padding in ("SAME", "VALID"):
        check_against_litert("DEPTHWISE_CONV_2D", [x, Const(wt), Const(b)],
                             conv_opts(padding, stride, dil, "RELU6", depth_multiplier=mult))


def test_depthwise_large_vs_litert():
    x, wt, b = rnd(1, 64, 64, 48, seed=29), rnd(1, 5, 5, 48, seed=30), rnd(48, seed=31)
    check_against_litert("DEPTHWISE_CONV_2D", [x, Const(wt), Const(b)],
                         conv_opts("SAME", (1, 1), act="RELU6", depth_multiplier=1))


@pytest.mark.parametrize("padding", EXPLICIT)
@pytest.mark.parametrize("case", [
    ((8, 9), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),
    ((8, 9), (3, 3), (2, 2), (1, 1), (0, 1, 2, 0), 2),
    ((9, 8), (5, 3), (1, 2), (1, 2), (2, 2, 3, 1), 1),
])
def test_depthwise_explicit_padding_naive(padding, case):
    (h, w), (kh, kw), stride, dil, pads, mult = case
    x, wt = rnd(1, h, w, 3, seed=30), rnd(1, kh, kw, 3 * mult, seed=31)
    (y,) = run_ours("DEPTHWISE_CONV_2D", [x, Const(wt), None],
                    conv_opts(padding, stride, dil, "NONE", pads, depth_multiplier=mult))
    assert_close(y, naive_conv(x, wt, None, stride, dil, pads, depthwise=True))


# ------------------------------------------------------------------------------ TRANSPOSE_CONV

@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("k,s", [(2, 2), (3, 2), (3, 1), (4, 2), (3, 3), (1, 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_transpose_conv_vs_litert(padding, k, s, bias):
    h, w, cin, cout = 4, 5, 3, 6
    if padding == "SAME":
        oh, ow = h * s, w * s - (s - 1)          # exact and "odd" SAME output sizes
    else:
        oh, ow = (h - 1) * s + k, (w - 1) * s + k
    x, wt = rnd(1, h, w, cin, seed=k), rnd(cout, k, k, cin, seed=s)
    ins = [Const(np.array([1, oh, ow, cout], np.int32)), Const(wt), x]
    if bias:
        ins.append(Const(rnd(cout, seed=40)))
    act = ACTS[(k + s) % len(ACTS)]
    ours, _ = check_against_litert("TRANSPOSE_CONV", ins,
                                   {"padding": padding, "stride_h": s, "stride_w": s,
                                    "fused_activation_function": act})
    assert ours[0].shape == (1, oh, ow, cout)


@pytest.mark.parametrize("act", ACTS)
def test_transpose_conv_activation_asym_stride_vs_litert(act):
    x, wt, b = rnd(2, 3, 4, 2, seed=41, scale=2), rnd(3, 3, 2, 2, seed=42), rnd(3, seed=43)
    check_against_litert("TRANSPOSE_CONV", [Const(np.array([2, 6, 12, 3], np.int32)), Const(wt), x,
                                            Const(b)],
                         {"padding": "SAME", "stride_h": 2, "stride_w": 3,
                          "fused_activation_function": act})


def test_transpose_conv_runtime_output_shape_vs_litert():
    """A non-constant output_shape: the output size comes from the declared output tensor."""
    x, wt, b = rnd(1, 4, 4, 3, seed=47), rnd(2, 3, 3, 3, seed=48), rnd(2, seed=49)
    check_against_litert("TRANSPOSE_CONV", [np.array([1, 8, 8, 2], np.int32), Const(wt), x, Const(b)],
                         {"padding": "SAME", "stride_h": 2, "stride_w": 2},
                         output_shapes=[(1, 8, 8, 2)], output_dtypes=[np.float32])
    # runtime weights too
    check_against_litert("TRANSPOSE_CONV", [Const(np.array([1, 9, 9, 2], np.int32)), wt, x, Const(b)],
                         {"padding": "VALID", "stride_h": 2, "stride_w": 2})


@pytest.mark.parametrize("padding", EXPLICIT)
@pytest.mark.parametrize("k,s,pads", [(3, 2, (1, 0, 1, 0)), (4, 2, (1, 1, 1, 1)), (2, 2, (0, 0, 0, 0)),
                                      (3, 1, (1, 1, 2, 0)), (5, 3, (2, 1, 0, 3))])
def test_transpose_conv_explicit_naive(padding, k, s, pads):
    h, w, cin, cout = 3, 4, 2, 3
    oh = (h - 1) * s + k - pads[0] - pads[1]
    ow = (w - 1) * s + k - pads[2] - pads[3]
    x, wt, b = rnd(1, h, w, cin, seed=44), rnd(cout, k, k, cin, seed=45), rnd(cout, seed=46)
    (y,) = run_ours("TRANSPOSE_CONV", [Const(np.array([1, oh, ow, cout], np.int32)), Const(wt), x,
                                       Const(b)],
                    {"padding": padding, "stride_h": s, "stride_w": s, "padding_top": pads[0],
                     "padding_bottom": pads[1], "padding_left": pads[2], "padding_right": pads[3]})
    assert_close(y, naive_tconv(x, wt, b, (oh, ow), (s, s), (pads[0], pads[2])))


# ------------------------------------------------------------------------------ FULLY_CONNECTED

@pytest.mark.parametrize("shape,keep", [((3, 8), False), ((1, 2, 3, 8), False), ((1, 2, 3, 8), True),
                                        ((2, 4, 6), False), ((4, 6), False), ((5, 8), True)])
@pytest.mark.parametrize("bias", [True, False])
def test_fully_connected_vs_litert(shape, keep, bias):
    in_f = 8 if shape[-1] == 8 else 12
    x, wt = rnd(*shape, seed=50), rnd(5, in_f, seed=51)
    ins = [x, Const(wt)] + ([Const(rnd(5, seed=52))] if bias else [])
    act = ACTS[len(shape) % 4]        # TANH is refused (as by TFLite), tested below
    ours, _ = check_against_litert("FULLY_CONNECTED", ins,
                                   {"fused_activation_function": act, "keep_num_dims": keep})
    size = int(np.prod(shape))
    assert ours[0].shape == (tuple(shape[:-1]) + (5,) if keep else (size // in_f, 5))


@pytest.mark.parametrize("act", ACTS[:4])
def test_fully_connected_activations_runtime_weights_vs_litert(act):
    x, wt, b = rnd(3, 7, seed=53, scale=2), rnd(4, 7, seed=54), rnd(4, seed=55)
    check_against_litert("FULLY_CONNECTED", [x, wt, Const(b)], {"fused_activation_function": act})


def test_fully_connected_absent_bias_input_vs_litert():
    x, wt = rnd(2, 6, seed=56), rnd(3, 6, seed=57)
    check_against_litert("FULLY_CONNECTED", [x, Const(wt), None], {})


# ------------------------------------------------------------------------------ BATCH_MATMUL

@pytest.mark.parametrize("adj_x", [False, True])
@pytest.mark.parametrize("adj_y", [False, True])
@pytest.mark.parametrize("xb,yb", [((), ()), ((2,), (2,)), ((2, 3), (1,)), ((1, 3), (2, 1)),
                                   ((4,), ())])
def test_batch_matmul_vs_litert(adj_x, adj_y, xb, yb):
    m, k, n = 3, 5, 4
    xs = xb + ((k, m) if adj_x else (m, k))
    ys = yb + ((n, k) if adj_y else (k, n))
    x, y = rnd(*xs, seed=60), rnd(*ys, seed=61)
    ours, _ = check_against_litert("BATCH_MATMUL", [x, y], {"adj_x": adj_x, "adj_y": adj_y})
    assert ours[0].shape == np.broadcast_shapes(xb, yb) + (m, n)


@pytest.mark.parametrize("adj_y", [False, True])
def test_batch_matmul_const_rhs_vs_litert(adj_y):
    x, y = rnd(2, 3, 4, seed=62), rnd(2, 5, 4, seed=63) if adj_y else rnd(2, 4, 5, seed=63)
    check_against_litert("BATCH_MATMUL", [x, Const(y)], {"adj_x": False, "adj_y": adj_y})


# ------------------------------------------------------------------------------ direct kernel calls

def _ctx(op, inputs, options, out_shape=()):
    infos = tuple(None if item is None else
                  TensorInfo(f"t{i}", tuple(item[0].shape), item[0].dtype, item[0] if item[1] else None)
                  for i, item in enumerate(inputs))
    return OpContext(0, op, infos, (TensorInfo("out", tuple(out_shape), np.dtype(np.float32)),), options)


def test_direct_conv_kernel_with_simplenamespace_options():
    x, wt, b = rnd(1, 5, 6, 2, seed=70), rnd(3, 3, 3, 2, seed=71), rnd(3, seed=72)
    opt = SimpleNamespace(padding="SAME", stride_h=1, stride_w=2, dilation_h_factor=1,
                          dilation_w_factor=1, fused_activation_function="RELU_N1_TO_1")
    for const in (True, False):       # precomputed vs runtime weight layout
        params = conv._prepare_conv(_ctx("CONV_2D", [(x, False), (wt, const), (b, True)], opt))
        y = conv.conv_2d(x, wt, b, opt=params)
        assert y.shape == (1, 5, 3, 3) and y.dtype == np.float32
        assert_close(y, naive_conv(x, wt, b, (1, 2), (1, 1), (1, 1, 0, 1), act="RELU_N1_TO_1"))


def test_direct_depthwise_kernel_runtime_weights():
    x, wt = rnd(1, 6, 5, 2, seed=73), rnd(1, 3, 3, 4, seed=74)
    opt = SimpleNamespace(padding="VALID", stride_h=1, stride_w=1, dilation_h_factor=1,
                          dilation_w_factor=1, depth_multiplier=2, fused_activation_function="NONE")
    params = conv._prepare_depthwise(_ctx("DEPTHWISE_CONV_2D", [(x, False), (wt, False), None], opt))
    y = conv.depthwise_conv_2d(x, wt, None, opt=params)
    assert_close(y, naive_conv(x, wt, None, (1, 1), (1, 1), (0, 0, 0, 0), depthwise=True))


# ------------------------------------------------------------------------------ prepare errors

def _build(op, inputs, options, **kw):
    return build_single_op(op, inputs, options, **kw)


def test_error_conv_channel_mismatch():
    with pytest.raises(ModelError, match="weights have 4 input channels but input has 3"):
        _build("CONV_2D", [rnd(1, 5, 5, 3), Const(rnd(2, 3, 3, 4)), Const(rnd(2))], conv_opts())


def test_error_conv_bias_size():
    with pytest.raises(ModelError, match="bias has 3 elements"):
        _build("CONV_2D", [rnd(1, 5, 5, 3), Const(rnd(2, 3, 3, 3)), Const(rnd(3))], conv_opts())


def test_error_conv_rank_and_stride():
    with pytest.raises(ModelError, match="rank 4"):
        _build("CONV_2D", [rnd(5, 5, 3), Const(rnd(2, 3, 3, 3)), Const(rnd(2))], conv_opts())
    with pytest.raises(ModelError, match="strides must be positive"):
        _build("CONV_2D", [rnd(1, 5, 5, 3), Const(rnd(2, 3, 3, 3)), Const(rnd(2))],
               conv_opts(stride=(0, 1)))


def test_error_conv_declared_output_shape():
    with pytest.raises(ModelError, match="declared with shape"):
        run_ours("CONV_2D", [rnd(1, 5, 5, 3), Const(rnd(2, 3, 3, 3)), Const(rnd(2))], conv_opts(),
               output_shapes=[(1, 4, 4, 2)], output_dtypes=[np.float32])


def test_error_depthwise_channels():
    with pytest.raises(ModelError, match="not a multiple of the input's 3"):
        _build("DEPTHWISE_CONV_2D", [rnd(1, 5, 5, 3), Const(rnd(1, 3, 3, 4)), None],
               conv_opts(depth_multiplier=1))
    with pytest.raises(ModelError, match=r"\[1, kh, kw, channels\]"):
        _build("DEPTHWISE_CONV_2D", [rnd(1, 5, 5, 3), Const(rnd(2, 3, 3, 3)), None],
               conv_opts(depth_multiplier=1))


def test_error_transpose_conv():
    shape = Const(np.array([1, 8, 8, 2], np.int32))
    with pytest.raises(ModelError, match="weights have 4 input channels but input has 3"):
        _build("TRANSPOSE_CONV", [shape, Const(rnd(2, 3, 3, 4)), rnd(1, 4, 4, 3)],
               {"padding": "SAME", "stride_h": 2, "stride_w": 2})
    with pytest.raises(ModelError, match="output channels"):
        _build("TRANSPOSE_CONV", [shape, Const(rnd(3, 3, 3, 3)), rnd(1, 4, 4, 3)],
               {"padding": "SAME", "stride_h": 2, "stride_w": 2})


def test_error_fully_connected():
    with pytest.raises(UnsupportedOpError, match="weights_format"):
        _build("FULLY_CONNECTED", [rnd(2, 6), Const(rnd(3, 6))], {"weights_format": "SHUFFLED4x16INT8"})
    with pytest.raises(ModelError, match="does not divide"):
        _build("FULLY_CONNECTED", [rnd(2, 7), Const(rnd(3, 6))], {})
    with pytest.raises(ModelError, match="keep_num_dims"):
        _build("FULLY_CONNECTED", [rnd(2, 12), Const(rnd(3, 6))], {"keep_num_dims": True})
    with pytest.raises(ModelError, match="bias has 4 elements"):
        _build("FULLY_CONNECTED", [rnd(2, 6), Const(rnd(3, 6)), Const(rnd(4))], {})
    with pytest.raises(UnsupportedOpError, match="fused activation 'TANH'"):
        _build("FULLY_CONNECTED", [rnd(2, 6), Const(rnd(3, 6))], {"fused_activation_function": "TANH"})


def test_error_batch_matmul():
    with pytest.raises(ModelError, match="contraction sizes differ"):
        _build("BATCH_MATMUL", [rnd(2, 3, 4), rnd(2, 5, 6)], {})
    with pytest.raises(ModelError, match="do not broadcast"):
        _build("BATCH_MATMUL", [rnd(2, 3, 4), rnd(3, 4, 6)], {})
