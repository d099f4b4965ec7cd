"""quant_param export: the items of a fixed model, by float-model tensor names, so that importing them
again (``quant.qparam.import_quant_param``) gives a byte-identical fixed model."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..fixed.metadata import read_fixed_metadata
from ..model.graph import Model, load_model


def export_quant_param(fixed: Model | str | os.PathLike) -> list[dict[str, Any]]:
    """The quant_param items of a fixed model, by float-model tensor names (see ``quant.qparam``'s docstring)."""
    model = fixed if isinstance(fixed, Model) else load_model(fixed)
    meta = read_fixed_metadata(model)
    if meta is None:
        raise ConfigError("export_quant_param needs a fixed model written by calibrator_custom")
    g = model.main
    inputs = {m["name"] for m in meta.get("inputs", [])}
    items = []
    for t in g.tensors:
        q = t.quantization
        if t.dtype == "FLOAT32" or q is None or not q.scale:
            continue
        name = t.name
        if name.endswith("_normalized") and name[: -len("_normalized")] in inputs:
            continue  # determined by mean/std; the raw input's entry says so
        if name.endswith("_quantized") and name[: -len("_quantized")] in inputs:
            name = name[: -len("_quantized")]
        if name.endswith("_int16"):
            name = name[: -len("_int16")]
        bit = {"UINT8": 8, "INT8": 8, "INT16": 16, "INT32": 32, "INT64": 64}.get(t.dtype)
        if bit is None:
            continue
        item: dict[str, Any] = {"name": name, "min": [float(v) for v in q.min or ()],
                                "max": [float(v) for v in q.max or ()], "bit": bit}
        data = model.tensor_data(t)
        if data is not None and t.dtype in ("INT32", "INT64"):
            s = np.asarray(q.scale, np.float64)
            real = data.astype(np.float64) * s.reshape([-1 if a == q.quantized_dimension else 1
                                                        for a in range(data.ndim)])
            item["data"] = real
            item["min"], item["max"] = [float(real.min())], [float(real.max())]
        elif data is not None and t.dtype == "INT16" and not item["min"]:
            continue
        elif data is not None and _is_weight_clip(q, t.dtype):
            # conv weights: the stored min/max are float32 roundings of scale * qmax, and the import's
            # float32(clip / qmax) of those can miss the scale by one ulp; the exact clip gives it back
            qmax = 127 if t.dtype == "INT8" else 32767
            clip = [float(np.float64(sc) * qmax) for sc in q.scale]  # exact: a float32 times 127 or 32767
            item["min"], item["max"] = [-c for c in clip], clip
        items.append(item)
    return items


def _is_weight_clip(q, dtype: str) -> bool:
    """True for symmetric INT8/INT16 constants whose min/max are ``-+float32(scale * qmax)`` (conv weights)."""
    if dtype not in ("INT8", "INT16") or not q.min or not len(q.min) == len(q.max) == len(q.scale):
        return False
    qmax = 127 if dtype == "INT8" else 32767
    return (not any(q.zero_point or ())
            and all(float(np.float32(np.float64(sc) * qmax)) == hi == -lo for sc, lo, hi in zip(q.scale, q.min, q.max)))
