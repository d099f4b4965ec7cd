"""fixed_simulator on the vendor's own *_fixed.sim against the vendor's sgs_simulator_fixed.

Single-op vendor fixed models (the builders and chosen ranges of test_vendor_fixed_ops, vendor
convert_tool + L1 calibration in the session, cached) run through the PUBLIC ``fixed_simulator``
from raw uint8 pixels: every graph output must equal the vendor's text output (6 decimals) code for
code, or stay within the measured bound where an op of the chain is not reproduced exactly.
"""
from __future__ import annotations

import numpy as np
import pytest

import calibrator_custom
import test_vendor_fixed_ops as ops
import vendor_fixed_oracle as vo
from calibrator_custom.errors import ModelError
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import OperatorCode, load_model
from calibrator_custom.vendor_fixed import layout

_REASON = vo.vendor_missing_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")

INI = vo.ini_text(["x"], ["c3"])
U = {"x": (-1, 1), "c1": (-3, 4), "p": (-3, 4), "c3": (-4, 4)}  # as in test_vendor_fixed_ops (shared cache)


def _conv(name):
    b, ranges, x, _ = ops.CONV_CASES[name]()
    return b, ranges, INI, f"conv_{name}", x


def _dw(seed, cin, stride):
    b, ranges, x = ops._dw_fc_model(seed, "dw", cin=cin, stride=stride)
    return b, ranges, vo.ini_text(["x"], ["c2"]), f"dw_{seed}", x


def _fc():
    b, ranges, x = ops._dw_fc_model(41, "fc", side=4, cin=3, nout=10)
    return b, ranges, vo.ini_text(["x"], ["c2"]), "fc_41", x


def _binary(op, seed, a_range):
    b, x = ops._binary_model(op, seed)
    ranges = {"x": (-1.0, 1.0), "c1": (-3.0, 4.0), "c2": (-2.0, 1.0), "p1": (-3.0, 4.0), "p2": (-2.0, 1.0),
              "a": a_range, "c3": (-5.0, 5.0)}
    return b, ranges, INI, f"bin_{op}_{seed}", x


def _after_logistic(seed, c, o, k, out_range):
    b, x = ops._after_logistic_model(seed, c, o, k)
    return b, {"x": (-1.0, 1.0), "c1": (-6.0, 6.0), "a": (0.0, 1.0), "c3": (-out_range, out_range)}, INI, \
        f"i16_{seed}", x


def _unary(kind, seed):
    b, x = ops._unary_model(kind, seed)
    return b, U, INI, f"unary_{kind}_{seed}", x


def _input(mean, std, x_range):
    eye = np.eye(3, dtype=np.float32).reshape(3, 1, 1, 3)
    b = ModelBuilder()
    x = b.input("x", (1, 16, 16, 3))
    b.output(b.op("CONV_2D", [x, b.constant("w", eye), b.constant("b", np.zeros(3, np.float32))], ops.SAME1,
                  name="conv"))
    lo, hi = x_range
    r = 32767 * (hi - lo) / 255 / 127
    p = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    return b, {"x": x_range, "conv": (-r, r)}, vo.ini_text(["x"], ["conv"], mean, std), "input", \
        np.concatenate([p, 255 - p, p], -1)


def _softmax(seed, side):
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(5, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=5).astype(np.float32))], ops.SAME1, name="c1")
    p = b.op("SOFTMAX", [y], {"beta": 1.0}, name="p")
    b.output(b.op("CONV_2D", [p, b.constant("w3", np.eye(5, dtype=np.float32).reshape(5, 1, 1, 5)),
                              b.constant("b3", np.zeros(5, np.float32))], ops.SAME1, name="c3"))
    return b, U, INI, f"softmax_{seed}", g.integers(0, 256, (1, side, side, 3)).astype(np.uint8)


