"""Integer kernels of the resize family (NHWC): RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR.

RESIZE_BILINEAR: 
Prepare takes the float kernel's per-axis source rows/columns ``lo, hi`` and float32 fractions ``f``
(``ops/resize.py``: align_corners, half_pixel_centers and the border clamps included; the output size
is the constant size input or the model's static output shape) and rounds the weights to Q21:
``w_hi = rint(f * 2**21)``, ``w_lo = 2**21 - w_hi`` (so each axis's weights sum to exactly 1, also
at the borders where f < 0). The kernel interpolates ``d = q - zp_in`` exactly in int64, rows then
columns: ``acc = sum wy * wx * d`` (|acc| < 2**60, checked in prepare), then rounds twice:
``v = rounding_rshift(acc, 2*21 - 8)`` (keeps 8 fractional bits, error <= 2**-9 input LSB) and
``q = saturate(rounding_rshift(v * m, s + 8) + zp_out)`` with ``m * 2**-s ~= in_scale / out_scale``
(31 bits).

Bound vs the float op, in output LSBs, with ``r = in_scale / out_scale`` and ``R`` the largest
difference of input integers in a 2x2 neighbourhood (<= 65535):
``0.5 + r * (3 * 2**-22 * R + 2**-9) + 2**-31 relative`` (weight rounding: each Q21 weight is within
2**-22 of the float weight, and each axis's weights sum to at most 2 in magnitude). For 16-bit data
and r <= 1 that is < 0.55 LSB; when ``r`` is large the weight term grows as ``r * R * 2**-20``.

RESIZE_NEAREST_NEIGHBOR: the float kernel's source indices (same coordinate rules, align_corners
and half_pixel_centers) are computed in prepare for the model's static output size; the kernel
gathers and Rescales.
Error: that of the Rescale (as for the data-movement ops of ``shape.py``: exact when the
quantizations match).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ops import resize as fresize
from ...ops.registry import OpContext
from ..fixedpoint import Rescale, multiplier_bits, quantize_multiplier, requantize, rounding_rshift
from ..registry import register
from ._common import data_rescale, per_tensor_qparams, static_resize_size

I64 = np.int64

#: fractional bits of the interpolation weights
WEIGHT_BITS = 21
#: fractional bits kept between the interpolation and the requantization
KEEP_BITS = 8


@dataclass(frozen=True)
class AxisWeights:
    """One axis: out[i] = in[lo[i]] * w_lo[i] + in[hi[i]] * w_hi[i], weights in Q(WEIGHT_BITS)."""

    lo: np.ndarray
    hi: np.ndarray
    w_lo: np.ndarray
    w_hi: np.ndarray

    @property
    def abs_sum(self) -> int:
        """Largest |w_lo| + |w_hi| over the axis (Q(WEIGHT_BITS))."""
        return int(np.max(np.abs(self.w_lo) + np.abs(self.w_hi))) if self.lo.size else 0


def axis_weights(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> AxisWeights:
    """The float kernel's lo/hi/fraction along one axis, with the fraction rounded to Q(WEIGHT_BITS)."""
    lo, hi, frac = fresize._bilinear_axis(in_size, out_size, align_corners, half_pixel_centers)
    one = 1 << WEIGHT_BITS
    w_hi = np.rint(frac.astype(np.float64) * one).astype(I64)
    return AxisWeights(np.array(lo, I64), np.array(hi, I64), one - w_hi, w_hi)


@dataclass(frozen=True)
class BilinearParams:
    rows: AxisWeights
    cols: AxisWeights
    in_zero_point: int
    multiplier: np.ndarray
    shift: int
    out_zero_point: int
    out_dtype: np.dtype


def _prepare_bilinear(ctx: OpContext) -> BilinearParams:
    p = fresize._prepare_resize(ctx)
    out_h, out_w = static_resize_size(ctx, p)
    x, y = ctx.inputs[0], ctx.outputs[0]
    data_rescale(ctx, x, y)  # integer kinds, per-tensor quantization
    pin = per_tensor_qparams(ctx, x, "input")
    pout = per_tensor_qparams(ctx, y, "output")
    _, h, w, _ = x.shape
    rows = axis_weights(h, out_h, p.align_corners, p.half_pixel_centers)
    cols = axis_weights(w, out_w, p.align_corners, p.half_pixel_centers)
    zin = int(pin.zero_point)
    max_abs = max(pin.qmax - zin, zin - pin.qmin)
    if max_abs * rows.abs_sum * cols.abs_sum >= 2 ** 62:
        raise ctx.error("bilinear accumulator bound exceeds int64 (unexpected interpolation weights)")
    v_bound = (max_abs * rows.abs_sum * cols.abs_sum >> (2 * WEIGHT_BITS - KEEP_BITS)) + 1
    m, s = quantize_multiplier(float(pin.scale) / float(pout.scale), multiplier_bits(v_bound))
    return BilinearParams(rows, cols, zin, m, int(s) + KEEP_BITS, int(pout.zero_point), pout.dtype)


def _interp(a: np.ndarray, axis: int, wts: AxisWeights) -> np.ndarray:
    shape = [1] * a.ndim
    shape[axis] = wts.lo.size
    return (np.take(a, wts.lo, axis=axis) * wts.w_lo.reshape(shape)
            + np.take(a, wts.hi, axis=axis) * wts.w_hi.reshape(shape))


@register("RESIZE_BILINEAR", prepare=_prepare_bilinear)
def resize_bilinear(x: np.ndarray, size: np.ndarray, *, opt: BilinearParams) -> np.ndarray:
    """y = requantize of the exact Q42 bilinear sum of (x - zp_in), rounded via 8 kept fraction bits."""
    d = x.astype(I64) - opt.in_zero_point
    acc = _interp(_interp(d, 1, opt.rows), 2, opt.cols)
    v = rounding_rshift(acc, 2 * WEIGHT_BITS - KEEP_BITS)
    return requantize(v, opt.multiplier, opt.shift, opt.out_zero_point, opt.out_dtype)


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
