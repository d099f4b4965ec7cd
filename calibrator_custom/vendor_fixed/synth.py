"""Synthesize a vendor fixed.sim (SGS_IPU_SDK 1.1.5 dialect) from the vendor float.sim, without a template.

:mod:`.writer` rewrites the range-dependent fields of a vendor-made fixed.sim of the same model. This
module writes the whole fixed file from the vendor's float.sim (which the vendor's converter makes,
and users have) plus our ranges: every graph-dependent field the float.sim lacks is computed by a
rule established by diffing the vendor's float.sim against its L1 fixed.sim (docs/model_format.md,
"Synthesizing the fixed file"), except each conv's IPU program (Conv2DOptions slots 10-41 but the
two shifts), which a pluggable ``program_for(site) -> ConvProgram`` provides: the rule another
module fits, or in the experiments the program the vendor writes for the same conv on its own
(``tools/vendor_program_splice.py``).

Supported: CONV_2D, DEPTHWISE_CONV_2D and the converter's depthwise-as-conv rewrite (INT8 weights, or
INT16 ones where the conv reads an INT16 input), RELU / RELU6 fused into the conv before them as the vendor's
calibrator does (:func:`fuse_activations`), and the ops :mod:`.synth_ops` writes (PRELU, ADD,
LOGISTIC, pools, PAD, RESHAPE, CONCATENATION, MEAN, an activation on its own); RGB input; any other op
is refused up front, naming it.

Established rules (every one checked on the vendor files of the session, counts in the doc):

- table layouts: every table of a vendor fixed.sim but Operator and SgsOpInfo holds exactly its
  non-default fields, largest first, then by slot (the encoder's rule for a table without
  ``sgs_layout``); Operator holds its non-default fields in the fixed order :data:`OPERATOR_ORDER`;
  SgsOpInfo is the float.sim's, unchanged;
- tensors: type = the float.sim's plan (Tensor.10), quantization = :mod:`.quantize_plan`;
  Tensor.6 ``sgs_fixed_flag`` by :func:`fixed_flag`; Tensor.8 ``sgs_use_order`` = the tensor's rank in the
  order the operators first name it (:func:`first_reference_order`); Tensor.7 arena ranges by
  first fit over the tensors' lifetimes (:func:`arena`);
- conv outputs: QuantizationParameters 4/5 = the accumulator max/min (:mod:`.pack`);
- conv ops: Operator.8 = 1, Operator.14 = -1; explicit pads (TensorFlow's SAME split, VALID 0);
  the shifts, bias and weight buffers (:func:`.writer.conv_values`, :mod:`.pack`);
- ADD and the other non-conv ops: :mod:`.synth_ops` (groups, Operator 8 / 14, their tables);
- SubGraph 6/7 = the input format code (1 for RGB), SubGraph 10 the pixel transform
  (:func:`.writer.input_transform`); Model.description ``Sigmastar Cmodel With IPU CTRL``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..model import sgs_dialect, sgs_weights
from ..model.graph import Model, Quantization
from . import pack
from . import program as program_rule
from . import quantize_plan as qp
from . import synth_ops
from ..model import options as options_mod
from ..ops._common import same_pads
from .writer import conv_values, input_transform, per_channel_conv_values

#: the order of the fields an Operator table of a vendor fixed.sim holds (its non-default ones):
#: 1,469 of 1,469 operators of the 518 fixed files of the session
OPERATOR_ORDER = ("opcode_index", "inputs", "outputs", "builtin_options", "sgs_list_7", "sgs_input_rescale",
                  "sgs_output_rescale", "sgs_op_class", "sgs_op_info", "builtin_options_type", "sgs_feeds_pool",
                  "sgs_fused_input")
#: SubGraph 6/7 codes of the input formats
INPUT_FORMAT_CODES = {"RGB": 1, "BGR": 2, "RGBA": 3, "BGRA": 4, "YUV_NV12": 5}
#: ops :func:`synthesize` writes (:mod:`.synth_ops` says how the vendor runs each)
SYNTHESIZED_OPS = synth_ops.OPS
#: activations the vendor's calibrator fuses into the conv that feeds them
FUSED_ACTIVATIONS = frozenset({"RELU", "RELU6"})
#: ops after which (or before which) a tensor is in the plain layout (Tensor.6 one above the base)
PLAIN_LAYOUT_OPS = frozenset({"CONCATENATION", "RESHAPE", "RESIZE_BILINEAR", "SOFTMAX", "TRANSPOSE", "MEAN",
                              "PAD", "STRIDED_SLICE", "Slice_Alias", "Align2_Alias", "Align"})
DESCRIPTION = "Sigmastar Cmodel With IPU CTRL"


@dataclass(frozen=True)
class ConvSite:
    """What a program provider is told of one conv of the graph."""

    op_index: int
    kind: str                 # CONV_2D or DEPTHWISE_CONV_2D
    in_shape: tuple
    w_shape: tuple
    out_shape: tuple
    stride: int
    padding: str              # SAME or VALID
    in_dtype: str
    out_dtype: str
    graph_input: bool
    reserved_slots: int = 0   # buffer slots an activation run in the conv's group takes
    depthwise_as_conv: bool = False  # a depthwise conv the converter wrote as CONV_2D (Conv2DOptions 38 = 2)


#: the buffer slots an activation (RELU, PRELU) run in a conv's group reserves (Conv2DOptions slot 29;
#: 73 of 75 such convs of the vendor's L1 files of the shared models, the other 2 and every conv
#: without one: 0)
ACTIVATION_SLOTS = 8
#: the output tile (Conv2DOptions slot 12) of a conv with an activation in its group: 16 channels on all
#: 75 such convs of the vendor's L1 files of the shared models
ACTIVATION_OUT_TILE = 16
#: inputs of up to this many channels are taken in one tile inside the graph (:func:`_doubled_allocation`)
WHOLE_INPUT_TILE_CHANNELS = 64

@dataclass(frozen=True)
class ConvProgram:
    """A conv's IPU program: options fields (named as in the options dataclass), the weight tiling
    the program implies, and the weight buffer's size in bytes (None: the packed size)."""

    fields: Mapping[str, Any]
    input_tile: int
    output_tile: int
    weight_bytes: int | None = None
    in_pass: int | None = None    # None: all input channels
    out_pass: int | None = None   # None: all output channels


