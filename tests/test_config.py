"""input_config.ini: the vendor's syntax, every key valid and invalid, and the checks against a model."""
from __future__ import annotations

import dataclasses
import logging
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibrator_custom.config import ConvConfig, InputSpec, OutputSpec, load_input_config
from calibrator_custom.errors import ConfigError
from calibrator_custom.model.builder import ModelBuilder

BASE_IN = {"inputs": "data;", "input_formats": "RGB;", "mean": "127.5:127.5:127.5;", "std_value": "127.5;"}
BASE_OUT = {"outputs": "prob;"}


def make(inp: dict | None = None, out: dict | None = None, conv: dict | None = None) -> str:
    """An ini text: BASE_IN/BASE_OUT updated with ``inp``/``out`` (value None drops the key)."""
    lines = []
    for section, base, extra in (("INPUT_CONFIG", BASE_IN, inp), ("OUTPUT_CONFIG", BASE_OUT, out),
                                 ("CONV_CONFIG", {}, conv)):
        keys = {**base, **(extra or {})}
        if section == "CONV_CONFIG" and conv is None:
            continue
        lines.append(f"[{section}]")
        lines += [f"{k}={v}" for k, v in keys.items() if v is not None]
    return "\n".join(lines) + "\n"


def load(tmp_path, text: str, model=None):
    path = tmp_path / "input_config.ini"
    path.write_text(text, encoding="utf-8")
    return load_input_config(path, model)


def bad(tmp_path, text: str, *fragments: str, model=None) -> str:
    """Assert ConfigError whose message names the file and contains every fragment; return the message."""
    with pytest.raises(ConfigError, match=re.escape(fragments[0])) as info:
        load(tmp_path, text, model)
    msg = str(info.value)
    assert str(tmp_path / "input_config.ini") in msg
    for fragment in fragments[1:]:
        assert fragment in msg, msg
    return msg


# ------------------------------------------------------------------------------------------ models
def one_input_model(tmp_path, shape=(1, 8, 8, 3)):
    b = ModelBuilder()
    x = b.input("data", shape)
    y = b.op("RELU", [x], name="relu")
    b.output(b.op("RELU", [y], name="prob"))
    return b.save(tmp_path / "one_float.sim")


