"""Integer kernels for data movement: reshapes, transpose, slicing, tiling, gathering, padding, the
space/depth/batch rearrangements, splits, nearest-neighbour resizing and CAST.

Every data-movement op applies its float kernel's index logic (``ops/shape.py``; the float kernels
are dtype-agnostic numpy and are called on the integer array) and then one
:class:`~calibrator_custom.fixed.fixedpoint.Rescale` from the data input's quantization to each
output's: ``q_out = saturate(rounding_rshift((q_in - zp_in) * m, s) + zp_out)``. The error bound of
every such op is therefore: **exact** (0 LSB) when the input and output quantizations are equal (the
planner's usual choice; the Rescale is then the identity) or differ only in zero point or dtype
(values outside the output range saturate); otherwise **<= 0.5 output LSB** plus the multiplier's
relative error, ``2**-bits * |y|`` (``|y|`` the exact output in LSBs); for 8/16-bit inputs and outputs
``bits = 31`` whenever the scale ratio is at least ``2**-21`` (so < 2**-14 LSB) and never below 24
(``fixedpoint.f64_multiplier``, which lets the Rescale run in float64, exactly). Plain integer/bool tensors (no
quantization: shapes, indices, masks) pass through unchanged, bit-exact. Shape/index inputs (shape,
perm, begin/end/strides, multiples, indices, paddings, block shapes, axes, sizes) are int32 (or the
float op's other index dtypes), constant (read in prepare) or computed at run time.

* RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, SLICE, STRIDED_SLICE, TILE, GATHER, MIRROR_PAD,
  DEPTH_TO_SPACE, SPACE_TO_DEPTH, BATCH_TO_SPACE_ND: float movement, then Rescale.
* SPLIT, SPLIT_V, UNPACK: float movement, then one Rescale per output (each output may have its
  own quantization).
* PAD: Rescale, then pad with the output zero point (real 0 exactly). PADV2: Rescale, then pad with
  the constant value quantized to the output (a constant: ``round_half_up(v / out_scale) + zp_out``
  in prepare; a run-time constant: the same Rescale as the data, from its own quantization); the pad
  cells are within 0.5 LSB of the constant (exact when the constant is representable).
* SPACE_TO_BATCH_ND: Rescale, then the float movement on ``q - zp_out`` in int64 (its zero padding
  is real 0), plus ``zp_out``.
* RESIZE_NEAREST_NEIGHBOR: the float kernel's source indices (same coordinate rules, align_corners
  and half_pixel_centers) are computed in prepare for the model's static output size; the kernel
  gathers and Rescales.
* CAST: plain integer/bool -> plain integer/bool: the float kernel's numpy cast (C-style
  wraparound, bool = x != 0), exact. Quantized -> bool: ``q != zp`` (real != 0), exact.
  Quantized -> plain integer: the float op truncates toward zero, so the kernel computes
  ``trunc(scale * (q - zp))`` **exactly** from the float64 scale's 53-bit mantissa split in two
  27/26-bit limbs (inputs of at most 16 bits, scale < 2**26), then saturates to the output dtype
  (where the float op is undefined). Quantized -> quantized: Rescale. Plain integer/bool ->
  quantized: Rescale from scale 1, zero point 0 (<= 0.5 LSB; int64 inputs are refused).

Pools, reductions, ARG_MAX/ARG_MIN, TOPK_V2 and RESIZE_BILINEAR live in pool.py,
reduce.py and resize.py (imported below).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...ops import resize as fresize
from ...ops import shape as fshape
from ...ops.elementwise import cast as float_cast
from ...ops.registry import OpContext, TensorInfo, get_op
from ..fixedpoint import Rescale, requantize, saturate
from ..registry import register
from .movement_common import (data_rescale, is_quantized, per_tensor_qparams, quantize_real, refuse,
                              static_resize_size)

logger = logging.getLogger(__name__)

I64 = np.int64


# ------------------------------------------------------------------------------ generic movement
@dataclass(frozen=True)
class MoveParams:
    """A float movement kernel's (integer-only) params and the Rescale of each output."""

    inner: Any
    rescales: tuple[Rescale, ...]


def _float_prepare(op_name: str) -> Callable[[OpContext], Any]:
    opdef = get_op(op_name)
    return opdef.prepare if opdef.prepare is not None else (lambda ctx: ctx.options)


def _rescales(ctx: OpContext, data_index: int) -> tuple[Rescale, ...]:
    src = ctx.inputs[data_index]
    return tuple(data_rescale(ctx, src, o, f"input {data_index}", f"output {j}")
                 for j, o in enumerate(ctx.outputs))


