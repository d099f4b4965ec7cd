"""Integer kernels of the elementwise family: binary arithmetic, comparisons, select, logical ops,
CAST, and the unary math ops (ABS, NEG, SQUARE, SQRT, RSQRT, EXP, LOG, SIN, COS, FLOOR, CEIL, ROUND)
and POW, which are the lookup tables of ``activation.py`` (their semantics and bounds are stated
there).

Notation: input ``a`` stands for ``s_a * (q_a - z_a)``, the output for ``s_y * (q_y - z_y)``; one
LSB is ``s_y``; ``|y|`` is the result's magnitude in LSBs; errors are against the exact real result
of the float op on the dequantized inputs. Rounding is round half up (``rounding_rshift``)
everywhere. Multipliers have 31 bits (relative error <= 2**-31) for inputs of up to 16 bits and at
least 29 bits for INT32 inputs, hence the ``2**-31 |y|`` terms, below 2**-16 LSB inside a 16-bit
range. Results saturate to the output dtype, then clamp to the fused activation's range in the
output's integer domain: RELU [z_y, max], RELU6 [z_y, z_y + round(6/s_y)], RELU_N1_TO_1
[z_y + round(-1/s_y), z_y + round(1/s_y)] (within the dtype); the rounded bounds add at most
0.5 LSB. TANH and SIGN_BIT do nothing on ADD/SUB/MUL/DIV, as in the float kernels.

Quantized inputs are UINT8, INT8, INT16 or INT32, per tensor, with any zero point, and each input
has its own quantization (either may be a constant); outputs likewise. ``B`` bounds |q - z| for an
input (from its dtype, or from the values of a constant). When no data operand is quantized
(INT32/INT64 shape arithmetic, BOOL), every op runs the float module's kernel, which is integer
arithmetic already: exact.

* ADD / SUB, inputs and output of up to 16 bits: one rounding,
  ``y = rshift((q_a - z_a) m_a +- (q_b - z_b) m_b, S) + z_y`` with ``m = round(s / s_y * 2**S)``
  for the largest ``S`` such that ``|q_a|max m_a + |q_b|max m_b + 2**S < 2**53`` (the sum is then
  float64-exact and runs as ``FloorAffine``). Error <= 0.5 + (B_a + B_b) 2**-(S+1) LSB, used only
  when that term is <= 2**-16 LSB (else the grid form below).
* ADD / SUB otherwise: each input to the grid F = s_y 2**-g (``rshift((q - z) M, S)``; g = 20
  unless the inputs span more than 2**39 LSBs), ``t_a +- t_b`` in int64, ``rshift(t, g) + z_y``.
  Error <= 0.5 + 2**-g + 2**-31 (|a| + |b|) LSB.
* MUL: ``(q_a - z_a)(q_b - z_b)`` exact in int64 (B_a B_b <= 2**62, checked), one rounding by
  s_a s_b / s_y with a wide product (``mul_rshift``). Error <= 0.5 + 2**-31 |y| LSB.
* DIV: ``floor((q_a - z_a) M / d)`` with d = q_b - z_b, then ``rshift(., S)``: a single
  rounding of (q_a - z_a) M 2**-S / d, M 2**-S ~ s_a / (s_b s_y). Error <= 0.5 + 2**-31 |y| LSB.
  A zero divisor gives the dtype's max (numerator > 0), min (< 0) or z_y (0/0), then the clamp.
* MAXIMUM / MINIMUM: both inputs rescaled to the output (``Rescale``), then max/min (1-Lipschitz):
  error <= 0.5 + 2**-bits |y| LSB (the Rescale's multiplier, see QUANTIZE); exact when the
  quantizations match.
* SQUARED_DIFFERENCE: both inputs to the grid F = sqrt(s_y) 2**-h (h = 20 for outputs of up to 16
  bits, 14 for INT32), D = t_a - t_b clipped where the output saturates, ``rshift(D*D, 2h) + z_y``
  (no multiplier on the square). Error <= 0.5 + 2**(1-h) sqrt(Y) e + 2**-2h e**2 LSB, Y the
  output's largest value in LSBs, e = 1 + 2**-31 (|t_a| + |t_b|): 0.5004 LSB for INT16 in range.
* GREATER / GREATER_EQUAL / LESS / LESS_EQUAL / EQUAL / NOT_EQUAL: both inputs to one grid, then
  the integers compared. Exact grid first: a float scale is p 2**-k exactly, so
  (q - z) p 2**(K - k) is the real value in units 2**-K (K = max k); used when it fits in 62 bits,
  which holds for float32 scales (every scale read from a model) within a factor 2**21 of each
  other for 16-bit inputs: the comparison is then exact. Otherwise the grid is
  min(s_a, s_b) 2**-k with rounding (k = 20 unless the inputs span more than 2**39 of the finer
  steps); values closer than e = 1 + 2**-31 (|t_a| + |t_b|) grid steps may compare as equal or in
  the wrong order, while equal scales, or scales a power of two apart, still compare exactly.
* FLOOR_DIV / FLOOR_MOD: exact grid integers A, B (as above; refused with UnsupportedOpError when
  they do not fit int64), Q = floor(A / B) or R = A mod B (the sign of B) exactly in int64, then
  one rounding of Q / s_y or R 2**-K / s_y: error <= 0.5 + 2**-31 |y| LSB. A zero divisor: FLOOR_DIV
  saturates as DIV does (the float op raises InputError instead), FLOOR_MOD gives z_y (real 0).
* SELECT / SELECT_V2: both branches rescaled to the output, then picked by the bool condition:
  error <= 0.5 + 2**-bits |y| LSB (the Rescale's multiplier), exact for a branch quantized like
  the output.
* LOGICAL_AND / LOGICAL_OR / LOGICAL_NOT: bool in, bool out: the float kernels, exact.
* CAST: plain integer/bool -> plain integer/bool: the float kernel's numpy cast (C-style
  wraparound, bool = x != 0), exact. Quantized -> bool: ``q != zp`` (real != 0), exact.
  Quantized -> plain integer: the float op truncates toward zero, so the kernel computes
  ``trunc(scale * (q - zp))`` **exactly** from the float64 scale's 53-bit mantissa split in two
  27/26-bit limbs (inputs of at most 16 bits, scale < 2**26), then saturates to the output dtype
  (where the float op is undefined). Quantized -> quantized: Rescale. Plain integer/bool ->
  quantized: Rescale from scale 1, zero point 0 (<= 0.5 LSB; int64 inputs are refused).
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import UnsupportedOpError
from ...ops.elementwise import cast as float_cast
from ...ops.registry import Kernel, OpContext, TensorInfo, get_op
from ...rounding import round_half_up_int
from ..fixedpoint import (F64_EXACT_LIMIT, I64, FloorAffine, Rescale, multiplier_bits, quantize_multiplier,
                          requantize, rounding_offset, rounding_rshift, saturate)
from ..registry import QParams, qparams, register
from . import activation as _tables
from ._common import data_rescale, is_quantized, per_tensor_qparams, refuse

logger = logging.getLogger(__name__)

_F32 = np.dtype(np.float32)
_BOOL = np.dtype(np.bool_)
_QDTYPES = tuple(np.dtype(d) for d in (np.uint8, np.int8, np.int16, np.int32))
_LIMIT = 1 << 62  # every int64 intermediate stays within +-_LIMIT (sums of two within 2**63)
_GRID_BITS = 20  # extra fraction bits of the fine grids


# ------------------------------------------------------------------------------ integer helpers
def normalized_multiplier(real: float) -> tuple[int, int]:
    """``real ~= m * 2**-s`` with ``2**30 <= m < 2**31`` (relative error <= 2**-31) and any s; (0, 0) for 0."""
    if real == 0:
        return 0, 0
    frac, exp = math.frexp(real)
    m, s = quantize_multiplier(frac, 31)
    return int(m), int(s) - exp


def mul_rshift(x: np.ndarray, m: int, s: int) -> np.ndarray:
    """``floor(x * m / 2**s + 1/2)`` elementwise, for int64 ``|x| <= 2**62``, ``m == 0`` or
    ``2**30 <= m < 2**31`` and ``s >= -31``, without forming the 93-bit product.

    Exact for ``s >= 31``; for ``s < 31`` exact whenever the result lies in (-2**31, 2**31), and
    otherwise a value of magnitude >= 2**31 with the right sign (so it saturates any output dtype).
    """
    x = np.asarray(x, dtype=I64)
    if m == 0 or s >= 94:  # |x m| < 2**93: the result rounds to 0
        return np.zeros(x.shape, I64)
    if s >= 31:
        # x m = xh m 2**31 + xl m; the low part only matters through floor((xl m + half) / 2**31)
        xh, xl = x >> I64(31), x & I64((1 << 31) - 1)
        if s == 31:
            c = (xl * I64(m) + I64(1 << 30)) >> I64(31)
        else:
            c = ((xl * I64(m)) >> I64(31)) + I64(1 << (s - 32))
        return (xh * I64(m) + c) >> I64(s - 31)
    # m / 2**s >= 1: |x| >= 2**31 already gives |result| >= 2**31
    p = np.clip(x, -(1 << 31), 1 << 31) * I64(m)
    if s >= 0:
        return rounding_rshift(p, s)
    return np.clip(p, -(1 << 31), 1 << 31) << I64(-s)


@dataclass(frozen=True)
class GridMap:
    """``t = rounding_rshift((q - zero_point) * multiplier, shift)``: a value on a common grid."""

    zero_point: int
    multiplier: int
    shift: int


def to_grid(q: np.ndarray, g: GridMap) -> np.ndarray:
    """The int64 grid value of ``q`` (exact when ``g.shift <= 0``)."""
    return rounding_rshift((np.asarray(q, I64) - I64(g.zero_point)) * I64(g.multiplier), g.shift)


@dataclass(frozen=True)
class OutParams:
    """The output's zero point, clamp range (dtype range within the activation's) and dtype."""

    zero_point: int
    lo: int
    hi: int
    dtype: np.dtype


def _finish(y: np.ndarray, out: OutParams) -> np.ndarray:
    """``clip(y + z_y, lo, hi)`` cast to the output dtype."""
    return np.asarray(np.clip(np.asarray(y, I64) + I64(out.zero_point), out.lo, out.hi).astype(out.dtype))


# ----------------------------------------------------------------------------- prepare helpers
@dataclass(frozen=True)
class PlainParams:
    """No operand is quantized: run the float module's kernel (integer or bool arithmetic)."""

    kernel: Kernel
    params: Any

    def __call__(self, *xs: np.ndarray) -> np.ndarray:
        return self.kernel(*xs, opt=self.params)


