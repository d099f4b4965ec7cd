"""Integer fixed-point helpers shared by every integer kernel of the fixed simulator.

The contract (docs/fixed_point.md):

* ``quantize_multiplier(real, bits)`` writes a positive real as ``multiplier * 2**-shift`` with
  ``2**(bits-1) <= multiplier < 2**bits`` (``multiplier = round_half_even(frac * 2**bits)`` of the
  float64 mantissa; ``real == 0`` gives ``(0, 0)``).
* ``rounding_rshift(x, s)`` = ``floor(x / 2**s + 1/2)`` (round half up) for ``s >= 1``, ``x`` for
  ``s == 0`` and ``x * 2**-s`` for ``s < 0``.
* ``requantize(acc, m, s, zp, dtype)`` = ``saturate(rounding_rshift(acc * m, s) + zp, dtype)``.
  Callers keep ``|acc| * m < 2**63``: ``multiplier_bits(acc_bound)`` gives the widest multiplier
  that does (at most 31 bits).

Only ``quantize_multiplier`` and :class:`Rescale` construction touch floats; they run in a prepare
step. Everything that runs per inference takes and returns integer arrays.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

I64 = np.int64

#: dtype name -> (min, max) of the integer types the fixed model uses
QRANGE = {
    "UINT8": (0, 255), "INT8": (-128, 127), "INT16": (-32768, 32767),
    "INT32": (-2**31, 2**31 - 1), "INT64": (-2**63, 2**63 - 1),
}
NP_QDTYPES = {"UINT8": np.uint8, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64}


def qrange(dtype) -> tuple[int, int]:
    """(min, max) of an integer numpy dtype."""
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def quantize_multiplier(real, bits: int = 31) -> tuple[np.ndarray, np.ndarray]:
    """``real ~= multiplier * 2**-shift`` elementwise, ``multiplier`` a ``bits``-bit integer (int64 arrays)."""
    if not 1 <= bits <= 62:
        raise ValueError(f"multiplier bits must be in 1..62, got {bits}")
    r = np.asarray(real, dtype=np.float64)
    if np.any(r < 0) or not np.all(np.isfinite(r)):
        raise ValueError("quantize_multiplier needs finite non-negative reals")
    frac, exp = np.frexp(r)  # r = frac * 2**exp, 0.5 <= frac < 1 (frac = 0 for r = 0)
    mult = np.rint(np.ldexp(frac, bits)).astype(I64)
    exp = exp.astype(I64)
    carry = mult == (1 << bits)
    mult = np.where(carry, mult >> 1, mult)
    exp = np.where(carry, exp + 1, exp)
    shift = np.where(mult == 0, 0, bits - exp).astype(I64)
    # keep shifts within int64: a tiny real loses low multiplier bits instead
    over = np.maximum(shift - 62, 0)
    mult = np.where(over > 0, (mult + np.where(over > 0, I64(1) << np.maximum(over - 1, 0), 0)) >> over, mult)
    shift = np.minimum(shift, 62)
    return mult, shift


def multiplier_bits(acc_bound: int) -> int:
    """Widest multiplier (<= 31 bits) such that ``acc_bound * 2**bits < 2**62``."""
    acc_bound = int(max(1, acc_bound))
    return int(max(1, min(31, 62 - acc_bound.bit_length())))


def rounding_rshift(x: np.ndarray, shift) -> np.ndarray:
    """``floor(x / 2**shift + 1/2)`` for shift >= 1, ``x << -shift`` for shift <= 0 (int64, elementwise)."""
    x = np.asarray(x, dtype=I64)
    s = np.asarray(shift, dtype=I64)
    if s.ndim == 0:
        s0 = int(s)
        if s0 > 0:
            return (x + (I64(1) << I64(s0 - 1))) >> I64(s0)
        return x << I64(-s0)
    pos = np.maximum(s, 0)
    half = np.where(pos > 0, I64(1) << np.maximum(pos - 1, 0), 0)
    return np.where(s > 0, (x + half) >> pos, x << np.maximum(-s, 0))


def saturate(x: np.ndarray, dtype) -> np.ndarray:
    """Clip ``x`` to the range of the integer ``dtype`` and cast."""
    lo, hi = qrange(dtype)
    return np.clip(x, lo, hi).astype(dtype)


def requantize(acc: np.ndarray, multiplier, shift, zero_point, dtype) -> np.ndarray:
    """``saturate(rounding_rshift(acc * multiplier, shift) + zero_point, dtype)``; per-channel along the last axis."""
    y = rounding_rshift(np.asarray(acc, dtype=I64) * np.asarray(multiplier, dtype=I64), shift)
    return saturate(y + np.asarray(zero_point, dtype=I64), dtype)


def rounding_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``round(num / den)`` with halves away from zero, for int64 arrays and den != 0 (elementwise)."""
    num = np.asarray(num, dtype=I64)
    den = np.asarray(den, dtype=I64)
    neg = (num < 0) != (den < 0)
    q = (np.abs(num) + np.abs(den) // 2) // np.abs(den)
    return np.where(neg, -q, q)


def isqrt(n: np.ndarray) -> np.ndarray:
    """``floor(sqrt(n))`` of non-negative int64 values, by integer Newton iteration (elementwise)."""
    n = np.asarray(n, dtype=I64)
    if np.any(n < 0):
        raise ValueError("isqrt of a negative number")
    # start above the root: 2**ceil(bits/2)
    bits = np.zeros(n.shape, dtype=I64)
    m = n.copy()
    for step in (32, 16, 8, 4, 2, 1):
        big = m >= (I64(1) << I64(step))
        bits = np.where(big, bits + step, bits)
        m = np.where(big, m >> I64(step), m)
    x = np.where(n > 0, I64(1) << ((bits + 2) // 2), 0)
    while True:
        y = np.where(x > 0, (x + n // np.maximum(x, 1)) >> 1, 0)
        done = y >= x
        if np.all(done):
            return x
        x = np.where(done, x, y)


@dataclass(frozen=True)
class Rescale:
    """An integer map between two quantizations: ``q_out = saturate(rounding_rshift((q_in - zp_in) * m, s) + zp_out)``."""

    multiplier: np.ndarray  # int64, scalar or per channel (last axis)
    shift: np.ndarray
    in_zero_point: np.ndarray
    out_zero_point: np.ndarray
    out_dtype: np.dtype
    identity: bool = False

    @classmethod
    def between(cls, in_scale, in_zero_point, out_scale, out_zero_point, in_dtype, out_dtype) -> "Rescale":
        """The rescale from (in_scale, in_zp) to (out_scale, out_zp); ``in_dtype`` bounds the product width."""
        in_scale = np.asarray(in_scale, np.float64)
        out_scale = np.asarray(out_scale, np.float64)
        lo, hi = qrange(in_dtype)
        zin = np.asarray(in_zero_point, I64)
        bound = int(max(abs(hi - int(zin.min())), abs(lo - int(zin.max()))))
        m, s = quantize_multiplier(in_scale / out_scale, multiplier_bits(bound))
        zout = np.asarray(out_zero_point, I64)
        same = (np.array_equal(in_scale, out_scale) and np.array_equal(zin, zout)
                and np.dtype(in_dtype) == np.dtype(out_dtype))
        return cls(m, s, zin, zout, np.dtype(out_dtype), bool(same))

    def __call__(self, q: np.ndarray) -> np.ndarray:
        if self.identity:
            return q
        return requantize(np.asarray(q, I64) - self.in_zero_point, self.multiplier, self.shift,
                          self.out_zero_point, self.out_dtype)


def ceil_log2(n: int) -> int:
    """Smallest k with 2**k >= n (n >= 1)."""
    return max(0, math.ceil(math.log2(max(1, n))))
