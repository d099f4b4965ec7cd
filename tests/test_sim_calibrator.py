"""SIM_Calibrator: the vendor's registration and convert() rules, multi-input and chained models,
multi-process determinism, quant level overrides, import-only conversion, and one real model (slow)."""
from __future__ import annotations

import logging
import os
import re

import numpy as np
import pytest

import calibrator_custom
import simnets as sn
from calibrator_custom.calib import collect_stats_arrays
from calibrator_custom.pipeline.convert import convert
from calibrator_custom.pipeline.export import export_quant_param
from calibrator_custom.quant.qparam import load_quant_param
from conftest import IMAGES_DIR, MODELS_DIR, require_shared


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("simcal")
    return {"dir": d, "a": sn.model_a(d), "b": sn.model_b(d), "two": sn.two_input_model(d)}


@pytest.fixture
def chain(models):
    return sn.ChainNet(models["a"], models["b"])


def _gen(n: int, seed: int = 0):
    return iter([[sn.normalized(p)] for p in sn.pixels(n, seed)])


def _paths(tmp_path, tag: str) -> list[str]:
    return [str(tmp_path / f"a_{tag}_fixed.sim"), str(tmp_path / f"b_{tag}_fixed.sim")]


def _bytes(paths) -> list[bytes]:
    return [open(p, "rb").read() for p in paths]


# ---------------------------------------------------------------------------------------- registration
def test_assigned_calibrators_are_registered_in_definition_order(models):
    net = sn.ChainNet(models["a"], models["b"])
    assert list(net._calibrators) == ["a", "b"]
    assert isinstance(net.a, calibrator_custom.calibrator) and net.a.model == models["a"][0]
    assert "pid_dir" not in net._calibrators and net.pid_dir is None  # ordinary attributes stay ordinary
    text = repr(net)
    assert text.startswith("ChainNet:\na (\nInput(0):\n")
    assert "\nb (\nInput(0):\n    index:\t0\n    name:\tb_in\n" in text


def test_print_model_is_the_vendors_text(models):
    cal = calibrator_custom.calibrator(*models["a"])
    expected = ("(\nInput(0):\n    index:\t0\n    name:\timg\n    shape:\t[1, 8, 8, 3]\n"
                "    dtype:\t<class 'numpy.float32'>\nOutput(0):\n    index:\t0\n    name:\ta_out\n"
                "    shape:\t[1, 8, 8, 4]\n    dtype:\t<class 'numpy.float32'>\n)\n")
    assert calibrator_custom.SIM_Calibrator.print_model(cal) == expected


def test_unknown_attribute_is_a_value_error(models):
    net = sn.ChainNet(models["a"], models["b"])
    with pytest.raises(ValueError, match=r"'ChainNet' object has no attribute 'c' \(registered calibrators: a, b\)"):
        net.c  # noqa: B018
    assert not hasattr(net, "c")  # also an AttributeError, so hasattr / getattr(default) keep working


def test_register_with_a_non_str_name_is_a_type_error(models):
    net = sn.ChainNet(models["a"], models["b"])
    with pytest.raises(TypeError, match="calibrators name should be a string. Got <class 'int'>"):
        net.register_calibrator(1, net.a)


def test_register_with_an_empty_name_is_a_key_error(models):
    net = sn.ChainNet(models["a"], models["b"])
    with pytest.raises(KeyError) as info:
        setattr(net, "", net.a)
    assert info.value.args == ("calibrators name can't be empty string \"\"",)


def test_assigning_before_super_init_is_an_attribute_error(models):
    class Early(calibrator_custom.SIM_Calibrator):
        def __init__(self):
            self.a = calibrator_custom.calibrator(*models["a"])
            super().__init__()

    with pytest.raises(AttributeError, match=r"cannot assign calibrators before Early.__init__\(\) call"):
        Early()


def test_assigning_other_values_to_a_registered_name(models):
    net = sn.ChainNet(models["a"], models["b"])
    with pytest.raises(TypeError, match="cannot assign .* as calibrators 'a'"):
        net.a = 3
    net.a = None  # unregisters
    assert list(net._calibrators) == ["b"]
    del net.b
    assert list(net._calibrators) == []


def test_forward_must_be_implemented(models):
    class NoForward(calibrator_custom.SIM_Calibrator):
        def __init__(self):
            super().__init__()
            self.a = calibrator_custom.calibrator(*models["a"])

    with pytest.raises(NotImplementedError, match="NoForward.forward is not implemented"):
        NoForward().convert(_gen(1), num_process=1)


