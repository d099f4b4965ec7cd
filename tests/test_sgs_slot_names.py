"""The named vendor slots hold what their names say: each is compared with a quantity computed here from
the graph (shapes, options, scales, ranges, the float weights of the vendor's own float.sim), never with
our stored output. Vendor files are made in the session (convert_tool + L1 calibrator; none is
committed); docs/model_format.md, "Slot names", has the evidence table."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from calibrator_custom.errors import ModelError
from calibrator_custom.model import sgs_dialect, sgs_slots
from calibrator_custom.model.graph import load_model
from conftest import require_shared
from images import calibration_images
from vendor_fixed_oracle import vendor_missing_reason

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import sgs_slot_corpus as corpus  # noqa: E402

#: chains (x -> 1x1 conv -> op -> 1x1 conv): input tiles below Cin, output tiles below Cout, several
#: spatial tiles (96 x 96), non-square inputs, strides, VALID / SAME
CHAINS = {
    "conv_tiles": dict(seed=1, kind="conv", side=96, width=96, k=3, cin=32, cout=64, stride=1, padding="SAME"),
    "conv_wide_out": dict(seed=2, kind="conv", side=12, width=12, k=3, cin=24, cout=80, stride=1, padding="VALID"),
    "conv_rect_s2": dict(seed=3, kind="conv", side=33, width=14, k=5, cin=40, cout=48, stride=2, padding="SAME"),
    "dw_tiles": dict(seed=4, kind="depthwise", side=96, width=96, k=3, cin=64, cout=4, stride=1, padding="SAME"),
    "dw_rect_s2": dict(seed=5, kind="depthwise", side=20, width=12, k=3, cin=40, cout=8, stride=2, padding="VALID"),
    "conv_then_pool": dict(seed=6, kind="MAX_POOL_2D", side=12, width=20, k=2, cin=8, cout=8, stride=2,
                           padding="VALID"),
}
SINGLE_OPS = ("conv_dilated", "add", "sub", "mul", "relu", "prelu", "leaky_relu", "logistic", "tanh", "softmax")


@pytest.fixture(scope="module")
def fixed_files(tmp_path_factory):
    """{name: (fixed.sim, float.sim)} made by the vendor's tools in this session."""
    require_shared()
    reason = vendor_missing_reason()
    if reason:
        pytest.skip(reason)
    from vendor_singleops import CASES

    out = tmp_path_factory.mktemp("slot_names")
    images = calibration_images()[:2]
    jobs = {name: corpus.chain(**spec) for name, spec in CHAINS.items()}
    jobs.update({f"op_{c}": CASES[c]() for c in SINGLE_OPS})
    files = {}
    for name, builder in jobs.items():
        assert corpus.make(out, name, builder, images), f"{name}: refused by the vendor's tools"
        files[name] = (out / f"{name}_fixed.sim", out / f"{name}_float.sim")
    return files


def _ops(files, *names):
    for fixed, fl in files.values():
        model = load_model(fixed)
        for op in model.main.operators:
            if model.op_name(op) in names:
                yield model, op, load_model(fl)


