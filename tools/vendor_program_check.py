#!/usr/bin/env python3
"""Compare ``vendor_fixed.program`` with the vendor programs ``vendor_program_survey.py`` recorded.

    PYTHONPATH=. python tools/vendor_program_check.py /tmp/program_fit/heldout.jsonl [-v]

Per slot: how many convs the rule gives exactly (a) with the vendor's own allocation (slots 10-13,
22, 23, 25-28 taken from the file), (b) for the allocation-derived formulas (26, 27) and the default
allocation; counterexamples with -v.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import defaultdict

from calibrator_custom.model import sgs_dialect
from calibrator_custom.vendor_fixed import program as P

ALLOC_SLOTS = {"CONV_2D": (10, 11, 12, 13, 22, 23, 25, 26, 27, 28), "DEPTHWISE_CONV_2D": (11, 12, 23, 24, 27, 28, 32, 33)}


def spec_of(rec) -> P.ConvSpec:
    k = rec["key"]
    _, h, w, cin = k["in_shape"]
    cout = k["w_shape"][0] if k["kind"] == P.CONV else cin
    return P.ConvSpec(k["kind"], h, w, cin, cout, k["w_shape"][1], k["stride"], k["padding"],
                      rec["in_dtype"], rec["out_dtype"], k["graph_input"])


def vendor_spec(rec) -> P.ConvSpec:
    """``spec_of`` with the op kind the vendor's converter wrote."""
    s = spec_of(rec)
    if s.kind == P.DEPTHWISE:
        s = dataclasses.replace(s, as_conv=rec["op_kind"] == P.CONV)
    return s


def vendor_allocation(rec) -> P.Allocation:
    s = {int(a): b for a, b in rec["slots"].items()}
    cz = lambda v: 16 if v == 0 else v  # noqa: E731
    if rec["op_kind"] == P.CONV:
        return P.Allocation(cz(s[10]), cz(s[11]), cz(s[12]), cz(s[13]), s[22], s[23], s[25], s[26], s[27], s[28])
    return P.Allocation(cz(s[11]), cz(s[11]), cz(s[12]), cz(s[12]), s[23], s[24], 0, 0, s[27], s[28])


def _chunk_slot(name: str):
    """A weight chunk field's slot number, named or numbered (records made before a flag was named hold
    ``sgs_slot_<n>`` keys; ``sgs_dialect.SLOT_NAMES`` names them now)."""
    if name.startswith("sgs_slot_"):
        return int(name[len("sgs_slot_"):])
    for table in P.CHUNK_TABLES.values():
        try:
            return sgs_dialect.slot_of(table, name)
        except KeyError:
            pass
    return name


def norm(v):
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {_chunk_slot(k): x for k, x in v.items() if k != "sgs_layout"}
    return v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args(argv)
    recs = [json.loads(line) for f in args.files for line in open(f)]
    recs = [r for r in recs if "error" not in r]
    hit, tot, bad = defaultdict(int), defaultdict(int), defaultdict(list)
    for r in recs:
        kind = r["op_kind"]
        tot[(kind, "op kind")] += 1
        if spec_of(r).op_kind == kind:
            hit[(kind, "op kind")] += 1
        else:
            bad[(kind, "op kind")].append((r["key"], spec_of(r).op_kind, kind))
        spec = vendor_spec(r)
        a = vendor_allocation(r)
        got = P.standalone_program(spec, a)
        s = {int(x): y for x, y in r["slots"].items()}
        checks = {(kind, n): (got[n], s[n]) for n in got if n not in ALLOC_SLOTS[kind]}
        if kind == P.CONV:
            checks[(kind, "26 formula")] = (P.input_slots(spec, a.in_pass, s[18], s[19]), s[26])
            checks[(kind, "27 formula")] = (P.output_slots(spec, a.out_pass, s[22], s[23]), s[27])
            checks[(kind, "25 formula")] = (P.weight_slots(spec, a.in_tile, a.in_pass, a.out_tile, a.out_pass), s[25])
            checks[(kind, "28 formula")] = (P.region_28_slots(spec, a.out_pass, s[22], s[23],
                                                              -(-a.in_pass // a.in_tile)), s[28])
            d = P.standalone_program(spec)
            for n in ALLOC_SLOTS[kind]:
                checks[(kind, f"{n} default")] = (d[n], s[n])
            checks[(kind, "all default")] = ([d[n] for n in sorted(d)], [s[n] for n in sorted(d)])
        written = set(r["written"])
        scalars = [n for n, v in got.items() if not isinstance(v, tuple) and n not in ALLOC_SLOTS[kind]]
        checks[(kind, "written = nonzero")] = (sorted(n for n in scalars if got[n] != 0),
                                                sorted(n for n in written if n in scalars))
        for key, (mine, theirs) in checks.items():
            tot[key] += 1
            if norm(mine) == norm(theirs):
                hit[key] += 1
            else:
                bad[key].append((r["key"], mine, theirs))
    for key in sorted(tot, key=lambda k: (k[0], str(k[1]))):
        print(f"{key[0]:18s} {str(key[1]):18s} {hit[key]:4d} / {tot[key]}")
        if args.v:
            for b in bad[key][:6]:
                print("    ", str(b)[:400])
    return 0


if __name__ == "__main__":
    sys.exit(main())
