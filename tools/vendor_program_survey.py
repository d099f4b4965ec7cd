#!/usr/bin/env python3
"""The vendor's IPU program of standalone convs over many configurations (data for
``calibrator_custom.vendor_fixed.program``).

Needs ../shared/vendor_sdk (set up). Vendor-made files go to the oracle cache in /tmp (never committed).

    PYTHONPATH=. python tools/vendor_program_survey.py train|heldout|heldout_depthwise [--n N] [--out FILE.jsonl]

Draws conv configurations (kind, H, W, Cin, Cout, kernel, stride, padding, input / output type, graph
input) with a fixed seed per set (``train`` and ``heldout`` draw from the same distribution with
different seeds; ``heldout_depthwise`` draws depthwise convs only), makes each conv on its own with the vendor's SDK
(``vendor_program_splice.make_standalone``) and writes one JSON line per conv: the configuration,
the op kind the converter made (a depthwise may become a CONV_2D), the tensors' types, every program
slot (slot number -> value; vectors of tables as lists of dicts) and the slots the file writes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import vendor_program_splice as vps  # noqa: E402
from calibrator_custom.model.graph import load_model  # noqa: E402

log = logging.getLogger("vendor_program_survey")
SEEDS = {"train": 1, "heldout": 2, "heldout_depthwise": 3}
CHANNELS = (3, 4, 8, 13, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160)
SIZES = (3, 4, 5, 7, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128)


def draw(rng: np.random.Generator, depthwise_share: float = 0.25) -> vps.ConvKey:
    """One configuration (a conv the vendor's converter takes)."""
    kind = "DEPTHWISE_CONV_2D" if rng.random() < depthwise_share else "CONV_2D"
    k = int(rng.choice((1, 3, 5), p=(0.35, 0.45, 0.2)))
    stride = int(rng.choice((1, 2), p=(0.65, 0.35)))
    padding = str(rng.choice(("SAME", "VALID")))
    h, w = (int(rng.choice(SIZES)) for _ in range(2))
    h, w = max(h, k), max(w, k)
    graph_input = kind == "CONV_2D" and rng.random() < 0.2
    cin = 3 if graph_input else int(rng.choice(CHANNELS))
    in_dtype = "UINT8" if graph_input or rng.random() < 0.75 else "INT16"
    out_dtype = str(rng.choice(("UINT8", "INT16")))
    if kind == "CONV_2D":
        w_shape = (int(rng.choice(CHANNELS)), k, k, cin)
    else:
        w_shape = (1, k, k, cin)
    # keep the models small enough for the calibrator's seconds: at most ~1.5 M multiply-accumulates
    while h * w * k * k * cin * (w_shape[0] if kind == "CONV_2D" else 1) > 1_500_000 and (h > 8 or w > 8):
        h, w = max(k, h // 2), max(k, w // 2)
    return vps.ConvKey(kind, (1, h, w, cin), w_shape, stride, padding, in_dtype, out_dtype, graph_input)


def _plain(v):
    if isinstance(v, tuple) and v and isinstance(v[0], tuple) and v[0] and isinstance(v[0][0], tuple):
        return [{k: _plain(x) for k, x in t} for t in v]
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def record(key: vps.ConvKey) -> dict:
    path = vps.make_standalone(key)
    fx = load_model(path)
    op = vps.conv_op(fx)
    kind = fx.op_name(op)
    sg = fx.main
    ti, tw, to = (sg.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    fields = vps.program_fields(op.options, kind)
    slots = {vps.slot_number(kind, n): _plain(v) for n, v in fields.items()}
    written = sorted(vps.slot_number(kind, n) for n in op.options.sgs_layout
                     if n.startswith("sgs_") and n in fields)
    shifts = {vps.slot_number(kind, n): getattr(op.options, n) for n in vps.SHIFT_SLOTS[kind]}
    return {"key": dataclasses.asdict(key), "op_kind": kind, "in_dtype": ti.dtype, "out_dtype": to.dtype,
            "w_dtype": tw.dtype, "out_shape": list(to.shape), "w_bytes": len(fx.buffers[tw.buffer].data),
            "pads": [op.options.padding_left, op.options.padding_right, op.options.padding_top,
                     op.options.padding_bottom],
            "slots": slots, "written": written, "shifts": shifts, "path": str(path)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set", choices=sorted(SEEDS))
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or Path("/tmp/program_fit") / f"{args.set}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        done = {json.dumps(json.loads(line)["key"], sort_keys=True) for line in out.read_text().splitlines()}
    rng = np.random.default_rng(SEEDS[args.set])
    share = 1.0 if args.set == "heldout_depthwise" else 0.25
    keys = list(dict.fromkeys(draw(rng, share) for _ in range(args.n)))
    with out.open("a") as f:
        for key in keys:
            if json.dumps(dataclasses.asdict(key), sort_keys=True) in done:
                continue
            t0 = time.time()
            try:
                rec = record(key)
            except Exception as e:  # the vendor's tools refuse some configurations: keep the reason
                rec = {"key": dataclasses.asdict(key), "error": str(e).strip().splitlines()[-1][:300]}
            f.write(json.dumps(rec) + "\n")
            f.flush()
            log.info("%s %.1fs %s", key, time.time() - t0, rec.get("error", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