@dataclass(frozen=True)
class QIn:
    """A quantized input as prepare needs it."""

    scale: float
    zero_point: int
    bound: int  # max |q - zero_point| over the dtype range, or over a constant's values
    q: QParams


def unsupported(ctx: OpContext, message: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: {message}")


def _is_quantized(t: TensorInfo | None) -> bool:
    return t is not None and t.quantization is not None and bool(t.quantization.scale)


def _float_view(ctx: OpContext) -> OpContext:
    """``ctx`` with every quantized tensor seen as float32, for the float op's validation."""
    def view(t: TensorInfo | None) -> TensorInfo | None:
        if not _is_quantized(t):
            return t
        return dataclasses.replace(t, dtype=_F32, data=None, quantization=None)
    return dataclasses.replace(ctx, inputs=tuple(view(t) for t in ctx.inputs),
                               outputs=tuple(view(t) for t in ctx.outputs))


def _float_prepare(ctx: OpContext) -> Any:
    """The float op's prepare on the float view: shape, axis and option validation."""
    opdef = get_op(ctx.op_name)
    fctx = _float_view(ctx)
    return opdef.prepare(fctx) if opdef.prepare else fctx.options


def _plain(ctx: OpContext) -> PlainParams:
    opdef = get_op(ctx.op_name)
    return PlainParams(opdef.kernel, opdef.prepare(ctx) if opdef.prepare else ctx.options)


def begin_params(ctx: OpContext, data: Sequence[int], output: bool = True) -> tuple[bool, Any]:
    """(True, float params) when the data tensors are quantized, (False, PlainParams) when none is.

    A missing tensor goes the plain way, where the float prepare reports it.
    """
    tensors = [ctx.input(i) for i in data] + ([ctx.outputs[0] if ctx.outputs else None] if output else [])
    if any(t is None for t in tensors) or not _all_quantized(ctx, tensors):
        return False, _plain(ctx)
    return True, _float_prepare(ctx)


def _all_quantized(ctx: OpContext, tensors: Sequence[TensorInfo]) -> bool:
    """True if every data tensor is quantized, False if none is; ModelError for a mix."""
    flags = [_is_quantized(t) for t in tensors]
    if all(flags):
        return True
    if not any(flags):
        return False
    listed = ", ".join(f"{t.name!r} {'quantized' if f else 'not quantized'}" for t, f in zip(tensors, flags))
    raise ctx.error(f"mixes quantized and plain tensors ({listed})")


def _per_tensor(ctx: OpContext, t: TensorInfo, what: str) -> QParams:
    p = qparams(ctx, t, what)
    if p.per_channel:
        raise unsupported(ctx, f"{what} {t.name!r} is quantized per channel; elementwise kernels take "
                                "per-tensor quantization only")
    if p.dtype not in _QDTYPES:
        raise unsupported(ctx, f"{what} {t.name!r} has dtype {p.dtype.name}; quantized tensors must be "
                                f"one of {', '.join(d.name for d in _QDTYPES)}")
    return p


def _input(ctx: OpContext, i: int) -> QIn:
    t = ctx.inputs[i]
    p = _per_tensor(ctx, t, f"input {i}")
    z = int(p.zero_point)
    if t.data is not None and np.size(t.data):
        bound = int(np.max(np.abs(np.asarray(t.data, I64) - z)))
    else:
        bound = max(p.qmax - z, z - p.qmin)
    return QIn(float(p.scale), z, max(bound, 1), p)


def output_params(ctx: OpContext, activation: str = "NONE") -> OutParams:
    """Output params with the fused activation's clamp in the output's integer domain."""
    p = _per_tensor(ctx, ctx.outputs[0], "output")
    s, z, lo, hi = float(p.scale), int(p.zero_point), p.qmin, p.qmax
    if activation in ("RELU", "RELU6"):
        lo = max(lo, z)
    if activation == "RELU6":
        hi = min(hi, z + round_half_up_int(6.0 / s))
    if activation == "RELU_N1_TO_1":
        lo, hi = max(lo, z + round_half_up_int(-1.0 / s)), min(hi, z + round_half_up_int(1.0 / s))
    return OutParams(z, lo, max(lo, hi), p.dtype)


def _activation(ctx: OpContext) -> str:
    return getattr(ctx.options, "fused_activation_function", "NONE") or "NONE"


def _grid_map(ctx: OpContext, x: QIn, ratio: float) -> GridMap:
    """Map ``x`` to a grid of unit ``x.scale / ratio`` (``|t| <= x.bound * ratio``, checked < 2**61)."""
    if x.bound * ratio >= 1 << 61:
        raise unsupported(ctx, f"input scale {x.scale:g} is too coarse for the op's common grid")
    m, s = quantize_multiplier(ratio, multiplier_bits(x.bound))
    return GridMap(x.zero_point, int(m), int(s))


def _grid_bits(spans: Sequence[float], cap: int = _GRID_BITS) -> int:
    """Largest g <= cap with max(spans) * 2**g <= 2**59 (spans: input magnitudes in grid units at g = 0)."""
    top = max(spans)
    return cap if top <= 0 else min(cap, math.floor(59 - math.log2(top)))


def _exact_grid(xs: Sequence[QIn]) -> tuple[tuple[GridMap, ...], int] | None:
    """Exact maps to the grid 2**-K (see the module docstring) and K; None if they exceed 62 bits."""
    ratios = [x.scale.as_integer_ratio() for x in xs]  # (p, 2**k)
    k = [den.bit_length() - 1 for _, den in ratios]
    top = max(k)
    mults = [p << (top - ki) for (p, _), ki in zip(ratios, k)]
    if any(x.bound * m >= _LIMIT for x, m in zip(xs, mults)):
        return None
    return tuple(GridMap(x.zero_point, m, 0) for x, m in zip(xs, mults)), top


def _rescale(ctx: OpContext, x: QIn, out: QParams) -> Rescale:
    """Rescale of an input to the output quantization, checked against int64 overflow."""
    r = Rescale.between(x.q.scale, x.q.zero_point, out.scale, out.zero_point, x.q.dtype, out.dtype)
    left = max(0, -int(r.shift))
    if left and (x.bound * int(r.multiplier)) << left >= _LIMIT:
        raise unsupported(ctx, f"input scale {x.scale:g} is too large relative to the output scale "
                                f"{float(out.scale):g}")
    return r


# ----------------------------------------------------------------------------------- ADD / SUB
@dataclass(frozen=True)
class AddFast:
    """y = clip(floor((q_a m_a + q_b m_b + offset) / 2**shift), lo, hi): one rounding, float64-exact."""

    a_multiplier: int
    b_multiplier: int  # negative for SUB
    finish: FloorAffine  # multiplier 1: the map of (q_a m_a + q_b m_b) 2**-shift


@dataclass(frozen=True)
class AddParams:
    """t = to_grid(a) +- to_grid(b) on the grid s_y 2**-grid_bits, then rshift(t, grid_bits)."""

    a: GridMap
    b: GridMap
    subtract: bool
    grid_bits: int
    out: OutParams
    fast: AddFast | None = None


#: the float64 form of ADD / SUB is used when its multipliers' rounding adds at most this (in LSB)
_FAST_ADD_ERROR = 2.0 ** -16


def _fast_add(a: QIn, b: QIn, sy: float, subtract: bool, out: OutParams) -> AddFast | None:
    """The single-rounding float64-exact ADD / SUB, or None (wide operands, or too coarse)."""
    if max(a.q.dtype.itemsize, b.q.dtype.itemsize, np.dtype(out.dtype).itemsize) > 2:
        return None
    ra, rb = a.scale / sy, b.scale / sy
    xa, xb = (max(-x.q.qmin, x.q.qmax) for x in (a, b))  # bounds on |q| (zero points are folded)
    for shift in range(62, 0, -1):
        ma, mb = round(ra * 2.0 ** shift), round(rb * 2.0 ** shift)
        if xa * ma + xb * mb + (1 << shift) < F64_EXACT_LIMIT:
            break
    else:
        return None
    if (a.bound + b.bound) * 2.0 ** -(shift + 1) > _FAST_ADD_ERROR:
        return None
    mb = -mb if subtract else mb
    offset = -a.zero_point * ma - b.zero_point * mb + rounding_offset(shift, out.zero_point)
    finish = FloorAffine.build(1, shift, offset, xa * ma + xb * abs(mb), out.lo, out.hi, out.dtype)
    return None if finish is None else AddFast(ma, mb, finish)


def _prepare_add_sub(ctx: OpContext) -> AddParams | PlainParams:
    quantized, p = begin_params(ctx, (0, 1))
    if not quantized:
        return p
    a, b = _input(ctx, 0), _input(ctx, 1)
    out = output_params(ctx, _activation(ctx))
    sy = float(qparams(ctx, ctx.outputs[0]).scale)
    g = _grid_bits([x.bound * x.scale / sy for x in (a, b)])
    if g < 8:
        raise unsupported(ctx, "the inputs' range exceeds the output's by more than 2**51 LSBs")
    logger.debug("op #%d %s: fine grid of %d bits", ctx.index, ctx.op_name, g)
    subtract = ctx.op_name == "SUB"
    return AddParams(_grid_map(ctx, a, a.scale / sy * 2.0 ** g), _grid_map(ctx, b, b.scale / sy * 2.0 ** g),
                     subtract, g, out, _fast_add(a, b, sy, subtract, out))


@register("ADD", "SUB", prepare=_prepare_add_sub)
def add_sub(a: np.ndarray, b: np.ndarray, *, opt: AddParams | PlainParams) -> np.ndarray:
    """y = act(a +- b) via a common fine grid; see the module docstring."""
    if isinstance(opt, PlainParams):
        return opt(a, b)
    if opt.fast is not None:
        f = opt.fast
        shift = int(f.finish.shift)
        va = np.asarray(a).astype(np.float64)
        np.multiply(va, math.ldexp(f.a_multiplier, -shift), out=va)
        vb = np.asarray(b).astype(np.float64)
        np.multiply(vb, math.ldexp(f.b_multiplier, -shift), out=vb)
        v = np.add(va, vb, out=va) if va.shape == np.broadcast_shapes(va.shape, vb.shape) else va + vb
        return f.finish.finish(v)
    ta, tb = to_grid(a, opt.a), to_grid(b, opt.b)
    return _finish(rounding_rshift(ta - tb if opt.subtract else ta + tb, opt.grid_bits), opt.out)


# ----------------------------------------------------------------------------------------- MUL
@dataclass(frozen=True)
class MulParams:
    """y = mul_rshift((a - a_zero_point)(b - b_zero_point), multiplier, shift)."""

    a_zero_point: int
    b_zero_point: int
    multiplier: int
    shift: int
    out: OutParams


def _prepare_mul(ctx: OpContext) -> MulParams | PlainParams:
    quantized, p = begin_params(ctx, (0, 1))
    if not quantized:
        return p
    a, b = _input(ctx, 0), _input(ctx, 1)
    out = output_params(ctx, _activation(ctx))
    if a.bound * b.bound > _LIMIT:
        raise unsupported(ctx, f"the product of the inputs' ranges ({a.bound} x {b.bound}) exceeds 2**62")
    m, s = normalized_multiplier(a.scale * b.scale / float(qparams(ctx, ctx.outputs[0]).scale))
    if s < -31:
        raise unsupported(ctx, "input scales are more than 2**61 times the output scale")
    return MulParams(a.zero_point, b.zero_point, m, s, out)


@register("MUL", prepare=_prepare_mul)
def mul(a: np.ndarray, b: np.ndarray, *, opt: MulParams | PlainParams) -> np.ndarray:
    """y = act(a * b): exact integer product, one rounding."""
    if isinstance(opt, PlainParams):
        return opt(a, b)
    p = (np.asarray(a, I64) - I64(opt.a_zero_point)) * (np.asarray(b, I64) - I64(opt.b_zero_point))
    return _finish(mul_rshift(p, opt.multiplier, opt.shift), opt.out)


# ----------------------------------------------------------------------------------------- DIV
@dataclass(frozen=True)
class DivParams:
    """y = rshift(floor(((a - za) M << left_shift) / d), shift), d = b - zb; shift >= 1."""

    a_zero_point: int
    b_zero_point: int
    multiplier: int
    left_shift: int
    shift: int
    out: OutParams


def _prepare_div(ctx: OpContext) -> DivParams | PlainParams:
    quantized, p = begin_params(ctx, (0, 1))
    if not quantized:
        return p
    a, b = _input(ctx, 0), _input(ctx, 1)
    out = output_params(ctx, _activation(ctx))
    ratio = a.scale / (b.scale * float(qparams(ctx, ctx.outputs[0]).scale))
    m, s = quantize_multiplier(ratio, multiplier_bits(a.bound))
    m, s = int(m), int(s)
    left = max(0, 1 - s)
    if left and (a.bound * m) << left >= _LIMIT:
        raise unsupported(ctx, f"scale ratio s_a / (s_b s_y) = {ratio:g} is too large")
    return DivParams(a.zero_point, b.zero_point, m, left, max(s, 1), out)


def _zero_divisor(num: np.ndarray, out: OutParams) -> np.ndarray:
    """Quotient by zero: the dtype's max for num > 0, min for num < 0, z_y for 0 (before the clamp)."""
    info = np.iinfo(out.dtype)
    return np.where(num > 0, int(info.max), np.where(num < 0, int(info.min), out.zero_point)).astype(I64)


@register("DIV", prepare=_prepare_div)
def div(a: np.ndarray, b: np.ndarray, *, opt: DivParams | PlainParams) -> np.ndarray:
    """y = act(a / b) with a single rounding; zero divisors saturate."""
    if isinstance(opt, PlainParams):
        return opt(a, b)
    num = np.asarray(a, I64) - I64(opt.a_zero_point)
    d = np.asarray(b, I64) - I64(opt.b_zero_point)
    num, d = np.broadcast_arrays(num, d)
    n = (num * I64(opt.multiplier)) << I64(opt.left_shift)
    # n / d = floor(n / d) + f with 0 <= f < 1 (either sign of d), and f cannot move
    # floor((floor(n / d) + 2**(shift-1)) / 2**shift): one round half up of n / (d 2**shift)
    q = n // np.where(d == 0, 1, d)
    y = rounding_rshift(q, opt.shift) + I64(opt.out.zero_point)
    y = np.where(d == 0, _zero_divisor(num, opt.out), y)
    return np.asarray(np.clip(y, opt.out.lo, opt.out.hi).astype(opt.out.dtype))


# ------------------------------------------------------------------------------ MAXIMUM / MINIMUM
@dataclass(frozen=True)
class RescaleParams:
    """Inputs rescaled to the output quantization before a data-only op."""

    rescales: tuple[Rescale, ...]


def rescales_to_output(ctx: OpContext, data: Sequence[int]) -> tuple[Rescale, ...]:
    out = _per_tensor(ctx, ctx.outputs[0], "output")
    return tuple(_rescale(ctx, _input(ctx, i), out) for i in data)


def _prepare_min_max(ctx: OpContext) -> RescaleParams | PlainParams:
    quantized, p = begin_params(ctx, (0, 1))
    return RescaleParams(rescales_to_output(ctx, (0, 1))) if quantized else p


@register("MAXIMUM", prepare=_prepare_min_max)
def maximum(a: np.ndarray, b: np.ndarray, *, opt: RescaleParams | PlainParams) -> np.ndarray:
    """y = max(a, b) of the inputs rescaled to the output."""
    if isinstance(opt, PlainParams):
        return opt(a, b)
    return np.asarray(np.maximum(opt.rescales[0](a), opt.rescales[1](b)))


@register("MINIMUM", prepare=_prepare_min_max)
def minimum(a: np.ndarray, b: np.ndarray, *, opt: RescaleParams | PlainParams) -> np.ndarray:
    """y = min(a, b) of the inputs rescaled to the output."""
    if isinstance(opt, PlainParams):
        return opt(a, b)
    return np.asarray(np.minimum(opt.rescales[0](a), opt.rescales[1](b)))


# --------------------------------------------------------------------------- SQUARED_DIFFERENCE
@dataclass(frozen=True)
class SquaredDifferenceParams:
    """D = to_grid(a) - to_grid(b) on the grid sqrt(s_y) 2**-half_bits; y = rshift(min(|D|, cap)**2, 2 half_bits)."""

    a: GridMap
    b: GridMap
    half_bits: int
    cap: int
    out: OutParams


def _prepare_squared_difference(ctx: OpContext) -> SquaredDifferenceParams | PlainParams:
    quantized, p = begin_params(ctx, (0, 1))
    if not quantized:
        return p
    a, b = _input(ctx, 0), _input(ctx, 1)
    out = output_params(ctx)
    root = math.sqrt(float(qparams(ctx, ctx.outputs[0]).scale))
    top = max(out.hi - out.zero_point, 0) + 1  # a square of `top` LSBs saturates
    h = min(_grid_bits([x.bound * x.scale / root for x in (a, b)]), (60 - top.bit_length()) // 2)
    if h < 8:
        raise unsupported(ctx, "the inputs' range is too wide for the output's (fewer than 8 grid bits)")
    cap = math.isqrt(top << (2 * h)) + 1
    return SquaredDifferenceParams(_grid_map(ctx, a, a.scale / root * 2.0 ** h),
                                   _grid_map(ctx, b, b.scale / root * 2.0 ** h), h, cap, out)


@register("SQUARED_DIFFERENCE", prepare=_prepare_squared_difference)
def squared_difference(a: np.ndarray, b: np.ndarray, *, opt: SquaredDifferenceParams | PlainParams) -> np.ndarray:
    """y = (a - b)**2 squared exactly on a grid whose square is a power of two times s_y."""
    if isinstance(opt, PlainParams):
        return opt(a, b)
    d = np.minimum(np.abs(to_grid(a, opt.a) - to_grid(b, opt.b)), I64(opt.cap))
    return _finish(rounding_rshift(d * d, 2 * opt.half_bits), opt.out)


# -------------------------------------------------------------------------------- comparisons
_COMPARE: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "GREATER": np.greater, "GREATER_EQUAL": np.greater_equal, "LESS": np.less,
    "LESS_EQUAL": np.less_equal, "EQUAL": np.equal, "NOT_EQUAL": np.not_equal,
}


@dataclass(frozen=True)
class CompareParams:
    """Compare to_grid(a) with to_grid(b) by ``op``; ``exact``: the grid holds the real values exactly."""

    op: str
    a: GridMap
    b: GridMap
    exact: bool


def _prepare_compare(ctx: OpContext) -> CompareParams | PlainParams:
    quantized, p = begin_params(ctx, (0, 1), output=False)
    if not quantized:
        return p
    if np.dtype(ctx.outputs[0].dtype) != _BOOL:
        raise ctx.error(f"output {ctx.outputs[0].name!r} is {np.dtype(ctx.outputs[0].dtype).name}, expected bool")
    a, b = _input(ctx, 0), _input(ctx, 1)
    exact = _exact_grid((a, b))
    if exact is not None:
        return CompareParams(ctx.op_name, *exact[0], True)
    unit = min(a.scale, b.scale)
    k = _grid_bits([x.bound * x.scale / unit for x in (a, b)])
    logger.debug("op #%d %s: no exact grid, comparing on a rounded grid of %d bits", ctx.index, ctx.op_name, k)
    return CompareParams(ctx.op_name, _grid_map(ctx, a, a.scale / unit * 2.0 ** k),
                         _grid_map(ctx, b, b.scale / unit * 2.0 ** k), False)


@register(*_COMPARE, prepare=_prepare_compare)
def compare(a: np.ndarray, b: np.ndarray, *, opt: CompareParams | PlainParams) -> np.ndarray:
    """Bool comparison of the real values of a and b on a common integer grid."""
    if isinstance(opt, PlainParams):
        return opt(a, b)
    return np.asarray(_COMPARE[opt.op](to_grid(a, opt.a), to_grid(b, opt.b)))


# -------------------------------------------------------------------------- FLOOR_DIV / FLOOR_MOD
@dataclass(frozen=True)
class FloorParams:
    """A, B exact grid integers; y = mul_rshift(floor(A / B) or A mod B, multiplier, shift)."""

    a: GridMap
    b: GridMap
    multiplier: int
    shift: int
    out: OutParams


def _prepare_floor(ctx: OpContext) -> FloorParams | PlainParams:
    quantized, p = begin_params(ctx, (0, 1))
    if not quantized:
        return p
    a, b = _input(ctx, 0), _input(ctx, 1)
    out = output_params(ctx)
    exact = _exact_grid((a, b))
    if exact is None:
        raise unsupported(ctx, f"input scales {a.scale!r} and {b.scale!r} have no exact common grid within "
                                "int64 (needs float32 scales within a factor of about 2**21 for 16-bit inputs), "
                                "so the floor cannot be exact")
    (ga, gb), top = exact
    sy = float(qparams(ctx, ctx.outputs[0]).scale)
    # FLOOR_DIV's quotient is a plain integer; FLOOR_MOD's remainder is in grid units 2**-top
    m, s = normalized_multiplier(1.0 / sy if ctx.op_name == "FLOOR_DIV" else math.ldexp(1.0 / sy, -top))
    if s < -31:
        raise unsupported(ctx, f"output scale {sy:g} is too small")
    return FloorParams(ga, gb, m, s, out)


def _floor_operands(a: np.ndarray, b: np.ndarray, opt: FloorParams) -> tuple[np.ndarray, ...]:
    num, den = np.broadcast_arrays(to_grid(a, opt.a), to_grid(b, opt.b))
    return num, den, np.where(den == 0, 1, den)


@register("FLOOR_DIV", prepare=_prepare_floor)
def floor_div(a: np.ndarray, b: np.ndarray, *, opt: FloorParams | PlainParams) -> np.ndarray:
    """y = floor(a / b), exact before the output rounding; zero divisors saturate."""
    if isinstance(opt, PlainParams):
        return opt(a, b)
    num, den, safe = _floor_operands(a, b, opt)
    y = mul_rshift(num // safe, opt.multiplier, opt.shift) + I64(opt.out.zero_point)
    y = np.where(den == 0, _zero_divisor(num, opt.out), y)
    return np.asarray(np.clip(y, opt.out.lo, opt.out.hi).astype(opt.out.dtype))


@register("FLOOR_MOD", prepare=_prepare_floor)
def floor_mod(a: np.ndarray, b: np.ndarray, *, opt: FloorParams | PlainParams) -> np.ndarray:
    """y = a - floor(a / b) b (the sign of b), exact before the output rounding; 0 for b == 0."""
    if isinstance(opt, PlainParams):
        return opt(a, b)
    num, den, safe = _floor_operands(a, b, opt)
    r = np.where(den == 0, 0, np.remainder(num, safe))
    return _finish(mul_rshift(r, opt.multiplier, opt.shift), opt.out)


# --------------------------------------------------------------------------------------- SELECT
@dataclass(frozen=True)
class SelectParams:
    """Branches rescaled to the output; SELECT's rank-1 condition gets ``cond_expand`` unit dims."""

    x: Rescale
    y: Rescale
    cond_expand: int


def _prepare_select(ctx: OpContext) -> SelectParams | PlainParams:
    quantized, p = begin_params(ctx, (1, 2))
    if not quantized:
        return p
    return SelectParams(*rescales_to_output(ctx, (1, 2)), getattr(p, "cond_expand", 0))


@register("SELECT", "SELECT_V2", prepare=_prepare_select)
def select(cond: np.ndarray, x: np.ndarray, y: np.ndarray, *, opt: SelectParams | PlainParams) -> np.ndarray:
    """out = cond ? x : y with both branches in the output quantization."""
    if isinstance(opt, PlainParams):
        return opt(cond, x, y)
    if opt.cond_expand:
        cond = cond.reshape(cond.shape + (1,) * opt.cond_expand)
    return np.asarray(np.where(cond, opt.x(x), opt.y(y)))


# -------------------------------------------------------------------------------------- LOGICAL
def _prepare_logical(ctx: OpContext) -> PlainParams:
    return _plain(ctx)


@register("LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", prepare=_prepare_logical)
def logical(*xs: np.ndarray, opt: PlainParams) -> np.ndarray:
    """Bool logic: the float kernel."""
    return opt(*xs)


# ------------------------------------------------------------------------------------------ cast
#: the low limb of the scale's 53-bit mantissa has this many bits
_LIMB_BITS = 27


@dataclass(frozen=True)
class CastParams:
    """CAST. ``mode``: 'numpy' (plain -> plain), 'nonzero' (quantized -> bool), 'trunc' (quantized
    -> plain integer: trunc(scale * (q - zp)) with scale = (hi * 2**27 + lo) * 2**-shift), 'rescale'
    (-> quantized)."""

    mode: str
    dtype: np.dtype
    zero_point: int = 0
    scale_hi: int = 0
    scale_lo: int = 0
    shift: int = 0
    rescale: Rescale | None = None


def _cast_trunc(ctx: OpContext, src: TensorInfo, dst: TensorInfo) -> CastParams:
    p = per_tensor_qparams(ctx, src, "input")
    if p.dtype.itemsize > 2:
        raise refuse(ctx, f"casting a quantized {p.dtype.name} input to an integer needs an exact "
                          f"product wider than int64; only 8- and 16-bit quantized inputs are supported")
    frac, exp = np.frexp(float(p.scale))  # scale = frac * 2**exp, frac in [0.5, 1)
    mant = int(np.ldexp(frac, 53))  # exact: float64 has a 53-bit mantissa
    shift = 53 - int(exp)
    if shift < _LIMB_BITS:
        raise refuse(ctx, f"input scale {float(p.scale)} >= 2**26 is too large for the exact "
                          f"integer cast")
    hi, lo = mant >> _LIMB_BITS, mant & ((1 << _LIMB_BITS) - 1)
    return CastParams("trunc", np.dtype(dst.dtype), int(p.zero_point), hi, lo, shift)


def _prepare_cast(ctx: OpContext) -> CastParams:
    ctx.require_inputs(1)
    src, dst = ctx.inputs[0], ctx.outputs[0]
    for what, t in (("input", src), ("output", dst)):
        if np.dtype(t.dtype).kind not in "iub":
            raise refuse(ctx, f"{what} {t.name!r} is {np.dtype(t.dtype).name}; the integer CAST takes "
                              f"integer and bool tensors (float casts are boundary ops)")
    qs, qd = is_quantized(src), is_quantized(dst)
    out_dtype = np.dtype(dst.dtype)
    if qd:
        if qs:
            return CastParams("rescale", out_dtype, rescale=data_rescale(ctx, src, dst))
        pd = per_tensor_qparams(ctx, dst, "output")
        in_dtype = np.dtype(np.uint8) if np.dtype(src.dtype).kind == "b" else np.dtype(src.dtype)
        if in_dtype.itemsize > 4:
            raise refuse(ctx, f"a plain {in_dtype.name} input cannot be requantized within int64")
        r = Rescale.between(1.0, 0, pd.scale, pd.zero_point, in_dtype, out_dtype)
        return CastParams("rescale", out_dtype, rescale=r)
    if not qs:
        return CastParams("numpy", out_dtype)
    if out_dtype.kind == "b":
        return CastParams("nonzero", out_dtype, int(per_tensor_qparams(ctx, src, "input").zero_point))
    return _cast_trunc(ctx, src, dst)


def _trunc_scaled(x: np.ndarray, p: CastParams) -> np.ndarray:
    """trunc((x - zp) * (hi * 2**27 + lo) / 2**shift), exactly, in int64 (|x - zp| < 2**16)."""
    d = x.astype(I64) - p.zero_point
    ad = np.abs(d)
    # floor((H * 2**27 + L) / 2**shift) = (H + (L >> 27)) >> (shift - 27); H < 2**42, L < 2**43
    v = (ad * p.scale_hi + ((ad * p.scale_lo) >> _LIMB_BITS)) >> min(p.shift - _LIMB_BITS, 62)
    return saturate(np.where(d < 0, -v, v), p.dtype)


@register("CAST", prepare=_prepare_cast)
def cast(x: np.ndarray, *, opt: CastParams) -> np.ndarray:
    """CAST between integer/bool tensors, quantized or plain (see the module docstring)."""
    if opt.mode == "numpy":
        return float_cast(x, opt=opt)
    if opt.mode == "nonzero":
        return x.astype(I64) != opt.zero_point
    if opt.mode == "trunc":
        return _trunc_scaled(x, opt)
    r = opt.rescale
    if x.dtype.kind == "b":
        return requantize(x.astype(I64), r.multiplier, r.shift, r.out_zero_point, r.out_dtype)
    return r(x)


# ------------------------------------------------------------------------- unary math ops and POW
@register(*_tables.ELEMENTWISE_TABLE_OPS, prepare=_tables.prepare_unary_table)
def unary_lut(q: np.ndarray, *, opt: _tables.LutParams | _tables.PlainUnaryParams) -> np.ndarray:
    """y = table[q - qmin] (ABS/NEG of plain integers: np.abs / np.negative): ``activation.unary_lut``."""
    return _tables.unary_lut(q, opt=opt)


@register("POW", prepare=_tables.prepare_pow)
def pow_(a: np.ndarray, b: np.ndarray, *,
         opt: _tables.PairLutParams | _tables.PowExpLogParams | _tables.PlainPowParams) -> np.ndarray:
    """y = table[i_a, i_b] or exp2(b * log2 a) by tables (plain int32: a ** b): ``activation.pow_lut``."""
    return _tables.pow_lut(a, b, opt=opt)