# ---------------------------------------------------------------------------------------- convert() errors
def test_convert_needs_a_generator(chain, tmp_path):
    with pytest.raises(ValueError, match="^SIM_Calibrator need data generator for input$"):
        chain.convert([[sn.normalized(p)] for p in sn.pixels(2)], fix_model=_paths(tmp_path, "x"))


def test_fix_model_count_must_match(chain, tmp_path):
    with pytest.raises(ValueError, match="^Num of fix_models must equal Num of models: fix_model has 1"):
        chain.convert(_gen(2), fix_model=_paths(tmp_path, "x")[:1])


def test_cmd_model_count_must_match(chain, tmp_path):
    with pytest.raises(ValueError, match="^Num of cmd_models must equal Num of models: cmd_model has 3"):
        chain.convert(_gen(2), cmd_model=["x", "y", "z"], fix_model=_paths(tmp_path, "x"))


def test_unknown_quant_level(chain, tmp_path):
    with pytest.raises(ValueError, match="Unknown quant_level 'L6'; use one of L1, L2, L3, L4, L5"):
        chain.convert(_gen(2), quant_level="L6", fix_model=_paths(tmp_path, "x"))


def test_malformed_quant_param(chain, tmp_path):
    with pytest.raises(ValueError, match=r"bit of quant_param\[0\]: a_out must be `int`"):
        chain.convert(_gen(2), quant_param=[{"name": "a_out", "min": [0.0], "max": [1.0], "bit": "16"}],
                      fix_model=_paths(tmp_path, "x"))


def test_quant_param_naming_no_tensor_of_any_model(chain, tmp_path):
    with pytest.raises(ValueError, match=r"quant_param\[0\]: no tensor named 'nope' in any of the models"):
        chain.convert(quant_param=[{"name": "nope", "min": [0.0], "max": [1.0], "bit": 16}],
                      fix_model=_paths(tmp_path, "x"))


def test_import_only_conversion_needs_quant_param(chain, tmp_path):
    with pytest.raises(ValueError, match="^quant_param cannot be None"):
        chain.convert(fix_model=_paths(tmp_path, "x"))


def test_mixed_precision_other_than_sp_and_unknown_keywords_warn_and_convert(chain, tmp_path, caplog):
    paths = _paths(tmp_path, "mp")
    with caplog.at_level(logging.WARNING, logger="calibrator_custom"):
        got = chain.convert(_gen(2), num_process=1, quant_level="L1", mixed_precision="mp", fix_model=paths,
                            show_log=True, work_mode="single_core")
    assert got == paths and all(os.path.isfile(p) for p in paths)
    assert "mixed_precision 'mp' is not implemented here; using 'sp'" in caplog.text
    assert "keyword show_log=True has no effect here" in caplog.text
    assert "keyword work_mode='single_core' has no effect here" in caplog.text


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_num_process_must_be_a_positive_integer(chain, tmp_path, bad):
    with pytest.raises(ValueError, match="num_process must be an integer >= 1"):
        chain.convert(_gen(2), num_process=bad, fix_model=_paths(tmp_path, "x"))


def test_empty_generator(chain, tmp_path):
    with pytest.raises(ValueError, match="the data generator yielded no samples"):
        chain.convert(iter([]), fix_model=_paths(tmp_path, "x"))


def test_no_registered_calibrator():
    class Empty(calibrator_custom.SIM_Calibrator):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="Empty has no registered calibrator"):
        Empty().convert(_gen(1))


def test_missing_output_folder_is_reported_before_calibrating(chain, tmp_path):
    with pytest.raises(ValueError, match="folder .*nowhere.* does not exist"):
        chain.convert(_gen(2), fix_model=[str(tmp_path / "nowhere" / "a.sim"), str(tmp_path / "b.sim")])


