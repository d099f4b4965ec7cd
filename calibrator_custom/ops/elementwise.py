"""Elementwise kernels: binary arithmetic (with fused activations), unary math, casts, comparisons,
select and logical ops.

Binary ops broadcast like numpy (which is TFLite's rule: shapes aligned on the right, each dimension
equal or 1). Semantics follow TFLite's reference kernels, including two details that differ from
plain numpy:

* ADD/SUB/MUL/DIV clamp their result to the activation range TFLite's ``CalculateActivationRange``
  gives: RELU [0, max], RELU6 [0, 6], RELU_N1_TO_1 [-1, 1], otherwise [lowest, max] of the dtype.
  So a float result is always clamped to +-FLT_MAX (x/0 gives FLT_MAX, not inf; NaN stays NaN), and
  a fused TANH or SIGN_BIT is ignored on these ops, exactly as TFLite ignores it.
* Integer DIV truncates toward zero (C++ ``/``); FLOOR_DIV and FLOOR_MOD round toward -inf.
  Integer division by zero (and any FLOOR_DIV by zero, which TFLite rejects) raises InputError.

Kernels never write into their inputs and always return fresh arrays.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import InputError
from ._common import FUSED_ACTIVATIONS
from .registry import OpContext, TensorInfo, register

logger = logging.getLogger(__name__)

_F32 = np.dtype(np.float32)
_I8, _U8, _I16 = np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)
_I32, _I64 = np.dtype(np.int32), np.dtype(np.int64)
_BOOL = np.dtype(np.bool_)

_FLOAT = (_F32,)
_F32_I32 = (_F32, _I32)
_F32_I32_I64 = (_F32, _I32, _I64)
_MINMAX_TYPES = (_F32, _I8, _U8, _I16, _I32, _I64)
_COMPARE_TYPES = (_F32, _I8, _U8, _I16, _I32, _I64)
_EQUALITY_TYPES = _COMPARE_TYPES + (_BOOL,)
_SELECT_TYPES = (_BOOL, _F32, _I8, _U8, _I16, _I32, _I64)
_LOGICAL = (_BOOL,)

_FLT_MAX = float(np.finfo(np.float32).max)


# ----------------------------------------------------------------------------------------- helpers
def _arr(r) -> np.ndarray:
    """A ufunc result as an ndarray (ufuncs return numpy scalars for 0-d inputs)."""
    return r if type(r) is np.ndarray else np.asarray(r)


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ",".join(str(int(d)) for d in shape) + ")"


def _names(dtypes: tuple[np.dtype, ...]) -> str:
    return ", ".join(d.name for d in dtypes)


def _check_inputs(ctx: OpContext, n: int, allowed: tuple[np.dtype, ...],
                  first: int = 0) -> tuple[TensorInfo, ...]:
    """``n`` present inputs; inputs ``first..n-1`` share one dtype from ``allowed``."""
    ctx.require_inputs(n)
    ins = ctx.inputs[:n]
    dts = [np.dtype(t.dtype) for t in ins[first:]]
    if any(d != dts[0] for d in dts):
        listed = ", ".join(f"{t.name!r} {np.dtype(t.dtype).name}" for t in ins[first:])
        raise ctx.error(f"input dtypes differ ({listed}); they must match")
    if dts[0] not in allowed:
        raise ctx.error(f"input dtype {dts[0].name} is not supported (supported: {_names(allowed)})")
    return ins


def _broadcast(ctx: OpContext, *infos: TensorInfo) -> tuple[int, ...]:
    """The broadcast shape of the inputs' static shapes; ModelError naming them if they don't broadcast."""
    shapes = [tuple(t.shape) for t in infos]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = [_fmt_shape(s) for s in shapes]
        joined = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]
        raise ctx.error(f"input shapes {joined} do not broadcast") from None


# ------------------------------------------------------------------------- binary arithmetic
@dataclass(frozen=True)
class ArithParams:
    """Clamp range TFLite applies after ADD/SUB/MUL/DIV (None: no clamp) and whether ints are used."""

    lo: float | int | None
    hi: float | int | None
    integer: bool


def _activation_range(act: str, dtype: np.dtype) -> tuple[float | int | None, float | int | None]:
    """TFLite's CalculateActivationRange; (None, None) where it would be the full integer range."""
    if act == "RELU":
        return 0, (_FLT_MAX if dtype == _F32 else None)
    if act == "RELU6":
        return 0, 6
    if act == "RELU_N1_TO_1":
        return -1, 1
    return (-_FLT_MAX, _FLT_MAX) if dtype == _F32 else (None, None)


