"""The vendor fixed.sim's tables computed by calibrator_custom against the vendor's own L1 calibration.

For the same ranges, ``vendor_fixed.quantize_plan`` must give every tensor the type, scale, zero
point, min and max the vendor's L1 fixed.sim holds, and ``vendor_fixed.pack`` the conv weight and
bias buffers byte for byte, the accumulator range (quantization slots 4/5) and the bias/total shifts
(Conv2DOptions slots 35/37, DepthwiseConv2DOptions 36/38). The oracle tier (the vendor SDK in
``../shared/vendor_sdk``) makes the vendor files in the session; without it those tests skip.
"""
from __future__ import annotations

import re
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import vendor_fixed_oracle as vo
from calibrator_custom.errors import ModelError, UnsupportedOpError
from calibrator_custom.interpreter import Interpreter
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import load_model
from calibrator_custom.vendor_fixed import layout, pack
from calibrator_custom.vendor_fixed import quantize_plan as qp
from test_vendor_fixed_ops import _conv_chain

#: (seed, side, cin, cout, k, stride, padding) of x -> 1x1 conv -> conv under test -> 1x1 conv
CONV_CHAINS = {
    "3x3_same_16to24": (21, 8, 16, 24, 3, 1, "SAME"),
    "3x3_stride2": (22, 8, 8, 8, 3, 2, "SAME"),
    "1x1_valid_odd": (23, 8, 5, 7, 1, 1, "VALID"),
    "5x5_valid_stride2": (24, 10, 4, 6, 5, 2, "VALID"),
    "3x3_32to40": (25, 16, 32, 40, 3, 1, "SAME"),
    "3x3_3to64": (26, 12, 3, 64, 3, 1, "SAME"),
    "1x1_64to72": (27, 8, 64, 72, 1, 1, "SAME"),
    "3x3_20x20": (28, 20, 16, 16, 3, 1, "SAME"),
    "3x3_32x32": (29, 32, 16, 16, 3, 1, "SAME"),
    "3x3_17to33": (30, 8, 17, 33, 3, 1, "SAME"),
    "3x3_40x40": (31, 40, 8, 8, 3, 1, "SAME"),
    "1x1_128to8": (32, 8, 128, 8, 1, 1, "SAME"),
}
SHARED_MODELS = ["iris_landmark", "face_detection_short_range", "face_landmark"]
#: the one conv whose int8 weight layout is not the tiled one `layout` reads (a 3x3 kernel over a
#: 3x3 input with 1404 outputs); its bias, accumulator range and shifts are still equal (the writer
#: keeps a template's weight buffers: they do not depend on the ranges)
WEIGHT_LAYOUT_NOT_ESTABLISHED = {("face_landmark", "conv2d_21")}


def _skip_without_vendor():
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)


# ---------------------------------------------------------------- vendor-made files
@pytest.fixture(scope="session")
def chain_runs():
    """name -> (vendor float.sim, vendor L1 fixed.sim, chosen ranges)."""
    _skip_without_vendor()
    runs = {}
    for name, args in CONV_CHAINS.items():
        b, ranges, _, _ = _conv_chain(*args)
        fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"writer_{name}")
        runs[name] = (fixed.with_name("m_float.sim"), fixed, ranges)
    return runs


PRE = ("import cv2, numpy as np\n"
       "def image_preprocess(img_path, norm=True):\n"
       "    img = cv2.resize(cv2.imread(img_path)[:, :, ::-1], ({w}, {h})).astype(np.float32)\n"
       "    return ((img - 127.5) / 127.5)[None] if norm else np.round(img).astype(np.uint8)[None]\n")


def _vendor_l1_runs(tmp_path_factory, prefix: str, photos: slice):
    """name -> (vendor float.sim, vendor L1 fixed.sim on ``photos`` of the calibration images, its log
    folder), each made once."""
    _skip_without_vendor()
    from conftest import MODELS_DIR, require_shared
    from images import calibration_images
    from vendor_oracle import ini_text
    require_shared()
    o = vo.oracle()
    made = {}

    def get(name):
        if name not in made:
            d = tmp_path_factory.mktemp(f"{prefix}_{name}")
            (d / "imgs").mkdir()
            for p in calibration_images()[photos]:
                (d / "imgs" / p.name).write_bytes(p.read_bytes())
            tflite = MODELS_DIR / f"{name}.tflite"
            g = load_model(tflite).main
            _, h, w, _ = g.tensors[g.inputs[0]].shape
            (d / "m.ini").write_text(ini_text([g.tensors[i].name for i in g.inputs],
                                              [g.tensors[i].name for i in g.outputs], 127.5, 127.5))
            (d / "pre.py").write_text(PRE.format(w=w, h=h))
            o.convert_tflite(str(tflite), str(d / "m.ini"), str(d / "m_float.sim"))
            o.calibrate_l1(str(d / "m_float.sim"), str(d / "imgs"), str(d / "pre.py"), str(d / "m.ini"),
                           str(d / "m_fixed.sim"), workdir=str(d / "wd"))
            made[name] = (d / "m_float.sim", d / "m_fixed.sim", d / "wd" / "log")
        return made[name]
    return get


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory):
    """name -> (vendor float.sim, vendor L1 fixed.sim on 2 photos, the calibrator's log folder)."""
    return _vendor_l1_runs(tmp_path_factory, "writer", slice(0, 2))


