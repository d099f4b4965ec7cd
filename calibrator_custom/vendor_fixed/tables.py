"""Table ops (LOGISTIC, TANH, SOFTMAX) as the vendor fixed simulator computes them (bit-exact).

Established (docs/vendor_fixed_point.md, "LOGISTIC, TANH", "SOFTMAX"): all three share one piecewise-
linear interpolation of two int16 tables (65 and 257 entries, stored in the op's options, see
:func:`interpolate`), on the input as a 15-bit-mantissa fixed-point value v = c * M, x = v / 2**Q
(M = round(s * 2**Q), Q = 14 - floor(log2 s), :func:`input_fixed_point`):

* LOGISTIC: T = 32767 tanh(|x|/2) from the table over |x| in [0, 2) (256 segments) or [2, 6) (64),
  beyond 6 the line T(6) + round(slope (|x| - 6)), T <= 32767, with the slope the op's options store
  (``line_slope``: 8 in the vendor's files; 0 makes T flat beyond 6, and the vendor runs that too); q = (32767 + sign(x) T + 1) >> 1 at the output
  scale 1/32767, else with sign(x) T rescaled to the output scale first (:func:`logistic_codes`).
* TANH: T = 32767 tanh(|x|) the same way (slope 1 beyond 6); q = sign(x) T (INT16, scale 1/32767); a
  UINT8 TANH is that through the 15-bit requantization :func:`requantize_int16`.
* SOFTMAX: d = max(c - max(c), -32768) per row; E = 32767 exp(x) from the table over [-2, 0] or
  [-10, -2], below -10 the tangent line at -10, E >= 0; S = sum E; with n = max(0, bitlen(S) - 16),
  R = floor(2**(30+n) / S) and q = min((E R + 2**(14+n)) >> (15+n), 32767) (INT16, scale 1/32767).

The tables and multipliers are functions of nothing but the op (checked equal to the stored ones), so
the kernels take only the scales. :func:`lookup` applies a whole-domain table (int16 input codes).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .registry import register

INT16_MIN = -32768
#: the INT16 scale of LOGISTIC / TANH / SOFTMAX outputs (and of TANH before a UINT8 requantization)
UNIT_SCALE = 1.0 / 32767
TANH_INT16_SCALE = UNIT_SCALE
#: measured worst difference of the kernels below from the vendor's outputs (output LSB): all exact
LOGISTIC_MAX_ERROR_LSB = 0
TANH_INT16_MAX_ERROR_LSB = 0
TANH_MAX_ERROR_LSB = 0
SOFTMAX_MAX_ERROR_LSB = 0

#: fraction bits of the interpolation weight (the position inside a segment is truncated to them)
FRACTION_BITS = 15


def input_fixed_point(in_scale: float) -> tuple[int, int]:
    """(M, Q): the input scale as a 15-bit mantissa, s ~ M / 2**Q, Q = 14 - floor(log2 s), M = floor(s * 2**Q + 1/2)."""
    q = 14 - math.floor(math.log2(float(in_scale)))
    return int(math.floor(float(in_scale) * 2.0 ** q + 0.5)), q


def vendor_input_reals(x_code: np.ndarray, in_scale: float) -> np.ndarray:
    """x = c * M / 2**Q, the real value the vendor's table ops see (:func:`input_fixed_point`)."""
    m, q = input_fixed_point(in_scale)
    return np.asarray(x_code, np.float64) * (m * 2.0 ** -q)


def _round_shift(a: np.ndarray, k: int) -> np.ndarray:
    """(a + 2**(k-1)) >> k (ties toward +inf); a << -k for k <= 0."""
    if k <= 0:
        return a << (-k)
    return (a + (1 << (k - 1))) >> k


def interpolate(table: np.ndarray, offset: np.ndarray, segment_shift: int, multiplier: int,
                multiplier_shift: int, fraction_bits: int = FRACTION_BITS) -> np.ndarray:
    """The vendor's table interpolation at offsets >= 0 from the table's start (fixed point, int64).

    i = offset >> k, f = the low k bits truncated to fraction_bits (k = segment_shift),
    t = (table[i] * 2**b + (table[i+1] - table[i]) * f + 2**(b-1)) >> b (b = min(k, fraction_bits)),
    result = (t * multiplier + 2**(multiplier_shift-1)) >> multiplier_shift.
    """
    if segment_shift < 0:
        raise ValueError(f"table segment shift {segment_shift} < 0: the input scale is too large for the "
                         "vendor's table ops (above 2**7 per code)")
    tab = np.asarray(table, np.int64)
    idx = offset >> segment_shift
    frac = offset & ((1 << segment_shift) - 1)
    b = min(segment_shift, int(fraction_bits))
    if segment_shift > b:
        frac >>= segment_shift - b
    lo = tab[idx]
    t = _round_shift((lo << b) + (tab[np.minimum(idx + 1, tab.size - 1)] - lo) * frac, b)
    return _round_shift(t * multiplier, multiplier_shift)


