"""RESIZE_BILINEAR as the vendor fixed simulator computes it.

Established (docs/vendor_fixed_point.md, "RESIZE_BILINEAR"): same quantization in and out (INT16
seen); separable: interpolate along W first and round half up to a code, then along H and round
half up again. Source coordinates as TFLite (align_corners=False, half_pixel_centers=False seen:
src = dst * in / out); exact on a 2x upscale (fractions 0 and 1/2). The vendor ignores
half_pixel_centers (a half-pixel 2x model gives the codes of src = dst * in / out; the engine passes
False) and honours align_corners. At other factors (12, 20 from 8; 13 x 19; align_corners 16 from 8,
24 from 9) the rows and columns whose source coordinate is an integer are exact with fractions
rounded per position to 15 bits and a floored result; the 2D combination is not established: the
one floored 2D interpolation with those fractions is within RESIZE_MAX_ERROR_LSB (5% to 14% of the
codes off by 1, a few by 2).
"""
from __future__ import annotations

import numpy as np

from .registry import register

#: measured worst difference from the vendor at factors other than 2 (output LSB); exact at 2x
RESIZE_MAX_ERROR_LSB = 2


def _coords(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool):
    if align_corners and out_size > 1:
        src = np.arange(out_size) * ((in_size - 1) / (out_size - 1))
    elif half_pixel_centers:
        src = np.maximum((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    else:
        src = np.arange(out_size) * (in_size / out_size)
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    return lo, hi, src - lo


def _along(a: np.ndarray, axis: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    lo, hi, frac = _coords(out_size, a.shape[axis], align_corners, half_pixel_centers)
    shape = [1] * a.ndim
    shape[axis] = out_size
    f = frac.reshape(shape)
    v = np.take(a, lo, axis=axis) * (1.0 - f) + np.take(a, hi, axis=axis) * f
    return np.floor(v + 0.5)


def _fractions_q15(out_size: int, in_size: int, align_corners: bool):
    """(lo, hi, f): source taps and the fraction rounded per position to 15 bits (f in [0, 2**15))."""
    r = (in_size - 1) / (out_size - 1) if align_corners and out_size > 1 else in_size / out_size
    pos = np.floor(np.arange(out_size) * r * 2.0 ** 15 + 0.5).astype(np.int64)
    lo = np.minimum(pos >> 15, in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    return lo, hi, np.where((pos >> 15) >= in_size - 1, 0, pos - (lo << 15))


def _halves_only(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> bool:
    _, _, frac = _coords(out_size, in_size, align_corners, half_pixel_centers)
    return bool(np.all((frac == 0) | (frac == 0.5)))


@register("RESIZE_BILINEAR")
def resize_bilinear(x_code, size_hw, align_corners=False, half_pixel_centers=False):
    """Fractions 0 and 1/2 only (2x): q = round_half_up_H(interp_H(round_half_up_W(interp_W(x)))) (exact); else the
    2D interpolation with per-position 15-bit fractions, floored once (within RESIZE_MAX_ERROR_LSB)."""
    x = np.asarray(x_code)
    out_h, out_w = int(size_hw[0]), int(size_hw[1])
    info = np.iinfo(x.dtype)
    if _halves_only(out_h, x.shape[1], align_corners, half_pixel_centers) and \
            _halves_only(out_w, x.shape[2], align_corners, half_pixel_centers):
        t = _along(x.astype(np.float64), 2, out_w, align_corners, half_pixel_centers)
        t = _along(t, 1, out_h, align_corners, half_pixel_centers)
        return np.clip(t, info.min, info.max).astype(x.dtype)
    xi = x.astype(np.int64)
    ly, hy, fy = _fractions_q15(out_h, x.shape[1], align_corners)
    lx, hx, fx = _fractions_q15(out_w, x.shape[2], align_corners)
    fx = fx[None, None, :, None]
    fy = fy[None, :, None, None]
    top = xi[:, ly][:, :, lx] * ((1 << 15) - fx) + xi[:, ly][:, :, hx] * fx
    bottom = xi[:, hy][:, :, lx] * ((1 << 15) - fx) + xi[:, hy][:, :, hx] * fx
    q = (top * ((1 << 15) - fy) + bottom * fy) >> 30
    return np.clip(q, info.min, info.max).astype(x.dtype)
