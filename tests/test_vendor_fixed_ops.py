"""Vendor fixed-point kernels (calibrator_custom.vendor_fixed) against the vendor's sgs_simulator_fixed.

Single-op vendor fixed models are built in the session from our ModelBuilder (vendor convert_tool,
vendor L1 calibration with chosen ranges); each op's integer inputs and outputs come from the vendor
simulator's tensor dump, the parameters (weights, [2, C] bias, scales, zero points, accumulator
range) from the vendor fixed.sim. Our kernel must reproduce the vendor's output codes exactly.
"""
from __future__ import annotations

import numpy as np
import pytest

import calibrator_custom
import vendor_fixed_oracle as vo
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import load_model
from calibrator_custom.vendor_fixed import KERNELS, activation, conv, elementwise, layout, output, resize, tables
from calibrator_custom.vendor_fixed.boundary import INPUT_CODES_MAX_ERROR, input_codes

_REASON = vo.vendor_missing_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")

SAME1 = {"padding": "SAME", "stride_w": 1, "stride_h": 1}


def _conv_chain(seed, side, cin, cout, k, stride, padding):
    """x -> c1 (1x1, 3->cin) -> c2 (the conv under test) -> c3 (1x1, cout->4): c2 reads UINT8 and
    writes UINT8, c3 reads UINT8 and writes INT16 (the vendor's choice for inner/last convs)."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(cin, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", (g.normal(size=cin) * 0.3).astype(np.float32))], SAME1, name="c1")
    z = b.op("CONV_2D", [y, b.constant("w2", g.normal(size=(cout, k, k, cin)).astype(np.float32)),
                         b.constant("b2", g.normal(size=cout).astype(np.float32))],
             {"padding": padding, "stride_w": stride, "stride_h": stride}, name="c2")
    o = b.op("CONV_2D", [z, b.constant("w3", g.normal(size=(4, 1, 1, cout)).astype(np.float32)),
                         b.constant("b3", g.normal(size=4).astype(np.float32))], SAME1, name="c3")
    b.output(o)
    r = g.uniform(0.5, 8, size=3)
    ranges = {"x": (-1.0, 1.0), "c1": (-0.4 * r[0], r[0]), "c2": (-r[1], 0.7 * r[1]), "c3": (-r[2], r[2])}
    xin = g.integers(0, 256, (1, side, side, 3)).astype(np.uint8)
    xin.flat[:6] = [0, 255, 0, 255, 0, 255]
    return b, ranges, xin, {1: (stride, padding), 2: (1, "SAME")}


def _identity_chain(w_col, ranges):
    """x -> c1 (identity) -> c2 (1x1 with one weight per output channel) -> c3: every input code once."""
    eye = np.eye(3, dtype=np.float32).reshape(3, 1, 1, 3)
    b = ModelBuilder()
    x = b.input("x", (1, 16, 16, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", eye), b.constant("b1", np.zeros(3, np.float32))], SAME1, name="c1")
    w2 = np.zeros((4, 1, 1, 3), np.float32)
    w2[:, 0, 0, 0] = w_col
    z = b.op("CONV_2D", [y, b.constant("w2", w2), b.constant("b2", np.array([0.1, -0.2, 0.3, 0.0], np.float32))],
             SAME1, name="c2")
    o = b.op("CONV_2D", [z, b.constant("w3", np.eye(4, dtype=np.float32).reshape(4, 1, 1, 4)),
                         b.constant("b3", np.zeros(4, np.float32))], SAME1, name="c3")
    b.output(o)
    p = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    return b, ranges, np.concatenate([p, 255 - p, p], -1), {1: (1, "SAME"), 2: (1, "SAME")}


CONV_CASES = {
    "3x3_same_16to24": lambda: _conv_chain(11, 8, 16, 24, 3, 1, "SAME"),
    "3x3_same_stride2": lambda: _conv_chain(12, 9, 8, 8, 3, 2, "SAME"),
    "1x1_valid_odd_channels": lambda: _conv_chain(13, 8, 5, 7, 1, 1, "VALID"),
    "5x5_valid_stride2": lambda: _conv_chain(14, 10, 4, 6, 5, 2, "VALID"),
    "3x3_same_3to40": lambda: _conv_chain(15, 7, 3, 40, 3, 1, "SAME"),
    "identity_ties": lambda: _identity_chain([1.0, 0.5, 0.3, -1.0],
                                             {"x": (-1, 1), "c1": (-1, 1), "c2": (-1, 1), "c3": (-2, 2)}),
    "identity_saturating": lambda: _identity_chain([1.0, 0.5, 0.3, -1.0],
                                                   {"x": (-1, 1), "c1": (-1, 1), "c2": (-0.3, 0.5), "c3": (-0.2, 0.2)}),
}


@pytest.fixture(scope="session")
def conv_runs():
    runs = {}
    for name, make in CONV_CASES.items():
        b, ranges, x, geometry = make()
        fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"conv_{name}")
        recs, _ = vo.run_fixed(fixed, x)
        runs[name] = (vo.VendorSim(fixed), recs, geometry)
    return runs


def _conv_params(sim, in_name, w_name, b_name, out_name):
    ti, tw, tb, to = (sim.tensor(n) for n in (in_name, w_name, b_name, out_name))
    w = layout.unpack_conv_weights(sim.buffers[tw.buffer], tw.shape).astype(np.int64)
    b0, mult = layout.unpack_bias(sim.buffers[tb.buffer], to.shape[-1])
    m_val, n_shift = conv.requant_params(ti.scale[0], tw.scale[0], to.scale[0])
    out_u8 = to.type_code == 3
    m = ti.scale[0] * tw.scale[0] / to.scale[0]
    fold = conv.bias_fold(ti.zero_point[0], w.reshape(w.shape[0], -1).sum(1), to.zero_point[0], out_u8, m)
    k = conv.infer_bias_shift(b0, to.q5[0], to.q4[0], fold, ti.scale[0] * tw.scale[0], tb.qmin[0], tb.qmax[0])
    return dict(ti=ti, to=to, w=w, b0=b0, mult=mult, m_val=m_val, n_shift=n_shift, k=k,
                out_dtype=np.uint8 if out_u8 else np.int16)


@pytest.mark.parametrize("case", sorted(CONV_CASES))
@pytest.mark.parametrize("op_index", [1, 2])
def test_conv2d_matches_vendor_dump(conv_runs, case, op_index):
    sim, recs, geometry = conv_runs[case]
    names = {1: ("c1", "w2", "b2", "c2"), 2: ("c2", "w3", "b3", "c3")}[op_index]
    p = _conv_params(sim, *names)
    assert np.array_equal(p["mult"], np.full_like(p["mult"], p["m_val"])), "bias row 1 is the multiplier"
    x = layout.from_dump(vo.record(recs, op_index, "in", 0)["data"], p["ti"].shape)
    want = layout.from_dump(vo.record(recs, op_index, "out")["data"], p["to"].shape)
    stride, padding = geometry[op_index]
    got = KERNELS["CONV_2D"](x, p["ti"].zero_point[0], p["w"], p["b0"], p["mult"], p["k"], p["n_shift"],
                             p["to"].zero_point[0], p["out_dtype"], (stride, stride), (1, 1), padding)
    assert got.shape == want.shape and got.dtype == want.dtype
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{bad.size}/{want.size} codes differ (k={p['k']}), first: "
                           f"{got.ravel()[bad[:5]]} vs vendor {want.ravel()[bad[:5]]}")


def test_conv2d_cases_reach_saturation_and_both_output_types(conv_runs):
    """The cases above are not vacuous: they hit both saturation limits and UINT8/INT16 outputs."""
    sim, recs, _ = conv_runs["identity_saturating"]
    out = layout.from_dump(vo.record(recs, 2, "out")["data"], sim.tensor("c3").shape)
    assert out.min() == -32767 and out.max() == 32767
    mid = layout.from_dump(vo.record(recs, 1, "out")["data"], sim.tensor("c2").shape)
    assert mid.min() == 0 and mid.max() == 255
    assert {sim.tensor("c2").type_code, sim.tensor("c3").type_code} == {3, 7}


def test_weight_layout_matches_float_weights():
    """unpack_conv_weights recovers round(w / w_scale) of the float model from the vendor buffer."""
    b, ranges, _, _ = _conv_chain(15, 7, 3, 40, 3, 1, "SAME")
    w_float = b.examples[[t.name for t in b.tensors].index("w2")]
    sim = vo.VendorSim(vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), "conv_3x3_same_3to40"))
    tw = sim.tensor("w2")
    w = layout.unpack_conv_weights(sim.buffers[tw.buffer], tw.shape)
    assert w.shape == (40, 3, 3, 3) and w.dtype == np.int8
    assert np.abs(w.astype(np.int64) - np.round(w_float / tw.scale[0])).max() == 0


# ---------------------------------------------------------------- input boundary
INPUT_CASES = [((127.5,) * 3, 127.5, (-1.0, 1.0)), ((127.5,) * 3, 127.5, (-2.0, 2.5)),
               ((123.68, 116.78, 103.94), 58.8, (-2.2, 2.7)), ((127.5,) * 3, 127.5, (-0.3, 0.4))]


def vendor_input_codes(mean, std, x_range):
    """(pixels, the vendor's input codes for them, the input tensor): the first conv is the identity with
    multiplier 1, so its INT16 output / 127 is the input code it used."""
    eye = np.eye(3, dtype=np.float32).reshape(3, 1, 1, 3)
    b = ModelBuilder()
    x = b.input("x", (1, 16, 16, 3))
    b.output(b.op("CONV_2D", [x, b.constant("w", eye), b.constant("b", np.zeros(3, np.float32))], SAME1, name="conv"))
    lo, hi = x_range
    r = 32767 * (hi - lo) / 255 / 127
    fixed = vo.make_fixed(b, {"x": x_range, "conv": (-r, r)}, vo.ini_text(["x"], ["conv"], mean, std), "input")
    p = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    pix = np.concatenate([p, 255 - p, p], -1)
    recs, _ = vo.run_fixed(fixed, pix)
    out = layout.from_dump(vo.record(recs, 0, "out")["data"], (1, 16, 16, 3)).astype(np.int64)
    tx = vo.VendorSim(fixed).tensor("x")
    return pix, np.round(out / 127).astype(np.int64) + tx.zero_point[0], tx


@pytest.mark.parametrize("mean,std,x_range", INPUT_CASES)
def test_input_codes_within_measured_bound(mean, std, x_range):
    """Our input boundary against the vendor's codes (see vendor_input_codes)."""
    pix, vendor_codes, tx = vendor_input_codes(mean, std, x_range)
    ours = input_codes(pix, np.array(mean), np.array([std] * 3), tx.scale[0], tx.zero_point[0])
    assert ours.shape == pix.shape and ours.dtype == np.uint8
    assert np.abs(ours.astype(np.int64) - vendor_codes).max() <= INPUT_CODES_MAX_ERROR


# ---------------------------------------------------------------- depthwise and fully connected
def _dw_fc_model(seed, kind, side=5, cin=20, nout=10, mult=1, stride=1):
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(cin, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=cin).astype(np.float32))], SAME1, name="c1")
    if kind == "dw":
        z = b.op("DEPTHWISE_CONV_2D", [y, b.constant("w2", g.normal(size=(1, 3, 3, cin * mult)).astype(np.float32)),
                                       b.constant("b2", g.normal(size=cin * mult).astype(np.float32))],
                 {"padding": "SAME", "stride_w": stride, "stride_h": stride, "depth_multiplier": mult}, name="c2")
    else:
        n = side * side * cin
        r = b.op("RESHAPE", [y, b.constant("shape", np.array([1, n], np.int32))], {"new_shape": [1, n]}, name="r")
        z = b.op("FULLY_CONNECTED", [r, b.constant("w2", g.normal(size=(nout, n)).astype(np.float32)),
                                     b.constant("b2", g.normal(size=nout).astype(np.float32))], {}, name="c2")
    b.output(z)
    ranges = {"x": (-1.0, 1.0), "c1": (-3.0, 4.0), "c2": (-float(g.uniform(2, 30)), float(g.uniform(2, 30)))}
    return b, ranges, g.integers(0, 256, (1, side, side, 3)).astype(np.uint8)