def mixed_model():
    """Inputs 'image/in:0' (RGB) and 'feat.1_' (raw); a 1x1 conv on the image; outputs 'sum', 'out/relu_'."""
    b = ModelBuilder()
    x = b.input("image/in:0", (1, 6, 6, 3))
    f = b.input("feat.1_", (1, 6, 6, 3))
    w = b.constant("conv/w", np.ones((3, 1, 1, 3), np.float32))
    c = b.op("CONV_2D", [x, w, b.constant("conv/b", np.zeros(3, np.float32))],
             {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name="conv/out")
    s = b.op("ADD", [c, f], name="sum")
    b.output(s, b.op("RELU", [s], name="out/relu_"))
    return b.build()


MIXED_INI = """\
[INPUT_CONFIG]
inputs='image/in:0','feat.1_';
training_input_formats=RGB,RAWDATA_F32_NHWC;
input_formats=YUV_NV12,RAWDATA_F32_NHWC;
quantizations=TRUE,FALSE;
mean=123.675:116.28:103.53;
std_value=58.395:57.12:57.375;
input_width_alignment=16,1;
input_height_alignment=4,1;
input_layouts=NHWC,NHWC;

[OUTPUT_CONFIG]
outputs='sum','out/relu_';
dequantizations=TRUE,FALSE;
output_layouts=NHWC,NCHW;

[CONV_CONFIG]
input_format=ALL_INT16;
tensor_arrays='image/in:0';
"""


# ------------------------------------------------------------------------------------------ valid files
def test_every_key_is_read(tmp_path):
    cfg = load(tmp_path, MIXED_INI, mixed_model())
    assert isinstance(cfg.inputs, tuple) and isinstance(cfg.outputs, tuple)
    assert cfg.inputs == (
        InputSpec("image/in:0", "RGB", "YUV_NV12", True, (123.675, 116.28, 103.53), (58.395, 57.12, 57.375),
                  16, 4, "NHWC"),
        InputSpec("feat.1_", "RAWDATA_F32_NHWC", "RAWDATA_F32_NHWC", False, (), (), 1, 1, "NHWC"))
    assert cfg.outputs == (OutputSpec("sum", True, "NHWC"), OutputSpec("out/relu_", False, "NCHW"))
    assert cfg.conv == ConvConfig("ALL_INT16", ("image/in:0",))
    assert cfg.input_names == ("image/in:0", "feat.1_") and cfg.output_names == ("sum", "out/relu_")
    assert cfg.input("feat.1_").is_rawdata and cfg.input("image/in:0").channels == 3
    assert cfg.path == str(tmp_path / "input_config.ini")
    with pytest.raises(KeyError, match="'nope' is not an input"):
        cfg.input("nope")


def test_defaults(tmp_path):
    cfg = load(tmp_path, make(inp={"std_value": None}))
    (spec,) = cfg.inputs
    assert spec == InputSpec("data", "RGB", "RGB", True, (127.5, 127.5, 127.5), (1.0, 1.0, 1.0), 1, 1, "NHWC")
    assert cfg.outputs == (OutputSpec("prob", True, "NHWC"),)
    assert cfg.conv == ConvConfig(None, ())


def test_yuv_nv12_aligns_to_2_by_default(tmp_path):
    cfg = load(tmp_path, make(inp={"training_input_formats": "RGB;", "input_formats": "YUV_NV12;"}))
    assert (cfg.inputs[0].width_alignment, cfg.inputs[0].height_alignment) == (2, 2)


def test_input_formats_defaults_to_training_formats_and_back(tmp_path):
    cfg = load(tmp_path, make(inp={"training_input_formats": "BGR;", "input_formats": None}))
    assert (cfg.inputs[0].training_input_format, cfg.inputs[0].input_format) == ("BGR", "BGR")
    cfg = load(tmp_path, make(inp={"input_formats": "BGR;"}))
    assert (cfg.inputs[0].training_input_format, cfg.inputs[0].input_format) == ("BGR", "BGR")


@pytest.mark.parametrize("inputs_line", [
    "inputs=data;", "inputs = data ;", "inputs='data';", 'inputs="data";', "inputs=data", "INPUTS=data;",
    "inputs='data';   # the image", "inputs=data; ; trailing note", "inputs : data;", "inputs=\n  data;",
])
def test_value_syntax_variants(tmp_path, inputs_line):
    text = make(inp={"inputs": None}).replace("[INPUT_CONFIG]\n", f"[INPUT_CONFIG]\n{inputs_line}\n")
    assert load(tmp_path, text).input_names == ("data",)


def test_comments_bom_and_quoted_lists(tmp_path):
    text = ("\ufeff# written by hand\n; vendor style comment\n" +
            make(inp={"inputs": "'a','b';", "input_formats": '"RGB,BGR";', "mean": "1:2:3,4:5:6;",
                      "std_value": "2, 3:4:5 ;"}))
    cfg = load(tmp_path, text)
    assert cfg.input_names == ("a", "b")
    assert [s.input_format for s in cfg.inputs] == ["RGB", "BGR"]
    assert cfg.inputs[0].std == (2.0, 2.0, 2.0) and cfg.inputs[1].std == (3.0, 4.0, 5.0)


@pytest.mark.parametrize("name", ["prob_", "data/in:0", "input.1", "x-y", "a b", "scores:0", "(out)"])
def test_tensor_names_keep_their_punctuation(tmp_path, name):
    # the vendor strips string.punctuation from both ends ('prob_' -> 'prob'); we keep names intact
    cfg = load(tmp_path, make(inp={"inputs": f"'{name}';"}, out={"outputs": f"{name};"}))
    assert cfg.input_names == (name,) and cfg.output_names == (name,)


def test_mean_red_green_blue(tmp_path):
    text = make(inp={"mean": None, "mean_red": "123.68;", "mean_green": "116.78;", "mean_blue": "103.94;"})
    assert load(tmp_path, text).inputs[0].mean == (123.68, 116.78, 103.94)
    agreeing = make(inp={"mean": "1:2:3;", "mean_red": "1;", "mean_green": "2;", "mean_blue": "3;"})
    assert load(tmp_path, agreeing).inputs[0].mean == (1.0, 2.0, 3.0)
    gray = make(inp={"input_formats": "GRAY;", "mean": None, "mean_red": "5;", "mean_green": "5;",
                     "mean_blue": "5;", "std_value": "2;"})
    assert load(tmp_path, gray).inputs[0].mean == (5.0,) and load(tmp_path, gray).inputs[0].std == (2.0,)


def test_bgr_channel_order(tmp_path):
    # mean/std are written R:G:B; the model's channels are B, G, R
    spec = load(tmp_path, make(inp={"input_formats": "BGR;", "mean": "123:117:104;", "std_value": "1:2:3;"})).inputs[0]
    assert spec.mean == (123.0, 117.0, 104.0) and spec.channel_mean() == (104.0, 117.0, 123.0)
    assert spec.channel_std() == (3.0, 2.0, 1.0)
    rgb = load(tmp_path, make()).inputs[0]
    assert rgb.channel_mean() == rgb.mean


@pytest.mark.parametrize("mean,std", [("1:2:3;", "4;"), ("1:2:3,;", "4,;")])
def test_mean_for_image_inputs_only_or_per_input(tmp_path, mean, std):
    text = make(inp={"inputs": "img,raw;", "training_input_formats": "RGB,RAWDATA_S16_NHWC;",
                     "input_formats": "RGB,RAWDATA_S16_NHWC;", "mean": mean, "std_value": std})
    img, raw = load(tmp_path, text).inputs
    assert img.mean == (1.0, 2.0, 3.0) and img.std == (4.0, 4.0, 4.0)
    assert raw.mean == () and raw.std == () and raw.is_rawdata and raw.channels is None


def test_rawdata_only_needs_no_mean(tmp_path):
    cfg = load(tmp_path, make(inp={"input_formats": "RAWDATA_F32_NHWC;", "mean": None, "std_value": None}))
    assert cfg.inputs[0].mean == () and cfg.inputs[0].input_format == "RAWDATA_F32_NHWC"


def test_dataclasses_are_frozen(tmp_path):
    cfg = load(tmp_path, make())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.inputs[0].mean = (0.0,)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.path = "x"  # type: ignore[misc]




pixel = st.floats(min_value=0, max_value=255)


@given(r=pixel, g=pixel, b=pixel, std=st.floats(min_value=1e-3, max_value=1e4))
def test_numbers_round_trip_exactly(tmp_path_factory, r, g, b, std):
    tmp = tmp_path_factory.mktemp("h")
    spec = load(tmp, make(inp={"mean": f"{r!r}:{g!r}:{b!r};", "std_value": f"{std!r};"})).inputs[0]
    assert spec.mean == (r, g, b) and spec.std == (std, std, std)


# ------------------------------------------------------------------------------------------ file-level errors
def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"input config {str(tmp_path / 'nope.ini')!r} does not exist")):
        load_input_config(tmp_path / "nope.ini")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_input_config(tmp_path)


