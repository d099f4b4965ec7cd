"""The two roundings to the nearest integer the package uses, for arrays and for Python scalars.

* half away from zero (TfLiteRound, the model's QUANTIZE, weight and bias quantization):
  ``round_half_away(x) = sign(x) * floor(|x| + 1/2)``;
* half up (toward +inf; the rounding of ``rounding_rshift``, used for values quantized at prepare
  time and for pixels): ``round_half_up(x) = floor(x + 1/2)``.

They differ only on negative exact halves (-0.5 -> -1 away, 0 up). The array forms return floats
(the caller clips and casts); the ``*_int`` forms take and return Python numbers.
"""
from __future__ import annotations

import math

import numpy as np


def round_half_away(x):
    """sign(x) * floor(|x| + 1/2), elementwise (float result; an array in one buffer, the same bits)."""
    a = np.abs(x) + 0.5
    if not isinstance(a, np.ndarray):
        return np.sign(x) * np.floor(a)
    np.floor(a, out=a)
    np.negative(a, out=a, where=np.less(x, 0))  # -0.0 for -1/2 < x < 0, as sign(x) * 0.0; +0.0 for x = -0.0
    return a


def round_half_up(x):
    """floor(x + 1/2), elementwise (float result)."""
    a = x + 0.5
    if not isinstance(a, np.ndarray):
        return np.floor(a)
    return np.floor(a, out=a)


def round_half_away_int(v: float) -> int:
    """TfLiteRound of a scalar: round to nearest, halves away from zero."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def round_half_up_int(v: float) -> int:
    """floor(v + 1/2) of a scalar."""
    return int(math.floor(v + 0.5))
