"""Integer kernels of the activation family (lookup tables for the unary activations, PRELU, SOFTMAX,
LOG_SOFTMAX, L2_NORMALIZATION) and the lookup tables the elementwise unary math ops and POW share
(``elementwise.py`` registers those ops, whose float kernels are in ``ops/elementwise.py``).

Bounds are in output LSBs (``s_out``), for results inside the output's range (outside it the output
saturates to the range end). Table ops (the unary ops, POW's pair table) are bounded against the
float kernel of the same op (``ops/``) run on the float32 dequantized inputs; the others against the
exact function of the dequantized inputs (POW's exp/log path: of the float32 dequantized operands,
as the float kernel sees them). Against the float32 kernel add that kernel's own rounding error.
Inputs are per-tensor quantized UINT8, INT8 or INT16 (any zero point); outputs are any per-tensor
quantized integer type up to INT32. ``round`` below is round half up (``floor(v + 1/2)``)
unless stated otherwise.

* ABS, NEG, SQUARE, SQRT, RSQRT, EXP, LOG, SIN, COS, FLOOR, CEIL, ROUND, RELU, RELU6, RELU_N1_TO_1,
  RELU_0_TO_1, LEAKY_RELU, ELU, LOGISTIC, TANH, HARD_SWISH, GELU: one table over every input code
  (256 entries for 8-bit inputs, 65536 for INT16), built in prepare by running the float kernel
  (with the op's options: LEAKY_RELU alpha, GELU approximate) on the float32 dequantized codes and
  quantizing the results: ``table[c] = saturate(round(f(real(c)) / s_out) + zp_out)``. The kernel is
  ``table[q - qmin]``. Bound: 0.5 LSB (the table is the exactly rounded float kernel); against the
  exact function add the float kernel's own float32 error. Outside the float op's domain: SQRT,
  RSQRT and LOG take their value at 0 for negative inputs, so SQRT(x < 0) = 0, RSQRT(x <= 0) = qmax
  and LOG(x <= 0) = qmin; +-inf results (EXP overflow, RSQRT(0), LOG(0)) saturate to qmax/qmin; any
  other NaN result gives the output zero point (real 0, clamped into the range). ABS and NEG of plain
  (unquantized) integer tensors are plain integer ops (exact, wrapping like C at the type minimum).
* POW: when the pair table fits (at most 2**23 entries: a constant operand with at most 128 distinct
  values against an INT16 runtime one, or two runtime 8-bit tensors), a table over every pair (base
  code or constant base value, exponent code or constant exponent value) ``table[i, j] =
  saturate(round(pow(a_i, b_j) / s_out) + zp_out)`` from the float kernel; bound 0.5 LSB. Otherwise
  (two runtime tensors with an INT16 one, or a constant with more distinct values) ``y = exp2(b *
  log2|a|) / s_out`` by tables over each operand: ``LA = round(log2|a| * 2**fa)``, ``B = round(b *
  2**fb)`` (fa, fb chosen so ``|LA|, |B| <= 2**31``), ``u = LA*B`` rescaled to Q30 minus
  ``log2(s_out)``, ``2**u`` = a shift times a 2**16-entry table of 2**f with linear interpolation;
  bound ``0.5 + |y/s_out| * (1.05*L*M + 4) * 2**-30`` LSB with L = max|log2|a||, M = max|b| over the
  operand codes (``pow_error_bound_lsb`` gives the exact expression; e.g. 0.5009 for a, b in +-4,
  +-3 and an INT16 output). Both ways a NaN result (negative base, non-integer exponent) gives the
  output zero point, 0 ** negative gives qmax. Plain INT32 POW is the integer power (exact,
  wrapping), negative exponents raise InputError like the float kernel.
* PRELU with a constant alpha (per tensor or along the last axis), input zero point 0 and an
  output of up to 16 bits: ``x >= 0 -> round(x * m_pos * 2**-sh_pos)`` (``m_pos`` ~ s_in/s_out),
  ``x < 0 -> round(x * n[c] * 2**-sh[c])`` with one signed multiplier per channel ``n[c]`` ~
  s_in * alpha[c] / s_out (alpha[c] = s_alpha (q_alpha - zp_alpha), its sign on ``n``), both from
  ``f64_multiplier`` with the bound ``max|x|``; then ``+ zp_out``, saturate; float64-exact
  (``FloorAffine``). Bound: 0.5 + |y| 2**-bits LSB (bits = 31 for INT16 data while the ratios
  are at least 2**-21, never below 24).
* PRELU otherwise: ``x = q - zp_in``; ``x >= 0 -> round(x * m_pos * 2**-sh_pos)``,
  ``x < 0 -> round(x * a * m_neg * 2**-sh_neg)`` with ``a = q_alpha - zp_alpha`` (constant or runtime
  alpha, per tensor or per channel) and ``m_neg`` ~ s_in*s_alpha/s_out, then ``+ zp_out``, saturate.
  Multipliers keep ``|product| * m < 2**62`` (>= 28 bits for 16-bit operands). Bound: 0.5 +
  |y|/s_out * 2**-27 LSB (<= 0.5 + 2**-11 for INT16 outputs).
* SOFTMAX (any beta, last axis): ``i = max(q) - q`` (``q - min(q)`` when beta < 0) indexes two
  tables over ``i`` built from ``e(i) = exp(-|beta| * s_in * i)``: ``E[i] = round(2**P * e(i))`` and
  ``T[i] = min(round(2**P * e(i) / s_out), 2**P * N * (qmax - zp_out + 1))``; ``S = sum(E)`` in int64
  (``S >= 2**P``); ``out = saturate(round(T[i] / S) + zp_out)``. ``P <= 50`` is the largest with
  ``S < 2**62`` and ``T < 2**62`` (N = last axis length). Bound: 0.5 + ((qmax - zp_out + 1) * N + 1)
  * 2**-P LSB (the second term is < 2**-16 for INT16 outputs with s_out >= 2**-15 and N <= 2**14,
  < 2**-13 for N <= 2**16).
* LOG_SOFTMAX (last axis): ``S = sum(E[max(q) - q])`` as for SOFTMAX (beta 1); ``L = ln(S) - P*ln 2``
  in Q30 by an integer log (leading-bit position + a 2**16-entry table of ln(1 + j/2**16) with
  linear interpolation; |error| <= 2**-29); ``out = saturate(round(d*s_in/s_out - L*2**-30/s_out)
  + zp_out)`` with ``d = q - max(q)`` and both terms formed in Q16 by integer multipliers. Bound: 0.5
  + 2**-16 + |y/s_out| * 2**-25 + (2**-29 + N * 2**-P) / s_out LSB (< 0.5 + 2**-8 for INT16 outputs
  with s_out >= 2**-16 and N <= 2**16). Needs s_out >= 2**-30 and s_in/s_out <= 2**24.
* L2_NORMALIZATION (last axis, fused NONE/RELU/RELU6/RELU_N1_TO_1/TANH): ``x = q - zp_in``,
  ``S = sum(x*x)`` in int64; per row ``k = (62 - bitlen(S)) // 2``, ``r = isqrt(S << 2k)`` (so
  ``2**30 <= r < 2**31``); ``out = rounding_divide((x << k) * K, r << c) + zp_out`` with ``K * 2**-c``
  = 1/s_out (31-bit K; rounding_divide rounds halves away from zero). Rows with s_in*sqrt(S) < 1e-6
  (the float op's epsilon; only all-zero rows unless s_in < 1e-6) use ``x * s_in / (1e-6 * s_out)``
  by a multiplier instead. RELU/RELU6/RELU_N1_TO_1 clamp in the output's integer domain. Bound: 0.5
  + |y/s_out| * 2**-29 LSB. Fused TANH: the normalized value is formed at scale 2**-19 and mapped
  by a table over [-2**19, 2**19]; bound 0.5 + (2**-20 + 2**-29) / s_out LSB.

Prepare refuses (UnsupportedOpError): quantized inputs wider than 16 bits (no table over 2**32
codes), per-channel input or output quantization, POW operand ranges with fa + fb < 30 (|b| *
|log2 a| beyond ~2**31), LOG_SOFTMAX scales outside the stated range, L2_NORMALIZATION output scales
below 2**-31 or rows whose sum of squares could overflow int64, and fused SIGN_BIT.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...errors import InputError, UnsupportedOpError
from ...ops.registry import OpContext, TensorInfo, get_op
from ...rounding import round_half_up, round_half_up_int
from ..fixedpoint import (I64, FloorAffine, f64_multiplier, isqrt, last_axis_vector, multiplier_bits,
                          quantize_multiplier, rounding_divide, rounding_offset, rounding_rshift, saturate)
from ..registry import QParams, channel_vector, qparams, register

logger = logging.getLogger(__name__)

_F32 = np.dtype(np.float32)
#: widest input type a lookup table covers (2**16 codes)
_MAX_TABLE_INPUT_BITS = 16
#: most entries of a POW pair table (int16 entries: 16 MiB)
_MAX_PAIR_TABLE = 1 << 23

UNARY_TABLE_OPS = (
    "ABS", "NEG", "SQUARE", "SQRT", "RSQRT", "EXP", "LOG", "SIN", "COS", "FLOOR", "CEIL", "ROUND",
    "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LEAKY_RELU", "ELU", "LOGISTIC", "TANH",
    "HARD_SWISH", "GELU",
)
#: the table ops whose float kernel is in ops/elementwise.py: registered by elementwise.py (the same table)
ELEMENTWISE_TABLE_OPS = ("ABS", "NEG", "SQUARE", "SQRT", "RSQRT", "EXP", "LOG", "SIN", "COS", "FLOOR", "CEIL", "ROUND")
#: the table ops whose float kernel is in ops/activation.py: registered here
ACTIVATION_TABLE_OPS = tuple(op for op in UNARY_TABLE_OPS if op not in ELEMENTWISE_TABLE_OPS)
#: ops whose float domain is x >= 0: negative inputs are evaluated at 0
_NONNEGATIVE_DOMAIN = ("SQRT", "RSQRT", "LOG")
#: ops with a plain integer kernel for unquantized integer inputs
_PLAIN_INTEGER_OPS = ("ABS", "NEG")


# ============================================================================ shared helpers
def is_quantized(t: TensorInfo) -> bool:
    """Whether a tensor carries a quantization scale."""
    q = t.quantization
    return q is not None and bool(q.scale)


def _unsupported(ctx: OpContext, reason: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: {reason}")


def _per_tensor(ctx: OpContext, t: TensorInfo, what: str, max_bits: int | None = None) -> QParams:
    """The QParams of a per-tensor quantized integer tensor (at most ``max_bits`` wide)."""
    p = qparams(ctx, t, what)
    if p.per_channel:
        raise _unsupported(ctx, f"{what} {t.name!r} is quantized per channel; only per-tensor quantization "
                                f"is supported here")
    if max_bits is not None and p.dtype.itemsize * 8 > max_bits:
        raise _unsupported(ctx, f"{what} {t.name!r} is {p.dtype.name}; the integer kernel takes at most "
                                f"{max_bits}-bit tensors here (its tables cover every code)")
    return p


def _output(ctx: OpContext) -> QParams:
    if len(ctx.outputs) != 1:
        raise ctx.error(f"has {len(ctx.outputs)} outputs, expected 1")
    return _per_tensor(ctx, ctx.outputs[0], "output", 32)


def code_reals(p: QParams) -> np.ndarray:
    """The float32 real value of every code of ``p.dtype`` in order (``real = scale * (q - zp)``)."""
    codes = np.arange(p.qmin, p.qmax + 1, dtype=np.float64)
    return ((codes - float(p.zero_point)) * float(p.scale)).astype(np.float32)


def quantize_reals(y: np.ndarray, out: QParams) -> np.ndarray:
    """``saturate(floor(y / s_out + 1/2) + zp_out)`` (round half up) in ``out.dtype``.

    +inf -> qmax, -inf -> qmin, NaN -> zp_out (real 0, clamped into the range).
    """
    v = np.asarray(y, dtype=np.float64) / float(out.scale)
    with np.errstate(invalid="ignore"):
        v = round_half_up(v) + float(out.zero_point)
    v = np.where(np.isnan(v), float(out.zero_point), v)
    return np.clip(v, out.qmin, out.qmax).astype(out.dtype)


def eval_float_op(ctx: OpContext, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """The float kernel of ``ctx.op_name`` (prepared with ``ctx.options``) on float32 arrays."""
    opdef = get_op(ctx.op_name)
    infos = tuple(TensorInfo(f"{t.name}:float" if t is not None else f"in{i}", tuple(x.shape), _F32)
                  for i, (t, x) in enumerate(zip(ctx.inputs, inputs)))
    shape = np.broadcast_shapes(*(tuple(x.shape) for x in inputs))
    fctx = OpContext(ctx.index, ctx.op_name, infos, (TensorInfo("out:float", shape, _F32),), ctx.options)
    params = opdef.prepare(fctx) if opdef.prepare else ctx.options
    with np.errstate(all="ignore"):
        y = opdef.kernel(*inputs, opt=params)
    return np.asarray(y)


def bit_length(n: np.ndarray) -> np.ndarray:
    """Number of bits of non-negative int64 values (0 for 0), elementwise."""
    m = np.asarray(n, dtype=I64).copy()
    bits = np.zeros(m.shape, dtype=I64)
    for step in (32, 16, 8, 4, 2, 1):
        big = m >= (I64(1) << I64(step))
        bits += np.where(big, step, 0)
        m = np.where(big, m >> I64(step), m)
    return bits + (m > 0)


def _activation_bounds(ctx: OpContext, act: str, out: QParams) -> tuple[int, int]:
    """Integer clamp range of a fused activation in the output's quantized domain."""
    lo, hi = out.qmin, out.qmax
    zp, s = int(out.zero_point), float(out.scale)

    def code(real: float) -> int:
        return zp + round_half_up_int(real / s)

    if act in ("NONE", "TANH"):
        return lo, hi
    if act == "RELU":
        return max(lo, zp), hi
    if act == "RELU6":
        return max(lo, zp), max(lo, min(hi, code(6.0)))
    if act == "RELU_N1_TO_1":
        return max(lo, min(hi, code(-1.0))), max(lo, min(hi, code(1.0)))
    raise _unsupported(ctx, f"fused activation {act!r} is not supported")


