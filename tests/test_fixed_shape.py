"""Integer kernels of the shape family (fixed/kernels/shape.py): every op against its float kernel via
``check_fixed_op``, over uint8-with-zero-point / int8 / int16 data and five output quantizations:

* ``same``: output quantization = input's -> bit-exact (tol 0; the scales have few mantissa bits so
  the float32 reference is exact too);
* ``zp``: same scale, shifted zero point -> exact up to saturation (tol 0);
* ``scaled`` / ``saturate``: a different scale (larger / 3x smaller, saturating) -> <= 0.5 LSB;
* ``cross``: int16 data to a uint8 output with a zero point -> <= 0.5 LSB.

Also: run-time index inputs, PAD/PADV2/SPACE_TO_BATCH_ND zero-point padding and prepare refusals
(CAST: test_fixed_elementwise.py; RESIZE_NEAREST_NEIGHBOR's run-time size: test_fixed_pool.py, with
the other resize kernels).

The helpers here (``check``, ``qdata``, ``qout``, ...) are imported by the other
test_fixed_*.py files of the data-movement-like families (pool, reduce).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fixedrunner
from calibrator_custom.errors import ModelError, UnsupportedOpError
from calibrator_custom.fixed.kernels._common import bit_length
from calibrator_custom.fixed.registry import get_fixed_op
from calibrator_custom.model.options import default_options, make_options
from calibrator_custom.ops.registry import OpContext, TensorInfo, get_op
from fixedrunner import NP, QArr, QOut, check_fixed_op, qrandom

#: scales with few mantissa bits: q * scale is exact in float32, so tol 0 is meaningful
EXACT_SCALE = {"UINT8": 3 / 256, "INT8": 5 / 512, "INT16": 3 / 2 ** 14}
ZERO_POINT = {"UINT8": 100, "INT8": 0, "INT16": 0}
DTYPES = ("UINT8", "INT8", "INT16")
MODES = ("same", "zp", "scaled", "saturate", "cross")
#: every dtype with every mode; the cross-dtype mode on int16 data only
DTYPE_MODES = tuple((d, m) for d in DTYPES for m in MODES if m != "cross" or d == "INT16")
#: 0.5 LSB plus the float32 reference's own rounding
HALF = 0.51


# ------------------------------------------------------------------------------------ helpers
def qdata(shape, dtype="INT16", seed=0, **kw) -> QArr:
    """Random data over the whole range of ``dtype`` with an exact scale (and a zero point for uint8)."""
    return qrandom(shape, dtype, EXACT_SCALE[dtype], ZERO_POINT[dtype], rng=np.random.default_rng(seed), **kw)


def qout(x: QArr, mode: str) -> tuple[QOut, float]:
    """(output quantization, tolerance in LSB) for input ``x`` under ``mode``."""
    dt = x.dtype_name
    s, z = float(x.scale), int(x.zero_point)
    if mode == "same":
        return QOut(dt, s, z), 0.0
    if mode == "zp":
        return QOut(dt, s, z + (7 if dt == "UINT8" else 3)), 0.0
    if mode == "scaled":
        return QOut(dt, s * 1.37, z), HALF
    if mode == "saturate":
        return QOut(dt, s / 3, z), HALF
    if mode == "cross":
        return QOut("UINT8", s * 300, 128), HALF
    raise ValueError(mode)


def i32(*v, const=True) -> QArr:
    """A plain int32 index tensor (constant unless const=False)."""
    return QArr(np.array(v, np.int32), None, 0, 0, const)


def scalar32(v, const=True) -> QArr:
    return QArr(np.array(v, np.int32), None, 0, 0, const)


def options_of(op_name, options):
    if options is None or isinstance(options, dict):
        return make_options(op_name, options) if options else default_options(op_name)
    return options


def float_shapes(op_name, inputs, options, n_out=1, output_dtypes=None):
    """Output shapes from the float op run with ``n_out`` placeholder outputs (for ops whose
    prepare counts its outputs or reads their dtypes, which fixedrunner's inference cannot give)."""
    opdef = get_op(op_name)
    feeds = [None if x is None else x.real() for x in inputs]
    infos = tuple(None if x is None else TensorInfo(f"x{i}", f.shape, f.dtype, f if x.const else None)
                  for i, (x, f) in enumerate(zip(inputs, feeds)))
    outs = tuple(TensorInfo(f"y{j}", (), np.dtype(NP[(output_dtypes or ["FLOAT32"] * n_out)[j]]))
                 for j in range(n_out))
    ctx = OpContext(0, op_name, infos, outs, options)
    params = opdef.prepare(ctx) if opdef.prepare else options
    r = opdef.kernel(*feeds, opt=params)
    return [v.shape for v in (r if isinstance(r, (tuple, list)) else [r])]


def check(op_name, inputs, options=None, *, outputs, tol_lsb, shapes=None, n_out=None,
          output_dtypes=None, **kw):
    """check_fixed_op with output shapes worked out here.

    fixedrunner._infer_shapes falls back to a ModelBuilder model it never marks outputs on (build()
    then raises), so ops whose float prepare needs its outputs (SPLIT, UNPACK, CAST, pools with
    explicit pads) cannot run through it; this wrapper supplies the shapes instead.
    """
    options = options_of(op_name, options)
    if shapes is None:
        shapes = float_shapes(op_name, inputs, options, n_out or len(outputs), output_dtypes)
    saved = fixedrunner._infer_shapes
    fixedrunner._infer_shapes = lambda *a, **k: [tuple(s) for s in shapes]
    try:
        return check_fixed_op(op_name, inputs, options, outputs=outputs, tol_lsb=tol_lsb,
                              output_dtypes=output_dtypes, **kw)
    finally:
        fixedrunner._infer_shapes = saved


def check_modes(op_name, inputs, options, mode, n_out=1, data_index=0, shapes=None):
    """Run ``op_name`` with all outputs quantized per ``mode`` relative to the data input."""
    out, tol = qout(inputs[data_index], mode)
    return check(op_name, inputs, options, outputs=[out] * n_out, tol_lsb=tol, shapes=shapes)


def prepare_fixed(op_name, inputs, outputs, options=None, output_shapes=None):
    """Run only the integer prepare (for refusal tests)."""
    options = options_of(op_name, options)
    infos = tuple(TensorInfo(f"x{i}", x.q.shape, x.q.dtype, x.q if x.const else None, x.quantization())
                  for i, x in enumerate(inputs))
    outs = []
    for j, o in enumerate(outputs):
        q = None if o.scale is None else QArr(np.zeros(1, NP[o.dtype]), o.scale, o.zero_point).quantization()
        outs.append(TensorInfo(f"y{j}", tuple((output_shapes or [()] * len(outputs))[j]),
                               np.dtype(NP[o.dtype]), None, q))
    ctx = OpContext(0, op_name, infos, tuple(outs), options)
    return get_fixed_op(op_name).prepare(ctx)


# ------------------------------------------------------------------------ data-movement cases
def _cases(dtype):
    x4 = qdata((2, 4, 6, 3), dtype, 1)
    x3 = qdata((3, 4, 5), dtype, 2)
    return {
        "reshape": ("RESHAPE", [x3, i32(5, -1)], None, 1, 0),
        "reshape_options": ("RESHAPE", [x3], {"new_shape": [12, 5]}, 1, 0),
        "squeeze": ("SQUEEZE", [qdata((1, 3, 1, 4), dtype)], {"squeeze_dims": [-2]}, 1, 0),
        "squeeze_all": ("SQUEEZE", [qdata((1, 3, 1, 4), dtype)], None, 1, 0),
        "expand_dims": ("EXPAND_DIMS", [x3, scalar32(-1)], None, 1, 0),
        "transpose": ("TRANSPOSE", [x4, i32(0, 3, 1, 2)], None, 1, 0),
        "slice": ("SLICE", [x4, i32(0, 1, 2, 0), i32(-1, 2, 3, 2)], None, 1, 0),
        "strided_slice": ("STRIDED_SLICE", [x4, i32(0, 3, 0, 1), i32(2, 0, 6, 3), i32(1, -1, 2, 1)],
                          {"begin_mask": 1, "end_mask": 0, "shrink_axis_mask": 0}, 1, 0),
        "strided_slice_masks": ("STRIDED_SLICE", [x4, i32(1, 0, 2), i32(2, 0, 5), i32(1, 1, 1)],
                                {"shrink_axis_mask": 1, "new_axis_mask": 2, "ellipsis_mask": 0,
                                 "end_mask": 2}, 1, 0),
        "strided_slice_ellipsis": ("STRIDED_SLICE", [x4, i32(0, 1), i32(1, 3), i32(1, 1)],
                                   {"ellipsis_mask": 1}, 1, 0),
        "strided_slice_offset": ("STRIDED_SLICE", [x4, i32(0, 1, 1, 0), i32(1, 2, 3, 2), i32(1, 1, 2, 1)],
                                 {"offset": True}, 1, 0),
        "tile": ("TILE", [x3, i32(2, 1, 3)], None, 1, 0),
        "gather": ("GATHER", [x4, i32(5, 0, 2, 2)], {"axis": 2}, 1, 0),
        "gather_nd_idx": ("GATHER", [x3, QArr(np.array([[0, 2], [1, 1]], np.int64), const=True)],
                          {"axis": -2}, 1, 0),
        "gather_batch": ("GATHER", [x3, QArr(np.array([[1, 0], [3, 3], [2, 1]], np.int16), const=True)],
                         {"axis": 1, "batch_dims": 1}, 1, 0),
        "gather_runtime": ("GATHER", [x3, QArr(np.array([4, 0, 1], np.int32))], {"axis": 2}, 1, 0),
        "pad": ("PAD", [x4, QArr(np.array([[0, 0], [1, 2], [0, 3], [0, 0]], np.int32), const=True)],
                None, 1, 0),
        "mirror_reflect": ("MIRROR_PAD", [x4, QArr(np.array([[0, 0], [3, 1], [2, 5], [0, 0]], np.int32),
                                                   const=True)], {"mode": "REFLECT"}, 1, 0),
        "mirror_symmetric": ("MIRROR_PAD", [x4, QArr(np.array([[1, 0], [4, 1], [0, 6], [0, 0]], np.int32),
                                                     const=True)], {"mode": "SYMMETRIC"}, 1, 0),
        "depth_to_space": ("DEPTH_TO_SPACE", [qdata((2, 2, 3, 8), dtype)], {"block_size": 2}, 1, 0),
        "space_to_depth": ("SPACE_TO_DEPTH", [x4], {"block_size": 2}, 1, 0),
        "batch_to_space": ("BATCH_TO_SPACE_ND", [qdata((4, 2, 3, 2), dtype), i32(2, 2),
                                                 QArr(np.array([[0, 1], [1, 2]], np.int32), const=True)],
                           None, 1, 0),
        "space_to_batch": ("SPACE_TO_BATCH_ND", [x4, i32(2, 3),
                                                 QArr(np.array([[1, 1], [2, 1]], np.int32), const=True)],
                           None, 1, 0),
        "space_to_batch_3d": ("SPACE_TO_BATCH_ND", [x3, i32(3),
                                                    QArr(np.array([[1, 1]], np.int32), const=True)],
                              None, 1, 0),
        "split": ("SPLIT", [scalar32(2), x4], {"num_splits": 3}, 3, 1),
        "split_v": ("SPLIT_V", [x4, i32(1, -1, 2), scalar32(-2)], {"num_splits": 3}, 3, 0),
        "unpack": ("UNPACK", [x3], {"num": 4, "axis": 1}, 4, 0),
        "nearest_up": ("RESIZE_NEAREST_NEIGHBOR", [x4, i32(7, 13)], None, 1, 0),
        "nearest_align": ("RESIZE_NEAREST_NEIGHBOR", [x4, i32(3, 9)], {"align_corners": True}, 1, 0),
        "nearest_half": ("RESIZE_NEAREST_NEIGHBOR", [x4, i32(5, 4)], {"half_pixel_centers": True}, 1, 0),
    }


CASES = tuple(_cases("INT16"))


@pytest.mark.parametrize("dtype,mode", DTYPE_MODES)
@pytest.mark.parametrize("case", CASES)
def test_movement(case, dtype, mode):
    op, inputs, options, n_out, data_index = _cases(dtype)[case]
    got, ref = check_modes(op, inputs, options, mode, n_out, data_index)
    out, _ = qout(inputs[data_index], mode)
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.dtype == NP[out.dtype]


@pytest.mark.parametrize("case", ["reshape", "transpose", "slice", "tile", "mirror_reflect",
                                  "space_to_batch", "batch_to_space", "split", "split_v", "strided_slice"])
def test_movement_runtime_index_inputs(case):
    """The same ops with every index input computed at run time (not constant)."""
    op, inputs, options, n_out, data_index = _cases("UINT8")[case]
    rt = [x if i == data_index else dataclasses.replace(x, const=False) for i, x in enumerate(inputs)]
    shapes = float_shapes(op, inputs, options_of(op, options), n_out)
    check_modes(op, rt, options, "scaled", n_out, data_index, shapes=shapes)
    check_modes(op, rt, options, "same", n_out, data_index, shapes=shapes)


def test_identity_is_bit_exact_and_saturates_at_range_ends():
    x = QArr(np.array([[0, 1, 254, 255], [100, 101, 99, 7]], np.uint8), 1 / 64, 100)
    got, _ = check("TRANSPOSE", [x, i32(1, 0)], outputs=[QOut("UINT8", 1 / 64, 100)], tol_lsb=0)
    np.testing.assert_array_equal(got[0], x.q.T)
    # a zero-point shift of +20 pushes 254, 255 to 255 (saturation), 0 stays 20
    got, _ = check("TRANSPOSE", [x, i32(1, 0)], outputs=[QOut("UINT8", 1 / 64, 120)], tol_lsb=0)
    np.testing.assert_array_equal(got[0], np.clip(x.q.T.astype(int) + 20, 0, 255))
    y = QArr(np.array([-32768, -1, 0, 32767], np.int16), 1 / 1024)
    got, _ = check("RESHAPE", [y, i32(2, 2)], outputs=[QOut("INT8", 1 / 1024)], tol_lsb=0)
    np.testing.assert_array_equal(got[0], [[-128, -1], [0, 127]])


@pytest.mark.parametrize("op,inputs,options", [
    ("SPLIT", [scalar32(1), qdata((2, 6, 2), "UINT8", 12)], {"num_splits": 3}),
    ("SPLIT_V", [qdata((2, 6, 2), "UINT8", 12), i32(1, 2, 3), scalar32(1)], {"num_splits": 3}),
    ("UNPACK", [qdata((2, 3, 2), "UINT8", 12)], {"num": 3, "axis": 1}),
])
def test_split_outputs_have_their_own_quantizations(op, inputs, options):
    x = inputs[1] if op == "SPLIT" else inputs[0]
    outs = [QOut("UINT8", x.scale, x.zero_point), QOut("INT16", float(x.scale) / 50),
            QOut("UINT8", float(x.scale) * 2.5, 3)]
    got, _ = check(op, inputs, options, outputs=outs, tol_lsb=HALF)
    assert [g.dtype for g in got] == [np.uint8, np.int16, np.uint8]
    first = {"SPLIT": x.q[:, :2], "SPLIT_V": x.q[:, :1], "UNPACK": x.q[:, 0]}[op]
    np.testing.assert_array_equal(got[0], first)  # identity quantization: bit-exact


def test_plain_integer_and_bool_data_pass_unchanged():
    x = QArr(np.arange(24, dtype=np.int32).reshape(2, 3, 4))
    got, _ = check("TRANSPOSE", [x, i32(2, 0, 1)], outputs=[QOut("INT32")], tol_lsb=0)
    np.testing.assert_array_equal(got[0], x.q.transpose(2, 0, 1))
    b = QArr(np.array([[True, False, True]]))
    got, _ = check("TILE", [b, i32(2, 1)], outputs=[QOut("BOOL")], tol_lsb=0)
    assert got[0].dtype == np.bool_ and got[0].shape == (2, 3)
    got, _ = check("GATHER", [x, i32(2, 0)], {"axis": 1}, outputs=[QOut("INT32")], tol_lsb=0)
    np.testing.assert_array_equal(got[0], x.q[:, [2, 0]])


def test_reshape_is_a_view_only_when_identity():
    x = qdata((2, 6), "INT16")
    p = prepare_fixed("RESHAPE", [x, i32(3, 4)], [QOut("INT16", x.scale)], output_shapes=[(3, 4)])
    y = get_fixed_op("RESHAPE").kernel(x.q, np.array([3, 4], np.int32), opt=p)
    assert y.shape == (3, 4) and np.shares_memory(y, x.q)


# --------------------------------------------------------------------------------- padding
@pytest.mark.parametrize("dtype", DTYPES)
def test_pad_uses_the_output_zero_point(dtype):
    x = qdata((1, 2, 3, 2), dtype, 4)
    pads = QArr(np.array([[0, 0], [2, 1], [1, 1], [0, 0]], np.int32), const=True)
    for out in (QOut(dtype, x.scale, x.zero_point), QOut("UINT8", x.scale * 300, 37)):
        got, _ = check("PAD", [x, pads], outputs=[out], tol_lsb=0 if out.scale == x.scale else HALF)
        border = np.ones(got[0].shape, bool)
        border[:, 2:4, 1:4, :] = False
        assert np.all(got[0][border] == out.zero_point)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["same", "scaled", "cross"])
