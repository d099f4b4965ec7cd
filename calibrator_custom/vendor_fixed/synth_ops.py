"""The vendor fixed.sim fields of the ops a synthesized file holds besides the convs (SGS_IPU_SDK 1.1.5).

:mod:`.synth` writes the convs; this module says how the vendor runs the other ops (the *groups* an
op runs in, Operator.8 / .14) and writes their range-dependent tables, each from the same formulas
the template writer (:mod:`.writer`) patches into a vendor-made file. Established on the vendor's L1
files of the shared models and the oracle cache (docs/model_format.md, "Synthesizing the fixed file").

Groups. The vendor runs an op together with the op just before it when it reads that op's output,
alone, and the output is no graph output: an ADD after a conv (the conv fused into it), a RELU or
PRELU after a conv, a fused ADD, or an ADD run alone. Inside a group the outputs take no arena bytes
and the group's inputs stay live until its last op. Operator.8 (the op class): 1 a conv, 2 an op in
a conv's group, 6 an ADD run alone, 4 an activation in such an ADD's group, 3 a pool or a layout op
(PAD, RESHAPE, CONCATENATION).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import UnsupportedOpError
from ..model import options as options_mod
from ..model.sgs_dialect import SLOT_NAMES
from ..model.graph import Model
from ..ops._common import same_pads
from .writer import (activation_rescales, add_rescale, fifteen_bit_multiplier, prelu_alpha, relu_input_ratio,
                     uint8_view_zero_point)

CONVS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D"})
#: activations the vendor runs in the group of the op before them
GROUP_ACTIVATIONS = frozenset({"RELU", "RELU6", "PRELU"})
#: ops of class 3: run on their own, no tables
LAYOUT_OPS = frozenset({"MAX_POOL_2D", "PAD", "RESHAPE", "CONCATENATION", "MEAN"})
#: table ops: in a conv's group (class 2) after the conv or fused ADD that alone feeds them, else on their own
#: (class 6)
TABLE_OPS = frozenset({"LOGISTIC"})
#: every op this module and :mod:`.synth` write
OPS = CONVS | GROUP_ACTIVATIONS | LAYOUT_OPS | TABLE_OPS | {"ADD"}
#: ops that, run in a conv's group, reserve buffer slots of the conv's program (:data:`.synth.ACTIVATION_SLOTS`)
SLOT_RESERVING_OPS = GROUP_ACTIVATIONS | TABLE_OPS
#: LOGISTIC's tables: T = round(32767 tanh(1 + i / 32)) and round(32767 tanh(i / 256) / tanh 1), and the
#: constants of its line record (SgsLogisticOptions slot 0 table 2: line_slope and six unnamed slots), equal on
#: all 72 LOGISTIC ops of the oracle cache
LOGISTIC_LUT_65 = tuple(int(v) for v in np.rint(32767 * np.tanh(1 + np.arange(65) / 32)))
LOGISTIC_LUT_257 = tuple(int(v) for v in np.rint(32767 * np.tanh(np.arange(257) / 256) / np.tanh(1)))
LOGISTIC_LINE = {0: 8, 1: 9035, 2: 6881, 3: 21512, 4: 1, 6: 1, 8: 1}
#: the largest pool output tile height seen; the pool's tile channels above which it runs 16 at a time
POOL_TILE_ROWS = 8
POOL_WIDE_CHANNELS = 88
SLOT_BYTES = 8192  # one on-chip buffer slot: 512 rows of 16 bytes


def _slot(table: str, slot: int) -> str:
    """The field name of a vendor slot (``sgs_slot_<n>`` while its meaning is not established)."""
    return SLOT_NAMES.get((table, slot), f"sgs_slot_{slot}")


@dataclass(frozen=True)
class OpRole:
    """How the vendor runs one op: its class (Operator.8), Operator.14 (None: absent) and the last op
    of its group (itself when it runs alone)."""

    op_class: int
    fused_input: int | None
    group_end: int


def _where(model: Model, j: int) -> str:
    op = model.main.operators[j]
    out = model.main.tensors[op.outputs[0]].name if op.outputs else "?"
    return f"op #{j} {model.op_name(op)} (output {out!r})"


def op_roles(model: Model) -> dict[int, OpRole]:
    """Op index -> :class:`OpRole` of every op (after :func:`.synth.fuse_activations`); an op of no
    established role is refused, naming it (``UnsupportedOpError``)."""
    sg = model.main
    readers: dict[int, int] = {}
    for op in sg.operators:
        for i in op.inputs:
            readers[i] = readers.get(i, 0) + 1
    classes: dict[int, tuple[int, int | None]] = {}
    joins: set[int] = set()
    for j, op in enumerate(sg.operators):
        name = model.op_name(op)
        prev = sg.operators[j - 1] if j else None
        fed = [k for k, i in enumerate(op.inputs) if prev is not None and i in prev.outputs and readers.get(i) == 1
               and i not in sg.outputs]
        prev_class = classes[j - 1][0] if j else None
        if name in CONVS:
            classes[j] = (1, -1)
        elif name == "ADD":
            if len(op.inputs) != 2:
                raise UnsupportedOpError(f"{_where(model, j)}: only an ADD of two inputs is synthesized")
            if len(fed) == 1 and model.op_name(prev) == "CONV_2D":
                classes[j] = (2, fed[0])
                joins.add(j)
            else:
                classes[j] = (6, -1)
        elif name in GROUP_ACTIVATIONS:
            if len(fed) != 1 or fed[0] != 0 or prev_class not in (1, 2, 4, 6) or \
                    model.op_name(prev) == "DEPTHWISE_CONV_2D":
                raise UnsupportedOpError(f"{_where(model, j)}: only a {name} reading the CONV_2D or ADD just "
                                         f"before it, alone, is synthesized")
            classes[j] = (2 if prev_class in (1, 2) else 4, None)
            joins.add(j)
        elif name in TABLE_OPS:
            if len(fed) == 1 and prev_class in (1, 2) and model.op_name(prev) != "DEPTHWISE_CONV_2D":
                classes[j] = (2, None)
                joins.add(j)
            else:
                classes[j] = (6, -1)
        elif name in LAYOUT_OPS:
            classes[j] = (3, -1)
        else:
            raise UnsupportedOpError(f"{_where(model, j)}: synthesizing the vendor fixed.sim is established "
                                     f"for {', '.join(sorted(OPS))} only")
    roles = {}
    end = len(sg.operators) - 1
    for j in range(len(sg.operators) - 1, -1, -1):
        if j + 1 not in joins:
            end = j
        roles[j] = OpRole(*classes[j], end)
    return roles


def _rescale_table(kind: int, q, offset_sign: int, multiplier: int = 1, shift: int = 0) -> dict[str, Any]:
    table = "SgsOperatorSlot9" if offset_sign < 0 else "SgsOperatorSlot10"
    return {_slot(table, 0): kind, _slot(table, 1): offset_sign * uint8_view_zero_point(q),
            _slot(table, 2): multiplier, _slot(table, 3): shift}


def add_tables(op, plan) -> dict[str, Any]:
    """ADD's Operator 9/10 tables (the UINT8-view zero points) and its AddOptions rescale table."""
    ins = [plan[i] for i in op.inputs]
    q_out = plan[op.outputs[0]]
    m0, m1, n = add_rescale([q.scale for q in ins], q_out.scale)
    t = "SgsAddOptionsSlot1"
    rescale = {_slot(t, 0): 22, _slot(t, 1): m0, _slot(t, 2): m1, _slot(t, 3): n, _slot(t, 4): -1, _slot(t, 5): -1}
    return {"inputs": tuple(_rescale_table(2, q, -1) for q in ins), "outputs": (_rescale_table(1, q_out, 1),),
            "options": dataclasses.replace(op.options, sgs_rescale=options_mod._freeze([rescale]), sgs_layout=())}