def test_not_utf8(tmp_path):
    (tmp_path / "input_config.ini").write_bytes(b"[INPUT_CONFIG]\ninputs=\xff\xfe;\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_input_config(tmp_path / "input_config.ini")


@pytest.mark.parametrize("text,fragment", [
    ("inputs=data;\n", "File contains no section headers"),
    (make() + "[INPUT_CONFIG]\ninputs=x;\n", "section 'INPUT_CONFIG' already exists"),
])
def test_ini_structure_errors(tmp_path, text, fragment):
    bad(tmp_path, text, "is not a valid ini file", fragment)


def test_duplicate_key(tmp_path):
    bad(tmp_path, make().replace("inputs=data;", "inputs=data;\ninputs=other;"), "is not a valid ini file",
        "'inputs'")


def test_unknown_section_suggests(tmp_path):
    bad(tmp_path, make().replace("[INPUT_CONFIG]", "[INPUT_CONFG]"), "[INPUT_CONFG]: unknown section",
        "did you mean 'INPUT_CONFIG'?")
    bad(tmp_path, make() + "[OPTIMIZE_CONFIG]\nx=1;\n", "[OPTIMIZE_CONFIG]: unknown section",
        "'INPUT_CONFIG', 'OUTPUT_CONFIG', 'CONV_CONFIG'")


@pytest.mark.parametrize("key,hint", [
    ("quantization", "did you mean 'quantizations'?"),      # the doc's singular typo
    ("input_format", "'input_format' belongs in [CONV_CONFIG]"),
    ("outputs", "'outputs' belongs in [OUTPUT_CONFIG]"),
    ("mean_gren", "did you mean 'mean_green'?"),
    ("std", "did you mean 'std_value'?"),
    ("layout", "allowed in [INPUT_CONFIG]: inputs, training_input_formats, input_formats, quantizations, mean, "
               "mean_red, mean_green, mean_blue, std_value, input_width_alignment, input_height_alignment, "
               "input_layouts"),
])
def test_unknown_key_suggests(tmp_path, key, hint):
    bad(tmp_path, make(inp={key: "TRUE;"}), f"[INPUT_CONFIG] {key}: unknown key", hint)


def test_unknown_output_and_conv_keys(tmp_path):
    bad(tmp_path, make(out={"dequantization": "TRUE;"}), "[OUTPUT_CONFIG] dequantization: unknown key",
        "did you mean 'dequantizations'?")
    bad(tmp_path, make(conv={"tensor_array": "x;"}), "[CONV_CONFIG] tensor_array: unknown key",
        "did you mean 'tensor_arrays'?")


def test_default_section_is_refused(tmp_path):
    bad(tmp_path, "[DEFAULT]\nmean=1;\n" + make(), "[DEFAULT]: input_config.ini does not use a [DEFAULT] section")


def test_missing_sections(tmp_path):
    bad(tmp_path, make().split("[OUTPUT_CONFIG]")[0], "section [OUTPUT_CONFIG] is missing")
    bad(tmp_path, "[OUTPUT_CONFIG]\noutputs=prob;\n", "section [INPUT_CONFIG] is missing")


# ------------------------------------------------------------------------------------------ [INPUT_CONFIG]
@pytest.mark.parametrize("inputs,fragment", [
    (None, "[INPUT_CONFIG] inputs: is missing"),
    (";", "[INPUT_CONFIG] inputs: is empty"),
    ("'';", "[INPUT_CONFIG] inputs: is empty"),
    ("a,,b;", "[INPUT_CONFIG] inputs: entry 1 is empty"),
    ("a,b,a;", "[INPUT_CONFIG] inputs: lists 'a' more than once"),
    ("a;b", "[INPUT_CONFIG] inputs: unexpected text 'b' right after ';'"),
])
def test_inputs_errors(tmp_path, inputs, fragment):
    bad(tmp_path, make(inp={"inputs": inputs}), fragment)


def test_key_without_value(tmp_path):
    text = make(inp={"inputs": None}).replace("[INPUT_CONFIG]\n", "[INPUT_CONFIG]\ninputs\n")
    bad(tmp_path, text, "[INPUT_CONFIG] inputs: has no value; write 'inputs=...;'")


def test_chip_format_without_training_format(tmp_path):
    bad(tmp_path, make(inp={"input_formats": "YUV_NV12;"}),
        "[INPUT_CONFIG] input_formats: 'YUV_NV12' (for 'data') needs training_input_formats (the format the network "
        "was trained on); allowed: RGB, BGR, GRAY")


def test_formats_missing(tmp_path):
    bad(tmp_path, make(inp={"input_formats": None}), "[INPUT_CONFIG] input_formats: is missing",
        "RGB, BGR, RGBA, BGRA, YUV_NV12, GRAY")


@pytest.mark.parametrize("key,value,fragment", [
    ("input_formats", "RGBX;", "'RGBX' (for 'data') is not allowed; allowed: RGB, BGR, RGBA, BGRA, YUV_NV12, GRAY, "
                               "RAWDATA_F32_NHWC, RAWDATA_S16_NHWC"),
    ("input_formats", "rgb;", "did you mean 'RGB'?"),
    ("input_formats", "NV12;", "did you mean 'YUV_NV12'?"),
    ("training_input_formats", "RGBA;", "'RGBA' (for 'data') is not allowed; allowed: RGB, BGR, GRAY, "
                                        "RAWDATA_S16_NHWC, RAWDATA_F32_NHWC"),
])
def test_unknown_format_names(tmp_path, key, value, fragment):
    bad(tmp_path, make(inp={key: value}), f"[INPUT_CONFIG] {key}: ", fragment)


@pytest.mark.parametrize("training,chip,allowed", [
    ("RGB", "BGR", "RGB, RGBA, BGRA, YUV_NV12"),
    ("BGR", "RGB", "BGR, RGBA, BGRA, YUV_NV12"),
    ("RGB", "GRAY", "RGB, RGBA, BGRA, YUV_NV12"),
    ("GRAY", "RGB", "GRAY, YUV_NV12"),
    ("GRAY", "BGRA", "GRAY, YUV_NV12"),
    ("RAWDATA_S16_NHWC", "RAWDATA_F32_NHWC", "RAWDATA_S16_NHWC"),
    ("RAWDATA_F32_NHWC", "RGB", "RAWDATA_F32_NHWC"),
])
def test_illegal_format_pairs(tmp_path, training, chip, allowed):
    raw = training.startswith("RAWDATA")
    text = make(inp={"training_input_formats": f"{training};", "input_formats": f"{chip};",
                     "mean": None if raw else ("1;" if training == "GRAY" else "1:2:3;"),
                     "std_value": None if raw else "1;"})
    bad(tmp_path, text, f"[INPUT_CONFIG] input_formats: '{chip}' (for 'data') cannot be fed to a model trained on "
                        f"{training}; with training_input_formats={training} allowed: {allowed}")


@pytest.mark.parametrize("training,chip", [
    ("RGB", "RGB"), ("RGB", "RGBA"), ("RGB", "BGRA"), ("RGB", "YUV_NV12"), ("BGR", "BGR"), ("BGR", "RGBA"),
    ("BGR", "BGRA"), ("BGR", "YUV_NV12"), ("GRAY", "GRAY"), ("GRAY", "YUV_NV12"),
    ("RAWDATA_F32_NHWC", "RAWDATA_F32_NHWC"), ("RAWDATA_S16_NHWC", "RAWDATA_S16_NHWC"),
])
def test_allowed_format_pairs(tmp_path, training, chip):
    raw = training.startswith("RAWDATA")
    text = make(inp={"training_input_formats": f"{training};", "input_formats": f"{chip};",
                     "mean": None if raw else ("1;" if training == "GRAY" else "1:2:3;"),
                     "std_value": None if raw else "1;"})
    spec = load(tmp_path, text).inputs[0]
    assert (spec.training_input_format, spec.input_format) == (training, chip)


@pytest.mark.parametrize("key,value", [
    ("input_formats", "RGB,RGB;"), ("training_input_formats", "RGB,BGR;"), ("quantizations", "TRUE,TRUE;"),
    ("input_width_alignment", "1,1;"), ("input_height_alignment", "2,2;"), ("input_layouts", "NHWC,NHWC;"),
])
def test_per_input_counts(tmp_path, key, value):
    bad(tmp_path, make(inp={key: value}), f"[INPUT_CONFIG] {key}: has 2 entries but 1 input is configured ('data');"
                                          " give one value per input, separated by ','")


def test_per_input_counts_two_inputs(tmp_path):
    bad(tmp_path, make(inp={"inputs": "a,b;", "mean": "1:2:3,1:2:3;"}),
        "[INPUT_CONFIG] input_formats: has 1 entry but 2 inputs are configured ('a', 'b')")


@pytest.mark.parametrize("inp,fragment", [
    ({"input_formats": "RAWDATA_S16_NHWC;", "std_value": None},
     "[INPUT_CONFIG] mean: must not be set: every input is RAWDATA ('data')"),
    ({"input_formats": "RAWDATA_F32_NHWC;", "mean": None},
     "[INPUT_CONFIG] std_value: must not be set: every input is RAWDATA"),
    ({"inputs": "img,raw;", "input_formats": "RGB,RAWDATA_F32_NHWC;", "mean": "1:2:3,4:5:6;", "std_value": "1;"},
     "[INPUT_CONFIG] mean: is set for RAWDATA input 'raw'"),
    ({"inputs": "img,raw;", "input_formats": "RGB,RAWDATA_F32_NHWC;", "std_value": "1,1;"},
     "[INPUT_CONFIG] std_value: is set for RAWDATA input 'raw'"),
    ({"inputs": "a,b,raw;", "input_formats": "RGB,RGB,RAWDATA_F32_NHWC;", "mean": "1:2:3;", "std_value": None},
     "[INPUT_CONFIG] mean: has 1 entry; give one per image input (2: 'a', 'b') or one per input (3)"),
    ({"inputs": "a,b;", "input_formats": "RGB,RGB;", "mean": "1:2:3,;", "std_value": None},
     "[INPUT_CONFIG] mean: the entry for image input 'b' is empty"),
])
def test_mean_std_on_rawdata_and_counts(tmp_path, inp, fragment):
    bad(tmp_path, make(inp=inp), fragment)


def test_missing_mean(tmp_path):
    bad(tmp_path, make(inp={"mean": None}), "[INPUT_CONFIG] mean: is missing; input 'data' is RGB: set mean=R:G:B")
    bad(tmp_path, make(inp={"mean": None, "input_formats": "GRAY;"}), "input 'data' is GRAY: set mean=<value>")


@pytest.mark.parametrize("inp,fragment", [
    ({"mean": "127.5;"}, "[INPUT_CONFIG] mean: gives 1 channel value(s) for 'data' but RGB has 3; write R:G:B"),
    ({"mean": "1:2;"}, "[INPUT_CONFIG] mean: gives 2 channel value(s) for 'data' but RGB has 3"),
    ({"input_formats": "GRAY;", "mean": "1:2:3;"},
     "gives 3 channel value(s) for 'data' but GRAY has 1; write one value"),
    ({"std_value": "1:2;"}, "[INPUT_CONFIG] std_value: gives 2 channel values for 'data' but RGB has 3; write one value"
                            " or R:G:B"),
    ({"input_formats": "GRAY;", "mean": "1;", "std_value": "1:2:3;"}, "but GRAY has 1"),
])
def test_channel_counts(tmp_path, inp, fragment):
    bad(tmp_path, make(inp=inp), fragment)


@pytest.mark.parametrize("key,value,fragment", [
    ("mean", "1:abc:3;", "'abc' (for 'data') is not a number"),
    ("mean", "1:2:;", "'' (for 'data') is not a number"),
    ("mean", "1:nan:3;", "'nan' (for 'data') is not a finite number"),
    ("std_value", "inf;", "'inf' (for 'data') is not a finite number"),
    ("std_value", "0;", "0 (for 'data') is out of range; allowed: 0.001 to 10000"),
    ("std_value", "1:0:1;", "0 (for 'data') is out of range; allowed: 0.001 to 10000"),
    ("std_value", "-58;", "-58 (for 'data') is out of range; allowed: 0.001 to 10000"),
    ("mean_red", "x;", "'x' (for 'data') is not a number"),
])
def test_bad_numbers(tmp_path, key, value, fragment):
    inp = {key: value}
    if key == "mean_red":
        inp.update(mean=None, mean_green="1;", mean_blue="1;")
    bad(tmp_path, make(inp=inp), f"[INPUT_CONFIG] {key}: ", fragment)


@pytest.mark.parametrize("key,value,allowed", [
    ("mean", "-1e30:0:0;", "allowed: 0 to 255 (a pixel value"),
    ("mean", "0:255.5:0;", "allowed: 0 to 255 (a pixel value"),
    ("mean", "-0.5:0:0;", "allowed: 0 to 255 (a pixel value"),
    ("std_value", "1e300;", "allowed: 0.001 to 10000 (pixels 0..255 are divided by it"),
    ("std_value", "1e-30;", "allowed: 0.001 to 10000"),
    ("std_value", "1:1:0.0009;", "allowed: 0.001 to 10000"),
    ("mean_red", "1e30;", "allowed: 0 to 255"),
])
def test_numbers_out_of_range_name_the_key_and_the_range(tmp_path, key, value, allowed):
    inp = {key: value}
    if key == "mean_red":
        inp.update(mean=None, mean_green="1;", mean_blue="1;")
    msg = bad(tmp_path, make(inp=inp), f"[INPUT_CONFIG] {key}: ", "(for 'data') is out of range", allowed)
    assert "\n" not in msg


@given(value=st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=255.000001), st.just(float("nan"))))
def test_any_mean_outside_0_255_is_refused(tmp_path_factory, value):
    bad(tmp_path_factory.mktemp("h"), make(inp={"mean": f"{value!r}:0:0;"}), "[INPUT_CONFIG] mean: ",
        "allowed: 0 to 255")


