"""Write a vendor fixed.sim (SGS_IPU_SDK 1.1.5 dialect) for our ranges, from a vendor fixed.sim template.

A vendor fixed.sim holds, besides the quantization, a per-op IPU tiling program in its options
tables (Conv2DOptions has 42 slots) that the vendor's simulator and compiler need
(``conv_exec_layer_callback_helper: Assertion 'kbpartition_info.di_hw == 3 ...'`` without them), and
the compiler refuses a file whose size is not the one its own writer gives. Those fields depend on
the graph's shapes, not on the ranges (two L1 calibrations of one model with different ranges
differ only in the quantization vectors, the bias and PRELU alpha buffers, the conv shifts, the input pixel
transform and the options of ADD/RELU/PRELU). So this writer takes a vendor fixed.sim of the same
float model as a *template* (made once with the vendor's SDK, which making the board's offline model
needs anyway) and rewrites, in place and at the same size, everything that depends on the ranges,
computed by this package:

- every tensor's min/max/scale/zero point (:mod:`.quantize_plan`),
- conv and depthwise [2, C] bias rows, accumulator range, bias and total shifts (:mod:`.pack`;
  the weight codes do not depend on the ranges and are kept),
- ADD's multipliers, RELU's and PRELU's multipliers and PRELU's alpha codes, the UINT8-view zero
  points in the per-tensor tables of Operator slots 9/10,
- the input pixel transform (SubGraph slot 10): A = round(1024 / (std * s_in)) on the diagonal,
  B_c = 256 + floor(-mean_c / std / s_in + zp_in + 1/2), channels in reverse order.

For the vendor's own ranges the result equals the vendor's L1 file byte for byte
(tests/test_vendor_fixed_writer.py). Ops whose options hold range-dependent fields we have not
established (LOGISTIC, MUL, SOFTMAX, ...) are refused up front, naming the op.
"""
from __future__ import annotations

import logging
import math
import os
import struct
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..model.graph import Model
from ..model.sgs_dialect import slot_of
from . import pack
from . import quantize_plan as qp
from .sim_patch import SimLayout

log = logging.getLogger(__name__)

#: ops whose vendor options hold no range-dependent field (two calibrations of the shared models
#: with different photos differ in no byte of their options) or whose fields we compute
WRITABLE_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "PAD", "CONCATENATION", "RESHAPE",
                          "ADD", "RELU", "PRELU"})
#: options slots of (bias shift k, total shift N - k): Conv2DOptions 35/37, DepthwiseConv2DOptions 36/38
_SHIFT_SLOTS = {op: (slot_of(table, "sgs_bias_shift"), slot_of(table, "sgs_total_shift"))
                for op, table in (("CONV_2D", "Conv2DOptions"), ("DEPTHWISE_CONV_2D", "DepthwiseConv2DOptions"))}


def check_writable(fixed: Model) -> None:
    """Refuse, naming the op, a template with an op whose range-dependent vendor fields are not established."""
    sg = fixed.main
    for i, op in enumerate(sg.operators):
        name = fixed.operator_codes[op.opcode_index].name
        if name not in WRITABLE_OPS:
            out = sg.tensors[op.outputs[0]].name if op.outputs else "?"
            raise UnsupportedOpError(
                f"op #{i} {name} (output {out!r}): the range-dependent fields of the vendor's "
                f"{name} options are not established, so a vendor fixed.sim cannot be written for our "
                f"ranges; supported: {', '.join(sorted(WRITABLE_OPS))}")


def input_transform(scale: float, zero_point: int, mean: Sequence[float], std: float) -> np.ndarray:
    """The 12 int16 of SubGraph slot 10: diag(A) (3x3) then B, channels reversed (B, G, R)."""
    a = int(round(1024.0 / (float(std) * float(scale))))
    b = [256 + math.floor(-float(m) / float(std) / float(scale) + int(zero_point) + 0.5) for m in mean]
    out = np.zeros(12, np.int64)
    out[[0, 4, 8]] = a
    out[9:12] = b[::-1]
    return out


