"""Integer kernels for AVERAGE_POOL_2D and MAX_POOL_2D (NHWC).

Window geometry (SAME/VALID, SigmaStar's explicit CAFFE/ONNXINSIDE/ONNXOUTSIDE pads with the output
size taken from the model's output tensor) and the AVERAGE divisor (cells inside the input, or
inside the padded extent for CAFFE/ONNXOUTSIDE; an empty window divides by 1) are exactly those of
the float kernels (``ops/pool.py``, whose prepare and separable window walk are reused). Fused
activations are integer clamps in the output's domain (bounds ``round_half_up(r / scale) + zp``;
TANH and SIGN_BIT are no-ops like the float kernels).

* MAX_POOL_2D: the maximum of the integers over the window cells inside the input (monotone in
  the real value: scales are positive), then Rescale to the output and clamp. A window with no cell
  inside the input is -inf in float and gives the output's minimum here. Exact (0 LSB) when input
  and output quantizations are equal, else <= 0.5 LSB (+ the Rescale multiplier's relative error).
* AVERAGE_POOL_2D: ``sum(q - zp_in)`` over the window in int64, then one rounding:
  ``rounding_rshift(sum * m[oy, ox], s[oy, ox]) + zp_out`` with ``m * 2**-s ~= in_scale / (count[oy,
  ox] * out_scale)`` per distinct count (the multiplier is as wide as ``kh*kw*max|q - zp_in| * m <
  2**62`` allows, <= 31 bits), saturate, clamp. Bound: <= 0.5 LSB + 2**-bits * |y| (|y| the exact
  output in LSBs; bits >= 30 for windows up to 255x255 of 16-bit data, so < 2**-14 LSB for outputs of
  at most 16 bits).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ...ops import pool as fpool
from ...ops.registry import OpContext
from ..fixedpoint import Rescale, multiplier_bits, quantize_multiplier, requantize
from ..registry import register
from ._common import activation_bounds, data_rescale, float_view, per_tensor_qparams, refuse

I64 = np.int64


@dataclass(frozen=True)
class IntPoolParams:
    """Pool geometry (the float PoolParams with int64 dtype and no divisor) and the integer map."""

    geometry: fpool.PoolParams
    in_zero_point: int
    in_min: int
    act_lo: int
    act_hi: int
    out_dtype: np.dtype
    rescale: Rescale | None = None  # MAX
    has_empty: bool = False  # MAX: some window has no cell inside the input
    multiplier: np.ndarray | None = None  # AVERAGE: per (oy, ox, 1) or scalar
    shift: np.ndarray | None = None
    out_zero_point: int = 0


def _geometry(ctx: OpContext, average: bool) -> tuple[fpool.PoolParams, np.ndarray | None]:
    """The float kernel's geometry (int64 working dtype) and, for AVERAGE, the int64 divisor."""
    for what, t in (("input", ctx.inputs[0] if ctx.inputs else None), ("output", ctx.outputs[0])):
        if t is None or np.dtype(t.dtype).kind not in "iu":
            raise refuse(ctx, f"the integer pool needs a quantized integer {what}")
    fp = fpool._prepare_pool(float_view(ctx), average)
    divisor = None
    if average:
        divisor = np.asarray(fp.divisor).astype(I64)  # exact small integers stored as float
    geo = dataclasses.replace(fp, act="NONE", dtype=np.dtype(I64), divisor=None)
    return geo, divisor


def _empty_windows(g: fpool.PoolParams, h: int, w: int) -> bool:
    """Whether some window has no cell inside the input (possible with explicit pads only)."""
    rows = fpool._inside(g.out_h, g.sh, g.pad_t, g.kh, 0, h)
    cols = fpool._inside(g.out_w, g.sw, g.pad_l, g.kw, 0, w)
    return bool((rows == 0).any() or (cols == 0).any())


def _common(ctx: OpContext, average: bool):
    ctx.require_inputs(1)
    geo, divisor = _geometry(ctx, average)
    pin = per_tensor_qparams(ctx, ctx.inputs[0], "input")
    pout = per_tensor_qparams(ctx, ctx.outputs[0], "output")
    lo, hi = activation_bounds(ctx, pout)
    return geo, divisor, pin, pout, lo, hi


def _prepare_max(ctx: OpContext) -> IntPoolParams:
    geo, _, pin, pout, lo, hi = _common(ctx, average=False)
    _, h, w, _ = ctx.inputs[0].shape
    return IntPoolParams(geo, int(pin.zero_point), pin.qmin, lo, hi, pout.dtype,
                         rescale=data_rescale(ctx, ctx.inputs[0], ctx.outputs[0]),
                         has_empty=_empty_windows(geo, h, w))


def _prepare_avg(ctx: OpContext) -> IntPoolParams:
    geo, divisor, pin, pout, lo, hi = _common(ctx, average=True)
    zin = int(pin.zero_point)
    max_abs = max(pin.qmax - zin, zin - pin.qmin)
    bits = multiplier_bits(geo.kh * geo.kw * max_abs)
    real = float(pin.scale) / (divisor.astype(np.float64) * float(pout.scale))
    m, s = quantize_multiplier(real, bits)
    return IntPoolParams(geo, zin, pin.qmin, lo, hi, pout.dtype, multiplier=m, shift=s,
                         out_zero_point=int(pout.zero_point))


@register("MAX_POOL_2D", prepare=_prepare_max)
def max_pool_2d(x: np.ndarray, *, opt: IntPoolParams) -> np.ndarray:
    """y = clamp(Rescale(max of x over the window cells inside the input)); empty window -> min."""
    if not opt.has_empty:
        y = opt.rescale(fpool._pool_views(x, opt.geometry, opt.in_min, np.maximum))
    else:
        sentinel = opt.in_min - 1
        m = fpool._pool_views(x.astype(I64), opt.geometry, sentinel, np.maximum)
        empty = m == sentinel
        y = opt.rescale(np.where(empty, opt.in_min, m).astype(x.dtype))
        y = np.where(empty, np.iinfo(opt.out_dtype).min, y).astype(opt.out_dtype)
    return np.clip(y, opt.act_lo, opt.act_hi).astype(opt.out_dtype, copy=False)


@register("AVERAGE_POOL_2D", prepare=_prepare_avg)
def average_pool_2d(x: np.ndarray, *, opt: IntPoolParams) -> np.ndarray:
    """y = clamp(rounding_rshift(window sum of (x - zp_in) * m, s) + zp_out), m, s per count."""
    sums = fpool._pool_views(x.astype(I64) - opt.in_zero_point, opt.geometry, 0, np.add)
    y = requantize(sums, opt.multiplier, opt.shift, opt.out_zero_point, opt.out_dtype)
    return np.clip(y, opt.act_lo, opt.act_hi).astype(opt.out_dtype, copy=False)
