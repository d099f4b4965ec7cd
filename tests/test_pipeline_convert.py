"""Float model -> fixed model -> fixed_simulator, end to end on small built models and a shared model."""
from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom.calib import collect_stats_arrays
from calibrator_custom.errors import ConfigError, InputError, ModelError
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.pipeline.convert import convert
from calibrator_custom.pipeline.export import export_quant_param
from calibrator_custom.quant.qparam import load_quant_param, save_quant_param

MEAN, STD = 127.5, 127.5


def _ini(path, inputs="img", outputs="out", deq="TRUE", conv=None) -> str:
    text = (f"[INPUT_CONFIG]\ninputs={inputs};\ntraining_input_formats=RGB;\ninput_formats=RGB;\n"
            f"mean={MEAN}:{MEAN}:{MEAN};\nstd_value={STD};\n[OUTPUT_CONFIG]\noutputs={outputs};\n"
            f"dequantizations={deq};\n")
    if conv:
        text += f"[CONV_CONFIG]\ninput_format={conv};\n"
    path.write_text(text)
    return str(path)


def _small_net(path) -> str:
    """conv(relu6) -> depthwise -> add(residual) -> mean -> fully connected -> logistic."""
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.input("img", (1, 12, 12, 3))
    c1 = b.op("CONV_2D", [x, b.constant("w1", rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3),
                          b.constant("b1", rng.standard_normal(8).astype(np.float32) * 0.1)],
              {"padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU6"}, name="conv1")
    d1 = b.op("DEPTHWISE_CONV_2D", [c1, b.constant("w2", rng.standard_normal((1, 3, 3, 8)).astype(np.float32) * 0.3),
                                    b.constant("b2", rng.standard_normal(8).astype(np.float32) * 0.1)],
              {"padding": "SAME", "stride_w": 1, "stride_h": 1, "depth_multiplier": 1}, name="dw1")
    a = b.op("ADD", [c1, d1], {}, name="add1")
    m = b.op("MEAN", [a, b.constant("axes", np.array([1, 2], np.int32))], {"keep_dims": False}, name="gap")
    fc = b.op("FULLY_CONNECTED", [m, b.constant("w3", rng.standard_normal((4, 8)).astype(np.float32) * 0.5),
                                  b.constant("b3", np.zeros(4, np.float32))], {}, name="fc")
    y = b.op("LOGISTIC", [fc], name="out")
    b.output(y)
    b.save(path)
    return str(path)


def small_case(d, count: int = 8, seed: int = 1):
    """(folder, :func:`_small_net` saved there, ``count`` random pixel images, their float feeds, statistics)."""
    model = _small_net(d / "net_float.sim")
    rng = np.random.default_rng(seed)
    pixels = [rng.integers(0, 256, (1, 12, 12, 3)).astype(np.uint8) for _ in range(count)]
    feeds = [[(p.astype(np.float32) - MEAN) / STD] for p in pixels]
    stats = collect_stats_arrays(model, feeds)
    return d, model, pixels, feeds, stats


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return small_case(tmp_path_factory.mktemp("small"))


def _float_out(model, feed):
    f = calibrator_custom.float_simulator(model)
    f.set_input(0, feed)
    f.invoke()
    return f.get_output(0)


def _fixed_out(path, pixels):
    s = calibrator_custom.fixed_simulator(path)
    s.set_input(0, pixels)
    s.invoke()
    return s.get_output(0)


def _sqnr(ref, got):
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    return 10 * np.log10(np.sum(ref**2) / max(np.sum((ref - got) ** 2), 1e-30))


@pytest.mark.parametrize("level", ["L1", "L2", "L3", "L4", "L5"])
def test_every_level_converts_and_tracks_the_float_model(small, level):
    d, model, pixels, feeds, stats = small
    out = d / f"net_{level}_fixed.sim"
    convert(model, _ini(d / "c.ini"), stats, quant_level=level, calibration_feeds=feeds, output_path=out)
    refs = [_float_out(model, f[0]) for f in feeds]
    gots = [_fixed_out(out, p) for p in pixels]
    assert gots[0].shape == refs[0].shape and gots[0].dtype == np.float32
    assert _sqnr(np.stack(refs), np.stack(gots)) > 30


def test_all_int16_beats_all_uint8(small):
    d, model, pixels, feeds, stats = small
    res = {}
    for conv in ("ALL_UINT8", "ALL_INT16"):
        out = d / f"net_{conv}_fixed.sim"
        convert(model, _ini(d / f"{conv}.ini", conv=conv), stats, quant_level="L2", output_path=out)
        res[conv] = _sqnr(np.stack([_float_out(model, f[0]) for f in feeds]),
                          np.stack([_fixed_out(out, p) for p in pixels]))
        types = {t["name"]: t["dtype"] for t in calibrator_custom.fixed_simulator(out).get_tensor_details()}
        assert types["w1"] == ("INT16" if conv == "ALL_INT16" else "INT8")
        assert types["b1"] == ("INT64" if conv == "ALL_INT16" else "INT32")
    assert res["ALL_INT16"] > res["ALL_UINT8"] + 10