def _log_ranges(log) -> dict:
    """The vendor calibrator's per-tensor ranges (log/tensor_min_max.txt)."""
    out = {}
    for line in (log / "tensor_min_max.txt").read_text().splitlines():
        m = re.match(r"Name:(.*), min: (\S+), max: (\S+);", line)
        if m:
            out[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return out


def _log_channel_ranges(log) -> dict:
    """The vendor calibrator's per-channel ranges (log/tensor_chn.txt)."""
    out = {}
    txt = (log / "tensor_chn.txt").read_text()
    for m in re.finditer(r"Name:(\S+), (\d+)\s*min_chn: ([^m]*)max_chn: ([^;]*);", txt):
        out[m.group(1)] = tuple(np.array([float(v) for v in g.strip(" ,\n").split(",")])
                                for g in (m.group(3), m.group(4)))
    return out


def _our_channel_ranges(float_sim, x) -> dict:
    """Per-channel min/max of every activation of our float interpreter on one input."""
    model = load_model(float_sim)
    values = Interpreter(model).run([x], keep="all")
    return {model.main.tensors[i].name: (v.reshape(-1, v.shape[-1]).min(0), v.reshape(-1, v.shape[-1]).max(0))
            for i, v in values.items() if v.ndim == 4 and i < len(model.main.tensors)}


# ---------------------------------------------------------------- options slots (schema-less)
def _options_scalars(path, ops) -> dict[int, dict[int, int]]:
    """Operator index (of ``ops``) -> {slot: int32 value} of its builtin options (the slots tests read).

    Only conv options are read: other vendor options offsets may land on a vtable (PAD)."""
    b = open(path, "rb").read()

    def u32(p):
        return struct.unpack_from("<I", b, p)[0]

    def fields(t):
        v = t - struct.unpack_from("<i", b, t)[0]
        n = struct.unpack_from("<H", b, v)[0]
        return [struct.unpack_from("<H", b, v + 4 + 2 * i)[0] for i in range((n - 4) // 2)]

    def vec(p):
        q = p + u32(p)
        return [q + 4 + 4 * i + u32(q + 4 + 4 * i) for i in range(u32(q))]

    root = u32(0)
    sg = vec(root + fields(root)[2])[0]
    out = {}
    for j, o in enumerate(vec(sg + fields(sg)[3])):
        if j not in ops:
            continue
        f = fields(o)
        t = o + f[4] + u32(o + f[4]) if len(f) > 4 and f[4] else None
        out[j] = {} if t is None else {s: struct.unpack_from("<i", b, t + off)[0]
                                       for s, off in enumerate(fields(t)) if off and s in (10, 12, 35, 36, 37, 38)}
    return out


# ---------------------------------------------------------------- comparisons
def _quant_tuple(t):
    q = t.quantization
    first = lambda v: v[0] if v else None  # noqa: E731
    return (t.dtype, first(q.min), first(q.max), first(q.scale), first(q.zero_point))


def _assert_plan_equals(float_sim, fixed, ranges):
    fl, fx = load_model(float_sim), load_model(fixed)
    plan = qp.plan(fl, ranges)
    by_name = {t.name: t for t in fx.main.tensors}
    compared = 0
    for i, t in enumerate(fl.main.tensors):
        if t.name not in by_name:  # fused away by the vendor (a conv's output before its RELU)
            continue
        e = plan[i]
        assert isinstance(e.dtype, str)
        assert (e.dtype, e.min, e.max, e.scale, e.zero_point) == _quant_tuple(by_name[t.name]), t.name
        compared += 1
    assert compared >= len(fx.main.tensors) - 1
    return compared


def _conv_results(float_sim, fixed, channel_ranges, skip=frozenset()):
    """Per conv: (output name, weights equal, bias equal, acc range equal, shifts equal)."""
    fl, fx = load_model(float_sim), load_model(fixed)
    sg, sx = fl.main, fx.main
    fixed_ops = {sx.tensors[o.outputs[0]].name: (j, o) for j, o in enumerate(sx.operators)}
    opts = _options_scalars(fixed, {j for j, o in enumerate(sx.operators)
                                    if fx.operator_codes[o.opcode_index].name in ("CONV_2D", "DEPTHWISE_CONV_2D")})
    floats = {t.name: t for t in sg.tensors}
    results = []
    for op in sg.operators:
        kind = fl.operator_codes[op.opcode_index].name
        out = sg.tensors[op.outputs[0]].name
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D") or out not in fixed_ops:
            continue
        j, opx = fixed_ops[out]
        ti, tw, tb, to = (sx.tensors[i] for i in (*opx.inputs[:3], opx.outputs[0]))
        assert tw.dtype == "INT8" and tb.dtype == "INT16" and tb.shape[0] == 2
        w = np.frombuffer(fl.buffers[floats[tw.name].buffer].data, np.float32).reshape(tw.shape)
        bias = np.frombuffer(fl.buffers[floats[tb.name].buffer].data, np.float32).reshape(2, -1)[0]
        s_in, zp_in = ti.quantization.scale[0], ti.quantization.zero_point[0]
        s_w, s_out, zp_out = tw.quantization.scale[0], to.quantization.scale[0], to.quantization.zero_point[0]
        codes = pack.weight_codes(w, s_w)
        depthwise = kind == "DEPTHWISE_CONV_2D"
        raw = pack.pack_depthwise_weights(codes) if depthwise else \
            pack.pack_conv_weights(codes, opts[j].get(10, 16), opts[j].get(12, 16))
        vendor_w = fx.buffers[tw.buffer].data
        w_ok = vendor_w[:len(raw)] == raw and not any(vendor_w[len(raw):])
        w_sum = pack.weight_sums(codes, depthwise)
        lo, hi = channel_ranges[out]
        acc = pack.accumulator_range(s_in, zp_in, s_w, w_sum, bias, lo, hi)
        vendor_acc = (to.quantization.extra["sgs_acc_max"][0], to.quantization.extra["sgs_acc_min"][0])
        prm = pack.conv_parameters(s_in, zp_in, w_sum, s_w, bias, s_out, zp_out, to.dtype == "UINT8", *acc)
        braw = pack.pack_bias(prm["row0"], prm["multipliers"])
        vendor_b = fx.buffers[tb.buffer].data
        b_ok = vendor_b[:len(braw)] == braw and not any(vendor_b[len(braw):])
        k_slot, nk_slot = (36, 38) if depthwise else (35, 37)
        shifts_ok = (opts[j].get(k_slot, 0), opts[j].get(nk_slot, 0)) == (prm["bias_shift"], prm["total_shift"])
        results.append((out, w_ok, b_ok, acc == vendor_acc, shifts_ok))
    assert results
    return results


# ---------------------------------------------------------------- oracle tier
@pytest.mark.parametrize("name", sorted(CONV_CHAINS))
def test_quantization_plan_equals_vendor_l1_for_the_same_ranges(chain_runs, name):
    """The ranges the vendor used (its log: the chosen ones merged with what it measured on the
    all-zero calibration input; our float interpreter measures the same within float32 rounding)."""
    float_sim, fixed, chosen = chain_runs[name]
    used = _log_ranges(fixed.parent / "wd" / "log")
    shape = load_model(float_sim).main.tensors[0].shape
    ours = _our_channel_ranges(float_sim, np.zeros(shape, np.float32))
    for k, (lo, hi) in chosen.items():
        want_lo = min(lo, float(ours[k][0].min())) if k in ours else lo
        want_hi = max(hi, float(ours[k][1].max())) if k in ours else hi
        assert used[k] == pytest.approx((want_lo, want_hi), rel=1e-5, abs=1e-6), k
    assert _assert_plan_equals(float_sim, fixed, used) == 10


@pytest.mark.parametrize("name", sorted(CONV_CHAINS))
def test_conv_weights_bias_and_shifts_equal_vendor_l1(chain_runs, name):
    """Per-channel ranges as the vendor measured them (its log); ours agree within float32 rounding."""
    float_sim, fixed, _ = chain_runs[name]
    shape = load_model(float_sim).main.tensors[0].shape
    ours = _our_channel_ranges(float_sim, np.zeros(shape, np.float32))
    vendor_log = _log_channel_ranges(fixed.parent / "wd" / "log")
    for k in vendor_log:
        for a, v in zip(ours[k], vendor_log[k]):
            np.testing.assert_allclose(a, v, rtol=1e-5, atol=2e-6)
    results = _conv_results(float_sim, fixed, vendor_log)
    assert len(results) == 3
    for out, *oks in results:
        assert all(oks), (out, oks)


@pytest.mark.slow
@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_model_tables_equal_vendor_l1(shared_runs, name):
    """The vendor's own statistics (its log) as the ranges: every tensor's quantization and every
    int8 conv's buffers, accumulator range and shifts equal the vendor's L1 file."""
    float_sim, fixed, log = shared_runs(name)
    assert _assert_plan_equals(float_sim, fixed, _log_ranges(log)) > 150
    results = _conv_results(float_sim, fixed, _log_channel_ranges(log))
    assert len(results) > 20
    for out, w_ok, b_ok, acc_ok, shifts_ok in results:
        assert b_ok and acc_ok and shifts_ok, out
        assert w_ok == ((name, out) not in WEIGHT_LAYOUT_NOT_ESTABLISHED), out


# ---------------------------------------------------------------- no oracle needed
def test_vendor_refused_op_is_refused_up_front_naming_it():
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 3))
    b.output(b.op("HARD_SWISH", [x], name="hs"))
    with pytest.raises(UnsupportedOpError, match=r"op #0 HARD_SWISH \(output 'hs'\).*vendor"):
        qp.check_supported(b.build())


def test_plan_needs_a_vendor_float_model():
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 3))
    b.output(b.op("RELU", [x], name="r"))
    with pytest.raises(ModelError, match="sgs_float"):
        qp.plan(b.build(), {"x": (-1, 1), "r": (0, 1)})


