"""The vendor fixed.sim synthesized from the vendor float.sim (no template) against the vendor's own L1 file.

Unit tests check the pure rules of ``vendor_fixed.synth`` against hand-computed values; the oracle
tier (the vendor SDK in ``../shared/vendor_sdk``; skipped without it) makes builder conv chains with
the vendor's converter and L1 calibrator and checks, for each, that the synthesized file

- with the vendor's own program of each conv (taken from its L1 file) is the vendor's L1 file byte
  for byte: every field but the program is synthesized;
- with the program the vendor writes for the same conv on its own (``tools/vendor_program_splice.py``,
  the provider a fitted rule will replace) equals the vendor's file field for field outside the
  program slots, is compiled by the vendor's compiler, and gives our ``fixed_simulator``'s codes in
  the vendor's fixed simulator on random inputs.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

import vendor_fixed_oracle as vo
from calibrator_custom.errors import UnsupportedOpError
from calibrator_custom.ops._common import same_pads
from calibrator_custom.model.graph import load_model
from calibrator_custom.vendor_fixed import pack, synth
from test_vendor_fixed_ops import _conv_chain
from test_vendor_fixed_writer import CONV_CHAINS, _l2_weight_scales, _log_channel_ranges, _log_ranges

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import vendor_program_splice as vps  # noqa: E402

SAME1 = {"padding": "SAME", "stride_w": 1, "stride_h": 1}
#: longer chains x -> c1 -> ... -> cn: (seed, side, output channels, kernels, convs with a fused RELU)
LONG_CHAINS = {
    "long_32to64": (41, 32, (32, 64, 64, 4), (1, 3, 3, 1), ()),
    "long_48to128": (42, 24, (48, 96, 128, 4), (1, 3, 1, 1), ()),
    "relu_24to40": (43, 12, (24, 40, 16, 4), (1, 3, 3, 1), (1, 2)),
    "relu_stride2": (44, 17, (16, 32, 4), (3, 3, 1), (1,)),
}
#: x -> c1 -> (c2, c3) -> ADD -> c4: (seed, side, channels, kernel of c3, ADD(c3, c2) instead of ADD(c2, c3))
ADD_CHAINS = {
    "add_16": (51, 8, 16, 1, False),
    "add_24_swapped": (52, 10, 24, 3, True),
    "add_16_3x3": (53, 12, 16, 3, False),
}
#: the chains the synthesizer is checked on (each made once, cached by vendor_fixed_oracle)
SYNTH_CHAINS = ["3x3_same_16to24", "3x3_stride2", "1x1_valid_odd", "5x5_valid_stride2", "3x3_32to40",
                "3x3_17to33", *LONG_CHAINS, *ADD_CHAINS]
MEAN, STD = (127.5, 127.5, 127.5), 127.5


def _long_chain(seed, side, chans, kernels, relu):
    """x -> conv (SAME, stride 1; stride 2 on the 2nd conv of an odd side) ... with RELU fused into the convs
    numbered in ``relu``; the chosen ranges start at 0 after a RELU."""
    from calibrator_custom.model.builder import ModelBuilder
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    y = b.input("x", (1, side, side, 3))
    ranges, cin = {"x": (-1.0, 1.0)}, 3
    for n, (c, k) in enumerate(zip(chans, kernels), 1):
        stride = 2 if side % 2 and n == 2 else 1
        w = (g.normal(size=(c, k, k, cin)) / np.sqrt(k * k * cin)).astype(np.float32)
        opts = dict(SAME1, stride_w=stride, stride_h=stride,
                    fused_activation_function="RELU" if n in relu else "NONE")
        bias = (g.normal(size=c) * 0.3).astype(np.float32)
        y = b.op("CONV_2D", [y, b.constant(f"w{n}", w), b.constant(f"b{n}", bias)], opts, name=f"c{n}")
        r = g.uniform(1, 4)
        ranges[f"c{n}"] = (0.0, r) if n in relu else (-r, 0.8 * r)
        cin = c
    b.output(y)
    return b, ranges, f"c{len(chans)}"


# ---------------------------------------------------------------- pure rules
@pytest.mark.parametrize("size,k,stride,want", [(8, 3, 1, (1, 1)), (9, 3, 2, (1, 1)), (8, 3, 2, (0, 1)),
                                                (10, 5, 2, (1, 2)), (8, 1, 1, (0, 0)), (7, 4, 1, (1, 2))])
def test_same_pads_split_as_tensorflow(size, k, stride, want):
    """out = ceil(size / stride), total = (out - 1) * stride + k - size, the smaller half before."""
    assert same_pads(size, k, stride)[1:] == want


def test_activation_bytes_round_pixel_bytes_to_16_and_size_to_64():
    assert synth.activation_bytes((1, 8, 8, 16), "UINT8") == 1024
    assert synth.activation_bytes((1, 7, 7, 3), "UINT8") == 832       # 49 * 16 = 784 -> 832
    assert synth.activation_bytes((1, 7, 7, 40), "UINT8") == 2368     # 49 * 48 = 2352 -> 2368
    assert synth.activation_bytes((1, 10, 10, 24), "INT16") == 4800   # 100 * 48 (24 * 2, a multiple of 16)
    assert synth.activation_bytes((1, 5, 5, 4), "INT16") == 448       # 25 * 16 = 400 -> 448


def test_arena_first_fit_over_lifetimes_and_total_rounded_to_128():
    """x -> c1 -> c2 -> c3 -> c4 -> out: c3 reuses c1's bytes when it fits there (c1 is dead once c2 is
    written), c4 does not fit below c2 and goes after c3; a tensor is live while its reader runs."""
    T = dataclasses.make_dataclass("T", ["shape", "dtype"])
    Op = dataclasses.make_dataclass("Op", ["inputs", "outputs"])
    tensors = [T((1, 4, 4, 3), "UINT8"), T((1, 8, 8, 16), "UINT8"), T((1, 8, 8, 32), "UINT8"),
               T((1, 8, 8, 8), "UINT8"), T((1, 9, 9, 16), "UINT8"), T((1, 2, 2, 4), "INT16")]
    ops = [Op((0,), (1,)), Op((1,), (2,)), Op((2,), (3,)), Op((3,), (4,)), Op((4,), (5,))]
    ranges, total = synth.arena(tensors, ops, [1, 2, 3, 4])
    # c1 1024 bytes at 0; c2 2048 after it; c3 (8*8*16 = 1024) in c1's hole; c4 (81*16 = 1296 -> 1344)
    # while c3 is live: not below c3's end 1024 (c2 at 1024..3072 is dead by then: c4 at 1024)
    assert ranges == {1: (0, 1024), 2: (1024, 3072), 3: (0, 1024), 4: (1024, 2368)}
    assert total == 3072
    ranges, total = synth.arena(tensors, ops[:2], [1])
    assert ranges == {1: (0, 1024)} and total == 1024


def test_fixed_flag_codes():
    f = synth.fixed_flag
    assert f("UINT8", False, True, False, False, None, ("CONV_2D",)) == 1
    assert f("INT8", True, False, False, True, None, ("CONV_2D",)) == 10
    assert f("INT16", True, False, False, True, None, ("CONV_2D",)) == 13
    assert f("INT16", True, False, False, False, None, ("CONV_2D",)) == 12
    assert f("INT32", True, False, False, False, None, ("PAD",)) == 14
    assert f("UINT8", False, False, False, False, "CONV_2D", ("CONV_2D",)) == 6
    assert f("UINT8", False, False, False, False, "CONV_2D", ("RESHAPE",)) == 7
    assert f("INT16", False, False, False, False, "CONV_2D", ("RELU",)) == 11
    assert f("INT16", False, False, True, False, "CONV_2D", ()) == 12


def test_first_reference_order():
    """A tensor the converter appended (a depthwise rewritten as a conv) ranks where an op first names it."""
    Op = dataclasses.make_dataclass("Op", ["inputs", "outputs"])
    SG = dataclasses.make_dataclass("SG", ["operators", "tensors"])
    sg = SG([Op((0, 1, 2), (3,)), Op((3, 8, 9), (4,)), Op((4, 5, 6), (7,))], list(range(10)))
    assert synth.first_reference_order(sg) == {0: 0, 1: 1, 2: 2, 3: 3, 8: 4, 9: 5, 4: 6, 5: 7, 6: 8, 7: 9}


# ---------------------------------------------------------------- oracle tier
def _skip_without_vendor():
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)


def random_conv(b, g, y, n: int, cin: int, cout: int, k: int, options=SAME1):
    """A CONV_2D named c<n> with weights N(0, 1 / (k k cin)) and biases N(0, 0.3^2) from ``g``, on ``y``."""
    w = (g.normal(size=(cout, k, k, cin)) / np.sqrt(k * k * cin)).astype(np.float32)
    bias = (g.normal(size=cout) * 0.3).astype(np.float32)
    return b.op("CONV_2D", [y, b.constant(f"w{n}", w), b.constant(f"b{n}", bias)], options, name=f"c{n}")


def _add_chain(seed, side, c, k3, swap):
    """x -> c1 (1x1) -> c2 (3x3), c3 (k3 x k3) -> s = ADD -> c4 (1x1, the graph output)."""
    from calibrator_custom.model.builder import ModelBuilder
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))

    def conv(y, n, cin, cout, k):
        return random_conv(b, g, y, n, cin, cout, k)
    y = conv(x, 1, 3, c, 1)
    a, z = conv(y, 2, c, c, 3), conv(y, 3, c, c, k3)
    s = b.op("ADD", [z, a] if swap else [a, z], {}, name="s")
    b.output(conv(s, 4, c, 8, 1))
    r = g.uniform(1, 4, size=5)
    ranges = {"x": (-1.0, 1.0), "c1": (-0.5 * r[0], r[0]), "c2": (-r[1], 0.8 * r[1]), "c3": (-0.7 * r[2], r[2]),
              "s": (-r[3], 1.1 * r[3]), "c4": (-r[4], r[4])}
    return b, ranges, "c4"


def _chain(name):
    if name in ADD_CHAINS:
        b, ranges, last = _add_chain(*ADD_CHAINS[name])
        fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], [last]), f"synth_{name}")
    elif name in LONG_CHAINS:
        b, ranges, last = _long_chain(*LONG_CHAINS[name])
        fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], [last]), f"synth_{name}")
    else:
        b, ranges, _, _ = _conv_chain(*CONV_CHAINS[name])
        fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"writer_{name}")
    return fixed.with_name("m_float.sim"), fixed


def _own_program(float_model, fixed_model):
    """The provider that returns the vendor's own program of each conv (from its L1 file)."""
    fused = synth.fuse_activations(float_model).main
    by_weight = {fixed_model.main.tensors[op.inputs[1]].name: op for op in fixed_model.main.operators
                 if fixed_model.op_name(op) in ("CONV_2D", "DEPTHWISE_CONV_2D")}

    def program_for(site):  # the vendor may schedule ops in another order: found by the weight tensor
        op = by_weight[fused.tensors[fused.operators[site.op_index].inputs[1]].name]
        tw = fixed_model.main.tensors[op.inputs[1]]
        raw = fixed_model.buffers[tw.buffer].data
        if site.kind == "DEPTHWISE_CONV_2D" or site.depthwise_as_conv:  # one layout: 16-channel groups
            return synth.ConvProgram(vps.program_fields(op.options, site.kind), 0, 0, len(raw))
        if tw.dtype == "INT16":  # one layout (layout.unpack_conv_weights)
            return synth.ConvProgram(vps.program_fields(op.options, site.kind), 0, 0, len(raw))
        codes = pack.weight_codes(vps.float_weights(float_model, tw.name), tw.quantization.scale[0])
        tiling = vps.weight_tiling(codes, raw)
        if tiling is None:
            raise LookupError(f"op #{site.op_index}: the weight tiling is none layout.conv_tilings lists")
        return synth.ConvProgram(vps.program_fields(op.options, site.kind), tiling[1], tiling[0], len(raw))
    return program_for