def _chain(seed, side):
    """(rng, builder, input) of the kernel tests' models: x -> conv c1 -> op -> identity conv c3."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    return g, b, x


def _avg(seed, fs, st):
    g, b, x = _chain(seed, 12)
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(5, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=5).astype(np.float32))], ops.SAME1, name="c1")
    p = b.op("AVERAGE_POOL_2D", [y], {"padding": "VALID", "stride_w": st, "stride_h": st, "filter_width": fs,
                                      "filter_height": fs}, name="p")
    b.output(b.op("CONV_2D", [p, b.constant("w3", np.eye(5, dtype=np.float32).reshape(5, 1, 1, 5)),
                              b.constant("b3", np.zeros(5, np.float32))], ops.SAME1, name="c3"))
    return b, U, INI, f"avg_{seed}", g.integers(0, 256, (1, 12, 12, 3)).astype(np.uint8)


def _relu(act, c2_range, seed):
    g, b, x = _chain(seed, 8)
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(6, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=6).astype(np.float32))], ops.SAME1, name="c1")
    z = b.op("CONV_2D", [y, b.constant("w2", g.normal(size=(6, 3, 3, 6)).astype(np.float32)),
                         b.constant("b2", g.normal(size=6).astype(np.float32))],
             dict(ops.SAME1, fused_activation_function=act), name="c2")
    b.output(b.op("CONV_2D", [z, b.constant("w3", np.eye(6, dtype=np.float32).reshape(6, 1, 1, 6)),
                              b.constant("b3", np.zeros(6, np.float32))], ops.SAME1, name="c3"))
    return b, {"x": (-1, 1), "c1": (-3, 4), "c2": c2_range, "c3": (-8, 8)}, INI, f"relu_{seed}", \
        g.integers(0, 256, (1, 8, 8, 3)).astype(np.uint8)


def _concat(seed, c, r1, r2):
    g, b, x = _chain(seed, 8)
    ys = [b.op("CONV_2D", [x, b.constant(f"w{i}", g.normal(size=(c, 1, 1, 3)).astype(np.float32)),
                           b.constant(f"b{i}", g.normal(size=c).astype(np.float32))], ops.SAME1, name=f"c{i}")
          for i in (1, 2)]
    a = b.op("CONCATENATION", ys, {"axis": 3}, name="a")
    b.output(b.op("CONV_2D", [a, b.constant("w3", np.eye(2 * c, dtype=np.float32).reshape(2 * c, 1, 1, 2 * c)),
                              b.constant("b3", np.zeros(2 * c, np.float32))], ops.SAME1, name="c3"))
    return b, {"x": (-1.0, 1.0), "c1": r1, "c2": r2, "a": (-9.0, 9.0), "c3": (-9.0, 9.0)}, INI, f"cat_{seed}", \
        g.integers(0, 256, (1, 8, 8, 3)).astype(np.uint8)


def _prelu(seed):
    g, b, x = _chain(seed, 16)
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(5, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=5).astype(np.float32))], ops.SAME1, name="c1")
    z = b.op("CONV_2D", [x, b.constant("w2", g.normal(size=(1, 1, 1, 3)).astype(np.float32)),
                         b.constant("b2", g.normal(size=1).astype(np.float32))], ops.SAME1, name="c2")
    a = b.op("CONCATENATION", [y, z], {"axis": 3}, name="cat")
    alpha = g.uniform(0.05, 0.6, size=(1, 1, 6)).astype(np.float32)
    p = b.op("PRELU", [a, b.constant("alpha", alpha)], {}, name="p")
    b.output(b.op("CONV_2D", [p, b.constant("w3", np.eye(6, dtype=np.float32).reshape(6, 1, 1, 6)),
                              b.constant("b3", np.zeros(6, np.float32))], ops.SAME1, name="c3"))
    ranges = {"x": (-1, 1), "c1": (-3, 4), "c2": (-3, 4), "cat": (-3, 4), "p": (-1.5, 4), "c3": (-4, 4)}
    return b, ranges, INI, f"prelu_{seed}", g.integers(0, 256, (1, 16, 16, 3)).astype(np.uint8)


def _deq(seed, c, last):
    g, b, x = _chain(seed, 8)
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(c, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", g.normal(size=c).astype(np.float32))], ops.SAME1, name="c1")
    z = b.op("CONV_2D", [y, b.constant("w2", g.normal(size=(c, 1, 1, c)).astype(np.float32)),
                         b.constant("b2", g.normal(size=c).astype(np.float32))], ops.SAME1, name="c2")
    if last == "TANH":
        z = b.op("TANH", [z], {}, name="t")
    b.output(z)
    return b, {"x": (-1, 1), "c1": (-3, 4), "c2": (-5, 5), "t": (-1, 1)}, \
        vo.ini_text(["x"], [z.name], dequant=True), f"deq_{seed}", g.integers(0, 256, (1, 8, 8, 3)).astype(np.uint8)


def _last_conv_act(act, seed, out_range):
    """A conv with a fused activation that ends the graph: the vendor splits it into CONV_2D + RELU/RELU6."""
    g, b, x = _chain(seed, 8)
    b.output(b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(5, 1, 1, 3)).astype(np.float32)),
                              b.constant("b1", g.normal(size=5).astype(np.float32))],
                  dict(ops.SAME1, fused_activation_function=act), name="c1"))
    return b, {"x": (-1, 1), "c1": out_range}, vo.ini_text(["x"], ["c1"]), f"lastact_{act}_{seed}", \
        g.integers(0, 256, (1, 8, 8, 3)).astype(np.uint8)


#: case -> (model maker, worst difference in output LSB measured at the graph output). 0: exact.
CASES = {
    **{f"conv_{n}": (lambda n=n: _conv(n), 0) for n in ops.CONV_CASES},
    "dw_31": (lambda: _dw(31, 20, 1), 0), "dw_32": (lambda: _dw(32, 7, 2), 0), "dw_33": (lambda: _dw(33, 16, 1), 0),
    "fc_41": (_fc, 0),
    **{f"bin_{op}_{seed}": (lambda op=op, seed=seed, r=r: _binary(op, seed, r), 0)
       for op, seed, r in ops.BINARY_CASES if op != "MUL"},
    # MUL (two-stage product shift), LOGISTIC/TANH/SOFTMAX (the vendor's table interpolation): exact
    **{f"bin_MUL_{seed}": (lambda seed=seed, r=r: _binary("MUL", seed, r), 0)
       for op, seed, r in ops.BINARY_CASES if op == "MUL"},
    "i16_71": (lambda: _after_logistic(71, 20, 20, 1, 20.0), 0),
    "i16_72": (lambda: _after_logistic(72, 4, 6, 1, 3.0), 0),
    "i16_73": (lambda: _after_logistic(73, 24, 9, 1, 1.0), 0),
    "i16_74": (lambda: _after_logistic(74, 16, 5, 1, 2.0), 0),
    "i16_75": (lambda: _after_logistic(75, 20, 9, 3, 20.0), 0),
    "i16_76": (lambda: _after_logistic(76, 5, 11, 3, 4.0), 0),
    **{f"input_{k}": (lambda c=c: _input(*c), 0) for k, c in enumerate(ops.INPUT_CASES)},
    "avg_91": (lambda: _avg(91, 2, 2), 0), "avg_92": (lambda: _avg(92, 3, 1), 0),
    "transpose_101": (lambda: _unary("TRANSPOSE", 101), 0),
    "resize_102": (lambda: _unary("RESIZE_BILINEAR", 102), 0), "resize_103": (lambda: _unary("RESIZE_BILINEAR", 103), 0),
    "softmax_111": (lambda: _softmax(111, 8), 0),
    "softmax_112": (lambda: _softmax(112, 16), 0),
    "relu_121": (lambda: _relu("RELU", (-1.0, 5.0), 121), 0), "relu6_122": (lambda: _relu("RELU6", (-1.0, 7.0), 122), 0),
    "relu6_123": (lambda: _relu("RELU6", (-2.0, 4.0), 123), 0),
    "last_relu_124": (lambda: _last_conv_act("RELU", 124, (0.0, 5.0)), 0),
    "last_relu6_125": (lambda: _last_conv_act("RELU6", 125, (0.0, 6.0)), 0),
    "last_relu6_126": (lambda: _last_conv_act("RELU6", 126, (-1.0, 9.0)), 0),
    "cat_81": (lambda: _concat(81, 5, (-3.0, 4.0), (-2.0, 1.0)), 0),
    "cat_82": (lambda: _concat(82, 3, (-0.5, 0.5), (-9.0, 2.0)), 0),
    "prelu_131": (lambda: _prelu(131), 0), "prelu_132": (lambda: _prelu(132), 0),
    "deq_141": (lambda: _deq(141, 5, "conv"), 0), "deq_142": (lambda: _deq(142, 20, "conv"), 0),
    # a TANH ending the graph writes INT16 (scale 1/32767)
    "deq_143_tanh": (lambda: _deq(143, 6, "TANH"), 0),
}


def _fixed(case):
    b, ranges, ini, tag, x = CASES[case][0]()
    return vo.make_fixed(b, ranges, ini, tag), x


def _ours(path, x):
    sim = calibrator_custom.fixed_simulator(str(path))
    d = sim.get_input_details()[0]
    assert d["dtype"] is np.uint8 and tuple(d["shape"]) == x.shape
    sim.set_input(0, x)
    sim.invoke()
    return sim, [(od, sim.get_output(k)) for k, od in enumerate(sim.get_output_details())]


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_op_vendor_fixed_model_matches_vendor_simulator(case):
    path, x = _fixed(case)
    ref = vo.oracle().fixed_sim(str(path), x)
    sim, outs = _ours(path, x)
    bound = CASES[case][1]
    for od, y in outs:
        r = ref[od["name"]]
        assert y.dtype == np.float32 and tuple(od["shape"]) == y.shape
        y = layout_strip(y, r.shape)
        assert y.shape == r.shape
        scale = od["quantization"][0]
        assert np.abs(r / scale - np.round(r / scale)).max() < 0.1, "the text output's 6 decimals name a code"
        lsb = np.abs(np.round(y.astype(np.float64) / scale) - np.round(r / scale))
        assert lsb.max() <= bound, f"{od['name']}: worst {lsb.max():.0f} LSB (bound {bound}), " \
                                   f"{int((lsb > 0).sum())}/{lsb.size} codes differ"


def layout_strip(y, shape):
    from calibrator_custom.vendor_fixed import output
    return output.strip_alignment(y, shape)


@pytest.mark.parametrize("case,tensor", [("bin_MUL_51", "a"), ("bin_MUL_53", "a"), ("i16_73", "a")])
def test_mul_and_logistic_codes_equal_the_dump(case, tensor):
    """The MUL and the (conv-fused) LOGISTIC codes inside the graph equal the vendor's dump, code for code."""
    path, x = _fixed(case)
    recs, _ = vo.run_fixed(path, x)
    sim, _ = _ours(path, x)
    g = sim.model_obj.main
    codes = sim.program.codes([x])[g.tensor_index(tensor)]
    rec = next(r for r in recs if r["dir"] == "out" and r["name"] == tensor)
    want = layout.from_dump(rec["data"], g.tensors[g.tensor_index(tensor)].shape, blocked=True)
    assert codes.shape == want.shape and codes.dtype == want.dtype
    diff = np.abs(codes.astype(np.int64) - want)
    assert diff.max() == 0, f"{int((diff != 0).sum())}/{diff.size} codes differ"


