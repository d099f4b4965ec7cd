"""16-bit depthwise convs in the synthesized vendor fixed.sim (INT16 input and INT16 weights).

The vendor's converter plans them for ``[CONV_CONFIG] tensor_arrays=<the depthwise's input>`` and for
``input_format`` ALL_INT16 / DEPTHWISE_INT16 / CONV2D_INT16: only the float.sim's planned types
change (Tensor slot 10: the depthwise's input and weights INT16). A 3 x 3 depthwise of more than 3
channels stays a native DEPTHWISE_CONV_2D; the others are the converter's rewrite as a CONV_2D of
diagonal weights (``sgs_depthwise_mode`` 2), which counts as a CONV_2D for input_format.

Oracle tier (the vendor SDK in ``../shared/vendor_sdk``; skipped without it), on builder chains
``x -> 1x1 conv -> depthwise -> 1x1 conv`` converted and L1-calibrated by the vendor in the session:

- ``quantize_plan.with_int16_convs`` gives the converter's own float.sim;
- the vendor's L1 weight buffer is our packing of the INT16 codes of the float.sim's weights;
- synthesized with the vendor's own programs, our file is the vendor's L1 file byte for byte once
  the INT16 accumulator bounds (QuantizationParameters slots 4/5, not established) are the vendor's;
- the rule's program of the 16-bit depthwise is the vendor's, slot for slot (where established);
- synthesized with the rule's programs alone, the file compiles and the vendor's fixed and offline
  simulators give our fixed_simulator's codes; and our fixed_simulator on the vendor's own L1 file
  gives the vendor's fixed_sim codes.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

import vendor_fixed_oracle as vo
from calibrator_custom.errors import ModelError
from calibrator_custom.model import sgs_weights
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import load_model
from calibrator_custom.vendor_fixed import conv, layout, pack, quantize_plan, synth
from test_vendor_fixed_synth import MEAN, STD, _no_layout, _own_program
from test_vendor_fixed_writer import _log_channel_ranges, _log_ranges

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import vendor_program_splice as vps  # noqa: E402

SAME1 = {"padding": "SAME", "stride_w": 1, "stride_h": 1}

#: name -> (seed, side, channels, kernel, stride, the ini's CONV_CONFIG line)
TA = "tensor_arrays=c1"
CASES = {
    "dw8_k3": (101, 12, 8, 3, 1, TA),
    "dw16_k3_s2": (102, 12, 16, 3, 2, TA),
    "dw24_k3": (103, 12, 24, 3, 1, TA),
    "dw40_k3_s2": (104, 12, 40, 3, 2, TA),
    "rw8_k5": (105, 12, 8, 5, 1, TA),
    "rw24_k5": (106, 12, 24, 5, 1, TA),
    "rw40_k5_s2": (107, 12, 40, 5, 2, TA),
    "dw32_48x48": (108, 48, 32, 3, 1, TA),
    "dw64_40x40": (109, 40, 64, 3, 1, TA),
    "dw16_96x96_s2": (110, 96, 16, 3, 2, TA),
    "rw48_32x32": (111, 32, 48, 5, 1, TA),
    "all_int16_rw24": (112, 12, 24, 5, 1, "input_format=ALL_INT16"),
    "all_int16_dw16_s2": (113, 12, 16, 3, 2, "input_format=ALL_INT16"),
    "depthwise_int16_dw24": (114, 12, 24, 3, 1, "input_format=DEPTHWISE_INT16"),
    "depthwise_int16_rw24": (115, 12, 24, 5, 1, "input_format=DEPTHWISE_INT16"),
    "conv2d_int16_rw40_s2": (116, 12, 40, 5, 2, "input_format=CONV2D_INT16"),
}
#: the rule's program is another than the vendor's (the synthesized file still compiles and agrees):
#: an INT16 input plane tiled by rows (the vendor's tiles are larger: 24 rows of 48 in 4 input
#: entries where the rule keeps 2 entries) and the vendor's other mode of a large 5 x 5 rewrite
#: (slot 20 = 3; its input in 15 slots)
PROGRAM_GAPS = {"dw16_96x96_s2": "INT16 row tiles: the vendor's 24 rows (4 input entries), the rule's 12",
                "rw48_32x32": "the vendor writes this rewrite in another mode (slot 20 = 3)"}


def _skip_without_vendor():
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)


def _chain(seed, side, c, k, s):
    """x -> c1 (1x1, 3 -> c) -> c2 (the k x k depthwise, stride s) -> c3 (1x1, c -> 8)."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(c, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", (g.normal(size=c) * 0.3).astype(np.float32))], SAME1, name="c1")
    z = b.op("DEPTHWISE_CONV_2D", [y, b.constant("w2", (g.normal(size=(1, k, k, c)) / k).astype(np.float32)),
                                   b.constant("b2", (g.normal(size=c) * 0.3).astype(np.float32))],
             {"padding": "SAME", "stride_w": s, "stride_h": s, "depth_multiplier": 1}, name="c2")
    o = b.op("CONV_2D", [z, b.constant("w3", (g.normal(size=(8, 1, 1, c)) / np.sqrt(c)).astype(np.float32)),
                         b.constant("b3", g.normal(size=8).astype(np.float32))], SAME1, name="c3")
    b.output(o)
    r = g.uniform(1, 4, size=3)
    ranges = {"x": (-1.0, 1.0), "c1": (-r[0], 0.8 * r[0]), "c2": (-r[1], 0.8 * r[1]), "c3": (-r[2], 0.8 * r[2])}
    return b, ranges