def standalone_program(site):
    """The provider that returns the program the vendor writes for the same conv on its own."""
    key = vps.ConvKey(site.kind, site.in_shape, site.w_shape, site.stride, site.padding, site.in_dtype,
                      site.out_dtype, site.graph_input)
    prog = vps.standalone_program(key)
    if prog.get("tiling") is None:
        pytest.skip(f"op #{site.op_index}: the standalone's weight tiling is not one layout.conv_tilings lists")
    to, ti = prog["tiling"]
    return synth.ConvProgram(prog["fields"], ti, to, prog["buffer_bytes"])


def _synthesize(float_sim, fixed, program_for):
    log = fixed.parent / "wd" / "log"
    return synth.synthesize(load_model(float_sim), _log_ranges(log), _log_channel_ranges(log), MEAN, STD,
                            program_for)


@pytest.mark.parametrize("name", SYNTH_CHAINS)
def test_synthesized_with_the_vendors_programs_is_the_vendors_file(name):
    _skip_without_vendor()
    float_sim, fixed = _chain(name)
    fl, fx = load_model(float_sim), load_model(fixed)
    log = fixed.parent / "wd" / "log"
    model = synth.synthesize(fl, _log_ranges(log), _log_channel_ranges(log), MEAN, STD, _own_program(fl, fx))
    assert fl == load_model(float_sim), "the float model is not modified"
    got = model.to_bytes(reencode=True)
    want = fixed.read_bytes()
    assert len(got) == len(want)
    diff = np.nonzero(np.frombuffer(got, np.uint8) != np.frombuffer(want, np.uint8))[0]
    assert diff.size == 0, f"{diff.size} bytes differ, first at {diff[:8].tolist()}"


