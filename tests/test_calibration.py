"""The calibrator class: config validation, qtype rules, statistics over invokes."""
from __future__ import annotations

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom.calib import StatsSet
from calibrator_custom.model.builder import ModelBuilder

INI = """[INPUT_CONFIG]
inputs=image;
input_formats=RGB;
mean=127.5:127.5:127.5;
std_value=127.5;
[OUTPUT_CONFIG]
outputs=out;
dequantizations=TRUE;
"""


@pytest.fixture()
def model_path(tmp_path):
    """image -> CONV_2D -> DEPTHWISE_CONV_2D -> ADD(const) -> out; the conv output is also a CONV_2D input."""
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.input("image", (1, 8, 8, 3))
    conv = b.op("CONV_2D", [x, b.constant("conv/w", rng.normal(size=(4, 3, 3, 3)).astype(np.float32)),
                            b.constant("conv/b", np.zeros(4, np.float32))],
                {"padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU"}, name="conv")
    dw = b.op("DEPTHWISE_CONV_2D", [conv, b.constant("dw/w", rng.normal(size=(1, 3, 3, 4)).astype(np.float32)),
                                    b.constant("dw/b", np.zeros(4, np.float32))],
              {"padding": "SAME", "stride_w": 1, "stride_h": 1, "depth_multiplier": 1}, name="dw")
    out = b.op("ADD", [dw, b.constant("offset", np.ones(4, np.float32))], name="out")
    b.output(out)
    path = tmp_path / "tiny_float.sim"
    b.save(path)
    return path


def _ini(tmp_path, extra: str = "") -> str:
    p = tmp_path / "input_config.ini"
    p.write_text(INI + extra)
    return str(p)


def _qtypes(calib) -> dict[str, str]:
    return {d["name"]: d["qtype"] for d in calib.get_tensor_details()}


def test_qtypes_8bit_default(model_path, tmp_path):
    calib = calibrator_custom.calibrator(str(model_path), _ini(tmp_path))
    q = _qtypes(calib)
    assert q["image"] == "UINT8"  # raw pixels
    assert q["conv/w"] == "INT8" and q["dw/w"] == "INT8"
    assert q["conv/b"] == "INT32" and q["dw/b"] == "INT32"
    assert q["conv"] == "UINT8"  # read only by the 8-bit depthwise
    assert q["dw"] == "INT16"  # read by ADD
    assert q["out"] == "INT16" and q["offset"] == "INT16"
    details = calib.get_tensor_details()
    assert all(set(d) == {"name", "shape", "dtype", "qtype"} for d in details)
    assert all(d["dtype"] == "FLOAT32" for d in details)


@pytest.mark.parametrize("mode, conv_w, dw_w, conv_out", [
    ("ALL_INT16", "INT16", "INT16", "INT16"),
    ("CONV2D_INT16", "INT16", "INT8", "UINT8"),
    ("DEPTHWISE_INT16", "INT8", "INT16", "INT16"),
    ("ALL_UINT8", "INT8", "INT8", "UINT8"),
])
def test_qtypes_follow_conv_config(model_path, tmp_path, mode, conv_w, dw_w, conv_out):
    calib = calibrator_custom.calibrator(model_path, _ini(tmp_path, f"[CONV_CONFIG]\ninput_format={mode};\n"))
    q = _qtypes(calib)
    assert (q["conv/w"], q["dw/w"], q["conv"]) == (conv_w, dw_w, conv_out)
    assert q["image"] == "UINT8"


def test_tensor_arrays_upgrade_the_named_conv(model_path, tmp_path):
    calib = calibrator_custom.calibrator(model_path, _ini(tmp_path, "[CONV_CONFIG]\ntensor_arrays=conv;\n"))
    q = _qtypes(calib)
    assert q["dw/w"] == "INT16" and q["conv"] == "INT16"  # the depthwise reading 'conv' is 16-bit
    assert q["conv/w"] == "INT8"


def test_bad_paths_are_value_errors(model_path, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        calibrator_custom.calibrator(str(tmp_path / "nope_float.sim"), _ini(tmp_path))
    with pytest.raises(ValueError, match="missing.ini"):
        calibrator_custom.calibrator(model_path, str(tmp_path / "missing.ini"))
    bad = tmp_path / "bad.ini"
    bad.write_text(INI.replace("inputs=image;", "inputs=photo;"))
    with pytest.raises(ValueError, match="photo"):
        calibrator_custom.calibrator(model_path, str(bad))


def test_statistics_accumulate_over_invokes(model_path, tmp_path):
    calib = calibrator_custom.calibrator(model_path, _ini(tmp_path))
    assert calib.class_type == "FLOAT"
    rng = np.random.default_rng(1)
    seen = {"conv": [], "out": []}
    ref = calibrator_custom.float_simulator(model_path)
    ref.add_observer(lambda i, name, v: seen[name].append(v.copy()) if name in seen else None)
    for _ in range(3):
        x = rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
        for sim in (calib, ref):
            sim.set_input(0, x)
            sim.invoke()
    mm = {d["name"]: d for d in calib.get_minmax()}
    for name, values in seen.items():
        stacked = np.stack(values)
        assert mm[name]["min"] == float(stacked.min()) and mm[name]["max"] == float(stacked.max())
    chn = {d["name"]: d for d in calib.get_chn()}
    stacked = np.stack(seen["out"]).reshape(-1, 4)
    assert chn["out"]["min"] == stacked.min(axis=0).tolist()
    assert chn["out"]["max"] == stacked.max(axis=0).tolist()
    stats = calib.statistics()
    assert stats.num_samples == 3
    path = tmp_path / "tiny.stats.npz"
    calib.save_statistics(path)
    assert StatsSet.load(path) == stats
    calib.reset_statistics()
    assert calib.get_minmax() == []


def test_running_a_rescaled_copy_gathers_its_statistics_then_restores_the_models(model_path, tmp_path):
    from calibrator_custom.errors import InputError
    from calibrator_custom.model.graph import load_model
    copy = load_model(model_path)
    g = copy.main
    w = g.tensor_index("conv/w")
    copy.set_constant(w, np.array(copy.tensor_data(g.tensors[w])) * 2)  # conv's output doubled
    scaled = tmp_path / "scaled_float.sim"
    copy.save(scaled)
    calib = calibrator_custom.calibrator(model_path, _ini(tmp_path))
    x = np.random.default_rng(2).uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    calib.set_input(0, x)
    calib.invoke()
    before = calib.statistics()
    with calib.running(scaled):
        calib.set_input(0, x)
        calib.invoke()
        inside = calib.statistics()
    assert inside.num_samples == 1 and inside.tensors["conv"].max == 2 * before.tensors["conv"].max
    after = calib.statistics()
    assert after == before and calib.model == str(model_path)
    other = ModelBuilder()
    other.output(other.op("RELU", [other.input("image", (1, 8, 8, 3))], name="out"))
    other.save(tmp_path / "other_float.sim")
    with pytest.raises(InputError, match="not a rescaled copy"):
        with calib.running(tmp_path / "other_float.sim"):
            pass
    assert calib.statistics() == before