@dataclass(frozen=True)
class TableSpec:
    """LOGISTIC / TANH: the inner table over |x| in [0, inner_end), the outer one over [inner_end, outer_end),
    their segments per unit of x as shifts, their output multipliers, and the line's slope beyond."""
    inner: np.ndarray
    inner_segment_bits: int       # log2(segments per unit of x)
    inner_multiplier: tuple       # (multiplier, shift)
    outer: np.ndarray
    outer_segment_bits: int
    outer_multiplier: tuple
    inner_end: float
    outer_end: float
    line_slope: int               # codes per unit of x beyond outer_end (LOGISTIC/TANH)


def _tanh_spec(scale_x: float, line_slope: int) -> TableSpec:
    """T = 32767 tanh(x * scale_x): inner 257 values over x in [0, 2] divided by tanh(2 scale_x), outer 65 over [2, 6]."""
    i, j = np.arange(257), np.arange(65)
    top = math.tanh(2 * scale_x)
    return TableSpec(np.rint(32767 * np.tanh(i / 128 * scale_x) / top).astype(np.int64), 7,
                     (int(round(32768 * top)), 15),
                     np.rint(32767 * np.tanh((2 + j / 16) * scale_x)).astype(np.int64), 4, (16384, 14),
                     2.0, 6.0, line_slope)


LOGISTIC_SPEC = _tanh_spec(0.5, 8)   # sigmoid(x) = (1 + tanh(x/2)) / 2
TANH_SPEC = _tanh_spec(1.0, 1)
#: SOFTMAX: E = 32767 exp(x) for x <= 0: 65 values over [-2, 0] and 257 over [-10, -2] (exp(x+2), times e**-2)
SOFTMAX_INNER = np.rint(32767 * np.exp(-2 + np.arange(65) / 32)).astype(np.int64)
SOFTMAX_OUTER = np.rint(32767 * np.exp(-8 + np.arange(257) / 32)).astype(np.int64)
SOFTMAX_OUTER_MULTIPLIER = (int(round(2 ** 17 * math.exp(-2))), 17)


def with_line_slope(spec: TableSpec, line_slope: int | None) -> TableSpec:
    """spec with the line's slope a file stores (None: the vendor's own, spec's)."""
    return spec if line_slope is None or int(line_slope) == spec.line_slope else \
        dataclasses.replace(spec, line_slope=int(line_slope))