def _without_program(model):
    """The model's decoded content with every conv's program fields (and the options' layout, the
    int8 weight buffers packed per the program and the tensor tags, which follow the file layout) blanked."""
    m = model.copy()
    sg = m.main
    weight_buffers = set()
    for op in sg.operators:
        kind = m.op_name(op)
        if kind in vps.SHIFT_SLOTS:
            blank = {k: None for k in vps.program_fields(op.options, kind)}
            op.options = dataclasses.replace(op.options, **blank, sgs_layout=())
            weight_buffers.add(sg.tensors[op.inputs[1]].buffer)
    for t in sg.tensors:  # a tag of 0 is an absent field: the tag leaves the layout too
        t.extra = {k: v for k, v in t.extra.items() if k != "sgs_tag"}
        t.extra["sgs_layout"] = tuple(f for f in t.extra.get("sgs_layout", ()) if f != "sgs_tag")
    m.buffers = [dataclasses.replace(b, data=b"") if i in weight_buffers else b for i, b in enumerate(m.buffers)]
    m.source = None
    return m


@pytest.mark.parametrize("name", SYNTH_CHAINS)
def test_synthesized_with_standalone_programs_compiles_and_runs_as_ours(name, tmp_path):
    """Field for field the vendor's file outside the program slots; the vendor's compiler takes it;
    the vendor's fixed simulator and our fixed_simulator give the same codes on random inputs."""
    _skip_without_vendor()
    float_sim, fixed = _chain(name)
    model = _synthesize(float_sim, fixed, standalone_program)
    path = tmp_path / "synth_fixed.sim"
    path.write_bytes(model.to_bytes(reencode=True))
    got, want = _without_program(load_model(path)), _without_program(load_model(fixed))
    assert got == want
    vo.assert_vendor_runs_it_as_ours(path, np.random.default_rng(7), 2, f"{name}, synthesized", offline=False)


