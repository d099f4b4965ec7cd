"""ADD / SUB / MUL of two quantized tensors as the vendor fixed simulator computes them.

Established (docs/vendor_fixed_point.md, "ADD, SUB, MUL"): the inputs are INT16 codes (zero point 0),
the output a UINT8 (or INT16) code. ADD/SUB: with m_i = s_i / s_out, N = 14 - floor(log2(max m_i))
and M_i = round(m_i * 2**N) (15-bit multipliers on a common shift),

    q = sat(((x1 * M1 +/- x2 * M2) + 2**(N-1)) >> N + out_zero_point)       (bit-exact)

MUL (bit-exact): m = s1 * s2 / s_out, N = 14 - floor(log2 m), M = round(m * 2**N), the shift split
N = k1 + k2 (stored in MulOptions; see :func:`mul_params`):

    p = (x1 * x2 + 2**(k1-1)) >> k1
    q = sat(((p * M) + 2**(k2-1)) >> k2 + out_zero_point)
"""
from __future__ import annotations

import math

import numpy as np

from .registry import register
from .rounding import shift_round_half_up

#: measured worst difference of :func:`mul` from the vendor's output codes (output LSB): exact
MUL_MAX_ERROR_LSB = 0

_LIMITS = {np.dtype(np.int16): (-32767, 32767), np.dtype(np.uint8): (0, 255)}


def _m15(m: float) -> tuple[int, int]:
    n = 14 - math.floor(math.log2(m))
    return int(round(m * 2.0 ** n)), n


def add_params(s1: float, s2: float, s_out: float) -> tuple[int, int, int]:
    """(M1, M2, N): 15-bit multipliers of s1/s_out and s2/s_out on the common shift of the larger."""
    m1, m2 = float(s1) / float(s_out), float(s2) / float(s_out)
    n = 14 - math.floor(math.log2(max(m1, m2)))
    return int(round(m1 * 2.0 ** n)), int(round(m2 * 2.0 ** n)), n


def _finish(v, out_zero_point, out_dtype):
    dt = np.dtype(out_dtype)
    lo, hi = _LIMITS[dt]
    return np.clip(v + int(out_zero_point), lo, hi).astype(dt)


def _max_abs(x: np.ndarray) -> int:
    """An upper bound of |x| from its dtype (16-bit or narrower), else from its values."""
    if x.dtype.itemsize <= 2 and x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        return max(abs(int(info.min)), int(info.max))
    return max(abs(int(x.min(initial=0))), abs(int(x.max(initial=0))))


def _addsub(x1, x2, s1, s2, s_out, out_zero_point, out_dtype, sign):
    m1, m2, n = add_params(s1, s2, s_out)
    x1, x2 = np.asarray(x1), np.asarray(x2)
    if n >= 1 and _max_abs(x1) * m1 + _max_abs(x2) * m2 + (1 << (n - 1)) + 255 < 2 ** 31:
        # int32 is exact: the bound above holds every intermediate
        dt = np.dtype(out_dtype)
        lo, hi = _LIMITS[dt]
        a = x1.astype(np.int32) * np.int32(m1)
        b = x2.astype(np.int32) * np.int32(m2)
        if sign > 0:
            a += b
        else:
            a -= b
        a += 1 << (n - 1)
        a >>= n
        a += int(out_zero_point)
        np.maximum(a, lo, out=a)
        np.minimum(a, hi, out=a)
        return a.astype(dt)
    a = np.asarray(x1, np.int64) * m1 + sign * np.asarray(x2, np.int64) * m2
    return _finish(shift_round_half_up(a, n), out_zero_point, out_dtype)


@register("ADD")
def add(x1, x2, s1, s2, s_out, out_zero_point=0, out_dtype=np.uint8):
    """q = sat(((x1*M1 + x2*M2) + 2**(N-1)) >> N + zp_out), (M1, M2, N) = add_params(s1, s2, s_out); broadcasting."""
    return _addsub(x1, x2, s1, s2, s_out, out_zero_point, out_dtype, 1)


@register("SUB")
def sub(x1, x2, s1, s2, s_out, out_zero_point=0, out_dtype=np.uint8):
    """q = sat(((x1*M1 - x2*M2) + 2**(N-1)) >> N + zp_out), (M1, M2, N) = add_params(s1, s2, s_out); broadcasting."""
    return _addsub(x1, x2, s1, s2, s_out, out_zero_point, out_dtype, -1)


def mul_params(s1: float, s2: float, s_out: float, stored: tuple | None = None) -> tuple[int, int, int]:
    """(k1, M, k2): the product's pre-shift, the 15-bit multiplier of s1*s2/s_out and the final shift.

    ``stored`` = the (k1, M, k2) of the fixed.sim (:func:`stored_mul_params`) is used as is. Without it:
    M = round(m * 2**N), N = 14 - floor(log2 m), k2 = 21 if N >= 36 else 20, k1 = N - k2 (the split of all
    six vendor files seen, N = 34 .. 39; not established beyond).
    """
    if stored is not None:
        return tuple(int(v) for v in stored)
    m, n = _m15(float(s1) * float(s2) / float(s_out))
    k2 = 21 if n >= 36 else 20
    return n - k2, m, k2


def stored_mul_params(options) -> tuple[int, int, int] | None:
    """(k1, M, k2) from a vendor MulOptions (``sgs_rescale``: two tables; k1 = the first's ``product_shift``,
    M and k2 = the second's ``multiplier`` and ``shift``), None when the options do not hold them."""
    entries = getattr(options, "sgs_rescale", None)
    try:
        first, second = (dict(e) for e in entries[:2])
        return int(first["product_shift"]), int(second["multiplier"]), int(second["shift"])
    except (TypeError, ValueError, KeyError):
        return None


@register("MUL")
def mul(x1, x2, s1, s2, s_out, out_zero_point=0, out_dtype=np.uint8, params=None):
    """q = sat((((x1*x2 + 2**(k1-1)) >> k1) * M + 2**(k2-1)) >> k2 + zp_out), (k1, M, k2) = params or mul_params(s1, s2, s_out)."""
    k1, m, k2 = mul_params(s1, s2, s_out, params)
    p = shift_round_half_up(np.asarray(x1, np.int64) * np.asarray(x2, np.int64), k1)
    return _finish(shift_round_half_up(p * m, k2), out_zero_point, out_dtype)
