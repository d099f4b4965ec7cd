"""SigmaStar SDK 1.x ``.sim`` files (identifier ``TFL3``): the vendor's fork of the TFLite schema.

The vendor's converter and calibrator (SGS_IPU_SDK 1.1.5) write FlatBuffers with TFLite's file
identifier whose Model, SubGraph, Tensor, QuantizationParameters and Operator tables reuse slots
TFLite gives other meanings. A file is read in this dialect when its bytes say so: the
``Model.description`` is one the vendor writes (:data:`DESCRIPTIONS`) **and** the slot layout
agrees (Model slot 6 is a string, the SDK version, where TFLite holds a vector of tables). A
``Sigmastar ...`` description that is not one of those, or a vendor description over a TFLite
layout, is an unknown dialect (:class:`ModelError`). The file name is never consulted.

``TABLES`` is TFLite's schema with the vendor's tables swapped in and every vendor slot the
survey found (``sgs_slots.SLOTS``, named by ``SLOT_NAMES`` where the meaning is established);
``ENUMS`` adds the vendor's own builtin-options type ids. Decoded vendor tables carry ``LAYOUT``
(the fields their file held, in order) so a re-encoded model is laid out as the vendor's. The
layout and how each slot was established are in ``docs/model_format.md``.
"""
from __future__ import annotations

import struct

from ..errors import ModelError
from . import schema, sgs_slots
from .schema import Field

def flatbuf_scalar(type_name: str) -> bool:
    """Whether a field type is a scalar or an enum (what a vtable slot holds inline)."""
    return type_name in schema.SCALARS or (type_name in schema.ENUMS and type_name not in schema.UNIONS)


TFLITE = "tflite"
#: dialect name -> the description string the vendor writes
DESCRIPTIONS: dict[str, str] = {
    "sgs_float": "Sigmastar Float",
    "sgs_cmodel_float": "Sigmastar Cmodel Float",
    "sgs_fixed": "Sigmastar Cmodel With IPU CTRL",
}
DIALECT_OF_DESCRIPTION = {v: k for k, v in DESCRIPTIONS.items()}
VENDOR_DIALECTS = frozenset(DESCRIPTIONS)

#: The vendor's own tables: the slots typed by hand here; the others (and the vendor's slots in
#: TFLite's tables) come from ``sgs_slots.SLOTS``, surveyed from vendor files.
_VENDOR_ONLY_TABLES: dict[str, tuple[Field, ...]] = {
    # Model slot 7: three (empty in every converted file) vectors
    "SgsModelInfo": (
        Field(0, "list_0", "[int32]"),
        Field(2, "list_2", "[int32]"),
        Field(3, "list_3", "[int32]"),
    ),
    # Tensor slot 7: the tensor's byte range in the simulator's tensor arena
    "SgsTensorArena": (
        Field(0, "begin_byte", "uint32"),
        Field(1, "end_byte", "uint32"),
    ),
    # QuantizationParameters slot 7
    "SgsQuantExtra": (
        Field(0, "list_0", "[int32]"),
    ),
    # Operator slot 12: a u8, then four scalars (sgs_slots.SLOTS; their values point into the table,
    # so they are no offsets)
    "SgsOpInfo": (
        Field(0, "flag", "uint8"),
    ),
    # SubGraph slot 10 in fixed.sim: one per input (its slot 0, the pixel transform, in sgs_slots)
    "SgsSubGraphEntry": (),
}

