"""The in-memory model: Model / Subgraph / Tensor / Operator, read from and written to .sim/.tflite.

``load_model(path)`` / ``Model.from_bytes`` decode a FlatBuffer (identifier ``TFL3`` or ``SIM2``),
check every index and buffer size, and parse operator options once into frozen dataclasses.
``Model.to_bytes()`` / ``save_model`` write it back (identifier ``TFL3`` by default) atomically.
Reading then writing is lossless for everything the schema holds.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelError
from ..fileio import atomic_write  # noqa: F401 - the package's one atomic writer, re-exported here
from . import flatbuf, options as opts, sgs_dialect, sgs_tags
from .sgs_weights import diagonal_block_bytes
from .validate import check_dataflow

#: TFLite TensorType name -> numpy dtype (types a numpy array can hold)
TENSOR_DTYPES: dict[str, np.dtype] = {
    "FLOAT32": np.dtype(np.float32), "FLOAT16": np.dtype(np.float16), "FLOAT64": np.dtype(np.float64),
    "INT8": np.dtype(np.int8), "UINT8": np.dtype(np.uint8), "INT16": np.dtype(np.int16),
    "UINT16": np.dtype(np.uint16), "INT32": np.dtype(np.int32), "UINT32": np.dtype(np.uint32),
    "INT64": np.dtype(np.int64), "UINT64": np.dtype(np.uint64), "BOOL": np.dtype(np.bool_),
    "COMPLEX64": np.dtype(np.complex64), "COMPLEX128": np.dtype(np.complex128),
}
DTYPE_NAMES: dict[np.dtype, str] = {v: k for k, v in TENSOR_DTYPES.items()}
#: Largest tensor a model may declare (2**31 elements), so a corrupt shape cannot exhaust memory.
MAX_TENSOR_ELEMENTS = 2**31


def _tup(v) -> tuple | None:
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        return tuple(v.tolist())
    return tuple(v)


def _freeze(v):
    """Decoded values -> hashable/comparable ones (arrays to tuples, lists to tuples)."""
    if isinstance(v, np.ndarray):
        return tuple(v.tolist())
    if isinstance(v, dict):
        return {k: _freeze(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    return v


def _thaw(v):
    """Inverse of ``_freeze`` for the encoder: tuples of dicts become lists."""
    if isinstance(v, dict):
        return {k: _thaw(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


@dataclass
class Quantization:
    """QuantizationParameters: real = scale * (q - zero_point), per tensor or along ``quantized_dimension``."""

    scale: tuple[float, ...] | None = None
    zero_point: tuple[int, ...] | None = None
    min: tuple[float, ...] | None = None
    max: tuple[float, ...] | None = None
    quantized_dimension: int = 0
    details: Any = None
    #: fields of other schema dialects (SigmaStar's vendor slots), by name
    extra: dict[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.scale or self.zero_point or self.min or self.max or self.details)


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str = "FLOAT32"
    buffer: int = 0
    quantization: Quantization | None = None
    is_variable: bool = False
    sparsity: Any = None
    shape_signature: tuple[int, ...] | None = None
    has_rank: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def np_dtype(self) -> np.dtype:
        try:
            return TENSOR_DTYPES[self.dtype]
        except KeyError:
            raise ModelError(f"tensor {self.name!r} has type {self.dtype}, which numpy cannot hold") from None


@dataclass
class OperatorCode:
    builtin_code: str
    custom_code: str | None = None
    version: int = 1
    deprecated_builtin_code: int = 0

    @property
    def name(self) -> str:
        """The op's registry name: the builtin name, or the custom code for CUSTOM ops."""
        return self.custom_code if self.builtin_code == "CUSTOM" else self.builtin_code


