"""The two roundings to the nearest integer the package uses, for arrays and for Python scalars, and the
per-channel weight codes made with the first (``clipped_codes``, :class:`ChannelCodes`).

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


def clipped_codes(x: np.ndarray, scale, qmax: int) -> np.ndarray:
    """clip(round_half_away(x / scale), -qmax, qmax) (float result)."""
    return np.clip(round_half_away(x / scale), -qmax, qmax)


#: below this share of non-zero weights the codes are computed on the non-zero ones alone (a zero weight's
#: code is 0 at any scale): a depthwise stored as a diagonal CONV_2D is mostly zeros
SPARSE_CODES_BELOW = 0.25


class ChannelCodes:
    """``clip(round_half_away(w / scale[c]), -qmax, qmax)`` per channel ``c`` along ``axis`` of one weight
    tensor, for any number of scale vectors: mostly-zero weights (a depthwise stored as a diagonal CONV_2D)
    are computed on their non-zero entries alone, found once (a zero weight's code is 0 at any scale)."""

    def __init__(self, w: np.ndarray, axis: int, qmax: int) -> None:
        w = np.asarray(w, np.float64)
        self.shape, self.axis, self.qmax = w.shape, int(axis), int(qmax)
        self.sparse = bool(w.size) and np.count_nonzero(w) < SPARSE_CODES_BELOW * w.size
        if self.sparse:  # flat positions (one index array, not one per axis) and their channel along axis
            self.flat = np.flatnonzero(w)
            self.values = w.reshape(-1)[self.flat]
            inner = int(np.prod(w.shape[self.axis + 1:], dtype=np.int64))
            self.channel = (self.flat // inner) % w.shape[self.axis]
        else:
            self.w = w

    def _scales(self, scale) -> np.ndarray:
        return np.broadcast_to(np.asarray(scale, np.float64), (self.shape[self.axis],))

    def codes(self, scale) -> np.ndarray:
        """The codes, float64 in the weights' shape."""
        if self.sparse:
            q = np.zeros(int(np.prod(self.shape, dtype=np.int64)))
            q[self.flat] = clipped_codes(self.values, self._scales(scale)[self.channel], self.qmax)
            return q.reshape(self.shape)
        return np.moveaxis(clipped_codes(np.moveaxis(self.w, self.axis, -1), np.asarray(scale, np.float64), self.qmax),
                           -1, self.axis)

    def channel_sums(self, scale) -> np.ndarray:
        """Per channel along ``axis``: the sum of its codes (float64, exact: integers below 2**53)."""
        n = self.shape[self.axis]
        if self.sparse:
            q = clipped_codes(self.values, self._scales(scale)[self.channel], self.qmax)
            return np.bincount(self.channel, weights=q, minlength=n).astype(np.float64)
        return np.moveaxis(self.codes(scale), self.axis, -1).reshape(-1, n).sum(0)


def channel_codes(w: np.ndarray, axis: int, scale, qmax: int) -> np.ndarray:
    """``clip(round_half_away(w / scale[c]), -qmax, qmax)`` per channel ``c`` along ``axis``, float64 in the
    shape of ``w`` (:class:`ChannelCodes`)."""
    return ChannelCodes(w, axis, qmax).codes(scale)
