"""accuracy_analysis on tiny built models (and one shared model): every row checked against the public
simulators or an independent computation, the issue-6 acceptance cases, JSON, HTML, errors."""
from __future__ import annotations

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest

import calibrator_custom
from analysis_nets import (MEAN, SIDE, STD, chain_net, convert_to, detector_net, image_feeds, ini, normalized,
                           pixels, two_by_two_net)
from calibrator_custom.analysis import AnalysisReport, Metrics, accuracy_analysis
from calibrator_custom.analysis.gains import TrialRunner, _Replanner
from calibrator_custom.calib import collect_stats_arrays
from calibrator_custom.config import load_input_config
from calibrator_custom.errors import ConfigError, InputError, ModelError
from calibrator_custom.model.graph import load_model
from calibrator_custom.pipeline.measure import _e2e_nsr, _isolated, _Measure
from calibrator_custom.quant.planner import PlanInputs
from calibrator_custom.pipeline.export import export_quant_param
from calibrator_custom.quant.qparam import import_quant_param
from conftest import IMAGES_DIR, MODELS_DIR, require_shared

EVAL_SEED = 9
N_EVAL = 6
#: ALL_INT16 bound (see test_all_int16_every_layer_isolated_sqnr_above_the_bound)
INT16_BOUND_DB = 70.0


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    d = tmp_path_factory.mktemp("chain")
    model = chain_net(d / "chain_float.sim")
    calib = image_feeds(8)
    fixed = convert_to(model, ini(d / "c.ini"), calib, d / "chain_fixed.sim")
    feeds = image_feeds(N_EVAL, EVAL_SEED)
    rep = accuracy_analysis(model, fixed, feeds)
    return d, model, fixed, calib, feeds, rep


def _float_values(model, feeds) -> dict[str, list[np.ndarray]]:
    sim = calibrator_custom.float_simulator(model)
    out: dict[str, list[np.ndarray]] = {}
    for f in feeds:
        for k, x in enumerate(f):
            sim.set_input(k, x)
        sim.invoke(keep="all")
        for t in sim.get_tensor_details():
            try:
                out.setdefault(t["name"], []).append(sim.get_tensor(t["name"]).astype(np.float64))
            except ValueError:
                pass
    return out


def _naive(refs, tests) -> dict:
    r = np.concatenate([np.ravel(x) for x in refs]).astype(np.float64)
    t = np.concatenate([np.ravel(x) for x in tests]).astype(np.float64)
    e = t - r
    return {"sqnr_db": 10 * np.log10(np.sum(r * r) / np.sum(e * e)), "mse": np.mean(e * e),
            "max_abs": np.max(np.abs(e)), "cosine": np.dot(r, t) / np.sqrt(np.dot(r, r) * np.dot(t, t))}


def _check_metrics(m: Metrics, expected: dict) -> None:
    for k, v in expected.items():
        assert getattr(m, k) == pytest.approx(v, rel=1e-9, abs=1e-12), k


def _dequantized_output(sim, k: int, details: dict) -> np.ndarray:
    """Output ``k`` of a fixed simulator in float64: a Fix2Float output is the float32 rounding of its
    ``<name>_int16`` tensor (checked), which the report compares, dequantized in float64."""
    name = sim.get_output_details()[k]["name"]
    scale, zp = details[f"{name}_int16"]["quantization"][0]
    real = (sim.get_tensor(f"{name}_int16").astype(np.float64) - zp) * scale
    np.testing.assert_array_equal(sim.get_output(k), real.astype(np.float32))
    return real


def test_rows_are_the_runtime_tensors_in_graph_order(chain):
    *_, rep = chain
    assert [r.name for r in rep.layers] == ["img", "t", "u", "v", "d", "gap", "fc", "out"]
    assert [r.op for r in rep.layers] == ["INPUT", "CONV_2D", "CONV_2D", "ADD", "DEPTHWISE_CONV_2D", "MEAN",
                                          "FULLY_CONNECTED", "LOGISTIC"]
    assert [r.position for r in rep.layers] == list(range(8))
    assert all(r.status == "ok" for r in rep.layers) and rep.fused == ()
    assert [r.name for r in rep.outputs] == ["out"]
    assert rep.layer("t").shape == (1, SIDE, SIDE, 8) and rep.num_samples == N_EVAL
    with pytest.raises(KeyError, match="w1"):
        rep.layer("w1")  # constants are not layers


