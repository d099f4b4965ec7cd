"""A PRELU writing a 16-bit conv's INT16 input in the synthesized vendor fixed.sim.

``[CONV_CONFIG] tensor_arrays`` naming a PRELU's output makes the vendor's converter plan that output
INT16 (at its own scale, max(|min|, max) / 32767) and the conv reading it a 16-bit conv. The PRELU's
tables are then: input table as for a UINT8 output (the input's UINT8 view), output table s_out / s_view
of the output's UINT8 view, ratio table s_in / s_out, alpha codes round(alpha * (s_in / s_out) * 2^s) with
s = 14 - floor(log2(max|alpha| * s_in / s_out)); the vendor's simulator rescales the positive branch by the
ratio and not the negative one, (x * alpha_q + 2^(s-1)) >> s.

Oracle tier (the vendor SDK in ``../shared/vendor_sdk``; skipped without it): the vendor's own L1 file
of each chain gives the expected tables; the synthesized file compiles and the vendor's fixed and
offline simulators give our fixed_simulator's codes.
"""
from __future__ import annotations

import numpy as np
import pytest

import vendor_fixed_oracle as vo
from calibrator_custom.model.graph import load_model
from calibrator_custom.vendor_fixed import quantize_plan, synth
from test_vendor_fixed_synth import MEAN, SAME1, STD, random_conv
from test_vendor_fixed_writer import _log_channel_ranges, _log_ranges

#: name: (seed, the first conv's output range (its min below or beyond -max), the PRELU output's range)
CASES = {
    "min_inside": (5, (-1.5, 2.0), (-0.5, 2.0)),
    "min_beyond": (6, (-3.0, 2.0), (-0.5, 2.0)),
    "max_beyond": (7, (-1.0, 2.5), (-0.2, 2.5)),
    # the output's scale below the input's: s_in / s_out (2, 3) is not F = max(1, |min| / max) (1, 1.5)
    "out_narrower": (8, (-1.5, 2.0), (-0.5, 1.0)),
    "min_beyond_out_narrower": (9, (-3.0, 2.0), (-0.5, 1.0)),
    # s_in / s_out = 0.999995: round(ratio * 2^15) = 2^15 does not fit the table's int16 (written 2^14, 14)
    "ratio_just_below_one": (10, (-1.5, 2.0), (-0.5, 2.00001)),
}


def _skip_without_vendor():
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)


def _chain(seed, c1_range, p1_range, side=12, c=16):
    """x -> c1 (1x1) -> p1 = PRELU -> c2 (3x3, the graph output)."""
    from calibrator_custom.model.builder import ModelBuilder
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))

    def conv(y, n, cin, cout, k):
        return random_conv(b, g, y, n, cin, cout, k)
    y = conv(x, 1, 3, c, 1)
    alpha = g.uniform(0.05, 0.4, size=(1, 1, c)).astype(np.float32)
    p = b.op("PRELU", [y, b.constant("alpha", alpha)], {}, name="p1")
    b.output(conv(p, 2, c, 24, 3))
    ranges = {"x": (-1.0, 1.0), "c1": c1_range, "p1": p1_range, "c2": (-3.0, 2.5)}
    return b, ranges


def _files(name):
    """(the vendor's L1 file without the setting, its L1 file with tensor_arrays = p1)."""
    b, ranges = _chain(*CASES[name])
    plain = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c2"]), f"i16prelu_{name}")
    with_setting = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c2"], extra="[CONV_CONFIG]\ntensor_arrays=p1;\n"),
                                 f"i16prelu_{name}_ta")
    return plain, with_setting


def _synthesized(plain):
    retyped = quantize_plan.with_int16_convs(load_model(plain.with_name("m_float.sim")), ["p1"])
    log = plain.parent / "wd" / "log"
    return synth.synthesize(retyped, _log_ranges(log), _log_channel_ranges(log), MEAN, STD, synth.rule_program)


def _prelu_fields(model):
    op = next(o for o in model.main.operators if model.op_name(o) == "PRELU")
    t = model.main.tensors[op.inputs[1]]
    alpha = np.frombuffer(model.buffers[t.buffer].data, "<i2")[:int(np.prod(t.shape))]  # the file pads it
    strip = lambda tables: [{k: v for k, v in dict(t).items() if k != "sgs_layout"} for t in tables]  # noqa: E731
    return (model.main.tensors[op.outputs[0]].dtype, strip(op.options.sgs_rescale),
            strip(op.extra["sgs_input_rescale"]), strip(op.extra["sgs_output_rescale"]),
            alpha.tolist())


@pytest.mark.parametrize("name", sorted(CASES))
def test_prelu_tables_are_the_vendors(name):
    _skip_without_vendor()
    plain, vendor = _files(name)
    got, want = _prelu_fields(_synthesized(plain)), _prelu_fields(load_model(vendor))
    assert got[0] == want[0] == "INT16"
    assert got == want


