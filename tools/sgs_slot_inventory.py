#!/usr/bin/env python3
"""Inventory of the vendor's slot values: per (table, slot), the values seen in vendor files and how often.

    PYTHONPATH=. python tools/sgs_slot_inventory.py make OUT_DIR [--chains N] [--standalone SET ...]
    PYTHONPATH=. python tools/sgs_slot_inventory.py report FILE_OR_DIR ... [--unnamed] [--table T] [--top N]
    PYTHONPATH=. python tools/sgs_slot_inventory.py claims FILE_OR_DIR ...
    PYTHONPATH=. python tools/sgs_slot_inventory.py patch FILE_fixed.sim OP FIELD VALUE ...   # needs the SDK

``make`` (needs the vendor SDK, ../shared/vendor_sdk; imported only there) makes vendor files in
OUT_DIR: the shared models the vendor's convert_tool takes (../shared/models, converted with
``oracle.convert_tflite``; the fixed.sim of the vendor's L1 calibrator on two photos where it
finishes), the conv / depthwise / pool chains and single-op models of ``tools/sgs_slot_corpus.py``,
and with ``--standalone train heldout ...`` the standalone convs of ``tools/vendor_program_survey.py``
(written to the test oracle's cache and linked from OUT_DIR). The files are vendor-made: never
commit them.

``report`` reads every ``*.sim`` given (directories: recursively) with our decoder and prints, for
every vendor slot of ``sgs_slots.SLOTS`` seen (Operator extras, options tables and the tables nested
in them, Tensor / QuantizationParameters / SubGraph / Model extras), its name, the number of
observations and files, and its distinct values with their counts (vectors as tuples; a vector of
tables by its length), most frequent first.

``claims`` prints the counts of the relations ``docs/model_format.md`` ("Slot names") gives for the
conv programs' buffer regions, observation by observation, with a counterexample where one fails.

``patch`` writes each VALUE into one field of op OP (through our encoder) and prints the reactions
of the vendor's fixed simulator, offline compiler and (when it compiles) offline simulator on one
random image, against the unpatched file: refused (the vendor's last assertion or error line), same
outputs, or how far off.

The package never imports this tool; ``tests/test_sgs_slot_names.py`` uses :func:`region_claims`.
"""
from __future__ import annotations

import argparse
import collections
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from calibrator_custom.errors import ModelError  # noqa: E402
from calibrator_custom.model import sgs_dialect, sgs_slots  # noqa: E402
from calibrator_custom.model.graph import Model, load_model  # noqa: E402

log = logging.getLogger("sgs_slot_inventory")
SHARED = ROOT.parent / "shared"
#: the shared models and the (mean, std) of their input (../shared/models/MODELS.md)
SHARED_MODELS = {
    "face_detection_short_range": (127.5, 127.5), "face_landmark": (0.0, 255.0),
    "iris_landmark": (0.0, 255.0), "hand_landmark_lite": (0.0, 255.0),
    "palm_detection_lite": (0.0, 255.0), "pose_detection": (0.0, 255.0),
}
#: the vendor's L1 calibration of these never finishes (docs/vendor_fixed_point.md): float.sim only
NO_CALIBRATION = {"hand_landmark_lite"}
PRE = ("import cv2, numpy as np\n"
       "def image_preprocess(img_path, norm=True):\n"
       "    img = cv2.resize(cv2.imread(img_path)[:, :, ::-1], ({w}, {h})).astype(np.float32)\n"
       "    return ((img - {mean}) / {std})[None] if norm else np.round(img).astype(np.uint8)[None]\n")


# ------------------------------------------------------------------ making vendor files (needs the SDK)
def _oracle():
    sys.path.insert(0, str(SHARED / "vendor_sdk" / "harness"))
    import oracle  # noqa: PLC0415
    return oracle