@pytest.mark.parametrize("cq,cs", [(-300, 1 / 512), (1000, 3 / 2 ** 14), (5, 0.0123)])
def test_padv2_constant_in_output_domain(dtype, mode, cq, cs):
    """The constant (an int16 constant with its own scale) is quantized to the output: exact when it
    is representable there, else within 0.5 LSB."""
    x = qdata((1, 3, 2, 2), dtype, 5)
    pads = QArr(np.array([[0, 0], [1, 2], [0, 1], [1, 0]], np.int32), const=True)
    cv = QArr(np.array([cq], np.int16), cs, 0, const=True)
    out, tol = qout(x, mode)
    check("PADV2", [x, pads, cv], outputs=[out], tol_lsb=max(tol, HALF))


def test_padv2_runtime_constant_and_exact_case():
    x = qdata((2, 3), "UINT8", 6)
    pads = QArr(np.array([[1, 1], [2, 0]], np.int32), const=True)
    cv = QArr(np.array([37], np.uint8), x.scale, x.zero_point)  # run time, same quantization: exact
    got, _ = check("PADV2", [x, pads, cv], outputs=[QOut("UINT8", x.scale, x.zero_point)], tol_lsb=0)
    assert got[0][0, 0] == 37
    cv16 = QArr(np.array([-1234], np.int16), 1 / 4096)  # run time, its own quantization
    check("PADV2", [x, pads, cv16], outputs=[QOut("UINT8", x.scale * 1.5, 90)], tol_lsb=HALF)