def _prepare_arith(allowed: tuple[np.dtype, ...]) -> Callable[[OpContext], ArithParams]:
    def prepare(ctx: OpContext) -> ArithParams:
        a, b = _check_inputs(ctx, 2, allowed)
        _broadcast(ctx, a, b)
        act = getattr(ctx.options, "fused_activation_function", "NONE") or "NONE"
        if act not in FUSED_ACTIVATIONS and act != "SIGN_BIT":
            raise ctx.error(f"unsupported fused activation {act!r}")
        if act in ("TANH", "SIGN_BIT"):
            logger.warning("op #%d %s: fused activation %s is ignored, as TFLite's kernels ignore it",
                           ctx.index, ctx.op_name, act)
        dtype = np.dtype(a.dtype)
        lo, hi = _activation_range(act, dtype)
        return ArithParams(lo, hi, dtype != _F32)
    return prepare


def _clamp(x: np.ndarray, opt: ArithParams) -> np.ndarray:
    """Clamp ``x`` (owned by the caller) in place to the activation range."""
    if opt.lo is None and opt.hi is None:
        return x
    if opt.hi is None:
        return np.maximum(x, opt.lo, out=x)
    return np.clip(x, opt.lo, opt.hi, out=x)


@register("ADD", prepare=_prepare_arith(_F32_I32_I64))
def add(a: np.ndarray, b: np.ndarray, *, opt: ArithParams) -> np.ndarray:
    """y = act(a + b), broadcasting."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = _arr(np.add(a, b))
    return _clamp(y, opt)


@register("SUB", prepare=_prepare_arith(_F32_I32_I64))
def sub(a: np.ndarray, b: np.ndarray, *, opt: ArithParams) -> np.ndarray:
    """y = act(a - b), broadcasting."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = _arr(np.subtract(a, b))
    return _clamp(y, opt)


@register("MUL", prepare=_prepare_arith(_F32_I32_I64))
def mul(a: np.ndarray, b: np.ndarray, *, opt: ArithParams) -> np.ndarray:
    """y = act(a * b), broadcasting."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = _arr(np.multiply(a, b))
    return _clamp(y, opt)


def _require_nonzero(b: np.ndarray, op: str) -> None:
    if not np.all(b):
        raise InputError(f"{op}: division by zero (the divisor has {b.size - np.count_nonzero(b)} zero elements)")


@register("DIV", prepare=_prepare_arith(_F32_I32))
def div(a: np.ndarray, b: np.ndarray, *, opt: ArithParams) -> np.ndarray:
    """y = act(a / b), broadcasting; integers truncate toward zero."""
    if not opt.integer:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _clamp(_arr(np.divide(a, b)), opt)
    _require_nonzero(b, "DIV")
    with np.errstate(over="ignore"):
        q = _arr(np.floor_divide(a, b))
        # floor -> trunc: add 1 where the division is inexact and the signs differ
        q += (_arr(np.remainder(a, b)) != 0) & ((a < 0) != (b < 0))
    return _clamp(q, opt)


# --------------------------------------------------------------------- other binary numeric ops
@dataclass(frozen=True)
class BinaryParams:
    """What a plain binary kernel needs: whether its inputs are integers."""

    integer: bool


def _prepare_binary(allowed: tuple[np.dtype, ...]) -> Callable[[OpContext], BinaryParams]:
    def prepare(ctx: OpContext) -> BinaryParams:
        a, b = _check_inputs(ctx, 2, allowed)
        _broadcast(ctx, a, b)
        return BinaryParams(np.dtype(a.dtype).kind != "f")
    return prepare


def _nan_takes_second(y: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TFLite's max/min is ``a > b ? a : b`` (``<`` for min): where a NaN is involved it yields b."""
    nan = np.isnan(y)
    if nan.any():
        np.copyto(y, np.broadcast_to(b, y.shape), where=nan)
    return y


@register("MAXIMUM", prepare=_prepare_binary(_MINMAX_TYPES))
def maximum(a: np.ndarray, b: np.ndarray, *, opt: BinaryParams) -> np.ndarray:
    """y = a if a > b else b, broadcasting (so a NaN in either gives b, as in TFLite)."""
    y = _arr(np.maximum(a, b))
    return y if opt.integer else _nan_takes_second(y, b)


@register("MINIMUM", prepare=_prepare_binary(_MINMAX_TYPES))
def minimum(a: np.ndarray, b: np.ndarray, *, opt: BinaryParams) -> np.ndarray:
    """y = a if a < b else b, broadcasting (so a NaN in either gives b, as in TFLite)."""
    y = _arr(np.minimum(a, b))
    return y if opt.integer else _nan_takes_second(y, b)


@register("SQUARED_DIFFERENCE", prepare=_prepare_binary(_F32_I32))
def squared_difference(a: np.ndarray, b: np.ndarray, *, opt: BinaryParams) -> np.ndarray:
    """y = (a - b)^2, broadcasting."""
    d = _arr(np.subtract(a, b))
    return np.multiply(d, d, out=d)


