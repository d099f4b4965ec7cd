"""Integer kernels of the convolution family: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV,
FULLY_CONNECTED and BATCH_MATMUL.

Operands
--------
* Data (``x``; both operands of a BATCH_MATMUL with two runtime inputs): UINT8, INT8 or INT16 with
  any zero point (8-bit mode: UINT8 asymmetric, 16-bit mode: INT16 symmetric), per tensor, or (not
  BATCH_MATMUL) per channel along its last axis with scales ``g * 2**k[c]`` (``g`` the smallest,
  integers ``0 <= k[c] <= 16``): the kernel then sums on the grid ``g``, using
  ``(x_q - x_zp[c]) << k[c]`` in place of ``x_q - x_zp`` below, and ``x_scale = g``. The fixed
  models quantize the UINT8 data of 8-bit convs this way (``planner.channel_u8_quant``).
* Weights: UINT8/INT8/INT16, per tensor or per output channel (CONV_2D / TRANSPOSE_CONV axis 0 of
  OHWI, DEPTHWISE_CONV_2D axis 3 of ``[1, kh, kw, C*mult]``, FULLY_CONNECTED axis 0 of
  ``[out, in]``, BATCH_MATMUL: the output-column axis of ``y``, i.e. its last axis, or the one
  before it with ``adj_y``). They are symmetric in the fixed models; a zero point is subtracted
  anyway. Constant weights are the normal case; runtime weights work too.
* Bias (optional): any integer type (INT32 in 8-bit mode, INT64 in 16-bit mode) at scale
  ``x_scale * w_scale[c]``, zero point 0. A constant bias stored at another scale is rescaled once
  at prepare (round half away from zero); a runtime one must have that scale.
* Output: UINT8, INT8, INT16 or INT32, any zero point, per tensor or per output channel (last
  axis; ``out_scale``, ``out_zp`` and the activation clamp are then per channel).

Algorithm (every op)
--------------------
``acc[c] = sum (x_q - x_zp) * (w_q - w_zp) + bias_q[c]``, exactly (padding taps contribute 0,
i.e. they read the input zero point), then
``out = clamp(rounding_rshift(acc * M[c], shift[c]) + out_zp, lo, hi)`` with
``M, shift = f64_multiplier(x_scale * w_scale[c] / out_scale, B[c])`` (the widest multiplier of
24..31 bits with ``B[c] * M + 2**shift < 2**53``) when it exists, else
``quantize_multiplier(x_scale * w_scale[c] / out_scale, multiplier_bits(B[c]))`` (``requant_multipliers``),
``B[c] = max|x_q - x_zp| * sum_taps |w_q - w_zp|[c] + max|bias[c]|`` (a bound on ``|acc[c]|``),
and ``[lo, hi]`` the output type's range intersected with the fused activation's
(RELU: ``q >= zp``; RELU6: ``zp <= q <= zp + round(6 / out_scale)``; RELU_N1_TO_1:
``zp + round(-1 / out_scale) <= q <= zp + round(1 / out_scale)``, rounding half away from zero
as TFLite's ``CalculateActivationRangeQuantized``; a fused TANH or SIGN_BIT is a no-op as in the
float kernels). ``rounding_rshift`` rounds half up (``fixedpoint``). In the kernel the bias,
the rounding half and (when it cannot overflow) the output zero point are folded into one
per-channel offset: ``out = clamp(((acc_nobias * M + offset) >> shift) [+ out_zp], lo, hi)``,
which is the same integer. With a constant bias, an output of up to 16 bits and every channel's
multiplier from ``f64_multiplier``, the same integers are computed in float64 (``FloorAffine``:
every intermediate is an integer below 2**53 times a power of two, so exact).

The sums are computed by the float kernels' fast paths (``ops.conv``: BLAS im2col, strided
depthwise einsum, col2im) run with fused activation NONE and no bias on float arrays holding
exact integers (``x_q - x_zp`` and ``w_q - w_zp``). Prepare proves that every partial sum those
kernels can form stays exactly representable: all of them are bounded by
``P = max|x_q - x_zp| * max_c sum_taps |w_q - w_zp|[c]`` (the sums of absolute values of the
terms), so the float32 carrier is exact when ``P <= 2**24`` (most 8-bit layers) and the float64
carrier when ``P <= 2**53`` (any 16-bit layer with fewer than about 4e6 taps per output). Beyond
that the weights are split into k-bit limbs ``w = sum_i limb_i * 2**(k*i)`` chosen so that each
limb's sums are float64-exact, and the limb results are combined in int64: still exact. The
float results are converted to int64 exactly. ``|acc| < 2**61`` is required (else prepare raises).

Error bound (vs the float op on the dequantized inputs, in output LSBs, for outputs inside the
representable range; saturated outputs are exact)
------------------------------------------------------------------------------------------------
``|error| <= 0.5 + |y / out_scale| * 2**-bits`` with ``bits`` the multiplier's width: the
accumulator is exact, the multiplier has relative error <= ``2**-bits`` and the final shift
rounds to nearest. ``bits >= 24`` on the float64 path (31 while ``B[c] < 2**21`` and the ratio is
not tiny), so the bound is at most 0.5 + 2**-9 LSB for INT16 outputs and 0.5 + 2**-16 for UINT8
ones; on the int64 path ``bits = multiplier_bits(B[c]) = 31`` whenever ``B[c] < 2**31``.
16-bit layers get ``bits >= 19`` while ``B[c] < 2**43`` (e.g. up to 4096 full-scale INT16
taps), so the bound is below 0.57 LSB for INT16 outputs. (For a scale ratio below
``2**(bits-63)`` the multiplier loses low bits, but then ``|y| < 0.5`` LSB and the error stays
below 1 LSB.) The float reference itself (float32 sums of the dequantized operands) adds its
own rounding on top.

* CONV_2D: the above with the float CONV_2D fast path (strides, dilations, SAME/VALID, the
  SigmaStar explicit pads CAFFE/ONNXINSIDE/ONNXOUTSIDE, groups); bound as stated.
* DEPTHWISE_CONV_2D: the same with the float depthwise path (depth multiplier from the shapes);
  bound as stated.
* TRANSPOSE_CONV: the same with the float col2im path (output_shape input, SAME/VALID/explicit
  pads as output cropping); cells no tap reaches get just the bias; bound as stated.
* FULLY_CONNECTED: the same with the float matmul (keep_num_dims, higher-rank inputs, declared
  output reshapes); fused TANH/SIGN_BIT refused as by the float op; bound as stated.
* BATCH_MATMUL: the same with the float batched matmul (adj_x, adj_y, batch broadcasting); ``y``
  constant (per tensor or per output column) or runtime (both operands per tensor, any
  zero points); no bias, no activation; bound as stated.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from ...errors import UnsupportedOpError
from ...ops import conv as float_conv
from ...ops.conv_layout import CONV_LAYOUTS, weight_axes
from ...ops.registry import OpContext, OpDef, TensorInfo, get_op
from ...rounding import round_half_away_int
from ..fixedpoint import FloorAffine, f64_multiplier, multiplier_bits, qrange, quantize_multiplier, rounding_offset
from ..registry import QParams, qparams, register

log = logging.getLogger(__name__)

I64 = np.int64
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)

#: Largest integer magnitude up to which every integer (so every partial sum) is exact.
EXACT_LIMIT = {F32: 1 << 24, F64: 1 << 53}
#: |acc| must stay below this (multiplier_bits then leaves at least one multiplier bit).
ACC_LIMIT = 1 << 61
#: dtypes accepted for the data operand, the weights and the output
DATA_DTYPES = (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.int16))
OUT_DTYPES = DATA_DTYPES + (np.dtype(np.int32),)
#: ops whose data input may be quantized per channel along its last (input-channel) axis
PER_CHANNEL_INPUT_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"})
#: a bias whose scale is within this relative distance of x_scale * w_scale is used as is
#: (scales are stored as float32 in the model, so the product and the stored scale differ slightly)
BIAS_SCALE_RTOL = 1e-5


# --------------------------------------------------------------------------------------------
# op layouts
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Where an op's operands sit and how its weights map to output channels."""

    x_index: int
    w_index: int
    bias_index: int | None
    #: the float kernel's positional arguments, by name ("x", "w", "shape")
    order: tuple[str, ...]
    #: weights rank (None: any rank >= 2, BATCH_MATMUL)
    w_rank: int | None
    #: which fused-activation rule applies: "conv", "fc" or "none"
    activation: str