def test_cmd_model_gets_the_cmodel_float_models(chain, tmp_path):
    from calibrator_custom.model.graph import load_model

    paths = _paths(tmp_path, "cmd")
    cmd = [str(tmp_path / "a_cmodel_float.sim"), str(tmp_path / "b_cmodel_float.sim")]
    assert chain.convert(_gen(2), num_process=2, quant_level="L1", cmd_model=cmd, fix_model=paths) == paths
    assert all(os.path.isfile(p) for p in paths + cmd)
    xs = [sn.normalized(p) for p in sn.pixels(2)]
    img = {t.name: t for t in load_model(cmd[0]).main.tensors}["img"].quantization
    assert img.min == (min(float(x.min()) for x in xs),) and img.max == (max(float(x.max()) for x in xs),)
    b_in = {t.name: t for t in load_model(cmd[1]).main.tensors}["b_in"].quantization
    a_out = {t.name: t for t in load_model(cmd[0]).main.tensors}["a_out"].quantization
    assert (b_in.min, b_in.max) == (a_out.min, a_out.max)  # b is fed a's output (ChainNet)
    # the SDK's second stage: cmodel-float files -> fixed models, with no calibration data
    again = sn.ChainNet((chain.a.model, chain.a.input_config), (chain.b.model, chain.b.input_config))
    fixed = again.convert_fixed(cmd_model=cmd, fix_model=_paths(tmp_path, "from_cmd"))
    for ours, ref in zip(fixed, paths):  # L1 from the stored min/max = L1 from the statistics, per tensor
        got, want = (calibrator_custom.fixed_simulator(p).get_tensor_details() for p in (ours, ref))
        assert [(t["name"], t["dtype"], t.get("quantization")) for t in got] == \
            [(t["name"], t["dtype"], t.get("quantization")) for t in want]
    with pytest.raises(ValueError, match="cmodel-float model 'gone.sim' does not exist"):
        again.convert_fixed(cmd_model=["gone.sim", "gone.sim"], fix_model=_paths(tmp_path, "gone"))


def test_forward_error_in_a_worker_is_raised_with_its_type(models, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)

    class Failing(sn.ChainNet):
        def forward(self, x):
            if float(x.mean()) == self.bad_mean:
                raise RuntimeError("boom in forward")
            return super().forward(x)

    samples = [[sn.normalized(p)] for p in sn.pixels(4)]
    net = Failing(models["a"], models["b"])
    net.bad_mean = float(samples[3][0].mean())  # in the second worker's shard
    with pytest.raises(RuntimeError, match="boom in forward") as info:
        net.convert(iter(samples), num_process=2, fix_model=_paths(tmp_path, "err"))
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "sample #3 of the data generator" in notes and "worker 1 (pid " in notes and "working on sample #3" in notes


# ---------------------------------------------------------------------------------------- conversions
def test_multi_input_model_is_calibrated_on_both_inputs(models, tmp_path):
    model, ini = models["two"]
    net = sn.TwoInputNet(model, ini)
    px, ft = sn.pixels(8, seed=3), sn.feats(8, seed=4)
    out = str(tmp_path / "two_fixed.sim")
    net.convert(iter([[sn.normalized(p), f] for p, f in zip(px, ft)]), num_process=1, quant_level="L2",
                fix_model=[out])
    fsim, xsim = calibrator_custom.float_simulator(model), calibrator_custom.fixed_simulator(out)
    d0, d1 = xsim.get_input_details()
    assert d0["dtype"] is np.uint8 and d1["dtype"] is np.float32 and d1["input_formats"] == "RAWDATA_F32_NHWC"
    # the add's INT16 range must cover what forward fed 'feat' (|feat| up to 3; a default [-1, 1] would clip)
    det = {t["name"]: t for t in xsim.get_tensor_details()}
    assert det["out_int16"]["quantization"][0][0] * 32767 >= max(float(np.abs(f).max()) for f in ft)
    refs, gots = [], []
    for p, f in zip(sn.pixels(4, seed=5), sn.feats(4, seed=6)):  # unseen samples
        (ref,) = sn.run(fsim, sn.normalized(p), f)
        (got,) = sn.run(xsim, p, f)
        assert got.shape == ref.shape == (1, 8, 8, 4) and got.dtype == np.float32
        refs.append(ref)
        gots.append(got)
    # 8-bit per-channel weights on exact uint8 pixels: about 40 dB for one conv; INT16 add adds ~nothing.
    # A 'feat' range clipped to [-1, 1] would leave errors of ~1 on values up to 3 (SQNR < 15 dB).
    assert sn.sqnr_db(np.stack(refs), np.stack(gots)) > 30


