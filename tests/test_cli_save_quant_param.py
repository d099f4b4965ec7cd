"""sgs-save-quant-param (``python -m calibrator_custom.save_quant_param``): the vendor's quant_param file."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom.cli import save_quant_param as cli
from clitools import read_min_max, run_tool, stderr_lines, tiny_model, write_image, write_ini, write_preprocess

KEYS = {"name", "min", "max", "bit"}


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    """A tiny float model calibrated at L1 by the calibrator command, with everything it needs."""
    d = tmp_path_factory.mktemp("sqp")
    model = tiny_model(d / "tiny_float.sim")
    ini = write_ini(d / "tiny.ini")
    pre = write_preprocess(d / "pre.py")
    for v in (0, 70, 255):
        write_image(d / "imgs" / f"{v}.png", v)
    base = ["-i", d / "imgs", "-m", model, "--input_config", ini, "-n", pre]
    proc = run_tool("calibrator", [*base, "--quant_level", "L1"], d)
    assert proc.returncode == 0, proc.stderr
    return d, d / "tiny_fixed.sim", base


def _save(d, model, *extra):
    return run_tool("save_quant_param", ["-m", model, *extra], d)


def test_json_is_the_vendor_format(fixed):
    d, model, _ = fixed
    proc = _save(d, model)
    out = d / "tiny_fixed.sim.json"  # the vendor writes <model path> + '.json'
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"Quant param saved in {out}\n"
    text = out.read_text()
    items = json.loads(text)
    assert text == json.dumps(items, indent=4)
    assert text.startswith('[\n    {\n        "name": ')
    assert isinstance(items, list) and items
    for it in items:
        assert set(it) == KEYS, it
        assert isinstance(it["name"], str) and it["bit"] in (8, 16)
        assert isinstance(it["min"], list) and isinstance(it["max"], list) and it["min"] and it["max"]
        assert len(it["min"]) == len(it["max"])
        assert all(lo <= hi for lo, hi in zip(it["min"], it["max"]))
    by_name = {it["name"]: it for it in items}
    float_names = {t["name"] for t in calibrator_custom.float_simulator(d / "tiny_float.sim").get_tensor_details()}
    assert set(by_name) <= float_names
    # the image input: pixels 0..255 under mean 127.5, std 127.5 -> [-1, 1] per channel, UINT8
    assert by_name["img"] == {"name": "img", "min": [-1.0] * 3, "max": [1.0] * 3, "bit": 8}
    assert by_name["w"]["bit"] == 8
    weights = np.abs(_const(d, "w"))  # L1: the weight clip is their largest magnitude
    assert weights.shape == (4, 1, 1, 3)
    assert max(max(map(abs, by_name["w"]["min"])), max(map(abs, by_name["w"]["max"]))) == pytest.approx(
        float(weights.max()), rel=1e-6)
    # the output range covers what the calibration saw (log/tensor_min_max.txt)
    lo, hi = map(float, read_min_max(d / "log" / "tensor_min_max.txt")["out"])
    assert by_name["out"]["bit"] == 16
    assert min(by_name["out"]["min"]) <= lo + 1e-6 and max(by_name["out"]["max"]) >= hi - 1e-6


def _const(d, name):
    from calibrator_custom.model.graph import load_model

    m = load_model(d / "tiny_float.sim")
    return m.tensor_data(m.main.tensors[m.main.tensor_index(name)])


def test_pickle_holds_the_same_items(fixed):
    d, model, _ = fixed
    proc = _save(d, model, "--output_mode", "Pickle")
    out = d / "tiny_fixed.sim.pkl"
    assert proc.returncode == 0 and proc.stdout == f"Quant param saved in {out}\n", proc.stderr
    items = pickle.loads(out.read_bytes())
    assert items == cli.vendor_quant_param(calibrator_custom.model.graph.load_model(model))
    assert all(set(it) == KEYS for it in items)


@pytest.mark.parametrize("mode, suffix", [("JSON", ".json"), ("Pickle", ".pkl")])
def test_reimport_gives_a_byte_identical_model(fixed, mode, suffix):
    d, model, base = fixed
    assert _save(d, model, "--output_mode", mode).returncode == 0
    again = d / f"again{suffix}_fixed.sim"
    proc = run_tool("calibrator", [*base, "--quant_level", "L1", "--quant_file", f"{model}{suffix}", "-o", again], d)
    assert proc.returncode == 0, proc.stderr
    assert again.read_bytes() == model.read_bytes()


def test_vendor_rules_on_exported_items(monkeypatch):
    exported = [
        {"name": "a", "min": [0.0], "max": [1.0], "bit": 8},
        {"name": "b", "min": [], "max": [1.0], "bit": 16},               # empty min: dropped
        {"name": "c", "min": [0.5], "max": [], "bit": 8},                # empty max: dropped
        {"name": "d", "min": [-1.0, -2.0], "max": [1.0, 2.0], "bit": 16},
        {"name": "e", "min": [-3.0], "max": [3.0], "bit": 32, "data": np.zeros(2)},   # INT32 -> 16, no data
        {"name": "f", "min": [-3.0], "max": [3.0], "bit": 64, "data": np.zeros(2)},   # our INT64 biases -> 16
    ]
    monkeypatch.setattr(cli, "export_quant_param", lambda model: [dict(it) for it in exported])
    assert cli.vendor_quant_param(None) == [
        {"name": "a", "min": [0.0], "max": [1.0], "bit": 8},
        {"name": "d", "min": [-1.0, -2.0], "max": [1.0, 2.0], "bit": 16},
        {"name": "e", "min": [-3.0], "max": [3.0], "bit": 16},
        {"name": "f", "min": [-3.0], "max": [3.0], "bit": 16},
    ]


def _one_error(proc, *fragments):
    lines = stderr_lines(proc)
    assert proc.returncode == 1 and len(lines) == 1, (proc.returncode, proc.stderr)
    assert lines[0].startswith("sgs-save-quant-param: error: ")
    for f in fragments:
        assert f in lines[0], lines[0]


def test_user_errors(fixed):
    d, model, _ = fixed
    _one_error(_save(d, d / "tiny_float.sim"), "-m", "tiny_float.sim", "is a float model")
    _one_error(_save(d, d / "gone_fixed.sim"), "-m", "gone_fixed.sim", "does not exist")
    _one_error(_save(d, d / "tiny.ini"), "-m: ", "tiny.ini", "not a TFLite/.sim model")
    assert not (d / "tiny_float.sim.json").exists()


def test_usage_errors_and_help(tmp_path):
    proc = run_tool("save_quant_param", [], tmp_path)
    assert proc.returncode == 2 and "-m/--model" in proc.stderr
    proc = run_tool("save_quant_param", ["-m", "x.sim", "--output_mode", "YAML"], tmp_path)
    assert proc.returncode == 2 and "invalid choice: 'YAML'" in proc.stderr
    proc = run_tool("save_quant_param", ["--help"], tmp_path)
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0
    for flag in ("-m", "--model", "--output_mode", "default: JSON", "JSON", "Pickle"):
        assert flag in text, flag


@pytest.mark.slow
def test_shared_model(tmp_path):
    """On a real model: every item names a float tensor, has the vendor's keys and bit, and carries the
    fixed model's own min/max lists (read back with fixed_simulator); re-importing it converts again."""
    from conftest import IMAGES_DIR, MODELS_DIR, require_shared

    require_shared()
    model = MODELS_DIR / "face_detection_short_range.tflite"
    photos = sorted(IMAGES_DIR.glob("*.jpg"))[:3]
    sim = calibrator_custom.float_simulator(model)
    outs = [d["name"] for d in sim.get_output_details()]
    ini = tmp_path / "face.ini"
    ini.write_text("[INPUT_CONFIG]\ninputs=" + sim.get_input_details()[0]["name"] + ";\n"
                   "training_input_formats=RGB;\ninput_formats=RGB;\nquantizations=TRUE;\n"
                   "mean=127.5:127.5:127.5;\nstd_value=127.5;\n[OUTPUT_CONFIG]\noutputs=" + ",".join(outs) + ";\n"
                   "dequantizations=" + ",".join("TRUE" for _ in outs) + ";\n")
    base = ["-i", photos[0].parent, "-m", model, "--input_config", ini, "-n", "face_detection_short_range"]
    with open(tmp_path / "list.txt", "w") as f:
        f.write("\n".join(str(p) for p in photos) + "\n")
    base[1] = tmp_path / "list.txt"
    proc = run_tool("calibrator", [*base, "--quant_level", "L2", "-o", tmp_path / "face_fixed.sim"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    fixed_path = tmp_path / "face_fixed.sim"
    proc = _save(tmp_path, fixed_path)
    assert proc.returncode == 0, proc.stderr
    items = json.loads((tmp_path / "face_fixed.sim.json").read_text())
    float_names = {t["name"] for t in sim.get_tensor_details()}
    details = {d["name"]: d for d in calibrator_custom.fixed_simulator(fixed_path).get_tensor_details()}
    assert len(items) > 50
    for it in items:
        # float tensor names, plus our "<name>_u8": the UINT8 copy an 8-bit conv reads of an INT16 tensor
        assert set(it) == KEYS and (it["name"] in float_names or it["name"].removesuffix("_u8") in float_names), it
        d = details[it["name"]]
        if d["dtype"] == "FLOAT32":  # a dequantized output: its INT16 value is "<name>_int16" before Fix2Float
            d = details[it["name"] + "_int16"]
        assert it["bit"] == (8 if d["dtype"] in ("UINT8", "INT8") else 16)
        if d["dtype"] in ("INT32", "INT64"):  # a bias: its details carry no range; the item has its values' range
            assert len(it["min"]) == len(it["max"]) and all(lo <= hi for lo, hi in zip(it["min"], it["max"]))
            continue
        assert it["min"] == pytest.approx(d["min"]) and it["max"] == pytest.approx(d["max"])
    proc = run_tool("calibrator", [*base, "--quant_file", tmp_path / "face_fixed.sim.json",
                                   "-o", tmp_path / "again_fixed.sim"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"Fixed model at: {tmp_path / 'again_fixed.sim'}"