_STRUCTURE: dict[str, tuple[Field, ...]] = {
    # TFLite's slot 1 (bool pot_scale_int16) is a 4-byte uoffset in the vendor's files (sgs_slots.SLOTS)
    "AddOptions": (Field(0, "fused_activation_function", "ActivationFunctionType"),),
    "SubOptions": (Field(0, "fused_activation_function", "ActivationFunctionType"),),
    # the 1.x schema's OperatorCode: TFLite's slot 3 (the int32 builtin_code) is not the vendor's;
    # a re-encoded fixed.sim with slot 3 written crashes the vendor's fixed simulator
    "OperatorCode": (
        Field(0, "deprecated_builtin_code", "int8"),
        Field(1, "custom_code", "string"),
        Field(2, "version", "int32", 1),
    ),
    "Model": (
        Field(0, "version", "uint32"),
        Field(1, "operator_codes", "[OperatorCode]"),
        Field(2, "subgraphs", "[SubGraph]"),
        Field(3, "description", "string"),
        Field(4, "buffers", "[Buffer]"),
        Field(5, "metadata_buffer", "[int32]"),
        Field(6, "sgs_sdk_version", "string"),
        Field(7, "sgs_model_info", "SgsModelInfo"),
        Field(8, "sgs_model_params", "[int32]"),
    ),
    "SubGraph": (
        Field(0, "tensors", "[Tensor]"),
        Field(1, "inputs", "[int32]"),
        Field(2, "outputs", "[int32]"),
        Field(3, "operators", "[Operator]"),
        Field(4, "name", "string"),
        Field(5, "sgs_arena_bytes", "uint32"),
        Field(6, "sgs_input_formats", "[int32]"),
        Field(7, "sgs_training_input_formats", "[int32]"),
        Field(8, "sgs_tensor_flags", "[uint8]"),
        Field(9, "sgs_op_flags", "[uint8]"),
        Field(10, "sgs_input_transforms", "[SgsSubGraphEntry]"),
    ),
    "Tensor": (
        Field(0, "shape", "[int32]"),
        Field(1, "type", "TensorType"),
        Field(2, "buffer", "uint32"),
        Field(3, "name", "string"),
        Field(4, "quantization", "QuantizationParameters"),
        Field(5, "sgs_tag", "uint8"),
        Field(6, "sgs_fixed_flag", "uint8"),
        Field(7, "sgs_arena", "SgsTensorArena"),
        # fixed.sim: 1, 2, ... in the order the ops first use the tensors (inputs, then outputs; the graph
        # input holds none), a Slice_Alias output taking its input's number
        Field(8, "sgs_use_order", "uint32"),
        Field(9, "sgs_role", "uint32"),
        Field(10, "sgs_fixed_type", "TensorType"),
    ),
    "QuantizationParameters": (
        Field(0, "min", "[float32]"),
        Field(1, "max", "[float32]"),
        Field(2, "scale", "[float32]"),
        Field(3, "zero_point", "[int64]"),
        Field(4, "sgs_acc_max", "[int64]"),  # a conv output's accumulator range (vendor_fixed.pack)
        Field(5, "sgs_acc_min", "[int64]"),
        Field(6, "sgs_flag", "uint8"),
        Field(7, "sgs_extra", "SgsQuantExtra"),
    ),
    "Operator": (
        Field(0, "opcode_index", "uint32"),
        Field(1, "inputs", "[int32]"),
        Field(2, "outputs", "[int32]"),
        Field(3, "builtin_options_type", "BuiltinOptions"),
        Field(4, "builtin_options", "union:BuiltinOptions"),
        Field(5, "custom_options", "[uint8]"),
        Field(6, "custom_options_format", "CustomOptionsFormat"),
        Field(7, "sgs_list_7", "[int32]"),
        # the op's class: 1 CONV_2D / DEPTHWISE_CONV_2D, 2 fused into the conv producing its input, 4 fused
        # into another op producing one (the vendor runs it inside that op: its dump lies under that op's
        # index), 6 the other elementwise ops, 3 the rest (pools, data movement, SOFTMAX, RESIZE, MEAN, the
        # input ops)
        Field(8, "sgs_op_class", "uint32"),
        Field(12, "sgs_op_info", "SgsOpInfo"),
        # the input whose producer the op is fused into (absent: 0), -1 for an op run on its own
        Field(14, "sgs_fused_input", "int32"),
    ),
}

#: vendor builtin-options type ids (beyond TFLite's BuiltinOptions): id -> table. The ids seen
#: are named by the op that carries them; every other id above TFLite's last one is an
#: ``SgsOptions<id>`` table no surveyed file uses (any slot it holds is listed in ``UNTYPED``).
_NAMED_OPTION_TYPES = {
    200: "SgsLogisticOptions",
    201: "SgsActivationOptions",
    202: "SgsPreluOptions",
    208: "SgsTanhOptions",
    214: "SgsDmaCoefMatrixOptions",
}
VENDOR_OPTION_TYPES: dict[int, str] = {
    i: _NAMED_OPTION_TYPES.get(i, f"SgsOptions{i}")
    for i in range(max(schema.ENUMS["BuiltinOptions"].values()) + 1, 256)
}
_VENDOR_ONLY_TABLES.update({name: () for name in VENDOR_OPTION_TYPES.values()})
_VENDOR_ONLY_TABLES["SgsDmaCoefMatrixOptions"] = (Field(0, "params", "[int16]"),)
# SoftmaxOptions slot 2's table: slot 0 is a float32 (the survey, which cannot tell 4-byte scalars apart,
# found it as an int32): the min of the calibrated LUT input range (SLOT_NAMES)
_VENDOR_ONLY_TABLES["SgsSoftmaxOptionsSlot2"] = (Field(0, "min", "float32"),)
#: TFLite's tables with the vendor's swapped in (the four pad-extended option tables always in
#: SigmaStar's layout: the vendor's fixed.sim writes explicit pads with padding VALID).
TABLES: dict[str, tuple[Field, ...]] = {**schema.TABLES, **_VENDOR_ONLY_TABLES, **_STRUCTURE,
                                        **schema.SGS_TABLES}

