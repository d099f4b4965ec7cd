"""Integer kernels for the reductions MEAN, SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD, and for ARG_MAX,
ARG_MIN and TOPK_V2.

Axes follow the float kernels (``ops/reduce.py``): int32, constant or run-time, negative ones count
from the end, duplicates merge, keep_dims keeps size-1 dims. ``n`` below is the number of reduced
elements per output (from the axes, or ``input size / output size`` when the axes are computed at
run time). Plain (unquantized) integer inputs run the float kernel on the integers (C-style
wraparound for SUM/REDUCE_PROD, truncating division for MEAN), bit-exact.

* SUM: ``acc = sum(q - zp_in)`` in int64, then one rounding ``rounding_rshift(acc * m, s) + zp_out``
  with ``m * 2**-s ~= in_scale / out_scale`` (multiplier as wide as ``n * max|q - zp_in| * m < 2**62``
  allows, <= 31 bits), saturate. Bound: <= 0.5 LSB + 2**-bits * |y| (|y| the exact output in LSBs).
* MEAN: the same with ``m * 2**-s ~= in_scale / (n * out_scale)``: <= 0.5 LSB + 2**-bits * |y| (no
  separate division by n, so no second rounding).
* REDUCE_MAX / REDUCE_MIN: max/min of the integers (monotone: positive scale), then Rescale:
  exact when the quantizations are equal, else <= 0.5 LSB + the Rescale's ``2**-bits * |y|``.
* REDUCE_PROD: the product of ``d = q - zp_in`` runs sequentially in a block-floating int64 form
  ``P * 2**E``: after each factor, ``P`` (|P| <= 2**31, |d| <= 2**16, so |P * d| < 2**48) is
  renormalized to 31 significant bits with rounding_rshift (relative error <= 2**-31 per step) and
  the shift is added to ``E``. The result is ``rounding_rshift(P * m, s - E) + zp_out`` with ``m * 2**-s ~=
  in_scale**n / out_scale`` (31-bit multiplier; the power is formed at prepare time with float
  renormalization, so it neither underflows nor overflows). Bound: <= 0.5 + (n + 1) * 2**-30 * |y|
  LSB where |y| is the exact output in LSBs (for an int16 output in range: <= 0.5 + (n + 1) * 2**-15).
  Results beyond the output range saturate. Inputs wider than 16 bits are refused.
* ARG_MAX / ARG_MIN: the float kernel on the integers (argmax of q is argmax of the real value for a
  positive scale; first index on ties, as the float kernel): exact int32/int64 indices.
* TOPK_V2: the float kernel's stable sort on the integers (ties: lower index first), exact indices;
  values Rescaled to the output: exact when the quantizations are equal, else <= 0.5 LSB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...ops import reduce as freduce
from ...ops.registry import OpContext, TensorInfo
from ..fixedpoint import (Rescale, multiplier_bits, quantize_multiplier, requantize, rounding_rshift,
                          saturate)
from ..registry import register
from ._common import bit_length, data_rescale, is_quantized, per_tensor_qparams, refuse

I64 = np.int64

#: significant bits the running REDUCE_PROD product keeps
PROD_BITS = 31


@dataclass(frozen=True)
class IntReduceParams:
    """A reduction: the float plan, and how integers map to the output.

    ``plain``: unquantized integers, the float kernel as is. Else MAX/MIN use ``rescale``;
    SUM/MEAN/PROD use ``in_zero_point``, ``multiplier``, ``shift``, ``out_zero_point``.
    """

    plan: freduce.ReduceParams
    plain: bool
    out_dtype: np.dtype
    rescale: Rescale | None = None
    in_zero_point: int = 0
    multiplier: np.ndarray | None = None
    shift: int = 0
    out_zero_point: int = 0


def _count(ctx: OpContext, plan: freduce.ReduceParams) -> int:
    """Elements reduced into each output (from the axes, else from the static shapes)."""
    in_shape = ctx.inputs[0].shape
    if plan.axes is not None:
        return int(np.prod([in_shape[a] for a in plan.axes], dtype=np.int64))
    n_in = int(np.prod(in_shape, dtype=np.int64))
    n_out = int(np.prod(ctx.outputs[0].shape, dtype=np.int64))
    if n_out <= 0 or n_in % n_out:
        raise refuse(ctx, f"the axes are computed at run time and the static shapes {in_shape} -> "
                          f"{ctx.outputs[0].shape} do not give the reduced count")
    return n_in // n_out


def _check_data(ctx: OpContext) -> tuple[TensorInfo, TensorInfo, bool]:
    x, y = ctx.inputs[0], ctx.outputs[0]
    data_rescale(ctx, x, y)  # validates kinds and dtypes
    return x, y, not is_quantized(x)


def _prepare_minmax(ctx: OpContext) -> IntReduceParams:
    plan = freduce._prepare_reduce(ctx)
    x, y, plain = _check_data(ctx)
    return IntReduceParams(plan, plain, np.dtype(y.dtype), rescale=data_rescale(ctx, x, y))


def _prepare_sum_mean(ctx: OpContext) -> IntReduceParams:
    plan = freduce._prepare_reduce(ctx)
    x, y, plain = _check_data(ctx)
    if plain:
        return IntReduceParams(plan, True, np.dtype(y.dtype))
    pin = per_tensor_qparams(ctx, x, "input")
    pout = per_tensor_qparams(ctx, y, "output")
    n = max(_count(ctx, plan), 1)
    zin = int(pin.zero_point)
    bound = n * max(pin.qmax - zin, zin - pin.qmin)
    if bound >= 2 ** 61:
        raise refuse(ctx, f"reducing {n} elements can overflow the int64 accumulator")
    real = float(pin.scale) / float(pout.scale)
    if ctx.op_name == "MEAN":
        real /= n
    m, s = quantize_multiplier(real, multiplier_bits(bound))
    return IntReduceParams(plan, False, pout.dtype, None, zin, m, int(s), int(pout.zero_point))


def _run_plan(x: np.ndarray, axis: np.ndarray, p: freduce.ReduceParams) -> freduce.ReduceParams:
    return p if p.axes is not None else freduce._reduce_plan(x.shape, axis, p.keep_dims)


def _sum_q(x: np.ndarray, axis: np.ndarray, opt: IntReduceParams) -> np.ndarray:
    plan = _run_plan(x, axis, opt.plan)
    acc = freduce._reduce(x.astype(I64) - opt.in_zero_point, axis, plan, np.add)
    return requantize(acc, opt.multiplier, opt.shift, opt.out_zero_point, opt.out_dtype)


@register("SUM", prepare=_prepare_sum_mean)
def sum_(x: np.ndarray, axis: np.ndarray, *, opt: IntReduceParams) -> np.ndarray:
    """y = rounding_rshift(sum(x - zp_in) * m, s) + zp_out with m * 2**-s ~= in_scale / out_scale."""
    if opt.plain:
        return freduce.sum_(x, axis, opt=opt.plan)
    return _sum_q(x, axis, opt)


@register("MEAN", prepare=_prepare_sum_mean)
def mean(x: np.ndarray, axis: np.ndarray, *, opt: IntReduceParams) -> np.ndarray:
    """y = rounding_rshift(sum(x - zp_in) * m, s) + zp_out with m * 2**-s ~= in_scale / (n * out_scale)."""
    if opt.plain:
        return freduce.mean(x, axis, opt=opt.plan)
    return _sum_q(x, axis, opt)


@register("REDUCE_MAX", prepare=_prepare_minmax)
def reduce_max(x: np.ndarray, axis: np.ndarray, *, opt: IntReduceParams) -> np.ndarray:
    """y = Rescale(max of x over the axes)."""
    return opt.rescale(freduce.reduce_max(x, axis, opt=opt.plan))


@register("REDUCE_MIN", prepare=_prepare_minmax)
def reduce_min(x: np.ndarray, axis: np.ndarray, *, opt: IntReduceParams) -> np.ndarray:
    """y = Rescale(min of x over the axes)."""
    return opt.rescale(freduce.reduce_min(x, axis, opt=opt.plan))


# ------------------------------------------------------------------------------------ product
def _normalize(m: float, e: int) -> tuple[float, int]:
    f, de = math.frexp(m)
    return f, e + de


def power_mantissa(scale: float, n: int) -> tuple[float, int]:
    """``scale**n = mant * 2**exp`` with mant in [0.5, 1), by squaring with renormalization."""
    base = math.frexp(scale)
    acc = (1.0, 0)
    while n:
        if n & 1:
            acc = _normalize(acc[0] * base[0], acc[1] + base[1])
        base = _normalize(base[0] * base[0], 2 * base[1])
        n >>= 1
    return _normalize(*acc)


def prod_multiplier(in_scale: float, out_scale: float, n: int) -> tuple[int, int]:
    """(multiplier, shift): ``in_scale**n / out_scale ~= multiplier * 2**-shift``, 31-bit multiplier."""
    pm, pe = power_mantissa(in_scale, n)
    om, oe = math.frexp(out_scale)
    mant, exp = _normalize(pm / om, pe - oe)
    mult = round(math.ldexp(mant, PROD_BITS))
    if mult == 1 << PROD_BITS:
        mult, exp = mult >> 1, exp + 1
    return int(mult), PROD_BITS - exp


def _prepare_prod(ctx: OpContext) -> IntReduceParams:
    plan = freduce._prepare_reduce(ctx)
    x, y, plain = _check_data(ctx)
    if plain:
        return IntReduceParams(plan, True, np.dtype(y.dtype))
    pin = per_tensor_qparams(ctx, x, "input")
    pout = per_tensor_qparams(ctx, y, "output")
    if pin.dtype.itemsize > 2 or pout.dtype.itemsize > 4:
        raise refuse(ctx, f"REDUCE_PROD supports 8/16-bit quantized inputs and outputs up to 32 bits, "
                          f"got {pin.dtype.name} -> {pout.dtype.name}")
    n = _count(ctx, plan)
    m, s = prod_multiplier(float(pin.scale), float(pout.scale), n)
    return IntReduceParams(plan, False, pout.dtype, None, int(pin.zero_point), np.asarray(m, I64),
                           int(s), int(pout.zero_point))


def block_float_product(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, E) with ``P * 2**E ~= prod(d, axis=-1)``, |P| <= 2**31, for int64 ``d`` with |d| <= 2**16.

    After every factor, P is rounded (rounding_rshift) to at most PROD_BITS significant bits.
    """
    p = np.ones(d.shape[:-1], I64)
    e = np.zeros(d.shape[:-1], I64)
    for i in range(d.shape[-1]):
        p = p * d[..., i]
        k = np.maximum(bit_length(p) - PROD_BITS, 0)
        p = rounding_rshift(p, k)
        e = e + k
    return p, e