def test_padv2_float_and_plain_constants():
    x = qdata((2, 3), "INT16", 7)
    pads = QArr(np.array([[1, 1], [0, 2]], np.int32), const=True)
    out = QOut("INT16", x.scale)
    f = QArr(np.array([0.25], np.float32), None, const=True)
    p = prepare_fixed("PADV2", [x, pads, f], [out], output_shapes=[(4, 5)])
    assert p.value == round(0.25 / x.scale)
    plain = QArr(np.array([3], np.int16), None, const=True)
    with pytest.raises(UnsupportedOpError, match="real value is unknown"):
        prepare_fixed("PADV2", [x, pads, plain], [out], output_shapes=[(4, 5)])
    xi = QArr(np.arange(6, dtype=np.int32).reshape(2, 3))
    p = prepare_fixed("PADV2", [xi, pads, QArr(np.array([-9], np.int32), const=True)], [QOut("INT32")],
                      output_shapes=[(4, 5)])
    y = get_fixed_op("PADV2").kernel(xi.q, pads.q, np.array([-9], np.int32), opt=p)
    np.testing.assert_array_equal(y, np.pad(xi.q, ((1, 1), (0, 2)), constant_values=-9))


@pytest.mark.parametrize("zp", [0, 37, 80])
def test_space_to_batch_pads_with_the_output_zero_point(zp):
    x = QArr(np.full((1, 2, 2, 1), 200, np.uint8), 1 / 16, 37)
    pads = QArr(np.array([[1, 1], [0, 2]], np.int32), const=True)
    got, _ = check("SPACE_TO_BATCH_ND", [x, i32(2, 2), pads], outputs=[QOut("UINT8", 1 / 16, zp)],
                   tol_lsb=0)
    assert np.count_nonzero(got[0] == min(255, 200 - 37 + zp)) == 4
    assert np.all(got[0][got[0] != min(255, 200 - 37 + zp)] == zp)