def test_chained_models_are_both_converted(models, tmp_path):
    net = sn.ChainNet(models["a"], models["b"])
    paths = _paths(tmp_path, "chain")
    net.convert(_gen(8, seed=7), num_process=1, quant_level="L2", fix_model=paths)
    fa, fb = (calibrator_custom.float_simulator(m) for m, _ in (models["a"], models["b"]))
    xa, xb = (calibrator_custom.fixed_simulator(p) for p in paths)
    e2e_ref, e2e_got = [], []
    for p in sn.pixels(4, seed=8):
        (ya,) = sn.run(fa, sn.normalized(p))
        (ya_fixed,) = sn.run(xa, p)
        assert ya_fixed.shape == ya.shape == (1, 8, 8, 4) and ya_fixed.dtype == np.float32
        assert sn.sqnr_db(ya, ya_fixed) > 30  # same bound and reason as the multi-input test
        (yb,) = sn.run(fb, ya)
        (yb_fixed,) = sn.run(xb, ya)  # B alone, on the float A output it was calibrated on
        assert yb_fixed.shape == yb.shape == (1, 8, 8, 2)
        assert sn.sqnr_db(yb, yb_fixed) > 30
        e2e_ref.append(yb)
        e2e_got.append(sn.run(xb, ya_fixed)[0])
    # both stages' noise adds up: allow 6 dB less end to end
    assert sn.sqnr_db(np.stack(e2e_ref), np.stack(e2e_got)) > 24


@pytest.mark.parametrize("level", ["L2", "L5"])
def test_one_and_two_processes_give_byte_identical_models(models, tmp_path, monkeypatch, level):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    outs = {}
    for n in (1, 2):
        pid_dir = tmp_path / f"pids{n}"
        pid_dir.mkdir()
        net = sn.ChainNet(models["a"], models["b"], pid_dir=pid_dir)
        outs[n] = _paths(tmp_path, f"{level}_{n}")
        net.convert(_gen(6, seed=9), num_process=n, quant_level=level, fix_model=outs[n])
        pids = {int(f.name) for f in pid_dir.iterdir()}
        assert pids == {os.getpid()} if n == 1 else (len(pids) == 2 and os.getpid() not in pids)
    assert _bytes(outs[1]) == _bytes(outs[2])


def test_progress_bar_counts_samples_from_the_workers(models, tmp_path, monkeypatch):
    import io
    import sys

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    stream = Tty()
    monkeypatch.setattr(sys, "stderr", stream)  # a terminal: bars
    sn.ChainNet(models["a"], models["b"]).convert(_gen(5), num_process=2, quant_level="L1",
                                                  fix_model=_paths(tmp_path, "bar"))
    lines = stream.getvalue().split("\n")
    stats = [line.rsplit("\r", 1)[-1] for line in lines if "SIM_Calibrator statistics (samples) [" in line]
    assert len(stats) == 1 and " 5/5 " in stats[0]
    # then each model's conversion phases, named after the calibrator
    assert any(line.rsplit("\r", 1)[-1].startswith("a: writing the fixed model [") for line in lines)
    assert any(line.rsplit("\r", 1)[-1].startswith("b: writing the fixed model [") for line in lines)


