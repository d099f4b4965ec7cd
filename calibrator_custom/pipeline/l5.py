"""L5: the plan refined by measurements on the fixed model (docs/quant_levels.md).

Every convolution alone, in 8 and in 16 bit, on the calibration inputs (the float model's own inputs
to that conv, quantized): the UINT8 ranges of conv inputs are chosen among the fitted and min/max
candidates by the conv output error they cause; each conv's sensitivity is the relative drop of the
whole fixed model's worst-output noise (on the calibration inputs) when that conv alone is 16-bit,
and the convs above the sensitivity threshold are upgraded, cheapest first by multiply-accumulates,
up to ``MAX_16BIT_MAC_SHARE`` of all conv MACs; finally biases are corrected for the mean shift of
weight quantization (measured input means), kept only if the end-to-end error on the calibration
inputs drops.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import blas
from ..fixed.writer import build_fixed_model
from ..plan import PlanInputs, QuantPlan
from ..progress_display import Reporter
from ..quant.ranges import minmax_range
from .measure import _db, _e2e_nsr, _isolated, _Measure, _PrepareMemo
from .options import PlanOverrides
from .sensitivity import analytic_gain, conv_macs, pick_upgrades

#: calibration samples used for L5 measurements (the first ones)
L5_SAMPLES = 12
#: of which the per-conv sensitivity runs use the first
L5_SENSITIVITY_SAMPLES = 6


@dataclass(frozen=True)
class L5Options:
    """How the L5 search measures: the sensitivity threshold of a 16-bit upgrade and how many samples."""

    sensitivity_threshold: float = 0.002
    #: calibration samples used for the measurements (the first ones)
    samples: int = L5_SAMPLES
    #: of which the per-conv sensitivity runs use the first
    sensitivity_samples: int = L5_SENSITIVITY_SAMPLES


def refine_l5(pi: PlanInputs, plan: QuantPlan, feeds, overrides: PlanOverrides, options: L5Options,
              rep: Reporter) -> QuantPlan:
    """The L5 measurements; each loop is a phase of ``rep`` (samples, convs or fixed-model runs)."""
    threshold = options.sensitivity_threshold
    say = rep.message
    memo = _PrepareMemo()  # the many fixed models below share most ops: prepare each distinct op once
    feeds = list(feeds)[:options.samples]
    say(f"L5: measuring {len(pi.convs)} convolutions on {len(feeds)} samples")
    with rep.phase("L5 float activations (samples)", len(feeds)) as phase:
        meas = _Measure.collect(pi, feeds, phase.update)
    g = pi.graph
    eight = [c.op_index for c in pi.convs if plan.conv_bits.get(c.op_index) == 8]
    # 1. UINT8 ranges of conv inputs: fitted vs min/max, by the measured conv output error
    u8 = dict(overrides.u8_overrides)
    ranges = dict(overrides.range_overrides)
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
    with rep.phase("L5 conv input ranges (convs x 2 candidates)", 2 * len(eight)) as phase:
        nsr_fit, _ = _isolated(pi, build_fixed_model(pi, plan), meas, eight, phase.update, get_op=memo)
        alt_plan = replace(overrides, u8_overrides=alt_u8, range_overrides=alt_rng).plan(pi, plan.level)
        nsr_mm, _ = _isolated(pi, build_fixed_model(pi, alt_plan), meas, eight, phase.update, get_op=memo)
    for c in pi.convs:
        if c.op_index in nsr_mm and nsr_mm[c.op_index] < nsr_fit.get(c.op_index, np.inf):
            if c.data in alt_u8 and c.data not in u8:
                u8[c.data] = alt_u8[c.data]
            if c.data in alt_rng and c.data not in ranges:
                ranges[c.data] = alt_rng[c.data]
    overrides = replace(overrides, u8_overrides=u8, range_overrides=ranges)
    plan = overrides.plan(pi, plan.level)
    # 2. 16-bit upgrades by measured sensitivity: the relative drop of the worst-output noise of the
    #    whole fixed model (on the calibration inputs) when that conv alone is made 16-bit
    with rep.phase("L5 conv sensitivity (fixed-model runs)", len(eight) + 1) as phase:
        # each trial re-runs only what its 16-bit conv changes (it and everything downstream of it)
        sens = feeds[:options.sensitivity_samples]
        base, run = _e2e_nsr(pi, build_fixed_model(pi, plan), sens, meas, record=True, get_op=memo)
        phase.update()
        gain = {}
        for k in eight:
            trial = overrides.plan(pi, plan.level, frozenset([k]))
            nsr = _e2e_nsr(pi, build_fixed_model(pi, trial), sens, meas, base=run, get_op=memo)
            gain[k] = (base - nsr) / base if base > 0 else 0.0
            phase.update()
        del run
    macs = conv_macs(pi)
    rec = pick_upgrades(gain, macs, threshold)
    # the measured choice must also beat the statistics' estimate (L4's choice) end to end: with few
    # samples a measured gain can be noise
    rec4 = pick_upgrades(analytic_gain(pi, plan), macs, threshold)
    measured: dict[frozenset[int], float] = {}  # 16-bit choice -> its error on all the samples
    if rec4 != rec:
        with rep.phase("L5 measured vs estimated 16-bit choice (fixed-model runs)", 2) as phase:
            nsr_rec = _e2e_nsr(pi, build_fixed_model(pi, overrides.plan(pi, plan.level, rec)), feeds, meas,
                               get_op=memo)
            phase.update()
            nsr_rec4 = _e2e_nsr(pi, build_fixed_model(pi, overrides.plan(pi, plan.level, rec4)), feeds, meas,
                                get_op=memo)
            phase.update()
        measured = {rec: nsr_rec, rec4: nsr_rec4}
        if nsr_rec4 < nsr_rec:
            say(f"L5: the estimated 16-bit choice beats the measured one on the calibration data "
                f"({_db(nsr_rec4):.2f} vs {_db(nsr_rec):.2f} dB); keeping it")
            rec = rec4
    say(f"L5: {len(rec)} convolution(s) upgraded to 16 bit")
    plan = overrides.plan(pi, plan.level, rec)
    # 3. bias correction: the mean output shift the weight quantization causes, from the measured
    #    per-channel means of each conv's input (Nagel et al.'s empirical bias correction)
    with rep.phase("L5 bias correction (fixed-model runs)", 1 if rec in measured else 2) as phase:
        deltas = _bias_corrections(pi, plan, meas)
        corrected = overrides.plan(pi, plan.level, rec, bias_deltas=deltas)
        # keep it only if the fixed model run end to end on the calibration inputs agrees better
        before = measured.get(rec)  # the same plan was run on the same samples above
        if before is None:
            before = _e2e_nsr(pi, build_fixed_model(pi, plan), feeds, meas, get_op=memo)
            phase.update()
        after = _e2e_nsr(pi, build_fixed_model(pi, corrected), feeds, meas, get_op=memo)
        phase.update()
    say(f"L5: bias correction {'kept' if after < before else 'dropped'} "
        f"(worst-output SQNR on calibration data {_db(before):.2f} -> {_db(after):.2f} dB)")
    return corrected if after < before else plan


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
