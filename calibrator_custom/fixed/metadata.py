"""The ``calibrator_custom_fixed`` metadata of a fixed model: what it holds, and its strict reader.

The converter writes one metadata entry named ``calibrator_custom_fixed`` whose buffer is a UTF-8
JSON object:

* ``format``: ``"calibrator_custom fixed model"``; ``version``: integer, :data:`FORMAT_VERSION`;
* ``inputs``: one object per graph input, in the graph's order: ``name`` (the input tensor's
  name), ``input_formats`` and ``training_input_formats`` (input_config.ini names); for an input
  configured in [INPUT_CONFIG] also ``quantizations`` (bool), ``mean`` and ``std`` (lists of
  finite numbers, std > 0), ``layouts`` (NHWC / NCHW), ``input_width_alignment`` and
  ``input_height_alignment`` (integers >= 1);
* ``outputs``: one object per graph output, in order: ``name`` and ``dequantizations`` (bool).

:func:`read_fixed_metadata` returns None for a model without that entry (a float model) and
otherwise the checked object, or raises :class:`ModelError` naming the key, the tensor and what
is expected: metadata that is not JSON, not an object (``[]``), lacks a key (``{}``), has a value
of the wrong type, or does not fit the graph (another input name, an image format on a tensor
that is not UINT8, an image input not read by an ``InputNormalize`` op with the same formats).
"""
from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from ..config import ALLOWED_INPUT_FORMATS, IMAGE_FORMATS, INPUT_FORMATS, LAYOUTS, TRAINING_FORMATS
from ..errors import ModelError

if TYPE_CHECKING:
    from ..model.graph import Model

METADATA_NAME = "calibrator_custom_fixed"
FORMAT_NAME = "calibrator_custom fixed model"
FORMAT_VERSION = 1
#: the tensor type each raw input format needs (RAWDATA_F32: FLOAT32, or an unquantized non-float input)
_FORMAT_DTYPES = {**{f: "UINT8" for f in IMAGE_FORMATS}, "RAWDATA_S16_NHWC": "INT16"}


