"""SDK-style user scripts, run unchanged as subprocesses against the package on a shared model.

The scripts in tests/vendor_scripts/ are written here from the SDK manual and the collected SDK facts
(not copied from the SDK): the S1.0.9 calibrator, save_quant_param and import-only conversion, a
SIM_Simulator script, the staged calibrator API, the module-level API, and a 1.1.5 sim_calibrator.
Each test checks the script's results against the package called directly (or against facts the
scripts cannot fake: file bytes, tensor types).
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom import utils
from conftest import IMAGES_DIR, MODELS_DIR, ROOT, require_shared

SCRIPTS = Path(__file__).resolve().parent / "vendor_scripts"
FD = "face_detection_short_range"
INI = ("[INPUT_CONFIG]\ninputs=input;\ntraining_input_formats=RGB;\ninput_formats=RGB;\nquantizations=TRUE;\n"
       "mean=127.5:127.5:127.5;\nstd_value=127.5;\n[OUTPUT_CONFIG]\noutputs=regressors,classificators;\n"
       "dequantizations=TRUE,TRUE;\n")


def run_script(name: str, *args, cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SGS_IPU_DIR", None)
    proc = subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout_s, env=env)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with the shared face detector, its ini, 4 photos and its L1 fixed model (by the S1.0.9 script)."""
    require_shared()
    d = tmp_path_factory.mktemp("vendor_scripts")
    shutil.copy(MODELS_DIR / f"{FD}.tflite", d / "fd.tflite")
    (d / "fd.ini").write_text(INI)
    (d / "imgs").mkdir()
    for p in sorted(IMAGES_DIR.glob("*.jpg"))[:4]:
        shutil.copy(p, d / "imgs" / p.name)
    (d / "out").mkdir()
    proc = run_script("calibrator_s109.py", "-i", "imgs", "-m", "fd.tflite", "--input_config", "fd.ini", "-n", FD,
                      "--quant_level", "L1", "--num_process", "1", "-o", "out/fd_fixed.sim", cwd=d)
    assert proc.stdout.splitlines()[-1] == "Fixed model at: out/fd_fixed.sim"
    return d


def test_module_level_api(work):
    out = run_script("imports_s109.py", work / "out" / "fd_fixed.sim", cwd=work).stdout.splitlines()
    version = calibrator_custom.versions.VERSION
    assert out[0] == f"version {version} {version} {version} S1" and version.startswith("S1.0.9_")
    assert out[1] == "sth 0.002 Fixed True"
    assert out[2] == "simulator_class True"
    assert out[3] == "suffix .cpython-37m-x86_64-linux-gnu.so .cpython-37m-i386-linux-gnu.so"
    passes = utils.COMPILER_PASSES  # the SDK's pass names, listed by the package
    assert out[4] == (f"passes {list(passes['Float2CmodelFloatConfig'])} {list(passes['CmodelFloat2FixedConfig'])} "
                      "[]")
    assert out[5] == "empty The input data is empty, please check the input parameters!"
    assert out[6].startswith("offline offline_simulator") and "fixed_simulator" in out[6]


def test_calibrator_script_writes_the_packages_model(work):
    """The S1.0.9 script's fixed model is the one the package's own L1 conversion writes."""
    from calibrator_custom.pipeline.convert import convert

    cal = calibrator_custom.calibrator(str(work / "fd.tflite"), str(work / "fd.ini"))
    pre = utils.image_preprocess_func(FD)
    for p in sorted((work / "imgs").iterdir()):
        cal.set_input(0, pre(str(p)))
        cal.invoke()
    fixed = convert(cal.model_obj, cal.config, cal.statistics(), quant_level="L1")
    want = calibrator_custom.fixed_simulator(fixed).get_tensor_details()
    got = calibrator_custom.fixed_simulator(str(work / "out" / "fd_fixed.sim")).get_tensor_details()
    assert [(t["name"], t["dtype"], t["min"], t["max"]) for t in got] == \
        [(t["name"], t["dtype"], t["min"], t["max"]) for t in want]


def _int16_weights(path: Path) -> int:
    sim = calibrator_custom.fixed_simulator(str(path))
    return sum(1 for t in sim.get_tensor_details() if t["dtype"] == "INT16" and len(t["shape"]) == 4
               and t.get("quantization"))


@pytest.mark.slow
def test_sensitivity_threshold_reaches_convert(work):
    """-sth set as SIM_calibrator.STH changes the L4 model: a lower threshold upgrades more convolutions."""
    outs = {}
    for sth in ("0.9", "1e-5"):
        out = work / "out" / f"fd_sth_{sth}_fixed.sim"
        run_script("calibrator_s109.py", "-i", "imgs", "-m", "fd.tflite", "--input_config", "fd.ini", "-n", FD,
                   "--quant_level", "L4", "--num_process", "1", "-sth", sth, "-o", out, cwd=work)
        outs[sth] = out
    assert outs["0.9"].read_bytes() != outs["1e-5"].read_bytes()
    assert _int16_weights(outs["1e-5"]) > _int16_weights(outs["0.9"])


