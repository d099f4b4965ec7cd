"""Table ops (LOGISTIC, TANH) as lookups over the int16 input domain, and SOFTMAX.

Established (docs/vendor_fixed_point.md, "LOGISTIC", "TANH"): the vendor's LOGISTIC maps each INT16
input code c to one INT16 output code (scale 1/32767), a single function of x = c * M * 2**(e - 14)
(the input scale as a 15-bit mantissa, :func:`vendor_input_reals`); for |x| >= 6 it is the line
floor(105.75 + 4x) / floor(32662.75 + 4x) (exact), inside a piecewise-linear approximation of the
sigmoid not reproduced: :func:`logistic_table` is within LOGISTIC_MAX_ERROR_LSB there. The INT16 TANH
is within TANH_INT16_MAX_ERROR_LSB of :func:`tanh_int16_table`; a UINT8 TANH is the INT16 one through
the 15-bit requantization :func:`requantize_int16` (exact), so :func:`tanh_table` is within
TANH_MAX_ERROR_LSB. :func:`lookup` applies any table, e.g. one measured from the vendor. SOFTMAX (INT16
in, INT16 out) is written with scale 1/32767 whatever the output tensor's calibrated scale in the
fixed.sim; :func:`softmax` is within SOFTMAX_MAX_ERROR_LSB of it.
"""
from __future__ import annotations

import math

import numpy as np

from .registry import register

#: measured worst difference of :func:`logistic_table` from the vendor's outputs (output LSB)
LOGISTIC_MAX_ERROR_LSB = 2

INT16_MIN = -32768

#: beyond |x| >= LOGISTIC_LINE_FROM the vendor's LOGISTIC is the line floor(LINE_OFFSET + 4 x) (codes of 1/32767)
LOGISTIC_LINE_FROM = 6.0
_LOGISTIC_LINE_OFFSET = {-1: 105.75, 1: 32662.75}
_LOGISTIC_LINE_SLOPE = 4.0


def lookup(x_code: np.ndarray, table: np.ndarray, domain_min: int = INT16_MIN) -> np.ndarray:
    """q = table[x - domain_min] (table covers the whole input domain, e.g. 65536 entries for int16)."""
    return np.asarray(table)[np.asarray(x_code, np.int64) - int(domain_min)]


def vendor_input_reals(x_code: np.ndarray, in_scale: float) -> np.ndarray:
    """x = c * M * 2**(e - 14): the input scale as a 15-bit mantissa M = floor(s / 2**e * 2**14 + 1/2), e = floor(log2 s)."""
    e = math.floor(math.log2(float(in_scale)))
    mantissa = math.floor(float(in_scale) / 2.0 ** e * 2.0 ** 14 + 0.5)
    return np.asarray(x_code, np.float64) * (mantissa * 2.0 ** (e - 14))


def logistic_table(in_scale: float, out_scale: float) -> np.ndarray:
    """table[c + 32768] = clip(rint(sigmoid(x) / out_scale)) for |x| < 6, clip(floor(105.75 + 4x)) below -6, clip(floor(32662.75 + 4x)) above 6 (x = vendor_input_reals(c, in_scale); int16)."""
    c = np.arange(-32768, 32768, dtype=np.float64)
    x = vendor_input_reals(c, in_scale)
    v = np.rint(1.0 / (1.0 + np.exp(-x)) / float(out_scale))
    line = np.floor(np.where(x < 0, _LOGISTIC_LINE_OFFSET[-1], _LOGISTIC_LINE_OFFSET[1]) + _LOGISTIC_LINE_SLOPE * x)
    v = np.where(np.abs(x) >= LOGISTIC_LINE_FROM, line, v)
    return np.clip(v, 0, 32767).astype(np.int16)


@register("LOGISTIC")
def logistic(x_code, in_scale, out_scale, table=None):
    """q = lookup(x, table or logistic_table(in_scale, out_scale)) (INT16 in and out; within LOGISTIC_MAX_ERROR_LSB without the vendor's table)."""
    return lookup(x_code, logistic_table(in_scale, out_scale) if table is None else table)


#: measured worst difference of :func:`tanh_int16_table` from the vendor's INT16 TANH (output LSB)
TANH_INT16_MAX_ERROR_LSB = 2
#: measured worst difference of :func:`tanh_table` (UINT8) from the vendor's outputs (output LSB)
TANH_MAX_ERROR_LSB = 1


def tanh_int16_table(in_scale: float, out_scale: float) -> np.ndarray:
    """table[c + 32768] = clip(rint(tanh(c * in_scale) / out_scale), -32767, 32767) for every int16 code c (int16)."""
    c = np.arange(-32768, 32768, dtype=np.float64)
    return np.clip(np.rint(np.tanh(c * float(in_scale)) / float(out_scale)), -32767, 32767).astype(np.int16)


def requantize_int16(t_code: np.ndarray, in_scale: float, out_scale: float, out_zero_point: int) -> np.ndarray:
    """q = clip(((t * M + 2**(N-1)) >> N) + zp, 0, 255), M = round(m * 2**N), N = 14 - floor(log2 m), m = in_scale / out_scale (uint8)."""
    m = float(in_scale) / float(out_scale)
    n = 14 - math.floor(math.log2(m))
    mult = int(round(m * 2.0 ** n))
    t = np.asarray(t_code, np.int64)
    return np.clip(((t * mult + (1 << (n - 1))) >> n) + int(out_zero_point), 0, 255).astype(np.uint8)


#: the INT16 scale the vendor's TANH computes in before a UINT8 output
TANH_INT16_SCALE = 1.0 / 32767


def tanh_table(in_scale: float, out_scale: float, out_zero_point: int) -> np.ndarray:
    """table[c + 32768] = requantize_int16(tanh_int16_table(in_scale, 1/32767), 1/32767, out_scale, zp): the INT16 TANH through a 15-bit requantization (uint8)."""
    return requantize_int16(tanh_int16_table(in_scale, TANH_INT16_SCALE), TANH_INT16_SCALE, out_scale, out_zero_point)


@register("TANH")
def tanh(x_code, in_scale, out_scale, out_zero_point, table=None):
    """q = lookup(x, table or tanh_table(in_scale, out_scale, zp)) (INT16 in, UINT8 out; within TANH_MAX_ERROR_LSB without the vendor's table)."""
    return lookup(x_code, tanh_table(in_scale, out_scale, out_zero_point) if table is None else table)


#: measured worst difference of :func:`softmax` from the vendor's outputs (output LSB)
SOFTMAX_MAX_ERROR_LSB = 2


@register("SOFTMAX")
def softmax(x_code, in_scale, axis=-1):
    """q = rint(32767 * softmax(x * in_scale)) over axis (INT16 in, INT16 out with scale 1/32767; within SOFTMAX_MAX_ERROR_LSB)."""
    v = np.asarray(x_code, np.float64) * float(in_scale)
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return np.clip(np.rint(32767.0 * e / e.sum(axis=axis, keepdims=True)), 0, 32767).astype(np.int16)