@pytest.mark.parametrize("seed,cin,mult,stride", [(31, 20, 1, 1), (32, 7, 1, 2), (33, 16, 1, 1)])
def test_depthwise_conv2d_matches_vendor_dump(seed, cin, mult, stride):
    b, ranges, x = _dw_fc_model(seed, "dw", cin=cin, mult=mult, stride=stride)
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c2"]), f"dw_{seed}")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, x)
    ti, tw, tb, to = (sim.tensor(n) for n in ("c1", "w2", "b2", "c2"))
    w = layout.unpack_depthwise_weights(sim.buffers[tw.buffer], tw.shape)
    w_float = b.examples[[t.name for t in b.tensors].index("w2")]
    assert np.abs(w.astype(np.int64) - np.round(w_float / tw.scale[0])).max() == 0
    c = to.shape[-1]
    b0, mult_row = layout.unpack_bias(sim.buffers[tb.buffer], c)
    m_val, n_shift = conv.requant_params(ti.scale[0], tw.scale[0], to.scale[0])
    assert np.all(mult_row == m_val)
    m = ti.scale[0] * tw.scale[0] / to.scale[0]
    fold = conv.bias_fold(ti.zero_point[0], w.astype(np.int64).reshape(-1, c).sum(0), to.zero_point[0], False, m)
    k = conv.infer_bias_shift(b0, to.q5[0], to.q4[0], fold, ti.scale[0] * tw.scale[0], tb.qmin[0], tb.qmax[0])
    xin = layout.from_dump(vo.record(recs, 1, "in", 0)["data"], ti.shape)
    want = layout.from_dump(vo.record(recs, 1, "out")["data"], to.shape)
    got = KERNELS["DEPTHWISE_CONV_2D"](xin, ti.zero_point[0], w, b0, mult_row, k, n_shift, to.zero_point[0],
                                       np.int16, (stride, stride), (1, 1), "SAME")
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want), f"{int((got != want).sum())}/{want.size} codes differ (k={k})"


def test_fully_connected_is_a_vendor_1x1_conv_and_matches_dump():
    b, ranges, x = _dw_fc_model(41, "fc", side=4, cin=3, nout=10)
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c2"]), "fc_41")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, x)
    assert [r["op"] for r in recs if r["dir"] == "out"] == ["CONV_2D", "RESHAPE", "CONV_2D", "RESHAPE"]
    reshape_in = layout.from_dump(vo.record(recs, 1, "in", 0)["data"], (1, 4, 4, 3))
    reshape_out = layout.from_dump(vo.record(recs, 1, "out")["data"], (1, 1, 1, 48))
    assert np.array_equal(reshape_in.reshape(-1), reshape_out.reshape(-1)), "RESHAPE keeps the NHWC order"
    ops = sim.ops[2]
    ti, tw, tb, to = (sim.tensors[ops.inputs[0]], sim.tensors[ops.inputs[1]], sim.tensors[ops.inputs[2]],
                      sim.tensors[ops.outputs[0]])
    w = layout.unpack_conv_weights(sim.buffers[tw.buffer], tw.shape).astype(np.int64)
    b0, mult_row = layout.unpack_bias(sim.buffers[tb.buffer], 10)
    m_val, n_shift = conv.requant_params(ti.scale[0], tw.scale[0], to.scale[0])
    m = ti.scale[0] * tw.scale[0] / to.scale[0]
    fold = conv.bias_fold(ti.zero_point[0], w.reshape(10, -1).sum(1), to.zero_point[0], False, m)
    k = conv.infer_bias_shift(b0, to.q5[0], to.q4[0], fold, ti.scale[0] * tw.scale[0], tb.qmin[0], tb.qmax[0])
    got = KERNELS["FULLY_CONNECTED"](reshape_out.reshape(1, 48), ti.zero_point[0], w.reshape(10, 48), b0, mult_row,
                                     k, n_shift, to.zero_point[0], np.int16)
    want = layout.from_dump(vo.record(recs, 2, "out")["data"], (1, 1, 1, 10)).reshape(1, 10)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want)


# ---------------------------------------------------------------- ADD / SUB / MUL, MAX_POOL_2D
POOL2 = {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2, "filter_height": 2}


