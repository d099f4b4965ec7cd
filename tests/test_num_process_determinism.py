"""sgs-calibrator on a real model writes the same bytes with 1, 2 and 3 worker processes, at any BLAS thread count."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from clitools import ROOT, write_ini
from conftest import IMAGES_DIR, MODELS_DIR, require_shared

FD = "face_detection_short_range"
# the CLI caps num_process at the CPU count; pretend to have 4 CPUs so 3 really means 3 workers
_MAIN = ("import os, sys; os.cpu_count = lambda: 4; from calibrator_custom.cli.calibrate import main; "
         "sys.exit(main(sys.argv[1:]))")


def _calibrate(args, cwd, blas_threads: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS=blas_threads)
    env.pop("OMP_NUM_THREADS", None)
    return subprocess.run([sys.executable, "-c", _MAIN, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.slow
def test_fixed_model_and_min_max_log_are_the_same_for_1_2_3_processes(tmp_path):
    require_shared()
    import calibrator_custom

    photos = sorted(IMAGES_DIR.glob("*.jpg"))[:3]
    assert len(photos) == 3
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in photos:
        os.symlink(p, folder / p.name)
    model = MODELS_DIR / f"{FD}.tflite"
    sim = calibrator_custom.float_simulator(model)
    ini = write_ini(tmp_path / "fd.ini", inputs=[d["name"] for d in sim.get_input_details()],
                    outputs=[d["name"] for d in sim.get_output_details()])
    results = {}
    # the single-process run with 2 BLAS threads is the case that used to differ
    for n, threads in ((1, "2"), (2, "2"), (3, "1")):
        run_dir = tmp_path / f"run{n}"
        run_dir.mkdir()
        proc = _calibrate(["-i", folder, "-m", model, "--input_config", ini, "-n", FD, "--quant_level", "L2",
                           "--num_process", n, "--show_log", "-o", run_dir / "fd_fixed.sim"], run_dir, threads)
        assert proc.returncode == 0, proc.stderr
        assert f"over 3 samples in {n} process(es)" in proc.stderr, proc.stderr
        results[n] = ((run_dir / "fd_fixed.sim").read_bytes(), (run_dir / "log" / "tensor_min_max.txt").read_text())
    assert len(results[1][0]) > 10_000 and results[1][1].count("\n") > 10
    assert results[2] == results[1]
    assert results[3] == results[1]
