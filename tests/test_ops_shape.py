"""Shape / data-movement kernels (ops/shape.py): LiteRT differential tests, naive references for what
LiteRT lacks (fused activation on CONCATENATION), run-time index inputs, and prepare errors."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from oprunner import Const, check_against_litert, run_ours

from calibrator_custom.errors import ModelError
from calibrator_custom.ops._common import FUSED_ACTIVATIONS

RNG = np.random.default_rng(1234)


def rand(*shape, dtype=np.float32):
    if np.dtype(dtype).kind == "f":
        return RNG.standard_normal(shape).astype(dtype)
    return RNG.integers(-50, 50, size=shape).astype(dtype)


def i32(*v):
    return np.array(v, np.int32)


# ------------------------------------------------------------------------------------ reshape
@pytest.mark.parametrize("in_shape,new_shape", [
    ((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((2, 3, 4), (4, -1, 2)), ((1, 4, 4, 8), (1, -1)),
    ((24,), (2, 3, 2, 2)), ((1, 1, 1, 5), (5,)),
])
def test_reshape_shape_input(in_shape, new_shape):
    ours, _ = check_against_litert("RESHAPE", [rand(*in_shape), Const(i32(*new_shape))])
    want = np.empty(in_shape).reshape(new_shape).shape
    assert ours[0].shape == want and ours[0].dtype == np.float32


@pytest.mark.parametrize("new_shape", [(6, 4), (-1, 2), (2, 12)])
def test_reshape_from_options(new_shape):
    x = rand(2, 3, 4)
    ours, _ = check_against_litert("RESHAPE", [x], {"new_shape": list(new_shape)})
    np.testing.assert_array_equal(ours[0], x.reshape(new_shape))


def test_reshape_to_scalar_and_int_dtype():
    ours, _ = check_against_litert("RESHAPE", [rand(1, 1, dtype=np.int32)], {"new_shape": []})
    assert ours[0].shape == () and ours[0].dtype == np.int32
    # the legacy [0] in options means a scalar
    ours = run_ours("RESHAPE", [rand(1, 1)], {"new_shape": [0]})
    assert ours[0].shape == ()


def test_reshape_runtime_shape_input():
    x = rand(2, 3, 4)
    check_against_litert("RESHAPE", [x, i32(4, -1)], output_shapes=[(4, 6)], output_dtypes=["FLOAT32"])


@pytest.mark.parametrize("new_shape,match", [((-1, -1), "more than one -1"), ((5, 5), "elements"),
                                             ((-1, 5), "cannot infer")])
def test_reshape_errors(new_shape, match):
    with pytest.raises(ModelError, match=match):
        run_ours("RESHAPE", [rand(2, 3, 4), Const(i32(*new_shape))])


# ------------------------------------------------------------------------- squeeze/expand_dims
@pytest.mark.parametrize("dims", [(), (0,), (-1,), (0, 2), (2, -1, 0)])
def test_squeeze(dims):
    x = rand(1, 3, 1, 1)
    ours, _ = check_against_litert("SQUEEZE", [x], {"squeeze_dims": list(dims)})
    assert ours[0].shape == np.squeeze(x, axis=tuple(dims) or None).shape


def test_squeeze_error():
    with pytest.raises(ModelError, match="size is 3, not 1"):
        run_ours("SQUEEZE", [rand(1, 3)], {"squeeze_dims": [1]})


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
@pytest.mark.parametrize("axis_dtype", ["INT32", "INT64"])
def test_expand_dims(axis, axis_dtype):
    x = rand(2, 3)
    ours, _ = check_against_litert("EXPAND_DIMS", [x, Const(np.array([axis]), dtype=axis_dtype)])
    assert ours[0].shape == np.expand_dims(x, axis).shape


def test_expand_dims_errors():
    with pytest.raises(ModelError, match="out of range"):
        run_ours("EXPAND_DIMS", [rand(2, 3), Const(i32(3))])
    with pytest.raises(ModelError, match="dtype float32"):
        run_ours("EXPAND_DIMS", [rand(2, 3), Const(np.array([0], np.float32))])


# ----------------------------------------------------------------------------------- transpose
@pytest.mark.parametrize("perm", [(1, 0), (0, 2, 1), (2, 0, 1), (0, 3, 1, 2), (0, 2, 3, 1), (3, 2, 1, 0),
                                  (4, 0, 2, 1, 3)])
def test_transpose(perm):
    shape = (2, 3, 4, 5, 2)[:len(perm)]
    x = rand(*shape)
    ours, _ = check_against_litert("TRANSPOSE", [x, Const(i32(*perm))])
    np.testing.assert_array_equal(ours[0], x.transpose(perm))
    assert ours[0].flags.c_contiguous


def test_transpose_runtime_perm_and_error():
    x = rand(2, 3, 4)
    ours = run_ours("TRANSPOSE", [x, i32(2, 0, 1)], output_shapes=[(4, 2, 3)], output_dtypes=["FLOAT32"])
    np.testing.assert_array_equal(ours[0], x.transpose(2, 0, 1))
    with pytest.raises(ModelError, match="not a permutation"):
        run_ours("TRANSPOSE", [x, Const(i32(0, 0, 1))])


# ------------------------------------------------------------------------------- concatenation
@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_concatenation(axis, n):
    base = [2, 3, 4, 5]
    xs = []
    for i in range(n):
        s = list(base)
        s[axis] += i
        xs.append(rand(*s))
    ours, _ = check_against_litert("CONCATENATION", xs, {"axis": axis, "fused_activation_function": "NONE"})
    np.testing.assert_array_equal(ours[0], np.concatenate(xs, axis))


def test_concatenation_int_and_const():
    a, b = rand(2, 3, dtype=np.int32), rand(2, 1, dtype=np.int32)
    check_against_litert("CONCATENATION", [a, Const(b)], {"axis": 1})


_ACT = {"NONE": lambda v: v, "RELU": lambda v: np.maximum(v, 0), "RELU6": lambda v: np.clip(v, 0, 6),
        "RELU_N1_TO_1": lambda v: np.clip(v, -1, 1), "TANH": np.tanh}


@pytest.mark.parametrize("act", FUSED_ACTIVATIONS)
def test_concatenation_fused_activation(act):
    # LiteRT rejects a fused activation on CONCATENATION; the vendor format allows it: y = act(concat).
    a, b = rand(1, 2, 2, 3) * 4, rand(1, 2, 2, 2) * 4
    ours = run_ours("CONCATENATION", [a, b], {"axis": -1, "fused_activation_function": act})
    want = _ACT[act](np.concatenate([a, b], -1))
    assert ours[0].shape == (1, 2, 2, 5) and ours[0].dtype == np.float32
    np.testing.assert_allclose(ours[0], want, rtol=1e-6, atol=1e-6)


def test_concatenation_errors():
    with pytest.raises(ModelError, match="dim 0 = 3"):
        run_ours("CONCATENATION", [rand(2, 3), rand(3, 3)], {"axis": 1})
    with pytest.raises(ModelError, match="rank"):
        run_ours("CONCATENATION", [rand(2, 3), rand(2, 3, 1)], {"axis": 1})
    with pytest.raises(ModelError, match="axis 2 is out of range"):
        run_ours("CONCATENATION", [rand(2, 3), rand(2, 3)], {"axis": 2})


# --------------------------------------------------------------------------------- pack/unpack
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("n", [1, 3])
def test_pack(axis, n):
    xs = [rand(2, 3) for _ in range(n)]
    ours, _ = check_against_litert("PACK", xs, {"values_count": n, "axis": axis})
    np.testing.assert_array_equal(ours[0], np.stack(xs, axis))


def test_pack_error():
    with pytest.raises(ModelError, match="values_count is 3"):
        run_ours("PACK", [rand(2), rand(2)], {"values_count": 3, "axis": 0})


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_unpack(axis):
    x = rand(2, 3, 4)
    n = x.shape[axis]
    ours, _ = check_against_litert("UNPACK", [x], {"num": n, "axis": axis}, num_outputs=n)
    for i, o in enumerate(ours):
        np.testing.assert_array_equal(o, np.take(x, i, axis))


# ------------------------------------------------------------------------------- split/split_v
@pytest.mark.parametrize("axis,n", [(0, 2), (1, 3), (2, 1), (3, 4), (-1, 2), (-3, 3)])
def test_split(axis, n):
    x = rand(4, 6, 2, 8)
    ours, _ = check_against_litert("SPLIT", [Const(i32(axis)), x], {"num_splits": n}, num_outputs=n)
    for o, w in zip(ours, np.split(x, n, axis)):
        np.testing.assert_array_equal(o, w)


def test_split_runtime_axis_and_error():
    x = rand(4, 6)
    ours = run_ours("SPLIT", [i32(1), x], {"num_splits": 3}, output_shapes=[(4, 2)] * 3,
                    output_dtypes=["FLOAT32"] * 3)
    np.testing.assert_array_equal(ours[2], x[:, 4:])
    with pytest.raises(ModelError, match="not divisible by num_splits 4"):
        run_ours("SPLIT", [Const(i32(1)), x], {"num_splits": 4}, num_outputs=4)


@pytest.mark.parametrize("sizes,axis", [((1, 2, 3), 1), ((2, -1), 0), ((-1, 1, 1), -1), ((6,), 1),
                                        ((0, 4, 2), -2)])
@pytest.mark.parametrize("sizes_dtype", ["INT32", "INT64"])
def test_split_v(sizes, axis, sizes_dtype):
    x = rand(3, 6, 4)
    n = len(sizes)
    ours, _ = check_against_litert("SPLIT_V", [x, Const(np.array(sizes), dtype=sizes_dtype), Const(i32(axis))],
                                   {"num_splits": n}, num_outputs=n)
    dim = x.shape[axis]
    real = [dim - sum(s for s in sizes if s != -1) if s == -1 else s for s in sizes]
    for o, w in zip(ours, np.split(x, np.cumsum(real)[:-1], axis)):
        np.testing.assert_array_equal(o, w)


@pytest.mark.parametrize("sizes,match", [((-1, -1), "at most one -1"), ((2, 2), "sum to 4"),
                                         ((7, -1), "exceed")])
def test_split_v_errors(sizes, match):
    with pytest.raises(ModelError, match=match):
        run_ours("SPLIT_V", [rand(6), Const(i32(*sizes)), Const(i32(0))], {"num_splits": 2}, num_outputs=2)


# ---------------------------------------------------------------------------------------- slice
@pytest.mark.parametrize("begin,size", [((0, 0, 0), (2, 3, 4)), ((1, 0, 2), (1, -1, -1)),
                                        ((0, 2, 1), (-1, 1, 2)), ((1, 1, 1), (0, 2, 3))])
@pytest.mark.parametrize("idx_dtype", ["INT32", "INT64"])
def test_slice(begin, size, idx_dtype):
    x = rand(2, 3, 4)
    ours, _ = check_against_litert("SLICE", [x, Const(np.array(begin), dtype=idx_dtype),
                                             Const(np.array(size), dtype=idx_dtype)])
    idx = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))
    np.testing.assert_array_equal(ours[0], x[idx])


def test_slice_runtime_begin_and_errors():
    x = rand(3, 4)
    ours = run_ours("SLICE", [x, i32(1, 1), Const(i32(2, -1))], output_shapes=[(2, 3)], output_dtypes=["FLOAT32"])
    np.testing.assert_array_equal(ours[0], x[1:3, 1:])
    with pytest.raises(ModelError, match="out of range"):
        run_ours("SLICE", [x, Const(i32(2, 0)), Const(i32(2, 1))])
    with pytest.raises(ModelError, match="one entry per input"):
        run_ours("SLICE", [x, Const(i32(0)), Const(i32(1))])


# -------------------------------------------------------------------------------- strided slice
SS_CASES = [
    # shape, begin, end, strides, options
    ((5,), (1,), (4,), (1,), {}),
    ((5,), (-1,), (0,), (-1,), {}),
    ((5,), (-2,), (-5,), (-2,), {}),
    ((5,), (4,), (0,), (-1,), {"end_mask": 1}),
    ((5,), (10,), (-10,), (-1,), {}),
    ((5,), (2,), (2,), (1,), {}),
    ((6, 4), (1, 0), (5, 4), (2, 1), {}),
    ((6, 4), (0, 3), (0, 0), (1, -1), {"begin_mask": 1, "end_mask": 3}),
    ((6, 4), (-3, 1), (0, 3), (1, 1), {"end_mask": 1}),
    ((2, 3, 4), (1, 0, 0), (2, 3, 4), (1, 1, 1), {"shrink_axis_mask": 1}),
    ((2, 3, 4), (0, -1, 1), (2, 0, 3), (1, 1, 1), {"shrink_axis_mask": 2}),
    ((2, 3, 4), (0, 1, 2), (0, 0, 0), (1, 1, 1), {"shrink_axis_mask": 7}),
    ((2, 3, 4), (0, 0, -1), (0, 0, -5), (1, 1, -2), {"begin_mask": 3, "end_mask": 3}),
    ((1, 8, 8, 3), (0, 1, 1, 0), (1, 8, 8, 3), (1, 2, 2, 1), {}),
    ((1, 8, 8, 3), (0, 0, 0, 2), (1, 8, 8, 3), (1, 1, 1, 1), {"begin_mask": 7}),
    ((1, 8, 8, 3), (0, 7, 7, 0), (1, -9, -9, 3), (1, -3, -2, 1), {}),
    # ellipsis
    ((2, 3, 4), (0, 1), (0, 3), (1, 1), {"ellipsis_mask": 1}),
    ((2, 3, 4, 5), (1, 0, 2), (2, 0, 4), (1, 1, 1), {"ellipsis_mask": 2}),
    ((2, 3, 4), (1, 0), (2, 0), (1, 1), {"ellipsis_mask": 2, "shrink_axis_mask": 1}),
    ((2, 3, 4), (0,), (0,), (1,), {"ellipsis_mask": 1}),
    # new axis
    ((2, 3), (0, 0, 0), (0, 2, 3), (1, 1, 1), {"new_axis_mask": 1}),
    ((2, 3), (0, 0, 1), (2, 0, 3), (1, 1, 1), {"new_axis_mask": 2}),
    ((2, 3), (0, 0, 0, 0), (2, 0, 3, 0), (1, 1, 1, 1), {"new_axis_mask": 10}),
    ((2, 3, 4), (0, 0, 1), (0, 0, 3), (1, 1, 1), {"ellipsis_mask": 1, "new_axis_mask": 2}),
    ((2, 3, 4), (0, 0, 1), (0, 0, 2), (1, 1, 1), {"ellipsis_mask": 1, "new_axis_mask": 2,
                                                  "shrink_axis_mask": 4}),
    # offset: end is relative to begin
    ((6, 5), (1, 2), (3, 2), (1, 1), {"offset": True}),
    ((6, 5), (-4, 0), (2, 5), (2, 1), {"offset": True}),
]


@pytest.mark.parametrize("shape,begin,end,strides,options", SS_CASES)
def test_strided_slice(shape, begin, end, strides, options):
    x = rand(*shape)
    check_against_litert("STRIDED_SLICE", [x, Const(i32(*begin)), Const(i32(*end)), Const(i32(*strides))],
                         options)


def test_strided_slice_matches_numpy():
    x = rand(4, 5, 6)
    ours = run_ours("STRIDED_SLICE", [x, Const(i32(3, 0, 1)), Const(i32(0, 5, 6)), Const(i32(-1, 2, 2))],
                    {"new_axis_mask": 0})
    np.testing.assert_array_equal(ours[0], x[3:0:-1, 0:5:2, 1:6:2])
    ours = run_ours("STRIDED_SLICE", [x, Const(i32(0, 2)), Const(i32(0, 3)), Const(i32(1, 1))],
                    {"ellipsis_mask": 1, "shrink_axis_mask": 2})
    np.testing.assert_array_equal(ours[0], x[..., 2])


def test_strided_slice_runtime_indices():
    x = rand(4, 6)
    check_against_litert("STRIDED_SLICE", [x, i32(1, 0), i32(3, 6), Const(i32(1, 2))], {},
                         output_shapes=[(2, 3)], output_dtypes=["FLOAT32"])


def test_strided_slice_errors():
    x = rand(4, 6)
    with pytest.raises(ModelError, match="stride of dim 1 is 0"):
        run_ours("STRIDED_SLICE", [x, Const(i32(0, 0)), Const(i32(4, 6)), Const(i32(1, 0))])
    with pytest.raises(ModelError, match="dtype int64"):
        run_ours("STRIDED_SLICE", [x, Const(np.array([0, 0]), dtype="INT64"), Const(i32(4, 6)),
                                   Const(i32(1, 1))])
    with pytest.raises(ModelError, match="shrink index"):
        run_ours("STRIDED_SLICE", [x, Const(i32(4, 0)), Const(i32(5, 6)), Const(i32(1, 1))],
                 {"shrink_axis_mask": 1})


# ------------------------------------------------------------------------------------ tile/gather
@pytest.mark.parametrize("multiples", [(1, 1), (2, 3), (3, 1), (1, 0)])
@pytest.mark.parametrize("m_dtype", ["INT32", "INT64"])
def test_tile(multiples, m_dtype):
    x = rand(2, 3)
    ours, _ = check_against_litert("TILE", [x, Const(np.array(multiples), dtype=m_dtype)])
    np.testing.assert_array_equal(ours[0], np.tile(x, multiples))


def test_tile_int_and_error():
    check_against_litert("TILE", [rand(2, 1, 2, dtype=np.int32), Const(i32(1, 4, 2))])
    with pytest.raises(ModelError, match="multiples"):
        run_ours("TILE", [rand(2, 3), Const(i32(1, 2, 3))])


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("idx_shape", [(), (3,), (2, 2)])
@pytest.mark.parametrize("idx_dtype", [np.int32, np.int64])
def test_gather(axis, idx_shape, idx_dtype):
    x = rand(3, 4, 5)
    n = x.shape[axis]
    idx = RNG.integers(0, n, size=idx_shape).astype(idx_dtype)
    ours, _ = check_against_litert("GATHER", [x, idx], {"axis": axis, "batch_dims": 0})
    np.testing.assert_array_equal(ours[0], np.take(x, idx, axis))


@pytest.mark.parametrize("axis,batch_dims,idx_shape", [(1, 1, (3, 4)), (2, 1, (3, 2, 2)), (2, 2, (3, 4, 2)),
                                                       (-1, -1, (3, 4, 3)), (2, 1, (3,))])
def test_gather_batch_dims(axis, batch_dims, idx_shape):
    x = rand(3, 4, 5)
    idx = RNG.integers(0, x.shape[axis], size=idx_shape).astype(np.int32)
    ours, _ = check_against_litert("GATHER", [x, Const(idx)], {"axis": axis, "batch_dims": batch_dims})
    # naive: loop over the batch dims
    bd = batch_dims % len(idx_shape) if batch_dims < 0 else batch_dims
    ax = axis % 3
    want = np.empty(ours[0].shape, np.float32)
    for b in itertools.product(*[range(s) for s in x.shape[:bd]]):
        want[b] = np.take(x[b], idx[b], axis=ax - bd)
    np.testing.assert_array_equal(ours[0], want)


def test_gather_errors():
    x = rand(3, 4)
    with pytest.raises(ModelError, match="out of bounds"):
        run_ours("GATHER", [x, Const(i32(0, 4))], {"axis": 1})
    with pytest.raises(ModelError, match="out of bounds"):
        run_ours("GATHER", [x, Const(i32(-1))], {"axis": 0})
    with pytest.raises(ModelError, match="batch_dims"):
        run_ours("GATHER", [x, Const(i32(0, 1, 2))], {"axis": 0, "batch_dims": 1})


# ------------------------------------------------------------------------------------- padding
@pytest.mark.parametrize("pads", [((0, 0), (1, 2)), ((2, 0), (0, 3)), ((0, 0), (0, 0))])
@pytest.mark.parametrize("p_dtype", ["INT32", "INT64"])
def test_pad(pads, p_dtype):
    x = rand(2, 3)
    ours, _ = check_against_litert("PAD", [x, Const(np.array(pads), dtype=p_dtype)])
    np.testing.assert_array_equal(ours[0], np.pad(x, pads))


def test_pad_4d_int_and_runtime():
    check_against_litert("PAD", [rand(1, 3, 3, 2, dtype=np.int32), Const(i32(0, 0, 1, 1, 2, 0, 0, 1).reshape(4, 2))])
    x = rand(2, 2)
    ours = run_ours("PAD", [x, i32(1, 0, 0, 1).reshape(2, 2)], output_shapes=[(3, 3)], output_dtypes=["FLOAT32"])
    np.testing.assert_array_equal(ours[0], np.pad(x, ((1, 0), (0, 1))))


@pytest.mark.parametrize("value", [0.0, -1.5, 7.0])
def test_padv2(value):
    x = rand(1, 2, 3, 2)
    pads = np.array([[0, 0], [1, 1], [2, 0], [0, 1]], np.int32)
    ours, _ = check_against_litert("PADV2", [x, Const(pads), Const(np.array([value], np.float32))])
    np.testing.assert_array_equal(ours[0], np.pad(x, pads, constant_values=value))


def test_pad_errors():
    with pytest.raises(ModelError, match="expected \\(2, 2\\)"):
        run_ours("PAD", [rand(2, 3), Const(i32(1, 1))])
    with pytest.raises(ModelError, match="negative"):
        run_ours("PAD", [rand(2, 3), Const(i32(0, 0, -1, 0).reshape(2, 2))])
    with pytest.raises(ModelError, match="constant_values dtype"):
        run_ours("PADV2", [rand(2, 3), Const(i32(0, 0, 1, 0).reshape(2, 2)), Const(i32(1))])


@pytest.mark.parametrize("mode", ["REFLECT", "SYMMETRIC"])
@pytest.mark.parametrize("pads", [((0, 0), (1, 2), (2, 1), (0, 0)), ((1, 1), (0, 0), (3, 0), (0, 2)),
                                  ((0, 0), (2, 2), (3, 3), (0, 0))])
def test_mirror_pad(mode, pads):
    x = rand(2, 3, 4, 3)
    if mode == "SYMMETRIC":
        pads = tuple((min(a, n), min(b, n)) for (a, b), n in zip(pads, x.shape))
    ours, _ = check_against_litert("MIRROR_PAD", [x, Const(np.array(pads, np.int32))], {"mode": mode})
    np.testing.assert_array_equal(ours[0], np.pad(x, pads, mode=mode.lower()))


def test_mirror_pad_error():
    with pytest.raises(ModelError, match="REFLECT paddings"):
        run_ours("MIRROR_PAD", [rand(3, 2), Const(i32(0, 0, 2, 0).reshape(2, 2))], {"mode": "REFLECT"})


# ---------------------------------------------------------------- depth/space and batch/space
def _naive_depth_to_space(x, bs):
    n, h, w, c = x.shape
    co = c // (bs * bs)
    y = np.empty((n, h * bs, w * bs, co), x.dtype)
    for b, i, j, k in itertools.product(range(n), range(h * bs), range(w * bs), range(co)):
        y[b, i, j, k] = x[b, i // bs, j // bs, ((i % bs) * bs + j % bs) * co + k]
    return y


@pytest.mark.parametrize("bs,shape", [(2, (1, 2, 3, 8)), (3, (2, 1, 2, 18)), (1, (1, 2, 2, 3))])
def test_depth_to_space(bs, shape):
    x = rand(*shape)
    ours, _ = check_against_litert("DEPTH_TO_SPACE", [x], {"block_size": bs})
    np.testing.assert_array_equal(ours[0], _naive_depth_to_space(x, bs))


@pytest.mark.parametrize("bs,shape", [(2, (1, 4, 6, 3)), (3, (2, 3, 6, 2)), (1, (1, 2, 2, 3))])
def test_space_to_depth(bs, shape):
    x = rand(*shape)
    ours, _ = check_against_litert("SPACE_TO_DEPTH", [x], {"block_size": bs})
    np.testing.assert_array_equal(_naive_depth_to_space(ours[0], bs), x)


def test_depth_space_errors():
    with pytest.raises(ModelError, match="not divisible"):
        run_ours("DEPTH_TO_SPACE", [rand(1, 2, 2, 6)], {"block_size": 2})
    with pytest.raises(ModelError, match="not divisible"):
        run_ours("SPACE_TO_DEPTH", [rand(1, 3, 4, 1)], {"block_size": 2})


@pytest.mark.parametrize("shape,block,pads", [
    ((1, 4, 4, 2), (2, 2), ((0, 0), (0, 0))),
    ((2, 3, 5, 1), (2, 3), ((1, 0), (0, 1))),
    ((1, 5, 2, 3), (3, 1), ((2, 2), (1, 1))),
    ((2, 6, 3), (3,), ((0, 0),)),
    ((1, 5, 2), (2,), ((1, 0),)),
])
def test_space_to_batch_nd(shape, block, pads):
    x = rand(*shape)
    ours, _ = check_against_litert("SPACE_TO_BATCH_ND", [x, Const(i32(*block)), Const(np.array(pads, np.int32))])
    # round trip through BATCH_TO_SPACE_ND with crops = paddings gives x back
    back = run_ours("BATCH_TO_SPACE_ND", [ours[0], Const(i32(*block)), Const(np.array(pads, np.int32))])
    np.testing.assert_array_equal(back[0], x)


def _naive_batch_to_space(x, block, crops):
    """full[n, h*b0 + i, w*b1 + j, ...] = x[(i*b1 + j)*N + n, h, w, ...], then crop."""
    m = len(block)
    n = x.shape[0] // int(np.prod(block))
    full = np.zeros((n,) + tuple(s * b for s, b in zip(x.shape[1:1 + m], block)) + x.shape[1 + m:], x.dtype)
    for k, off in enumerate(itertools.product(*[range(b) for b in block])):
        for nb in range(n):
            for sp in itertools.product(*[range(s) for s in x.shape[1:1 + m]]):
                dst = (nb,) + tuple(p * b + o for p, b, o in zip(sp, block, off))
                full[dst] = x[(k * n + nb,) + sp]
    return full[(slice(None),) + tuple(slice(a, full.shape[1 + d] - b) for d, (a, b) in enumerate(crops))]


@pytest.mark.parametrize("shape,block,crops", [
    ((4, 2, 2, 1), (2, 2), ((0, 0), (0, 0))),
    ((6, 2, 2, 2), (2, 3), ((1, 0), (2, 1))),
    ((3, 2, 2), (3,), ((1, 2),)),
    ((8, 1, 1, 3), (2, 2), ((0, 1), (1, 0))),
])
def test_batch_to_space_nd(shape, block, crops):
    x = rand(*shape)
    ours, _ = check_against_litert("BATCH_TO_SPACE_ND", [x, Const(i32(*block)), Const(np.array(crops, np.int32))])
    np.testing.assert_array_equal(ours[0], _naive_batch_to_space(x, block, crops))


def test_batch_space_errors():
    with pytest.raises(ModelError, match="not divisible by prod"):
        run_ours("BATCH_TO_SPACE_ND", [rand(3, 2, 2, 1), Const(i32(2, 2)), Const(np.zeros((2, 2), np.int32))])
    with pytest.raises(ModelError, match="not divisible by block"):
        run_ours("SPACE_TO_BATCH_ND", [rand(1, 3, 2, 1), Const(i32(2, 2)), Const(np.zeros((2, 2), np.int32))])