def _vendor_files(name):
    """(the float.sim converted without the setting, the one converted with it, its L1 fixed.sim)."""
    seed, side, c, k, s, line = CASES[name]
    b, ranges = _chain(seed, side, c, k, s)
    plain = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"i16dw_plain_{side}_{c}_{k}_{s}")
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"], extra=f"[CONV_CONFIG]\n{line};\n"), f"i16dw_{name}")
    return plain.with_name("m_float.sim"), fixed.with_name("m_float.sim"), fixed


def _retyped(name, float_sim):
    model = load_model(float_sim)
    line = CASES[name][5]
    if line == TA:
        return quantize_plan.with_int16_convs(model, ["c1"])
    return quantize_plan.with_int16_convs(model, quantize_plan.int16_conv_inputs(model, line.split("=")[1]))


def _synthesize(retyped, fixed, program_for):
    log = fixed.parent / "wd" / "log"
    return synth.synthesize(retyped, _log_ranges(log), _log_channel_ranges(log), MEAN, STD, program_for)


def _depthwise_op(model):
    """(index, op) of the chain's depthwise: the native op or the converter's rewrite."""
    sg = model.main
    for j, op in enumerate(sg.operators):
        if sg.tensors[op.outputs[0]].name == "c2":
            return j, op
    raise AssertionError("no depthwise c2")


def test_int16_depthwise_weights_round_trip_in_groups_of_8_channels():
    codes = np.arange(-180, 180, dtype=np.int64).reshape(1, 3, 3, 40) * 91
    raw = pack.pack_depthwise_weights(codes, np.int16)
    assert len(raw) == 5 * (144 + 16)  # 8 channels x 9 taps x 2 bytes = 144, padded to 160
    first = np.frombuffer(raw[:144], "<i2").reshape(3, 3, 8)
    assert np.array_equal(first, codes[0, :, :, :8])
    assert np.array_equal(layout.unpack_depthwise_weights(raw, codes.shape, "<i2"), codes)


def test_int16_diagonal_blocks_hold_each_16_channel_tile_in_the_int16_conv_layout():
    g = np.random.default_rng(0)
    c, k = 24, 5
    dense = np.zeros((c, k, k, c), np.int64)
    for t0 in range(0, c, 16):
        n = min(16, c - t0)
        dense[t0:t0 + n, :, :, t0:t0 + n] = g.integers(-32767, 32768, (n, k, k, n))
    raw = sgs_weights.pack_diagonal_blocks(dense, np.int16)
    # tile 0: 2 output groups x 2 input runs of 8 x 25 taps x 128 bytes; tile 1 (8 channels): 25 x 128
    assert len(raw) == sgs_weights.diagonal_block_bytes(c, k, k, np.int16) == 25 * (4 * 128 + 128) == 16000
    assert np.array_equal(np.frombuffer(raw[:128], "<i2").reshape(8, 8), dense[:8, 0, 0, :8])
    assert np.array_equal(np.frombuffer(raw[128:256], "<i2").reshape(8, 8), dense[:8, 0, 1, :8])
    assert np.array_equal(sgs_weights.unpack_diagonal_blocks(raw, dense.shape, np.int16), dense)
    with pytest.raises(ModelError, match="too short"):
        sgs_weights.unpack_diagonal_blocks(raw[:-2], dense.shape, np.int16)


