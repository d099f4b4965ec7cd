#!/usr/bin/env python3
"""Test hypotheses on what the vendor's surveyed slots mean, over vendor files (black box).

    PYTHONPATH=. python tools/sgs_slot_meanings.py FILE_fixed.sim ...   # e.g. tools/sgs_slot_corpus.py's
    PYTHONPATH=. python tools/sgs_slot_meanings.py FILE_fixed.sim --patch OP   # needs the vendor SDK

For every slot of ``sgs_slots.SLOTS`` seen in the files' options tables (Conv2D, DepthwiseConv2D,
Pool2D, their nested tables) and in the per-tensor rescale tables, prints the candidate formulas over
the op's graph (input / output / weight shapes, kernel, strides, pads, types, the other slots of the
same table) that hold on **every** observation, simplest first, or ``none``; plus ``constant v`` when
one value was seen. A formula is a hypothesis the files do not refute; its evidence is the number of
observations and how many distinct values it explained (a formula fitted on one value is reported as
``constant``, not as a meaning). Slots are addressed by number (the field names come from
``sgs_dialect.TABLES``), so the check does not depend on the names it is used to choose.

Then: the weight DMA chunk hypotheses (Conv2DOptions 40, DepthwiseConv2DOptions 41), the rescale
tables of ADD / SUB / LEAKY_RELU / RELU / PRELU against the scales and ranges, Operator slot 13
against the graph, the LUTs against ``round(32767 f(x0 + i * step))`` for tanh / exp / sigmoid / ...,
and Conv2DOptions 10 / 12 as the int8 weight tiles (against the float weights of the ``*_float.sim``
next to each fixed file), each with its count of observations that hold.

``--patch OP`` sets each integer vendor scalar of op OP's options to value + 1 and to 0, re-encodes the
file through our encoder and runs the vendor's fixed simulator on one random image: refused (the
vendor's assertion), same outputs, or the largest output difference.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import logging
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from calibrator_custom.errors import ModelError  # noqa: E402
from calibrator_custom.model import sgs_dialect, sgs_slots  # noqa: E402
from calibrator_custom.model.graph import load_model  # noqa: E402

log = logging.getLogger("sgs_slot_meanings")


def ceil_to(x: int, m: int) -> int:
    return -(-x // m) * m


def table_items(value) -> dict:
    """A decoded table (options dataclass, dict or tuple of (name, value) pairs) -> {field name: value}."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    return value if isinstance(value, dict) else dict(value)


def by_slot(table: str, value) -> dict:
    """A decoded table (options dataclass, dict or tuple of (name, value) pairs) -> {slot: value}."""
    items = table_items(value)
    out = {}
    for f in sgs_dialect.TABLES.get(table, ()):
        if f.name in items:
            v = items[f.name]
            sub = f.type.strip("[]")
            if sub in sgs_dialect.TABLES and v is not None and sub.startswith("Sgs"):
                v = [by_slot(sub, e) for e in v] if f.type.startswith("[") else by_slot(sub, v)
            out[f.slot] = v
    return out