class _Checker:
    def __init__(self, model: "Model", source: str | None):
        self.model = model
        self.graph = model.main
        self.prefix = f"{source}: " if source else ""

    def error(self, where: str, msg: str) -> ModelError:
        return ModelError(f"{self.prefix}fixed-model metadata {METADATA_NAME!r}: {where}{msg}; the file is "
                          "damaged or was not written by calibrator_custom: convert the float model again")

    def field(self, obj: dict, key: str, kinds: tuple[type, ...], what: str, where: str) -> Any:
        if key not in obj:
            raise self.error(where, f"the key {key!r} is missing (expected {what})")
        v = obj[key]
        if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
            raise self.error(where, f"{key!r} must be {what}, got {json.dumps(v)[:60]}")
        return v

    def choice(self, obj: dict, key: str, allowed, where: str) -> str:
        v = self.field(obj, key, (str,), f"one of {', '.join(allowed)}", where)
        if v not in allowed:
            raise self.error(where, f"{key!r} is {v!r}; allowed: {', '.join(allowed)}")
        return v

    def numbers(self, obj: dict, key: str, where: str, positive: bool) -> None:
        v = self.field(obj, key, (list,), "a list of numbers", where)
        for x in v:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not _finite(x) or (positive and x <= 0):
                raise self.error(where, f"{key!r} holds {json.dumps(x)}; expected finite numbers"
                                        f"{' > 0' if positive else ''}")

    def alignment(self, obj: dict, key: str, where: str) -> None:
        v = self.field(obj, key, (int,), "an integer >= 1", where)
        if v < 1:
            raise self.error(where, f"{key!r} is {v}; expected an integer >= 1")

    # ------------------------------------------------------------------ the object
    def check(self, meta: Any) -> dict:
        if not isinstance(meta, dict):
            raise self.error("", f"must be a JSON object, got a JSON {_json_kind(meta)}")
        fmt = self.field(meta, "format", (str,), f"{FORMAT_NAME!r}", "")
        if fmt != FORMAT_NAME:
            raise self.error("", f"'format' is {fmt!r}, expected {FORMAT_NAME!r}")
        version = self.field(meta, "version", (int,), f"the integer {FORMAT_VERSION}", "")
        if version != FORMAT_VERSION:
            newer = " (written by a newer calibrator_custom: upgrade it)" if version > FORMAT_VERSION else ""
            raise self.error("", f"format version {version} is not {FORMAT_VERSION}{newer}")
        inputs = self.field(meta, "inputs", (list,), "a list with one object per graph input", "")
        outputs = self.field(meta, "outputs", (list,), "a list with one object per graph output", "")
        g = self.graph
        for key, entries, idx in (("inputs", inputs, g.inputs), ("outputs", outputs, g.outputs)):
            names = [g.tensors[i].name for i in idx]
            if len(entries) != len(idx):
                raise self.error("", f"{key!r} has {len(entries)} entries but the graph has {len(idx)} {key} "
                                     f"({', '.join(map(repr, names))})")
            for k, (entry, i) in enumerate(zip(entries, idx)):
                where = f"{key}[{k}]: "
                if not isinstance(entry, dict):
                    raise self.error(where, f"must be a JSON object, got a JSON {_json_kind(entry)}")
                name = self.field(entry, "name", (str,), "the tensor name", where)
                if name != g.tensors[i].name:
                    raise self.error(where, f"names tensor {name!r}, but graph {key[:-1]} {k} is tensor #{i} "
                                            f"{g.tensors[i].name!r}")
                where = f"{key}[{k}] ({name!r}): "
                if key == "inputs":
                    self.check_input(entry, i, where)
                else:
                    deq = self.field(entry, "dequantizations", (bool,), "true or false", where)
                    if deq and g.tensors[i].dtype != "FLOAT32":
                        raise self.error(where, f"says dequantizations=true, but output tensor #{i} is "
                                                f"{g.tensors[i].dtype}, not FLOAT32")
        return meta

    def check_input(self, entry: dict, i: int, where: str) -> None:
        t = self.graph.tensors[i]
        fmt = self.choice(entry, "input_formats", INPUT_FORMATS, where)
        training = self.choice(entry, "training_input_formats", TRAINING_FORMATS, where)
        if fmt not in ALLOWED_INPUT_FORMATS[training]:
            raise self.error(where, f"input_formats {fmt!r} cannot feed a model trained on {training}; allowed: "
                                    f"{', '.join(ALLOWED_INPUT_FORMATS[training])}")
        if "quantizations" in entry:  # the input was configured in [INPUT_CONFIG]
            self.field(entry, "quantizations", (bool,), "true or false", where)
            self.numbers(entry, "mean", where, positive=False)
            self.numbers(entry, "std", where, positive=True)
            self.choice(entry, "layouts", LAYOUTS, where)
            self.alignment(entry, "input_width_alignment", where)
            self.alignment(entry, "input_height_alignment", where)
        need = _FORMAT_DTYPES.get(fmt)
        quantized = t.quantization is not None and bool(t.quantization.scale)
        if need is not None and t.dtype != need:
            raise self.error(where, f"input_formats {fmt} needs a {need} input tensor, but tensor #{i} is {t.dtype}")
        if need is None and t.dtype != "FLOAT32" and quantized:
            raise self.error(where, f"input_formats {fmt} needs a FLOAT32 input tensor, but tensor #{i} is a "
                                    f"quantized {t.dtype}")
        if fmt in IMAGE_FORMATS:
            self.check_normalize(entry, i, fmt, training, where)

    def check_normalize(self, entry: dict, i: int, fmt: str, training: str, where: str) -> None:
        """An image input is read by exactly one op, an InputNormalize with the same formats."""
        from ..interpreter import decode_custom_options

        g, model = self.graph, self.model
        readers = [k for k, op in enumerate(g.operators) if i in op.inputs]
        names = [model.op_name(g.operators[k]) for k in readers]
        if names != ["InputNormalize"]:
            raise self.error(where, f"image input tensor #{i} must be read by one InputNormalize op, but it is read "
                                    f"by {', '.join(f'op #{k} {n}' for k, n in zip(readers, names)) or 'no op'}")
        k = readers[0]
        op = g.operators[k]
        opts = decode_custom_options(k, "InputNormalize", op.custom_options,
                                     op.extra.get("custom_options_format", "FLEXBUFFERS"))
        if not isinstance(opts, dict):
            raise self.error(where, f"op #{k} InputNormalize has no options map")
        for key, want in (("input_formats", fmt), ("training_input_formats", training)):
            if opts.get(key) != want:
                raise self.error(where, f"says {key} {want!r}, but op #{k} InputNormalize reading tensor #{i} "
                                        f"takes {opts.get(key)!r}")


def _finite(x: int | float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an integer beyond float range
        return False


def _json_kind(v: Any) -> str:
    return {list: "array", dict: "object", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number")


def read_fixed_metadata(model: "Model", source: str | None = None) -> dict | None:
    """The checked ``calibrator_custom_fixed`` metadata of ``model``, or None when it has none (a float
    model); ModelError (prefixed with ``source``, e.g. the file name) when it is malformed."""
    entries = [buf for name, buf in model.metadata if name == METADATA_NAME]
    if not entries:
        return None
    checker = _Checker(model, source)
    if len(entries) > 1:
        raise checker.error("", f"appears {len(entries)} times")
    buf = entries[0]
    if not 0 <= buf < len(model.buffers):
        raise checker.error("", f"names buffer {buf}, but the model has {len(model.buffers)} buffers")
    raw = bytes(model.buffers[buf].data)
    try:
        meta = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise checker.error("", f"buffer {buf} is not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise checker.error("", f"buffer {buf} is not JSON ({e.msg} at line {e.lineno} column {e.colno}, "
                                f"char {e.pos})") from None
    except RecursionError:
        raise checker.error("", f"buffer {buf} nests JSON values too deeply") from None
    return checker.check(meta)