def _activation_check(model: Model, j: int, q_in, q_out) -> None:
    if q_in.dtype != "INT16" or q_out.dtype not in ("UINT8", "INT16") or not q_in.max > 0:
        raise UnsupportedOpError(f"{_where(model, j)}: only an INT16 -> UINT8 / INT16 activation over a range "
                                 f"with max > 0 is synthesized (here {q_in.dtype} -> {q_out.dtype})")


def activation_tables(model: Model, j: int, plan, alpha: np.ndarray | None = None) -> dict[str, Any]:
    """RELU's / PRELU's Operator 9/10 tables and options; PRELU's INT16 alpha codes (``alpha`` its float
    values) under ``"alpha"``."""
    op = model.main.operators[j]
    q_in, q_out = plan[op.inputs[0]], plan[op.outputs[0]]
    _activation_check(model, j, q_in, q_out)
    (m_in, n_in), (m_out, n_out) = activation_rescales(q_in, q_out)
    ratio = None  # an INT16 output's s_in / s_out (the ratio table, and F in PRELU's alpha codes)
    m_f, n_f = relu_input_ratio(q_in)
    if q_out.dtype == "INT16":
        # an INT16 output (a graph output, or a 16-bit conv's input): the output table holds s_out / s_view
        # (the output's UINT8 view, (max - min) / 255) and the ratio table s_in / s_out (RELU and RELU6 to
        # a graph output in both lastact files of the oracle cache, where they are 255 / 32767 and
        # (max_in / 32767) / s_out; PRELU before a 16-bit conv in the vendor's files of conv -> PRELU -> conv
        # chains, input ranges with |min| below and above max; the 16 INT16 -> INT16 RELUs of the vendor's
        # ALL_INT16 L1 file of face_detection_short_range, F = |min| / max from 0.64 to 1.78: s_in =
        # max(|min|, max) / 32767 takes F in)
        ratio = float(np.float32(q_in.scale)) / float(np.float32(q_out.scale))
        m_f, n_f = fifteen_bit_multiplier(ratio)
        m_out, n_out = fifteen_bit_multiplier(q_out.scale / ((q_out.max - q_out.min) / 255.0))
    out = {"inputs": (_rescale_table(2, q_in, -1, m_in, n_in),),
           "outputs": (_rescale_table(1, q_out, 1, m_out, n_out),)}
    if model.op_name(op) in ("RELU", "RELU6"):  # RELU6's clamp is its output range's
        t = "SgsActivationOptionsSlot2"
        out["options"] = dataclasses.replace(
            op.options, sgs_output_max=32767,
            sgs_input_ratio=options_mod._freeze([{_slot(t, 1): m_f, _slot(t, 5): n_f}]), sgs_layout=())
        return out
    codes, shift = prelu_alpha(q_in, plan[op.inputs[1]], alpha, ratio)
    t = "SgsPreluOptionsSlot0"
    tables = [{_slot(t, 1): -1, _slot(t, 2): -1, _slot(t, 3): -1, _slot(t, 5): shift},
              {_slot(t, 1): m_f, _slot(t, 2): -1, _slot(t, 3): -1, _slot(t, 5): n_f}]
    out["options"] = dataclasses.replace(op.options, sgs_rescale=options_mod._freeze(tables), sgs_layout=())
    out["alpha"] = codes.tobytes()
    return out


