"""Which integer type each tensor gets in the fixed model, under an input_config.ini.

The vendor's frame (sgs_facts.md §6): CONV_2D and DEPTHWISE_CONV_2D (and the ops the vendor turns
into convolutions: FULLY_CONNECTED, TRANSPOSE_CONV, BATCH_MATMUL with constant weights) run in 8-bit
mode, input UINT8 and weights INT8, or in 16-bit mode, input and weights INT16; biases are INT32;
every other float tensor is INT16; image model inputs are UINT8 raw pixels.

An activation is UINT8 only when a conv-like op writes it (or it is a model input), every op reading
it is an 8-bit conv-like op and it is not a model output; otherwise it is INT16 and the 8-bit convs
reading it requantize it on the fly (a QUANTIZE to a UINT8 copy). UINT8 data of convs is quantized
per channel (planner.channel_u8_quant), which conv-like ops and QUANTIZE can write.
"""
from __future__ import annotations

import logging

from ..config import IMAGE_FORMATS, ConvConfig, InputConfig
from ..model.graph import Model
from ..ops.conv_layout import CONV_LAYOUTS, ConvLike
from ..plan import FLOAT_CONSTANT_OPS

log = logging.getLogger(__name__)

#: the rule of every op not in :data:`QUANT_RULES`
DEFAULT_QUANT_RULE = "every float tensor INT16 (symmetric, per tensor), its float constants too"
#: op -> how the planner quantizes its tensors (docs/op_table.md); every other op: DEFAULT_QUANT_RULE.
#: Model inputs follow input_config.ini whatever reads them (image inputs UINT8 pixels).
QUANT_RULES: dict[str, str] = {
    **{op: ("conv-like: 8-bit mode (data UINT8 per channel, weights INT8 per output channel, bias INT32) "
            "or 16-bit mode (data and weights INT16, bias INT64), by [CONV_CONFIG] and L4/L5")
       for op in CONV_LAYOUTS},
    **{op: "runs in float: outputs FLOAT32 unquantized, float constant inputs stay FLOAT32"
       for op in FLOAT_CONSTANT_OPS},
}


def quant_rule(op_name: str) -> str:
    """How the planner quantizes the tensors of ``op_name`` (:data:`QUANT_RULES`, else the default)."""
    return QUANT_RULES.get(op_name, DEFAULT_QUANT_RULE)


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
    """The fixed-model type name of every tensor of the main subgraph (``'UINT8'``, ``'INT8'``, ...)."""
    g = model.main
    qtypes = [t.dtype if t.dtype != "FLOAT32" else "INT16" for t in g.tensors]
    conv_by_op = {c.op_index: c for c in convs}
    for c in convs:
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