def test_outputs_carry_the_vendor_alignment_padding():
    path, x = _fixed("deq_141")  # 5 INT16 channels -> padded to 8
    sim, outs = _ours(path, x)
    (od, y), = outs
    assert tuple(od["shape"]) == (1, 8, 8, 8) and y.shape == (1, 8, 8, 8)
    assert np.all(y[..., 5:] == 0)


def test_unsupported_op_is_a_model_error_naming_it():
    path, _ = _fixed("avg_91")
    model = load_model(path)
    g = model.main
    op = next(o for o in g.operators if model.op_name(o) == "AVERAGE_POOL_2D")
    model.operator_codes.append(OperatorCode(builtin_code="L2_POOL_2D"))
    op.opcode_index = len(model.operator_codes) - 1
    with pytest.raises(ModelError, match="op L2_POOL_2D"):
        calibrator_custom.fixed_simulator(model)


def test_raw_pixels_only():
    path, x = _fixed("deq_141")
    sim = calibrator_custom.fixed_simulator(str(path))
    with pytest.raises(ValueError, match="raw uint8"):
        sim.set_input(0, x.astype(np.float32))


def test_batch_idx_like_the_other_simulators():
    """The SDK's batch_idx keyword: 0 gives the same output as leaving it out; another index is refused."""
    path, x = _fixed("deq_141")
    sim, ((_, y),) = _ours(path, x)
    sim.set_input(0, x, batch_idx=0)
    sim.invoke()
    again = sim.get_output(0, batch_idx=0)
    assert again.shape == y.shape and again.dtype == y.dtype
    np.testing.assert_array_equal(again, y)
    with pytest.raises(ValueError, match="batch_idx 1"):
        sim.set_input(0, x, batch_idx=1)
    with pytest.raises(ValueError, match="batch_idx 1"):
        sim.get_output(0, batch_idx=1)