def test_accumulated_errors_match_the_public_simulators(chain):
    d, model, fixed, calib, feeds, rep = chain
    floats = _float_values(model, feeds)
    sim = calibrator_custom.fixed_simulator(fixed)
    details = {t["name"]: t for t in sim.get_tensor_details()}
    outs, vs = [], []
    for p in pixels(N_EVAL, EVAL_SEED):
        sim.set_input(0, p)
        sim.invoke(keep="all")
        outs.append(_dequantized_output(sim, 0, details))
        scale, zp = details["v"]["quantization"][0]
        vs.append((sim.get_tensor("v").astype(np.float64) - zp) * scale)
    assert sim.get_output(0).dtype == np.float32 and outs[0].shape == (1, 4)
    _check_metrics(rep.layer("out").accumulated, _naive(floats["out"], outs))
    _check_metrics(rep.layer("v").accumulated, _naive(floats["v"], vs))
    m = rep.layer("v").accumulated
    span = max(x.max() for x in floats["v"]) - min(x.min() for x in floats["v"])
    assert m.rel_max_abs == pytest.approx(m.max_abs / span, rel=1e-12)
    assert m.count == N_EVAL * 1 * SIDE * SIDE * 8


def test_isolated_conv_errors_match_the_converters_measurement(chain):
    """convert._isolated (the converter's L5 measurement, a separate implementation) on the same inputs."""
    d, model, fixed, calib, feeds, rep = chain
    fm = load_model(model)
    pi = PlanInputs.create(fm, collect_stats_arrays(model, calib), load_input_config(d / "c.ini", fm))
    nsr, _ = _isolated(pi, load_model(fixed), _Measure.collect(pi, feeds), [c.op_index for c in pi.convs])
    names = {c.op_index: pi.graph.tensors[pi.step_of(c.op_index).outputs[0]].name for c in pi.convs}
    assert sorted(names.values()) == ["d", "fc", "t", "u"]
    for k, v in nsr.items():
        if names[k] != "t":
            assert rep.layer(names[k]).isolated.sqnr_db == pytest.approx(-10 * math.log10(v), rel=1e-9)
    # t reads the model input, which the report takes as the fixed model's own InputNormalize makes it
    # (convert._isolated re-quantizes the float input, breaking the image's rounding ties otherwise), so
    # alone it makes exactly the accumulated error
    assert rep.layer("t").isolated == rep.layer("t").accumulated
    assert rep.layer("t").isolated.sqnr_db == pytest.approx(-10 * math.log10(nsr[min(names)]), abs=0.2)
    assert rep.layer("img").isolated == rep.layer("img").accumulated


def test_quantization_info_matches_the_fixed_model(chain):
    d, model, fixed, calib, feeds, rep = chain
    details = {t["name"]: t for t in calibrator_custom.fixed_simulator(fixed).get_tensor_details()}
    floats = _float_values(model, feeds)
    counterpart = {"img": "img_normalized", "out": "out_int16"}
    for r in rep.layers:
        det = details[counterpart.get(r.name, r.name)]
        quant = det["quantization"]
        k = int(np.argmax([s for s, _ in quant]))  # per channel: the coarsest channel is reported
        scale, zp = quant[k]
        sc = np.array([s for s, _ in quant])
        zps = np.array([z for _, z in quant])
        info = np.iinfo({"UINT8": np.uint8, "INT16": np.int16}[det["dtype"]])
        q = r.quant
        assert (q.dtype, q.scale, q.zero_point) == (det["dtype"], pytest.approx(scale, rel=1e-7), zp), r.name
        assert q.range_min == pytest.approx(np.min((info.min - zps) * sc))
        assert q.range_max == pytest.approx(np.max((info.max - zps) * sc))
        assert q.observed_min == min(x.min() for x in floats[r.name])
        assert q.observed_max == max(x.max() for x in floats[r.name])
        x = np.concatenate([np.reshape(v, (-1, v.shape[-1] if len(quant) > 1 else 1)) for v in floats[r.name]])
        lo, hi = (info.min - zps) * sc - sc / 2, (info.max - zps) * sc + sc / 2
        assert q.clipped_share == pytest.approx(np.mean((x < lo) | (x > hi)), abs=1e-12), r.name
    # the UINT8 data of the 8-bit convs is quantized per channel
    assert any(d["dtype"] == "UINT8" and len(d["quantization"]) > 1 for d in details.values())
    assert rep.layer("t").dtype == "INT16" and rep.layer("t").u8_view.dtype == "UINT8"  # t is read by ADD and u
    # v is written by an ADD: INT16, and the conv reading it gets a per-channel UINT8 copy
    assert rep.layer("v").dtype == "INT16" and rep.layer("v").u8_view.dtype == "UINT8"