def _layout(op_name: str, order: tuple[str, ...], w_rank: int | None, activation: str) -> Layout:
    """The kernel's view of ``op_name``: operand positions from ``ops.conv_layout``, plus its own fields."""
    t = CONV_LAYOUTS[op_name]
    return Layout(t.data, t.weights, t.bias, order, w_rank, activation)


LAYOUTS = {
    "CONV_2D": _layout("CONV_2D", ("x", "w"), 4, "conv"),
    "DEPTHWISE_CONV_2D": _layout("DEPTHWISE_CONV_2D", ("x", "w"), 4, "conv"),
    "TRANSPOSE_CONV": _layout("TRANSPOSE_CONV", ("shape", "w", "x"), 4, "conv"),
    "FULLY_CONNECTED": _layout("FULLY_CONNECTED", ("x", "w"), 2, "fc"),
    "BATCH_MATMUL": _layout("BATCH_MATMUL", ("x", "w"), None, "none"),
}


# --------------------------------------------------------------------------------------------
# the exact float carrier
# --------------------------------------------------------------------------------------------

def split_limbs(w: np.ndarray, bits: int, n: int) -> list[np.ndarray]:
    """``w == sum_i limbs[i] * 2**(bits*i)``: limbs 0..n-2 in ``[0, 2**bits)``, the last one signed (int64)."""
    w = np.asarray(w, dtype=I64)
    mask = I64((1 << bits) - 1)
    limbs = [(w >> I64(bits * i)) & mask for i in range(n - 1)]
    limbs.append(w >> I64(bits * (n - 1)))
    return limbs


