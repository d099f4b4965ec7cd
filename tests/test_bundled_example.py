"""calibrator_custom.examples: the example model, input config and photos installed with the package."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom import examples as bundled
from calibrator_custom import utils
from calibrator_custom.errors import InputError
from calibrator_custom.pipeline.convert import convert


def test_paths_point_into_the_installed_package():
    package_dir = bundled.data_dir().parent
    assert package_dir.name == "examples" and package_dir.parent.name == "calibrator_custom"
    assert bundled.model_path().name == "face_detection_short_range.tflite" and bundled.model_path().is_file()
    assert bundled.input_config_path().name == "input_config.ini" and bundled.input_config_path().is_file()
    photos = bundled.photo_paths()
    assert [p.name for p in photos] == ["000000006409.jpg", "000000014773.jpg", "000000024038.jpg"]
    assert [str(p) for p in photos] == utils.all_path(bundled.data_dir())
    assert (bundled.data_dir() / "LICENSES.md").is_file()


def test_model_config_and_preprocess_fit_together():
    sim = calibrator_custom.float_simulator(str(bundled.model_path()))
    (detail,) = sim.get_input_details()
    assert detail["shape"].tolist() == [1, 128, 128, 3] and detail["dtype"] is np.float32
    x = utils.image_preprocess_func(bundled.PREPROCESS)(str(bundled.photo_paths()[0]), norm=True)
    assert x.shape == (1, 128, 128, 3) and x.dtype == np.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    calib = calibrator_custom.calibrator(str(bundled.model_path()), str(bundled.input_config_path()))
    assert [d["name"] for d in calib.get_output_details()] == ["regressors", "classificators"]


def test_copy_to_lays_out_the_user_guide_folder(tmp_path):
    written = bundled.copy_to(tmp_path / "work")
    names = sorted(str(p.relative_to(tmp_path / "work")) for p in written)
    assert names == ["face_detection_short_range.tflite", "images/000000006409.jpg", "images/000000014773.jpg",
                     "images/000000024038.jpg", "input_config.ini"]
    assert (tmp_path / "work" / "face_detection_short_range.tflite").read_bytes() == bundled.model_path().read_bytes()


def test_python_m_copies_the_example(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "calibrator_custom.examples", "dest"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 5
    assert sorted(p.name for p in (tmp_path / "dest" / "images").iterdir()) == [p.name for p in bundled.photo_paths()]
    (tmp_path / "file").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "calibrator_custom.examples", "file"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("python -m calibrator_custom.examples: error: ")


def test_fixed_model_given_normalized_floats_says_norm_false(tmp_path):
    """The most common mistake (the float model's norm=True input fed to the fixed model) names the fix."""
    model, ini = str(bundled.model_path()), str(bundled.input_config_path())
    pre = utils.image_preprocess_func(bundled.PREPROCESS)
    photo = str(bundled.photo_paths()[0])
    calib = calibrator_custom.calibrator(model, ini)
    calib.set_input(0, pre(photo, norm=True))
    calib.invoke()
    path = tmp_path / "face_fixed.sim"
    convert(model, ini, calib.statistics(), quant_level="L1", output_path=path)
    fixed = calibrator_custom.fixed_simulator(str(path))
    with pytest.raises(InputError) as e:
        fixed.set_input(0, pre(photo, norm=True))
    assert "needs dtype uint8, got float32" in str(e.value) and "norm=False" in str(e.value)
    assert "utils.convert_to_input_formats(data, get_input_details()[0])" in str(e.value)
    assert "astype" not in str(e.value)
    with pytest.raises(InputError, match=r"astype\(np\.uint8\)"):  # integers of the wrong type: a plain cast
        fixed.set_input(0, np.zeros((1, 128, 128, 3), np.int32))