#: names of vendor slots whose meaning is established (table, slot) -> name; every other slot found by
#: ``tools/sgs_slot_survey.py`` is ``sgs_slot_<n>`` (its type known, its meaning not). A field of a
#: TFLite table or of an options table is ``sgs_<meaning>`` (every vendor field there starts with
#: ``sgs_``, which is how ``sgs_lower`` drops them); a field of the vendor's nested tables is the
#: plain meaning (``multiplier``). The evidence of
#: each is in docs/model_format.md ("Slot names"); ``tools/sgs_slot_meanings.py`` re-checks the
#: formulas on vendor files and ``tests/test_sgs_slot_names.py`` checks them against the graph.
SLOT_NAMES: dict[tuple[str, int], str] = {
    # fixed.sim: one table per op input, the integer rescale of its codes, y = ((q + offset) * multiplier)
    # >> shift (patching them in a RELU scales / shifts the vendor's fixed output exactly so)
    ("Operator", 9): "sgs_input_rescale",
    # slot 0 of both tables (2 in every input table, 1 in every output table) is what the vendor's compiler
    # reads as the table's "data convert type": patched to 4 or more, it stops on `[_sgs_ipu_parseDataConvertPara]
    # Unsupport data convert type: <the patched value>` (0-3 are taken; what each selects is not established)
    ("SgsOperatorSlot9", 0): "data_convert_type",
    ("SgsOperatorSlot9", 1): "offset",
    ("SgsOperatorSlot9", 2): "multiplier",
    ("SgsOperatorSlot9", 3): "shift",
    # fixed.sim: one table per op output: the zero point of the output's range read as UINT8, and the
    # 15-bit multiplier / shift of the output rescale (RELU, PRELU: of (max_in / 32767) / s_out)
    ("Operator", 10): "sgs_output_rescale",
    ("SgsOperatorSlot10", 0): "data_convert_type",  # as the input tables' slot 0 (above)
    ("SgsOperatorSlot10", 1): "zero_point",
    ("SgsOperatorSlot10", 2): "multiplier",
    ("SgsOperatorSlot10", 3): "shift",
    # Operator.12's slots 1, 2, 4 (0 in every file): the members of the op's run mode the vendor's compiler prints
    # them as (`[_showSubGraphCMDQ] ... +-> u32Fence / s32DecodeId / s32Size : <the patched value>`, each patched
    # alone; on every op but the first conv, whose run mode the compiler fills itself); slot 3 shows as both
    # pCmdEntry and s32Offset, so it keeps its number
    ("SgsOpInfo", 1): "fence",
    ("SgsOpInfo", 2): "decode_id",
    ("SgsOpInfo", 4): "size",
    # fixed.sim: 1 on a CONV_2D whose output a MAX_POOL_2D / AVERAGE_POOL_2D reads, absent elsewhere
    ("Operator", 13): "sgs_feeds_pool",
    # fixed.sim: per input, the 3x3 int16 matrix (Q10) and 3 offsets from pixels to the input's codes
    # (a permutation for BGR input, YUV->RGB coefficients for YUV_NV12; vendor_fixed/boundary.py)
    ("SgsSubGraphEntry", 0): "pixel_transform",
    # CONV_2D's IPU program (fixed.sim; empty in float.sim)
    # input channels run in passes of slot 11, each pass in tiles of slot 10; output channels in tiles of
    # slot 12, passes of slot 13 (vendor_fixed/program.py; 0 stands for 16 channels)
    ("Conv2DOptions", 10): "sgs_in_channels_per_tile",    # the int8 weight buffer's input tile (0: 16)
    ("Conv2DOptions", 11): "sgs_in_channels_per_pass",
    ("Conv2DOptions", 12): "sgs_out_channels_per_tile",   # the int8 weight buffer's output tile
    ("Conv2DOptions", 13): "sgs_out_channels_per_pass",
    # the IPU conv mode: 4 (pixel mode) on a conv reading the graph's image input, else 0 (patched, the
    # vendor's simulator asserts ``s32PartitionConvIpuMode == EN_IPU_CONV_MODE_PIXELMODE``)
    ("Conv2DOptions", 14): "sgs_ipu_conv_mode",
    ("Conv2DOptions", 16): "sgs_tiling_mode",             # 1 exactly when one tile holds the whole output
    ("Conv2DOptions", 18): "sgs_in_tile_width",           # W, or (out_tile_width - 1) * stride + kernel
    ("Conv2DOptions", 19): "sgs_in_tile_height",          # H, or (out_tile_height - 1) * stride + kernel
    ("Conv2DOptions", 22): "sgs_out_tile_width",
    ("Conv2DOptions", 23): "sgs_out_tile_height",
    # the on-chip buffer (32 slots of 512 rows x 16 bytes, vendor_fixed/program.py): four regions, in this
    # order, each its size in slots and the first slot of each of its entries: slot 28 / 33 (entries of 4;
    # what the region holds is not established), the weights 25 / 30 (entries of 2), the input tile 26 / 31
    # (entries of 1) and the output tile 27 / 32 (entries of the output's bytes per code; an INT16
    # output's region comes before the input's)
    ("Conv2DOptions", 25): "sgs_weight_slots",
    ("Conv2DOptions", 26): "sgs_input_slots",
    ("Conv2DOptions", 27): "sgs_output_slots",
    ("Conv2DOptions", 28): "sgs_region_28_slots",
    ("Conv2DOptions", 30): "sgs_weight_entry_slots",
    ("Conv2DOptions", 31): "sgs_input_entry_slots",
    ("Conv2DOptions", 32): "sgs_output_entry_slots",
    ("Conv2DOptions", 33): "sgs_region_28_entry_slots",
    # a fifth region at the top of the buffer, reserved exactly on a conv that hosts a fused op (one the vendor
    # runs inside it: Operator sgs_op_class 2 / sgs_fused_input): 29 its size in slots (8 there, else 0), 34
    # its one entry (32 - 29,); the other four regions lie below it
    ("Conv2DOptions", 29): "sgs_fused_op_slots",
    ("Conv2DOptions", 34): "sgs_fused_op_entry_slots",
    ("Conv2DOptions", 35): "sgs_bias_shift",              # k: the bias codes are the bias >> k
    ("Conv2DOptions", 37): "sgs_total_shift",             # N - k: M (bias row 1) ~ m * 2**N
    # 2 on a CONV_2D that is a depthwise conv the vendor runs as a conv (weights zero off the diagonal; with
    # C > 16 the int8 buffer holds only the diagonal 16-channel blocks: model/sgs_weights.py), else absent
    ("Conv2DOptions", 38): "sgs_depthwise_mode",
    ("Conv2DOptions", 39): "sgs_mac_count",               # kh*kw*OHv*OWv*ceil16(Cin)*ceil16(Cout)
    ("Conv2DOptions", 40): "sgs_weight_dma_chunks",
    ("SgsConv2DOptionsSlot40", 0): "byte_offset",     # into the weight buffer
    ("SgsConv2DOptionsSlot40", 1): "byte_count",      # the chunks' byte counts add up to the buffer
    ("SgsConv2DOptionsSlot40", 2): "blocks_32_bytes",  # byte_count / 32
    # one chunk per (input pass, output tile, input tile of the pass): 3 = 1 on a chunk of no bytes (the
    # last pass's padding; the depthwise rewrite's off-diagonal tiles), 4 = 1 on the input's last tile
    # (and the padding; the rewrite: its diagonal tile), 5 = 1 on every input tile but the first, the
    # accumulation going on (the rewrite: the tiles after the diagonal)
    ("SgsConv2DOptionsSlot40", 3): "empty",
    ("SgsConv2DOptionsSlot40", 4): "last_input_tile",
    ("SgsConv2DOptionsSlot40", 5): "accumulate",
    # DEPTHWISE_CONV_2D's (the conv's slots one further on; 11 = 13 the channel tile, 12 = 14 a pass's channels)
    ("DepthwiseConv2DOptions", 11): "sgs_in_channels_per_tile",
    ("DepthwiseConv2DOptions", 12): "sgs_in_channels_per_pass",
    ("DepthwiseConv2DOptions", 13): "sgs_out_channels_per_tile",
    ("DepthwiseConv2DOptions", 14): "sgs_out_channels_per_pass",
    # named by the vendor's own assertions when patched (docs/model_format.md, "Slot names"): 15 is checked as
    # s32PartitionConvIpuMode (2 on every depthwise), 17 as split_mode.kb_split_mode (1, EN_TILE_KB_MODE_FFdido)
    ("DepthwiseConv2DOptions", 15): "sgs_partition_conv_ipu_mode",
    ("DepthwiseConv2DOptions", 17): "sgs_kb_split_mode",
    ("DepthwiseConv2DOptions", 19): "sgs_in_tile_width",
    ("DepthwiseConv2DOptions", 20): "sgs_in_tile_height",
    ("DepthwiseConv2DOptions", 23): "sgs_out_tile_width",
    ("DepthwiseConv2DOptions", 24): "sgs_out_tile_height",
    # the buffer regions (the conv's 25-27 / 30-32 / 34 one slot further on; no region-28 size is written):
    # the weights 26 / 31 (entries of 2 slots), the input tile 27 / 32 (entries of 6), the output tile 28 / 33
    # (entries of the output's bytes per code), their entries disjoint; the fused-op region (the conv's 29 / 34):
    # 30 its size in slots (8 on a depthwise hosting a fused op, absent elsewhere), 35 its one entry (32 - 30,):
    # (24,) there, else (32,); every other entry below it
    ("DepthwiseConv2DOptions", 26): "sgs_weight_slots",
    ("DepthwiseConv2DOptions", 27): "sgs_input_slots",
    ("DepthwiseConv2DOptions", 28): "sgs_output_slots",
    ("DepthwiseConv2DOptions", 30): "sgs_fused_op_slots",
    ("DepthwiseConv2DOptions", 31): "sgs_weight_entry_slots",
    ("DepthwiseConv2DOptions", 32): "sgs_input_entry_slots",
    ("DepthwiseConv2DOptions", 33): "sgs_output_entry_slots",
    ("DepthwiseConv2DOptions", 35): "sgs_fused_op_entry_slots",
    ("DepthwiseConv2DOptions", 36): "sgs_bias_shift",
    ("DepthwiseConv2DOptions", 38): "sgs_total_shift",
    ("DepthwiseConv2DOptions", 41): "sgs_weight_dma_chunks",
    ("SgsDepthwiseConv2DOptionsSlot41", 0): "byte_offset",
    ("SgsDepthwiseConv2DOptionsSlot41", 1): "byte_count",
    ("SgsDepthwiseConv2DOptionsSlot41", 2): "blocks_32_bytes",
    # one chunk per channel tile of a pass (slot 12's channels), the last pass padded with chunks of no bytes:
    # 3 = 1 on those (absent elsewhere, as the conv's `empty`), 4 = 1 on the last tile and the padding (slot 5,
    # 1 on every chunk but the first that holds bytes: unnamed)
    ("SgsDepthwiseConv2DOptionsSlot41", 3): "empty",
    ("SgsDepthwiseConv2DOptionsSlot41", 4): "last_input_tile",
    # MAX_POOL_2D / AVERAGE_POOL_2D's tile (0 in either: the vendor's simulator asserts on the output
    # tile's width / height, ``w1_dag_br`` / ``h1_dag_br``, and the tile depth, ``tile_do_aligned``)
    ("Pool2DOptions", 10): "sgs_out_tile_width",
    ("Pool2DOptions", 11): "sgs_out_tile_height",
    ("Pool2DOptions", 12): "sgs_tile_channels",
    # MAX_POOL_2D's input tile: the buffer slots it takes (ceil(input tile bytes / 8 KB), the channels rounded
    # up to 16) and their numbers ((30,) for one, else 0 .. n - 1): 14 of 14 distinct pools of the session
    ("Pool2DOptions", 13): "sgs_input_slots",
    ("Pool2DOptions", 17): "sgs_input_entry_slots",
    # ADD / SUB (fixed.sim): one table; with slot 0 = 22 (two operands rescaled) M_i = round(s_i / s_out *
    # 2**shift) (SUB: M1 negative); with slot 0 = 8 (a folded constant) M0 = round(2 s_0 / s_out * 2**shift)
    # and M1 = -1
    ("AddOptions", 1): "sgs_rescale",
    ("SgsAddOptionsSlot1", 1): "multiplier_0",
    ("SgsAddOptionsSlot1", 2): "multiplier_1",
    ("SgsAddOptionsSlot1", 3): "shift",
    ("SubOptions", 1): "sgs_rescale",
    ("SgsSubOptionsSlot1", 1): "multiplier_0",
    ("SgsSubOptionsSlot1", 2): "multiplier_1",
    ("SgsSubOptionsSlot1", 3): "shift",
    # LEAKY_RELU: two tables {multiplier, shift}: alpha (round(alpha * 2**shift)) and F = 1
    ("LeakyReluOptions", 1): "sgs_rescale",
    ("SgsLeakyReluOptionsSlot1", 1): "multiplier",
    ("SgsLeakyReluOptionsSlot1", 5): "shift",
    # RELU / RELU6 (type 201): the multiplier / shift of F = max(1, |min_in| / max_in)
    # RELU / RELU6: the upper clamp of the output codes (32767 in every file; patched lower, the vendor's
    # outputs are min(output, that code) exactly)
    ("SgsActivationOptions", 1): "sgs_output_max",
    ("SgsActivationOptions", 2): "sgs_input_ratio",
    ("SgsActivationOptionsSlot2", 1): "multiplier",
    ("SgsActivationOptionsSlot2", 5): "shift",
    # PRELU (type 202): table 0 the alpha shift, table 1 F's multiplier / shift (as RELU's)
    ("SgsPreluOptions", 0): "sgs_rescale",
    ("SgsPreluOptionsSlot0", 1): "multiplier",
    ("SgsPreluOptionsSlot0", 5): "shift",
    # LOGISTIC / TANH / SOFTMAX lookup tables (int16, Q15): exactly round(32767 f(x0 + i * step)), the
    # "scaled" ones divided by f at their last point (docs/model_format.md, "Slot names")
    ("SgsLogisticOptions", 0): "sgs_lut",
    ("SgsLogisticOptionsSlot0", 0): "tanh_lut_65",    # tanh(1 + i / 32), x in [1, 3]
    ("SgsLogisticOptionsSlot0", 1): "scaled_tanh_lut_257",  # tanh(i / 256) / tanh(1), x in [0, 1]
    ("SgsTanhOptions", 0): "sgs_lut",
    ("SgsTanhOptionsSlot0", 0): "tanh_lut_65",        # tanh(2 + i / 16), x in [2, 6]
    ("SgsTanhOptionsSlot0", 1): "scaled_tanh_lut_257",  # tanh(i / 128) / tanh(2), x in [0, 2]
    ("SoftmaxOptions", 1): "sgs_lut",
    ("SgsSoftmaxOptionsSlot1", 0): "exp_lut_65",      # exp(-2 + i / 32), x in [-2, 0]
    ("SgsSoftmaxOptionsSlot1", 1): "exp_lut_257",     # exp(-8 + i / 32), x in [-8, 0]
    # the tables' fixed-point record (docs/vendor_fixed_point.md, LOGISTIC / TANH and SOFTMAX: reproduced
    # exactly with these values; which slot a region reads: patched one at a time in the vendor's fixed
    # simulator on a sweep of every input code). M, Q: the input scale's 15-bit mantissa form, Q = 14 -
    # floor(log2 s), M = floor(s 2**Q + 1/2); values "in Q" are reals times 2**Q.
    **{(t, slot): name for t in ("SgsLogisticOptionsSlot0", "SgsTanhOptionsSlot0", "SgsSoftmaxOptionsSlot1")
       for slot, name in ((3, "fixed_point"),)},
    **{(t, slot): name for t in ("SgsLogisticOptionsSlot0Slot3", "SgsTanhOptionsSlot0Slot3",
                                 "SgsSoftmaxOptionsSlot1Slot3")
       for slot, name in (
           (4, "input_multiplier"),        # M
           (7, "lut_65_index_shift"),      # LOGISTIC / TANH Q - 4, SOFTMAX Q - 5: a 65-table segment per 2**shift
           (8, "lut_257_index_shift"),     # LOGISTIC / TANH Q - 7, SOFTMAX Q - 5
           (13, "lut_boundary"),           # where the 257-table's range meets the 65-table's: 2.0 (SOFTMAX -2.0) in Q
           (12, "lut_boundary_2"),         # the same value (SOFTMAX reads it too; LOGISTIC: patched, same outputs)
           (15, "lut_65_offset"),          # added before the 65-table's lookup: -2.0 (SOFTMAX +2.0) in Q
           (17, "frac_bits"),              # Q (17 .. 20 all hold it)
           (18, "frac_bits_2"),
           (19, "frac_bits_3"),
           (20, "frac_bits_4"),
           (25, "lut_65_multiplier"),      # the 65-table's interpolation times multiplier >> shift (16384 / 14;
           (27, "lut_65_shift"),           # TANH with an output scale other than 1/32767: times its ratio)
           (26, "lut_257_multiplier"),     # the 257-table's: LOGISTIC 24956 / 15, TANH 31589 / 15, SOFTMAX
           (28, "lut_257_shift"),          # 17739 / 17 (round(32768 tanh 1), tanh 2, 2**17 e**-2)
       )},
    ("SgsLogisticOptionsSlot0Slot3", 11): "line_start",    # 6.0 in Q: above it the line (end of the 65-table)
    ("SgsTanhOptionsSlot0Slot3", 11): "line_start",
    ("SgsSoftmaxOptionsSlot1Slot3", 14): "line_start",     # -10.0 in Q: below it the line
    ("SgsSoftmaxOptionsSlot1Slot3", 16): "lut_257_offset",  # +10.0 in Q, added before the 257-table's lookup
    ("SgsLogisticOptionsSlot0Slot2", 0): "line_slope",     # the line beyond 6.0: LOGISTIC 8, TANH 1
    ("SgsTanhOptionsSlot0Slot2", 0): "line_slope",
    # SOFTMAX: the calibrated range of its LUT's input (the vendor calibrator's log/softmax_lut_range.txt):
    # min over the calibration inputs of min(x) - max(x) over the whole tensor, a float32 (the max, 0, is
    # not stored)
    ("SoftmaxOptions", 2): "sgs_lut_range",
    ("SgsSoftmaxOptionsSlot2", 0): "min",
    ("SgsSoftmaxOptionsSlot1Slot2", 2): "lut_65_first_value",  # 4435 = exp_lut_65[0] = round(32767 e**-2)
    ("SgsSoftmaxOptionsSlot1Slot2", 3): "line_start_value",    # 11 = exp_lut_257[0]: E0 of the line below -10
    # LOGISTIC's output: q = min((((s T M + 2**(shift-1)) >> shift) + offset + 1) >> final_shift, 32767), s T the
    # signed 32767 tanh(|x| / 2) of the tables, M / 2**shift = (1/32767) / s_out as a 15-bit form, offset =
    # round(1 / s_out) (the code of 1.0), final_shift = 1 (exact on the vendor's simulator: tests)
    ("SgsLogisticOptions", 1): "sgs_output_rescale",
    ("SgsLogisticOptionsSlot1", 1): "multiplier",
    ("SgsLogisticOptionsSlot1", 3): "shift",
    ("SgsLogisticOptionsSlot1", 4): "offset",
    ("SgsLogisticOptionsSlot1", 5): "final_shift",
    # CONCATENATION whose inputs the vendor reshapes to the output's rank (row-major; e.g. (1, 16, 16, 32) +
    # (1, 8, 8, 96) -> (1, 896, 16)): the number of inputs and, 10 int32 per input (16 inputs), each input's
    # shape as reshaped (the output's shape with the axis dimension its own); 0 / zeros when no input is
    # reshaped (in float, cmodel_float and fixed files alike)
    ("ConcatenationOptions", 2): "sgs_reshaped_input_count",
    ("ConcatenationOptions", 4): "sgs_reshaped_input_shapes",
    # MUL (fixed.sim): two tables; p = (x1 x2 + 2**(k1-1)) >> k1, q = (p M + 2**(k2-1)) >> k2 + zp: table 0's
    # slot 5 = k1, table 1's slot 1 = M = round(s1 s2 / s_out 2**(k1 + k2)), slot 3 = k2 (-1 where unused)
    ("MulOptions", 1): "sgs_rescale",
    ("SgsMulOptionsSlot1", 1): "multiplier",
    ("SgsMulOptionsSlot1", 3): "shift",
    ("SgsMulOptionsSlot1", 5): "product_shift",
}