def _to_carrier(q: np.ndarray, zero_point, dtype: np.dtype, multiplier: np.ndarray | None = None) -> np.ndarray:
    """``(q - zero_point) * multiplier`` as ``dtype``; per channel along the last axis when vectors.

    Exact: ``|q - zp| < 2**17`` and the multipliers (``dtype`` powers of two) stay within the proven bound.
    """
    if np.ndim(zero_point) == 0 and int(zero_point) == 0:
        xf = q.astype(dtype, copy=multiplier is not None)
    else:
        xf = np.subtract(q, np.asarray(zero_point, dtype=dtype), dtype=dtype)
    if multiplier is not None:
        np.multiply(xf, multiplier, out=xf)
    return xf


class ExactCarrier:
    """A float kernel of ``ops.conv`` run on floats that hold exact integers; returns the sums.

    Calling it with the integer operands gives ``acc = sum (x_q - x_zp) * (w_q - w_zp)`` (no bias)
    as a float array of exact integers (one limb) or an int64 array (several limbs). Prepare has
    proven every partial sum exact (see the module docstring).

    Deliberately not a dataclass: it holds the float kernel's prepared parameters, which include
    the (integer-valued) weights already laid out as floats for BLAS, so the per-inference
    arithmetic on them is exact integer arithmetic done by the FPU.
    """

    __slots__ = ("kernel", "params", "w_limbs", "dtype", "order", "x_zero_point", "w_zero_point",
                 "limb_bits", "x_multiplier")

    def __init__(self, kernel, params: tuple[Any, ...], w_limbs: tuple[np.ndarray, ...] | None,
                 dtype: np.dtype, order: tuple[str, ...], x_zero_point, w_zero_point: np.ndarray,
                 limb_bits: int, x_multiplier: np.ndarray | None = None):
        self.kernel = kernel
        self.params = params  # the float kernel's params, one per limb
        self.w_limbs = w_limbs  # constant weights (minus zero point) per limb, as floats; None: runtime
        self.dtype = dtype
        self.order = order
        self.x_zero_point = x_zero_point
        self.w_zero_point = w_zero_point
        self.limb_bits = limb_bits
        # powers of two per input channel, as carrier floats (converted once), or None
        self.x_multiplier = None if x_multiplier is None else x_multiplier.astype(dtype)

    @property
    def limbs(self) -> int:
        return len(self.params)

    def _run(self, params, xf, wf, shape):
        args = {"x": xf, "w": wf, "shape": shape}
        return self.kernel(*(args[a] for a in self.order), opt=params)

    def __call__(self, x: np.ndarray, w: np.ndarray | None, shape: np.ndarray | None = None
                 ) -> np.ndarray:
        xf = _to_carrier(x, self.x_zero_point, self.dtype, self.x_multiplier)
        if self.w_limbs is not None:
            limbs = self.w_limbs
        elif len(self.params) == 1:
            limbs = (_to_carrier(w, self.w_zero_point, self.dtype),)
        else:
            limbs = tuple(v.astype(self.dtype) for v in split_limbs(
                np.asarray(w, I64) - self.w_zero_point, self.limb_bits, len(self.params)))
        if len(self.params) == 1:
            return self._run(self.params[0], xf, limbs[0], shape)
        acc = None
        for i, (p, wf) in enumerate(zip(self.params, limbs)):
            part = self._run(p, xf, wf, shape).astype(I64)
            if i:
                part <<= I64(self.limb_bits * i)
                acc += part
            else:
                acc = part
        return acc