def test_int16_weight_codes_divide_in_float64_by_the_stored_bound():
    w = np.array([0.5, -0.25, 0.1, -0.5], np.float32)
    codes = pack.int16_weight_codes(w, 0.5)
    assert codes.tolist() == [32767, round(-0.25 / (0.5 / 32767)), round(float(np.float32(0.1)) * 65534), -32767]


def test_the_shifted_accumulator_and_its_sum_with_the_bias_saturate_to_32767():
    """The vendor's codes at two saturating pixels of a 16-bit depthwise (k 16, N 31, M 26451; its dump):
    R + b0 = -30293 - 3235 taken as -32767 gives -26450 (-32768 would give -26451); acc = 2394465727,
    R = 36537 taken as 32767 before b0 = -3235 is added gives 23839 (the sum alone saturated: 26450)."""
    got = conv.requantize(np.array([-1985283343, 2394465727]), [-3235, -3235], [26451, 26451], 16, 31, 0, np.int16)
    assert got.tolist() == [-26450, 23839]


def test_int16_conv_inputs_by_input_format():
    b, _ = _chain(1, 8, 8, 3, 1)
    m = b.build()
    assert quantize_plan.int16_conv_inputs(m, "ALL_INT16") == ["c1", "c2"]
    assert quantize_plan.int16_conv_inputs(m, "DEPTHWISE_INT16") == ["c1"]
    assert quantize_plan.int16_conv_inputs(m, "CONV2D_INT16") == ["c2"]
    with pytest.raises(ModelError, match="input_format"):
        quantize_plan.int16_conv_inputs(m, "INT16")


@pytest.mark.parametrize("name", sorted(CASES))
def test_retyped_float_sim_is_the_converters(name):
    _skip_without_vendor()
    plain, vendor_retyped, _ = _vendor_files(name)
    got = _retyped(name, plain)
    want = load_model(vendor_retyped)
    want.source = None
    assert [t.extra.get("sgs_fixed_type") for t in got.main.tensors] == \
        [t.extra.get("sgs_fixed_type") for t in want.main.tensors]
    assert got == want
    _, op = _depthwise_op(want)
    int16 = want.main.tensors[op.inputs[0]].extra["sgs_fixed_type"] == "INT16"
    # DEPTHWISE_INT16 leaves the rewrite (a CONV_2D in the float.sim) at 8 bit
    assert int16 == (name != "depthwise_int16_rw24")


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if n != "depthwise_int16_rw24"])  # that one stays 8-bit
def test_vendor_weight_buffer_is_our_packing_of_the_int16_codes(name):
    """The vendor's INT16 depthwise weights: native, groups of 8 channels ([kh][kw][8] codes, 32-byte
    padded); the rewrite, its diagonal 16-channel tiles in the INT16 conv layout; codes
    round(w / (max|w| / 32767)) of the float.sim's weights in float64."""
    _skip_without_vendor()
    _, vendor_retyped, fixed = _vendor_files(name)
    fl, fx = load_model(vendor_retyped), load_model(fixed)
    _, op = _depthwise_op(fx)
    tw = fx.main.tensors[op.inputs[1]]
    assert tw.dtype == "INT16"
    w = next(fl.tensor_data(t) for t in fl.main.tensors if t.name == tw.name)
    codes = pack.int16_weight_codes(w, max(abs(tw.quantization.min[0]), abs(tw.quantization.max[0])))
    if fx.op_name(op) == "DEPTHWISE_CONV_2D":
        ours = pack.pack_depthwise_weights(codes, np.int16)
    else:
        assert getattr(op.options, "sgs_depthwise_mode", None) == 2
        ours = sgs_weights.pack_diagonal_blocks(codes, np.int16)
    raw = fx.buffers[tw.buffer].data
    assert len(raw) >= len(ours) and not any(raw[len(ours):])
    diff = np.nonzero(np.frombuffer(raw[:len(ours)], "<i2") != np.frombuffer(ours, "<i2"))[0]
    assert diff.size == 0, f"{diff.size} of {len(ours) // 2} codes differ"