def test_accuracy_analysis_of_a_vendor_fixed_model(tmp_path):
    """sgs-analyze's accuracy_analysis on a vendor fixed.sim: every layer compared, and the output's
    errors are those of the vendor simulator's own outputs against our float simulator."""
    from calibrator_custom.analysis import accuracy_analysis
    from calibrator_custom.analysis.metrics import ErrorAccumulator
    from images import calibration_images
    path, _ = _fixed("deq_141")
    float_sim = path.with_name("m_float.sim")

    def pre(p, norm=True):
        import cv2
        img = cv2.resize(cv2.imread(p)[:, :, ::-1], (8, 8)).astype(np.float32)
        return ((img - 127.5) / 127.5)[None] if norm else np.round(img).astype(np.uint8)[None]
    photos = [str(p) for p in calibration_images()[:3]]
    rep = accuracy_analysis(str(float_sim), str(path), photos, preprocess_funcs=pre)
    assert rep.num_samples == 3 and all(r.status == "ok" for r in rep.layers)
    acc = ErrorAccumulator()
    fsim = calibrator_custom.float_simulator(str(float_sim))
    for p in photos:
        fsim.set_input(0, pre(p, True))
        fsim.invoke()
        acc.add(fsim.get_output(0).astype(np.float64), vo.oracle().fixed_sim(str(path), pre(p, False))["c2"])
    want = acc.result()
    got = next(r for r in rep.layers if r.name == "c2").accumulated
    assert got.count == want.count and abs(got.sqnr_db - want.sqnr_db) < 1e-3 and abs(got.cosine - want.cosine) < 1e-6