@pytest.mark.parametrize("level", ["L5", "L2"])
def test_l5_and_l2_use_what_forward_fed_each_model(models, tmp_path, monkeypatch, level):
    """Two workers; A's feeds are the samples, B's are A's float outputs: same models as pipeline.convert
    given independently collected statistics and those feeds (L5 measures on them, L2 checks its bias
    correction on them)."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    samples = [[sn.normalized(p)] for p in sn.pixels(6, seed=10)]
    paths = _paths(tmp_path, level)
    from calibrator_custom.pipeline import convert as convert_module
    checked, real = [], convert_module.checked_bias_correction

    def spy(pi, plan, overrides, feeds, *a, **k):
        checked.append(len(feeds))
        return real(pi, plan, overrides, feeds, *a, **k)
    monkeypatch.setattr(convert_module, "checked_bias_correction", spy)
    sn.ChainNet(models["a"], models["b"]).convert(iter(samples), num_process=2, quant_level=level, fix_model=paths)
    checked_by_forward = list(checked)
    fa = calibrator_custom.float_simulator(models["a"][0])
    b_feeds = [[sn.run(fa, s[0])[0]] for s in samples]
    for (model, ini), feeds, path in zip((models["a"], models["b"]), (samples, b_feeds), paths):
        ref = tmp_path / f"ref_{os.path.basename(path)}"
        convert(model, ini, collect_stats_arrays(model, feeds), quant_level=level, calibration_feeds=feeds,
                output_path=ref)
        assert ref.read_bytes() == open(path, "rb").read()
    if level == "L2":  # the bias correction's check got each model's 6 inputs
        assert checked_by_forward == [6, 6]


def test_all_int16_configs_force_l2(models, tmp_path, caplog):
    a16 = sn.model_a(models["dir"], "a16_float.sim", conv="ALL_INT16")

    class One(calibrator_custom.SIM_Calibrator):
        def __init__(self):
            super().__init__()
            self.a = calibrator_custom.calibrator(*a16)

        def forward(self, x):
            return sn.run(self.a, x)

    l5, l2 = str(tmp_path / "l5_fixed.sim"), str(tmp_path / "l2_fixed.sim")
    with caplog.at_level(logging.INFO, logger="calibrator_custom"):
        One().convert(_gen(4), num_process=1, quant_level="L5", fix_model=[l5])
    assert "ALL_INT16: quant_level L5 -> L2" in caplog.text
    One().convert(_gen(4), num_process=1, quant_level="L2", fix_model=[l2])
    assert open(l5, "rb").read() == open(l2, "rb").read()
    det = {t["name"]: t for t in calibrator_custom.fixed_simulator(l5).get_tensor_details()}
    assert det["a_out_w"]["dtype"] == "INT16"


def test_quant_param_forces_l1(models, tmp_path, caplog):
    qp = [{"name": "a_out", "min": [0.0], "max": [8.0], "bit": 16}]
    l5, l1 = _paths(tmp_path, "qp5"), _paths(tmp_path, "qp1")
    with caplog.at_level(logging.INFO, logger="calibrator_custom"):
        sn.ChainNet(models["a"], models["b"]).convert(_gen(4), num_process=1, quant_level="L5", quant_param=qp,
                                                      fix_model=l5)
    assert "quant_param given: quant_level L5 -> L1" in caplog.text
    sn.ChainNet(models["a"], models["b"]).convert(_gen(4), num_process=1, quant_level="L1", quant_param=qp,
                                                  fix_model=l1)
    assert _bytes(l5) == _bytes(l1)
    det = {t["name"]: t for t in calibrator_custom.fixed_simulator(l5[0]).get_tensor_details()}
    assert det["a_out_int16"]["quantization"][0][0] == pytest.approx(8.0 / 32767, rel=1e-6)


@pytest.mark.parametrize("level", ["L1", "L5"])
def test_import_only_conversion_reproduces_the_exported_models(models, tmp_path, level):
    """convert(quant_param=...) without data, from the items exported from a data conversion of both models."""
    data_paths, import_paths = _paths(tmp_path, f"data{level}"), _paths(tmp_path, f"import{level}")
    net = sn.ChainNet(models["a"], models["b"])
    net.convert(_gen(6, seed=11), num_process=1, quant_level=level, fix_model=data_paths)
    items = export_quant_param(data_paths[0]) + export_quant_param(data_paths[1])
    assert {"a_out", "b_in", "b_out"} <= {it["name"] for it in items}
    sn.ChainNet(models["a"], models["b"]).convert(quant_param=items, fix_model=import_paths)
    assert _bytes(import_paths) == _bytes(data_paths)


def test_quant_param_data_changes_the_fixed_model_only(models, tmp_path):
    model, ini = models["a"]
    before = open(model, "rb").read()
    qp = [{"name": "a_out_w", "min": [-0.5], "max": [0.5], "bit": 8, "data": np.zeros((4, 3, 3, 3))}]
    paths = _paths(tmp_path, "data")
    sn.ChainNet(models["a"], models["b"]).convert(_gen(4), num_process=1, quant_param=qp, fix_model=paths)
    assert open(model, "rb").read() == before
    assert not [f for f in os.listdir(os.path.dirname(model)) if f.startswith("Origin_")]
    # zero weights: the conv output is relu6(bias) everywhere
    p = sn.pixels(1, seed=12)[0]
    (got,) = sn.run(calibrator_custom.fixed_simulator(paths[0]), p)
    fsim = calibrator_custom.float_simulator(model)
    (ref,) = sn.run(fsim, sn.normalized(p))
    bias = fsim.get_tensor("a_out_b").astype(np.float64)
    assert got.shape == ref.shape == (1, 8, 8, 4) and got.dtype == np.float32
    assert not np.allclose(ref, np.clip(bias, 0, 6), atol=0.1)  # the float model's own weights are not zero
    np.testing.assert_allclose(got, np.broadcast_to(np.clip(bias, 0, 6), got.shape), atol=1e-3)


def test_save_quant_info_writes_importable_items(models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = sn.ChainNet(models["a"], models["b"])
    net.save_quant_info = True
    paths = _paths(tmp_path, "qi")
    net.convert(_gen(4), num_process=1, quant_level="L2", fix_model=paths)
    items = load_quant_param(tmp_path / "quant_info_a.pkl") + load_quant_param(tmp_path / "quant_info_b.pkl")
    again = _paths(tmp_path, "qi_again")
    sn.ChainNet(models["a"], models["b"]).convert(quant_param=items, fix_model=again)
    assert _bytes(again) == _bytes(paths)


def test_returned_paths_follow_the_vendors_naming(tmp_path):
    a = sn.model_a(tmp_path, "det_float.sim")
    b = sn.model_b(tmp_path, "head.tflite")
    paths = sn.ChainNet(a, b).convert(_gen(2), num_process=1, quant_level="L1")
    assert paths == [str(tmp_path / "det_fixed.sim"), str(tmp_path / "head_fixed.sim")]
    assert all(calibrator_custom.fixed_simulator(p).class_type == "FIXED" for p in paths)


def test_num_process_is_capped_at_the_number_of_samples(models, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    with caplog.at_level(logging.INFO, logger="calibrator_custom"):
        sn.ChainNet(models["a"], models["b"], pid_dir=pid_dir).convert(_gen(3), num_process=10, quant_level="L1",
                                                                       fix_model=_paths(tmp_path, "cap"))
    assert "on 3 sample(s) in 3 process(es)" in caplog.text
    pids = {int(f.name) for f in pid_dir.iterdir()}
    assert len(pids) == 3 and os.getpid() not in pids


def test_num_process_is_capped_at_the_cpu_count(models, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    with caplog.at_level(logging.INFO, logger="calibrator_custom"):
        sn.ChainNet(models["a"], models["b"], pid_dir=pid_dir).convert(_gen(4), num_process=10, quant_level="L1",
                                                                       fix_model=_paths(tmp_path, "cpu"))
    assert "on 4 sample(s) in 1 process(es)" in caplog.text
    assert {int(f.name) for f in pid_dir.iterdir()} == {os.getpid()}


# ---------------------------------------------------------------------------------------- a real model
@pytest.mark.slow
def test_face_detection_with_builtin_preprocess(tmp_path, monkeypatch):
    """The vendor's example network (forward(x) with x = [per-input arrays] from utils.image_generator),
    4 calibration photos, L2, 2 processes; fixed outputs track the float model on 2 other photos."""
    require_shared()
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    model = MODELS_DIR / "face_detection_short_range.tflite"
    ini = tmp_path / "face.ini"
    ini.write_text("[INPUT_CONFIG]\ninputs=input;\ntraining_input_formats=RGB;\ninput_formats=RGB;\n"
                   "mean=127.5:127.5:127.5;\nstd_value=127.5;\n[OUTPUT_CONFIG]\noutputs=regressors,classificators;\n"
                   "dequantizations=TRUE,TRUE;\n")

    class Net(calibrator_custom.SIM_Calibrator):
        def __init__(self):
            super().__init__()
            self.model = calibrator_custom.calibrator(str(model), str(ini))

        def forward(self, x):
            return sn.run(self.model, *x)

    photos = sorted(IMAGES_DIR.glob("*.jpg"))
    assert len(photos) >= 32
    pre = calibrator_custom.utils.image_preprocess_func("face_detection_short_range")
    out = str(tmp_path / "face_fixed.sim")
    net = Net()
    assert re.search(r"model \(\nInput\(0\):\n    index:\t0\n    name:\tinput\n", repr(net))
    net.convert(calibrator_custom.utils.image_generator([str(p) for p in photos[:4]], [pre]), num_process=2,
                quant_level="L2", fix_model=[out])
    fsim, xsim = calibrator_custom.float_simulator(model), calibrator_custom.fixed_simulator(out)
    for p in photos[30:32]:
        refs = sn.run(fsim, pre(str(p), True))
        gots = sn.run(xsim, pre(str(p), False))
        for k, (ref, got) in enumerate(zip(refs, gots)):
            assert got.shape == ref.shape and got.dtype == np.float32
            # the bound of tests/test_fixed_models.py for this model at L2 (there with 6 photos)
            assert sn.sqnr_db(ref, got) > 8, f"output {k}"
