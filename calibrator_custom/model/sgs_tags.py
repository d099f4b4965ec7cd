"""The vendor's per-tensor tag byte (Tensor.5 ``sgs_tag``): a function of where the file lays its tables.

``sgs_tag = (position of the tensor's QuantizationParameters table - start of the vtable cluster) mod 256``,
a tag of 0 written as an absent field. It holds on every tagged tensor of the 417 vendor files checked
(float, cmodel_float and fixed files; docs/model_format.md, "Writing without a template"). The vendor's
compiler recomputes the tags when it re-serializes a model and refuses a file whose size then differs
from its input's, so a re-encoded vendor model whose tables moved must carry its new tags:
:func:`encode_with_tags` re-encodes until the tags it writes are the ones the layout implies.
"""
from __future__ import annotations

import struct
from typing import Callable

from . import flatbuf, schema, sgs_dialect
from ..errors import ModelError

#: the Tensor field the tag is held in, and the field the vendor writes it before
TAG = "sgs_tag"
_TAG_BEFORE = "sgs_fixed_flag"
#: re-encodings tried before giving up (a tag's presence moves later tables; 2 rounds suffice in practice)
MAX_ROUNDS = 8


def vtable_cluster_start(data: bytes) -> int:
    """File position of a vendor file's vtable cluster (its first vtable: the objects end there)."""
    r = flatbuf._Reader(data, flatbuf.file_identifier_of(data), sgs_dialect.detect(data))
    r.table(r.uoffset(0, "root offset"), schema.ROOT_TABLE, schema.ROOT_TABLE, 0)
    return r.first_vtable


def quantization_positions(data: bytes) -> list[list[int | None]]:
    """Per subgraph, per tensor: the file position of the tensor's QuantizationParameters table."""
    def u32(p: int) -> int:
        return struct.unpack_from("<I", data, p)[0]

    def field(table: int, slot: int) -> int:
        vt = table - struct.unpack_from("<i", data, table)[0]
        if 4 + 2 * slot >= struct.unpack_from("<H", data, vt)[0]:
            return 0
        return struct.unpack_from("<H", data, vt + 4 + 2 * slot)[0]

    def tables(table: int, slot: int) -> list[int]:
        off = field(table, slot)
        if not off:
            return []
        vec = table + off + u32(table + off)
        return [vec + 4 + 4 * i + u32(vec + 4 + 4 * i) for i in range(u32(vec))]

    root = u32(0)
    out = []
    for sg in tables(root, 2):
        row = []
        for t in tables(sg, 0):
            off = field(t, 4)
            row.append(t + off + u32(t + off) if off else None)
        out.append(row)
    return out


def tags_of(data: bytes, cluster_start: int | None = None) -> list[list[int | None]]:
    """The tag each tensor of ``data`` must carry for its layout (None: the tensor has no quantization table);
    ``cluster_start``: the file's :func:`vtable_cluster_start` when the encoder knows it (found otherwise)."""
    start = vtable_cluster_start(data) if cluster_start is None else cluster_start
    return [[None if q is None else (q - start) % 256 for q in row] for row in quantization_positions(data)]


def _set_tag(tensor, tag: int) -> bool:
    """Give ``tensor`` the tag ``tag`` (0: absent); True when that changed it."""
    extra = tensor.extra
    layout = extra.get(sgs_dialect.LAYOUT)
    if tag == 0:
        new_layout = None if layout is None else tuple(f for f in layout if f != TAG)
        if TAG not in extra and new_layout == layout:
            return False
        tensor.extra = {k: v for k, v in extra.items() if k != TAG}  # absent, as the decoder gives it
        if layout is not None:
            tensor.extra[sgs_dialect.LAYOUT] = new_layout
        return True
    if extra.get(TAG) == tag and (layout is None or TAG in layout):
        return False
    tensor.extra = {**extra, TAG: tag}
    if layout is not None and TAG not in layout:
        fields = list(layout)
        fields.insert(fields.index(_TAG_BEFORE) if _TAG_BEFORE in fields else len(fields), TAG)
        tensor.extra[sgs_dialect.LAYOUT] = tuple(fields)
    return True


def encode_with_tags(model, encode: Callable[[object], tuple[bytes, int | None]]) -> bytes:
    """The bytes of ``encode(model)`` with every tensor's ``sgs_tag`` set to what the resulting layout implies.

    ``encode`` returns the bytes and the position of their vtable cluster (None: found by reading the
    bytes). ``model`` (a vendor :class:`~calibrator_custom.model.graph.Model`, changed in place: its tensors'
    tags) is encoded, the tags its layout implies are set, and it is encoded again until nothing changes."""
    for _ in range(MAX_ROUNDS):
        data, start = encode(model)
        changed = False
        for sg, tags in zip(model.subgraphs, tags_of(data, start)):
            for t, tag in zip(sg.tensors, tags):
                if tag is not None:
                    changed |= _set_tag(t, tag)
        if not changed:
            return data
    raise ModelError(f"the vendor tensor tags (Tensor.5) did not settle in {MAX_ROUNDS} re-encodings; "
                     "write the model as TFLite or report this model")