@given(value=st.one_of(st.floats(max_value=0.000999), st.floats(min_value=10000.0001)))
def test_any_std_value_outside_the_range_is_refused(tmp_path_factory, value):
    bad(tmp_path_factory.mktemp("h"), make(inp={"std_value": f"{value!r};"}), "[INPUT_CONFIG] std_value: ",
        "allowed: 0.001 to 10000")


def test_range_limits_are_allowed(tmp_path):
    spec = load(tmp_path, make(inp={"mean": "0:255:127.5;", "std_value": "0.001:10000:1;",
                                    "input_width_alignment": "4096;", "input_height_alignment": "1;"})).inputs[0]
    assert spec.mean == (0.0, 255.0, 127.5) and spec.std == (0.001, 10000.0, 1.0)
    assert (spec.width_alignment, spec.height_alignment) == (4096, 1)


def test_mean_colour_keys(tmp_path):
    bad(tmp_path, make(inp={"mean": None, "mean_red": "1;", "mean_blue": "3;"}),
        "[INPUT_CONFIG] mean_green: is missing; mean_red, mean_blue are set")
    bad(tmp_path, make(inp={"mean": "1:2:3;", "mean_red": "1;", "mean_green": "2;", "mean_blue": "4;"}),
        "[INPUT_CONFIG] mean: mean (1.0, 2.0, 3.0) and mean_red/mean_green/mean_blue (1.0, 2.0, 4.0) disagree")
    bad(tmp_path, make(inp={"input_formats": "GRAY;", "mean": None, "mean_red": "1;", "mean_green": "2;",
                            "mean_blue": "3;"}),
        "[INPUT_CONFIG] mean_red: GRAY input 'data' has one channel but mean_red, mean_green, mean_blue differ")
    bad(tmp_path, make(inp={"mean": None, "mean_red": "1:2;", "mean_green": "2;", "mean_blue": "3;"}),
        "[INPUT_CONFIG] mean_red: gives 2 values for 'data'; mean_red takes one value per input")


