"""Structural checks of calibrator_custom.model.schema."""
from __future__ import annotations

import pytest

from calibrator_custom.model import schema as S

SCALARS = {
    "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32",
    "int64", "uint64", "float32", "float64",
}
ALL_TABLE_SETS = [("TABLES", S.TABLES), ("SGS_TABLES", S.SGS_TABLES)]


def _all_tables():
    for label, tables in ALL_TABLE_SETS:
        for name, fields in tables.items():
            yield f"{label}.{name}", fields


def _resolves(t: str) -> bool:
    if t.startswith("union:"):
        return t[len("union:"):] in S.UNIONS
    if t.startswith("[") and t.endswith("]"):
        inner = t[1:-1]
        return (inner in SCALARS or inner == "string" or inner in S.TABLES
                or (inner in S.ENUMS and inner not in S.UNIONS))
    # a bare union name is the type of a union's "<name>_type" field
    return t in SCALARS or t == "string" or t in S.TABLES or t in S.ENUMS


def test_slots_unique_sorted_dense():
    for name, fields in _all_tables():
        slots = [f.slot for f in fields]
        assert slots == sorted(slots), name
        assert len(set(slots)) == len(slots), name
        assert slots == list(range(len(slots))), name
        names = [f.name for f in fields]
        assert len(set(names)) == len(names), name


def test_fields_are_field_instances():
    for name, fields in _all_tables():
        assert isinstance(fields, tuple), name
        for f in fields:
            assert isinstance(f, S.Field), name


def test_every_type_resolves():
    for name, fields in _all_tables():
        for f in fields:
            assert _resolves(f.type), (name, f)
            if f.type in S.UNIONS:
                assert f.name.endswith("_type"), (name, f)


def test_union_members_are_tables():
    assert S.UNIONS <= set(S.ENUMS)
    for u in S.UNIONS:
        members = S.ENUMS[u]
        assert members["NONE"] == 0, u
        assert S.ENUM_TYPES[u] == "uint8", u
        for m in members:
            if m != "NONE":
                assert m in S.TABLES, (u, m)
        assert sorted(members.values()) == list(range(len(members))), u


def test_union_value_has_type_field_before():
    for name, fields in _all_tables():
        by_slot = {f.slot: f for f in fields}
        for f in fields:
            if f.type.startswith("union:"):
                u = f.type[len("union:"):]
                prev = by_slot[f.slot - 1]
                assert prev == S.Field(f.slot - 1, f.name + "_type", u), (name, f)
            if f.type in S.UNIONS:
                nxt = by_slot[f.slot + 1]
                assert nxt.type == "union:" + f.type and f.name == nxt.name + "_type"


def test_enum_types_and_values():
    assert set(S.ENUM_TYPES) == set(S.ENUMS)
    for name, underlying in S.ENUM_TYPES.items():
        assert underlying in SCALARS and underlying not in ("bool", "float32", "float64")
        values = S.ENUMS[name]
        assert values, name
        assert len(set(values.values())) == len(values), name


def test_defaults():
    for name, fields in _all_tables():
        for f in fields:
            if f.type == "bool":
                assert isinstance(f.default, bool), (name, f)
            elif f.type in ("float32", "float64"):
                assert isinstance(f.default, float), (name, f)
            else:
                assert isinstance(f.default, int) and not isinstance(f.default, bool), (name, f)
                if f.type in S.ENUMS:
                    assert f.default in S.ENUMS[f.type].values(), (name, f)
                elif f.type not in SCALARS:
                    assert f.default == 0, (name, f)


def test_builtin_operator():
    ops = S.ENUMS["BuiltinOperator"]
    assert S.ENUM_TYPES["BuiltinOperator"] == "int32"
    expected = {
        "ADD": 0, "AVERAGE_POOL_2D": 1, "CONCATENATION": 2, "CONV_2D": 3,
        "DEPTHWISE_CONV_2D": 4, "FULLY_CONNECTED": 9, "LOGISTIC": 14,
        "MAX_POOL_2D": 17, "MUL": 18, "RELU": 19, "RESHAPE": 22, "SOFTMAX": 25,
        "CUSTOM": 32, "PAD": 34, "TRANSPOSE": 39, "MEAN": 40, "STRIDED_SLICE": 45,
        "PRELU": 54, "TRANSPOSE_CONV": 67, "QUANTIZE": 114, "HARD_SWISH": 117,
        "BATCH_MATMUL": 126, "PLACEHOLDER_FOR_GREATER_OP_CODES": 127, "GELU": 150,
        "STABLEHLO_ADD": 163, "STABLEHLO_COMPOSITE": 206,
    }
    for k, v in expected.items():
        assert ops[k] == v, k
    assert sorted(ops.values()) == list(range(len(ops)))


def test_tensor_type():
    tt = S.ENUMS["TensorType"]
    names = ["FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL",
             "INT16", "COMPLEX64", "INT8", "FLOAT64", "COMPLEX128", "UINT64",
             "RESOURCE", "VARIANT", "UINT32", "UINT16", "INT4", "BFLOAT16"]
    for i, n in enumerate(names):
        assert tt[n] == i, n
    assert S.ENUM_TYPES["TensorType"] == "int8"