def test_conversion_is_deterministic_and_simulation_repeatable(small):
    d, model, pixels, feeds, stats = small
    a, b = d / "a_fixed.sim", d / "b_fixed.sim"
    for p in (a, b):
        convert(model, _ini(d / "c.ini"), stats, quant_level="L5", calibration_feeds=feeds, output_path=p)
    assert a.read_bytes() == b.read_bytes()
    y1, y2 = _fixed_out(a, pixels[0]), _fixed_out(a, pixels[0])
    assert np.array_equal(y1, y2)


@pytest.mark.parametrize("suffix", [".json", ".pkl"])
def test_quant_param_export_import_is_byte_identical(small, suffix):
    d, model, pixels, feeds, stats = small
    first = d / f"q1{suffix}_fixed.sim"
    convert(model, _ini(d / "c.ini"), stats, quant_level="L5", calibration_feeds=feeds, output_path=first)
    items = export_quant_param(first)
    assert all({"name", "min", "max", "bit"} <= set(it) for it in items)
    save_quant_param(items, d / f"qp{suffix}")
    again = d / f"q2{suffix}_fixed.sim"
    convert(model, _ini(d / "c.ini"), stats, quant_level="L1", quant_param=load_quant_param(d / f"qp{suffix}"),
            output_path=again)
    assert first.read_bytes() == again.read_bytes()


def test_quant_param_errors_and_warnings(small, caplog):
    d, model, pixels, feeds, stats = small
    ini = _ini(d / "c.ini")
    with pytest.raises(ConfigError, match=r"quant_param\[0\].*nope"):
        convert(model, ini, stats, quant_level="L1", quant_param=[{"name": "nope", "min": [0], "max": [1], "bit": 16}])
    with pytest.raises(ConfigError, match=r"quant_param\[1\]"):
        convert(model, ini, stats, quant_level="L1",
                quant_param=[{"name": "conv1", "min": [0], "max": [1], "bit": 16}, {"name": "gap", "min": 0}])
    with caplog.at_level(logging.WARNING):
        convert(model, ini, stats, quant_level="L1",
                quant_param=[{"name": "conv1", "min": [2.0], "max": [1.0], "bit": 16},
                             {"name": "w1", "min": [0, 0], "max": [1, 1], "bit": 8},
                             {"name": "img", "min": [0.0], "max": [1.0], "bit": 8}])
    text = caplog.text
    assert "quant_param[0] 'conv1' dropped" in text
    assert "quant_param[1] 'w1' dropped" in text and "output channels" in text
    assert "quant_param[2] 'img' dropped" in text and "mean/std" in text


def test_quant_param_range_is_used(small):
    d, model, pixels, feeds, stats = small
    out = d / "qp_range_fixed.sim"
    convert(model, _ini(d / "c.ini"), stats, quant_level="L1",
            quant_param=[{"name": "gap", "min": [-8.0], "max": [8.0], "bit": 16}], output_path=out)
    det = {t["name"]: t for t in calibrator_custom.fixed_simulator(out).get_tensor_details()}
    assert det["gap"]["quantization"][0][0] == pytest.approx(8.0 / 32767, rel=1e-6)


def test_fixed_simulator_details_follow_the_vendor(small):
    d, model, pixels, feeds, stats = small
    out = d / "det_fixed.sim"
    convert(model, _ini(d / "c16.ini", deq="FALSE"), stats, quant_level="L2", output_path=out)
    s = calibrator_custom.fixed_simulator(out)
    assert s.class_type == "FIXED"
    (i,) = s.get_input_details()
    assert i["dtype"] is np.uint8 and i["input_formats"] == "RGB" and i["training_input_formats"] == "RGB"
    assert i["shape"].tolist() == [1, 12, 12, 3]
    (o,) = s.get_output_details()
    assert o["dtype"] is np.int16 and o["name"] == "out"
    scale, zp = o["quantization"]
    assert zp == 0 and scale > 0
    s.set_input(0, pixels[0])
    s.invoke()
    ref = _float_out(model, feeds[0][0])
    np.testing.assert_allclose(s.get_output(0) * scale, ref, atol=0.02)
    det = {t["name"]: t for t in s.get_tensor_details()}
    assert det["img"]["dtype"] == "UINT8" and det["img"]["quantization"][0] == pytest.approx((1 / STD, 128))
    assert det["w1"]["dtype"] == "INT8" and len(det["w1"]["quantization"]) == 8 and len(det["w1"]["min"]) == 8
    assert det["b1"]["dtype"] == "INT32"
    assert det["add1"]["dtype"] == "INT16" and det["add1"]["quantization"][0][1] == 0
    # a MEAN writes INT16; the 8-bit fully connected layer reads a UINT8 copy quantized per channel
    assert det["gap"]["dtype"] == "INT16"
    view = det["gap_u8"]
    assert view["dtype"] == "UINT8" and len(view["quantization"]) == view["shape"][-1] > 1
    scales = np.array([sc for sc, _ in view["quantization"]])
    assert np.all(np.log2(scales / scales.min()) == np.round(np.log2(scales / scales.min())))
    with pytest.raises(ValueError):
        s.set_input(0, pixels[0].astype(np.float32))
    with pytest.raises(ValueError):
        calibrator_custom.fixed_simulator(out).invoke()


