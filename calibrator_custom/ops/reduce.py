"""Reduction kernels: MEAN, SUM, REDUCE_MAX/MIN/PROD over an axis list, ARG_MAX/ARG_MIN and TOPK_V2.

Axes come from an int32 input tensor; negative axes count from the end and duplicates are merged, as
TFLite's ``ResolveAxis`` does. When the reduced axes form one contiguous run (the common case: MEAN
over H and W of an NHWC tensor) the input is viewed as ``(outer, reduced, inner)``; float SUM/MEAN then
run as a BLAS product with a ones vector, which is both faster and more accurate than a strided sum.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import blas
from .registry import OpContext, register

logger = logging.getLogger(__name__)

Shape = tuple[int, ...]
_INDEX_DTYPES = {"INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64)}


@dataclass(frozen=True)
class ReduceParams:
    """Resolved reduction: sorted unique axes, output shape and the (outer, reduced, inner) view."""

    axes: tuple[int, ...] | None
    keep_dims: bool
    out_shape: Shape | None = None
    block: tuple[int, int, int] | None = None


def _reduce_plan(in_shape: Shape, axis_values: Sequence[int], keep_dims: bool) -> ReduceParams:
    rank = len(in_shape)
    axes = set()
    for a in np.asarray(axis_values).reshape(-1):
        a = int(a)
        if not -rank <= a < rank:
            raise ValueError(f"reduction axis {a} is out of range for input shape {in_shape} "
                             f"(valid: [{-rank}, {rank - 1}])")
        axes.add(a % rank)
    axes_t = tuple(sorted(axes))
    if keep_dims:
        out = tuple(1 if d in axes else n for d, n in enumerate(in_shape))
    else:
        out = tuple(n for d, n in enumerate(in_shape) if d not in axes)
    block = None
    if axes_t and axes_t[-1] - axes_t[0] + 1 == len(axes_t):
        lo, hi = axes_t[0], axes_t[-1] + 1
        block = (int(np.prod(in_shape[:lo], dtype=np.int64)), int(np.prod(in_shape[lo:hi], dtype=np.int64)),
                 int(np.prod(in_shape[hi:], dtype=np.int64)))
    return ReduceParams(axes_t, keep_dims, out, block)


def _prepare_reduce(ctx: OpContext) -> ReduceParams:
    ctx.require_inputs(2)
    axis_t = ctx.inputs[1]
    if np.dtype(axis_t.dtype) != np.int32:
        raise ctx.error(f"axis {axis_t.name!r} has dtype {np.dtype(axis_t.dtype).name}, expected int32")
    if len(axis_t.shape) > 1:
        raise ctx.error(f"axis {axis_t.name!r} has shape {axis_t.shape}, expected a scalar or 1-D tensor")
    keep = bool(getattr(ctx.options, "keep_dims", False))
    if axis_t.data is None:
        return ReduceParams(None, keep)
    try:
        return _reduce_plan(ctx.inputs[0].shape, axis_t.data, keep)
    except ValueError as e:
        raise ctx.error(str(e)) from None


def _sum_block(x: np.ndarray, p: ReduceParams) -> np.ndarray:
    """Sum over the contiguous reduced run of a float32 array, via BLAS matrix-vector products."""
    outer, red, inner = p.block
    ones = np.ones(red, dtype=x.dtype)
    if inner == 1:
        return blas.matmul(x.reshape(outer, red), ones)
    if outer == 1:
        return blas.matmul(ones, x.reshape(red, inner))
    if outer <= red:
        return blas.matmul(ones[None, :], x.reshape(outer, red, inner)).reshape(outer, inner)
    return np.add.reduce(x.reshape(outer, red, inner), axis=1)


def _reduce(x: np.ndarray, axis: np.ndarray, p: ReduceParams, ufunc: np.ufunc) -> np.ndarray:
    """ufunc-reduce x over the planned axes, keeping x's dtype (C-style wraparound for ints)."""
    if p.axes is None:
        p = _reduce_plan(x.shape, axis, p.keep_dims)
    if not p.axes:
        return x.copy()
    if ufunc is np.add and x.dtype == np.float32 and p.block is not None and x.flags.c_contiguous:
        y = _sum_block(x, p)
    elif p.block is not None:
        outer, red, inner = p.block
        y = ufunc.reduce(x.reshape(outer, red, inner), axis=1, dtype=x.dtype)
    else:
        y = ufunc.reduce(x, axis=p.axes, dtype=x.dtype)
    return np.asarray(y, dtype=x.dtype).reshape(p.out_shape)


@register("SUM", prepare=_prepare_reduce)
def sum_(x: np.ndarray, axis: np.ndarray, *, opt: ReduceParams) -> np.ndarray:
    """y = sum of x over axes (keep_dims keeps them as size-1 dims)."""
    return _reduce(x, axis, opt, np.add)


@register("REDUCE_PROD", prepare=_prepare_reduce)
def reduce_prod(x: np.ndarray, axis: np.ndarray, *, opt: ReduceParams) -> np.ndarray:
    """y = product of x over axes."""
    return _reduce(x, axis, opt, np.multiply)


@register("REDUCE_MAX", prepare=_prepare_reduce)
def reduce_max(x: np.ndarray, axis: np.ndarray, *, opt: ReduceParams) -> np.ndarray:
    """y = maximum of x over axes."""
    return _reduce(x, axis, opt, np.maximum)


