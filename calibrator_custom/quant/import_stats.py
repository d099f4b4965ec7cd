"""Statistics from an imported quant_param, for conversions without calibration data.

``SIM_Calibrator.convert(quant_param=items)`` with no generator converts from the imported ranges
alone. The planner takes each activation's range from the quant_param item (see :mod:`.qparam`) and
its per-channel min/max (written into the fixed model) from the statistics, so
:func:`stats_from_quant_param` turns each item's per-channel ``min``/``max`` lists into statistics.
An item whose lists have one value per channel of the tensor's last axis gives that tensor
per-channel ranges; other items give none (the tensor then records only its overall range).
Activations without an item get no statistics: the planner gives them the range [-1, 1] with a
warning naming each one.

:func:`split_quant_param` hands each model of a multi-model conversion the items naming its tensors.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Sequence

import numpy as np

from ..calib.stats import StatsSet, TensorStats
from ..errors import ConfigError
from ..interpreter import Interpreter
from ..model.graph import Model
from .qparam import FIXED_ONLY_SUFFIXES, check_quant_param_values, float_tensor_name

log = logging.getLogger(__name__)


def _tensor_names(model: Model) -> set[str]:
    return {t.name for t in model.main.tensors}


def _names_tensor(item: dict, names: set[str]) -> bool:
    name = item["name"]
    return (name in names or (name.endswith("_u8") and name[:-3] in names)
            or any(name.endswith(s) and name[: -len(s)] in names for s in FIXED_ONLY_SUFFIXES))


def split_quant_param(models: Sequence[Model], items: list, labels: Sequence[str] | None = None) -> list[list]:
    """For each model, the items naming one of its tensors (``<name>_u8`` names the UINT8 copy of ``<name>``).

    With one model every item is kept (the importer reports unknown names with their index). With
    several, an item naming a tensor of none of them is a ConfigError.
    """
    check_quant_param_values(items)
    if len(models) == 1:
        return [list(items)]
    names = [_tensor_names(m) for m in models]
    labels = list(labels) if labels is not None else [f"model #{k}" for k in range(len(models))]
    for k, item in enumerate(items):
        if not any(_names_tensor(item, n) for n in names):
            raise ConfigError(f"quant_param[{k}]: no tensor named {item['name']!r} in any of the models "
                              f"({', '.join(labels)}); take names from calibrator.get_tensor_details()")
    return [[it for it in items if _names_tensor(it, n)] for n in names]


def stats_from_quant_param(model: Model, items: list) -> StatsSet:
    """Statistics holding, for each activation tensor named by an item, the item's per-channel ranges."""
    check_quant_param_values(items)
    g = model.main
    constants = Interpreter(model).constants
    index = {t.name: i for i, t in enumerate(g.tensors)}
    tensors: dict[str, TensorStats] = {}
    inputs = {g.tensors[i].name for i in g.inputs}
    for item in items:
        name = float_tensor_name(item["name"], index, inputs)
        i = index.get(name) if name is not None else None
        if i is None or i in constants or g.tensors[i].dtype != "FLOAT32" or name in tensors:
            continue
        t = g.tensors[i]
        lo = np.asarray(item["min"], np.float64).ravel()
        hi = np.asarray(item["max"], np.float64).ravel()
        channels = int(t.shape[-1]) if len(t.shape) else 1
        if lo.size != channels or hi.size != channels or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            continue
        ts = TensorStats.from_array(t.name, i, np.stack([lo, hi]))
        tensors[t.name] = replace(ts, shape=tuple(t.shape))
    missing = [g.tensors[i].name for i in _runtime_float_tensors(model, constants) if g.tensors[i].name not in tensors]
    if missing:
        log.info("quant_param gives no per-channel ranges for %d activation tensor(s): %s", len(missing),
                 ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
    return StatsSet(tensors, {}, "", "", 1 if tensors else 0)


def _runtime_float_tensors(model: Model, constants) -> list[int]:
    g = model.main
    seen: list[int] = []
    for op in g.operators:
        for i in (*op.inputs, *op.outputs):
            if i >= 0 and i not in constants and i not in seen and g.tensors[i].dtype == "FLOAT32":
                seen.append(i)
    return seen
