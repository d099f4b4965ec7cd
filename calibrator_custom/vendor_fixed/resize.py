"""RESIZE_BILINEAR as the vendor fixed simulator computes it.

Established (docs/vendor_fixed_point.md, "RESIZE_BILINEAR"): same quantization in and out (INT16
seen). The vendor ignores half_pixel_centers (the engine passes False) and honours align_corners;
source coordinates are src = dst * step with step = in / out (align_corners: (in - 1) / (out - 1)).
Two arithmetics, chosen by the step:

- **Integer step** on both axes (out a multiple of in, or with align_corners out - 1 a multiple of
  in - 1; integer downscales): separable, W first, the fraction rounded per position to 15 bits,
  f = round(frac(src) * 2**15); t = (a * (2**15 - f) + b * f + 2**14) >> 15 along W, then the same
  along H on t. Exact.
- **Other steps**: one 2D interpolation. src = float32(dst) * float32(step), f = frac(src) in float32;
  the four corner weights in float32 in the expanded form (w11 = f_y f_x, w10 = f_y - w11,
  w01 = f_x - w11, w00 = 1 - f_x - f_y + w11) are rounded half up to 16 fractional bits, or to 15 at a
  position where one of them would not fit int16 (round(w * 2**16) > 32767);
  q = floor(sum(code * W) / 2**shift). Exact.
"""
from __future__ import annotations

import numpy as np

from .registry import register

#: measured worst difference from the vendor over every step tried (output LSB)
RESIZE_MAX_ERROR_LSB = 0


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


def _separable_half_up(x: np.ndarray, out_h: int, out_w: int, align_corners: bool) -> np.ndarray:
    ly, hy, fy = _taps_q15(out_h, x.shape[1], align_corners)
    lx, hx, fx = _taps_q15(out_w, x.shape[2], align_corners)
    fx = fx[None, None, :, None]
    fy = fy[None, :, None, None]
    t = (x[:, :, lx] * ((1 << 15) - fx) + x[:, :, hx] * fx + (1 << 14)) >> 15
    return (t[:, ly] * ((1 << 15) - fy) + t[:, hy] * fy + (1 << 14)) >> 15


def _taps_f32(out_size: int, in_size: int, align_corners: bool):
    """(lo, hi, f) with src = float32(dst) * float32(step) and f = frac(src) in float32 (not zeroed at the
    clamped edge: there both taps are the same pixel and their weights add)."""
    num, den = _step(out_size, in_size, align_corners)
    src = (np.arange(out_size, dtype=np.float32) * (np.float32(num) / np.float32(den))).astype(np.float32)
    base = np.floor(src)
    lo = np.minimum(base.astype(np.int64), in_size - 1)
    return lo, np.minimum(lo + 1, in_size - 1), (src - base).astype(np.float32)


def _corner_weights_f32(fy: np.ndarray, fx: np.ndarray) -> list[np.ndarray]:
    """The four corner weights in float32, in the expanded form: w11 = fy fx, w10 = fy - w11,
    w01 = fx - w11, w00 = ((1 - fx) - fy) + w11 (each operation rounded to float32)."""
    one = np.float32(1)
    w11 = (fy * fx).astype(np.float32)
    w10 = (fy - w11).astype(np.float32)
    w01 = (fx - w11).astype(np.float32)
    w00 = (((one - fx).astype(np.float32) - fy).astype(np.float32) + w11).astype(np.float32)
    return [w00, w01, w10, w11]


def _bilinear_2d(x: np.ndarray, out_h: int, out_w: int, align_corners: bool) -> np.ndarray:
    """One 2D interpolation: the float32 corner weights rounded half up to 16 fractional bits, or to 15
    where one of the four would not fit int16 (round(w * 2**16) > 32767); the weighted code sum floored."""
    ly, hy, fy = _taps_f32(out_h, x.shape[1], align_corners)
    lx, hx, fx = _taps_f32(out_w, x.shape[2], align_corners)
    weights = [w.astype(np.float64) for w in _corner_weights_f32(fy[None, :, None, None], fx[None, None, :, None])]
    taps = [(ly, lx), (ly, hx), (hy, lx), (hy, hx)]
    widest = np.maximum.reduce([np.floor(w * 65536.0 + 0.5) for w in weights])
    shift = np.where(widest <= 32767, 16, 15).astype(np.int64)
    acc = 0
    for (rows, cols), w in zip(taps, weights):
        acc = acc + x[:, rows][:, :, cols] * np.floor(w * np.exp2(shift) + 0.5).astype(np.int64)
    return acc >> shift


@register("RESIZE_BILINEAR")
def resize_bilinear(x_code, size_hw, align_corners=False, half_pixel_centers=False):
    """Integer steps: the separable W-then-H interpolation with 15-bit fractions, each pass rounded half
    up; other steps: the floored 2D interpolation with 16- or 15-bit corner weights from float32
    coordinates, in float32 (exact on every step measured).
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
        q = _bilinear_2d(xi, out_h, out_w, align_corners)
    return np.clip(q, info.min, info.max).astype(x.dtype)