def test_add_fusions_find_the_conv_run_with_the_add():
    """The conv just before the ADD, read only by it, runs in it: which input it writes."""
    _skip_without_vendor()
    for name, want in (("add_16", 1), ("add_24_swapped", 0)):
        float_sim, _ = _chain(name)
        model = synth.fuse_activations(load_model(float_sim))
        ((j, (k, position)),) = synth.add_fusions(model).items()
        assert model.op_name(model.main.operators[j]) == "ADD" and k == j - 1 and position == want


def test_other_ops_are_refused_naming_the_op():
    _skip_without_vendor()
    from calibrator_custom.model.builder import ModelBuilder
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3))
    g = np.random.default_rng(1)
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(4, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", np.zeros(4, np.float32))], {"padding": "SAME", "stride_w": 1,
                                                                      "stride_h": 1}, name="c1")
    b.output(b.op("TANH", [y], {}, name="s"))
    fixed = vo.make_fixed(b, {"x": (-1, 1), "c1": (-2, 2), "s": (-1, 1)}, vo.ini_text(["x"], ["s"]), "synth_refuse_tanh")
    with pytest.raises(UnsupportedOpError, match="TANH"):
        _synthesize(fixed.with_name("m_float.sim"), fixed, standalone_program)


def test_a_program_the_compiler_refuses_is_refused_naming_the_op():
    """The rule provider refuses up front, naming the op and the broken limit (``program.compiler_limits``),
    a conv program the vendor's compiler aborts on: here the whole-plane allocation of a 16 x 16 x 72 -> 80
    INT16 conv over two input tiles with region 28 of 12 slots (1536 rows for the 2560 of its partial sums;
    the compiler's refusal: ``tests/test_vendor_fixed_program.py``); the rule's own allocation of the conv
    keeps within the limits."""
    from calibrator_custom.vendor_fixed import program
    site = synth.ConvSite(7, "CONV_2D", (1, 16, 16, 72), (80, 1, 1, 72), (1, 16, 16, 80), 1, "SAME", "INT16", "INT16",
                          False)
    refused = program.Allocation(64, 72, 64, 80, 16, 16, 4, 5, 10, 12)
    with pytest.raises(UnsupportedOpError, match=r"op #7 CONV_2D \(16x16x72 -> 80\): the vendor's compiler refuses "
                                                 r"its program: region 28 holds 1536 rows, not the 2560"):
        synth.rule_program(site, refused)
    spec = synth.conv_spec(site)
    a = synth._doubled_allocation(spec, site, program.SLOTS)
    assert program.compiler_limits(spec, a) == []


