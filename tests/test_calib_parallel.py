"""collect_stats: several processes give exactly the single-process result; failures name the image."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from calibrator_custom.calib import StatsSet, collect_stats, collect_stats_arrays, model_sha256, weight_stats
from calibrator_custom.errors import CalibratorError, InputError
from conftest import MODELS_DIR, require_shared
from test_calib_stats import feeds, small_model


def load_npy(path) -> np.ndarray:
    return np.load(path)


def load_npy_exploding(path) -> np.ndarray:
    if "bad" in os.fspath(path):
        raise RuntimeError("decoder exploded")
    return np.load(path)


def load_npy_dying(path) -> np.ndarray:
    if "bad" in os.fspath(path):
        os._exit(3)  # a worker that dies without a word (like an OOM kill)
    return np.load(path)


def load_npy_slow(path) -> np.ndarray:
    if "slow" in os.fspath(path):
        time.sleep(60)
    return np.load(path)


def load_npy_float64(path) -> np.ndarray:
    return np.load(path).astype(np.float64)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("par")
    model_path = d / "small.tflite"
    small_model().save(model_path)
    paths = []
    for k, x in enumerate(feeds(7, seed=11)):
        p = d / f"img{k}.npy"
        np.save(p, x)
        paths.append(str(p))
    return str(model_path), paths, d


def test_two_processes_equal_one_exactly(setup):
    model_path, paths, _ = setup
    one = collect_stats(model_path, paths, load_npy, num_process=1)
    two = collect_stats(model_path, paths, [load_npy], num_process=2)
    assert isinstance(two, StatsSet) and two.num_samples == len(paths)
    assert two == one
    assert one.model_sha256 == model_sha256(model_path) and one.model_name == "small.tflite"
    assert one.weights == weight_stats(small_model())
    arrays = collect_stats_arrays(model_path, (np.load(p) for p in paths))
    assert arrays == one


def test_progress_reports_every_image(setup):
    model_path, paths, _ = setup
    seen: list[tuple[int, int]] = []
    collect_stats(model_path, paths, load_npy, num_process=2, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(k, len(paths)) for k in range(1, len(paths) + 1)]


@pytest.mark.parametrize("num_process", [1, 2])
def test_missing_image_in_a_worker_names_it(setup, num_process):
    model_path, paths, d = setup
    bad = str(d / "missing_image.npy")
    t0 = time.monotonic()
    with pytest.raises(InputError) as e:
        collect_stats(model_path, paths[:3] + [bad] + paths[3:], load_npy, num_process=num_process)
    msg = str(e.value)
    assert bad in msg and "does not exist" in msg and "item #3" in msg
    assert time.monotonic() - t0 < 20


def test_preprocess_exception_names_image_and_cause(setup):
    model_path, paths, d = setup
    bad = d / "bad.npy"
    np.save(bad, feeds(1)[0])
    with pytest.raises(InputError, match=r"bad\.npy.*RuntimeError: decoder exploded"):
        collect_stats(model_path, paths + [str(bad)], load_npy_exploding, num_process=2)


def test_wrong_shape_and_dtype_name_the_image(setup):
    model_path, paths, d = setup
    wrong = d / "wrong_shape.npy"
    np.save(wrong, np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(InputError, match=r"wrong_shape\.npy.*needs shape \[1, 6, 6, 3\], got \[1, 5, 5, 3\]"):
        collect_stats(model_path, [paths[0], str(wrong)], load_npy, num_process=2)
    with pytest.raises(InputError, match=r"img0\.npy.*needs dtype float32, got float64"):
        collect_stats(model_path, paths[:2], load_npy_float64, num_process=1)
    with pytest.raises(InputError, match=r"sample #1.*needs shape"):
        collect_stats_arrays(model_path, [np.load(paths[0]), np.zeros((1, 2), np.float32)])


def test_dead_worker_is_an_error_not_a_hang(setup):
    model_path, paths, d = setup
    bad = d / "bad_dies.npy"
    np.save(bad, feeds(1)[0])
    t0 = time.monotonic()
    with pytest.raises(CalibratorError, match="exited with code 3") as info:
        collect_stats(model_path, paths[:2] + [str(bad)] + paths[2:], load_npy_dying, num_process=2)
    assert time.monotonic() - t0 < 20
    # the message names the worker and the image it was on, not its range of items
    assert "worker 0 (pid " in str(info.value) and f"working on image {str(bad)!r} (item #2)" in str(info.value)


def test_timeout_stops_the_workers(setup):
    model_path, paths, d = setup
    slow = d / "slow.npy"
    np.save(slow, feeds(1)[0])
    t0 = time.monotonic()
    with pytest.raises(CalibratorError, match="no result after 1"):
        collect_stats(model_path, paths[:2] + [str(slow)], load_npy_slow, num_process=2, timeout_s=1)
    assert time.monotonic() - t0 < 15


def test_argument_errors(setup):
    model_path, paths, _ = setup
    with pytest.raises(InputError, match="empty"):
        collect_stats(model_path, [], load_npy)
    with pytest.raises(InputError, match="1 input.*2 preprocess"):
        collect_stats(model_path, paths, [load_npy, load_npy])
    with pytest.raises(InputError, match="item #0.*2 image"):
        collect_stats(model_path, [(paths[0], paths[1])], load_npy)
    with pytest.raises(InputError, match="num_process"):
        collect_stats(model_path, paths, load_npy, num_process=0)
    with pytest.raises(ValueError, match="num_bins"):
        collect_stats(model_path, paths, load_npy, num_process=2, num_bins=1)
    with pytest.raises(InputError, match="no samples"):
        collect_stats_arrays(model_path, [])


def test_limit_blas_threads_in_a_child_process():
    # in a child: the call changes process-wide settings
    code = ("import numpy as np; from calibrator_custom.calib.parallel import limit_blas_threads as f; "
            "ok = f(1); a = np.ones((64, 64)); assert (a @ a == 64).all(); print(ok)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("True", "False")  # False only where no OpenBLAS is loaded


@pytest.mark.slow
def test_real_model_two_processes_equal_one():
    require_shared()
    from images import calibration_images

    name = "face_detection_short_range"
    path = MODELS_DIR / f"{name}.tflite"
    pre = _Pre(name)
    imgs = calibration_images()[:4]
    one = collect_stats(path, imgs, pre, num_process=1)
    two = collect_stats(path, imgs, pre, num_process=2)
    assert two == one and one.num_samples == 4
    assert one.tensors[next(iter(one.tensors))].shape == (1, 128, 128, 3)


class _Pre:
    """Picklable preprocess for the face detector (works with 'spawn' too)."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, path) -> np.ndarray:
        from images import model_input
        return model_input(path, (1, 128, 128, 3), self.name)


def test_spawn_start_method_gives_the_same_result(setup, monkeypatch):
    import multiprocessing as mp

    from calibrator_custom.calib import parallel

    model_path, paths, _ = setup
    one = collect_stats(model_path, paths[:4], load_npy, num_process=1)
    monkeypatch.setattr(parallel, "_context", lambda: mp.get_context("spawn"))
    assert collect_stats(model_path, paths[:4], load_npy, num_process=2) == one