class _Patch:
    def __init__(self, template: bytes):
        self.buf = bytearray(template)
        self.layout = SimLayout(template)

    def vector(self, where: str, vec, fmt: str, values) -> None:
        values = list(values)
        if vec is None or vec.count != len(values):
            raise ModelError(f"{where}: the template holds {0 if vec is None else vec.count} values, "
                             f"{len(values)} are to be written; re-make the template from this float model")
        struct.pack_into(f"<{len(values)}{fmt}", self.buf, vec.pos, *values)

    def buffer(self, where: str, index: int, data: bytes) -> None:
        vec = self.layout.buffer_data(index)
        if vec is None or vec.count < len(data):
            raise ModelError(f"{where}: {len(data)} bytes do not fit the template's buffer "
                             f"({0 if vec is None else vec.count} bytes)")
        self.buf[vec.pos:vec.pos + vec.count] = data + bytes(vec.count - len(data))

    def option(self, where: str, op: int, slot: int, value: int) -> None:
        self.scalar(where, self.layout.option_scalar(op, slot), slot, value)

    def scalar(self, where: str, pos: int | None, slot: int, value: int) -> None:
        if pos is None:
            if value != 0:
                raise ModelError(f"{where}: options slot {slot} is absent (0) in the template, {value} is "
                                 f"to be written; re-make the template with ranges closer to these")
            return
        # a 0 is written explicitly where the vendor's writer omits the field (the same value: an
        # absent field reads as its default 0); the file then differs from the vendor's in layout
        struct.pack_into("<i", self.buf, pos, int(value))


def _values(model: Model, t) -> np.ndarray:
    return np.frombuffer(model.buffers[t.buffer].data, np.float32, count=int(np.prod(t.shape))).reshape(t.shape)


def write(template: bytes, float_model: Model, ranges: Mapping[str, tuple[float, float]],
          channel_ranges: Mapping[str, tuple[np.ndarray, np.ndarray]], mean: Sequence[float],
          std: float, weight_scales: Mapping[str, Sequence[float]] | None = None) -> bytes:
    """The vendor fixed.sim for ``ranges`` (per tensor) and ``channel_ranges`` (per conv output channel).

    ``template``: a vendor L1 fixed.sim of ``float_model`` (the vendor float.sim); ``mean``/``std``:
    the input normalization (three means, RGB order, and one std) as in the input config;
    ``weight_scales``: per conv weight tensor name, one scale per output channel (e.g. our L2 plan's):
    those convs get per-channel weight codes and multipliers (:func:`_write_conv`); others, and all
    without it, the vendor's per-tensor codes.
    """
    fixed = Model.from_bytes(template)
    if fixed.dialect != "sgs_fixed":
        raise ModelError(f"the template must be a vendor fixed.sim (dialect sgs_fixed), not {fixed.dialect!r}")
    check_writable(fixed)
    plan = qp.plan(float_model, ranges)
    fl, fx = float_model.main, fixed.main
    by_name = {t.name: plan[i] for i, t in enumerate(fl.tensors)}
    p = _Patch(template)
    for i, t in enumerate(fx.tensors):
        q = by_name.get(t.name)
        if q is None:
            raise ModelError(f"tensor {t.name!r} of the template is not in the float model; give the "
                             f"float.sim the template was calibrated from")
        if q.dtype != t.dtype:
            raise ModelError(f"tensor {t.name!r}: type {t.dtype} in the template, {q.dtype} planned")
        where = f"tensor {t.name!r}"
        if q.min is not None:
            p.vector(where + " min", p.layout.quant_vector(i, 0), "f", [q.min])
            p.vector(where + " max", p.layout.quant_vector(i, 1), "f", [q.max])
        if q.scale is not None:
            p.vector(where + " scale", p.layout.quant_vector(i, 2), "f", [q.scale])
            p.vector(where + " zero point", p.layout.quant_vector(i, 3), "q", [q.zero_point])
    float_ops = {fl.tensors[op.inputs[1]].name: op for op in fl.operators
                 if float_model.operator_codes[op.opcode_index].name in _SHIFT_SLOTS}
    for j, op in enumerate(fx.operators):
        kind = fixed.operator_codes[op.opcode_index].name
        if kind in _SHIFT_SLOTS:
            _write_conv(p, fixed, float_model, j, op, kind, by_name, float_ops, channel_ranges,
                        (weight_scales or {}).get(fx.tensors[op.inputs[1]].name))
        elif kind == "ADD":
            _write_add(p, fx, j, op, by_name)
        elif kind == "RELU":
            _write_relu(p, fx, j, op, by_name)
        elif kind == "PRELU":
            _write_prelu(p, fx, float_model, j, op, by_name)
    for k, i in enumerate(fx.inputs):
        vec = p.layout.input_transform(k)
        if vec is not None:
            q = by_name[fx.tensors[i].name]
            p.vector(f"input {fx.tensors[i].name!r} pixel transform", vec, "h",
                     input_transform(q.scale, q.zero_point, mean, std))
    return bytes(p.buf)