def window_props(model, op, kind: str, o: dict) -> dict:
    """The graph quantities a conv / depthwise / pool op's program could depend on."""
    g = model.main
    ti, to = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    _, h, w, cin = (int(d) for d in ti.shape)
    _, oh, ow, cout = (int(d) for d in to.shape)
    opts = op.options
    if kind == "Pool2DOptions":
        kh, kw = int(opts.filter_height), int(opts.filter_width)
        wbytes = 0
    else:
        tw = g.tensors[op.inputs[1]]
        kh, kw = int(tw.shape[1]), int(tw.shape[2])
        wbytes = len(model.buffers[tw.buffer].data or b"")
    sh, sw = int(opts.stride_h), int(opts.stride_w)
    p = {"H": h, "W": w, "Cin": cin, "OH": oh, "OW": ow, "Cout": cout, "kh": kh, "kw": kw, "sh": sh,
         "sw": sw, "pt": int(opts.padding_top or 0), "pb": int(opts.padding_bottom or 0),
         "pl": int(opts.padding_left or 0), "pr": int(opts.padding_right or 0),
         "in_bytes": {"UINT8": 1, "INT16": 2, "INT8": 1}.get(ti.dtype, 4),
         "out_bytes": {"UINT8": 1, "INT16": 2, "INT8": 1}.get(to.dtype, 4), "w_bytes": wbytes}
    dh = int(getattr(opts, "dilation_h_factor", 1) or 1)
    dw = int(getattr(opts, "dilation_w_factor", 1) or 1)
    p["kh_eff"], p["kw_eff"] = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    p["reads_graph_input"] = int(op.inputs[0] in g.inputs)
    p["OHv"] = (h - p["kh_eff"]) // sh + 1
    p["OWv"] = (w - p["kw_eff"]) // sw + 1
    for k in ("Cin", "Cout"):
        p[f"c16({k})"] = ceil_to(p[k], 16)
    p["macs"] = kh * kw * p["OHv"] * p["OWv"] * p["c16(Cin)"] * (p["c16(Cout)"] if kind == "Conv2DOptions" else 1)
    for s, v in o.items():
        if isinstance(v, int):
            p[f"s{s}"] = v
    if kind != "Pool2DOptions" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        p.update(_shift_props(model, ti, g.tensors[op.inputs[1]], g.tensors[op.inputs[2]], to))
    return p


def _smallest_shift(value: float) -> int:
    k = 0
    while value >= 8192 * 2 ** k:
        k += 1
    return k


def _shift_props(model, ti, tw, tb, to) -> dict:
    """N of the bias row 1 (M ~ s_in * s_w / s_out * 2**N) and shift bounds from the accumulator range."""
    import numpy as np  # noqa: PLC0415

    from calibrator_custom.vendor_fixed import layout  # noqa: PLC0415
    out = {}
    s_in, s_w, s_out = _scale(ti), _scale(tw), _scale(to)
    raw = model.buffers[tb.buffer].data if tb.buffer > 0 else None
    if None in (s_in, s_w, s_out) or not raw:
        return out
    _, mult = layout.unpack_bias(raw, int(to.shape[-1]))
    if mult.size and mult.max() > 0:
        out["N_bias"] = int(round(math.log2(float(np.max(mult)) / (s_in * s_w / s_out))))
    q = to.quantization
    acc = max(abs(int(q.extra["sgs_acc_max"][0])), abs(int(q.extra["sgs_acc_min"][0]))) \
        if q.extra.get("sgs_acc_max") and q.extra.get("sgs_acc_min") else None
    bq = tb.quantization
    if acc is not None:
        out["k_acc"] = _smallest_shift(acc)
        if bq is not None and bq.min and bq.max:
            b = max(abs(float(bq.min[0])), abs(float(bq.max[0])))
            out["k_acc_bias"] = max(out["k_acc"], _smallest_shift(b / (s_in * s_w)))
    return out