def _binary_model(op, seed, c=8, side=16):
    """x -> conv c1 -> maxpool p1; x -> conv c2 -> maxpool p2; op(p1, p2) -> conv c3. The vendor fuses
    p2 into the binary op, so p2 = maxpool(c2 dump) (MAX_POOL_2D checked on p1)."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    ys = []
    for i in (1, 2):
        y = b.op("CONV_2D", [x, b.constant(f"w{i}", g.normal(size=(c, 1, 1, 3)).astype(np.float32)),
                             b.constant(f"b{i}", g.normal(size=c).astype(np.float32))], SAME1, name=f"c{i}")
        ys.append(b.op("MAX_POOL_2D", [y], POOL2, name=f"p{i}"))
    a = b.op(op, ys, {}, name="a")
    b.output(b.op("CONV_2D", [a, b.constant("w3", np.eye(c, dtype=np.float32).reshape(c, 1, 1, c)),
                              b.constant("b3", np.zeros(c, np.float32))], SAME1, name="c3"))
    return b, g.integers(0, 256, (1, side, side, 3)).astype(np.uint8)


BINARY_CASES = [(op, seed, a_range) for op in ("ADD", "SUB", "MUL")
                for seed, a_range in ((51, (-5.0, 5.0)), (52, (-1.3, 2.1)), (53, (-0.5, 0.5)))] + [
    # MUL output ranges that move the product's shift N (34 .. 39) and its stored split k1 + k2
    ("MUL", 54, (-20.0, 20.0)), ("MUL", 55, (-0.05, 0.05)), ("MUL", 56, (-0.004, 0.006))]


@pytest.fixture(scope="session")
def binary_runs():
    runs = {}
    for op, seed, a_range in BINARY_CASES:
        b, x = _binary_model(op, seed)
        ranges = {"x": (-1.0, 1.0), "c1": (-3.0, 4.0), "c2": (-2.0, 1.0), "p1": (-3.0, 4.0), "p2": (-2.0, 1.0),
                  "a": a_range, "c3": (-5.0, 5.0)}
        fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"bin_{op}_{seed}")
        recs, _ = vo.run_fixed(fixed, x)
        runs[(op, seed)] = (vo.VendorSim(fixed), {r["name"]: r["data"] for r in recs if r["dir"] == "out"}, fixed)
    return runs


def _pool(sim, outs, name, src):
    return KERNELS["MAX_POOL_2D"](layout.from_dump(outs[src], sim.tensor(src).shape), (2, 2), (2, 2), "VALID")


@pytest.mark.parametrize("op,seed,a_range", BINARY_CASES)
def test_binary_ops_match_vendor_dump(binary_runs, op, seed, a_range):
    sim, outs, _ = binary_runs[(op, seed)]
    t1, t2, ta = sim.tensor("p1"), sim.tensor("p2"), sim.tensor("a")
    p1 = layout.from_dump(outs["p1"], t1.shape)
    assert np.array_equal(_pool(sim, outs, "p1", "c1"), p1), "MAX_POOL_2D is the window max of the codes"
    p2 = _pool(sim, outs, "p2", "c2")
    want = layout.from_dump(outs["a"], ta.shape)
    got = KERNELS[op](p1, p2, t1.scale[0], t2.scale[0], ta.scale[0], ta.zero_point[0], np.uint8)
    assert got.shape == want.shape and got.dtype == want.dtype
    diff = np.abs(got.astype(np.int64) - want)
    assert diff.max() == 0, f"{int((diff != 0).sum())}/{diff.size} codes differ"
    if op == "MUL" and seed != 54:  # measured: 3 to 350 of 512 codes saturate per case
        assert (want == 0).any() and (want == 255).any(), "the MUL case reaches both saturations"


@pytest.mark.parametrize("seed,a_range", [(s_, r_) for op, s_, r_ in BINARY_CASES if op == "MUL"])
def test_mul_shift_split_is_stored_and_follows_the_rule(binary_runs, seed, a_range):
    """MulOptions slot 1 holds (k1, M, k2): the product's pre-shift, the 15-bit multiplier, the final shift;
    k1 + k2 = N and elementwise.mul_params computes the same split from the scales (N = 34 .. 39 here)."""
    sim, _, fixed = binary_runs[("MUL", seed)]
    model = load_model(fixed)
    op = next(o for o in model.main.operators if model.op_name(o) == "MUL")
    stored = elementwise.stored_mul_params(op.options)
    t1, t2, ta = sim.tensor("p1"), sim.tensor("p2"), sim.tensor("a")
    m = t1.scale[0] * t2.scale[0] / ta.scale[0]
    assert stored is not None and stored[0] + stored[2] == 14 - int(np.floor(np.log2(m)))
    assert elementwise.mul_params(t1.scale[0], t2.scale[0], ta.scale[0]) == stored


# ---------------------------------------------------------------- INT16 input with INT16 weights; fused RELU/RELU6
def _after_logistic_model(seed, c, o, k=1):
    """x -> conv c1 + LOGISTIC (fused by the vendor) = a (INT16) -> k x k conv c3 with INT16 weights."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(c, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=c).astype(np.float32))], SAME1, name="c1")
    a = b.op("LOGISTIC", [y], {}, name="a")
    b.output(b.op("CONV_2D", [a, b.constant("w3", g.normal(size=(o, k, k, c)).astype(np.float32)),
                              b.constant("b3", g.normal(size=o).astype(np.float32))], SAME1, name="c3"))
    return b, g.integers(0, 256, (1, 8, 8, 3)).astype(np.uint8)


@pytest.mark.parametrize("seed,c,o,k,out_range", [(71, 20, 20, 1, 20.0), (72, 4, 6, 1, 3.0), (74, 16, 5, 1, 2.0),
                                                  (73, 24, 9, 1, 1.0), (75, 20, 9, 3, 20.0), (76, 5, 11, 3, 4.0)])
def test_int16_input_int16_weight_conv_matches_vendor_dump(seed, c, o, k, out_range):
    b, x = _after_logistic_model(seed, c, o, k)
    ranges = {"x": (-1.0, 1.0), "c1": (-6.0, 6.0), "a": (0.0, 1.0), "c3": (-out_range, out_range)}
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"i16_{seed}")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, x)
    assert (sim.tensor("a").type_code, sim.tensor("w3").type_code, sim.tensor("c3").type_code) == (7, 7, 7)
    ti, tw, tb, to = (sim.tensor(n) for n in ("a", "w3", "b3", "c3"))
    w = layout.unpack_conv_weights(sim.buffers[tw.buffer], tw.shape, "<i2")
    w_float = b.examples[[t.name for t in b.tensors].index("w3")]
    wdiff = np.abs(w.astype(np.int64) - np.round(w_float.astype(np.float64) / tw.scale[0]))
    assert wdiff.max() <= 1 and (wdiff == 0).mean() > 0.99, "layout: codes sit where round(w/scale) says"
    b0, mult = layout.unpack_bias(sim.buffers[tb.buffer], o)
    _, n_shift = conv.requant_params(ti.scale[0], tw.scale[0], to.scale[0])
    m = ti.scale[0] * tw.scale[0] / to.scale[0]
    fold = conv.bias_fold(0, w.astype(np.int64).reshape(o, -1).sum(1), 0, False, m)
    shift = conv.infer_bias_shift(b0, to.q5[0], to.q4[0], fold, ti.scale[0] * tw.scale[0], tb.qmin[0], tb.qmax[0])
    xin = layout.from_dump(vo.record(recs, 1, "in", 0)["data"], ti.shape, blocked=True)  # fused conv output
    want = layout.from_dump(vo.record(recs, 1, "out")["data"], to.shape, blocked=False)  # graph output
    got = KERNELS["CONV_2D"](xin, 0, w, b0, mult, shift, n_shift, 0, np.int16)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want), f"{int((got != want).sum())}/{want.size} codes differ (k={shift})"


# ---------------------------------------------------------------- CONCATENATION (+ the vendor's Align2_Alias)
@pytest.mark.parametrize("seed,c,r1,r2", [(81, 5, (-3.0, 4.0), (-2.0, 1.0)), (82, 3, (-0.5, 0.5), (-9.0, 2.0))])
def test_concatenation_copies_aligned_codes(seed, c, r1, r2):
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3))
    ys = [b.op("CONV_2D", [x, b.constant(f"w{i}", g.normal(size=(c, 1, 1, 3)).astype(np.float32)),
                           b.constant(f"b{i}", g.normal(size=c).astype(np.float32))], SAME1, name=f"c{i}")
          for i in (1, 2)]
    a = b.op("CONCATENATION", ys, {"axis": 3}, name="a")
    b.output(b.op("CONV_2D", [a, b.constant("w3", np.eye(2 * c, dtype=np.float32).reshape(2 * c, 1, 1, 2 * c)),
                              b.constant("b3", np.zeros(2 * c, np.float32))], SAME1, name="c3"))
    fixed = vo.make_fixed(b, {"x": (-1.0, 1.0), "c1": r1, "c2": r2, "a": (-9.0, 9.0), "c3": (-9.0, 9.0)},
                          vo.ini_text(["x"], ["c3"]), f"cat_{seed}")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, g.integers(0, 256, (1, 8, 8, 3)).astype(np.uint8))
    by_op = {}
    for r in recs:
        by_op.setdefault(r["op_index"], {"op": r["op"]})[(r["dir"], r["k"])] = r
    aligned = []
    for i, rec in sorted(by_op.items()):
        if rec["op"] == "Align2_Alias":
            tin, tout = sim.tensor(rec[("in", 0)]["name"]), sim.tensor(rec[("out", 0)]["name"])
            assert tin.scale == tout.scale and tin.zero_point == tout.zero_point
            xin = layout.from_dump(rec[("in", 0)]["data"], tin.shape)
            got = KERNELS["Align2_Alias"](xin, tout.shape[-1])
            assert np.array_equal(got, layout.from_dump(rec[("out", 0)]["data"], tout.shape))
            aligned.append(got)
        if rec["op"] == "CONCATENATION":
            tout = sim.tensor(rec[("out", 0)]["name"])
            ins = [layout.from_dump(rec[("in", k)]["data"], sim.tensor(rec[("in", k)]["name"]).shape) for k in (0, 1)]
            assert all(sim.tensor(rec[("in", k)]["name"]).scale == tout.scale for k in (0, 1))
            want = layout.from_dump(rec[("out", 0)]["data"], tout.shape)
            got = KERNELS["CONCATENATION"](*ins, axis=-1)
            assert got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want)
            assert all(np.array_equal(a_, i_) for a_, i_ in zip(aligned, ins))
    assert [rec["op"] for _, rec in sorted(by_op.items())].count("Align2_Alias") == 2


# ---------------------------------------------------------------- LOGISTIC, TANH (table ops)
TABLE_CENTERS = (-4000, -2000, 0, 2000, 4000)


