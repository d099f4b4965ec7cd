"""Prepared int32 kernels of the engine's elementwise ops: the codes of the reference kernels bit for bit.

Each ``prepare_*`` takes one op's parameters (and its input dtypes from the model), folds every
constant (zero points, rounding offsets, the output zero point) into one additive term, proves from
the input dtypes' ranges that every int32 intermediate stays below 2**31, and returns a kernel, or
None when that bound does not hold (the engine then calls the reference kernel). The references,
and the tests holding these kernels to them on random and extreme codes:

- ADD / SUB: :func:`.elementwise.add` / :func:`.elementwise.sub` on zero-point-free inputs,
  ``q = sat(((x1 - z1) * M1 +- (x2 - z2) * M2 + 2**(N-1)) >> N + zp)``; here
  ``v = x1 * M1 +- x2 * M2 + C`` with ``C = -z1 * M1 -+ z2 * M2 + 2**(N-1) + zp * 2**N``
  (a floor shift, so the zero point can ride in C), then ``clip(v >> N)``.
- RELU / PRELU: :func:`.activation.prelu`, ``t = x' (x >= 0) or (x * alpha + 2**(s-1)) >> s``,
  ``q = sat((t * M + 2**(n-1)) >> n + zp)``; here ``t = P(max(x, 0)) + ((min(x, 0) * alpha + 2**(s-1)) >> s)``
  (each branch is 0 on the other side: ``2**(s-1) >> s = 0``), ``P`` the identity or the 15-bit
  rescale of the input ratio F, and the zero point folded as above.
- PAD of the trailing dimensions with the zero point: one allocation, one copy, one fill.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .elementwise import add_params

try:  # the clip ufunc itself: np.clip's Python wrapper costs more than the pass on small tensors
    from numpy._core.umath import clip as _clip_ufunc
except ImportError:  # numpy < 2
    try:
        from numpy.core.umath import clip as _clip_ufunc
    except ImportError:  # a numpy without the private module: the public wrapper, same results
        _clip_ufunc = np.clip

_LIMITS = {np.dtype(np.int16): (-32767, 32767), np.dtype(np.uint8): (0, 255)}
_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127), np.dtype(np.int16): (-32768, 32767)}
_I32 = 2 ** 31


def clip(a: np.ndarray, lo: int, hi: int, out: np.ndarray | None = None) -> np.ndarray:
    """np.clip(a, lo, hi, out=out) (minimum(maximum(a, lo), hi)) with the bounds in a's dtype; in place by default."""
    t = a.dtype.type
    return _clip_ufunc(a, t(lo), t(hi), out=a if out is None else out)


def _max_abs(dtype) -> int | None:
    r = _RANGES.get(np.dtype(dtype))
    return None if r is None else max(abs(r[0]), abs(r[1]))


def prepare_addsub(sign: int, x1_dtype, x2_dtype, shape1, shape2, z1: int, z2: int, s1: float, s2: float,
                   s_out: float, out_zero_point: int, out_dtype) -> Callable | None:
    """fn(x1, x2) -> the codes of elementwise.add (sign 1) / sub (sign -1) of (x1 - z1, x2 - z2), or None."""
    m1, m2, n = add_params(s1, s2, s_out)
    a1, a2, dt = _max_abs(x1_dtype), _max_abs(x2_dtype), np.dtype(out_dtype)
    if n < 1 or a1 is None or a2 is None or dt not in _LIMITS or tuple(shape1) != tuple(shape2):
        return None
    const = -int(z1) * m1 - sign * int(z2) * m2 + (1 << (n - 1)) + int(out_zero_point) * (1 << n)
    if a1 * m1 >= _I32 or a1 * m1 + a2 * m2 >= _I32 or a1 * m1 + a2 * m2 + abs(const) >= _I32:
        return None
    lo, hi = _LIMITS[dt]
    shape = tuple(int(d) for d in shape1)
    m1_, m2_, c_ = np.int32(m1), np.int32(m2), np.int32(const)
    ufunc = np.add if sign > 0 else np.subtract

    d1, d2 = np.dtype(x1_dtype), np.dtype(x2_dtype)

    def int32(x1, x2, clip_range=(lo, hi)):
        """The output codes as a new int32 array (clipped to clip_range, by default the output type's)."""
        if x1.shape != shape or x2.shape != shape or x1.dtype != d1 or x2.dtype != d2:
            return None
        a = np.multiply(x1, m1_, dtype=np.int32)
        b = np.multiply(x2, m2_, dtype=np.int32)
        ufunc(a, b, out=a)
        a += c_
        a >>= n
        return clip(a, *clip_range)

    def fn(x1, x2):
        a = int32(x1, x2)
        return None if a is None else a.astype(dt)
    fn.int32, fn.out_dtype = int32, dt
    return fn


def prelu_params(alpha_shift_bits: int, in_scale: float, out_scale: float, input_ratio: float) -> tuple:
    """(M, n, F_mult, F_shift) as activation.prelu derives them (15-bit multipliers)."""
    f = float(input_ratio)
    m = float(in_scale) / f / float(out_scale)
    n = 14 - math.floor(math.log2(m))
    f_shift = 14 - math.floor(math.log2(f))
    return int(round(m * 2.0 ** n)), n, int(round(f * 2.0 ** f_shift)), f_shift