def logistic_tables(model: Model, j: int, plan) -> dict[str, Any]:
    """LOGISTIC's Operator 9/10 tables and SgsLogisticOptions (INT16 in and out): the input table as an
    activation's, the output's (M, N) of s_out / s_uint8_view; the LUTs and line record constant, the
    fixed-point record from the input scale (M, Q: :func:`.tables.input_fixed_point`), the output
    rescale of :func:`.tables.logistic_output_rescale` (docs/vendor_fixed_point.md, LOGISTIC)."""
    from . import tables
    op = model.main.operators[j]
    q_in, q_out = plan[op.inputs[0]], plan[op.outputs[0]]
    if q_in.dtype != "INT16" or q_out.dtype != "INT16" or not q_out.max > q_out.min:
        raise UnsupportedOpError(f"{_where(model, j)}: only an INT16 -> INT16 LOGISTIC is synthesized")
    m_in, n_in = fifteen_bit_multiplier((q_in.max - q_in.min) / 255.0 / q_in.scale)
    m_out, n_out = fifteen_bit_multiplier(q_out.scale / ((q_out.max - q_out.min) / 255.0))
    m, q = tables.input_fixed_point(q_in.scale)
    t = "SgsLogisticOptionsSlot0Slot3"
    record = {_slot(t, k): v for k, v in (
        (17, q), (18, q), (19, q), (20, q), (4, m), (11, 6 << q), (8, q - 7), (26, 24956), (28, 15), (7, q - 4),
        (25, 16384), (15, -(2 << q)), (27, 14), (13, 2 << q), (12, 2 << q), (5, q - 4))}
    line = {_slot("SgsLogisticOptionsSlot0Slot2", k): v for k, v in LOGISTIC_LINE.items()}
    lut = {_slot("SgsLogisticOptionsSlot0", 0): LOGISTIC_LUT_65, _slot("SgsLogisticOptionsSlot0", 1): LOGISTIC_LUT_257,
           _slot("SgsLogisticOptionsSlot0", 2): line, _slot("SgsLogisticOptionsSlot0", 3): record}
    m_o, shift_o, offset_o = tables.logistic_output_rescale(q_out.scale)
    t = "SgsLogisticOptionsSlot1"
    rescale = {_slot(t, 1): m_o, _slot(t, 2): -1, _slot(t, 3): shift_o, _slot(t, 4): offset_o, _slot(t, 5): 1}
    return {"inputs": (_rescale_table(2, q_in, -1, m_in, n_in),),
            "outputs": (_rescale_table(1, q_out, 1, m_out, n_out),),
            "options": dataclasses.replace(op.options, sgs_lut=options_mod._freeze(lut),
                                           sgs_output_rescale=options_mod._freeze([rescale]), sgs_layout=())}