def _gather(table: np.ndarray, q: np.ndarray, offset: int) -> np.ndarray:
    """``table[q + offset]`` for an integer array ``q``."""
    if offset == 0 and q.dtype == np.uint8:
        return table[q]
    return table[q.astype(np.intp) + offset]


# ============================================================================ unary lookup tables
@dataclass(frozen=True)
class LutParams:
    """A lookup table over every input code: ``y = table[q + offset]`` (``offset = -qmin``)."""

    table: np.ndarray  # output dtype, one entry per input code
    offset: int


@dataclass(frozen=True)
class PlainUnaryParams:
    """ABS/NEG of an unquantized integer tensor."""

    op: str


def build_unary_table(ctx: OpContext, inp: QParams, out: QParams) -> np.ndarray:
    """The table of ``ctx.op_name``: the float kernel on every dequantized input code, quantized to ``out``."""
    x = code_reals(inp)
    if ctx.op_name in _NONNEGATIVE_DOMAIN:
        x = np.maximum(x, np.float32(0))
    return quantize_reals(eval_float_op(ctx, [x]), out)


def prepare_unary_table(ctx: OpContext) -> LutParams | PlainUnaryParams:
    ctx.require_inputs(1)
    t = ctx.inputs[0]
    if not is_quantized(t) and ctx.op_name in _PLAIN_INTEGER_OPS and np.dtype(t.dtype).kind in "iu":
        return PlainUnaryParams(ctx.op_name)
    inp = _per_tensor(ctx, t, "input", _MAX_TABLE_INPUT_BITS)
    out = _output(ctx)
    table = build_unary_table(ctx, inp, out)
    logger.debug("%s: %d-entry table %s -> %s", ctx.op_name, table.size, inp.dtype, out.dtype)
    return LutParams(table, -inp.qmin)