@given(lo=st.floats(-1e4, 0.0, allow_nan=False), width=st.floats(1e-2, 1e4))
def test_uint8_activation_quant_represents_zero_and_the_range(lo, width):
    """r = scale * (q - zp): q = zp is within half a step of 0 and 0..255 spans [min, max]."""
    hi = lo + width
    q = qp.activation_quant("UINT8", lo, hi)
    assert q.dtype == "UINT8" and isinstance(q.zero_point, int)
    assert 0 <= q.zero_point <= 255
    lo6, hi6 = float(np.float32(float(f"{lo:.6f}"))), float(np.float32(float(f"{hi:.6f}")))
    assert (q.min, q.max) == (lo6, hi6)
    if hi6 > lo6:
        assert abs(q.scale - (hi6 - lo6) / 255) <= 1e-6 * q.scale
        assert abs(lo6 + q.zero_point * q.scale) <= q.scale * 0.5 * (1 + 1e-5) or q.zero_point in (0, 255)


@given(st.lists(st.integers(-127, 127), min_size=1, max_size=600), st.integers(1, 70), st.sampled_from([1, 3]))
def test_packed_conv_weights_read_back_with_the_engine_layout(values, o, k):
    """pack_conv_weights is the inverse of layout.unpack_conv_weights (the engine's reader)."""
    i = max(1, len(values) // (o * k * k))
    w = np.resize(np.asarray(values, np.int64), (o, k, k, i))
    for ti, to in ((16, 16), (min(i, 16), min(o, 64)), (32, 64)):
        raw = pack.pack_conv_weights(w, ti, to)
        assert len(raw) % 32 == 0
        back = layout.unpack_conv_weights(raw, w.shape, np.int8, ti, to)
        assert back.shape == w.shape and back.dtype == np.int8
        np.testing.assert_array_equal(back, w)


def test_bias_buffer_reads_back_with_the_engine_layout():
    row0, mult = np.arange(-5, 5), np.full(10, 16385)
    got0, got1 = layout.unpack_bias(pack.pack_bias(row0, mult), 10)
    assert got0.shape == (10,) and got1.shape == (10,)
    np.testing.assert_array_equal(got0, row0)
    np.testing.assert_array_equal(got1, mult)


def test_bias_shift_is_the_smallest_keeping_acc_and_bias_below_8192_steps():
    assert pack.bias_shift(8191, -100, [0.0]) == 0
    assert pack.bias_shift(8192, -100, [0.0]) == 1
    assert pack.bias_shift(100, -100, [37429.0]) == 3   # the bias decides (37429 / 8 < 8192)
    assert pack.bias_shift(75685, -44284, [52158.0]) == 4


# ---------------------------------------------------------------- the writer (template + our ranges)
#: the chains the writer is checked on (the vendor's L1 of each, at two range sets, is ~1 s)
WRITER_CHAINS = ["3x3_same_16to24", "5x5_valid_stride2", "3x3_32to40", "1x1_64to72", "3x3_17to33"]


def _scaled(ranges, lo_factor, hi_factor):
    return {k: (lo * lo_factor, hi * hi_factor) for k, (lo, hi) in ranges.items()}


@pytest.mark.parametrize("name", WRITER_CHAINS)
@pytest.mark.parametrize("factors", [(1.7, 1.3), (0.6, 2.1)])
def test_writer_gives_the_vendor_l1_file_byte_for_byte_for_its_ranges(name, factors):
    """Template: the vendor's L1 file for one range set; written for another range set (the vendor's
    statistics of that run): byte-identical to the vendor's own L1 file for it."""
    from calibrator_custom.vendor_fixed import writer
    _skip_without_vendor()
    b, chosen, _, _ = _conv_chain(*CONV_CHAINS[name])
    template = vo.make_fixed(b, chosen, vo.ini_text(["x"], ["c3"]), f"writer_{name}")
    target = vo.make_fixed(b, _scaled(chosen, *factors), vo.ini_text(["x"], ["c3"]), f"writer_{name}_{factors[0]}")
    log = target.parent / "wd" / "log"
    got = writer.write(template.read_bytes(), load_model(target.with_name("m_float.sim")), _log_ranges(log),
                       _log_channel_ranges(log), (127.5, 127.5, 127.5), 127.5)
    want = target.read_bytes()
    assert template.read_bytes() != want
    assert len(got) == len(want)
    diff = np.nonzero(np.frombuffer(got, np.uint8) != np.frombuffer(want, np.uint8))[0]
    shifts_t, shifts_w = (_shift_slots(f) for f in (template, target))
    if shifts_t == shifts_w:
        assert diff.size == 0, f"{diff.size} bytes differ, first at {diff[:8].tolist()}"
        return
    # a shift became 0: the vendor omits the field, we write the 0 (same value, other layout)
    assert any("absent" in v for v in shifts_w), (shifts_t, shifts_w)
    path = target.parent / "ours_fixed.sim"
    path.write_bytes(got)
    o = vo.oracle()
    o.compile_offline(str(path), str(target.parent / "ours_offline.sim"))
    x = np.random.default_rng(0).integers(0, 256, load_model(target).main.tensors[0].shape).astype(np.uint8)
    a, c = o.fixed_sim(str(path), x), o.fixed_sim(str(target), x)
    for k in c:
        if not k.startswith("_"):
            np.testing.assert_array_equal(a[k], c[k])


def _shift_slots(path) -> list:
    """Per conv: the presence of the options' shift slots (35, 37)."""
    m = load_model(path)
    ops = {j for j, o in enumerate(m.main.operators) if m.operator_codes[o.opcode_index].name == "CONV_2D"}
    return [tuple("present" if s in d else "absent" for s in (35, 37))
            for _, d in sorted(_options_scalars(path, ops).items())]


def _our_statistics(float_sim, photos):
    """Per-tensor and per-channel (last axis) min/max of every activation, our float interpreter."""
    from images import load_rgb
    model = load_model(float_sim)
    interp = Interpreter(model)
    _, h, w, _ = model.main.tensors[model.main.inputs[0]].shape
    ranges, channels = {}, {}
    for p in photos:
        x = ((load_rgb(p, h, w).astype(np.float32) - 127.5) / 127.5)[None]
        for i, v in interp.run([x], keep="all").items():
            if i >= len(model.main.tensors) or i in interp.constants:
                continue  # a tensor the TFLite-semantics lowering added, or a constant
            t = model.main.tensors[i]
            flat = v.reshape(-1, v.shape[-1]).astype(np.float64)
            lo, hi = ranges.get(t.name, (np.inf, -np.inf))
            ranges[t.name] = (min(lo, float(flat.min())), max(hi, float(flat.max())))
            clo, chi = channels.get(t.name, (np.full(flat.shape[1], np.inf), np.full(flat.shape[1], -np.inf)))
            channels[t.name] = (np.minimum(clo, flat.min(0)), np.maximum(chi, flat.max(0)))
    return ranges, channels


@pytest.mark.slow
@pytest.mark.parametrize("name", WRITER_CHAINS)
def test_written_model_compiles_and_the_vendor_simulator_computes_what_ours_does(name, tmp_path):
    """Our statistics (2 photos) -> our vendor fixed.sim: the vendor's compiler makes an offline model
    of it, and the vendor's fixed simulator gives our fixed_simulator's codes on 10 other photos."""
    import calibrator_custom
    from calibrator_custom.vendor_fixed import writer
    from conftest import require_shared
    from images import calibration_images, evaluation_images, load_rgb
    _skip_without_vendor()
    require_shared()
    b, chosen, _, _ = _conv_chain(*CONV_CHAINS[name])
    template = vo.make_fixed(b, chosen, vo.ini_text(["x"], ["c3"]), f"writer_{name}")
    float_sim = template.with_name("m_float.sim")
    ranges, channels = _our_statistics(float_sim, calibration_images()[:2])
    ours = tmp_path / "ours_fixed.sim"
    ours.write_bytes(writer.write(template.read_bytes(), load_model(float_sim), ranges, channels,
                                  (127.5, 127.5, 127.5), 127.5))
    assert load_model(ours).dialect == "sgs_fixed"
    sim = calibrator_custom.fixed_simulator(str(ours))
    d = sim.get_input_details()[0]
    _, h, w, _ = (int(v) for v in d["shape"])
    photos = evaluation_images()[:10]
    assert len(photos) == 10
    xs = [load_rgb(photo, h, w)[None].astype(np.uint8) for photo in photos]
    with vo.VendorRuns(ours, xs, offline=tmp_path / "ours_offline.sim") as runs:
        assert open(runs.offline.result(), "rb").read(4) == b"SGSI"
        for photo, x, (ref, off) in zip(photos, xs, runs):
            sim.set_input(0, x)
            sim.invoke()
            assert vo.assert_outputs_code_for_code(sim, ref, photo.name) > 0
            od = sim.get_output_details()[0]
            scale = od["quantization"][0]
            np.testing.assert_array_equal(np.round(off[od["name"]] / scale), np.round(ref[od["name"]] / scale))


def test_writer_refuses_an_op_whose_vendor_fields_are_not_established():
    from calibrator_custom.vendor_fixed import writer
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 3))
    b.output(b.op("LOGISTIC", [x], name="a"))
    with pytest.raises(UnsupportedOpError, match=r"op #0 LOGISTIC \(output 'a'\).*not established"):
        writer.check_writable(b.build())