@dataclass
class Operator:
    opcode_index: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Any = None
    custom_options: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Subgraph:
    tensors: list[Tensor]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: list[Operator]
    name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def tensor_index(self, name: str) -> int:
        """Index of the tensor called ``name`` (ModelError listing close names if absent)."""
        for i, t in enumerate(self.tensors):
            if t.name == name:
                return i
        raise ModelError(f"no tensor named {name!r} in subgraph {self.name or 0}")

    def topological_order(self) -> list[int]:
        """Operator indices so every op runs after the producers of its inputs; ModelError on a cycle."""
        producer: dict[int, int] = {}
        for i, op in enumerate(self.operators):
            for t in op.outputs:
                if t in producer:
                    raise ModelError(f"tensor {self.tensors[t].name!r} is written by op #{producer[t]} and "
                                     f"op #{i}")
                producer[t] = i
        deps = [{producer[t] for t in op.inputs if t >= 0 and t in producer} for op in self.operators]
        if all(d < i for i, d in enumerate(deps) for d in deps[i]):
            return list(range(len(self.operators)))  # already in order (the usual case)
        users: list[list[int]] = [[] for _ in self.operators]
        pending = [len(d) for d in deps]
        for i, d in enumerate(deps):
            for j in d:
                users[j].append(i)
        ready = [i for i, n in enumerate(pending) if n == 0]
        order = []
        while ready:
            i = min(ready)
            ready.remove(i)
            order.append(i)
            for u in users[i]:
                pending[u] -= 1
                if pending[u] == 0:
                    ready.append(u)
        if len(order) != len(self.operators):
            stuck = sorted(set(range(len(self.operators))) - set(order))
            raise ModelError(f"the graph has a cycle through ops {stuck[:10]}")
        return order


@dataclass
class Buffer:
    data: bytes = b""
    offset: int = 0
    size: int = 0
    #: the file holds an empty data vector (not an absent one): the vendor's tools tell them apart
    empty_vector: bool = False