def test_conv_bits_and_macs(chain):
    *_, rep = chain
    macs = {n: rep.layer(n).conv.macs for n in ("t", "u", "d", "fc")}
    pos = SIDE * SIDE
    assert macs == {"t": pos * 8 * 27, "u": pos * 8 * 72, "d": pos * 8 * 9, "fc": 4 * 8}
    assert {rep.layer(n).conv.bits for n in macs} == {8}
    assert rep.layer("u").conv.input_name == "t" and rep.layer("d").conv.input_name == "v"
    assert rep.layer("v").conv is None
    assert rep.gain_method == "measured" and rep.gain_samples == 4
    assert all(rep.layer(n).conv.gain_db is not None and math.isfinite(rep.layer(n).conv.gain_db) for n in macs)


def test_trial_runner_equals_running_the_whole_trial_model(chain):
    d, model, fixed, calib, feeds, rep = chain
    fm, qm = load_model(model), load_model(fixed)
    pi = PlanInputs.create(fm, collect_stats_arrays(model, calib), load_input_config(d / "c.ini", fm))
    rp = _Replanner(pi, import_quant_param(pi, export_quant_param(qm)))
    meas = _Measure.collect(pi, feeds[:3])
    runner = TrialRunner(pi, rp.model(), feeds[:3])
    assert runner.base_nsr == _e2e_nsr(pi, qm, feeds[:3], meas)
    for c in pi.convs:
        trial = rp.model([c.op_index])
        assert runner.nsr(trial) == _e2e_nsr(pi, trial, feeds[:3], meas)


def test_bad_range_layer_ranks_worst_and_the_suggestion_names_it(tmp_path):
    """The analysis finds a wrong import: the UINT8 range conv u reads (t's copy) imported 10x too small."""
    model = chain_net(tmp_path / "chain_float.sim")
    calib = image_feeds(8)
    t_max = collect_stats_arrays(model, calib).tensors["t"].max
    qp = [{"name": "t_u8", "min": [0.0], "max": [t_max / 10], "bit": 8}]
    fixed = convert_to(model, ini(tmp_path / "c.ini"), calib, tmp_path / "bad_fixed.sim", quant_param=qp)
    rep = accuracy_analysis(model, fixed, image_feeds(N_EVAL, EVAL_SEED))
    worst = rep.worst_layers(3)
    assert worst[0].name == "u"
    assert worst[0].isolated.sqnr_db < 10 and worst[1].isolated.sqnr_db > worst[0].isolated.sqnr_db + 20
    view = rep.layer("t").u8_view
    assert view.range_max == pytest.approx(t_max / 10, rel=1e-3) and view.clipped_share > 0.1
    t_vals = np.concatenate([np.ravel(v) for v in _float_values(model, image_feeds(N_EVAL, EVAL_SEED))["t"]])
    assert view.clipped_share == pytest.approx(np.mean(t_vals > view.range_max + view.scale / 2), abs=1e-12)
    assert rep.layer("t").quant.clipped_share == 0.0  # t's own INT16 range is fine
    s = rep.suggestion
    assert s.tensor_arrays == ("t",) and s.convs == ("u",)
    assert s.predicted_db > s.base_db + 20
    assert rep.layer("u").conv.gain_db > 20
    text = rep.summary()
    assert "tensor_arrays=t;" in text and "upgrades u" in text
    assert text.index("  1  u ") < text.index("Clipping")
    assert "t_u8 (the UINT8 copy 8-bit convs read)" in text


