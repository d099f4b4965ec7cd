"""Float model + statistics -> fixed model, at quant levels L1..L5, with imported quant_param.

    >>> model = convert(float_path, "input_config.ini", stats, quant_level="L5",
    ...                 calibration_feeds=feeds, output_path="net_fixed.sim")

L1-L3 are one plan (planner.build_plan). L4 adds 16-bit recommendations from an analytic estimate
of each convolution's 8-bit noise. L5 measures instead, in float on the float model's cached
activations (``_FloatSim``; no fixed model is run): each 8-bit conv's arithmetic is simulated in
float (its input rounded to its UINT8 grid, its weights to their integers); it chooses the UINT8
range of each conv input between the fitted and the min/max one by the conv's output error;
measures each conv's noise at every measured output with only that conv at 8 bit (the float model
run downstream of it); picks the 16-bit convs by a knapsack on the noise removed per
multiply-accumulate within 25% of all conv MACs, among the convs whose sensitivity (the relative
drop of the worst-output noise when that conv alone is 16-bit, noise powers adding) exceeds the
threshold (``quant.l5_search``); finally corrects biases for the mean shift of weight quantization
(measured input means), kept only if the float model with every remaining 8-bit conv simulated at
once agrees better with the float outputs on other calibration samples.

The fixed-model measurements below (``_isolated``: each conv alone; ``_e2e_nsr``: the worst-output
noise end to end, re-running only what a trial model changes with ``_BaseRun`` and ``_PrepareMemo``)
are what the analysis tools (``analysis.gains``) are checked against. Every phase reports its
progress to a :class:`~calibrator_custom.progress_display.Reporter`.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .. import blas
from ..calib.stats import StatsSet
from ..config import InputConfig, load_input_config
from ..errors import ConfigError
from ..interpreter import Interpreter
from ..model import sgs_lower
from ..model.graph import Model, load_model
from ..progress_display import Reporter, as_reporter
from .planner import FLOAT_CONSTANT_OPS, LEVELS, PlanInputs, QuantPlan, build_plan, weight_axes
from .qparam import QuantParamOverrides, import_quant_param
from .ranges import minmax_range

log = logging.getLogger(__name__)

MAX_16BIT_MAC_SHARE = 0.25
#: calibration samples used for L5 measurements (the first ones; all but the check ones for the bias
#: correction's input means)
L5_SAMPLES = 8
#: of which the choice of conv input ranges uses the first
L5_RANGE_SAMPLES = 3
#: and the per-conv error measurements (float runs downstream of each conv) at most the first
L5_NOISE_SAMPLES = 3
#: ... and no more than the float model's passes (in conv MACs: each conv's run downstream counts
#: its share of the model's MACs) this allows: the deep models measure on fewer samples
L5_NOISE_PASSES = 48
#: and the check of the bias correction (float passes with every 8-bit conv simulated) the next ones
L5_CHECK_SAMPLES = 3


def _ticking(items: Iterable, tick: Callable[[], None] | None) -> Iterator:
    """``items``, calling ``tick()`` after the loop body of each one (a ``continue`` included)."""
    for item in items:
        yield item
        if tick is not None:
            tick()


def conv_macs(pi: PlanInputs) -> dict[int, int]:
    """Multiply-accumulates of each conv-like op (output elements x reduction length)."""
    g = pi.graph
    out = {}
    for c in pi.convs:
        step = pi.step_of(c.op_index)
        if step is None:
            continue
        y = g.tensors[step.outputs[0]]
        w = pi.interp.constants[c.weights]
        n_out = int(np.prod(y.shape))
        if c.op_name == "DEPTHWISE_CONV_2D":
            k = int(w.shape[1] * w.shape[2])
        elif c.op_name in ("CONV_2D", "TRANSPOSE_CONV"):
            k = int(np.prod(w.shape[1:]))
            if c.op_name == "TRANSPOSE_CONV":
                n_out = int(np.prod(g.tensors[c.data].shape)) * int(w.shape[0])
                k = int(w.shape[1] * w.shape[2])
        else:
            axis, in_axis = weight_axes(pi.model, c, w.shape)
            k = int(w.shape[in_axis]) if in_axis is not None else 1
        out[c.op_index] = n_out * k
    return out


def _pick_upgrades(gain: Mapping[int, float], macs: Mapping[int, int], threshold: float,
                   already: frozenset[int] = frozenset()) -> frozenset[int]:
    total = sum(macs.values()) or 1
    budget = MAX_16BIT_MAC_SHARE * total - sum(macs.get(k, 0) for k in already)
    chosen = set(already)
    for k in sorted((k for k, v in gain.items() if v > threshold and k not in already),
                    key=lambda k: (macs.get(k, 0), k)):
        if macs.get(k, 0) <= budget:
            chosen.add(k)
            budget -= macs.get(k, 0)
    return frozenset(chosen)


def _hist_power(ts) -> float:
    h = ts.histogram
    if h.is_empty:
        return 0.0
    c = h.centers()
    n = h.counts.astype(np.float64)
    return float(np.sum(n * c * c) / max(1.0, n.sum()))


def analytic_gain(pi: PlanInputs, plan: QuantPlan, tick: Callable[[], None] | None = None) -> dict[int, float]:
    """L4: estimated output noise-to-signal ratio an 8-bit conv adds over 16 bit, from the statistics
    (``tick()`` after each conv)."""
    g = pi.graph
    gains = {}
    for c in _ticking(pi.convs, tick):
        step = pi.step_of(c.op_index)
        if step is None or plan.conv_bits.get(c.op_index) != 8:
            continue
        y = pi.stats.tensors.get(g.tensors[step.outputs[0]].name)
        x = pi.stats.tensors.get(g.tensors[c.data].name)
        if y is None or x is None:
            continue
        py = _hist_power(y)
        if py <= 0:
            continue
        dq = plan.u8_views.get(c.data) or plan.tensors.get(c.data)
        wq = plan.constants[c.weights]
        w = np.asarray(pi.interp.constants[c.weights], np.float64)
        axis, _ = weight_axes(pi.model, c, w.shape)
        ws = np.asarray(wq.quant.scale).reshape([-1 if a == axis else 1 for a in range(w.ndim)])
        dw = w - wq.data.astype(np.float64) * ws
        n_ch = w.shape[axis]
        step_x = float(np.sqrt(np.mean(np.square(dq.scale))))  # per-channel data: the RMS step
        sum_w2 = float(np.sum(w * w)) / n_ch
        sum_dw2 = float(np.sum(dw * dw)) / n_ch
        px = _hist_power(x)
        noise8 = step_x * step_x / 12 * sum_w2 + px * sum_dw2
        gains[c.op_index] = noise8 / py
    return gains


@dataclass
class _Measure:
    """Isolated conv measurements on calibration samples: float inputs/outputs of every conv."""

    pi: PlanInputs
    samples: list[dict[int, np.ndarray]]  # per sample: float tensor index -> value (conv data/outputs)
    outputs: list[list[np.ndarray]]  # per sample: the float model's outputs

    @classmethod
    def collect(cls, pi: PlanInputs, feeds: Sequence[Sequence[np.ndarray]],
                tick: Callable[[], None] | None = None) -> "_Measure":
        wanted = set()
        for c in pi.convs:
            step = pi.step_of(c.op_index)
            if step is not None:
                wanted.update((c.data, step.outputs[0]))
        measured = measured_tensors(pi)
        wanted.update(measured)
        samples, outputs = [], []
        for f in feeds:
            res = pi.interp.run(list(f), keep=wanted)
            samples.append({i: res[i] for i in wanted if i in res})
            outputs.append([res[i] for i in measured])
            if tick is not None:
                tick()
        return cls(pi, samples, outputs)


def measured_tensors(pi: PlanInputs) -> list[int]:
    """The tensors whose end-to-end error L5 measures: the model outputs, except that the outputs of a
    float post-process (``FLOAT_CONSTANT_OPS``: detection NMS, whose outputs jump when a detection
    appears or disappears) are replaced by that op's runtime inputs (boxes, scores...)."""
    g = pi.graph
    producer = {o: s for s in pi.interp.steps for o in s.outputs}
    out: list[int] = []
    for i in g.outputs:
        s = producer.get(i)
        if s is not None and s.op_name in FLOAT_CONSTANT_OPS:
            cands = [j for j in s.inputs if j >= 0 and j not in pi.interp.constants]
        else:
            cands = [i]
        out += [j for j in cands if j not in out]
    return out


