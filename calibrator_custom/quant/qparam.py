"""quant_param: the vendor's list of ``{name, min[], max[], bit[, data]}`` items, imported and exported.

Import (``import_quant_param``): entries take priority over the planner where they are consistent.

* Activation tensor, ``bit`` 16: its INT16 range is ``[min(min), max(max)]``; ``bit`` 8 on the data
  input of 8-bit convolutions: their UINT8 range (``<name>_u8`` names the UINT8 copy of an INT16
  tensor, as exported), with one min/max per channel (last axis) giving the per-channel ranges
  the UINT8 scales and zero points are made from (``planner.channel_u8_quant``).
* Conv weights: ``bit`` 8/16 sets the conv's mode; per-channel ``max(|min[c]|, |max[c]|)`` is the
  clip (``scale = clip / 127`` or ``/ 32767``); ``data`` replaces the float weights.
* Biases and other constants: ``data`` replaces the float values.

Files (``load_quant_param``): JSON, or a pickle read by a restricted unpickler that builds only plain
containers, numbers, strings and numpy arrays (a pickle naming any other global, such as
``os.system``, is refused before anything runs). Bad JSON is reported with its line and column.

A malformed item (not a dict, missing keys, wrong types, ``min``/``max`` not a flat list of finite
numbers within ``RANGE_LIMIT``, ``data`` not a finite numeric array, two items for one tensor, an
unknown tensor name) is a ConfigError naming the item index and tensor (``check_quant_param_values``).
An inconsistent one (min > max, a min/max length that is neither 1 nor the channel count, a ``data``
of the wrong shape, a bit the tensor cannot take, a range that disagrees with an image input's
mean/std) is dropped with a warning naming it.

Export (``pipeline.export.export_quant_param``, which reads fixed models) writes exactly what a fixed
model used, so importing it again gives a byte-identical fixed model.
"""
from __future__ import annotations

import io
import json
import logging
import math
import numbers
import os
import pickle
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..config import IMAGE_FORMATS
from ..errors import ConfigError
from ..ops.conv_layout import conv_weight_axes
from .ranges import RANGE_LIMIT, Range, covering

log = logging.getLogger(__name__)


@dataclass
class QuantParamOverrides:
    """What an imported quant_param changes in planning (keys are float-model tensor / op indices)."""

    ranges: dict[int, Range] = field(default_factory=dict)
    u8_ranges: dict[int, Range] = field(default_factory=dict)
    weights: dict[int, tuple[np.ndarray | None, np.ndarray | None]] = field(default_factory=dict)
    bits: dict[int, int] = field(default_factory=dict)
    const_data: dict[int, np.ndarray] = field(default_factory=dict)


def check_quant_param(quant_param) -> None:
    """Check a quant_param list: items {'name': str, 'min': list, 'max': list, 'bit': int[, 'data': ndarray]}."""
    if quant_param is None:
        return
    if not isinstance(quant_param, list):
        raise ConfigError(f"quant_param must be a `list`, got {type(quant_param).__name__}")
    for idx, item in enumerate(quant_param):
        if not isinstance(item, dict):
            raise ConfigError(f"quant_param[{idx}] must be a `dict` with name, min, max, bit; got "
                              f"{type(item).__name__}")
        missing = [k for k in ("name", "min", "max", "bit") if k not in item]
        if missing:
            raise ConfigError(f"quant_param[{idx}]: {item.get('name', '?')} has no {', '.join(missing)}; each item "
                              "needs name, min, max, bit")
        name = item["name"]
        if not isinstance(name, str):
            raise ConfigError(f"name of each quant_param[{idx}] must be `str`, got {type(name).__name__}")
        for key in ("min", "max"):
            if not isinstance(item[key], list):
                raise ConfigError(f"{key} of quant_param[{idx}]: {name} must be a `list` (got "
                                  f"{type(item[key]).__name__}; use .tolist() on arrays)")
        if not isinstance(item["bit"], int):
            raise ConfigError(f"bit of quant_param[{idx}]: {name} must be `int`, got {item['bit']!r}")
        if isinstance(item["bit"], bool):  # a bool is an int to the SDK's check too
            log.warning("bit of quant_param[%d]: %s is the bool %r; accepted as the int %d like the SDK does (give "
                        "8 or 16)", idx, name, item["bit"], int(item["bit"]))
        if "data" in item and not isinstance(item["data"], np.ndarray):
            raise ConfigError(f"data of quant_param[{idx}]: {name} must be `numpy.ndarray`, got "
                              f"{type(item['data']).__name__}")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """Exactly the globals numpy's own array and scalar pickles name (protocols 0-5, numpy 1.x and 2.x)."""
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    scalar = np.float64(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    found = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found[(module, "_reconstruct")] = reconstruct
        found[(module, "scalar")] = scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        found[(module, "_frombuffer")] = frombuffer
    found[("numpy", "ndarray")] = np.ndarray
    found[("numpy", "dtype")] = _plain_dtype
    found[("_codecs", "encode")] = _latin1_encode  # protocols 0-2 write bytes as _codecs.encode(str, 'latin1')
    return found


def _plain_dtype(*args):
    dt = np.dtype(*args)
    if dt.hasobject:
        raise pickle.UnpicklingError("an object array; only numeric numpy arrays are allowed")
    return dt


def _latin1_encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only as numpy's latin1 byte encoding")
    return text.encode("latin1")


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle names a global outside the allowed numpy ones."""


class _RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only numpy's array globals; containers, numbers and strings need none."""

    _allowed = _numpy_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f"it names the global {module}.{name}, so it was refused unrun; a quant_param "
                                 "pickle may hold only lists, dicts, numbers, strings and numpy arrays") from None