@pytest.mark.parametrize("name", sorted(CASES))
def test_synthesized_with_the_vendors_programs_is_the_vendors_file(name):
    """Byte for byte, once the accumulator bounds of the convs reading or writing INT16 (within ~1e-7
    of the vendor's, not established) are the vendor's."""
    _skip_without_vendor()
    plain, _, fixed = _vendor_files(name)
    retyped = _retyped(name, plain)
    fx = load_model(fixed)
    model = _synthesize(retyped, fixed, _own_program(retyped, fx))
    for t, v in zip(model.main.tensors, fx.main.tensors):
        if "sgs_acc_max" in t.quantization.extra:
            ours = (t.quantization.extra["sgs_acc_max"][0], t.quantization.extra["sgs_acc_min"][0])
            want = (v.quantization.extra["sgs_acc_max"][0], v.quantization.extra["sgs_acc_min"][0])
            assert all(abs(a - b) <= 1e-7 * abs(b) + 1 for a, b in zip(ours, want)), (t.name, ours, want)
            extra = {**t.quantization.extra, "sgs_acc_max": (want[0],), "sgs_acc_min": (want[1],)}
            t.quantization = dataclasses.replace(t.quantization, extra=extra)
    got, want = model.to_bytes(reencode=True), fixed.read_bytes()
    assert len(got) == len(want)
    diff = np.nonzero(np.frombuffer(got, np.uint8) != np.frombuffer(want, np.uint8))[0]
    assert diff.size == 0, f"{diff.size} bytes differ, first at {diff[:8].tolist()}"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=PROGRAM_GAPS[n]))
                                  if n in PROGRAM_GAPS else n for n in sorted(CASES)])
def test_rule_program_of_the_depthwise_is_the_vendors(name):
    _skip_without_vendor()
    _, vendor_retyped, fixed = _vendor_files(name)
    fl, fx = load_model(vendor_retyped), load_model(fixed)
    plan = {i: dataclasses.replace(q, dtype=fx.main.tensors[i].dtype) for i, q in
            enumerate(synth.qp.plan(fl, {t.name: (-1.0, 1.0) for t in fl.main.tensors}).values())}
    j, _ = _depthwise_op(fl)
    site = synth.conv_sites(fl, plan)[j]
    want = vps.program_fields(fx.main.operators[j].options, site.kind)
    got = synth.rule_program(site).fields
    assert set(got) == set(want)
    bad = [k for k in want if _no_layout(got[k]) != _no_layout(want[k])]
    assert not bad, f"{site.kind} {site.in_dtype} -> {site.out_dtype}: rule and vendor differ in {bad}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_synthesized_compiles_and_the_vendor_simulators_agree(name, tmp_path):
    """From the retyped float.sim with the rule's programs and the vendor calibrator's ranges; and our
    fixed_simulator on the vendor's own L1 file."""
    _skip_without_vendor()
    import calibrator_custom
    plain, _, fixed = _vendor_files(name)
    model = _synthesize(_retyped(name, plain), fixed, synth.rule_program)
    j, op = _depthwise_op(model)
    if name != "depthwise_int16_rw24":
        assert {model.main.tensors[i].dtype for i in op.inputs[:2]} == {"INT16"}
    path = tmp_path / "synth_fixed.sim"
    path.write_bytes(model.to_bytes(reencode=True))
    o = vo.oracle()
    offline = o.compile_offline(str(path), str(tmp_path / "synth_offline.sim"))
    ours = calibrator_custom.fixed_simulator(str(path))
    theirs = calibrator_custom.fixed_simulator(str(fixed))
    shape = tuple(int(v) for v in ours.get_input_details()[0]["shape"])
    g = np.random.default_rng(CASES[name][0])
    for _ in range(2):
        x = g.integers(0, 256, shape).astype(np.uint8)
        ours.set_input(0, x)
        ours.invoke()
        vo.assert_outputs_code_for_code(ours, o.fixed_sim(str(path), x), f"{name}, fixed_sim")
        vo.assert_outputs_code_for_code(ours, o.offline_sim(offline, x), f"{name}, offline_sim")
        theirs.set_input(0, x)
        theirs.invoke()
        vo.assert_outputs_code_for_code(theirs, o.fixed_sim(str(fixed), x), f"{name}, the vendor's L1 file")
