"""Shape and data-movement kernels: reshape family, transpose, concat/split, slicing, gather, padding
and the space/depth/batch rearrangements.

Every index-like input (shapes, axes, begin/end, paddings, block shapes) is read once in ``prepare``
when it is a constant tensor, and the kernel then only moves data. When such an input is computed at
run time the kernel derives the same plan from its value with the same helper. Kernels return fresh
arrays, except the pure reshapes (RESHAPE, SQUEEZE, EXPAND_DIMS), which return views of their input.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ._common import apply_activation
from .registry import OpContext, TensorInfo, register

logger = logging.getLogger(__name__)

Shape = tuple[int, ...]
_INT32 = (np.dtype(np.int32),)
_INT32_64 = (np.dtype(np.int32), np.dtype(np.int64))


# ----------------------------------------------------------------------------------------- helpers
def _index_input(ctx: OpContext, i: int, what: str, dtypes: tuple[np.dtype, ...] = _INT32,
                 rank: int | None = None) -> np.ndarray | None:
    """Check an index-like input's dtype (and rank); return its int64 value if constant, else None."""
    t = ctx.input(i)
    if t is None:
        raise ctx.error(f"{what} (input {i}) is missing")
    if np.dtype(t.dtype) not in dtypes:
        names = " or ".join(d.name for d in dtypes)
        raise ctx.error(f"{what} {t.name!r} (input {i}) has dtype {np.dtype(t.dtype).name}, expected {names}")
    if rank is not None and len(t.shape) != rank:
        raise ctx.error(f"{what} {t.name!r} (input {i}) has shape {t.shape}, expected rank {rank}")
    return None if t.data is None else np.asarray(t.data).astype(np.int64)


def _axis(ctx: OpContext, axis: int, rank: int, what: str = "axis") -> int:
    """``axis`` made non-negative for a tensor of ``rank`` dims; error when out of [-rank, rank)."""
    if not -rank <= axis < rank:
        raise ctx.error(f"{what} {axis} is out of range for rank {rank} (valid: [{-rank}, {rank - 1}])")
    return axis % rank


def _scalar(v: np.ndarray) -> int:
    """The single value of a 0-d or 1-element int array."""
    return int(np.asarray(v).reshape(-1)[0])


def _ctx_check(ctx: OpContext, fn, *args):
    """Run a plan helper at prepare time, turning its ValueError into the op's ModelError."""
    try:
        return fn(*args)
    except ValueError as e:
        raise ctx.error(str(e)) from None