def _ceil16(x: int) -> int:
    return -(-x // 16) * 16


def _window(model, op):
    g = model.main
    _, h, w, cin = (int(d) for d in g.tensors[op.inputs[0]].shape)
    _, oh, ow, cout = (int(d) for d in g.tensors[op.outputs[0]].shape)
    _, kh, kw, _ = (int(d) for d in g.tensors[op.inputs[1]].shape)
    o = op.options
    khe = (kh - 1) * (o.dilation_h_factor or 1) + 1
    kwe = (kw - 1) * (o.dilation_w_factor or 1) + 1
    return dict(H=h, W=w, Cin=cin, OH=oh, OW=ow, Cout=cout, kh=kh, kw=kw, khe=khe, kwe=kwe,
                sh=int(o.stride_h), sw=int(o.stride_w))


def test_every_name_is_a_surveyed_slot_and_the_count_is_stated():
    """Each name sits on a slot the survey typed, once per table; 229 slots, 170 named (docs/model_format.md,
    "Slot names", states both counts)."""
    all_slots = {(t, s) for t, slots in sgs_slots.SLOTS.items() for s, _ in slots}
    assert len(all_slots) == 229
    named = {k for k in sgs_dialect.SLOT_NAMES if k in all_slots}
    assert len(named) == 170
    doc = (Path(__file__).resolve().parent.parent / "docs" / "model_format.md").read_text()
    unnamed = len(all_slots) - len(named)
    assert f"**{len(named)} are named by an established meaning**" in doc
    assert f"**{unnamed} keep the numbered name" in doc and f"**Not established ({unnamed} slots" in doc
    for table in {t for t, _ in sgs_dialect.SLOT_NAMES}:
        names = [f.name for f in sgs_dialect.TABLES[table]]
        assert len(names) == len(set(names)), table
    for (table, slot), name in sgs_dialect.SLOT_NAMES.items():
        assert sgs_dialect.slot_of(table, name) == slot


def test_conv_program_slots_follow_the_graph(fixed_files):
    """CONV_2D: MAC count, channel counts, tile sizes and the single-tile mode against shapes and options."""
    n = multi = 0
    for model, op, _ in _ops(fixed_files, "CONV_2D"):
        o, p = op.options, _window(model, op)
        for f in ("sgs_mac_count", "sgs_in_tile_width",
                  "sgs_in_tile_height", "sgs_out_tile_width", "sgs_out_tile_height", "sgs_tiling_mode"):
            assert isinstance(getattr(o, f), int), f
        ohv = (p["H"] - p["khe"]) // p["sh"] + 1
        owv = (p["W"] - p["kwe"]) // p["sw"] + 1
        assert o.sgs_mac_count == p["kh"] * p["kw"] * ohv * owv * _ceil16(p["Cin"]) * _ceil16(p["Cout"])
        assert 0 < o.sgs_out_tile_width <= p["OW"] and 0 < o.sgs_out_tile_height <= p["OH"]
        assert o.sgs_ipu_conv_mode == (4 if op.inputs[0] in model.main.inputs else 0)
        whole = (o.sgs_out_tile_width, o.sgs_out_tile_height) == (p["OW"], p["OH"])
        assert (o.sgs_tiling_mode == 1) == whole
        assert o.sgs_in_tile_width == (p["W"] if o.sgs_out_tile_width == p["OW"]
                                       else (o.sgs_out_tile_width - 1) * p["sw"] + p["kwe"])
        assert o.sgs_in_tile_height == (p["H"] if o.sgs_out_tile_height == p["OH"]
                                        else (o.sgs_out_tile_height - 1) * p["sh"] + p["khe"])
        # the buffer regions: each one's entry list against its size in slots (vendor_fixed/program.py)
        s30, s31, s33 = (tuple(v or ()) for v in (o.sgs_weight_entry_slots, o.sgs_input_entry_slots,
                                                  o.sgs_region_28_entry_slots))
        assert s33 == tuple(range(0, o.sgs_region_28_slots, 4))
        assert len(s31) == o.sgs_input_slots and s31 == tuple(range(s31[0], s31[0] + len(s31)))
        assert o.sgs_weight_slots == 2 * len(s30)
        n += 1
        multi += not whole
    assert n == 16 and multi >= 2, (n, multi)  # 3 conv chains x 3, 2 x 2 depthwise, 2 pool, conv_dilated


def test_depthwise_program_slots_follow_the_graph(fixed_files):
    n = multi = 0
    for model, op, _ in _ops(fixed_files, "DEPTHWISE_CONV_2D"):
        o, p = op.options, _window(model, op)
        assert 0 < o.sgs_out_tile_width <= p["OW"] and 0 < o.sgs_out_tile_height <= p["OH"]
        assert o.sgs_in_tile_width == (p["W"] if o.sgs_out_tile_width == p["OW"]
                                       else (o.sgs_out_tile_width - 1) * p["sw"] + p["kwe"])
        assert o.sgs_in_tile_height == (p["H"] if o.sgs_out_tile_height == p["OH"]
                                        else (o.sgs_out_tile_height - 1) * p["sh"] + p["khe"])
        n += 1
        multi += (o.sgs_out_tile_width, o.sgs_out_tile_height) != (p["OW"], p["OH"])
    assert n == 2 and multi >= 1


def test_pool_tile_slots_fit_the_output(fixed_files):
    """Pool2DOptions: the output tile (width = OW in every file seen, height <= OH; both the whole output
    for a small pool) and its channels (<= C)."""
    n = 0
    for model, op, _ in _ops(fixed_files, "MAX_POOL_2D", "AVERAGE_POOL_2D"):
        o = op.options
        _, oh, ow, c = (int(d) for d in model.main.tensors[op.outputs[0]].shape)
        assert o.sgs_out_tile_width == ow and 0 < o.sgs_out_tile_height <= oh and 0 < o.sgs_tile_channels <= c
        if oh * ow * c <= 6 * 10 * 8:  # the chain's pool: one tile
            assert (o.sgs_out_tile_height, o.sgs_tile_channels) == (oh, c)
        n += 1
    assert n == 1


def test_channel_tiles_decode_the_int8_weights_of_the_float_model(fixed_files):
    """in/out_channels_per_tile (0: 16) are the int8 weight buffer's tiles: decoded with them, the buffer
    is round(w / scale) of the vendor float.sim's weights (the whole-tensor layout is not, somewhere)."""
    from calibrator_custom.vendor_fixed import layout

    n = needs_tiles = 0
    for model, op, fl in _ops(fixed_files, "CONV_2D"):
        tw = model.main.tensors[op.inputs[1]]
        if tw.dtype != "INT8":
            continue
        w = fl.tensor_data(next(t for t in fl.main.tensors if t.name == tw.name))
        assert w is not None and tuple(w.shape) == tuple(tw.shape)
        ratio = np.asarray(w, np.float64) / float(tw.quantization.scale[0])
        codes = np.clip(np.rint(ratio), -127, 127)
        raw = model.buffers[tw.buffer].data
        o = op.options
        got = layout.unpack_conv_weights(raw, tw.shape, np.int8, o.sgs_in_channels_per_tile or 16,
                                         o.sgs_out_channels_per_tile or 16)
        assert got.shape == codes.shape and got.dtype == np.int8
        off = got != codes
        # only exact ties may round the other way (half away from zero vs half to even)
        assert np.all(np.abs(np.abs(ratio[off] - np.trunc(ratio[off])) - 0.5) < 1e-3), int(off.sum())
        whole = layout.unpack_conv_weights(raw, tw.shape, np.int8)
        needs_tiles += int(np.sum(whole != codes) > np.sum(off))
        n += 1
    assert n == 16 and needs_tiles >= 2, (n, needs_tiles)


def test_the_two_shifts_add_up_to_the_bias_multipliers_exponent(fixed_files):
    """bias_shift + total_shift = N with the bias row 1 M ~ s_in * s_w / s_out * 2**N (conv and depthwise)."""
    n = 0
    for model, op, _ in _ops(fixed_files, "CONV_2D", "DEPTHWISE_CONV_2D"):
        g = model.main
        ti, tw, tb, to = (g.tensors[i] for i in (op.inputs[0], op.inputs[1], op.inputs[2], op.outputs[0]))
        c = int(to.shape[-1])
        flat = np.frombuffer(model.buffers[tb.buffer].data, "<i2")
        row1 = flat[-(-c // 8) * 8:][:c].astype(np.int64)
        assert row1.shape == (c,) and row1.max() > 0
        m = float(ti.quantization.scale[0]) * float(tw.quantization.scale[0]) / float(to.quantization.scale[0])
        exponent = round(math.log2(float(row1.max()) / m))
        o = op.options
        assert 0 <= o.sgs_bias_shift <= exponent
        assert o.sgs_bias_shift + o.sgs_total_shift == exponent
        n += 1
    assert n == 18


def test_feeds_pool_marks_the_convs_a_pool_reads(fixed_files):
    """Operator.sgs_feeds_pool: 1 on each CONV_2D whose output a MAX/AVERAGE_POOL_2D reads, absent elsewhere."""
    marked = 0
    for fixed, _ in fixed_files.values():
        model = load_model(fixed)
        readers: dict[int, set] = {}
        for op in model.main.operators:
            for i in op.inputs:
                readers.setdefault(i, set()).add(model.op_name(op))
        for op in model.main.operators:
            feeds = any(n.endswith("POOL_2D") for i in op.outputs for n in readers.get(i, ()))
            want = 1 if feeds and model.op_name(op) == "CONV_2D" else None
            assert op.extra.get("sgs_feeds_pool") == want, (fixed.name, model.op_name(op))
            marked += want is not None
    assert marked == 1


def test_weight_dma_chunks_cover_the_weight_buffer(fixed_files):
    n = 0
    for model, op, _ in _ops(fixed_files, "CONV_2D", "DEPTHWISE_CONV_2D"):
        chunks = [dict(c) for c in op.options.sgs_weight_dma_chunks]
        tw = model.main.tensors[op.inputs[1]]
        size = len(model.buffers[tw.buffer].data)
        assert chunks
        offset = 0
        for c in chunks:
            assert c["byte_offset"] == offset and c["byte_count"] == 32 * c["blocks_32_bytes"]
            offset += c["byte_count"]
        assert offset == size
        flags = _chunk_flags(model, op)
        assert [c["last_input_tile"] for c in chunks] == flags["last_input_tile"]
        if model.op_name(op) == "DEPTHWISE_CONV_2D" or not op.options.sgs_depthwise_mode:
            assert [c["empty"] for c in chunks] == flags["empty"]
        if model.op_name(op) == "CONV_2D" and not op.options.sgs_depthwise_mode:
            assert [c["accumulate"] for c in chunks] == flags["accumulate"]
        n += len(chunks)
    assert n >= 20


def _chunk_flags(model, op) -> dict:
    """The weight chunks' flags from the input channel count and the op's channel tiles and passes: one
    chunk per (input pass, output tile, input tile of the pass) of a conv, per channel tile of a pass of a
    depthwise (slots 11 / 12; the last pass padded with empty chunks as a conv's)."""
    o = op.options
    cin = int(model.main.tensors[op.inputs[0]].shape[-1])
    cout = int(model.main.tensors[op.outputs[0]].shape[-1])
    tile, per_pass, out_tile = (v or 16 for v in (o.sgs_in_channels_per_tile, o.sgs_in_channels_per_pass,
                                                  o.sgs_out_channels_per_tile))
    flags = {"empty": [], "last_input_tile": [], "accumulate": []}
    if model.op_name(op) == "DEPTHWISE_CONV_2D":
        cout, out_tile = 1, 1  # one output "tile": each channel tile is its own output
    for p0 in range(0, cin, per_pass):
        for _ in range(0, cout, out_tile):
            for t0 in range(p0, p0 + -(-per_pass // tile) * tile, tile):
                flags["empty"].append(int(t0 >= cin))
                flags["last_input_tile"].append(int(t0 + tile >= cin))
                flags["accumulate"].append(int(0 < t0 < cin))
    return flags


def test_conv_program_names_round_trip_the_vendors_files():
    """Vendor fixed.sim files of the oracle cache (made by this and earlier test sessions' vendor runs; on an
    empty cache three conv chains are made here) decode with the conv program's names and re-encode to the
    vendor's bytes (every slot of them typed: none is listed in ``sgs_untyped_slots``)."""
    import vendor_fixed_oracle as vo

    files = sorted(vo.CACHE.glob("*/m_fixed.sim"))
    if not files:
        reason = vo.vendor_missing_reason()
        if reason:
            pytest.skip(reason)
        from test_vendor_fixed_ops import _conv_chain
        for seed, (cin, cout, k, stride, padding) in enumerate([(16, 24, 3, 1, "SAME"), (8, 8, 3, 2, "SAME"),
                                                                 (32, 40, 1, 1, "VALID")], 91):
            b, ranges, _, _ = _conv_chain(seed, 9, cin, cout, k, stride, padding)
            vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"slot_names_{seed}")
        files = sorted(vo.CACHE.glob("*/m_fixed.sim"))
    assert files, f"no vendor fixed.sim in the oracle cache {vo.CACHE}"
    convs = 0
    for path in files[:: max(1, len(files) // 40)]:
        try:
            model = load_model(path)
        except ModelError as e:  # INT16 depthwise-as-conv buffers (docs: not read yet)
            assert "needs" in str(e) and "bytes but buffer" in str(e), e
            continue
        for op in model.main.operators:
            if model.op_name(op) == "CONV_2D":  # the four region sizes are never 0, so always written
                assert {"sgs_weight_slots", "sgs_input_slots", "sgs_output_slots",
                        "sgs_region_28_slots"} <= set(op.options.sgs_layout), path
                convs += 1
            if model.op_name(op) in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                chunks = [dict(c) for c in op.options.sgs_weight_dma_chunks]
                assert [c["empty"] for c in chunks] == [int(c["byte_count"] == 0) for c in chunks], path
        assert sgs_dialect.UNTYPED not in model.extra, (path, model.extra.get(sgs_dialect.UNTYPED))
        assert model.to_bytes(reencode=True) == path.read_bytes(), path
    if not convs:
        pytest.skip("no conv in the sampled cache files")


def test_depthwise_chunks_of_no_bytes_are_flagged_empty():
    """A 7 x 7 x 672 depthwise with an INT16 output, made here with the vendor's tools: its weights run in
    channel tiles of 128 over passes of 640, the second pass (32 channels) padded with four chunks of no
    bytes; SgsDepthwiseConv2DOptionsSlot41 ``empty`` (slot 3) is 1 on those and absent from the others (as
    the conv chunk's), ``last_input_tile`` 1 from the last tile holding bytes on, and the file re-encodes
    to the vendor's bytes."""
    reason = vendor_missing_reason()
    if reason:
        pytest.skip(reason)
    import vendor_program_splice as vps  # noqa: PLC0415

    key = vps.ConvKey("DEPTHWISE_CONV_2D", (1, 7, 7, 672), (1, 3, 3, 672), 1, "SAME", "UINT8", "INT16", False)
    path = vps.make_standalone(key)
    model = load_model(path)
    o = vps.conv_op(model).options
    assert (o.sgs_in_channels_per_tile, o.sgs_in_channels_per_pass) == (128, 640)
    chunks = [dict(c) for c in o.sgs_weight_dma_chunks]
    assert [c["byte_count"] for c in chunks] == [1280] * 5 + [320] + [0] * 4
    assert [c["empty"] for c in chunks] == [0] * 6 + [1] * 4
    assert [("empty" in c["sgs_layout"]) for c in chunks] == [False] * 6 + [True] * 4
    assert [c["last_input_tile"] for c in chunks] == [0] * 5 + [1] * 5
    assert sgs_dialect.UNTYPED not in model.extra
    assert model.to_bytes(reencode=True) == path.read_bytes()


def _range_ratio(t) -> float:
    q = t.quantization
    return max(1.0, abs(float(q.min[0])) / float(q.max[0]))


def _fixed(x: float, shift: int) -> int:
    return int(math.copysign(math.floor(abs(x) * 2.0 ** shift + 0.5), x))


def test_rescale_tables_hold_the_scale_ratios(fixed_files):
    """ADD/SUB multipliers = s_i / s_out * 2**shift; RELU, PRELU, LEAKY_RELU: F = max(1, |min| / max)
    and alpha as multiplier / shift pairs."""
    seen = set()
    for model, op, _ in _ops(fixed_files, "ADD", "SUB", "RELU", "PRELU", "LEAKY_RELU"):
        g, name, o = model.main, model.op_name(op), op.options
        ins = [g.tensors[i] for i in op.inputs]
        out = g.tensors[op.outputs[0]]
        if name in ("ADD", "SUB"):
            (tab,) = [dict(t) for t in o.sgs_rescale]
            assert tab["sgs_slot_0"] == 22  # the two-activation form (the builder's op(x, relu(x)))
            s_out = float(out.quantization.scale[0])
            sign = -1 if name == "SUB" else 1
            assert tab["multiplier_0"] == _fixed(float(ins[0].quantization.scale[0]) / s_out, tab["shift"])
            assert tab["multiplier_1"] == _fixed(sign * float(ins[1].quantization.scale[0]) / s_out, tab["shift"])
        elif name == "RELU":
            (tab,) = [dict(t) for t in o.sgs_input_ratio]
            f = _range_ratio(ins[0])
            assert tab["shift"] == 14 - math.floor(math.log2(f)) and tab["multiplier"] == _fixed(f, tab["shift"])
            if (ins[0].dtype, out.dtype) == ("UINT8", "INT16"):  # the input rescale: s_in / s_out
                (rin,) = op.extra["sgs_input_rescale"]
                ratio = float(ins[0].quantization.scale[0]) / float(out.quantization.scale[0])
                assert rin["multiplier"] == _fixed(ratio, rin["shift"])
                assert rin["offset"] == -int(ins[0].quantization.zero_point[0])
                seen.add("RELU input rescale")
        elif name == "PRELU":
            alpha_shift, ratio = [dict(t) for t in o.sgs_rescale]
            f = _range_ratio(ins[0])
            assert ratio["multiplier"] == _fixed(f, ratio["shift"])
            aq = ins[1].quantization
            amax = max(abs(float(aq.min[0])), abs(float(aq.max[0])))
            assert alpha_shift["shift"] == 14 - math.floor(math.log2(amax * f))
        else:
            alpha, ratio = [dict(t) for t in o.sgs_rescale]
            assert alpha["multiplier"] == _fixed(float(o.alpha), alpha["shift"])
            assert ratio["multiplier"] == _fixed(_range_ratio(ins[0]), ratio["shift"])
        seen.add(name)
    assert seen == {"ADD", "SUB", "RELU", "PRELU", "LEAKY_RELU", "RELU input rescale"}


def test_output_rescale_zero_point_is_the_uint8_view_of_the_range(fixed_files):
    """Operator.sgs_output_rescale zero_point = floor(-min * 255 / (max - min) + 1/2) of the output."""
    n = 0
    for model, op, _ in _ops(fixed_files, "ADD", "SUB", "RELU", "PRELU", "LEAKY_RELU", "TANH", "SOFTMAX"):
        g = model.main
        for tab, i in zip(op.extra.get("sgs_output_rescale") or (), op.outputs):
            q = g.tensors[i].quantization
            lo, hi = float(q.min[0]), float(q.max[0])
            assert tab["zero_point"] == math.floor(-lo * 255 / (hi - lo) + 0.5)
            n += 1
    assert n >= 5


@pytest.mark.parametrize("op_name, field, sub, fn, x0, step, n", [
    ("LOGISTIC", "sgs_lut", "tanh_lut_65", np.tanh, 1.0, 1 / 32, 65),
    ("TANH", "sgs_lut", "tanh_lut_65", np.tanh, 2.0, 1 / 16, 65),
    ("SOFTMAX", "sgs_lut", "exp_lut_65", np.exp, -2.0, 1 / 32, 65),
    ("SOFTMAX", "sgs_lut", "exp_lut_257", np.exp, -8.0, 1 / 32, 257),
    ("LOGISTIC", "sgs_lut", "scaled_tanh_lut_257", lambda x: np.tanh(x) / np.tanh(1.0), 0.0, 1 / 256, 257),
    ("TANH", "sgs_lut", "scaled_tanh_lut_257", lambda x: np.tanh(x) / np.tanh(2.0), 0.0, 1 / 128, 257),
])
def test_lookup_tables_are_the_named_function(fixed_files, op_name, field, sub, fn, x0, step, n):
    (model, op, _), *_ = list(_ops(fixed_files, op_name))
    lut = np.asarray(dict(getattr(op.options, field))[sub])
    assert lut.shape == (n,) and lut.dtype.kind == "i"
    expected = np.rint(32767 * fn(x0 + step * np.arange(n)))
    assert np.array_equal(lut, expected)


def _mantissa_form(x: float) -> tuple[int, int]:
    """(M, shift): x ~ M / 2**shift with a 15-bit M, shift = 14 - floor(log2 x), M = floor(x 2**shift + 1/2)."""
    shift = 14 - math.floor(math.log2(x))
    return math.floor(x * 2.0 ** shift + 0.5), shift


#: per op: the real factor of each table's interpolation (the 257-table's the function's value at its end)
_TABLE_FACTORS = {"LOGISTIC": (1.0, math.tanh(1.0)), "TANH": (1.0, math.tanh(2.0)), "SOFTMAX": (1.0, math.exp(-2.0))}


@pytest.mark.parametrize("op_name", ["LOGISTIC", "TANH", "SOFTMAX"])
def test_lut_fixed_point_record_is_the_input_scales_mantissa_form(fixed_files, op_name):
    """``sgs_lut.fixed_point``: M, Q of the input's INT16 scale max(|min|, |max|) / 32767, the index shifts,
    the boundaries, offsets and line start in Q, and each table's multiplier / shift as the 15-bit form of
    its factor (TANH's times (1/32767) / s_out); the line's slope and SOFTMAX's table values beside them."""
    (model, op, _), *_ = list(_ops(fixed_files, op_name))
    g = model.main
    qin = g.tensors[op.inputs[0]].quantization
    s = max(abs(float(qin.min[0])), abs(float(qin.max[0]))) / 32767
    q = 14 - math.floor(math.log2(s))
    lut = dict(op.options.sgs_lut)
    fp = dict(lut["fixed_point"])
    assert fp["input_multiplier"] == math.floor(s * 2.0 ** q + 0.5) and 2 ** 14 <= fp["input_multiplier"] < 2 ** 15
    assert [fp[f"frac_bits{k}"] for k in ("", "_2", "_3", "_4")] == [q] * 4
    r = (1 / 32767) / float(g.tensors[op.outputs[0]].quantization.scale[0]) if op_name == "TANH" else 1.0
    f65, f257 = _TABLE_FACTORS[op_name]
    assert (fp["lut_65_multiplier"], fp["lut_65_shift"]) == _mantissa_form(f65 * r)
    assert (fp["lut_257_multiplier"], fp["lut_257_shift"]) == _mantissa_form(f257 * r)
    values = dict(lut["sgs_slot_2"])
    if op_name == "SOFTMAX":  # 65 entries over [-2, 0], 257 over [-10, -2]: 1/32 each
        assert (fp["lut_65_index_shift"], fp["lut_257_index_shift"]) == (q - 5, q - 5)
        assert fp["lut_boundary"] == fp["lut_boundary_2"] == -2 * 2 ** q and fp["line_start"] == -10 * 2 ** q
        assert (fp["lut_65_offset"], fp["lut_257_offset"]) == (2 * 2 ** q, 10 * 2 ** q)
        assert values["lut_65_first_value"] == round(32767 * math.exp(-2.0)) == lut["exp_lut_65"][0]
        assert values["line_start_value"] == round(32767 * math.exp(-8.0)) == lut["exp_lut_257"][0]
    else:  # 257 entries over [0, 2] (1/128), 65 over [2, 6] (1/16): of |x| (LOGISTIC: of |x| / 2 in its tables)
        assert (fp["lut_257_index_shift"], fp["lut_65_index_shift"]) == (q - 7, q - 4)
        assert fp["lut_boundary"] == fp["lut_boundary_2"] == 2 * 2 ** q and fp["line_start"] == 6 * 2 ** q
        assert fp["lut_65_offset"] == -2 * 2 ** q
        assert isinstance(values["line_slope"], int)  # its value: test_vendor_fixed_ops (the reproduction)


def test_mul_rescale_is_the_two_stage_product(fixed_files):
    """MulOptions ``sgs_rescale`` of a two-activation MUL: M = round(s1 s2 / s_out 2**(k1 + k2)), a 15-bit
    multiplier, with k1 = table 0's ``product_shift`` and k2 = table 1's ``shift``."""
    n = 0
    for model, op, _ in _ops(fixed_files, "MUL"):
        first, second = (dict(t) for t in op.options.sgs_rescale)
        if first["sgs_slot_0"] != 4:  # a folded constant: table 1 holds zeros
            continue
        g = model.main
        s1, s2, so = (float(g.tensors[i].quantization.scale[0]) for i in (*op.inputs[:2], op.outputs[0]))
        n_bits = first["product_shift"] + second["shift"]
        assert second["multiplier"] == math.floor(s1 * s2 / so * 2.0 ** n_bits + 0.5)
        assert 2 ** 14 <= second["multiplier"] < 2 ** 15 and first["multiplier"] == second["sgs_slot_2"] == -1
        n += 1
    assert n == 1


def _channel_ranges(log: Path) -> dict:
    """The vendor calibrator's per-channel output ranges of its run (log/tensor_chn.txt)."""
    import re  # noqa: PLC0415
    out = {}
    for m in re.finditer(r"Name:(\S+), (\d+)\s*min_chn: ([^m]*)max_chn: ([^;]*);", log.read_text()):
        out[m.group(1)] = tuple(np.array([float(v) for v in g.strip(" ,\n").split(",")])
                                for g in (m.group(3), m.group(4)))
    return out


def test_acc_range_is_the_conv_accumulators_calibrated_range(fixed_files):
    """QuantizationParameters ``sgs_acc_max`` / ``sgs_acc_min``: on every conv output (nowhere else), the
    range of the int32 accumulator sum((x - zp_in) w) + zp_in sum(w) = (y - b) / (s_in s_w) + zp_in sum(w_codes)
    over the calibrated per-channel output ranges (max of the upper ends, min of the lower ones, truncated
    toward zero, widened to hold 0); and below 8192 * 2**bias_shift, the bound the bias shift is chosen for."""
    n = 0
    for name, (fixed, fl_path) in fixed_files.items():
        model, fl = load_model(fixed), load_model(fl_path)
        g = model.main
        ranges = _channel_ranges(fixed.parent / f"_work_{name}" / "wd" / "log" / "tensor_chn.txt")
        floats = {t.name: t for t in fl.main.tensors}
        conv_outputs = set()
        for op in g.operators:
            kind = model.op_name(op)
            if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                continue
            conv_outputs.add(op.outputs[0])
            ti, tw, tb, to = (g.tensors[i] for i in (*op.inputs[:3], op.outputs[0]))
            if tw.dtype != "INT8" or to.name not in ranges:
                continue
            w = np.asarray(fl.tensor_data(floats[tw.name]), np.float64)
            bias = np.asarray(fl.tensor_data(floats[tb.name]), np.float64).reshape(2, -1)[0]
            if w.shape != tuple(tw.shape):
                continue
            codes = np.rint(w / float(tw.quantization.scale[0]))
            w_sum = codes.reshape(-1, codes.shape[-1]).sum(0) if kind == "DEPTHWISE_CONV_2D" \
                else codes.reshape(codes.shape[0], -1).sum(1)
            unit = float(ti.quantization.scale[0]) * float(tw.quantization.scale[0])
            lo, hi = ranges[to.name]
            offset = int(ti.quantization.zero_point[0]) * w_sum - bias / unit
            acc_max = max(0, math.trunc(float((hi / unit + offset).max())))
            acc_min = min(0, math.trunc(float((lo / unit + offset).min())))
            q = to.quantization.extra
            assert (q["sgs_acc_max"], q["sgs_acc_min"]) == ((acc_max,), (acc_min,)), (name, to.name)
            assert max(acc_max, -acc_min) < 8192 * 2 ** op.options.sgs_bias_shift
            n += 1
        for i, t in enumerate(g.tensors):
            if i not in conv_outputs and t.quantization is not None:
                assert not t.quantization.extra.get("sgs_acc_max") and not t.quantization.extra.get("sgs_acc_min")
    assert n >= 18, n


def test_logistic_output_rescale_is_the_ratio_to_the_unit_scale(fixed_files):
    """SgsLogisticOptions ``sgs_output_rescale``: M / 2**shift the 15-bit form of (1/32767) / s_out, offset =
    round(1 / s_out) (the output code of 1.0), final_shift 1 (the halving of 1 + tanh); slot 2 unused (-1)."""
    (model, op, _), *_ = list(_ops(fixed_files, "LOGISTIC"))
    s_out = float(model.main.tensors[op.outputs[0]].quantization.scale[0])
    (tab,) = [dict(t) for t in op.options.sgs_output_rescale]
    assert abs(s_out * 32767 - 1) > 0.1, "an output scale other than 1/32767 (the ratio is not 1)"
    assert (tab["multiplier"], tab["shift"]) == _mantissa_form((1 / 32767) / s_out)
    assert tab["offset"] == round(1 / s_out) and tab["final_shift"] == 1 and tab["sgs_slot_2"] == -1


@pytest.fixture(scope="module")
def fusion_files(fixed_files, tmp_path_factory):
    """fixed_files plus the two single-op models whose fused op reads a conv / a pool (vendor-made)."""
    from vendor_singleops import CASES

    out = tmp_path_factory.mktemp("slot_names_fusion")
    images = calibration_images()[:2]
    files = {k: v[0] for k, v in fixed_files.items() if k.startswith("op_")}
    for case in ("conv_relu6_fused", "max_pool", "concat_channels", "concat_reshaped", "concat_transposed"):
        assert corpus.make(out, case, CASES[case](), images), case
        files[case] = out / f"{case}_fixed.sim"
    return files


def test_op_class_and_fused_input_mark_the_ops_the_vendor_runs_inside_their_producer(fusion_files):
    """Operator ``sgs_op_class`` 2 / 4 exactly on the ops the vendor's fixed simulator runs inside another op
    (their dump records lie under that op's index; 2 when it is a conv), 1 on convs; ``sgs_fused_input`` the
    index of the input that op produces (absent = 0), -1 on every op run on its own."""
    from vendor_fixed_oracle import run_fixed

    fused = 0
    for name, fixed in fusion_files.items():
        model = load_model(fixed)
        g = model.main
        shape = tuple(int(d) for d in g.tensors[g.inputs[0]].shape)
        recs, _ = run_fixed(fixed, np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8))
        dumped: dict[str, set] = {}
        for r in recs:
            dumped.setdefault(r["op"], set()).add(r["op_index"])
        producer = {t: j for j, o in enumerate(g.operators) for t in o.outputs}
        for j, op in enumerate(g.operators):
            kind = model.op_name(op)
            cls, inp = op.extra.get("sgs_op_class"), op.extra.get("sgs_fused_input")
            where = dumped.get(kind, set())
            assert (cls == 1) == (kind in ("CONV_2D", "DEPTHWISE_CONV_2D")), (name, kind)
            if j in where:
                assert cls not in (2, 4) and inp == -1, (name, kind, cls, inp)
                continue
            (host,) = where - {j}
            assert cls == (2 if model.op_name(g.operators[host]) in ("CONV_2D", "DEPTHWISE_CONV_2D") else 4)
            assert producer.get(op.inputs[inp or 0]) == host, (name, kind, inp)
            fused += 1
    assert fused >= 6, fused  # ADD, SUB, MUL (second input), LOGISTIC, RELU6 into a conv, MUL into a pool


def test_use_order_numbers_the_tensors_as_the_ops_first_use_them(fusion_files):
    """Tensor ``sgs_use_order``: 1, 2, ... over the ops in order, each op's inputs then outputs, a tensor
    numbered where it is first used; the graph input has none; a Slice_Alias output takes its input's number."""
    n = 0
    for name, fixed in fusion_files.items():
        model = load_model(fixed)
        g = model.main
        want: dict[int, int] = {}
        count = 0
        for op in g.operators:
            for i in (*op.inputs, *op.outputs):
                if i >= 0 and i not in want and i not in g.inputs:
                    count += 1
                    want[i] = count
            if model.op_name(op) == "Slice_Alias":
                want[op.outputs[0]] = want[op.inputs[0]]
        got = {i: t.extra.get("sgs_use_order") for i, t in enumerate(g.tensors)}
        assert got == {i: want.get(i) for i in range(len(g.tensors))}, name
        n += len(want)
    assert n >= 60, n


def test_mul_with_a_constant_stores_it_in_the_product_shifts_fixed_point(fusion_files):
    """A MUL by a constant (the converter's own MULs too): table 0's ``product_shift`` k1 = 14 - floor(log2(max|c|
    s_in / s_out)) and the constant's codes round(c s_in / s_out 2**k1) (c from the vendor float.sim); table 1
    holds zeros (no second stage)."""
    n = 0
    for name, fixed in fusion_files.items():
        model, fl = load_model(fixed), load_model(fixed.with_name(fixed.name.replace("_fixed.sim", "_float.sim")))
        g, floats = model.main, {t.name: t for t in fl.main.tensors}
        for op in g.operators:
            if model.op_name(op) != "MUL" or model.tensor_data(g.tensors[op.inputs[1]]) is None:
                continue
            t0, tc, to = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
            first, second = (dict(t) for t in op.options.sgs_rescale)
            c = np.asarray(fl.tensor_data(floats[tc.name]), np.float64).ravel()
            ratio = float(t0.quantization.scale[0]) / float(to.quantization.scale[0])
            k1 = first["product_shift"]
            assert k1 == 14 - math.floor(math.log2(float(np.abs(c).max()) * ratio)), name
            codes = np.asarray(model.tensor_data(tc), np.int64).ravel()
            assert np.array_equal(codes, np.floor(c * ratio * 2.0 ** k1 + 0.5).astype(np.int64)), name
            assert second["multiplier"] == second["shift"] == 0
            n += 1
    assert n >= 3, n


def test_softmax_lut_range_min_is_the_calibrated_min_of_the_inputs_span(fixed_files):
    """SoftmaxOptions ``sgs_lut_range.min`` (float32): the vendor calibrator's logged LUT range min, and the min
    over the two calibration photos of min(x) - max(x) over the whole input tensor x (the preprocessed image:
    the builder's SOFTMAX reads x through the converter's MUL by 1), not of the per-row x - max(x), which
    is higher here (-1.21)."""
    import re  # noqa: PLC0415

    import cv2  # noqa: PLC0415

    fixed, _ = fixed_files["op_softmax"]
    model = load_model(fixed)
    g = model.main
    op = next(o for o in g.operators if model.op_name(o) == "SOFTMAX")
    got = float(dict(op.options.sgs_lut_range)["min"])
    work = fixed.parent / "_work_op_softmax"
    logged = float(re.search(r"min: (-?[\d.]+)", (work / "wd" / "log" / "softmax_lut_range.txt").read_text()).group(1))
    _, h, w, _ = (int(d) for d in g.tensors[g.inputs[0]].shape)
    d_min = 0.0
    for p in sorted((work / "images").iterdir()):
        x = (cv2.resize(cv2.imread(str(p))[:, :, ::-1], (w, h)).astype(np.float32) - 127.5) / 127.5
        d_min = min(d_min, float(x.min() - x.max()))
    assert got < -0.5 and abs(got - logged) < 1e-6 and abs(got - d_min) < 1e-5, (got, logged, d_min)


def test_mul_by_a_constant_is_the_product_shifted_by_product_shift(fixed_files):
    """The vendor's fixed simulator computes a MUL by a constant (run on its own) as
    q = ((x - zp_in) c_q + 2**(k1-1)) >> k1 + zp_out, k1 = ``product_shift``: every code of three random inputs."""
    from calibrator_custom.vendor_fixed import layout  # noqa: PLC0415
    from vendor_fixed_oracle import record, run_fixed

    fixed, _ = fixed_files["op_softmax"]
    model = load_model(fixed)
    g = model.main
    j, op = next((j, o) for j, o in enumerate(g.operators) if model.op_name(o) == "MUL")
    assert op.extra.get("sgs_op_class") == 6, "a MUL run on its own"
    t0, tc, to = (g.tensors[i] for i in (*op.inputs[:2], op.outputs[0]))
    k1 = dict(op.options.sgs_rescale[0])["product_shift"]
    c = np.asarray(model.tensor_data(tc), np.int64)
    shape = tuple(int(d) for d in g.tensors[g.inputs[0]].shape)
    n = 0
    for seed in range(3):
        recs, _ = run_fixed(fixed, np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8))
        x = layout.from_dump(record(recs, j, "in", 0)["data"], t0.shape).astype(np.int64)
        want = layout.from_dump(record(recs, j, "out")["data"], to.shape).astype(np.int64)
        got = (((x - int(t0.quantization.zero_point[0])) * c + (1 << (k1 - 1))) >> k1) \
            + int(to.quantization.zero_point[0])
        assert np.array_equal(got, want), int((got != want).sum())
        n += want.size
    assert n >= 500


def test_concatenation_records_the_inputs_it_reshapes_to_the_outputs_rank(fusion_files):
    """ConcatenationOptions ``sgs_reshaped_input_count`` / ``sgs_reshaped_input_shapes``: when an input's shape
    is not the output's but for the axis, the number of inputs and, 10 ints per input, the output's shape with
    the axis dimension numel(input) / (the output's other dimensions); 0 and zeros when none is."""
    seen = set()
    for name, fixed in fusion_files.items():
        model = load_model(fixed)
        g = model.main
        for op in g.operators:
            if model.op_name(op) != "CONCATENATION":
                continue
            o = op.options
            out = [int(d) for d in g.tensors[op.outputs[0]].shape]
            axis = int(o.axis) % len(out)
            ins = [[int(d) for d in g.tensors[i].shape] for i in op.inputs]
            rest = math.prod(out) // out[axis]
            want = np.zeros(160, np.int64)
            reshaped = any(len(s) != len(out) or s[:axis] + s[axis + 1:] != out[:axis] + out[axis + 1:] for s in ins)
            if reshaped:
                for k, s in enumerate(ins):
                    want[10 * k:10 * k + len(out)] = out[:axis] + [math.prod(s) // rest] + out[axis + 1:]
            assert o.sgs_reshaped_input_count == (len(ins) if reshaped else 0), name
            assert np.array_equal(np.asarray(o.sgs_reshaped_input_shapes, np.int64), want), name
            seen.add(reshaped)
    assert seen == {True, False}


@pytest.mark.parametrize("field,value,named", [("sgs_partition_conv_ipu_mode", 1, "s32PartitionConvIpuMode"),
                                                ("sgs_kb_split_mode", 2, "kb_split_mode")])
def test_patched_depthwise_mode_slots_fail_the_vendors_assertion_on_their_name(fixed_files, tmp_path, field, value,
                                                                              named):
    """DepthwiseConv2DOptions 15 and 17 (2 and 1 on every depthwise): patched through our encoder, the vendor's
    fixed simulator stops on an assertion that names the field (their names come from it)."""
    import dataclasses  # noqa: PLC0415

    from vendor_fixed_oracle import oracle

    fixed, _ = fixed_files["dw_rect_s2"]
    model = load_model(fixed)
    g = model.main
    op = next(o for o in g.operators if model.op_name(o) == "DEPTHWISE_CONV_2D")
    assert (op.options.sgs_partition_conv_ipu_mode, op.options.sgs_kb_split_mode) == (2, 1)
    x = np.random.default_rng(0).integers(0, 256, tuple(int(d) for d in g.tensors[g.inputs[0]].shape)).astype(np.uint8)
    o = oracle()
    assert o.fixed_sim(str(fixed), x)  # the unpatched file runs
    op.options = dataclasses.replace(op.options, **{field: value})
    patched = tmp_path / "patched_fixed.sim"
    patched.write_bytes(model.to_bytes(reencode=True))
    with pytest.raises(o.OracleError, match=named):
        o.fixed_sim(str(patched), x)


def _compile_messages(o, fixed: Path, workdir: Path) -> tuple[bool, str]:
    """(compiled, all the vendor's compiler printed): its console and the log files it writes in its working
    directory (``compiler.py`` sends ``sgs_compiler``'s own lines to ``*_offline.log`` there)."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    workdir.mkdir()
    out = workdir / "offline.sim"
    p = subprocess.run([o.VPY, os.path.join(o.SDK, "Scripts/calibrator/compiler.py"), "-m", str(fixed), "-o", str(out),
                        "-c", "Unknown"], cwd=workdir, env=o.ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=900, check=False)
    text = p.stdout.decode("utf-8", "replace")
    text += "".join(f.read_text(errors="replace") for f in sorted(workdir.rglob("*.log")))
    return p.returncode == 0 and out.is_file(), text


@pytest.mark.parametrize("table,value", [("sgs_input_rescale", 4), ("sgs_output_rescale", 254)])
def test_patched_rescale_slot_0_is_the_compilers_data_convert_type(fixed_files, tmp_path, table, value):
    """Slot 0 of the Operator's rescale tables (2 in every input table, 1 in every output table): patched through
    our encoder above the 0-3 the vendor takes, the vendor's compiler stops on ``Unsupport data convert type:
    <the patched value>`` (the name comes from it); the unpatched file compiles without it, and the same value
    in any other slot of the table (offset / zero point, multiplier, shift) never prints it."""
    from vendor_fixed_oracle import oracle

    o = oracle()
    fixed, _ = fixed_files["op_relu"]
    ok, text = _compile_messages(o, fixed, tmp_path / "unpatched")
    assert ok and "data convert type" not in text
    model = load_model(fixed)
    op = next(p for p in model.main.operators if model.op_name(p) == "RELU")
    (tab,) = op.extra[table]
    assert tab["data_convert_type"] == (2 if table == "sgs_input_rescale" else 1)
    for field in [k for k in tab if k != "sgs_layout"]:
        op.extra = {**op.extra, table: ({**tab, field: value},)}
        patched = tmp_path / f"{field}_fixed.sim"
        patched.write_bytes(model.to_bytes(reencode=True))
        ok, text = _compile_messages(o, patched, tmp_path / field)
        if field == "data_convert_type":
            assert not ok and f"Unsupport data convert type: {value}." in text
        else:
            assert "data convert type" not in text, field


def _run_mode_members(text: str) -> dict[tuple[str, str], str]:
    """{(op position, member): value} of the run-mode lines the vendor's compiler logs
    (``[_showSubGraphCMDQ]  gid: 0 DomainId: 3 OpId: 1 +-> u32Fence    : 0x309``)."""
    import re  # noqa: PLC0415

    rx = re.compile(r"\[_showSubGraphCMDQ\]\s+(gid: \d+ DomainId: \d+ OpId: \d+) \+-> (\w+)\s*: (\S+)")
    return {(m.group(1), m.group(2)): m.group(3) for m in map(rx.search, text.splitlines()) if m}


@pytest.mark.parametrize("field,members", [("fence", {"u32Fence"}), ("decode_id", {"s32DecodeId"}),
                                           ("size", {"s32Size"}), ("sgs_slot_3", {"pCmdEntry", "s32Offset"})])
def test_patched_op_info_slots_are_the_run_mode_members_the_compiler_logs(fixed_files, tmp_path, field, members):
    """Operator.12 (``sgs_op_info``) slots 1-4 (0 in every file): one patched through our encoder to 777 in an ADD,
    the vendor's compiler logs the op's run mode with exactly that member (slot 3: two members, so it keeps its
    number) at 777 (decimal or hex) where the unpatched file's log has 0; no other member takes the value."""
    from vendor_fixed_oracle import oracle

    o = oracle()
    fixed, _ = fixed_files["op_add"]
    ok, text = _compile_messages(o, fixed, tmp_path / "unpatched")
    base = _run_mode_members(text)
    assert ok and base
    model = load_model(fixed)
    op = next(p for p in model.main.operators if model.op_name(p) == "ADD")
    assert op.extra["sgs_op_info"][field] == 0
    op.extra = {**op.extra, "sgs_op_info": {**op.extra["sgs_op_info"], field: 777}}
    patched = tmp_path / "patched_fixed.sim"
    patched.write_bytes(model.to_bytes(reencode=True))
    ok, text = _compile_messages(o, patched, tmp_path / "patched")
    assert ok
    took = {member for (where, member), v in _run_mode_members(text).items()
            if v in ("777", "0x309") and base.get((where, member)) != v}
    assert took == members


@pytest.mark.parametrize("clamp", [16383, 8191])
def test_activation_output_max_clamps_the_output_codes(fixed_files, tmp_path, clamp):
    """SgsActivationOptions ``sgs_output_max`` (32767 as written): patched to a lower code through our encoder,
    the vendor's fixed simulator gives min(its original output, clamp * s_out) on every value."""
    import dataclasses  # noqa: PLC0415

    from vendor_fixed_oracle import oracle

    fixed, _ = fixed_files["op_relu"]
    model = load_model(fixed)
    g = model.main
    j, op = next((j, o) for j, o in enumerate(g.operators) if model.op_name(o) == "RELU")
    assert op.options.sgs_output_max == 32767
    s_out = float(g.tensors[op.outputs[0]].quantization.scale[0])
    x = np.random.default_rng(0).integers(0, 256, tuple(int(d) for d in g.tensors[g.inputs[0]].shape)).astype(np.uint8)
    base = np.asarray(oracle().fixed_sim(str(fixed), x)["y"], np.float64)
    op.options = dataclasses.replace(op.options, sgs_output_max=clamp)
    patched = tmp_path / "patched_fixed.sim"
    patched.write_bytes(model.to_bytes(reencode=True))
    got = np.asarray(oracle().fixed_sim(str(patched), x)["y"], np.float64)
    assert base.max() > clamp * s_out, "the clamp cuts some outputs"
    np.testing.assert_allclose(got, np.minimum(base, clamp * s_out), rtol=0, atol=1e-6)


#: conv / depthwise -> an op the vendor runs inside it (and one it does not: the depthwise's ADD)
FUSION_CHAINS = {
    "fuse_conv_add": dict(seed=900, kind="CONV_2D", after="ADD", side=8, c=8, k=3, stride=1),
    "fuse_conv_prelu": dict(seed=902, kind="CONV_2D", after="PRELU", side=8, c=24, k=1, stride=1),
    "fuse_dw_add": dict(seed=901, kind="DEPTHWISE_CONV_2D", after="ADD", side=24, c=32, k=3, stride=2),
    "fuse_dw_prelu": dict(seed=903, kind="DEPTHWISE_CONV_2D", after="PRELU", side=48, c=32, k=3, stride=1),
    "fuse_dw_logistic": dict(seed=905, kind="DEPTHWISE_CONV_2D", after="LOGISTIC", side=48, c=32, k=3, stride=2),
    "fuse_dw_mul": dict(seed=925, kind="DEPTHWISE_CONV_2D", after="MUL", side=16, c=64, k=3, stride=1),
}


@pytest.fixture(scope="module")
def region_files(fixed_files, fusion_files, tmp_path_factory):
    """Every fixed file above plus the conv / depthwise -> fused-op chains (vendor-made)."""
    import sgs_slot_inventory as inventory  # noqa: PLC0415

    out = tmp_path_factory.mktemp("slot_names_regions")
    images = calibration_images()[:2]
    files = {name: fixed for name, (fixed, _) in fixed_files.items()}
    files.update(fusion_files)
    for name, spec in FUSION_CHAINS.items():
        assert corpus.make(out, name, inventory.fusion_chain(**spec), images), name
        files[name] = out / f"{name}_fixed.sim"
    return files


def _hosts(model) -> set:
    """Indices of the ops another op runs inside (Operator sgs_op_class 2 / 4: the producer of its
    sgs_fused_input)."""
    g = model.main
    producer = {t: j for j, o in enumerate(g.operators) for t in o.outputs}
    return {producer.get(op.inputs[op.extra.get("sgs_fused_input") or 0]) for op in g.operators
            if op.extra.get("sgs_op_class") in (2, 4)}


def _slots_of(entries, size) -> list:
    return [s for e in tuple(entries or ()) for s in range(e, e + size)]


def test_the_fused_op_region_is_reserved_exactly_on_convs_hosting_a_fused_op(region_files):
    """Conv2DOptions / DepthwiseConv2DOptions ``sgs_fused_op_slots`` (slots 29 / 30) is 8 on a conv another op
    runs inside, 0 elsewhere (the depthwise's: absent from the file), and ``sgs_fused_op_entry_slots`` (34 / 35)
    its one entry (32 - size,) at the top of the 32 buffer slots: every entry of the other regions lies below
    it. Every file re-encodes to the vendor's bytes, a hosting depthwise's slot 30 included."""
    seen = {"CONV_2D": [0, 0], "DEPTHWISE_CONV_2D": [0, 0]}
    for name, fixed in region_files.items():
        model = load_model(fixed)
        hosts = _hosts(model)
        for j, op in enumerate(model.main.operators):
            kind, o = model.op_name(op), op.options
            if kind not in seen:
                continue
            host = j in hosts
            assert o.sgs_fused_op_slots == (8 if host else 0), (name, j)
            assert tuple(o.sgs_fused_op_entry_slots) == (32 - o.sgs_fused_op_slots,), (name, j)
            if kind == "CONV_2D":
                below = (o.sgs_region_28_entry_slots, o.sgs_weight_entry_slots, o.sgs_input_entry_slots,
                         o.sgs_output_entry_slots)
            else:  # the depthwise writes slot 30 only where it reserves the region
                assert ("sgs_fused_op_slots" in o.sgs_layout) == host, (name, j)
                below = (o.sgs_weight_entry_slots, o.sgs_input_entry_slots, o.sgs_output_entry_slots)
            assert max(e for v in below for e in v) < o.sgs_fused_op_entry_slots[0], (name, j)
            seen[kind][host] += 1
        assert sgs_dialect.UNTYPED not in model.extra, (name, model.extra.get(sgs_dialect.UNTYPED))
        assert model.to_bytes(reencode=True) == fixed.read_bytes(), name
    # hosting convs: the ADD and PRELU chains, the fused RELU6; hosting depthwise: PRELU, LOGISTIC, MUL
    assert seen["CONV_2D"][1] >= 3 and seen["DEPTHWISE_CONV_2D"][1] >= 3, seen
    assert seen["CONV_2D"][0] >= 20 and seen["DEPTHWISE_CONV_2D"][0] >= 2, seen


def test_depthwise_buffer_regions_are_sized_by_their_entries(region_files):
    """DepthwiseConv2DOptions: ``sgs_weight_slots`` = 2 x the weight entries, ``sgs_input_slots`` = 6 x the
    input entries, ``sgs_output_slots`` = the output's bytes per code x the output entries, and the slots
    the entries take (2, 6, bytes per code each) never overlap."""
    n = int16 = tiled = 0
    for name, fixed in region_files.items():
        model = load_model(fixed)
        for j, op in enumerate(model.main.operators):
            if model.op_name(op) != "DEPTHWISE_CONV_2D":
                continue
            o = op.options
            ob = {"UINT8": 1, "INT16": 2}[model.main.tensors[op.outputs[0]].dtype]
            assert o.sgs_weight_slots == 2 * len(o.sgs_weight_entry_slots), (name, j)
            assert o.sgs_input_slots == 6 * len(o.sgs_input_entry_slots), (name, j)
            assert o.sgs_output_slots == ob * len(o.sgs_output_entry_slots), (name, j)
            taken = (_slots_of(o.sgs_weight_entry_slots, 2) + _slots_of(o.sgs_input_entry_slots, 6)
                     + _slots_of(o.sgs_output_entry_slots, ob))
            assert len(taken) == len(set(taken)) and max(taken) < 32, (name, j)
            n += 1
            int16 += ob == 2
            tiled += len(o.sgs_output_entry_slots) > 1
    assert n >= 6 and int16 >= 1 and tiled >= 2, (n, int16, tiled)


def test_inventory_patch_paths_reach_fields_of_dataclasses_dicts_and_frozen_tables():
    """tools/sgs_slot_inventory.py's patch paths (no SDK needed): a field of an options dataclass, of a dict,
    of a table frozen as (name, value) pairs inside a vector of tables, and a vector element."""
    import dataclasses  # noqa: PLC0415

    import sgs_slot_inventory as inventory  # noqa: PLC0415

    @dataclasses.dataclass(frozen=True)
    class Opts:
        sgs_rescale: tuple
        sgs_slot_41: tuple

    opts = Opts(((("multiplier", 5), ("sgs_slot_2", -1)), (("multiplier", 7), ("sgs_slot_2", -1))), (0, 0, 0))
    got = inventory._set(opts, ["sgs_rescale", "1", "sgs_slot_2"], 0)
    assert got.sgs_rescale == ((("multiplier", 5), ("sgs_slot_2", -1)), (("multiplier", 7), ("sgs_slot_2", 0)))
    assert inventory._get(got, ["sgs_rescale", "1", "sgs_slot_2"]) == 0
    assert inventory._set(opts, ["sgs_slot_41", "2"], 1).sgs_slot_41 == (0, 0, 1)
    extra = {"sgs_op_info": {"flag": 0, "sgs_slot_1": 0}}
    assert inventory._set(extra, ["sgs_op_info", "sgs_slot_1"], 1) == {"sgs_op_info": {"flag": 0, "sgs_slot_1": 1}}
    assert extra["sgs_op_info"]["sgs_slot_1"] == 0
    with pytest.raises(KeyError):
        inventory._set(opts, ["sgs_rescale", "0", "shift"], 1)
