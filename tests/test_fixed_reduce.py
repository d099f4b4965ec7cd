"""Integer reductions (fixed/kernels/reduce.py) against their float kernels: MEAN, SUM,
REDUCE_MAX/MIN/PROD over single, multiple, negative, duplicate, non-contiguous and run-time axes with
and without keep_dims; ARG_MAX/ARG_MIN (ties, int32/int64 outputs) and TOPK_V2; uint8-with-zero-point
/ int8 / int16 data and differing output quantizations; plus property tests of the REDUCE_PROD
block-float product against exact Python integers.
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibrator_custom.errors import UnsupportedOpError
from calibrator_custom.fixed.kernels import reduce as mr
from fixedrunner import QArr, QOut, qrandom, run_float, symmetric_out
from test_fixed_shape import (DTYPE_MODES, DTYPES, HALF, ZERO_POINT, check, float_shapes, i32,
                                 options_of, prepare_fixed, qdata, qout, scalar32)

AXES = {
    "hw": (1, 2), "last": (-1,), "first_last": (0, 3), "dup_neg": (1, -3), "all": (0, 1, 2, 3),
    "none": (),
}


def reduce_case(op, axes, keep, dtype, mode, seed=0, const=True):
    x = qdata((2, 3, 4, 5), dtype, seed)
    axis = QArr(np.array(axes, np.int32), None, 0, 0, const)
    options = {"keep_dims": keep}
    if op in ("MEAN", "SUM"):
        # the output must cover the reduced range: derive it from the float result, then apply mode
        ref_shape = float_shapes(op, [x, dataclasses.replace(axis, const=True)], options_of(op, options))
        base = _float_ref(op, x, axis, options)
        out = symmetric_out(base, x.dtype_name if mode != "cross" else "UINT8")
        if mode == "saturate":
            out = dataclasses.replace(out, scale=out.scale / 3)
        elif mode == "zp" and out.dtype == "UINT8":
            out = dataclasses.replace(out, zero_point=min(255, out.zero_point + 7))
        elif mode == "zp":
            out = dataclasses.replace(out, zero_point=3)
        tol = HALF
    else:
        out, tol = qout(x, mode)
        ref_shape = None
    return check(op, [x, axis], options, outputs=[out], tol_lsb=tol,
                 shapes=ref_shape if const else float_shapes(op, [x, dataclasses.replace(axis, const=True)],
                                                             options_of(op, options)))


def _float_ref(op, x, axis, options):
    shapes = float_shapes(op, [x, dataclasses.replace(axis, const=True)], options_of(op, options))
    return run_float(op, [x, dataclasses.replace(axis, const=True)], options_of(op, options), shapes)[0]


@pytest.mark.parametrize("dtype,mode", DTYPE_MODES)
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("axes", tuple(AXES))
@pytest.mark.parametrize("op", ["MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"])
def test_reduce(op, axes, keep, dtype, mode):
    got, ref = reduce_case(op, AXES[axes], keep, dtype, mode)
    assert got[0].shape == ref[0].shape


@pytest.mark.parametrize("op", ["MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"])
def test_reduce_runtime_axes(op):
    if op == "REDUCE_PROD":
        x = prod_data((2, 3, 4), "INT16", 2)
        axis = i32(-1, 0, const=False)
        shapes = float_shapes(op, [x, i32(-1, 0)], options_of(op, {"keep_dims": True}))
        out = symmetric_out(_float_ref(op, x, i32(-1, 0), {"keep_dims": True}), "INT16")
        check(op, [x, axis], {"keep_dims": True}, outputs=[out], tol_lsb=1.0, shapes=shapes)
        return
    reduce_case(op, (2, 0), True, "UINT8", "scaled", const=False)
    reduce_case(op, (-1,), False, "INT16", "same", const=False)


def test_reduce_max_min_exact_and_saturating():
    x = QArr(np.array([[0, 255, 3], [100, 101, 7]], np.uint8), 1 / 64, 100)
    got, _ = check("REDUCE_MAX", [x, i32(1)], outputs=[QOut("UINT8", 1 / 64, 100)], tol_lsb=0)
    np.testing.assert_array_equal(got[0], [255, 101])
    got, _ = check("REDUCE_MIN", [x, i32(1)], outputs=[QOut("INT8", 1 / 64, 0)], tol_lsb=0)
    np.testing.assert_array_equal(got[0], [-100, -93])


def test_sum_and_mean_of_large_counts():
    x = qdata((1, 64, 64, 2), "INT16", 3)
    for op in ("SUM", "MEAN"):
        ref = _float_ref(op, x, i32(1, 2), {"keep_dims": True})
        check(op, [x, i32(1, 2)], {"keep_dims": True}, outputs=[symmetric_out(ref, "INT16")], tol_lsb=HALF)
    full = QArr(np.full((1, 50, 50, 1), 32767, np.int16), 1 / 1024)
    got, _ = check("SUM", [full, i32(1, 2)], outputs=[QOut("INT16", 1 / 1024)], tol_lsb=HALF)
    assert got[0].item() == 32767  # saturates at the range end


def test_plain_integer_reductions_match_the_float_kernel():
    x = QArr(np.random.default_rng(4).integers(-1000, 1000, (3, 4)).astype(np.int32))
    for op in ("SUM", "MEAN", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"):
        got, ref = check(op, [x, i32(1)], outputs=[QOut("INT32")], tol_lsb=0)
        np.testing.assert_array_equal(got[0], ref[0])


# ------------------------------------------------------------------------------- REDUCE_PROD
def prod_data(shape, dtype, seed, low=None, high=None):
    """Small magnitudes so the float32 reference neither overflows nor underflows."""
    zp = ZERO_POINT[dtype]
    lo, hi = (zp - 12, zp + 12) if low is None else (low, high)
    scale = {"UINT8": 0.125, "INT8": 0.25, "INT16": 3 / 16}[dtype]
    return qrandom(shape, dtype, scale, zp, rng=np.random.default_rng(seed), low=lo, high=hi)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axes,keep", [((1,), False), ((0, 2), True), ((-1,), True), ((1, -2), False)])
@pytest.mark.parametrize("mode", ["fit", "fine", "saturate", "uint8_out"])
def test_reduce_prod(dtype, axes, keep, mode):
    x = prod_data((2, 3, 4), dtype, 5)
    axis = i32(*axes)
    ref = _float_ref("REDUCE_PROD", x, axis, {"keep_dims": keep})
    out = symmetric_out(ref, "INT16")
    if mode == "fine":
        out = dataclasses.replace(out, scale=out.scale / 7.3)
    elif mode == "saturate":
        out = dataclasses.replace(out, scale=out.scale / 200)
    elif mode == "uint8_out":
        out = symmetric_out(ref, "UINT8")
    n = math.prod(x.q.shape[a] for a in axes)
    got, _ = check("REDUCE_PROD", [x, axis], {"keep_dims": keep}, outputs=[out],
                   tol_lsb=0.5 + (n + 1) * 2.0 ** -15 + 0.01)
    assert got[0].dtype == np.dtype(np.int16 if out.dtype == "INT16" else np.uint8)


def test_reduce_prod_refusals():
    x = QArr(np.ones((2, 3), np.int32), 0.5)
    with pytest.raises(UnsupportedOpError, match="8/16-bit"):
        prepare_fixed("REDUCE_PROD", [x, i32(1)], [QOut("INT16", 0.1)], output_shapes=[(2,)])


@given(st.lists(st.integers(-65535, 65535), min_size=1, max_size=40))
def test_block_float_product_tracks_the_exact_product(factors):
    p, e = mr.block_float_product(np.array([factors], np.int64))
    exact = math.prod(factors)
    assert abs(int(p[0])) <= 2 ** 31
    approx = Fraction(int(p[0])) * Fraction(2) ** int(e[0])
    if exact == 0:
        assert approx == 0
    else:
        rel = abs((approx - exact) / exact)
        assert rel <= Fraction(len(factors), 2 ** 31)


@given(st.floats(1e-6, 1e3), st.floats(1e-6, 1e3), st.integers(0, 300))
def test_prod_multiplier_is_the_exact_power_within_2_pow_minus_30(in_scale, out_scale, n):
    m, s = mr.prod_multiplier(in_scale, out_scale, n)
    assert 2 ** 30 <= m < 2 ** 31
    exact = Fraction(in_scale) ** n / Fraction(out_scale)
    got = Fraction(m) / Fraction(2) ** s if s >= 0 else Fraction(m) * Fraction(2) ** -s
    assert abs(got / exact - 1) <= Fraction(n + 2, 2 ** 52) + Fraction(1, 2 ** 31)


@given(st.integers(-(2 ** 31), 2 ** 31), st.integers(-60, 60), st.integers(1, 2 ** 31 - 1),
       st.integers(-20, 80))
def test_scale_block_float_rounds_half_up_or_saturates(p, e, m, s):
    y = int(mr.scale_block_float(np.array([p], np.int64), np.array([e], np.int64), m, s)[0])
    exact = Fraction(p * m) * Fraction(2) ** (e - s)
    if abs(exact) >= 2 ** 31:
        assert abs(y) >= 2 ** 31 and (y > 0) == (exact > 0)
    else:
        assert y == math.floor(exact + Fraction(1, 2))


# --------------------------------------------------------------------------------- arg / topk
@pytest.mark.parametrize("out_type", ["INT32", "INT64"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("op", ["ARG_MAX", "ARG_MIN"])
def test_arg_max_min(op, axis, dtype, out_type):
    x = qdata((3, 4, 5), dtype, 6)
    # plant ties: the first index must win, as in the float kernel
    q = x.q.copy()
    q[:, 1, :] = q[:, 3, :]
    q[..., 0] = q[..., 2]
    x = dataclasses.replace(x, q=q)
    got, ref = check(op, [x, scalar32(axis)], {"output_type": out_type}, outputs=[QOut(out_type)],
                     tol_lsb=0)
    assert got[0].dtype == np.dtype(out_type.lower())


def test_arg_max_runtime_axis_and_plain_input():
    x = qdata((3, 4), "UINT8", 7)
    check("ARG_MAX", [x, scalar32(1, const=False)], {"output_type": "INT32"}, outputs=[QOut("INT32")],
          tol_lsb=0, shapes=[(3,)])
    xi = QArr(np.array([[5, 9, 9], [-1, -7, 3]], np.int32))
    got, _ = check("ARG_MIN", [xi, scalar32(1)], {"output_type": "INT64"}, outputs=[QOut("INT64")], tol_lsb=0)
    np.testing.assert_array_equal(got[0], [0, 1])


@pytest.mark.parametrize("dtype,mode", DTYPE_MODES)
@pytest.mark.parametrize("k", [1, 3, 6])
def test_topk(k, dtype, mode):
    x = qdata((2, 3, 6), dtype, 8)
    q = x.q.copy()
    q[..., 4] = q[..., 1]  # ties: lower index first
    x = dataclasses.replace(x, q=q)
    out, tol = qout(x, mode)
    got, ref = check("TOPK_V2", [x, scalar32(k)], outputs=[out, QOut("INT32")], tol_lsb=tol,
                     output_dtypes=["FLOAT32", "INT32"])
    assert got[1].dtype == np.int32 and got[0].shape == (2, 3, k)


def test_topk_runtime_k():
    x = qdata((4, 7), "INT16", 9)
    check("TOPK_V2", [x, scalar32(2, const=False)], outputs=[QOut("INT16", x.scale), QOut("INT32")],
          tol_lsb=0, output_dtypes=["FLOAT32", "INT32"], shapes=[(4, 2), (4, 2)])
