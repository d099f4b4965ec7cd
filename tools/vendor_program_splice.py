#!/usr/bin/env python3
"""Does a vendor fixed.sim need the vendor's own IPU program per conv, or does any valid one do?

Needs ../shared/vendor_sdk (set up). Vendor-made files go to the oracle cache (never committed).

    PYTHONPATH=. python tools/vendor_program_splice.py FLOAT_SIM L1_FIXED_SIM IMAGES_DIR [--out DIR]

For every CONV_2D / DEPTHWISE_CONV_2D of a vendor L1 fixed.sim (e.g. iris_landmark's), a model of
that conv *on its own* (same input/weight shapes, stride, padding and types; random weights) is made
with the vendor's SDK (builder -> convert_tflite -> calibrate_l1): for a conv reading UINT8 and
writing INT16, ``x -> 1x1 conv 3->Cin -> conv``; for a depthwise writing UINT8,
``x -> 1x1 conv -> depthwise -> 1x1 conv``; for the conv reading the graph input, ``x -> conv``;
for a conv reading INT16, a LOGISTIC before it.
The conv's program (every vendor options slot but the two shifts, and the int8 weight buffer packed
in the tiling the standalone's buffer shows) replaces the model's, all convs at once; the spliced
file is then compiled and run by the vendor's fixed and offline simulators and by our
fixed_simulator on the photos, and compared with the original file's outputs.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import calibrator_custom  # noqa: E402,F401  (before numpy-heavy work: pins the BLAS kernel)
import vendor_fixed_oracle as vo  # noqa: E402
from calibrator_custom.model.builder import ModelBuilder  # noqa: E402
from calibrator_custom.model import sgs_dialect, sgs_tags  # noqa: E402
from calibrator_custom.model.graph import Buffer, load_model  # noqa: E402
from calibrator_custom.vendor_fixed import layout, pack  # noqa: E402

log = logging.getLogger("vendor_program_splice")
SHIFT_SLOTS = {"CONV_2D": ("sgs_bias_shift", "sgs_total_shift"), "DEPTHWISE_CONV_2D": ("sgs_bias_shift", "sgs_total_shift")}
OPTIONS_TABLE = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions"}
ONE = {"padding": "SAME", "stride_w": 1, "stride_h": 1}


@dataclasses.dataclass(frozen=True)
class ConvKey:
    kind: str
    in_shape: tuple
    w_shape: tuple
    stride: int
    padding: str
    in_dtype: str
    out_dtype: str
    graph_input: bool


def conv_keys(fixed_model):
    sg = fixed_model.main
    out = {}
    for j, op in enumerate(sg.operators):
        kind = fixed_model.op_name(op)
        if kind not in SHIFT_SLOTS:
            continue
        ti, tw, to = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]], sg.tensors[op.outputs[0]]
        o = op.options
        pads = (o.padding_left, o.padding_right, o.padding_top, o.padding_bottom)
        out[j] = ConvKey(kind, tuple(ti.shape), tuple(tw.shape), int(o.stride_w),
                         "VALID" if not any(pads) else "SAME", ti.dtype, to.dtype, op.inputs[0] in sg.inputs)
    return out


def standalone_builder(key: ConvKey, seed: int = 0):
    """The builder model of a conv on its own, with the types ``key`` asks for; -> (builder, ranges, name).

    ``x -> 1x1 conv 3->Cin`` feeds the conv (not with ``graph_input``), then a LOGISTIC for an INT16
    input; a 1x1 conv 4 channels follows for a UINT8 output (an INT16 one is the graph output)."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    _, h, w, cin = key.in_shape
    x = b.input("x", (1, h, w, 3))
    ranges = {"x": (-1.0, 1.0)}
    y = x
    if not key.graph_input:
        y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(cin, 1, 1, 3)).astype(np.float32)),
                             b.constant("b1", (g.normal(size=cin) * 0.3).astype(np.float32))], ONE, name="c1")
        ranges["c1"] = (-1.5, 2.5)
        if key.in_dtype == "INT16":  # the vendor's plan gives a LOGISTIC an INT16 output
            y = b.op("LOGISTIC", [y], name="s1")
            ranges["s1"] = (0.0, 1.0)
    opts = {"padding": key.padding, "stride_w": key.stride, "stride_h": key.stride}
    if key.kind == "CONV_2D":
        cout = key.w_shape[0]
        z = b.op("CONV_2D", [y, b.constant("w2", g.normal(size=key.w_shape).astype(np.float32)),
                             b.constant("b2", g.normal(size=cout).astype(np.float32))], opts, name="c2")
    else:
        opts["depth_multiplier"] = 1
        z = b.op("DEPTHWISE_CONV_2D", [y, b.constant("w2", g.normal(size=key.w_shape).astype(np.float32)),
                                       b.constant("b2", g.normal(size=key.w_shape[-1]).astype(np.float32))],
                 opts, name="c2")
    ranges["c2"] = (-6.0, 5.0)
    last = "c2"
    if key.out_dtype == "UINT8":
        c = key.w_shape[-1] if key.kind == "DEPTHWISE_CONV_2D" else key.w_shape[0]
        z = b.op("CONV_2D", [z, b.constant("w3", g.normal(size=(4, 1, 1, c)).astype(np.float32)),
                             b.constant("b3", g.normal(size=4).astype(np.float32))], ONE, name="c3")
        ranges["c3"] = (-20.0, 20.0)
        last = "c3"
    b.output(z)
    return b, ranges, last


