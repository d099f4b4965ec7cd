"""Which integer type each tensor gets in the fixed model, under an input_config.ini.

The vendor's frame (sgs_facts.md §6): CONV_2D and DEPTHWISE_CONV_2D (and the ops the vendor turns
into convolutions: FULLY_CONNECTED, TRANSPOSE_CONV, BATCH_MATMUL with constant weights) run in 8-bit
mode, input UINT8 and weights INT8, or in 16-bit mode, input and weights INT16; biases are INT32;
every other float tensor is INT16; image model inputs are UINT8 raw pixels.

What each op's tensors get is its rule in the op -> quantization-rule table ``plan.QUANT_RULES``
(docs/op_table.md); :func:`tensor_qtypes` reads it op by op. An activation is UINT8 only when a
conv-like op writes it (or it is a model input), every op reading it is an 8-bit conv-like op and it
is not a model output; otherwise it is INT16 and the 8-bit convs reading it requantize it on the fly
(a QUANTIZE to a UINT8 copy). UINT8 data of convs is quantized per channel
(planner.channel_u8_quant), which conv-like ops and QUANTIZE can write.
"""
from __future__ import annotations

import logging

from ..config import IMAGE_FORMATS, ConvConfig, InputConfig
from ..model.graph import Model
from ..ops.conv_layout import ConvLike
from ..plan import DEFAULT_QUANT_RULE, QUANT_RULES, QuantRule, quant_rule  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


def conv_bits(model: Model, convs: list[ConvLike], conv_config: ConvConfig | None,
              recommended_16: frozenset[int] = frozenset()) -> dict[int, int]:
    """Bit width (8 or 16) of each conv-like op: CONV_CONFIG first, then the planner's recommendations."""
    mode = conv_config.input_format if conv_config else None
    arrays = set(conv_config.tensor_arrays) if conv_config else set()
    g = model.main
    bits = {}
    named = set()
    for c in convs:
        first_input = g.tensors[c.data].name
        if mode == "ALL_INT16":
            b = 16
        elif mode == "ALL_UINT8":
            b = 8
        elif mode == "CONV2D_INT16" and not c.is_depthwise:
            b = 16
        elif mode == "DEPTHWISE_INT16" and c.is_depthwise:
            b = 16
        elif first_input in arrays:
            b = 16
            named.add(first_input)
        else:
            b = 16 if c.op_index in recommended_16 else 8
        bits[c.op_index] = b
    for name in sorted(arrays - named):
        if mode is None:
            log.warning("[CONV_CONFIG] tensor_arrays names %r, which is not the first input of any convolution", name)
    return bits


def tensor_qtypes(model: Model, constants: dict[int, object], input_config: InputConfig | None,
                  bits: dict[int, int], convs: list[ConvLike]) -> list[str]:
    """The fixed-model type name of every tensor of the main subgraph (``'UINT8'``, ``'INT8'``, ...).

    By each op's ``QuantRule``: the default's INT16, the conv-like ops' types by their bit width. The
    outputs of ops that run in float (``float_outputs``) are INT16 here too: their ranges are planned
    like any tensor's and the fixed-model writer keeps them FLOAT32.
    """
    g = model.main
    # the default rule: every float tensor INT16
    qtypes = [t.dtype if t.dtype != "FLOAT32" else "INT16" for t in g.tensors]
    # conv-like ops (those with constant weights): weights and bias by the op's bit width
    conv_by_op = {c.op_index: c for c in convs if quant_rule(c.op_name).conv_like}
    for c in conv_by_op.values():
        qtypes[c.weights] = "INT8" if bits[c.op_index] == 8 else "INT16"
        if c.bias >= 0:
            qtypes[c.bias] = "INT32"
    # activations read only by 8-bit convs (as their data input) are UINT8
    readers: dict[int, list[tuple[int, int]]] = {}
    for k, op in enumerate(g.operators):
        for pos, i in enumerate(op.inputs):
            if i >= 0:
                readers.setdefault(i, []).append((k, pos))
    outputs = set(g.outputs)
    conv_written = {o for k in conv_by_op for o in g.operators[k].outputs} | set(g.inputs)
    for i, rs in readers.items():
        if i in constants or i in outputs or g.tensors[i].dtype != "FLOAT32" or i not in conv_written:
            continue
        if all(k in conv_by_op and conv_by_op[k].data == i and bits[k] == 8 for k, _ in rs):
            qtypes[i] = "UINT8"
    # model inputs follow input_config.ini
    specs = {s.name: s for s in input_config.inputs} if input_config else {}
    for i in g.inputs:
        t = g.tensors[i]
        spec = specs.get(t.name)
        if spec is None:
            continue
        if spec.input_format in IMAGE_FORMATS:
            qtypes[i] = "UINT8"
        elif spec.input_format == "RAWDATA_S16_NHWC":
            qtypes[i] = "INT16"
        elif spec.input_format == "RAWDATA_F32_NHWC":
            qtypes[i] = "FLOAT32" if spec.quantization else "INT16"
    return qtypes
