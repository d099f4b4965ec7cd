"""INT16 activations in the synthesized vendor fixed.sim: convs run at 16 bit (INT16 input and weights).

The vendor's converter plans them: ``[CONV_CONFIG] tensor_arrays`` (or ``input_format=ALL_INT16``) in
the ini changes only the float.sim's planned types (Tensor slot 10: the conv's input and weights INT16),
and the vendor's calibrator follows those types. ``quantize_plan.with_int16_convs`` writes the same
types into a float.sim converted without the setting; the synthesizer then writes the 16-bit convs.

Oracle tier (the vendor SDK in ``../shared/vendor_sdk``; skipped without it): the retyped float.sim is
the one the vendor's converter writes with the setting, and the file synthesized from it is compiled by
the vendor's compiler, whose fixed and offline simulators give our fixed_simulator's codes.
"""
from __future__ import annotations

import numpy as np
import pytest

import vendor_fixed_oracle as vo
from calibrator_custom.model.graph import load_model
from calibrator_custom.vendor_fixed import quantize_plan, synth
from test_vendor_fixed_ops import _conv_chain
from test_vendor_fixed_synth import MEAN, STD, _add_chain, _long_chain
from test_vendor_fixed_writer import _log_channel_ranges, _log_ranges

#: (chain, the 16-bit convs' first inputs): a conv chain, a longer one, an ADD branch, a graph output
CASES = {
    "chain_c2": ("chain", ("c1",)),
    "chain_all": ("chain", ("c1", "c2")),
    "long_c2_c3": ("long", ("c1", "c2")),
    "long_c4": ("long", ("c3",)),
    "add_c2_c3": ("add", ("c1",)),
    "add_c4": ("add", ("s",)),
}


def _skip_without_vendor():
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)


def _builder(kind):
    if kind == "chain":
        b, ranges, _, _ = _conv_chain(21, 8, 16, 24, 3, 1, "SAME")
        return b, ranges, "c3"
    if kind == "long":
        return _long_chain(41, 32, (32, 64, 64, 4), (1, 3, 3, 1), ())
    return _add_chain(52, 10, 24, 3, True)


def _vendor_files(name):
    """(default float.sim, its L1 fixed.sim, the float.sim converted with tensor_arrays)."""
    kind, inputs = CASES[name]
    b, ranges, last = _builder(kind)
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], [last]), f"i16acts_{kind}")
    with_setting = vo.make_fixed(b, ranges, vo.ini_text(["x"], [last], extra="[CONV_CONFIG]\ntensor_arrays="
                                                         f"{','.join(inputs)};\n"), f"i16acts_{name}")
    return fixed.with_name("m_float.sim"), fixed, with_setting.with_name("m_float.sim")


@pytest.mark.parametrize("name", sorted(CASES))
def test_retyped_float_sim_is_the_converters_with_tensor_arrays(name):
    _skip_without_vendor()
    float_sim, _, vendor_retyped = _vendor_files(name)
    got = quantize_plan.with_int16_convs(load_model(float_sim), CASES[name][1])
    want = load_model(vendor_retyped)
    want.source = None
    assert [t.extra.get("sgs_fixed_type") for t in got.main.tensors] == \
        [t.extra.get("sgs_fixed_type") for t in want.main.tensors]
    assert got == want
    assert any(t.extra.get("sgs_fixed_type") == "INT16" and t.name in CASES[name][1] for t in got.main.tensors)


@pytest.mark.parametrize("name", sorted(CASES))
def test_synthesized_int16_convs_compile_and_the_vendor_simulators_agree(name, tmp_path):
    """Synthesized from the retyped float.sim with the rule programs and the vendor calibrator's ranges:
    the vendor's compiler takes it, and its fixed and offline simulators give our codes."""
    _skip_without_vendor()
    float_sim, fixed, _ = _vendor_files(name)
    retyped = quantize_plan.with_int16_convs(load_model(float_sim), CASES[name][1])
    log = fixed.parent / "wd" / "log"
    model = synth.synthesize(retyped, _log_ranges(log), _log_channel_ranges(log), MEAN, STD, synth.rule_program)
    sixteen = [op for op in model.main.operators if model.op_name(op) == "CONV_2D"
               and model.main.tensors[op.inputs[0]].dtype == "INT16"]
    assert sixteen and all(model.main.tensors[op.inputs[1]].dtype == "INT16" for op in sixteen)
    path = tmp_path / "synth_fixed.sim"
    path.write_bytes(model.to_bytes(reencode=True))
    vo.assert_vendor_runs_it_as_ours(path, np.random.default_rng(7), 2, name)