@dataclass
class Model:
    subgraphs: list[Subgraph]
    buffers: list[Buffer]
    operator_codes: list[OperatorCode]
    version: int = 3
    description: str | None = None
    metadata: list[tuple[str, int]] = field(default_factory=list)
    metadata_buffer: tuple[int, ...] | None = None
    signature_defs: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    file_identifier: bytes = b"TFL3"
    #: ``"tflite"`` or a SigmaStar dialect (``"sgs_float"``, ``"sgs_cmodel_float"``, ``"sgs_fixed"``)
    dialect: str = sgs_dialect.TFLITE
    #: the bytes a vendor model was read from: written back unchanged while the model is unmodified
    source: bytes | None = field(default=None, compare=False, repr=False)

    # ------------------------------------------------------------------ convenience
    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    def op_name(self, op: Operator) -> str:
        return self.operator_codes[op.opcode_index].name

    def tensor_data(self, tensor: Tensor) -> np.ndarray | None:
        """The constant value of ``tensor`` (read-only, shaped), or None when it has no data."""
        if tensor.buffer <= 0 or tensor.buffer >= len(self.buffers):
            return None
        raw = self.buffers[tensor.buffer].data
        dtype = tensor.np_dtype
        if not raw:
            # TFLite points activations at empty buffers too; only a zero-element tensor is an empty constant
            if 0 in tensor.shape:
                return np.zeros(tensor.shape, dtype)
            return None
        if tensor.sparsity is not None:
            return np.frombuffer(raw, dtype=dtype)  # compressed values; DENSIFY expands them
        count = int(np.prod(tensor.shape, dtype=np.int64))
        if self.is_vendor and len(raw) < count * dtype.itemsize:
            compact = self._diagonal_block_bytes(tensor)
            if compact is not None and len(raw) >= compact:
                # a depthwise conv the vendor runs as a CONV_2D: only its diagonal 16-channel blocks are stored
                return np.frombuffer(raw[:compact], dtype=dtype)
        if self.is_vendor and len(raw) > count * dtype.itemsize:
            raw = raw[:count * dtype.itemsize]  # the vendor's fixed.sim pads buffers (to 32 bytes and more)
        if len(raw) != count * dtype.itemsize:
            raise ModelError(f"tensor {tensor.name!r} of shape {list(tensor.shape)} and type {tensor.dtype} "
                             f"needs {count * dtype.itemsize} bytes but buffer {tensor.buffer} holds {len(raw)}")
        return np.frombuffer(raw, dtype=dtype).reshape(tensor.shape)

    def set_constant(self, index: int, value: np.ndarray, subgraph: int = 0) -> None:
        """Make tensor ``index`` hold ``value`` (shape taken from it): its buffer is rewritten where no other
        tensor reads it, else the tensor points at a new buffer and the others keep the old one. (The vendor's
        compiler crashes on a file holding a buffer no tensor points at.)"""
        sg = self.subgraphs[subgraph]
        t = sg.tensors[index]
        data = np.ascontiguousarray(value).tobytes()
        shared = t.buffer <= 0 or any(b == t.buffer for _, b in self.metadata) or \
            any(u.buffer == t.buffer for g in self.subgraphs for u in g.tensors if u is not t)
        if shared:
            self.buffers.append(Buffer(data))
            buffer = len(self.buffers) - 1
        else:
            self.buffers[t.buffer] = Buffer(data)
            buffer = t.buffer
        sg.tensors[index] = dataclasses.replace(t, shape=tuple(int(d) for d in np.shape(value)), buffer=buffer)

    def _diagonal_block_bytes(self, tensor: Tensor) -> int | None:
        """The byte size of ``tensor``'s diagonal-block buffer when it is the int8 or INT16 weight of a
        vendor CONV_2D marked ``sgs_depthwise_mode == 2`` (a depthwise conv run as a conv), else None.

        Such a buffer holds, per 16-channel group g, only the [o][i] block of input block g (the
        others are zero), padded to 32 bytes per (kh, kw) block (``sgs_weights``)."""
        if tensor.np_dtype not in (np.int8, np.int16) or len(tensor.shape) != 4:
            return None
        o, kh, kw, i = (int(d) for d in tensor.shape)
        if o != i:
            return None
        for sg in self.subgraphs:
            for op in sg.operators:
                if (self.operator_codes[op.opcode_index].name == "CONV_2D" and len(op.inputs) > 1
                        and 0 <= op.inputs[1] < len(sg.tensors) and sg.tensors[op.inputs[1]] is tensor
                        and getattr(op.options, "sgs_depthwise_mode", None) == 2):
                    return diagonal_block_bytes(o, kh, kw, tensor.np_dtype)
        return None

    # ------------------------------------------------------------------ decoding
    @classmethod
    def from_bytes(cls, data: bytes) -> "Model":
        if len(data) >= 8 and flatbuf.file_identifier_of(data) in flatbuf.schema.FILE_IDENTIFIERS:
            dialect = sgs_dialect.detect(data)
        else:
            dialect = sgs_dialect.TFLITE  # decode() names the problem
        root, ident = flatbuf.decode(data, dialect=dialect)
        model = cls._from_dict(root, ident, dialect)
        model.validate()
        if dialect in sgs_dialect.VENDOR_DIALECTS:
            model.source = bytes(data)
        return model

    @property
    def is_vendor(self) -> bool:
        """Whether the model is in one of SigmaStar's own dialects (read from a vendor file)."""
        return self.dialect in sgs_dialect.VENDOR_DIALECTS

    @classmethod
    def _from_dict(cls, root: dict[str, Any], ident: bytes, dialect: str = sgs_dialect.TFLITE) -> "Model":
        tables = flatbuf._dialect(dialect).tables
        codes = []
        for c in root["operator_codes"] or []:
            builtin = c.get("builtin_code", "ADD")  # the vendor's 1.x schema has only the int8 code
            dep = c["deprecated_builtin_code"]
            # TFLite rule: the real code is the larger of the two fields (old files set only the int8 one).
            dep_name = _BUILTIN_NAMES.get(dep)
            if dep_name is None:
                raise ModelError(f"corrupt model: deprecated_builtin_code {dep} is not an operator")
            code = builtin if _BUILTIN_IDS[builtin] >= dep else dep_name
            codes.append(OperatorCode(code, c["custom_code"], c["version"], dep))
        buffers = [Buffer(b["data"] or b"", b["offset"], b["size"],
                          empty_vector=b["data"] is not None and not len(b["data"]))
                   for b in root["buffers"] or []]
        subgraphs = [_subgraph_from_dict(sg, tables) for sg in root["subgraphs"] or []]
        known = {"operator_codes", "buffers", "subgraphs", "version", "description", "metadata",
                 "metadata_buffer", "signature_defs"}
        return cls(
            subgraphs=subgraphs, buffers=buffers, operator_codes=codes, version=root["version"],
            description=root["description"],
            metadata=[(m["name"], m["buffer"]) for m in root.get("metadata") or []],
            metadata_buffer=_tup(root["metadata_buffer"]), signature_defs=_freeze(root.get("signature_defs")),
            extra=_extras(root, known, "Model", tables), file_identifier=ident, dialect=dialect,
        )

    def validate(self) -> None:
        """Check every index and buffer size; ModelError naming the first problem found."""
        if not self.subgraphs:
            raise ModelError("the model has no subgraph")
        nb = len(self.buffers)
        for name, b in self.metadata:
            if not 0 <= b < nb:
                raise ModelError(f"metadata {name!r} names buffer {b}, but the model has {nb} buffers")
        for s, sg in enumerate(self.subgraphs):
            nt = len(sg.tensors)
            for t in sg.tensors:
                if not 0 <= t.buffer < nb:
                    raise ModelError(f"tensor {t.name!r} names buffer {t.buffer}, but the model has {nb} buffers")
                if any(d < 0 for d in t.shape) and t.shape_signature is None:
                    raise ModelError(f"tensor {t.name!r} has a negative dimension in shape {list(t.shape)}")
                count = int(np.prod([max(d, 1) for d in t.shape], dtype=np.float64))
                if count > MAX_TENSOR_ELEMENTS or len(t.shape) > 8:
                    raise ModelError(f"tensor {t.name!r} has shape {list(t.shape)}: more than "
                                     f"{MAX_TENSOR_ELEMENTS} elements or 8 dimensions")
                if t.dtype in TENSOR_DTYPES:
                    self.tensor_data(t)  # checks the buffer size
            for kind, idx in (("input", sg.inputs), ("output", sg.outputs)):
                for i in idx:
                    if not 0 <= i < nt:
                        raise ModelError(f"subgraph {s} {kind} index {i} is out of range (it has {nt} tensors)")
            for k, op in enumerate(sg.operators):
                if not 0 <= op.opcode_index < len(self.operator_codes):
                    raise ModelError(f"op #{k} uses opcode index {op.opcode_index}, but the model has "
                                     f"{len(self.operator_codes)} operator codes")
                for kind, idx in (("input", op.inputs), ("output", op.outputs)):
                    for i in idx:
                        if not -1 <= i < nt or (kind == "output" and i < 0):
                            raise ModelError(f"op #{k} {self.op_name(op)}: {kind} tensor index {i} is out of "
                                             f"range (subgraph {s} has {nt} tensors)")
            check_dataflow(self, s)
            sg.topological_order()

    # ------------------------------------------------------------------ encoding
    def to_dict(self) -> dict[str, Any]:
        root = {
            "version": self.version,
            "operator_codes": [
                {"deprecated_builtin_code": c.deprecated_builtin_code if c.deprecated_builtin_code else
                 min(_BUILTIN_IDS[c.builtin_code], 127), "custom_code": c.custom_code,
                 "version": c.version, "builtin_code": c.builtin_code}
                for c in self.operator_codes
            ],
            "subgraphs": [_subgraph_to_dict(sg) for sg in self.subgraphs],
            "description": self.description,
            "buffers": [{"data": b.data or (b"" if b.empty_vector else None), "offset": b.offset, "size": b.size}
                        for b in self.buffers],
            "metadata_buffer": list(self.metadata_buffer) if self.metadata_buffer is not None else None,
        }
        if not self.is_vendor:
            root["metadata"] = [{"name": n, "buffer": b} for n, b in self.metadata]
            root["signature_defs"] = _thaw(self.signature_defs)
        root.update({k: _thaw(v) for k, v in self.extra.items()})
        return root

    def to_bytes(self, file_identifier: bytes | None = None, *, reencode: bool = False) -> bytes:
        """The FlatBuffer bytes.

        A vendor model read from a file and not modified gives back those bytes; a modified one (or
        any with ``reencode=True``) is encoded in its own dialect with every vendor slot
        (``sgs_dialect.TABLES``), so ``Model.from_bytes(m.to_bytes()) == m``. A vendor model's tensor tags
        (``sgs_tags``) are recomputed for the new layout, as the vendor's compiler does, and set on it.
        """
        ident = file_identifier or (self.file_identifier if self.is_vendor else b"TFL3")
        if not reencode and self.source is not None and ident == self.file_identifier and \
                Model.from_bytes(self.source) == self:
            return self.source
        untyped = self.extra.get(sgs_dialect.UNTYPED) if self.is_vendor else None
        if untyped:
            raise ModelError(
                f"cannot re-encode this modified vendor model without losing data: its file holds vendor "
                f"slots calibrator_custom has not typed ({', '.join(untyped[:5])}"
                f"{' ...' if len(untyped) > 5 else ''}); the unmodified model is written back as read. To "
                f"type them, run python tools/sgs_slot_survey.py --write on vendor files holding them")
        size = sum(len(b.data) for b in self.buffers) + 4096

        def encode(m: "Model") -> tuple[bytes, int | None]:
            return flatbuf.encode_with_layout(m.to_dict(), ident, size_hint=size,
                                              dialect=m.dialect if m.is_vendor else None)
        if self.is_vendor:  # the tensors' tag bytes follow the layout (set on this model too)
            return sgs_tags.encode_with_tags(self, encode)
        return encode(self)[0]

    def save(self, path: str | os.PathLike, file_identifier: bytes | None = None) -> None:
        """Write the model atomically (temporary file in the same folder, then rename)."""
        atomic_write(path, self.to_bytes(file_identifier))

    def copy(self) -> "Model":
        return dataclasses.replace(
            self, subgraphs=[_copy_subgraph(sg) for sg in self.subgraphs],
            buffers=[dataclasses.replace(b) for b in self.buffers],
            operator_codes=[dataclasses.replace(c) for c in self.operator_codes],
            metadata=list(self.metadata), extra=dict(self.extra))