# ------------------------------------------------------------------------------ refusals
def test_movement_refuses_mixed_kinds_and_per_channel():
    x = qdata((2, 3), "INT16")
    with pytest.raises(ModelError, match="plain integer"):
        prepare_fixed("TRANSPOSE", [x, i32(1, 0)], [QOut("INT16")], output_shapes=[(3, 2)])
    pc = QArr(x.q, [0.1, 0.2], 0, axis=0)
    with pytest.raises(UnsupportedOpError, match="per channel"):
        prepare_fixed("TRANSPOSE", [pc, i32(1, 0)], [QOut("INT16", 0.1)], output_shapes=[(3, 2)])
    xi = QArr(np.zeros((2, 3), np.int32))
    with pytest.raises(ModelError, match="dtype"):
        prepare_fixed("TRANSPOSE", [xi, i32(1, 0)], [QOut("INT16")], output_shapes=[(3, 2)])


# ------------------------------------------------------------------------ numeric helpers
@given(st.integers(-(2 ** 62), 2 ** 62))
def test_bit_length_matches_python(v):
    assert int(bit_length(np.array([v], np.int64))[0]) == abs(v).bit_length()


def test_params_are_integer_only_for_every_op():
    """assert_integer_params on each op's prepared params (check_fixed_op does it too; this keeps the
    claim visible for the slicing ops whose float params hold slice objects)."""
    x = qdata((2, 4, 6, 3), "INT16")
    p = prepare_fixed("STRIDED_SLICE", [x, i32(0, 1, 0, 0), i32(2, 4, 6, 3), i32(1, 2, 1, 1)],
                      [QOut("INT16", x.scale)], output_shapes=[(2, 2, 6, 3)])
    fixedrunner.assert_integer_params(p)
    assert all(isinstance(t, tuple) for t in p.inner.index)