def test_a_depthwise_hosting_a_fused_op_is_refused_naming_the_op():
    """The vendor reserves the top 8 buffer slots of a depthwise another op runs inside (DepthwiseConv2DOptions
    ``sgs_fused_op_slots`` 8, ``sgs_fused_op_entry_slots`` (24,)) and allocates its tiles otherwise than the
    rule (docs/model_format.md, "Slot names"): the rule provider refuses such a site, naming the op; without
    the fused op the rule's program writes no slot 30 (0, absent from the file) and the entry (32,)."""
    site = synth.ConvSite(3, "DEPTHWISE_CONV_2D", (1, 8, 8, 16), (1, 3, 3, 16), (1, 8, 8, 16), 1, "SAME", "UINT8",
                          "INT16", False, synth.ACTIVATION_SLOTS)
    with pytest.raises(UnsupportedOpError, match=r"op #3 DEPTHWISE_CONV_2D: the program of a depthwise conv hosting"):
        synth.rule_program(site)
    fields = synth.rule_program(dataclasses.replace(site, reserved_slots=0)).fields
    assert (fields["sgs_fused_op_slots"], fields["sgs_fused_op_entry_slots"]) == (0, (32,))


#: chains of convs (cout, kernel, stride, padding) on an H x W input for the rule provider: row-tiled
#: 64 x 64 planes, channels not multiples of 16, stride 2 (1 x 1 stride 2: 4 x 4 output tiles)
RULE_CHAINS = {
    "rule_rows_64": (61, (64, 64), [(16, 3, 1, "SAME"), (32, 3, 1, "SAME"), (8, 1, 1, "SAME")]),
    "rule_odd_ch": (62, (20, 18), [(13, 3, 1, "SAME"), (40, 3, 1, "SAME"), (20, 1, 1, "SAME"), (5, 3, 1, "VALID")]),
    "rule_stride2": (63, (33, 33), [(24, 3, 2, "SAME"), (48, 1, 2, "SAME"), (36, 3, 2, "VALID"), (8, 1, 1, "SAME")]),
}