def _write_conv(p: _Patch, fixed: Model, float_model: Model, j: int, op, kind: str, by_name, float_ops,
                channel_ranges, w_scales=None) -> None:
    fx, fl = fixed.main, float_model.main
    ti, tw, tb, to = (fx.tensors[i] for i in (*op.inputs[:3], op.outputs[0]))
    where = f"op #{j} {kind} (output {to.name!r})"
    if tw.dtype != "INT8":
        raise UnsupportedOpError(f"{where}: {tw.dtype} weights (a conv reading INT16) are not written yet")
    fop = float_ops.get(tw.name)
    if fop is None:
        raise ModelError(f"{where}: its weights {tw.name!r} are not in the float model")
    w = _values(float_model, fl.tensors[fop.inputs[1]])
    bias = _values(float_model, fl.tensors[fop.inputs[2]]).reshape(2, -1)[0]
    qi, qw, qo = by_name[ti.name], by_name[tw.name], by_name[to.name]
    conv_out = fl.tensors[fop.outputs[0]].name  # before a RELU the vendor fused into the conv
    if conv_out not in channel_ranges:
        raise ModelError(f"{where}: no per-channel range for {conv_out!r}; the accumulator range needs it")
    lo, hi = channel_ranges[conv_out]
    depthwise = kind == "DEPTHWISE_CONV_2D"
    packed = None
    if w_scales is not None:
        w_scales = fitted_channel_scales(w, depthwise, w_scales, qi, qo, to.dtype == "UINT8", bias, lo, hi)
        packed = _per_channel_weights(p, fixed, op, where, w, tw, depthwise, w_scales)
    if packed is not None:
        codes, raw = packed
        prm = per_channel_values(codes, depthwise, w_scales, qi, qo, to.dtype == "UINT8", bias, lo, hi)
        acc_max, acc_min = prm["acc_max"], prm["acc_min"]
        p.buffer(where + " weights", tw.buffer, raw)
    else:
        _, prm, acc_max, acc_min = conv_values(float_model, fop, kind, qi, qw, qo, to.dtype == "UINT8",
                                               channel_ranges, where)
        # the weight codes round(w / (max|w| / 127)) do not depend on the ranges: the template's buffer
        # (the vendor's packing of the same float weights; pack.pack_conv_weights gives it for 161 of
        # the 162 int8 convs of the shared models) is kept
    p.buffer(where + " bias", tb.buffer, pack.pack_bias(prm["row0"], prm["multipliers"]))
    out_index = op.outputs[0]
    p.vector(where + " accumulator max", p.layout.quant_vector(out_index, 4), "q", [acc_max])
    p.vector(where + " accumulator min", p.layout.quant_vector(out_index, 5), "q", [acc_min])
    k_slot, nk_slot = _SHIFT_SLOTS[kind]
    p.option(where, j, k_slot, prm["bias_shift"])
    p.option(where, j, nk_slot, prm["total_shift"])