def _movement(op_name: str, data_index: int = 0, to_params: Callable[[Any], Any] = lambda p: p,
              from_params: Callable[[Any], Any] = lambda p: p) -> None:
    """Register the integer kernel of a pure data-movement op: float movement, then Rescale per output.

    ``to_params`` turns the float prepare's result into integer-only params (e.g. slices into
    tuples); ``from_params`` turns them back for the float kernel.
    """
    float_fn = get_op(op_name).kernel
    float_prep = _float_prepare(op_name)

    def prepare(ctx: OpContext) -> MoveParams:
        inner = to_params(float_prep(ctx))
        return MoveParams(inner, _rescales(ctx, data_index))

    def kernel(*inputs: np.ndarray, opt: MoveParams):
        y = float_fn(*inputs, opt=from_params(opt.inner))
        if isinstance(y, tuple):
            return tuple(r(v) for r, v in zip(opt.rescales, y))
        return opt.rescales[0](y)

    kernel.__name__ = op_name.lower()
    kernel.__doc__ = f"{op_name}: the float op's data movement on the integers, then Rescale to each output."
    register(op_name, prepare=prepare)(kernel)


# slices are not integers: carry them as (start, stop, step) triples
@dataclass(frozen=True)
class SlicePlan:
    """fshape.SliceParams with every ``slice`` written as a (start, stop, step) triple."""

    pre_shape: tuple[int, ...] | None
    index: tuple[tuple[int | None, int | None, int | None], ...] | None
    out_shape: tuple[int, ...] | None
    options: Any = None


def _slice_to_plan(p: fshape.SliceParams) -> SlicePlan:
    index = None if p.index is None else tuple((s.start, s.stop, s.step) for s in p.index)
    return SlicePlan(p.pre_shape, index, p.out_shape, p.options)


def _plan_to_slice(p: SlicePlan) -> fshape.SliceParams:
    index = None if p.index is None else tuple(slice(*t) for t in p.index)
    return fshape.SliceParams(p.pre_shape, index, p.out_shape, p.options)


for _op in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "TILE", "GATHER", "MIRROR_PAD",
            "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "BATCH_TO_SPACE_ND", "SPLIT_V", "UNPACK"):
    _movement(_op)
_movement("SPLIT", data_index=1)
_movement("SLICE", to_params=_slice_to_plan, from_params=_plan_to_slice)
_movement("STRIDED_SLICE", to_params=_slice_to_plan, from_params=_plan_to_slice)


# ------------------------------------------------------------------------------------ padding
@dataclass(frozen=True)
class PadParams:
    """PAD/PADV2: float pad params, the data Rescale and the pad value in the output's domain.

    ``value`` is the pad value when known in prepare; else ``value_rescale`` maps the run-time
    constant_values input to the output's domain.
    """

    inner: fshape.PadParams
    rescale: Rescale
    value: int | None
    value_rescale: Rescale | None


def _pad_constant(ctx: OpContext, cv: TensorInfo, out: TensorInfo) -> tuple[int | None, Rescale | None]:
    """(value, None) for a constant PADV2 pad value, (None, rescale) for a run-time one."""
    po = per_tensor_qparams(ctx, out, "output") if is_quantized(out) else None
    if int(np.prod(cv.shape, dtype=np.int64)) != 1:
        raise ctx.error(f"constant_values {cv.name!r} has shape {cv.shape}, expected one element")
    kind = np.dtype(cv.dtype).kind
    if po is None:  # plain integer data: the value is used as is
        if is_quantized(cv) or np.dtype(cv.dtype) != np.dtype(out.dtype):
            raise ctx.error(f"constant_values {cv.name!r} must be a plain {np.dtype(out.dtype).name} "
                            f"tensor like the data")
        if cv.data is None:
            return None, data_rescale(ctx, cv, out, "constant_values")
        return int(np.asarray(cv.data).reshape(-1)[0]), None
    if kind == "f":
        if cv.data is None:
            raise refuse(ctx, f"constant_values {cv.name!r} is a run-time float tensor; integer "
                              f"kernels take integer tensors")
        return quantize_real(float(np.asarray(cv.data, np.float64).reshape(-1)[0]), po), None
    if not is_quantized(cv):
        raise refuse(ctx, f"constant_values {cv.name!r} is a plain integer tensor but the data is "
                          f"quantized; its real value is unknown")
    if cv.data is None:
        return None, data_rescale(ctx, cv, out, "constant_values")
    pc = per_tensor_qparams(ctx, cv, "constant_values")
    real = float(pc.scale) * (int(np.asarray(cv.data).reshape(-1)[0]) - int(pc.zero_point))
    return quantize_real(real, po), None