def make_shared(out: Path, images: list[Path]) -> list[Path]:
    """The shared models the vendor's convert_tool takes, as vendor float.sim (and L1 fixed.sim)."""
    oracle = _oracle()
    made = []
    for name, (mean, std) in SHARED_MODELS.items():
        tflite = SHARED / "models" / f"{name}.tflite"
        if not tflite.is_file():
            continue
        g = load_model(tflite).main
        ins = ",".join(g.tensors[i].name for i in g.inputs)
        outs = ",".join(g.tensors[i].name for i in g.outputs)
        _, h, w, _ = (int(d) for d in g.tensors[g.inputs[0]].shape)
        work = out / f"_work_{name}"
        (work / "images").mkdir(parents=True, exist_ok=True)
        for p in images:
            (work / "images" / p.name).write_bytes(p.read_bytes())
        ini = work / "m.ini"
        ini.write_text(f"[INPUT_CONFIG]\ninputs={ins};\ninput_formats=RGB;\ntraining_input_formats=RGB;\n"
                       f"mean_red={mean};\nmean_green={mean};\nmean_blue={mean};\nstd_value={std};\n"
                       f"[OUTPUT_CONFIG]\noutputs={outs};\n"
                       f"dequantizations={','.join(['FALSE'] * len(g.outputs))};\n")
        (work / "pre.py").write_text(PRE.format(w=w, h=h, mean=mean, std=std))
        fl, fixed = out / f"{name}_float.sim", out / f"{name}_fixed.sim"
        try:
            if not fl.exists():
                oracle.convert_tflite(str(tflite), str(ini), str(fl))
            made.append(fl)
            if name not in NO_CALIBRATION and not fixed.exists():
                oracle.calibrate_l1(str(fl), str(work / "images"), str(work / "pre.py"), str(ini), str(fixed),
                                    workdir=str(work / "wd"))
            if fixed.exists():
                made.append(fixed)
        except oracle.OracleError as e:
            log.warning("%s: refused by the vendor's tools: %s", name, str(e).splitlines()[-1][:160])
    return made


def make_corpus(out: Path, images: list[Path], chains: int) -> None:
    """tools/sgs_slot_corpus.py's chains and single-op models, converted and L1-calibrated."""
    import sgs_slot_corpus as corpus  # noqa: PLC0415
    from vendor_singleops import CASES  # noqa: PLC0415
    jobs = [(name, (lambda s=spec: corpus.chain(**s))) for name, spec in corpus.chain_specs(chains)]
    jobs += [(f"op_{c}", CASES[c]) for c in sorted(CASES)]
    for name, build in jobs:
        if (out / f"{name}_fixed.sim").exists():
            continue
        ok = corpus.make(out, name, build(), images)
        log.info("%s: %s", name, "made" if ok else "refused")


#: ops after a conv / depthwise that the vendor may run inside it (Operator ``sgs_op_class`` 2)
FUSION_OPS = ("ADD", "PRELU", "LOGISTIC", "RELU", "RELU6", "MUL", "fused_RELU6")


def fusion_chain(seed: int, kind: str, after: str, side: int, c: int, k: int, stride: int):
    """x [1, side, side, 3] -> 1x1 conv 3->c -> ``kind`` (CONV_2D c->c or DEPTHWISE_CONV_2D, k x k, SAME) ->
    ``after`` (ADD / MUL with the 1x1 conv's output when the shapes agree, else with itself; PRELU; a unary
    op; ``fused_RELU6`` the conv's own fused activation) -> 1x1 conv ->4 (output ``y``)."""
    import numpy as np  # noqa: PLC0415

    from calibrator_custom.model.builder import ModelBuilder  # noqa: PLC0415
    g = np.random.default_rng(seed)
    f32 = np.float32
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    one = {"padding": "SAME", "stride_w": 1, "stride_h": 1}
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(c, 1, 1, 3)).astype(f32)),
                         b.constant("b1", (g.normal(size=c) * 0.3).astype(f32))], one, name="c1")
    opt = {"padding": "SAME", "stride_w": stride, "stride_h": stride,
           "fused_activation_function": "RELU6" if after == "fused_RELU6" else "NONE"}
    if kind == "CONV_2D":
        w = g.normal(size=(c, k, k, c)).astype(f32) / k
    else:
        w, opt = g.normal(size=(1, k, k, c)).astype(f32), {**opt, "depth_multiplier": 1}
    z = b.op(kind, [y, b.constant("w2", w), b.constant("b2", g.normal(size=c).astype(f32))], opt, name="c2")
    if after in ("ADD", "MUL"):
        z = b.op(after, [z, y if stride == 1 else z], name="f")
    elif after == "PRELU":
        z = b.op("PRELU", [z, b.constant("alpha", g.uniform(0.05, 0.3, size=(1, 1, c)).astype(f32))], name="f")
    elif after != "fused_RELU6":
        z = b.op(after, [z], name="f")
    o = b.op("CONV_2D", [z, b.constant("w3", g.normal(size=(4, 1, 1, c)).astype(f32)),
                         b.constant("b3", g.normal(size=4).astype(f32))], one, name="y")
    b.output(o)
    return b


