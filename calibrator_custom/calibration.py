"""``calibrator``: a float model plus its input_config.ini, gathering calibration statistics.

    >>> calib = calibrator_custom.calibrator("face_detection_short_range_float.sim", "input_config.ini")
    >>> for x in batches:
    ...     calib.set_input(0, x)
    ...     calib.invoke()            # every invoke adds to the statistics
    >>> calib.save_statistics("face.stats.npz")

It has every ``float_simulator`` method; ``get_tensor_details()`` adds ``qtype``, the type each
tensor will have in the fixed model under this config. A bad model or config path is a
``ValueError`` (our ``ModelError`` / ``ConfigError``).
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .calib import Collector, StatsSet, collect_stats, model_sha256, weight_stats
from .calib.stats import TensorStats
from .config import InputConfig, load_input_config
from .errors import ConfigError, InputError
from .ops.conv_layout import conv_like_ops
from .pipeline.l5 import L5_SAMPLES
from .quant.qtypes import conv_bits, tensor_qtypes
from .simulators import _SimulatorBase

log = logging.getLogger(__name__)


class calibrator(_SimulatorBase):  # noqa: N801 - the vendor's public name
    """Float model + input_config.ini; statistics are gathered on every ``invoke``.

    Args:
        model_path: float model (``*_float.sim`` or float ``.tflite``).
        input_config_path: the model's input_config.ini.
        work_mode: accepted for compatibility with the vendor's S6 builds; unused.
        show_log: log progress at INFO level.
    """

    class_type = "FLOAT"
    model_type = "Float"

    def __init__(self, model_path: str | os.PathLike, input_config_path: str | os.PathLike,
                 work_mode: str | None = None, show_log: bool = False):
        super().__init__(model_path, show_log)
        self.input_config = os.fspath(input_config_path)
        self.config: InputConfig = load_input_config(self.input_config, self.model_obj)
        self.work_mode = work_mode
        self._convs = conv_like_ops(self.model_obj, self._interp.constants)
        self.conv_bits = conv_bits(self.model_obj, self._convs, self.config.conv)
        self._qtypes = tensor_qtypes(self.model_obj, self._interp.constants, self.config, self.conv_bits,
                                     self._convs)
        self._collector = Collector()
        self.add_observer(self._collector.observe)
        self._recorded_inputs: list[list[np.ndarray]] = []
        self._record_limit = L5_SAMPLES  # L5 measures on the first calibration inputs
        self.statistics_mode = "minmax"
        #: quant_param items from set_minmax / set_chn / update / update_data, by tensor name
        self._imported: dict[str, dict] = {}

    # ------------------------------------------------------------------ details
    def get_tensor_details(self) -> list[dict]:
        """Every tensor: ``name``, ``shape`` (int32 array), ``dtype`` (``'FLOAT32'``...), ``qtype``
        (its type in the fixed model: ``'UINT8'``, ``'INT8'``, ``'INT16'``, ``'INT32'``...)."""
        details = super().get_tensor_details()
        for d, q in zip(details, self._qtypes):
            d["qtype"] = q
        return details

    # ------------------------------------------------------------------ running
    def invoke(self, keep: str | Iterable[int] = ()) -> None:
        """Run the model once on the inputs set so far; the run adds to the statistics."""
        super().invoke(keep)
        if len(self._recorded_inputs) < self._record_limit:
            self._recorded_inputs.append([np.array(x, copy=True) for x in self._inputs])

    def record_inputs(self, limit: int) -> None:
        """Keep a copy of the inputs of each of the next ``limit`` invokes (0 stops); forgets earlier ones.
        By default the first ``L5_SAMPLES`` invokes' inputs are kept.

        ``SIM_Calibrator`` records what ``forward`` fed each model; L5 (:meth:`convert_fixed`) measures on these
        inputs.
        """
        self._recorded_inputs = []
        self._record_limit = max(0, int(limit))

    def recorded_inputs(self) -> list[list[np.ndarray]]:
        """The inputs recorded since :meth:`record_inputs`, one list of arrays per invoke, in order."""
        return list(self._recorded_inputs)

    @contextlib.contextmanager
    def running(self, model_path: str | os.PathLike) -> Iterator[None]:
        """Inside, invokes run the float model at ``model_path`` instead (a rescaled copy of this model: the same
        graph, inputs and outputs) and the statistics are its; the statistics gathered before are restored on exit.
        ``SIM_Calibrator`` gathers a channel-equalized model's statistics so (``pipeline.equalize``)."""
        from .model import sgs_lower
        from .model.graph import load_model
        other = sgs_lower.runnable(load_model(model_path))
        g, h = self.model_obj.main, other.main
        if [t.name for t in g.tensors] != [t.name for t in h.tensors] or (g.inputs, g.outputs) != (h.inputs, h.outputs):
            raise InputError(f"running: {os.fspath(model_path)!r} is not a rescaled copy of {self.model!r} (its "
                             "tensors differ)")
        saved = (self.model, self._interp, self._collector, list(self._observers))
        try:
            self.model = os.fspath(model_path)
            with self._naming_the_file():
                self._interp = self._make_interpreter(other)
            self.reset_statistics()
            yield
        finally:
            self.model, self._interp, self._collector, self._observers = saved

    # ------------------------------------------------------------------ statistics
    def statistics(self) -> StatsSet:
        """Statistics of every invoke so far, with the model's weight statistics."""
        sha = model_sha256(self.model) if self.model else ""
        return self._collector.finalize(model_sha256=sha, model_name=os.path.basename(self.model or ""),
                                        weights=weight_stats(self._interp))

    def reset_statistics(self) -> None:
        """Forget the statistics gathered so far."""
        collecting = self._collector.observe in self._observers
        observers = [o for o in self._observers if o != self._collector.observe]
        self._collector = Collector(self._collector.config.num_bins)
        self._observers = observers + ([self._collector.observe] if collecting else [])

    def save_statistics(self, path: str | os.PathLike) -> None:
        """Write the statistics to ``path`` (``.npz``) so quantization can be re-planned without images."""
        self.statistics().save(path)

    def collect(self, image_items: Iterable[Any], preprocess_funcs: Callable | Sequence[Callable],
                num_process: int = 1, progress: Callable[[int, int], None] | None = None) -> StatsSet:
        """Statistics over images (paths, or per-input path lists), in ``num_process`` processes.

        Each ``preprocess(path)`` must return exactly the input's shape and dtype (``norm=True``).
        The result is identical for every ``num_process``; it is independent of invoke statistics.
        """
        if not self.model:
            raise InputError("collect needs a calibrator created from a model file path")
        return collect_stats(self.model, image_items, preprocess_funcs, num_process=num_process, progress=progress)

    def get_minmax(self) -> list[dict]:
        """Vendor form: one dict per tensor seen, ``name``, ``min``, ``max`` (floats)."""
        return [{"name": s.name, "min": float(s.min), "max": float(s.max)}
                for s in self._collector.tensor_stats().values()]

    def get_chn(self) -> list[dict]:
        """Vendor form: per-channel (last axis) ranges, ``name``, ``min`` list, ``max`` list."""
        return [{"name": s.name, "min": np.asarray(s.channel_min).tolist(), "max": np.asarray(s.channel_max).tolist()}
                for s in self._collector.tensor_stats().values()]

    # ------------------------------------------------------------------ the vendor's staged API
    #: statistics modes of the vendor's calibrator (``set_statistics_mode``)
    STATISTICS_MODES = ("minmax", "statistics", "qab", "skip")

    def set_statistics_mode(self, mode: str) -> None:
        """``'minmax'``, ``'statistics'`` or ``'qab'``: later invokes gather statistics (this package always
        gathers min/max, per-channel ranges and histograms together); ``'skip'``: they gather nothing."""
        if mode not in self.STATISTICS_MODES:
            raise ConfigError(f"set_statistics_mode: unknown mode {mode!r}; use one of "
                              f"{', '.join(self.STATISTICS_MODES)}")
        self.statistics_mode = mode
        collecting = self._collector.observe in self._observers
        if mode == "skip" and collecting:
            self._observers.remove(self._collector.observe)
        elif mode != "skip" and not collecting:
            self._observers.append(self._collector.observe)

    def _bits_of(self, name: str) -> int:
        qtype = self._qtype_by_name().get(name, "INT16")
        return 8 if qtype in ("UINT8", "INT8") else 16

    def _qtype_by_name(self) -> dict[str, str]:
        return {t.name: q for t, q in zip(self.model_obj.main.tensors, self._qtypes)}

    def _import_ranges(self, items: Sequence[dict], what: str) -> None:
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{what}: expected the list that get_{what[4:]}() returns, got {type(items).__name__}")
        known = self._qtype_by_name()
        for k, item in enumerate(items):
            if not isinstance(item, dict) or not {"name", "min", "max"} <= set(item):
                raise ConfigError(f"{what}[{k}]: each item needs name, min and max (as get_{what[4:]}() returns)")
            name = item["name"]
            if name not in known:
                raise ConfigError(f"{what}[{k}]: the model has no tensor named {name!r}")
            lo, hi = np.atleast_1d(np.asarray(item["min"], np.float64)), np.atleast_1d(np.asarray(item["max"], np.float64))
            self._imported[name] = {"name": name, "min": lo.tolist(), "max": hi.tolist(), "bit": self._bits_of(name)}

    def set_minmax(self, minmax: Sequence[dict]) -> None:
        """Use these per-tensor ranges (the items of :meth:`get_minmax`) in :meth:`convert_fixed`."""
        self._import_ranges(minmax, "set_minmax")

    def set_chn(self, chn: Sequence[dict]) -> None:
        """Use these per-channel ranges (the items of :meth:`get_chn`) in :meth:`convert_fixed`.

        Like the vendor, a tensor's range is then the whole span of its channel ranges (per-channel
        quantization is for weights, which come from the model)."""
        items = [{"name": c["name"], "min": [float(np.min(c["min"]))], "max": [float(np.max(c["max"]))]}
                 if isinstance(c, dict) and {"name", "min", "max"} <= set(c) else c for c in chn] \
            if isinstance(chn, (list, tuple)) else chn
        self._import_ranges(items, "set_chn")

    def get_intermediate(self) -> list[dict]:
        """Per op that has run: ``op_index``, ``in0_name`` (its first input's name) and ``intermediate_range``,
        one ``{'name', 'min': [float], 'max': [float]}`` per output tensor: the range each op's results took
        over the invokes so far. What :meth:`set_intermediate` takes back.

        The SDK's intermediate ranges are internal to its kernels and not documented; here an op's
        intermediate values are its outputs (the package's fixed kernels keep no other intermediates).
        """
        g = self.model_obj.main
        seen = self._collector.tensor_stats()
        out = []
        for k, op in enumerate(g.operators):
            ranges = [{"name": g.tensors[t].name, "min": [float(seen[g.tensors[t].name].min)],
                       "max": [float(seen[g.tensors[t].name].max)]}
                      for t in op.outputs if t >= 0 and g.tensors[t].name in seen]
            if ranges:
                first = next((g.tensors[t].name for t in op.inputs if t >= 0), "")
                out.append({"op_index": k, "in0_name": first, "intermediate_range": ranges})
        return out

    def set_intermediate(self, intermediate: Sequence[dict]) -> None:
        """Use the ranges of :meth:`get_intermediate` items in :meth:`convert_fixed` (as :meth:`set_minmax` does
        for the named output tensors). Each item's ``op_index`` must be an op of the model, its ``in0_name`` (if
        given) that op's first input, and every range an output of that op."""
        if not isinstance(intermediate, (list, tuple)):
            raise ConfigError(f"set_intermediate: expected the list that get_intermediate() returns, got "
                              f"{type(intermediate).__name__}")
        g = self.model_obj.main
        items = []
        for k, item in enumerate(intermediate):
            if not isinstance(item, dict) or not {"op_index", "intermediate_range"} <= set(item):
                raise ConfigError(f"set_intermediate[{k}]: each item needs op_index and intermediate_range (as "
                                  "get_intermediate() returns)")
            i = item["op_index"]
            if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < len(g.operators):
                raise ConfigError(f"set_intermediate[{k}]: op_index {i!r} is not an op of the model (0.."
                                  f"{len(g.operators) - 1})")
            op = g.operators[int(i)]
            first = next((g.tensors[t].name for t in op.inputs if t >= 0), "")
            if "in0_name" in item and item["in0_name"] != first:
                raise ConfigError(f"set_intermediate[{k}]: op {int(i)}'s first input is {first!r}, not "
                                  f"{item['in0_name']!r}")
            outputs = {g.tensors[t].name for t in op.outputs if t >= 0}
            ranges = item["intermediate_range"]
            if not isinstance(ranges, (list, tuple)):
                raise ConfigError(f"set_intermediate[{k}]: intermediate_range must be a list of name/min/max dicts")
            for r in ranges:
                name = r.get("name") if isinstance(r, dict) else None
                if name not in outputs:
                    raise ConfigError(f"set_intermediate[{k}]: {name!r} is not an output of op {int(i)} "
                                      f"({', '.join(sorted(outputs))})")
                items.append(r)
        self._import_ranges(items, "set_intermediate")

    def get_statistics(self) -> list[dict]:
        """Per float tensor: ``name``, ``bin`` (histogram counts), ``min``, ``max`` and ``tensor_stats`` (the
        full statistics, what :meth:`set_statistics` takes back exactly)."""
        return [{"name": s.name, "bin": np.asarray(s.histogram.counts).copy(), "min": float(s.min),
                 "max": float(s.max), "tensor_stats": s} for s in self._collector.tensor_stats().values()]

    def set_statistics(self, statistics: Sequence[dict]) -> None:
        """Replace the gathered statistics of the named tensors.

        Items of :meth:`get_statistics` (with ``tensor_stats``) are taken back exactly. The SDK's form,
        ``{'name', 'bin'}`` (counts of equal-width bins spanning the tensor's range), is accepted too: the
        range is the item's ``min``/``max`` if given, else the one set with :meth:`set_minmax`, else the one
        gathered; each bin's count is placed at the bin's centre (so percentiles are within half a bin).
        """
        if not isinstance(statistics, (list, tuple)):
            raise ConfigError(f"set_statistics: expected the list that get_statistics() returns, got "
                              f"{type(statistics).__name__}")
        g = self.model_obj.main
        new = {}
        for k, item in enumerate(statistics):
            if not isinstance(item, dict) or "name" not in item:
                raise ConfigError(f"set_statistics[{k}]: each item needs 'name' and 'bin' (or 'tensor_stats')")
            ts = item.get("tensor_stats")
            if ts is not None:
                if not isinstance(ts, TensorStats) or ts.name != item["name"]:
                    raise ConfigError(f"set_statistics[{k}]: 'tensor_stats' must be the TensorStats of "
                                      f"{item['name']!r} that get_statistics() returned")
                new[ts.name] = ts
                continue
            if "bin" not in item:
                raise ConfigError(f"set_statistics[{k}] ({item['name']!r}): give 'bin' (histogram counts) or the "
                                  "items get_statistics() returns")
            new[item["name"]] = self._stats_from_bins(k, item, g)
        self._collector._stats.update(new)

    def _stats_from_bins(self, k: int, item: dict, g) -> TensorStats:
        from .calib.histogram import Histogram, _floor_scaled, bin_indices, exponent_for

        name = item["name"]
        try:
            index = g.tensor_index(name)
        except Exception:
            raise ConfigError(f"set_statistics[{k}]: the model has no tensor named {name!r}") from None
        counts = np.asarray(item["bin"], np.float64).ravel()
        if counts.size == 0 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
            raise ConfigError(f"set_statistics[{k}] ({name!r}): 'bin' must be a non-empty list of counts >= 0")
        old = self._collector._stats.get(name)
        if "min" in item and "max" in item:
            lo, hi = float(np.min(item["min"])), float(np.max(item["max"]))
        elif name in self._imported:
            lo, hi = float(np.min(self._imported[name]["min"])), float(np.max(self._imported[name]["max"]))
        elif old is not None and old.num_finite:
            lo, hi = old.min, old.max
        else:
            raise ConfigError(f"set_statistics[{k}] ({name!r}): the range of its bins is unknown; give 'min' and "
                              "'max' in the item, call set_minmax first, or invoke the calibrator")
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ConfigError(f"set_statistics[{k}] ({name!r}): range [{lo}, {hi}] is not a finite interval")
        num_bins = self._collector.config.num_bins
        centers = np.clip(lo + (np.arange(counts.size) + 0.5) * ((hi - lo) / counts.size), lo, hi)
        e = exponent_for(lo, hi, num_bins)
        i0 = _floor_scaled(lo + 0.0, e)
        n = _floor_scaled(hi + 0.0, e) - i0 + 1
        hist_counts = np.rint(np.bincount(bin_indices(centers, e, i0), weights=counts, minlength=n)).astype(np.int64)
        hist = Histogram(num_bins, e, i0, hist_counts, lo + 0.0, hi + 0.0)
        shape = tuple(int(d) for d in g.tensors[index].shape)
        channels = shape[-1] if shape else 1
        cmin = old.channel_min if old is not None and old.num_finite else np.full(channels, lo)
        cmax = old.channel_max if old is not None and old.num_finite else np.full(channels, hi)
        return TensorStats(name, index, shape, max(1, old.num_samples if old is not None else 0), 0, 0,
                           np.clip(cmin, lo, hi), np.clip(cmax, lo, hi), hist)

    def dump_weights(self) -> dict[str, np.ndarray]:
        """Every float constant an op reads, by tensor name (copies)."""
        g = self._interp.graph
        return {g.tensors[i].name: np.array(v) for i, v in self._interp.constants.items()
                if isinstance(v, np.ndarray) and v.dtype.kind == "f"}

    def dump_statistics(self) -> dict[str, dict]:
        """Per float tensor: ``{'min', 'max', 'channel_min', 'channel_max', 'bin'}`` of the statistics so far."""
        return {s.name: {"min": float(s.min), "max": float(s.max), "channel_min": np.asarray(s.channel_min).tolist(),
                         "channel_max": np.asarray(s.channel_max).tolist(), "bin": np.asarray(s.histogram.counts).copy()}
                for s in self._collector.tensor_stats().values()}

    def update(self, quant_info_list: Sequence[dict]) -> None:
        """Use these quant_param items (``name, min, max, bit[, data]``) in :meth:`convert_fixed`."""
        from . import utils

        utils.check_quant_param(list(quant_info_list))
        for item in quant_info_list:
            self._imported[item["name"]] = dict(item)

    def update_data(self, quant_param: Sequence[dict], path: str | os.PathLike | None = None) -> str | None:
        """Use the ``data`` of these quant_param items in :meth:`convert_fixed`.

        Deliberate difference: the vendor rewrites the float model file (to ``path``, or in place) with the
        new constants; here the float file is never modified and the constants go into the fixed model only.
        """
        items = [dict(q) for q in quant_param if "data" in q]
        if items:
            log.warning("update_data: the float model %s is not rewritten (the SDK rewrites it); the %d constant(s) "
                        "go into the fixed model", path or self.model or "(in memory)", len(items))
        self.update(items)
        return self.model

    def _calibrated_ranges(self) -> dict[str, tuple[float, float]]:
        """(min, max) by tensor name: the statistics gathered, overridden by the imported ranges."""
        ranges = {n: (float(t.min), float(t.max)) for n, t in self._collector.tensor_stats().items() if t.num_finite}
        ranges.update({n: (float(np.min(i["min"])), float(np.max(i["max"]))) for n, i in self._imported.items()})
        return ranges

    def convert_cmodel_float(self, passes=None, saved_path: str | os.PathLike | None = None) -> str:
        """The vendor's float -> cmodel-float stage: writes the float model with the calibrated ranges (statistics
        so far, overridden by ``set_minmax`` / ``set_chn`` / ``set_intermediate`` / ``update``) in every tensor
        (:mod:`calibrator_custom.cmodel_float`) to ``saved_path`` (default ``x_cmodel_float.sim``); returns it.

        A vendor ``*_float.sim`` gives a vendor ``Sigmastar Cmodel Float`` file; a TFLite model a TFLite file with
        the ranges as tensor min/max. Either one, opened with ``calibrator(path, ini)``, converts to fixed with
        those ranges (:meth:`convert_fixed`). ``passes``: a list of pass names or a pass file (checked, not run).
        ``model_type`` becomes ``'Cmodel_float'``.
        """
        from . import utils

        utils.check_passes(passes, "convert_cmodel_float")
        if not self.model:
            raise InputError("convert_cmodel_float needs a calibrator created from a model file path")
        ranges = self._calibrated_ranges()
        if not ranges:
            raise InputError("convert_cmodel_float: no statistics yet; invoke the calibrator on calibration inputs "
                             "(or set_minmax / update) first")
        out = os.fspath(saved_path) if saved_path is not None else utils.output_model_path(self.model, phase="CMD_Float")
        self.write_cmodel_float(ranges, out)
        self.model_type = "Cmodel_float"
        return out

    def write_cmodel_float(self, ranges: dict[str, tuple[float, float]], out: str | os.PathLike) -> None:
        """Write this float model in the cmodel-float form with these (min, max) by tensor name to ``out``
        (what :meth:`convert_cmodel_float` and ``SIM_Calibrator.convert(cmd_model=...)`` write)."""
        from .cmodel_float import NOT_REPRODUCED, cmodel_float_model
        from .model.graph import load_model

        if not self.model:
            raise InputError("a cmodel-float model needs a calibrator created from a model file path")
        out = os.fspath(out)
        if os.path.abspath(out) == os.path.abspath(self.model):
            raise InputError(f"cmodel-float path {out!r} is the float model itself; give another path")
        source = load_model(self.model)  # the file itself (vendor fields included), not the runnable copy
        ours = self._qtype_by_name()
        planned = {t.name: t.extra.get("sgs_fixed_type") or ours.get(t.name, "") for t in source.main.tensors}
        cmodel_float_model(source, ranges, planned).save(out)
        if source.is_vendor:
            log.warning("convert_cmodel_float: %s is a vendor cmodel-float model with the calibrated ranges; not "
                        "reproduced: %s", out, "; ".join(NOT_REPRODUCED))
        else:
            log.warning("convert_cmodel_float: the float model is not a vendor float.sim, so %s is the same TFLite "
                        "model with the calibrated ranges as tensor min/max (the vendor's cmodel-float form needs a "
                        "vendor float.sim)", out)

    def vendor_float(self):
        """The vendor float.sim this calibrator was made from (the fixed file is then the vendor's dialect,
        ``pipeline.convert``), or None for a plain TFLite model."""
        return self.source_model if self.source_model.dialect == "sgs_float" else None

    def convert_fixed(self, passes=None, saved_path: str | os.PathLike | None = None, model_desc: str = "Fixed",
                      quant_level: str = "L1") -> str:
        """Write the fixed model from the statistics gathered so far and the ranges/items given with
        ``set_minmax``/``set_chn``/``update``/``update_data`` (those win), at ``quant_level`` (default L1, the
        vendor's min/max conversion). Without statistics or imported ranges, the ranges stored in the model file
        (a cmodel-float model from :meth:`convert_cmodel_float`) are used. ``passes`` (pass names or a pass file)
        are checked, not run; ``model_desc`` 'Fixed_without_ipu_ctrl' is
        written as 'Fixed' (there is one fixed dialect here). Returns the written path."""
        from . import utils
        from .pipeline.convert import convert as convert_model

        utils.check_passes(passes, "convert_fixed")
        if model_desc not in ("Fixed", "Fixed_without_ipu_ctrl"):
            raise ConfigError(f"convert_fixed: model_desc {model_desc!r}; use 'Fixed' or 'Fixed_without_ipu_ctrl'")
        if model_desc != "Fixed":
            log.warning("convert_fixed: model_desc %r is written as a 'Fixed' model (one fixed dialect here)", model_desc)
        if saved_path is None:
            if not self.model:
                raise InputError("convert_fixed needs saved_path for a calibrator created from an in-memory model")
            saved_path = utils.output_model_path(self.model)
        stats = self.statistics()
        if stats.num_samples == 0 and not self._imported and self.model:
            stats = self._stored_range_stats(stats)
        if stats.num_samples == 0 and not self._imported:
            raise InputError("convert_fixed: no statistics yet; invoke the calibrator on calibration inputs (or "
                             "set_minmax / update) first")
        quant_param = list(self._imported.values()) or None
        convert_model(self.model_obj, self.config, stats, quant_level=quant_level, quant_param=quant_param,
                      output_path=saved_path, vendor_float=self.vendor_float(),
                      calibration_feeds=self.recorded_inputs() or None)
        self.model_type = "Fixed"
        return os.fspath(saved_path)

    def _stored_range_stats(self, empty: StatsSet) -> StatsSet:
        """Statistics holding the ranges stored in the model file (a cmodel-float model), or ``empty``."""
        from .cmodel_float import ranges_in_model
        from .model.graph import load_model
        from .quant.import_stats import stats_from_quant_param

        stored = ranges_in_model(load_model(self.model))
        g = self.model_obj.main
        for k in g.topological_order():  # RESHAPEs the runnable copy added keep their source's range
            op = g.operators[k]
            if self.model_obj.op_name(op) == "RESHAPE" and g.tensors[op.inputs[0]].name in stored:
                stored.setdefault(g.tensors[op.outputs[0]].name, stored[g.tensors[op.inputs[0]].name])
        items = []
        for t in g.tensors:
            if t.name in stored:
                channels = int(t.shape[-1]) if len(t.shape) else 1
                lo, hi = stored[t.name]
                items.append({"name": t.name, "min": [lo] * channels, "max": [hi] * channels,
                              "bit": self._bits_of(t.name)})
        if not items:
            return empty
        log.info("convert_fixed: no statistics gathered; using the %d ranges stored in %s", len(items), self.model)
        return stats_from_quant_param(self.model_obj, items).with_weights(weight_stats(self._interp))

    def get_op_details(self, op_types: Iterable[str] | None = None) -> list[dict]:
        """Conv-like ops (of ``op_types``, default all): ``op_index``, ``op_type``, ``input_tensors`` (data,
        weights[, bias] names), ``ib_allowed_bits`` ([8, 16]), ``input_min/max`` and ``weights_min/max``
        (lists: gathered input range, per-channel weight ranges), ``input_shape``, ``weights_shape``."""
        g = self.model_obj.main
        wanted = None if op_types is None else set(op_types)
        seen = self._collector.tensor_stats()
        out = []
        for c in self._convs:
            if wanted is not None and c.op_name not in wanted:
                continue
            x, w = g.tensors[c.data], g.tensors[c.weights]
            wv = np.asarray(self._interp.constants.get(c.weights, np.zeros(w.shape)), np.float64)
            out_axis = 3 if c.is_depthwise and wv.ndim == 4 else 0  # output channels: TFLite OHWI / 1HWO
            rows = np.moveaxis(wv, out_axis, 0).reshape(wv.shape[out_axis], -1) if wv.ndim else wv.reshape(1, 1)
            xs = seen.get(x.name)
            names = [x.name, w.name] + ([g.tensors[c.bias].name] if c.bias >= 0 else [])
            out.append({"op_index": c.op_index, "op_type": c.op_name, "input_tensors": names,
                        "ib_allowed_bits": [8, 16],
                        "input_min": [float(xs.min)] if xs is not None else [],
                        "input_max": [float(xs.max)] if xs is not None else [],
                        "weights_min": rows.min(axis=1).tolist(), "weights_max": rows.max(axis=1).tolist(),
                        "input_shape": [int(v) for v in x.shape], "weights_shape": [int(v) for v in w.shape]})
        return out
