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