# --------------------------------------------------------------------------------------------
# requantization
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Requant:
    """``out = clip(((acc * multiplier + offset) >> shift) + add_zero_point, lo, hi)`` per channel.

    Per-channel arrays run along the last axis of ``acc`` viewed as ``[-1, channels]`` (0-d when
    every channel has the same value). ``offset = bias * multiplier + 2**(shift-1)``, plus
    ``out_zp << shift`` when ``add_zero_point`` is 0 (folded); ``shift >= 1``. A runtime bias
    is clipped to ``±bias_limit`` first: beyond it the output saturates whatever the bias, so the
    clip changes no result and keeps ``acc * multiplier`` within int64.
    """

    channels: int
    multiplier: np.ndarray
    offset: np.ndarray
    shift: np.ndarray
    add_zero_point: np.ndarray | None  # int64, 0-d or [C]; None when folded into the offset
    lo: np.ndarray  # int64, 0-d or [C]
    hi: np.ndarray
    out_dtype: np.dtype
    bias_limit: np.ndarray | None = None  # int64 [C], set when the bias is a runtime input
    fast: FloorAffine | None = None  # the same map in float64 (constant bias, <= 16-bit output)

    def __call__(self, acc: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        if self.fast is not None:
            return self.fast(acc)
        shape = acc.shape
        a = acc.reshape(-1, self.channels) if self.multiplier.ndim else acc
        out = np.empty(a.shape, dtype=I64)
        # exact: acc holds integers below 2**53 (float carrier) or is int64 already
        np.multiply(a, self.multiplier, out=out, dtype=I64, casting="unsafe")
        offset = self.offset
        if self.bias_limit is not None and bias is not None:
            b = np.clip(np.asarray(bias, I64).reshape(-1), -self.bias_limit, self.bias_limit)
            offset = offset + b * self.multiplier
        np.add(out, offset, out=out)
        np.right_shift(out, self.shift, out=out)
        if self.add_zero_point is not None:
            np.add(out, self.add_zero_point, out=out)
        np.clip(out, self.lo, self.hi, out=out)
        return out.astype(self.out_dtype).reshape(shape)


def activation_range(act: str, scale: float, zero_point: int, dtype: np.dtype) -> tuple[int, int]:
    """The integer clamp [lo, hi] of a fused activation on an output quantized (scale, zp, dtype)."""
    lo, hi = qrange(dtype)
    if act in ("RELU", "RELU6"):
        lo = max(lo, zero_point)
    if act == "RELU6":
        hi = min(hi, zero_point + round_half_away_int(6.0 / scale))
    if act == "RELU_N1_TO_1":
        lo = max(lo, zero_point + round_half_away_int(-1.0 / scale))
        hi = min(hi, zero_point + round_half_away_int(1.0 / scale))
    return lo, hi


def channel_multipliers(real: np.ndarray, bounds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per channel ``quantize_multiplier(real[c], multiplier_bits(bounds[c]))`` with ``shift >= 1``.

    A multiplier with ``shift < 1`` (scale ratio >= 2**(bits-1)) is widened to shift 1 when
    ``bound * multiplier`` still stays below 2**62; UnsupportedOpError otherwise.
    """
    real = np.asarray(real, np.float64).reshape(-1)
    bits = np.array([multiplier_bits(b) for b in bounds], dtype=I64)
    mult = np.zeros(real.shape, I64)
    shift = np.zeros(real.shape, I64)
    for b in np.unique(bits):
        sel = bits == b
        mult[sel], shift[sel] = quantize_multiplier(real[sel], int(b))
    for c in np.flatnonzero(shift < 1):
        m = int(mult[c]) << (1 - int(shift[c]))
        if m * max(1, bounds[c]) >= 1 << 62:
            raise UnsupportedOpError(f"requantization ratio {real[c]:.6g} is too large for an "
                                     f"accumulator bound of {bounds[c]}")
        mult[c], shift[c] = m, 1
    return mult, shift


def requant_multipliers(real: np.ndarray, bounds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per channel: ``f64_multiplier(real[c], bounds[c])`` (24..31 bits, float64-exact requantization)
    when it exists, else ``channel_multipliers`` (``multiplier_bits(bounds[c])`` bits)."""
    real = np.asarray(real, np.float64).reshape(-1)
    mult, shift = np.zeros(real.size, I64), np.zeros(real.size, I64)
    rest = []
    for c in range(real.size):
        picked = f64_multiplier(real[c], bounds[c])
        if picked is None:
            rest.append(c)
        else:
            mult[c], shift[c] = picked
    if rest:
        mult[rest], shift[rest] = channel_multipliers(real[rest], [bounds[c] for c in rest])
    return mult, shift


def make_requant(real: np.ndarray, bounds: list[int], bias: list[int] | None, out_zero_point,
                 lo, hi, out_dtype: np.dtype, bias_limit: list[int] | None = None) -> Requant:
    """The Requant for per-channel ratios ``real`` and accumulator bounds (bias included).

    ``out_zero_point``, ``lo`` and ``hi`` are ints or per-channel sequences. With a constant bias
    and an output of up to 16 bits whose every channel is float64-exact, the Requant carries a
    :class:`FloorAffine` that evaluates the same integers in float64.
    """
    mult, shift = requant_multipliers(real, bounds)
    n = mult.size
    zps = np.broadcast_to(np.asarray(out_zero_point, I64), (n,))
    b = bias if bias is not None else [0] * n
    offset = [int(b[c]) * int(mult[c]) + rounding_offset(shift[c]) for c in range(n)]
    lo_v = np.broadcast_to(np.asarray(lo, I64), (n,)).copy()
    hi_v = np.broadcast_to(np.asarray(hi, I64), (n,)).copy()
    fast = None
    if bias_limit is None:
        # bounds[c] covers |acc| + |bias|, so it bounds |acc| too
        fast = FloorAffine.build(mult, shift, [o + (int(z) << int(sh)) for o, z, sh in zip(offset, zps, shift)],
                                 bounds, lo_v, hi_v, out_dtype)
    fold = all(bounds[c] * int(mult[c]) + abs(offset[c]) + (abs(int(zps[c])) << int(shift[c]))
               < 1 << 63 for c in range(n))
    if fold:
        offset = [offset[c] + (int(zps[c]) << int(shift[c])) for c in range(n)]
    off = np.array(offset, dtype=I64)
    add_zp = np.zeros(n, I64) if fold else zps.copy()
    vectors = (mult, shift, off, add_zp, lo_v, hi_v)
    if bias_limit is None and all(np.all(v == v[0]) for v in vectors):
        mult, shift, off, add_zp, lo_v, hi_v = (v[:1].reshape(()) for v in vectors)
    return Requant(n, mult, off, shift, None if fold else add_zp, lo_v, hi_v, np.dtype(out_dtype),
                   None if bias_limit is None else np.array(bias_limit, I64), fast)


# --------------------------------------------------------------------------------------------
# prepare
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvFamilyParams:
    """Prepared integer parameters of one convolution-family op."""

    #: computes ``sum (x - x_zp) * (w - w_zp)`` exactly (see ExactCarrier)
    carrier: ExactCarrier
    requant: Requant
    #: dtype of the exact carrier and its number of weight limbs (for logs and tests)
    carrier_dtype: np.dtype
    limbs: int


def _data_qparams(ctx: OpContext, t: TensorInfo, what: str, dtypes=DATA_DTYPES,
                  channel_axis: int | None = None) -> QParams:
    """``t``'s QParams: per tensor, or per channel along ``channel_axis`` when that is given."""
    if t is None:
        raise ctx.error(f"{what} is missing")
    if np.dtype(t.dtype) not in dtypes:
        raise UnsupportedOpError(
            f"op #{ctx.index} {ctx.op_name}: {what} {t.name!r} is {np.dtype(t.dtype).name}; the "
            f"integer kernel takes {', '.join(d.name for d in dtypes)}")
    p = qparams(ctx, t, what)
    if p.per_channel:
        if channel_axis is None or p.axis != channel_axis:
            where = "a per-tensor quantization" if channel_axis is None else \
                f"a per-tensor quantization or one along its last axis {channel_axis}"
            raise UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: {what} {t.name!r} is quantized "
                                     f"per channel along axis {p.axis}; the integer kernel needs {where}")
        if p.scale.size != int(t.shape[channel_axis]):
            raise ctx.error(f"{what} {t.name!r} has {p.scale.size} scales for {int(t.shape[channel_axis])} "
                            "channels")
    lo, hi = qrange(p.dtype)
    bad = [int(z) for z in np.ravel(p.zero_point) if not lo <= int(z) <= hi]
    if bad:
        raise ctx.error(f"{what} {t.name!r}: zero point {bad[0]} outside {p.dtype.name}")
    return p


#: largest power-of-two step between the scales of a per-channel data input
MAX_INPUT_SCALE_SHIFT = 16


def _input_grid(ctx: OpContext, p: QParams, t: TensorInfo) -> tuple[float, np.ndarray | None, int]:
    """(grid scale, per-channel power-of-two multipliers or None, max |(q - zp) * multiplier|).

    A per-channel input must have scales ``grid_scale * 2**k[c]`` (integer ``0 <= k[c] <= 16``):
    its values are then put on the finest channel's grid exactly, ``(q - zp[c]) << k[c]``.
    """
    if not p.per_channel:
        return float(p.scale), None, _absmax(p)
    grid = float(p.scale.min())
    k = np.log2(p.scale / grid)
    kr = np.round(k)
    if np.any(np.abs(k - kr) > 0) or kr.max() > MAX_INPUT_SCALE_SHIFT:
        raise UnsupportedOpError(
            f"op #{ctx.index} {ctx.op_name}: input {t.name!r} is quantized per channel with scales that are "
            f"not the smallest one times powers of two up to 2**{MAX_INPUT_SCALE_SHIFT}")
    mult = (I64(1) << kr.astype(I64))
    lo, hi = qrange(p.dtype)
    reach = np.maximum(hi - p.zero_point, p.zero_point - lo) * mult
    return grid, mult, int(reach.max())


def _absmax(p: QParams) -> int:
    """max |q - zero_point| over the dtype's range."""
    lo, hi = qrange(p.dtype)
    zp = np.asarray(p.zero_point, I64)
    return int(max(hi - int(zp.min()), int(zp.max()) - lo))


@dataclass(frozen=True)
class _Weights:
    """Prepare-time view of the weights."""

    scale: np.ndarray  # float64 [C]
    zero_point: np.ndarray  # int64, broadcastable against the weights
    values: np.ndarray | None  # int64 q - zp, for constant weights
    abs_sums: np.ndarray  # int64 [C]: bound on sum over one output's taps of |q - zp|
    taps: int  # number of taps per output
    absmax: int  # max |q - zp| over the dtype


def _weights(ctx: OpContext, t: TensorInfo, channel_axis: int, sum_axes: tuple[int, ...]) -> _Weights:
    if np.dtype(t.dtype) not in DATA_DTYPES:
        raise UnsupportedOpError(
            f"op #{ctx.index} {ctx.op_name}: weights {t.name!r} are {np.dtype(t.dtype).name}; the "
            f"integer kernel takes {', '.join(d.name for d in DATA_DTYPES)}")
    p = qparams(ctx, t, "weights")
    shape = tuple(t.shape)
    channels = int(shape[channel_axis])
    if p.per_channel:
        if p.axis != channel_axis:
            raise UnsupportedOpError(
                f"op #{ctx.index} {ctx.op_name}: weights {t.name!r} are quantized along axis "
                f"{p.axis}; the integer kernel needs per-output-channel axis {channel_axis}")
        if p.scale.size != channels:
            raise ctx.error(f"weights {t.name!r} have {p.scale.size} scales for {channels} "
                            "output channels")
        zshape = [1] * len(shape)
        zshape[channel_axis] = channels
        zp = p.zero_point.reshape(zshape)
    else:
        zp = p.zero_point.reshape(())
    scale = np.broadcast_to(p.scale, (channels,)).astype(np.float64)
    taps = int(np.prod([shape[a] for a in sum_axes]))
    absmax = _absmax(p)
    values = None
    if t.data is not None:
        values = np.asarray(t.data, dtype=I64) - zp
        sums = np.abs(values).sum(axis=sum_axes, keepdims=True)
        abs_sums = np.moveaxis(sums, channel_axis, -1).reshape(-1, channels).max(axis=0)
    else:
        abs_sums = np.full(channels, absmax * taps, dtype=I64)
    return _Weights(scale, zp, values, abs_sums.astype(I64), taps, absmax)


def _bias(ctx: OpContext, t: TensorInfo | None, acc_scale: np.ndarray) -> tuple[list[int] | None, list[int], bool]:
    """(constant bias in accumulator units or None, bound on |bias| per channel, runtime?)."""
    channels = acc_scale.size
    if t is None:
        return None, [0] * channels, False
    size = int(np.prod(t.shape)) if t.shape else 1
    if size != channels:
        raise ctx.error(f"bias {t.name!r} has {size} elements (shape {tuple(t.shape)}) but the op "
                        f"has {channels} output channels")
    p = qparams(ctx, t, "bias")
    scale = np.broadcast_to(p.scale, (channels,)).astype(np.float64)
    zp = np.broadcast_to(p.zero_point, (channels,)).astype(I64)
    same = bool(np.all(np.abs(scale - acc_scale) <= BIAS_SCALE_RTOL * acc_scale))
    if t.data is None:
        if not same or np.any(zp != 0):
            raise UnsupportedOpError(
                f"op #{ctx.index} {ctx.op_name}: runtime bias {t.name!r} must have zero point 0 "
                "and scale input_scale * weight_scale")
        lo, hi = qrange(p.dtype)
        return None, [max(-lo, hi)] * channels, True
    q = np.asarray(t.data).reshape(-1).astype(I64) - zp
    if same:
        vals = [int(v) for v in q]
    else:
        log.debug("op #%d %s: bias %r rescaled from its scale to input_scale * weight_scale",
                  ctx.index, ctx.op_name, t.name)
        vals = [round_half_away_int(float(v) * float(s) / float(a)) for v, s, a in zip(q, scale, acc_scale)]
    return vals, [abs(v) for v in vals], False


def _activation(ctx: OpContext, layout: Layout) -> str:
    opt = ctx.options
    if layout.activation == "none":
        return "NONE"
    if layout.activation == "fc":
        raw = getattr(opt, "fused_activation_function", "NONE")
        if raw not in ("NONE", "RELU", "RELU_N1_TO_1", "RELU6"):
            raise UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: fused activation {raw!r} is "
                                     "not supported (only NONE, RELU, RELU_N1_TO_1, RELU6)")
    return float_conv.check_activation(ctx, opt)