def _per_channel_weights(p: _Patch, fixed: Model, op, where: str, w: np.ndarray, tw, depthwise: bool,
                         w_scales) -> tuple[np.ndarray, bytes] | None:
    """(codes, packed buffer) of per-channel weight codes in the template's layout, or None (logged)
    where that layout is not established for this conv: the template's buffer must decode, in the
    tiling its program states (``engine.slot_tiling``), to a rounding of the float weights at the
    template's per-tensor scale (face_landmark's (1404, 3, 3, 32) conv does not; a depthwise the
    vendor runs as a CONV_2D holds only the diagonal blocks: both keep the per-tensor codes)."""
    from .engine import slot_tiling
    from .layout import unpack_conv_weights, unpack_depthwise_weights
    scales = np.asarray(w_scales, np.float64)
    axis = 3 if depthwise else 0
    if scales.shape != (w.shape[axis],):
        raise ModelError(f"{where}: {scales.size} weight scales for {w.shape[axis]} output channels")
    tiling = None if depthwise else slot_tiling(op.options)
    if not depthwise and (tiling is None or getattr(op.options, "sgs_depthwise_mode", 0) == 2):
        log.info("%s: the template's weight layout is not the tiled one; per-tensor weight codes kept", where)
        return None
    raw = fixed.buffers[tw.buffer].data
    s_t = float(tw.quantization.scale[0])
    stored = unpack_depthwise_weights(raw, tw.shape) if depthwise else \
        unpack_conv_weights(raw, tw.shape, np.int8, tiling[1], tiling[0])
    ratio = np.asarray(w, np.float64) / s_t
    if stored.shape != w.shape or np.any(np.abs(stored - np.clip(ratio, -127, 127)) > 0.5 + 1e-3):
        log.info("%s: the template's weight buffer does not decode in the tiling its program states; "
                 "per-tensor weight codes kept", where)
        return None
    codes = pack.per_channel_weight_codes(w, scales, axis)
    packed = pack.pack_depthwise_weights(codes) if depthwise else pack.pack_conv_weights(codes, tiling[1], tiling[0])
    if len(packed) > len(raw):
        return None
    return codes, packed


def fitted_channel_scales(w: np.ndarray, depthwise: bool, w_scales, qi, qo, out_is_uint8: bool, bias, lo, hi):
    """The per-output-channel weight scales the format's one bias shift can carry
    (:func:`.pack.fit_per_channel_scales`: k at most one step above the per-tensor k)."""
    return pack.fit_per_channel_scales(w, 3 if depthwise else 0, w_scales, qi.scale, qi.zero_point, bias,
                                       qo.scale, qo.zero_point, out_is_uint8, lo, hi)


def per_channel_values(codes: np.ndarray, depthwise: bool, w_scales, qi, qo, out_is_uint8: bool, bias, lo,
                       hi) -> dict:
    """``pack.per_channel_conv_parameters``' dict (bias row, multipliers, shifts, accumulator range) of
    per-channel weight ``codes`` at ``w_scales``."""
    w_sum = pack.weight_sums(codes, depthwise)
    return pack.per_channel_conv_parameters(qi.scale, qi.zero_point, w_sum, w_scales, bias, qo.scale,
                                            qo.zero_point, out_is_uint8, lo, hi)


