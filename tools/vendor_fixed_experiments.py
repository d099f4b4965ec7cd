#!/usr/bin/env python3
"""Rerun the black-box experiments behind docs/vendor_fixed_point.md against the vendor SDK oracle.

Needs ../shared/vendor_sdk (set up). Prints, per experiment, how many output codes each candidate
rule gets wrong; the rule the docs state is the one with 0 (or the stated bound).

    PYTHONPATH=. python tools/vendor_fixed_experiments.py [conv|add|mul|tables|softmax|input|all]
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import test_vendor_fixed_ops as cases  # noqa: E402
import vendor_fixed_oracle as vo  # noqa: E402
from calibrator_custom.vendor_fixed import conv, elementwise, layout, tables  # noqa: E402
from calibrator_custom.model.graph import load_model  # noqa: E402
from calibrator_custom.vendor_fixed.rounding import shift_round_half_away, shift_round_half_up  # noqa: E402


def _shift(a, k, mode):
    if k == 0:
        return a
    if mode == "half_away":
        return shift_round_half_away(a, k)
    if mode == "half_up":
        return shift_round_half_up(a, k)
    if mode == "floor":
        return a >> k
    q = a >> k  # half to even
    r = a - (q << k)
    h = 1 << (k - 1)
    return q + ((r > h) | ((r == h) & (q % 2 == 1)))


def conv_experiment():
    """CONV_2D: which accumulator-shift rounding and which bias shift k reproduce the vendor codes."""
    print("CONV_2D: mismatching codes per (accumulator rounding, k); the inferred k is marked *")
    for name, make in sorted(cases.CONV_CASES.items()):
        b, ranges, x, geometry = make()
        fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"conv_{name}")
        recs, _ = vo.run_fixed(fixed, x)
        sim = vo.VendorSim(fixed)
        for op_index, names in ((1, ("c1", "w2", "b2", "c2")), (2, ("c2", "w3", "b3", "c3"))):
            p = cases._conv_params(sim, *names)
            xin = layout.from_dump(vo.record(recs, op_index, "in", 0)["data"], p["ti"].shape)
            want = layout.from_dump(vo.record(recs, op_index, "out")["data"], p["to"].shape)
            stride, padding = geometry[op_index]
            acc = conv.accumulate(xin, p["w"], p["ti"].zero_point[0], (stride, stride), (1, 1), padding)
            lo, hi = (0, 255) if p["out_dtype"] == np.uint8 else (-32767, 32767)
            zo = 0 if p["out_dtype"] == np.uint8 else p["to"].zero_point[0]
            row = []
            for mode in ("half_away", "half_up", "half_even", "floor"):
                for k in range(0, 7):
                    a = _shift(acc, k, mode) + p["b0"]
                    q = np.clip(shift_round_half_up(a * p["mult"], p["n_shift"] - k) + zo, lo, hi)
                    bad = int((q != want).sum())
                    if bad == 0 or mode == "half_away" and k == p["k"]:
                        row.append(f"{mode} k={k}{'*' if k == p['k'] else ''}: {bad}")
            print(f"  {name} op{op_index} ({want.size} codes, acc range q4/q5 {p['to'].q4}/{p['to'].q5}): "
                  + "; ".join(row))


def _binary_run(op, seed, a_range):
    """A vendor L1 fixed model of the binary-op case and its dump: (fixed.sim, tensors p1, p2, a, the
    op's two input codes, its output codes)."""
    b, x = cases._binary_model(op, seed)
    ranges = {"x": (-1.0, 1.0), "c1": (-3.0, 4.0), "c2": (-2.0, 1.0), "p1": (-3.0, 4.0), "p2": (-2.0, 1.0),
              "a": a_range, "c3": (-5.0, 5.0)}
    fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"bin_{op}_{seed}")
    recs, _ = vo.run_fixed(fixed, x)
    sim = vo.VendorSim(fixed)
    outs = {r["name"]: r["data"] for r in recs if r["dir"] == "out"}
    t1, t2, ta = sim.tensor("p1"), sim.tensor("p2"), sim.tensor("a")
    x1 = layout.from_dump(outs["p1"], t1.shape).astype(np.int64)
    x2 = cases._pool(sim, outs, "p2", "c2").astype(np.int64)
    return fixed, t1, t2, ta, x1, x2, layout.from_dump(outs["a"], ta.shape)