def slot_of(table: str, name: str) -> int:
    """The vtable slot of a named vendor field (``slot_of("Conv2DOptions", "sgs_bias_shift")`` -> 35)."""
    for (t, slot), n in SLOT_NAMES.items():
        if t == table and n == name:
            return slot
    raise KeyError(f"{table} has no vendor slot named {name!r} (sgs_dialect.SLOT_NAMES)")


def _with_vendor_slots(tables: dict[str, tuple[Field, ...]]) -> dict[str, tuple[Field, ...]]:
    """``tables`` plus every slot of :data:`sgs_slots.SLOTS` (the vendor's extra options slots, typed)."""
    out = dict(tables)
    for table, slots in sgs_slots.SLOTS.items():
        base = out.get(table, ())
        taken = {f.slot for f in base}
        extra = tuple(Field(slot, SLOT_NAMES.get((table, slot), f"sgs_slot_{slot}"), t)
                      for slot, t in slots if slot not in taken)
        out[table] = tuple(sorted(base + extra, key=lambda f: f.slot))
    return out


#: the tables without the surveyed slots (what ``tools/sgs_slot_survey.py`` starts from)
BASE_TABLES = TABLES
TABLES = _with_vendor_slots(TABLES)
#: the vendor's own fields of each table TFLite also has (what a TFLite model leaves unset)
VENDOR_FIELDS: dict[str, tuple[Field, ...]] = {
    t: tuple(f for f in fields if f.name not in {g.name for g in schema.TABLES.get(t, ())} and
             f.name not in {g.name for g in schema.SGS_TABLES.get(t, ())})
    for t, fields in TABLES.items()}