def _window_candidates(kind: str):
    """(text, fn(props) -> value) for a conv / depthwise / pool scalar slot, simplest first."""
    base = ["H", "W", "Cin", "OH", "OW", "Cout", "kh", "kw", "sh", "sw", "pt", "pb", "pl", "pr", "OHv", "OWv",
            "c16(Cin)", "c16(Cout)", "in_bytes", "out_bytes", "w_bytes", "macs"]
    c = [(k, lambda p, k=k: p[k]) for k in base]
    c += [(f"{k} {op} 1", lambda p, k=k, d=d: p[k] + d) for k in base[:16] for op, d in (("+", 1), ("-", 1))]
    c += [(f"{a} * {b}", lambda p, a=a, b=b: p[a] * p[b]) for a, b in itertools.combinations(base[:18], 2)]
    c += [(f"{a} + {b}", lambda p, a=a, b=b: p[a] + p[b]) for a, b in itertools.combinations(base[:16], 2)]
    c += [("kh * kw * OHv * OWv * c16(Cin) * c16(Cout) (OHv, OWv: the unpadded output with the dilated kernel)",
           lambda p: p["kh"] * p["kw"] * p["OHv"] * p["OWv"] * p["c16(Cin)"] * p["c16(Cout)"]),
          ("kh * kw * OHv * OWv * c16(Cin)", lambda p: p["kh"] * p["kw"] * p["OHv"] * p["OWv"] * p["c16(Cin)"])]
    shift_slots = (35, 37) if kind == "Conv2DOptions" else (36, 38)
    c += [(f"N_bias - s{shift_slots[1]} (N: the bias row 1 M ~ s_in * s_w / s_out * 2**N)",
           lambda p: p["N_bias"] - p[f"s{shift_slots[1]}"]),
          (f"N_bias - s{shift_slots[0]} (N: the bias row 1 M ~ s_in * s_w / s_out * 2**N)",
           lambda p: p["N_bias"] - p[f"s{shift_slots[0]}"]),
          ("k_acc: the smallest k with max|acc| < 8192 * 2**k (acc: the output's slots 4/5)", lambda p: p["k_acc"]),
          ("the smallest k with max|acc| and max|bias| / (s_in * s_w) < 8192 * 2**k", lambda p: p["k_acc_bias"])]
    c += [("4 if the op reads the graph input else 0", lambda p: 4 * p["reads_graph_input"])]
    # a channel count written 0 when it is 16 (one block of 16: the vendor's default)
    c += [(f"{k} (0 when {k} = 16)", lambda p, k=k: 0 if p[k] == 16 else p[k]) for k in ("Cin", "Cout")]
    # the input tile a tile of output rows / columns reads: the whole input for one tile, else
    # (out_tile - 1) * stride + effective kernel
    ow_s, oh_s = ("s23", "s24") if kind == "DepthwiseConv2DOptions" else ("s22", "s23")
    c += [(f"W if {ow_s} = OW else ({ow_s} - 1) * sw + kw_eff",
           lambda p: p["W"] if p[ow_s] == p["OW"] else (p[ow_s] - 1) * p["sw"] + p["kw_eff"]),
          (f"H if {oh_s} = OH else ({oh_s} - 1) * sh + kh_eff",
           lambda p: p["H"] if p[oh_s] == p["OH"] else (p[oh_s] - 1) * p["sh"] + p["kh_eff"]),
          (f"1 exactly when ({ow_s}, {oh_s}) = (OW, OH)",
           lambda p: 1 if (p[ow_s], p[oh_s]) == (p["OW"], p["OH"]) else (p["_v"] if p["_v"] != 1 else -1))]
    return c