#: chains with native 3 x 3 depthwise convs (``"dw"`` entries: channels = the input's) for the rule provider:
#: whole planes, channel tiles below C (the output would take over 16 slots), row tiles, stride 2
DW_RULE_CHAINS = {
    "rule_dw_small": (71, (12, 12), [(24, 1, 1, "SAME"), ("dw", 3, 1, "SAME"), (8, 1, 1, "SAME")]),
    "rule_dw_channel_tile": (72, (48, 48), [(32, 1, 1, "SAME"), ("dw", 3, 1, "SAME"), (8, 1, 1, "SAME")]),
    "rule_dw_rows": (73, (96, 96), [(16, 1, 1, "SAME"), ("dw", 3, 1, "SAME"), ("dw", 3, 2, "SAME"),
                                     (8, 1, 1, "SAME")]),
    "rule_dw_stride2": (74, (33, 30), [(40, 3, 2, "SAME"), ("dw", 3, 2, "VALID"), ("dw", 3, 1, "SAME"),
                                        (4, 1, 1, "SAME")]),
    # a 5 x 5 depthwise and one of 3 channels: the converter writes them as CONV_2D of diagonal weights
    "rule_dw_rewritten": (75, (14, 14), [(40, 1, 1, "SAME"), ("dw", 5, 1, "SAME"), (3, 1, 1, "SAME"),
                                          ("dw", 3, 2, "SAME"), (8, 1, 1, "SAME")]),
}


def _rule_chain(seed, hw, convs):
    from calibrator_custom.model.builder import ModelBuilder
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    y = b.input("x", (1, *hw, 3))
    ranges, cin = {"x": (-1.0, 1.0)}, 3
    for n, (c, k, s, pad) in enumerate(convs, 1):
        opts = {"padding": pad, "stride_w": s, "stride_h": s}
        if c == "dw":
            w = (g.normal(size=(1, k, k, cin)) / k).astype(np.float32)
            bias = (g.normal(size=cin) * 0.3).astype(np.float32)
            y = b.op("DEPTHWISE_CONV_2D", [y, b.constant(f"w{n}", w), b.constant(f"b{n}", bias)],
                     {**opts, "depth_multiplier": 1}, name=f"c{n}")
            r = g.uniform(1, 4)
            ranges[f"c{n}"] = (-r, 0.8 * r)
            continue
        w = (g.normal(size=(c, k, k, cin)) / np.sqrt(k * k * cin)).astype(np.float32)
        bias = (g.normal(size=c) * 0.3).astype(np.float32)
        y = b.op("CONV_2D", [y, b.constant(f"w{n}", w), b.constant(f"b{n}", bias)], opts, name=f"c{n}")
        r = g.uniform(1, 4)
        ranges[f"c{n}"] = (-r, 0.8 * r)
        cin = c
    b.output(y)
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], [f"c{len(convs)}"]), f"synthrule_{'x'.join(map(str, hw))}_{seed}")
    return fixed.with_name("m_float.sim"), fixed


@pytest.mark.parametrize("name", ["3x3_stride2", "5x5_valid_stride2", "3x3_32to40", "relu_24to40", "add_24_swapped",
                                  *RULE_CHAINS, *DW_RULE_CHAINS])
def test_synthesized_from_the_float_sim_alone_compiles_and_the_vendor_simulators_agree(name, tmp_path):
    """A fixed.sim written from the float.sim alone, with no vendor fixed file (every conv program
    from ``synth.rule_program``), compiles, and the vendor's fixed and offline simulators give our
    fixed_simulator's codes on a random input. (The vendor's fixed file of the chain is made only for
    the calibrator's logged ranges.) 3x3_32to40 and rule_odd_ch need slot 28 doubled too."""
    _skip_without_vendor()
    chains = {**RULE_CHAINS, **DW_RULE_CHAINS}
    float_sim, fixed = _rule_chain(*chains[name]) if name in chains else _chain(name)
    model = _synthesize(float_sim, fixed, synth.rule_program)
    path = tmp_path / "synth_fixed.sim"
    path.write_bytes(model.to_bytes(reencode=True))
    vo.assert_vendor_runs_it_as_ours(path, np.random.default_rng(7), 1, f"{name}, rule program")


