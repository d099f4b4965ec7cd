"""RESIZE_BILINEAR as the vendor fixed simulator computes it.

Established (docs/vendor_fixed_point.md, "RESIZE_BILINEAR"): same quantization in and out (INT16
seen); separable: interpolate along W first and round half up to a code, then along H and round
half up again. Source coordinates as TFLite (align_corners=False, half_pixel_centers=False seen:
src = dst * in / out); exact on a 2x upscale (fractions 0 and 1/2). The vendor ignores
half_pixel_centers (a half-pixel 2x model gives the codes of src = dst * in / out; the engine passes
False) and honours align_corners. At other factors (12, 20 from 8; 13 x 19; align_corners 16 from 8,
24 from 9) the vendor's fixed-point fractions are not reproduced: within RESIZE_MAX_ERROR_LSB.
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


@register("RESIZE_BILINEAR")
def resize_bilinear(x_code, size_hw, align_corners=False, half_pixel_centers=False):
    """q = round_half_up_H(interp_H(round_half_up_W(interp_W(x)))) (separable, W first; codes keep the input quantization)."""
    x = np.asarray(x_code)
    t = _along(x.astype(np.float64), 2, int(size_hw[1]), align_corners, half_pixel_centers)
    t = _along(t, 1, int(size_hw[0]), align_corners, half_pixel_centers)
    info = np.iinfo(x.dtype)
    return np.clip(t, info.min, info.max).astype(x.dtype)