def _table_sweep_model(op, x_range, graph_output=False, dense=True):
    """x -> conv c1 (5 channels) and c2 -> CONCATENATION -> op [-> identity conv]: the concatenation keeps
    the op unfused, so its INT16 inputs are dumped. The vendor widens the op's input range to at least
    [-6, 6]; x_range (>= 6) is kept. dense: c1 = A * (127 R' + G' - 127 B') / 4 + center_j codes of the
    input scale S = x_range / 32767 (multiplier exactly 1 after the vendor's bias shift of 2), so every
    code in [-8096, 8033] occurs; else (wide) the codes 0.999 * (127 R' + G') / 8 steps of 8 over the whole
    int16 range (the bias shift 3 the offsets need)."""
    s = x_range / 32767
    b = ModelBuilder()
    x = b.input("x", (1, 256, 256, 3))
    if dense:
        a, centers = s * 255 * 127 / 8, np.array(TABLE_CENTERS, np.float64)
        w = np.zeros((5, 1, 1, 3), np.float32)
        w[:, 0, 0, 0], w[:, 0, 0, 1], w[:, 0, 0, 2] = a, a / 127, -a
    else:
        a, centers = s * 255 * 127 / 2 * 0.999, np.array([0, 16000, -16000, 32000, -32000], np.float64)
        w = np.zeros((5, 1, 1, 3), np.float32)
        w[:, 0, 0, 0], w[:, 0, 0, 1] = a, a / 127
    y = b.op("CONV_2D", [x, b.constant("w1", w), b.constant("b1", (centers * s).astype(np.float32))], SAME1, name="c1")
    w2 = np.zeros((1, 1, 1, 3), np.float32)
    w2[0, 0, 0, 0] = 1.0
    z = b.op("CONV_2D", [x, b.constant("w2", w2), b.constant("b2", np.zeros(1, np.float32))], SAME1, name="c2")
    t = b.op(op, [b.op("CONCATENATION", [y, z], {"axis": 3}, name="cat")], {}, name="t")
    if graph_output:
        b.output(t)
    else:
        b.output(b.op("CONV_2D", [t, b.constant("w3", np.eye(6, dtype=np.float32).reshape(6, 1, 1, 6)),
                                  b.constant("b3", np.zeros(6, np.float32))], SAME1, name="c3"))
    ranges = {"x": (-1, 1), "c1": (-x_range, x_range), "c2": (-x_range, x_range), "cat": (-x_range, x_range),
              "t": (-1, 1), "c3": (-1.1, 1.1)}
    p = np.arange(256, dtype=np.uint8)
    rr, gg = np.meshgrid(p, p, indexing="ij")
    return b, ranges, np.stack([rr, gg, np.full_like(rr, 128)], -1)[None].astype(np.uint8)


def vendor_table_model(op, x_range, graph_output=False, dense=True):
    """(the vendor fixed.sim of one sweep, its input image)."""
    b, ranges, x = _table_sweep_model(op, x_range, graph_output, dense)
    tag = f"table_{op}_{x_range}_{'out' if graph_output else 'in'}_{'dense' if dense else 'wide'}"
    return vo.make_fixed(b, ranges, vo.ini_text(["x"], ["t" if graph_output else "c3"]), tag), x


def vendor_table(op, x_range, graph_output=False, dense=True):
    """(input codes, the vendor's output code for each, input tensor, output tensor) of one sweep."""
    fixed, x = vendor_table_model(op, x_range, graph_output, dense)
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, x)
    op_index = next(r["op_index"] for r in recs if r["op"] == op)
    tin, tout = sim.tensor("cat"), sim.tensor("t")
    xi = layout.from_dump(vo.record(recs, op_index, "in", 0)["data"], tin.shape).astype(np.int64).ravel()
    yo = layout.from_dump(vo.record(recs, op_index, "out")["data"], tout.shape).astype(np.int64).ravel()
    codes, first = np.unique(xi, return_index=True)
    assert np.array_equal(yo, yo[first][np.searchsorted(codes, xi)]), "a pure function of the input code"
    assert abs(tin.scale[0] * 32767 - x_range) < 1e-3 * x_range, "the chosen input range is kept"
    return codes, yo[first], tin, tout


def _assert_sweep_coverage(codes, dense):
    if dense:  # every code of [-8096, 8033]
        assert codes.min() == -8096 and codes.max() == 8033 and codes.size == 8033 + 8096 + 1
    else:  # steps of at most 8 codes over the whole INT16 range
        assert codes.min() == -32767 and codes.max() == 32767 and np.diff(codes).max() <= 8


# input ranges (x_range / 32767 = input scale): 6 is the vendor's minimum; 12/48 have the input mantissa
# 24577 (1.5 * 2**14), 8/16/32/128 16385; 32 and 48 reach the outer line (|x| >= 6) densely, 128 (wide) x = 128
LOGISTIC_SWEEPS = [(6.0, True), (12.0, True), (16.0, True), (32.0, True), (48.0, True), (8.0, False), (128.0, False)]


@pytest.mark.slow  # a 256 x 256 sweep through the vendor simulator: ~5 s each
@pytest.mark.parametrize("x_range,dense", LOGISTIC_SWEEPS)
def test_logistic_table_matches_vendor(x_range, dense):
    """Every swept code equals tables.logistic_table (the two-table interpolation of 32767 tanh(|x|/2), the line
    beyond |x| = 6), also the codes next to the inner/outer/line boundaries and the saturation at 32767."""
    codes, vendor, tin, tout = vendor_table("LOGISTIC", x_range, dense=dense)
    _assert_sweep_coverage(codes, dense)
    assert (tin.type_code, tout.type_code) == (7, 7) and abs(tout.scale[0] * 32767 - 1) < 1e-6
    ours = KERNELS["LOGISTIC"](codes, tin.scale[0], tout.scale[0])
    assert ours.shape == codes.shape and ours.dtype == np.int16
    diff = np.abs(ours.astype(np.int64) - vendor)
    assert diff.max() == 0, f"{int((diff != 0).sum())}/{diff.size} codes differ"
    x = np.abs(tables.vendor_input_reals(codes, tin.scale[0]))
    assert (x < 2).any()
    if x_range >= 32:
        assert (x >= 6).sum() > 3000, "the outer line is covered"
    if x_range >= 128:
        assert (vendor == 32767).any() and (vendor == 0).any(), "saturation is covered"


def _full_domain_model(op, x_range):
    """c1 (the wide design: codes in steps of at most 8 over the whole INT16 range) + c2 (0.5 * B' codes, B in
    124..131 across eight 256 x 32 tiles of (R, G), G in steps of 8: a G step moves c1 by about one of its
    steps) -> ADD -> CONCATENATION -> op (the graph output): the ADD fills the steps, so every code of
    [-32767, 32767] reaches the op (-32768: no vendor op writes it)."""
    s = x_range / 32767
    b = ModelBuilder()
    x = b.input("x", (1, 256, 8 * 32, 3))
    a = s * 255 * 127 / 2 * 0.999
    w = np.zeros((5, 1, 1, 3), np.float32)
    w[:, 0, 0, 0], w[:, 0, 0, 1] = a, a / 127
    centers = np.array([0, 16000, -16000, 32000, -32000], np.float64)
    c1 = b.op("CONV_2D", [x, b.constant("w1", w), b.constant("b1", (centers * s).astype(np.float32))], SAME1, name="c1")
    w2 = np.zeros((5, 1, 1, 3), np.float32)
    w2[:, 0, 0, 2] = s * 255 / 2
    c2 = b.op("CONV_2D", [x, b.constant("w2", w2), b.constant("b2", np.zeros(5, np.float32))], SAME1, name="c2")
    w3 = np.zeros((1, 1, 1, 3), np.float32)
    w3[0, 0, 0, 0] = 1.0
    c3 = b.op("CONV_2D", [x, b.constant("w3", w3), b.constant("b3", np.zeros(1, np.float32))], SAME1, name="c3")
    cat = b.op("CONCATENATION", [b.op("ADD", [c1, c2], {}, name="ad"), c3], {"axis": 3}, name="cat")
    b.output(b.op(op, [cat], {}, name="t"))
    r = (-x_range, x_range)
    ranges = {"x": (-1, 1), "c1": r, "c2": r, "ad": r, "c3": r, "cat": r, "t": (-1, 1)}
    rr, gg = np.meshgrid(np.arange(256), np.arange(0, 256, 8), indexing="ij")
    tiles = [np.stack([rr, gg, np.full_like(rr, 124 + k)], -1) for k in range(8)]
    return b, ranges, np.concatenate(tiles, 1)[None].astype(np.uint8)


@pytest.mark.slow  # a 256 x 256 image through the vendor simulator's text files: ~4 s each
@pytest.mark.parametrize("op,x_range", [("LOGISTIC", 48.0), ("LOGISTIC", 8.0), ("TANH", 8.0), ("TANH", 32.0)])
def test_table_over_the_whole_int16_domain(op, x_range):
    """Every input code of [-32767, 32767] at once equals our table (before: 2798 of 65535 LOGISTIC codes off at
    range 48, 16725 at 8; 13332 TANH codes at 8, 3368 at 32)."""
    b, ranges, x = _full_domain_model(op, x_range)
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["t"]), f"table_full_{op}_{x_range}")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, x)
    op_index = next(r["op_index"] for r in recs if r["op"] == op)
    tin, tout = sim.tensor("cat"), sim.tensor("t")
    xi = layout.from_dump(vo.record(recs, op_index, "in", 0)["data"], tin.shape).astype(np.int64).ravel()
    yo = layout.from_dump(vo.record(recs, op_index, "out")["data"], tout.shape).astype(np.int64).ravel()
    codes, first = np.unique(xi, return_index=True)
    assert np.array_equal(yo, yo[first][np.searchsorted(codes, xi)]), "a pure function of the input code"
    assert codes.min() == -32767 and codes.max() == 32767 and codes.size == 65535
    vendor = yo[first]
    table = (tables.logistic_table if op == "LOGISTIC" else tables.tanh_int16_table)(tin.scale[0], tout.scale[0])
    ours = tables.lookup(codes, table)
    assert table.shape == (65536,) and ours.shape == codes.shape and ours.dtype == np.int16
    diff = np.abs(ours.astype(np.int64) - vendor)
    assert diff.max() == 0, f"{int((diff != 0).sum())}/{diff.size} codes differ"