@register("REDUCE_MIN", prepare=_prepare_reduce)
def reduce_min(x: np.ndarray, axis: np.ndarray, *, opt: ReduceParams) -> np.ndarray:
    """y = minimum of x over axes."""
    return _reduce(x, axis, opt, np.minimum)


@register("MEAN", prepare=_prepare_reduce)
def mean(x: np.ndarray, axis: np.ndarray, *, opt: ReduceParams) -> np.ndarray:
    """y = sum(x over axes) / count; integer inputs sum in int64 and divide truncating toward 0."""
    p = opt if opt.axes is not None else _reduce_plan(x.shape, axis, opt.keep_dims)
    count = int(np.prod([x.shape[a] for a in p.axes], dtype=np.int64))
    if x.dtype.kind == "f":
        s = _reduce(x, axis, p, np.add)
        return np.divide(s, x.dtype.type(count), out=s) if p.axes else s
    s = np.add.reduce(x.astype(np.int64), axis=p.axes).reshape(p.out_shape)
    q = np.abs(s) // max(count, 1)
    return np.where(s < 0, -q, q).astype(x.dtype)


# ------------------------------------------------------------------------------- arg max / min
@dataclass(frozen=True)
class ArgParams:
    axis: int | None
    dtype: np.dtype


def _prepare_arg(ctx: OpContext) -> ArgParams:
    ctx.require_inputs(2)
    shape = ctx.inputs[0].shape
    out_type = ctx.options.output_type
    if out_type not in _INDEX_DTYPES:
        raise ctx.error(f"output_type is {out_type!r}, expected INT32 or INT64")
    dtype = _INDEX_DTYPES[out_type]
    axis_t = ctx.inputs[1]
    if np.dtype(axis_t.dtype) not in _INDEX_DTYPES.values():
        raise ctx.error(f"axis {axis_t.name!r} has dtype {np.dtype(axis_t.dtype).name}, expected int32 or int64")
    if int(np.prod(axis_t.shape, dtype=np.int64)) != 1:
        raise ctx.error(f"axis {axis_t.name!r} has shape {axis_t.shape}, expected one element")
    if not shape:
        raise ctx.error("input is a scalar; it has no axis to reduce")
    if axis_t.data is None:
        return ArgParams(None, dtype)
    a = int(np.asarray(axis_t.data).reshape(-1)[0])
    if not -len(shape) <= a < len(shape):
        raise ctx.error(f"axis {a} is out of range for input shape {shape}")
    return ArgParams(a % len(shape), dtype)


@register("ARG_MAX", prepare=_prepare_arg)
def arg_max(x: np.ndarray, axis: np.ndarray, *, opt: ArgParams) -> np.ndarray:
    """y = index of the largest x along axis (first one on ties), as output_type."""
    a = opt.axis if opt.axis is not None else int(np.asarray(axis).reshape(-1)[0]) % x.ndim
    return np.argmax(x, axis=a).astype(opt.dtype)


@register("ARG_MIN", prepare=_prepare_arg)
def arg_min(x: np.ndarray, axis: np.ndarray, *, opt: ArgParams) -> np.ndarray:
    """y = index of the smallest x along axis (first one on ties), as output_type."""
    a = opt.axis if opt.axis is not None else int(np.asarray(axis).reshape(-1)[0]) % x.ndim
    return np.argmin(x, axis=a).astype(opt.dtype)


# ------------------------------------------------------------------------------------- top k
@dataclass(frozen=True)
class TopKParams:
    k: int | None
    index_dtype: np.dtype


def _prepare_topk(ctx: OpContext) -> TopKParams:
    ctx.require_inputs(2)
    shape = ctx.inputs[0].shape
    if not shape:
        raise ctx.error("input must have at least one dim")
    k_t = ctx.inputs[1]
    if np.dtype(k_t.dtype) not in (np.dtype(np.int32), np.dtype(np.int16)):
        raise ctx.error(f"k {k_t.name!r} has dtype {np.dtype(k_t.dtype).name}, expected int32")
    if int(np.prod(k_t.shape, dtype=np.int64)) != 1:
        raise ctx.error(f"k {k_t.name!r} has shape {k_t.shape}, expected one element")
    # TFLite writes int32 indices (int16/int64 when the model declares them so).
    idx_dtype = np.dtype(ctx.outputs[1].dtype) if len(ctx.outputs) > 1 else np.dtype(np.int32)
    if idx_dtype not in (np.dtype(np.int16), np.dtype(np.int64)):
        idx_dtype = np.dtype(np.int32)
    if k_t.data is None:
        return TopKParams(None, idx_dtype)
    k = int(np.asarray(k_t.data).reshape(-1)[0])
    if not 0 <= k <= shape[-1]:
        raise ctx.error(f"k = {k} is out of range for the last input dim {shape[-1]} (shape {shape})")
    return TopKParams(k, idx_dtype)


@register("TOPK_V2", prepare=_prepare_topk)
def topk_v2(x: np.ndarray, k: np.ndarray, *, opt: TopKParams) -> tuple[np.ndarray, np.ndarray]:
    """(values, indices) of the k largest x along the last axis, descending; ties: lower index first."""
    kk = opt.k if opt.k is not None else int(np.asarray(k).reshape(-1)[0])
    n = x.shape[-1]
    # A stable ascending sort of the reversed row, read backwards, is descending with ties ordered by
    # ascending original index; no negation, so it is exact for every dtype.
    order = np.argsort(x[..., ::-1], axis=-1, kind="stable")[..., ::-1][..., :kk]
    idx = (n - 1) - order
    return np.take_along_axis(x, idx, axis=-1), idx.astype(opt.index_dtype)
