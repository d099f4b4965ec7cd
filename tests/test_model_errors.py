"""Bad model files: each problem raises our ModelError (a ValueError) naming it; nothing else escapes."""
from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import calibrator_custom
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


# ------------------------------------------------------------------------------- dataflow at load
def _conv_model() -> Model:
    """x (1,4,4,2) -> CONV_2D (weights 'w' [3,1,1,2] float32 = 24 bytes, bias 'b') -> RELU -> out."""
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 2))
    w = b.constant("w", np.ones((3, 1, 1, 2), np.float32))
    bias = b.constant("b", np.zeros(3, np.float32))
    y = b.op("CONV_2D", [x, w, bias], {"padding": "VALID", "stride_w": 1, "stride_h": 1}, name="conv")
    b.output(b.op("RELU", [y], name="out"))
    return b.build()


def _save(m: Model, tmp_path, name: str = "bad_float.sim") -> str:
    path = tmp_path / name
    path.write_bytes(m.to_bytes())
    return str(path)


def test_empty_weight_buffer_names_file_op_tensor_and_size(tmp_path):
    m = _conv_model()
    m.buffers[m.main.tensors[1].buffer].data = b""  # 'w' loses its 3*1*1*2 float32 = 24 bytes
    path = _save(m, tmp_path)
    with pytest.raises(ModelError) as e:
        float_simulator(path)
    msg = str(e.value)
    assert msg.startswith(path) and "op #0 CONV_2D reads tensor #1 'w'" in msg
    assert "buffer 1 is empty" in msg and "needs 24 bytes" in msg


def test_empty_weight_buffer_refused_by_calibrator_too(tmp_path):
    m = _conv_model()
    m.buffers[m.main.tensors[2].buffer].data = b""  # the bias
    ini = tmp_path / "c.ini"
    ini.write_text("[INPUT_CONFIG]\ninputs=x;\ninput_formats=RAWDATA_F32_NHWC;\n[OUTPUT_CONFIG]\noutputs=out;\n")
    with pytest.raises(ModelError, match=r"op #0 CONV_2D reads tensor #2 'b'.*needs 12 bytes"):
        calibrator_custom.calibrator(_save(m, tmp_path), str(ini))


def test_tensor_no_op_writes(tmp_path):
    m = _conv_model()
    del m.main.operators[0]  # RELU now reads 'conv', which nothing computes
    with pytest.raises(ModelError, match=r"op #0 RELU reads tensor #3 'conv', which is not a graph input, "
                                         r"is written by no op.*no buffer"):
        float_simulator(_save(m, tmp_path))


def test_graph_output_nothing_writes(tmp_path):
    m = _conv_model()
    m.main.outputs = (3, 5)
    m.main.tensors.append(dataclasses.replace(m.main.tensors[4], name="ghost"))
    with pytest.raises(ModelError, match=r"graph output tensor #5 'ghost' which is not a graph input"):
        float_simulator(_save(m, tmp_path))


def test_two_op_cycle_names_both_ops_and_tensors(tmp_path):
    m = _conv_model()
    m.main.operators[0].inputs = (4, 1, 2)  # conv reads relu's output 'out', relu reads conv's output
    with pytest.raises(ModelError) as e:
        float_simulator(_save(m, tmp_path))
    msg = str(e.value)
    assert "the graph has a cycle" in msg
    assert "op #0 CONV_2D reads tensor #4 'out' written by op #1 RELU" in msg
    assert "op #1 RELU reads tensor #3 'conv' written by op #0 CONV_2D" in msg


def test_op_reading_its_own_output_is_a_cycle(tmp_path):
    m = _conv_model()
    m.main.operators[1].inputs = (4,)
    with pytest.raises(ModelError, match=r"cycle: op #1 RELU reads tensor #4 'out' written by op #1 RELU"):
        float_simulator(_save(m, tmp_path))


def test_ops_out_of_order_but_acyclic_still_run(tmp_path):
    m = _conv_model()
    m.main.operators.reverse()  # RELU listed before the CONV_2D it reads: reordered, not refused
    sim = float_simulator(_save(m, tmp_path))
    x = np.arange(32, dtype=np.float32).reshape(1, 4, 4, 2) - 16
    sim.set_input(0, x)
    sim.invoke()
    out = sim.get_output(0)
    assert out.shape == (1, 4, 4, 3) and out.dtype == np.float32
    ref = np.maximum(x.sum(axis=3, keepdims=True), 0)  # all-ones 1x1 weights, zero bias
    np.testing.assert_array_equal(out, np.repeat(ref, 3, axis=3))


def test_two_producers(tmp_path):
    m = _conv_model()
    m.main.operators[1].outputs = (3,)
    with pytest.raises(ModelError, match=r"op #1 RELU writes tensor #3 'conv', which op #0 CONV_2D writes too"):
        float_simulator(_save(m, tmp_path))