def _field(table, name, tables=S.TABLES):
    (f,) = [f for f in tables[table] if f.name == name]
    return f


@pytest.mark.parametrize("table,name,slot,type_", [
    ("Operator", "opcode_index", 0, "uint32"),
    ("Operator", "builtin_options_type", 3, "BuiltinOptions"),
    ("Operator", "builtin_options", 4, "union:BuiltinOptions"),
    ("Operator", "custom_options", 5, "[uint8]"),
    ("Operator", "builtin_options_2", 12, "union:BuiltinOptions2"),
    ("Tensor", "buffer", 2, "uint32"),
    ("Tensor", "quantization", 4, "QuantizationParameters"),
    ("Tensor", "shape_signature", 7, "[int32]"),
    ("QuantizationParameters", "zero_point", 3, "[int64]"),
    ("QuantizationParameters", "details", 5, "union:QuantizationDetails"),
    ("QuantizationParameters", "quantized_dimension", 6, "int32"),
    ("Model", "version", 0, "uint32"),
    ("Model", "subgraphs", 2, "[SubGraph]"),
    ("Model", "buffers", 4, "[Buffer]"),
    ("Model", "signature_defs", 7, "[SignatureDef]"),
    ("OperatorCode", "deprecated_builtin_code", 0, "int8"),
    ("OperatorCode", "version", 2, "int32"),
    ("OperatorCode", "builtin_code", 3, "BuiltinOperator"),
    ("Buffer", "offset", 1, "uint64"),
    ("SignatureDef", "deprecated_tag", 3, "string"),
    ("SignatureDef", "subgraph_index", 4, "uint32"),
    ("ResizeBilinearOptions", "new_height", 0, "int32"),
    ("ResizeBilinearOptions", "align_corners", 2, "bool"),
    ("Conv2DOptions", "dilation_h_factor", 5, "int32"),
    ("DimensionMetadata", "array_indices", 5, "union:SparseIndexVector"),
])
def test_spot_slots(table, name, slot, type_):
    f = _field(table, name)
    assert (f.slot, f.type) == (slot, type_)


def test_spot_defaults():
    assert _field("OperatorCode", "version").default == 1
    assert _field("Conv2DOptions", "dilation_w_factor").default == 1
    assert _field("DepthwiseConv2DOptions", "dilation_h_factor").default == 1
    assert _field("AddOptions", "pot_scale_int16").default is True
    assert _field("UniqueOptions", "idx_out_type").default == S.ENUMS["TensorType"]["INT32"]
    assert _field("Buffer", "offset").default == 0
    assert _field("Tensor", "is_variable").default is False
    assert _field("SoftmaxOptions", "beta").default == 0.0


def test_builtin_options_union_ids():
    bo = S.ENUMS["BuiltinOptions"]
    assert bo["Conv2DOptions"] == 1
    assert bo["DepthwiseConv2DOptions"] == 2
    assert bo["Pool2DOptions"] == 5
    assert bo["FullyConnectedOptions"] == 8
    assert bo["TransposeConvOptions"] == 49


def test_sigmastar_extensions():
    assert S.ENUMS["Padding"] == {
        "SAME": 0, "VALID": 1, "CAFFE": 2, "ONNXINSIDE": 3, "ONNXOUTSIDE": 4}
    pads = ["padding_left", "padding_right", "padding_top", "padding_bottom"]
    expect = {
        "Conv2DOptions": ["padding", "stride_w", "stride_h", "fused_activation_function",
                          "dilation_w_factor", "dilation_h_factor"],
        "DepthwiseConv2DOptions": ["padding", "stride_w", "stride_h", "depth_multiplier",
                                   "fused_activation_function", "dilation_w_factor",
                                   "dilation_h_factor"],
        "Pool2DOptions": ["padding", "stride_w", "stride_h", "filter_width", "filter_height",
                          "fused_activation_function"],
        "TransposeConvOptions": ["padding", "stride_w", "stride_h"],
    }
    assert set(S.SGS_TABLES) == set(expect)
    for name, shared in expect.items():
        fields = S.SGS_TABLES[name]
        assert [f.name for f in fields] == shared + pads, name
        for f in fields[:len(shared)]:
            assert f == _field(name, f.name), (name, f)
        for f in fields[len(shared):]:
            assert (f.type, f.default) == ("int32", 0), (name, f)


def test_constants():
    assert S.FILE_IDENTIFIERS == (b"TFL3", b"SIM2")
    assert S.ROOT_TABLE == "Model" and S.ROOT_TABLE in S.TABLES
    for t in ("Model", "SubGraph", "Tensor", "Operator", "OperatorCode", "Buffer",
              "Metadata", "SignatureDef", "TensorMap", "QuantizationParameters",
              "SparsityParameters", "DimensionMetadata", "CustomQuantization"):
        assert t in S.TABLES, t