@pytest.mark.parametrize("name", sorted(CASES))
def test_our_simulator_runs_the_vendors_own_file_as_the_vendor(name):
    """The vendor's own L1 file with the INT16 PRELU output: its fixed simulator gives our codes."""
    _skip_without_vendor()
    import calibrator_custom
    _, vendor = _files(name)
    o = vo.oracle()
    sim = calibrator_custom.fixed_simulator(str(vendor))
    shape = tuple(int(v) for v in sim.get_input_details()[0]["shape"])
    g = np.random.default_rng(CASES[name][0] + 100)
    for _ in range(2):
        x = g.integers(0, 256, shape).astype(np.uint8)
        sim.set_input(0, x)
        sim.invoke()
        assert vo.assert_outputs_code_for_code(sim, o.fixed_sim(str(vendor), x), f"{name}, the vendor's file") > 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_synthesized_compiles_and_the_vendor_simulators_agree(name, tmp_path):
    _skip_without_vendor()
    plain, _ = _files(name)
    path = tmp_path / "synth_fixed.sim"
    path.write_bytes(_synthesized(plain).to_bytes(reencode=True))
    vo.assert_vendor_runs_it_as_ours(path, np.random.default_rng(CASES[name][0]), 2, name)


def _pool_chain(seed=3, side=16, c=16):
    """x -> c1 (1x1) -> p1 = PRELU -> (c2: 1x1 stride 2, m: 2x2 MAX_POOL) -> s = ADD -> c3 (1x1, the output):
    p1 is read by a conv and a pool whose output an ADD reads."""
    from calibrator_custom.model.builder import ModelBuilder
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))

    def conv(y, n, cin, cout, stride=1):
        return random_conv(b, g, y, n, cin, cout, 1, dict(SAME1, stride_w=stride, stride_h=stride))
    p = b.op("PRELU", [conv(x, 1, 3, c), b.constant("alpha", g.uniform(0.05, 0.4, size=(1, 1, c)).astype(np.float32))],
             {}, name="p1")
    m = b.op("MAX_POOL_2D", [p], {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
                                  "filter_height": 2}, name="m")
    s = b.op("ADD", [conv(p, 2, c, c, 2), m], {}, name="s")
    b.output(conv(s, 3, c, 8))
    ranges = {"x": (-1.0, 1.0), "c1": (-1.5, 2.0), "p1": (-0.5, 2.0), "c2": (-2.0, 2.0), "m": (-0.5, 2.0),
              "s": (-2.5, 3.0), "c3": (-3.0, 2.5)}
    return b, ranges


def test_a_pool_of_an_int16_tensor_writes_int16_as_the_converter_plans_it(tmp_path):
    """With ``tensor_arrays`` naming p1 the vendor's converter plans p1, c2's weights and the pool's output
    INT16; ``with_int16_convs`` gives the same types; the synthesized file compiles and runs as ours."""
    _skip_without_vendor()
    b, ranges = _pool_chain()
    plain = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), "i16prelu_pool")
    vendor = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"], extra="[CONV_CONFIG]\ntensor_arrays=p1;\n"),
                           "i16prelu_pool_ta")
    got = quantize_plan.with_int16_convs(load_model(plain.with_name("m_float.sim")), ["p1"])
    want = load_model(vendor.with_name("m_float.sim"))
    types = {t.name: t.extra.get("sgs_fixed_type") for t in got.main.tensors}
    assert types == {t.name: t.extra.get("sgs_fixed_type") for t in want.main.tensors}
    assert (types["p1"], types["w2"], types["m"], types["s"]) == ("INT16", "INT16", "INT16", "UINT8")
    log = plain.parent / "wd" / "log"
    model = synth.synthesize(got, _log_ranges(log), _log_channel_ranges(log), MEAN, STD, synth.rule_program)
    path = tmp_path / "synth_fixed.sim"
    path.write_bytes(model.to_bytes(reencode=True))
    vo.assert_vendor_runs_it_as_ours(path, np.random.default_rng(1), 2, "PRELU -> conv, pool")


def test_a_conv_reading_a_prelu_also_pooled_is_carried_at_16_bit(tmp_path):
    """``vendor_int16_carriable`` on the vendor's float.sim of the pool chain: c2 (reading p1, which the pool
    also reads, its output going to an ADD) and c3 (reading the ADD) are carried, c1 (the graph input) not."""
    _skip_without_vendor()
    import calibrator_custom
    from calibrator_custom.config import load_input_config
    from calibrator_custom.pipeline.convert import vendor_int16_carriable
    from calibrator_custom.quant.planner import PlanInputs
    b, ranges = _pool_chain()
    plain = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), "i16prelu_pool")
    float_sim = plain.with_name("m_float.sim")
    ini = tmp_path / "m.ini"
    ini.write_text(vo.ini_text(["x"], ["c3"]))
    fsim = calibrator_custom.float_simulator(str(float_sim))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    from calibrator_custom.calib import collect_stats_arrays
    stats = collect_stats_arrays(str(float_sim), [[x]])
    pi = PlanInputs.create(fsim.model_obj, stats, load_input_config(str(ini), fsim.model_obj))
    vendor_float = load_model(float_sim)
    carried = vendor_int16_carriable(vendor_float, pi)
    names = {c.op_index: pi.model.main.tensors[c.data].name for c in pi.convs}
    assert sorted(names[k] for k in carried) == ["p1", "s"]
