"""Reduction kernels (ops/reduce.py): LiteRT differential tests, the fast contiguous-axes paths against
numpy in float64, run-time axes, and prepare errors."""
from __future__ import annotations

import numpy as np
import pytest
from oprunner import Const, check_against_litert, run_ours

from calibrator_custom.errors import ModelError
from calibrator_custom.ops.reduce import ReduceParams, _reduce_plan, mean, sum_

RNG = np.random.default_rng(99)
REDUCERS = ["MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"]
NP = {"MEAN": np.mean, "SUM": np.sum, "REDUCE_MAX": np.max, "REDUCE_MIN": np.min, "REDUCE_PROD": np.prod}


def rand(*shape, dtype=np.float32):
    if np.dtype(dtype).kind == "f":
        return RNG.uniform(-2, 2, shape).astype(dtype)
    return RNG.integers(-9, 10, size=shape).astype(dtype)


def i32(*v):
    return np.array(v, np.int32)


AXES = [(1, 2), (0,), (3,), (-1,), (-2, -3), (0, 1, 2, 3), (1, 3), (2, 2), (1, -3), (0, 3)]


@pytest.mark.parametrize("op", REDUCERS)
@pytest.mark.parametrize("axes", AXES)
@pytest.mark.parametrize("keep_dims", [False, True])
def test_reduce_float(op, axes, keep_dims):
    x = rand(2, 3, 4, 5)
    ours, _ = check_against_litert(op, [x, Const(i32(*axes))], {"keep_dims": keep_dims})
    want = NP[op](x.astype(np.float64), axis=tuple(sorted({a % 4 for a in axes})), keepdims=keep_dims)
    assert ours[0].shape == want.shape and ours[0].dtype == np.float32
    np.testing.assert_allclose(ours[0], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", REDUCERS)
@pytest.mark.parametrize("axes", [(1,), (0, 2), (-1,)])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_reduce_int(op, axes, dtype):
    x = rand(3, 4, 3, dtype=dtype)
    if op == "REDUCE_PROD":
        x = np.clip(x, -3, 3)
    check_against_litert(op, [x, Const(i32(*axes))], {"keep_dims": False})


def test_mean_int_truncates_toward_zero():
    x = np.array([[-3, -4], [3, 4], [-1, 0]], np.int32)
    ours, _ = check_against_litert("MEAN", [x, Const(i32(1))], {"keep_dims": False})
    np.testing.assert_array_equal(ours[0], [-3, 3, 0])


@pytest.mark.parametrize("op", REDUCERS)
def test_reduce_scalar_axis_and_runtime_axis(op):
    x = rand(2, 3, 4)
    check_against_litert(op, [x, Const(np.array(1, np.int32))], {"keep_dims": True})
    check_against_litert(op, [x, i32(0, 2)], {"keep_dims": False}, output_shapes=[(3,)],
                         output_dtypes=["FLOAT32"])


@pytest.mark.parametrize("shape,axes", [((1, 7, 7, 64), (1, 2)), ((2, 14, 14, 8), (1, 2)), ((3, 50), (1,)),
                                        ((40, 3, 2), (1,)), ((5, 6, 7), (0, 1)), ((300, 2, 3), (1, 2))])
def test_sum_mean_fast_paths(shape, axes):
    # every branch of the BLAS path (inner == 1, outer == 1, batched, wide outer) against float64 numpy
    x = rand(*shape)
    p = _reduce_plan(shape, axes, False)
    assert p.block is not None
    s = sum_(x, i32(*axes), opt=p)
    m = mean(x, i32(*axes), opt=p)
    ref = x.astype(np.float64)
    assert s.dtype == np.float32 and m.dtype == np.float32
    np.testing.assert_allclose(s, ref.sum(axis=axes), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m, ref.mean(axis=axes), rtol=1e-5, atol=1e-6)


def test_reduce_plan_merges_duplicates_and_negatives():
    p = _reduce_plan((2, 3, 4), [2, -1, 0], True)
    assert p == ReduceParams((0, 2), True, (1, 3, 1), None)
    p = _reduce_plan((2, 3, 4), [-2, 1], False)
    assert p.axes == (1,) and p.out_shape == (2, 4) and p.block == (2, 3, 4)


def test_reduce_errors():
    with pytest.raises(ModelError, match="axis 3 is out of range"):
        run_ours("MEAN", [rand(2, 3, 4), Const(i32(3))], {"keep_dims": False})
    with pytest.raises(ModelError, match="dtype int64"):
        run_ours("SUM", [rand(2, 3), Const(np.array([1]), dtype="INT64")], {"keep_dims": False})


# ----------------------------------------------------------------------------- arg max / min
@pytest.mark.parametrize("op", ["ARG_MAX", "ARG_MIN"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("out_type", ["INT32", "INT64"])
def test_arg_min_max(op, axis, out_type):
    x = rand(3, 4, 5)
    ours, _ = check_against_litert(op, [x, Const(i32(axis))], {"output_type": out_type})
    fn = np.argmax if op == "ARG_MAX" else np.argmin
    assert ours[0].dtype == (np.int32 if out_type == "INT32" else np.int64)
    np.testing.assert_array_equal(ours[0], fn(x, axis=axis))


@pytest.mark.parametrize("op", ["ARG_MAX", "ARG_MIN"])
def test_arg_ties_first_index_and_int_input(op):
    x = np.array([[1, 5, 5, 0], [2, 2, 2, 2], [0, -1, 7, -1]], np.float32)
    ours, _ = check_against_litert(op, [x, Const(np.array([1]), dtype="INT64")], {"output_type": "INT32"})
    want = [1, 0, 2] if op == "ARG_MAX" else [3, 0, 1]
    np.testing.assert_array_equal(ours[0], want)
    check_against_litert(op, [rand(4, 6, dtype=np.int32), Const(i32(0))], {"output_type": "INT64"})


def test_arg_errors():
    with pytest.raises(ModelError, match="output_type"):
        run_ours("ARG_MAX", [rand(2, 3), Const(i32(1))], {"output_type": "FLOAT32"})
    with pytest.raises(ModelError, match="out of range"):
        run_ours("ARG_MIN", [rand(2, 3), Const(i32(2))], {"output_type": "INT32"})
    with pytest.raises(ModelError, match="one element"):
        run_ours("ARG_MIN", [rand(2, 3), Const(i32(0, 1))], {"output_type": "INT32"})


# -------------------------------------------------------------------------------------- top k
@pytest.mark.parametrize("shape", [(7,), (3, 8), (2, 3, 5)])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_topk(shape, k):
    x = rand(*shape)
    ours, _ = check_against_litert("TOPK_V2", [x, Const(i32(k))], num_outputs=2)
    vals, idx = ours
    assert vals.dtype == np.float32 and idx.dtype == np.int32
    assert vals.shape == idx.shape == shape[:-1] + (k,)
    want = -np.sort(-x, axis=-1)[..., :k]
    np.testing.assert_array_equal(vals, want)
    np.testing.assert_array_equal(np.take_along_axis(x, idx, -1), vals)


def test_topk_ties_lower_index_first():
    x = np.array([[1, 3, 3, 2, 3, 1], [0, 0, 0, 0, 0, 0]], np.float32)
    ours, _ = check_against_litert("TOPK_V2", [x, Const(i32(4))], num_outputs=2)
    np.testing.assert_array_equal(ours[1], [[1, 2, 4, 3], [0, 1, 2, 3]])
    np.testing.assert_array_equal(ours[0], [[3, 3, 3, 2], [0, 0, 0, 0]])


def test_topk_int_input_and_errors():
    x = rand(3, 6, dtype=np.int32)
    check_against_litert("TOPK_V2", [x, Const(i32(6))], num_outputs=2)
    with pytest.raises(ModelError, match="out of range"):
        run_ours("TOPK_V2", [rand(2, 3), Const(i32(4))], num_outputs=2)
    with pytest.raises(ModelError, match="dtype float32"):
        run_ours("TOPK_V2", [rand(2, 3), Const(np.array(1, np.float32))], num_outputs=2)