@pytest.mark.parametrize("value", ["YES;", "1;", "T;", "on;"])
def test_bad_booleans(tmp_path, value):
    bad(tmp_path, make(inp={"quantizations": value}),
        f"[INPUT_CONFIG] quantizations: {value[:-1]!r} (for 'data') is not a boolean; allowed: TRUE, FALSE")
    bad(tmp_path, make(out={"dequantizations": value}),
        f"[OUTPUT_CONFIG] dequantizations: {value[:-1]!r} (for 'prob') is not a boolean; allowed: TRUE, FALSE")


def test_booleans_ignore_case(tmp_path):
    cfg = load(tmp_path, make(inp={"quantizations": "false;"}, out={"dequantizations": "False;"}))
    assert cfg.inputs[0].quantization is False and cfg.outputs[0].dequantization is False


@pytest.mark.parametrize("key", ["input_width_alignment", "input_height_alignment"])
@pytest.mark.parametrize("value", ["0", "-2", "2.5", "abc", "4097", "1e20", "100000000000000000000"])
def test_bad_alignments(tmp_path, key, value):
    bad(tmp_path, make(inp={key: value + ";"}),
        f"[INPUT_CONFIG] {key}: {value!r} (for 'data') is not allowed; allowed: a whole number 1 to 4096")


