"""``SIM_Calibrator``: calibrate and convert several models together (multi-input, chained, multi-stage).

    >>> class Net(calibrator_custom.SIM_Calibrator):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.detector = calibrator_custom.calibrator("det_float.sim", "det.ini")
    ...         self.head = calibrator_custom.calibrator("head_float.sim", "head.ini")
    ...     def forward(self, x):
    ...         self.detector.set_input(0, x)
    ...         self.detector.invoke()
    ...         self.head.set_input(0, self.detector.get_output(0))
    ...         self.head.invoke()
    ...         return self.head.get_output(0)
    >>> net = Net()
    >>> paths = net.convert(img_gen, num_process=4)        # ['det_fixed.sim', 'head_fixed.sim']

Each calibrator accumulates statistics on every ``invoke``, so whatever ``forward`` feeds a model
(several inputs, or another model's outputs) is what that model is calibrated on.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any, Iterable, Sequence

import numpy as np

from . import utils
from .calib.stats import StatsSet
from .calibration import calibrator
from .errors import CalibratorError, ConfigError, InputError
from .progress_display import Reporter
from .pipeline.convert import L5_SAMPLES, convert as convert_model
from .pipeline.export import export_quant_param
from .quant.import_stats import split_quant_param, stats_from_quant_param
from .quant.levels import check_quant_level, effective_quant_level, get_level
from .quant.qparam import save_quant_param
from .sim_registry import ModelRegistry
from .sim_workers import run_sharded

log = logging.getLogger(__name__)

#: sensitivity threshold for 8 -> 16-bit upgrades (L4, L5), read by every ``convert`` that is not given
#: ``sensitivity_threshold``: set ``calibrator_custom.SIM_calibrator.STH`` as the SDK's tools do for -sth
STH = 0.002
#: the fixed dialect written (the SDK's tools set 'Fixed_without_ipu_ctrl' for -p; there is one dialect here)
TARGET_TYPE = "Fixed"
#: keyword arguments of the SDK's ``convert`` that are accepted and have no effect here (none left)
_IGNORED_KEYWORDS: tuple[str, ...] = ()
#: the vendor's default number of worker processes
DEFAULT_NUM_PROCESS = 10
#: the only mixed-precision strategy there is
MIXED_PRECISION = ("sp",)

# per calibrator: (statistics, recorded inputs) of one shard of samples
_ShardResult = list[tuple[StatsSet, list]]


def _as_args(sample: Any) -> tuple:
    """forward's arguments for one generator item: a list/tuple of arrays, or one array (one input)."""
    return tuple(sample) if isinstance(sample, (list, tuple)) else (sample,)


def _check_count(kind: str, paths: Sequence | None, n: int) -> None:
    if paths is None:
        return
    if isinstance(paths, (str, os.PathLike)) or len(paths) != n:
        got = "a single path" if isinstance(paths, (str, os.PathLike)) else f"{len(paths)}"
        raise InputError(f"Num of {kind}s must equal Num of models: {kind} has {got}, there are {n} registered "
                         f"calibrator(s); give a list with one path per calibrator, in definition order")


