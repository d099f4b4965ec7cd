"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED as the vendor fixed simulator computes it (established bit-exactly; docs/vendor_fixed_point.md).

With x the input codes (UINT8, zero point folded into the bias), w the int8 weight codes, the [2, C]
INT16 bias rows b0 (bias codes) and M (per-channel multipliers), a bias shift k and the total shift N:

    acc = sum x * w                                   (int64; spatial padding = the input zero point)
    a   = sat16(sat16(round_half_away(acc / 2**k)) + b0)      (sat16: to [-32767, 32767])
    q   = sat((a * M + 2**(N-k-1)) >> (N-k)) [+ out_zero_point for INT16 outputs]

A 16-bit conv (INT16 input and INT16 weights) with k > 16 first floors the accumulator by s = k - 16 bits
(an arithmetic right shift) and rounds the rest half away: R = round_half_away(floor(acc / 2**s) / 2**16)
(:func:`sixteen_bit_floor_bits`; it differs from the single rounding only for a negative accumulator less
than 2**s above a tie, which it rounds one lower).

N = 14 - floor(log2(m)) and M = round(m * 2**N) with m = in_scale * w_scale / out_scale (M is the
stored bias row 1); k is chosen by the vendor's converter and is not stored: :func:`infer_bias_shift`
recovers it. A fused RELU/RELU6 clamps the output codes (:func:`activation_clamp`). FULLY_CONNECTED is converted by the vendor into RESHAPE -> 1x1 CONV_2D -> RESHAPE over
[1, 1, 1, N] and is simulated by this kernel. UINT8 outputs carry their zero point inside b0; INT16 outputs saturate to [-32767, 32767].
"""
from __future__ import annotations

import math

import numpy as np

from .registry import register
from .rounding import shift_round_half_away, shift_round_half_up

_LIMITS = {np.dtype(np.int16): (-32767, 32767), np.dtype(np.uint8): (0, 255)}
#: the shifted accumulator R = round(acc / 2**k) and R + b0 each saturate to [-32767, 32767] (the top of
#: R + b0 seen after a SOFTMAX; the bottom on a 16-bit depthwise whose R + b0 reaches -33528: -32768
#: would give one code less than the vendor's simulators, 2 of 2 such codes; R itself on a 16-bit
#: depthwise whose accumulator is 2394465727: R = 36537 taken as 32767, then + b0 = -3235, gives the
#: vendor's code, the sum alone saturated would not)
ACC16_MIN, ACC16_MAX = -32767, 32767


#: a 16-bit conv keeps this many fraction bits of acc / 2**k after its first (flooring) shift
SIXTEEN_BIT_KEPT_BITS = 16


def sixteen_bit_floor_bits(x_dtype, w_dtype, bias_shift: int) -> int:
    """s = max(0, k - 16) for a conv of INT16 input and INT16 weights (0 otherwise): the bits the vendor floors
    off the accumulator before rounding the remaining k - s half away from zero.

    Fitted on designed near-tie accumulators of 16-bit convs (1 x 1, 3 x 3, a native depthwise, the depthwise
    rewrite) at k = 16..23 (docs/vendor_fixed_point.md, "16-bit accumulator shift"); UINT8-input convs are
    exact with the single rounding.
    """
    if np.dtype(x_dtype) != np.dtype(np.int16) or np.dtype(w_dtype) != np.dtype(np.int16):
        return 0
    return max(0, int(bias_shift) - SIXTEEN_BIT_KEPT_BITS)


def requant_params(in_scale: float, w_scale: float, out_scale: float) -> tuple[int, int]:
    """(M, N): N = 14 - floor(log2 m), M = round(m * 2**N) for m = in_scale * w_scale / out_scale."""
    m = float(in_scale) * float(w_scale) / float(out_scale)
    n = 14 - math.floor(math.log2(m))
    return int(round(m * 2.0 ** n)), n


def _pad_amounts(size, k, stride, dilation, padding):
    eff = (k - 1) * dilation + 1
    if padding == "VALID":
        return (size - eff) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2, total - total // 2


def _exact_dtype(bound: float):
    """float32 / float64 BLAS sums of integer products are exact while the worst-case sum stays below
    2**24 / 2**53, whatever the summation order; beyond that, int64."""
    return np.float32 if bound < 2.0 ** 24 else np.float64 if bound < 2.0 ** 53 else np.int64


def _bound(x_code, w_code, pad_value, terms: int) -> float:
    """An upper bound of |sum of the products| (UINT8 codes: 255 without scanning the input)."""
    x = np.asarray(x_code)
    x_max = 255 if x.dtype == np.uint8 else max(abs(int(np.min(x))), abs(int(np.max(x))))
    return float(max(x_max, abs(int(pad_value)))) * float(np.abs(np.asarray(w_code)).max(initial=0)) * terms


def _padded(x_code, dt, pads, pad_value) -> np.ndarray:
    """x converted to dt and padded with pad_value ((top, bottom, left, right)) in one copy."""
    pt, pb, pl, pr = pads
    if not (pt or pb or pl or pr):
        return np.asarray(x_code, dt)
    n, h, w, c = x_code.shape
    xp = np.full((n, h + pt + pb, w + pl + pr, c), pad_value, dt)
    xp[:, pt:pt + h, pl:pl + w, :] = x_code
    return xp


def accumulate(x_code: np.ndarray, w_code: np.ndarray, pad_value: int, stride=(1, 1), dilation=(1, 1),
               padding="SAME") -> np.ndarray:
    """acc[n,y,x,o] = sum_{kh,kw,i} x[n, y*s+kh*d, x*s+kw*d, i] * w[o,kh,kw,i] (int64; padding = pad_value)."""
    return _accumulate_exact(x_code, w_code, pad_value, stride, dilation, padding).astype(np.int64)


def _accumulate_exact(x_code, w_code, pad_value, stride, dilation, padding) -> np.ndarray:
    """accumulate() in the narrowest dtype that holds it exactly (float32, float64 or int64)."""
    n, h, wd, c = x_code.shape
    o, kh, kw, i = w_code.shape
    oh, pt, pb = _pad_amounts(h, kh, stride[0], dilation[0], padding)
    ow, pl, pr = _pad_amounts(wd, kw, stride[1], dilation[1], padding)
    dt = _exact_dtype(_bound(x_code, w_code, pad_value, kh * kw * i))
    xp = _padded(x_code, dt, (pt, pb, pl, pr), int(pad_value))
    w = np.asarray(w_code, dt)
    if kh == kw == 1:
        patch = xp[:, :(oh - 1) * stride[0] + 1:stride[0], :(ow - 1) * stride[1] + 1:stride[1], :]
        return patch @ w[:, 0, 0, :].T
    acc = np.zeros((n, oh, ow, o), dt)
    for a in range(kh):
        for b in range(kw):
            y0, x0 = a * dilation[0], b * dilation[1]
            patch = xp[:, y0:y0 + (oh - 1) * stride[0] + 1:stride[0], x0:x0 + (ow - 1) * stride[1] + 1:stride[1], :]
            acc += patch @ w[:, a, b, :].T
    return acc


def accumulate_depthwise(x_code: np.ndarray, w_code: np.ndarray, pad_value: int, stride=(1, 1),
                         dilation=(1, 1), padding="SAME") -> np.ndarray:
    """acc[n,y,x,c*M+j] = sum_{kh,kw} x[n, y*s+kh*d, x*s+kw*d, c] * w[0,kh,kw,c*M+j] (int64; padding = pad_value)."""
    return _accumulate_depthwise_exact(x_code, w_code, pad_value, stride, dilation, padding).astype(np.int64)


def _accumulate_depthwise_exact(x_code, w_code, pad_value, stride, dilation, padding) -> np.ndarray:
    n, h, wd, c = x_code.shape
    _, kh, kw, co = w_code.shape
    mult = co // c
    oh, pt, pb = _pad_amounts(h, kh, stride[0], dilation[0], padding)
    ow, pl, pr = _pad_amounts(wd, kw, stride[1], dilation[1], padding)
    dt = _exact_dtype(_bound(x_code, w_code, pad_value, kh * kw))
    xp = _padded(x_code, dt, (pt, pb, pl, pr), int(pad_value))
    if mult > 1:
        xp = np.repeat(xp, mult, axis=3)
    w = np.asarray(w_code, dt)
    acc = np.empty((n, oh, ow, co), dt)
    tmp = np.empty_like(acc)
    for a in range(kh):
        for b in range(kw):
            y0, x0 = a * dilation[0], b * dilation[1]
            win = xp[:, y0:y0 + (oh - 1) * stride[0] + 1:stride[0], x0:x0 + (ow - 1) * stride[1] + 1:stride[1], :]
            if a == b == 0:
                np.multiply(win, w[0, 0, 0, :], out=acc)
            else:
                np.multiply(win, w[0, a, b, :], out=tmp)
                acc += tmp
    return acc


def requantize(acc: np.ndarray, bias_row0, multiplier, bias_shift: int, total_shift: int,
               out_zero_point: int, out_dtype, floor_bits: int = 0) -> np.ndarray:
    """q = sat(((sat16(sat16(round_half_away(floor(acc / 2**s) / 2**(k-s))) + b0)) * M + 2**(N-k-1)) >> (N-k) [+ zp for INT16]).

    s = ``floor_bits`` (:func:`sixteen_bit_floor_bits`; 0: the single rounding of acc / 2**k).
    """
    dt = np.dtype(out_dtype)
    lo, hi = _LIMITS[dt]
    s = int(floor_bits)
    acc = np.asarray(acc, np.int64)
    if s:
        acc = acc >> s                                                              # floor
    a = np.clip(shift_round_half_away(acc, int(bias_shift) - s), ACC16_MIN, ACC16_MAX)  # a 16-bit value
    a = np.clip(a + np.asarray(bias_row0, np.int64), ACC16_MIN, ACC16_MAX)
    q = shift_round_half_up(a * np.asarray(multiplier, np.int64), int(total_shift) - int(bias_shift))
    if dt == np.dtype(np.int16):
        q = q + int(out_zero_point)
    return np.clip(q, lo, hi).astype(dt)


def _requantize_exact(acc: np.ndarray, bias_row0, multiplier, bias_shift: int, total_shift: int,
                      out_zero_point: int, out_dtype, clamp=None, floor_bits: int = 0) -> np.ndarray:
    """requantize() (and the clamp) on an exact accumulator; in int32 where every intermediate provably fits
    (|acc| < 2**24 from a float32 sum, |a * M| <= 2**15 * 2**15, a right shift, no first floor), else the
    int64 reference."""
    k, rest = int(bias_shift), int(total_shift) - int(bias_shift)
    mult = np.asarray(multiplier)
    if acc.dtype != np.float32 or rest < 1 or floor_bits or (mult.size and int(mult.max()) > 32768):
        return _clamp(requantize(acc.astype(np.int64), bias_row0, multiplier, bias_shift, total_shift, out_zero_point,
                                 out_dtype, floor_bits), clamp)
    dt = np.dtype(out_dtype)
    lo, hi = _LIMITS[dt]
    a = acc.astype(np.int32)
    if k:
        sign = a >> 31                                  # 0 or -1
        np.bitwise_xor(a, sign, out=a)
        a -= sign                                       # |acc|
        a += 1 << (k - 1)
        a >>= k
        np.bitwise_xor(a, sign, out=a)
        a -= sign                                       # sign(acc) * ((|acc| + 2**(k-1)) >> k)
    np.maximum(a, ACC16_MIN, out=a)
    np.minimum(a, ACC16_MAX, out=a)
    a += np.asarray(bias_row0, np.int32)
    np.maximum(a, ACC16_MIN, out=a)
    np.minimum(a, ACC16_MAX, out=a)
    a *= mult.astype(np.int32)
    a += 1 << (rest - 1)
    a >>= rest
    if dt == np.dtype(np.int16):
        a += int(out_zero_point)
    if clamp is not None:
        lo, hi = max(lo, int(clamp[0])), min(hi, int(clamp[1]))
    np.maximum(a, lo, out=a)
    np.minimum(a, hi, out=a)
    return a.astype(dt)


def activation_clamp(activation: str, out_scale: float, out_zero_point: int, out_dtype) -> tuple[int, int]:
    """(lo, hi) codes of a fused activation: NONE -> type limits, RELU -> [zp, max], RELU6 -> [zp, zp + round(6/scale)]."""
    lo, hi = _LIMITS[np.dtype(out_dtype)]
    if activation == "RELU":
        return max(lo, int(out_zero_point)), hi
    if activation == "RELU6":
        return max(lo, int(out_zero_point)), min(hi, int(out_zero_point) + int(round(6.0 / float(out_scale))))
    if activation in ("NONE", None):
        return lo, hi
    raise ValueError(f"fused activation {activation!r}: only NONE, RELU and RELU6 are established")


def _clamp(q: np.ndarray, clamp) -> np.ndarray:
    return q if clamp is None else np.clip(q, clamp[0], clamp[1]).astype(q.dtype)


@register("CONV_2D")
def conv2d(x_code, x_zero_point, w_code, bias_row0, multiplier, bias_shift, total_shift, out_zero_point=0,
           out_dtype=np.int16, stride=(1, 1), dilation=(1, 1), padding="SAME", clamp=None):
    """q = clamp(sat(((round_half_away(sum(x*w) / 2**k) + b0) * M) >>(half up) (N-k))); x padded with its zero point
    (INT16 x and w: the sum floored by max(0, k - 16) bits first, :func:`sixteen_bit_floor_bits`)."""
    acc = _accumulate_exact(x_code, w_code, x_zero_point, stride, dilation, padding)
    s = sixteen_bit_floor_bits(np.asarray(x_code).dtype, np.asarray(w_code).dtype, bias_shift)
    return _requantize_exact(acc, bias_row0, multiplier, bias_shift, total_shift, out_zero_point, out_dtype, clamp, s)


def bias_fold(x_zero_point: int, w_sum, out_zero_point: int, out_is_uint8: bool, m: float) -> np.ndarray:
    """The part of the bias in accumulator units that is not the float bias: -zp_x*sum(w) (+ zp_out/m for UINT8 out)."""
    fold = -int(x_zero_point) * np.asarray(w_sum, np.float64)
    if out_is_uint8:
        fold = fold + int(out_zero_point) / float(m)
    return fold


def infer_bias_shift(bias_row0, acc_min: int, acc_max: int, fold, acc_unit: float, bias_min: float,
                     bias_max: float, max_shift: int = 24) -> int:
    """Smallest k >= k_acc (max(|acc_min|,|acc_max|) >> k_acc < 8192) whose float bias (b0*2**k - fold)*acc_unit, with the row-1 value 1.0, has min and max equal to [bias_min, bias_max] within half a step (else: lies in that range).

    acc_min/acc_max are the output tensor's quantization slots 5/4 (calibrated accumulator range),
    fold from :func:`bias_fold`, acc_unit = in_scale * w_scale, bias_min/bias_max the bias tensor's
    quantization min/max (the float bias range; bias_max includes the float row 1, 1.0).
    """
    b0 = np.asarray(bias_row0, np.float64)
    fold = np.asarray(fold, np.float64)
    q = max(abs(int(acc_min)), abs(int(acc_max)))
    k = 0
    while q / 2 ** k >= 8192:
        k += 1
    exact = bias_shift_exact(bias_row0, acc_min, acc_max, fold, acc_unit, bias_min, bias_max, max_shift)
    if exact is not None:
        return exact
    for cand in range(k, max_shift + 1):
        half = 2 ** cand / 2 * acc_unit
        b = (b0 * 2 ** cand - fold) * acc_unit
        tol = half + 1e-6 * max(1.0, abs(bias_min), abs(bias_max))
        if np.all(b >= bias_min - tol) and np.all(b <= bias_max + tol):
            return cand
    return k


def bias_shift_exact(bias_row0, acc_min: int, acc_max: int, fold, acc_unit: float, bias_min: float,
                     bias_max: float, max_shift: int = 24) -> int | None:
    """Smallest k >= k_acc whose float bias (with the row-1 value 1.0) has exactly the stored min and max (within half a step); None if none.

    The stored range is the exact min/max of the float bias and the float row 1 (all 1.0): the right k
    reproduces both ends; a wrong k (or wrongly decoded weights in ``fold``) may still lie inside it.
    """
    b0 = np.asarray(bias_row0, np.float64)
    fold = np.asarray(fold, np.float64)
    q = max(abs(int(acc_min)), abs(int(acc_max)))
    k = 0
    while q / 2 ** k >= 8192:
        k += 1
    for cand in range(k, max_shift + 1):
        b = (b0 * 2 ** cand - fold) * acc_unit
        tol = 2 ** cand / 2 * acc_unit + 1e-6 * max(1.0, abs(bias_min), abs(bias_max))
        if abs(min(b.min(), 1.0) - bias_min) <= tol and abs(max(b.max(), 1.0) - bias_max) <= tol:
            return cand
    return None


@register("DEPTHWISE_CONV_2D")
def depthwise_conv2d(x_code, x_zero_point, w_code, bias_row0, multiplier, bias_shift, total_shift,
                     out_zero_point=0, out_dtype=np.int16, stride=(1, 1), dilation=(1, 1), padding="SAME", clamp=None):
    """As conv2d with the per-channel accumulation of w [1, KH, KW, C*M] (same requantization, 16-bit floor and clamp)."""
    acc = _accumulate_depthwise_exact(np.asarray(x_code), w_code, x_zero_point, stride, dilation, padding)
    s = sixteen_bit_floor_bits(np.asarray(x_code).dtype, np.asarray(w_code).dtype, bias_shift)
    return _requantize_exact(acc, bias_row0, multiplier, bias_shift, total_shift, out_zero_point, out_dtype, clamp, s)


@register("FULLY_CONNECTED")
def fully_connected(x_code, x_zero_point, w_code, bias_row0, multiplier, bias_shift, total_shift,
                    out_zero_point=0, out_dtype=np.int16):
    """q[b, o] = conv2d of x[b, 1, 1, N] with w[o, 1, 1, N] (the vendor's own rewrite of FULLY_CONNECTED)."""
    x = np.asarray(x_code)
    w = np.asarray(w_code)
    q = conv2d(x.reshape(x.shape[0], 1, 1, -1), x_zero_point, w.reshape(w.shape[0], 1, 1, -1), bias_row0,
               multiplier, bias_shift, total_shift, out_zero_point, out_dtype, padding="VALID")
    return q.reshape(x.shape[0], -1)
