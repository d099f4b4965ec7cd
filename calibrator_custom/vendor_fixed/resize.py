"""RESIZE_BILINEAR as the vendor fixed simulator computes it.

Established (docs/vendor_fixed_point.md, "RESIZE_BILINEAR"): same quantization in and out (INT16
seen). The vendor ignores half_pixel_centers (the engine passes False) and honours align_corners;
source coordinates are src = dst * step with step = in / out (align_corners: (in - 1) / (out - 1)).

- **Integer step** (both axes: out a multiple of in, or with align_corners out - 1 a multiple of
  in - 1; 2x, 3x, 4x, 5x, mixed 2x/3x; integer downscales): exact. Separable, W first: the fraction
  rounded per position to 15 bits, f = round(frac(src) * 2**15); t = (a * (2**15 - f) + b * f +
  2**14) >> 15 along W, then the same along H on t.
- **Other steps** (1.5x, 2.5x, 0.75x, 13 x 19 from 8, align_corners 8 -> 16, ...): not established.
  The kernel floors one 2D interpolation (2**-16 units) whose corner weights are the 15-bit 1D
  weights on rows or columns with an integer source coordinate (exact there) and the float32
  products rounded to 16 bits elsewhere; within RESIZE_MAX_ERROR_LSB of the vendor (0% to 25% of
  the codes off, see the docs).
"""
from __future__ import annotations

import numpy as np

from .registry import register

#: measured worst difference from the vendor at non-integer steps (output LSB); exact at integer steps
RESIZE_MAX_ERROR_LSB = 2


def _step(out_size: int, in_size: int, align_corners: bool) -> tuple[int, int]:
    """The source step as a fraction (num, den): in / out, or (in - 1) / (out - 1) with align_corners."""
    if align_corners and out_size > 1:
        return in_size - 1, out_size - 1
    return in_size, out_size


def integer_step(out_size: int, in_size: int, align_corners: bool) -> bool:
    """True when every source coordinate is j / k for one integer k (upscale by k) or an integer."""
    num, den = _step(out_size, in_size, align_corners)
    return num == 0 or den % num == 0 or num % den == 0


def _taps_q15(out_size: int, in_size: int, align_corners: bool):
    """(lo, hi, f): source taps and the fraction rounded per position to 15 bits (0 where hi == lo)."""
    num, den = _step(out_size, in_size, align_corners)
    pos = np.arange(out_size, dtype=np.int64) * num
    lo = np.minimum(pos // den, in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    f = ((pos - lo * den) * (1 << 16) + den) // (2 * den)  # round(frac * 2**15), half up, exact
    return lo, hi, np.where(hi == lo, 0, f)


def _frac_f32(out_size: int, in_size: int, align_corners: bool) -> np.ndarray:
    """frac(dst * step) with the step and the product in float32 (the residual-path model)."""
    num, den = _step(out_size, in_size, align_corners)
    src = (np.arange(out_size, dtype=np.float32) * (np.float32(num) / np.float32(den))).astype(np.float32)
    return (src - np.floor(src)).astype(np.float64)


def _separable_half_up(x: np.ndarray, out_h: int, out_w: int, align_corners: bool) -> np.ndarray:
    ly, hy, fy = _taps_q15(out_h, x.shape[1], align_corners)
    lx, hx, fx = _taps_q15(out_w, x.shape[2], align_corners)
    fx = fx[None, None, :, None]
    fy = fy[None, :, None, None]
    t = (x[:, :, lx] * ((1 << 15) - fx) + x[:, :, hx] * fx + (1 << 14)) >> 15
    return (t[:, ly] * ((1 << 15) - fy) + t[:, hy] * fy + (1 << 14)) >> 15


def _weights_q16(out_size: int, in_size: int, align_corners: bool):
    """(lo, hi, 15-bit fraction, float fraction) along one axis for the residual path."""
    lo, hi, q = _taps_q15(out_size, in_size, align_corners)
    fr = np.where(hi == lo, 0.0, _frac_f32(out_size, in_size, align_corners))
    return lo, hi, q, fr


def _residual_2d(x: np.ndarray, out_h: int, out_w: int, align_corners: bool) -> np.ndarray:
    ly, hy, qy, ry = _weights_q16(out_h, x.shape[1], align_corners)
    lx, hx, qx, rx = _weights_q16(out_w, x.shape[2], align_corners)
    qy, ry = qy[None, :, None, None], ry[None, :, None, None]
    qx, rx = qx[None, None, :, None], rx[None, None, :, None]
    one_d = (qy == 0) | (qx == 0)
    acc = 0
    for rows, vy, wy in ((ly, (1 << 15) - qy, 1.0 - ry), (hy, qy, ry)):
        for cols, vx, wx in ((lx, (1 << 15) - qx, 1.0 - rx), (hx, qx, rx)):
            w = np.where(one_d, (vy * vx) >> 14, np.floor(wy * wx * 65536.0 + 0.5).astype(np.int64))
            acc = acc + x[:, rows][:, :, cols] * w
    return acc >> 16


@register("RESIZE_BILINEAR")
def resize_bilinear(x_code, size_hw, align_corners=False, half_pixel_centers=False):
    """Integer steps: the exact separable W-then-H interpolation with 15-bit fractions, each pass
    rounded half up; other steps: the floored 2D model (within RESIZE_MAX_ERROR_LSB).
    ``half_pixel_centers`` is accepted and ignored, as by the vendor."""
    x = np.asarray(x_code)
    if x.ndim != 4:
        raise ValueError(f"RESIZE_BILINEAR input must be NHWC (4-D), got shape {x.shape}")
    out_h, out_w = int(size_hw[0]), int(size_hw[1])
    info = np.iinfo(x.dtype)
    xi = x.astype(np.int64)
    if integer_step(out_h, x.shape[1], align_corners) and integer_step(out_w, x.shape[2], align_corners):
        q = _separable_half_up(xi, out_h, out_w, align_corners)
    else:
        q = _residual_2d(xi, out_h, out_w, align_corners)
    return np.clip(q, info.min, info.max).astype(x.dtype)
