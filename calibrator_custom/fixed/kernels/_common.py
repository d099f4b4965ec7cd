"""Prepare-time helpers shared by the integer kernels of the data-movement-like families (shape.py, pool.py,
reduce.py, resize.py, elementwise.py's CAST).

* :func:`data_rescale`: the :class:`~calibrator_custom.fixed.fixedpoint.Rescale` from a data input's
  quantization to an output's (identity when they are equal; plain integer tensors pass unchanged).
* :func:`activation_bounds`: a fused activation as an integer clamp in the output's domain.
* :func:`float_view`: the op context with quantized tensors shown as float32, for float prepares that
  insist on float tensors (the pools) but only derive geometry from them.
* :func:`quantize_real`: ``saturate(round_half_up(value / scale) + zero_point)``, the one rounding used for
  values quantized in prepare (``calibrator_custom.rounding``).
* :func:`static_resize_size`: a resize's output size known in prepare.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ...ops.resize import ResizeParams

from ...errors import UnsupportedOpError
from ...ops.conv import check_activation
from ...ops.registry import OpContext, TensorInfo
from ...rounding import round_half_up_int
from ..fixedpoint import Rescale
from ..registry import QParams, qparams

I64 = np.int64


def is_quantized(t: TensorInfo) -> bool:
    """Whether ``t`` carries a quantization scale (an activation) rather than plain integers."""
    return t.quantization is not None and bool(t.quantization.scale)


def refuse(ctx: OpContext, reason: str) -> UnsupportedOpError:
    """The UnsupportedOpError for an option this integer kernel cannot run: names the op and why."""
    return UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: {reason}")


def per_tensor_qparams(ctx: OpContext, t: TensorInfo, what: str) -> QParams:
    """The tensor's QParams; refused when it is quantized per channel (activations are per tensor)."""
    p = qparams(ctx, t, what)
    if p.per_channel:
        raise refuse(ctx, f"{what} {t.name!r} is quantized per channel; the integer kernel needs one "
                          f"scale per tensor")
    return p


def identity_rescale(dtype) -> Rescale:
    """The Rescale that returns its input unchanged (plain integer or bool tensors)."""
    zero = np.zeros((), I64)
    return Rescale(np.ones((), I64), zero, zero, zero, np.dtype(dtype), True)


def data_rescale(ctx: OpContext, src: TensorInfo, dst: TensorInfo, src_what: str = "input",
                 dst_what: str = "output") -> Rescale:
    """Rescale from ``src``'s quantization to ``dst``'s.

    Both quantized (per tensor): :meth:`Rescale.between` (identity when scale, zero point and dtype
    agree). Neither quantized: both must be the same integer/bool dtype, and data passes unchanged.
    A quantized tensor meeting a plain one, or a float tensor, is a ModelError.
    """
    for what, t in ((src_what, src), (dst_what, dst)):
        if np.dtype(t.dtype).kind not in "iub":
            raise ctx.error(f"{what} {t.name!r} is {np.dtype(t.dtype).name}; integer kernels take "
                            f"integer tensors (is this a fixed model?)")
    qs, qd = is_quantized(src), is_quantized(dst)
    if qs and qd:
        ps = per_tensor_qparams(ctx, src, src_what)
        pd = per_tensor_qparams(ctx, dst, dst_what)
        return Rescale.between(ps.scale, ps.zero_point, pd.scale, pd.zero_point, ps.dtype, pd.dtype)
    if qs or qd:
        q, plain = (src_what, dst_what) if qs else (dst_what, src_what)
        raise ctx.error(f"{q} is quantized but {plain} is a plain integer tensor; a data-movement op "
                        f"keeps its data's kind")
    if np.dtype(src.dtype) != np.dtype(dst.dtype):
        raise ctx.error(f"{src_what} dtype {np.dtype(src.dtype).name} differs from {dst_what} dtype "
                        f"{np.dtype(dst.dtype).name}")
    return identity_rescale(src.dtype)


def quantize_real(value: float, p: QParams) -> int:
    """``value`` in ``p``'s integer domain: saturate(round_half_up(value / scale) + zero_point)."""
    q = round_half_up_int(float(value) / float(p.scale)) + int(p.zero_point)
    return int(min(max(q, p.qmin), p.qmax))


#: fused activation -> the real interval it clamps to
_ACT_RANGES = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0),
               "RELU_N1_TO_1": (-1.0, 1.0)}


def activation_bounds(ctx: OpContext, out: QParams) -> tuple[int, int]:
    """(lo, hi) integer clamp in ``out``'s domain for the op's fused activation.

    The real bounds are quantized with :func:`quantize_real` (so a bound is off by at most 0.5 LSB,
    and the clamp never moves a value by more than the float clamp plus 0.5 LSB). TANH and SIGN_BIT
    are no-ops, as in the float kernels.
    """
    act = check_activation(ctx, ctx.options)
    lo_r, hi_r = _ACT_RANGES[act]
    lo = out.qmin if lo_r is None else quantize_real(lo_r, out)
    hi = out.qmax if hi_r is None else quantize_real(hi_r, out)
    return lo, hi


def float_view(ctx: OpContext) -> OpContext:
    """``ctx`` with every quantized tensor shown as float32 and unquantized (for float prepares)."""

    def f(t: TensorInfo | None) -> TensorInfo | None:
        if t is None or not is_quantized(t):
            return t
        return dataclasses.replace(t, dtype=np.dtype(np.float32), data=None, quantization=None)

    return dataclasses.replace(ctx, inputs=tuple(f(t) for t in ctx.inputs),
                               outputs=tuple(f(t) for t in ctx.outputs))


def bit_length(a: np.ndarray) -> np.ndarray:
    """Number of bits of ``|a|`` (0 for 0), elementwise on int64 arrays, by integer comparisons."""
    m = np.abs(np.asarray(a, I64))
    bits = np.zeros(m.shape, I64)
    for step in (32, 16, 8, 4, 2, 1):
        big = m >= (I64(1) << I64(step))
        bits = np.where(big, bits + step, bits)
        m = np.where(big, m >> I64(step), m)
    return bits + (m > 0)


def static_resize_size(ctx: OpContext, p: ResizeParams) -> tuple[int, int]:
    """The output (height, width): the constant size input, else the model's static output shape."""
    if p.size is not None:
        return p.size
    shape = tuple(ctx.outputs[0].shape)
    if len(shape) != 4 or min(shape[1:3]) <= 0:
        raise refuse(ctx, f"the size input is computed at run time and the output shape {shape} is "
                          f"not static; the integer kernel needs the output size in prepare")
    return int(shape[1]), int(shape[2])