TANH_SWEEPS = [(6.0, False, True), (32.0, False, True), (8.0, True, True), (32.0, True, True), (6.0, True, True),
               (128.0, True, False)]


@pytest.mark.slow  # a 256 x 256 sweep through the vendor simulator: ~5 s each
@pytest.mark.parametrize("x_range,graph_output,dense", TANH_SWEEPS)
def test_tanh_table_matches_vendor(x_range, graph_output, dense):
    """INT16 TANH (a graph output) = tables.tanh_int16_table, UINT8 TANH (inside a graph) = tables.tanh_table,
    code for code (before: 31% to 37% of the INT16 codes off by up to 2, under 0.25% of the UINT8 ones by 1)."""
    codes, vendor, tin, tout = vendor_table("TANH", x_range, graph_output, dense)
    _assert_sweep_coverage(codes, dense)
    assert (tin.type_code, tout.type_code) == ((7, 7) if graph_output else (7, 3))
    if graph_output:
        ours, dtype = tables.lookup(codes, tables.tanh_int16_table(tin.scale[0], tout.scale[0])), np.int16
    else:
        ours, dtype = KERNELS["TANH"](codes, tin.scale[0], tout.scale[0], tout.zero_point[0]), np.uint8
    assert ours.shape == codes.shape and ours.dtype == dtype
    diff = np.abs(ours.astype(np.int64) - vendor)
    assert diff.max() == 0, f"{int((diff != 0).sum())}/{diff.size} codes differ"
    if x_range >= 128:
        assert (vendor == 32767).any() and (vendor == -32767).any(), "saturation is covered"


def _options(fixed, op_name):
    model = load_model(fixed)
    return next(o for o in model.main.operators if model.op_name(o) == op_name).options


def _fields(table) -> dict:
    return {k: v for k, v in table if k != "sgs_layout"}


@pytest.mark.parametrize("op,x_range,graph_output,dense", [("LOGISTIC", 16.0, False, True), ("LOGISTIC", 48.0, False, True),
                                                           ("TANH", 6.0, True, True), ("TANH", 32.0, False, True)])
def test_table_op_options_hold_our_tables_and_fixed_point_parameters(op, x_range, graph_output, dense):
    """SgsLogisticOptions / SgsTanhOptions ``sgs_lut``: the 257-value inner table, the 65-value outer one, the
    line's slope, and the fixed-point record: M, Q, the segment shifts Q-7 / Q-4, 2 and 6 in Q (the outer
    table's offset -2), the tables' multipliers; all as our kernels compute them."""
    fixed, _ = vendor_table_model(op, x_range, graph_output, dense)
    lut = _fields(_options(fixed, op).sgs_lut)
    fp = _fields(lut["fixed_point"])
    spec = tables.LOGISTIC_SPEC if op == "LOGISTIC" else tables.TANH_SPEC
    m, q = tables.input_fixed_point(vo.VendorSim(fixed).tensor("cat").scale[0])
    assert tuple(lut["scaled_tanh_lut_257"]) == tuple(spec.inner) and tuple(lut["tanh_lut_65"]) == tuple(spec.outer)
    assert _fields(lut["sgs_slot_2"])["line_slope"] == spec.line_slope
    assert fp["input_multiplier"] == m
    assert (fp["frac_bits"], fp["frac_bits_2"], fp["frac_bits_3"], fp["frac_bits_4"]) == (q, q, q, q)
    assert (fp["lut_257_index_shift"], fp["lut_65_index_shift"], fp["sgs_slot_5"]) == (q - 7, q - 4, q - 4)
    assert (fp["lut_boundary"], fp["lut_boundary_2"]) == (2 << q, 2 << q)
    assert (fp["line_start"], fp["lut_65_offset"]) == (6 << q, -(2 << q))
    assert (fp["lut_257_multiplier"], fp["lut_257_shift"]) == spec.inner_multiplier
    assert (fp["lut_65_multiplier"], fp["lut_65_shift"]) == spec.outer_multiplier


@pytest.mark.slow  # one 256 x 256 sweep through the vendor simulator
def test_logistic_output_rescale_reproduces_the_vendor_output():
    """A LOGISTIC whose output scale is not 1/32767 (range (0, 0.8), widened by the vendor): its codes are
    min((((s T M + 2**(shift-1)) >> shift) + offset + 1) >> final_shift, 32767) with the stored
    ``sgs_output_rescale`` and s T = sign(x) 32767 tanh(|x| / 2) of the kernel's tables, on every code of the
    dense sweep (the float rint(q_unit * ratio) misses about a quarter of them by 1)."""
    b, ranges, x = _table_sweep_model("LOGISTIC", 16.0, False, True)
    ranges["t"] = (0.0, 0.8)
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), "table_LOGISTIC_16.0_out_0.8")
    sim = vo.VendorSim(fixed)
    tin, tout = sim.tensor("cat"), sim.tensor("t")
    assert abs(tout.scale[0] * 32767 - 1) > 0.05, "the output scale is not the unit one"
    (tab,) = [dict(t) for t in _options(fixed, "LOGISTIC").sgs_output_rescale]
    recs, _ = vo.run_fixed(fixed, x)
    op = next(r["op_index"] for r in recs if r["op"] == "LOGISTIC")
    xi = layout.from_dump(vo.record(recs, op, "in", 0)["data"], tin.shape).astype(np.int64)
    want = layout.from_dump(vo.record(recs, op, "out")["data"], tout.shape).astype(np.int64)
    sign, t = tables.odd_table_codes(xi, tin.scale[0], tables.LOGISTIC_SPEC)
    scaled = (sign * t.astype(np.int64) * tab["multiplier"] + (1 << (tab["shift"] - 1))) >> tab["shift"]
    got = np.minimum((scaled + tab["offset"] + 1) >> tab["final_shift"], 32767)
    assert (want == 32767).any() and int(np.abs(got - want).max()) == 0, int((got != want).sum())
    assert (tab["multiplier"], tab["shift"], tab["offset"]) == tables.logistic_output_rescale(tout.scale[0])
    kernel = KERNELS["LOGISTIC"](xi, tin.scale[0], tout.scale[0]).astype(np.int64)
    assert np.array_equal(kernel, want), int((kernel != want).sum())


@pytest.mark.slow  # two 256 x 256 sweeps through the vendor simulator
@pytest.mark.parametrize("x_range", [6.0, 32.0])
def test_uint8_tanh_is_the_requantized_int16_tanh(x_range):
    """The UINT8 TANH is the INT16 TANH (scale 1/32767) through the 15-bit requantization, code for code
    (rint(127.5 tanh x) + 128 instead misses 2049 of 16130 codes at x_range 32)."""
    codes16, vendor16, _, tout16 = vendor_table("TANH", x_range, graph_output=True)
    codes8, vendor8, _, tout8 = vendor_table("TANH", x_range)
    assert np.array_equal(codes16, codes8)
    got = tables.requantize_int16(vendor16, tout16.scale[0], tout8.scale[0], tout8.zero_point[0])
    assert got.dtype == np.uint8 and np.array_equal(got, vendor8)


# (input range, output range, graph output): INT16 outputs at ratios (1/32767)/s_out of 1.33 (range (-0.5, 0.5),
# widened by the vendor to tanh(0.977)), 1.05 (asymmetric), 0.5 and 0.67 (the line beyond 6 covered), and one UINT8
TANH_OUTPUT_SCALES = [(8.0, (-0.5, 0.5), True), (8.0, (-0.7, 0.95), True), (32.0, (-2.0, 2.0), True),
                      (32.0, (-2.0, 2.0), False)]