def _without_activation(opt: Any) -> Any:
    """``opt`` with fused activation NONE (the integer clamp replaces it)."""
    if opt is None or getattr(opt, "fused_activation_function", "NONE") == "NONE":
        return opt
    if dataclasses.is_dataclass(opt):
        return dataclasses.replace(opt, fused_activation_function="NONE")
    return SimpleNamespace(**{**vars(opt), "fused_activation_function": "NONE"})


def _float_context(ctx: OpContext, layout: Layout, dtype: np.dtype, w_data: np.ndarray | None,
                   options: Any) -> OpContext:
    """The op as the float prepare sees it: float x/weights (weights constant or not), no bias."""
    n = max(layout.x_index, layout.w_index) + 1
    inputs = list(ctx.inputs[:n])
    x, w = ctx.inputs[layout.x_index], ctx.inputs[layout.w_index]
    inputs[layout.x_index] = TensorInfo(x.name, tuple(x.shape), dtype)
    inputs[layout.w_index] = TensorInfo(w.name, tuple(w.shape), dtype, w_data)
    outputs = tuple(TensorInfo(o.name, tuple(o.shape), dtype) for o in ctx.outputs)
    return OpContext(ctx.index, ctx.op_name, tuple(inputs), outputs, options)


def _limb_bound(values: np.ndarray, sum_axes: tuple[int, ...], x_absmax: int) -> int:
    """``x_absmax * max over outputs of sum_taps |values|`` (values: one limb of the weights)."""
    sums = np.abs(values).sum(axis=sum_axes, keepdims=True)
    return x_absmax * int(sums.max())