ProgramFor = Callable[[ConvSite], ConvProgram]

#: the two shifts of a conv's options, written from the ranges (not part of the program)
_SHIFTS = ("sgs_bias_shift", "sgs_total_shift")


def fixed_flag(dtype: str, constant: bool, graph_input: bool, graph_output: bool, is_weight: bool,
               producer: str | None, consumers: Sequence[str]) -> int:
    """Tensor.6 ``sgs_fixed_flag``: 1 graph input; constants 10 (INT8), 13 (INT16 weights), 12 (other
    INT16), 14 (INT32); activations 6 (UINT8) / 11 (INT16), one more when the tensor is a graph output
    or its producer or a consumer is an op of :data:`PLAIN_LAYOUT_OPS`."""
    if graph_input:
        return 1
    if constant:
        table = {"INT8": 10, "INT16": 13 if is_weight else 12, "INT32": 14}
        if dtype not in table:
            raise ModelError(f"no Tensor.6 flag is established for a {dtype} constant")
        return table[dtype]
    base = {"UINT8": 6, "INT16": 11}.get(dtype)
    if base is None:
        raise ModelError(f"no Tensor.6 flag is established for a {dtype} activation")
    plain = graph_output or producer in PLAIN_LAYOUT_OPS or any(c in PLAIN_LAYOUT_OPS for c in consumers)
    return base + int(plain)