@pytest.mark.slow  # four 256 x 256 sweeps through the vendor simulator: ~5 s each
@pytest.mark.parametrize("x_range,out_range,graph_output", TANH_OUTPUT_SCALES)
def test_tanh_at_other_output_scales_matches_vendor(x_range, out_range, graph_output):
    """A TANH whose INT16 scale s16 = max(|min|, |max|) / 32767 of its output range is not 1/32767: the stored
    multipliers are tables.tanh_output_multipliers(s16) (15-bit forms of r tanh 2 and r, r = (1/32767) / s16),
    and every swept code equals tables.tanh_int16_codes at s16 (the UINT8 TANH: that through the 15-bit
    requantization)."""
    b, ranges, x = _table_sweep_model("TANH", x_range, graph_output, True)
    ranges["t"] = out_range
    tag = f"table_TANH_{x_range}_{'out' if graph_output else 'in'}_{out_range[0]}_{out_range[1]}"
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["t" if graph_output else "c3"]), tag)
    sim = vo.VendorSim(fixed)
    tin, tout = sim.tensor("cat"), sim.tensor("t")
    q = load_model(fixed).main.tensors[next(i for i, t in enumerate(load_model(fixed).main.tensors)
                                            if t.name == tout.name)].quantization
    s16 = max(abs(float(q.min[0])), abs(float(q.max[0]))) / 32767
    assert abs(s16 * 32767 - 1) > 0.04, "the INT16 scale is not the unit one"
    if graph_output:
        assert abs(tout.scale[0] - s16) < 1e-6 * s16
    fp = _fields(_fields(_options(fixed, "TANH").sgs_lut)["fixed_point"])
    assert tables.tanh_output_multipliers(s16) == ((fp["lut_257_multiplier"], fp["lut_257_shift"]),
                                                   (fp["lut_65_multiplier"], fp["lut_65_shift"]))
    recs, _ = vo.run_fixed(fixed, x)
    op = next(r["op_index"] for r in recs if r["op"] == "TANH")
    xi = layout.from_dump(vo.record(recs, op, "in", 0)["data"], tin.shape).astype(np.int64).ravel()
    want = layout.from_dump(vo.record(recs, op, "out")["data"], tout.shape).astype(np.int64).ravel()
    _assert_sweep_coverage(np.unique(xi), True)
    if graph_output:
        got = tables.lookup(xi, tables.tanh_int16_table(tin.scale[0], s16))
    else:
        got = KERNELS["TANH"](xi, tin.scale[0], tout.scale[0], tout.zero_point[0], int16_scale=s16)
    assert int(np.abs(got.astype(np.int64) - want).max()) == 0, int((got != want).sum())
    if x_range >= 32:
        assert (np.abs(tables.vendor_input_reals(xi, tin.scale[0])) >= 6).sum() > 3000, "the line is covered"


@pytest.mark.parametrize("seed,fs,st,side,padding", [(91, 2, 2, 12, "VALID"), (92, 3, 1, 12, "VALID"),
                                                    (93, 3, 1, 12, "SAME"), (94, 2, 2, 11, "SAME"),
                                                    (95, 3, 2, 11, "SAME"), (96, 5, 1, 9, "SAME")])
def test_average_pool_floors_the_code_mean(seed, fs, st, side, padding):
    """floor(window sum / cells); SAME leaves the padding cells out of sum and count (counting them, padded
    with the zero point or 0, misses codes at every border)."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(5, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=5).astype(np.float32))], SAME1, name="c1")
    p = b.op("AVERAGE_POOL_2D", [y], {"padding": padding, "stride_w": st, "stride_h": st, "filter_width": fs,
                                      "filter_height": fs}, name="p")
    b.output(b.op("CONV_2D", [p, b.constant("w3", np.eye(5, dtype=np.float32).reshape(5, 1, 1, 5)),
                              b.constant("b3", np.zeros(5, np.float32))], SAME1, name="c3"))
    fixed = vo.make_fixed(b, {"x": (-1, 1), "c1": (-3, 4), "p": (-3, 4), "c3": (-4, 4)}, vo.ini_text(["x"], ["c3"]),
                          f"avg_{seed}")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, g.integers(0, 256, (1, side, side, 3)).astype(np.uint8))
    op = next(r["op_index"] for r in recs if r["op"] == "AVERAGE_POOL_2D")
    ti, to = sim.tensor("c1"), sim.tensor("p")
    assert (ti.scale, ti.zero_point, ti.type_code) == (to.scale, to.zero_point, to.type_code)
    xin = layout.from_dump(vo.record(recs, op, "in", 0)["data"], ti.shape)
    want = layout.from_dump(vo.record(recs, op, "out")["data"], to.shape)
    got = KERNELS["AVERAGE_POOL_2D"](xin, (fs, fs), (st, st), padding)
    assert got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want)


@pytest.mark.parametrize("seed,side,c", [(201, 8, 5), (202, 12, 16), (203, 7, 20)])
def test_mean_floors_the_code_mean(seed, side, c):
    """MEAN over H and W keeps the input's quantization and floors the code mean, as AVERAGE_POOL_2D."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(c, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=c).astype(np.float32))], SAME1, name="c1")
    mn = b.op("MEAN", [y, b.constant("axes", np.array([1, 2], np.int32))], {"keep_dims": True}, name="m")
    b.output(b.op("CONV_2D", [mn, b.constant("w3", np.eye(c, dtype=np.float32).reshape(c, 1, 1, c)),
                              b.constant("b3", np.zeros(c, np.float32))], SAME1, name="c3"))
    fixed = vo.make_fixed(b, {"x": (-1, 1), "c1": (-3, 4), "m": (-1, 2), "c3": (-4, 4)}, vo.ini_text(["x"], ["c3"]),
                          f"mean_{seed}")
    sim = vo.VendorSim(fixed)
    pixels = g.integers(0, 256, (1, side, side, 3)).astype(np.uint8)
    recs, outs = vo.run_fixed(fixed, pixels)
    op = next(r["op_index"] for r in recs if r["op"] == "MEAN")
    ti, to = sim.tensor("c1"), sim.tensor("m")
    assert (ti.scale, ti.zero_point, ti.type_code) == (to.scale, to.zero_point, to.type_code)
    # the conv output MEAN reads is dumped row-major (blocked would put 7 x 7 x 20 elsewhere)
    xin = layout.from_dump(vo.record(recs, op, "in", 0)["data"], ti.shape, blocked=False)
    want = layout.from_dump(vo.record(recs, op, "out")["data"], to.shape)
    got = KERNELS["MEAN"](xin, (1, 2), True)
    assert got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want)
    ours = calibrator_custom.fixed_simulator(str(fixed))
    ours.set_input(0, pixels)
    ours.invoke()
    tc3 = sim.tensor("c3")
    y_ours = output.strip_alignment(ours.get_output(0), tc3.shape)
    ref = outs["c3"].reshape(y_ours.shape)
    assert np.array_equal(np.round(y_ours.astype(np.float64) / tc3.scale[0]), np.round(ref / tc3.scale[0]))


# ---------------------------------------------------------------- TRANSPOSE, RESIZE_BILINEAR
def _unary_model(kind, seed, side=8, c=5):
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(c, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=c).astype(np.float32))], SAME1, name="c1")
    if kind == "TRANSPOSE":
        p = b.op("TRANSPOSE", [y, b.constant("perm", np.array([0, 2, 1, 3], np.int32))], {}, name="p")
    else:
        p = b.op("RESIZE_BILINEAR", [y, b.constant("size", np.array([2 * side, 2 * side], np.int32))],
                 {"align_corners": False, "half_pixel_centers": False}, name="p")
    b.output(b.op("CONV_2D", [p, b.constant("w3", np.eye(c, dtype=np.float32).reshape(c, 1, 1, c)),
                              b.constant("b3", np.zeros(c, np.float32))], SAME1, name="c3"))
    return b, g.integers(0, 256, (1, side, side, 3)).astype(np.uint8)


@pytest.mark.parametrize("kind,seed", [("TRANSPOSE", 101), ("RESIZE_BILINEAR", 102), ("RESIZE_BILINEAR", 103)])
def test_transpose_and_resize_match_vendor_dump(kind, seed):
    b, x = _unary_model(kind, seed)
    fixed = vo.make_fixed(b, {"x": (-1, 1), "c1": (-3, 4), "p": (-3, 4), "c3": (-4, 4)}, vo.ini_text(["x"], ["c3"]),
                          f"unary_{kind}_{seed}")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, x)
    op = next(r["op_index"] for r in recs if r["op"] == kind)
    ti, to = sim.tensor("c1"), sim.tensor("p")
    assert (ti.scale, ti.zero_point) == (to.scale, to.zero_point)
    xin = layout.from_dump(vo.record(recs, op, "in", 0)["data"], ti.shape)
    want = layout.from_dump(vo.record(recs, op, "out")["data"], to.shape)
    if kind == "TRANSPOSE":
        got = KERNELS["TRANSPOSE"](xin, (0, 2, 1, 3))
    else:
        got = KERNELS["RESIZE_BILINEAR"](xin, to.shape[1:3])
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want), f"{int((got != want).sum())}/{want.size} codes differ"


RESIZE_CASES = [(8, (16, 16), False, True, 0), (8, (12, 12), False, False, 0), (8, (20, 20), False, False, 0),
                (8, (16, 16), True, False, 0), (8, (13, 19), False, True, 0),
                (9, (24, 24), True, False, 0)]


