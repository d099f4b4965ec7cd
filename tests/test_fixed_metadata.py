"""The calibrator_custom_fixed metadata of a fixed model: a malformed one is a ModelError naming the file,
the key and the tensor (never an AttributeError, never silently reported defaults)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom.errors import ModelError
from calibrator_custom.fixed.metadata import METADATA_NAME
from calibrator_custom.model.graph import Model
import modelfuzz


@pytest.fixture(scope="module")
def fixed_bytes(tmp_path_factory) -> bytes:
    """tiny_cnn (image (1,8,8,3) RGB, mean/std 127.5 -> ... -> prob) converted at L2 by our converter."""
    model, ini = modelfuzz.tiny_cnn()
    return modelfuzz._fixed_bytes(model, ini, tmp_path_factory.mktemp("meta"), "tiny_cnn")


def _meta(data: bytes) -> dict:
    m = Model.from_bytes(data)
    buf = dict(m.metadata)[METADATA_NAME]
    return json.loads(bytes(m.buffers[buf].data))


def _with_meta(data: bytes, tmp_path, raw: bytes) -> str:
    m = Model.from_bytes(data)
    m.buffers[dict(m.metadata)[METADATA_NAME]].data = raw
    path = tmp_path / "x_fixed.sim"
    path.write_bytes(m.to_bytes())
    return str(path)


def _refused(data: bytes, tmp_path, meta, *fragments: str) -> None:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    path = _with_meta(data, tmp_path, raw)
    with pytest.raises(ModelError) as e:
        calibrator_custom.fixed_simulator(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: fixed-model metadata 'calibrator_custom_fixed': "), msg
    for f in fragments:
        assert f in msg, msg


def test_valid_metadata_reports_the_image_input(fixed_bytes, tmp_path):
    path = _with_meta(fixed_bytes, tmp_path, json.dumps(_meta(fixed_bytes)).encode())
    d = calibrator_custom.fixed_simulator(path).get_input_details()
    assert len(d) == 1 and d[0]["name"] == "image" and d[0]["dtype"] is np.uint8
    assert d[0]["input_formats"] == "RGB" and d[0]["training_input_formats"] == "RGB" and d[0]["layouts"] == "NHWC"


def test_a_json_array_is_not_metadata(fixed_bytes, tmp_path):
    _refused(fixed_bytes, tmp_path, [], "must be a JSON object, got a JSON array")


def test_an_empty_object_lacks_every_key(fixed_bytes, tmp_path):
    _refused(fixed_bytes, tmp_path, {}, "the key 'format' is missing")


@pytest.mark.parametrize("key", ["format", "version", "inputs", "outputs"])
def test_missing_top_level_key(fixed_bytes, tmp_path, key):
    meta = _meta(fixed_bytes)
    del meta[key]
    _refused(fixed_bytes, tmp_path, meta, f"the key {key!r} is missing")


@pytest.mark.parametrize("key", ["name", "input_formats", "training_input_formats", "mean", "std", "layouts",
                                 "input_width_alignment", "input_height_alignment"])
def test_missing_input_key(fixed_bytes, tmp_path, key):
    meta = _meta(fixed_bytes)
    del meta["inputs"][0][key]
    _refused(fixed_bytes, tmp_path, meta, "inputs[0]", f"the key {key!r} is missing")


@pytest.mark.parametrize("key, value, fragment", [
    ("mean", "abc", "'mean' must be a list of numbers, got \"abc\""),
    ("mean", ["a"], "'mean' holds \"a\"; expected finite numbers"),
    ("std", [127.5, 0, 127.5], "'std' holds 0; expected finite numbers > 0"),
    ("quantizations", "TRUE", "'quantizations' must be true or false"),
    ("input_width_alignment", 0, "'input_width_alignment' is 0; expected an integer >= 1"),
    ("input_height_alignment", 2.5, "'input_height_alignment' must be an integer >= 1, got 2.5"),
    ("layouts", "NCWH", "'layouts' is 'NCWH'; allowed: NHWC, NCHW"),
    ("input_formats", "JPEG", "'input_formats' is 'JPEG'; allowed: RGB, BGR"),
    ("input_formats", "GRAY", "input_formats 'GRAY' cannot feed a model trained on RGB"),
])
def test_wrong_input_value(fixed_bytes, tmp_path, key, value, fragment):
    meta = _meta(fixed_bytes)
    meta["inputs"][0][key] = value
    _refused(fixed_bytes, tmp_path, meta, "inputs[0] ('image'): ", fragment)


def test_nan_std_in_the_json_text(fixed_bytes, tmp_path):
    raw = json.dumps(_meta(fixed_bytes)).replace('"std": [127.5', '"std": [NaN').encode()
    _refused(fixed_bytes, tmp_path, raw, "'std' holds NaN; expected finite numbers > 0")


def test_rawdata_format_for_the_uint8_image_input(fixed_bytes, tmp_path):
    """The input is the raw UINT8 pixels: claiming RAWDATA_F32 would make users feed normalised floats."""
    meta = _meta(fixed_bytes)
    meta["inputs"][0].update(input_formats="RAWDATA_F32_NHWC", training_input_formats="RAWDATA_F32_NHWC")
    _refused(fixed_bytes, tmp_path, meta, "input_formats RAWDATA_F32_NHWC needs a FLOAT32 input tensor, but "
                                          "tensor #0 is a quantized UINT8")


def test_format_contradicting_the_input_normalize_op(fixed_bytes, tmp_path):
    meta = _meta(fixed_bytes)
    meta["inputs"][0].update(input_formats="BGR", training_input_formats="BGR")
    _refused(fixed_bytes, tmp_path, meta, "says input_formats 'BGR', but op #0 InputNormalize reading tensor #0 "
                                          "takes 'RGB'")


def test_input_and_output_names_must_match_the_graph(fixed_bytes, tmp_path):
    meta = _meta(fixed_bytes)
    meta["inputs"][0]["name"] = "img"
    _refused(fixed_bytes, tmp_path, meta, "inputs[0]: names tensor 'img', but graph input 0 is tensor #0 'image'")
    meta = _meta(fixed_bytes)
    meta["outputs"] = meta["outputs"] * 2
    _refused(fixed_bytes, tmp_path, meta, "'outputs' has 2 entries but the graph has 1 outputs ('prob')")


def test_output_entry_types(fixed_bytes, tmp_path):
    meta = _meta(fixed_bytes)
    meta["outputs"][0]["dequantizations"] = "TRUE"
    _refused(fixed_bytes, tmp_path, meta, "outputs[0] ('prob'): 'dequantizations' must be true or false")
    meta["outputs"] = [7]
    _refused(fixed_bytes, tmp_path, meta, "outputs[0]: must be a JSON object, got a JSON number")


def test_format_name_and_version(fixed_bytes, tmp_path):
    meta = _meta(fixed_bytes)
    meta["version"] = 2
    _refused(fixed_bytes, tmp_path, meta, "format version 2 is not 1 (written by a newer calibrator_custom")
    meta["version"] = "1"
    _refused(fixed_bytes, tmp_path, meta, "'version' must be the integer 1, got \"1\"")
    meta = _meta(fixed_bytes)
    meta["format"] = "something else"
    _refused(fixed_bytes, tmp_path, meta, "'format' is 'something else'")


def test_not_json_gives_the_position(fixed_bytes, tmp_path):
    _refused(fixed_bytes, tmp_path, b'{"format": ', "is not JSON (Expecting value at line 1 column 12, char 11)")
    _refused(fixed_bytes, tmp_path, b"\xff\xfe", "is not UTF-8 text (byte 0)")
    _refused(fixed_bytes, tmp_path, b"[" * 100000, "nests JSON values too deeply")


def test_metadata_naming_a_missing_buffer(fixed_bytes, tmp_path):
    m = Model.from_bytes(fixed_bytes)
    m.metadata = [(METADATA_NAME, len(m.buffers) + 3)]
    with pytest.raises(ModelError, match="names buffer"):
        Model.from_bytes(m.to_bytes())  # the file layer already refuses it


def test_float_model_is_still_not_a_fixed_model(tmp_path):
    model, _ = modelfuzz.tiny_cnn()
    path = tmp_path / "t_float.sim"
    model.save(path)
    with pytest.raises(ModelError, match="is not a fixed model written by calibrator_custom"):
        calibrator_custom.fixed_simulator(str(path))