def _prepare_family(ctx: OpContext) -> ConvFamilyParams:
    layout = LAYOUTS[ctx.op_name]
    required = max(layout.x_index, layout.w_index) + 1
    ctx.require_inputs(required, required if layout.bias_index is None else layout.bias_index + 1)
    x_t, w_t = ctx.inputs[layout.x_index], ctx.inputs[layout.w_index]
    if layout.w_rank is not None and len(w_t.shape) != layout.w_rank:
        raise ctx.error(f"weights must have rank {layout.w_rank}, got shape {tuple(w_t.shape)}")
    if layout.w_rank is None and (len(w_t.shape) < 2 or len(x_t.shape) < 2):
        raise ctx.error(f"operands must have rank >= 2, got shapes {tuple(x_t.shape)} and "
                        f"{tuple(w_t.shape)}")
    if len(ctx.outputs) != 1:
        raise ctx.error(f"has {len(ctx.outputs)} outputs, expected 1")
    in_axis = len(x_t.shape) - 1 if ctx.op_name in PER_CHANNEL_INPUT_OPS else None
    xq = _data_qparams(ctx, x_t, "input", channel_axis=in_axis)
    out_t = ctx.outputs[0]
    oq = _data_qparams(ctx, out_t, "output", OUT_DTYPES, channel_axis=len(out_t.shape) - 1)
    axes = weight_axes(ctx.op_name, tuple(w_t.shape), ctx.options)
    channel_axis, sum_axes = axes.out_axis, axes.summed_axes
    w = _weights(ctx, w_t, channel_axis, sum_axes)
    x_scale, x_multiplier, x_absmax = _input_grid(ctx, xq, x_t)
    out_scale = np.broadcast_to(np.asarray(oq.scale, np.float64), w.scale.shape)
    out_zps = np.broadcast_to(np.asarray(oq.zero_point, I64), w.scale.shape)
    if oq.per_channel and oq.scale.size != w.scale.size:
        raise ctx.error(f"output {out_t.name!r} has {oq.scale.size} scales for {w.scale.size} channels")
    acc_scale = x_scale * w.scale
    bias_t = ctx.input(layout.bias_index) if layout.bias_index is not None else None
    bias, bias_bound, runtime_bias = _bias(ctx, bias_t, acc_scale)
    sums = [x_absmax * int(s) for s in w.abs_sums]
    real = acc_scale / out_scale
    bias_limit = None
    if runtime_bias:
        # past P + (output span) / real the output saturates whatever the bias: clip it there
        lo_q, hi_q = qrange(oq.dtype)
        span = hi_q - lo_q + 2 * int(np.abs(out_zps).max()) + 2
        bias_limit = [min(bb, p + math.ceil(span / float(r)))
                      for bb, p, r in zip(bias_bound, sums, real)]
        bias_bound = bias_limit
    bounds = [p + b for p, b in zip(sums, bias_bound)]
    if max(bounds) >= ACC_LIMIT:
        raise UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: the accumulator may reach "
                                 f"{max(bounds)} >= 2**61")
    act = _activation(ctx, layout)
    clamps = [activation_range(act, float(sc), int(z), oq.dtype) for sc, z in zip(out_scale, out_zps)]
    lo, hi = [c[0] for c in clamps], [c[1] for c in clamps]
    out_zp = out_zps
    requant = make_requant(real, bounds, bias, out_zp, lo, hi, oq.dtype, bias_limit)
    x_zp = xq.zero_point if xq.per_channel else int(xq.zero_point)
    carrier = _make_carrier(ctx, layout, w, sum_axes, x_absmax, x_zp, x_multiplier)
    log.debug("op #%d %s: exact %s carrier, %d limb(s)", ctx.index, ctx.op_name, carrier.dtype.name,
              carrier.limbs)
    return ConvFamilyParams(carrier, requant, carrier.dtype, carrier.limbs)


