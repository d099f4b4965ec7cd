"""The SDK's staged calibrator API and script helpers, on a tiny one-conv model (values computed here)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import calibrator_custom
import simnets as sn
from calibrator_custom import utils
from calibrator_custom.errors import ConfigError, InputError


@pytest.fixture()
def cal(tmp_path):
    model, ini = sn.model_a(tmp_path)
    c = calibrator_custom.calibrator(model, ini)
    return c, tmp_path


def feed(c, pixels):
    for p in pixels:
        sn.run(c, sn.normalized(p))


def test_statistics_mode_skip_gathers_nothing(cal):
    c, _ = cal
    c.set_statistics_mode("skip")
    feed(c, sn.pixels(2))
    assert c.statistics().num_samples == 0 and c.get_minmax() == []
    c.set_statistics_mode("statistics")
    feed(c, sn.pixels(3))
    assert c.statistics().num_samples == 3
    with pytest.raises(ConfigError, match="unknown mode 'histogram'"):
        c.set_statistics_mode("histogram")


def test_get_and_set_statistics_round_trip(cal):
    c, _ = cal
    feed(c, sn.pixels(2))
    items = c.get_statistics()
    xs = [sn.normalized(p) for p in sn.pixels(2)]
    by_name = {i["name"]: i for i in items}
    assert by_name["img"]["min"] == min(float(x.min()) for x in xs)
    assert by_name["img"]["max"] == max(float(x.max()) for x in xs)
    assert int(np.sum(by_name["img"]["bin"])) == sum(x.size for x in xs)  # every value of both runs is counted
    c.reset_statistics()
    c.set_statistics(items)
    assert {s["name"]: s["min"] for s in c.get_statistics()} == {i["name"]: i["min"] for i in items}
    assert c.statistics().tensors["img"] == by_name["img"]["tensor_stats"]


def test_set_statistics_takes_the_sdks_bin_form(cal):
    """The SDK's item is {name, bin}: equal-width counts over the tensor's range (given, or set_minmax's)."""
    c, _ = cal
    values = np.concatenate([sn.normalized(p).ravel() for p in sn.pixels(4)]).astype(np.float64)
    lo, hi = float(values.min()), float(values.max())
    counts, edges = np.histogram(values, bins=2048, range=(lo, hi))
    c.set_statistics([{"name": "img", "bin": counts.tolist(), "min": lo, "max": hi}])
    s = c.statistics().tensors["img"]
    assert s.shape == (1, 8, 8, 3) and (s.min, s.max) == (lo, hi) and s.num_finite == values.size
    half_bin = (hi - lo) / 2048 / 2
    for q in (1, 25, 50, 75, 99):  # centre-placed counts: within half an SDK bin (+ our bin width)
        assert abs(s.percentile(q) - np.percentile(values, q)) <= half_bin + s.histogram.width
    c2 = calibrator_custom.calibrator(c.model, c.input_config)
    c2.set_minmax([{"name": "img", "min": lo, "max": hi}])
    c2.set_statistics([{"name": "img", "bin": counts}])  # range from set_minmax
    assert (c2.statistics().tensors["img"].min, c2.statistics().tensors["img"].max) == (lo, hi)
    c3 = calibrator_custom.calibrator(c.model, c.input_config)
    with pytest.raises(ConfigError, match="the range of its bins is unknown; give 'min' and 'max'"):
        c3.set_statistics([{"name": "img", "bin": counts}])
    with pytest.raises(ConfigError, match="no tensor named 'ghost'"):
        c3.set_statistics([{"name": "ghost", "bin": counts, "min": 0.0, "max": 1.0}])
    with pytest.raises(ConfigError, match="'bin' must be a non-empty list of counts >= 0"):
        c3.set_statistics([{"name": "img", "bin": [-1, 2], "min": 0.0, "max": 1.0}])


def test_intermediate_ranges_are_each_ops_outputs_and_go_into_convert_fixed(cal):
    c, d = cal
    assert c.get_intermediate() == []
    feed(c, sn.pixels(3))
    ref = calibrator_custom.float_simulator(c.model)
    outs = []
    for p in sn.pixels(3):
        sn.run(ref, sn.normalized(p))
        outs.append(ref.get_output(0).copy())
    (item,) = c.get_intermediate()
    assert item["op_index"] == 0 and item["in0_name"] == "img"
    (r,) = item["intermediate_range"]
    assert r["name"] == "a_out"
    assert r["min"] == [min(float(o.min()) for o in outs)] and r["max"] == [max(float(o.max()) for o in outs)]
    c.set_intermediate([{"op_index": 0, "in0_name": "img",
                         "intermediate_range": [{"name": "a_out", "min": [-2.0], "max": [5.0]}]}])
    path = c.convert_fixed(saved_path=str(d / "i_fixed.sim"))
    q = {t["name"]: t for t in calibrator_custom.fixed_simulator(path).get_tensor_details()}["a_out_int16"]
    assert min(q["min"]) == pytest.approx(-2.0) and max(q["max"]) == pytest.approx(5.0)
    with pytest.raises(ConfigError, match="op_index 3 is not an op of the model"):
        c.set_intermediate([{"op_index": 3, "intermediate_range": []}])
    with pytest.raises(ConfigError, match="op 0's first input is 'img', not 'x'"):
        c.set_intermediate([{"op_index": 0, "in0_name": "x", "intermediate_range": []}])
    with pytest.raises(ConfigError, match="'img' is not an output of op 0"):
        c.set_intermediate([{"op_index": 0, "intermediate_range": [{"name": "img", "min": [0.0], "max": [1.0]}]}])


def test_set_minmax_ranges_go_into_convert_fixed(cal):
    c, d = cal
    feed(c, sn.pixels(3))
    c.set_minmax([{"name": "a_out", "min": -2.0, "max": 5.0}])
    path = c.convert_fixed(saved_path=str(d / "a_fixed.sim"))
    assert path == str(d / "a_fixed.sim") and c.model_type == "Fixed"
    out = {t["name"]: t for t in calibrator_custom.fixed_simulator(path).get_tensor_details()}
    # the dequantized output's INT16 tensor takes the imported range (a RELU6 output gathers min 0, max <= 6)
    q = out["a_out_int16"]
    assert q["dtype"] == "INT16" and min(q["min"]) == pytest.approx(-2.0) and max(q["max"]) == pytest.approx(5.0)
    with pytest.raises(ConfigError, match="no tensor named 'ghost'"):
        c.set_minmax([{"name": "ghost", "min": 0.0, "max": 1.0}])


def test_convert_fixed_needs_statistics(cal):
    c, d = cal
    with pytest.raises(InputError, match="no statistics yet"):
        c.convert_fixed(saved_path=str(d / "x_fixed.sim"))


def test_op_details_and_dumps(cal):
    c, _ = cal
    feed(c, sn.pixels(2))
    (conv,) = c.get_op_details(["CONV_2D"])
    w = c.dump_weights()["a_out_w"]
    assert w.shape == (4, 3, 3, 3)
    assert conv["input_tensors"] == ["img", "a_out_w", "a_out_b"] and conv["op_type"] == "CONV_2D"
    assert conv["weights_min"] == pytest.approx(w.reshape(4, -1).min(axis=1).tolist())
    assert conv["weights_max"] == pytest.approx(w.reshape(4, -1).max(axis=1).tolist())
    assert conv["input_shape"] == [1, 8, 8, 3] and conv["weights_shape"] == [4, 3, 3, 3]
    xs = [sn.normalized(p) for p in sn.pixels(2)]
    assert conv["input_min"] == pytest.approx([min(float(x.min()) for x in xs)])
    assert c.get_op_details(["DEPTHWISE_CONV_2D"]) == []
    stats = c.dump_statistics()
    assert stats["img"]["max"] == pytest.approx(max(float(x.max()) for x in xs))


def test_update_data_never_rewrites_the_float_model(cal, caplog):
    c, d = cal
    before = open(c.model, "rb").read()
    feed(c, sn.pixels(2))
    w = c.dump_weights()["a_out_w"]
    with caplog.at_level("WARNING", logger="calibrator_custom"):
        assert c.update_data([{"name": "a_out_w", "min": [float(w.min())], "max": [float(w.max())], "bit": 8,
                               "data": np.zeros_like(w)}]) == c.model
    assert "is not rewritten (the SDK rewrites it)" in caplog.text
    assert open(c.model, "rb").read() == before


def test_convert_cmodel_float_writes_the_calibrated_ranges(cal, caplog):
    """A TFLite-layout float model: the cmodel-float file is that model with the ranges as tensor min/max."""
    c, d = cal
    with pytest.raises(InputError, match="convert_cmodel_float: no statistics yet"):
        c.convert_cmodel_float()
    feed(c, sn.pixels(3))
    xs = [sn.normalized(p) for p in sn.pixels(3)]
    ref = calibrator_custom.float_simulator(c.model)
    outs = []
    for x in xs:
        sn.run(ref, x)
        outs.append(ref.get_output(0).copy())
    with caplog.at_level("WARNING", logger="calibrator_custom"):
        out = c.convert_cmodel_float(utils.CompilerConfig().Float2CmodelFloatConfig())
    assert "is not a vendor float.sim" in caplog.text
    assert out == c.model.replace("_float.sim", "_cmodel_float.sim") and c.model_type == "Cmodel_float"
    from calibrator_custom.model.graph import load_model

    m = load_model(out)
    t = {x.name: x for x in m.main.tensors}
    w = m.tensor_data(t["a_out_w"])
    assert m.dialect == "tflite"
    assert t["img"].quantization.min == (min(float(x.min()) for x in xs),)
    assert t["img"].quantization.max == (max(float(x.max()) for x in xs),)
    assert t["a_out"].quantization.min == pytest.approx((min(float(o.min()) for o in outs),))
    assert t["a_out"].quantization.max == pytest.approx((max(float(o.max()) for o in outs),))
    assert t["a_out_w"].quantization.min == (float(w.min()),) and t["a_out_w"].quantization.max == (float(w.max()),)
    assert not any(x.quantization.scale for x in m.main.tensors)  # float tensors stay float in TFLite
    cm = calibrator_custom.float_simulator(out)
    sn.run(cm, xs[0])
    sn.run(ref, xs[0])
    np.testing.assert_array_equal(cm.get_output(0), ref.get_output(0))


def test_convert_fixed_of_a_cmodel_float_uses_its_stored_ranges(cal):
    c, d = cal
    feed(c, sn.pixels(3))
    c.set_minmax([{"name": "a_out", "min": -2.0, "max": 5.0}])
    cmodel = c.convert_cmodel_float(None, str(d / "s_cmodel_float.sim"))
    fresh = calibrator_custom.calibrator(cmodel, c.input_config)  # no invoke: the file holds the ranges
    path = fresh.convert_fixed(utils.CompilerConfig().CmodelFloat2FixedConfig(), str(d / "s_fixed.sim"))
    q = {t["name"]: t for t in calibrator_custom.fixed_simulator(path).get_tensor_details()}["a_out_int16"]
    assert min(q["min"]) == pytest.approx(-2.0) and max(q["max"]) == pytest.approx(5.0)
    with pytest.raises(InputError, match="no statistics yet"):  # a plain float model holds no ranges
        calibrator_custom.calibrator(c.model, c.input_config).convert_fixed(saved_path=str(d / "n_fixed.sim"))


def test_batch_idx_and_offline_simulator(cal):
    c, _ = cal
    x = sn.normalized(sn.pixels(1)[0])
    c.set_input(0, x, 0)
    c.invoke()
    np.testing.assert_array_equal(c.get_output(0, 0), c.get_output(0))
    with pytest.raises(InputError, match="batch_idx 2: only 0 here"):
        c.set_input(0, x, 2)
    with pytest.raises(ValueError, match="offline models are not supported by this package yet"):
        calibrator_custom.offline_simulator(c.model, None, False, 1)


def test_compiler_config_lists_the_sdks_pass_names(tmp_path, monkeypatch):
    cfg = utils.CompilerConfig()
    # pass names of the SDK's cfg/CompilerConfigS.yaml (docs/vendor_mapping.md)
    debug2float = set(cfg.Debug2FloatConfig())
    assert {"folder_const", "insert_dmacoef_matrix", "check_all_ops_is_supported_or_not"} <= debug2float
    assert "infect_datatype" not in cfg.Debug2FloatConfig(SkipInfectDtype=True)
    assert cfg.Float2CmodelFloatConfig()[:2] == ["fuse_elementwise_to_preceding_ops", "fuse_activation_functions"]
    assert "append_fix2float_operators" in cfg.CmodelFloat2FixedConfig()
    assert cfg.MixedOptimConfig() == []  # not published
    monkeypatch.chdir(tmp_path)
    files = utils.CompilerConfig(useFile=True)
    path = files.CmodelFloat2FixedConfig()
    assert path == "CmodelFloat2FixedConfig.txt"
    assert open(path, encoding="utf-8").read().split() == cfg.CmodelFloat2FixedConfig()
    assert utils.check_passes(path, "x") == cfg.CmodelFloat2FixedConfig()
    del files
    assert not os.path.exists(path)
    with pytest.raises(ConfigError, match="convert_fixed: passes must be a list of pass names"):
        utils.check_passes(3, "convert_fixed")
    with pytest.raises(ConfigError, match="pass file 'gone.txt' does not exist"):
        utils.check_passes("gone.txt", "convert_fixed")


def test_show_process():
    bar = utils.ShowProcess(2)
    bar.show_process()
    bar.show_process()
    assert bar.i == 2
    with pytest.raises(ValueError, match="The input data is empty"):
        utils.ShowProcess(0)


def test_sth_module_attribute_is_read_at_convert_time(tmp_path, monkeypatch):
    """convert passes SIM_calibrator.STH as it is when called (the SDK's tools set it for -sth)."""
    import calibrator_custom.pipeline.convert as qc

    seen = []
    real = qc.convert

    def spy(*args, **kwargs):
        seen.append(kwargs["sensitivity_threshold"])
        return real(*args, **kwargs)

    monkeypatch.setattr("calibrator_custom.sim_calibrator.convert_model", spy)
    a = sn.model_a(tmp_path)

    class Net(calibrator_custom.SIM_Calibrator):
        def __init__(self):
            super().__init__()
            self.a = calibrator_custom.calibrator(*a)

        def forward(self, x):
            sn.run(self.a, x)

    gen = lambda: iter([[sn.normalized(p)] for p in sn.pixels(2)])  # noqa: E731
    monkeypatch.setattr(calibrator_custom.SIM_calibrator, "STH", 0.5)
    Net().convert(gen(), num_process=1, quant_level="L4", fix_model=[str(tmp_path / "x.sim")])
    Net().convert(gen(), num_process=1, quant_level="L4", fix_model=[str(tmp_path / "y.sim")],
                  sensitivity_threshold=0.25)
    assert seen == [0.5, 0.25]