def pool_program(model: Model, j: int, plan) -> dict[str, Any]:
    """MAX_POOL_2D's Pool2DOptions slots 10-18 and explicit pads: whole output rows of the output's
    width, at most :data:`POOL_TILE_ROWS` of them, all channels (16 at a time above
    :data:`POOL_WIDE_CHANNELS`); slot 13 the input tile's buffer slots (8 KB each), 17 their numbers
    ((30,) for one), 14 = 15 = 16 = 1, 18 = (28,)."""
    sg = model.main
    op = sg.operators[j]
    o = op.options
    _, h, w, c = sg.tensors[op.inputs[0]].shape
    _, oh, ow, _ = sg.tensors[op.outputs[0]].shape
    tile = 16 if c > POOL_WIDE_CHANNELS else c
    rows = min(oh, POOL_TILE_ROWS)
    in_rows = h if rows == oh else (rows - 1) * int(o.stride_h) + int(o.filter_height)
    item = 2 if plan[op.inputs[0]].dtype == "INT16" else 1
    n = math.ceil(in_rows * w * (-(-tile * item // 16) * 16) / SLOT_BYTES)
    pads = (0, 0, 0, 0)
    if o.padding == "SAME":
        _, top, bottom = same_pads(h, int(o.filter_height), int(o.stride_h), 1)
        _, left, right = same_pads(w, int(o.filter_width), int(o.stride_w), 1)
        pads = (left, right, top, bottom)
    t = "Pool2DOptions"
    return {_slot(t, 10): int(ow), _slot(t, 11): int(rows), _slot(t, 12): int(tile), _slot(t, 13): n,
            _slot(t, 14): 1, _slot(t, 15): 1, _slot(t, 16): 1, _slot(t, 17): (30,) if n == 1 else tuple(range(n)),
            _slot(t, 18): (28,), "padding_left": pads[0], "padding_right": pads[1], "padding_top": pads[2], "padding_bottom": pads[3]}


def pad_buffer(model: Model, j: int, paddings: np.ndarray) -> bytes:
    """PAD's paddings as the vendor's fixed.sim holds them: 16 int32, the channels' trailing pad at index
    13 (every PAD of the vendor's L1 files of the shared models; their float.sim holds the (4, 2)
    TFLite pairs). Only a trailing channel pad is established (the vendor's converter folds spatial
    pads into the next conv): others are refused."""
    p = np.asarray(paddings, np.int64).reshape(-1, 2)
    if p.shape != (4, 2) or p[:3].any() or p[3, 0] != 0:
        raise UnsupportedOpError(f"{_where(model, j)}: only a PAD of the channels' end is synthesized, not "
                                 f"the pads {p.tolist()}")
    out = np.zeros(16, "<i4")
    out[13] = p[3, 1]
    return out.tobytes()


def op_tables(model: Model, j: int, plan, values: Mapping[int, np.ndarray]) -> dict[str, Any]:
    """The tables of a non-conv op: ``inputs`` / ``outputs`` (Operator 9 / 10), ``options`` and, for a
    PRELU, ``alpha`` (its buffer's bytes), for a PAD ``paddings`` (its buffer's); ``values``: tensor
    index -> values of the op's constants (float32, or int32 pads)."""
    op = model.main.operators[j]
    name = model.op_name(op)
    if name == "ADD":
        return add_tables(op, plan)
    if name in GROUP_ACTIVATIONS:
        return activation_tables(model, j, plan, values.get(op.inputs[1]) if name == "PRELU" else None)
    if name == "PAD":
        return {"paddings": pad_buffer(model, j, values[op.inputs[1]])}
    if name == "LOGISTIC":
        return logistic_tables(model, j, plan)
    if name == "MAX_POOL_2D":
        return {"options": dataclasses.replace(op.options, **pool_program(model, j, plan), sgs_layout=())}
    return {}
