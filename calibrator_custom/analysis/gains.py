"""What 16 bit would buy, per convolution: measured by re-planning, or estimated.

Re-planning: the fixed model's own quantization (``export_quant_param``) is imported into the
planner (``import_quant_param``), which rebuilds the same fixed model (``replan_exact``: the same
integers, ``same_numerics``; the recorded per-channel min/max come from the analysis inputs' statistics
and may differ). For each 8-bit conv-like op ``k`` a trial plan makes ``k`` alone 16-bit
(``bits_overrides``): its data input becomes INT16 at the range it had, its weights get a fresh L2
per-channel 16-bit clip instead of the imported 8-bit one, and every other range stays as it was.

* ``measured``: each trial model runs end to end on the gain samples; ``gain_db`` is the rise of the
  worst-output SQNR against the float model (L5's measure, here in the fixed model: ``pipeline.measure._e2e_nsr``; for a
  model ending in a float detection post-process, the post-process's inputs stand for its outputs) and
  ``noise_drop`` the share of that output noise removed. :class:`TrialRunner` runs a trial only from
  its first op that differs from the base model. Cost per 8-bit conv: one plan, one model build and
  prepare, and the rest of the graph from that conv on each gain sample
  (face_detection_short_range: 37 convs, 4 samples, about 25 s on this 2-core machine).
* ``estimated``: ``pipeline.sensitivity.analytic_gain`` from the statistics of the analysis inputs: the
  noise-to-signal ratio the 8-bit mode adds at each conv's output (what L4 recommends on). No run.

The suggestion (``suggest``) groups convs by their first input, the name ``[CONV_CONFIG]
tensor_arrays`` takes (it makes every conv reading that tensor 16-bit). Measured: a group's single
gain is the sum of its convs' ``base - trial`` noise drops; the (at most 12) groups removing at
least 1% of the output noise are tried largest first, each added to the line only if the whole line
then runs better by 1% of the output noise (errors of different layers partly cancel, so single
gains do not add up), until the line removes 80% of what the groups remove one by one (or of the
whole noise). ``predicted_db`` is the measured worst-output SQNR with the line; the search costs at
most 12 more trial runs. Estimated: L4's rule, every conv whose estimated noise exceeds 0.002
(``-sth``); not verified by a run.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..calib import StatsSet
from ..config import InputConfig
from ..fixed.feeds import raw_from_normalized
from ..fixed.registry import get_fixed_op
from ..fixed.writer import build_fixed_model
from ..interpreter import Interpreter
from ..model.graph import Model
from ..pipeline.export import export_quant_param
from ..pipeline.measure import measured_tensors
from ..pipeline.sensitivity import analytic_gain, conv_macs
from ..plan import PlanInputs, QuantPlan
from ..quant.planner import build_plan
from ..quant.qparam import QuantParamOverrides, import_quant_param
from .mapping import dequantize
from .report import ConvInfo, Suggestion

log = logging.getLogger(__name__)

#: suggestion: cover this share of the noise 16-bit convolutions can remove
COVER_SHARE = 0.8
#: suggestion: ignore groups removing less than this share of the output noise
MIN_GROUP_SHARE = 0.01
#: suggestion: at most this many groups are tried together
MAX_CANDIDATES = 12
#: estimated mode: L4's sensitivity threshold
EST_THRESHOLD = 0.002
PLAN_LEVEL = "L2"


@dataclass
class GainResult:
    method: str
    samples: int = 0
    convs: dict[int, ConvInfo] = field(default_factory=dict)  # float op index -> info
    outputs: dict[int, str] = field(default_factory=dict)  # float op index -> output tensor name
    suggestion: Suggestion | None = None
    replan_exact: bool | None = None
    notes: list[str] = field(default_factory=list)


def _db(nsr: float) -> float:
    if nsr <= 0:
        return math.inf
    return -10.0 * math.log10(nsr)


class _Replanner:
    """Plans of the fixed model with chosen conv-like ops at 16 bit."""

    def __init__(self, pi: PlanInputs, ov: QuantParamOverrides):
        self.pi, self.ov = pi, ov
        self.by_op = {c.op_index: c for c in pi.convs}

    def plan(self, sixteen: Sequence[int] = ()) -> QuantPlan:
        weights = dict(self.ov.weights)
        bits = dict(self.ov.bits)
        for k in sixteen:
            weights.pop(self.by_op[k].weights, None)  # a fresh 16-bit clip, not the 8-bit one
            bits[k] = 16
        return build_plan(self.pi, PLAN_LEVEL, range_overrides=self.ov.ranges, u8_overrides=self.ov.u8_ranges,
                          weight_overrides=weights, bits_overrides=bits, const_data=self.ov.const_data)

    def model(self, sixteen: Sequence[int] = ()) -> Model:
        return build_fixed_model(self.pi, self.plan(sixteen))


def _signature(model: Model, t, data) -> tuple:
    q = t.quantization
    quant = None if q is None else (tuple(q.scale or ()), tuple(q.zero_point or ()), q.quantized_dimension)
    return (t.dtype, tuple(t.shape), quant, None if data is None else np.asarray(data).tobytes())


class TrialRunner:
    """The worst-output noise-to-signal ratio of fixed models that differ a little from a base model.

    The base model runs once per sample with every tensor kept. A trial model (same writer, some convs
    re-planned) reuses those values for every op before its first op that differs (an op whose
    inputs/outputs, or their types, quantization or constant data, are not the base's), and runs
    only the rest. ``nsr`` equals ``pipeline.measure._e2e_nsr`` on the whole trial model: the worst
    over L5's measured tensors (``pipeline.measure.measured_tensors``: the model outputs, with a float
    detection post-process's outputs replaced by its inputs) of ``sum((fixed - float)**2) /
    sum(float**2)``, pooled over the samples.
    """

    def __init__(self, pi: PlanInputs, base: Model, feeds: Sequence[Sequence[np.ndarray]]):
        self.pi = pi
        g = pi.graph
        measured = measured_tensors(pi)
        it = Interpreter(base, get_op=get_fixed_op)
        fg = base.main
        fixed_out = {i: fg.tensors[j].name for i, j in zip(g.outputs, fg.outputs)}
        self.targets = [fixed_out.get(i, g.tensors[i].name) for i in measured]
        self.measured_on = ("the worst model output" if list(measured) == list(g.outputs) else
                            "the worst input of the float detection post-process (its outputs jump)")
        self.feeds = [list(f) for f in feeds]
        self.refs = []
        for f in self.feeds:
            res = pi.interp.run(f, keep=measured)
            self.refs.append([np.asarray(res[i], np.float64) for i in measured])
        self.raw = self._raw(base)
        self.sig = {t.name: _signature(base, t, it.constants.get(j)) for j, t in enumerate(fg.tensors)}
        self.steps = {self._step_key(it, s) for s in it.steps}
        self.values = []
        for raw in self.raw:
            vals = it.run(raw, keep="all")
            self.values.append({fg.tensors[j].name: v for j, v in vals.items() if j not in it.constants})
        self.base_nsr = self._nsr(it, 0)

    def _raw(self, model: Model) -> list[list[np.ndarray]]:
        g, fg = self.pi.graph, model.main
        specs = {s.name: s for s in self.pi.config.inputs}
        return [[raw_from_normalized(np.asarray(x), specs.get(g.tensors[i].name), fg.tensors[j])
                 for x, i, j in zip(f, g.inputs, fg.inputs)] for f in self.feeds]

    @staticmethod
    def _step_key(it: Interpreter, s) -> tuple:
        t = it.graph.tensors
        return (s.op_name, tuple(t[j].name if j >= 0 else "" for j in s.inputs), tuple(t[j].name for j in s.outputs))

    def first_change(self, it: Interpreter) -> int:
        fg = it.graph
        changed = {t.name for j, t in enumerate(fg.tensors)
                   if self.sig.get(t.name) != _signature(it.model, t, it.constants.get(j))}
        if any(fg.tensors[j].name in changed for j in fg.inputs):
            return -1  # the raw inputs themselves differ
        for n, s in enumerate(it.steps):
            names = {fg.tensors[j].name for j in (*s.inputs, *s.outputs) if j >= 0}
            if self._step_key(it, s) not in self.steps or names & changed:
                return n
        return len(it.steps)

    def nsr(self, model: Model) -> float:
        it = Interpreter(model, get_op=get_fixed_op)
        return self._nsr(it, self.first_change(it))

    def _nsr(self, it: Interpreter, start: int) -> float:
        """Run ``it`` from step ``start`` on the base values (0: from the raw inputs; -1: from raw inputs
        made for ``it``'s own input tensors)."""
        fg = it.graph
        index = {t.name: j for j, t in enumerate(fg.tensors)}
        targets = [index[n] for n in self.targets]
        num = np.zeros(len(targets))
        den = np.zeros(len(targets))
        raws = self._raw(it.model) if start < 0 else self.raw
        for raw, base_vals, refs in zip(raws, self.values, self.refs):
            values = dict(it.constants)
            if start <= 0:
                values.update(zip(fg.inputs, raw))
            else:
                values.update((index[n], v) for n, v in base_vals.items() if n in index)
            for s in it.steps[max(start, 0):]:
                args = [None if j < 0 else values[j] for j in s.inputs]
                for j, v in zip(s.outputs, it._call(s.op_index, s.op_name, s.kernel, args, s.params, s.out_dtypes)):
                    values[j] = v
            for k, (j, r) in enumerate(zip(targets, refs)):
                y = dequantize(fg.tensors[j], values[j])
                num[k] += float(np.sum((y - r) ** 2))
                den[k] += float(np.sum(r * r))
        return float(np.max(num / np.maximum(den, 1e-30))) if len(num) else 0.0


def same_numerics(a: Model, b: Model) -> bool:
    """True when two fixed models compute the same integers: same tensors (names, types, shapes, scales,
    zero points, constant data) and ops; the recorded per-channel min/max may differ."""
    ia, ib = Interpreter(a, get_op=get_fixed_op), Interpreter(b, get_op=get_fixed_op)
    sa = [_signature(a, t, ia.constants.get(j)) + (t.name,) for j, t in enumerate(a.main.tensors)]
    sb = [_signature(b, t, ib.constants.get(j)) + (t.name,) for j, t in enumerate(b.main.tensors)]
    return sa == sb and [TrialRunner._step_key(ia, s) for s in ia.steps] == [TrialRunner._step_key(ib, s)
                                                                              for s in ib.steps]


def conv_gains(float_model: Model, fixed_model: Model, config: InputConfig, stats: StatsSet,
               feeds: Sequence[Sequence[np.ndarray]], method: str = "measured",
               progress: Callable[[int, int], None] | None = None) -> GainResult:
    """Bits, MACs and 16-bit gains of every conv-like op (see the module docstring)."""
    pi = PlanInputs.create(float_model, stats, config)
    g = pi.graph
    res = GainResult(method)
    macs = conv_macs(pi)
    res.outputs = {k: g.tensors[s.outputs[0]].name for k in macs if (s := pi.step_of(k)) is not None}
    ov = import_quant_param(pi, export_quant_param(fixed_model))
    rp = _Replanner(pi, ov)
    base_plan = rp.plan()
    base_model = build_fixed_model(pi, base_plan)
    res.replan_exact = same_numerics(base_model, fixed_model)
    if not res.replan_exact:
        res.notes.append("re-planning from the fixed model's quant_param does not reproduce its arithmetic (was it "
                         "written by another calibrator_custom version?); gains are relative to the re-planned model")
    info = {}
    for c in pi.convs:
        if c.op_index in macs:
            info[c.op_index] = ConvInfo(c.op_name, g.tensors[c.data].name, base_plan.conv_bits[c.op_index],
                                        macs[c.op_index])
    eight = [k for k, ci in info.items() if ci.bits == 8]
    res.convs = info
    if method == "estimated":
        est = analytic_gain(pi, base_plan)
        for k in eight:
            if k in est:
                info[k] = _with(info[k], est_nsr=float(est[k]))
        res.suggestion = _suggest_estimated(info, res.outputs, macs)
        return res
    if method != "measured" or not feeds:
        return res
    res.samples = len(feeds)
    runner = TrialRunner(pi, base_model, feeds)
    base = runner.base_nsr
    drops = {}
    for n, k in enumerate(eight, 1):
        nsr = runner.nsr(rp.model([k]))
        drops[k] = base - nsr
        info[k] = _with(info[k], gain_db=_db(nsr) - _db(base) if base > 0 else 0.0,
                        noise_drop=(base - nsr) / base if base > 0 else 0.0)
        if progress is not None:
            progress(n, len(eight))
    res.suggestion = _suggest_measured(rp, runner, info, res.outputs, macs, drops)
    return res


def _with(ci: ConvInfo, **kw) -> ConvInfo:
    d = ci.to_dict()
    d.update(kw)
    return ConvInfo(**d)


def _mac_share(info: dict[int, ConvInfo], macs: dict[int, int], extra: set[int]) -> float:
    total = sum(macs.values()) or 1
    return sum(m for k, m in macs.items() if info[k].bits == 16 or k in extra) / total


def _groups(info: dict[int, ConvInfo], ops: Sequence[int]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for k in ops:
        out.setdefault(info[k].input_name, []).append(k)
    return out


def _suggest_measured(rp: _Replanner, runner: TrialRunner, info, outputs, macs,
                      drops: dict[int, float]) -> Suggestion | None:
    base = runner.base_nsr
    if base <= 0 or not drops:
        return None
    removed: dict[str, float] = {}
    for k, d in drops.items():
        removed[info[k].input_name] = removed.get(info[k].input_name, 0.0) + max(d, 0.0)
    candidates = sorted((n for n, v in removed.items() if v >= MIN_GROUP_SHARE * base),
                        key=lambda n: (-removed[n], n))[:MAX_CANDIDATES]
    if not candidates:
        return None
    goal = COVER_SHARE * min(base, sum(removed[n] for n in candidates))
    chosen: list[str] = []
    cur = base

    def ops_of(names) -> list[int]:
        return sorted(k for k, ci in info.items() if ci.bits == 8 and ci.input_name in names)
    for name in candidates:
        nsr = runner.nsr(rp.model(ops_of([*chosen, name])))
        if nsr <= cur - MIN_GROUP_SHARE * base:  # kept only if it helps together with the others
            chosen.append(name)
            cur = nsr
        if base - cur >= goal:
            break
    if not chosen:
        return None
    ops = ops_of(chosen)
    return Suggestion(tuple(chosen), tuple(outputs[k] for k in ops), _mac_share(info, macs, set(ops)),
                      _db(base), _db(cur),
                      rule=f"measured: conv inputs added largest single gain first, each kept only if the "
                      f"combination runs better, until {COVER_SHARE:.0%} of the noise the convs remove one by one "
                      "is removed", measured_on=runner.measured_on)


def _suggest_estimated(info, outputs, macs) -> Suggestion | None:
    ops = sorted((k for k, ci in info.items() if ci.est_nsr is not None and ci.est_nsr > EST_THRESHOLD),
                 key=lambda k: -info[k].est_nsr)
    if not ops:
        return None
    names = list(dict.fromkeys(info[k].input_name for k in ops))
    upgraded = sorted(k for k, ci in info.items() if ci.bits == 8 and ci.input_name in names)
    return Suggestion(tuple(names), tuple(outputs[k] for k in upgraded), _mac_share(info, macs, set(upgraded)),
                      rule=f"estimated: L4's rule, every conv whose estimated 8-bit noise exceeds {EST_THRESHOLD}")
