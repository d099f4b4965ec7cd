"""Per-tensor quantization of a vendor fixed.sim, from a vendor float.sim and per-tensor ranges.

The vendor's L1 calibrator (SGS_IPU_SDK 1.1.5) turns a ``*_float.sim`` plus measured min/max into a
``*_fixed.sim``. This module computes what that file's tensors hold for given ranges (established
by diffing the vendor's float.sim against its L1 fixed.sim for chosen ranges; docs/model_format.md,
"Writing the vendor's fixed dialect"):

- every activation (a tensor without constant data: graph input, output or intermediate) gets the type
  the float.sim plans for it (``sgs_fixed_type``, Tensor slot 10): UINT8 asymmetric,
  ``scale = (max - min) / 255``, ``zero_point = round(-min / scale)`` (half up); INT16 symmetric,
  ``scale = max(|min|, |max|) / 32767``, zero point 0; min/max are the range itself;
- conv/depthwise weights (planned INT8 or INT16): symmetric per tensor over the float weights,
  ``scale = max|w| / 127`` (or ``/ 32767``), zero point 0, min/max of the weights;
- the ``[2, C]`` bias and PRELU's alpha (planned INT16): only min/max (the bias over both rows; row 1
  is 1.0 in float.sim); integer constants (PAD's paddings, INT32): scale 1.0, zero point 0, no min/max;
- a CONCATENATION's inputs and output share the union of their ranges and 0 (other ranges are
  written as given, also when they exclude 0: face_landmark's conv2d_31); MAX_POOL_2D and PAD
  outputs take their input's range (:func:`effective_ranges`);
- every bound goes through the vendor's ``tensor_min_max.txt`` (printed with 6 decimals, read back
  as float32); scales are computed in float64 from those bounds and stored as float32; the UINT8
  zero point is ``floor(-min * 255 / (max - min) + 1/2)``.

``plan`` validates first: an op the vendor's toolchain refuses is an ``UnsupportedOpError`` naming
the op, an activation without a range a ``ModelError`` naming the tensor.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..model.graph import Model

#: ops the vendor's convert_tool / float simulator refuse (docs/model_format.md, with the messages)
VENDOR_REFUSED_OPS: dict[str, str] = {
    "HARD_SWISH": "convert_tool crashes (`Unsupport operator type: 117`)",
    "SQUARE": "convert_tool crashes (SIGSEGV)",
    "RESIZE_NEAREST_NEIGHBOR": "convert_tool crashes (SIGSEGV)",
    "DEPTH_TO_SPACE": "sgs_simulator_float: `Empty op node`",
    "DEQUANTIZE": "convert_tool: `Fail to get registration for builtinOpCode(DeQuantize)`",
    "DENSIFY": "convert_tool: `_SGS_ConvertDepthwiseConvToConv2D: Assertion '0' failed`",
}

_INT_MAX = {"UINT8": 255, "INT8": 127, "INT16": 32767}


@dataclass(frozen=True)
class TensorQuant:
    """What one tensor of the vendor fixed.sim holds in QuantizationParameters slots 0-3."""

    dtype: str                      # the fixed tensor's type (Tensor slot 1)
    min: float | None
    max: float | None
    scale: float | None = None      # None: the slot is absent (the [2, C] bias)
    zero_point: int | None = None


def _f32(v: float) -> float:
    return float(np.float32(v))


def _bound(v: float) -> float:
    """A range bound as the vendor stores it: printed with 6 decimals, read back as float32."""
    return float(np.float32(float(f"{float(v):.6f}")))


def activation_quant(dtype: str, lo: float, hi: float) -> TensorQuant:
    """r = scale * (q - zero_point); UINT8 asymmetric over [lo, hi], INT16 symmetric."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise ModelError(f"range [{lo}, {hi}] is not a finite interval; give min <= max")
    lo, hi = _bound(lo), _bound(hi)
    if dtype == "UINT8":
        scale = (hi - lo) / 255.0
        # half up: the range [-1, 1] gets 128 (the float32 scale alone would give 127.49999)
        zero_point = int(np.clip(np.floor(-lo * 255.0 / (hi - lo) + 0.5), 0, 255)) if hi > lo else 0
    elif dtype == "INT16":
        scale = max(abs(lo), abs(hi)) / 32767.0
        zero_point = 0
    else:
        raise ModelError(f"activation type {dtype} is not one the vendor plans (UINT8 or INT16)")
    return TensorQuant(dtype, _f32(lo), _f32(hi), _f32(scale), zero_point)


def weight_quant(dtype: str, values: np.ndarray) -> TensorQuant:
    """w = scale * q, symmetric per tensor: scale = max|w| / qmax."""
    lo, hi = _bound(values.min()), _bound(values.max())
    return TensorQuant(dtype, _f32(lo), _f32(hi), _f32(max(abs(lo), abs(hi)) / _INT_MAX[dtype]), 0)