#: key of a decoded vendor table (and of ``extra`` / options) holding the names of the fields its
#: file holds, in the order they lie in the table (the vendor writes many zeros explicitly): the
#: writer writes exactly these fields, in this order, plus any other whose value is not the default,
#: so a re-encoded table has the vendor's own vtable (docs/model_format.md, "Round trip and re-encoding")
LAYOUT = "sgs_layout"
#: key of the decoded Model (``Model.extra``) listing the vtable slots of a vendor file that no
#: schema table types (none in the files surveyed): such a model is written back only unmodified
UNTYPED = "sgs_untyped_slots"
#: the order the vendor's writer makes a table's children in (back to front, so the last made lies
#: first after the table), where it is not by slot: established by mapping every object of the
#: vendor's files (docs/model_format.md, "The compiler's size check")
CHILD_ORDER: dict[str, tuple[int, ...]] = {
    "Model": (1, 2, 6, 4, 7, 3, 5, 8),
    "SubGraph": (3, 0, 1, 2, 4, 6, 7, 10, 8, 9),
}
#: (table, slot) of child tables the vendor writes in two steps: the child's own children before
#: the parent's other children, the child table itself after them (LOGISTIC's options)
LATE_TABLES: frozenset[tuple[str, int]] = frozenset({("SgsLogisticOptions", 0)})
#: vectors the vendor aligns to 16 bytes (their data; empty in every file seen, 2,253 of them
#: across 199 fixed files, every one at a multiple of 16); other vectors align to their element size
VECTOR_ALIGNMENT: dict[tuple[str, str], int] = {
    ("SgsModelInfo", "list_0"): 16, ("SgsModelInfo", "list_2"): 16, ("SgsModelInfo", "list_3"): 16,
    ("SgsQuantExtra", "list_0"): 16,
}
#: (table, field) written even when it holds the default, whatever ``LAYOUT`` says
ALWAYS_WRITTEN: frozenset[tuple[str, str]] = frozenset()
#: options tables without fields: the vendor points at them without writing a table there (PAD's
#: PadOptions offset, and those of ABS, NEG, MAXIMUM, MINIMUM, TRANSPOSE, land on a vtable); read
#: as empty options, never followed.
UNFOLLOWED_TABLES = frozenset(
    t for t in schema.ENUMS["BuiltinOptions"] if t != "NONE" and not TABLES[t])