def scale_block_float(p: np.ndarray, e: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """``round(p * 2**e * multiplier * 2**-shift)`` (half up) in int64; magnitudes >= 2**31 may be
    replaced by +-2**40 (callers saturate to at most 32 bits)."""
    v = p * I64(multiplier)  # |p| <= 2**31, multiplier < 2**31
    t = I64(shift) - e
    right = rounding_rshift(v, np.clip(t, 0, 63))
    left = np.maximum(-t, 0)
    big = (left >= 32) | (np.abs(v) >= 2 ** 31)
    shifted = np.where(big, 0, v) << np.minimum(left, 31)
    left_v = np.where(big, np.sign(v) * (I64(1) << I64(40)), shifted)
    return np.where(t >= 0, right, left_v)


@register("REDUCE_PROD", prepare=_prepare_prod)
def reduce_prod(x: np.ndarray, axis: np.ndarray, *, opt: IntReduceParams) -> np.ndarray:
    """y = saturate(round(prod(x - zp_in) * in_scale**n / out_scale) + zp_out), block-float product."""
    if opt.plain:
        return freduce.reduce_prod(x, axis, opt=opt.plan)
    plan = _run_plan(x, axis, opt.plan)
    kept = [a for a in range(x.ndim) if a not in plan.axes]
    n = int(np.prod([x.shape[a] for a in plan.axes], dtype=np.int64))
    d = (x.astype(I64) - opt.in_zero_point).transpose(kept + list(plan.axes)).reshape(-1, n)
    p, e = block_float_product(d)
    y = scale_block_float(p, e, int(opt.multiplier), opt.shift)
    return saturate(y + opt.out_zero_point, opt.out_dtype).reshape(plan.out_shape)


# ------------------------------------------------------------------------------ arg max / top k
def _prepare_arg(ctx: OpContext) -> freduce.ArgParams:
    x = ctx.inputs[0] if ctx.inputs else None
    if x is not None:
        if np.dtype(x.dtype).kind not in "iub":
            raise refuse(ctx, f"input {x.name!r} is {np.dtype(x.dtype).name}; integer kernels take "
                              f"integer tensors")
        if is_quantized(x):
            per_tensor_qparams(ctx, x, "input")  # one positive scale: order of q = order of reals
    return freduce._prepare_arg(ctx)


register("ARG_MAX", prepare=_prepare_arg)(freduce.arg_max)
register("ARG_MIN", prepare=_prepare_arg)(freduce.arg_min)


@dataclass(frozen=True)
class TopKParams:
    inner: freduce.TopKParams
    rescale: Rescale


def _prepare_topk(ctx: OpContext) -> TopKParams:
    inner = freduce._prepare_topk(ctx)
    if len(ctx.outputs) != 2:
        raise ctx.error(f"has {len(ctx.outputs)} outputs, expected 2 (values, indices)")
    return TopKParams(inner, data_rescale(ctx, ctx.inputs[0], ctx.outputs[0], "input", "values"))


@register("TOPK_V2", prepare=_prepare_topk)
def topk_v2(x: np.ndarray, k: np.ndarray, *, opt: TopKParams) -> tuple[np.ndarray, np.ndarray]:
    """(Rescale(values), indices) of the k largest integers along the last axis (exact order)."""
    values, indices = freduce.topk_v2(x, k, opt=opt.inner)
    return opt.rescale(values), indices
