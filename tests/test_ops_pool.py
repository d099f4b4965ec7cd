"""AVERAGE_POOL_2D / MAX_POOL_2D float kernels.

SAME / VALID against LiteRT's reference kernels; SigmaStar's explicit modes (CAFFE, ONNXINSIDE,
ONNXOUTSIDE, output size from the model's output tensor) against a naive Python-loop reference.
"""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from calibrator_custom.errors import ModelError
from calibrator_custom.ops import pool
from calibrator_custom.ops.registry import OpContext, TensorInfo
from oprunner import build_single_op, check_against_litert, run_ours

ACTS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH")
OPS = ("MAX_POOL_2D", "AVERAGE_POOL_2D")


def rnd(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def pool_opts(padding="SAME", k=(2, 2), s=(2, 2), act="NONE", pads=None):
    o = {"padding": padding, "filter_height": k[0], "filter_width": k[1], "stride_h": s[0],
         "stride_w": s[1], "fused_activation_function": act}
    if pads is not None:
        o.update(padding_top=pads[0], padding_bottom=pads[1], padding_left=pads[2],
                 padding_right=pads[3])
    return o


def act_ref(y, act):
    """TFLite's float pool kernels clamp with CalculateActivationRange: fused TANH is a no-op."""
    return {"NONE": y, "TANH": y, "RELU": np.maximum(y, 0), "RELU6": np.clip(y, 0, 6),
            "RELU_N1_TO_1": np.clip(y, -1, 1)}[act]


def naive_pool(x, op, k, s, pads, out_hw, mode, act="NONE"):
    """Loop reference of the documented explicit-padding rules."""
    n, h, w, c = x.shape
    t, b, l, r = pads
    y = np.zeros((n, out_hw[0], out_hw[1], c), np.float64)
    for bi, oy, ox in itertools.product(range(n), range(out_hw[0]), range(out_hw[1])):
        y0, x0 = oy * s[0] - t, ox * s[1] - l
        ys = [yy for yy in range(y0, y0 + k[0]) if 0 <= yy < h]
        xs = [xx for xx in range(x0, x0 + k[1]) if 0 <= xx < w]
        cells = x[bi][np.ix_(ys, xs)] if ys and xs else np.zeros((0, 0, c))
        if op == "MAX_POOL_2D":
            y[bi, oy, ox] = cells.reshape(-1, c).max(0) if cells.size else -np.inf
        else:
            if mode == "ONNXINSIDE":
                cnt = len(ys) * len(xs)
            else:
                ry = min(y0 + k[0], h + b) - max(y0, -t)
                rx = min(x0 + k[1], w + r) - max(x0, -l)
                cnt = max(ry, 0) * max(rx, 0)
            y[bi, oy, ox] = cells.reshape(-1, c).sum(0) / max(cnt, 1)
    return act_ref(y, act).astype(np.float32)


def assert_close(ours, ref, rtol=1e-5):
    assert ours.shape == ref.shape and ours.dtype == ref.dtype, (ours.shape, ours.dtype, ref.shape, ref.dtype)
    assert np.array_equal(np.isinf(ours), np.isinf(ref))
    fin = np.isfinite(ref)
    scale = max(float(np.max(np.abs(ref[fin]), initial=0.0)), 1e-30)
    assert float(np.max(np.abs(ours[fin].astype(np.float64) - ref[fin]), initial=0.0)) <= rtol * scale


GEOMS = [  # (input hw, filter hw, stride)
    ((8, 9), (2, 2), (2, 2)),
    ((9, 9), (3, 3), (2, 2)),
    ((9, 10), (3, 3), (1, 1)),
    ((7, 11), (3, 2), (2, 1)),
    ((10, 7), (1, 3), (1, 2)),
    ((6, 6), (6, 6), (1, 1)),      # global
    ((7, 7), (5, 5), (3, 3)),
    ((5, 8), (1, 1), (2, 2)),
]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("gi", range(len(GEOMS)))
def test_pool_vs_litert(op, padding, gi):
    (h, w), k, s = GEOMS[gi]
    x = rnd(1, h, w, 3, seed=gi, scale=3)
    act = ACTS[gi % len(ACTS)]
    ours, _ = check_against_litert(op, [x], pool_opts(padding, k, s, act))
    assert ours[0].dtype == np.float32


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("act", ACTS)
def test_pool_activations_batch_vs_litert(op, act):
    x = rnd(2, 7, 8, 5, seed=11, scale=4)
    check_against_litert(op, [x], pool_opts("SAME", (3, 3), (2, 2), act))


@pytest.mark.parametrize("op", OPS)
def test_pool_larger_vs_litert(op):
    x = rnd(1, 56, 56, 24, seed=12)
    check_against_litert(op, [x], pool_opts("SAME", (3, 3), (2, 2)))
    check_against_litert(op, [x], pool_opts("VALID", (2, 2), (2, 2), "RELU6"))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("mode", ["CAFFE", "ONNXINSIDE", "ONNXOUTSIDE"])
@pytest.mark.parametrize("case", [
    # input hw, filter, stride, pads (t, b, l, r), output hw (from the output tensor)
    ((7, 7), (3, 3), (2, 2), (1, 1, 1, 1), (4, 4)),
    ((6, 6), (3, 3), (2, 2), (0, 0, 0, 0), (3, 3)),      # Caffe ceil mode: last window overhangs
    ((6, 7), (2, 3), (2, 1), (1, 0, 2, 1), (4, 8)),
    ((8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (8, 8)),
    ((5, 5), (4, 4), (3, 3), (2, 2, 2, 2), (3, 3)),      # windows wider than the padded extent
    ((6, 6), (2, 2), (2, 2), (0, 0, 0, 0), (2, 2)),      # output smaller than the input allows
])
def test_pool_explicit_naive(op, mode, case):
    (h, w), k, s, pads, out_hw = case
    x = rnd(1, h, w, 4, seed=13, scale=2)
    (y,) = run_ours(op, [x], pool_opts(mode, k, s, "RELU6" if op == OPS[0] else "NONE", pads),
                    output_shapes=[(1,) + out_hw + (4,)], output_dtypes=[np.float32])
    assert_close(y, naive_pool(x, op, k, s, pads, out_hw, mode, "RELU6" if op == OPS[0] else "NONE"))


def test_avg_explicit_divisors_differ_by_mode():
    """Same pads, three modes: ONNXINSIDE counts real cells, CAFFE/ONNXOUTSIDE the padded ones."""
    x = np.ones((1, 4, 4, 1), np.float32)
    res = {}
    for mode in ("CAFFE", "ONNXINSIDE", "ONNXOUTSIDE"):
        (res[mode],) = run_ours("AVERAGE_POOL_2D", [x], pool_opts(mode, (3, 3), (1, 1), pads=(1, 1, 1, 1)),
                                output_shapes=[(1, 4, 4, 1)], output_dtypes=[np.float32])
    np.testing.assert_allclose(res["ONNXINSIDE"], 1.0)
    assert res["CAFFE"][0, 0, 0, 0] == pytest.approx(4 / 9)
    np.testing.assert_array_equal(res["CAFFE"], res["ONNXOUTSIDE"])


def test_direct_kernel_with_simplenamespace_options():
    x = rnd(1, 5, 6, 2, seed=14)
    opt = SimpleNamespace(padding="SAME", filter_height=3, filter_width=3, stride_h=2, stride_w=2,
                          fused_activation_function="NONE")
    ctx = OpContext(0, "MAX_POOL_2D", (TensorInfo("x", x.shape, x.dtype),),
                    (TensorInfo("y", (), np.dtype(np.float32)),), opt)
    y = pool.max_pool_2d(x, opt=pool._prepare_max(ctx))
    # SAME: rows 5 -> 3 (total pad 2: 1/1), cols 6 -> 3 (total pad 1: 0/1)
    assert_close(y, naive_pool(x, "MAX_POOL_2D", (3, 3), (2, 2), (1, 1, 0, 1), (3, 3), "ONNXINSIDE"))


def test_kernel_does_not_alias_input():
    x = rnd(1, 4, 4, 2, seed=15)
    keep = x.copy()
    (y,) = run_ours("MAX_POOL_2D", [x], pool_opts("VALID", (1, 1), (1, 1), "RELU"))
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_array_equal(y, np.maximum(keep, 0))


def test_error_rank_and_options():
    with pytest.raises(ModelError, match="rank 4"):
        build_single_op("MAX_POOL_2D", [rnd(4, 4, 2)], pool_opts())
    with pytest.raises(ModelError, match="strides must be positive"):
        build_single_op("MAX_POOL_2D", [rnd(1, 4, 4, 2)], pool_opts(s=(0, 1)))
    with pytest.raises(ModelError, match="filter size must be positive"):
        build_single_op("AVERAGE_POOL_2D", [rnd(1, 4, 4, 2)], pool_opts(k=(0, 2)))
    with pytest.raises(ModelError, match="output size from the output tensor"):
        build_single_op("AVERAGE_POOL_2D", [rnd(1, 4, 4, 2)], pool_opts("CAFFE", pads=(0, 0, 0, 0)))
    with pytest.raises(ModelError, match="declared with shape"):
        run_ours("MAX_POOL_2D", [rnd(1, 4, 4, 2)], pool_opts(), output_shapes=[(1, 3, 3, 2)],
                 output_dtypes=[np.float32])