def _isolated(pi: PlanInputs, fixed: Model, meas: _Measure, conv_ops: Iterable[int],
              tick: Callable[[], None] | None = None, get_op=None) -> tuple[dict[int, float], dict[int, np.ndarray]]:
    """Each conv run alone in ``fixed`` on the float model's own inputs (quantized to its data input);
    ``tick()`` after each conv.

    Returns its output noise-to-signal ratio and the per-output-channel mean of (fixed - float) over
    the positions where neither the fused activation nor saturation clamps (for bias correction).
    """
    from ..fixed.feeds import channel_params
    from ..fixed.registry import get_fixed_op

    it = Interpreter(fixed, get_op=get_op or get_fixed_op)
    fg = fixed.main
    steps = {fg.tensors[s.outputs[0]].name: s for s in it.steps}
    nsr, mean_err = {}, {}
    g = pi.graph
    for k in _ticking(conv_ops, tick):
        c = next(c for c in pi.convs if c.op_index == k)
        fstep = pi.step_of(k)
        yname = g.tensors[fstep.outputs[0]].name
        s = steps.get(f"{yname}_int16") or steps.get(yname)  # a dequantized output is the Fix2Float's
        if s is None or fg.tensors[s.outputs[0]].quantization is None:
            continue
        di = s.inputs[{"TRANSPOSE_CONV": 2}.get(c.op_name, 0)]
        dt, yt = fg.tensors[di], fg.tensors[s.outputs[0]]
        ds, dz = channel_params(dt, len(dt.shape))
        ys, yz = channel_params(yt, len(yt.shape))
        info, oinfo = np.iinfo(dt.np_dtype), np.iinfo(yt.np_dtype)
        lo = np.maximum((oinfo.min - yz) * ys, _act_lo(pi, c))
        hi = (oinfo.max - yz) * ys
        num = den = 0.0
        esum = ecount = 0
        for smp in meas.samples:
            x = smp[c.data]
            y = smp[fstep.outputs[0]].astype(np.float64)
            xq = np.clip(np.floor(x / ds + 0.5) + dz, info.min, info.max).astype(dt.np_dtype)
            args = [xq if j == di else (None if j < 0 else it.constants[j]) for j in s.inputs]
            yq = s.kernel(*args, opt=s.params)
            yq = yq[0] if isinstance(yq, (list, tuple)) else yq
            got = (yq.astype(np.float64) - yz) * ys
            err = got - y
            num += float(np.sum(err * err))
            den += float(np.sum(y * y))
            ok = (y > lo + 1e-9) & (y < hi) & (got > lo + 1e-9) & (got < hi)
            ch = y.shape[-1]
            esum = esum + np.where(ok, err, 0.0).reshape(-1, ch).sum(axis=0)
            ecount = ecount + ok.reshape(-1, ch).sum(axis=0)
        nsr[k] = num / den if den > 0 else 0.0
        mean_err[k] = np.where(np.asarray(ecount) > 0, esum / np.maximum(ecount, 1), 0.0)
    return nsr, mean_err