def prepare_prelu(x_dtype, shape, alpha_code, alpha_shift_bits: int, in_scale: float, out_scale: float,
                  out_zero_point: int, out_dtype, input_ratio: float = 1.0, clamp=None) -> Callable | None:
    """fn(x) -> the codes of activation.prelu(x, alpha_code, ...) clipped to ``clamp`` (as the engine's
    RELU does), or None. alpha: all zero (RELU) or one value per channel (the last dimension)."""
    mult, n, f_mult, f_shift = prelu_params(alpha_shift_bits, in_scale, out_scale, input_ratio)
    ax, dt = _max_abs(x_dtype), np.dtype(out_dtype)
    s = int(alpha_shift_bits)
    alpha = np.asarray(alpha_code, np.int64)
    shape = tuple(int(d) for d in shape)
    f1 = float(input_ratio) == 1.0
    if ax is None or dt not in _LIMITS or n < 1 or (not f1 and f_shift < 1) or len(shape) < 2:
        return None
    has_alpha = bool(alpha.any())
    if has_alpha and (s < 1 or alpha.size != shape[-1] or alpha.ndim > len(shape)
                      or any(d != 1 for d in alpha.shape[:-1])):
        return None
    x_lo, x_hi = _RANGES[np.dtype(x_dtype)]
    pos_max = x_hi if f1 else ((x_hi * f_mult) + (1 << (f_shift - 1))) >> f_shift
    t_lo, t_hi = 0, pos_max
    if has_alpha:  # the negative branch's extremes per channel: x in {x_lo, -1} (x * alpha is linear in x)
        for a in (int(v) for v in alpha.reshape(-1)):
            for xv in (x_lo, -1):
                if abs(xv * a) + (1 << (s - 1)) >= _I32:
                    return None
                t = (xv * a + (1 << (s - 1))) >> s
                t_lo, t_hi = min(t_lo, t), max(t_hi, t)
    if not f1 and x_hi * f_mult + (1 << (f_shift - 1)) >= _I32:
        return None
    # t = pos + neg: one of them is 0 for each x, so t lies in [t_lo, t_hi]
    zp_in_const = True
    const = (1 << (n - 1)) + int(out_zero_point) * (1 << n)
    ends = [t_lo * mult, t_hi * mult]
    if max(abs(e) for e in ends) >= _I32:
        return None
    if max(abs(e + const) for e in ends) >= _I32:
        zp_in_const, const = False, 1 << (n - 1)  # the zero point added after the shift instead
        if max(abs(e + const) for e in ends) + abs(int(out_zero_point)) >= _I32:
            return None
    lo, hi = _LIMITS[dt]
    if clamp is not None:
        c0, c1 = int(clamp[0]), int(clamp[1])
        if not lo <= c0 <= c1 <= hi:
            return None
        lo, hi = c0, c1
    m_, c_, zp_ = np.int32(mult), np.int32(const), np.int32(out_zero_point)
    width = shape[-2] * shape[-1]
    a_row = np.tile(alpha.reshape(-1), shape[-2]).astype(np.int32) if has_alpha else None
    half = np.int32(1 << (s - 1)) if has_alpha else None

    def core(x, owned: bool):
        """x: codes of x_dtype's range (x itself may be overwritten when owned) -> output codes."""
        pos = clip(x, 0, x_hi, out=x if owned and not has_alpha else np.empty_like(x))
        if f1:
            if has_alpha:
                t = pos.astype(np.int32)
            elif pos.dtype == np.int32:
                t = pos
                t *= m_
            else:
                t = np.multiply(pos, m_, dtype=np.int32)
        else:
            t = np.multiply(pos, np.int32(f_mult), dtype=np.int32)
            t += np.int32(1 << (f_shift - 1))
            t >>= f_shift
        if has_alpha:
            neg = np.multiply(clip(x, x_lo, 0, out=x if owned else np.empty_like(x)).reshape(-1, width), a_row,
                              dtype=np.int32)
            neg += half
            neg >>= s
            t += neg.reshape(shape)
        if has_alpha or not f1:
            t *= m_
        t += c_
        t >>= n
        if not zp_in_const:
            t += zp_
        clip(t, lo, hi)
        return t.astype(dt)

    def fn(x):
        if x.shape != shape or x.dtype != np.dtype(x_dtype):
            return None
        return core(x, False)

    def from_int32(a):
        """The output codes of an int32 array holding codes of x_dtype's range (a is overwritten)."""
        if a.shape != shape or a.dtype != np.int32:
            return None
        return core(a, True)
    fn.from_int32, fn.in_dtype = from_int32, np.dtype(x_dtype)
    return fn


def pad_trailing(x: np.ndarray, out_shape: tuple, zero_point: int) -> np.ndarray:
    """x padded at the end of each dimension up to out_shape with the zero point (np.pad's codes)."""
    if tuple(x.shape) == tuple(out_shape):
        return x.copy()
    out = np.empty(out_shape, x.dtype)
    inner = tuple(slice(0, int(d)) for d in x.shape)
    out[inner] = x
    # the rest: per dimension, the cells beyond x in that dimension (earlier dimensions inside x)
    for d in range(x.ndim):
        if out_shape[d] > x.shape[d]:
            out[tuple(slice(0, int(x.shape[j])) for j in range(d)) + (slice(int(x.shape[d]), None),)] = zero_point
    return out
