"""Bad model files: each problem raises our ModelError (a ValueError) naming it; nothing else escapes."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from calibrator_custom import float_simulator
from calibrator_custom.errors import CalibratorError, ModelError, UnsupportedOpError
from calibrator_custom.interpreter import Interpreter
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import Model, load_model
from conftest import MODELS_DIR, require_shared


def _relu_model() -> Model:
    b = ModelBuilder()
    x = b.input("x", (1, 4))
    b.output(b.op("RELU", [x], output_shapes=[(1, 4)], output_dtypes=["FLOAT32"]))
    return b.build()


def _load(data: bytes) -> None:
    Interpreter(Model.from_bytes(data))


def test_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        float_simulator(tmp_path / "nope_float.sim")


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="not a file"):
        load_model(tmp_path)


@pytest.mark.parametrize("n", [0, 3, 7])
def test_tiny_file(n):
    with pytest.raises(ModelError, match="too short"):
        Model.from_bytes(_relu_model().to_bytes()[:n])


def test_truncated_file():
    data = _relu_model().to_bytes()
    with pytest.raises(ModelError, match="outside the file"):
        Model.from_bytes(data[: len(data) // 2])


def test_random_bytes():
    rng = np.random.default_rng(1)
    data = bytearray(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    data[4:8] = b"TFL3"
    with pytest.raises(ModelError):
        Model.from_bytes(bytes(data))


def test_wrong_identifier():
    data = bytearray(_relu_model().to_bytes())
    data[4:8] = b"ONNX"
    with pytest.raises(ModelError, match=r"file identifier b'ONNX'"):
        Model.from_bytes(bytes(data))


def test_root_offset_outside_file():
    data = bytearray(_relu_model().to_bytes())
    data[0:4] = struct.pack("<I", len(data) + 100)
    with pytest.raises(ModelError, match="outside the file"):
        Model.from_bytes(bytes(data))


def test_buffer_index_out_of_range():
    m = _relu_model()
    m.main.tensors[0].buffer = 99
    with pytest.raises(ModelError, match="names buffer 99"):
        Model.from_bytes(m.to_bytes())


def test_buffer_size_mismatch():
    b = ModelBuilder()
    x = b.input("x", (1, 4))
    w = b.constant("w", np.ones(4, np.float32))
    b.output(b.op("ADD", [x, w], output_shapes=[(1, 4)], output_dtypes=["FLOAT32"]))
    m = b.build()
    m.buffers[1].data = m.buffers[1].data[:8]
    with pytest.raises(ModelError, match="'w'.*needs 16 bytes but buffer 1 holds 8"):
        Model.from_bytes(m.to_bytes())


def test_tensor_index_out_of_range():
    m = _relu_model()
    m.main.operators[0].inputs = (5,)
    with pytest.raises(ModelError, match="input tensor index 5 is out of range"):
        Model.from_bytes(m.to_bytes())


def test_subgraph_input_out_of_range():
    m = _relu_model()
    m.main.inputs = (7,)
    with pytest.raises(ModelError, match="input index 7 is out of range"):
        Model.from_bytes(m.to_bytes())


def test_cycle():
    b = ModelBuilder()
    x = b.input("x", (1, 4))
    y = b.op("RELU", [x], output_shapes=[(1, 4)], output_dtypes=["FLOAT32"])
    z = b.op("RELU6", [y], output_shapes=[(1, 4)], output_dtypes=["FLOAT32"])
    b.output(z)
    m = b.build()
    m.main.operators[0].inputs = (z.index,)  # relu reads relu6's output: a cycle
    with pytest.raises(ModelError, match="cycle"):
        Model.from_bytes(m.to_bytes())


def test_unknown_builtin_op_is_named_at_load():
    m = _relu_model()
    m.operator_codes[0].builtin_code = "LSH_PROJECTION"
    m.operator_codes[0].deprecated_builtin_code = 15
    with pytest.raises(UnsupportedOpError, match=r"op #0: no float kernel for op 'LSH_PROJECTION'; supported ops: .*CONV_2D"):
        Interpreter(Model.from_bytes(m.to_bytes()))


def test_unknown_custom_op_is_named_at_load():
    b = ModelBuilder()
    x = b.input("x", (1, 4))
    b.output(b.op("MyVendorOp", [x], output_shapes=[(1, 4)], output_dtypes=["FLOAT32"]))
    with pytest.raises(UnsupportedOpError, match="op #0: no float kernel for op 'MyVendorOp'"):
        Interpreter(Model.from_bytes(b.build().to_bytes()))


def test_conv_weights_inconsistent_with_input():
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3))
    w = b.constant("w", np.ones((4, 3, 3, 5), np.float32))  # 5 input channels, input has 3
    bias = b.constant("b", np.zeros(4, np.float32))
    b.output(b.op("CONV_2D", [x, w, bias], {"padding": "SAME", "stride_w": 1, "stride_h": 1},
                  output_shapes=[(1, 8, 8, 4)], output_dtypes=["FLOAT32"]))
    with pytest.raises(ModelError, match=r"op #0 CONV_2D: .*5.*3|op #0 CONV_2D: .*3.*5"):
        Interpreter(Model.from_bytes(b.build().to_bytes()))


def test_bad_enum_value():
    m = _relu_model()
    # two encodings that differ only in the (non-default) type byte of tensor 'x'
    m.main.tensors[0].dtype = "INT16"
    data = bytearray(m.to_bytes())
    m.main.tensors[0].dtype = "INT8"
    marked = m.to_bytes()
    diff = [i for i, (a, b) in enumerate(zip(data, marked)) if a != b]
    assert len(diff) == 1
    data[diff[0]] = 200
    with pytest.raises(ModelError, match="not a member of TensorType"):
        Model.from_bytes(bytes(data))


# ------------------------------------------------------------------------------- fuzzing
def _real_model_bytes() -> bytes:
    require_shared()
    return (MODELS_DIR / "face_detection_short_range.fp16.tflite").read_bytes()


_mutation = st.tuples(
    st.sampled_from(["set", "flip", "truncate", "int32"]),
    st.floats(0, 1, exclude_max=True),  # where, as a fraction of the structural part of the file
    st.integers(0, 255),
    st.integers(-(2**31), 2**31 - 1),
)


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutations=st.lists(_mutation, min_size=1, max_size=4), structural=st.booleans())
def test_mutated_real_model_raises_only_model_error(mutations, structural):
    data = bytearray(_real_model_bytes())
    # FlatBuffer metadata (tables, vtables, vectors of offsets) sits around the weights; aim half the
    # mutations at the first and last 8 KiB, where the tables are, and half anywhere.
    for kind, where, byte, word in mutations:
        if structural:
            span = 8192
            pos = int(where * 2 * span)
            pos = pos if pos < span else len(data) - (2 * span - pos)
        else:
            pos = int(where * len(data))
        pos = min(max(pos, 0), len(data) - 1)
        if kind == "set":
            data[pos] = byte
        elif kind == "flip":
            data[pos] ^= 1 << (byte % 8)
        elif kind == "truncate":
            del data[pos:]
            if not data:
                data = bytearray(b"\0")
        else:
            data[pos:pos + 4] = struct.pack("<i", word)
    try:
        _load(bytes(data))
    except CalibratorError:
        pass  # the only acceptable failure
