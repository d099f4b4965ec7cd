"""A bounds-checked FlatBuffer codec driven by the schema tables in ``schema.py``.

``decode(data)`` turns a file into nested plain values: a table becomes a ``dict`` holding every
field of its schema (absent fields take their default), a union value a ``(member_name, dict)``
pair, a string ``str``, a byte vector ``bytes``, another scalar vector a read-only numpy array,
and a vector of tables or strings a ``list``. ``encode(root, file_identifier)`` is the inverse.

Every offset is checked against the buffer before it is followed, so a corrupt or hostile file
raises :class:`ModelError` naming what was being read; nothing else escapes. FlatBuffer offsets to
child objects are unsigned and point forward, so decoding always terminates.

SigmaStar's ``.sim`` fork lays out four option tables differently (``schema.SGS_TABLES``): a table
listed there is read and written in SigmaStar's layout when the file identifier is ``SIM2`` or
when its ``padding`` is one of SigmaStar's explicit modes (CAFFE, ONNXINSIDE, ONNXOUTSIDE).
"""
from __future__ import annotations

import struct
from typing import Any

import flatbuffers
import numpy as np

from ..errors import ModelError
from . import schema, sgs_dialect

SCALARS: dict[str, tuple[str, int]] = {
    "bool": ("<?", 1), "int8": ("<b", 1), "uint8": ("<B", 1), "int16": ("<h", 2),
    "uint16": ("<H", 2), "int32": ("<i", 4), "uint32": ("<I", 4), "int64": ("<q", 8),
    "uint64": ("<Q", 8), "float32": ("<f", 4), "float64": ("<d", 8),
}
_NP_DTYPES = {k: np.dtype(v[0]) for k, v in SCALARS.items()}
EXPLICIT_PADDING_VALUES = frozenset(
    schema.ENUMS["Padding"][m] for m in ("CAFFE", "ONNXINSIDE", "ONNXOUTSIDE")
)
_MAX_DEPTH = 64
#: [uint8] fields decoded as memoryviews into the file instead of copies.
_ZERO_COPY = {("Buffer", "data")}


def _scalar_value(f, obj, by_slot):
    """(scalar type, value, default) of a scalar field to write, or None (not a scalar, a union's type
    slot, or absent); enum names become their numbers."""
    scalar = _scalar_of(f.type)
    if scalar is None or (f.slot + 1 in by_slot and by_slot[f.slot + 1].type.startswith("union:")):
        return None
    v = obj.get(f.name, None)
    if v is None:
        return None
    if f.type in schema.ENUMS:
        return scalar, (schema.ENUMS[f.type][v] if isinstance(v, str) else int(v)), int(f.default)
    return scalar, v, f.default


def _scalar_of(type_name: str) -> str | None:
    """The scalar type behind a scalar or enum type string, else None."""
    if type_name in SCALARS:
        return type_name
    if type_name in schema.ENUMS and type_name not in schema.UNIONS:
        return schema.ENUM_TYPES[type_name]
    return None


def uses_sgs_layout(table: str, padding_value: int, file_identifier: bytes) -> bool:
    """Whether ``table`` is laid out as in SigmaStar's fork for this padding and file."""
    if table not in schema.SGS_TABLES:
        return False
    return file_identifier == b"SIM2" or padding_value in EXPLICIT_PADDING_VALUES


def table_fields(table: str, sgs: bool = False) -> tuple[schema.Field, ...]:
    """The field list of ``table`` in the standard or SigmaStar layout."""
    return schema.SGS_TABLES[table] if sgs else schema.TABLES[table]


# ----------------------------------------------------------------------------------------- reading
class _Dialect:
    """The tables, union members and layout rules of one schema dialect (TFLite or the vendor's)."""

    def __init__(self, name: str | None):
        vendor = name in sgs_dialect.VENDOR_DIALECTS
        self.tables = sgs_dialect.TABLES if vendor else schema.TABLES
        self.force_sgs_layout = vendor
        self.unfollowed = sgs_dialect.UNFOLLOWED_TABLES if vendor else frozenset()
        enums = sgs_dialect.ENUMS if vendor else schema.ENUMS
        self.union_members = {u: {v: k for k, v in enums[u].items() if v} for u in schema.UNIONS}
        self.union_ids = {u: enums[u] for u in schema.UNIONS}
        self.always_written = sgs_dialect.ALWAYS_WRITTEN if vendor else frozenset()
        self.vector_alignment = sgs_dialect.VECTOR_ALIGNMENT if vendor else {}
        self.late_tables = sgs_dialect.LATE_TABLES if vendor else frozenset()

    def child_order(self, table: str, fields: tuple[schema.Field, ...]) -> tuple[schema.Field, ...]:
        """The order a table's children are written in (back to front): by slot, or the vendor's order."""
        order = sgs_dialect.CHILD_ORDER.get(table) if self.force_sgs_layout else None
        if order is None:
            return fields
        rank = {slot: i for i, slot in enumerate(order)}
        return tuple(sorted(fields, key=lambda f: (rank.get(f.slot, len(order)), f.slot)))

    def fields(self, table: str, padding_value: int, file_identifier: bytes) -> tuple[schema.Field, ...]:
        if table in schema.SGS_TABLES and not self.force_sgs_layout:
            return table_fields(table, uses_sgs_layout(table, padding_value, file_identifier))
        return self.tables[table]