def _prepare_pad(ctx: OpContext) -> PadParams:
    ctx.require_inputs(2, 3)
    x, out = ctx.inputs[0], ctx.outputs[0]
    rescale = data_rescale(ctx, x, out)
    cv = ctx.input(2)
    if ctx.op_name == "PADV2" and cv is None:
        raise ctx.error("constant_values (input 2) is missing")
    if cv is None:
        value = int(per_tensor_qparams(ctx, out, "output").zero_point) if is_quantized(out) else 0
        value_rescale = None
        fctx = ctx
    else:
        value, value_rescale = _pad_constant(ctx, cv, out)
        # the float prepare wants constant_values in the data's dtype; it only checks the shape
        fctx = dataclasses.replace(ctx, inputs=(x, ctx.inputs[1], dataclasses.replace(cv, dtype=x.dtype)))
    return PadParams(fshape._prepare_pad(fctx), rescale, value, value_rescale)


@register("PAD", "PADV2", prepare=_prepare_pad)
def pad(x: np.ndarray, paddings: np.ndarray, constant_values: np.ndarray | None = None, *,
        opt: PadParams) -> np.ndarray:
    """Rescale x to the output, then pad with the pad value in the output's domain."""
    y = opt.rescale(x)
    if opt.value is not None:
        value = np.array([opt.value], dtype=y.dtype)
    else:
        value = opt.value_rescale(constant_values).reshape(-1)[:1]
    return fshape.pad(y, paddings, value, opt=opt.inner)


@dataclass(frozen=True)
class ZeroPaddedParams:
    """A movement that inserts zeros: its float params, the Rescale and the output zero point."""

    inner: Any
    rescale: Rescale
    out_zero_point: int


def _prepare_space_to_batch(ctx: OpContext) -> ZeroPaddedParams:
    inner = fshape._prepare_batch_space(ctx)
    out = ctx.outputs[0]
    zp = int(per_tensor_qparams(ctx, out, "output").zero_point) if is_quantized(out) else 0
    return ZeroPaddedParams(inner, data_rescale(ctx, ctx.inputs[0], out), zp)


@register("SPACE_TO_BATCH_ND", prepare=_prepare_space_to_batch)
def space_to_batch_nd(x: np.ndarray, block_shape: np.ndarray, paddings: np.ndarray, *,
                      opt: ZeroPaddedParams) -> np.ndarray:
    """Rescale, then SPACE_TO_BATCH_ND with padding cells set to the output zero point (real 0)."""
    y = opt.rescale(x)
    if opt.out_zero_point == 0:
        return fshape.space_to_batch_nd(y, block_shape, paddings, opt=opt.inner)
    z = fshape.space_to_batch_nd(y.astype(I64) - opt.out_zero_point, block_shape, paddings, opt=opt.inner)
    return (z + opt.out_zero_point).astype(y.dtype)


# ----------------------------------------------------------------------------- nearest resize
@dataclass(frozen=True)
class NearestParams:
    """Source row/column of every output row/column, and the Rescale."""

    rows: np.ndarray
    cols: np.ndarray
    rescale: Rescale


def _prepare_nearest(ctx: OpContext) -> NearestParams:
    p = fresize._prepare_resize(ctx)
    out_h, out_w = static_resize_size(ctx, p)
    _, h, w, _ = ctx.inputs[0].shape
    rows = np.array(fresize._nearest_axis(h, out_h, p.align_corners, p.half_pixel_centers), I64)
    cols = np.array(fresize._nearest_axis(w, out_w, p.align_corners, p.half_pixel_centers), I64)
    return NearestParams(rows, cols, data_rescale(ctx, ctx.inputs[0], ctx.outputs[0]))


@register("RESIZE_NEAREST_NEIGHBOR", prepare=_prepare_nearest)
def resize_nearest_neighbor(x: np.ndarray, size: np.ndarray, *, opt: NearestParams) -> np.ndarray:
    """y[n, i, j, c] = Rescale(x[n, rows[i], cols[j], c]) (indices from the float op's rules)."""
    return opt.rescale(x[:, opt.rows[:, None], opt.cols[None, :]])


# ------------------------------------------------------------------------------------------ cast
#: the low limb of the scale's 53-bit mantissa has this many bits
_LIMB_BITS = 27


