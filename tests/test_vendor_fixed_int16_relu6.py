"""A RELU6 after a conv writing a 16-bit conv's INT16 input in the synthesized vendor fixed.sim.

The vendor's float.sim keeps a RELU6 that follows a conv as its own op (the conv's activation NONE, as in
hand_landmark_lite); the synthesizer fuses it into the conv (``synth.fuse_activations``), whose INT16
output then is the clamped one. ``vendor_int16_carriable`` carries the conv reading it.

Oracle tier (the vendor SDK in ``../shared/vendor_sdk``; skipped without it): the vendor's converter with
``[CONV_CONFIG] tensor_arrays`` naming the RELU6's output plans the same types as ``with_int16_convs``;
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


def _chain(seed=11, side=12, c=16):
    """x -> c1 (3x3) -> r1 = RELU6 -> c2 (1x1) -> c3 (3x3, the graph output)."""
    from calibrator_custom.model.builder import ModelBuilder
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    r = b.op("RELU6", [random_conv(b, g, x, 1, 3, c, 3)], {}, name="r1")
    y = random_conv(b, g, r, 2, c, 24, 1)
    b.output(random_conv(b, g, y, 3, 24, 8, 3))
    ranges = {"x": (-1.0, 1.0), "c1": (-2.0, 7.5), "r1": (0.0, 6.0), "c2": (-3.0, 2.5), "c3": (-3.0, 2.5)}
    return b, ranges


def test_a_conv_reading_a_fused_relu6_is_carried_and_runs_as_ours(tmp_path):
    b, ranges = _chain()
    assert_carried_as_the_vendor_plans_it(b, ranges, "c3", "r1", "w2", "RELU6", "i16relu6", tmp_path,
                                          carried=["c2", "r1"], label="conv -> RELU6 -> 16-bit conv")


def assert_carried_as_the_vendor_plans_it(b, ranges, output: str, tensor: str, weights: str, kind: str, tag: str,
                                          tmp_path, carried, label: str) -> None:
    """The builder's model through the vendor's converter (x: 1 x 12 x 12 x 3, ``output`` the graph output):
    ``kind`` stays its own op in the float.sim; ``vendor_int16_carriable`` carries the convs reading ``carried``
    (``tensor`` among them); ``with_int16_convs([tensor])`` plans the types the converter plans with
    ``[CONV_CONFIG] tensor_arrays=tensor`` (``tensor`` and ``weights`` INT16); the file synthesized from it
    compiles and the vendor's fixed and offline simulators give our fixed_simulator's codes."""
    _skip_without_vendor()
    import calibrator_custom
    from calibrator_custom.calib import collect_stats_arrays
    from calibrator_custom.config import load_input_config
    from calibrator_custom.pipeline.convert import vendor_int16_carriable
    from calibrator_custom.quant.planner import PlanInputs
    plain = vo.make_fixed(b, ranges, vo.ini_text(["x"], [output]), tag)
    vendor = vo.make_fixed(b, ranges, vo.ini_text(["x"], [output], extra=f"[CONV_CONFIG]\ntensor_arrays={tensor};\n"),
                           f"{tag}_ta")
    float_sim = plain.with_name("m_float.sim")
    vendor_float = load_model(float_sim)
    kinds = [vendor_float.op_name(op) for op in vendor_float.main.operators]
    assert kind in kinds  # the vendor keeps it as its own op
    ini = tmp_path / "m.ini"
    ini.write_text(vo.ini_text(["x"], [output]))
    fsim = calibrator_custom.float_simulator(str(float_sim))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 12, 12, 3)).astype(np.float32)
    pi = PlanInputs.create(fsim.model_obj, collect_stats_arrays(str(float_sim), [[x]]),
                           load_input_config(str(ini), fsim.model_obj))
    names = {c.op_index: pi.model.main.tensors[c.data].name for c in pi.convs}
    assert sorted(names[k] for k in vendor_int16_carriable(vendor_float, pi)) == sorted(carried)
    got = quantize_plan.with_int16_convs(vendor_float, [tensor])
    want = load_model(vendor.with_name("m_float.sim"))
    types = {t.name: t.extra.get("sgs_fixed_type") for t in got.main.tensors}
    assert types == {t.name: t.extra.get("sgs_fixed_type") for t in want.main.tensors}
    assert (types[tensor], types[weights]) == ("INT16", "INT16")
    log = plain.parent / "wd" / "log"
    model = synth.synthesize(got, _log_ranges(log), _log_channel_ranges(log), MEAN, STD, synth.rule_program)
    path = tmp_path / "synth_fixed.sim"
    path.write_bytes(model.to_bytes(reencode=True))
    assert vo.assert_vendor_runs_it_as_ours(path, np.random.default_rng(1), 3, label) > 0
