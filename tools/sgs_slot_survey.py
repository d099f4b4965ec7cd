"""Infer the types of the vendor's untyped slots from vendor .sim files; regenerate ``model/sgs_slots.py``.

    python tools/sgs_slot_survey.py FILE.sim ...            # print the inferred layout
    python tools/sgs_slot_survey.py --write FILE.sim ...    # rewrite calibrator_custom/model/sgs_slots.py

The files are vendor files made in the session (``oracle.convert_tflite``, ``oracle.calibrate_l1``);
none is committed. Every table is read with the typed schema (``sgs_dialect.TABLES``); a vtable slot
the schema does not type is classified from its bytes, across every observation in every file:

* a slot is a **uoffset** when in every observation its 4 bytes are a non-zero multiple of 4 that
  points past the end of its own table (children lie after their parent in the vendor's files; a
  small scalar such as 4 would otherwise point at the next field) at a table (a valid vtable) or a
  vector, inside the file; otherwise it is a **scalar**.
  Following a slot that is later proved a scalar can create false tables, so the walk is repeated
  with the proved scalars until nothing changes;
* a scalar's width is the smallest gap to the next field of its table (field offsets sorted; the
  vendor writes every slot, so the gaps are exact up to alignment), snapped to 1/2/4/8 bytes and to
  the field's alignment; signed unless it never exceeds the signed range;
* a vector's element width is the smallest ``(start of the next object - start of the data) / n``
  over its non-empty observations (objects: every table, vtable, vector and string read), snapped
  to the data's alignment; a vector whose every element points at a table is a vector of tables;
* tables reached through untyped slots get a type named after the slot that holds them
  (``Conv2DOptions`` slot 40 -> ``SgsConv2DOptionsSlot40``; its vector elements the same).
"""
from __future__ import annotations

import argparse
import bisect
import collections
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from calibrator_custom.model import flatbuf, sgs_dialect  # noqa: E402

OUT = ROOT / "calibrator_custom" / "model" / "sgs_slots.py"
SNAP = (8, 4, 2, 1)


def _u32(b, p):
    return struct.unpack_from("<I", b, p)[0] if 0 <= p and p + 4 <= len(b) else None