def test_all_int16_every_layer_isolated_sqnr_above_the_bound(tmp_path):
    """Every layer of an all-INT16 model, isolated, is above the bound. INT16 symmetric rounding of a tensor
    whose peak is c times its RMS
    gives SQNR = 10*log10(12 * 32767**2 / c**2) = 101.1 - 20*log10(c) dB. Every tensor here has
    c < 10 (checked), so each rounding is above 81 dB; an op alone adds at most a few such roundings
    (its inputs, 16-bit weights, its output): 70 dB leaves 11 dB for them. 8-bit layers of the same
    model are far below it (checked), so the bound separates the two."""
    model = chain_net(tmp_path / "chain_float.sim")
    calib = image_feeds(8)
    feeds = image_feeds(N_EVAL, EVAL_SEED)
    floats = _float_values(model, feeds)
    for r16 in ("img", "t", "u", "v", "d", "gap", "fc", "out"):
        x = np.concatenate([np.ravel(v) for v in floats[r16]])
        assert np.max(np.abs(x)) < 10 * np.sqrt(np.mean(x * x)), r16
    fixed16 = convert_to(model, ini(tmp_path / "c16.ini", conv="ALL_INT16"), calib, tmp_path / "i16_fixed.sim")
    rep = accuracy_analysis(model, fixed16, feeds, gain_method="off")
    assert len(rep.layers) == 8
    for r in rep.layers:
        assert r.isolated is not None and r.isolated.sqnr_db > INT16_BOUND_DB, (r.name, r.isolated.sqnr_db)
        assert r.dtype == "INT16"
    assert {rep.layer(n).conv.bits for n in ("t", "u", "d", "fc")} == {16}
    assert rep.suggestion is None
    fixed8 = convert_to(model, ini(tmp_path / "c8.ini", conv="ALL_UINT8"), calib, tmp_path / "u8_fixed.sim")
    rep8 = accuracy_analysis(model, fixed8, feeds, gain_method="off")
    assert min(r.isolated.sqnr_db for r in rep8.layers) < INT16_BOUND_DB - 20


def test_json_round_trip(chain, tmp_path):
    *_, rep = chain
    path = tmp_path / "report.json"
    text = rep.to_json(path)
    assert path.read_text() == text
    assert AnalysisReport.from_json(path) == rep
    assert AnalysisReport.from_json(text) == rep
    # infinities survive as strict JSON
    exact = dataclasses.replace(rep.layers[1], isolated=dataclasses.replace(rep.layers[1].isolated,
                                                                            sqnr_db=math.inf, mse=0.0))
    rep2 = dataclasses.replace(rep, layers=(rep.layers[0], exact) + rep.layers[2:])

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    data = json.loads(rep2.to_json(), parse_constant=no_constants)
    assert data["layers"][1]["isolated"]["sqnr_db"] == "inf"
    assert AnalysisReport.from_json(rep2.to_json()) == rep2
    with pytest.raises(ValueError, match="not an accuracy report"):
        AnalysisReport.from_dict({"format": "something else"})


def test_multi_input_multi_output(tmp_path):
    model = two_by_two_net(tmp_path / "two_float.sim")
    rng = np.random.default_rng(5)

    def feeds(n, seed):
        pix = pixels(n, seed)
        return [[normalized(p), rng.standard_normal((1, SIDE, SIDE, 4)).astype(np.float32)] for p in pix], pix
    calib, _ = feeds(8, 1)
    cfg = ini(tmp_path / "two.ini", inputs="img,feat", outputs="o1,o2", deq="TRUE,FALSE",
              formats="RGB,RAWDATA_F32_NHWC", quant="TRUE,TRUE")
    fixed = convert_to(model, cfg, calib, tmp_path / "two_fixed.sim")
    ev, pix = feeds(N_EVAL, EVAL_SEED)
    rep = accuracy_analysis(model, fixed, ev)
    assert [r.name for r in rep.layers] == ["img", "feat", "c", "o1", "gap", "fc", "o2"]
    assert [r.name for r in rep.outputs] == ["o1", "o2"] and rep.fused == ()
    assert rep.layer("feat").quant.dtype == "INT16" and rep.layer("feat").isolated is not None
    # o2 is INT16 (dequantizations=FALSE): real = q * scale, through the public fixed simulator
    sim = calibrator_custom.fixed_simulator(fixed)
    details = {t["name"]: t for t in sim.get_tensor_details()}
    floats = _float_values(model, ev)
    o1, o2 = [], []
    for p, f in zip(pix, ev):
        sim.set_input(0, p)
        sim.set_input(1, f[1])
        sim.invoke(keep="all")
        o1.append(_dequantized_output(sim, 0, details))
        scale, zp = sim.get_output_details()[1]["quantization"]
        o2.append((sim.get_output(1).astype(np.float64) - zp) * scale)
    assert sim.get_output(0).dtype == np.float32 and sim.get_output(1).dtype == np.int16
    _check_metrics(rep.layer("o1").accumulated, _naive(floats["o1"], o1))
    _check_metrics(rep.layer("o2").accumulated, _naive(floats["o2"], o2))
    assert rep.layer("c").conv.input_name == "img"
    # the same analysis with the ini given explicitly
    rep_ini = accuracy_analysis(model, fixed, ev, input_config=cfg, gain_method="off")
    assert [r.accumulated for r in rep_ini.layers] == [r.accumulated for r in rep.layers]


