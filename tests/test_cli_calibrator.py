"""sgs-calibrator (``python -m calibrator_custom.calibrator``) run in a subprocess: outputs, -i forms, errors."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom.model.graph import load_model
from calibrator_custom.utils import image_preprocess_func
from clitools import (ROOT, normalized, read_min_max, run_tool, stderr_lines, tiny_model, two_input_model,
                      write_image, write_ini, write_preprocess)
from conftest import IMAGES_DIR, MODELS_DIR, require_shared

FD = "face_detection_short_range"


def calibrate(args, cwd):
    return run_tool("calibrator", args, cwd)


def _ok(proc) -> str:
    """The fixed model path printed on the last stdout line of a successful run."""
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.splitlines()[-1]
    assert last.startswith("Fixed model at: "), proc.stdout
    return last[len("Fixed model at: "):]


# ------------------------------------------------------------------------------------------ shared model
def _fd_ini(path):
    sim = calibrator_custom.float_simulator(MODELS_DIR / f"{FD}.tflite")
    outs = [d["name"] for d in sim.get_output_details()]
    return write_ini(path, inputs=[d["name"] for d in sim.get_input_details()], outputs=outs)


def _independent_min_max(model_path, photos) -> list[tuple[str, float, float]]:
    """(name, min, max) of every graph input and op output over the photos, by tensor index."""
    g = load_model(model_path).main
    produced = sorted(set(g.inputs) | {i for op in g.operators for i in op.outputs if i >= 0})
    sim = calibrator_custom.float_simulator(model_path)
    pre = image_preprocess_func(FD)
    lo = {i: np.inf for i in produced}
    hi = {i: -np.inf for i in produced}
    for p in photos:
        sim.set_input(0, pre(str(p), norm=True))
        sim.invoke(keep="all")
        for i in produced:
            v = sim.get_tensor(g.tensors[i].name)
            assert v.dtype == np.float32
            lo[i], hi[i] = min(lo[i], float(v.min())), max(hi[i], float(v.max()))
    return [(g.tensors[i].name, lo[i], hi[i]) for i in produced]


@pytest.mark.slow
def test_shared_model_end_to_end(tmp_path):
    require_shared()
    photos = sorted(IMAGES_DIR.glob("*.jpg"))[:3]
    assert len(photos) == 3
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in photos:
        os.symlink(p, folder / p.name)
    ini = _fd_ini(tmp_path / "fd.ini")
    model = MODELS_DIR / f"{FD}.tflite"
    outs = {}
    for n in (2, 1):
        proc = calibrate(["-i", folder, "-m", model, "--input_config", ini, "-n", FD, "--quant_level", "L2",
                          "--num_process", n, "-o", tmp_path / f"fd{n}_fixed.sim"], tmp_path)
        assert _ok(proc) == str(tmp_path / f"fd{n}_fixed.sim")
        outs[n] = proc
    # the second run moved the first run's log/ aside, intact
    assert (tmp_path / "log.1" / "tensor_min_max.txt").is_file()
    assert "log/ was moved to log.1/" in outs[1].stderr
    assert not (tmp_path / "log.2").exists()
    first = (tmp_path / "log.1" / "tensor_min_max.txt").read_text()
    second = (tmp_path / "log" / "tensor_min_max.txt").read_text()
    assert first == second  # the same statistics with 2 processes and with 1
    assert (tmp_path / "fd1_fixed.sim").read_bytes() == (tmp_path / "fd2_fixed.sim").read_bytes()

    got = read_min_max(tmp_path / "log" / "tensor_min_max.txt")
    want = _independent_min_max(model, photos)
    assert list(got) == [name for name, _, _ in want]
    for name, lo, hi in want:
        assert got[name] == (f"{lo:06f}", f"{hi:06f}"), name

    sim = calibrator_custom.fixed_simulator(tmp_path / "fd1_fixed.sim")
    assert sim.class_type == "FIXED"
    (detail,) = sim.get_input_details()
    assert detail["dtype"] is np.uint8 and tuple(detail["shape"]) == (1, 128, 128, 3)
    sim.set_input(0, image_preprocess_func(FD)(str(photos[0]), norm=False))
    sim.invoke()
    assert all(np.all(np.isfinite(sim.get_output(k))) for k in range(len(sim.get_output_details())))


# ------------------------------------------------------------------------------------------ tiny models
@pytest.fixture
def tiny(tmp_path):
    """A one-input model, its ini and preprocess file, images of distinct constant values."""
    model = tiny_model(tmp_path / "tiny_float.sim")
    ini = write_ini(tmp_path / "tiny.ini")
    pre = write_preprocess(tmp_path / "pre.py")
    images = {v: write_image(tmp_path / "imgs" / f"v{v:03d}.png", v) for v in (40, 90)}
    images[200] = write_image(tmp_path / "imgs" / "deep" / "v200.png", 200)
    images[250] = write_image(tmp_path / "other" / "v250.png", 250)
    return tmp_path, model, ini, pre, images


def _input_range(cwd, name="img"):
    return read_min_max(cwd / "log" / "tensor_min_max.txt")[name]


def _range(*values):
    return f"{normalized(min(values)):06f}", f"{normalized(max(values)):06f}"


def test_folder_is_recursive_and_default_output_is_next_to_the_model(tiny):
    d, model, ini, pre, images = tiny
    proc = calibrate(["-i", d / "imgs", "-m", model, "--input_config", ini, "-n", pre, "--quant_level", "L1",
                      "--num_process", 1], d)
    assert _ok(proc) == str(d / "tiny_fixed.sim")
    assert proc.stdout.splitlines() == [f"Fixed model at: {d / 'tiny_fixed.sim'}"]
    assert _input_range(d) == _range(40, 90, 200)  # v250 lies outside the folder
    sim = calibrator_custom.fixed_simulator(d / "tiny_fixed.sim")
    assert sim.get_input_details()[0]["dtype"] is np.uint8


def test_single_image_and_output_folder(tiny):
    d, model, ini, pre, images = tiny
    (d / "out").mkdir()
    proc = calibrate(["-i", images[250], "-m", model, "--input_config", ini, "-n", pre, "--quant_level", "L2",
                      "-o", d / "out"], d)
    assert _ok(proc) == str(d / "out" / "tiny_fixed.sim")
    assert _input_range(d) == _range(250)


def test_list_file_one_image_per_line(tiny):
    d, model, ini, pre, images = tiny
    (d / "calib.txt").write_text(f"{images[90]}\nimgs/deep/v200.png\n")
    proc = calibrate(["-i", d / "calib.txt", "-m", model, "--input_config", ini, "-n", pre, "--quant_level", "L1",
                      "-o", d / "listed_fixed.sim"], d)
    assert _ok(proc) == str(d / "listed_fixed.sim")
    assert _input_range(d) == _range(90, 200)


@pytest.fixture
def pair(tmp_path):
    """A two-input model (a + b), its ini, two preprocess files, folders A and B of images."""
    model = two_input_model(tmp_path / "pair_float.sim")
    ini = write_ini(tmp_path / "pair.ini", inputs=("a", "b"))
    pre_a, pre_b = write_preprocess(tmp_path / "pre_a.py"), write_preprocess(tmp_path / "pre_b.py")
    a = [write_image(tmp_path / "A" / f"{v}.png", v) for v in (10, 60)]
    b = [write_image(tmp_path / "B" / f"{v}.png", v) for v in (160, 230)]
    return tmp_path, model, ini, f"{pre_a},{pre_b}", a, b


def test_multi_input_comma_list(pair):
    d, model, ini, pre, a, b = pair
    proc = calibrate(["-i", f"{d / 'A'},{d / 'B'}", "-m", model, "--input_config", ini, "-n", pre,
                      "--quant_level", "L1", "--num_process", 2], d)
    assert _ok(proc) == str(d / "pair_fixed.sim")
    assert _input_range(d, "a") == _range(10, 60) and _input_range(d, "b") == _range(160, 230)


def test_multi_input_list_file_with_commas(pair):
    d, model, ini, pre, a, b = pair
    (d / "pairs.txt").write_text(f"{a[1]},{b[0]}\n{b[1]}, {a[1]}\n")  # b[1] feeds input a on line 2
    proc = calibrate(["-i", d / "pairs.txt", "-m", model, "--input_config", ini, "-n", pre, "--quant_level", "L1"], d)
    assert _ok(proc) == str(d / "pair_fixed.sim")
    assert _input_range(d, "a") == _range(60, 230) and _input_range(d, "b") == _range(160, 60)
    sim = calibrator_custom.fixed_simulator(d / "pair_fixed.sim")
    assert [x["name"] for x in sim.get_input_details()] == ["a", "b"]


def test_save_quant_info_and_quant_file_forces_l1(tiny):
    d, model, ini, pre, images = tiny
    proc = calibrate(["-i", d / "imgs", "-m", model, "--input_config", ini, "-n", pre, "--quant_level", "L1",
                      "--save_quant_info"], d)
    _ok(proc)
    info = d / "quant_info_tiny_fixed.pkl"
    items = pickle.loads(info.read_bytes())
    assert isinstance(items, list) and items
    assert all(set(it) == {"name", "min", "max", "bit"} for it in items)
    assert {it["name"] for it in items} >= {"img", "w", "out"}
    proc = calibrate(["-i", d / "imgs", "-m", model, "--input_config", ini, "-n", pre, "--quant_level", "L3",
                      "--quant_file", info, "-o", d / "again_fixed.sim"], d)
    assert _ok(proc) == str(d / "again_fixed.sim")
    assert "--quant_level L3 -> L1: --quant_file is given" in proc.stderr
    assert (d / "again_fixed.sim").read_bytes() == (d / "tiny_fixed.sim").read_bytes()


def test_log_rotation_takes_the_next_free_number(tiny):
    d, model, ini, pre, images = tiny
    (d / "log").mkdir()
    (d / "log" / "old.txt").write_text("keep me")
    (d / "log.1").mkdir()
    proc = calibrate(["-i", images[40], "-m", model, "--input_config", ini, "-n", pre, "--quant_level", "L1"], d)
    _ok(proc)
    assert (d / "log.2" / "old.txt").read_text() == "keep me"
    assert "log/ was moved to log.2/" in proc.stderr
    assert sorted(os.listdir(d / "log")) == ["tensor_min_max.txt"]


# ------------------------------------------------------------------------------------------ errors
def _error(proc, *fragments) -> str:
    lines = stderr_lines(proc)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sgs-calibrator: error: "), lines[0]
    for f in fragments:
        assert f in lines[0], lines[0]
    assert proc.stdout == ""
    return lines[0]


def _args(d, model, ini, pre, image, **over):
    flags = {"-i": image, "-m": model, "--input_config": ini, "-n": pre, "--quant_level": "L1"}
    flags.update(over)
    return [x for k, v in flags.items() if v is not None for x in (k, v)]


def test_user_errors_are_one_line_and_exit_1(tiny):
    d, model, ini, pre, images = tiny
    img = images[40]
    cases = [
        (dict([("-m", d / "nope_float.sim")]), ["-m", "nope_float.sim", "does not exist"]),
        (dict([("-i", d / "nope.png")]), ["-i", "nope.png", "no such image or folder"]),
        (dict([("--input_config", d / "nope.ini")]), ["--input_config", "nope.ini", "does not exist"]),
        (dict([("-n", f"{pre},{pre}")]), ["-n", "2 preprocess method(s)", "1 input(s)"]),
        (dict([("-n", "no_such_method")]), ["-n: unknown preprocess method 'no_such_method'"]),
        (dict([("--num_process", "0")]), ["--num_process 0"]),
        (dict([("-sth", "2")]), ["--sensitivity_threshold 2.0"]),
    ]
    (d / "bad.txt").write_text(f"{img}\n{d / 'gone.png'}\n")
    cases.append((dict([("-i", d / "bad.txt")]), ["bad.txt, line 2", "gone.png", "does not exist"]))
    (d / "bad.json").write_text("{not json")
    cases.append((dict([("--quant_file", d / "bad.json")]), ["--quant_file", "bad.json", "invalid JSON at line 1 column 2"]))
    (d / "unknown.json").write_text('[{"name": "ghost", "min": [0], "max": [1], "bit": 8}]')
    cases.append((dict([("--quant_file", d / "unknown.json")]), ["unknown.json", "'ghost'"]))
    (d / "shape.json").write_text('[{"name": "img", "min": 0, "max": [1], "bit": 8}]')
    cases.append((dict([("--quant_file", d / "shape.json")]), ["shape.json", "min of quant_param[0]: img"]))
    cases.append((dict([("--quant_file", d / "nope.pkl")]), ["--quant_file", "nope.pkl", "does not exist"]))
    write_ini(d / "wrong.ini", inputs=("zzz",))
    cases.append((dict([("--input_config", d / "wrong.ini")]), ["wrong.ini", "'zzz'"]))
    cases.append((dict([("-m", pre)]), ["-m: ", "pre.py", "not a TFLite/.sim model"]))
    (d / "taken" / "tiny_fixed.sim").mkdir(parents=True)
    cases.append((dict([("-o", d / "taken")]), ["-o: ", "tiny_fixed.sim", "is an existing folder"]))
    procs = []
    for over, fragments in cases:
        procs.append((subprocess.Popen([sys.executable, "-m", "calibrator_custom.calibrator",
                                        *map(str, _args(d, model, ini, pre, img, **over))],
                                       cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       env={**os.environ, "PYTHONPATH": str(ROOT)}), fragments))
    for p, fragments in procs:
        out, err = p.communicate(timeout=120)
        _error(subprocess.CompletedProcess(p.args, p.returncode, out, err), *fragments)
    assert not (d / "log").exists()  # nothing was started


def test_sdk_flags_and_missing_output_folder_are_accepted_like_the_sdk(tiny):
    d, model, ini, pre, images = tiny
    proc = calibrate(_args(d, model, ini, pre, images[40], **{"-o": d / "missing_dir" / "x_fixed.sim",
                                                               "-p": "Fixed_without_ipu_ctrl", "-t": "sgs_calibrator",
                                                               "--save_input": None}) + ["--save_input"], d)
    out = _ok(proc)
    assert "missing_dir" in proc.stderr and "does not exist; writing" in proc.stderr
    assert "-p Fixed_without_ipu_ctrl: this tool has one phase" in proc.stderr
    assert "-t/--tool sgs_calibrator is ignored" in proc.stderr and "--save_input is ignored" in proc.stderr
    assert os.path.isfile(d / "tiny_fixed.sim") and not (d / "missing_dir").exists()
    assert os.path.samefile(out, d / "tiny_fixed.sim")


def test_float_model_check_refuses_a_fixed_model(tiny):
    d, model, ini, pre, images = tiny
    _ok(calibrate(_args(d, model, ini, pre, images[40]), d))
    proc = calibrate(_args(d, d / "tiny_fixed.sim", ini, pre, images[40]), d)
    _error(proc, "-m", "tiny_fixed.sim", "is a fixed model")


def test_usage_errors_exit_2(tiny):
    d, model, ini, pre, images = tiny
    proc = calibrate(_args(d, model, ini, pre, images[40], **{"--quant_level": "L9"}), d)
    assert proc.returncode == 2 and "invalid choice: 'L9'" in proc.stderr
    proc = calibrate(["-m", model, "--input_config", ini, "-n", pre], d)
    assert proc.returncode == 2 and "the following arguments are required: -i/--image" in proc.stderr


def test_help_mentions_every_flag(tmp_path):
    proc = calibrate(["--help"], tmp_path)
    assert proc.returncode == 0
    for flag in ("-i", "--image", "-m", "--model", "--input_config", "-n", "--preprocess", "-c", "--category",
                 "-o", "--output", "--num_process", "--quant_level", "-sth", "--sensitivity_threshold",
                 "--quant_file", "--show_log", "--save_quant_info", "--work_mode"):
        assert f"{flag} " in proc.stdout or f"{flag}," in proc.stdout, flag
    text = " ".join(proc.stdout.split())
    for default in ("default: Unknown", "default: L5", "default: 0.002", "default: 10"):
        assert default in text
    assert "no SGS_IPU_DIR environment variable" in text


def test_shim_keeps_the_public_class(tmp_path):
    code = ("import calibrator_custom.calibrator, calibrator_custom, sys\n"
            "from calibrator_custom.calibration import calibrator as cls\n"
            "assert calibrator_custom.calibrator is cls, calibrator_custom.calibrator\n"
            "import calibrator_custom.calibrator as alias\n"
            "assert alias is cls\n"
            "assert sys.modules['calibrator_custom.calibrator'] is cls\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr


def test_console_scripts_are_declared():
    from importlib.metadata import entry_points

    scripts = {e.name: e for e in entry_points(group="console_scripts") if e.name.startswith("sgs-")}
    assert scripts["sgs-calibrator"].value == "calibrator_custom.cli.calibrate:main", \
        "reinstall the package (pip install -e .) to register the console scripts"
    assert scripts["sgs-save-quant-param"].value == "calibrator_custom.cli.save_quant_param:main"
    assert {"sgs-simulator", "sgs-analyze"} <= set(scripts)
    assert scripts["sgs-calibrator"].load()(["--help"]) == 0