def _slot_candidates(p: dict):
    """Relations to the table's other scalar slots (tiles: counts, sizes)."""
    out = []
    slots = sorted(k for k in p if k.startswith("s") and k[1:].isdigit())
    dims = ["H", "W", "Cin", "OH", "OW", "Cout"]
    for s in slots:
        out.append((f"{s}", lambda q, s=s: q.get(s)))
        for d in dims:
            out.append((f"ceil({d} / {s})", lambda q, s=s, d=d: -(-q[d] // q[s]) if q.get(s) else None))
    return out


def fit(obs: list[tuple[int, dict]], cands) -> list[str]:
    """The candidates equal to the slot's value on every observation."""
    ok = []
    for text, fn in cands:
        try:
            if all(fn({**p, "_v": v}) == v for v, p in obs):
                ok.append(text)
        except (KeyError, TypeError, ZeroDivisionError):
            continue
    return ok


def best(obs, cands):
    """The candidate right most often, how often, and one observation it misses."""
    top = ("-", 0, None)
    for text, fn in cands:
        n, bad = 0, None
        for v, p in obs:
            try:
                r = fn({**p, "_v": v})
            except (KeyError, TypeError, ZeroDivisionError):
                r = None
            if r == v:
                n += 1
            elif bad is None:
                bad = (v, r, p.get("file"))
        if n > top[1]:
            top = (text, n, bad)
    return top


def _uint8_view_zero_point(q) -> int | None:
    if not q or not q.min or not q.max or q.max[0] == q.min[0]:
        return None
    return math.floor(-q.min[0] * 255 / (q.max[0] - q.min[0]) + 0.5)


def rescale_obs(model, op, name: str):
    """(table, slot, value, props) of Operator slot 9 / 10 tables, one per input / output tensor."""
    g = model.main
    ext = by_slot("Operator", op.extra)
    for slot, idx in ((9, op.inputs), (10, op.outputs)):
        tables = ext.get(slot) or []
        if len(tables) != len(idx):
            continue
        for t, i in zip(tables, idx):
            ten = g.tensors[i]
            q = ten.quantization
            zp = int(q.zero_point[0]) if q is not None and q.zero_point else 0
            p = {"op": name, "zp": zp, "uint8_view_zp": _uint8_view_zero_point(q), "dtype": ten.dtype,
                 **{f"s{k}": v for k, v in t.items()}}
            for k, v in t.items():
                yield f"SgsOperatorSlot{slot}", k, v, p


RESCALE_CANDIDATES = [
    ("2 (an input's table)", lambda p: 2),
    ("1 (an output's table)", lambda p: 1),
    ("-zero_point", lambda p: -p["zp"]),
    ("zero_point", lambda p: p["zp"]),
    ("-uint8_view_zero_point", lambda p: -p["uint8_view_zp"]),
    ("uint8_view_zero_point", lambda p: p["uint8_view_zp"]),
]


def survey(files) -> dict:
    """{(table, slot): [(value, props)]} over the files' windowed options and rescale tables."""
    obs = collections.defaultdict(list)
    for f in files:
        try:
            model = load_model(f)
        except ModelError as e:
            log.warning("skipped (not readable): %s", e)
            continue
        if model.dialect != "sgs_fixed":
            continue
        for op in model.main.operators:
            name = model.op_name(op)
            o = op.options
            kind = type(o).__name__ if o is not None else None
            if kind in ("Conv2DOptions", "DepthwiseConv2DOptions", "Pool2DOptions"):
                vals = by_slot(kind, o)
                vendor = {s: v for s, v in vals.items() if s in dict(sgs_slots.SLOTS[kind])}
                if not any(vendor.values()):
                    continue
                p = window_props(model, op, kind, vendor)
                p["file"] = Path(f).name
                for s, v in vendor.items():
                    obs[(kind, s)].append((v, p))
            for table, s, v, p in rescale_obs(model, op, name):
                p = {**p, "file": Path(f).name}
                obs[(table, s)].append((v, p))
    return obs


#: (table of the chunk list, its slot, the chunk table type)
CHUNK_LISTS = (("Conv2DOptions", 40, "SgsConv2DOptionsSlot40"), ("DepthwiseConv2DOptions", 41,
                                                                 "SgsDepthwiseConv2DOptionsSlot41"))
CHUNK_HYPOTHESES = {
    0: ("the chunk's byte offset in the weight buffer (the bytes of the chunks before it)",
        lambda ch, i, wb: sum(c.get(1, 0) for c in ch[:i])),
    1: ("the chunk's bytes (the chunks' bytes add up to the weight buffer's size)",
        lambda ch, i, wb: ch[i].get(1, 0) if sum(c.get(1, 0) for c in ch) == wb else None),
    2: ("the chunk's bytes / 32", lambda ch, i, wb: ch[i].get(1, 0) // 32 if ch[i].get(1, 0) % 32 == 0 else None),
    3: ("0", lambda ch, i, wb: 0),
    4: ("1 on the last chunk, else 0", lambda ch, i, wb: int(i == len(ch) - 1)),
    5: ("1 on every chunk but the first", lambda ch, i, wb: int(i > 0)),
}


def chunk_report(files) -> list[str]:
    """Check CHUNK_HYPOTHESES on every weight DMA chunk of the files' convs."""
    counts = collections.defaultdict(lambda: [0, 0])
    for f in files:
        try:
            model = load_model(f)
        except ModelError:
            continue
        for op in model.main.operators:
            for kind, slot, sub in CHUNK_LISTS:
                if type(op.options).__name__ != kind:
                    continue
                ch = by_slot(kind, op.options).get(slot)
                if not ch:
                    continue
                tw = model.main.tensors[op.inputs[1]]
                wb = len(model.buffers[tw.buffer].data or b"")
                for i, c in enumerate(ch):
                    for s, (_, fn) in CHUNK_HYPOTHESES.items():
                        counts[(sub, s)][0] += fn(ch, i, wb) == c.get(s, 0)
                        counts[(sub, s)][1] += 1
    return [f"{sub}.{s} ({sgs_dialect_name(sub, s)}): {CHUNK_HYPOTHESES[s][0]}: {ok} of {n} chunks"
            + ("" if ok == n else " (refuted)") for (sub, s), (ok, n) in sorted(counts.items())]


def _scale(t) -> float | None:
    q = t.quantization
    return float(q.scale[0]) if q is not None and q.scale else None


def _ratio_f(t) -> float | None:
    """F = max(1, |min| / max) of a tensor's range (the vendor's negative-side ratio)."""
    q = t.quantization
    if q is None or not q.min or not q.max or q.max[0] <= 0:
        return None
    return max(1.0, abs(float(q.min[0])) / float(q.max[0]))


def _fixed_point(x: float, shift: int) -> int:
    return int(math.floor(abs(x) * 2.0 ** shift + 0.5)) * (1 if x >= 0 else -1)


def rescale_option_checks(model, op, name: str):
    """(table.slot, hypothesis, holds) for the multiplier / shift tables of ADD, SUB, LEAKY_RELU, RELU, PRELU."""
    g = model.main
    o = op.options
    kind = type(o).__name__ if o is not None else None
    t = [g.tensors[i] for i in op.inputs if i >= 0]
    out = g.tensors[op.outputs[0]]
    if kind in ("AddOptions", "SubOptions"):
        sub = "Sgs" + kind + "Slot1"
        for tab in by_slot(kind, o).get(1) or []:
            n, so, mode = tab.get(3), _scale(out), tab.get(0)
            sign = -1 if kind == "SubOptions" else 1
            if mode == 22:  # two rescaled operands (activations, or a full-shape constant)
                for k, (ten, sg) in enumerate(((t[0], 1), (t[1], sign))):
                    yield (f"{sub}.{1 + k}", f"slot 0 = 22: {'-' if sg < 0 else ''}round(s_in{k} / s_out * 2**slot3)",
                           bool(so and _scale(ten)) and tab.get(1 + k) == _fixed_point(sg * _scale(ten) / so, n))
            elif mode == 8:  # a constant operand folded (scalar / per-channel constant)
                yield (f"{sub}.1", "slot 0 = 8: round(2 * s_in0 / s_out * 2**slot3)",
                       bool(so and _scale(t[0])) and tab.get(1) == _fixed_point(2 * _scale(t[0]) / so, n))
                yield f"{sub}.2", "slot 0 = 8: -1", tab.get(2) == -1
            else:
                yield f"{sub}.0", "22 or 8", False
    if kind == "LeakyReluOptions":
        tabs = by_slot(kind, o).get(1) or []
        if len(tabs) == 2:
            a = tabs[0]
            yield ("SgsLeakyReluOptionsSlot1.1", "table 0: round(alpha * 2**slot5)",
                   a.get(1) == _fixed_point(float(o.alpha), a.get(5)))
            yield ("SgsLeakyReluOptionsSlot1.1", "table 1: round(F * 2**slot5), F = max(1, |min_in| / max_in)",
                   _ratio_f(t[0]) is not None and tabs[1].get(1) == _fixed_point(_ratio_f(t[0]), tabs[1].get(5)))
    if name in ("RELU", "RELU6", "PRELU") and model.dialect == "sgs_fixed":
        ext = by_slot("Operator", op.extra)
        q_in, q_out = t[0].quantization, out.quantization
        ins, outs = ext.get(9) or [], ext.get(10) or []
        types = f"{t[0].dtype} -> {out.dtype}"
        if ins and outs and q_in and q_in.min and q_in.max and _scale(t[0]) and _scale(out):
            view = (float(q_in.max[0]) - float(q_in.min[0])) / 255
            yield ("SgsOperatorSlot9.2", f"{name} {types}: round(s_uint8_view / s_in * 2**shift)",
                   ins[0].get(2) == _fixed_point(view / _scale(t[0]), ins[0].get(3)))
            yield ("SgsOperatorSlot9.2", f"{name} {types}: round(s_in / s_out * 2**shift)",
                   ins[0].get(2) == _fixed_point(_scale(t[0]) / _scale(out), ins[0].get(3)))
            yield ("SgsOperatorSlot10.2", f"{name} {types}: round((max_in / 32767) / s_out * 2**shift)",
                   outs[0].get(2) == _fixed_point(float(q_in.max[0]) / 32767 / _scale(out), outs[0].get(3)))
    if kind == "SgsActivationOptions":
        for tab in by_slot(kind, o).get(2) or []:
            f = _ratio_f(t[0])
            yield ("SgsActivationOptionsSlot2.1", "round(F * 2**slot5), F = max(1, |min_in| / max_in)",
                   f is not None and tab.get(1) == _fixed_point(f, tab.get(5)))
            yield ("SgsActivationOptionsSlot2.5", "14 - floor(log2 F)",
                   f is not None and tab.get(5) == 14 - math.floor(math.log2(f)))
    if kind == "SgsPreluOptions":
        tabs = by_slot(kind, o).get(0) or []
        if len(tabs) == 2:
            f = _ratio_f(t[0])
            yield ("SgsPreluOptionsSlot0.1", "table 1: round(F * 2**slot5), F = max(1, |min_in| / max_in)",
                   f is not None and tabs[1].get(1) == _fixed_point(f, tabs[1].get(5)))
            aq = t[1].quantization
            amax = max(abs(float(aq.min[0])), abs(float(aq.max[0]))) if aq and aq.min and aq.max else None
            yield ("SgsPreluOptionsSlot0.5", "table 0: 14 - floor(log2(max|alpha| * F))",
                   amax is not None and f is not None and tabs[0].get(5) == 14 - math.floor(math.log2(amax * f)))


#: the lookup tables: (options table, slot of the LUT table, LUT table type)
LUTS = (("SgsLogisticOptions", 0, "SgsLogisticOptionsSlot0"), ("SgsTanhOptions", 0, "SgsTanhOptionsSlot0"),
        ("SoftmaxOptions", 1, "SgsSoftmaxOptionsSlot1"))
LUT_FUNCTIONS = {"tanh": math.tanh, "exp": math.exp, "sigmoid": lambda x: 1 / (1 + math.exp(-x)),
                 "exp(-x)": lambda x: math.exp(-x), "log2(1+x)": lambda x: math.log2(1 + x) if x > -1 else math.nan}


def lut_fit(values) -> str:
    """``round(32767 f(x0 + i * step))`` matching every entry, or ``round(32767 f(x) / f(x_last))`` (the
    table scaled so its last entry is 32767), or the closest such (max error)."""
    best = (math.inf, "")
    n = len(values)
    for scaled in (False, True):  # the plain form first: a scaled fit only where no plain one holds
        if best[0] == 0:
            break
        for name, fn in LUT_FUNCTIONS.items():
            for x0 in [k / 4 for k in range(-32, 33)]:
                for step in [2.0 ** -e for e in range(2, 11)]:
                    try:
                        fx = [fn(x0 + i * step) for i in range(n)]
                    except (OverflowError, ValueError):
                        continue
                    if scaled and not (fx[-1] and math.isfinite(fx[-1])):
                        continue
                    try:
                        ys = [round(32767 * (f / fx[-1] if scaled else f)) for f in fx]
                    except (OverflowError, ValueError):
                        continue
                    err = max(abs(y - v) for y, v in zip(ys, values))
                    if err < best[0]:
                        x = f"{name}({x0:g} + i * 2**{int(math.log2(step))})"
                        last = f" / {name}({x0 + (n - 1) * step:g})" if scaled else ""
                        best = (err, f"round(32767 {x}{last}), i = 0..{n - 1}")
    return best[1] if best[0] == 0 else f"none (closest: {best[1]}, max error {best[0]})"


def option_report(files) -> list[str]:
    """The rescale-table hypotheses (counts of files / ops holding) and the LUT fits, per slot."""
    counts = collections.defaultdict(lambda: [0, 0])
    luts = collections.defaultdict(set)
    for f in files:
        try:
            model = load_model(f)
        except ModelError:
            continue
        if model.dialect == "sgs_fixed":
            readers = collections.defaultdict(set)
            for op in model.main.operators:
                for i in op.inputs:
                    readers[i].add(model.op_name(op))
            for op in model.main.operators:
                feeds = any(n.endswith("POOL_2D") for i in op.outputs for n in readers[i])
                want = 1 if feeds and model.op_name(op) == "CONV_2D" else None
                key = ("Operator.13", "1 on a CONV_2D whose output a pool reads, else absent")
                counts[key][0] += by_slot("Operator", op.extra).get(13) == want
                counts[key][1] += 1
        for op in model.main.operators:
            for key, text, ok in rescale_option_checks(model, op, model.op_name(op)):
                counts[(key, text)][0] += bool(ok)
                counts[(key, text)][1] += 1
            kind = type(op.options).__name__ if op.options is not None else None
            for table, slot, sub in LUTS:
                if kind == table:
                    lut = by_slot(table, op.options).get(slot) or {}
                    for s in (0, 1):
                        if lut.get(s):
                            luts[(sub, s)].add(tuple(lut[s]))
    lines = [f"{k}: {text}: {ok} of {n}" + ("" if ok == n else " (refuted)")
             for (k, text), (ok, n) in sorted(counts.items())]
    for (sub, s), vals in sorted(luts.items()):
        fits = {lut_fit(list(v)) for v in vals}
        lines.append(f"{sub}.{s} ({sgs_dialect_name(sub, s)}): {len(vals)} distinct tables: " + "; ".join(sorted(fits)))
    return lines


def tile_report(files) -> list[str]:
    """Conv2DOptions 10 / 12 as the int8 weight tiles: decoded with them (0 = 16), a fixed.sim's weight
    buffer against round(w / scale) of the float weights of the ``*_float.sim`` next to it (a conv with
    slot 38 = 2, a depthwise run as a conv, decoded as its diagonal blocks: ``model.sgs_weights``)."""
    import numpy as np  # noqa: PLC0415

    from calibrator_custom.model.sgs_weights import unpack_diagonal_blocks  # noqa: PLC0415
    from calibrator_custom.vendor_fixed import layout  # noqa: PLC0415
    ok = n = whole_wrong = diagonal = 0
    misses = []
    for f in files:
        fl = Path(str(f).replace("_fixed.sim", "_float.sim"))
        try:
            model, flm = load_model(f), load_model(fl)
        except (ModelError, OSError):
            continue
        by_name = {t.name: t for t in flm.main.tensors}
        for op in model.main.operators:
            if model.op_name(op) != "CONV_2D":
                continue
            tw = model.main.tensors[op.inputs[1]]
            w = flm.tensor_data(by_name[tw.name]) if tw.name in by_name else None
            if tw.dtype != "INT8" or w is None:
                continue
            codes = np.clip(np.rint(np.asarray(w, np.float64) / float(tw.quantization.scale[0])), -127, 127)
            o = by_slot("Conv2DOptions", op.options)
            raw = model.buffers[tw.buffer].data
            try:
                if o.get(38) == 2:  # a depthwise run as a conv: the diagonal 16-channel blocks only
                    got = unpack_diagonal_blocks(raw, tw.shape)
                    diagonal += 1
                else:
                    got = layout.unpack_conv_weights(raw, tw.shape, np.int8, o.get(10) or 16, o.get(12) or 16)
                good = bool(np.array_equal(got, codes))
                bad_codes = int(np.sum(got != codes))
            except ModelError:
                good, bad_codes = False, -1
            try:
                whole_wrong += not np.array_equal(layout.unpack_conv_weights(raw, tw.shape, np.int8), codes)
            except ModelError:
                whole_wrong += 1
            n += 1
            ok += good
            if not good:
                misses.append(f"{Path(f).name} {tuple(tw.shape)}: {bad_codes} codes off")
    return [f"Conv2DOptions.10 / .12 as the weight tiles: {ok} of {n} int8 convs decode to the float weights' "
            f"codes ({diagonal} of them slot 38 = 2, decoded as diagonal blocks; the whole-tensor layout: "
            f"{n - whole_wrong}); misses: {'; '.join(misses) or 'none'}"]


def describe(key, values) -> str:
    kind, slot = key
    ints = [(v, p) for v, p in values if isinstance(v, int)]
    distinct = sorted({v for v, _ in ints})
    files = len({p["file"] for _, p in values})
    head = f"{kind}.{slot} ({sgs_dialect_name(kind, slot)}): {len(values)} obs in {files} files"
    if not ints:
        lens = sorted({len(v) if isinstance(v, (list, tuple)) else -1 for v, _ in values})
        return head + f", vector lengths {lens[:8]}: (vectors not fitted)"
    if len(distinct) == 1:
        return head + f": constant {distinct[0]}"
    cands = RESCALE_CANDIDATES if kind.startswith("SgsOperatorSlot") else \
        _window_candidates(kind) + _slot_candidates(ints[0][1])
    cands = [(t, fn) for t, fn in cands if t != f"s{slot}"]
    ok = fit(ints, cands)
    if ok:
        return head + f", {len(distinct)} values: " + "; ".join(ok[:6])
    text, n, bad = best(ints, cands)
    return head + f", {len(distinct)} values: none (closest: {text} on {n} of {len(ints)}; e.g. {bad})"


def sgs_dialect_name(table: str, slot: int) -> str:
    return next((f.name for f in sgs_dialect.TABLES.get(table, ()) if f.slot == slot), "?")


def patch_report(fixed: Path, op_index: int, seed: int = 0) -> list[str]:
    """Each integer vendor scalar of one op's options set to value + 1 (and 0 when not 0), re-encoded,
    run in the vendor's fixed simulator on one random image: refused, same outputs, or how far off."""
    import dataclasses  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    sys.path.insert(0, str(ROOT.parent / "shared" / "vendor_sdk" / "harness"))
    import oracle  # noqa: PLC0415
    model = load_model(fixed)
    g = model.main
    shape = tuple(int(d) for d in g.tensors[g.inputs[0]].shape)
    x = np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)
    base = {k: v for k, v in oracle.fixed_sim(str(fixed), x).items() if not k.startswith("_")}
    op = g.operators[op_index]
    kind = type(op.options).__name__
    vendor = {f.name for f in sgs_dialect.VENDOR_FIELDS.get(kind, ())}
    lines = []
    with tempfile.TemporaryDirectory(prefix="slotpatch_") as d:
        for name in sorted(vendor):
            v = getattr(op.options, name)
            if not isinstance(v, int) or isinstance(v, bool):
                continue
            for new in sorted({v + 1, 0} - {v}):
                m = load_model(fixed)
                o = m.main.operators[op_index]
                o.options = dataclasses.replace(o.options, **{name: new})
                path = Path(d) / "patched_fixed.sim"
                path.write_bytes(m.to_bytes(reencode=True))
                try:
                    out = {k: v2 for k, v2 in oracle.fixed_sim(str(path), x).items() if not k.startswith("_")}
                    diff = max(float(np.max(np.abs(np.asarray(out[k], np.float64) - np.asarray(base[k], np.float64))))
                               for k in base)
                    res = "same outputs" if diff == 0 else f"outputs differ (max |diff| {diff:.4g})"
                except oracle.OracleError as e:
                    asserts = [ln.strip() for ln in str(e).splitlines() if "ssert" in ln]
                    res = "refused: " + (asserts[0] if asserts else str(e).splitlines()[-1])[:220]
                lines.append(f"{kind}.{name} {v} -> {new}: {res}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--patch", type=int, metavar="OP", help="patch every vendor scalar of op OP of the "
                    "(one) fixed.sim given and run the vendor's fixed simulator (needs the SDK)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.patch is not None:
        for line in patch_report(Path(args.files[0]), args.patch):
            log.info("%s", line)
        return 0
    obs = survey(args.files)
    for key in sorted(obs):
        log.info("%s", describe(key, obs[key]))
    for line in chunk_report(args.files) + option_report(args.files) + tile_report(args.files):
        log.info("%s", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
