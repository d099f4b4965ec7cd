"""Activation kernels: the ReLU family, LEAKY_RELU, PRELU, ELU, LOGISTIC, TANH, HARD_SWISH, GELU,
SOFTMAX, LOG_SOFTMAX and L2_NORMALIZATION.

All take and return float32 and follow TFLite's reference kernels; every kernel returns a fresh
array and never writes into its input. GELU's exact form needs erfc, which numpy lacks: ``_erfc``
evaluates it in float64 to a relative error below 2e-11 (far beyond float32's 6e-8).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ._common import FUSED_ACTIVATIONS, apply_activation
from .registry import OpContext, TensorInfo, register

logger = logging.getLogger(__name__)

_F32 = np.dtype(np.float32)


# ----------------------------------------------------------------------------------------- helpers
def _arr(r) -> np.ndarray:
    """A ufunc result as an ndarray (ufuncs return numpy scalars for 0-d inputs)."""
    return r if type(r) is np.ndarray else np.asarray(r)


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ",".join(str(int(d)) for d in shape) + ")"


def _float_input(ctx: OpContext, i: int = 0, what: str = "input") -> TensorInfo:
    t = ctx.inputs[i]
    if np.dtype(t.dtype) != _F32:
        raise ctx.error(f"{what} {t.name!r} has dtype {np.dtype(t.dtype).name}; only float32 is supported")
    return t


def _prepare_float_unary(ctx: OpContext):
    """One float32 input; passes the options through."""
    ctx.require_inputs(1)
    _float_input(ctx)
    return ctx.options


def _prepare_last_axis(ctx: OpContext):
    """One float32 input of rank >= 1 (the op works along its last axis); passes the options through."""
    ctx.require_inputs(1)
    x = _float_input(ctx)
    if len(x.shape) < 1:
        raise ctx.error(f"input {x.name!r} is a scalar; {ctx.op_name} needs rank >= 1 (it works on the last axis)")
    return ctx.options


# ---------------------------------------------------------------------------------- ReLU family
@register("RELU", prepare=_prepare_float_unary)
def relu(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = max(x, 0)."""
    return _arr(np.maximum(x, 0))