def test_fused_tensors_are_listed(chain):
    d, model, fixed, calib, feeds, rep = chain
    qm = load_model(fixed)
    qm.main.tensors[qm.main.tensor_index("v")].name = "v_renamed"
    out = accuracy_analysis(model, qm, feeds)
    row = out.layer("v")
    assert row.status == "fused" and row.accumulated is None and row.isolated is None
    assert out.fused == ("v",)
    assert any("fused" in n and "v" in n for n in out.notes)
    assert out.layer("d").accumulated == rep.layer("d").accumulated
    assert out.gain_method == "off" and any("quant_param does not fit" in n for n in out.notes)
    assert "Fused (no counterpart in the fixed model): v" in out.summary()


def test_estimated_and_off_gain_methods(chain):
    d, model, fixed, calib, feeds, rep = chain
    est = accuracy_analysis(model, fixed, feeds, gain_method="estimated")
    assert est.gain_method == "estimated" and est.gain_samples == 0
    for n in ("t", "u", "d", "fc"):
        c = est.layer(n).conv
        assert c.gain_db is None and c.est_nsr is not None and c.est_nsr > 0
        assert c.macs == rep.layer(n).conv.macs
    if est.suggestion is not None:
        assert est.suggestion.rule.startswith("estimated") and est.suggestion.predicted_db is None
    off = accuracy_analysis(model, fixed, feeds, gain_method="off")
    assert off.suggestion is None and off.layer("u").conv.gain_db is None and off.layer("u").conv.macs > 0
    assert [r.accumulated for r in off.layers] == [r.accumulated for r in rep.layers]
    assert "16-bit gains were not computed" in off.summary()


def test_image_paths_with_preprocess_and_progress(chain, tmp_path):
    d, model, fixed, calib, feeds, rep = chain
    paths = []
    for k, p in enumerate(pixels(3, EVAL_SEED)):
        path = tmp_path / f"im{k}.png"
        cv2.imwrite(str(path), p[0][:, :, ::-1])
        paths.append(str(path))

    def pre(path, norm=True):
        img = cv2.imread(path)[:, :, ::-1][None]
        return ((img.astype(np.float32) - MEAN) / STD) if norm else img
    calls = []
    out = accuracy_analysis(model, fixed, paths, preprocess_funcs=[pre], gain_samples=2, num_samples=2,
                            progress=lambda *a: calls.append(a))
    assert out.num_samples == 2 and out.gain_samples == 2
    by_arrays = accuracy_analysis(model, fixed, [[normalized(p)] for p in pixels(2, EVAL_SEED)], gain_samples=2)
    assert [r.accumulated for r in out.layers] == [r.accumulated for r in by_arrays.layers]
    assert ("analysis", 2, 2) in calls and ("16-bit gains", 4, 4) in calls


def test_html_is_self_contained(chain):
    *_, rep = chain
    page = rep.to_html()
    assert page.startswith("<!DOCTYPE html>") and page.count("<tr") == len(rep.layers) + 1
    stripped = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http:" not in stripped and "https:" not in stripped and " src=" not in stripped
    assert 'href="data:,"' in page and page.count("href=") == 1
    assert 'class="accumulated"' in page and 'class="isolated"' in page and "<script>" in page
    frag = rep._repr_html_()
    assert "<html" not in frag and "<table" in frag and "<svg" in frag


def test_user_errors(chain, tmp_path):
    d, model, fixed, calib, feeds, rep = chain
    with pytest.raises(ModelError, match="not a fixed model"):
        accuracy_analysis(model, model, feeds)
    with pytest.raises(ModelError, match="is a fixed model"):
        accuracy_analysis(fixed, fixed, feeds)
    other = two_by_two_net(tmp_path / "two_float.sim")
    with pytest.raises(ModelError, match="converted from"):
        accuracy_analysis(other, fixed, feeds)
    with pytest.raises(InputError, match="shape"):
        accuracy_analysis(model, fixed, [np.zeros((1, 3, 3, 3), np.float32)])
    with pytest.raises(InputError, match="no inputs"):
        accuracy_analysis(model, fixed, [])
    with pytest.raises(InputError, match="preprocess"):
        accuracy_analysis(model, fixed, ["a.png"], preprocess_funcs=[str, str])
    with pytest.raises(ConfigError, match="gain_method"):
        accuracy_analysis(model, fixed, feeds, gain_method="fast")
    with pytest.raises(ConfigError, match="gain_samples"):
        accuracy_analysis(model, fixed, feeds, gain_samples=0)
    for exc in (ModelError, InputError, ConfigError):
        assert issubclass(exc, ValueError)