def conv_values(float_model: Model, fop, kind: str, qi, qw, qo, out_is_uint8: bool, channel_ranges,
                where: str):
    """(weight codes, ``pack.conv_parameters``' dict, acc_max, acc_min) of the float model's conv ``fop``
    for the planned quantization of its input, weights and output (also used by :mod:`.synth`)."""
    fl = float_model.main
    w = _values(float_model, fl.tensors[fop.inputs[1]])
    bias = _values(float_model, fl.tensors[fop.inputs[2]]).reshape(2, -1)[0]
    conv_out = fl.tensors[fop.outputs[0]].name  # before a RELU the vendor fused into the conv
    if conv_out not in channel_ranges:
        raise ModelError(f"{where}: no per-channel range for {conv_out!r}; the accumulator range needs it")
    lo, hi = channel_ranges[conv_out]
    codes = pack.int16_weight_codes(w, max(abs(qw.min), abs(qw.max))) if qw.dtype == "INT16" else \
        pack.weight_codes(w, qw.scale)
    w_sum = pack.weight_sums(codes, kind == "DEPTHWISE_CONV_2D")
    acc_max, acc_min = pack.accumulator_range(qi.scale, qi.zero_point, qw.scale, w_sum, bias, lo, hi)
    prm = pack.conv_parameters(qi.scale, qi.zero_point, w_sum, qw.scale, bias, qo.scale, qo.zero_point,
                               out_is_uint8, acc_max, acc_min)
    return codes, prm, acc_max, acc_min


def per_channel_conv_values(float_model: Model, fop, kind: str, qi, qo, out_is_uint8: bool, channel_ranges,
                            w_scales, where: str, input_mean=None):
    """:func:`conv_values` with one weight scale per output channel (``w_scales``, fitted to the format's
    one bias shift by :func:`fitted_channel_scales`): (codes, parameters, acc_max, acc_min).

    ``input_mean``: the mean of each channel of the conv's input (the plan's bias correction): the bias is
    corrected for the mean shift of the codes written, b - :func:`.pack.mean_shift` (the scales are fitted to
    the uncorrected bias; k and the accumulator range are those of the corrected one)."""
    fl = float_model.main
    w = _values(float_model, fl.tensors[fop.inputs[1]])
    bias = _values(float_model, fl.tensors[fop.inputs[2]]).reshape(2, -1)[0]
    conv_out = fl.tensors[fop.outputs[0]].name
    if conv_out not in channel_ranges:
        raise ModelError(f"{where}: no per-channel range for {conv_out!r}; the accumulator range needs it")
    lo, hi = channel_ranges[conv_out]
    depthwise = kind == "DEPTHWISE_CONV_2D"
    axis = 3 if depthwise else 0
    scales = np.asarray(w_scales, np.float64)
    if scales.shape != (w.shape[axis],):
        raise ModelError(f"{where}: {scales.size} weight scales for {w.shape[axis]} output channels")
    scales = fitted_channel_scales(w, depthwise, scales, qi, qo, out_is_uint8, bias, lo, hi)
    codes = pack.per_channel_weight_codes(w, scales, axis)
    if input_mean is not None:
        shape = [-1 if a == axis else 1 for a in range(w.ndim)]
        dw = codes * np.asarray(scales, np.float64).reshape(shape) - np.asarray(w, np.float64)
        bias = np.asarray(bias, np.float64) - pack.mean_shift(dw, input_mean, depthwise)
    prm = per_channel_values(codes, depthwise, scales, qi, qo, out_is_uint8, bias, lo, hi)
    return codes, prm, prm["acc_max"], prm["acc_min"]


def write_from_stats(template: bytes, float_model: Model, stats: Mapping[str, object], mean: Sequence[float],
                     std: float, ranges: Mapping[str, tuple[float, float]] | None = None,
                     weight_scales: Mapping[str, Sequence[float]] | None = None) -> bytes:
    """:func:`write` from calibration statistics (``calib.stats.TensorStats`` by tensor name).

    ``ranges`` overrides the per-tensor min/max (e.g. a level's clipped ranges); the accumulator
    ranges always come from the statistics' per-channel min/max.
    """
    if ranges is None:
        ranges = {name: (s.min, s.max) for name, s in stats.items()}
    channels = {name: (np.asarray(s.channel_min), np.asarray(s.channel_max)) for name, s in stats.items()}
    return write(template, float_model, ranges, channels, mean, std, weight_scales)