def test_quant_file_round_trip(work):
    """save_quant_param (S1.0.9 style) on our fixed model, including its input_normalized item, imports again
    and gives back the same quantization."""
    model = work / "out" / "fd_fixed.sim"
    run_script("save_quant_param_s109.py", "-m", model, cwd=work)
    items = json.loads((work / "out" / "fd_fixed.json").read_text())
    assert "input_normalized" in [i["name"] for i in items]
    proc = run_script("sim_convert_fixed_s109.py", "-m", "fd.tflite", "--input_config", "fd.ini", "--quant_file",
                      "out/fd_fixed.json", "-o", "out/fd_re_fixed.sim", cwd=work)
    assert "convert returned ['out/fd_re_fixed.sim']" in proc.stdout
    before = calibrator_custom.fixed_simulator(str(model)).get_tensor_details()
    after = calibrator_custom.fixed_simulator(str(work / "out" / "fd_re_fixed.sim")).get_tensor_details()
    assert [(t["name"], t["dtype"]) for t in after] == [(t["name"], t["dtype"]) for t in before]
    for a, b in zip(after, before):
        np.testing.assert_allclose(a["min"], b["min"], rtol=1e-6, err_msg=a["name"])
        np.testing.assert_allclose(a["max"], b["max"], rtol=1e-6, err_msg=a["name"])


def test_sim_simulator_script(work):
    proc = run_script("simulator_s109.py", "-i", "imgs", "--float_model", "fd.tflite", "--fixed_model",
                      "out/fd_fixed.sim", "-n", FD, cwd=work)
    assert "Input(0):" in proc.stdout and "Output(1):" in proc.stdout
    assert "float_model (" in proc.stdout and "fixed_model (" in proc.stdout  # repr of the registered models
    assert "batch_idx 1: get_output: batch_idx 1: only 0 here" in proc.stdout
    results = pickle.loads((work / "sim_results.pkl").read_bytes())
    pre = utils.image_preprocess_func(FD)
    fsim = calibrator_custom.float_simulator(str(work / "fd.tflite"))
    qsim = calibrator_custom.fixed_simulator(str(work / "out" / "fd_fixed.sim"))
    images = sorted(str(p) for p in (work / "imgs").iterdir())
    assert len(results) == len(images) == 4
    for path, result in zip(images, results):
        fsim.set_input(0, pre(path))
        fsim.invoke()
        qsim.set_input(0, utils.convert_to_input_formats(pre(path, False), qsim.get_input_details()[0]))
        qsim.invoke()
        for k, (f, q) in enumerate(result):
            np.testing.assert_array_equal(f, fsim.get_output(k))
            np.testing.assert_array_equal(q, qsim.get_output(k))


@pytest.mark.slow
def test_staged_api_script(work):
    out = run_script("staged_api_s109.py", "-i", "imgs", "-m", "fd.tflite", "--input_config", "fd.ini", "-n", FD,
                     "-o", "out", cwd=work)
    lines = [line for line in out.stdout.splitlines() if line.startswith("ok ")]
    cal = calibrator_custom.calibrator(str(work / "fd.tflite"), str(work / "fd.ini"))
    convs = [op for op in cal.model_obj.main.operators if cal.model_obj.op_name(op) in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    n_convs = len(convs)
    n_items = len({i for op in convs for i in op.inputs[:2]})  # inputs and weights, each tensor once
    n_ops = len(cal.model_obj.main.operators)  # one intermediate item per op (its outputs' ranges)
    assert lines[0].startswith("ok minmax ") and lines[0].endswith(f" intermediate {n_ops}")
    assert lines[3] == f"ok op_details {n_convs} first CONV_2D bits [8, 16]"
    assert lines[4] == "ok staged net_cmodel_float.sim Fixed net_stage_fixed.sim weights ['INT16']"
    assert lines[5] == "ok forward_all 4 ['chn', 'intermediate', 'minmax']"
    assert lines[6] == "ok forward_skip 4"
    assert lines[7] == "ok convert_fixed ['net_convert_fixed.sim']"
    # rate 0: every conv 16-bit; rate 1: every conv 8-bit; one item per conv input and weight tensor
    # (a tensor feeding several convs is listed once)
    assert n_items < 2 * n_convs  # the face detector has such shared inputs
    assert lines[8].startswith("ok optimize 3 bits [[16], [8, 16], [8]] sixteen ")
    sixteen = [int(v) for v in lines[8].split("sixteen [")[1].rstrip("]").split(", ")]
    assert sixteen[0] == n_items and 0 < sixteen[1] < n_items and sixteen[2] == 0
    assert lines[9] == "ok convert quant_param ['net_optim_fixed.sim']"
    assert lines[10] == "ok convert keywords ['net_kw_fixed.sim']"
    # (the warnings for show_log= and mixed_precision='mp' are checked in test_sim_calibrator.py: a script
    # that configures no logging does not show the library's warnings)
    for name in ("net_stage_fixed.sim", "net_convert_fixed.sim", "net_optim_fixed.sim", "net_kw_fixed.sim"):
        assert calibrator_custom.fixed_simulator(str(work / "out" / name)).get_input_details()[0]["dtype"] == np.uint8


def test_sim_calibrator_115_default_names(work, tmp_path):
    shutil.copy(work / "fd.tflite", tmp_path / "fd_float.sim")
    proc = run_script("sim_calibrator_115.py", "-i", work / "imgs", "-m", "fd_float.sim", "--input_config",
                      work / "fd.ini", "-n", FD, "--quant_level", "L1", "--num_process", "1", cwd=tmp_path)
    assert proc.stdout.splitlines()[-1] == "Fixed model at: fd_fixed.sim"
    assert calibrator_custom.fixed_simulator(str(tmp_path / "fd_fixed.sim")).get_output_details()[0]["name"] == \
        "regressors"