def convert(float_model: str | os.PathLike | Model, input_config: str | os.PathLike | InputConfig,
            stats: StatsSet, *, quant_level: str = "L5", quant_param: list | None = None,
            sensitivity_threshold: float = 0.002,
            calibration_feeds: Sequence[Sequence[np.ndarray]] | None = None,
            output_path: str | os.PathLike | None = None,
            progress: Reporter | Callable[[str], None] | None = None) -> Model:
    """The fixed model of ``float_model`` (written atomically to ``output_path`` when given).

    ``progress``: where each phase (planning, each L4/L5 measurement loop, writing) reports its count,
    elapsed time and ETA, and where the messages go: a :class:`~calibrator_custom.progress_display.Reporter`
    (``Reporter.auto()`` draws a bar on a terminal or a display in Jupyter), or a ``message(text)``
    callable for the messages alone; by default INFO log lines (in a Jupyter kernel: live displays of
    the phases), and INFO log lines for the phases with a callable.
    """
    from ..fixed.writer import build_fixed_model

    model = sgs_lower.runnable(float_model if isinstance(float_model, Model) else load_model(float_model))
    config = input_config if isinstance(input_config, InputConfig) else load_input_config(input_config, model)
    if quant_level not in LEVELS:
        raise ConfigError(f"unknown quant_level {quant_level!r}; choose one of {', '.join(LEVELS)}")
    rep = as_reporter(progress)
    pi = PlanInputs.create(model, stats, config)
    ov = import_quant_param(pi, quant_param) if quant_param else QuantParamOverrides()
    kw = dict(range_overrides=ov.ranges, u8_overrides=ov.u8_ranges, weight_overrides=ov.weights,
              bits_overrides=ov.bits, const_data=ov.const_data)
    with rep.phase(f"{quant_level} plan (tensors)", len(pi.runtime_tensors())) as phase:
        plan = build_plan(pi, quant_level, **kw, tick=phase.update)
    if quant_level == "L5" and calibration_feeds:
        plan = _refine_l5(pi, plan, calibration_feeds, sensitivity_threshold, kw, rep)
    elif quant_level in ("L4", "L5"):
        if quant_level == "L5":
            log.warning("L5 needs calibration inputs to measure; falling back to the L4 estimates")
        with rep.phase(f"{quant_level} conv sensitivity estimates", len(pi.convs)) as phase:
            gains = analytic_gain(pi, plan, phase.update)
        rec = _pick_upgrades(gains, conv_macs(pi), sensitivity_threshold)
        rep.message(f"{quant_level}: {len(rec)} convolution(s) upgraded to 16 bit")
        plan = build_plan(pi, quant_level, rec, **kw)
    with rep.phase("writing the fixed model", 1 if output_path is None else 2) as phase:
        fixed = build_fixed_model(pi, plan)
        phase.update()
        if output_path is not None:
            fixed.save(output_path)
            phase.update()
    return fixed