def _rewrites(model) -> list:
    return [op for op in model.main.operators
            if model.op_name(op) == "CONV_2D" and getattr(op.options, "sgs_depthwise_mode", 0) == 2]


def test_per_channel_rewrite_chain_compiles_and_the_vendor_simulators_agree(tmp_path):
    """Per-channel weight codes (our L2 scales, one channel's scale 1/64 of the others' so its multiplier
    keeps few bits) and a bias correction (input means) on the converter's 5 x 5 depthwise-as-conv rewrite: the rewrite
    holds per-channel multipliers, the vendor's compiler takes the file, and the vendor's fixed and offline
    simulators give our fixed_simulator's codes on random inputs."""
    _skip_without_vendor()
    from calibrator_custom.vendor_fixed import layout
    float_sim, fixed = _rule_chain(*DW_RULE_CHAINS["rule_dw_rewritten"])
    fl = load_model(float_sim)
    rewrites = _rewrites(fl)
    assert rewrites, "the converter writes the 5 x 5 depthwise as CONV_2D"
    scales = _l2_weight_scales(fl)
    rw = fl.main.tensors[rewrites[0].inputs[1]].name
    small = list(scales[rw])
    small[1] /= 64
    scales[rw] = tuple(small)
    means = {rw: np.linspace(0.0, 2.0, len(small))}
    log = fixed.parent / "wd" / "log"
    model = synth.synthesize(fl, _log_ranges(log), _log_channel_ranges(log), MEAN, STD, synth.rule_program,
                             weight_scales=scales, input_means=means)
    for op in _rewrites(model):
        c = int(model.main.tensors[op.outputs[0]].shape[-1])
        _, mult = layout.unpack_bias(model.buffers[model.main.tensors[op.inputs[2]].buffer].data, c)
        assert len(set(mult.tolist())) > 1, "per-channel multipliers on the rewrite"
    path = tmp_path / "rewrite_per_channel_fixed.sim"
    path.write_bytes(model.to_bytes(reencode=True))
    vo.assert_vendor_runs_it_as_ours(path, np.random.default_rng(11), 3, "per-channel rewrite")


def _naive_mean_shift(w, scales, mean, depthwise):
    """sum over kh, kw, i of (round_half_away(w / s_o) * s_o - w)[o, kh, kw, i] * mean[i], by loops."""
    out = []
    for o in range(w.shape[3] if depthwise else w.shape[0]):
        total = 0.0
        for a in range(w.shape[1]):
            for b in range(w.shape[2]):
                for i in range(w.shape[3]):
                    if depthwise and i != o:
                        continue
                    v = float(w[0 if depthwise else o, a, b, i])
                    q = min(127.0, max(-127.0, np.sign(v) * np.floor(abs(v) / scales[o] + 0.5)))
                    total += (q * scales[o] - v) * mean[i]
        out.append(total)
    return np.array(out)