def restricted_pickle_loads(data: bytes) -> Any:
    """``pickle.loads`` that builds only plain containers, numbers, strings and numeric numpy arrays."""
    return _RestrictedUnpickler(io.BytesIO(data)).load()


def _looks_like_json(path: str, raw: bytes) -> bool:
    head = raw.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    return path.lower().endswith(".json") or head in (b"[", b"{")


def load_quant_param(path: str | os.PathLike) -> list:
    """A quant_param list from a JSON or pickle file (``data`` lists in JSON become float64 arrays).

    Pickles go through a restricted unpickler (see the module docstring). The items are checked
    with ``check_quant_param_values``; every problem is a ConfigError naming the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"quant_param file {path!r} does not exist")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"quant_param file {path!r} cannot be read: {e.strerror or e}") from None
    if _looks_like_json(path, raw):
        try:
            items = json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError as e:
            raise ConfigError(f"quant_param file {path!r} is not UTF-8 JSON ({e.reason} at byte {e.start})") \
                from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"quant_param file {path!r}: invalid JSON at line {e.lineno} column {e.colno}: "
                              f"{e.msg}") from None
    else:
        try:
            items = restricted_pickle_loads(raw)
        except _RefusedGlobal as e:
            raise ConfigError(f"quant_param file {path!r} is a pickle that is not allowed: {e}") from None
        except Exception as e:  # noqa: BLE001 - any failure of a foreign file is the file's problem
            raise ConfigError(f"quant_param file {path!r} is neither JSON nor a readable pickle "
                              f"({type(e).__name__}: {e})") from None
    try:
        if isinstance(items, list):
            for k, it in enumerate(items):
                if isinstance(it, dict) and isinstance(it.get("data"), list):
                    it["data"] = _json_data(k, it)
        check_quant_param_values(items)
    except ConfigError as e:
        raise ConfigError(f"quant_param file {path!r}: {e}") from None
    return items


def _json_data(k: int, item: dict) -> np.ndarray:
    name = item.get("name", "?")
    try:
        data = np.asarray(item["data"], np.float64)
    except (ValueError, TypeError):
        raise ConfigError(f"quant_param[{k}] (tensor {name!r}): data must be a (nested) list of numbers with "
                          "the tensor's shape; it is ragged or holds non-numbers") from None
    return data


def _flat_numbers(k: int, name: str, key: str, values: list) -> np.ndarray:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            what = "a nested list (ragged or per-row)" if isinstance(v, (list, tuple)) else repr(v)
            raise ConfigError(f"quant_param[{k}] (tensor {name!r}): {key} must be a flat list of numbers, one "
                              f"per channel; it holds {what}")
        if not math.isfinite(float(v)) or abs(float(v)) > RANGE_LIMIT:
            raise ConfigError(f"quant_param[{k}] (tensor {name!r}): {key} holds {float(v)!r}; allowed: finite "
                              f"numbers from -{RANGE_LIMIT:g} to {RANGE_LIMIT:g}")
    return np.asarray(values, np.float64)


def check_quant_param_values(items) -> None:
    """:func:`check_quant_param` plus the values: flat finite min/max lists within ``RANGE_LIMIT``, finite
    numeric ``data``, and one item per tensor. Raises ConfigError naming the item index and tensor."""
    check_quant_param(items)
    seen: dict[str, int] = {}
    for k, item in enumerate(items or ()):
        name = item["name"]
        if name in seen:
            raise ConfigError(f"quant_param[{k}] (tensor {name!r}) repeats quant_param[{seen[name]}]; give one "
                              "item per tensor")
        seen[name] = k
        for key in ("min", "max"):
            _flat_numbers(k, name, key, item[key])
        if len(item["min"]) != len(item["max"]) and item["min"] and item["max"]:
            raise ConfigError(f"quant_param[{k}] (tensor {name!r}): min has {len(item['min'])} values and max "
                              f"{len(item['max'])}; give the same number (one per channel, or one each)")
        if "data" in item:
            data = item["data"]
            if data.dtype.kind not in "biuf":
                raise ConfigError(f"quant_param[{k}] (tensor {name!r}): data must be a numeric array, got dtype "
                                  f"{data.dtype}")
            real = data.astype(np.float64)
            bad = ~np.isfinite(real) | (np.abs(real) > RANGE_LIMIT)
            if np.any(bad):
                at = [int(a) for a in np.argwhere(bad)[0]]
                raise ConfigError(f"quant_param[{k}] (tensor {name!r}): data holds {float(real[tuple(at)])!r} at "
                                  f"index {at}; allowed: finite numbers from -{RANGE_LIMIT:g} to {RANGE_LIMIT:g}")


def _drop(k: int, name: str, why: str) -> None:
    log.warning("quant_param[%d] %r dropped: %s", k, name, why)


#: suffixes the fixed model adds to float-model tensor names (fixed/writer.py); quant files saved from a
#: fixed model's get_tensor_details (the SDK's save_quant_param.py) carry them
FIXED_ONLY_SUFFIXES = ("_normalized", "_quantized", "_int16")


def float_tensor_name(name: str, names: Mapping[str, int] | set, input_names: set) -> str | None:
    """The float-model tensor an item name from a fixed model means: itself when the float model has it,
    ``<input>`` for ``<input>_quantized``, ``<x>`` for ``<x>_int16``; None for ``<input>_normalized`` (the
    normalised input, fixed by the ini's mean/std, so it carries nothing to import). Unknown names are
    returned unchanged."""
    if name in names:
        return name
    for suffix in FIXED_ONLY_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and base in names:
            if suffix == "_normalized":
                return None if base in input_names else name
            return base
    return name


def import_quant_param(pi, items: list) -> QuantParamOverrides:
    """Overrides for planning from ``items`` (see the module docstring)."""
    check_quant_param_values(items)
    g = pi.graph
    names = {t.name: i for i, t in enumerate(g.tensors)}
    consts = pi.interp.constants
    by_weights = {c.weights: c for c in pi.convs}
    by_data: dict[int, list] = {}
    for c in pi.convs:
        by_data.setdefault(c.data, []).append(c)
    specs = {s.name: s for s in pi.config.inputs}
    ov = QuantParamOverrides()
    weight_bits: dict[int, int] = {}
    input_names = {g.tensors[i].name for i in g.inputs}
    for k, item in enumerate(items):
        name = float_tensor_name(item["name"], names, input_names)
        if name is None:
            log.info("quant_param[%d] %r skipped: the normalised input of a fixed model is set by the ini's mean/std",
                     k, item["name"])
            continue
        u8 = False
        i = names.get(name)
        if i is None and name.endswith("_u8") and name[:-3] in names:
            i, u8 = names[name[:-3]], True
        if i is None:
            raise ConfigError(f"quant_param[{k}]: no tensor named {name!r} in the float model; take names from "
                              "calibrator.get_tensor_details() or fixed_simulator.get_tensor_details()")
        lo_l = np.asarray(item["min"], np.float64).ravel()
        hi_l = np.asarray(item["max"], np.float64).ravel()
        bit = int(item["bit"])
        data = item.get("data")
        if lo_l.size == 0 or lo_l.size != hi_l.size:
            _drop(k, name, f"min has {lo_l.size} values and max {hi_l.size}; give one per channel or one each")
            continue
        if np.any(lo_l > hi_l):
            _drop(k, name, "min/max must have min <= max")
            continue
        t = g.tensors[i]
        if i in consts:
            if data is not None and tuple(np.shape(data)) != tuple(np.shape(consts[i])):
                _drop(k, name, f"data has shape {list(np.shape(data))}, the tensor {list(np.shape(consts[i]))}")
                continue
            if i in by_weights:
                c = by_weights[i]
                axis = conv_weight_axes(pi.model, c, np.shape(consts[i])).out_axis
                n = np.shape(consts[i])[axis]
                if bit not in (8, 16):
                    _drop(k, name, f"conv weights take bit 8 or 16, not {bit}")
                    continue
                if lo_l.size not in (1, n):
                    _drop(k, name, f"{lo_l.size} min/max values; the weights have {n} output channels")
                    continue
                clip = np.broadcast_to(np.maximum(np.abs(lo_l), np.abs(hi_l)), (n,)).copy()
                ov.weights[i] = (None if data is None else np.asarray(data, np.float64), clip)
                weight_bits[c.op_index] = bit
                ov.bits[c.op_index] = bit
            elif data is not None:
                ov.const_data[i] = np.asarray(data, np.float64)
            continue
        if t.dtype != "FLOAT32":
            _drop(k, name, f"tensor is {t.dtype}, not a float tensor")
            continue
        spec = specs.get(name)
        if spec is not None and spec.input_format in IMAGE_FORMATS:
            mean = np.asarray(spec.channel_mean(), np.float64)
            std = np.asarray(spec.channel_std(), np.float64)
            want_lo, want_hi = float(np.min(-mean / std)), float(np.max((255 - mean) / std))
            if not (np.isclose(lo_l.min(), want_lo, rtol=1e-4, atol=1e-5)
                    and np.isclose(hi_l.max(), want_hi, rtol=1e-4, atol=1e-5)):
                _drop(k, name, f"an image input's range is fixed by mean/std: [{want_lo:.6g}, {want_hi:.6g}]")
            continue
        lo, hi = covering(lo_l.min(), hi_l.max())
        channels = int(t.shape[-1]) if t.shape else 1
        if bit == 8 and lo_l.size not in (1, channels):
            _drop(k, name, f"{lo_l.size} min/max values; the tensor has {channels} channels (last axis)")
            continue
        rng = Range(lo, hi, "quant_param")
        if bit == 8 and lo_l.size > 1:  # per-channel UINT8 ranges, as exported
            rng = Range(lo, hi, "quant_param", tuple(float(v) for v in lo_l), tuple(float(v) for v in hi_l))
        if bit == 8:
            readers = by_data.get(i, [])
            if not readers:
                _drop(k, name, "bit 8 is only for the data input of convolutions")
                continue
            if u8:
                ov.u8_ranges[i] = rng
            else:
                ov.ranges[i] = rng
                ov.u8_ranges[i] = rng
            for c in readers:
                if weight_bits.get(c.op_index, 8) == 8:
                    ov.bits.setdefault(c.op_index, 8)
        elif bit == 16:
            ov.ranges[i] = rng
            for c in by_data.get(i, []):
                if c.op_index not in weight_bits:
                    ov.bits[c.op_index] = 16
        else:
            _drop(k, name, f"activations take bit 8 or 16, not {bit}")
    return ov


def save_quant_param(items: list, path: str | os.PathLike) -> None:
    """Write items as JSON (``.json``; arrays become lists) or pickle (any other suffix), atomically."""
    from ..model.graph import atomic_write

    path = os.fspath(path)
    if path.lower().endswith(".json"):
        def enc(o):
            if isinstance(o, np.ndarray):
                return o.tolist()
            raise TypeError(type(o).__name__)
        data = json.dumps(items, default=enc, indent=4).encode()
    else:
        data = pickle.dumps(items)
    atomic_write(path, data)