def test_input_transform_reproduces_the_documented_vendor_cases():
    """docs/vendor_fixed_point.md: mean 123.68/116.78/103.94, std 58.8, range [-2.2, 2.7] -> B = 278, 267, 261."""
    from calibrator_custom.vendor_fixed import writer
    scale = float(np.float32(4.9 / 255))
    t = writer.input_transform(scale, 114, (123.68, 116.78, 103.94), 58.8)
    assert t.shape == (12,)
    assert t[[0, 4, 8]].tolist() == [906] * 3 and t[9:].tolist() == [278, 267, 261]
    assert writer.input_transform(2 / 255, 128, (127.5,) * 3, 127.5).tolist()[9:] == [257] * 3


def test_write_from_our_calibration_statistics_equals_write_from_their_ranges():
    """The adapter for our statistics objects (calib.stats.TensorStats) gives the same file."""
    from calibrator_custom.calib.stats import TensorStats
    from calibrator_custom.vendor_fixed import writer
    _skip_without_vendor()
    b, chosen, _, _ = _conv_chain(*CONV_CHAINS["3x3_same_16to24"])
    template = vo.make_fixed(b, chosen, vo.ini_text(["x"], ["c3"]), "writer_3x3_same_16to24")
    float_sim = template.with_name("m_float.sim")
    model = load_model(float_sim)
    x = np.random.default_rng(3).uniform(-1, 1, model.main.tensors[0].shape).astype(np.float32)
    values = Interpreter(model).run([x], keep="all")
    stats = {model.main.tensors[i].name: TensorStats.from_array(model.main.tensors[i].name, i, v)
             for i, v in values.items() if not model.buffers[model.main.tensors[i].buffer].data}
    ranges = {k: (s.min, s.max) for k, s in stats.items()}
    channels = {k: (s.channel_min, s.channel_max) for k, s in stats.items()}
    mean, std = (127.5,) * 3, 127.5
    a = writer.write_from_stats(template.read_bytes(), model, stats, mean, std)
    assert isinstance(a, bytes) and len(a) == len(template.read_bytes())
    assert a == writer.write(template.read_bytes(), model, ranges, channels, mean, std)
    assert a != template.read_bytes()


