"""A RELU of an ADD's INT16 output writing a 16-bit conv's INT16 input in the synthesized vendor fixed.sim.

The vendor's float.sim plans an ADD's output INT16 and keeps the RELU after it as its own op (the residual
blocks of face_detection_short_range: ADD -> RELU -> depthwise and the next ADD). With the RELU's output
a 16-bit conv's input the RELU runs INT16 -> INT16, as the 16 RELUs between the 16-bit convs of the
vendor's own ALL_INT16 file of that model do; ``vendor_int16_carriable`` carries the convs reading it.

Oracle tier (the vendor SDK in ``../shared/vendor_sdk``; skipped without it): the vendor's converter with
``[CONV_CONFIG] tensor_arrays`` naming the RELU's output plans the same types as ``with_int16_convs``;
the synthesized file compiles and the vendor's fixed and offline simulators give our fixed_simulator's
codes.
"""
from __future__ import annotations

import numpy as np
import pytest

import vendor_fixed_oracle as vo
from calibrator_custom.model.graph import load_model
from calibrator_custom.vendor_fixed import quantize_plan, synth
from test_vendor_fixed_synth import MEAN, STD, random_conv
from test_vendor_fixed_writer import _log_channel_ranges, _log_ranges


def _skip_without_vendor():
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)


def _chain(seed=5, side=12, c=16):
    """x -> c1 (3x3), c2 (1x1 of c1) -> a1 = ADD -> r1 = RELU -> c3 (1x1) -> a2 = ADD(r1, c3) -> c4 (3x3, the
    graph output)."""
    from calibrator_custom.model.builder import ModelBuilder
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    c1 = random_conv(b, g, x, 1, 3, c, 3)
    a1 = b.op("ADD", [c1, random_conv(b, g, c1, 2, c, c, 1)], {"fused_activation_function": "NONE"}, name="a1")
    r1 = b.op("RELU", [a1], {}, name="r1")
    a2 = b.op("ADD", [r1, random_conv(b, g, r1, 3, c, c, 1)], {"fused_activation_function": "NONE"}, name="a2")
    b.output(random_conv(b, g, a2, 4, c, 8, 3))
    ranges = {"x": (-1.0, 1.0), "c1": (-3.0, 3.5), "c2": (-2.5, 2.0), "a1": (-4.5, 5.0), "r1": (0.0, 5.0),
              "c3": (-2.0, 2.5), "a2": (-2.0, 7.0), "c4": (-3.0, 2.5)}
    return b, ranges


def test_a_conv_reading_a_relu_of_an_add_is_carried_and_runs_as_ours(tmp_path):
    _skip_without_vendor()
    import calibrator_custom
    from calibrator_custom.calib import collect_stats_arrays
    from calibrator_custom.config import load_input_config
    from calibrator_custom.pipeline.convert import vendor_int16_carriable
    from calibrator_custom.quant.planner import PlanInputs
    b, ranges = _chain()
    plain = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c4"]), "i16relu")
    vendor = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c4"], extra="[CONV_CONFIG]\ntensor_arrays=r1;\n"),
                           "i16relu_ta")
    float_sim = plain.with_name("m_float.sim")
    vendor_float = load_model(float_sim)
    sg = vendor_float.main
    kinds = [vendor_float.op_name(op) for op in sg.operators]
    assert "RELU" in kinds  # the vendor keeps it as its own op
    planned = {t.name: t.extra.get("sgs_fixed_type") for t in sg.tensors}
    assert (planned["a1"], planned["r1"]) == ("INT16", "UINT8")  # the ADD writes INT16, the RELU UINT8
    ini = tmp_path / "m.ini"
    ini.write_text(vo.ini_text(["x"], ["c4"]))
    fsim = calibrator_custom.float_simulator(str(float_sim))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 12, 12, 3)).astype(np.float32)
    pi = PlanInputs.create(fsim.model_obj, collect_stats_arrays(str(float_sim), [[x]]),
                           load_input_config(str(ini), fsim.model_obj))
    names = {c.op_index: pi.model.main.tensors[c.data].name for c in pi.convs}
    assert "r1" in {names[k] for k in vendor_int16_carriable(vendor_float, pi)}
    got = quantize_plan.with_int16_convs(vendor_float, ["r1"])
    want = load_model(vendor.with_name("m_float.sim"))
    types = {t.name: t.extra.get("sgs_fixed_type") for t in got.main.tensors}
    assert types == {t.name: t.extra.get("sgs_fixed_type") for t in want.main.tensors}
    assert (types["r1"], types["w3"]) == ("INT16", "INT16")
    log = plain.parent / "wd" / "log"
    model = synth.synthesize(got, _log_ranges(log), _log_channel_ranges(log), MEAN, STD, synth.rule_program)
    path = tmp_path / "synth_fixed.sim"
    path.write_bytes(model.to_bytes(reencode=True))
    assert vo.assert_vendor_runs_it_as_ours(path, np.random.default_rng(1), 3, "ADD -> RELU -> 16-bit conv") > 0
