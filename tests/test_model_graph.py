"""Model file layer: lossless round trips of the shared models, SigmaStar's schema extensions."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from calibrator_custom.model import flatbuf
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import Model, load_model
from conftest import require_shared, shared_models
from oprunner import run_model_litert

MODELS = shared_models()


def _ids(paths):
    return [p.name for p in paths]


@pytest.fixture(autouse=True)
def _shared():
    require_shared()


@pytest.mark.parametrize("path", MODELS, ids=_ids(MODELS))
def test_round_trip_is_lossless(path):
    original = load_model(path)
    data = original.to_bytes()
    again = Model.from_bytes(data)
    assert again == original  # graph, options, quantization, custom ops, metadata
    for a, b in zip(original.buffers, again.buffers):
        assert a.data == b.data
    assert again.to_bytes() == data  # writing is deterministic


@pytest.mark.parametrize("path", MODELS, ids=_ids(MODELS))
def test_litert_gives_identical_outputs_on_our_copy(path):
    original_bytes = path.read_bytes()
    ours = load_model(path).to_bytes()
    rng = np.random.default_rng(0)
    from ai_edge_litert import interpreter as litert
    it = litert.Interpreter(model_content=original_bytes)
    feeds = [rng.uniform(-1, 1, d["shape"]).astype(np.float32) for d in it.get_input_details()]
    ref = run_model_litert(original_bytes, feeds, resolver="BUILTIN")
    got = run_model_litert(ours, feeds, resolver="BUILTIN")
    assert len(ref) == len(got)
    for a, b in zip(got, ref):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_written_models_say_tfl3():
    b = ModelBuilder()
    x = b.input("x", (1, 4))
    b.output(b.op("RELU", [x]))
    data = b.build().to_bytes()
    assert data[4:8] == b"TFL3"


def _conv_model(padding: str, pads=(0, 0, 0, 0)) -> Model:
    b = ModelBuilder()
    x = b.input("x", (1, 5, 5, 2))
    w = b.constant("w", np.ones((3, 3, 3, 2), np.float32))
    bias = b.constant("b", np.zeros(3, np.float32))
    opts = {"padding": padding, "stride_w": 1, "stride_h": 1, "padding_left": pads[0],
            "padding_right": pads[1], "padding_top": pads[2], "padding_bottom": pads[3]}
    b.output(b.op("CONV_2D", [x, w, bias], opts, output_shapes=[(1, 5, 5, 3)], output_dtypes=["FLOAT32"]))
    return b.build()


@pytest.mark.parametrize("padding", ["CAFFE", "ONNXINSIDE", "ONNXOUTSIDE"])
def test_sigmastar_explicit_pads_round_trip_in_their_layout(padding):
    model = _conv_model(padding, (1, 1, 1, 1))
    data = model.to_bytes()
    again = Model.from_bytes(data)
    assert again == model
    opt = again.main.operators[0].options
    assert (opt.padding, opt.padding_left, opt.padding_right, opt.padding_top, opt.padding_bottom) == \
        (padding, 1, 1, 1, 1)
    # SigmaStar's layout puts padding_left in slot 6 of Conv2DOptions (TFLite's quantized_bias_type slot).
    sgs = {f.slot: f.name for f in flatbuf.table_fields("Conv2DOptions", sgs=True)}
    assert sgs[6] == "padding_left" and sgs[9] == "padding_bottom"


def test_sim2_identifier_reads_sigmastar_layout():
    model = _conv_model("CAFFE", (2, 0, 1, 0))
    data = model.to_bytes(file_identifier=b"SIM2")
    assert data[4:8] == b"SIM2"
    again = Model.from_bytes(data)
    assert again.file_identifier == b"SIM2"
    opt = again.main.operators[0].options
    assert (opt.padding_left, opt.padding_right, opt.padding_top, opt.padding_bottom) == (2, 0, 1, 0)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    model = _conv_model("SAME")
    path = tmp_path / "m_float.sim"
    model.save(path)
    assert load_model(path) == Model.from_bytes(model.to_bytes())
    assert [p.name for p in tmp_path.iterdir()] == ["m_float.sim"]


def test_topological_order_reorders_ops_written_out_of_order():
    b = ModelBuilder()
    x = b.input("x", (2,))
    y = b.op("RELU", [x])
    z = b.op("RELU6", [y])
    b.output(z)
    model = b.build()
    model.main.operators.reverse()
    assert model.main.topological_order() == [1, 0]


def _two_convs_sharing(shared: bool) -> Model:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 2))
    w1 = b.constant("w1", np.ones((2, 1, 1, 2), np.float32))
    w2 = w1 if shared else b.constant("w2", np.ones((2, 1, 1, 2), np.float32))
    bias = b.constant("b", np.zeros(2, np.float32))
    y = b.op("CONV_2D", [x, w1, bias], {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name="y")
    z = b.op("CONV_2D", [y, w2, bias], {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name="z")
    b.output(z)
    return b.build()


def test_set_constant_rewrites_a_buffer_no_other_tensor_reads():
    m = _two_convs_sharing(False)
    g = m.main
    i = g.tensor_index("w1")
    before, count = g.tensors[i].buffer, len(m.buffers)
    m.set_constant(i, np.full((2, 1, 1, 2), 3.0, np.float32))
    assert g.tensors[i].buffer == before and len(m.buffers) == count  # no buffer left without a tensor
    got = m.tensor_data(g.tensors[i])
    assert got.shape == (2, 1, 1, 2) and got.dtype == np.float32
    np.testing.assert_array_equal(got, 3.0)
    np.testing.assert_array_equal(m.tensor_data(g.tensors[g.tensor_index("w2")]), 1.0)


def test_set_constant_of_a_shared_buffer_leaves_the_other_tensor_its_value():
    m = _two_convs_sharing(True)
    g = m.main
    i = g.tensor_index("w1")
    conv_weights = [op.inputs[1] for op in g.operators]
    assert conv_weights[0] == conv_weights[1] == i  # one tensor read by both convs
    bias = g.tensor_index("b")
    m.set_constant(bias, np.full(2, 0.5, np.float32))  # the bias tensor is read twice, its buffer once
    np.testing.assert_array_equal(m.tensor_data(g.tensors[bias]), 0.5)
    # a buffer two tensors point at: the rewritten tensor gets its own
    t = g.tensors[bias]
    g.tensors.append(dataclasses.replace(t, name="b_alias"))
    count = len(m.buffers)
    m.set_constant(bias, np.full(2, 2.0, np.float32))
    assert len(m.buffers) == count + 1 and g.tensors[bias].buffer == count
    np.testing.assert_array_equal(m.tensor_data(g.tensors[-1]), 0.5)
    np.testing.assert_array_equal(m.tensor_data(g.tensors[bias]), 2.0)