def _copy_subgraph(sg: Subgraph) -> Subgraph:
    return dataclasses.replace(
        sg, tensors=[dataclasses.replace(t, extra=dict(t.extra)) for t in sg.tensors],
        operators=[dataclasses.replace(o, extra=dict(o.extra)) for o in sg.operators], extra=dict(sg.extra))


_BUILTIN_IDS = flatbuf.schema.ENUMS["BuiltinOperator"]
_BUILTIN_NAMES = {v: k for k, v in _BUILTIN_IDS.items()}


_QUANT_KNOWN = {"scale", "zero_point", "min", "max", "quantized_dimension", "details", "details_type"}


def _quant_from_dict(q: dict[str, Any] | None, tables=None) -> Quantization | None:
    if q is None:
        return None
    return Quantization(scale=_tup(q["scale"]), zero_point=_tup(q["zero_point"]), min=_tup(q["min"]),
                        max=_tup(q["max"]), quantized_dimension=q.get("quantized_dimension", 0),
                        details=_freeze(q.get("details")),
                        extra=_extras(q, _QUANT_KNOWN, "QuantizationParameters", tables))


def _quant_to_dict(q: Quantization | None) -> dict[str, Any] | None:
    if q is None:
        return None
    d = {"scale": q.scale, "zero_point": q.zero_point, "min": q.min, "max": q.max,
         "quantized_dimension": q.quantized_dimension, "details": _thaw(q.details)}
    d.update({k: _thaw(v) for k, v in q.extra.items()})
    return d


