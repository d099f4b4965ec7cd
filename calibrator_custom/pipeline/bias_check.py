"""The bias correction of the levels that do not measure (L2-L4), kept only where cross-validation on the
calibration inputs shows it helps, in the arithmetic of the dialect that will be written.

Each 8-bit conv's bias can be corrected for the mean shift its quantized weights cause (``l5._bias_corrections``:
``-sum_k (w_q*s - w)[o, k] * mean(x)[channel of k]``, from the input channels' means on calibration inputs).
Whether that helps depends on the model and the dialect (docs/quant_levels.md, "The bias correction of L2-L4"),
so it is checked, two-fold:

* the calibration inputs (on the pixel grid) are split in halves A and B;
* the means of A correct the plan, scored on B against the plan without correction, and the other way round;
* the correction is kept when the mean of the two gains (worst-output SQNR, dB) is positive; its means are then
  the means of all the inputs.

A score is the worst-output SQNR of the plan's fixed model on one half, as the dialect written computes it
(the caller's ``make_scorer``: the vendor's fixed arithmetic for a synthesized vendor file, our fixed
simulator otherwise).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..plan import PlanInputs, QuantPlan
from ..progress_display import Reporter
from ..quant.levels import get_level
from .float_sim import _Samples
from .l5 import _bias_corrections, _input_means, on_pixel_grid
from .options import PlanOverrides

log = logging.getLogger(__name__)

#: the fewest calibration inputs the check runs on (one per half)
BIAS_CHECK_MIN_SAMPLES = 2

#: ``make_scorer(feeds)`` -> ``score(plan)``: the worst-output SQNR (dB) of ``plan``'s fixed model on ``feeds``
ScorerFactory = Callable[[Sequence[Sequence[np.ndarray]]], Callable[[QuantPlan], float]]


def sample_means(pi: PlanInputs, feeds) -> list[dict[int, np.ndarray]]:
    """Per input of ``feeds``, :func:`l5._input_means` of that input alone (one float run each)."""
    keep = sorted({c.data for c in pi.convs})
    return [_input_means(pi, _Samples([pi.interp.run(list(f), keep=keep)])) for f in feeds]


def corrected_plan(pi: PlanInputs, plan: QuantPlan, overrides: PlanOverrides, per_sample: Sequence[dict],
                   recommended_16: frozenset[int] = frozenset()) -> QuantPlan | None:
    """``plan`` rebuilt with its 8-bit convs' biases corrected for the input means of some inputs (``per_sample``:
    their :func:`sample_means`; a conv's mean is the mean over them, as ``l5._input_means`` of those inputs),
    carrying those means (``QuantPlan.conv_input_means``, which the vendor's writer reads); None when no
    8-bit conv can be corrected."""
    ops = set(per_sample[0]) if per_sample else set()
    means = {k: np.mean([m[k] for m in per_sample], axis=0) for k in sorted(ops)}
    eight = [c for c in pi.convs if plan.conv_bits.get(c.op_index) == 8 and c.op_index in means]
    biases = {c.bias for c in eight}
    deltas = {b: d for b, d in _bias_corrections(pi, plan, means).items() if b in biases}
    if not deltas:
        return None
    final = overrides.plan(pi, plan.level, recommended_16, bias_deltas=deltas)
    return replace(final, conv_input_means={c.op_index: means[c.op_index] for c in eight if c.bias in deltas})


def checked_bias_correction(pi: PlanInputs, plan: QuantPlan, overrides: PlanOverrides, feeds,
                            make_scorer: ScorerFactory, rep: Reporter,
                            recommended_16: frozenset[int] = frozenset()) -> QuantPlan:
    """``plan`` with the bias correction of all ``feeds``' means if the two-fold check (module docstring) keeps
    it, else ``plan``; the decision and both folds' scores are reported as a message."""
    name = get_level(plan.level).name
    feeds = on_pixel_grid(pi, plan, list(feeds))
    if len(feeds) < BIAS_CHECK_MIN_SAMPLES:
        rep.message(f"{name}: bias correction not checked (needs {BIAS_CHECK_MIN_SAMPLES} calibration inputs, "
                    f"{len(feeds)} given); not applied")
        return plan
    half = len(feeds) // 2
    first, second = slice(0, half), slice(half, None)
    with rep.phase(f"{name} bias correction means (inputs)", len(feeds)) as phase:
        per_sample = []
        for f in feeds:
            per_sample += sample_means(pi, [f])
            phase.update()
    gains, lines = [], []
    try:
        with rep.phase(f"{name} bias correction check (folds)", 2) as phase:
            for train, test in ((first, second), (second, first)):
                trial = corrected_plan(pi, plan, overrides, per_sample[train], recommended_16)
                if trial is None:
                    rep.message(f"{name}: no 8-bit convolution's bias to correct")
                    return plan
                score = make_scorer(feeds[test])
                before, after = score(plan), score(trial)
                gains.append(after - before)
                lines.append(f"{before:.2f} -> {after:.2f} dB")
                phase.update()
    except (UnsupportedOpError, ModelError) as e:  # the dialect cannot be written: the writer says why later
        log.info("%s: bias correction not checked (%s); not applied", name, e)
        return plan
    keep = bool(np.mean(gains) > 0)
    rep.message(f"{name}: bias correction {'kept' if keep else 'dropped'} (two-fold check on {len(feeds)} "
                f"calibration inputs, worst-output SQNR on the held-out half: {'; '.join(lines)})")
    if not keep:
        return plan
    return corrected_plan(pi, plan, overrides, per_sample, recommended_16) or plan