def _vtable(b, t):
    v = t - struct.unpack_from("<i", b, t)[0]
    n, tl = struct.unpack_from("<HH", b, v)
    return v, [struct.unpack_from("<H", b, v + 4 + 2 * i)[0] for i in range((n - 4) // 2)], tl


def _looks_like_table(b, q) -> bool:
    if q is None or q % 4 or q + 4 > len(b):
        return False
    v = q - struct.unpack_from("<i", b, q)[0]
    if v < 0 or v % 2 or v + 4 > len(b):
        return False
    n, tl = struct.unpack_from("<HH", b, v)
    if not (4 <= n <= 512 and n % 2 == 0 and 4 <= tl <= 4096 and v + n <= len(b) and q + tl <= len(b)):
        return False
    offs = [struct.unpack_from("<H", b, v + 4 + 2 * i)[0] for i in range((n - 4) // 2)]
    return all(o == 0 or 4 <= o < tl for o in offs)


def _widths(offs, tl):
    s = sorted(set(o for o in offs if o))
    return {o: (s[i + 1] if i + 1 < len(s) else tl) - o for i, o in enumerate(s)}


def _table_type(key: str) -> str:
    """``Conv2DOptions.40[]`` -> ``SgsConv2DOptionsSlot40``; ``A.3.1`` -> ``SgsASlot3Slot1``."""
    parts = key.replace("[]", "").split(".")
    base = parts[0][3:] if parts[0].startswith("Sgs") else parts[0]
    return "Sgs" + base + "".join(f"Slot{p}" for p in parts[1:])


class Survey:
    def __init__(self):
        self.obs = collections.defaultdict(list)   # (table key, slot) -> [observation]
        self.scalar = set()                        # (table key, slot) proved scalars
        self.not_table = set()                     # (table key, slot) proved vectors of scalars
        self.tables_seen = collections.Counter()

    # ------------------------------------------------------------------ one pass over one file
    def walk_file(self, name: str, data: bytes):
        self.data = data
        self.starts = set()
        self.pending = []                          # vectors whose element width needs the starts
        dialect = sgs_dialect.detect(data)
        survey = self

        class Reader(flatbuf._Reader):
            def table(self, pos, tname, what, depth):
                out = super().table(pos, tname, what, depth)
                survey.known_table(tname, pos, self.dialect.fields(tname, 0, self.file_identifier))
                return out

            def vector(self, pos, elem, what, depth):
                survey.starts.add(pos)
                return super().vector(pos, elem, what, depth)

            def string(self, pos, what):
                survey.starts.add(pos)
                return super().string(pos, what)

            def byte_view(self, pos, what):
                survey.starts.add(pos)
                return super().byte_view(pos, what)

        r = Reader(data, data[4:8], dialect)
        if dialect in sgs_dialect.VENDOR_DIALECTS:
            r.dialect = flatbuf._Dialect(dialect)
            r.dialect.tables = sgs_dialect.BASE_TABLES  # survey from the schema without the found slots
        r.table(r.uoffset(0, "root"), "Model", "Model", 0)
        starts = sorted(self.starts)
        for key, q, n in self.pending:
            i = bisect.bisect_right(starts, q)
            nxt = starts[i] if i < len(starts) else len(data)
            self.vec_gaps[key].append((q, n, nxt - q - 4))

    def known_table(self, tname, pos, fields):
        self.mark(pos)
        typed = {f.slot for f in fields}
        self.slots(tname, pos, typed)

    def mark(self, pos):
        b = self.data
        self.starts.add(pos)
        self.starts.add(pos - struct.unpack_from("<i", b, pos)[0])

    def slots(self, key, pos, typed=frozenset()):
        b = self.data
        _, offs, tl = _vtable(b, pos)
        w = _widths(offs, tl)
        self.tables_seen[key] += 1
        self.obs[(key, "_nslots")].append(len(offs))
        for s, o in enumerate(offs):
            if not o or s in typed:
                continue
            p = pos + o
            u = _u32(b, p) if w[o] >= 4 else None
            ob = {"pos": p, "w": w[o], "raw": bytes(b[p:p + min(w[o], 8)])}
            q = p + u if u else None
            # a child object lies after its parent table: a value pointing into the table is a scalar
            if u and u % 4 == 0 and pos + tl <= q and q + 4 <= len(b) and (key, s) not in self.scalar:
                if (key, s) not in self.not_table and _looks_like_table(b, q):
                    ob["kind"] = "table"
                    self.obs[(key, s)].append(ob)
                    self.mark(q)
                    self.slots(f"{key}.{s}", q)
                    continue
                n = _u32(b, q)
                if q + 4 + n <= len(b):
                    elems = [q + 4 + 4 * i + (_u32(b, q + 4 + 4 * i) or 0) for i in range(n)] \
                        if q + 4 + 4 * n <= len(b) else []
                    if (key, s) not in self.not_table and n and elems and \
                            all(e >= q + 4 + 4 * n and _looks_like_table(b, e) for e in elems):
                        ob["kind"] = "tables"
                        ob["n"] = n
                        self.obs[(key, s)].append(ob)
                        self.starts.add(q)
                        for e in elems:
                            self.mark(e)
                            self.slots(f"{key}.{s}[]", e)
                        continue
                    ob["kind"] = "vector"
                    ob["n"] = n
                    ob["body"] = bytes(b[q + 4:q + 4 + min(64, len(b) - q - 4)])
                    self.starts.add(q)
                    self.obs[(key, s)].append(ob)
                    if n:
                        self.pending.append(((key, s), q, n))
                    continue
            ob["kind"] = "scalar"
            self.obs[(key, s)].append(ob)

    # ------------------------------------------------------------------ all files, to a fixed point
    def run(self, files):
        datas = [(Path(f).name, Path(f).read_bytes()) for f in files]
        while True:
            self.obs.clear()
            self.tables_seen.clear()
            self.vec_gaps = collections.defaultdict(list)
            for name, data in datas:
                self.walk_file(name, data)
            proved = {k for k, obs in self.obs.items() if k[1] != "_nslots" and
                      any(o["kind"] == "scalar" for o in obs)} | self.scalar
            # a slot that is a plain vector in one file is one in all (a table there is a coincidence)
            vectors = {k for k, obs in self.obs.items() if k[1] != "_nslots" and
                       any(o["kind"] == "vector" and o["n"] for o in obs) and
                       any(o["kind"] in ("table", "tables") for o in obs)} | self.not_table
            if proved == self.scalar and vectors == self.not_table:
                return
            self.scalar, self.not_table = proved, vectors

    # ------------------------------------------------------------------ the inferred fields
    def field_type(self, key, slot) -> tuple[str, str]:
        obs = self.obs[(key, slot)]
        kinds = {o["kind"] for o in obs}
        if kinds == {"scalar"}:
            w = min(o["w"] for o in obs)
            w = next(s for s in SNAP if s <= w and all(o["pos"] % s == 0 for o in obs))
            vals = [int.from_bytes(o["raw"][:w], "little") for o in obs]
            signed = any(v >= 1 << (8 * w - 1) for v in vals) and w > 1
            t = {1: "uint8", 2: "int16" if signed else "uint16", 4: "int32" if signed else "uint32",
                 8: "int64" if signed else "uint64"}[w]
            return t, f"values {sorted(set(_signed(v, w, signed) for v in vals))[:6]}"
        if kinds == {"table"}:
            return _table_type(f"{key}.{slot}"), "table"
        if kinds <= {"tables", "vector"} and "tables" in kinds:
            if any(o["kind"] == "vector" and o["n"] for o in obs):
                raise SystemExit(f"{key}.{slot}: a vector of tables in some files, of scalars in others")
            return f"[{_table_type(key + '.' + str(slot) + '[]')}]", "vector of tables"
        if kinds == {"vector"}:
            gaps = self.vec_gaps.get((key, slot), [])
            lens = sorted({o["n"] for o in obs})
            if not gaps:
                return "[int32]", f"empty in every file ({len(obs)} seen)"
            w = min(g // n for _, n, g in gaps)
            w = next(s for s in SNAP if s <= max(w, 1) and all((q + 4) % max(s, 4) == 0 or s < 4
                                                             for q, _, _ in gaps))
            t = {1: "[uint8]", 2: "[int16]", 4: "[int32]", 8: "[int64]"}[w]
            return t, f"lengths {lens[:8]}{' ...' if len(lens) > 8 else ''}"
        raise SystemExit(f"{key}.{slot}: inconsistent kinds {kinds}")

    def layout(self):
        """{table key: [(slot, type, note)]} for every table holding untyped slots."""
        out = collections.defaultdict(list)
        for (key, slot) in sorted(self.obs, key=lambda k: (k[0], -1 if k[1] == "_nslots" else k[1])):
            if slot == "_nslots":
                if "." in key:
                    out.setdefault(key, [])
                continue
            t, note = self.field_type(key, slot)
            out[key].append((slot, t, note))
        return out


def _signed(v, w, signed):
    return v - (1 << 8 * w) if signed and v >= 1 << (8 * w - 1) else v


def render(layout, survey) -> str:
    lines = [
        '"""The vendor\'s slots that TFLite does not have, inside TFLite\'s tables and the vendor\'s own.',
        "",
        "Generated by ``python tools/sgs_slot_survey.py --write FILES`` from vendor files made with the",
        "vendor's convert_tool and L1 calibrator (float.sim, cmodel_float.sim, fixed.sim of the builder's",
        "single-op models and the shared models); do not edit by hand. Each slot's type was inferred from",
        "its bytes across every file (see the tool's docstring and docs/model_format.md). A name",
        "``sgs_slot_<n>`` means the slot's meaning is not established; ``sgs_dialect`` gives names to",
        "those whose meaning is.",
        '"""',
        "from __future__ import annotations",
        "",
        "#: table -> ((slot, type), ...): the slots the typed schema lacks, as seen in the vendor's files",
        "SLOTS: dict[str, tuple[tuple[int, str], ...]] = {",
    ]
    for key in sorted(layout):
        name = key if "." not in key else _table_type(key)
        fields = layout[key]
        lines.append(f"    # {key}: {survey.tables_seen[key]} tables seen")
        if not fields:
            lines.append(f"    {name!r}: (),")
            continue
        lines.append(f"    {name!r}: (")
        for slot, t, note in fields:
            lines.append(f"        ({slot}, {t!r}),  # {note}"[:110] if len(f"        ({slot}, {t!r}),  # {note}") > 110
                         else f"        ({slot}, {t!r}),  # {note}")
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--write", action="store_true", help=f"rewrite {OUT.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    survey = Survey()
    survey.run(args.files)
    layout = survey.layout()
    text = render(layout, survey)
    if args.write:
        OUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUT.relative_to(ROOT)}: {len(layout)} tables")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
