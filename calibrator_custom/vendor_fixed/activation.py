"""PRELU as the vendor fixed simulator computes it.

Established (docs/vendor_fixed_point.md, "PRELU"): INT16 input (zero point 0), alpha stored as
INT16 codes alpha_q = round(alpha * 2**s) (no scale; s = 14 - floor(log2 max|alpha|), a 15-bit
code, see :func:`alpha_shift`), UINT8 output. With m = in_scale / out_scale, N = 14 - floor(log2 m),
M = round(m * 2**N):

    t = x                                  for x >= 0
    t = (x * alpha_q + 2**(s-1)) >> s      for x < 0
    q = clip(((t * M) + 2**(N-1)) >> N + out_zero_point, 0, 255)

(bit-exact on 1536 codes; a single rounding of x * alpha_q * M misses one). When the INT16 input's
range is wider below zero (|min| > max, F = |min| / max), the vendor stores alpha * F (the shift s
from max|alpha| * F), rescales x >= 0 by F (15-bit multiplier, 14 - floor(log2 F) bits), and requantizes both branches with the
multiplier of in_scale / F / out_scale (seen in the shared models; exact there). The vendor fuses PRELU
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


def _m15(m: float) -> tuple[int, int]:
    n = 14 - math.floor(math.log2(m))
    return int(round(m * 2.0 ** n)), n


def negative_ratio(in_min: float, in_max: float) -> float:
    """F = max(1, |min| / max) of an INT16 activation input's range (its scale is |min|/32767 when the
    range is wider below zero): the vendor then works on the scale max/32767 (see :func:`prelu`)."""
    return max(1.0, abs(float(in_min)) / float(in_max)) if float(in_max) > 0 else 1.0


@register("PRELU")
def prelu(x_code, alpha_code, alpha_shift_bits, in_scale, out_scale, out_zero_point=0, out_dtype=np.uint8,
          input_ratio: float = 1.0):
    """q = sat(((x >= 0 ? x' : (x*alpha_q + 2**(s-1)) >> s) * M + 2**(N-1)) >> N + zp), x' = x (F = 1) or x*F with F a 15-bit multiplier (F*2**(14-floor(log2 F))), (M, N) the 15-bit multiplier of in_scale / F / out_scale."""
    f = float(input_ratio)
    mult, n = _m15(float(in_scale) / f / float(out_scale))
    dt = np.dtype(out_dtype)
    lo, hi = _LIMITS[dt]
    alpha = np.asarray(alpha_code)
    x_in = np.asarray(x_code)
    f_shift = 14 - math.floor(math.log2(f))  # F as a 15-bit multiplier, like M
    f_mult = int(round(f * 2.0 ** f_shift))
    pos_max = 32768 if f == 1.0 else ((32768 * f_mult) >> f_shift) + 1
    alpha_max = int(np.abs(alpha).max(initial=0))
    neg_max = ((32768 * alpha_max) >> int(alpha_shift_bits)) + 1
    if n >= 1 and mult <= 32768 and f_mult <= 32768 and alpha_max <= 32767 \
            and max(pos_max, neg_max) * mult + (1 << n) < 2 ** 31 and x_in.dtype in (np.int16, np.uint8, np.int8):
        # int32 is exact here: |x * alpha_q|, |x * F_q| <= 2**30 and |t * M| < 2**31 (bounded above)
        x = x_in.astype(np.int32)
        if f != 1.0:
            pos = x * f_mult
            pos += 1 << (f_shift - 1)
            pos >>= f_shift
        else:
            pos = x
        if alpha.any():
            neg = x * alpha.astype(np.int32)
            neg += 1 << (int(alpha_shift_bits) - 1)
            neg >>= int(alpha_shift_bits)
            t = np.where(x >= 0, pos, neg)
        else:  # RELU: alpha 0
            t = np.maximum(pos, 0)
        t *= mult
        t += 1 << (n - 1)
        t >>= n
        t += int(out_zero_point)
        np.maximum(t, lo, out=t)
        np.minimum(t, hi, out=t)
        return t.astype(dt)
    x = np.asarray(x_code, np.int64)
    alpha = np.asarray(alpha_code, np.int64)
    neg = shift_round_half_up(x * alpha, int(alpha_shift_bits)) if alpha.any() else 0  # RELU: alpha 0
    pos = x if f == 1.0 else shift_round_half_up(x * f_mult, f_shift)
    q = shift_round_half_up(np.where(x >= 0, pos, neg) * mult, n)
    return np.clip(q + int(out_zero_point), lo, hi).astype(dt)