ENUMS: dict[str, dict[str, int]] = {
    **schema.ENUMS,
    "BuiltinOptions": {**schema.ENUMS["BuiltinOptions"],
                       **{t: i for i, t in VENDOR_OPTION_TYPES.items()}},
}


def _u32(data: bytes, pos: int) -> int | None:
    if pos < 0 or pos + 4 > len(data):
        return None
    return struct.unpack_from("<I", data, pos)[0]


def _model_slot(data: bytes, slot: int) -> int | None:
    """Absolute position of Model field ``slot`` (None when absent or out of the file)."""
    root = _u32(data, 0)
    if root is None or root + 4 > len(data):
        return None
    vtable = root - struct.unpack_from("<i", data, root)[0]
    if vtable < 0 or vtable + 4 > len(data):
        return None
    vt_size = struct.unpack_from("<H", data, vtable)[0]
    if 4 + 2 * slot + 2 > vt_size or vtable + vt_size > len(data):
        return None
    off = struct.unpack_from("<H", data, vtable + 4 + 2 * slot)[0]
    return root + off if off else None


def _string_at(data: bytes, field_pos: int | None) -> str | None:
    """The string a uoffset field points at, if it is one (length fits, UTF-8)."""
    if field_pos is None:
        return None
    rel = _u32(data, field_pos)
    if rel is None:
        return None
    target = field_pos + rel
    n = _u32(data, target)
    if n is None or n > 4096 or target + 4 + n > len(data):
        return None
    try:
        return bytes(data[target + 4:target + 4 + n]).decode("utf-8")
    except UnicodeDecodeError:
        return None