@pytest.fixture(scope="session")
def shared_second_runs(tmp_path_factory):
    """name -> (float.sim, fixed.sim, log) of a second vendor L1 calibration (photos 2 and 3)."""
    return _vendor_l1_runs(tmp_path_factory, "writer2", slice(2, 4))


@pytest.mark.slow
@pytest.mark.parametrize("name", SHARED_MODELS)
def test_writer_gives_the_vendor_l1_file_of_a_shared_model_byte_for_byte(shared_runs, shared_second_runs, name):
    """Template: the vendor's L1 on photos 0-1; written for the vendor's statistics on photos 2-3:
    the vendor's own L1 file of photos 2-3, byte for byte."""
    from calibrator_custom.vendor_fixed import writer
    _, template, _ = shared_runs(name)
    float_sim, target, log = shared_second_runs(name)
    got = writer.write(template.read_bytes(), load_model(float_sim), _log_ranges(log), _log_channel_ranges(log),
                       (127.5, 127.5, 127.5), 127.5)
    want = target.read_bytes()
    assert template.read_bytes() != want
    assert len(got) == len(want)
    diff = np.nonzero(np.frombuffer(got, np.uint8) != np.frombuffer(want, np.uint8))[0]
    assert diff.size == 0, f"{diff.size} bytes differ, first at {diff[:8].tolist()}"


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["per_tensor", "per_channel"])
@pytest.mark.parametrize("name", SHARED_MODELS)
def test_written_shared_model_compiles_and_the_vendor_simulators_compute_what_ours_does(shared_runs, name, weights,
                                                                                        tmp_path):
    """Our statistics (our float interpreter on 2 photos) -> our vendor fixed.sim (the vendor's per-tensor
    weight codes, or per-channel codes and multipliers for our L2 weight scales): the vendor's compiler
    makes an offline model, and the vendor's fixed and offline simulators give our fixed_simulator's
    codes on 10 other photos."""
    import calibrator_custom
    from calibrator_custom.vendor_fixed import writer
    from images import calibration_images, evaluation_images, load_rgb
    float_sim, template, _ = shared_runs(name)
    ranges, channels = _our_statistics(float_sim, calibration_images()[4:6])
    ours = tmp_path / f"{name}_fixed.sim"
    scales = _l2_weight_scales(float_sim) if weights == "per_channel" else None
    ours.write_bytes(writer.write(template.read_bytes(), load_model(float_sim), ranges, channels,
                                  (127.5, 127.5, 127.5), 127.5, scales))
    assert ours.read_bytes() != template.read_bytes()
    if scales:
        assert _per_channel_convs(ours) > 20
    sim = calibrator_custom.fixed_simulator(str(ours))
    _, h, w, _ = (int(v) for v in sim.get_input_details()[0]["shape"])
    photos = evaluation_images()[:10]
    assert len(photos) == 10
    xs = [load_rgb(photo, h, w)[None].astype(np.uint8) for photo in photos]
    compared = 0
    with vo.VendorRuns(ours, xs, offline=tmp_path / f"{name}_offline.sim") as runs:
        assert open(runs.offline.result(), "rb").read(4) == b"SGSI"
        for photo, x, (ref, off) in zip(photos, xs, runs):
            sim.set_input(0, x)
            sim.invoke()
            compared += vo.assert_outputs_code_for_code(sim, ref, photo.name)
            for od in sim.get_output_details():
                scale = od["quantization"][0]
                np.testing.assert_array_equal(np.round(off[od["name"]] / scale), np.round(ref[od["name"]] / scale))
    assert compared > 0