@dataclass(frozen=True)
class CastParams:
    """CAST. ``mode``: 'numpy' (plain -> plain), 'nonzero' (quantized -> bool), 'trunc' (quantized
    -> plain integer: trunc(scale * (q - zp)) with scale = (hi * 2**27 + lo) * 2**-shift), 'rescale'
    (-> quantized)."""

    mode: str
    dtype: np.dtype
    zero_point: int = 0
    scale_hi: int = 0
    scale_lo: int = 0
    shift: int = 0
    rescale: Rescale | None = None


def _cast_trunc(ctx: OpContext, src: TensorInfo, dst: TensorInfo) -> CastParams:
    p = per_tensor_qparams(ctx, src, "input")
    if p.dtype.itemsize > 2:
        raise refuse(ctx, f"casting a quantized {p.dtype.name} input to an integer needs an exact "
                          f"product wider than int64; only 8- and 16-bit quantized inputs are supported")
    frac, exp = np.frexp(float(p.scale))  # scale = frac * 2**exp, frac in [0.5, 1)
    mant = int(np.ldexp(frac, 53))  # exact: float64 has a 53-bit mantissa
    shift = 53 - int(exp)
    if shift < _LIMB_BITS:
        raise refuse(ctx, f"input scale {float(p.scale)} >= 2**26 is too large for the exact "
                          f"integer cast")
    hi, lo = mant >> _LIMB_BITS, mant & ((1 << _LIMB_BITS) - 1)
    return CastParams("trunc", np.dtype(dst.dtype), int(p.zero_point), hi, lo, shift)


def _prepare_cast(ctx: OpContext) -> CastParams:
    ctx.require_inputs(1)
    src, dst = ctx.inputs[0], ctx.outputs[0]
    for what, t in (("input", src), ("output", dst)):
        if np.dtype(t.dtype).kind not in "iub":
            raise refuse(ctx, f"{what} {t.name!r} is {np.dtype(t.dtype).name}; the integer CAST takes "
                              f"integer and bool tensors (float casts are boundary ops)")
    qs, qd = is_quantized(src), is_quantized(dst)
    out_dtype = np.dtype(dst.dtype)
    if qd:
        if qs:
            return CastParams("rescale", out_dtype, rescale=data_rescale(ctx, src, dst))
        pd = per_tensor_qparams(ctx, dst, "output")
        in_dtype = np.dtype(np.uint8) if np.dtype(src.dtype).kind == "b" else np.dtype(src.dtype)
        if in_dtype.itemsize > 4:
            raise refuse(ctx, f"a plain {in_dtype.name} input cannot be requantized within int64")
        r = Rescale.between(1.0, 0, pd.scale, pd.zero_point, in_dtype, out_dtype)
        return CastParams("rescale", out_dtype, rescale=r)
    if not qs:
        return CastParams("numpy", out_dtype)
    if out_dtype.kind == "b":
        return CastParams("nonzero", out_dtype, int(per_tensor_qparams(ctx, src, "input").zero_point))
    return _cast_trunc(ctx, src, dst)


def _trunc_scaled(x: np.ndarray, p: CastParams) -> np.ndarray:
    """trunc((x - zp) * (hi * 2**27 + lo) / 2**shift), exactly, in int64 (|x - zp| < 2**16)."""
    d = x.astype(I64) - p.zero_point
    ad = np.abs(d)
    # floor((H * 2**27 + L) / 2**shift) = (H + (L >> 27)) >> (shift - 27); H < 2**42, L < 2**43
    v = (ad * p.scale_hi + ((ad * p.scale_lo) >> _LIMB_BITS)) >> min(p.shift - _LIMB_BITS, 62)
    return saturate(np.where(d < 0, -v, v), p.dtype)


@register("CAST", prepare=_prepare_cast)
def cast(x: np.ndarray, *, opt: CastParams) -> np.ndarray:
    """CAST between integer/bool tensors, quantized or plain (see the module docstring)."""
    if opt.mode == "numpy":
        return float_cast(x, opt=opt)
    if opt.mode == "nonzero":
        return x.astype(I64) != opt.zero_point
    if opt.mode == "trunc":
        return _trunc_scaled(x, opt)
    r = opt.rescale
    if x.dtype.kind == "b":
        return requantize(x.astype(I64), r.multiplier, r.shift, r.out_zero_point, r.out_dtype)
    return r(x)


from . import pool, reduce, resize  # noqa: E402,F401  (register their ops)