def fifteen_bit_multiplier(m: float) -> tuple[int, int]:
    """(M, N): the 15-bit multiplier M = round(m * 2**N), N = 14 - floor(log2 m); M = 2**15 (m just below a
    power of two), which an int16 field cannot hold, as the equal (2**14, N - 1), as the vendor writes it (a
    PRELU's ratio table of 0.999995: 16384, 14)."""
    if not m > 0 or not math.isfinite(m):
        raise ModelError(f"a rescale factor of {m!r}: the 15-bit multiplier needs a positive ratio (a tensor "
                         f"range empty or on one side of zero where the op needs both)")
    n = 14 - math.floor(math.log2(m))
    mult = int(round(m * 2.0 ** n))
    return (mult // 2, n - 1) if mult == 1 << 15 else (mult, n)


def uint8_view_zero_point(q: qp.TensorQuant) -> int:
    """The zero point of a tensor's range as UINT8 (the UINT8 zero point itself for UINT8 tensors)."""
    if q.dtype == "UINT8":
        return int(q.zero_point)
    return int(math.floor(-q.min * 255.0 / (q.max - q.min) + 0.5)) if q.max > q.min else 0


def _tensor_tables(p: _Patch, where: str, j: int, quants, slot: int, sign: int) -> list[int]:
    """Write slot 1 (the UINT8-view zero point, negated for inputs) of Operator slot 9/10's tables."""
    tables = p.layout.operator_tables(j, slot)
    if len(tables) != len(quants):
        raise ModelError(f"{where}: {len(tables)} tables in Operator slot {slot}, {len(quants)} tensors")
    for t, q in zip(tables, quants):
        p.scalar(where, p.layout.table_scalar(t, 1), 1, sign * uint8_view_zero_point(q))
    return tables


def add_rescale(in_scales: Sequence[float], out_scale: float) -> tuple[int, int, int]:
    """ADD's (M1, M2, N): m_i = s_i / s_out, N = 14 - floor(log2 max m_i), M_i = round(m_i * 2**N)
    (AddOptions slot 1's table slots 1-3; also used by :mod:`.synth`)."""
    m = [float(s) / float(out_scale) for s in in_scales]
    n = 14 - math.floor(math.log2(max(m)))
    return int(round(m[0] * 2.0 ** n)), int(round(m[1] * 2.0 ** n)), n


def _write_add(p: _Patch, fx, j: int, op, by_name) -> None:
    """ADD: per-input/output UINT8-view zero points; options slot 1 table {1: M1, 2: M2, 3: N}."""
    ins = [by_name[fx.tensors[i].name] for i in op.inputs]
    out = by_name[fx.tensors[op.outputs[0]].name]
    where = f"op #{j} ADD (output {fx.tensors[op.outputs[0]].name!r})"
    if len(ins) != 2 or None in (ins[0].scale, ins[1].scale, out.scale):
        raise ModelError(f"{where}: needs two inputs and scales on inputs and output")
    _tensor_tables(p, where, j, ins, 9, -1)
    _tensor_tables(p, where, j, [out], 10, 1)
    m0, m1, n = add_rescale([q.scale for q in ins], out.scale)
    sub = p.layout.option_tables(j, 1)
    if len(sub) != 1:
        raise ModelError(f"{where}: the template's AddOptions hold {len(sub)} parameter tables, not 1")
    for slot, value in ((1, m0), (2, m1), (3, n)):
        p.scalar(where, p.layout.table_scalar(sub[0], slot), slot, value)


def activation_rescales(q_in, q_out) -> tuple[tuple[int, int], tuple[int, int]]:
    """RELU's and PRELU's (M, N) of the input table (s_uint8_view / s_in) and of the output table
    ((max_in / 32767) / s_out); the tables' slot 1 holds the UINT8-view zero points (also used by
    :mod:`.synth_ops`)."""
    return (fifteen_bit_multiplier((q_in.max - q_in.min) / 255.0 / q_in.scale),
            fifteen_bit_multiplier(q_in.max / 32767.0 / q_out.scale))


def relu_input_ratio(q_in) -> tuple[int, int]:
    """RELU's / PRELU's (M, N) of F = max(1, |min_in| / max_in)."""
    return fifteen_bit_multiplier(max(1.0, abs(q_in.min) / q_in.max))


def prelu_alpha(q_in, q_alpha, alpha: np.ndarray, ratio: float | None = None) -> tuple[np.ndarray, int]:
    """PRELU's INT16 alpha codes round(alpha * F * 2**s) (half toward zero; F from the stored input
    scale, s_in * 32767 / max) and s = 14 - floor(log2(max|alpha| * F)), F = max(1, |min_in| / max_in);
    for an INT16 output F is ``ratio`` = s_in / s_out in both (the negative branch is then not rescaled)."""
    f = max(1.0, abs(q_in.min) / q_in.max) if ratio is None else float(ratio)
    alpha_max = max(abs(q_alpha.min), abs(q_alpha.max))
    shift = 14 - math.floor(math.log2(alpha_max * f))
    # the codes use F as s_in * 32767 / max (from the stored scale) and round half toward zero:
    # 0 of the alphas of iris_landmark and face_landmark differ (|min| / max and half-even: 52)
    f_codes = max(1.0, q_in.scale * 32767.0 / q_in.max) if ratio is None else float(ratio)
    x = np.asarray(alpha, np.float64) * f_codes * 2.0 ** shift
    codes = np.sign(x) * np.ceil(np.abs(x) - 0.5)
    return np.clip(codes, -32768, 32767).astype("<i2"), shift


def _write_relu_tables(p: _Patch, where: str, j: int, q_in, q_out) -> None:
    """RELU's and PRELU's input table {1: -zp8, 2/3: (M, N) of s_uint8_view / s_in} and output table
    {1: zp, 2/3: (M, N) of (max_in / 32767) / s_out}."""
    (t_in,) = _tensor_tables(p, where, j, [q_in], 9, -1)
    (t_out,) = _tensor_tables(p, where, j, [q_out], 10, 1)
    for t, (mult, n) in zip((t_in, t_out), activation_rescales(q_in, q_out)):
        p.scalar(where, p.layout.table_scalar(t, 2), 2, mult)
        p.scalar(where, p.layout.table_scalar(t, 3), 3, n)


def _write_relu(p: _Patch, fx, j: int, op, by_name) -> None:
    """RELU (INT16 in, UINT8 out): input table {1: -zp8, 2/3: (M, N) of s_uint8_view / s_in}, output
    table {1: zp, 2/3: (M, N) of (max_in / 32767) / s_out}, options slot 2 table {1: M_F, 5: N_F} of
    F = max(1, |min_in| / max_in)."""
    q_in = by_name[fx.tensors[op.inputs[0]].name]
    q_out = by_name[fx.tensors[op.outputs[0]].name]
    where = f"op #{j} RELU (output {fx.tensors[op.outputs[0]].name!r})"
    if q_in.dtype != "INT16" or q_out.dtype != "UINT8" or not q_in.max > 0:
        raise UnsupportedOpError(f"{where}: only an INT16 -> UINT8 RELU over a range with max > 0 is "
                                 f"written (here {q_in.dtype} -> {q_out.dtype})")
    _write_relu_tables(p, where, j, q_in, q_out)
    sub = p.layout.option_tables(j, 2)
    if len(sub) != 1:
        raise ModelError(f"{where}: the template's RELU options hold {len(sub)} parameter tables, not 1")
    mult, n = relu_input_ratio(q_in)
    p.scalar(where, p.layout.table_scalar(sub[0], 1), 1, mult)
    p.scalar(where, p.layout.table_scalar(sub[0], 5), 5, n)


def _write_prelu(p: _Patch, fx, float_model: Model, j: int, op, by_name) -> None:
    """PRELU (INT16 in, UINT8 out): the tables of RELU, plus the alpha codes round(alpha * F * 2**s)
    (half toward zero) with s = 14 - floor(log2(max|alpha| * F)) (options slot 0, table 0, slot 5; table 1 holds F's
    multiplier like RELU's)."""
    q_in = by_name[fx.tensors[op.inputs[0]].name]
    t_alpha = fx.tensors[op.inputs[1]]
    q_out = by_name[fx.tensors[op.outputs[0]].name]
    where = f"op #{j} PRELU (output {fx.tensors[op.outputs[0]].name!r})"
    if q_in.dtype != "INT16" or q_out.dtype != "UINT8" or t_alpha.dtype != "INT16" or not q_in.max > 0:
        raise UnsupportedOpError(f"{where}: only an INT16 -> UINT8 PRELU with INT16 alpha over a range "
                                 f"with max > 0 is written")
    _write_relu_tables(p, where, j, q_in, q_out)
    sub = p.layout.option_tables(j, 0)
    if len(sub) != 2:
        raise ModelError(f"{where}: the template's PRELU options hold {len(sub)} parameter tables, not 2")
    fl_alpha = float_model.main.tensors[float_model.main.tensor_index(t_alpha.name)]
    codes, shift = prelu_alpha(q_in, by_name[t_alpha.name], _values(float_model, fl_alpha))
    p.buffer(where + " alpha", t_alpha.buffer, codes.tobytes())
    p.scalar(where, p.layout.table_scalar(sub[0], 5), 5, shift)
    mult, n = relu_input_ratio(q_in)
    p.scalar(where, p.layout.table_scalar(sub[1], 1), 1, mult)
    p.scalar(where, p.layout.table_scalar(sub[1], 5), 5, n)


def image_normalization(input_config) -> tuple[tuple[float, ...], float]:
    """(three means, one std) of the input config's one image input, as the vendor's pixel transform
    takes them; :class:`ModelError` naming what the config gives otherwise."""
    inputs = getattr(input_config, "inputs", None) or []
    if len(inputs) != 1 or not inputs[0].mean:
        raise ModelError("the vendor fixed.sim writer takes a model with one image input "
                         "(mean/std in the input config)")
    mean, std = tuple(inputs[0].mean), tuple(inputs[0].std)
    if len(mean) != 3 or len(set(std)) != 1:
        raise ModelError(f"the vendor's input transform takes three means and one std; the input config "
                         f"gives mean {mean} and std {std}")
    return mean, float(std[0])


def write_vendor_fixed(float_model: str | os.PathLike | Model, template: str | os.PathLike, stats,
                       input_config, output_path: str | os.PathLike | None = None,
                       ranges: Mapping[str, tuple[float, float]] | None = None,
                       weight_scales: Mapping[str, Sequence[float]] | None = None) -> bytes:
    """The vendor fixed.sim of a vendor float.sim for our statistics.

    ``stats``: a ``calib.stats.StatsSet`` (or its ``tensors`` mapping); ``input_config``: an
    ``InputConfig`` (mean and std of the one image input); ``template``: a vendor fixed.sim of the
    same float model (see the module doc); ``ranges``: per-tensor ranges by name (a level's choice;
    default and for missing names: the statistics' min/max, the vendor's L1); ``weight_scales``: per conv
    weight name, one scale per output channel (default: the vendor's per-tensor codes). Written atomically to
    ``output_path`` when given.
    """
    from ..fileio import atomic_write
    from ..model.graph import load_model

    model = float_model if isinstance(float_model, Model) else load_model(float_model)
    mean, std = image_normalization(input_config)
    tensors = getattr(stats, "tensors", stats)
    chosen = {name: (s.min, s.max) for name, s in tensors.items()}
    chosen.update(ranges or {})
    data = write_from_stats(Path(template).read_bytes(), model, tensors, mean, std, chosen, weight_scales)
    if output_path is not None:
        atomic_write(output_path, data)
    return data