@pytest.mark.slow
def test_convert_writes_the_vendor_dialect_with_a_template(shared_runs, tmp_path):
    """pipeline.convert(..., vendor_template=) writes the vendor's dialect with the level's ranges: at L1
    the writer's output from the statistics' min/max; at L3 (histogram-fitted ranges) another file;
    the vendor's compiler takes both and the vendor's simulator agrees with ours on a photo."""
    import calibrator_custom
    from calibrator_custom.calib.stats import StatsSet, TensorStats
    from calibrator_custom.config import load_input_config
    from calibrator_custom.pipeline.convert import convert
    from calibrator_custom.vendor_fixed import writer
    from images import calibration_images, evaluation_images, load_rgb
    float_sim, template, _ = shared_runs("iris_landmark")
    model = load_model(float_sim)
    interp = Interpreter(model)
    _, h, w, _ = model.main.tensors[model.main.inputs[0]].shape
    tensors = {}
    for p in calibration_images()[4:6]:
        x = ((load_rgb(p, h, w).astype(np.float32) - 127.5) / 127.5)[None]
        for i, v in interp.run([x], keep="all").items():
            if i >= len(model.main.tensors) or i in interp.constants:
                continue
            name = model.main.tensors[i].name
            s = TensorStats.from_array(name, i, v)
            tensors[name] = tensors[name].merge(s) if name in tensors else s
    stats = StatsSet(tensors=tensors)
    ini = float_sim.parent / "m.ini"
    config = load_input_config(ini, load_model(float_sim))
    files = {}
    for level in ("L1", "L3"):
        out = tmp_path / f"iris_{level}_fixed.sim"
        convert(float_sim, ini, stats, quant_level=level, output_path=out, vendor_template=template)
        assert load_model(out).dialect == "sgs_fixed"
        vo.oracle().compile_offline(str(out), str(tmp_path / f"iris_{level}_offline.sim"))
        files[level] = out.read_bytes()
        x = load_rgb(evaluation_images()[0], h, w)[None].astype(np.uint8)
        ref = vo.oracle().fixed_sim(str(out), x)
        sim = calibrator_custom.fixed_simulator(str(out))
        sim.set_input(0, x)
        sim.invoke()
        for k, od in enumerate(sim.get_output_details()):
            r = ref[od["name"]]
            y = sim.get_output(k)[tuple(slice(0, n) for n in r.shape)]
            np.testing.assert_array_equal(np.round(y / od["quantization"][0]), np.round(r / od["quantization"][0]))
    assert files["L1"] == writer.write_vendor_fixed(float_sim, template, stats, config)
    assert files["L3"] != files["L1"]