def test_fixed_simulator_refuses_float_models_and_bad_paths(small):
    d, model, *_ = small
    with pytest.raises(ModelError, match="not a fixed model"):
        calibrator_custom.fixed_simulator(model)
    with pytest.raises(ValueError):
        calibrator_custom.fixed_simulator(d / "missing.sim")


def test_unknown_level_is_an_error(small):
    d, model, pixels, feeds, stats = small
    with pytest.raises(ConfigError, match="L6"):
        convert(model, _ini(d / "c.ini"), stats, quant_level="L6")


def test_writing_is_atomic(small, monkeypatch):
    d, model, pixels, feeds, stats = small
    out = d / "atomic_fixed.sim"
    out.write_bytes(b"old")
    from calibrator_custom.model import graph

    def boom(self, *a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(graph.Model, "to_bytes", boom)
    with pytest.raises(RuntimeError):
        convert(model, _ini(d / "c.ini"), stats, quant_level="L1", output_path=out)
    assert out.read_bytes() == b"old"
    assert not [p for p in os.listdir(d) if p.startswith("atomic_fixed.sim.")]


def test_fixed_model_metadata(small):
    d, model, pixels, feeds, stats = small
    out = d / "meta_fixed.sim"
    fixed = convert(model, _ini(d / "c.ini"), stats, quant_level="L3", output_path=out)
    from calibrator_custom.fixed.writer import read_fixed_metadata
    meta = read_fixed_metadata(fixed)
    assert meta["version"] == 1 and meta["inputs"][0]["mean"] == [MEAN] * 3
    assert meta["outputs"] == [{"name": "out", "dequantizations": True}]
    json.dumps(meta)


def test_l5_with_a_conv_as_dequantized_model_output(tmp_path):
    """A conv whose output is a model output (followed by Fix2Float) is measured and converted at L5."""
    rng = np.random.default_rng(5)
    b = ModelBuilder()
    x = b.input("img", (1, 10, 10, 3))
    c = b.op("CONV_2D", [x, b.constant("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.2),
                         b.constant("b", np.full(4, 0.1, np.float32))],
             {"padding": "VALID", "stride_w": 2, "stride_h": 2}, name="out")
    b.output(c)
    model = str(tmp_path / "c_float.sim")
    b.save(model)
    pixels = [rng.integers(0, 256, (1, 10, 10, 3)).astype(np.uint8) for _ in range(6)]
    feeds = [[(p.astype(np.float32) - MEAN) / STD] for p in pixels]
    stats = collect_stats_arrays(model, feeds)
    out = tmp_path / "c_fixed.sim"
    convert(model, _ini(tmp_path / "c.ini"), stats, quant_level="L5", calibration_feeds=feeds, output_path=out)
    got = _fixed_out(out, pixels[0])
    assert got.dtype == np.float32 and got.shape == (1, 4, 4, 4)
    assert _sqnr(_float_out(model, feeds[0][0]), got) > 30


def test_l5_float_simulation_of_8bit_convs_is_the_fixed_kernel(small):
    """L5's float simulation of an 8-bit conv (data rounded to its UINT8 grid, weights to their integers)
    against the fixed model's integer kernel on the same UINT8 data: within the kernel's output rounding
    (half an output step) plus the bias's rounding (half a bias step; the simulation keeps the float
    bias) and float32 sums, wherever the output does not saturate."""
    from calibrator_custom.config import load_input_config
    from calibrator_custom.fixed.feeds import channel_params
    from calibrator_custom.fixed.registry import get_fixed_op
    from calibrator_custom.fixed.writer import build_fixed_model
    from calibrator_custom.interpreter import Interpreter
    from calibrator_custom.model import sgs_lower
    from calibrator_custom.model.graph import load_model
    from calibrator_custom.pipeline.float_sim import _FloatSim
    from calibrator_custom.plan import PlanInputs
    from calibrator_custom.quant.planner import build_plan

    d, model, _, feeds, stats = small
    m = sgs_lower.runnable(load_model(model))
    pi = PlanInputs.create(m, stats, load_input_config(_ini(d / "sim.ini"), m))
    plan = build_plan(pi, "L5")
    sim = _FloatSim.collect(pi, plan, feeds[:2])
    fixed = build_fixed_model(pi, plan)
    it = Interpreter(fixed, get_op=get_fixed_op)
    fg = fixed.main
    steps = {fg.tensors[s.outputs[0]].name: s for s in it.steps}
    checked = set()
    for c in pi.convs:
        if plan.conv_bits[c.op_index] != 8:
            continue
        yname = pi.graph.tensors[pi.step_of(c.op_index).outputs[0]].name
        s = steps.get(f"{yname}_int16") or steps[yname]
        dt, yt, bt = (fg.tensors[i] for i in (s.inputs[0], s.outputs[0], s.inputs[2]))
        ds, dz = channel_params(dt, len(dt.shape))
        ys, yz = channel_params(yt, len(yt.shape))
        x = sim.values[0][c.data]
        xq = np.clip(np.floor(x / ds + 0.5) + dz, 0, 255).astype(dt.np_dtype)
        yq = s.kernel(*[xq if j == s.inputs[0] else (None if j < 0 else it.constants[j]) for j in s.inputs],
                      opt=s.params)
        yq = yq[0] if isinstance(yq, (list, tuple)) else yq
        want = (yq.astype(np.float64) - yz) * ys
        got = sim.conv_8bit(c, 0, plan.u8_views.get(c.data) or plan.tensors[c.data]).astype(np.float64)
        assert got.shape == want.shape and got.dtype == np.float64
        info = np.iinfo(yt.np_dtype)
        inside = (yq > info.min) & (yq < info.max)
        assert inside.mean() > 0.5, c.op_name
        bias_step = np.asarray(bt.quantization.scale, np.float64)  # per output channel
        bound = 0.5 * ys + 0.5 * bias_step + 1e-6 * np.abs(want) + 1e-7
        assert np.all((np.abs(got - want) <= np.broadcast_to(bound, got.shape))[inside]), c.op_name
        checked.add(c.op_name)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= checked


def test_vendor_dialect_writer_gets_the_plans_input_means_by_weight_name(small):
    """The input channel means a plan holds for its bias-corrected convs (L5) reach the vendor-dialect
    writer by weight name, for the convs with per-channel weight scales only; none without them."""
    import dataclasses
    from calibrator_custom.config import load_input_config
    from calibrator_custom.model import sgs_lower
    from calibrator_custom.model.graph import load_model
    from calibrator_custom.pipeline.convert import _channel_input_means, _channel_weight_scales
    from calibrator_custom.plan import PlanInputs
    from calibrator_custom.quant.planner import build_plan

    d, model, _, _, stats = small
    m = sgs_lower.runnable(load_model(model))
    pi = PlanInputs.create(m, stats, load_input_config(_ini(d / "sim.ini"), m))
    plan = build_plan(pi, "L5")
    assert plan.conv_input_means == {}
    c = pi.convs[0]
    mean = np.linspace(0.0, 1.0, pi.graph.tensors[c.data].shape[-1])
    with_means = dataclasses.replace(plan, conv_input_means={c.op_index: mean})
    scales = _channel_weight_scales(pi, with_means)
    got = _channel_input_means(pi, with_means, scales)
    assert list(got) == [pi.graph.tensors[c.weights].name]
    np.testing.assert_array_equal(got[pi.graph.tensors[c.weights].name], mean)
    assert _channel_input_means(pi, plan, scales) is None
    assert _channel_input_means(pi, with_means, None) is None


def test_calibration_feeds_of_the_wrong_shape_or_count_are_refused(small, tmp_path):
    """A sample of another shape would run (on other data than the chip's): convert names it and the input, and
    writes nothing."""
    d, model, _, feeds, stats = small
    out = tmp_path / "never_fixed.sim"
    wrong = [[np.zeros((1, 10, 10, 3), np.float32)]] * 2
    with pytest.raises(InputError, match=r"calibration_feeds\[0\]\[0\] \(input 'img'\) has shape \(1, 10, 10, 3\), "
                                         r"the model takes \(1, 12, 12, 3\)"):
        convert(model, _ini(d / "c.ini"), stats, quant_level="L2", calibration_feeds=wrong, output_path=out)
    with pytest.raises(InputError, match=r"calibration_feeds\[1\] holds 2 array\(s\) but the model has 1 input"):
        convert(model, _ini(d / "c.ini"), stats, quant_level="L5", calibration_feeds=[feeds[0], feeds[0] * 2],
                output_path=out)
    assert not out.exists() and not list(tmp_path.iterdir())
