"""Tensor types of the fixed model (quant/qtypes.py), by hand from the rules of docs/op_table.md: every op's
tensors are typed by its rule in ``plan.QUANT_RULES``, so changing the table changes the types."""
from __future__ import annotations

import numpy as np
import pytest

from calibrator_custom import plan
from calibrator_custom.interpreter import Interpreter
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import load_model
from calibrator_custom.ops.conv_layout import CONV_LAYOUTS, conv_like_ops
from calibrator_custom.quant.qtypes import conv_bits, tensor_qtypes

CONV = {"padding": "VALID", "stride_w": 1, "stride_h": 1}


@pytest.fixture(scope="module")
def two_convs(tmp_path_factory):
    """x -> CONV_2D(w1, b1) -> y -> RELU -> z -> CONV_2D(w2, b2) -> out (a model output)."""
    d = tmp_path_factory.mktemp("two_convs")
    b = ModelBuilder()
    x = b.input("x", (1, 2, 2, 1))
    w = np.ones((1, 1, 1, 1), np.float32)
    bias = np.zeros((1,), np.float32)
    y = b.op("CONV_2D", [x, b.constant("w1", w), b.constant("b1", bias)], CONV, name="y")
    z = b.op("RELU", [y], name="z")
    out = b.op("CONV_2D", [z, b.constant("w2", w), b.constant("b2", bias)], CONV, name="out")
    b.output(out)
    b.save(d / "net.sim")
    model = load_model(d / "net.sim")
    interp = Interpreter(model)
    return model, interp.constants, conv_like_ops(model, interp.constants)


def _by_name(model, qtypes) -> dict[str, str]:
    return {t.name: q for t, q in zip(model.main.tensors, qtypes)}


def test_conv_like_rule_types_weights_bias_and_8bit_data(two_convs):
    """8-bit convs: weights INT8, bias INT32; x (a model input read only by an 8-bit conv as data) UINT8;
    y (read by RELU), z (written by RELU, not a conv) and out (a model output) INT16."""
    model, constants, convs = two_convs
    bits = conv_bits(model, convs, None)
    assert bits == {0: 8, 2: 8}
    got = _by_name(model, tensor_qtypes(model, constants, None, bits, convs))
    assert {k: got[k] for k in ("x", "w1", "b1", "y", "z", "w2", "b2", "out")} == {
        "x": "UINT8", "w1": "INT8", "b1": "INT32", "y": "INT16", "z": "INT16",
        "w2": "INT8", "b2": "INT32", "out": "INT16"}


def test_16bit_conv_weights_int16_and_its_data_int16(two_convs):
    model, constants, convs = two_convs
    got = _by_name(model, tensor_qtypes(model, constants, None, {0: 16, 2: 8}, convs))
    assert (got["x"], got["w1"], got["b1"], got["w2"]) == ("INT16", "INT16", "INT32", "INT8")


def test_the_table_is_the_source(two_convs, monkeypatch):
    """With CONV_2D given the default rule, every float tensor is INT16, weights and biases too."""
    model, constants, convs = two_convs
    monkeypatch.delitem(plan.QUANT_RULES, "CONV_2D")
    assert plan.quant_rule("CONV_2D") is plan.DEFAULT_QUANT_RULE
    got = _by_name(model, tensor_qtypes(model, constants, None, {0: 8, 2: 8}, convs))
    assert set(got.values()) == {"INT16"}


def test_rule_table_states_every_rule():
    """Conv-like ops (ops.conv_layout) have the conv-like rule, the detection post-processes run in float,
    anything else has the default rule (docs/op_table.md is generated from the same table)."""
    for op in CONV_LAYOUTS:
        assert plan.quant_rule(op).conv_like and not plan.quant_rule(op).float_outputs
    for op in ("TFLite_Detection_PostProcess", "TFLite_Detection_NMS"):
        r = plan.quant_rule(op)
        assert r.float_outputs and r.float_constants and not r.conv_like
    d = plan.quant_rule("ADD")
    assert d is plan.DEFAULT_QUANT_RULE and not (d.conv_like or d.float_outputs or d.float_constants)
    assert all(r.does for r in plan.QUANT_RULES.values())