class SIM_Calibrator(ModelRegistry):  # noqa: N801 - the vendor's public name
    """Subclass it, register calibrators in ``__init__``, implement ``forward``, call ``convert``.

    Registration follows the vendor: ``self.<name> = calibrator_custom.calibrator(model, ini)`` after
    ``super().__init__()`` registers a calibrator (conversion order = assignment order); reading an
    unknown attribute is a ``ValueError``. See :mod:`calibrator_custom.sim_registry` for the errors.
    With ``self.save_quant_info = True``, ``convert`` also writes ``quant_info_<name>.pkl`` in the
    current folder: the quant_param items of each fixed model (the vendor dumps its internal
    quantization list there; ours can be imported again with ``convert(quant_param=...)``).
    """

    _kind = "calibrators"
    _store = "_calibrators"
    _expected = "calibrator_custom.calibrator"

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "save_quant_info", False)

    def _accepts(self, value: Any) -> bool:
        return isinstance(value, calibrator)

    def register_calibrator(self, name: str, value: calibrator) -> None:
        """Register ``value`` under ``name`` (what ``self.<name> = value`` does)."""
        self._register(name, value)

    # ------------------------------------------------------------------ convert
    def convert(self, img_gen: Iterator | None = None, *, num_process: int = DEFAULT_NUM_PROCESS,
                quant_level: str = "L5", quant_param: list | None = None, mixed_precision: str = "sp",
                cmd_model: Sequence[str] | None = None, fix_model: Sequence[str] | None = None,
                sensitivity_threshold: float | None = None, **ignored: Any) -> list[str]:
        """Calibrate every registered model on ``img_gen`` through ``forward`` and write the fixed models.

        Args:
            img_gen: a generator (any Iterator) of samples; each sample is a list with one array
                per ``forward`` argument (a bare array is one argument). It is read to the end
                first. ``None`` (or no argument) with ``quant_param`` converts from the imported
                ranges alone (no calibration data).
            num_process: worker processes (vendor default 10), capped at ``os.cpu_count()`` and
                at the number of samples. Workers are forked: ``forward`` runs in them on
                contiguous shards of the samples; the statistics are merged exactly. L5's
                per-conv measurements run in as many workers. The fixed models are identical for
                every ``num_process``.
            quant_level: ``'L1'`` .. ``'L5'``. If every model's ``[CONV_CONFIG] input_format`` is
                ``ALL_INT16`` and the level is not L1, L2 is used; with ``quant_param``, L1.
            quant_param: vendor quant_param list (checked with ``utils.check_quant_param``); with
                several models each model takes the items naming its tensors. Items with ``data``
                replace constants **in the fixed model only**: unlike the vendor we never modify
                the float model file (the vendor rewrites it, keeps the original as
                ``Origin_<name>`` and then calibrates the rewritten model; here statistics come
                from the float model as given, and the items' own ranges take priority).
            mixed_precision: only ``'sp'`` (the vendor's default and the only strategy here); another
                value is used as ``'sp'`` with a warning (the SDK passes it to its closed quantizer).
            cmd_model: cmodel-float output paths, one per registered calibrator: each gets its float model
                with the calibrated ranges (``calibrator.convert_cmodel_float``'s file). ``None``: none
                written (the fixed models do not need them here).
            fix_model: output paths, one per registered calibrator in definition order. ``None``
                names them after the float models (``x_float.sim`` -> ``x_fixed.sim``,
                ``x.tflite`` -> ``x_fixed.sim``, next to them).
            sensitivity_threshold: L4/L5 threshold for upgrading a convolution to 16 bit: a
                convolution is upgraded when making it alone 16-bit lowers the noise of a model output by
                more than this fraction (L5 measures it, L4 estimates it), within a budget of 25 % of
                the conv multiply-accumulates. Default: the module's ``STH`` at call time (0.002).
            **ignored: other keyword arguments are accepted, as the SDK does, and logged as ignored.

        Returns:
            The written fixed model paths, one per calibrator (the SDK returns them only when
            ``fix_model`` is None and None otherwise; a list is returned in both cases here).

        Raises:
            ValueError: an unknown level or strategy, a malformed quant_param, a wrong number of
                ``fix_model``/``cmd_model`` paths, an input that is not a generator, no
                quant_param for an import-only conversion, no samples or no calibrators.
        """
        if isinstance(num_process, bool) or not isinstance(num_process, (int, np.integer)) or num_process < 1:
            raise InputError(f"num_process must be an integer >= 1, got {num_process!r}")
        cals = self._calibrator_list()
        check_quant_level(quant_level)
        utils.check_quant_param(quant_param)
        level = effective_quant_level(quant_level, [c.config for c in cals], quant_param)
        if mixed_precision not in MIXED_PRECISION:
            log.warning("mixed_precision %r is not implemented here; using 'sp' (the SDK passes it to its closed "
                        "quantizer)", mixed_precision)
        for key in sorted(ignored):
            log.warning("convert: keyword %s=%r has no effect here (the SDK ignores unknown keywords too)", key,
                        ignored[key])
        if sensitivity_threshold is None:
            sensitivity_threshold = float(STH)
        if TARGET_TYPE != "Fixed":
            log.warning("TARGET_TYPE %r: writing a 'Fixed' model (there is one fixed dialect here)", TARGET_TYPE)
        _check_count("cmd_model", cmd_model, len(cals))
        _check_count("fix_model", fix_model, len(cals))
        out_paths = self._out_paths(cals, fix_model)
        names = list(self._calibrators)
        if quant_param is not None:
            per_model = split_quant_param([c.model_obj for c in cals], quant_param,
                                          [c.model or n for c, n in zip(cals, names)])
        else:
            per_model = [None] * len(cals)
        if img_gen is None:
            if quant_param is None:
                raise ConfigError("quant_param cannot be None: convert() without a data generator imports the "
                                  "quantization from quant_param; pass quant_param=[...] or a generator of samples")
            stats = [stats_from_quant_param(c.model_obj, qp) for c, qp in zip(cals, per_model)]
            feeds: list[list] = [[] for _ in cals]
            samples = None
        else:
            if not isinstance(img_gen, Iterator):
                raise InputError("SIM_Calibrator need data generator for input")
            record = L5_SAMPLES if get_level(level).uses_calibration_inputs else 0
            samples = [_as_args(s) for s in img_gen]
            stats, feeds = self._calibrate(samples, num_process, record)
        for k, (name, cal, st, fd, qp, path) in enumerate(zip(names, cals, stats, feeds, per_model, out_paths)):
            log.info("%s: converting %s at %s -> %s", name, cal.model or "(in-memory model)", level, path)
            fixed = convert_model(cal.model_obj, cal.config, st, quant_level=level, quant_param=qp,
                                  sensitivity_threshold=sensitivity_threshold, calibration_feeds=fd or None,
                                  output_path=path, progress=Reporter.auto(prefix=f"{name}: "),
                                  num_process=int(num_process), vendor_float=cal.vendor_float(),
                                  statistics_of=None if samples is None else
                                  self._statistics_of(k, samples, num_process))
            if cmd_model is not None:
                ranges = {n: (float(t.min), float(t.max)) for n, t in st.tensors.items() if t.num_finite}
                ranges.update({q["name"]: (float(np.min(q["min"])), float(np.max(q["max"]))) for q in qp or ()})
                cal.write_cmodel_float(ranges, cmd_model[names.index(name)])
            if self.save_quant_info:
                save_quant_param(export_quant_param(fixed), f"quant_info_{name}.pkl")
                log.info("%s: quant info saved in quant_info_%s.pkl", name, name)
        return out_paths

    # ------------------------------------------------------------------ the SDK's staged API
    def forward_all(self, inputs: Iterable) -> list[dict]:
        """Run ``forward`` on each sample in this process; per sample, each calibrator's
        ``{'minmax': get_minmax(), 'intermediate': get_intermediate(), 'chn': get_chn()}`` of that sample
        alone (the SDK's first calibration pass). The calibrators' statistics are reset per sample."""
        cals = self._calibrator_list()
        out = []
        for sample in inputs:
            for c in cals:
                c.reset_statistics()
            self.forward(*_as_args(sample))
            out.append({name: {"minmax": c.get_minmax(), "intermediate": c.get_intermediate(), "chn": c.get_chn()}
                        for name, c in self._calibrators.items()})
        return out

    def forward_skip(self, inputs: Iterable) -> list:
        """``[forward(*sample) for sample in inputs]`` in this process (the calibrators keep gathering)."""
        return [self.forward(*_as_args(sample)) for sample in inputs]

    def convert_fixed(self, cmd_model: Sequence[str] | None = None, fix_model: Sequence[str] | None = None,
                      **ignored: Any) -> list[str]:
        """Write every calibrator's fixed model (L1). With ``cmd_model`` (one cmodel-float file per calibrator,
        as :meth:`convert` writes them) each fixed model is converted from its file's stored ranges, as the
        SDK converts cmodel-float to fixed; without, from what the calibrator gathered (``invoke``,
        ``set_minmax``, ``update``...), as ``calibrator.convert_fixed``. Returns the paths (default names next
        to the float models)."""
        cals = self._calibrator_list()
        _check_count("cmd_model", cmd_model, len(cals))
        _check_count("fix_model", fix_model, len(cals))
        for key in sorted(ignored):
            log.warning("convert_fixed: keyword %s has no effect here", key)
        paths = self._out_paths(cals, fix_model)
        if cmd_model is None:
            return [c.convert_fixed(saved_path=p) for c, p in zip(cals, paths)]
        for c, cm in zip(cals, cmd_model):
            if not os.path.isfile(cm):
                raise InputError(f"convert_fixed: cmodel-float model {cm!r} does not exist; write it with "
                                 "convert(..., cmd_model=[...]) or calibrator.convert_cmodel_float")
        return [calibrator(cm, c.input_config).convert_fixed(saved_path=p) for c, cm, p in zip(cals, cmd_model, paths)]

    def convert_optim_model(self, img_gen: Iterator, **kwargs: Any) -> list[dict]:
        """Run ``forward`` on every sample (the calibrators gather statistics) and return the
        ``get_op_details`` of every CONV_2D / DEPTHWISE_CONV_2D of every calibrator, in order: the
        ``conv8_info`` that :meth:`optimize` takes. No cmodel file is written (no cmodel stage here)."""
        if not isinstance(img_gen, Iterator):
            raise InputError("SIM_Calibrator need data generator for input")
        cals = self._calibrator_list()
        for key in sorted(set(kwargs) - {"num_process", "cmd_model"}):
            log.warning("convert_optim_model: keyword %s has no effect here", key)
        for c in cals:
            c.reset_statistics()
        self.forward_skip(img_gen)
        return [d for c in cals for d in c.get_op_details(["CONV_2D", "DEPTHWISE_CONV_2D"])]

    def optimize(self, inputs: Iterable, conv8_info: Sequence[dict], float_result: Any = None,
                 compression_rates: Sequence[float] = (0.5,), num_subsets: int = 10,
                 conv16_chn: bool = True) -> list[list[dict]]:
        """8/16-bit mixed precision: one quant_param list per compression rate.

        For rate ``r`` the convolutions of ``conv8_info`` stay 8-bit, least sensitive first, while their
        input + weight sizes stay within ``r`` of the total; the others get 16-bit inputs and weights.
        Sensitivity is the estimated output noise an 8-bit conv adds (the L4 estimate from the
        statistics gathered by :meth:`convert_optim_model`), so unlike the SDK nothing is re-run per conv
        and ``inputs`` / ``float_result`` / ``num_subsets`` are not used. Pass a list to
        ``convert(quant_param=...)``.
        """
        from .pipeline.sensitivity import analytic_gain
        from .quant.planner import PlanInputs, build_plan

        cals = self._calibrator_list()
        gains: dict[tuple[int, int], float] = {}
        for k, c in enumerate(cals):
            pi = PlanInputs.create(c.model_obj, c.statistics(), c.config)
            for op, gain in analytic_gain(pi, build_plan(pi, "L3")).items():
                gains[(k, op)] = gain
        owner = {}
        for d in conv8_info:  # which calibrator each conv belongs to: the one with that input tensor
            for k, c in enumerate(cals):
                if any(o["op_index"] == d["op_index"] and o["input_tensors"] == d["input_tensors"]
                       for o in c.get_op_details()):
                    owner[id(d)] = k
                    break
        size = {id(d): int(np.prod(d["input_shape"])) + int(np.prod(d["weights_shape"])) for d in conv8_info}
        order = sorted(conv8_info, key=lambda d: gains.get((owner.get(id(d), 0), d["op_index"]), 0.0))
        total = sum(size.values()) or 1
        results = []
        for rate in compression_rates:
            if not 0 <= float(rate) <= 1:
                raise ConfigError(f"optimize: compression rate {rate!r} must be between 0 and 1")
            kept, used = set(), 0
            for d in order:
                if used + size[id(d)] <= float(rate) * total:
                    kept.add(id(d))
                    used += size[id(d)]
            items: dict[str, dict] = {}  # one item per tensor: an input feeding several convs is
            for d in conv8_info:         # 16-bit when any of them is
                bit = 8 if id(d) in kept else 16
                x, w = d["input_tensors"][0], d["input_tensors"][1]
                wmin = d["weights_min"] if conv16_chn or bit == 8 else [min(d["weights_min"])]
                wmax = d["weights_max"] if conv16_chn or bit == 8 else [max(d["weights_max"])]
                for name, lo, hi in ((x, d["input_min"], d["input_max"]), (w, wmin, wmax)):
                    if name in items:
                        items[name]["bit"] = max(items[name]["bit"], bit)
                    else:
                        items[name] = {"name": name, "min": list(lo), "max": list(hi), "bit": bit}
            results.append([i for i in items.values() if i["min"] and i["max"]])
        return results

    def _calibrator_list(self) -> list[calibrator]:
        store = self._registry()
        if store is None:
            raise CalibratorError(f"{type(self).__name__}.__init__ must call super().__init__() before registering "
                                  "calibrators")
        if not store:
            raise InputError(f"{type(self).__name__} has no registered calibrator; assign self.<name> = "
                             "calibrator_custom.calibrator(model_path, input_config) in __init__")
        return list(store.values())

    def _out_paths(self, cals: list[calibrator], fix_model: Sequence[str] | None) -> list[str]:
        if fix_model is not None:
            paths = [os.fspath(p) for p in fix_model]
        else:
            missing = [n for n, c in zip(self._calibrators, cals) if not c.model]
            if missing:
                raise InputError(f"calibrator(s) {', '.join(missing)} were built from in-memory models: pass "
                                 "fix_model=[...] with one output path per calibrator")
            paths = [utils.output_model_path(c.model) for c in cals]
        for p in paths:
            parent = os.path.dirname(p)
            if parent and not os.path.isdir(parent):
                raise InputError(f"fixed model path {p!r}: folder {parent!r} does not exist; create it first")
        return paths

    # ------------------------------------------------------------------ calibration
    def _statistics_of(self, k: int, samples: list[tuple], num_process: int):
        """``statistics_of`` for ``convert`` of calibrator ``k``: the statistics of a rescaled copy of its model
        (the file at the path given), gathered by running ``forward`` on the samples again with that model in it."""
        def statistics_of(path: str) -> StatsSet:
            cal = self._calibrator_list()[k]
            with cal.running(path):
                return self._calibrate(samples, num_process, 0)[0][k]
        return statistics_of

    def _calibrate(self, samples: list[tuple], num_process: int, record: int) -> tuple[list[StatsSet], list[list]]:
        """Run forward on every sample (in workers); merged statistics and the first ``record`` inputs per model."""
        if not samples:
            raise InputError("the data generator yielded no samples; give at least one")
        n = max(1, min(int(num_process), os.cpu_count() or 1, len(samples)))
        log.info("calibrating %d model(s) on %d sample(s) in %d process(es)", len(self._calibrators), len(samples), n)

        def run_shard(start: int, stop: int, tick) -> _ShardResult:
            return self._run_samples(samples, start, stop, tick, record)

        with Reporter.auto().phase("SIM_Calibrator statistics (samples)", len(samples)) as bar:
            shards = run_sharded(run_shard, len(samples), n, bar.update, "SIM_Calibrator")
        stats, feeds = [], []
        for k, name in enumerate(self._calibrators):
            merged = shards[0][k][0]
            for shard in shards[1:]:
                merged = merged.merge(shard[k][0])
            if merged.num_samples == 0:
                log.warning("calibrator %r was never invoked by forward: it has no statistics", name)
            stats.append(merged)
            feeds.append([x for shard in shards for x in shard[k][1]][:record])
        return stats, feeds

    def _run_samples(self, samples: list[tuple], start: int, stop: int, tick, record: int) -> _ShardResult:
        cals = list(self._calibrators.values())
        for c in cals:
            c.reset_statistics()
            c.record_inputs(record)
        try:
            for k in range(start, stop):
                try:
                    self.forward(*samples[k])
                except Exception as e:
                    if hasattr(e, "add_note"):
                        e.add_note(f"(in {type(self).__name__}.forward on sample #{k} of the data generator)")
                    raise
                tick()
            return [(c.statistics(), c.recorded_inputs()) for c in cals]
        finally:
            for c in cals:
                c.record_inputs(0)