def odd_table_codes(x_code, in_scale, spec: TableSpec, fraction_bits: int = FRACTION_BITS
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(sign(x), T(|x|)) of LOGISTIC/TANH (spec LOGISTIC_SPEC / TANH_SPEC, :func:`with_line_slope` for a
    stored slope) on int64 codes."""
    m, q = input_fixed_point(in_scale)
    v = np.asarray(x_code, np.int64) * m
    a = np.abs(v)
    b2, b6 = int(spec.inner_end) << q, int(spec.outer_end) << q
    t = np.empty_like(a)
    inner = a < b2
    outer = ~inner & (a < b6)
    line = a >= b6
    t[inner] = interpolate(spec.inner, a[inner], q - spec.inner_segment_bits, *spec.inner_multiplier, fraction_bits)
    t[outer] = interpolate(spec.outer, a[outer] - b2, q - spec.outer_segment_bits, *spec.outer_multiplier,
                           fraction_bits)
    t[line] = int(spec.outer[-1]) + _round_shift((a[line] - b6) * spec.line_slope, q)
    return np.sign(v), np.minimum(t, 32767)


def lookup(x_code: np.ndarray, table: np.ndarray, domain_min: int = INT16_MIN) -> np.ndarray:
    """q = table[x - domain_min] (table covers the whole input domain, e.g. 65536 entries for int16)."""
    return np.asarray(table)[np.asarray(x_code, np.int64) - int(domain_min)]


def _all_codes() -> np.ndarray:
    return np.arange(-32768, 32768, dtype=np.int64)


def logistic_output_rescale(out_scale: float) -> tuple[int, int, int]:
    """(M, shift, offset) of LOGISTIC's output step (the options' ``sgs_output_rescale``): M / 2**shift the
    15-bit form of (1/32767) / s_out, offset = floor(1 / s_out + 1/2), the code of 1.0 (16384, 14, 32767 at
    the unit scale)."""
    ratio = UNIT_SCALE / float(out_scale)
    if abs(ratio - 1) < 1e-5:  # the unit scale read back from float32: exactly 1 (16384 / 2**14)
        return 16384, 14, 32767
    m, shift = input_fixed_point(ratio)
    return m, shift, int(math.floor(1.0 / float(out_scale) + 0.5))


def logistic_codes(x_code, in_scale: float, out_scale: float = UNIT_SCALE, line_slope: int | None = None
                   ) -> np.ndarray:
    """q = min((((sign(x) T M + 2**(shift-1)) >> shift) + offset + 1) >> 1, 32767), T = 32767 tanh(|x|/2) by the
    vendor's tables (beyond |x| = 6 the line of ``line_slope``, default the vendor's 8), (M, shift, offset) =
    :func:`logistic_output_rescale`; at the unit output scale (32767 + sign(x) T + 1) >> 1 (int16)."""
    sign, t = odd_table_codes(x_code, in_scale, with_line_slope(LOGISTIC_SPEC, line_slope))
    m, shift, offset = logistic_output_rescale(out_scale)
    scaled = _round_shift(sign.astype(np.int64) * t.astype(np.int64) * m, shift)
    return np.minimum((scaled + offset + 1) >> 1, 32767).astype(np.int16)


def logistic_table(in_scale: float, out_scale: float = UNIT_SCALE, line_slope: int | None = None) -> np.ndarray:
    """table[c + 32768] = logistic_codes(c) for every int16 code c (int16)."""
    return logistic_codes(_all_codes(), in_scale, out_scale, line_slope)


@register("LOGISTIC")
def logistic(x_code, in_scale, out_scale=UNIT_SCALE, table=None):
    """q = lookup(x, table or logistic_table(in_scale, out_scale)) (INT16 in and out; exact)."""
    return lookup(x_code, logistic_table(in_scale, out_scale) if table is None else table)


def tanh_output_multipliers(out_scale: float = UNIT_SCALE) -> tuple[tuple, tuple]:
    """((M257, shift257), (M65, shift65)) of an INT16 TANH with output scale s_out: the 15-bit forms
    (:func:`input_fixed_point`) of r tanh 2 and r, r = (1/32767) / s_out (the options' ``lut_257_multiplier``
    / ``lut_65_multiplier``); at the unit scale (31589, 15) and (16384, 14)."""
    ratio = UNIT_SCALE / float(out_scale)
    if abs(ratio - 1) < 1e-5:  # the unit scale read back from float32: exactly 1
        return TANH_SPEC.inner_multiplier, TANH_SPEC.outer_multiplier
    return input_fixed_point(ratio * math.tanh(2.0)), input_fixed_point(ratio)


def tanh_int16_codes(x_code, in_scale: float, out_scale: float = UNIT_SCALE) -> np.ndarray:
    """q = clip((s I M + 2**(shift-1)) >> shift, -32767, 32767), s = sign(x), I the unscaled interpolation of
    the inner table (|x| < 2), the outer one (2 .. 6) or min(line, 32767) beyond 6, (M, shift) the region's
    :func:`tanh_output_multipliers` (the sign is applied before the rounding); at the unit scale
    q = sign(x) 32767 tanh|x| by the vendor's tables (int16)."""
    (m257, k257), (m65, k65) = tanh_output_multipliers(out_scale)
    m, q = input_fixed_point(in_scale)
    v = np.asarray(x_code, np.int64) * m
    a, sign = np.abs(v), np.sign(v)
    b2, b6 = 2 << q, 6 << q
    inner = a < b2
    outer = ~inner & (a < b6)
    line = a >= b6
    spec = TANH_SPEC
    t = np.empty_like(a)
    t[inner] = interpolate(spec.inner, a[inner], q - spec.inner_segment_bits, 1, 0)
    t[outer] = interpolate(spec.outer, a[outer] - b2, q - spec.outer_segment_bits, 1, 0)
    t[line] = np.minimum(int(spec.outer[-1]) + _round_shift((a[line] - b6) * spec.line_slope, q), 32767)
    mult = np.where(inner, m257, m65).astype(np.int64)
    shift = np.where(inner, k257, k65).astype(np.int64)
    out = (sign * t * mult + (np.int64(1) << (shift - 1))) >> shift
    return np.clip(out, -32767, 32767).astype(np.int16)