@register("POW", prepare=_prepare_binary(_F32_I32))
def pow_(a: np.ndarray, b: np.ndarray, *, opt: BinaryParams) -> np.ndarray:
    """y = a ** b, broadcasting; integer exponents must be >= 0."""
    if opt.integer:
        if np.any(b < 0):
            raise InputError("POW: negative exponent with int32 inputs (TFLite does not support it)")
        with np.errstate(over="ignore"):
            return _arr(np.power(a, b))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _arr(np.power(a, b))


@register("FLOOR_DIV", prepare=_prepare_binary(_F32_I32))
def floor_div(a: np.ndarray, b: np.ndarray, *, opt: BinaryParams) -> np.ndarray:
    """y = floor(a / b), broadcasting; the quotient is formed in float64 as TFLite does."""
    _require_nonzero(b, "FLOOR_DIV")
    if opt.integer:
        with np.errstate(over="ignore"):
            return _arr(np.floor_divide(a, b))
    with np.errstate(over="ignore", invalid="ignore"):
        q = _arr(np.divide(a, b, dtype=np.float64))
        return np.floor(q, out=q).astype(a.dtype)


@register("FLOOR_MOD", prepare=_prepare_binary(_F32_I32_I64))
def floor_mod(a: np.ndarray, b: np.ndarray, *, opt: BinaryParams) -> np.ndarray:
    """y = a - floor(a / b) * b (result has the sign of b), broadcasting."""
    if opt.integer:
        _require_nonzero(b, "FLOOR_MOD")
    with np.errstate(divide="ignore", invalid="ignore"):
        return _arr(np.remainder(a, b))


# ------------------------------------------------------------------------------- unary math ops
def _prepare_unary(allowed: tuple[np.dtype, ...]) -> Callable[[OpContext], None]:
    def prepare(ctx: OpContext) -> None:
        _check_inputs(ctx, 1, allowed)
        return None
    return prepare


