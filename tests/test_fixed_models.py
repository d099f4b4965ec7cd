"""Real shared models through calibration, conversion and the fixed simulator (slow: run in CI)."""
from __future__ import annotations

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom.calib import collect_stats_arrays
from calibrator_custom.utils import image_preprocess_func
from conftest import IMAGES_DIR, MODELS_DIR, require_shared

pytestmark = pytest.mark.slow


def _ini(path, sim, mean, std):
    ins = ",".join(d["name"] for d in sim.get_input_details())
    outs = sim.get_output_details()
    path.write_text(f"[INPUT_CONFIG]\ninputs={ins};\ntraining_input_formats=RGB;\ninput_formats=RGB;\n"
                    f"mean={mean}:{mean}:{mean};\nstd_value={std};\n[OUTPUT_CONFIG]\n"
                    f"outputs={','.join(d['name'] for d in outs)};\n"
                    f"dequantizations={','.join('TRUE' for _ in outs)};\n")
    return path


@pytest.mark.parametrize("name", ["face_detection_short_range", "iris_landmark"])
def test_shared_model_fixed_outputs_track_float(tmp_path, name):
    require_shared()
    from calibrator_custom.pipeline.convert import convert
    import sys
    model = MODELS_DIR / f"{name}.tflite"
    pre = image_preprocess_func(name)
    mod = sys.modules[pre.__module__]
    photos = sorted(IMAGES_DIR.glob("*.jpg"))
    calib = [[pre(str(p), norm=True)] for p in photos[:6]]
    fsim = calibrator_custom.float_simulator(model)
    stats = collect_stats_arrays(model, calib)
    out = tmp_path / f"{name}_fixed.sim"
    convert(model, _ini(tmp_path / "c.ini", fsim, mod.MEAN, mod.STD), stats, quant_level="L2", output_path=out)
    xsim = calibrator_custom.fixed_simulator(out)
    for p in photos[30:32]:
        fsim.set_input(0, pre(str(p), norm=True))
        fsim.invoke()
        xsim.set_input(0, pre(str(p), norm=False))
        xsim.invoke()
        for k in range(len(fsim.get_output_details())):
            ref, got = fsim.get_output(k).astype(np.float64), xsim.get_output(k)
            assert got.shape == ref.shape and got.dtype == np.float32
            sqnr = 10 * np.log10(np.sum(ref**2) / max(np.sum((ref - got) ** 2), 1e-30))
            assert sqnr > 8, f"{name} output {k}: {sqnr:.1f} dB"
