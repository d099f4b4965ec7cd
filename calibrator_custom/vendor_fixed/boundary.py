"""The input boundary: raw uint8 pixels -> the codes the first op of a vendor fixed model computes on.

The vendor fixed model takes raw pixels (``input_formats`` layout, mean/std not applied by the user).
The fixed.sim stores the transform itself (SubGraph slot 10: a 3x3 int16 matrix and 3 offsets);
:func:`stored_transform_codes` applies it and is exact. :func:`input_codes` is the earlier
approximation from mean/std alone.
Observed: the first op's dump shows the raw pixels, yet its arithmetic runs on codes of the input
tensor's own quantization (scale and zero point from the calibrated range, not from mean/std), which
the vendor derives from ``(pixel - mean_c) / std`` inside the op. The vendor's exact rounding of that
step is not established: :func:`input_codes` is within a measured bound of it (see
``docs/vendor_fixed_point.md``, "Input boundary").
"""
from __future__ import annotations

import numpy as np

from .registry import register

#: measured worst difference of :func:`input_codes` from the vendor's codes (uint8 code units)
INPUT_CODES_MAX_ERROR = 1


@register("INPUT")
def input_codes(pixels: np.ndarray, mean: np.ndarray, std: np.ndarray, scale: float,
                zero_point: int) -> np.ndarray:
    """q = clip(floor((p - mean_c) / std_c / scale + zero_point + 1/2), 0, 255) as uint8 (float64; within INPUT_CODES_MAX_ERROR of the vendor)."""
    p = np.asarray(pixels, dtype=np.float64)
    v = (p - np.asarray(mean, np.float64)) / np.asarray(std, np.float64) / float(scale) + float(zero_point)
    return np.clip(np.floor(v + 0.5), 0, 255).astype(np.uint8)


def stored_transform_codes(pixels: np.ndarray, matrix: np.ndarray, offset_code: np.ndarray) -> np.ndarray:
    """q_c = clip(offset_c + ((sum_j A[c, j] * p_j + 512) >> 10), 0, 255) as uint8: the pixel transform
    stored in the vendor fixed.sim (A = round(1024 / (std * scale)) on the diagonal; exact)."""
    p = np.asarray(pixels, np.int64)
    a = np.asarray(matrix, np.int64)
    v = p * a[0, 0] if p.shape[-1] != a.shape[1] else p @ a.T
    return np.clip(np.asarray(offset_code, np.int64) + ((v + 512) >> 10), 0, 255).astype(np.uint8)


def stored_transform_table(matrix: np.ndarray, offset_code: np.ndarray) -> np.ndarray | None:
    """[C, 256] uint8: the codes :func:`stored_transform_codes` gives each pixel value per channel, or None
    when the matrix mixes channels (off-diagonal entries). With a diagonal matrix channel c's code is a
    function of p_c alone, so the table (made by that function itself over 0..255) is exact."""
    a = np.asarray(matrix, np.int64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or np.count_nonzero(a - np.diag(np.diag(a))):
        return None
    c = a.shape[0]
    values = np.repeat(np.arange(256, dtype=np.uint8)[:, None], c, axis=1)
    return np.ascontiguousarray(stored_transform_codes(values, a, offset_code).T)


def apply_transform_table(pixels: np.ndarray, table: np.ndarray) -> np.ndarray | None:
    """The codes of uint8 ``pixels`` [..., C] through a :func:`stored_transform_table` (None for other inputs)."""
    p = np.asarray(pixels)
    if p.dtype != np.uint8 or p.ndim < 1 or p.shape[-1] != table.shape[0]:
        return None
    if (table == table[:1]).all():  # one table for every channel
        return np.take(table[0], p)
    out = np.empty(p.shape, np.uint8)
    for ch in range(table.shape[0]):
        np.take(table[ch], p[..., ch], out=out[..., ch])
    return out
