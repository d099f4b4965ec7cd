"""Per-channel weight codes for the converter's depthwise-as-CONV_2D rewrite in the synthesized vendor
fixed.sim, and the LOGISTIC line record behind the one output code that kept them off.

The 9-LSB mismatch on hand_landmark_lite's ``Identity_1`` (the LOGISTIC after ``conv_handflag``) was not in
the rewrite: every conv output agreed with the vendor's dump; the LOGISTIC's input, more negative than -6
with the per-channel codes, hit the line beyond |x| = 6, whose slope the synthesizer wrote 0 (slot 2 of the
line record instead of slot 0, 6881 missing), and the vendor runs a stored slope of 0 as a flat line while
our engine used 8. Now the synthesizer writes the vendor's record and the engine reads the stored slope.

Oracle tier (the vendor SDK in ``../shared/vendor_sdk``; skipped without it).
"""
from __future__ import annotations

import glob

import numpy as np
import pytest

import calibrator_custom
import vendor_fixed_oracle as vo
from calibrator_custom.errors import ModelError
from calibrator_custom.model import sgs_dialect
from calibrator_custom.model.graph import load_model
from calibrator_custom.vendor_fixed import layout, synth_ops
from conftest import MODELS_DIR, require_shared
from images import calibration_images, evaluation_images, load_rgb
from vendor_oracle import vendor  # noqa: F401 - the session fixture

N_CAL, N_EVAL = 10, 3
MEAN, STD = 127.5, 127.5


def _skip_without_vendor():
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)


def _line_record(model, op):
    lut = dict(op.options.sgs_lut)
    line = dict(lut[sgs_dialect.SLOT_NAMES.get(("SgsLogisticOptionsSlot0", 2), "sgs_slot_2")])
    line.pop(sgs_dialect.LAYOUT, None)
    return line


def test_logistic_line_record_is_the_vendors():
    """The line record the synthesizer writes equals every vendor-made LOGISTIC of the oracle cache."""
    _skip_without_vendor()
    want = {sgs_dialect.SLOT_NAMES.get(("SgsLogisticOptionsSlot0Slot2", k), f"sgs_slot_{k}"): v
            for k, v in synth_ops.LOGISTIC_LINE.items()}
    seen = 0
    for f in sorted(glob.glob(str(vo.CACHE / "*" / "m_fixed.sim"))):
        try:
            m = load_model(f)
        except ModelError:  # a few experiment files of the cache our reader refuses (INT16 rewrites)
            continue
        for op in m.main.operators:
            if m.op_name(op) == "LOGISTIC":
                assert _line_record(m, op) == want, f
                seen += 1
    if not seen:
        pytest.skip("no vendor-made LOGISTIC in the oracle cache (run tests/test_vendor_fixed_ops.py first)")


@pytest.mark.slow
def test_hand_landmark_lite_l2_rewrite_per_channel_compiles_and_the_vendor_simulators_agree(vendor, tmp_path):  # noqa: F811
    """hand_landmark_lite at L2: the rewritten 5 x 5 depthwise convs carry per-channel multipliers, the vendor's
    compiler takes the file, and the vendor's fixed and offline simulators give our codes on 3 photos,
    every conv and LOGISTIC output included (the vendor's dump)."""
    require_shared()
    float_sim, h, w = vendor.convert_shared(MODELS_DIR / "hand_landmark_lite.tflite", MEAN, STD)
    cal = calibrator_custom.calibrator(str(float_sim), str(float_sim.parent / "input_config.ini"))
    for p in calibration_images()[:N_CAL]:
        cal.set_input(0, ((load_rgb(p, h, w).astype(np.float32) - MEAN) / STD)[None])
        cal.invoke()
    path = tmp_path / "hl_L2_fixed.sim"
    cal.convert_fixed(saved_path=str(path), quant_level="L2")
    m = load_model(path)
    rewrites = [op for op in m.main.operators
                if m.op_name(op) == "CONV_2D" and getattr(op.options, "sgs_depthwise_mode", 0) == 2]
    assert rewrites
    for op in rewrites:
        c = int(m.main.tensors[op.outputs[0]].shape[-1])
        _, mult = layout.unpack_bias(m.buffers[m.main.tensors[op.inputs[2]].buffer].data, c)
        assert len(set(mult.tolist())) > 1, "per-channel multipliers"
    sim = calibrator_custom.fixed_simulator(str(path))
    photos = evaluation_images()[:N_EVAL]
    xs = [load_rgb(p, h, w)[None].astype(np.uint8) for p in photos]
    with vo.VendorRuns(path, xs, offline=tmp_path / "hl_L2_offline.sim") as runs:
        for p, x, refs in zip(photos, xs, runs):
            sim.set_input(0, x)
            sim.invoke()
            for label, ref in zip(("fixed_sim", "offline_sim"), refs):
                want = sum(ref[d["name"]].size for d in sim.get_output_details())
                assert vo.assert_outputs_code_for_code(sim, ref, f"hand_landmark_lite L2 {label} {p.name}") == want