def _refine_l5(pi: PlanInputs, plan: QuantPlan, feeds, threshold: float, kw: dict, rep: Reporter) -> QuantPlan:
    """The L5 measurements, all in float on cached float activations (``_FloatSim``); each loop is a
    phase of ``rep``. One plan is built at the end: no fixed model is built or run here.

    1. float activations of the first ``L5_SAMPLES`` samples (every tensor kept);
    2. each 8-bit conv's UINT8 input range, fitted or min/max, by the conv's own output error with
       its 8-bit arithmetic simulated in float (quantized input and weights);
    3. each 8-bit conv's noise at every measured output with only that conv at 8 bit: its simulated
       output replaces the float one and the float model runs downstream of it (the upstream results
       are the cached ones);
    4. the 16-bit set: among the convs whose sensitivity (``l5_search.sensitivity``: the relative drop
       of the worst-output noise when that conv alone is 16-bit, the convs' noise powers adding)
       exceeds ``threshold``, the one a knapsack (and a greedy, the better kept) on the noise removed
       per MAC finds within 25% of the conv MACs (``l5_search.choose_upgrades``);
    5. bias correction for the mean shift of weight quantization (input means measured on the samples
       other than the check ones), kept only if the float model with every remaining 8-bit conv
       simulated at once (their noise accumulating) agrees better with the float outputs on the check
       samples.
    """
    from . import l5_search
    from .planner import activation_quant

    say = rep.message
    feeds = list(feeds)[:L5_SAMPLES]
    g = pi.graph
    eight = [c for c in pi.convs if plan.conv_bits.get(c.op_index) == 8 and pi.step_of(c.op_index) is not None]
    if not eight:
        say("L5: no 8-bit convolution to measure")
        return plan
    say(f"L5: measuring {len(eight)} 8-bit convolutions on {len(feeds)} samples")
    with rep.phase("L5 float activations (samples)", len(feeds)) as phase:
        sim = _FloatSim.collect(pi, plan, feeds, phase.update)
    # 2. UINT8 input ranges: the plan's (fitted) or the statistics' min/max, per conv by its output error
    u8 = dict(kw.get("u8_overrides") or {})
    ranges = dict(kw.get("range_overrides") or {})
    dquant = {}  # conv op -> the UINT8 quantization of its data input it will have
    chosen_mm = {}  # data tensor -> its min/max quantization, where that won (the overrides are per tensor)
    with rep.phase("L5 conv input ranges (convs)", len(eight)) as phase:
        for c in _ticking(eight, phase.update):
            dq = plan.u8_views.get(c.data) or plan.tensors[c.data]
            dquant[c.op_index] = dq
            ts = pi.stats.tensors.get(g.tensors[c.data].name)
            if ts is None or c.data in ranges or c.data in u8 or dq.qtype != "UINT8" or c.data in g.inputs:
                continue
            axis = len(g.tensors[c.data].shape) - 1 if len(dq.scale) > 1 else None
            alt = activation_quant(minmax_range(ts.min, ts.max), "UINT8", ts.channel_min, ts.channel_max, axis)
            if alt == dq:
                continue
            e_fit = sum(sim.conv_error(c, n, dq) for n in range(sim.n_range))
            e_mm = sum(sim.conv_error(c, n, alt) for n in range(sim.n_range))
            if e_mm < e_fit:
                (u8 if c.data in plan.u8_views else ranges)[c.data] = minmax_range(ts.min, ts.max)
                chosen_mm[c.data] = alt
    for c in eight:  # a tensor read by several 8-bit convs: the first reader's choice holds for all
        dquant[c.op_index] = chosen_mm.get(c.data, dquant[c.op_index])
    kw = {**kw, "u8_overrides": u8, "range_overrides": ranges}
    # 3. each 8-bit conv's noise power at the measured outputs, the rest of the model exact (float)
    macs = conv_macs(pi)
    sim.n_noise = _noise_samples(pi, eight, macs, sim.n_noise)
    signal = sim.signal()
    power = np.zeros((len(eight), len(signal)))
    with rep.phase("L5 conv errors at the outputs (convs)", len(eight)) as phase:
        for r, c in enumerate(_ticking(eight, phase.update)):
            for n in range(sim.n_noise):
                y8 = sim.conv_8bit(c, n, dquant[c.op_index])
                power[r] += sim.output_error(n, sim.downstream(n, {pi.step_of(c.op_index).outputs[0]: y8}))
    # 4. the 16-bit set under the MAC budget: knapsack / greedy on the noise removed, the convs' noise
    #    powers adding at each output (the cross terms of the error vectors, measured on so few
    #    samples, pick choices that do worse on other images); sensitivity above -sth
    model = l5_search.independent(power)  # per output: the convs' noise energies (diagonal)
    cost = np.array([macs.get(c.op_index, 0) for c in eight], np.float64)
    forced = [k for k, b in plan.conv_bits.items() if b == 16]
    budget = MAX_16BIT_MAC_SHARE * (sum(macs.values()) or 1) - sum(macs.get(k, 0) for k in forced)
    sens = l5_search.sensitivity(model, signal)
    pick = l5_search.choose_upgrades(model, signal, cost, budget, eligible=sens > threshold)
    rec = frozenset(eight[r].op_index for r in pick)
    left = np.ones(len(eight), bool)
    left[list(pick)] = False
    worst = [_db(float(l5_search.predicted_nsr(model, signal, x).max())) for x in (np.ones(len(eight), bool), left)]
    say(f"L5: {len(rec)} convolution(s) upgraded to 16 bit ({cost[list(pick)].sum() / max(1, sum(macs.values())):.1%} "
        f"of the conv MACs; predicted worst-output SQNR on calibration data {worst[0]:.2f} -> {worst[1]:.2f} dB)")
    # 5. bias correction (input means from the samples other than the check ones), kept if the float
    #    model with every remaining 8-bit conv simulated at once agrees better on the check samples
    still8 = [c for c in eight if c.op_index not in rec]
    means_from = _Samples([v for n, v in enumerate(sim.values) if n not in sim.check] or sim.values)
    deltas = {b: d for b, d in _bias_corrections(pi, plan, means_from).items()
              if any(c.bias == b for c in still8)}
    with rep.phase("L5 bias correction (float passes)", 2 * len(sim.check)) as phase:
        before = sim.joint_nsr(still8, dquant, {}, phase.update)
        after = sim.joint_nsr(still8, dquant, deltas, phase.update)
    keep = after < before
    say(f"L5: bias correction {'kept' if keep else 'dropped'} (worst-output SQNR, 8-bit convs simulated, "
        f"on calibration data {_db(before):.2f} -> {_db(after):.2f} dB)")
    return build_plan(pi, plan.level, rec, **kw, **({"bias_deltas": deltas} if keep else {}))