def _resolve_shape(raw: Sequence[int], in_shape: Shape) -> Shape:
    """RESHAPE target shape with at most one -1 inferred from the element count of ``in_shape``."""
    raw = tuple(int(v) for v in raw)
    n_in = int(np.prod(in_shape, dtype=np.int64))
    if sum(v == -1 for v in raw) > 1:
        raise ValueError(f"new shape {raw} has more than one -1")
    if any(v < -1 for v in raw):
        raise ValueError(f"new shape {raw} has a negative size other than -1")
    known = int(np.prod([v for v in raw if v != -1], dtype=np.int64))
    if -1 in raw:
        if known == 0 or n_in % known:
            raise ValueError(f"cannot infer the -1 in new shape {raw} from input shape {in_shape}")
        raw = tuple(n_in // known if v == -1 else v for v in raw)
    elif known != n_in:
        raise ValueError(f"new shape {raw} has {known} elements, input shape {in_shape} has {n_in}")
    return raw


# ------------------------------------------------------------------------------- reshape family
@dataclass(frozen=True)
class ReshapeParams:
    """Output shape of a pure reshape (RESHAPE, SQUEEZE, EXPAND_DIMS)."""

    shape: Shape


def _prepare_reshape(ctx: OpContext) -> ReshapeParams:
    ctx.require_inputs(1, 2)
    x = ctx.inputs[0]
    shape_t = ctx.input(1)
    # TFLite takes the shape from the 2nd input only when it is a 1-D int32 tensor, else from options.
    if shape_t is not None and len(shape_t.shape) == 1 and np.dtype(shape_t.dtype) == np.int32:
        if shape_t.data is None:
            # Run-time shape: the model's static output shape is what it must evaluate to.
            return ReshapeParams(_ctx_check(ctx, _resolve_shape, ctx.outputs[0].shape, x.shape))
        raw = tuple(int(v) for v in shape_t.data)
    else:
        new_shape = getattr(ctx.options, "new_shape", None)
        if new_shape is None and shape_t is not None:
            raise ctx.error(f"shape input {shape_t.name!r} is not a 1-D int32 tensor "
                            f"(shape {shape_t.shape}, dtype {np.dtype(shape_t.dtype).name}) "
                            f"and ReshapeOptions.new_shape is absent")
        raw = tuple(new_shape or ())
        if raw == (0,):  # legacy converters wrote [0] for a scalar
            raw = ()
    return ReshapeParams(_ctx_check(ctx, _resolve_shape, raw, x.shape))


@register("RESHAPE", prepare=_prepare_reshape)
def reshape(x: np.ndarray, shape: np.ndarray | None = None, *, opt: ReshapeParams) -> np.ndarray:
    """y = x viewed with shape opt.shape (same elements, row-major order)."""
    return x.reshape(opt.shape)


def _prepare_squeeze(ctx: OpContext) -> ReshapeParams:
    ctx.require_inputs(1)
    shape = ctx.inputs[0].shape
    dims = getattr(ctx.options, "squeeze_dims", None) or ()
    if not dims:
        return ReshapeParams(tuple(d for d in shape if d != 1))
    drop = {_axis(ctx, int(d), len(shape), "squeeze dim") for d in dims}
    for d in sorted(drop):
        if shape[d] != 1:
            raise ctx.error(f"cannot squeeze dim {d} of input shape {shape}: its size is {shape[d]}, not 1")
    return ReshapeParams(tuple(s for i, s in enumerate(shape) if i not in drop))


@register("SQUEEZE", prepare=_prepare_squeeze)
def squeeze(x: np.ndarray, *, opt: ReshapeParams) -> np.ndarray:
    """y = x without the size-1 dims listed in squeeze_dims (all size-1 dims when empty)."""
    return x.reshape(opt.shape)


def _prepare_expand_dims(ctx: OpContext) -> ReshapeParams:
    ctx.require_inputs(2)
    shape = ctx.inputs[0].shape
    axis_v = _index_input(ctx, 1, "axis", _INT32_64)
    if axis_v is None:
        return ReshapeParams(_ctx_check(ctx, _resolve_shape, ctx.outputs[0].shape, shape))
    if axis_v.size != 1:
        raise ctx.error(f"axis must hold exactly one value, got {axis_v.size}")
    axis = _axis(ctx, _scalar(axis_v), len(shape) + 1)
    return ReshapeParams(shape[:axis] + (1,) + shape[axis:])


@register("EXPAND_DIMS", prepare=_prepare_expand_dims)
def expand_dims(x: np.ndarray, axis: np.ndarray, *, opt: ReshapeParams) -> np.ndarray:
    """y = x with a new size-1 dim inserted at axis (negative: counted from rank + 1)."""
    return x.reshape(opt.shape)


# ------------------------------------------------------------------------------------ transpose
@dataclass(frozen=True)
class TransposeParams:
    perm: tuple[int, ...] | None


def _check_perm(perm: Sequence[int], rank: int) -> tuple[int, ...]:
    perm = tuple(int(p) for p in perm)
    if len(perm) != rank or sorted(perm) != list(range(rank)):
        raise ValueError(f"perm {perm} is not a permutation of the {rank} input dims")
    return perm


def _prepare_transpose(ctx: OpContext) -> TransposeParams:
    ctx.require_inputs(2)
    perm = _index_input(ctx, 1, "perm", _INT32_64, rank=1)
    rank = len(ctx.inputs[0].shape)
    if rank > 6:
        raise ctx.error(f"input rank {rank} > 6 is not supported by TRANSPOSE")
    return TransposeParams(None if perm is None else _ctx_check(ctx, _check_perm, perm, rank))


#: Elements of the source axis that becomes the output's innermost axis copied per block.
_TRANSPOSE_BLOCK = 64


def _merge_axes(shape: Shape, perm: Sequence[int]) -> tuple[Shape, tuple[int, ...]]:
    """Drop size-1 dims and fuse input dims that stay adjacent and in order under ``perm``."""
    keep = [a for a in perm if shape[a] != 1]
    groups: list[list[int]] = []
    for a in keep:
        if groups and a == groups[-1][-1] + 1:
            groups[-1].append(a)
        else:
            groups.append([a])
    order = sorted(range(len(groups)), key=lambda g: groups[g][0])
    new_shape = tuple(int(np.prod([shape[a] for a in groups[g]])) for g in order)
    rank_of = {g: r for r, g in enumerate(order)}
    return new_shape, tuple(rank_of[g] for g in range(len(groups)))


def _transpose_copy(x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """A C-contiguous copy of x.transpose(perm), copied in cache-sized blocks when strides are large."""
    out_shape = tuple(x.shape[a] for a in perm)
    shape, p = _merge_axes(x.shape, perm)
    xr = x.reshape(shape)
    if len(p) < 2 or p[-1] == len(p) - 1 or xr.size < 4096:
        return np.ascontiguousarray(xr.transpose(p)).reshape(out_shape)
    # Copy a slab of the source axis that becomes innermost at a time: its reads and writes both stay
    # within a few cache lines per row (a plain strided copy is ~10x slower on big tensors).
    out = np.empty(tuple(shape[a] for a in p), x.dtype)
    a = p[-1]
    lead = (slice(None),) * a
    for i in range(0, shape[a], _TRANSPOSE_BLOCK):
        out[..., i:i + _TRANSPOSE_BLOCK] = xr[lead + (slice(i, i + _TRANSPOSE_BLOCK),)].transpose(p)
    return out.reshape(out_shape)


@register("TRANSPOSE", prepare=_prepare_transpose)
def transpose(x: np.ndarray, perm: np.ndarray, *, opt: TransposeParams) -> np.ndarray:
    """y[i_perm[0], ..., i_perm[n-1]] = x[i_0, ..., i_{n-1}], i.e. y.shape[k] = x.shape[perm[k]]."""
    p = opt.perm if opt.perm is not None else _check_perm(perm, x.ndim)
    return _transpose_copy(x, p)


# ------------------------------------------------------------------------------ concat / stack
@dataclass(frozen=True)
class AxisParams:
    axis: int
    activation: str = "NONE"


def _same_dtype(ctx: OpContext, infos: Sequence[TensorInfo]) -> None:
    dt = np.dtype(infos[0].dtype)
    for i, t in enumerate(infos):
        if np.dtype(t.dtype) != dt:
            raise ctx.error(f"input {i} {t.name!r} has dtype {np.dtype(t.dtype).name}, input 0 has {dt.name}")


def _prepare_concatenation(ctx: OpContext) -> AxisParams:
    ctx.require_inputs(1, len(ctx.inputs) or 1)
    ins = ctx.inputs
    if any(t is None for t in ins):
        raise ctx.error("an input is missing")
    s0 = ins[0].shape
    axis = _axis(ctx, ctx.options.axis, len(s0))
    _same_dtype(ctx, ins)
    for i, t in enumerate(ins[1:], 1):
        if len(t.shape) != len(s0):
            raise ctx.error(f"input {i} {t.name!r} has rank {len(t.shape)} (shape {t.shape}), "
                            f"input 0 has rank {len(s0)} (shape {s0})")
        for d in range(len(s0)):
            if d != axis and t.shape[d] != s0[d]:
                raise ctx.error(f"input {i} {t.name!r} has dim {d} = {t.shape[d]} (shape {t.shape}), "
                                f"input 0 has {s0[d]} (shape {s0}); only axis {axis} may differ")
    act = ctx.options.fused_activation_function
    if act != "NONE" and np.dtype(ins[0].dtype).kind != "f":
        raise ctx.error(f"fused activation {act} on non-float dtype {np.dtype(ins[0].dtype).name}")
    return AxisParams(axis, act)


@register("CONCATENATION", prepare=_prepare_concatenation)
def concatenation(*xs: np.ndarray, opt: AxisParams) -> np.ndarray:
    """y = act(concat(xs, axis))."""
    return apply_activation(np.concatenate(xs, axis=opt.axis), opt.activation)


def _prepare_pack(ctx: OpContext) -> AxisParams:
    ins = ctx.inputs
    n = ctx.options.values_count
    if n != len(ins):
        raise ctx.error(f"values_count is {n} but the op has {len(ins)} inputs")
    if any(t is None for t in ins) or not ins:
        raise ctx.error("an input is missing")
    s0 = ins[0].shape
    for i, t in enumerate(ins[1:], 1):
        if t.shape != s0:
            raise ctx.error(f"input {i} {t.name!r} has shape {t.shape}, input 0 has {s0}")
    _same_dtype(ctx, ins)
    return AxisParams(_axis(ctx, ctx.options.axis, len(s0) + 1))


@register("PACK", prepare=_prepare_pack)
def pack(*xs: np.ndarray, opt: AxisParams) -> np.ndarray:
    """y = stack(xs, axis): a new dim of size len(xs) at axis."""
    return np.stack(xs, axis=opt.axis)


def _prepare_unpack(ctx: OpContext) -> AxisParams:
    ctx.require_inputs(1)
    shape = ctx.inputs[0].shape
    axis = _axis(ctx, ctx.options.axis, len(shape))
    num = ctx.options.num
    if shape[axis] != num or len(ctx.outputs) != num:
        raise ctx.error(f"num is {num}, the op has {len(ctx.outputs)} outputs and input dim {axis} "
                        f"(shape {shape}) is {shape[axis]}; all three must agree")
    return AxisParams(axis)


@register("UNPACK", prepare=_prepare_unpack)
def unpack(x: np.ndarray, *, opt: AxisParams) -> tuple[np.ndarray, ...]:
    """y_i = x[..., i, ...] along axis, for i < x.shape[axis]."""
    return tuple(np.take(x, i, axis=opt.axis) for i in range(x.shape[opt.axis]))


# ------------------------------------------------------------------------------------- split
@dataclass(frozen=True)
class SplitParams:
    num: int
    axis: int | None
    sizes: tuple[int, ...] | None


def _split_sizes(raw: Sequence[int], dim: int, n_out: int) -> tuple[int, ...]:
    raw = tuple(int(v) for v in np.asarray(raw).reshape(-1))
    if len(raw) != n_out:
        raise ValueError(f"size_splits {raw} has {len(raw)} entries but the op has {n_out} outputs")
    if sum(v == -1 for v in raw) > 1 or any(v < -1 for v in raw):
        raise ValueError(f"size_splits {raw} may hold at most one -1 and no other negative value")
    known = sum(v for v in raw if v != -1)
    if -1 in raw:
        if known > dim:
            raise ValueError(f"size_splits {raw} exceed the split dim size {dim}")
        raw = tuple(dim - known if v == -1 else v for v in raw)
    elif known != dim:
        raise ValueError(f"size_splits {raw} sum to {known}, the split dim has size {dim}")
    return raw


def _equal_sizes(dim: int, n: int) -> tuple[int, ...]:
    if dim % n:
        raise ValueError(f"split dim of size {dim} is not divisible by num_splits {n}")
    return (dim // n,) * n


def _split_run(x: np.ndarray, axis: int, sizes: Sequence[int]) -> tuple[np.ndarray, ...]:
    cuts = np.cumsum(sizes)[:-1]
    return tuple(np.ascontiguousarray(p) for p in np.split(x, cuts, axis=axis))


def _prepare_split(ctx: OpContext) -> SplitParams:
    ctx.require_inputs(2)
    shape = ctx.inputs[1].shape
    n = ctx.options.num_splits
    if n <= 0 or n != len(ctx.outputs):
        raise ctx.error(f"num_splits is {n} but the op has {len(ctx.outputs)} outputs")
    axis_v = _index_input(ctx, 0, "axis", _INT32)
    if axis_v is None:
        return SplitParams(n, None, None)
    axis = _axis(ctx, _scalar(axis_v), len(shape))
    return SplitParams(n, axis, _ctx_check(ctx, _equal_sizes, shape[axis], n))


@register("SPLIT", prepare=_prepare_split)
def split(axis: np.ndarray, x: np.ndarray, *, opt: SplitParams) -> tuple[np.ndarray, ...]:
    """Split x along axis into num_splits equal parts."""
    if opt.axis is not None:
        return _split_run(x, opt.axis, opt.sizes)
    a = _scalar(axis) % x.ndim
    return _split_run(x, a, _equal_sizes(x.shape[a], opt.num))


def _prepare_split_v(ctx: OpContext) -> SplitParams:
    ctx.require_inputs(3)
    shape = ctx.inputs[0].shape
    n = ctx.options.num_splits
    if n != len(ctx.outputs):
        raise ctx.error(f"num_splits is {n} but the op has {len(ctx.outputs)} outputs")
    sizes_v = _index_input(ctx, 1, "size_splits", _INT32_64, rank=1)
    axis_v = _index_input(ctx, 2, "axis", _INT32)
    if sizes_v is None or axis_v is None:
        return SplitParams(n, None, None)
    axis = _axis(ctx, _scalar(axis_v), len(shape))
    return SplitParams(n, axis, _ctx_check(ctx, _split_sizes, sizes_v, shape[axis], n))


@register("SPLIT_V", prepare=_prepare_split_v)
def split_v(x: np.ndarray, size_splits: np.ndarray, axis: np.ndarray, *,
            opt: SplitParams) -> tuple[np.ndarray, ...]:
    """Split x along axis into parts of size_splits (one -1 takes the remainder)."""
    if opt.axis is not None:
        return _split_run(x, opt.axis, opt.sizes)
    a = _scalar(axis) % x.ndim
    return _split_run(x, a, _split_sizes(size_splits, x.shape[a], opt.num))


# ------------------------------------------------------------------------------------- slicing
@dataclass(frozen=True)
class SliceParams:
    """A basic-indexing plan: view x as ``pre_shape``, index with ``index``, reshape to ``out_shape``."""

    pre_shape: Shape | None
    index: tuple[slice, ...] | None
    out_shape: Shape | None
    options: Any = None


def _slice_plan(in_shape: Shape, begin: Sequence[int], size: Sequence[int]) -> SliceParams:
    if len(begin) != len(in_shape) or len(size) != len(in_shape):
        raise ValueError(f"begin {tuple(begin)} and size {tuple(size)} must have one entry per input "
                         f"dim (input shape {in_shape})")
    index, out = [], []
    for d, (b, s, n) in enumerate(zip(begin, size, in_shape)):
        b, s = int(b), int(s)
        e = n if s == -1 else b + s
        if b < 0 or s < -1 or e > n or e < b:
            raise ValueError(f"slice begin {b} size {s} is out of range for dim {d} of size {n} "
                             f"(input shape {in_shape})")
        index.append(slice(b, e))
        out.append(e - b)
    return SliceParams(tuple(in_shape), tuple(index), tuple(out))


def _prepare_slice(ctx: OpContext) -> SliceParams:
    ctx.require_inputs(3)
    shape = ctx.inputs[0].shape
    if len(shape) > 5:
        raise ctx.error(f"input rank {len(shape)} > 5 is not supported by SLICE")
    b = _index_input(ctx, 1, "begin", _INT32_64, rank=1)
    s = _index_input(ctx, 2, "size", _INT32_64, rank=1)
    if b is None or s is None:
        return SliceParams(None, None, None)
    return _ctx_check(ctx, _slice_plan, shape, b, s)


@register("SLICE", prepare=_prepare_slice)
def slice_(x: np.ndarray, begin: np.ndarray, size: np.ndarray, *, opt: SliceParams) -> np.ndarray:
    """y = x[begin : begin + size] per dim; size -1 means up to the end of that dim."""
    p = opt if opt.index is not None else _slice_plan(x.shape, begin, size)
    return x[p.index].copy()


def _strided_slice_plan(in_shape: Shape, begin: Sequence[int], end: Sequence[int],
                        strides: Sequence[int], o: Any) -> SliceParams:
    """TFLite's StridedSlice: fold ellipsis/new-axis masks into an effective shape, then clamp per dim."""
    begin, end, strides = ([int(v) for v in a] for a in (begin, end, strides))
    count = len(begin)
    if len(end) != count or len(strides) != count:
        raise ValueError(f"begin, end and strides must have the same length, got "
                         f"{len(begin)}, {len(end)}, {len(strides)}")
    n_in = len(in_shape)
    ell_mask, new_mask = o.ellipsis_mask, o.new_axis_mask
    num_add = sum(1 for i in range(count) if not (ell_mask >> i) & 1 and (new_mask >> i) & 1)
    eff_dims = n_in + num_add
    if eff_dims > 5:
        raise ValueError(f"StridedSlice supports at most 5 dims including new axes, got {eff_dims}")
    if count > eff_dims:
        raise ValueError(f"begin has {count} entries, more than the {eff_dims} (effective) input dims")

    # Expand the ellipsis over the dims begin/end do not cover; new-axis bits shift past it.
    eff_ell = eff_new = 0
    ell_start, expanded = eff_dims, 0
    i = 0
    while i < eff_dims:
        if (ell_mask >> i) & 1:
            ell_start = i
            ell_end = max(i + 1, min(i + 1 + num_add + n_in - count, eff_dims))
            expanded = ell_end - ell_start - 1
            while i < ell_end:
                eff_ell |= 1 << i
                i += 1
            continue
        if (new_mask >> (i - expanded)) & 1:
            eff_new |= 1 << i
        i += 1

    pre_shape, index, out_shape = [], [], []
    added_ell = added_axes = 0
    for i in range(eff_dims):
        bit = 1 << i
        if eff_ell & bit:
            added_ell = max(0, i - ell_start)
            n = in_shape[i - added_axes]
            pre_shape.append(n)
            index.append(slice(None))
            out_shape.append(n)
            continue
        if eff_new & bit:
            pre_shape.append(1)
            index.append(slice(None))
            out_shape.append(1)
            added_axes += 1
            continue
        n = in_shape[i - added_axes]
        pre_shape.append(n)
        if i >= count + expanded:
            index.append(slice(None))
            out_shape.append(n)
            continue
        k = i - added_ell
        stride = strides[k]
        if stride == 0:
            raise ValueError(f"stride of dim {k} is 0")
        shrink = (o.shrink_axis_mask >> k) & 1
        start = begin[k]
        start = start + n if start < 0 else start
        start = min(max(start, 0), n) if stride > 0 else min(max(start, -1), n - 1)
        if (o.begin_mask >> k) & 1:
            start = 0 if stride > 0 else n - 1
        if shrink:
            if not 0 <= start < n:
                raise ValueError(f"shrink index {begin[k]} is out of range for dim {k} of size {n}")
            index.append(slice(start, start + 1))
            continue
        stop = end[k] + start if o.offset else end[k]
        stop = stop + n if stop < 0 else stop
        stop = min(max(stop, 0), n) if stride > 0 else min(max(stop, -1), n - 1)
        if (o.end_mask >> k) & 1:
            stop = n if stride > 0 else -1
        length = max(0, -(-(stop - start) // stride))
        if length == 0:
            index.append(slice(0, 0))
        else:
            index.append(slice(start, stop if stop >= 0 else None, stride))
        out_shape.append(length)
    return SliceParams(tuple(pre_shape), tuple(index), tuple(out_shape), o)


def _prepare_strided_slice(ctx: OpContext) -> SliceParams:
    ctx.require_inputs(4)
    shape = ctx.inputs[0].shape
    if len(shape) > 5:
        raise ctx.error(f"input rank {len(shape)} > 5 is not supported by STRIDED_SLICE")
    vals = [_index_input(ctx, i, w, _INT32, rank=1) for i, w in ((1, "begin"), (2, "end"), (3, "strides"))]
    if any(v is None for v in vals):
        return SliceParams(None, None, None, ctx.options)
    return _ctx_check(ctx, _strided_slice_plan, shape, *vals, ctx.options)


@register("STRIDED_SLICE", prepare=_prepare_strided_slice)
def strided_slice(x: np.ndarray, begin: np.ndarray, end: np.ndarray, strides: np.ndarray, *,
                  opt: SliceParams) -> np.ndarray:
    """y = x[begin:end:strides] with TFLite's begin/end/ellipsis/new_axis/shrink_axis masks and offset."""
    p = opt if opt.index is not None else _strided_slice_plan(x.shape, begin, end, strides, opt.options)
    return x.reshape(p.pre_shape)[p.index].copy().reshape(p.out_shape)


# ---------------------------------------------------------------------------------- tile/gather
@dataclass(frozen=True)
class TileParams:
    multiples: tuple[int, ...] | None


def _check_multiples(m: Sequence[int], rank: int) -> tuple[int, ...]:
    m = tuple(int(v) for v in m)
    if len(m) != rank or any(v < 0 for v in m):
        raise ValueError(f"multiples {m} must be {rank} non-negative values (one per input dim)")
    return m


def _prepare_tile(ctx: OpContext) -> TileParams:
    ctx.require_inputs(2)
    m = _index_input(ctx, 1, "multiples", _INT32_64, rank=1)
    rank = len(ctx.inputs[0].shape)
    return TileParams(None if m is None else _ctx_check(ctx, _check_multiples, m, rank))


@register("TILE", prepare=_prepare_tile)
def tile(x: np.ndarray, multiples: np.ndarray, *, opt: TileParams) -> np.ndarray:
    """y = x repeated multiples[d] times along every dim d."""
    m = opt.multiples if opt.multiples is not None else _check_multiples(multiples, x.ndim)
    return np.tile(x, m)


@dataclass(frozen=True)
class GatherParams:
    axis: int
    batch_dims: int


def _prepare_gather(ctx: OpContext) -> GatherParams:
    ctx.require_inputs(2)
    x, idx = ctx.inputs[0], ctx.inputs[1]
    if np.dtype(idx.dtype) not in (np.dtype(np.int16),) + _INT32_64:
        raise ctx.error(f"indices {idx.name!r} have dtype {np.dtype(idx.dtype).name}, "
                        f"expected int16, int32 or int64")
    rank, irank = len(x.shape), len(idx.shape)
    axis = _axis(ctx, ctx.options.axis, rank)
    bd = ctx.options.batch_dims
    bd = bd + irank if bd < 0 else bd
    if not (0 <= bd <= axis and bd < rank and bd <= irank):
        raise ctx.error(f"batch_dims {ctx.options.batch_dims} is out of range for axis {axis}, "
                        f"input rank {rank} and indices rank {irank}")
    if x.shape[:bd] != idx.shape[:bd]:
        raise ctx.error(f"the first batch_dims={bd} dims of input {x.shape} and indices {idx.shape} differ")
    if idx.data is not None and idx.data.size:
        lo, hi = int(idx.data.min()), int(idx.data.max())
        if lo < 0 or hi >= x.shape[axis]:
            raise ctx.error(f"indices range [{lo}, {hi}] is out of bounds for input dim {axis} "
                            f"of size {x.shape[axis]}")
    return GatherParams(axis, bd)


@register("GATHER", prepare=_prepare_gather)
def gather(x: np.ndarray, indices: np.ndarray, *, opt: GatherParams) -> np.ndarray:
    """y[b.., o.., i.., r..] = x[b.., o.., indices[b.., i..], r..] (b = batch_dims, o up to axis)."""
    axis, bd = opt.axis, opt.batch_dims
    if bd == 0:
        return np.take(x, indices, axis=axis)
    batch = int(np.prod(x.shape[:bd], dtype=np.int64))
    outer = int(np.prod(x.shape[bd:axis], dtype=np.int64))
    xr = x.reshape(batch, outer, x.shape[axis], -1)
    ir = indices.reshape(batch, 1, -1)
    y = xr[np.arange(batch)[:, None, None], np.arange(outer)[None, :, None], ir]
    return y.reshape(x.shape[:axis] + indices.shape[bd:] + x.shape[axis + 1:])


# ------------------------------------------------------------------------------------- padding
@dataclass(frozen=True)
class PadParams:
    pads: tuple[tuple[int, int], ...] | None
    mode: str = "CONSTANT"


def _check_pads(p: np.ndarray, shape: Shape, mode: str = "CONSTANT") -> tuple[tuple[int, int], ...]:
    p = np.asarray(p).reshape(-1)
    if p.size != 2 * len(shape):
        raise ValueError(f"paddings hold {p.size} values, expected {len(shape)}x2 for input shape {shape}")
    pads = tuple((int(a), int(b)) for a, b in p.reshape(-1, 2))
    for d, ((a, b), n) in enumerate(zip(pads, shape)):
        if a < 0 or b < 0:
            raise ValueError(f"paddings {pads[d]} of dim {d} are negative")
        limit = {"REFLECT": n - 1, "SYMMETRIC": n}.get(mode)
        if limit is not None and max(a, b) > limit:
            raise ValueError(f"{mode} paddings {pads[d]} of dim {d} exceed {limit} "
                             f"(input dim size {n}, shape {shape})")
    return pads


def _prepare_pad(ctx: OpContext) -> PadParams:
    ctx.require_inputs(2, 3)
    shape = ctx.inputs[0].shape
    p = _index_input(ctx, 1, "paddings", _INT32_64)
    pt = ctx.inputs[1]
    if pt.shape != (len(shape), 2):
        raise ctx.error(f"paddings {pt.name!r} have shape {pt.shape}, expected ({len(shape)}, 2)")
    if ctx.op_name == "PADV2" or ctx.input(2) is not None:
        cv = ctx.input(2)
        if cv is None:
            raise ctx.error("constant_values (input 2) is missing")
        if int(np.prod(cv.shape, dtype=np.int64)) != 1:
            raise ctx.error(f"constant_values {cv.name!r} has shape {cv.shape}, expected one element")
        if np.dtype(cv.dtype) != np.dtype(ctx.inputs[0].dtype):
            raise ctx.error(f"constant_values dtype {np.dtype(cv.dtype).name} differs from input dtype "
                            f"{np.dtype(ctx.inputs[0].dtype).name}")
    return PadParams(None if p is None else _ctx_check(ctx, _check_pads, p, shape))


@register("PAD", "PADV2", prepare=_prepare_pad)
def pad(x: np.ndarray, paddings: np.ndarray, constant_values: np.ndarray | None = None, *,
        opt: PadParams) -> np.ndarray:
    """y = x surrounded by paddings[d] = (before, after) elements of constant_values (0 for PAD)."""
    pads = opt.pads if opt.pads is not None else _check_pads(paddings, x.shape)
    value = 0 if constant_values is None else np.asarray(constant_values).reshape(-1)[0]
    out = np.full(tuple(n + a + b for n, (a, b) in zip(x.shape, pads)), value, dtype=x.dtype)
    out[tuple(slice(a, a + n) for n, (a, _) in zip(x.shape, pads))] = x
    return out


def _prepare_mirror_pad(ctx: OpContext) -> PadParams:
    ctx.require_inputs(2)
    shape = ctx.inputs[0].shape
    mode = ctx.options.mode
    if mode not in ("REFLECT", "SYMMETRIC"):
        raise ctx.error(f"unknown mirror pad mode {mode!r}")
    p = _index_input(ctx, 1, "paddings", _INT32_64)
    if ctx.inputs[1].shape != (len(shape), 2):
        raise ctx.error(f"paddings have shape {ctx.inputs[1].shape}, expected ({len(shape)}, 2)")
    return PadParams(None if p is None else _ctx_check(ctx, _check_pads, p, shape, mode), mode)


@register("MIRROR_PAD", prepare=_prepare_mirror_pad)
def mirror_pad(x: np.ndarray, paddings: np.ndarray, *, opt: PadParams) -> np.ndarray:
    """y = x padded by mirroring: REFLECT excludes the edge element, SYMMETRIC repeats it."""
    pads = opt.pads if opt.pads is not None else _check_pads(paddings, x.shape, opt.mode)
    return np.pad(x, pads, mode="reflect" if opt.mode == "REFLECT" else "symmetric")


# ----------------------------------------------------------------------- depth / space / batch
@dataclass(frozen=True)
class BlockParams:
    block_size: int


def _prepare_depth_space(ctx: OpContext) -> BlockParams:
    ctx.require_inputs(1)
    shape = ctx.inputs[0].shape
    bs = ctx.options.block_size
    if len(shape) != 4:
        raise ctx.error(f"input must be 4-D NHWC, got shape {shape}")
    if bs < 1:
        raise ctx.error(f"block_size must be >= 1, got {bs}")
    if ctx.op_name == "DEPTH_TO_SPACE":
        if shape[3] % (bs * bs):
            raise ctx.error(f"input depth {shape[3]} (shape {shape}) is not divisible by "
                            f"block_size^2 = {bs * bs}")
    elif shape[1] % bs or shape[2] % bs:
        raise ctx.error(f"input height/width {shape[1:3]} (shape {shape}) are not divisible by "
                        f"block_size {bs}")
    return BlockParams(bs)


@register("DEPTH_TO_SPACE", prepare=_prepare_depth_space)
def depth_to_space(x: np.ndarray, *, opt: BlockParams) -> np.ndarray:
    """y[n, h*bs + i, w*bs + j, c] = x[n, h, w, (i*bs + j)*C_out + c]."""
    n, h, w, c = x.shape
    bs = opt.block_size
    co = c // (bs * bs)
    t = x.reshape(n, h, w, bs, bs, co).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(t).reshape(n, h * bs, w * bs, co)


@register("SPACE_TO_DEPTH", prepare=_prepare_depth_space)
def space_to_depth(x: np.ndarray, *, opt: BlockParams) -> np.ndarray:
    """y[n, h, w, (i*bs + j)*C + c] = x[n, h*bs + i, w*bs + j, c]."""
    n, h, w, c = x.shape
    bs = opt.block_size
    t = x.reshape(n, h // bs, bs, w // bs, bs, c).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(t).reshape(n, h // bs, w // bs, bs * bs * c)


@dataclass(frozen=True)
class BatchSpaceParams:
    block: tuple[int, ...] | None
    pads: tuple[tuple[int, int], ...] | None


def _batch_space_plan(shape: Shape, block: np.ndarray, pads: np.ndarray, to_batch: bool
                      ) -> BatchSpaceParams:
    block = tuple(int(v) for v in np.asarray(block).reshape(-1))
    m = len(block)
    if not 1 <= m <= len(shape) - 1:
        raise ValueError(f"block_shape {block} must have 1 to {len(shape) - 1} entries for input {shape}")
    if any(b < 1 for b in block):
        raise ValueError(f"block_shape {block} must be >= 1")
    p = np.asarray(pads).reshape(-1)
    what = "paddings" if to_batch else "crops"
    if p.size != 2 * m:
        raise ValueError(f"{what} hold {p.size} values, expected {m}x2")
    pp = tuple((int(a), int(b)) for a, b in p.reshape(m, 2))
    if any(a < 0 or b < 0 for a, b in pp):
        raise ValueError(f"{what} {pp} must be non-negative")
    prod = int(np.prod(block))
    if to_batch:
        for d, ((a, b), bs) in enumerate(zip(pp, block)):
            if (shape[1 + d] + a + b) % bs:
                raise ValueError(f"padded spatial dim {d} ({shape[1 + d]} + {a} + {b}) is not divisible "
                                 f"by block {bs}")
    else:
        if shape[0] % prod:
            raise ValueError(f"input batch {shape[0]} is not divisible by prod(block_shape) = {prod}")
        for d, ((a, b), bs) in enumerate(zip(pp, block)):
            if a + b > shape[1 + d] * bs:
                raise ValueError(f"crops {pp[d]} exceed spatial dim {d} of size {shape[1 + d] * bs}")
    return BatchSpaceParams(block, pp)


def _prepare_batch_space(ctx: OpContext) -> BatchSpaceParams:
    ctx.require_inputs(3)
    shape = ctx.inputs[0].shape
    if len(shape) not in (3, 4):
        raise ctx.error(f"input must be 3-D or 4-D, got shape {shape}")
    to_batch = ctx.op_name == "SPACE_TO_BATCH_ND"
    block = _index_input(ctx, 1, "block_shape", _INT32, rank=1)
    pads = _index_input(ctx, 2, "paddings" if to_batch else "crops", _INT32, rank=2)
    if block is None or pads is None:
        return BatchSpaceParams(None, None)
    return _ctx_check(ctx, _batch_space_plan, shape, block, pads, to_batch)


@register("SPACE_TO_BATCH_ND", prepare=_prepare_batch_space)
def space_to_batch_nd(x: np.ndarray, block_shape: np.ndarray, paddings: np.ndarray, *,
                      opt: BatchSpaceParams) -> np.ndarray:
    """Zero-pad the spatial dims, then move each block offset (i, j) to batch (i*bw + j)*N + n."""
    p = opt if opt.block is not None else _batch_space_plan(x.shape, block_shape, paddings, True)
    m, block = len(p.block), p.block
    xp = np.pad(x, ((0, 0),) + p.pads + ((0, 0),) * (x.ndim - 1 - m))
    n = x.shape[0]
    rest = xp.shape[1 + m:]
    split = [n]
    for d in range(m):
        split += [xp.shape[1 + d] // block[d], block[d]]
    t = xp.reshape(split + list(rest))
    perm = [2 + 2 * d for d in range(m)] + [0] + [1 + 2 * d for d in range(m)] + \
        list(range(1 + 2 * m, 1 + 2 * m + len(rest)))
    out_shape = (n * int(np.prod(block)),) + tuple(split[1 + 2 * d] for d in range(m)) + rest
    return np.ascontiguousarray(t.transpose(perm)).reshape(out_shape)


@register("BATCH_TO_SPACE_ND", prepare=_prepare_batch_space)
def batch_to_space_nd(x: np.ndarray, block_shape: np.ndarray, crops: np.ndarray, *,
                      opt: BatchSpaceParams) -> np.ndarray:
    """Inverse of SPACE_TO_BATCH_ND: interleave batch blocks into the spatial dims, then crop."""
    p = opt if opt.block is not None else _batch_space_plan(x.shape, block_shape, crops, False)
    m, block = len(p.block), p.block
    prod = int(np.prod(block))
    n = x.shape[0] // prod
    spatial = x.shape[1:1 + m]
    rest = x.shape[1 + m:]
    t = x.reshape(block + (n,) + spatial + rest)
    perm = [m]
    for d in range(m):
        perm += [m + 1 + d, d]
    perm += list(range(2 * m + 1, 2 * m + 1 + len(rest)))
    full = np.ascontiguousarray(t.transpose(perm)).reshape(
        (n,) + tuple(s * b for s, b in zip(spatial, block)) + rest)
    crop = tuple(slice(a, full.shape[1 + d] - b) for d, (a, b) in enumerate(p.pads))
    return full[(slice(None),) + crop].copy()