def add_experiment():
    """ADD/SUB/MUL: multiplier precision (significant bits) against the vendor codes."""
    print("ADD/SUB/MUL: mismatching codes per multiplier precision (bits) and final rounding")
    for op, seed, a_range in cases.BINARY_CASES:
        fixed, t1, t2, ta, x1, x2, want = _binary_run(op, seed, a_range)
        s1, s2, so, zo = t1.scale[0], t2.scale[0], ta.scale[0], ta.zero_point[0]
        row = []
        for bits in (12, 15, 16, 24):
            if op == "MUL":
                m = s1 * s2 / so
                n = bits - 1 - math.floor(math.log2(m))
                v = shift_round_half_up(x1 * x2 * round(m * 2 ** n), n)
            else:
                m1, m2 = s1 / so, s2 / so
                n = bits - 1 - math.floor(math.log2(max(m1, m2)))
                v = shift_round_half_up(x1 * round(m1 * 2 ** n) + (1 if op == "ADD" else -1) * x2 * round(m2 * 2 ** n), n)
            row.append(f"{bits} bits: {int((np.clip(v + zo, 0, 255) != want).sum())}")
        ours = cases.KERNELS[op](x1, x2, s1, s2, so, zo, np.uint8)
        print(f"  {op} out range {a_range} ({want.size} codes): " + "; ".join(row)
              + f"; kernel worst |diff| {int(np.abs(ours.astype(np.int64) - want).max())}")


def input_experiment():
    """Input boundary: the first conv's codes (identity conv, multiplier 1) against candidate rules."""
    print("Input boundary: mismatching codes of candidate rules (256 pixels x 3 channels)")
    for mean, std, x_range in cases.INPUT_CASES:
        pix, codes, tx = cases.vendor_input_codes(mean, std, x_range)
        v = (pix.astype(np.float64) - np.array(mean)) / std / tx.scale[0] + tx.zero_point[0]
        rules = {"floor(v+1/2)": np.floor(v + 0.5), "rint(v)": np.rint(v), "floor(v)": np.floor(v)}
        a_q10 = round(1024 / (std * tx.scale[0]))
        row = [f"{k}: {int((np.clip(r_, 0, 255) != codes).sum())}" for k, r_ in rules.items()]
        print(f"  mean {mean} std {std} range {x_range}: slope in Q10 {a_q10}/1024; " + "; ".join(row)
              + f"; worst |floor(v+1/2) - vendor| {int(np.abs(np.clip(rules['floor(v+1/2)'], 0, 255) - codes).max())}")


def mul_experiment():
    """MUL: one rounding of x1*x2*M by N against the stored two-stage split (k1, M, k2), per first-stage rounding."""
    print("MUL: mismatching codes of the single rounding and of the two-stage product shift")
    for op, seed, a_range in cases.BINARY_CASES:
        if op != "MUL":
            continue
        fixed, t1, t2, ta, x1, x2, want = _binary_run(op, seed, a_range)
        zo = ta.zero_point[0]
        model = load_model(fixed)
        k1, m, k2 = elementwise.stored_mul_params(next(o for o in model.main.operators
                                                       if model.op_name(o) == "MUL").options)
        one = shift_round_half_up(x1 * x2 * m, k1 + k2)
        row = [f"single rounding: {int((np.clip(one + zo, 0, 255) != want).sum())}"]
        for mode in ("floor", "half_up", "half_away", "half_even"):
            q = shift_round_half_up(_shift(x1 * x2, k1, mode) * m, k2)
            row.append(f"two-stage {mode}: {int((np.clip(q + zo, 0, 255) != want).sum())}")
        print(f"  out range {a_range} (k1, M, k2) = ({k1}, {m}, {k2}), {want.size} codes: " + "; ".join(row))


