#!/usr/bin/env python3
"""Rerun the experiments behind "Writing the vendor's fixed dialect" (docs/model_format.md).

Needs ../shared/vendor_sdk (set up). Vendor-made files go to the oracle cache (never committed).

    PYTHONPATH=. python tools/vendor_fixed_writer_experiments.py [ablate|size|ranges|all]

- ablate: a vendor L1 fixed.sim with one slot removed (its vtable entry set to 0, so the field reads
  as absent; no byte moves): what the vendor's fixed simulator and compiler say.
- size: the same file with 8 zero bytes appended: the compiler's size check.
- ranges: two L1 calibrations of one model with different ranges: which objects' bytes differ.
"""
from __future__ import annotations

import struct
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import vendor_fixed_oracle as vo  # noqa: E402
from calibrator_custom.vendor_fixed.sim_patch import SimLayout  # noqa: E402
from test_vendor_fixed_ops import _conv_chain  # noqa: E402

CHAIN = (25, 16, 32, 40, 3, 1, "SAME")  # x -> 1x1 conv 3->32 -> 3x3 conv 32->40 -> 1x1 conv 40->4


def _fixed(factors=(1.0, 1.0)):
    b, ranges, _, _ = _conv_chain(*CHAIN)
    ranges = {k: (lo * factors[0], hi * factors[1]) for k, (lo, hi) in ranges.items()}
    return vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"writer_exp_{factors[0]}_{factors[1]}")


def _last_assert(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if "ssert" in ln]
    return lines[0][:150] if lines else str(e).splitlines()[-1][:150]


def _try(path: Path, x) -> tuple[str, str]:
    o = vo.oracle()
    try:
        sim = o.fixed_sim(str(path), x)
        sim = "runs"
    except o.OracleError as e:
        sim = "refused: " + _last_assert(e)
    try:
        o.compile_offline(str(path), str(path) + ".offline")
        comp = "compiles"
    except o.OracleError as e:
        comp = "refused: " + _last_assert(e)
    return sim, comp


def _vtable(data: bytes, table: int) -> tuple[int, int]:
    v = table - struct.unpack_from("<i", data, table)[0]
    return v, (struct.unpack_from("<H", data, v)[0] - 4) // 2


def ablate() -> None:
    src = _fixed()
    data = src.read_bytes()
    lay = SimLayout(data)
    x = np.random.default_rng(0).integers(0, 256, (1, 16, 16, 3)).astype(np.uint8)
    ref = vo.oracle().fixed_sim(str(src), x)["c3"]
    groups = {"Tensor": lay.tensors, "Operator": lay.operators, "SubGraph": [lay.subgraph]}
    u32 = lambda p: struct.unpack_from("<I", data, p)[0]  # noqa: E731
    opts = []
    for o in lay.operators:
        v, n = _vtable(data, o)
        off = struct.unpack_from("<H", data, v + 4 + 8)[0]
        opts.append(o + off + u32(o + off))
    groups["Conv2DOptions"] = opts
    with tempfile.TemporaryDirectory() as d:
        for group, tables in groups.items():
            slots = range(5, 11) if group != "Conv2DOptions" else range(10, 42)
            for slot in slots:
                buf = bytearray(data)
                hit = False
                for t in tables:
                    v, n = _vtable(data, t)
                    if slot < n and struct.unpack_from("<H", data, v + 4 + 2 * slot)[0]:
                        struct.pack_into("<H", buf, v + 4 + 2 * slot, 0)
                        hit = True
                if not hit:
                    continue
                p = Path(d) / "ablated_fixed.sim"
                p.write_bytes(bytes(buf))
                sim, comp = _try(p, x)
                if sim == "runs":
                    y = vo.oracle().fixed_sim(str(p), x)["c3"]
                    sim = "runs, same outputs" if np.array_equal(y, ref) else \
                        f"runs, outputs differ by up to {np.abs(y - ref).max():.4g}"
                print(f"{group} slot {slot} removed: simulator {sim}; compiler {comp}")


def size() -> None:
    src = _fixed()
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "padded_fixed.sim"
        p.write_bytes(src.read_bytes() + bytes(8))
        x = np.zeros((1, 16, 16, 3), np.uint8)
        print("as made by the vendor:", _try(src, x))
        print("with 8 zero bytes appended:", _try(p, x))


def _owners(data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the objects the writer patches."""
    lay = SimLayout(data)
    out = []
    for i in range(len(lay.tensors)):
        for slot, kind, size in ((0, "quantization min", 4), (1, "quantization max", 4),
                                 (2, "quantization scale", 4), (3, "quantization zero point", 8),
                                 (4, "accumulator max", 8), (5, "accumulator min", 8)):
            v = lay.quant_vector(i, slot)
            if v is not None:
                out.append((v.pos, v.pos + size * v.count, kind))
    for b in range(len(lay.buffers)):
        v = lay.buffer_data(b)
        if v is not None:
            out.append((v.pos, v.pos + v.count, "weight/bias buffer"))
    for j in range(len(lay.operators)):
        for slot in (35, 37):
            p = lay.option_scalar(j, slot)
            if p is not None:
                out.append((p, p + 4, f"Conv2DOptions slot {slot}"))
    v = lay.input_transform(0)
    if v is not None:
        out.append((v.pos, v.pos + 2 * v.count, "input pixel transform"))
    return out


def ranges() -> None:
    a, b = _fixed(), _fixed((1.7, 1.3))
    da, db = a.read_bytes(), b.read_bytes()
    print(f"sizes {len(da)} and {len(db)}")
    diff = np.nonzero(np.frombuffer(da, np.uint8) != np.frombuffer(db, np.uint8))[0]
    owners = _owners(da)
    kinds = Counter()
    for p in diff:
        kinds[next((k for s, e, k in owners if s <= p < e), "other")] += 1
    print(f"{diff.size} bytes differ:", dict(kinds))


if __name__ == "__main__":
    reason = vo.vendor_missing_reason()
    if reason:
        sys.exit(reason)
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    for name, fn in (("ablate", ablate), ("size", size), ("ranges", ranges)):
        if which in (name, "all"):
            print(f"== {name}")
            fn()