def fusion_specs(n: int, seed: int = 11):
    """n (name, kwargs) fusion chains: each kind and op in turn, sides, channels, kernels, strides drawn."""
    import numpy as np  # noqa: PLC0415
    g = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = ("CONV_2D", "DEPTHWISE_CONV_2D")[i % 2]
        after = FUSION_OPS[(i // 2) % len(FUSION_OPS)]
        spec = dict(seed=900 + i, kind=kind, after=after, side=int(g.choice([8, 12, 16, 24, 32, 48])),
                    c=int(g.choice([8, 16, 24, 32, 48, 64])), k=3 if kind != "CONV_2D" else int(g.choice([1, 3])),
                    stride=int(g.choice([1, 1, 2])))
        out.append((f"fusion{i:02d}_{kind.split('_')[0].lower()}_{after.lower()}", spec))
    return out


def make_fusion(out: Path, images: list[Path], n: int) -> None:
    import sgs_slot_corpus as corpus  # noqa: PLC0415
    for name, spec in fusion_specs(n):
        if not (out / f"{name}_fixed.sim").exists():
            ok = corpus.make(out, name, fusion_chain(**spec), images)
            log.info("%s: %s", name, "made" if ok else "refused")


def make_standalone(out: Path, sets: list[str], n: int) -> None:
    """The first ``n`` draws of each of tools/vendor_program_survey.py's sets, each conv made on its own
    (in the test oracle's cache; linked from OUT/standalone)."""
    import numpy as np  # noqa: PLC0415

    import vendor_program_splice as vps  # noqa: PLC0415
    import vendor_program_survey as survey  # noqa: PLC0415
    links = out / "standalone"
    links.mkdir(parents=True, exist_ok=True)
    for name in sets:
        rng = np.random.default_rng(survey.SEEDS[name])
        share = 1.0 if name == "heldout_depthwise" else 0.25
        for i, key in enumerate(dict.fromkeys(survey.draw(rng, share) for _ in range(n))):
            try:
                fixed = vps.make_standalone(key)
            except Exception as e:  # noqa: BLE001 - the vendor's tools refuse some configurations
                log.warning("%s %d: refused: %s", name, i, str(e).strip().splitlines()[-1][:120])
                continue
            link = links / f"{name}_{i:03d}_fixed.sim"
            if not link.exists():
                link.symlink_to(fixed)
            fl = fixed.with_name("m_float.sim")
            if fl.exists() and not link.with_name(f"{name}_{i:03d}_float.sim").exists():
                link.with_name(f"{name}_{i:03d}_float.sim").symlink_to(fl)


# ------------------------------------------------------------------ reading
def sim_files(paths) -> list[Path]:
    out = []
    for p in map(Path, paths):
        out += sorted(p.rglob("*.sim")) if p.is_dir() else [p]
    seen, files = set(), []
    for p in out:  # once each (the standalone links point into the oracle cache)
        if "_work_" not in str(p) and p.resolve() not in seen:
            seen.add(p.resolve())
            files.append(p)
    return files


def by_slot(table: str, value) -> dict:
    """A decoded table (options dataclass, dict, or (name, value) pairs) -> {slot: value}, nested vendor
    tables as {slot: value} too (their table name under the key ``None``)."""
    from sgs_slot_meanings import table_items

    items = table_items(value)
    out = {}
    for f in sgs_dialect.TABLES.get(table, ()):
        if f.name not in items or items[f.name] is None:
            continue
        v = items[f.name]
        sub = f.type.strip("[]")
        if sub.startswith("Sgs") and sub in sgs_dialect.TABLES:
            v = ([(sub, by_slot(sub, e)) for e in v] if f.type.startswith("[") else [(sub, by_slot(sub, v))])
            out[f.slot] = ("tables", v)
        else:
            out[f.slot] = v
    return out


def _tables_of(model):
    """(table, decoded value) of every vendor-extended table of a model that holds vendor slots."""
    yield "Model", model.extra if hasattr(model, "extra") else {}
    for g in model.subgraphs:
        yield "SubGraph", getattr(g, "extra", {}) or {}
        for t in g.tensors:
            yield "Tensor", t.extra or {}
            if t.quantization is not None:
                yield "QuantizationParameters", t.quantization.extra or {}
        for op in g.operators:
            yield "Operator", op.extra or {}
            if op.options is not None:
                yield type(op.options).__name__, op.options


def _hashable(v):
    if isinstance(v, (list, tuple)):
        return tuple(_hashable(e) for e in v)
    if isinstance(v, bytes):
        return f"<{len(v)} bytes>"
    if isinstance(v, float):
        return round(v, 6)
    return v


class Inventory:
    """{(table, slot): Counter(value)} and the files each was seen in."""

    def __init__(self, dialect: str | None = None):
        self.dialect = dialect
        self.values: dict[tuple[str, int], collections.Counter] = collections.defaultdict(collections.Counter)
        self.files: dict[tuple[str, int], set] = collections.defaultdict(set)
        self.read = self.refused = 0

    def add_table(self, table: str, slots: dict, where: str) -> None:
        vendor = {s for s, _ in sgs_slots.SLOTS.get(table, ())}
        for slot, v in slots.items():
            if isinstance(v, tuple) and len(v) == 2 and v[0] == "tables":
                if (table, slot) in {(t, s) for t in (table,) for s in vendor}:
                    self._count(table, slot, f"{len(v[1])} tables", where)
                for sub, sv in v[1]:
                    self.add_table(sub, sv, where)
            elif slot in vendor:
                self._count(table, slot, _hashable(v), where)

    def _count(self, table, slot, value, where):
        self.values[(table, slot)][value] += 1
        self.files[(table, slot)].add(where)

    def add_file(self, path: Path) -> None:
        try:
            model = load_model(path)
        except (ModelError, OSError) as e:
            log.warning("%s: not read: %s", path, e)
            self.refused += 1
            return
        if model.dialect not in sgs_dialect.VENDOR_DIALECTS or self.dialect not in (None, model.dialect):
            return
        self.read += 1
        for table, value in _tables_of(model):
            self.add_table(table, by_slot(table, value), str(path))


def report(inv: Inventory, unnamed_only: bool, table: str | None, top: int) -> str:
    lines = [f"{inv.read} vendor files read, {inv.refused} not readable"]
    for key in sorted(inv.values):
        t, s = key
        name = sgs_dialect.SLOT_NAMES.get(key)
        if (unnamed_only and name) or (table and t != table):
            continue
        c = inv.values[key]
        n = sum(c.values())
        vals = ", ".join(f"{_short(v)} x{k}" for v, k in c.most_common(top))
        more = f" (+{len(c) - top} more values)" if len(c) > top else ""
        lines.append(f"{t}.{s} {name or 'sgs_slot_%d' % s}: {n} obs in {len(inv.files[key])} files, "
                     f"{len(c)} values: {vals}{more}")
    return "\n".join(lines)


def _short(v, n=60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[:n] + "...)"


# ------------------------------------------------------------------ the region relations
#: the conv / depthwise buffer-region slots the relations are about, by table
REGION_SLOTS = {"CONV_2D": (25, 26, 27, 28, 29, 30, 31, 32, 33, 34),
                "DEPTHWISE_CONV_2D": (25, 26, 27, 28, 30, 31, 32, 33, 34, 35)}


def hosted_fused_ops(model) -> dict[int, list[int]]:
    """{op index: indices of the ops the vendor runs inside it} from Operator ``sgs_op_class`` 2 / 4 and
    ``sgs_fused_input`` (the input whose producer hosts the op)."""
    g = model.main
    producer = {t: j for j, o in enumerate(g.operators) for t in o.outputs}
    out: dict[int, list[int]] = collections.defaultdict(list)
    for j, op in enumerate(g.operators):
        if op.extra.get("sgs_op_class") in (2, 4):
            host = producer.get(op.inputs[op.extra.get("sgs_fused_input") or 0])
            if host is not None:
                out[host].append(j)
    return out


def conv_programs(paths):
    """(file, op index, kind, {slot: value} of its options, hosts a fused op, model, op) of every
    CONV_2D / DEPTHWISE_CONV_2D of the readable vendor fixed files."""
    for path in sim_files(paths):
        try:
            model = load_model(path)
        except (ModelError, OSError):
            continue
        if model.dialect != "sgs_fixed":
            continue
        hosts = hosted_fused_ops(model)
        for j, op in enumerate(model.main.operators):
            kind = model.op_name(op)
            if kind in REGION_SLOTS:
                table = type(op.options).__name__
                o = by_slot(table, op.options)
                yield path, j, kind, o, bool(hosts.get(j)), model, op


def _vec(v) -> tuple:
    return tuple(v or ())


def _out_bytes(model, op) -> int:
    return {"UINT8": 1, "INT8": 1, "INT16": 2}[model.main.tensors[op.outputs[0]].dtype]


def _cover(regions) -> list[int] | None:
    """The buffer slots the entries of ``regions`` ((entry list, slots per entry), ...) take, or None when two
    entries overlap."""
    taken: list[int] = []
    for entries, size in regions:
        for e in _vec(entries):
            taken += range(e, e + size)
    return sorted(taken) if len(taken) == len(set(taken)) else None


def region_claims(paths) -> dict[str, list]:
    """{claim: [(holds, observation)]} for the buffer-region relations of the conv programs."""
    res: dict[str, list] = collections.defaultdict(list)
    for path, j, kind, o, hosts, model, op in conv_programs(paths):
        where = (path.name if not path.name.startswith("m_") else f"{path.parent.name}/{path.name}", j)
        if kind == "CONV_2D":
            s29 = o.get(29, 0)
            res["conv 29 = 8 on a conv hosting a fused op"].append((s29 == 8, (where, s29))) if hosts else \
                res["conv 29 = 0 on a conv hosting none"].append((s29 == 0, (where, s29)))
            res["conv 34 = (32 - 29,)"].append((_vec(o.get(34)) == (32 - s29,), (where, s29, _vec(o.get(34)))))
            sizes = sum(o.get(s, 0) for s in (25, 26, 27, 28, 29))
            res["conv 25 + 26 + 27 + 28 + 29 <= 32"].append((sizes <= 32, (where, sizes)))
            ob = _out_bytes(model, op)
            cover = _cover(((o.get(33), 4), (o.get(30), 2), (o.get(31), 1), (o.get(32), ob)))
            res["conv entries of 33 (4 slots), 30 (2), 31 (1), 32 (output bytes) disjoint"].append(
                (cover is not None, (where, *(_vec(o.get(s)) for s in (33, 30, 31, 32)))))
            top = max(e for s in (30, 31, 32, 33) for e in _vec(o.get(s)))
            res["conv entries of 30-33 below 34[0]"].append((top < (_vec(o.get(34)) or (32,))[0], (where, top)))
        else:
            s31, s32, s33, s34, s35 = (_vec(o.get(s)) for s in (31, 32, 33, 34, 35))
            s26, s27, s28 = (o.get(s, 0) for s in (26, 27, 28))
            res["depthwise 26 = 2 len(31)"].append((s26 == 2 * len(s31), (where, s26, s31)))
            res["depthwise 27 = 6 len(32)"].append((s27 == 6 * len(s32), (where, s27, s32)))
            ob = _out_bytes(model, op)
            res["depthwise 28 = len(33) x output bytes per code"].append((s28 == ob * len(s33), (where, s28, s33, ob)))
            res["depthwise 34 = () (no region-28 size slot, 29, written)"].append((s34 == (), (where, s34)))
            res["depthwise 35 = (24,) on a depthwise hosting a fused op" if hosts else
                "depthwise 35 = (32,) on a depthwise hosting none"].append((s35 == ((24,) if hosts else (32,)),
                                                                            (where, s35)))
            res["depthwise 30 = 8 on a depthwise hosting a fused op" if hosts else
                "depthwise 30 = 0 (absent) on a depthwise hosting none"].append(
                    (o.get(30, 0) == (8 if hosts else 0), (where, o.get(30))))
            cover = _cover(((s31, 2), (s32, 6), (s33, ob)))
            res["depthwise entries of 31 (2 slots), 32 (6), 33 (output bytes) disjoint"].append(
                (cover is not None, (where, s31, s32, s33)))
            res["depthwise regions 31-33 end below 35[0]"].append(
                (cover is not None and max(cover) < (s35 or (32,))[0], (where, cover, s35)))
    return res


def claims_report(res: dict[str, list]) -> str:
    files = {o[0][0] for obs in res.values() for _, o in obs}
    lines = [f"{len(files)} vendor fixed files with a conv or depthwise"]
    for claim, obs in res.items():
        ok = sum(h for h, _ in obs)
        bad = next((o for h, o in obs if not h), None)
        lines.append(f"{claim}: {ok} / {len(obs)}" + (f"  (fails e.g. {bad})" if bad else ""))
    return "\n".join(lines)


# ------------------------------------------------------------------ patching (needs the SDK)
def _set(value, path: list, new):
    """``value`` (an options dataclass, a dict, a table frozen as (name, value) pairs, or a vector) with the
    field at ``path`` (field names, vector indices) replaced by ``new``."""
    import dataclasses  # noqa: PLC0415
    if not path:
        return new
    head, rest = path[0], path[1:]
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{head: _set(getattr(value, head), rest, new)})
    if isinstance(value, dict):
        return {**value, head: _set(value[head], rest, new)}
    if isinstance(value, tuple) and value and all(isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str)
                                                  for e in value) and not str(head).isdigit():
        names = [k for k, _ in value]
        if head not in names:
            raise KeyError(f"no field {head!r} in a table of {names}")
        return tuple((k, _set(v, rest, new) if k == head else v) for k, v in value)
    if isinstance(value, tuple):
        i = int(head)
        return value[:i] + (_set(value[i], rest, new),) + value[i + 1:]
    raise KeyError(f"cannot descend into {type(value).__name__} with {head!r}")


def _get(value, path: list):
    for head in path:
        if hasattr(value, "__dataclass_fields__"):
            value = getattr(value, head)
        elif isinstance(value, dict):
            value = value[head]
        elif isinstance(value, tuple) and not str(head).isdigit():
            value = dict(value)[head]
        else:
            value = value[int(head)]
    return value


def patched_bytes(path: Path, op_index: int, field: str, new) -> tuple[object, bytes]:
    """(old value, the file re-encoded with op ``op_index``'s ``field`` set to ``new``). ``field``: a dotted path
    from the op's options (``sgs_slot_17``, ``sgs_lut.sgs_slot_2.sgs_slot_1``) or, after ``extra.``, from the
    Operator's vendor fields (``extra.sgs_op_info.sgs_slot_1``, ``extra.sgs_input_rescale.0.sgs_slot_0``)."""
    model = load_model(path)
    op = model.main.operators[op_index]
    parts = field.split(".")
    if parts[0] == "extra":
        old = _get(op.extra, parts[1:])
        op.extra = _set(op.extra, parts[1:], new)
    else:
        old = _get(op.options, parts)
        op.options = _set(op.options, parts, new)
    return old, model.to_bytes(reencode=True)


def _tool_result(fn):
    """(outputs or None, one-line reaction) of a vendor tool call."""
    oracle = _oracle()
    try:
        return fn(), "ok"
    except oracle.OracleError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        why = [ln for ln in lines if "Assertion" in ln] or [ln for ln in lines if "rror" in ln] or lines[-1:]
        return None, "refused: " + (why[-1] if why else "no message")[:200]


def _diff(base: dict, got: dict) -> str:
    import numpy as np  # noqa: PLC0415
    d = max(float(np.max(np.abs(np.asarray(got[k], np.float64) - np.asarray(base[k], np.float64)))) for k in base)
    return "same outputs" if d == 0 else f"outputs differ (max |diff| {d:.4g})"


def patch_reactions(path: Path, op_index: int, field: str, values, seed: int = 0) -> list[str]:
    """Each of ``values`` written into one field of one op (through our encoder); the vendor's fixed simulator
    and offline compiler (and the offline simulator, when it compiles) on one random image, against the
    unpatched file's outputs."""
    import tempfile  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    oracle = _oracle()
    model = load_model(path)
    g = model.main
    x = np.random.default_rng(seed).integers(0, 256, tuple(int(d) for d in g.tensors[g.inputs[0]].shape)).astype(
        np.uint8)
    strip = (lambda r: {k: v for k, v in r.items() if not k.startswith("_")})
    kind = model.op_name(g.operators[op_index])
    lines = []
    with tempfile.TemporaryDirectory(prefix="slotpatch_") as d:
        d = Path(d)
        base = strip(oracle.fixed_sim(str(path), x))
        oracle.compile_offline(str(path), str(d / "base_offline.sim"))
        base_off = strip(oracle.offline_sim(str(d / "base_offline.sim"), x))
        for new in values:
            old, data = patched_bytes(path, op_index, field, new)
            back = Model.from_bytes(data)
            got = _get(back.main.operators[op_index].extra if field.startswith("extra.") else
                       back.main.operators[op_index].options, field.split(".")[field.startswith("extra."):])
            assert got == new and data != path.read_bytes(), (field, got, new)
            (d / "p_fixed.sim").write_bytes(data)
            fx, fx_msg = _tool_result(lambda: strip(oracle.fixed_sim(str(d / "p_fixed.sim"), x)))
            _, cmsg = _tool_result(lambda: oracle.compile_offline(str(d / "p_fixed.sim"), str(d / "p_offline.sim")))
            off_msg = ""
            if cmsg == "ok":
                same = (d / "p_offline.sim").read_bytes() == (d / "base_offline.sim").read_bytes()
                off, omsg = _tool_result(lambda: strip(oracle.offline_sim(str(d / "p_offline.sim"), x)))
                off_msg = (f" ({'the same' if same else 'a different'} offline model); offline sim: "
                           f"{_diff(base_off, off) if off is not None else omsg}")
            lines.append(f"{path.name} op {op_index} {kind} {field}: {old!r} -> {new!r}: fixed sim: "
                         f"{_diff(base, fx) if fx is not None else fx_msg}; compile_offline: {cmsg}{off_msg}")
            (d / "p_offline.sim").unlink(missing_ok=True)
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="make vendor files (needs the vendor SDK)")
    mk.add_argument("out_dir", type=Path)
    mk.add_argument("--chains", type=int, default=62)
    mk.add_argument("--no-shared", action="store_true")
    mk.add_argument("--no-corpus", action="store_true")
    mk.add_argument("--fusion", type=int, default=0, help="conv / depthwise -> fusable op chains to make")
    mk.add_argument("--standalone", nargs="*", default=[], choices=("train", "heldout", "heldout_depthwise"))
    mk.add_argument("--standalone-n", type=int, default=60, help="draws per standalone set")
    rp = sub.add_parser("report", help="value patterns per (table, slot)")
    rp.add_argument("paths", nargs="+")
    rp.add_argument("--unnamed", action="store_true", help="only the slots SLOT_NAMES does not name")
    rp.add_argument("--table")
    rp.add_argument("--dialect", choices=sorted(sgs_dialect.VENDOR_DIALECTS), help="only files of this dialect")
    rp.add_argument("--top", type=int, default=8)
    pt = sub.add_parser("patch", help="patch one field of one op; the vendor tools' reactions (needs the SDK)")
    pt.add_argument("file", type=Path)
    pt.add_argument("op", type=int, help="the op's index")
    pt.add_argument("field", help="dotted path: sgs_slot_17, sgs_lut.sgs_slot_2.sgs_slot_1, extra.sgs_op_info.sgs_slot_1")
    pt.add_argument("values", nargs="+", help="Python expressions of literals: 0, -1, (24,), (1,) + (0,) * 15")
    cl = sub.add_parser("claims", help="the conv programs' buffer-region relations, counted")
    cl.add_argument("paths", nargs="+")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.cmd == "make":
        sys.path.insert(0, str(ROOT / "tests"))
        from images import calibration_images  # noqa: PLC0415
        images = calibration_images()[:2]
        args.out_dir.mkdir(parents=True, exist_ok=True)
        if not args.no_shared:
            make_shared(args.out_dir, images)
        if not args.no_corpus:
            make_corpus(args.out_dir, images, args.chains)
        if args.fusion:
            make_fusion(args.out_dir, images, args.fusion)
        if args.standalone:
            make_standalone(args.out_dir, args.standalone, args.standalone_n)
        return 0
    if args.cmd == "report":
        inv = Inventory(args.dialect)
        for p in sim_files(args.paths):
            inv.add_file(p)
        print(report(inv, args.unnamed, args.table, args.top))
        return 0
    if args.cmd == "patch":
        values = [eval(v, {"__builtins__": {}}) for v in args.values]  # noqa: S307 - literals such as (0,) * 16
        for line in patch_reactions(args.file, args.op, args.field, values):
            print(line)
        return 0
    print(claims_report(region_claims(args.paths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