# ---------------------------------------------------------------- per-channel weight scales
def _l2_weight_scales(float_sim) -> dict:
    """Our L2 weight scales (per output channel, the clipping search, float32 as our plan stores them)
    of every conv and depthwise conv of a vendor float.sim (a path or a loaded model; the depthwise-as-conv
    rewrites' diagonal-block weights on output channel axis 0)."""
    from calibrator_custom.quant.weights import search_clip
    model = float_sim if hasattr(float_sim, "main") else load_model(float_sim)
    out = {}
    for op in model.main.operators:
        kind = model.op_name(op)
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            t = model.main.tensors[op.inputs[1]]
            clip = search_clip(model.tensor_data(t), 3 if kind == "DEPTHWISE_CONV_2D" else 0, 8, "per_channel")
            out[t.name] = tuple(float(np.float32(v / 127)) for v in clip)
    return out


def _per_channel_convs(path) -> int:
    """How many convs of a fixed.sim hold more than one distinct multiplier in their bias row 1."""
    model = load_model(path)
    n = 0
    for op in model.main.operators:
        if model.op_name(op) in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            tb, to = model.main.tensors[op.inputs[2]], model.main.tensors[op.outputs[0]]
            _, mult = layout.unpack_bias(model.buffers[tb.buffer].data, int(to.shape[-1]))
            n += len(set(mult.tolist())) > 1
    return n


def test_per_channel_multipliers_share_the_largest_ratios_shift():
    """N = 14 - floor(log2 max m_c), M_c = round(m_c 2**N); one shift less where max M would be 2**15."""
    mult, n = pack.per_channel_multipliers([0.5, 0.25, 0.001])
    assert n == 15 and mult.tolist() == [16384, 8192, 33]   # 0.001 * 2**15 = 32.77
    mult, n = pack.per_channel_multipliers([0.4999995, 0.1])
    assert n == 15 and mult.tolist() == [16384, 3277]       # at N = 16: round(32767.97) = 32768
    mult, _ = pack.per_channel_multipliers([1.0, 1e-9])
    assert mult.tolist() == [16384, 1]                      # never 0