def test_op_writing_a_constant_or_an_input(tmp_path):
    m = _conv_model()
    m.main.operators[1].outputs = (1,)
    m.main.outputs = (1,)
    with pytest.raises(ModelError, match=r"op #1 RELU writes tensor #1 'w', which is a constant"):
        float_simulator(_save(m, tmp_path))
    m = _conv_model()
    m.main.operators[1].outputs = (0,)
    with pytest.raises(ModelError, match=r"op #1 RELU writes tensor #0 'x', which is a graph input"):
        float_simulator(_save(m, tmp_path))


def test_graph_input_with_constant_data(tmp_path):
    m = _conv_model()
    m.main.inputs = (1,)
    with pytest.raises(ModelError, match=r"graph input tensor #1 'w' holds constant data"):
        float_simulator(_save(m, tmp_path))


def test_in_memory_model_is_validated_like_a_file():
    m = _conv_model()
    m.main.operators[0].inputs = (0, 9, 2)
    with pytest.raises(ModelError, match="input tensor index 9 is out of range"):
        float_simulator(m)


def test_dimension_beyond_int32():
    m = _conv_model()  # a file cannot hold it (shapes are int32); an in-memory model can
    m.main.tensors[4].shape = (2**31, 1)
    with pytest.raises(ModelError, match=r"tensor #4 'out' has shape \[2147483648, 1\]: a dimension exceeds"):
        float_simulator(m)


# ------------------------------------------------------------------------------- shapes at load and invoke
def test_output_declared_with_another_shape_is_named_at_invoke(tmp_path):
    m = _conv_model()
    m.main.tensors[4].shape = (1, 4, 4, 5)  # RELU keeps the shape [1, 4, 4, 3] of its input
    path = _save(m, tmp_path)
    sim = float_simulator(path)
    sim.set_input(0, np.zeros((1, 4, 4, 2), np.float32))
    with pytest.raises(ModelError) as e:
        sim.invoke()
    msg = str(e.value)
    assert msg.startswith(path) and "op #1 RELU: its output tensor #4 'out' is declared with shape [1, 4, 4, 5]" in msg
    assert "computes [1, 4, 4, 3]" in msg


def _pad_model(pads: np.ndarray) -> Model:
    b = ModelBuilder()
    x = b.input("x", (1, 2, 2, 1))
    y = b.op("PAD", [x, b.constant("pads", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))], name="y")
    b.output(y)
    m = b.build()
    m.buffers[m.main.tensors[1].buffer].data = pads.astype(np.int32).tobytes()
    return m


def test_corrupt_paddings_refused_at_load_not_allocated(tmp_path):
    m = _pad_model(np.array([[0, 0], [2**31 - 1, 1], [1, 1], [0, 0]]))
    with pytest.raises(ModelError, match=r"op #0 PAD: its paddings 'pads' give output shape \[1, 2147483650, 4, 1\], "
                                         r"but output tensor 'y' is declared \[1, 4, 4, 1\]"):
        float_simulator(_save(m, tmp_path))


def test_corrupt_resize_size_refused_at_load(tmp_path):
    b = ModelBuilder()
    x = b.input("x", (1, 2, 2, 1))
    b.output(b.op("RESIZE_BILINEAR", [x, b.constant("size", np.array([4, 4], np.int32))], name="y"))
    m = b.build()
    m.buffers[m.main.tensors[1].buffer].data = np.array([4, 2**31 - 1], np.int32).tobytes()
    with pytest.raises(ModelError, match=r"op #0 RESIZE_BILINEAR: its size 'size' give output shape "
                                         r"\[1, 4, 2147483647, 1\], but output tensor 'y' is declared \[1, 4, 4, 1\]"):
        float_simulator(_save(m, tmp_path))


def test_corrupt_dilation_refused_at_load(tmp_path):
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 1))
    w = b.constant("w", np.ones((1, 3, 3, 1), np.float32))
    y = b.op("CONV_2D", [x, w, b.constant("b", np.zeros(1, np.float32))],
             {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name="y")
    b.output(y)
    m = b.build()
    op = m.main.operators[0]
    op.options = dataclasses.replace(op.options, dilation_h_factor=2**31 - 1)
    # SAME: 8 outputs rows of stride 1 over a kernel spanning (3 - 1) * (2**31 - 1) + 1 = 4294967295 rows need
    # 7 + 4294967295 = 4294967302 padded rows; the undilated width needs 7 + 3 = 10 columns
    with pytest.raises(ModelError, match=r"op #0 CONV_2D: pads the 8x8 input to 4294967302x10 .*more than 64 times"):
        float_simulator(_save(m, tmp_path))


def test_output_declared_with_another_kind_of_type_is_named_at_invoke(tmp_path):
    m = _conv_model()
    m.main.tensors[4].dtype = "INT32"  # RELU computes float32: casting would silently truncate
    sim = float_simulator(_save(m, tmp_path))
    sim.set_input(0, np.zeros((1, 4, 4, 2), np.float32))
    with pytest.raises(ModelError, match=r"op #1 RELU: its output tensor #4 'out' is declared INT32 but the op "
                                         r"computes float32 values"):
        sim.invoke()