def test_layouts(tmp_path):
    bad(tmp_path, make(inp={"input_layouts": "NWHC;"}),
        "[INPUT_CONFIG] input_layouts: 'NWHC' (for 'data') is not allowed; allowed: NHWC, NCHW; did you mean 'NHWC'?")
    bad(tmp_path, make(inp={"input_formats": "RGBA;", "training_input_formats": "RGB;", "input_layouts": "NCHW;"}),
        "[INPUT_CONFIG] input_layouts: 'data' is fed as RGBA, which cannot be NCHW; allowed: NHWC")
    bad(tmp_path, make(out={"output_layouts": "CHW;"}),
        "[OUTPUT_CONFIG] output_layouts: 'CHW' (for 'prob') is not allowed; allowed: NHWC, NCHW")
    assert load(tmp_path, make(inp={"input_layouts": "NCHW;"})).inputs[0].layout == "NCHW"


# ------------------------------------------------------------------------------------------ [OUTPUT_CONFIG]
@pytest.mark.parametrize("out,fragment", [
    ({"outputs": None}, "[OUTPUT_CONFIG] outputs: is missing"),
    ({"outputs": "a,a;"}, "[OUTPUT_CONFIG] outputs: lists 'a' more than once"),
    ({"outputs": "a,b;", "dequantizations": "TRUE;"},
     "[OUTPUT_CONFIG] dequantizations: has 1 entry but 2 outputs are configured ('a', 'b')"),
    ({"output_layouts": "NHWC,NHWC;"}, "[OUTPUT_CONFIG] output_layouts: has 2 entries but 1 output is configured"),
])
def test_output_errors(tmp_path, out, fragment):
    bad(tmp_path, make(out=out), fragment)