def make_standalone(key: ConvKey) -> Path:
    b, ranges, last = standalone_builder(key)
    tag = "program_{}_{}".format(key.kind.lower(), "x".join(map(str, key.in_shape[1:] + key.w_shape)))
    return vo.make_fixed(b, ranges, vo.ini_text(["x"], [last]), tag)


def program_fields(options, kind: str) -> dict:
    """The vendor options slots of a conv's IPU program: every vendor field (``sgs_*``, named or
    numbered) but the two shifts and the field layout."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
            if f.name.startswith("sgs_") and f.name != "sgs_layout" and f.name not in SHIFT_SLOTS[kind]}


def slot_number(kind: str, name: str) -> int:
    """The vtable slot of a conv options field, named (``sgs_out_channels_per_tile``) or numbered."""
    if name.startswith("sgs_slot_"):
        return int(name.split("_")[-1])
    return sgs_dialect.slot_of(OPTIONS_TABLE[kind], name)


def merged_layout(own: tuple, standalone: tuple, program: set) -> tuple:
    """The options' field layout after a splice: the program fields the standalone writes, the other
    fields the model's own op writes (its padding, activation and shifts), in the standalone's order
    (a field only the model's op writes keeps its place after the field it followed)."""
    keep = [f for f in standalone if f in program] + [f for f in own if f not in program]
    order = {f: i for i, f in enumerate(standalone)}
    for i, f in enumerate(own):
        if f not in order:
            prev = [order[g] for g in own[:i] if g in order]
            order[f] = (max(prev) if prev else -1) + 0.5
    return tuple(sorted(dict.fromkeys(keep), key=lambda f: order[f]))


def conv_op(model, name: str = "c2"):
    sg = model.main
    for op in sg.operators:
        if model.op_name(op) in SHIFT_SLOTS and sg.tensors[op.outputs[0]].name == name:
            return op
    raise KeyError(name)


def weight_tiling(codes: np.ndarray, raw: bytes) -> tuple[int, int] | None:
    """(output_tile, input_tile) whose packing of ``codes`` is the buffer ``raw`` (None: no candidate)."""
    for to, ti in layout.conv_tilings(codes.shape):
        packed = pack.pack_conv_weights(codes, ti, to)
        if raw[:len(packed)] == packed and not any(raw[len(packed):]):
            return to, ti
    return None


def float_weights(float_model, name: str) -> np.ndarray:
    t = float_model.main.tensors[float_model.main.tensor_index(name)]
    return np.frombuffer(float_model.buffers[t.buffer].data, np.float32, count=int(np.prod(t.shape))).reshape(t.shape)


def standalone_program(key: ConvKey) -> dict:
    """{fields, tiling, buffer_bytes} of the vendor's program for ``key`` on its own."""
    path = make_standalone(key)
    fx, fl = load_model(path), load_model(path.with_name("m_float.sim"))
    op = conv_op(fx)
    tw = fx.main.tensors[op.inputs[1]]
    res = {"fields": program_fields(op.options, key.kind), "layout": op.options.sgs_layout,
           "buffer_bytes": len(fx.buffers[tw.buffer].data), "path": path}
    if key.kind == "CONV_2D":
        codes = pack.weight_codes(float_weights(fl, tw.name), tw.quantization.scale[0])
        res["tiling"] = weight_tiling(codes, fx.buffers[tw.buffer].data)
    return res


def splice(fixed_path: Path, float_path: Path, only=None):
    """The fixed model with every conv's program replaced by its standalone program; -> (model, table)."""
    fx, fl = load_model(fixed_path), load_model(float_path)
    keys = conv_keys(fx)
    programs = {}
    rows = []
    for j, key in keys.items():
        if only is not None and j not in only:
            continue
        if key not in programs:
            programs[key] = standalone_program(key)
        prog = programs[key]
        op = fx.main.operators[j]
        old = program_fields(op.options, key.kind)
        changed = sorted(slot_number(key.kind, k) for k in old if old[k] != prog["fields"][k])
        row = {"op": j, "kind": key.kind, "in": key.in_shape, "w": key.w_shape, "changed_slots": changed}
        if key.kind == "CONV_2D":
            tw = fx.main.tensors[op.inputs[1]]
            codes = pack.weight_codes(float_weights(fl, tw.name), tw.quantization.scale[0])
            raw = fx.buffers[tw.buffer].data
            row["tiling"] = weight_tiling(codes, raw)
            if row["tiling"] is None or prog["tiling"] is None:
                row["changed_slots"] = "skipped: weight tiling not established"
                rows.append(row)
                continue
            to, ti = prog["tiling"]
            data = pack.pack_conv_weights(codes, ti, to)
            data += bytes(max(0, prog["buffer_bytes"] - len(data)))
            fx.buffers[tw.buffer] = dataclasses.replace(fx.buffers[tw.buffer], data=data)
            row["new_tiling"] = prog["tiling"]
        if not changed:  # the same program: keep the op as it is (its layout holds its own non-program fields)
            rows.append(row)
            continue
        op.options = dataclasses.replace(op.options, **prog["fields"],
                                         sgs_layout=merged_layout(op.options.sgs_layout, prog["layout"], set(old)))
        rows.append(row)
    return fx, rows, programs


def _quant_positions(data: bytes) -> list[int]:
    """File position of each tensor's QuantizationParameters table."""
    return sgs_tags.quantization_positions(data)[0]


def tag_constant(data: bytes, model) -> int:
    """K of ``sgs_tag = (K - (file size - position of the tensor's quantization table)) mod 256``,
    one value for every tagged tensor of a vendor file (a tag of 0 is written as an absent field)."""
    n = len(data)
    ks = {(t.extra["sgs_tag"] + n - r) % 256 for t, r in zip(model.main.tensors, _quant_positions(data))
          if t.extra.get("sgs_tag") is not None}
    if len(ks) != 1:
        raise ValueError(f"the tensors' sgs_tag do not follow one constant: {sorted(ks)}")
    return ks.pop()


vtable_cluster_start = sgs_tags.vtable_cluster_start


def encode_with_tags(model) -> bytes:
    """Re-encode ``model`` with every Tensor.5 ``sgs_tag`` recomputed for the new positions (the
    vendor's compiler recomputes them and drops a 0 tag, so stale tags break its size check): the
    package's own rule, ``Model.to_bytes`` with ``calibrator_custom.model.sgs_tags``."""
    return model.to_bytes(reencode=True)


def _encode(model, fixed_path: Path, fix_tags: bool) -> bytes:
    if not fix_tags:  # the tags as they were read (the experiment before the tag rule)
        from calibrator_custom.model import flatbuf
        return flatbuf.encode(model.to_dict(), model.file_identifier, dialect=model.dialect)
    return encode_with_tags(model)


def _photo(images: Path, h: int, w: int) -> np.ndarray:
    import cv2
    p = sorted(images.iterdir())[0]
    return cv2.resize(cv2.imread(str(p))[:, :, ::-1], (w, h))[None].astype(np.uint8)


def each(args, out: Path) -> int:
    """Splice one conv's standalone program at a time: does the simulator run it, does the compiler
    take it, do the outputs change?"""
    o = vo.oracle()
    fx = load_model(args.fixed_sim)
    _, h, w, _ = fx.main.tensors[fx.main.inputs[0]].shape
    x = _photo(args.images, h, w)
    ref = o.fixed_sim(str(args.fixed_sim), x)
    _, rows, _ = splice(args.fixed_sim, args.float_sim)
    for r in rows:
        if not isinstance(r["changed_slots"], list) or not r["changed_slots"]:
            continue
        model, _, _ = splice(args.fixed_sim, args.float_sim, only={r["op"]})
        path = out / f"op{r['op']}_fixed.sim"
        path.write_bytes(_encode(model, args.fixed_sim, args.fix_tags))
        sim, comp = vo.vendor_verdicts(path, x, ref)
        log.info("op %s %s in %s w %s tiling %s -> %s slots %s: simulator %s; compiler %s", r["op"], r["kind"],
                 r["in"], r["w"], r.get("tiling"), r.get("new_tiling"), r["changed_slots"], sim, comp)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("float_sim", type=Path)
    ap.add_argument("fixed_sim", type=Path)
    ap.add_argument("images", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--only", type=str, default=None, help="comma-separated op indices to splice (default: all)")
    ap.add_argument("--fix-tags", action="store_true", help="recompute every tensor's sgs_tag for the new layout")
    ap.add_argument("--each", action="store_true", help="splice one conv at a time (which programs are refused)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import cv2
    out = args.out or Path(tempfile.mkdtemp(prefix="splice_"))
    out.mkdir(parents=True, exist_ok=True)
    if args.each:
        return each(args, out)
    only = None if args.only is None else {int(v) for v in args.only.split(",")}
    model, rows, _ = splice(args.fixed_sim, args.float_sim, only)
    n_changed = sum(1 for r in rows if isinstance(r["changed_slots"], list) and r["changed_slots"])
    for r in rows:
        log.info("op %s %s in %s w %s: slots changed %s tiling %s -> %s", r["op"], r["kind"], r["in"], r["w"],
                 r["changed_slots"], r.get("tiling"), r.get("new_tiling"))
    log.info("%d of %d convs got another program", n_changed, len(rows))
    spliced = out / "spliced_fixed.sim"
    spliced.write_bytes(_encode(model, args.fixed_sim, args.fix_tags))
    o = vo.oracle()
    try:
        offline = o.compile_offline(str(spliced), str(out / "spliced_offline.sim"))
        log.info("compile_offline: accepted (%s)", offline)
    except o.OracleError as e:
        offline = None
        log.info("compile_offline: REFUSED: %s", str(e)[-400:])
    sim = calibrator_custom.fixed_simulator(str(spliced))
    _, h, w, _ = (int(v) for v in sim.get_input_details()[0]["shape"])
    for p in sorted(args.images.iterdir())[:args.photos]:
        x = cv2.resize(cv2.imread(str(p))[:, :, ::-1], (w, h))[None].astype(np.uint8)
        ref = o.fixed_sim(str(args.fixed_sim), x)
        new = o.fixed_sim(str(spliced), x)
        off = o.offline_sim(offline, x) if offline else None
        sim.set_input(0, x)
        sim.invoke()
        for k, od in enumerate(sim.get_output_details()):
            name, scale = od["name"], od["quantization"][0]
            a, b = np.round(ref[name] / scale), np.round(new[name] / scale)
            y = sim.get_output(k)
            y = y[tuple(slice(0, s) for s in b.shape)]
            ours = np.round(y.astype(np.float64) / scale)
            msg = (f"{p.name} {name}: vendor spliced vs original: {int((a != b).sum())} of {a.size} codes differ "
                   f"(max {np.abs(a - b).max():.0f})")
            if off is not None:
                c = np.round(off[name] / scale)
                msg += f"; offline vs spliced fixed: {int((c != b).sum())} differ"
            msg += f"; ours vs vendor spliced: {int((ours != b).sum())} differ"
            log.info(msg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