def test_int16_relu_over_a_range_wider_below_zero_has_the_vendors_tables(tmp_path):
    """An ADD + RELU between INT16 convs (``input_format=ALL_INT16``: the RELU writes INT16) over an input
    range with |min| > max: its ratio table holds s_in / s_out (s_in = |min| / 32767: F = |min| / max taken
    in; the 16 such RELUs of the vendor's ALL_INT16 L1 file of face_detection_short_range, F 0.64-1.78,
    hold the same), its output table 255 / 32767; the synthesized tables are the vendor's L1 file's, the
    vendor's compiler takes the file and its simulators give our codes."""
    _skip_without_vendor()
    import calibrator_custom
    from calibrator_custom.model.builder import ModelBuilder
    g = np.random.default_rng(61)
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3))
    same = {"padding": "SAME", "stride_w": 1, "stride_h": 1}

    def conv(y, cin, cout, n):
        w = (g.normal(size=(cout, 1, 1, cin)) / np.sqrt(cin)).astype(np.float32)
        bias = (g.normal(size=cout) * 0.3).astype(np.float32)
        return b.op("CONV_2D", [y, b.constant(f"w{n}", w), b.constant(f"b{n}", bias)], same, name=f"c{n}")
    c1 = conv(x, 3, 16, 1)
    c2 = conv(c1, 16, 16, 2)
    r = b.op("RELU", [b.op("ADD", [c1, c2], {}, name="s")], {}, name="r")
    b.output(conv(r, 16, 4, 3))
    ranges = {"x": (-1.0, 1.0), "c1": (-2.0, 1.5), "c2": (-3.0, 1.0), "s": (-4.0, 1.5), "r": (0.0, 1.5),
              "c3": (-2.0, 2.0)}
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"], extra="[CONV_CONFIG]\ninput_format=ALL_INT16;\n"),
                          "i16relu_wide_below")
    log = fixed.parent / "wd" / "log"
    model = synth.synthesize(load_model(fixed.with_name("m_float.sim")), _log_ranges(log), _log_channel_ranges(log),
                             MEAN, STD, synth.rule_program)
    vendor = load_model(fixed)

    def relu(m):
        (op,) = [op for op in m.main.operators if m.op_name(op) == "RELU"]
        t = m.main.tensors
        return op, t[op.inputs[0]], t[op.outputs[0]]
    (op, t_in, t_out), (vop, v_in, v_out) = relu(model), relu(vendor)
    assert (t_in.dtype, t_out.dtype, v_in.dtype, v_out.dtype) == ("INT16",) * 4
    assert abs(v_in.quantization.min[0]) > v_in.quantization.max[0]  # F > 1

    def fields(tables):  # the tables' values (the vendor file's also name their field layout)
        return [{k: v for k, v in dict(t).items() if k != "sgs_layout"} for t in tables]
    for key in ("sgs_input_rescale", "sgs_output_rescale"):
        assert fields(op.extra[key]) == fields(vop.extra[key]), key
    assert fields(op.options.sgs_input_ratio) == fields(vop.options.sgs_input_ratio)
    assert dict(op.options.sgs_input_ratio[0])["multiplier"] > 16384  # F > 1 taken in
    assert op.options.sgs_output_max == vop.options.sgs_output_max
    path = tmp_path / "synth_fixed.sim"
    path.write_bytes(model.to_bytes(reencode=True))
    o = vo.oracle()
    offline = o.compile_offline(str(path), str(tmp_path / "synth_offline.sim"))
    sim = calibrator_custom.fixed_simulator(str(path))
    for seed in (7, 8):
        xin = np.random.default_rng(seed).integers(0, 256, (1, 8, 8, 3)).astype(np.uint8)
        sim.set_input(0, xin)
        sim.invoke()
        vo.assert_outputs_code_for_code(sim, o.fixed_sim(str(path), xin), "fixed_sim")
        vo.assert_outputs_code_for_code(sim, o.offline_sim(offline, xin), "offline_sim")
