"""Float model + statistics -> fixed model, at quant levels L1..L5, with imported quant_param.

    >>> model = convert(float_path, "input_config.ini", stats, quant_level="L5",
    ...                 calibration_feeds=feeds, output_path="net_fixed.sim")

L1-L3 are one plan (planner.build_plan). L4 adds 16-bit recommendations from an analytic estimate
of each convolution's 8-bit noise. L5 measures instead: every convolution alone, in 8 and in 16
bit, on the calibration inputs (the float model's own inputs to that conv, quantized), chooses the
UINT8 ranges of conv inputs among the fitted and min/max candidates by the conv output error they
cause, upgrades to 16 bit the convs whose measured noise-to-signal gain exceeds the sensitivity
threshold (cheapest first by multiply-accumulates, at most 25% of all conv MACs), and finally
corrects conv biases by the mean output error of the fixed model run end to end.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..calib.stats import StatsSet
from ..config import InputConfig, load_input_config
from ..errors import ConfigError
from ..interpreter import Interpreter
from ..model.graph import Model, load_model
from .planner import LEVELS, PlanInputs, QuantPlan, build_plan, weight_axes
from .qparam import QuantParamOverrides, import_quant_param
from .ranges import Range, fitted_range, minmax_range

log = logging.getLogger(__name__)

MAX_16BIT_MAC_SHARE = 0.25
#: calibration samples used for L5 measurements (the first ones)
L5_SAMPLES = 12


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


def analytic_gain(pi: PlanInputs, plan: QuantPlan) -> dict[int, float]:
    """L4: estimated output noise-to-signal ratio an 8-bit conv adds over 16 bit, from the statistics."""
    g = pi.graph
    gains = {}
    for c in pi.convs:
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
        step_x = dq.scale[0]
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

    @classmethod
    def collect(cls, pi: PlanInputs, feeds: Sequence[Sequence[np.ndarray]]) -> "_Measure":
        wanted = set()
        for c in pi.convs:
            step = pi.step_of(c.op_index)
            if step is not None:
                wanted.update((c.data, step.outputs[0]))
        samples = []
        for f in feeds:
            res = pi.interp.run(list(f), keep=wanted)
            samples.append({i: res[i] for i in wanted if i in res})
        return cls(pi, samples)


def _isolated_nsr(pi: PlanInputs, fixed: Model, meas: _Measure, conv_ops: Iterable[int]) -> dict[int, float]:
    """Noise-to-signal ratio of each conv run alone in ``fixed`` on the float model's own inputs."""
    from ..fixed.registry import get_fixed_op

    it = Interpreter(fixed, get_op=get_fixed_op)
    fg = fixed.main
    steps = {}
    for s in it.steps:
        steps[fg.tensors[s.outputs[0]].name] = s
    out = {}
    g = pi.graph
    for k in conv_ops:
        c = next(c for c in pi.convs if c.op_index == k)
        fstep = pi.step_of(k)
        yname = g.tensors[fstep.outputs[0]].name
        s = steps.get(yname) or steps.get(f"{yname}_int16")
        if s is None:
            continue
        di = s.inputs[{"TRANSPOSE_CONV": 2}.get(c.op_name, 0)]
        dt = fg.tensors[di]
        yt = fg.tensors[s.outputs[0]]
        ds, dz = dt.quantization.scale[0], dt.quantization.zero_point[0]
        ys, yz = yt.quantization.scale[0], yt.quantization.zero_point[0]
        info = np.iinfo(dt.np_dtype)
        num = den = 0.0
        for smp in meas.samples:
            x = smp[c.data]
            y = smp[fstep.outputs[0]].astype(np.float64)
            xq = np.clip(np.floor(x / ds + 0.5) + dz, info.min, info.max).astype(dt.np_dtype)
            args = [xq if j == di else (None if j < 0 else it.constants[j]) for j in s.inputs]
            yq = s.kernel(*args, opt=s.params)
            yq = yq[0] if isinstance(yq, (list, tuple)) else yq
            err = (yq.astype(np.float64) - yz) * ys - y
            num += float(np.sum(err * err))
            den += float(np.sum(y * y))
        out[k] = num / den if den > 0 else 0.0
    return out