def test_per_channel_scales_are_raised_only_where_the_bias_shift_would_grow_too_far():
    """Hand-computed: channel 1's bias 50 at scale 1e-4 is 500000 accumulator steps (k 6); at the largest
    scale 0.01 all channels fit k 0; allowed k 0 + 1, channel 1's scale rises to 50 / (16384 * 0.97)."""
    w = np.array([1.27, 0.0127]).reshape(2, 1, 1, 1)
    args = (1.0, 0, np.array([0.0, 50.0]), 1.0, 0, False, np.zeros(2), np.ones(2))
    s = pack.fit_per_channel_scales(w, 0, [0.01, 0.0001], *args, extra_shift=1)
    assert s[0] == 0.01
    assert s[1] == pytest.approx(50 / (16384 * 0.97), rel=1e-6)
    codes = pack.per_channel_weight_codes(w, s, 0)
    prm = pack.per_channel_conv_parameters(1.0, 0, codes.reshape(2, -1).sum(1), s, [0.0, 50.0], 1.0, 0, False,
                                           np.zeros(2), np.ones(2))
    assert prm["bias_shift"] == 1
    np.testing.assert_array_equal(pack.fit_per_channel_scales(w, 0, [0.01, 0.0001], *args, extra_shift=6),
                                  [0.01, 0.0001])


def test_per_channel_weight_codes_round_half_away_per_channel():
    w = np.array([[0.5, -0.25], [3.0, -1.5]]).reshape(2, 1, 1, 2)
    codes = pack.per_channel_weight_codes(w, [0.5 / 127, 1.0], 0)
    assert codes.reshape(2, 2).tolist() == [[127, -64], [3, -2]]   # -63.5 -> -64, -1.5 -> -2
    assert pack.per_channel_weight_codes(w.reshape(1, 1, 2, 2), [1.0, 0.25], 3).reshape(2, 2).tolist() == \
        [[1, -1], [3, -6]]  # 0.5 -> 1


def test_slot_tiling_reads_the_program():
    """Slot 10 / 12 (absent: 16); an output tile below 16 channels' multiple is O itself: rounded up."""
    from types import SimpleNamespace
    from calibrator_custom.vendor_fixed.engine import slot_tiling
    def opts(ti, to, program=True):
        return SimpleNamespace(sgs_in_channels_per_tile=ti, sgs_out_channels_per_tile=to,
                               sgs_in_tile_width=8 if program else 0)
    assert slot_tiling(opts(None, None)) == (16, 16)
    assert slot_tiling(opts(32, 42)) == (48, 32)
    assert slot_tiling(opts(64, 64)) == (64, 64)
    assert slot_tiling(opts(None, None, program=False)) is None


@pytest.mark.parametrize("name", WRITER_CHAINS)
def test_per_channel_written_chain_compiles_and_the_vendor_simulators_compute_what_ours_does(name, tmp_path):
    """Our statistics and our L2 weight scales -> per-channel weight codes and multipliers in the vendor's
    dialect: every conv holds per-channel multipliers, the vendor's compiler takes the file, and the
    vendor's fixed simulator gives our fixed_simulator's codes (the offline simulator the fixed
    simulator's) on random inputs."""
    import calibrator_custom
    from calibrator_custom.vendor_fixed import writer
    _skip_without_vendor()
    b, chosen, _, _ = _conv_chain(*CONV_CHAINS[name])
    template = vo.make_fixed(b, chosen, vo.ini_text(["x"], ["c3"]), f"writer_{name}")
    float_sim = template.with_name("m_float.sim")
    model = load_model(float_sim)
    rng = np.random.default_rng(5)
    shape = model.main.tensors[model.main.inputs[0]].shape
    x_cal = rng.uniform(-1, 1, (2, *shape[1:])).astype(np.float32)
    channels = {}
    for xi in x_cal:
        for k, (lo, hi) in _our_channel_ranges(float_sim, xi[None]).items():
            plo, phi = channels.get(k, (lo, hi))
            channels[k] = (np.minimum(plo, lo), np.maximum(phi, hi))
    ranges = {k: (float(lo.min()), float(hi.max())) for k, (lo, hi) in channels.items()}
    ours = tmp_path / "per_channel_fixed.sim"
    ours.write_bytes(writer.write(template.read_bytes(), model, ranges, channels, (127.5,) * 3, 127.5,
                                  _l2_weight_scales(float_sim)))
    assert _per_channel_convs(ours) == 3 and _per_channel_convs(template) == 0
    o = vo.oracle()
    offline = o.compile_offline(str(ours), str(tmp_path / "per_channel_offline.sim"))
    sim = calibrator_custom.fixed_simulator(str(ours))
    for trial in range(3):
        x = rng.integers(0, 256, shape).astype(np.uint8)
        ref = o.fixed_sim(str(ours), x)
        sim.set_input(0, x)
        sim.invoke()
        assert vo.assert_outputs_code_for_code(sim, ref, f"{name}, input {trial}") > 0
        scale = sim.get_output_details()[0]["quantization"][0]
        np.testing.assert_array_equal(np.round(o.offline_sim(offline, x)["c3"] / scale), np.round(ref["c3"] / scale))
