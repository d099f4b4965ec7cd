#!/usr/bin/env python3
"""The experiments behind ``vendor_fixed.synth`` (docs/model_format.md, "Synthesizing the fixed file").

    PYTHONPATH=. python tools/vendor_synth_experiments.py layouts FIXED_SIM...
    PYTHONPATH=. python tools/vendor_synth_experiments.py corpus [CACHE_DIR]
    PYTHONPATH=. python tools/vendor_synth_experiments.py patch [CHAIN]

``layouts``: for every table of the files, is the field layout the vendor wrote exactly the table's
non-default fields, largest first, then by slot? (counts per table type, and a few counterexamples).
``corpus``: every vendor fixed.sim of the oracle cache whose ops are all ``synth.SYNTHESIZED_OPS`` (a folder holding m_float.sim,
m_fixed.sim, m.ini and the calibrator's log) synthesized from its float.sim with the vendor's own
program of each conv; prints which are byte-equal and the decoded fields that differ otherwise.
``patch``: one chain of tests/test_vendor_fixed_synth.py synthesized, a graph-dependent field set to
another value, run by the vendor's fixed simulator and compiler (needs ../shared/vendor_sdk).
Vendor-made files stay in the oracle cache (never committed).
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import logging
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tools"))

import calibrator_custom  # noqa: E402,F401  (before numpy: pins the BLAS kernel)
import numpy as np  # noqa: E402
from calibrator_custom.model import flatbuf, sgs_dialect  # noqa: E402
from calibrator_custom.model.graph import load_model  # noqa: E402
from calibrator_custom.vendor_fixed import synth  # noqa: E402

log = logging.getLogger("vendor_synth_experiments")


# ---------------------------------------------------------------- layouts
def predicted_layout(dialect, name: str, obj: dict) -> tuple[str, ...]:
    """The non-default fields of a decoded table, largest first, then by slot."""
    fields = dialect.tables[name]
    by_slot = {f.slot: f for f in fields}
    entries = []
    for f in fields:
        v = obj.get(f.name)
        if f.slot + 1 in by_slot and by_slot[f.slot + 1].type.startswith("union:"):
            continue  # a union's type slot: with the union
        if f.type.startswith("union:"):
            if v is not None:
                entries += [(4, f.slot, f.name), (1, f.slot - 1, by_slot[f.slot - 1].name)]
            continue
        scalar = flatbuf._scalar_of(f.type)
        if scalar is None:
            if v is not None:
                entries.append((4, f.slot, f.name))
        elif v is not None and v != flatbuf.field_default(f):
            entries.append((flatbuf.SCALARS[scalar][1], f.slot, f.name))
    return tuple(e[2] for e in sorted(entries, key=lambda e: (-e[0], e[1])))


def layouts(files) -> None:
    dialect = flatbuf._dialect("sgs_fixed")
    counts, bad = collections.Counter(), collections.defaultdict(list)

    def walk(name, obj, where):
        if not isinstance(obj, dict):
            return
        held = obj.get(sgs_dialect.LAYOUT)
        if held is not None:
            ok = predicted_layout(dialect, name, obj) == tuple(held)
            counts[name, ok] += 1
            if not ok and len(bad[name]) < 2:
                bad[name].append((where, tuple(held)))
        for f in dialect.tables[name]:
            v = obj.get(f.name)
            if v is None:
                continue
            if f.type.startswith("union:"):
                if v[0] not in dialect.unfollowed:
                    walk(v[0], v[1], f"{where}.{f.name}")
            elif f.type in dialect.tables:
                walk(f.type, v, f"{where}.{f.name}")
            elif f.type.startswith("[") and f.type[1:-1] in dialect.tables and isinstance(v, list):
                for i, x in enumerate(v):
                    walk(f.type[1:-1], x, f"{where}.{f.name}[{i}]")
    for p in files:
        data = Path(p).read_bytes()
        root, _ = flatbuf.decode(data, dialect=sgs_dialect.detect(data))
        walk("Model", root, str(p))
    for (name, ok), n in sorted(counts.items()):
        log.info("%-32s %s %d", name, "rule holds" if ok else "OTHER LAYOUT", n)
    for name, rows in bad.items():
        for where, held in rows:
            log.info("  %s at %s: %s", name, where, held)


# ---------------------------------------------------------------- corpus
def _ini_normalization(ini: str):
    if "mean_red" not in ini:
        return (127.5,) * 3, 127.5
    mean = tuple(float(re.search(f"mean_{c}=([^;]*);", ini).group(1)) for c in ("red", "green", "blue"))
    return mean, float(re.search("std_value=([^;]*);", ini).group(1))


def own_program(float_model, fixed_model):
    """The provider returning the vendor's own program of each conv (from its fixed file)."""
    from test_vendor_fixed_synth import _own_program
    return _own_program(float_model, fixed_model)


def _differences(a, b, path="", out=None):
    out = [] if out is None else out
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        for f in dataclasses.fields(a):
            if f.compare:
                _differences(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}", out)
    elif isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            _differences(a.get(k), b.get(k), f"{path}[{k}]", out)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _differences(x, y, f"{path}[{i}]", out)
    elif (bytes(a) if isinstance(a, memoryview) else a) != (bytes(b) if isinstance(b, memoryview) else b):
        out.append(path)
    return out