def test_bias_correction_for_the_input_means_is_the_float_bias_less_the_codes_mean_shift():
    """``input_means`` on every conv (the depthwise-as-conv rewrites included): the bias codes equal those
    written for a float model whose bias is b - sum_k (q * s - w)[o, k] * mean[k] (computed by loops from the
    given scales), on every channel whose multiplier is the one of its given scale (the fit kept the scale),
    and so do the multipliers and shifts; most channels are kept, and the corrections move the bias codes."""
    _skip_without_vendor()
    from calibrator_custom.vendor_fixed import layout
    float_sim, fixed = _rule_chain(*DW_RULE_CHAINS["rule_dw_rewritten"])
    fl = load_model(float_sim)
    scales = _l2_weight_scales(fl)
    log = fixed.parent / "wd" / "log"
    ranges, channels = _log_ranges(log), _log_channel_ranges(log)
    rng = np.random.default_rng(3)
    means, edited = {}, fl.copy()
    for op in edited.main.operators:
        kind = edited.op_name(op)
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            tw, tb = (edited.main.tensors[i] for i in op.inputs[1:3])
            w = edited.tensor_data(tw).astype(np.float64)
            means[tw.name] = rng.uniform(-1, 3, w.shape[3])
            b = np.frombuffer(edited.buffers[tb.buffer].data, np.float32).reshape(2, -1).copy()
            b[0] = (b[0] - _naive_mean_shift(w, scales[tw.name], means[tw.name], kind == "DEPTHWISE_CONV_2D")
                    ).astype(np.float32)
            edited.buffers[tb.buffer] = dataclasses.replace(edited.buffers[tb.buffer], data=b.tobytes())
    got = synth.synthesize(fl, ranges, channels, MEAN, STD, synth.rule_program, weight_scales=scales,
                           input_means=means)
    want = synth.synthesize(edited, ranges, channels, MEAN, STD, synth.rule_program, weight_scales=scales)
    plain = synth.synthesize(fl, ranges, channels, MEAN, STD, synth.rule_program, weight_scales=scales)
    kept = total = moved = 0
    for og, ow, op in zip(got.main.operators, want.main.operators, plain.main.operators):
        if got.op_name(og) not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        g, tw = got.main, got.main.tensors[og.inputs[1]]
        c = int(g.tensors[og.outputs[0]].shape[-1])
        rows = [layout.unpack_bias(m.buffers[m.main.tensors[o.inputs[2]].buffer].data, c)
                for m, o in ((got, og), (want, ow), (plain, op))]
        o = og.options
        n = o.sgs_bias_shift + o.sgs_total_shift
        s_in, s_out = g.tensors[og.inputs[0]].quantization.scale[0], g.tensors[og.outputs[0]].quantization.scale[0]
        given = np.maximum(np.round(s_in * np.asarray(scales[tw.name]) / s_out * 2.0 ** n), 1)
        k = (rows[0][1] == given) & (rows[1][1] == given)
        if (o.sgs_bias_shift, o.sgs_total_shift) == (ow.options.sgs_bias_shift, ow.options.sgs_total_shift):
            np.testing.assert_array_equal(rows[0][0][k], rows[1][0][k])
            kept += int(k.sum())
        total += c
        moved += int((rows[0][0] != rows[2][0]).sum())
    assert kept > 0.8 * total and moved > 0.5 * total


def _no_layout(v):
    """A frozen options value without the nested tables' field layouts (they follow the encoder)."""
    if isinstance(v, tuple) and v and isinstance(v[0], tuple) and v[0] and isinstance(v[0][0], tuple):
        return tuple(tuple(p for p in c if p[0] != "sgs_layout") for c in v)
    return v


@pytest.mark.parametrize("name", sorted(DW_RULE_CHAINS))
def test_depthwise_program_rule_is_the_vendors_program(name):
    """Every program slot of each native depthwise conv of the chain, as the vendor's L1 file holds it."""
    _skip_without_vendor()
    float_sim, fixed = _rule_chain(*DW_RULE_CHAINS[name])
    fl, fx = load_model(float_sim), load_model(fixed)
    plan = {i: dataclasses.replace(q, dtype=fx.main.tensors[i].dtype) for i, q in
            enumerate(synth.qp.plan(fl, {t.name: (-1.0, 1.0) for t in fl.main.tensors}).values())}
    checked = 0
    for j, site in synth.conv_sites(fl, plan).items():
        if site.kind != "DEPTHWISE_CONV_2D":
            continue
        want = vps.program_fields(fx.main.operators[j].options, site.kind)
        got = synth.rule_program(site).fields
        assert set(got) == set(want), f"op #{j}"
        for k in want:
            assert _no_layout(got[k]) == _no_layout(want[k]), f"op #{j} {k}: rule {got[k]!r}, vendor {want[k]!r}"
        checked += 1
    assert checked
