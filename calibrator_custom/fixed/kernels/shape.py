"""Integer kernels of the shape family (``ops/shape.py``): data movement (reshapes, transpose, slicing,
tiling, gathering, padding, the space/depth/batch rearrangements, splits) and CONCATENATION / PACK.

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
* CONCATENATION / PACK: each input rescaled to the output as for SELECT (``elementwise.py``), then
  concatenated or stacked, then CONCATENATION's activation clamp; exact when the quantizations
  match. A fused TANH or SIGN_BIT on CONCATENATION is a real nonlinearity in the float op and is
  refused.

Pools, reductions, ARG_MAX/ARG_MIN, TOPK_V2 and the resizes live in pool.py, reduce.py and
resize.py (imported below); CAST is in elementwise.py, with the float CAST.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ...ops import shape as fshape
from ...ops.registry import OpContext, TensorInfo, get_op
from ..fixedpoint import Rescale
from ..registry import register
from ._common import data_rescale, is_quantized, per_tensor_qparams, quantize_real, refuse
from .elementwise import PlainParams, begin_params, output_params, rescales_to_output, unsupported

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


# --------------------------------------------------------------------------- CONCATENATION / PACK
@dataclass(frozen=True)
class JoinParams:
    """Inputs rescaled to the output, joined on ``axis``, clamped to [lo, hi] (the activation)."""

    rescales: tuple[Rescale, ...]
    axis: int
    lo: int
    hi: int


def _prepare_join(ctx: OpContext) -> JoinParams | PlainParams:
    quantized, p = begin_params(ctx, range(len(ctx.inputs)))
    if not quantized:
        return p
    act = getattr(p, "activation", "NONE")
    if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise unsupported(ctx, f"fused activation {act} is a nonlinearity with no integer kernel here")
    out = output_params(ctx, act)
    return JoinParams(rescales_to_output(ctx, range(len(ctx.inputs))), p.axis, out.lo, out.hi)


def _join(xs: Sequence[np.ndarray], opt: JoinParams, fn: Callable[..., np.ndarray]) -> np.ndarray:
    y = fn([rs(x) for rs, x in zip(opt.rescales, xs)], axis=opt.axis)
    info = np.iinfo(y.dtype)
    if opt.lo > info.min or opt.hi < info.max:
        y = np.clip(y, opt.lo, opt.hi)
    return y


@register("CONCATENATION", prepare=_prepare_join)
def concatenation(*xs: np.ndarray, opt: JoinParams | PlainParams) -> np.ndarray:
    """y = act(concat(rescaled xs, axis))."""
    if isinstance(opt, PlainParams):
        return opt(*xs)
    return _join(xs, opt, np.concatenate)


@register("PACK", prepare=_prepare_join)
def pack(*xs: np.ndarray, opt: JoinParams | PlainParams) -> np.ndarray:
    """y = stack(rescaled xs, axis)."""
    if isinstance(opt, PlainParams):
        return opt(*xs)
    return _join(xs, opt, np.stack)


from . import pool, reduce, resize  # noqa: E402,F401  (register their ops)
