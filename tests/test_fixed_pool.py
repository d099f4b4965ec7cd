"""Integer AVERAGE_POOL_2D / MAX_POOL_2D (fixed/kernels/pool.py) and RESIZE_BILINEAR
(resize.py) against their float kernels: every padding mode (SAME, VALID and SigmaStar's
CAFFE / ONNXINSIDE / ONNXOUTSIDE explicit pads, including windows with no input cell), strides,
fused activations, uint8-with-zero-point / int8 / int16 data and differing output quantizations;
bilinear over align_corners / half_pixel_centers, up- and down-sampling, and its stated bound;
RESIZE_NEAREST_NEIGHBOR's run-time size input (its cases are in test_fixed_shape.py's table).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibrator_custom.errors import ModelError, UnsupportedOpError
from calibrator_custom.fixed.kernels import resize as fixed_resize
from fixedrunner import QArr, QOut
from test_fixed_shape import DTYPE_MODES, DTYPES, HALF, check, i32, prepare_fixed, qdata, qout

ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH")


def pool_options(padding, k, s, act="NONE", pads=(0, 0, 0, 0)):
    o = {"padding": padding, "filter_height": k[0], "filter_width": k[1], "stride_h": s[0],
         "stride_w": s[1], "fused_activation_function": act}
    if padding not in ("SAME", "VALID"):
        o.update(padding_top=pads[0], padding_bottom=pads[1], padding_left=pads[2], padding_right=pads[3])
    return o


def explicit_out(size, k, s, before, after):
    """Caffe's ceil-mode output size (what a CAFFE/ONNX model declares)."""
    return -(-(size + before + after - k) // s) + 1


def pool_shape(x_shape, padding, k, s, pads):
    n, h, w, c = x_shape
    if padding == "SAME":
        return n, -(-h // s[0]), -(-w // s[1]), c
    if padding == "VALID":
        return n, (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1, c
    return (n, explicit_out(h, k[0], s[0], pads[0], pads[1]), explicit_out(w, k[1], s[1], pads[2], pads[3]), c)


GEOMETRIES = {
    "same_3x3_s2": ("SAME", (3, 3), (2, 2), (0, 0, 0, 0)),
    "same_2x3_s1x2": ("SAME", (2, 3), (1, 2), (0, 0, 0, 0)),
    "valid_2x2_s2": ("VALID", (2, 2), (2, 2), (0, 0, 0, 0)),
    "valid_3x1_s1": ("VALID", (3, 1), (1, 1), (0, 0, 0, 0)),
    "global": ("VALID", (5, 7), (1, 1), (0, 0, 0, 0)),
    "caffe_3x3_s2": ("CAFFE", (3, 3), (2, 2), (1, 1, 1, 1)),
    "caffe_uneven": ("CAFFE", (2, 3), (2, 1), (0, 1, 2, 0)),
    "onnxinside_3x3": ("ONNXINSIDE", (3, 3), (2, 2), (1, 0, 1, 2)),
    "onnxoutside_3x3": ("ONNXOUTSIDE", (3, 3), (2, 2), (1, 0, 1, 2)),
    # windows entirely in the padding: MAX is -inf (the output minimum), AVERAGE counts 0 -> 1
    "caffe_empty_windows": ("CAFFE", (2, 2), (2, 2), (2, 2, 0, 2)),
    "onnxinside_empty": ("ONNXINSIDE", (2, 2), (2, 2), (2, 0, 0, 2)),
}


def run_pool(op, dtype, geometry, act="NONE", mode="same", seed=0):
    padding, k, s, pads = GEOMETRIES[geometry]
    x = qdata((2, 5, 7, 3), dtype, seed)
    out, tol = qout(x, mode)
    if op == "AVERAGE_POOL_2D" or act in ("RELU6", "RELU_N1_TO_1"):
        tol = max(tol, HALF)  # one rounding (AVERAGE) / activation bounds rounded to the output
    shape = pool_shape(x.q.shape, padding, k, s, pads)
    return check(op, [x], pool_options(padding, k, s, act, pads), outputs=[out], tol_lsb=tol,
                 shapes=[shape])


@pytest.mark.parametrize("dtype,mode", DTYPE_MODES)
@pytest.mark.parametrize("geometry", tuple(GEOMETRIES))
@pytest.mark.parametrize("op", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
def test_pool(op, geometry, dtype, mode):
    got, ref = run_pool(op, dtype, geometry, mode=mode)
    assert got[0].shape == ref[0].shape


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("op", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pool_fused_activations(op, act, dtype):
    for geometry in ("same_3x3_s2", "caffe_empty_windows"):
        run_pool(op, dtype, geometry, act, "same", seed=3)
        run_pool(op, dtype, geometry, act, "scaled", seed=4)


def test_max_pool_is_bit_exact_and_empty_windows_give_the_minimum():
    x = qdata((1, 4, 4, 2), "UINT8", 5)
    padding, k, s, pads = GEOMETRIES["caffe_empty_windows"]
    shape = pool_shape(x.q.shape, padding, k, s, pads)
    got, _ = check("MAX_POOL_2D", [x], pool_options(padding, k, s, "NONE", pads),
                   outputs=[QOut("UINT8", x.scale, x.zero_point)], tol_lsb=0, shapes=[shape])
    y = got[0]
    assert np.all(y[:, 0] == 0)  # the first output row's windows are all padding
    np.testing.assert_array_equal(y[0, 1, 0], x.q[0, :2, :2].max(axis=(0, 1)))
    got, _ = check("MAX_POOL_2D", [x], pool_options(padding, k, s, "RELU", pads),
                   outputs=[QOut("UINT8", x.scale, x.zero_point)], tol_lsb=0, shapes=[shape])
    assert np.all(got[0][:, 0] == x.zero_point)  # RELU(-inf) = 0 = the zero point


def test_average_pool_saturates_and_handles_large_windows():
    x = QArr(np.full((1, 9, 9, 1), 32767, np.int16), 1 / 128)
    got, _ = check("AVERAGE_POOL_2D", [x], pool_options("VALID", (9, 9), (1, 1)),
                   outputs=[QOut("INT16", 1 / 1024)], tol_lsb=HALF, shapes=[(1, 1, 1, 1)])
    assert got[0].item() == 32767
    x = qdata((1, 40, 40, 2), "INT16", 6)
    check("AVERAGE_POOL_2D", [x], pool_options("VALID", (40, 40), (1, 1)),
          outputs=[QOut("INT16", float(x.scale) / 64)], tol_lsb=HALF, shapes=[(1, 1, 1, 2)])


def test_average_pool_counts_follow_the_padding_mode():
    """Constant input: ONNXINSIDE averages to the value, CAFFE/ONNXOUTSIDE dilute by padded cells."""
    x = QArr(np.full((1, 3, 3, 1), 90, np.uint8), 1 / 32, 10)  # real 2.5
    res = {}
    for mode in ("CAFFE", "ONNXINSIDE", "ONNXOUTSIDE"):
        got, _ = check("AVERAGE_POOL_2D", [x], pool_options(mode, (3, 3), (2, 2), pads=(1, 1, 1, 1)),
                       outputs=[QOut("UINT8", 1 / 32, 10)], tol_lsb=HALF, shapes=[(1, 2, 2, 1)])
        res[mode] = got[0]
    assert np.all(res["ONNXINSIDE"] == 90)
    assert res["CAFFE"][0, 0, 0, 0] == round(80 * 4 / 9) + 10
    np.testing.assert_array_equal(res["CAFFE"], res["ONNXOUTSIDE"])


def test_pool_refuses_float_and_per_channel():
    x = QArr(np.zeros((1, 4, 4, 2), np.float32))
    with pytest.raises(ModelError):
        prepare_fixed("MAX_POOL_2D", [x], [QOut("INT16", 0.1)], pool_options("SAME", (2, 2), (2, 2)),
                      output_shapes=[(1, 2, 2, 2)])
    pc = QArr(np.zeros((1, 4, 4, 2), np.int16), [0.1, 0.2], 0, axis=3)
    with pytest.raises(ModelError, match="per channel"):
        prepare_fixed("AVERAGE_POOL_2D", [pc], [QOut("INT16", 0.1)], pool_options("SAME", (2, 2), (2, 2)),
                      output_shapes=[(1, 2, 2, 2)])


# ---------------------------------------------------------------------------- bilinear resize
def bilinear_tol(x: QArr, out: QOut) -> float:
    """The module's stated bound: 0.5 + r * (3 * 2**-22 * R + 2**-9), R = full input range."""
    r = float(x.scale) / float(out.scale)
    info = np.iinfo(x.q.dtype)
    return 0.5 + r * (3 * 2.0 ** -22 * (int(info.max) - int(info.min)) + 2.0 ** -9) + 1e-3


RESIZES = {
    "up_2x": ((4, 5), (8, 10), {}),
    "up_odd": ((4, 5), (7, 13), {}),
    "down": ((9, 11), (4, 3), {}),
    "align": ((4, 5), (7, 9), {"align_corners": True}),
    "align_down": ((9, 11), (4, 5), {"align_corners": True}),
    "half_up": ((4, 5), (7, 13), {"half_pixel_centers": True}),
    "half_down": ((9, 11), (4, 3), {"half_pixel_centers": True}),
    "to_1x1": ((3, 4), (1, 1), {"align_corners": True}),
}


@pytest.mark.parametrize("dtype,mode", DTYPE_MODES)
@pytest.mark.parametrize("case", tuple(RESIZES))
def test_resize_bilinear(case, dtype, mode):
    (h, w), (oh, ow), options = RESIZES[case]
    x = qdata((2, h, w, 3), dtype, 7)
    out, _ = qout(x, mode)
    got, ref = check("RESIZE_BILINEAR", [x, i32(oh, ow)], options, outputs=[out],
                     tol_lsb=bilinear_tol(x, out), shapes=[(2, oh, ow, 3)])
    assert got[0].shape == (2, oh, ow, 3)


def test_resize_bilinear_exact_cases_and_runtime_size():
    # integer-ratio upsampling with align_corners of a constant image: exactly the constant
    x = QArr(np.full((1, 3, 3, 2), 77, np.uint8), 1 / 16, 30)
    got, _ = check("RESIZE_BILINEAR", [x, i32(5, 5)], {"align_corners": True},
                   outputs=[QOut("UINT8", 1 / 16, 30)], tol_lsb=0, shapes=[(1, 5, 5, 2)])
    assert np.all(got[0] == 77)
    # run-time size: the static output shape gives the weights
    y = qdata((1, 4, 4, 1), "INT16", 8)
    check("RESIZE_BILINEAR", [y, i32(6, 3, const=False)], {"half_pixel_centers": True},
          outputs=[QOut("INT16", y.scale)], tol_lsb=bilinear_tol(y, QOut("INT16", y.scale)),
          shapes=[(1, 6, 3, 1)])


def test_resize_bilinear_extreme_neighbours_within_bound():
    """Alternating range ends maximize R (the weight-rounding term of the bound)."""
    q = np.where((np.arange(5)[:, None] + np.arange(6)[None, :]) % 2 == 0, 32767, -32768)
    x = QArr(q.astype(np.int16).reshape(1, 5, 6, 1), 1 / 4096)
    out = QOut("INT16", 1 / 4096)
    check("RESIZE_BILINEAR", [x, i32(11, 13)], {"half_pixel_centers": True}, outputs=[out],
          tol_lsb=bilinear_tol(x, out), shapes=[(1, 11, 13, 1)])


@given(st.integers(1, 40), st.integers(1, 40), st.booleans(), st.booleans())
def test_axis_weights_sum_to_one_and_track_the_float_weights(n_in, n_out, align, half):
    if align and half:
        return
    wts = fixed_resize.axis_weights(n_in, n_out, align, half)
    one = 1 << fixed_resize.WEIGHT_BITS
    assert np.all(wts.w_lo + wts.w_hi == one)
    from calibrator_custom.ops.resize import _bilinear_axis
    _, _, frac = _bilinear_axis(n_in, n_out, align, half)
    assert np.all(np.abs(wts.w_hi / one - frac.astype(np.float64)) <= 2.0 ** -(fixed_resize.WEIGHT_BITS + 1))
    assert wts.abs_sum <= 2 * one and math.isfinite(wts.abs_sum)


def test_nearest_runtime_size_uses_static_output_shape():
    x = qdata((1, 3, 4, 2), "UINT8", 11)
    size = i32(5, 7, const=False)
    shapes = [(1, 5, 7, 2)]
    check("RESIZE_NEAREST_NEIGHBOR", [x, size], {"half_pixel_centers": True},
          outputs=[QOut("UINT8", x.scale, x.zero_point)], tol_lsb=0, shapes=shapes)
    with pytest.raises(UnsupportedOpError, match="not static"):
        prepare_fixed("RESIZE_NEAREST_NEIGHBOR", [x, size], [QOut("UINT8", 0.1)], output_shapes=[()])