def _make_carrier(ctx: OpContext, layout: Layout, w: _Weights, sum_axes: tuple[int, ...],
                  x_absmax: int, x_zp, x_multiplier: np.ndarray | None = None) -> ExactCarrier:
    """The cheapest exact carrier: float32, float64, or float64 with the weights split in limbs."""
    fop: OpDef = get_op(ctx.op_name)
    options = _without_activation(ctx.options)
    bound = x_absmax * int(w.abs_sums.max())
    const = w.values is not None
    for dtype in (F32, F64):
        if bound <= EXACT_LIMIT[dtype]:
            data = (w.values.astype(dtype),) if const else None
            params = fop.prepare(_float_context(ctx, layout, dtype, data and data[0], options))
            return ExactCarrier(fop.kernel, (params,), data, dtype, layout.order, x_zp, w.zero_point, 0,
                                x_multiplier)
    bits, n = _plan_limbs(w, sum_axes, x_absmax)
    if const:
        data = tuple(limb.astype(F64) for limb in split_limbs(w.values, bits, n))
        params = tuple(fop.prepare(_float_context(ctx, layout, F64, d, options)) for d in data)
    else:
        data = None
        params = (fop.prepare(_float_context(ctx, layout, F64, None, options)),) * n
    return ExactCarrier(fop.kernel, params, data, F64, layout.order, x_zp, w.zero_point, bits, x_multiplier)