def _noise_samples(pi: PlanInputs, eight, macs: Mapping[int, int], most: int) -> int:
    """How many samples the per-conv error runs use: at most ``most``, and within ``L5_NOISE_PASSES``
    float-model passes counted in conv MACs (the run downstream of conv k costs the MACs of k and
    of every conv it reaches, over the model's), at least 1."""
    total = sum(macs.values()) or 1
    steps = pi.interp.steps
    position = {s.op_index: k for k, s in enumerate(steps)}
    passes = 0.0
    for c in eight:
        k = position[c.op_index]
        dirty, cost = set(steps[k].outputs), macs.get(c.op_index, 0)
        for s in steps[k + 1:]:
            if any(i in dirty for i in s.inputs):
                dirty.update(s.outputs)
                cost += macs.get(s.op_index, 0)
        passes += cost / total
    return max(1, min(most, int(L5_NOISE_PASSES // max(passes, 1e-9))))


@dataclass
class _Samples:
    """Float tensor values per sample (what ``_bias_corrections`` reads)."""

    samples: list[dict[int, np.ndarray]]


class _FloatSim:
    """L5's measurements in float on cached float activations: an 8-bit conv simulated in float (its
    data rounded to its UINT8 grid, its weights to the plan's integers, both dequantized) and the float
    model run downstream of a replaced tensor, everything upstream taken from the cache.

    ``values[n]``: every tensor of sample ``n`` (after the check samples: the conv data only); the first
    ``n_range`` samples serve the range choice, the first ``n_noise`` the per-conv error measurements,
    those in ``check`` (the next ones) the checks.
    """

    def __init__(self, pi: PlanInputs, plan: QuantPlan, values: list[dict[int, np.ndarray]],
                 n_range: int, n_noise: int, check: list[int]) -> None:
        self.pi, self.plan, self.values = pi, plan, values
        self.n_range, self.n_noise, self.check = n_range, n_noise, check
        self.targets = measured_tensors(pi)
        self._weights: dict[int, np.ndarray] = {}
        self._prepared: dict[tuple, tuple] = {}  # (conv op, with bias correction) -> (params, input infos)

    @classmethod
    def collect(cls, pi: PlanInputs, plan: QuantPlan, feeds, tick=None) -> "_FloatSim":
        """Float runs of ``feeds``: every tensor of the measured and check samples, only the conv
        data of the others (for the bias correction's means)."""
        full = L5_NOISE_SAMPLES + L5_CHECK_SAMPLES
        conv_data = {c.data for c in pi.convs}
        values = []
        for n, f in enumerate(_ticking(feeds, tick)):
            values.append(pi.interp.run(list(f), keep="all" if n < full else conv_data))
        n_noise = min(len(values), L5_NOISE_SAMPLES)
        check = list(range(n_noise, min(len(values), full)))
        # too few samples for separate checks: they reuse the measured ones
        return cls(pi, plan, values, min(len(values), L5_RANGE_SAMPLES), n_noise, check or list(range(n_noise)))

    def _dequantized_weights(self, c) -> np.ndarray:
        if c.weights not in self._weights:
            qc = self.plan.constants[c.weights]
            w = qc.data.astype(np.float64)
            shape = [-1 if a == qc.quant.axis else 1 for a in range(w.ndim)]
            self._weights[c.weights] = (w * np.asarray(qc.quant.scale, np.float64).reshape(shape)).astype(np.float32)
        return self._weights[c.weights]

    def _params(self, c, bias_delta) -> object:
        """The float op's prepared parameters with the dequantized 8-bit weights (and ``bias_delta``
        added to the bias): prepare bakes constant weights and biases into them."""
        from dataclasses import replace

        from ..ops.registry import get_op

        key = (c.op_index, bias_delta is not None)
        if key not in self._prepared:
            it = self.pi.interp
            step = self.pi.step_of(c.op_index)
            ctx = it._context(step.op_index, step.op_name, it.graph.operators[step.op_index])
            ins = list(ctx.inputs)
            for pos, i in enumerate(step.inputs):
                if i == c.weights:
                    ins[pos] = replace(ins[pos], data=self._dequantized_weights(c))
                elif i == c.bias and bias_delta is not None:
                    ins[pos] = replace(ins[pos], data=(np.asarray(it.constants[i], np.float64)
                                                       + bias_delta).astype(np.float32))
            ctx = replace(ctx, inputs=tuple(ins))
            opdef = get_op(step.op_name)
            self._prepared[key] = (opdef.prepare(ctx) if opdef.prepare else ctx.options, ins)
        return self._prepared[key]

    def conv_8bit(self, c, n: int, dq, bias_delta=None, x: np.ndarray | None = None) -> np.ndarray:
        """Conv ``c``'s output on sample ``n`` (or on data ``x``) in 8-bit arithmetic, simulated in float."""
        step = self.pi.step_of(c.op_index)
        vals = self.values[n]
        x = vals[c.data] if x is None else x
        scale = np.asarray(dq.scale, np.float64)
        zp = np.asarray(dq.zero_point, np.float64)
        q = np.clip(np.floor(x / scale + 0.5) + zp, 0, 255)
        params, infos = self._params(c, bias_delta)
        args = [None if i < 0 else (infos[pos].data if i in self.pi.interp.constants else vals[i])
                for pos, i in enumerate(step.inputs)]
        args[step.inputs.index(c.data)] = ((q - zp) * scale).astype(np.float32)
        it = self.pi.interp
        return it._call(step.op_index, step.op_name, step.kernel, args, params, step.out_dtypes)[0]

    def conv_error(self, c, n: int, dq) -> float:
        """Squared error of conv ``c``'s simulated 8-bit output on sample ``n``."""
        y = self.values[n][self.pi.step_of(c.op_index).outputs[0]]
        return float(np.sum(np.square(self.conv_8bit(c, n, dq).astype(np.float64) - y)))

    def downstream(self, n: int, replaced: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """The measured tensors of sample ``n`` with the tensors in ``replaced`` (outputs of one step)
        replaced, running only the steps downstream of them in float."""
        base = self.values[n]
        dirty = dict(replaced)
        it = self.pi.interp
        for s in it.steps:
            if not any(i in dirty for i in s.inputs):
                continue
            args = [None if i < 0 else dirty.get(i, base[i]) for i in s.inputs]
            dirty.update(zip(s.outputs, it._call(s.op_index, s.op_name, s.kernel, args, s.params, s.out_dtypes)))
        return {i: dirty.get(i, base[i]) for i in self.targets}

    def signal(self, samples: Iterable[int] | None = None) -> np.ndarray:
        """Per measured tensor: its float energy over ``samples`` (default: the noise samples)."""
        samples = list(range(self.n_noise) if samples is None else samples)
        return np.array([sum(float(np.sum(np.square(self.values[n][i].astype(np.float64)))) for n in samples)
                         for i in self.targets])

    def output_delta(self, n: int, got: dict[int, np.ndarray]) -> list[np.ndarray]:
        """Per measured tensor: ``got - float`` on sample ``n``, flattened (float64)."""
        base = self.values[n]
        return [(got[i].astype(np.float64) - base[i]).ravel() for i in self.targets]

    def output_error(self, n: int, got: dict[int, np.ndarray]) -> np.ndarray:
        return np.array([float(np.sum(np.square(d))) for d in self.output_delta(n, got)])

    def joint_nsr(self, convs, dquant: dict, deltas: dict, tick=None) -> float:
        """Worst-output noise-to-signal ratio of the float model with every conv in ``convs`` simulated
        at 8 bit at once (``deltas``: bias index -> correction) on the check samples (not the ones the
        per-conv errors were measured on)."""
        it = self.pi.interp
        by_op = {c.op_index: c for c in convs}
        err = np.zeros(len(self.targets))
        check = self.check
        for n in _ticking(check, tick):
            vals = dict(self.values[n])
            for s in it.steps:
                c = by_op.get(s.op_index)
                if c is not None:
                    out = [self.conv_8bit(c, n, dquant[c.op_index], deltas.get(c.bias), x=vals[c.data])]
                else:
                    out = it._call(s.op_index, s.op_name, s.kernel, [None if i < 0 else vals[i] for i in s.inputs],
                                   s.params, s.out_dtypes)
                vals.update(zip(s.outputs, out))
            err += self.output_error(n, vals)
        return float(np.max(err / np.maximum(self.signal(check), 1e-30)))


def _bias_corrections(pi: PlanInputs, plan: QuantPlan, meas: _Measure) -> dict[int, np.ndarray]:
    """Bias deltas ``-sum_k (w_q*s - w)[o, k] * mean(x)[channel of k]`` for CONV_2D, DEPTHWISE_CONV_2D
    and FULLY_CONNECTED (border positions, which see padding, are not modelled)."""
    out = {}
    for c in pi.convs:
        if c.bias < 0 or c.bias not in pi.interp.constants or c.op_name not in ("CONV_2D", "DEPTHWISE_CONV_2D",
                                                                                 "FULLY_CONNECTED"):
            continue
        xs = [smp[c.data] for smp in meas.samples if c.data in smp]
        if not xs:
            continue
        mean_x = np.mean([x.reshape(-1, x.shape[-1]).mean(axis=0) for x in xs], axis=0)
        w = np.asarray(pi.interp.constants[c.weights], np.float64)
        qc = plan.constants[c.weights]
        axis = qc.quant.axis
        s = np.asarray(qc.quant.scale, np.float64).reshape([-1 if a == axis else 1 for a in range(w.ndim)])
        dw = qc.data.astype(np.float64) * s - w
        if c.op_name == "CONV_2D":
            if dw.shape[3] != mean_x.size:
                continue  # grouped convolution: not modelled
            shift = np.einsum("ohwi,i->o", dw, mean_x)
        elif c.op_name == "DEPTHWISE_CONV_2D":
            mult = dw.shape[3] // mean_x.size
            shift = dw.sum(axis=(0, 1, 2)) * np.repeat(mean_x, mult)
        else:
            if dw.shape[1] != mean_x.size:
                continue
            shift = blas.matmul(dw, mean_x)
        out[c.bias] = -shift
    return out


def _db(nsr: float) -> float:
    return float("inf") if nsr <= 0 else -10 * np.log10(nsr)


def _info_key(t) -> tuple | None:
    if t is None:
        return None
    data = None if t.data is None else hashlib.sha1(np.ascontiguousarray(t.data).tobytes()).digest()
    return t.name, tuple(t.shape), np.dtype(t.dtype).str, _quant_key(t.quantization), data, repr(t.sparsity)


def _quant_key(q) -> tuple | None:
    """A hashable, cheap form of a Quantization (a dataclass's repr is slow on long per-channel tuples)."""
    if q is None:
        return None
    fields = tuple(v if v is None or isinstance(v, tuple) else tuple(np.asarray(v).ravel().tolist())
                   for v in (q.scale, q.zero_point, q.min, q.max))
    return fields + (q.quantized_dimension, None if q.details is None else repr(q.details))


class _PrepareMemo:
    """``get_op`` for the fixed-model interpreters of one L5 search: an op's prepared parameters are kept
    by everything prepare reads (op type, options, every input's and output's name, shape, type,
    quantization and constant values), so a trial model prepares only the ops it changes. Prepared
    parameters are immutable (each interpreter already reuses them on every run)."""

    def __init__(self) -> None:
        self._params: dict[tuple, object] = {}
        self._defs: dict[str, object] = {}

    def __call__(self, name: str):
        from ..fixed.registry import get_fixed_op
        from ..ops.registry import OpDef

        if name not in self._defs:
            d = get_fixed_op(name)
            self._defs[name] = d if d.prepare is None else OpDef(d.name, d.kernel, self._wrap(d.prepare))
        return self._defs[name]

    def _wrap(self, prepare):
        def memo_prepare(ctx):
            key = (ctx.op_name, repr(ctx.options), tuple(_info_key(t) for t in ctx.inputs),
                   tuple(_info_key(t) for t in ctx.outputs))
            if key not in self._params:
                self._params[key] = prepare(ctx)
            return self._params[key]
        return memo_prepare


def _tensor_signature(it: Interpreter, i: int) -> tuple | None:
    """What a fixed-model tensor is: name, type, shape, quantization and (constants) the stored values."""
    if i < 0:
        return None
    t = it.graph.tensors[i]
    c = it.constants.get(i)
    digest = None if c is None else hashlib.sha1(np.ascontiguousarray(c).tobytes()).digest()
    return t.name, t.dtype, tuple(t.shape), _quant_key(t.quantization), digest


def _step_signature(it: Interpreter, step) -> tuple:
    """Everything a step's outputs depend on besides its runtime input values."""
    op = it.graph.operators[step.op_index]
    return (step.op_name, repr(op.options), bytes(op.custom_options or b""),
            tuple(_tensor_signature(it, i) for i in step.inputs),
            tuple(_tensor_signature(it, i) for i in step.outputs))


@dataclass
class _BaseRun:
    """A fixed model's runs on some samples, kept so that a trial model that differs from it only in
    some ops re-runs just the steps whose inputs, constants or quantization differ ("reuse upstream
    results"): every tensor's value per sample by name, and each step's signature by output names."""

    signatures: dict[tuple[str, ...], tuple]
    inputs: dict[str, tuple | None]
    values: list[dict[str, np.ndarray]]

    @classmethod
    def record(cls, it: Interpreter) -> "_BaseRun":
        g = it.graph
        sigs = {tuple(g.tensors[o].name for o in s.outputs): _step_signature(it, s) for s in it.steps}
        return cls(sigs, {g.tensors[i].name: _tensor_signature(it, i) for i in g.inputs}, [])

    def clean_tensors(self, it: Interpreter) -> set[str]:
        """Names of ``it``'s runtime tensors whose values equal the recorded ones on every sample."""
        g = it.graph
        clean = {g.tensors[i].name for i in g.inputs
                 if self.inputs.get(g.tensors[i].name, 0) == _tensor_signature(it, i)}
        for s in it.steps:
            names = tuple(g.tensors[o].name for o in s.outputs)
            ins_clean = all(i < 0 or i in it.constants or g.tensors[i].name in clean for i in s.inputs)
            if ins_clean and self.signatures.get(names) == _step_signature(it, s):
                clean.update(names)
        return clean


def _run_fixed(it: Interpreter, raw: list[np.ndarray], targets: list[int], base: _BaseRun | None,
               sample: int, clean: set[str]) -> dict[int, np.ndarray]:
    """``it.run(raw)`` for ``targets``, taking the tensors in ``clean`` from ``base``'s run of ``sample``
    instead of computing them (the same integers: kernels are deterministic and their inputs equal)."""
    if base is None or not clean:
        return it.run(raw, keep=set(targets))
    g = it.graph
    known = base.values[sample]
    values: dict[int, np.ndarray] = dict(it.constants)
    values.update(zip(g.inputs, raw))
    for s in it.steps:
        names = [g.tensors[o].name for o in s.outputs]
        if all(n in clean for n in names):
            values.update((o, known[n]) for o, n in zip(s.outputs, names))
            continue
        args = [None if i < 0 else values[i] for i in s.inputs]
        values.update(zip(s.outputs, it._call(s.op_index, s.op_name, s.kernel, args, s.params, s.out_dtypes)))
    return {i: values[i] for i in targets}


def _e2e_nsr(pi: PlanInputs, fixed: Model, feeds, meas: _Measure, *, record: bool = False,
             base: _BaseRun | None = None, get_op=None) -> float | tuple[float, _BaseRun]:
    """Worst-output noise-to-signal ratio of ``fixed`` against the float model on ``feeds``.

    ``record=True`` also returns the run (a :class:`_BaseRun`); with ``base`` (recorded on the same
    ``feeds``) the steps ``fixed`` shares with that model are not run again. ``get_op``: the kernel
    lookup (a :class:`_PrepareMemo`; default: the fixed registry's).
    """
    from ..fixed.feeds import channel_params, raw_from_normalized
    from ..fixed.registry import get_fixed_op

    it = Interpreter(fixed, get_op=get_op or get_fixed_op)
    g, fg = pi.graph, fixed.main
    recorded = _BaseRun.record(it) if record else None
    clean = base.clean_tensors(it) if base is not None else set()
    specs = {s.name: s for s in pi.config.inputs}
    fixed_out = dict(zip(g.outputs, fg.outputs))
    targets = [fixed_out.get(i) if i in fixed_out else fg.tensor_index(g.tensors[i].name)
               for i in measured_tensors(pi)]
    num = np.zeros(len(targets))
    den = np.zeros(len(targets))
    for n, (f, ref) in enumerate(zip(feeds, meas.outputs)):
        raw = [raw_from_normalized(np.asarray(x), specs.get(g.tensors[i].name), fg.tensors[j])
               for x, i, j in zip(f, g.inputs, fg.inputs)]
        if recorded is not None:
            res = it.run(raw, keep="all")
            recorded.values.append({fg.tensors[i].name: v for i, v in res.items() if i not in it.constants})
        else:
            res = _run_fixed(it, raw, targets, base, n, clean)
        for k, j in enumerate(targets):
            t = fg.tensors[j]
            y = res[j].astype(np.float64)
            if t.dtype != "FLOAT32" and t.quantization is not None and t.quantization.scale:
                scale, zp = channel_params(t, y.ndim)
                y = (y - zp) * scale
            r = ref[k].astype(np.float64)
            num[k] += float(np.sum((y - r) ** 2))
            den[k] += float(np.sum(r * r))
    nsr = float(np.max(num / np.maximum(den, 1e-30)))
    return (nsr, recorded) if recorded is not None else nsr


def _act_lo(pi: PlanInputs, c) -> float:
    op = pi.graph.operators[c.op_index]
    act = getattr(op.options, "fused_activation_function", "NONE") if op.options is not None else "NONE"
    return {"RELU": 0.0, "RELU6": 0.0, "RELU_N1_TO_1": -1.0}.get(act, -np.inf)
