"""Operator options as frozen dataclasses, made once from the schema tables.

``options_class("Conv2DOptions")`` is a frozen dataclass whose fields are the schema fields (plus
SigmaStar's explicit pads for the four tables it extends). Enum fields hold the member name as a
``str`` (``"SAME"``, ``"RELU6"``), vectors hold tuples, absent vectors and strings hold ``None``.
``OP_OPTIONS`` maps a builtin operator name to the options table TFLite uses for it.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..errors import ModelError
from . import schema, sgs_dialect
from .flatbuf import field_default

OPTION_UNIONS = ("BuiltinOptions", "BuiltinOptions2")

_EXCEPTIONS = {
    "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions", "L2_POOL_2D": "Pool2DOptions",
    "MEAN": "ReducerOptions", "SUM": "ReducerOptions", "REDUCE_MAX": "ReducerOptions",
    "REDUCE_MIN": "ReducerOptions", "REDUCE_PROD": "ReducerOptions", "REDUCE_ANY": "ReducerOptions",
    "REDUCE_ALL": "ReducerOptions", "MAXIMUM": "MaximumMinimumOptions", "MINIMUM": "MaximumMinimumOptions",
    "L2_NORMALIZATION": "L2NormOptions", "CONCAT_EMBEDDINGS": "ConcatEmbeddingsOptions",
    "LSTM": "LSTMOptions", "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions",
    "BIDIRECTIONAL_SEQUENCE_LSTM": "BidirectionalSequenceLSTMOptions",
    "UNIDIRECTIONAL_SEQUENCE_RNN": "SequenceRNNOptions", "RNN": "RNNOptions",
    "LOCAL_RESPONSE_NORMALIZATION": "LocalResponseNormalizationOptions",
    "EMBEDDING_LOOKUP_SPARSE": "EmbeddingLookupSparseOptions",
}


def _norm(name: str) -> str:
    return name.replace("_", "").lower()


def _option_tables() -> list[str]:
    out = []
    for union in OPTION_UNIONS:
        out.extend(m for m in schema.ENUMS[union] if m != "NONE")
    return out


def _build_op_options() -> dict[str, str]:
    by_norm = {_norm(t): t for t in _option_tables()}
    mapping = {}
    for op in schema.ENUMS["BuiltinOperator"]:
        if op in _EXCEPTIONS:
            mapping[op] = _EXCEPTIONS[op]
        elif _norm(op) + "options" in by_norm:
            mapping[op] = by_norm[_norm(op) + "options"]
    return mapping


#: builtin operator name -> options table name (only ops that have an options table)
OP_OPTIONS: dict[str, str] = _build_op_options()
#: options table name -> the union that holds it
TABLE_UNION: dict[str, str] = {t: u for u in OPTION_UNIONS for t in schema.ENUMS[u] if t != "NONE"}


def _table(table: str) -> tuple[schema.Field, ...]:
    """A table of TFLite's schema or of the SigmaStar dialect (its own options tables)."""
    return schema.TABLES[table] if table in schema.TABLES else sgs_dialect.TABLES[table]


def _all_fields(table: str) -> list[schema.Field]:
    """Standard fields, then SigmaStar-only fields (by name) for the tables it extends."""
    fields = [f for f in _table(table) if not f.name.endswith("_type") or
              not any(g.slot == f.slot + 1 and g.type.startswith("union:") for g in _table(table))]
    names = {f.name for f in fields}
    fields += [f for f in schema.SGS_TABLES.get(table, ()) if f.name not in names]
    names = {f.name for f in fields}
    fields += [f for f in sgs_dialect.VENDOR_FIELDS.get(table, ()) if f.name not in names]
    return fields


_CLASSES: dict[str, type] = {}


def options_class(table: str) -> type:
    """The frozen dataclass for options table ``table``."""
    cls = _CLASSES.get(table)
    if cls is None:
        if table not in schema.TABLES and table not in sgs_dialect.TABLES:
            raise ModelError(f"unknown options table {table!r}")
        fields = [(f.name, Any, dataclasses.field(default=field_default(f))) for f in _all_fields(table)]
        # the fields a vendor file holds, in their order (sgs_dialect.LAYOUT); None for every other model
        fields.append((sgs_dialect.LAYOUT, Any, dataclasses.field(default=None)))
        cls = dataclasses.make_dataclass(table, fields, frozen=True)
        cls.__module__ = __name__
        cls.table_name = table
        _CLASSES[table] = cls
    return cls


def _freeze(v):
    if isinstance(v, np.ndarray):
        return tuple(v.tolist())
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


def from_table(table: str, values: dict[str, Any]):
    """Options dataclass from a decoded table dict."""
    cls = options_class(table)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: _freeze(v) for k, v in values.items() if k in names})


def _thaw(type_name: str, v):
    """A frozen field value back to what the encoder takes, guided by the field's schema type."""
    if v is None:
        return None
    if type_name.startswith("["):
        elem = type_name[1:-1]
        if elem in sgs_dialect.TABLES and elem not in schema.ENUMS:
            return [_thaw(elem, x) for x in v]
        return list(v)
    if type_name in sgs_dialect.TABLES and type_name not in schema.ENUMS:
        fields = {f.name: f.type for f in sgs_dialect.TABLES[type_name]}
        return {k: _thaw(fields.get(k, ""), x) for k, x in dict(v).items()}
    return list(v) if isinstance(v, tuple) else v


def to_table(opt) -> tuple[str, dict[str, Any]]:
    """(table name, dict) for encoding an options dataclass."""
    types = {f.name: f.type for f in _all_fields(opt.table_name)}
    values = {}
    for f in dataclasses.fields(opt):
        values[f.name] = _thaw(types.get(f.name, ""), getattr(opt, f.name))
    return opt.table_name, values


def default_options(op_name: str):
    """An options instance with schema defaults for ``op_name``, or None if it has no options table."""
    table = OP_OPTIONS.get(op_name)
    return options_class(table)() if table else None


def make_options(op_name: str, values: dict[str, Any] | None):
    """Options for ``op_name`` from user values; unknown field names raise ModelError."""
    table = OP_OPTIONS.get(op_name)
    if table is None:
        if values:
            raise ModelError(f"op {op_name} takes no options, got {sorted(values)}")
        return None
    cls = options_class(table)
    names = [f.name for f in dataclasses.fields(cls)]
    bad = sorted(set(values or {}) - set(names))
    if bad:
        raise ModelError(f"{table} (op {op_name}) has no field(s) {bad}; fields: {names}")
    return cls(**{k: _freeze(v) for k, v in (values or {}).items()})