def _plan_limbs(w: _Weights, sum_axes: tuple[int, ...], x_absmax: int) -> tuple[int, int]:
    """(limb bits, limb count): the fewest limbs whose every partial sum is float64-exact."""
    limit = EXACT_LIMIT[F64]
    wmax = int(np.abs(w.values).max()) if w.values is not None else w.absmax
    wbits = max(1, wmax.bit_length())
    for n in range(2, wbits + 1):
        bits = -(-wbits // n)
        if w.values is not None:
            bound = max(_limb_bound(limb, sum_axes, x_absmax) for limb in split_limbs(w.values, bits, n))
        else:
            bound = x_absmax * w.taps * (1 << bits)
        if bound <= limit:
            return bits, n
    raise UnsupportedOpError(f"sums of {w.taps} taps with inputs up to {x_absmax} cannot be "
                             "computed exactly")


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------

@register("CONV_2D", prepare=_prepare_family)
def conv_2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None, *,
            opt: ConvFamilyParams) -> np.ndarray:
    """out = requant(sum (x - x_zp) * w + bias) per output channel (see module docstring)."""
    return opt.requant(opt.carrier(x, w), bias)


@register("DEPTHWISE_CONV_2D", prepare=_prepare_family)
def depthwise_conv_2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None, *,
                      opt: ConvFamilyParams) -> np.ndarray:
    """out = requant(sum (x - x_zp) * w + bias) per output channel (see module docstring)."""
    return opt.requant(opt.carrier(x, w), bias)


@register("TRANSPOSE_CONV", prepare=_prepare_family)
def transpose_conv(output_shape: np.ndarray, w: np.ndarray, x: np.ndarray,
                   bias: np.ndarray | None = None, *, opt: ConvFamilyParams) -> np.ndarray:
    """out = requant(col2im sum (x - x_zp) * w + bias) per output channel (see module docstring)."""
    return opt.requant(opt.carrier(x, w, output_shape), bias)


@register("FULLY_CONNECTED", prepare=_prepare_family)
def fully_connected(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None, *,
                    opt: ConvFamilyParams) -> np.ndarray:
    """out = requant((x - x_zp) @ w.T + bias) per output unit (see module docstring)."""
    return opt.requant(opt.carrier(x, w), bias)


@register("BATCH_MATMUL", prepare=_prepare_family)
def batch_matmul(x: np.ndarray, y: np.ndarray, *, opt: ConvFamilyParams) -> np.ndarray:
    """out = requant((x - x_zp) @ (y - y_zp)) per output column (see module docstring)."""
    return opt.requant(opt.carrier(x, y))
