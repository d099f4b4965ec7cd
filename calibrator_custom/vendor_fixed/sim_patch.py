"""Byte positions of the range-dependent fields of a vendor fixed.sim, for patching them in place.

The vendor's compiler re-serializes the model and refuses a file whose size differs from what its
own writer produces (``SGS_ExportSGSModel: Assertion 'u32PureModelSize == size'``), and its fixed
simulator needs the per-op IPU tiling fields of the options tables. A vendor fixed.sim of the same
float model is therefore written by replacing, in place and at the same size, only the fields that
depend on the ranges: the quantization vectors, the weight and bias buffers, the conv shifts in the
options and the input pixel transform. This module finds those fields (schema-less: TFLite slot
numbers with the vendor's extra slots, docs/model_format.md).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import ModelError


@dataclass(frozen=True)
class Vector:
    """A vector's element count and the position of its first element."""

    pos: int
    count: int


class SimLayout:
    """Positions in one vendor .sim file's bytes (read once, never modified here)."""

    def __init__(self, data: bytes):
        self.data = data
        try:
            root = self._u32(0)
            mf = self._fields(root)
            self.subgraph = self._tables(root + mf[2])[0]
            sf = self._fields(self.subgraph)
            self.tensors = self._tables(self.subgraph + sf[0])
            self.operators = self._tables(self.subgraph + sf[3])
            self.buffers = self._tables(root + mf[4])
            self._sg_fields = sf
        except (struct.error, IndexError) as e:
            raise ModelError(f"not a readable vendor .sim FlatBuffer ({e})") from None

    # -- flatbuffer primitives
    def _u32(self, p: int) -> int:
        return struct.unpack_from("<I", self.data, p)[0]

    def _fields(self, t: int) -> list[int]:
        v = t - struct.unpack_from("<i", self.data, t)[0]
        n = struct.unpack_from("<H", self.data, v)[0]
        return [struct.unpack_from("<H", self.data, v + 4 + 2 * i)[0] for i in range((n - 4) // 2)]

    def _ref(self, p: int) -> int:
        return p + self._u32(p)

    def _tables(self, p: int) -> list[int]:
        q = self._ref(p)
        return [self._ref(q + 4 + 4 * i) for i in range(self._u32(q))]

    def _vector(self, table: int, slot: int) -> Vector | None:
        f = self._fields(table)
        if slot >= len(f) or not f[slot]:
            return None
        q = self._ref(table + f[slot])
        return Vector(q + 4, self._u32(q))

    # -- what the writer patches
    def quant_vector(self, tensor: int, slot: int) -> Vector | None:
        """QuantizationParameters slot 0 min, 1 max, 2 scale, 3 zero_point, 4/5 the accumulator max/min."""
        t = self.tensors[tensor]
        f = self._fields(t)
        if len(f) <= 4 or not f[4]:
            return None
        return self._vector(self._ref(t + f[4]), slot)

    def buffer_data(self, buffer: int) -> Vector | None:
        return self._vector(self.buffers[buffer], 0)

    def option_scalar(self, op: int, slot: int) -> int | None:
        """Position of a 4-byte scalar of the op's builtin options table (None when absent: the default)."""
        o = self.operators[op]
        f = self._fields(o)
        if len(f) <= 4 or not f[4]:
            return None
        t = self._ref(o + f[4])
        tf = self._fields(t)
        return t + tf[slot] if slot < len(tf) and tf[slot] else None

    def table_scalar(self, table: int, slot: int) -> int | None:
        """Position of a 4-byte scalar field of a table (None when absent: the default)."""
        f = self._fields(table)
        return table + f[slot] if slot < len(f) and f[slot] else None

    def operator_tables(self, op: int, slot: int) -> list[int]:
        """The tables of an Operator's [table] slot (9: one per input, 10: one per output)."""
        f = self._fields(self.operators[op])
        return self._tables(self.operators[op] + f[slot]) if slot < len(f) and f[slot] else []

    def option_tables(self, op: int, slot: int) -> list[int]:
        """The tables of a [table] slot of the op's builtin options table."""
        o = self.operators[op]
        f = self._fields(o)
        if len(f) <= 4 or not f[4]:
            return []
        t = self._ref(o + f[4])
        tf = self._fields(t)
        return self._tables(t + tf[slot]) if slot < len(tf) and tf[slot] else []

    def input_transform(self, k: int) -> Vector | None:
        """SubGraph slot 10, entry k: the [int16] pixel transform (3x3 matrix then 3 offsets)."""
        sf = self._sg_fields
        if len(sf) <= 10 or not sf[10]:
            return None
        entries = self._tables(self.subgraph + sf[10])
        if k >= len(entries):
            return None
        return self._vector(entries[k], 0)