_TENSOR_KNOWN = {"name", "shape", "type", "buffer", "quantization", "is_variable", "sparsity",
                 "shape_signature", "has_rank"}
_OP_KNOWN = {"opcode_index", "inputs", "outputs", "builtin_options", "custom_options"}
_SG_KNOWN = {"tensors", "inputs", "outputs", "operators", "name"}


def _extras(d: dict[str, Any], known: set[str], table: str, tables=None) -> dict[str, Any]:
    """Fields of ``d`` outside ``known`` that differ from their schema default (kept for round trips)."""
    defaults = {f.name: flatbuf.field_default(f) for f in (tables or flatbuf.schema.TABLES)[table]}
    return {k: _freeze(v) for k, v in d.items()
            if k not in known and v is not None and not (k in defaults and _same(v, defaults[k]))}


def _same(a, b) -> bool:
    return not isinstance(a, (np.ndarray, list, tuple, dict, bytes)) and a == b


def _subgraph_from_dict(sg: dict[str, Any], tables=None) -> Subgraph:
    tensors = [
        Tensor(name=t["name"] or "", shape=_tup(t["shape"]) or (), dtype=t["type"], buffer=t["buffer"],
               quantization=_quant_from_dict(t["quantization"], tables), is_variable=t.get("is_variable", False),
               sparsity=_freeze(t.get("sparsity")), shape_signature=_tup(t.get("shape_signature")),
               has_rank=t.get("has_rank", False), extra=_extras(t, _TENSOR_KNOWN, "Tensor", tables))
        for t in sg["tensors"] or []
    ]
    operators = []
    for o in sg["operators"] or []:
        options = None
        if o["builtin_options"] is not None:
            table, values = o["builtin_options"]
            options = opts.from_table(table, values)
        operators.append(Operator(
            opcode_index=o["opcode_index"], inputs=_tup(o["inputs"]) or (), outputs=_tup(o["outputs"]) or (),
            options=options, custom_options=o["custom_options"],
            extra=_extras(o, _OP_KNOWN, "Operator", tables)))
    return Subgraph(tensors=tensors, inputs=_tup(sg["inputs"]) or (), outputs=_tup(sg["outputs"]) or (),
                    operators=operators, name=sg["name"],
                    extra=_extras(sg, _SG_KNOWN, "SubGraph", tables))


