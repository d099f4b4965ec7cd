"""Resize kernels (ops/resize.py): LiteRT differential tests over sizes and the align_corners /
half_pixel_centers flags, plus naive per-pixel loops transcribing TFLite's coordinate rules."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from oprunner import Const, check_against_litert, run_ours

from calibrator_custom.errors import ModelError
from calibrator_custom.ops.resize import ResizeParams, resize_bilinear, resize_nearest_neighbor

RNG = np.random.default_rng(7)
F = np.float32

SIZES = [  # (in_h, in_w), (out_h, out_w)
    ((4, 4), (8, 8)), ((3, 5), (7, 4)), ((5, 7), (2, 3)), ((2, 2), (1, 1)), ((1, 3), (4, 6)),
    ((6, 6), (6, 6)), ((3, 4), (9, 13)), ((7, 5), (1, 9)),
]
FLAGS = [(False, False), (True, False), (False, True)]


def _scale(i, o, ac):
    return F(i - 1) / F(o - 1) if ac and o > 1 else F(i) / F(o)


def naive_bilinear(x, out_hw, ac, hpc):
    n, h, w, c = x.shape
    oh, ow = out_hw
    hs, ws = _scale(h, oh, ac), _scale(w, ow, ac)
    y = np.zeros((n, oh, ow, c), F)

    def coords(v, s, size):
        src = F((F(v) + F(0.5)) * s - F(0.5)) if hpc else F(F(v) * s)
        return src, max(int(math.floor(src)), 0), min(int(math.ceil(src)), size - 1)

    for i in range(oh):
        sy, y0, y1 = coords(i, hs, h)
        for j in range(ow):
            sx, x0, x1 = coords(j, ws, w)
            dy, dx = F(sy - F(y0)), F(sx - F(x0))
            y[:, i, j] = (x[:, y0, x0] * (1 - dy) * (1 - dx) + x[:, y1, x0] * dy * (1 - dx)
                          + x[:, y0, x1] * (1 - dy) * dx + x[:, y1, x1] * dy * dx)
    return y


def naive_nearest(x, out_hw, ac, hpc):
    n, h, w, c = x.shape
    oh, ow = out_hw

    def src(v, size, osize):
        s = F(F(v) + F(0.5 if hpc else 0.0)) * _scale(size, osize, ac)
        r = int(math.floor(float(s) + 0.5)) if ac else int(math.floor(s))  # std::round for s >= 0
        r = min(r, size - 1)
        return max(r, 0) if hpc else r

    y = np.zeros((n, oh, ow, c), x.dtype)
    for i in range(oh):
        for j in range(ow):
            y[:, i, j] = x[:, src(i, h, oh), src(j, w, ow)]
    return y


@pytest.mark.parametrize("in_hw,out_hw", SIZES)
@pytest.mark.parametrize("ac,hpc", FLAGS)
def test_resize_bilinear(in_hw, out_hw, ac, hpc):
    x = RNG.standard_normal((2,) + in_hw + (3,)).astype(F)
    ours, _ = check_against_litert("RESIZE_BILINEAR", [x, Const(np.array(out_hw, np.int32))],
                                   {"align_corners": ac, "half_pixel_centers": hpc})
    assert ours[0].shape == (2,) + out_hw + (3,) and ours[0].dtype == F
    np.testing.assert_allclose(ours[0], naive_bilinear(x, out_hw, ac, hpc), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("in_hw,out_hw", SIZES)
@pytest.mark.parametrize("ac,hpc", FLAGS + [(True, True)])
def test_resize_nearest_neighbor(in_hw, out_hw, ac, hpc):
    x = RNG.standard_normal((2,) + in_hw + (3,)).astype(F)
    ours, _ = check_against_litert("RESIZE_NEAREST_NEIGHBOR", [x, Const(np.array(out_hw, np.int32))],
                                   {"align_corners": ac, "half_pixel_centers": hpc})
    np.testing.assert_array_equal(ours[0], naive_nearest(x, out_hw, ac, hpc))


@pytest.mark.parametrize("ac,hpc", FLAGS)
def test_resize_nearest_rounding_edges(ac, hpc):
    # sizes whose source coordinates land exactly on .5 (align_corners rounds half away from zero)
    for in_hw, out_hw in [((3, 3), (5, 5)), ((5, 2), (9, 3)), ((4, 6), (3, 5)), ((10, 10), (4, 7))]:
        x = np.arange(np.prod(in_hw), dtype=F).reshape((1,) + in_hw + (1,))
        ours, _ = check_against_litert("RESIZE_NEAREST_NEIGHBOR", [x, Const(np.array(out_hw, np.int32))],
                                       {"align_corners": ac, "half_pixel_centers": hpc})
        np.testing.assert_array_equal(ours[0], naive_nearest(x, out_hw, ac, hpc))


@pytest.mark.parametrize("ac,hpc", FLAGS)
@pytest.mark.parametrize("in_hw,out_hw", [((130, 3), (261, 5)), ((2, 140), (3, 139)), ((131, 129), (64, 200))])
def test_resize_bilinear_long_axes(in_hw, out_hw, ac, hpc):
    # axes longer than the dense-matmul limit take the gather path
    x = RNG.standard_normal((1,) + in_hw + (2,)).astype(F)
    check_against_litert("RESIZE_BILINEAR", [x, Const(np.array(out_hw, np.int32))],
                         {"align_corners": ac, "half_pixel_centers": hpc})


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_resize_bilinear_non_finite_stays_local():
    x = np.zeros((1, 4, 4, 1), F)
    x[0, 0, 0, 0] = np.inf
    ours = run_ours("RESIZE_BILINEAR", [x, Const(np.array([8, 8], np.int32))], {"half_pixel_centers": True})
    assert np.isfinite(ours[0][0, 4:, 4:]).all()


def test_resize_int_input_and_runtime_size():
    x = RNG.integers(-100, 100, (1, 3, 3, 2)).astype(np.int32)
    check_against_litert("RESIZE_NEAREST_NEIGHBOR", [x, Const(np.array([5, 4], np.int32))], {})
    xf = RNG.standard_normal((1, 3, 4, 2)).astype(F)
    check_against_litert("RESIZE_BILINEAR", [xf, np.array([6, 5], np.int32)], {"half_pixel_centers": True},
                         output_shapes=[(1, 6, 5, 2)], output_dtypes=["FLOAT32"])


def test_kernels_directly():
    # kernels take a params object; a SimpleNamespace with the same fields works too
    x = RNG.standard_normal((1, 2, 3, 4)).astype(F)
    opt = SimpleNamespace(align_corners=False, half_pixel_centers=True, size=None)
    y = resize_bilinear(x, np.array([4, 6], np.int32), opt=opt)
    np.testing.assert_allclose(y, naive_bilinear(x, (4, 6), False, True), rtol=1e-6, atol=1e-6)
    y = resize_nearest_neighbor(x, None, opt=ResizeParams(True, False, (3, 5)))
    np.testing.assert_array_equal(y, naive_nearest(x, (3, 5), True, False))


def test_resize_errors():
    x = RNG.standard_normal((1, 2, 2, 1)).astype(F)
    with pytest.raises(ModelError, match="cannot both be true"):
        run_ours("RESIZE_BILINEAR", [x, Const(np.array([4, 4], np.int32))],
                 {"align_corners": True, "half_pixel_centers": True})
    with pytest.raises(ModelError, match="dtype int64"):
        run_ours("RESIZE_BILINEAR", [x, Const(np.array([4, 4]), dtype="INT64")])
    with pytest.raises(ModelError, match="4-D NHWC"):
        run_ours("RESIZE_NEAREST_NEIGHBOR", [x[0], Const(np.array([4, 4], np.int32))])
    with pytest.raises(ModelError, match="must be positive"):
        run_ours("RESIZE_NEAREST_NEIGHBOR", [x, Const(np.array([0, 4], np.int32))])
