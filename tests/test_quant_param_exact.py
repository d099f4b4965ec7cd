"""A fixed model's exported quant_param re-imports to the same integers, at the levels that fit weight clips.

L4 and L5 fit each weight channel's clip (not its largest magnitude), so the stored float32 scales are
arbitrary; the exported clip must give them back exactly through the import's ``float32(clip / qmax)``
(the re-planning behind ``sgs-analyze``'s 16-bit gains relies on it).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import calibrator_custom
from calibrator_custom import examples as bundled
from calibrator_custom import utils
from calibrator_custom.analysis import accuracy_analysis
from calibrator_custom.model.graph import load_model
from calibrator_custom.pipeline.convert import convert
from calibrator_custom.pipeline.export import export_quant_param


@given(st.floats(min_value=2.0 ** -100, max_value=2.0 ** 10, allow_nan=False, allow_infinity=False, width=32),
       st.sampled_from([127, 32767]))
def test_exported_clip_gives_the_float32_scale_back(scale_f32, qmax):
    """The export's clip ``float64(scale) * qmax`` is exact, so the import's ``float32(clip / qmax)`` is the scale;
    the float32-rounded clip the model file stores does not always do that."""
    s = np.float32(scale_f32)
    clip = float(np.float64(s) * qmax)
    assert np.float32(clip / qmax) == s


@pytest.fixture(scope="module")
def l4_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("qp_exact")
    model, ini = str(bundled.model_path()), str(bundled.input_config_path())
    pre = utils.image_preprocess_func(bundled.PREPROCESS)
    calib = calibrator_custom.calibrator(model, ini)
    for photo in bundled.photo_paths():
        calib.set_input(0, pre(str(photo), norm=True))
        calib.invoke()
    stats = calib.statistics()
    path = d / "face_L4_fixed.sim"
    convert(model, ini, stats, quant_level="L4", output_path=path)
    return d, model, ini, stats, path


@pytest.mark.slow
def test_l4_quant_param_reimports_to_the_same_model(l4_model):
    d, model, ini, stats, path = l4_model
    items = export_quant_param(path)
    weights = [it for it in items if it["name"].endswith("Kernel_dequantize")]
    assert weights and all(len(it["min"]) == len(it["max"]) > 0 for it in weights)
    again = d / "again_fixed.sim"
    convert(model, ini, stats, quant_level="L4", quant_param=items, output_path=again)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.slow
def test_analysis_replans_an_l4_model_of_this_version_exactly(l4_model):
    _, model, ini, _, path = l4_model
    pre = utils.image_preprocess_func(bundled.PREPROCESS)
    rep = accuracy_analysis(model, str(path), [str(p) for p in bundled.photo_paths()], preprocess_funcs=[pre],
                            input_config=ini, gain_method="estimated")
    assert not [n for n in rep.notes if "re-planning" in n], rep.notes
    assert load_model(path).main.tensors