@register("ABS", prepare=_prepare_unary(_F32_I32))
def abs_(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = |x|."""
    return _arr(np.abs(x))


@register("NEG", prepare=_prepare_unary(_F32_I32_I64))
def neg(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = -x."""
    return _arr(np.negative(x))


@register("SQUARE", prepare=_prepare_unary(_FLOAT))
def square(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = x * x."""
    return _arr(np.multiply(x, x))


@register("SQRT", prepare=_prepare_unary(_FLOAT))
def sqrt(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = sqrt(x) (NaN for x < 0)."""
    with np.errstate(invalid="ignore"):
        return _arr(np.sqrt(x))


@register("RSQRT", prepare=_prepare_unary(_FLOAT))
def rsqrt(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = 1 / sqrt(x)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = _arr(np.sqrt(x))
        return np.divide(1, r, out=r)


@register("EXP", prepare=_prepare_unary(_FLOAT))
def exp(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = e^x."""
    with np.errstate(over="ignore"):
        return _arr(np.exp(x))


@register("LOG", prepare=_prepare_unary(_FLOAT))
def log(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = ln(x) (-inf at 0, NaN below)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _arr(np.log(x))


@register("SIN", prepare=_prepare_unary(_FLOAT))
def sin(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = sin(x)."""
    with np.errstate(invalid="ignore"):
        return _arr(np.sin(x))


@register("COS", prepare=_prepare_unary(_FLOAT))
def cos(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = cos(x)."""
    with np.errstate(invalid="ignore"):
        return _arr(np.cos(x))


@register("FLOOR", prepare=_prepare_unary(_FLOAT))
def floor(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = floor(x)."""
    return _arr(np.floor(x))


@register("CEIL", prepare=_prepare_unary(_FLOAT))
def ceil(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = ceil(x)."""
    return _arr(np.ceil(x))


@register("ROUND", prepare=_prepare_unary(_FLOAT))
def round_(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = x rounded to the nearest integer, ties to even."""
    return _arr(np.rint(x))


# ------------------------------------------------------------------------------------------ cast
@dataclass(frozen=True)
class CastParams:
    """The dtype CAST converts to (the model's output tensor dtype)."""

    dtype: np.dtype


def _prepare_cast(ctx: OpContext) -> CastParams:
    ctx.require_inputs(1)
    src, dst = np.dtype(ctx.inputs[0].dtype), np.dtype(ctx.outputs[0].dtype)
    for what, d in (("input", src), ("output", dst)):
        if d.kind not in "biufc":
            raise ctx.error(f"{what} dtype {d.name} is not supported")
    return CastParams(dst)


@register("CAST", prepare=_prepare_cast)
def cast(x: np.ndarray, *, opt: CastParams) -> np.ndarray:
    """y = x converted to opt.dtype (float -> int truncates toward zero, -> bool is x != 0)."""
    with np.errstate(invalid="ignore", over="ignore"):
        if x.dtype.kind == "c" and opt.dtype.kind != "c":
            x = x.real
        return np.array(x, dtype=opt.dtype, copy=True)


# ------------------------------------------------------------------------------------ comparisons
def _prepare_compare(allowed: tuple[np.dtype, ...]) -> Callable[[OpContext], None]:
    def prepare(ctx: OpContext) -> None:
        a, b = _check_inputs(ctx, 2, allowed)
        _broadcast(ctx, a, b)
        return None
    return prepare


@register("GREATER", prepare=_prepare_compare(_COMPARE_TYPES))
def greater(a: np.ndarray, b: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = a > b (bool), broadcasting."""
    return _arr(np.greater(a, b))


@register("GREATER_EQUAL", prepare=_prepare_compare(_COMPARE_TYPES))
def greater_equal(a: np.ndarray, b: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = a >= b (bool), broadcasting."""
    return _arr(np.greater_equal(a, b))


@register("LESS", prepare=_prepare_compare(_COMPARE_TYPES))
def less(a: np.ndarray, b: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = a < b (bool), broadcasting."""
    return _arr(np.less(a, b))


@register("LESS_EQUAL", prepare=_prepare_compare(_COMPARE_TYPES))
def less_equal(a: np.ndarray, b: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = a <= b (bool), broadcasting."""
    return _arr(np.less_equal(a, b))


@register("EQUAL", prepare=_prepare_compare(_EQUALITY_TYPES))
def equal(a: np.ndarray, b: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = a == b (bool), broadcasting."""
    return _arr(np.equal(a, b))


@register("NOT_EQUAL", prepare=_prepare_compare(_EQUALITY_TYPES))
def not_equal(a: np.ndarray, b: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = a != b (bool), broadcasting."""
    return _arr(np.not_equal(a, b))


# ----------------------------------------------------------------------------------------- select
@dataclass(frozen=True)
class SelectParams:
    """Trailing unit dims to append to SELECT's rank-1 condition so it indexes x's first dim."""

    cond_expand: int


def _check_select_inputs(ctx: OpContext) -> tuple[TensorInfo, TensorInfo, TensorInfo]:
    cond, x, y = _check_inputs(ctx, 3, _SELECT_TYPES, first=1)
    if np.dtype(cond.dtype) != _BOOL:
        raise ctx.error(f"condition {cond.name!r} has dtype {np.dtype(cond.dtype).name}, expected bool")
    return cond, x, y


def _prepare_select(ctx: OpContext) -> SelectParams:
    cond, x, y = _check_select_inputs(ctx)
    cs, xs, ys = tuple(cond.shape), tuple(x.shape), tuple(y.shape)
    if xs != ys:
        raise ctx.error(f"x and y shapes {_fmt_shape(xs)} and {_fmt_shape(ys)} differ; SELECT needs them equal")
    if cs == xs or cs == ():
        return SelectParams(0)
    if len(cs) == 1 and len(xs) >= 1 and cs[0] == xs[0]:
        return SelectParams(len(xs) - 1)
    raise ctx.error(f"condition shape {_fmt_shape(cs)} must equal x's shape {_fmt_shape(xs)}, be a scalar, "
                    f"or be rank 1 matching x's first dimension")


@register("SELECT", prepare=_prepare_select)
def select(cond: np.ndarray, x: np.ndarray, y: np.ndarray, *, opt: SelectParams) -> np.ndarray:
    """y_out = cond ? x : y, with cond equal-shaped, scalar, or rank 1 over x's first dimension."""
    if opt.cond_expand:
        cond = cond.reshape(cond.shape + (1,) * opt.cond_expand)
    return _arr(np.where(cond, x, y))


def _prepare_select_v2(ctx: OpContext) -> None:
    cond, x, y = _check_select_inputs(ctx)
    _broadcast(ctx, cond, x, y)
    return None


@register("SELECT_V2", prepare=_prepare_select_v2)
def select_v2(cond: np.ndarray, x: np.ndarray, y: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y_out = cond ? x : y, all three broadcasting."""
    return _arr(np.where(cond, x, y))


# ---------------------------------------------------------------------------------------- logical
@register("LOGICAL_AND", prepare=_prepare_compare(_LOGICAL))
def logical_and(a: np.ndarray, b: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = a AND b (bool), broadcasting."""
    return _arr(np.logical_and(a, b))


@register("LOGICAL_OR", prepare=_prepare_compare(_LOGICAL))
def logical_or(a: np.ndarray, b: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = a OR b (bool), broadcasting."""
    return _arr(np.logical_or(a, b))


@register("LOGICAL_NOT", prepare=_prepare_unary(_LOGICAL))
def logical_not(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = NOT x (bool)."""
    return _arr(np.logical_not(x))