@register("RELU6", prepare=_prepare_float_unary)
def relu6(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = min(max(x, 0), 6)."""
    return _arr(np.clip(x, 0, 6))


@register("RELU_N1_TO_1", prepare=_prepare_float_unary)
def relu_n1_to_1(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = min(max(x, -1), 1)."""
    return _arr(np.clip(x, -1, 1))


@register("RELU_0_TO_1", prepare=_prepare_float_unary)
def relu_0_to_1(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = min(max(x, 0), 1)."""
    return _arr(np.clip(x, 0, 1))


# ------------------------------------------------------------------------------ leaky ReLU, PReLU
@dataclass(frozen=True)
class LeakyReluParams:
    """alpha as float32, and which of max/min/select gives x > 0 ? x : alpha*x for it."""

    alpha: np.float32
    mode: str  # "max" (0 <= alpha <= 1), "min" (alpha > 1) or "where" (alpha < 0)


def _prepare_leaky_relu(ctx: OpContext) -> LeakyReluParams:
    ctx.require_inputs(1)
    _float_input(ctx)
    alpha = np.float32(getattr(ctx.options, "alpha", 0.0))
    if not np.isfinite(alpha):
        raise ctx.error(f"alpha {float(alpha)} is not finite")
    mode = "max" if 0 <= alpha <= 1 else ("min" if alpha > 1 else "where")
    return LeakyReluParams(alpha, mode)


@register("LEAKY_RELU", prepare=_prepare_leaky_relu)
def leaky_relu(x: np.ndarray, *, opt: LeakyReluParams) -> np.ndarray:
    """y = x if x > 0 else alpha * x."""
    y = _arr(np.multiply(x, opt.alpha))
    if opt.mode == "max":
        return np.maximum(x, y, out=y)
    if opt.mode == "min":
        return np.minimum(x, y, out=y)
    return _arr(np.where(x > 0, x, y))


@dataclass(frozen=True)
class PreluParams:
    """Whether every alpha is known to lie in [0, 1] (then max(x, alpha*x) is PReLU), and for a
    per-channel constant alpha the alpha row tiled along the width (long inner loops are faster)."""

    alpha_in_unit: bool
    alpha_row: np.ndarray | None = None


def _prepare_prelu(ctx: OpContext) -> PreluParams:
    ctx.require_inputs(2)
    x = _float_input(ctx)
    alpha = _float_input(ctx, 1, "alpha")
    try:
        np.broadcast_shapes(tuple(x.shape), tuple(alpha.shape))
    except ValueError:
        raise ctx.error(f"input shapes {_fmt_shape(x.shape)} and {_fmt_shape(alpha.shape)} "
                        f"do not broadcast") from None
    unit = alpha.data is not None and bool(np.all((alpha.data >= 0) & (alpha.data <= 1)))
    row = None
    if alpha.data is not None and len(x.shape) >= 2 and x.shape[-1] > 0 and \
            alpha.data.size == x.shape[-1] and (len(alpha.shape) == 1 or alpha.shape[-1] == x.shape[-1]):
        row = np.tile(alpha.data.reshape(-1).astype(np.float32), x.shape[-2])
    return PreluParams(unit, row)


@register("PRELU", prepare=_prepare_prelu)
def prelu(x: np.ndarray, alpha: np.ndarray, *, opt: PreluParams) -> np.ndarray:
    """y = x if x >= 0 else alpha * x, alpha broadcast against x."""
    if opt.alpha_row is not None and x.ndim >= 2 and x.shape[-1] * x.shape[-2] == opt.alpha_row.size:
        shape, x, alpha = x.shape, x.reshape(-1, opt.alpha_row.size), opt.alpha_row
    else:
        shape = None
    if opt.alpha_in_unit:
        y = _arr(np.multiply(x, alpha))
        y = np.maximum(x, y, out=y)
    else:
        # min(x, 0) * alpha + max(x, 0): plain ufunc passes, about 4x faster than np.where
        y = _arr(np.minimum(x, 0))
        y = _arr(np.multiply(y, alpha, out=y if y.shape == np.broadcast_shapes(y.shape, np.shape(alpha)) else None))
        y += np.maximum(x, 0)
    return y if shape is None else y.reshape(shape)


# ---------------------------------------------------------------------------------- smooth units
@register("ELU", prepare=_prepare_float_unary)
def elu(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = x if x >= 0 else exp(x) - 1."""
    y = _arr(np.minimum(x, 0))
    np.expm1(y, out=y)
    y += np.maximum(x, 0)
    return y


@register("LOGISTIC", prepare=_prepare_float_unary)
def logistic(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = 1 / (1 + exp(-x))."""
    with np.errstate(over="ignore"):
        y = _arr(np.negative(x))
        np.exp(y, out=y)
    y += 1
    return np.divide(1, y, out=y)


@register("TANH", prepare=_prepare_float_unary)
def tanh(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = tanh(x)."""
    return _arr(np.tanh(x))


@register("HARD_SWISH", prepare=_prepare_float_unary)
def hard_swish(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = x * min(max(x + 3, 0), 6) / 6."""
    y = _arr(np.add(x, 3))
    np.clip(y, 0, 6, out=y)
    with np.errstate(invalid="ignore"):  # -inf * 0
        y *= x
    y /= 6
    return y


# Coefficients a_k of erfc(z) = t * exp(-z^2 + sum_k a_k t^k), t = 2 / (2 + z), for z >= 0. Derived
# here: log(erfc(z) e^(z^2) / t) interpolated at 17 Chebyshev nodes of t in (0, 1] (the map covers
# z in [0, inf)), then rewritten as a power series in t. Relative error of erfc < 2e-11 for all z >= 0.
_ERFC_COEFS = (
    -1.265512123467529,
    0.9999999900811782,
    0.37500096404423927,
    0.0832958952005395,
    -0.08516582444263238,
    -0.1534665709925621,
    -0.010745969598260754,
    -0.44107477017303676,
    2.0927383396318593,
    -5.817231577065403,
    13.082218655512756,
    -20.973380412902582,
    22.550246095179627,
    -15.983242019472524,
    7.2225058710558665,
    -1.8981351581221932,
    0.22194861553982323,
)


#: Elements per block in the float64 GELU pipeline: ~30 array passes stay in cache instead of RAM.
_BLOCK = 1 << 16


def _erfc_block(u: np.ndarray, p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """p[:] = erfc(u) for a 1-D float64 block ``u`` (p, t: float64 scratch of the same size)."""
    np.abs(u, out=t)
    p[...] = t
    p *= p                      # z^2
    t += 2.0
    np.divide(2.0, t, out=t)    # t = 2 / (2 + z)
    acc = np.full_like(t, _ERFC_COEFS[-1])
    for c in _ERFC_COEFS[-2::-1]:
        acc *= t
        acc += c
    acc -= p
    np.exp(acc, out=acc)
    np.multiply(acc, t, out=p)
    np.subtract(2.0, p, out=p, where=u < 0)   # erfc(-z) = 2 - erfc(z)
    return p


def _erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function, float64 result, relative error < 2e-11."""
    flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    out = np.empty(flat.size)
    t = np.empty(min(flat.size, _BLOCK))
    for s in range(0, flat.size, _BLOCK):
        n = min(_BLOCK, flat.size - s)
        _erfc_block(flat[s:s + n], out[s:s + n], t[:n])
    return out.reshape(np.shape(x))


_SQRT_2_OVER_PI = np.float32(np.sqrt(2.0 / np.pi))
_MINUS_SQRT_HALF = -np.sqrt(0.5)


def _prepare_gelu(ctx: OpContext):
    ctx.require_inputs(1)
    _float_input(ctx)
    return ctx.options


@register("GELU", prepare=_prepare_gelu)
def gelu(x: np.ndarray, *, opt) -> np.ndarray:
    """y = x/2 * (1 + erf(x/sqrt2)), or with opt.approximate x/2 * (1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))."""
    if getattr(opt, "approximate", False):
        with np.errstate(over="ignore", invalid="ignore"):
            y = _arr(np.multiply(x, x))
            y *= x
            y *= np.float32(0.044715)
            y += x
            y *= _SQRT_2_OVER_PI
            np.tanh(y, out=y)
            y += 1
            y *= x
            y *= np.float32(0.5)
        return y
    # exact form as TFLite writes it: x/2 * erfc(-x/sqrt2), in float64, block by block
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.size, dtype=x.dtype)
    m = min(flat.size, _BLOCK)
    u, p, t = np.empty(m), np.empty(m), np.empty(m)
    for s in range(0, flat.size, _BLOCK):
        n = min(_BLOCK, flat.size - s)
        xb = flat[s:s + n]
        ub = u[:n]
        np.multiply(xb, _MINUS_SQRT_HALF, out=ub, dtype=np.float64)
        pb = _erfc_block(ub, p[:n], t[:n])
        pb *= xb
        pb *= 0.5
        out[s:s + n] = pb
    return out.reshape(x.shape)


# --------------------------------------------------------------------------- softmax family, L2
@register("SOFTMAX", prepare=_prepare_last_axis)
def softmax(x: np.ndarray, *, opt) -> np.ndarray:
    """y = exp(beta * (x - max)) / sum(exp(beta * (x - max))) along the last axis."""
    with np.errstate(invalid="ignore", over="ignore"):
        y = np.subtract(x, x.max(axis=-1, keepdims=True))
        beta = np.float32(opt.beta)
        if beta != 1:
            y *= beta
        np.exp(y, out=y)
        y /= y.sum(axis=-1, keepdims=True)
    return y


@register("LOG_SOFTMAX", prepare=_prepare_last_axis)
def log_softmax(x: np.ndarray, *, opt: None = None) -> np.ndarray:
    """y = x - max - log(sum(exp(x - max))) along the last axis."""
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.subtract(x, x.max(axis=-1, keepdims=True))
        lse = np.exp(y).sum(axis=-1, keepdims=True)
        np.log(lse, out=lse)
        y -= lse
    return y


@dataclass(frozen=True)
class L2NormParams:
    """The fused activation applied after normalizing."""

    activation: str


_L2_EPSILON = np.float32(1e-6)


def _prepare_l2norm(ctx: OpContext) -> L2NormParams:
    _prepare_last_axis(ctx)
    act = getattr(ctx.options, "fused_activation_function", "NONE") or "NONE"
    if act not in FUSED_ACTIVATIONS:
        raise ctx.error(f"unsupported fused activation {act!r}")
    return L2NormParams(act)


@register("L2_NORMALIZATION", prepare=_prepare_l2norm)
def l2_normalization(x: np.ndarray, *, opt: L2NormParams) -> np.ndarray:
    """y = act(x / max(sqrt(sum(x^2)), 1e-6)) along the last axis."""
    with np.errstate(invalid="ignore", over="ignore"):
        norm = np.einsum("...c,...c->...", x, x)[..., None]
        np.sqrt(norm, out=norm)
        np.maximum(norm, _L2_EPSILON, out=norm)
        y = np.divide(x, norm)
    return apply_activation(y, opt.activation)