def activation_bytes(shape: Sequence[int], dtype: str) -> int:
    """Bytes of an activation in the arena: N*H*W pixels of the channel bytes rounded up to 16
    (ceil16(C) for UINT8, ceil8(C) * 2 for INT16), the total rounded up to 64."""
    *lead, c = (int(d) for d in shape)
    item = 2 if dtype == "INT16" else 1
    n = math.prod(lead) * (-(-(c * item) // 16) * 16)
    return -(-n // 64) * 64


def arena(tensors, operators, inner: Sequence[int],
          fused: Mapping[int, int] | None = None) -> tuple[dict[int, tuple[int, int]], int]:
    """(tensor index -> (begin, end) byte, arena bytes) of the inner activations.

    In op order, each op's inner outputs go to the lowest offset where they fit between the ranges
    still live (first fit; the op's inputs are live while it runs), and a tensor's range is freed
    after its last reader. The arena bytes (SubGraph.5) are the highest end rounded up to 128.
    ``fused``: conv op -> the ADD op it runs in (:func:`add_fusions`): the conv's output takes no
    bytes, and its inputs stay live until the ADD has run."""
    fused = dict(fused or {})
    wanted = set(inner) - {o for k in fused for o in operators[k].outputs}
    last_use: dict[int, int] = {}
    for k, op in enumerate(operators):
        for i in op.inputs:
            last_use[i] = max(last_use.get(i, k), fused.get(k, k))
    live: dict[int, tuple[int, int]] = {}
    out: dict[int, tuple[int, int]] = {}
    for k, op in enumerate(operators):
        for i in op.outputs:
            if i not in wanted or i in out:
                continue
            size = activation_bytes(tensors[i].shape, tensors[i].dtype)
            pos = 0
            for begin, end in sorted(live.values()):
                if pos + size <= begin:
                    break
                pos = max(pos, end)
            out[i] = live[i] = (pos, pos + size)
        for i in op.inputs:
            if last_use.get(i) == k:
                live.pop(i, None)
        for k2, add in fused.items():  # a fused conv's inputs, read until its ADD has run
            if add == k:
                for i in operators[k2].inputs:
                    if last_use.get(i) == k:
                        live.pop(i, None)
    for i in wanted:  # an activation no op writes (none in the converter's graphs): after the others
        if i not in out:
            top = max((e for _, e in out.values()), default=0)
            out[i] = (top, top + activation_bytes(tensors[i].shape, tensors[i].dtype))
    top = max((e for _, e in out.values()), default=0)
    return out, -(-top // 128) * 128


def first_reference_order(subgraph) -> dict[int, int]:
    """Tensor index -> its rank in the order the operators first name it (each op's inputs, then its
    outputs): Tensor.8 ``sgs_use_order`` (the index itself unless the converter appended tensors)."""
    order: dict[int, int] = {}
    for op in subgraph.operators:
        for i in (*op.inputs, *op.outputs):
            if i >= 0 and i not in order:
                order[i] = len(order)
    for i in range(len(subgraph.tensors)):
        order.setdefault(i, len(order))
    return order


def _drop_layout(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != sgs_dialect.LAYOUT}


def _operator_layout(extra: Mapping[str, Any], op) -> tuple[str, ...]:
    values = {"opcode_index": op.opcode_index, "inputs": op.inputs, "outputs": op.outputs,
              "builtin_options": op.options, "builtin_options_type": op.options, **extra}
    present = []
    for name in OPERATOR_ORDER:
        v = values.get(name)
        if v is None or (name == "opcode_index" and v == 0) or (isinstance(v, bool) and not v) or \
                (isinstance(v, int) and not isinstance(v, bool) and v == 0 and name != "opcode_index"):
            continue
        present.append(name)
    return tuple(present)


def fuse_activations(model: Model) -> Model:
    """The float model with every RELU / RELU6 that alone reads a CONV_2D's or DEPTHWISE_CONV_2D's output,
    and writes no graph output, fused into the conv, as the vendor's fixed.sim holds it: the conv takes
    ``fused_activation_function`` RELU (RELU6) and the activation's output tensor; the activation op,
    the conv's own output tensor (the converter's ``.../activationInput#n``), its buffer and the
    activation's operator code are dropped, later tensors and buffers renumbered (SubGraph 8/9
    shortened). Returns a copy; the input is not modified."""
    m = model.copy()
    sg = m.main
    readers: dict[int, list[int]] = {}
    for j, op in enumerate(sg.operators):
        for i in op.inputs:
            readers.setdefault(i, []).append(j)
    drop_ops, drop_tensors = set(), set()
    for j, op in enumerate(sg.operators):
        if m.op_name(op) not in FUSED_ACTIVATIONS:
            continue
        src = op.inputs[0]
        prod = [k for k, p in enumerate(sg.operators) if src in p.outputs]
        if len(prod) != 1 or m.op_name(sg.operators[prod[0]]) not in ("CONV_2D", "DEPTHWISE_CONV_2D") or \
                readers.get(src) != [j] or \
                src in sg.outputs or op.outputs[0] in sg.outputs:
            continue  # an activation writing a graph output runs on its own, in the conv's group
        conv = sg.operators[prod[0]]
        if getattr(conv.options, "fused_activation_function", "NONE") != "NONE":
            continue
        conv.options = dataclasses.replace(conv.options, fused_activation_function=m.op_name(op))
        conv.outputs = (op.outputs[0], *conv.outputs[1:])
        drop_ops.add(j)
        drop_tensors.add(src)
    if not drop_ops:
        return m
    keep_t = [i for i in range(len(sg.tensors)) if i not in drop_tensors]
    t_new = {old: new for new, old in enumerate(keep_t)}
    used_buffers = {sg.tensors[i].buffer for i in keep_t}
    drop_b = {sg.tensors[i].buffer for i in drop_tensors if sg.tensors[i].buffer and
              sg.tensors[i].buffer not in used_buffers}
    # a dropped tensor on the shared empty buffer 0 takes the last unused empty buffer with it (the
    # converter's graphs end in empty buffers no tensor names: face_detection_short_range's fixed.sim
    # holds one buffer less than its float.sim, the compiler's size check needs it)
    spare = [b for b in range(len(m.buffers) - 1, 0, -1)
             if b not in used_buffers and b not in drop_b and not m.buffers[b].data]
    for i in drop_tensors:
        if not sg.tensors[i].buffer and spare:
            drop_b.add(spare.pop(0))
    keep_b = [b for b in range(len(m.buffers)) if b not in drop_b]
    b_new = {old: new for new, old in enumerate(keep_b)}
    ops = [op for j, op in enumerate(sg.operators) if j not in drop_ops]
    codes_used = sorted({op.opcode_index for op in ops})
    c_new = {old: new for new, old in enumerate(codes_used)}
    for op in ops:
        op.inputs = tuple(t_new[i] if i >= 0 else i for i in op.inputs)
        op.outputs = tuple(t_new[i] for i in op.outputs)
        op.opcode_index = c_new[op.opcode_index]
    tensors = [sg.tensors[i] for i in keep_t]
    for t in tensors:
        t.buffer = b_new[t.buffer]
    flags = sg.extra.get("sgs_tensor_flags")
    op_flags = sg.extra.get("sgs_op_flags")
    extra = dict(sg.extra)
    if flags is not None:
        extra["sgs_tensor_flags"] = bytes(flags[i] for i in keep_t)
    if op_flags is not None:
        extra["sgs_op_flags"] = bytes(op_flags[j] for j in range(len(sg.operators)) if j not in drop_ops)
    m.subgraphs[0] = dataclasses.replace(sg, tensors=tensors, operators=ops,
                                         inputs=tuple(t_new[i] for i in sg.inputs),
                                         outputs=tuple(t_new[i] for i in sg.outputs), extra=extra)
    m.buffers = [m.buffers[b] for b in keep_b]
    m.operator_codes = [m.operator_codes[c] for c in codes_used]
    return m


def add_fusions(model: Model) -> dict[int, tuple[int, int]]:
    """ADD op -> (the CONV_2D fused into it, which of the ADD's inputs it writes): the ADDs of class 2
    of :func:`.synth_ops.op_roles` (the conv just before the ADD, read by it alone, runs in it: its
    output has no arena bytes, and the ADD's Operator.14 is the input's position, 0 written as absent)."""
    return {j: (j - 1, r.fused_input) for j, r in synth_ops.op_roles(model).items()
            if r.op_class == 2 and model.op_name(model.main.operators[j]) == "ADD"}


def conv_sites(float_model: Model, plan: Mapping[int, qp.TensorQuant],
               roles: Mapping[int, synth_ops.OpRole] | None = None) -> dict[int, ConvSite]:
    """Op index -> :class:`ConvSite` of every conv of ``float_model`` (after :func:`fuse_activations`);
    ``roles``: its :func:`.synth_ops.op_roles`, when already at hand."""
    sg = float_model.main
    roles = synth_ops.op_roles(float_model) if roles is None else roles
    out = {}
    for j, op in enumerate(sg.operators):
        kind = float_model.op_name(op)
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        o = op.options
        group = [float_model.op_name(sg.operators[k]) for k in range(j + 1, roles[j].group_end + 1)]
        reserved = ACTIVATION_SLOTS if any(g in synth_ops.SLOT_RESERVING_OPS for g in group) else 0
        out[j] = ConvSite(j, kind, tuple(sg.tensors[op.inputs[0]].shape), tuple(sg.tensors[op.inputs[1]].shape),
                          tuple(sg.tensors[op.outputs[0]].shape), int(o.stride_w), str(o.padding),
                          plan[op.inputs[0]].dtype, plan[op.outputs[0]].dtype, op.inputs[0] in sg.inputs, reserved,
                          kind == "CONV_2D" and getattr(o, "sgs_depthwise_mode", 0) == 2)
    return out


def conv_spec(site: ConvSite) -> program_rule.ConvSpec:
    """The :class:`.program.ConvSpec` of a conv of the graph (square kernel and stride)."""
    _, h, w, cin = site.in_shape
    _, kh, kw, _ = site.w_shape
    if kh != kw:
        raise UnsupportedOpError(f"op #{site.op_index} {site.kind}: the program rule takes square kernels, "
                                 f"not {kh} x {kw}")
    cout = site.out_shape[-1]
    if site.depthwise_as_conv:
        return program_rule.ConvSpec("DEPTHWISE_CONV_2D", int(h), int(w), int(cin), int(cout), int(kh), site.stride,
                                     site.padding, site.in_dtype, site.out_dtype, site.graph_input, as_conv=True)
    return program_rule.ConvSpec(site.kind, int(h), int(w), int(cin), int(cout), int(kh), site.stride,
                                 site.padding, site.in_dtype, site.out_dtype, site.graph_input,
                                 as_conv=False if site.kind == "DEPTHWISE_CONV_2D" else None)


def _doubled_allocation(spec: program_rule.ConvSpec, site: ConvSite, budget: int) -> program_rule.Allocation:
    """The rule's allocation within ``budget`` slots, slot 27 doubled (and slot 28 where it still fits);
    where even that does not fit, fewer output rows a tile (a tile of the whole output may keep slot
    27 undoubled: one tile is not double-buffered). An input of at most 64 channels is taken in one
    tile first (the vendor's choice inside the graph: the rule's smaller tile makes its tools refuse
    iris_landmark's 1 x 1 convs, ``sdk_conv.c:1398: Conv_FFDIHWDO: Assertion `bRet'``), the rule's
    tile where that does not fit (shortening the output pass before the input pass first); with an
    activation in the group, output tiles of
    :data:`ACTIVATION_OUT_TILE` channels. Every candidate keeps within the vendor compiler's limits
    (:func:`.program.compiler_limits`: the slots, an INT16 output tile of at most 512 pixels, slot 27
    at most 16 slots and double-buffered, region 28 holding the partial sums of a pass over several
    input tiles)."""
    to = ACTIVATION_OUT_TILE if site.reserved_slots and not spec.depthwise_as_conv else None
    if spec.in_dtype == "INT16" and not spec.graph_input and not spec.depthwise_as_conv:
        whole = _int16_whole_plane(spec, budget, to)
        if whole is not None:
            return whole
    starts = []
    if not spec.graph_input and spec.in_channels <= WHOLE_INPUT_TILE_CHANNELS and not spec.depthwise_as_conv:
        starts.append(program_rule.default_allocation(spec, budget, in_tile=spec.in_channels, out_tile=to))
    starts.append(program_rule.default_allocation(spec, budget, out_tile=to, output_passes_first=True))
    starts.append(program_rule.default_allocation(spec, budget, out_tile=to))
    oh = spec.out_height
    for a0 in starts:
        for n in range(1, oh + 1):
            rows = -(-oh // n)
            if rows > a0.out_tile_height or (n > 1 and rows == -(-oh // (n - 1))):
                continue
            a = program_rule.with_row_tile(spec, a0, rows) if rows != a0.out_tile_height else a0
            # an INT16 input in several passes: the weights of every pass at once (slot 25)
            a = dataclasses.replace(a, weight_slots=max(a.weight_slots, program_rule.resident_weight_slots(
                spec, a.in_tile, a.in_pass, a.out_tile, a.out_pass)))
            doubled = dataclasses.replace(a, output_slots=2 * a.output_slots)
            wide = dataclasses.replace(doubled, region_28=2 * a.region_28)
            wide28 = dataclasses.replace(a, region_28=2 * a.region_28)
            # slot 27 undoubled only for a whole-plane INT16 output (iris_landmark's 16 x 16 x 128 convs,
            # face_landmark's 1404-channel one); a UINT8 output is double-buffered even in one tile
            # (hand_landmark_lite's 28 x 28 x 96 -> 24: ``vrbuf_depth(u32ObBufId) >= (u32)(2*...vrbuf_depth)``)
            single = (a.out_tile_width, rows) == (spec.out_width, oh) and spec.out_dtype == "INT16"
            if spec.out_dtype == "INT16" and a.out_tile_width * rows > program_rule.SLOT_ROWS:
                continue  # ``_Conv_GetObTilePartitionInfo: tile_w * tile_h <= ONE_SLOT_DEPTH``
            for cand in (wide, doubled) + ((wide28, a) if single else ()):
                if not program_rule.compiler_limits(spec, cand, budget):
                    return cand
    raise UnsupportedOpError(f"op #{site.op_index} {site.kind}: no allocation of the program rule fits "
                             f"{budget} buffer slots within the vendor compiler's limits (program.compiler_limits)")


def _int16_whole_plane(spec: program_rule.ConvSpec, budget: int,
                       out_tile: int | None) -> program_rule.Allocation | None:
    """An INT16-input conv's allocation over whole output planes (one tile of all rows and columns),
    slot 27 doubled, slot 28 as :func:`.program.region_28_slots` gives it for the pass's input tiles
    (doubled where the pass is one tile), the output pass one output tile shorter until the four
    regions fit ``budget`` and the compiler's limits; None where the plane is not one tile or no pass
    fits. The vendor's choice for a 7 x 7 x 112 -> 672 1 x 1 conv with an INT16 input (passes of 320; the
    rule's 4-row tiles of 448 channels make its compiler refuse the file, ``sdk_conv.c:1398:
    Conv_FFDIHWDO: Assertion `bRet'``)."""
    a = program_rule.default_allocation(spec, budget, out_tile=out_tile)
    ow, oh = spec.out_width, spec.out_height
    if a.out_tile_width != ow or ow * oh > program_rule.MAX_TILE_PIXELS or \
            (spec.out_dtype == "INT16" and ow * oh > program_rule.SLOT_ROWS):
        return None
    a = program_rule.with_row_tile(spec, dataclasses.replace(a, in_pass=spec.in_channels), oh)
    n_in = -(-a.in_pass // a.in_tile)
    q = spec.out_channels
    while q > 0:
        out_slots = program_rule.output_slots(spec, q, ow, oh)
        # region 28 as the rule gives it for a pass over several input tiles (the INT16 input's groups of
        # 8 channels: twice the 16-channel groups' slots of the 672-channel conv), else doubled
        r28 = program_rule.region_28_slots(spec, q, ow, oh, n_in)
        cand = dataclasses.replace(a, out_pass=q, weight_slots=program_rule.weight_slots(spec, a.in_tile, a.in_pass,
                                                                                        a.out_tile, q),
                                   output_slots=2 * out_slots, region_28=r28 if n_in > 1 else 2 * r28)
        if not program_rule.compiler_limits(spec, cand, budget):
            return cand
        q = (-(-q // a.out_tile) - 1) * a.out_tile
    return None


def _program_fields(table: str, slots: Mapping[int, Any], chunk_slot: int) -> tuple[dict[str, Any], int]:
    """(options fields by name, weight buffer bytes) of a program given by slot: the weight DMA chunks
    (``chunk_slot``) frozen as tables, the buffer the sum of their bytes."""
    fields = {sgs_dialect.SLOT_NAMES.get((table, slot), f"sgs_slot_{slot}"):
              options_mod._freeze([dict(c) for c in v]) if slot == chunk_slot else v for slot, v in slots.items()}
    return fields, sum(c["byte_count"] for c in slots[chunk_slot])


def rule_program(site: ConvSite, allocation: program_rule.Allocation | None = None) -> ConvProgram:
    """The program provider from the fitted rule alone (:func:`.program.standalone_program`, the
    allocation :func:`.program.default_allocation` with slot 27 doubled, and slot 28 doubled where the
    four regions still fit the 32 slots, unless given): no vendor file is read.

    Slot 27 doubled: with the rule's output slots (the output tile's size) both vendor tools refuse
    the file (``Conv_FFDIHWDO: Assertion `vrbuf_depth(u32ObBufId) >= (u32)(2*stObSwTileShapeInfo.vrbuf_depth)'``,
    the output buffer is double-buffered); twice them the tools take 11 of 16 test chains, the others
    refused at ``sdk_conv.c:1398: Conv_FFDIHWDO: Assertion `bRet'``; slot 28 doubled as well (where
    it fits) they take 14 of 16 (docs/model_format.md, "Synthesizing the fixed file").

    The weight tiling is the allocation's (input tile slot 10, output tile slot 12, the passes 11 / 13:
    the buffer holds the blocks in the chunks' order, ``layout.int8_conv_blocks``) and the buffer
    size the sum of the DMA chunks' bytes (the vendor's buffer size on all 208 surveyed standalone
    CONV_2D). Inside the graph the allocation keeps within the slots an activation run with the conv
    leaves (:data:`ACTIVATION_SLOTS`), takes an input of at most 64 channels in one tile, and doubles
    slots 27 / 28 only where they fit (:func:`_doubled_allocation`)."""
    spec = conv_spec(site)
    if spec.op_kind == "DEPTHWISE_CONV_2D":
        if site.reserved_slots:  # the vendor's allocation of a hosting depthwise is not the rule's
            raise UnsupportedOpError(f"op #{site.op_index} {site.kind}: the program of a depthwise conv hosting a "
                                     f"fused op is not established (the rule's allocation within "
                                     f"{program_rule.SLOTS - site.reserved_slots} slots is refused by the vendor's "
                                     f"tools on some)")
        try:
            slots = program_rule.standalone_program(spec)
        except ValueError as e:
            raise UnsupportedOpError(f"op #{site.op_index} {site.kind}: {e}") from None
        fields, weight_bytes = _program_fields("DepthwiseConv2DOptions", slots, 41)
        return ConvProgram(fields, 0, 0, weight_bytes)
    budget = program_rule.SLOTS - site.reserved_slots
    if allocation is not None:
        a = allocation
    elif spec.depthwise_as_conv:
        try:
            a = program_rule.rewrite_allocation(spec, budget)
        except ValueError as e:
            raise UnsupportedOpError(f"op #{site.op_index} {site.kind}: {e}") from None
    else:
        a = _doubled_allocation(spec, site, budget)
    broken = [] if spec.depthwise_as_conv else program_rule.compiler_limits(spec, a, budget)
    if broken:  # the vendor's compiler would abort on the file (``sdk_conv.c``): say which op, and why
        raise UnsupportedOpError(f"op #{site.op_index} {site.kind} ({'x'.join(map(str, site.in_shape[1:]))} -> "
                                 f"{site.out_shape[-1]}): the vendor's compiler refuses its program: "
                                 + "; ".join(broken))
    slots = program_rule.standalone_program(spec, a, site.reserved_slots)
    fields, weight_bytes = _program_fields("Conv2DOptions", slots, 40)
    return ConvProgram(fields, a.in_tile, a.out_tile, weight_bytes, a.in_pass, a.out_pass)


def synthesize(float_model: Model, ranges: Mapping[str, tuple[float, float]],
               channel_ranges: Mapping[str, tuple[np.ndarray, np.ndarray]], mean: Sequence[float], std: float,
               program_for: ProgramFor, input_format: str = "RGB",
               weight_scales: Mapping[str, Sequence[float]] | None = None,
               input_means: Mapping[str, Sequence[float]] | None = None) -> Model:
    """The vendor fixed.sim (a ``Model`` in the ``sgs_fixed`` dialect) of a vendor float.sim.

    ``ranges``: per-tensor (min, max) by name; ``channel_ranges``: per-output-channel (min, max) of
    every conv output (the accumulator range); ``mean``/``std``: the input normalization (three
    means, RGB order, one std); ``program_for``: each conv's IPU program; ``weight_scales``: per conv
    weight name, one scale per output channel (per-channel int8 codes and bias multipliers under the
    conv's one shift, :func:`.writer.per_channel_conv_values`, for ordinary convs and the
    depthwise-as-conv rewrite; default and for native depthwise convs: the vendor's per-tensor codes);
    ``input_means``: per conv weight name (of a conv in ``weight_scales``), the mean of each channel of its
    input (the plan's bias correction, L5): the bias is corrected for the mean shift of the written codes,
    b - sum_k (q * s - w)[o, k] * mean[k] (:func:`.pack.mean_shift`). Encode with ``model.to_bytes(reencode=True)``.
    """
    if float_model.dialect != "sgs_float":
        raise ModelError(f"synthesize takes a vendor float.sim (dialect sgs_float), not {float_model.dialect!r}")
    if input_format != "RGB":
        raise ModelError(f"input format {input_format!r}: only RGB input is synthesized (the pixel transform "
                         f"of the others is not written yet)")
    original = float_model
    float_model = fuse_activations(float_model)
    roles = synth_ops.op_roles(float_model)  # refuses, naming it, an op of no established role
    plan = qp.plan(float_model, ranges)
    m = float_model.copy()
    sg = m.main
    fsg = float_model.main
    producers = {o: m.op_name(op) for op in sg.operators for o in op.outputs}
    consumers: dict[int, list[str]] = {}
    for op in sg.operators:
        for i in op.inputs:
            consumers.setdefault(i, []).append(m.op_name(op))
    weights = {op.inputs[1] for op in sg.operators if m.op_name(op) in ("CONV_2D", "DEPTHWISE_CONV_2D")}
    constant = {i for i, t in enumerate(sg.tensors) if 0 < t.buffer < len(m.buffers) and m.buffers[t.buffer].data}
    for i, t in enumerate(sg.tensors):
        q = plan[i]
        t.dtype = q.dtype
    inner = [i for i in range(len(sg.tensors)) if i not in constant and i not in sg.inputs and i not in sg.outputs]
    ranges_of, arena_bytes = arena(sg.tensors, sg.operators, inner,
                                   {k: r.group_end for k, r in roles.items() if r.group_end != k})
    values = {i: np.frombuffer(m.buffers[t.buffer].data, {"FLOAT32": np.float32, "INT32": np.int32}[t.dtype],
                               count=int(np.prod(t.shape))).reshape(t.shape)
              for i, t in enumerate(fsg.tensors) if i in constant and t.dtype in ("FLOAT32", "INT32")}
    buffers = list(m.buffers)
    pooled = {i for op in sg.operators if m.op_name(op) == "MAX_POOL_2D" for i in op.inputs}
    for j, role in roles.items():
        op = sg.operators[j]
        extra = {**op.extra, "sgs_op_class": role.op_class}
        if role.fused_input:
            extra["sgs_fused_input"] = role.fused_input
        if m.op_name(op) in synth_ops.CONVS:
            if op.outputs[0] in pooled:
                extra["sgs_feeds_pool"] = 1
            op.extra = extra  # the conv loop below writes its options and layout
            continue
        tables = synth_ops.op_tables(m, j, plan, values)
        if "options" in tables:
            op.options = tables["options"]
        if "inputs" in tables:
            extra["sgs_input_rescale"], extra["sgs_output_rescale"] = tables["inputs"], tables["outputs"]
        for key in ("alpha", "paddings"):  # the op's second input's buffer
            if key in tables:
                ta = sg.tensors[op.inputs[1]]
                buffers[ta.buffer] = dataclasses.replace(buffers[ta.buffer], data=tables[key])
        extra[sgs_dialect.LAYOUT] = _operator_layout(extra, op)
        op.extra = extra
    acc: dict[int, tuple[int, int]] = {}
    by_name = {t.name: plan[i] for i, t in enumerate(fsg.tensors)}
    sites = conv_sites(float_model, plan, roles)
    for j, site in sites.items():
        op = sg.operators[j]
        w_dtype = plan[op.inputs[1]].dtype
        if w_dtype not in ("INT8", "INT16"):
            raise UnsupportedOpError(f"op #{j} {site.kind}: only INT8 and INT16 weights are synthesized, not {w_dtype}")
        ti, tw, tb, to = (sg.tensors[i] for i in (*op.inputs[:3], op.outputs[0]))
        where = f"op #{j} {site.kind} (output {to.name!r})"
        # the accumulator range is the conv's own output's (before a fused RELU), of the original model
        fop = next(p for p in original.main.operators if original.op_name(p) == site.kind and
                   original.main.tensors[p.inputs[1]].name == tw.name)
        if weight_scales and tw.name in weight_scales and w_dtype == "INT8":
            codes, prm, acc_max, acc_min = per_channel_conv_values(
                original, fop, site.kind, by_name[ti.name], by_name[to.name], to.dtype == "UINT8",
                channel_ranges, weight_scales[tw.name], where, (input_means or {}).get(tw.name))
        else:
            codes, prm, acc_max, acc_min = conv_values(original, fop, site.kind, by_name[ti.name],
                                                       by_name[tw.name], by_name[to.name], to.dtype == "UINT8",
                                                       channel_ranges, where)
        acc[op.outputs[0]] = (acc_max, acc_min)
        prog = program_for(site)
        bad = [k for k in prog.fields if k in _SHIFTS or not k.startswith("sgs_") or k == sgs_dialect.LAYOUT]
        if bad:
            raise ModelError(f"{where}: the program provider gave fields that are not program fields: {bad}")
        o = op.options
        pads = (0, 0, 0, 0)
        if o.padding == "SAME":
            _, h, w, _ = site.in_shape
            _, kh, kw, _ = site.w_shape
            _, top, bottom = same_pads(h, kh, int(o.stride_h), int(o.dilation_h_factor))
            _, left, right = same_pads(w, kw, int(o.stride_w), int(o.dilation_w_factor))
            pads = (left, right, top, bottom)
        op.options = dataclasses.replace(
            o, **dict(prog.fields), padding_left=pads[0], padding_right=pads[1], padding_top=pads[2],
            padding_bottom=pads[3], sgs_bias_shift=prm["bias_shift"], sgs_total_shift=prm["total_shift"],
            sgs_layout=())
        code_dtype = np.int16 if w_dtype == "INT16" else np.int8
        if site.kind == "DEPTHWISE_CONV_2D":
            data = pack.pack_depthwise_weights(codes, code_dtype)
        elif site.depthwise_as_conv:
            data = sgs_weights.pack_diagonal_blocks(codes, code_dtype)
        elif w_dtype == "INT16":  # the tiles and passes the program states (as the simulators read them)
            from .engine import slot_passes, slot_tiling
            stated = slot_tiling(op.options)
            data = pack.pack_conv_weights_int16(codes, *(stated[::-1] if stated else (None, None)),
                                                *slot_passes(op.options))
        else:
            data = pack.pack_conv_weights(codes, prog.input_tile, prog.output_tile, prog.in_pass, prog.out_pass)
        if prog.weight_bytes is not None:
            if prog.weight_bytes < len(data):
                raise ModelError(f"{where}: the program's weight buffer of {prog.weight_bytes} bytes is below "
                                 f"the {len(data)} bytes of its tiling")
            data += bytes(prog.weight_bytes - len(data))
        buffers[tw.buffer] = dataclasses.replace(buffers[tw.buffer], data=data)
        buffers[tb.buffer] = dataclasses.replace(buffers[tb.buffer],
                                                 data=pack.pack_bias(prm["row0"], prm["multipliers"]))
        extra = dict(op.extra)
        extra[sgs_dialect.LAYOUT] = _operator_layout(extra, op)
        op.extra = extra
    m.buffers = buffers
    rank = first_reference_order(sg)
    for i, t in enumerate(sg.tensors):
        q = plan[i]
        old = t.quantization.extra if t.quantization is not None else {}
        qextra = _drop_layout(old)
        if i in acc:
            qextra["sgs_acc_max"], qextra["sgs_acc_min"] = (acc[i][0],), (acc[i][1],)
        t.quantization = Quantization(
            scale=None if q.scale is None else (q.scale,),
            zero_point=None if q.zero_point is None else (q.zero_point,),
            min=None if q.min is None else (q.min,), max=None if q.max is None else (q.max,), extra=qextra)
        extra = _drop_layout(t.extra)
        begin, end = ranges_of.get(i, (0, 0))
        extra["sgs_arena"] = {"begin_byte": begin, "end_byte": end}
        extra["sgs_fixed_flag"] = fixed_flag(t.dtype, i in constant, i in sg.inputs, i in sg.outputs,
                                             i in weights, producers.get(i), consumers.get(i, ()))
        if rank[i]:
            extra["sgs_use_order"] = rank[i]
        t.extra = extra
    code = INPUT_FORMAT_CODES[input_format]
    sub = _drop_layout(sg.extra)
    sub["sgs_arena_bytes"] = arena_bytes
    sub["sgs_input_formats"] = tuple(code for _ in sg.inputs)
    sub["sgs_training_input_formats"] = tuple(code for _ in sg.inputs)
    transforms = []
    for i in sg.inputs:
        q = plan[i]
        pt = input_transform(q.scale, q.zero_point, mean, std)
        transforms.append({"pixel_transform": tuple(int(v) for v in pt)})
    sub["sgs_input_transforms"] = tuple(transforms)
    sg.extra = sub
    m.description = DESCRIPTION
    m.dialect = "sgs_fixed"
    m.source = None
    return m
