"""Table ops (LOGISTIC, TANH) as lookups over the int16 input domain, and SOFTMAX.

Established (docs/vendor_fixed_point.md, "LOGISTIC"): the vendor's LOGISTIC maps each INT16 input
code to one INT16 output code (scale 1/32767); the mapping is a pure function of the code, but it
is not round(sigmoid(x * in_scale) / out_scale): the vendor's own table (or interpolation) is not
reproduced. :func:`logistic_table` is within LOGISTIC_MAX_ERROR_LSB of it on every input code
observed; TANH (INT16 in, UINT8 out) likewise with :func:`tanh_table` within TANH_MAX_ERROR_LSB;
:func:`lookup` applies any table, e.g. one measured from the vendor exhaustively. SOFTMAX (INT16 in,
INT16 out) is written with scale 1/32767 whatever the output tensor's calibrated scale in the
fixed.sim; :func:`softmax` is within SOFTMAX_MAX_ERROR_LSB of it.
"""
from __future__ import annotations

import numpy as np

from .registry import register

#: measured worst difference of :func:`logistic_table` from the vendor's outputs (output LSB)
LOGISTIC_MAX_ERROR_LSB = 2

INT16_MIN = -32768


def lookup(x_code: np.ndarray, table: np.ndarray, domain_min: int = INT16_MIN) -> np.ndarray:
    """q = table[x - domain_min] (table covers the whole input domain, e.g. 65536 entries for int16)."""
    return np.asarray(table)[np.asarray(x_code, np.int64) - int(domain_min)]


def logistic_table(in_scale: float, out_scale: float) -> np.ndarray:
    """table[c + 32768] = clip(rint(sigmoid(c * in_scale) / out_scale), 0, 32767) for every int16 code c (int16)."""
    c = np.arange(-32768, 32768, dtype=np.float64)
    v = np.rint(1.0 / (1.0 + np.exp(-c * float(in_scale))) / float(out_scale))
    return np.clip(v, 0, 32767).astype(np.int16)


@register("LOGISTIC")
def logistic(x_code, in_scale, out_scale, table=None):
    """q = lookup(x, table or logistic_table(in_scale, out_scale)) (INT16 in and out; approximate without the vendor's table)."""
    return lookup(x_code, logistic_table(in_scale, out_scale) if table is None else table)


#: measured worst difference of :func:`tanh_table` from the vendor's outputs (output LSB)
TANH_MAX_ERROR_LSB = 1


def tanh_table(in_scale: float, out_scale: float, out_zero_point: int) -> np.ndarray:
    """table[c + 32768] = clip(rint(tanh(c * in_scale) / out_scale) + zp, 0, 255) for every int16 code c (uint8)."""
    c = np.arange(-32768, 32768, dtype=np.float64)
    v = np.rint(np.tanh(c * float(in_scale)) / float(out_scale)) + int(out_zero_point)
    return np.clip(v, 0, 255).astype(np.uint8)


@register("TANH")
def tanh(x_code, in_scale, out_scale, out_zero_point, table=None):
    """q = lookup(x, table or tanh_table(in_scale, out_scale, zp)) (INT16 in, UINT8 out; approximate without the vendor's table)."""
    return lookup(x_code, tanh_table(in_scale, out_scale, out_zero_point) if table is None else table)


#: measured worst difference of :func:`softmax` from the vendor's outputs (output LSB)
SOFTMAX_MAX_ERROR_LSB = 2


@register("SOFTMAX")
def softmax(x_code, in_scale, axis=-1):
    """q = rint(32767 * softmax(x * in_scale)) over axis (INT16 in, INT16 out with scale 1/32767; within SOFTMAX_MAX_ERROR_LSB)."""
    v = np.asarray(x_code, np.float64) * float(in_scale)
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return np.clip(np.rint(32767.0 * e / e.sum(axis=axis, keepdims=True)), 0, 32767).astype(np.int16)