@pytest.mark.parametrize("side,size,align_corners,half_pixel,bound", RESIZE_CASES)
def test_resize_bilinear_other_sizes_within_measured_bound(side, size, align_corners, half_pixel, bound):
    """The vendor ignores half_pixel_centers (a half-pixel 2x resize is exact with src = dst * in / out) and
    honours align_corners; the non-integer steps are exact through the 2D path (float32 corner weights in the
    expanded form, rounded to 16 or 15 bits), every code."""
    g = np.random.default_rng(side * 100 + size[0] + size[1])
    c = 5
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(c, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=c).astype(np.float32))], SAME1, name="c1")
    p = b.op("RESIZE_BILINEAR", [y, b.constant("size", np.array(size, np.int32))],
             {"align_corners": align_corners, "half_pixel_centers": half_pixel}, name="p")
    b.output(b.op("CONV_2D", [p, b.constant("w3", np.eye(c, dtype=np.float32).reshape(c, 1, 1, c)),
                              b.constant("b3", np.zeros(c, np.float32))], SAME1, name="c3"))
    fixed = vo.make_fixed(b, {"x": (-1, 1), "c1": (-3, 4), "p": (-3, 4), "c3": (-4, 4)}, vo.ini_text(["x"], ["c3"]),
                          f"resize_{side}_{size[0]}x{size[1]}_{int(align_corners)}{int(half_pixel)}")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, g.integers(0, 256, (1, side, side, 3)).astype(np.uint8))
    op = next(r["op_index"] for r in recs if r["op"] == "RESIZE_BILINEAR")
    ti, to = sim.tensor("c1"), sim.tensor("p")
    assert (ti.scale, ti.zero_point) == (to.scale, to.zero_point)
    xin = layout.from_dump(vo.record(recs, op, "in", 0)["data"], ti.shape)
    want = layout.from_dump(vo.record(recs, op, "out")["data"], to.shape)
    got = KERNELS["RESIZE_BILINEAR"](xin, size, align_corners, False)
    assert got.shape == want.shape and got.dtype == want.dtype
    diff = np.abs(got.astype(np.int64) - want)
    assert diff.max() <= bound, f"{int((diff != 0).sum())}/{diff.size} codes differ by up to {diff.max()}"
    src_h, src_w = (np.arange(n) * ((side - 1) / (n - 1) if align_corners else side / n) for n in size)
    rows, cols = np.flatnonzero(src_h == np.round(src_h)), np.flatnonzero(src_w == np.round(src_w))
    assert diff[:, rows].max() == 0 and diff[:, :, cols].max() == 0, "integer source rows/columns are exact"
    assert (diff != 0).mean() < 0.15  # measured 5% to 13.5% on these and the experiment inputs


@pytest.mark.parametrize("seed,side", [(111, 8), (112, 16)])
def test_softmax_matches_vendor_dump(seed, side):
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(5, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=5).astype(np.float32))], SAME1, name="c1")
    p = b.op("SOFTMAX", [y], {"beta": 1.0}, name="p")
    b.output(b.op("CONV_2D", [p, b.constant("w3", np.eye(5, dtype=np.float32).reshape(5, 1, 1, 5)),
                              b.constant("b3", np.zeros(5, np.float32))], SAME1, name="c3"))
    fixed = vo.make_fixed(b, {"x": (-1, 1), "c1": (-3, 4), "p": (-3, 4), "c3": (-4, 4)}, vo.ini_text(["x"], ["c3"]),
                          f"softmax_{seed}")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, g.integers(0, 256, (1, side, side, 3)).astype(np.uint8))
    op = next(r["op_index"] for r in recs if r["op"] == "SOFTMAX")
    out_rec = vo.record(recs, op, "out")
    assert abs(out_rec["scale"] - 1 / 32767) < 1e-6 and sim.tensor("p").scale[0] > 1e-4, \
        "the vendor writes SOFTMAX with scale 1/32767, not the calibrated one"
    ti = sim.tensor("c1")
    xin = layout.from_dump(vo.record(recs, op, "in", 0)["data"], ti.shape)
    want = layout.from_dump(out_rec["data"], ti.shape).astype(np.int64)
    got = KERNELS["SOFTMAX"](xin, ti.scale[0])
    assert got.shape == want.shape and got.dtype == np.int16
    diff = np.abs(got.astype(np.int64) - want)
    assert diff.max() == 0, f"{int((diff != 0).sum())}/{diff.size} codes differ (before: 87/320, 322/1280)"


def _softmax_sweep_model(weights, x_range):
    """x -> conv c1 (weights [C, 3] on R', G', B') -> SOFTMAX over C channels -> identity conv; the input is the
    256 x 256 (R, G) grid with B = 128, so each row of channels is a point of a 2-D family of logit vectors."""
    w = np.asarray(weights, np.float32)
    c = w.shape[0]
    b = ModelBuilder()
    x = b.input("x", (1, 256, 256, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", w.reshape(c, 1, 1, 3)), b.constant("b1", np.zeros(c, np.float32))],
             SAME1, name="c1")
    p = b.op("SOFTMAX", [y], {"beta": 1.0}, name="p")
    b.output(b.op("CONV_2D", [p, b.constant("w3", np.eye(c, dtype=np.float32).reshape(c, 1, 1, c)),
                              b.constant("b3", np.zeros(c, np.float32))], SAME1, name="c3"))
    ranges = {"x": (-1, 1), "c1": (-x_range, x_range), "p": (-1, 1), "c3": (-1.1, 1.1)}
    pz = np.arange(256, dtype=np.uint8)
    rr, gg = np.meshgrid(pz, pz, indexing="ij")
    return b, ranges, np.stack([rr, gg, np.full_like(rr, 128)], -1)[None].astype(np.uint8)


SOFTMAX_SWEEPS = {
    # one logit against 0, nearly every code of [-32767, 32767] (both tables, x = -10 at range 10, the line
    # below -10 at range 20)
    "pair_10": ([[10, 10 / 127, 0], [0, 0, 0]], 10.0),
    "pair_20": ([[20, 20 / 127, 0], [0, 0, 0]], 20.0),
    # differences below -32768 codes (the saturated difference) and sums above 2**16 (the reciprocal's n)
    "three_10": ([[10, 0, 0], [0, 10, 0], [0, 0, 0]], 10.0),
    "four_20": ([[20, 0, 0], [0, 20, 0], [-20, 0, 0], [0, 0, 0]], 20.0),
    # 16 channels: sums up to 16 * 32767 (n up to 3)
    "sixteen_12": ([[12 * np.cos(k), 12 * np.sin(k), 0] for k in range(16)], 12.0),
}


@pytest.mark.slow  # a 256 x 256 image through the vendor simulator: ~7 to 25 s each
@pytest.mark.parametrize("name", sorted(SOFTMAX_SWEEPS))
def test_softmax_sweep_matches_vendor_dump(name):
    """Every row of the sweep equals tables.softmax code for code: the exp tables, the tangent line below -10
    clipped at 0, the saturated difference, the normalized reciprocal (1 to 16 channels, ranges 10 to 20)."""
    weights, x_range = SOFTMAX_SWEEPS[name]
    b, ranges, x = _softmax_sweep_model(weights, x_range)
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"softmax_sweep_{name}")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, x)
    op = next(r["op_index"] for r in recs if r["op"] == "SOFTMAX")
    ti = sim.tensor("c1")
    assert abs(ti.scale[0] * 32767 - x_range) < 1e-3 * x_range, "the chosen input range is kept"
    xin = layout.from_dump(vo.record(recs, op, "in", 0)["data"], ti.shape)
    want = layout.from_dump(vo.record(recs, op, "out")["data"], ti.shape).astype(np.int64)
    got = KERNELS["SOFTMAX"](xin, ti.scale[0])
    assert got.shape == want.shape and got.dtype == np.int16
    diff = np.abs(got.astype(np.int64) - want)
    assert diff.max() == 0, f"{int((diff != 0).sum())}/{diff.size} codes differ"
    d = xin.astype(np.int64) - xin.max(-1, keepdims=True)
    if name == "pair_20":
        assert (d * ti.scale[0] < -10).sum() > 1000, "the line below -10 is covered"
    if name == "three_10":
        assert (d < -32768).any(), "the saturated difference is covered"
    if name == "sixteen_12":
        e = tables.softmax_exp_codes(np.maximum(d, -32768), ti.scale[0]).sum(-1)
        assert e.max() >= 2 ** 18, "sums with n = 3 are covered"
    if name == "pair_10":  # the table slots of SoftmaxOptions (what the kernel computes itself)
        opt = _options(fixed, "SOFTMAX")
        lut = _fields(opt.sgs_lut)
        fp = _fields(lut["fixed_point"])
        m, q = tables.input_fixed_point(ti.scale[0])
        assert tuple(lut["exp_lut_65"]) == tuple(tables.SOFTMAX_INNER)
        assert tuple(lut["exp_lut_257"]) == tuple(tables.SOFTMAX_OUTER)
        assert fp["input_multiplier"] == m
        assert (fp["frac_bits"], fp["frac_bits_2"], fp["frac_bits_3"], fp["frac_bits_4"]) == (q, q, q, q)
        assert (fp["lut_65_index_shift"], fp["lut_257_index_shift"], fp["sgs_slot_5"]) == (q - 5, q - 5, q - 5)
        assert (fp["lut_boundary"], fp["lut_boundary_2"], fp["line_start"]) == (-(2 << q), -(2 << q), -(10 << q))
        assert (fp["lut_65_offset"], fp["lut_257_offset"]) == (2 << q, 10 << q)
        assert (fp["lut_257_multiplier"], fp["lut_257_shift"]) == tables.SOFTMAX_OUTER_MULTIPLIER
        assert (fp["lut_65_multiplier"], fp["lut_65_shift"]) == (16384, 14)
        values = _fields(lut["sgs_slot_2"])
        assert values["line_start_value"] == tables.SOFTMAX_OUTER[0]
        assert values["lut_65_first_value"] == tables.SOFTMAX_INNER[0]