def check_supported(model: Model) -> None:
    """Refuse, naming the op, a model with an op the vendor's toolchain does not take."""
    sg = model.main
    for i, op in enumerate(sg.operators):
        name = model.operator_codes[op.opcode_index].name
        why = VENDOR_REFUSED_OPS.get(name)
        if why is not None:
            out = sg.tensors[op.outputs[0]].name if op.outputs else "?"
            raise UnsupportedOpError(
                f"op #{i} {name} (output {out!r}) is not supported by the vendor's toolchain "
                f"(SGS_IPU_SDK 1.1.5: {why}); replace it before converting")


def _float_values(model: Model, t) -> np.ndarray:
    raw = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else b""
    n = int(np.prod(t.shape))
    return np.frombuffer(raw, np.float32, count=n).reshape(t.shape)


#: ops whose output takes its first input's range (the vendor copies codes through them)
SAME_RANGE_OPS = frozenset({"MAX_POOL_2D", "PAD", "RESHAPE", "MEAN"})
#: the least max of a LOGISTIC input's range in the vendor's file (:func:`effective_ranges`)
LOGISTIC_INPUT_MAX = 6.0
#: conv-like ops: input 1 is the weight tensor (symmetric, with a scale), input 2 the [2, C] bias
_WEIGHTED_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"})