def convert(float_model: str | os.PathLike | Model, input_config: str | os.PathLike | InputConfig,
            stats: StatsSet, *, quant_level: str = "L5", quant_param: list | None = None,
            sensitivity_threshold: float = 0.002,
            calibration_feeds: Sequence[Sequence[np.ndarray]] | None = None,
            output_path: str | os.PathLike | None = None,
            progress: Callable[[str], None] | None = None) -> Model:
    """The fixed model of ``float_model`` (written atomically to ``output_path`` when given)."""
    from ..fixed.writer import build_fixed_model

    model = float_model if isinstance(float_model, Model) else load_model(float_model)
    config = input_config if isinstance(input_config, InputConfig) else load_input_config(input_config, model)
    if quant_level not in LEVELS:
        raise ConfigError(f"unknown quant_level {quant_level!r}; choose one of {', '.join(LEVELS)}")
    say = progress or (lambda msg: log.info("%s", msg))
    pi = PlanInputs.create(model, stats, config)
    ov = import_quant_param(pi, quant_param) if quant_param else QuantParamOverrides()
    kw = dict(range_overrides=ov.ranges, u8_overrides=ov.u8_ranges, weight_overrides=ov.weights,
              bits_overrides=ov.bits, const_data=ov.const_data)
    plan = build_plan(pi, quant_level, **kw)
    if quant_level == "L4":
        say("L4: estimating conv sensitivity")
        rec = _pick_upgrades(analytic_gain(pi, plan), conv_macs(pi), sensitivity_threshold)
        plan = build_plan(pi, quant_level, rec, **kw)
    elif quant_level == "L5":
        if not calibration_feeds:
            log.warning("L5 needs calibration inputs to measure; falling back to the L4 estimates")
            rec = _pick_upgrades(analytic_gain(pi, plan), conv_macs(pi), sensitivity_threshold)
            plan = build_plan(pi, quant_level, rec, **kw)
        else:
            plan = _refine_l5(pi, plan, calibration_feeds, sensitivity_threshold, kw, say)
    fixed = build_fixed_model(pi, plan)
    if output_path is not None:
        fixed.save(output_path)
    return fixed


def _refine_l5(pi: PlanInputs, plan: QuantPlan, feeds, threshold: float, kw: dict, say) -> QuantPlan:
    from ..fixed.writer import build_fixed_model

    feeds = list(feeds)[:L5_SAMPLES]
    say(f"L5: measuring {len(pi.convs)} convolutions on {len(feeds)} samples")
    meas = _Measure.collect(pi, feeds)
    g = pi.graph
    eight = [c.op_index for c in pi.convs if plan.conv_bits.get(c.op_index) == 8]
    # 1. UINT8 ranges of conv inputs: fitted vs min/max, by the measured conv output error
    u8 = dict(kw.get("u8_overrides") or {})
    ranges = dict(kw.get("range_overrides") or {})
    alt_u8, alt_rng = dict(u8), dict(ranges)
    for c in pi.convs:
        if c.op_index not in eight:
            continue
        ts = pi.stats.tensors.get(g.tensors[c.data].name)
        if ts is None or c.data in ranges or c.data in u8:
            continue
        other = minmax_range(ts.min, ts.max)
        if c.data in plan.u8_views:
            alt_u8[c.data] = other
        elif plan.tensors.get(c.data) is not None and plan.tensors[c.data].qtype == "UINT8":
            alt_rng[c.data] = other
    base_kw = dict(kw)
    nsr_fit = _isolated_nsr(pi, build_fixed_model(pi, plan), meas, eight)
    alt_plan = build_plan(pi, plan.level, **{**base_kw, "u8_overrides": alt_u8, "range_overrides": alt_rng})
    nsr_mm = _isolated_nsr(pi, build_fixed_model(pi, alt_plan), meas, eight)
    for c in pi.convs:
        if c.op_index in nsr_mm and nsr_mm[c.op_index] < nsr_fit.get(c.op_index, np.inf):
            if c.data in alt_u8 and c.data not in u8:
                u8[c.data] = alt_u8[c.data]
            if c.data in alt_rng and c.data not in ranges:
                ranges[c.data] = alt_rng[c.data]
    kw = {**kw, "u8_overrides": u8, "range_overrides": ranges}
    plan = build_plan(pi, plan.level, **kw)
    nsr8 = _isolated_nsr(pi, build_fixed_model(pi, plan), meas, eight)
    # 2. 16-bit upgrades by measured sensitivity
    plan16 = build_plan(pi, plan.level, frozenset(eight), **kw)
    nsr16 = _isolated_nsr(pi, build_fixed_model(pi, plan16), meas, eight)
    gain = {k: nsr8[k] - nsr16.get(k, 0.0) for k in nsr8}
    rec = _pick_upgrades(gain, conv_macs(pi), threshold)
    say(f"L5: {len(rec)} convolution(s) upgraded to 16 bit")
    plan = build_plan(pi, plan.level, rec, **kw)
    # 3. bias correction from the end-to-end fixed run
    deltas = _bias_corrections(pi, build_fixed_model(pi, plan), feeds, meas)
    return build_plan(pi, plan.level, rec, **kw, bias_deltas=deltas)