def _subgraph_to_dict(sg: Subgraph) -> dict[str, Any]:
    tensors = []
    for t in sg.tensors:
        d = {"name": t.name, "shape": list(t.shape), "type": t.dtype, "buffer": t.buffer,
             "quantization": _quant_to_dict(t.quantization), "is_variable": t.is_variable,
             "sparsity": _thaw(t.sparsity), "has_rank": t.has_rank,
             "shape_signature": list(t.shape_signature) if t.shape_signature is not None else None}
        d.update({k: _thaw(v) for k, v in t.extra.items()})
        tensors.append(d)
    operators = []
    for o in sg.operators:
        d = {"opcode_index": o.opcode_index, "inputs": list(o.inputs), "outputs": list(o.outputs),
             "builtin_options": opts.to_table(o.options) if o.options is not None else None,
             "custom_options": o.custom_options}
        d.update({k: _thaw(v) for k, v in o.extra.items()})
        if d.get("builtin_options_2") is not None:
            d["builtin_options_2"] = tuple(d["builtin_options_2"])
        operators.append(d)
    out = {"tensors": tensors, "inputs": list(sg.inputs), "outputs": list(sg.outputs),
           "operators": operators, "name": sg.name}
    out.update({k: _thaw(v) for k, v in sg.extra.items()})
    return out


def load_model(path: str | os.PathLike) -> Model:
    """Read a .sim or .tflite model; ModelError (a ValueError) for a missing, unreadable or corrupt file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError(f"model file {path!r} does not exist or is not a file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ModelError(f"cannot read model file {path!r}: {e.strerror}") from None
    try:
        return Model.from_bytes(data)
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None