_DIALECTS: dict[str | None, _Dialect] = {}


def _dialect(name: str | None) -> _Dialect:
    d = _DIALECTS.get(name)
    if d is None:
        d = _DIALECTS[name] = _Dialect(name)
    return d


class _Reader:
    def __init__(self, data: bytes, file_identifier: bytes, dialect: str | None = None):
        self.buf = memoryview(data)
        self.size = len(data)
        self.file_identifier = file_identifier
        self.dialect = _dialect(dialect)
        #: vendor slots the schema does not type (kept only while the model is unmodified)
        self.untyped: list[str] = []
        #: (where, member, target) of the vendor's offsets to options without fields, and the
        #: first vtable seen: such an offset is the vendor's null reference (to the first vtable)
        #: unless the vendor wrote a table there, which the schema does not type
        self.unfollowed_targets: list[tuple[str, str, int]] = []
        self.first_vtable = self.size

    def check(self, pos: int, length: int, what: str) -> None:
        if pos < 0 or length < 0 or pos + length > self.size:
            raise ModelError(
                f"corrupt model: {what} at byte {pos} (length {length}) lies outside the file "
                f"of {self.size} bytes"
            )

    def scalar(self, pos: int, scalar: str, what: str):
        fmt, size = SCALARS[scalar]
        self.check(pos, size, what)
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def uoffset(self, pos: int, what: str) -> int:
        return pos + self.scalar(pos, "uint32", what)

    def table(self, pos: int, name: str, what: str, depth: int) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            raise ModelError(f"corrupt model: tables nested deeper than {_MAX_DEPTH} at {what}")
        vtable = pos - self.scalar(pos, "int32", f"{what} ({name})")
        self.first_vtable = min(self.first_vtable, vtable)
        vt_size = self.scalar(vtable, "uint16", f"vtable of {what}")
        obj_size = self.scalar(vtable + 2, "uint16", f"vtable of {what}")
        if vt_size < 4 or vt_size % 2:
            raise ModelError(f"corrupt model: bad vtable size {vt_size} for {what} ({name})")
        self.check(vtable, vt_size, f"vtable of {what}")
        self.check(pos, obj_size, f"{what} ({name})")
        n_slots = (vt_size - 4) // 2

        def field_pos(slot: int) -> int:
            if slot >= n_slots:
                return 0
            off = struct.unpack_from("<H", self.buf, vtable + 4 + 2 * slot)[0]
            if off and off >= obj_size:
                raise ModelError(f"corrupt model: field slot {slot} of {what} ({name}) points "
                                 f"outside its table")
            return pos + off if off else 0

        padding = 0
        if name in schema.SGS_TABLES:
            p = field_pos(0)
            padding = self.scalar(p, "int8", f"{what}.padding") if p else 0
        fields = self.dialect.fields(name, padding, self.file_identifier)
        out: dict[str, Any] = {}
        by_slot = {f.slot: f for f in fields}
        for f in fields:
            fpos = field_pos(f.slot)
            fwhat = f"{what}.{f.name}"
            if f.type.startswith("union:"):
                union = f.type[6:]
                type_field = by_slot[f.slot - 1]
                type_pos = field_pos(type_field.slot)
                type_id = self.scalar(type_pos, "uint8", fwhat) if type_pos else 0
                if not fpos or type_id == 0:
                    out[f.name] = None
                    continue
                member = self.dialect.union_members[union].get(type_id)
                if member is None:
                    raise ModelError(f"corrupt model: {fwhat} has unknown {union} type {type_id}")
                if member in self.dialect.unfollowed:
                    out[f.name] = (member, {})
                    self.unfollowed_targets.append((fwhat, member, self.uoffset(fpos, fwhat)))
                    continue
                out[f.name] = (member, self.table(self.uoffset(fpos, fwhat), member, fwhat, depth + 1))
                continue
            if f.name.endswith("_type") and by_slot.get(f.slot + 1) is not None and \
                    by_slot[f.slot + 1].type.startswith("union:"):
                continue  # folded into the union value
            if fpos and (name, f.name) in _ZERO_COPY:
                out[f.name] = self.byte_view(self.uoffset(fpos, fwhat), fwhat)
                continue
            out[f.name] = self.value(fpos, f, fwhat, depth) if fpos else field_default(f)
        if self.dialect.force_sgs_layout:
            held = sorted((field_pos(f.slot), f.name) for f in fields if field_pos(f.slot))
            out[sgs_dialect.LAYOUT] = tuple(name for _, name in held)
            typed = {f.slot for f in fields}
            self.untyped.extend(f"{what} ({name}) slot {s}" for s in range(n_slots)
                                if s not in typed and field_pos(s))
        return out

    def byte_view(self, pos: int, what: str) -> memoryview:
        """A [uint8] vector as a zero-copy view of the file (weights are most of a model's bytes)."""
        n = self.scalar(pos, "uint32", f"length of {what}")
        self.check(pos + 4, n, what)
        return self.buf[pos + 4:pos + 4 + n]

    def value(self, fpos: int, f: schema.Field, what: str, depth: int):
        t = f.type
        scalar = _scalar_of(t)
        if scalar is not None:
            v = self.scalar(fpos, scalar, what)
            return _enum_name(t, v, what) if t in schema.ENUMS else v
        target = self.uoffset(fpos, what)
        if t == "string":
            return self.string(target, what)
        if t.startswith("["):
            return self.vector(target, t[1:-1], what, depth)
        return self.table(target, t, what, depth + 1)

    def string(self, pos: int, what: str) -> str:
        n = self.scalar(pos, "uint32", what)
        self.check(pos + 4, n, what)
        try:
            return bytes(self.buf[pos + 4:pos + 4 + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError(f"corrupt model: {what} is not valid UTF-8") from None

    def vector(self, pos: int, elem: str, what: str, depth: int):
        n = self.scalar(pos, "uint32", f"length of {what}")
        start = pos + 4
        scalar = _scalar_of(elem)
        if scalar is not None:
            size = SCALARS[scalar][1]
            self.check(start, n * size, what)
            if scalar == "uint8" and elem == "uint8":
                return bytes(self.buf[start:start + n])
            arr = np.frombuffer(self.buf, dtype=_NP_DTYPES[scalar], count=n, offset=start).copy()
            if elem in schema.ENUMS:
                return tuple(_enum_name(elem, int(v), what) for v in arr)
            arr.flags.writeable = False
            return arr
        self.check(start, 4 * n, what)
        items = []
        for i in range(n):
            ipos = start + 4 * i
            iwhat = f"{what}[{i}]"
            if elem == "string":
                items.append(self.string(self.uoffset(ipos, iwhat), iwhat))
            else:
                items.append(self.table(self.uoffset(ipos, iwhat), elem, iwhat, depth + 1))
        return items


def field_default(f: schema.Field):
    """The decoded default of a field: the member name for enums, the value for scalars, else None."""
    if f.type in schema.ENUMS and f.type not in schema.UNIONS:
        return _ENUM_NAMES[f.type].get(int(f.default), int(f.default))
    if _scalar_of(f.type) is not None:
        return f.default
    return None


def _enum_name(enum: str, value: int, what: str) -> str:
    try:
        return _ENUM_NAMES[enum][value]
    except KeyError:
        raise ModelError(f"corrupt model: {what} has value {value}, not a member of {enum}") from None


_ENUM_NAMES = {e: {v: k for k, v in members.items()} for e, members in schema.ENUMS.items()}
_UNION_MEMBERS = {u: {v: k for k, v in schema.ENUMS[u].items() if v} for u in schema.UNIONS}


def file_identifier_of(data: bytes) -> bytes:
    """The 4-byte file identifier at bytes 4..8 (empty if the file is too short)."""
    return bytes(data[4:8]) if len(data) >= 8 else b""


def decode(data: bytes, root: str = schema.ROOT_TABLE, dialect: str | None = None
           ) -> tuple[dict[str, Any], bytes]:
    """Decode a whole FlatBuffer file; returns (root table dict, file identifier).

    ``dialect`` is ``None``/``"tflite"`` for TFLite's schema or a vendor dialect of
    :mod:`sgs_dialect` (see :func:`sgs_dialect.detect`).
    """
    if len(data) < 8:
        raise ModelError(f"corrupt model: the file has {len(data)} bytes, too short to be a FlatBuffer")
    ident = file_identifier_of(data)
    if ident not in schema.FILE_IDENTIFIERS:
        raise ModelError(
            f"not a TFLite/.sim model: file identifier {ident!r}, expected one of "
            f"{', '.join(repr(i) for i in schema.FILE_IDENTIFIERS)}"
        )
    reader = _Reader(data, ident, dialect)
    try:
        out = reader.table(reader.uoffset(0, "root offset"), root, root, 0)
        if reader.dialect.force_sgs_layout:
            reader.untyped.extend(f"{what} ({member}): a table the schema does not type"
                                  for what, member, target in reader.unfollowed_targets
                                  if target < reader.first_vtable)
        if reader.untyped:
            out[sgs_dialect.UNTYPED] = tuple(reader.untyped)
        return out, ident
    except RecursionError:
        raise ModelError("corrupt model: nesting too deep") from None


# ----------------------------------------------------------------------------------------- writing
_PREPEND = {
    "bool": "PrependBoolSlot", "int8": "PrependInt8Slot", "uint8": "PrependUint8Slot",
    "int16": "PrependInt16Slot", "uint16": "PrependUint16Slot", "int32": "PrependInt32Slot",
    "uint32": "PrependUint32Slot", "int64": "PrependInt64Slot", "uint64": "PrependUint64Slot",
    "float32": "PrependFloat32Slot", "float64": "PrependFloat64Slot",
}
_FLAGS = {
    "bool": flatbuffers.number_types.BoolFlags, "int8": flatbuffers.number_types.Int8Flags,
    "uint8": flatbuffers.number_types.Uint8Flags, "int16": flatbuffers.number_types.Int16Flags,
    "uint16": flatbuffers.number_types.Uint16Flags, "int32": flatbuffers.number_types.Int32Flags,
    "uint32": flatbuffers.number_types.Uint32Flags, "int64": flatbuffers.number_types.Int64Flags,
    "uint64": flatbuffers.number_types.Uint64Flags, "float32": flatbuffers.number_types.Float32Flags,
    "float64": flatbuffers.number_types.Float64Flags,
}
#: Byte vectors that TFLite aligns to 16 bytes (``force_align: 16`` in its schema).
_ALIGNED_BYTE_VECTORS = {("Buffer", "data"): 16}


class _ClusterBuilder(flatbuffers.Builder):
    """A builder that writes the vtables after every object, deduplicated, in the order first made.

    The vendor's files hold their vtables so (``flatbuffer_writer.c``); the vendor's compiler
    re-serializes a model and refuses a file whose size differs from its own writer's.
    A table's soffset to its vtable does not depend on where the objects end: with the table
    ``t`` bytes before the end of the objects and the vtable ``v`` bytes into the cluster,
    ``table - vtable = -(t + v)``.
    """

    def __init__(self, initial_size: int):
        super().__init__(initial_size)
        self.cluster = bytearray()
        self.cluster_index: dict[tuple, int] = {}

    def WriteVtable(self):  # noqa: N802 (flatbuffers' name)
        self.PrependSOffsetTRelative(0)
        object_offset = self.Offset()
        vt = [0 if e == 0 else object_offset - e for e in self.current_vtable]
        while vt and vt[-1] == 0:
            vt.pop()
        object_size = object_offset - self.objectEnd
        key = (object_size, tuple(vt))
        v = self.cluster_index.get(key)
        if v is None:
            v = self.cluster_index[key] = len(self.cluster)
            self.cluster += struct.pack(f"<{2 + len(vt)}H", 4 + 2 * len(vt), object_size, *vt)
        struct.pack_into("<i", self.Bytes, len(self.Bytes) - object_offset, -object_offset - v)
        self.current_vtable = None
        return object_offset

    def Output(self):  # noqa: N802
        return bytes(self.Bytes[self.Head():]) + bytes(self.cluster)


class _Writer:
    def __init__(self, size_hint: int, file_identifier: bytes, dialect: str | None = None):
        self.dialect = _dialect(dialect)
        builder = _ClusterBuilder if self.dialect.force_sgs_layout else flatbuffers.Builder
        self.b = builder(max(1024, size_hint))
        self.file_identifier = file_identifier
        #: the buffers in the order the tensors name them (the vendor writes their data so)
        self.buffer_order: list[int] = []

    def table(self, name: str, obj: dict[str, Any], made: dict[int, int] | None = None,
              children_only: bool = False):
        """Encode one table; ``made``: child offsets already written (slot -> offset);
        ``children_only``: write its children only and return their offsets (``made`` of a later call)."""
        pv = 0
        if name in schema.SGS_TABLES:
            padding = obj.get("padding", "SAME")
            pv = schema.ENUMS["Padding"].get(padding, 0) if isinstance(padding, str) else padding
        fields = self.dialect.fields(name, pv, self.file_identifier)
        by_slot = {f.slot: f for f in fields}
        # Children first: FlatBuffers objects cannot nest while a table is open.
        if name == "Model":
            self.buffer_order = [t.get("buffer", 0) for g in obj.get("subgraphs") or () for t in g.get("tensors") or ()]
        offsets: dict[int, int] = dict(made or {})
        union_types: dict[int, int] = {}
        late = []
        for f in self.dialect.child_order(name, fields):
            v = obj.get(f.name)
            if _scalar_of(f.type) is not None or v is None:
                continue
            if f.type.startswith("union:"):
                member, body = v
                union_types[f.slot - 1] = self.dialect.union_ids[f.type[6:]][member]
            if f.slot in offsets:
                continue
            if (name, f.slot) in self.dialect.late_tables:
                # the vendor writes this child's own children first and its table after the others
                late.append((f, self.table(f.type, v, children_only=True)))
            elif f.type.startswith("union:"):
                if member in self.dialect.unfollowed and not any(x is not None for x in body.values()):
                    # the vendor writes no table for options without fields: its offset is the
                    # builder's null reference, the end of the objects (the first vtable)
                    offsets[f.slot] = 0
                else:
                    offsets[f.slot] = self.table(member, body)
            elif f.type == "string":
                offsets[f.slot] = self.b.CreateString(v)
            elif f.type.startswith("["):
                offsets[f.slot] = self.vector(name, f, v)
            else:
                offsets[f.slot] = self.table(f.type, v)
        for f, pre in late:
            offsets[f.slot] = self.table(f.type, obj[f.name], made=pre)
        if children_only:
            return offsets
        n_slots = max((f.slot for f in fields), default=-1) + 1
        if self.dialect.force_sgs_layout:
            return self.vendor_table(name, obj, fields, by_slot, offsets, union_types, n_slots)
        self.b.StartObject(n_slots)
        for f in fields:
            if f.slot in offsets:
                self.b.PrependUOffsetTRelativeSlot(f.slot, offsets[f.slot], 0)
            elif f.slot in union_types:
                self.b.PrependUint8Slot(f.slot, union_types[f.slot], 0)
            else:
                found = _scalar_value(f, obj, by_slot)
                if found is not None:
                    scalar, v, default = found
                    getattr(self.b, _PREPEND[scalar])(f.slot, v, default)
        return self.b.EndObject()

    def vendor_table(self, name, obj, fields, by_slot, offsets, union_types, n_slots) -> int:
        """A table laid out as the vendor's files hold it: the fields of ``sgs_dialect.LAYOUT`` in that
        order (zeros included), then any other non-default field, largest first, then by slot.

        Every table of the 129 surveyed vendor files comes out with the vendor's vtable (field offsets
        and table size). The vendor's simulators were also seen to accept the flatbuffers library's own
        layout: this is fidelity to the vendor's files (docs/model_format.md, "Round trip and re-encoding").
        """
        held = {n: i for i, n in enumerate(obj.get(sgs_dialect.LAYOUT) or ())}
        entries = []  # (size, slot, flags, value, is_offset)
        for f in fields:
            if f.slot in offsets:
                entries.append((4, f.slot, None, offsets[f.slot], True))
            elif f.slot in union_types:
                entries.append((1, f.slot, _FLAGS["uint8"], union_types[f.slot], False))
            else:
                found = _scalar_value(f, obj, by_slot)
                if found is None:
                    continue
                scalar, v, default = found
                if v == default and f.name not in held and (name, f.name) not in self.dialect.always_written:
                    continue
                entries.append((SCALARS[scalar][1], f.slot, _FLAGS[scalar], v, False))
        # the file's order for the fields it held; others after them, largest first, then by slot
        entries.sort(key=lambda e: (0, held[by_slot[e[1]].name]) if by_slot[e[1]].name in held else (1, -e[0], e[1]))
        base = 4 if any(e[0] == 8 for e in entries) else 0  # the table start, modulo 8
        layout, cur = [], 4
        for e in entries:
            while (base + cur) % e[0]:
                cur += 1
            layout.append((cur, e))
            cur += e[0]
        size = cur
        b = self.b
        b.minalign = max(b.minalign, 8 if base else 4)
        # the table start is 8-aligned + base when it holds an 8-byte field, else 4-aligned
        pad = (-size - base - b.Offset()) % (8 if base else 4)
        b.Prep(1, pad + size)
        b.Pad(pad)
        b.StartObject(n_slots)
        cursor = size
        for off, (width, slot, flags, v, is_offset) in reversed(layout):
            b.Pad(cursor - off - width)
            if is_offset:
                b.PlaceUOffsetT(b.Offset() + 4 - v)
            else:
                b.Place(v, flags)
            b.Slot(slot)
            cursor = off
        b.Pad(cursor - 4)
        return b.EndObject()

    def vector(self, table: str, f: schema.Field, v) -> int:
        elem = f.type[1:-1]
        scalar = _scalar_of(elem)
        if scalar is not None:
            if elem in schema.ENUMS:
                v = [schema.ENUMS[elem][x] if isinstance(x, str) else int(x) for x in v]
            if scalar == "uint8" and isinstance(v, (bytes, bytearray, memoryview)):
                return self.byte_vector(bytes(v), _ALIGNED_BYTE_VECTORS.get((table, f.name), 4))
            arr = np.ascontiguousarray(np.asarray(v, dtype=_NP_DTYPES[scalar]))
            alignment = self.dialect.vector_alignment.get((table, f.name), max(4, arr.dtype.itemsize))
            return self.byte_vector(arr.tobytes(), alignment, arr.dtype.itemsize, len(arr))
        if elem == "string":
            offs = [self.b.CreateString(s) for s in v]
        elif elem == "Buffer" and self.dialect.force_sgs_layout:
            # the vendor writes every buffer's data first (buffer 0 first), then the Buffer tables
            # in the order the tensors first name them (then any other, by index)
            field = next(f for f in self.dialect.tables["Buffer"] if f.name == "data")
            order = [i for i in dict.fromkeys(self.buffer_order) if 0 <= i < len(v)]
            order += [i for i in range(len(v)) if i not in set(order)]
            made = [{} for _ in v]
            for i in order:
                if v[i].get("data") is not None:
                    made[i] = {field.slot: self.vector("Buffer", field, v[i]["data"])}
            offs = [self.table(elem, item, m) for item, m in zip(v, made)]
        else:
            offs = [self.table(elem, item) for item in v]
        self.b.StartVector(4, len(offs), 4)
        for off in reversed(offs):
            self.b.PrependUOffsetTRelative(off)
        return self.b.EndVector()

    def byte_vector(self, data: bytes, alignment: int, elem_size: int = 1, count: int | None = None) -> int:
        count = len(data) if count is None else count
        self.b.StartVector(elem_size, count, alignment)
        self.b.head = self.b.head - len(data)
        self.b.Bytes[self.b.head:self.b.head + len(data)] = data
        return self.b.EndVector()


def encode(root_obj: dict[str, Any], file_identifier: bytes = b"TFL3", root: str = schema.ROOT_TABLE,
           size_hint: int = 0, dialect: str | None = None) -> bytes:
    """Encode a root table dict (as ``decode`` returns) into FlatBuffer bytes."""
    return encode_with_layout(root_obj, file_identifier, root, size_hint, dialect)[0]


def encode_with_layout(root_obj: dict[str, Any], file_identifier: bytes = b"TFL3", root: str = schema.ROOT_TABLE,
                       size_hint: int = 0, dialect: str | None = None) -> tuple[bytes, int | None]:
    """:func:`encode`, and where a vendor layout puts its vtable cluster (after every object: the file position
    of its first vtable, as ``_Reader.first_vtable`` finds it), None for other layouts."""
    w = _Writer(size_hint, file_identifier, dialect)
    off = w.table(root, root_obj)
    if w.dialect.force_sgs_layout:
        # the vendor aligns its objects to the end of the front region (where the vtables start),
        # not its header: the header is padded to 8 bytes at most, not to the 16 of a buffer's data
        w.b.minalign = min(w.b.minalign, 8)
    w.b.Finish(off, file_identifier=file_identifier)
    data = bytes(w.b.Output())
    cluster = getattr(w.b, "cluster", None)
    return data, (None if cluster is None else len(data) - len(cluster))