def _bias_corrections(pi: PlanInputs, fixed: Model, feeds, meas: _Measure) -> dict[int, np.ndarray]:
    """Per conv bias: minus the mean (over samples and positions) of the fixed-minus-float output error."""
    from ..fixed.registry import get_fixed_op

    it = Interpreter(fixed, get_op=get_fixed_op)
    fg = fixed.main
    names = {t.name: k for k, t in enumerate(fg.tensors)}
    g = pi.graph
    targets = {}
    for c in pi.convs:
        if c.bias < 0 or c.bias not in pi.interp.constants:
            continue
        step = pi.step_of(c.op_index)
        name = g.tensors[step.outputs[0]].name
        k = names.get(name)
        if k is None or fg.tensors[k].dtype == "FLOAT32":
            k = names.get(f"{name}_int16")
        if k is not None:
            targets[c] = (k, step.outputs[0])
    if not targets:
        return {}
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, np.ndarray] = {}
    raw_feeds = [_fixed_feeds(pi, fixed, f) for f in feeds]
    for s_idx, rf in enumerate(raw_feeds):
        res = it.run(rf, keep=[k for k, _ in targets.values()])
        smp = meas.samples[s_idx]
        for c, (k, fi) in targets.items():
            if fi not in smp:
                continue
            t = fg.tensors[k]
            q = t.quantization
            y = (res[k].astype(np.float64) - q.zero_point[0]) * q.scale[0]
            ref = smp[fi].astype(np.float64)
            info = np.iinfo(t.np_dtype)
            lo = (info.min - q.zero_point[0]) * q.scale[0]
            hi = (info.max - q.zero_point[0]) * q.scale[0]
            # only positions where neither the activation nor saturation clamps
            ok = (ref > max(lo, _act_lo(pi, c)) + 1e-9) & (ref < hi) & (y > max(lo, _act_lo(pi, c)) + 1e-9) & (y < hi)
            err = np.where(ok, y - ref, 0.0).reshape(-1, ref.shape[-1])
            sums[c.bias] = sums.get(c.bias, 0) + err.sum(axis=0)
            counts[c.bias] = counts.get(c.bias, 0) + ok.reshape(-1, ref.shape[-1]).sum(axis=0)
    out = {}
    for b, s in sums.items():
        n = np.maximum(counts[b], 1)
        out[b] = np.where(counts[b] > 0, -s / n, 0.0)
    return out


def _act_lo(pi: PlanInputs, c) -> float:
    op = pi.graph.operators[c.op_index]
    act = getattr(op.options, "fused_activation_function", "NONE") if op.options is not None else "NONE"
    return {"RELU": 0.0, "RELU6": 0.0, "RELU_N1_TO_1": -1.0}.get(act, -np.inf)


def _fixed_feeds(pi: PlanInputs, fixed: Model, float_feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Fixed-model inputs equivalent to normalized float inputs: pixels = x*std + mean for image inputs."""
    from ..fixed.feeds import raw_from_normalized

    g = pi.graph
    out = []
    for k, (i, x) in enumerate(zip(g.inputs, float_feeds)):
        spec = next((s for s in pi.config.inputs if s.name == g.tensors[i].name), None)
        t = fixed.main.tensors[fixed.main.inputs[k]]
        out.append(raw_from_normalized(np.asarray(x), spec, t))
    return out