def tables_experiment():
    """LOGISTIC / TANH: mismatches of the two-table interpolation per fraction bits of the segment position."""
    print("LOGISTIC/TANH: mismatching codes per fraction bits (10 .. 18) of the interpolation weight")
    for op, x_range, graph_output, dense in (("LOGISTIC", 6.0, False, True), ("LOGISTIC", 16.0, False, True),
                                             ("LOGISTIC", 48.0, False, True), ("LOGISTIC", 8.0, False, False),
                                             ("TANH", 8.0, True, True)):
        codes, vendor, tin, _ = cases.vendor_table(op, x_range, graph_output, dense)
        spec = tables.LOGISTIC_SPEC if op == "LOGISTIC" else tables.TANH_SPEC
        row = []
        for bits in range(10, 19):
            sign, t = tables.odd_table_codes(codes, tin.scale[0], spec, bits)
            q = (32768 + sign * t) >> 1 if op == "LOGISTIC" else sign * t
            row.append(f"{bits}: {int((q != vendor).sum())}")
        print(f"  {op} range {x_range} {'dense' if dense else 'wide'} ({codes.size} codes): " + "; ".join(row))


def softmax_experiment():
    """SOFTMAX: the division (reciprocal forms) and the region below -10 against the vendor codes."""
    print("SOFTMAX: mismatching codes per candidate division / low-region rule")
    for name in ("pair_10", "pair_20", "three_10"):
        weights, x_range = cases.SOFTMAX_SWEEPS[name]
        b, ranges, x = cases._softmax_sweep_model(weights, x_range)
        fixed = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"softmax_sweep_{name}")
        sim = vo.VendorSim(fixed)
        recs, _ = vo.run_fixed(fixed, x)
        op = next(r["op_index"] for r in recs if r["op"] == "SOFTMAX")
        ti = sim.tensor("c1")
        xin = layout.from_dump(vo.record(recs, op, "in", 0)["data"], ti.shape).astype(np.int64)
        want = layout.from_dump(vo.record(recs, op, "out")["data"], ti.shape).astype(np.int64)
        s = ti.scale[0]
        d = xin - xin.max(-1, keepdims=True)
        rows = {}
        for sat in (True, False):
            e = tables.softmax_exp_codes(np.maximum(d, -32768) if sat else d, s)
            tot = e.sum(-1, keepdims=True)
            rows[f"rint(32767 E/S){'' if sat else ' unsaturated d'}"] = np.rint(32767 * e / tot)
            r = (1 << 30) // tot
            rows[f"floor(2**30/S), no normalization{'' if sat else ', unsaturated d'}"] = (e * r + (1 << 14)) >> 15
            for extra in (15, 16, 17):
                n = np.maximum(0, tables._bit_length(tot) - extra)
                r = (np.int64(1) << (30 + n)) // tot
                rows[f"n = bitlen(S) - {extra}{'' if sat else ', unsaturated d'}"] = \
                    (e * r + (np.int64(1) << (14 + n))) >> (15 + n)
        print(f"  {name} ({want.size} codes): " + "; ".join(
            f"{k}: {int((np.minimum(v, 32767) != want).sum())}" for k, v in rows.items()))


if __name__ == "__main__":
    reason = vo.vendor_missing_reason()
    if reason:
        sys.exit(reason)
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    for name, fn in (("input", input_experiment), ("conv", conv_experiment), ("add", add_experiment),
                     ("mul", mul_experiment), ("tables", tables_experiment), ("softmax", softmax_experiment)):
        if which in (name, "all"):
            fn()