@pytest.mark.parametrize("act,c2_range,seed", [("RELU", (-1.0, 5.0), 121), ("RELU6", (-1.0, 7.0), 122),
                                               ("RELU6", (-2.0, 4.0), 123)])
def test_fused_relu_clamps_conv_codes(act, c2_range, seed):
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(6, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=6).astype(np.float32))], SAME1, name="c1")
    z = b.op("CONV_2D", [y, b.constant("w2", g.normal(size=(6, 3, 3, 6)).astype(np.float32)),
                         b.constant("b2", g.normal(size=6).astype(np.float32))],
             dict(SAME1, fused_activation_function=act), name="c2")
    b.output(b.op("CONV_2D", [z, b.constant("w3", np.eye(6, dtype=np.float32).reshape(6, 1, 1, 6)),
                              b.constant("b3", np.zeros(6, np.float32))], SAME1, name="c3"))
    fixed = vo.make_fixed(b, {"x": (-1, 1), "c1": (-3, 4), "c2": c2_range, "c3": (-8, 8)}, vo.ini_text(["x"], ["c3"]),
                          f"relu_{seed}")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, g.integers(0, 256, (1, 8, 8, 3)).astype(np.uint8))
    p = _conv_params(sim, "c1", "w2", "b2", "c2")
    xin = layout.from_dump(vo.record(recs, 1, "in", 0)["data"], p["ti"].shape)
    want = layout.from_dump(vo.record(recs, 1, "out")["data"], p["to"].shape)
    clamp = conv.activation_clamp(act, p["to"].scale[0], p["to"].zero_point[0], np.uint8)
    got = KERNELS["CONV_2D"](xin, p["ti"].zero_point[0], p["w"], p["b0"], p["mult"], p["k"], p["n_shift"], 0,
                             np.uint8, clamp=clamp)
    assert got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want)
    assert want.min() == p["to"].zero_point[0], "the clamp is reached"


@pytest.mark.parametrize("seed", [131, 132])
def test_prelu_matches_vendor_dump(seed):
    """conv c1 (5 ch) and c2 (1 ch) -> CONCATENATION -> PRELU (kept unfused by the concatenation) -> conv."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, 16, 16, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(5, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=5).astype(np.float32))], SAME1, name="c1")
    z = b.op("CONV_2D", [x, b.constant("w2", g.normal(size=(1, 1, 1, 3)).astype(np.float32)),
                         b.constant("b2", g.normal(size=1).astype(np.float32))], SAME1, name="c2")
    a = b.op("CONCATENATION", [y, z], {"axis": 3}, name="cat")
    alpha = g.uniform(0.05, 0.6, size=(1, 1, 6)).astype(np.float32)
    p = b.op("PRELU", [a, b.constant("alpha", alpha)], {}, name="p")
    b.output(b.op("CONV_2D", [p, b.constant("w3", np.eye(6, dtype=np.float32).reshape(6, 1, 1, 6)),
                              b.constant("b3", np.zeros(6, np.float32))], SAME1, name="c3"))
    ranges = {"x": (-1, 1), "c1": (-3, 4), "c2": (-3, 4), "cat": (-3, 4), "p": (-1.5, 4), "c3": (-4, 4)}
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"prelu_{seed}")
    sim = vo.VendorSim(fixed)
    recs, _ = vo.run_fixed(fixed, g.integers(0, 256, (1, 16, 16, 3)).astype(np.uint8))
    op = next(r["op_index"] for r in recs if r["op"] == "PRELU")
    ti, to, ta = sim.tensor("cat"), sim.tensor("p"), sim.tensor("alpha")
    alpha_q = np.frombuffer(sim.buffers[ta.buffer], "<i2")[:6]
    shift = activation.alpha_shift(max(abs(ta.qmin[0]), abs(ta.qmax[0])))
    assert np.array_equal(alpha_q, np.round(alpha.ravel() * 2.0 ** shift)), "alpha stored as round(alpha * 2**s)"
    xin = layout.from_dump(vo.record(recs, op, "in", 0)["data"], ti.shape)
    want = layout.from_dump(vo.record(recs, op, "out")["data"], to.shape)
    assert (xin < 0).any() and (xin > 0).any()
    got = KERNELS["PRELU"](xin, alpha_q, shift, ti.scale[0], to.scale[0], to.zero_point[0], np.uint8)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want), f"{int((got != want).sum())}/{want.size} codes differ"


# ---------------------------------------------------------------- graph outputs
@pytest.mark.parametrize("seed,c,last", [(141, 5, "conv"), (142, 20, "conv"), (143, 6, "TANH")])
def test_outputs_are_dequantized_codes(seed, c, last):
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(c, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=c).astype(np.float32))], SAME1, name="c1")
    z = b.op("CONV_2D", [y, b.constant("w2", g.normal(size=(c, 1, 1, c)).astype(np.float32)),
                         b.constant("b2", g.normal(size=c).astype(np.float32))], SAME1, name="c2")
    if last == "TANH":
        z = b.op("TANH", [z], {}, name="t")
    b.output(z)
    fixed = vo.make_fixed(b, {"x": (-1, 1), "c1": (-3, 4), "c2": (-5, 5), "t": (-1, 1)},
                          vo.ini_text(["x"], [z.name], dequant=True), f"deq_{seed}")
    sim = vo.VendorSim(fixed)
    assert all(op.builtin in (3, 28) for op in sim.ops), "no Fix2Float op in the vendor L1 fixed.sim"
    recs, outs = vo.run_fixed(fixed, g.integers(0, 256, (1, 8, 8, 3)).astype(np.uint8))
    t = sim.tensor(z.name)
    rec = next(r for r in recs if r["dir"] == "out" and r["name"] == z.name)
    assert rec["data"].size >= 64 * (-(-c // 8) * 8), "INT16 output rows padded to a multiple of 8"
    padded = rec["data"][:64 * (-(-c // 8) * 8)].reshape(1, 8, 8, -1)
    codes = output.strip_alignment(padded, t.shape)
    y = KERNELS["Fix2Float"](codes, t.scale[0], t.zero_point[0])
    assert y.shape == outs[z.name].shape and y.dtype == np.float32
    tol = 5e-7 + np.spacing(np.abs(y)).astype(np.float64)  # the text's 6 decimals + our float32 rounding
    assert np.all(np.abs(y.astype(np.float64) - outs[z.name]) <= tol), "equal up to the text output's 6 decimals"


# ---------------------------------------------------------------- int8 weight tiling
TILING_CASES = [((72, 1, 1, 64), True), ((64, 1, 1, 32), True), ((128, 1, 1, 128), True), ((32, 1, 1, 128), True),
                ((28, 1, 1, 24), True), ((40, 3, 3, 48), True), ((80, 3, 3, 64), True), ((24, 3, 3, 20), True),
                ((40, 2, 2, 72), False), ((32, 3, 3, 40), False), ((8, 1, 1, 130), False)]


@pytest.mark.parametrize("shape,relu", TILING_CASES)
def test_int8_weight_tiling_of_a_conv_on_its_own(shape, relu):
    """x -> c1 [+ RELU: input zero point 0, so no bias fold can tell the tilings apart] -> c2 (the graph
    output): the likeliest tiling locates every round(w / scale) of the float weights, and our simulator
    gives the vendor's output codes."""
    o, kh, kw, i = shape
    g = np.random.default_rng(o * 1000 + kh * 100 + i)
    side = 12
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(i, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=i).astype(np.float32))],
             dict(SAME1, fused_activation_function="RELU" if relu else "NONE"), name="c1")
    w = g.normal(size=shape).astype(np.float32)
    b.output(b.op("CONV_2D", [y, b.constant("w2", w), b.constant("b2", g.normal(size=o).astype(np.float32))], SAME1,
                  name="c2"))
    fixed = vo.make_fixed(b, {"x": (-1, 1), "c1": (0 if relu else -3, 4), "c2": (-8, 8)}, vo.ini_text(["x"], ["c2"]),
                          f"tiling_{o}_{kh}_{i}_{int(relu)}")
    sim = vo.VendorSim(fixed)
    assert (sim.tensor("c1").zero_point[0] == 0) == relu
    tw = sim.tensor("w2")
    to_, ti_ = layout.conv_tilings(tw.shape)[0]
    got_w = layout.unpack_conv_weights(sim.buffers[tw.buffer], tw.shape, np.int8, ti_, to_)
    assert np.array_equal(got_w.astype(np.int64), np.round(w.astype(np.float64) / tw.scale[0]))
    pixels = g.integers(0, 256, (1, side, side, 3)).astype(np.uint8)
    _, outs = vo.run_fixed(fixed, pixels)
    ours = calibrator_custom.fixed_simulator(str(fixed))
    ours.set_input(0, pixels)
    ours.invoke()
    tc2 = sim.tensor("c2")
    y_ours = output.strip_alignment(ours.get_output(0), tc2.shape)
    ref = outs["c2"].reshape(y_ours.shape)
    assert y_ours.shape == ref.shape and y_ours.dtype == np.float32
    assert np.array_equal(np.round(y_ours.astype(np.float64) / tc2.scale[0]), np.round(ref / tc2.scale[0]))