@register(*ACTIVATION_TABLE_OPS, prepare=prepare_unary_table)
def unary_lut(q: np.ndarray, *, opt: LutParams | PlainUnaryParams) -> np.ndarray:
    """y = table[q - qmin] (ABS/NEG of plain integers: np.abs / np.negative)."""
    if isinstance(opt, PlainUnaryParams):
        return np.abs(q) if opt.op == "ABS" else np.negative(q)
    return _gather(opt.table, q, opt.offset)


# ============================================================================ POW
@dataclass(frozen=True)
class PairLutParams:
    """``y = table[i0, i1]``: ``i_k = q_k + offset_k`` for a runtime operand, ``index_k`` for a constant one."""

    table: np.ndarray  # (rows, cols), output dtype
    offsets: tuple[int, int]
    const_index: tuple[np.ndarray | None, np.ndarray | None]  # intp arrays shaped like the constant operands


@dataclass(frozen=True)
class PlainPowParams:
    """POW of unquantized integer tensors."""


def _operand_values(ctx: OpContext, i: int) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(float32 values indexing one table axis, index array for a constant operand or None, offset)."""
    t = ctx.inputs[i]
    what = ("base", "exponent")[i]
    if t.data is not None:
        data = np.asarray(t.data)
        if is_quantized(t):
            p = qparams(ctx, t, what)
            s, z = channel_vector(p, data.ndim)
            real = ((data.astype(np.float64) - z) * s).astype(np.float32)
        else:
            real = data.astype(np.float32)
        values, inverse = np.unique(real, return_inverse=True)
        return values, inverse.reshape(real.shape).astype(np.intp), 0
    p = _per_tensor(ctx, t, what, _MAX_TABLE_INPUT_BITS)
    return code_reals(p), None, -p.qmin


def prepare_pow(ctx: OpContext) -> PairLutParams | PowExpLogParams | PlainPowParams:
    ctx.require_inputs(2)
    a, b = ctx.inputs[:2]
    if not is_quantized(a) and not is_quantized(b) and \
            all(np.dtype(t.dtype) == np.dtype(np.int32) for t in (a, b)):
        return PlainPowParams()
    out = _output(ctx)
    try:
        np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        raise ctx.error(f"input shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None
    (va, ia, oa), (vb, ib, ob) = _operand_values(ctx, 0), _operand_values(ctx, 1)
    if va.size * vb.size > _MAX_PAIR_TABLE:
        logger.debug("POW: %dx%d pair table too large; exp/log tables instead", va.size, vb.size)
        return _prepare_pow_exp_log(ctx, (va, ia, oa), (vb, ib, ob), out)
    table = quantize_reals(eval_float_op(ctx, [va[:, None], vb[None, :]]), out)
    logger.debug("POW: %dx%d table", va.size, vb.size)
    return PairLutParams(table, (oa, ob), (ia, ib))


# --- POW by exp2(b * log2 a) with tables over each operand
#: fraction bits of u = b*log2|a| - log2(s_out) and of the 2**f table's entries
_POW_U_BITS = 30
_EXP2_INDEX_BITS = 16
_EXP2_TABLE = np.floor(np.exp2(np.arange((1 << _EXP2_INDEX_BITS) + 1, dtype=np.float64) / (1 << _EXP2_INDEX_BITS))
                       * (1 << _POW_U_BITS) + 0.5).astype(I64)
# special cases of a pair, from the base class (positive, negative, zero) and the exponent class
_BASE_POS, _BASE_NEG, _BASE_ZERO = 0, 1, 2
_EXP_EVEN, _EXP_ODD, _EXP_FRACTION = 0, 1, 2


@dataclass(frozen=True)
class PowExpLogParams:
    """y = sign * 2**u / s_out, u = LA[i_a] * B[i_b] * 2**-(fa+fb) - log2(s_out), by a 2**f table.

    LA = round(log2|a| * 2**fa) over the base values, B = round(b * 2**fb) over the exponent values;
    ``la_max``/``b_max`` are the largest |LA|, |B| (they give the stated bound).
    """

    log_table: np.ndarray  # int64 LA
    base_class: np.ndarray  # int8: positive / negative / zero
    exp_table: np.ndarray  # int64 B
    exp_class: np.ndarray  # int8: even integer / odd integer / not an integer
    exp_sign: np.ndarray  # int8: sign of b (for a zero base)
    offsets: tuple[int, int]
    const_index: tuple[np.ndarray | None, np.ndarray | None]
    log_bits: int  # fa
    exp_bits: int  # fb
    la_max: int
    b_max: int
    log2_out_scale: int  # round(-log2(s_out) * 2**30)
    out_zero_point: int
    out_dtype: np.dtype


def _prepare_pow_exp_log(ctx: OpContext, base, expo, out: QParams) -> PowExpLogParams:
    va, ia, oa = base
    vb, ib, ob = expo
    a = va.astype(np.float64)
    b = vb.astype(np.float64)
    with np.errstate(divide="ignore"):
        log2a = np.where(a == 0, 0.0, np.log2(np.abs(a)))
    la, bm = max(float(np.max(np.abs(log2a))), 2.0 ** -20), max(float(np.max(np.abs(b))), 2.0 ** -20)
    fa = min(40, 30 - math.ceil(math.log2(la)))  # |LA| <= 2**30
    fb = min(40, 31 - math.ceil(math.log2(bm)))  # |B| <= 2**31
    if fa + fb < _POW_U_BITS:
        raise _unsupported(ctx, f"POW exponents up to {bm:g} with |log2(base)| up to {la:g} leave too few "
                                f"fraction bits for the exp/log kernel")
    log_table = round_half_up(np.ldexp(log2a, fa)).astype(I64)
    exp_table = round_half_up(np.ldexp(b, fb)).astype(I64)
    base_class = np.where(a > 0, _BASE_POS, np.where(a < 0, _BASE_NEG, _BASE_ZERO)).astype(np.int8)
    integer = b == np.floor(b)
    odd = integer & (np.abs(np.fmod(b, 2.0)) == 1.0)
    exp_class = np.where(~integer, _EXP_FRACTION, np.where(odd, _EXP_ODD, _EXP_EVEN)).astype(np.int8)
    c = int(round(-math.log2(float(out.scale)) * 2 ** _POW_U_BITS))
    return PowExpLogParams(log_table, base_class, exp_table, exp_class, np.sign(b).astype(np.int8), (oa, ob),
                           (ia, ib), int(fa), int(fb),
                           int(np.max(np.abs(log_table))), int(np.max(np.abs(exp_table))), c,
                           int(out.zero_point), out.dtype)


def pow_error_bound_lsb(opt: PowExpLogParams, y_max_lsb: float) -> float:
    """The exp/log POW bound in output LSBs for results with |y / s_out| <= y_max_lsb."""
    la, bm = opt.la_max * 2.0 ** -opt.log_bits, opt.b_max * 2.0 ** -opt.exp_bits
    du = la * 2.0 ** -(opt.exp_bits + 1) + bm * 2.0 ** -(opt.log_bits + 1) + 2.0 ** -(_POW_U_BITS - 1)
    rel = math.expm1(du * math.log(2.0)) * (1 + 2.0 ** -29) + 2.0 ** -29  # exponent error, 2**f table error
    return 0.5 + y_max_lsb * rel


def _exp2_fixed(u: np.ndarray) -> np.ndarray:
    """round(2**(u * 2**-30)) for int64 u clamped to [-31, 33) * 2**30 (>= 2**32 means saturated)."""
    u = np.clip(u, -31 << _POW_U_BITS, (33 << _POW_U_BITS) - 1)
    n = u >> _POW_U_BITS
    f = u & ((1 << _POW_U_BITS) - 1)
    low_bits = _POW_U_BITS - _EXP2_INDEX_BITS
    j = f >> low_bits
    lo = _EXP2_TABLE[j]
    x = lo + rounding_rshift((_EXP2_TABLE[j + 1] - lo) * (f & ((1 << low_bits) - 1)), low_bits)
    return rounding_rshift(x, _POW_U_BITS - n)


def _pair_index(a: np.ndarray, b: np.ndarray, opt: PairLutParams | PowExpLogParams):
    """Table indices of both POW operands: code + offset (runtime) or the prepared index (constant)."""
    ia, ib = opt.const_index
    i0 = ia if ia is not None else a.astype(np.intp) + opt.offsets[0]
    i1 = ib if ib is not None else b.astype(np.intp) + opt.offsets[1]
    return i0, i1


def _pow_exp_log(a: np.ndarray, b: np.ndarray, opt: PowExpLogParams) -> np.ndarray:
    i0, i1 = _pair_index(a, b, opt)
    t = opt.log_table[i0] * opt.exp_table[i1]  # b * log2|a| in Q(fa + fb), |t| < 2**62
    u = rounding_rshift(t, opt.log_bits + opt.exp_bits - _POW_U_BITS) + opt.log2_out_scale
    y = _exp2_fixed(u)
    base, expo = opt.base_class[i0], opt.exp_class[i1]
    neg = base == _BASE_NEG
    y = np.where(neg & (expo == _EXP_ODD), -y, y)
    y = np.where(neg & (expo == _EXP_FRACTION), 0, y)  # NaN -> zero point
    zero = base == _BASE_ZERO
    b_sign = opt.exp_sign[i1]
    y = np.where(zero & (b_sign > 0), 0, np.where(zero & (b_sign < 0), I64(1) << 40, y))
    return saturate(y + opt.out_zero_point, opt.out_dtype)


def pow_lut(a: np.ndarray, b: np.ndarray, *, opt: PairLutParams | PowExpLogParams | PlainPowParams) -> np.ndarray:
    """y = table[i_a, i_b] or exp2(b * log2 a) by tables, broadcasting (plain int32: a ** b)."""
    if isinstance(opt, PlainPowParams):
        if np.any(b < 0):
            raise InputError("POW: negative exponent with int32 inputs (TFLite does not support it)")
        with np.errstate(over="ignore"):
            return np.asarray(np.power(a, b))
    if isinstance(opt, PowExpLogParams):
        return _pow_exp_log(a, b, opt)
    return opt.table[_pair_index(a, b, opt)]


# ============================================================================ PRELU
@dataclass(frozen=True)
class PreluParams:
    """x = q - in_zp; y = x >= 0 ? rshift(x * pos_m, pos_s) : rshift(x * a * neg_m, neg_s); + out_zp."""

    in_zero_point: int
    pos_multiplier: np.ndarray
    pos_shift: np.ndarray
    alpha: np.ndarray | None  # int64 q_alpha - zp_alpha of a constant alpha
    alpha_zero_point: np.ndarray  # broadcastable to alpha (runtime alpha)
    neg_multiplier: np.ndarray  # broadcastable to alpha
    neg_shift: np.ndarray
    out_zero_point: int
    out_dtype: np.dtype
    #: float64-exact form (constant alpha, input zero point 0, output <= 16 bits): the maps of
    #: max(x, 0) by pos_m and of min(x, 0) by the signed per-channel alpha multiplier, one finish
    fast: tuple[FloorAffine, FloorAffine] | None = None


def _centered_bound(p: QParams) -> int:
    """Largest |q - zp| over the codes of ``p``."""
    zp = np.asarray(p.zero_point, I64)
    return int(max(p.qmax - int(zp.min()), int(zp.max()) - p.qmin))


def _prepare_prelu(ctx: OpContext) -> PreluParams:
    ctx.require_inputs(2)
    x_t, a_t = ctx.inputs[:2]
    try:
        np.broadcast_shapes(tuple(x_t.shape), tuple(a_t.shape))
    except ValueError:
        raise ctx.error(f"input shapes {tuple(x_t.shape)} and {tuple(a_t.shape)} do not broadcast") from None
    inp = _per_tensor(ctx, x_t, "input", _MAX_TABLE_INPUT_BITS)
    ap = qparams(ctx, a_t, "alpha")
    if ap.dtype.itemsize > 2:
        raise _unsupported(ctx, f"alpha {a_t.name!r} is {ap.dtype.name}; at most 16 bits are supported")
    out = _output(ctx)
    a_scale, a_zp = channel_vector(ap, len(a_t.shape))
    x_bound = _centered_bound(inp)
    pm, ps = quantize_multiplier(inp.scale / out.scale, multiplier_bits(x_bound))
    nm, ns = quantize_multiplier(inp.scale * a_scale / out.scale, multiplier_bits(x_bound * _centered_bound(ap)))
    alpha = None
    if a_t.data is not None:
        alpha = np.asarray(a_t.data).astype(I64) - a_zp
    fast = None
    if alpha is not None and int(inp.zero_point) == 0:
        fast = _fast_prelu(inp, out, np.asarray(a_scale, np.float64) * alpha, tuple(x_t.shape))
    return PreluParams(int(inp.zero_point), pm, ps, alpha, np.asarray(a_zp, I64), nm, ns,
                       int(out.zero_point), out.dtype, fast)


def _fast_prelu(inp: QParams, out: QParams, alpha_real: np.ndarray, x_shape: tuple[int, ...]
                ) -> tuple[FloorAffine, FloorAffine] | None:
    """The float64-exact PRELU maps, or None (alpha not a last-axis vector, or not exact)."""
    try:
        if np.broadcast_shapes(alpha_real.shape, x_shape) != x_shape:
            return None
    except ValueError:
        return None
    alpha_vec = last_axis_vector(alpha_real)
    if alpha_vec is None:
        return None
    if alpha_vec.size > 1 and alpha_vec.size != x_shape[-1]:
        return None
    if alpha_vec.size == 1:
        alpha_vec = alpha_vec.reshape(())
    x_bound = _centered_bound(inp)
    zp, lo, hi = int(out.zero_point), out.qmin, out.qmax
    ratio = float(inp.scale) / float(out.scale)
    neg_real = ratio * alpha_vec
    picked = [f64_multiplier(ratio, x_bound), f64_multiplier(np.abs(neg_real), x_bound)]
    if any(p is None for p in picked):
        return None
    (pm, ps), (nm, ns) = picked
    nm = np.where(neg_real < 0, -nm, nm)
    def build(m, s, split):
        offsets = np.reshape([rounding_offset(si, zp) for si in np.reshape(s, -1)], np.shape(s))
        return FloorAffine.build(m, s, offsets.astype(object), x_bound, lo, hi, out.dtype, split)

    maps = [build(m, s, False) for m, s in ((pm, ps), (nm, ns))]
    if any(m is None for m in maps):
        return None
    if any(m.whole is not None for m in maps):  # one finish for both: the split form for both
        maps = [build(m, s, True) for m, s in ((pm, ps), (nm, ns))]
    pos, neg = maps
    # one finish serves both: the same addends (1/2 + zp, or 1/2 then zp) and bounds
    same = ((pos.whole is None) == (neg.whole is None)
            and all(np.all(getattr(neg, k) == getattr(pos, k)) for k in ("addend", "lo", "hi"))
            and (pos.whole is None or np.all(neg.whole_addend == pos.whole_addend)))
    return (pos, neg) if same and pos.channels == 0 else None


@register("PRELU", prepare=_prepare_prelu)
def prelu(q: np.ndarray, alpha: np.ndarray, *, opt: PreluParams) -> np.ndarray:
    """y = x >= 0 ? rescale(x) : requantize(x * alpha), broadcasting."""
    if opt.fast is not None:
        pos, neg = opt.fast
        v = np.maximum(q, 0).astype(np.float64)
        np.multiply(v, pos.scale, out=v)
        w = np.minimum(q, 0).astype(np.float64)
        per_channel = w.reshape(-1, neg.channels) if neg.channels else w
        np.multiply(per_channel, neg.scale, out=per_channel)
        np.add(v, w, out=v)
        return pos.finish(v)
    x = q.astype(I64) - opt.in_zero_point
    a = opt.alpha if opt.alpha is not None else alpha.astype(I64) - opt.alpha_zero_point
    pos = rounding_rshift(x * opt.pos_multiplier, opt.pos_shift)
    neg = rounding_rshift(x * a * opt.neg_multiplier, opt.neg_shift)
    return saturate(np.where(x >= 0, pos, neg) + opt.out_zero_point, opt.out_dtype)


# ============================================================================ SOFTMAX
@dataclass(frozen=True)
class SoftmaxParams:
    """Tables over i = max(q) - q (q - min(q) when ``from_min``): E (sum terms) and T (numerators)."""

    exp_table: np.ndarray  # int64, round(2**P e(i))
    quotient_table: np.ndarray  # int64, min(round(2**P e(i) / s_out), cap)
    exp_bits: int  # P
    from_min: bool
    out_zero_point: int
    out_dtype: np.dtype


def _last_axis(ctx: OpContext) -> tuple[TensorInfo, int]:
    ctx.require_inputs(1)
    t = ctx.inputs[0]
    if len(t.shape) < 1:
        raise ctx.error(f"input {t.name!r} is a scalar; {ctx.op_name} needs rank >= 1 (it works on the last axis)")
    return t, max(1, int(t.shape[-1]))


#: at most 50 fraction bits in the exp tables: float64 evaluation then adds < 1/4 to the 1/2 rounding error
_MAX_EXP_BITS = 50


def exp_table(inp: QParams, rate: float, bits: int) -> np.ndarray:
    """``round(2**bits * exp(-rate * s_in * i))`` for i in 0 .. qmax - qmin (int64)."""
    i = np.arange(inp.qmax - inp.qmin + 1, dtype=np.float64)
    return round_half_up(np.ldexp(np.exp(-rate * float(inp.scale) * i), bits)).astype(I64)


def softmax_exp_bits(n: int, out: QParams) -> int:
    """P for SOFTMAX: the largest (<= 50) with N * 2**P < 2**62 and every T entry < 2**62."""
    cap = n * (out.qmax - int(out.zero_point) + 1)
    t_factor = min(math.ceil(1.0 / float(out.scale)), cap)
    return int(min(_MAX_EXP_BITS, 62 - int(n).bit_length(), 62 - int(t_factor).bit_length()))


def softmax_error_bound_lsb(n: int, out: QParams, exp_bits: int) -> float:
    """The SOFTMAX bound in output LSBs (module docstring)."""
    return 0.5 + ((out.qmax - int(out.zero_point) + 1) * n + 1) * 2.0 ** -exp_bits


def _prepare_softmax(ctx: OpContext) -> SoftmaxParams:
    t, n = _last_axis(ctx)
    inp = _per_tensor(ctx, t, "input", _MAX_TABLE_INPUT_BITS)
    out = _output(ctx)
    beta = float(np.float32(getattr(ctx.options, "beta", 1.0)))
    if not math.isfinite(beta):
        raise ctx.error(f"beta {beta} is not finite")
    p = softmax_exp_bits(n, out)
    e = exp_table(inp, abs(beta), p)
    cap = min((1 << p) * n * (out.qmax - int(out.zero_point) + 1), 2 ** 62)
    i = np.arange(e.size, dtype=np.float64)
    tq = np.ldexp(np.exp(-abs(beta) * float(inp.scale) * i), p) / float(out.scale)
    tq = round_half_up(np.minimum(tq, float(cap))).astype(I64)
    return SoftmaxParams(e, np.minimum(tq, cap), p, beta < 0, int(out.zero_point), out.dtype)


@register("SOFTMAX", prepare=_prepare_softmax)
def softmax(q: np.ndarray, *, opt: SoftmaxParams) -> np.ndarray:
    """y = round(T[i] / sum(E[i])) + zp_out along the last axis, i = max(q) - q."""
    if q.size == 0:
        return np.zeros(q.shape, opt.out_dtype)
    x = q.astype(np.intp)
    i = x - x.min(axis=-1, keepdims=True) if opt.from_min else x.max(axis=-1, keepdims=True) - x
    total = opt.exp_table[i].sum(axis=-1, keepdims=True)
    return saturate(rounding_divide(opt.quotient_table[i], total) + opt.out_zero_point, opt.out_dtype)


# ============================================================================ LOG_SOFTMAX
#: Q format of the integer natural log
LN_FRAC_BITS = 30
_LN_INDEX_BITS = 16
_LN_INTERP_BITS = 20
_LN2_EXTRA_BITS = 26
_LN_TABLE = np.floor(np.log1p(np.arange((1 << _LN_INDEX_BITS) + 1, dtype=np.float64) / (1 << _LN_INDEX_BITS))
                     * (1 << LN_FRAC_BITS) + 0.5).astype(I64)
_LN2_Q = int(round(math.log(2.0) * 2 ** (LN_FRAC_BITS + _LN2_EXTRA_BITS)))
#: |ln_fixed(n) * 2**-30 - ln(n)| <= LN_ERROR for every 1 <= n < 2**63
LN_ERROR = 2.0 ** -29


def ln_fixed(n: np.ndarray, minus_log2: int = 0) -> np.ndarray:
    """``round((ln(n) - minus_log2 * ln 2) * 2**30)`` within LN_ERROR, for int64 n >= 1 (elementwise).

    ``k = bitlen(n) - 1``; the 16 bits after the leading one index a table of ln(1 + j/2**16) and
    the next 20 bits interpolate linearly; ``(k - minus_log2) * ln 2`` is added from a Q56 constant.
    """
    n = np.asarray(n, dtype=I64)
    k = bit_length(n) - 1
    m = n << (62 - k)  # leading one at bit 62
    j = (m >> (62 - _LN_INDEX_BITS)) - (1 << _LN_INDEX_BITS)
    f = (m >> (62 - _LN_INDEX_BITS - _LN_INTERP_BITS)) & ((1 << _LN_INTERP_BITS) - 1)
    lo = _LN_TABLE[j]
    frac = lo + rounding_rshift((_LN_TABLE[j + 1] - lo) * f, _LN_INTERP_BITS)
    return frac + rounding_rshift((k - minus_log2) * _LN2_Q, _LN2_EXTRA_BITS)


@dataclass(frozen=True)
class LogSoftmaxParams:
    """E table over i = max(q) - q; y = rshift(rshift(-i * d_m, d_s) - rshift(L * l_m, l_s), 16) + zp."""

    exp_table: np.ndarray
    exp_bits: int
    max_index: int  # i beyond this saturates to qmin anyway
    d_multiplier: np.ndarray
    d_shift: np.ndarray  # already minus the 16 fraction bits
    lse_multiplier: np.ndarray
    lse_shift: np.ndarray
    out_zero_point: int
    out_dtype: np.dtype


_LOGSM_FRAC_BITS = 16


def log_softmax_error_bound_lsb(n: int, out: QParams, exp_bits: int, y_max_lsb: float) -> float:
    """The LOG_SOFTMAX bound in output LSBs for outputs with |y/s_out| <= y_max_lsb (module docstring)."""
    s_out = float(out.scale)
    return 0.5 + 2.0 ** -16 + y_max_lsb * 2.0 ** -25 + (LN_ERROR + n * 2.0 ** -exp_bits) / s_out


def _prepare_log_softmax(ctx: OpContext) -> LogSoftmaxParams:
    t, n = _last_axis(ctx)
    inp = _per_tensor(ctx, t, "input", _MAX_TABLE_INPUT_BITS)
    out = _output(ctx)
    s_in, s_out = float(inp.scale), float(out.scale)
    if s_out < 2.0 ** -30 or s_in / s_out > 2.0 ** 24:
        raise _unsupported(ctx, f"scales out of range (output scale {s_out:g} must be >= 2**-30 and "
                                f"input/output scale ratio {s_in / s_out:g} <= 2**24)")
    p = min(_MAX_EXP_BITS, 62 - int(n).bit_length())
    # i with i*s_in/s_out > (zp_out - qmin + 2) gives qmin whatever the sum: clamp i there
    max_index = min(inp.qmax - inp.qmin, math.floor((int(out.zero_point) - out.qmin + 2) * s_out / s_in) + 1)
    dm, ds = quantize_multiplier(s_in / s_out, multiplier_bits(max_index))
    lse_bound = math.ceil(math.log(n) * 2 ** LN_FRAC_BITS) + 2 ** 10
    lm, ls = quantize_multiplier(2.0 ** -LN_FRAC_BITS / s_out, multiplier_bits(lse_bound))
    return LogSoftmaxParams(exp_table(inp, 1.0, p), p, int(max_index), dm, ds - _LOGSM_FRAC_BITS,
                            lm, ls - _LOGSM_FRAC_BITS, int(out.zero_point), out.dtype)


@register("LOG_SOFTMAX", prepare=_prepare_log_softmax)
def log_softmax(q: np.ndarray, *, opt: LogSoftmaxParams) -> np.ndarray:
    """y = round((d*s_in - ln(sum(exp(d*s_in)))) / s_out) + zp_out, d = q - max(q), last axis."""
    if q.size == 0:
        return np.zeros(q.shape, opt.out_dtype)
    x = q.astype(np.intp)
    i = x.max(axis=-1, keepdims=True) - x
    total = opt.exp_table[i].sum(axis=-1, keepdims=True)
    lse = ln_fixed(total, opt.exp_bits)
    d_term = rounding_rshift(-np.minimum(i, opt.max_index).astype(I64) * opt.d_multiplier, opt.d_shift)
    lse_term = rounding_rshift(lse * opt.lse_multiplier, opt.lse_shift)
    y = rounding_rshift(d_term - lse_term, _LOGSM_FRAC_BITS)
    return saturate(y + opt.out_zero_point, opt.out_dtype)


# ============================================================================ L2_NORMALIZATION
_L2_EPSILON = float(np.float32(1e-6))
#: fraction bits of the normalized value fed to a fused TANH table
_L2_TANH_BITS = 19


@dataclass(frozen=True)
class L2NormParams:
    """y = round(x * 2**k * K / (isqrt(S * 4**k) * 2**c)) (+ zp_out, clamp), eps rows by a multiplier."""

    in_zero_point: int
    inv_multiplier: int  # K, 1/s_target ~ K * 2**-c
    inv_shift: int  # c
    eps_sum: int  # rows with sum(x*x) < eps_sum use the epsilon branch
    eps_multiplier: np.ndarray
    eps_shift: np.ndarray
    zero_point: int  # of the target (output, or 0 for the TANH intermediate)
    lo: int
    hi: int
    tanh_table: np.ndarray | None  # over [-2**19, 2**19] when the fused activation is TANH
    out_dtype: np.dtype


def _prepare_l2norm(ctx: OpContext) -> L2NormParams:
    t, n = _last_axis(ctx)
    inp = _per_tensor(ctx, t, "input", _MAX_TABLE_INPUT_BITS)
    out = _output(ctx)
    act = getattr(ctx.options, "fused_activation_function", "NONE") or "NONE"
    s_in = float(inp.scale)
    if act == "TANH":
        s_target, zp, lo, hi = 2.0 ** -_L2_TANH_BITS, 0, -(1 << _L2_TANH_BITS), 1 << _L2_TANH_BITS
        z = np.arange(lo, hi + 1, dtype=np.float64) * s_target
        tanh_table = quantize_reals(np.tanh(z), out)
    else:
        s_target, zp = float(out.scale), int(out.zero_point)
        lo, hi = _activation_bounds(ctx, act, out)
        tanh_table = None
    k_mult, c = quantize_multiplier(1.0 / s_target, 31)
    k_mult, c = int(k_mult), int(c)
    if c < 0:
        raise _unsupported(ctx, f"output scale {s_target:g} is below 2**-31; a normalized value cannot use it")
    if c > 31:  # 1/s < 1/2: every |y/s| < 1/2 rounds to 0; keep the denominator within int64
        k_mult, c = k_mult >> (c - 31), 31
    if n * _centered_bound(inp) ** 2 >= 2 ** 62:
        raise _unsupported(ctx, f"the sum of squares over {n} elements could overflow int64")
    eps_sum = min(2 ** 62, math.ceil((_L2_EPSILON / s_in) ** 2))
    em, es = quantize_multiplier(s_in / (_L2_EPSILON * s_target),
                                 multiplier_bits(_centered_bound(inp)))
    return L2NormParams(int(inp.zero_point), k_mult, c, int(max(1, eps_sum)), em, es, zp, int(lo), int(hi),
                        tanh_table, out.dtype)


@register("L2_NORMALIZATION", prepare=_prepare_l2norm)
def l2_normalization(q: np.ndarray, *, opt: L2NormParams) -> np.ndarray:
    """y = act(x / sqrt(sum(x*x))) along the last axis, x = q - zp_in, by an integer square root."""
    x = q.astype(I64) - opt.in_zero_point
    ss = (x * x).sum(axis=-1, keepdims=True)
    k = (62 - bit_length(ss)) // 2
    r = isqrt(ss << (2 * k))
    small = ss < opt.eps_sum
    den = np.where(small, 1, r) << opt.inv_shift
    y = rounding_divide((x << k) * opt.inv_multiplier, den)
    if small.any():
        y = np.where(small, rounding_rshift(x * opt.eps_multiplier, opt.eps_shift), y)
    y = np.clip(y + opt.zero_point, opt.lo, opt.hi)
    if opt.tanh_table is not None:
        return opt.tanh_table[y + (1 << _L2_TANH_BITS)]
    return y.astype(opt.out_dtype)


__all__ = ["UNARY_TABLE_OPS", "ELEMENTWISE_TABLE_OPS", "ACTIVATION_TABLE_OPS", "prepare_unary_table", "unary_lut",
           "prepare_pow", "pow_lut", "LutParams", "PairLutParams", "PreluParams", "SoftmaxParams", "LogSoftmaxParams",
           "L2NormParams", "code_reals", "quantize_reals", "build_unary_table", "bit_length", "ln_fixed",
           "exp_table", "softmax_exp_bits", "softmax_error_bound_lsb", "log_softmax_error_bound_lsb",
           "PowExpLogParams", "pow_error_bound_lsb"]