# ------------------------------------------------------------------------------------------ [CONV_CONFIG]
@pytest.mark.parametrize("value", ["ALL_UINT8", "ALL_INT16", "CONV2D_INT16", "DEPTHWISE_INT16"])
def test_conv_input_formats(tmp_path, value):
    assert load(tmp_path, make(conv={"input_format": f"{value};"})).conv.input_format == value


@pytest.mark.parametrize("value,fragment", [
    ("ALL_INT8;", "'ALL_INT8' is not allowed; allowed: ALL_UINT8, ALL_INT16, CONV2D_INT16, DEPTHWISE_INT16"),
    ("all_int16;", "did you mean 'ALL_INT16'?"),
    ("ALL_INT16,ALL_UINT8;", "takes one value, got 2"),
    (";", "is empty"),
])
def test_bad_conv_input_format(tmp_path, value, fragment):
    bad(tmp_path, make(conv={"input_format": value}), "[CONV_CONFIG] input_format: ", fragment)


def test_tensor_arrays_syntax(tmp_path):
    assert load(tmp_path, make(conv={"tensor_arrays": "'a/b:0', c.1 ;"})).conv.tensor_arrays == ("a/b:0", "c.1")
    bad(tmp_path, make(conv={"tensor_arrays": "a,,b;"}), "[CONV_CONFIG] tensor_arrays: entry 1 is empty")


# ------------------------------------------------------------------------------------------ against a model
def test_valid_against_model_given_as_path(tmp_path):
    one_input_model(tmp_path)
    cfg = load(tmp_path, make(), tmp_path / "one_float.sim")
    assert cfg.input_names == ("data",)


def test_input_not_in_model(tmp_path):
    model = mixed_model()
    msg = bad(tmp_path, MIXED_INI.replace("'feat.1_'", "'feat'", 1),
              "[INPUT_CONFIG] inputs: 'feat' is not a tensor of the model; the model's inputs are 'image/in:0', "
              "'feat.1_'", model=model)
    assert "did you mean 'feat.1_'?" in msg
    bad(tmp_path, MIXED_INI.replace("'feat.1_'", "'sum'", 1),
        "[INPUT_CONFIG] inputs: 'sum' is a tensor of the model but not one of its inputs", model=model)


def test_input_count(tmp_path):
    text = MIXED_INI.replace("inputs='image/in:0','feat.1_';", "inputs='image/in:0';") \
        .replace("RGB,RAWDATA_F32_NHWC", "RGB").replace("YUV_NV12,RAWDATA_F32_NHWC", "YUV_NV12") \
        .replace("TRUE,FALSE;\nmean", "TRUE;\nmean").replace("=16,1", "=16").replace("=4,1", "=4") \
        .replace("NHWC,NHWC;\n\n", "NHWC;\n\n")
    bad(tmp_path, text, "[INPUT_CONFIG] inputs: lists 1 input(s) ('image/in:0') but the model has 2: 'image/in:0', "
                        "'feat.1_'; list every input", model=mixed_model())