def detect(data: bytes) -> str:
    """The dialect of a TFL3/SIM2 FlatBuffer: ``"tflite"`` or one of :data:`VENDOR_DIALECTS`.

    Decided from the bytes: the Model description and the Model's slot layout.
    """
    description = _string_at(data, _model_slot(data, 3))
    slot6 = _model_slot(data, 6)
    sdk_version = _string_at(data, slot6)
    if description is not None and description.lower().startswith("sigmastar"):
        dialect = DIALECT_OF_DESCRIPTION.get(description)
        if dialect is None:
            raise ModelError(
                f"unknown SigmaStar model dialect: description {description!r}; this package reads "
                f"{', '.join(repr(d) for d in DESCRIPTIONS.values())} (SGS_IPU_SDK 1.x) and plain TFLite")
        if sdk_version is None or not sdk_version:
            raise ModelError(
                f"unknown SigmaStar model dialect: description {description!r} but Model slot 6 is not "
                f"the SDK version string of the vendor layout")
        return dialect
    if sdk_version and sdk_version[:1].isdigit() and ("verified" in sdk_version or sdk_version.count(".") >= 2):
        # a TFLite file holds a vector of Metadata tables in slot 6, never a version string
        raise ModelError(
            f"unknown model dialect: Model slot 6 holds the SDK version string {sdk_version!r} as "
            f"SigmaStar's files do, but the description is {description!r}, not one the vendor writes")
    return TFLITE
