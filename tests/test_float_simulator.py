"""float_simulator: the vendor's methods, detail dicts and ValueError rules."""
from __future__ import annotations

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom.model.builder import ModelBuilder


@pytest.fixture()
def two_input_model(tmp_path):
    b = ModelBuilder()
    x = b.input("image", (1, 4, 4, 3))
    y = b.input("bias", (1, 4, 4, 3))
    s = b.op("ADD", [x, y], {"fused_activation_function": "RELU"}, name="sum")
    b.output(s, b.op("MUL", [s, s], {"fused_activation_function": "NONE"}, name="square"))
    path = tmp_path / "two_float.sim"
    b.save(path)
    return path


def test_details_and_run(two_input_model):
    sim = calibrator_custom.float_simulator(str(two_input_model))
    assert sim.class_type == "FLOAT"
    ins = sim.get_input_details()
    assert [d["index"] for d in ins] == [0, 1]
    assert [d["name"] for d in ins] == ["image", "bias"]
    assert ins[0]["shape"].dtype == np.int32 and list(ins[0]["shape"]) == [1, 4, 4, 3]
    assert ins[0]["dtype"] is np.float32
    outs = sim.get_output_details()
    assert [d["name"] for d in outs] == ["sum", "square"]
    a = np.linspace(-1, 1, 48, dtype=np.float32).reshape(1, 4, 4, 3)
    b = np.full((1, 4, 4, 3), 0.25, np.float32)
    sim.set_input(0, a)
    sim.set_input(1, b)
    sim.invoke()
    expected = np.maximum(a + b, 0)
    got = sim.get_output(0)
    assert got.shape == (1, 4, 4, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=0)
    np.testing.assert_allclose(sim.get_output(1), expected * expected, rtol=1e-7)
    details = sim.get_tensor_details()
    assert {d["name"] for d in details} >= {"image", "bias", "sum", "square"}
    assert all(d["dtype"] == "FLOAT32" for d in details)


def test_errors_are_value_errors(two_input_model, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        calibrator_custom.float_simulator(str(tmp_path / "missing_float.sim"))
    sim = calibrator_custom.float_simulator(two_input_model)
    good = np.zeros((1, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match=r"needs shape \[1, 4, 4, 3\], got \[4, 4, 3\]"):
        sim.set_input(0, good[0])
    with pytest.raises(ValueError, match="needs dtype float32, got float64"):
        sim.set_input(0, good.astype(np.float64))
    with pytest.raises(ValueError, match="index 2 is out of range"):
        sim.set_input(2, good)
    with pytest.raises(ValueError, match="needs a numpy.ndarray"):
        sim.set_input(0, good.tolist())
    sim.set_input(0, good)
    with pytest.raises(ValueError, match=r"set_input was not called for input\(s\) 1 \('bias'\)"):
        sim.invoke()
    with pytest.raises(ValueError, match="call invoke"):
        sim.get_output(0)
    sim.set_input(1, good)
    sim.invoke()
    with pytest.raises(ValueError, match="index 5 is out of range"):
        sim.get_output(5)


def test_corrupt_file_is_a_value_error(tmp_path):
    p = tmp_path / "bad_float.sim"
    p.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\x00" * 8)
    with pytest.raises(ValueError, match="corrupt model"):
        calibrator_custom.float_simulator(p)