def test_input_order(tmp_path):
    text = MIXED_INI.replace("inputs='image/in:0','feat.1_';", "inputs='feat.1_','image/in:0';") \
        .replace("RGB,RAWDATA_F32_NHWC", "RAWDATA_F32_NHWC,RGB").replace("YUV_NV12,RAWDATA_F32_NHWC",
                                                                         "RAWDATA_F32_NHWC,YUV_NV12")
    bad(tmp_path, text, "[INPUT_CONFIG] inputs: must follow the model's input order 'image/in:0', 'feat.1_'",
        model=mixed_model())


def test_outputs_against_model(tmp_path):
    model = mixed_model()
    bad(tmp_path, MIXED_INI.replace("outputs='sum','out/relu_';", "outputs='sum','out/relu';"),
        "[OUTPUT_CONFIG] outputs: 'out/relu' is not a tensor of the model; the model's outputs are 'sum', "
        "'out/relu_'", "did you mean 'out/relu_'?", model=model)
    one = MIXED_INI.replace("outputs='sum','out/relu_';\ndequantizations=TRUE,FALSE;\noutput_layouts=NHWC,NCHW;",
                            "outputs='sum';")
    bad(tmp_path, one, "[OUTPUT_CONFIG] outputs: lists 1 output(s) ('sum') but the model has 2", model=model)
    swapped = MIXED_INI.replace("outputs='sum','out/relu_';", "outputs='out/relu_','sum';")
    assert load(tmp_path, swapped, model).output_names == ("out/relu_", "sum")  # outputs map by name


def test_a_missing_output_is_blamed_on_outputs_not_on_its_settings(tmp_path):
    model = mixed_model()
    short = MIXED_INI.replace("outputs='sum','out/relu_';", "outputs='out/relu_';")
    msg = bad(tmp_path, short, "[OUTPUT_CONFIG] outputs: lists 1 output(s) ('out/relu_') but the model has 2: "
                               "'sum', 'out/relu_'", model=model)
    assert "dequantizations" not in msg
    short_in = MIXED_INI.replace("inputs='image/in:0','feat.1_';", "inputs='image/in:0';")
    bad(tmp_path, short_in, "[INPUT_CONFIG] inputs: lists 1 input(s)", model=model)
    # without a model the count mismatch is reported at the per-output key, with both fixes
    bad(tmp_path, short, "[OUTPUT_CONFIG] dequantizations: has 2 entries but 1 output is configured "
                         "('out/relu_'); give one value per output, separated by ',', or list the missing "
                         "outputs in 'outputs'")


def test_channels_must_match_the_model(tmp_path):
    one_input_model(tmp_path)
    bad(tmp_path, make(inp={"input_formats": "GRAY;", "mean": "1;"}),
        "[INPUT_CONFIG] training_input_formats: 'data' is GRAY (1 channel(s)) but its shape [1, 8, 8, 3] (NHWC) "
        "has 3; allowed for 3 channel(s): RGB, BGR", model=tmp_path / "one_float.sim")


def test_nchw_layout_against_model(tmp_path):
    nchw = one_input_model(tmp_path, (1, 3, 8, 8))
    assert load(tmp_path, make(inp={"input_layouts": "NCHW;"}), nchw).inputs[0].layout == "NCHW"
    bad(tmp_path, make(), "[INPUT_CONFIG] training_input_formats: 'data' is RGB (3 channel(s)) but its shape "
                          "[1, 3, 8, 8] (NHWC) has 8", model=nchw)
    flat = one_input_model(tmp_path, (1, 16))
    bad(tmp_path, make(inp={"input_formats": "RAWDATA_F32_NHWC;", "mean": None, "std_value": None,
                            "input_layouts": "NCHW;"}),
        "[INPUT_CONFIG] input_layouts: 'data' has shape [1, 16]; NCHW needs a 4-D input; allowed here: NHWC",
        model=flat)


def test_tensor_arrays_against_model(tmp_path, caplog):
    model = mixed_model()
    bad(tmp_path, MIXED_INI.replace("tensor_arrays='image/in:0';", "tensor_arrays='image/in';"),
        "[CONV_CONFIG] tensor_arrays: 'image/in' is not a tensor of the model", "did you mean 'image/in:0'?",
        model=model)
    with caplog.at_level(logging.WARNING, logger="calibrator_custom.config"):
        cfg = load(tmp_path, MIXED_INI.replace("tensor_arrays='image/in:0';", "tensor_arrays='sum';"), model)
    assert cfg.conv.tensor_arrays == ("sum",)
    assert "'sum' is not the input of a CONV_2D or DEPTHWISE_CONV_2D op" in caplog.text


def test_every_error_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        load(tmp_path, make(inp={"input_formats": "RGBX;"}))