def corpus(cache: Path) -> None:
    from test_vendor_fixed_writer import _log_channel_ranges, _log_ranges
    counts = collections.Counter()
    for d in sorted(cache.iterdir()):
        logdir = d / "wd" / "log"
        if not (logdir / "tensor_chn.txt").exists():
            continue
        try:
            fl, fx = load_model(d / "m_float.sim"), load_model(d / "m_fixed.sim")
        except Exception as e:  # noqa: BLE001 (files our reader refuses are counted, not fatal)
            counts["unreadable"] += 1
            log.info("%s: unreadable: %s", d.name, e)
            continue
        if not {fx.op_name(o) for o in fx.main.operators} <= synth.SYNTHESIZED_OPS:
            continue
        mean, std = _ini_normalization((d / "m.ini").read_text())
        try:
            m = synth.synthesize(fl, _log_ranges(logdir), _log_channel_ranges(logdir), mean, std,
                                 own_program(fl, fx))
            data = m.to_bytes(reencode=True)
        except Exception as e:  # noqa: BLE001
            counts["not synthesized"] += 1
            log.info("%s: not synthesized: %s", d.name, e)
            continue
        if data == (d / "m_fixed.sim").read_bytes():
            counts["byte-equal"] += 1
            continue
        counts["differ"] += 1
        diff = [p for p in _differences(load_model(d / "m_fixed.sim"), fx.__class__.from_bytes(data))
                if "sgs_tag" not in p]
        log.info("%s: differs in %s", d.name, diff[:6])
    log.info("%s", dict(counts))


# ---------------------------------------------------------------- patch
def patch(chain: str) -> None:
    import vendor_fixed_oracle as vo
    from test_vendor_fixed_synth import _chain
    o = vo.oracle()
    float_sim, fixed = _chain(chain)
    shape = load_model(fixed).main.tensors[load_model(fixed).main.inputs[0]].shape
    x = np.random.default_rng(3).integers(0, 256, shape).astype(np.uint8)
    ref = o.fixed_sim(str(fixed), x)
    n_tensors = len(load_model(fixed).main.tensors)

    def tensor_field(i, key, value):
        def f(m):
            if value is None:
                m.main.tensors[i].extra.pop(key, None)
            else:
                m.main.tensors[i].extra[key] = value
        return f

    def every_tensor_without(key):
        def f(m):
            for t in m.main.tensors:
                t.extra.pop(key, None)
        return f

    def arena(delta):
        def f(m):
            m.main.extra["sgs_arena_bytes"] += delta
        return f

    def op_word_8(m):
        for op in m.main.operators:
            op.extra["sgs_op_class"] = 2
    def add_op(m):
        return next(op for op in m.main.operators if m.op_name(op) == "ADD")

    def add_word_14_absent(m):
        add_op(m).extra.pop("sgs_fused_input", None)

    def add_word_8(m):
        add_op(m).extra["sgs_op_class"] = 4

    def fused_conv_output_in_arena(m):
        add = add_op(m)
        k = m.main.operators.index(add) - 1
        (i,) = m.main.operators[k].outputs
        top = m.main.extra["sgs_arena_bytes"]
        size = synth.activation_bytes(m.main.tensors[i].shape, m.main.tensors[i].dtype)
        m.main.tensors[i].extra["sgs_arena"] = {"begin_byte": top, "end_byte": top + size}
        m.main.extra["sgs_arena_bytes"] = top + size

    def add_output_at_0(m):
        (i,) = add_op(m).outputs
        t = m.main.tensors[i]
        t.extra["sgs_arena"] = {"begin_byte": 0, "end_byte": synth.activation_bytes(t.shape, t.dtype)}
    if chain.startswith("add"):
        variants = {"unmodified": lambda m: None, "ADD Operator.14 absent (0)": add_word_14_absent,
                    "ADD Operator.8 = 4": add_word_8, "fused conv output in the arena": fused_conv_output_in_arena,
                    "ADD output at byte 0": add_output_at_0}
        return _run_variants(o, float_sim, fixed, x, ref, variants)
    variants = {"unmodified": lambda m: None, "Tensor.6 of c1 = 7": tensor_field(3, "sgs_fixed_flag", 7),
                "Tensor.6 of c1 = 11": tensor_field(3, "sgs_fixed_flag", 11),
                "Tensor.6 of the output = 11": tensor_field(n_tensors - 1, "sgs_fixed_flag", 11),
                "Tensor.6 of w1 = 12": tensor_field(1, "sgs_fixed_flag", 12),
                "SubGraph.5 + 128": arena(128), "SubGraph.5 - 64": arena(-64),
                "Tensor.8 removed": every_tensor_without("sgs_use_order"), "Operator.8 = 2": op_word_8}
    _run_variants(o, float_sim, fixed, x, ref, variants)


def _run_variants(o, float_sim, fixed, x, ref, variants) -> None:
    from test_vendor_fixed_synth import _synthesize
    import tempfile
    out = Path(tempfile.mkdtemp(prefix="synth_patch_"))
    for label, change in variants.items():
        m = _synthesize(float_sim, fixed, own_program(load_model(float_sim), load_model(fixed)))
        change(m)
        path = out / "synth_patched_fixed.sim"
        path.write_bytes(m.to_bytes(reencode=True))
        sim, comp = vo.vendor_verdicts(path, x, ref)
        log.info("%-28s simulator: %s; compiler: %s", label, sim, comp)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("layouts").add_argument("files", nargs="+", type=Path)
    c = sub.add_parser("corpus")
    c.add_argument("cache", nargs="?", type=Path, default=None)
    sub.add_parser("patch").add_argument("chain", nargs="?", default="3x3_same_16to24",
                                         help="a chain of tests/test_vendor_fixed_synth.py (add_16: ADD fields)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.cmd == "layouts":
        layouts(args.files)
    elif args.cmd == "corpus":
        import vendor_fixed_oracle as vo
        corpus(args.cache or vo.CACHE)
    else:
        patch(args.chain)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
