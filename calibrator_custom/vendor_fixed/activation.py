"""PRELU as the vendor fixed simulator computes it.

Established (docs/vendor_fixed_point.md, "PRELU"): INT16 input (zero point 0), alpha stored as
INT16 codes alpha_q = round(alpha * 2**s) (no scale; s = 14 - floor(log2 max|alpha|), a 15-bit
code, see :func:`alpha_shift`), UINT8 output. With m = in_scale / out_scale, N = 14 - floor(log2 m),
M = round(m * 2**N):

    t = x                                  for x >= 0
    t = (x * alpha_q + 2**(s-1)) >> s      for x < 0
    q = clip(((t * M) + 2**(N-1)) >> N + out_zero_point, 0, 255)

(bit-exact on 1536 codes; a single rounding of x * alpha_q * M misses one). The vendor fuses PRELU
into a conv before it; unfused it is seen after a CONCATENATION. RELU/RELU6 are clamps inside the
conv (conv.activation_clamp).
"""
from __future__ import annotations

import math

import numpy as np

from .registry import register
from .rounding import shift_round_half_up

_LIMITS = {np.dtype(np.int16): (-32767, 32767), np.dtype(np.uint8): (0, 255)}


def alpha_shift(alpha_max_abs: float) -> int:
    """s = 14 - floor(log2 max|alpha|): the shift of the stored alpha codes (alpha tensor's quantization max)."""
    return 14 - math.floor(math.log2(float(alpha_max_abs)))


@register("PRELU")
def prelu(x_code, alpha_code, alpha_shift_bits, in_scale, out_scale, out_zero_point=0, out_dtype=np.uint8):
    """q = sat(((x >= 0 ? x : (x*alpha_q + 2**(s-1)) >> s) * M + 2**(N-1)) >> N + zp), M/N the 15-bit in/out multiplier."""
    m = float(in_scale) / float(out_scale)
    n = 14 - math.floor(math.log2(m))
    mult = int(round(m * 2.0 ** n))
    x = np.asarray(x_code, np.int64)
    t = np.where(x >= 0, x, shift_round_half_up(x * np.asarray(alpha_code, np.int64), int(alpha_shift_bits)))
    dt = np.dtype(out_dtype)
    lo, hi = _LIMITS[dt]
    return np.clip(shift_round_half_up(t * mult, n) + int(out_zero_point), lo, hi).astype(dt)
