"""Which convolutions to run in 16 bit: their multiply-accumulates, the L4 estimate of each one's 8-bit
noise from the statistics, and the budgeted choice of upgrades (used by L4, and by L5 as a check).
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..ops.conv_layout import conv_weight_axes
from ..plan import PlanInputs, QuantPlan

#: the 16-bit convolutions may hold at most this share of all conv multiply-accumulates
MAX_16BIT_MAC_SHARE = 0.25


def _ticking(items: Iterable, tick: Callable[[], None] | None) -> Iterator:
    """``items``, calling ``tick()`` after the loop body of each one (a ``continue`` included)."""
    for item in items:
        yield item
        if tick is not None:
            tick()


def conv_macs(pi: PlanInputs) -> dict[int, int]:
    """Multiply-accumulates of each conv-like op (output elements x reduction length: the product of the
    summed weight axes, ``ops.conv_layout``)."""
    g = pi.graph
    out = {}
    for c in pi.convs:
        step = pi.step_of(c.op_index)
        if step is None:
            continue
        y = g.tensors[step.outputs[0]]
        w = pi.interp.constants[c.weights]
        n_out = int(np.prod(y.shape))
        if c.op_name == "TRANSPOSE_CONV":  # every input element meets every output channel in kh x kw taps
            n_out = int(np.prod(g.tensors[c.data].shape)) * int(w.shape[0])
            k = int(w.shape[1] * w.shape[2])
        else:
            k = int(np.prod([w.shape[a] for a in conv_weight_axes(pi.model, c, w.shape).summed_axes]))
        out[c.op_index] = n_out * k
    return out


def convs_by_data(convs: Sequence) -> dict[int, list[int]]:
    """Per data tensor (index), the positions in ``convs`` of the convs reading it, in order: in the vendor's
    dialect a 16-bit conv's INT16 input is that tensor, so they run at 16 bit together."""
    out: dict[int, list[int]] = {}
    for r, c in enumerate(convs):
        out.setdefault(c.data, []).append(r)
    return out


def pick_upgrades(gain: Mapping[int, float], macs: Mapping[int, int], threshold: float,
                   already: frozenset[int] = frozenset(),
                   siblings: Mapping[int, frozenset[int]] | None = None) -> frozenset[int]:
    """The convs (op indices) upgraded to 16 bit: ``already`` and, cheapest first by multiply-accumulates,
    those with ``gain[k] > threshold``, while the upgraded MACs stay within ``MAX_16BIT_MAC_SHARE`` of all.
    ``siblings[k]``: the convs upgraded with ``k`` (``k`` among them; the vendor's dialect, where the convs
    reading one tensor read it at 16 bit together), their MACs counted with it."""
    total = sum(macs.values()) or 1
    budget = MAX_16BIT_MAC_SHARE * total - sum(macs.get(k, 0) for k in already)
    chosen = set(already)

    def group(k: int) -> frozenset[int]:
        return (siblings or {}).get(k, frozenset((k,)))

    def cost(k: int) -> int:
        return sum(macs.get(m, 0) for m in group(k) - chosen)
    for k in sorted((k for k, v in gain.items() if v > threshold and k not in already),
                    key=lambda k: (cost(k), k)):
        if k not in chosen and cost(k) <= budget:
            budget -= cost(k)
            chosen |= group(k)
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
        axis = conv_weight_axes(pi.model, c, w.shape).out_axis
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