def effective_ranges(model: Model, ranges: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """The ranges the vendor writes: CONCATENATION's inputs and output share the union of their ranges
    and 0; a LOGISTIC's input reaches at least :data:`LOGISTIC_INPUT_MAX` and its output 0; an op of
    :data:`SAME_RANGE_OPS` gives its output its input's range."""
    sg = model.main
    out = {name: (float(lo), float(hi)) for name, (lo, hi) in ranges.items()}
    order = sg.topological_order()
    for k in reversed(order):
        # CONCATENATION: the union of all ranges and 0 (face_detection_short_range's classificators,
        # [-99.4, -0.96], is written [-99.4, 0]), given to every input and the output
        op = sg.operators[k]
        if model.operator_codes[op.opcode_index].name == "CONCATENATION":
            names = [sg.tensors[i].name for i in (*op.inputs, *op.outputs)]
            known = [out[n] for n in names if n in out]
            if known:
                union = (min(0.0, *(r[0] for r in known)), max(0.0, *(r[1] for r in known)))
                out.update({n: union for n in names})
    for k in order:
        op = sg.operators[k]
        if model.operator_codes[op.opcode_index].name == "LOGISTIC":
            # the input's max at least 6 (the end of the tables' domain) and the output's min at most 0: the
            # vendor's L1 file on 57 of 57 LOGISTIC ops of the oracle cache whose logged ranges are otherwise
            # (e.g. logged (-1.5, 2.5) -> (-1.5, 6); output (0.5, 1) -> (0, 1))
            src, dst = sg.tensors[op.inputs[0]].name, sg.tensors[op.outputs[0]].name
            if src in out:
                out[src] = (out[src][0], max(out[src][1], LOGISTIC_INPUT_MAX))
            if dst in out:
                out[dst] = (min(out[dst][0], 0.0), out[dst][1])
        if model.operator_codes[op.opcode_index].name in SAME_RANGE_OPS:
            src = sg.tensors[op.inputs[0]].name
            if src in out:
                for o in op.outputs:
                    out[sg.tensors[o].name] = out[src]
    return out


def plan(model: Model, ranges: Mapping[str, tuple[float, float]]) -> dict[int, TensorQuant]:
    """Tensor index -> its fixed.sim quantization, for a vendor float.sim and activation ranges by name."""
    if model.dialect != "sgs_float":
        raise ModelError(f"the vendor fixed.sim is written from a vendor float.sim (dialect sgs_float); "
                         f"this model's dialect is {model.dialect!r}")
    check_supported(model)
    sg = model.main
    ranges = effective_ranges(model, ranges)
    weights: set[int] = set()
    for op in sg.operators:
        if model.operator_codes[op.opcode_index].name in _WEIGHTED_OPS and len(op.inputs) > 1:
            weights.add(op.inputs[1])
    out: dict[int, TensorQuant] = {}
    for i, t in enumerate(sg.tensors):
        planned = t.extra.get("sgs_fixed_type")
        if planned is None:
            raise ModelError(f"tensor #{i} {t.name!r} has no planned fixed type (Tensor slot 10); "
                             f"is this a vendor float.sim?")
        if not _holds_data(model, t):
            if t.name not in ranges:
                raise ModelError(f"no range for activation {t.name!r}; give (min, max) for every "
                                 f"activation of the graph")
            out[i] = activation_quant(planned, *ranges[t.name])
        elif planned == "INT32":
            # integer constants (PAD's paddings): scale 1, zero point 0, no min/max
            out[i] = TensorQuant("INT32", None, None, 1.0, 0)
        elif i in weights:
            out[i] = weight_quant(planned, _float_values(model, t))
        else:
            # the [2, C] bias, PRELU's alpha: min/max only
            values = _float_values(model, t)
            out[i] = TensorQuant(planned, _f32(_bound(values.min())), _f32(_bound(values.max())))
    return out


def _holds_data(model: Model, t) -> bool:
    return 0 < t.buffer < len(model.buffers) and bool(model.buffers[t.buffer].data)


#: ``[CONV_CONFIG] input_format`` -> the ops (as the float.sim names them) whose input it makes INT16
INT16_INPUT_FORMATS = {"ALL_INT16": ("CONV_2D", "DEPTHWISE_CONV_2D"), "CONV2D_INT16": ("CONV_2D",),
                       "DEPTHWISE_INT16": ("DEPTHWISE_CONV_2D",)}


def int16_conv_inputs(model: Model, input_format: str) -> list[str]:
    """The first inputs of the convs the vendor's converter runs at 16 bit for ``[CONV_CONFIG]
    input_format``, for :func:`with_int16_convs`: ALL_INT16 every CONV_2D and DEPTHWISE_CONV_2D,
    CONV2D_INT16 the CONV_2D (with the converter's depthwise-as-conv rewrites: they are CONV_2D in the
    float.sim), DEPTHWISE_INT16 the native DEPTHWISE_CONV_2D only (a rewritten 5 x 5 depthwise stays
    8-bit); a conv reading the graph input never (the converter's files of 4 depthwise chains, each
    setting). Not established: a tensor read by a conv of each kind under CONV2D_INT16 /
    DEPTHWISE_INT16 (:func:`with_int16_convs` retypes every conv reading a named tensor)."""
    kinds = INT16_INPUT_FORMATS.get(input_format)
    if kinds is None:
        raise ModelError(f"input_format {input_format!r} is not one of {sorted(INT16_INPUT_FORMATS)}")
    sg = model.main
    out: list[str] = []
    for op in sg.operators:
        if model.op_name(op) in kinds and op.inputs and op.inputs[0] not in sg.inputs:
            name = sg.tensors[op.inputs[0]].name
            if name not in out:
                out.append(name)
    return out


#: ops whose output the vendor's converter plans INT16 when their input is (a MAX_POOL_2D reading a
#: 16-bit conv's input, ``tensor_arrays`` naming a PRELU's output; a PAD after such a pool under ALL_INT16)
INT16_PASSING_OPS = ("MAX_POOL_2D", "PAD")


def with_int16_convs(model: Model, conv_inputs) -> Model:
    """A copy of the vendor float.sim with the planned types (``sgs_fixed_type``, Tensor slot 10) the
    vendor's convert_tool writes for ``[CONV_CONFIG] tensor_arrays`` = ``conv_inputs`` (names of the
    first input tensors of the convs to run at 16 bit): every CONV_2D reading such a tensor gets an
    INT16 input and INT16 weights, and so does every DEPTHWISE_CONV_2D (the converter's rewrite of a
    depthwise as a CONV_2D is a CONV_2D in the float.sim already: its input and its [C, k, k, C]
    weights); and a MAX_POOL_2D or PAD (:data:`INT16_PASSING_OPS`) reading an INT16 tensor writes
    INT16; nothing else of the file changes (the vendor's float.sims of one model converted with
    and without the setting differ in slot 10 only: the convs' and depthwise convs' input and weights,
    16 of 16 depthwise chains; the pools' outputs in a conv -> PRELU -> (1x1 conv, MAX_POOL) -> ADD
    chain and the 6 pools and 1 PAD after them of iris_landmark under ALL_INT16). A graph input stays as
    planned (the vendor's first conv is not affected by the setting)."""
    out = model.copy()
    sg = out.main
    wanted = set(conv_inputs)
    names = {t.name for t in sg.tensors}
    missing = sorted(wanted - names)
    if missing:
        raise ModelError(f"16-bit conv inputs {missing[:4]} are not tensors of the model")
    for op in sg.operators:
        if not op.inputs or sg.tensors[op.inputs[0]].name not in wanted or op.inputs[0] in sg.inputs:
            continue
        if out.op_name(op) not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        for i in op.inputs[:2]:
            t = sg.tensors[i]
            t.extra = {**t.extra, "sgs_fixed_type": "INT16"}
    for op in sg.operators:  # in graph order: a pool or pad of an INT16 tensor writes INT16
        if out.op_name(op) in INT16_PASSING_OPS and op.inputs and op.outputs and \
                sg.tensors[op.inputs[0]].extra.get("sgs_fixed_type") == "INT16":
            t = sg.tensors[op.outputs[0]]
            t.extra = {**t.extra, "sgs_fixed_type": "INT16"}
    out.source = None
    return out