@pytest.mark.slow
def test_face_detection_l2_report_matches_the_public_simulators(tmp_path):
    require_shared()
    from calibrator_custom.utils import image_preprocess_func
    src = MODELS_DIR / "face_detection_short_range.tflite"
    photos = sorted(IMAGES_DIR.glob("*.jpg"))
    pre = image_preprocess_func("face_detection_short_range")
    calib = [[pre(str(p))] for p in photos[:10]]
    sim = calibrator_custom.float_simulator(str(src))
    names = [o["name"] for o in sim.get_output_details()]
    cfg = (f"[INPUT_CONFIG]\ninputs=input;\ntraining_input_formats=RGB;\ninput_formats=RGB;\nmean=127.5:127.5:127.5;\n"
           f"std_value=127.5;\n[OUTPUT_CONFIG]\noutputs={','.join(names)};\ndequantizations=TRUE,TRUE;\n")
    (tmp_path / "fd.ini").write_text(cfg)
    fixed = convert_to(str(src), str(tmp_path / "fd.ini"), calib, tmp_path / "fd_fixed.sim")
    ev = [str(p) for p in photos[30:33]]
    rep = accuracy_analysis(str(src), fixed, ev, preprocess_funcs=[pre], gain_method="estimated")
    assert rep.fused == () and len(rep.layers) == 91 and sorted(r.name for r in rep.outputs) == sorted(names)
    fsim = calibrator_custom.fixed_simulator(fixed)
    details = {t["name"]: t for t in fsim.get_tensor_details()}
    refs, gots = {n: [] for n in names}, {n: [] for n in names}
    for p in ev:
        sim.set_input(0, pre(p))
        sim.invoke()
        # the fixed model gets the pixels nearest to the float input (docs/analysis.md): round half up
        x = pre(p).astype(np.float64)
        fsim.set_input(0, np.clip(np.floor(x * 127.5 + 127.5 + 0.5), 0, 255).astype(np.uint8))
        fsim.invoke(keep="all")
        for k, n in enumerate(names):
            refs[n].append(sim.get_output(k))
            gots[n].append(_dequantized_output(fsim, k, details))
    for n in names:
        _check_metrics(rep.layer(n).accumulated, _naive(refs[n], gots[n]))
    assert sum(1 for r in rep.layers if r.conv is not None) == 37


def test_detection_model_outputs_are_unquantized_rows(tmp_path):
    """A model ending in the float TFLite_Detection_NMS: its outputs stay float32 in the fixed model (rows
    'unquantized', compared without quantization info); the gains measure the post-process's inputs."""
    model = detector_net(tmp_path / "det_float.sim")
    names = ["detectionBoxes", "detectionClasses", "detectionScores", "numDetections"]
    shape = (1, 4, 4, 3)
    calib = [[normalized(p)] for p in pixels(8, 1, shape)]
    fixed = convert_to(model, ini(tmp_path / "det.ini", outputs=",".join(names), deq="TRUE,TRUE,TRUE,TRUE"), calib,
                       tmp_path / "det_fixed.sim")
    rep = accuracy_analysis(model, fixed, [[normalized(p)] for p in pixels(N_EVAL, EVAL_SEED, shape)])
    assert sorted(r.name for r in rep.outputs) == sorted(names) and rep.fused == () and rep.notes == ()
    for n in names:
        r = rep.layer(n)
        assert (r.status, r.dtype, r.quant, r.op) == ("unquantized", "FLOAT32", None, "TFLite_Detection_NMS")
        assert r.accumulated is not None and r.isolated is not None
    assert rep.layer("box_conv").conv.gain_db is not None and rep.layer("score_conv").conv.bits == 8
    if rep.suggestion is not None:
        assert "detection post-process" in rep.suggestion.measured_on
        assert "detection post-process" in rep.summary()
    fm = load_model(model)
    pi = PlanInputs.create(fm, collect_stats_arrays(model, calib), load_input_config(tmp_path / "det.ini", fm))
    runner = TrialRunner(pi, load_model(fixed), calib[:2])
    nms = next(op for op in fm.main.operators if fm.op_name(op) == "TFLite_Detection_NMS")
    assert set(runner.targets) <= {fm.main.tensors[i].name for i in nms.inputs if i >= 0} and runner.targets
    assert "detection post-process" in runner.measured_on
