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
    with pytest.raises(ConfigError, match="bare 'bin' histograms cannot be merged"):
        c.set_statistics([{"name": "img", "bin": np.zeros(4)}])


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


def test_convert_cmodel_float_is_a_copy(cal):
    c, d = cal
    out = c.convert_cmodel_float(utils.CompilerConfig().Float2CmodelFloatConfig())
    assert out == c.model.replace("_float.sim", "_cmodel_float.sim") and c.model_type == "Cmodel_float"
    assert open(out, "rb").read() == open(c.model, "rb").read()


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


def test_compiler_config_files_are_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = utils.CompilerConfig(useFile=True)
    path = cfg.CmodelFloat2FixedConfig()
    assert path == "CmodelFloat2FixedConfig.txt" and os.path.isfile(path)
    del cfg
    assert not os.path.exists(path)
    assert utils.CompilerConfig().MixedOptimConfig() == []


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