def tanh_int16_table(in_scale: float, out_scale: float = UNIT_SCALE) -> np.ndarray:
    """table[c + 32768] = tanh_int16_codes(c) for every int16 code c (int16)."""
    return tanh_int16_codes(_all_codes(), in_scale, out_scale)


def requantize_int16(t_code: np.ndarray, in_scale: float, out_scale: float, out_zero_point: int) -> np.ndarray:
    """q = clip(((t * M + 2**(N-1)) >> N) + zp, 0, 255), M = round(m * 2**N), N = 14 - floor(log2 m), m = in_scale / out_scale (uint8)."""
    m = float(in_scale) / float(out_scale)
    n = 14 - math.floor(math.log2(m))
    mult = int(round(m * 2.0 ** n))
    t = np.asarray(t_code, np.int64)
    return np.clip(((t * mult + (1 << (n - 1))) >> n) + int(out_zero_point), 0, 255).astype(np.uint8)


def tanh_table(in_scale: float, out_scale: float, out_zero_point: int, int16_scale: float = UNIT_SCALE) -> np.ndarray:
    """table[c + 32768] = requantize_int16(tanh_int16_codes(c, s16), s16, out_scale, zp): the INT16 TANH at the
    scale s16 = max(|min|, |max|) / 32767 of the output's calibrated range (1/32767 for [-1, 1]) through a
    15-bit requantization (uint8)."""
    return requantize_int16(tanh_int16_codes(_all_codes(), in_scale, int16_scale), int16_scale, out_scale,
                            out_zero_point)


@register("TANH")
def tanh(x_code, in_scale, out_scale, out_zero_point, table=None, int16_scale=UNIT_SCALE):
    """q = lookup(x, table or tanh_table(in_scale, out_scale, zp, int16_scale)) (INT16 in, UINT8 out; exact)."""
    return lookup(x_code, tanh_table(in_scale, out_scale, out_zero_point, int16_scale) if table is None else table)


def softmax_exp_codes(d_code: np.ndarray, in_scale: float) -> np.ndarray:
    """E = 32767 exp(x) for x = d * M / 2**Q <= 0 by the vendor's tables: over [-2, 0] the 65 values, over
    [-10, -2) the 257 values times e**-2, below -10 the tangent line E0 (1 + (x + 10)) times e**-2, clipped at 0."""
    m, q = input_fixed_point(in_scale)
    v = np.asarray(d_code, np.int64) * m
    b2, b10 = -(2 << q), -(10 << q)
    e = np.empty_like(v)
    inner = v >= b2
    outer = ~inner & (v >= b10)
    below = v < b10
    e[inner] = interpolate(SOFTMAX_INNER, v[inner] - b2, q - 5, 16384, 14)
    e[outer] = interpolate(SOFTMAX_OUTER, v[outer] - b10, q - 5, *SOFTMAX_OUTER_MULTIPLIER)
    e0 = int(SOFTMAX_OUTER[0])
    raw = e0 + _round_shift(e0 * (v[below] - b10), q)
    e[below] = _round_shift(raw * SOFTMAX_OUTER_MULTIPLIER[0], SOFTMAX_OUTER_MULTIPLIER[1])
    return np.maximum(e, 0)


@register("SOFTMAX")
def softmax(x_code, in_scale, axis=-1):
    """q = min((E R + 2**(14+n)) >> (15+n), 32767), E = softmax_exp_codes(max(x - max x, -32768)), S = sum E over
    axis, n = max(0, bitlen(S) - 16), R = floor(2**(30+n) / S) (INT16 in, INT16 out with scale 1/32767; exact)."""
    x = np.asarray(x_code, np.int64)
    d = np.maximum(x - x.max(axis=axis, keepdims=True), INT16_MIN)
    e = softmax_exp_codes(d, in_scale)
    s = e.sum(axis=axis, keepdims=True)
    n = np.maximum(0, _bit_length(s) - 16)
    r = (np.int64(1) << (30 + n)) // s
    return np.minimum((e * r + (np.int64(1) << (14 + n))) >> (15 + n), 32767).astype(np.int16)


def _bit_length(a: np.ndarray) -> np.ndarray:
    """bit length of positive int64 values below 2**53 (frexp's exponent: exact there)."""
    return np.frexp(np.asarray(a, np.int64).astype(np.float64))[1].astype(np.int64)
