"""Channel equalization: rescale activation channels through the conv weights so that a tensor stored with
one scale per tensor spends its codes on every channel, not only on the widest.

    >>> equalized, eq = equalize(vendor_float, stats, measured=conv_inputs)
    >>> eq.scaled_channels, eq.tensors          # what moved; the float outputs are unchanged

A channel group is a set of (tensor, channel) pairs that must share one factor: those joined through ops
that act on each channel alone and commute with a positive factor (RELU, PRELU, MAX/AVERAGE_POOL_2D, ADD of
two activations, PAD with zeros, whose channel padding shifts the channel index). A group is free when every
op that makes or reads one of its tensors is such an op or a conv (CONV_2D / DEPTHWISE_CONV_2D with constant
float weights of its own and no clamp but RELU): the producing conv divides its output channel (weights and
bias) by the factor and every reading conv multiplies its input channel's weights by it, so the float model
computes the same outputs. Anything else (a graph input or output, RELU6, a RESHAPE, a CONCATENATION, a
constant operand, a shared weight) keeps its groups at factor 1.

The factor of a free group: ``s = clip(rho ** exponent, min_scale, 1)`` with ``rho`` the largest, over the
group's ``measured`` tensors, of the channel's range over its tensor's widest channel range (``max|x_c| /
max_c' max|x_c'|``, from the statistics' channel extremes). A channel's values are then divided by ``s``:
narrow channels grow towards the widest. ``exponent`` 1 would give each measured channel the resolution of
per-channel quantization and move the whole disparity into the reading convs' weights, whose input channel
it shrinks by ``s`` (their per-output-channel codes then round that channel coarser, relative to its values,
by ``1 / s``); the default 0.5 splits it evenly between the activation and the weights (docs/quant_levels.md,
"Channel equalization").
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Collection, Mapping

import numpy as np

from ..calib.stats import StatsSet
from ..errors import ConfigError
from ..model.graph import Model

log = logging.getLogger(__name__)

_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")
#: ops whose output channel c is a positively homogeneous function of channel c of their inputs
_PER_CHANNEL = ("RELU", "PRELU", "MAX_POOL_2D", "AVERAGE_POOL_2D", "ADD", "PAD")
#: fused activations a factor passes through (RELU(s x) = s RELU(x) for s > 0; a clamp at 6 does not commute)
_PASSING_ACTIVATIONS = ("NONE", "RELU")


@dataclass(frozen=True)
class EqualizeOptions:
    """``exponent``: the share of a channel's range disparity moved into the weights (0: none, 1: all);
    ``min_scale``: the smallest factor, which bounds how much a conv's per-channel output multipliers spread."""

    exponent: float = 0.5
    min_scale: float = 1 / 16

    def __post_init__(self) -> None:
        if not 0.0 <= self.exponent <= 1.0:
            raise ConfigError(f"EqualizeOptions.exponent {self.exponent!r}: give a value in [0, 1]")
        if not 0.0 < self.min_scale <= 1.0:
            raise ConfigError(f"EqualizeOptions.min_scale {self.min_scale!r}: give a value in (0, 1]")


@dataclass(frozen=True)
class Equalization:
    """What :func:`equalize` changed: per activation tensor name, the factor each channel was divided by (tensors
    with a factor other than 1 only), and the names of the convs whose weights were rescaled."""

    scales: Mapping[str, np.ndarray]
    convs: tuple[str, ...]
    groups: int

    @property
    def tensors(self) -> tuple[str, ...]:
        return tuple(sorted(self.scales))

    @property
    def scaled_channels(self) -> int:
        return int(sum(int(np.count_nonzero(s != 1.0)) for s in self.scales.values()))


class _Groups:
    """Union-find over the (tensor, channel) pairs of a model's rank-4 activation tensors."""

    def __init__(self, model: Model):
        g = model.main
        self.model = model
        self.offset: dict[int, int] = {}
        n = 0
        for i, t in enumerate(g.tensors):
            if len(t.shape) == 4 and model.tensor_data(t) is None:
                self.offset[i] = n
                n += int(t.shape[-1])
        self.parent = np.arange(n)
        self.fixed = np.zeros(n, bool)

    def channels(self, i: int) -> slice:
        start = self.offset[i]
        return slice(start, start + int(self.model.main.tensors[i].shape[-1]))

    def find(self, a: int) -> int:
        p = self.parent
        while p[a] != a:
            p[a] = p[p[a]]
            a = p[a]
        return a

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a

    def fix(self, i: int) -> None:
        if i in self.offset:
            self.fixed[self.channels(i)] = True

    def roots(self) -> np.ndarray:
        return np.array([self.find(a) for a in range(len(self.parent))], np.int64)


def _const(model: Model, i: int) -> np.ndarray | None:
    return None if i < 0 else model.tensor_data(model.main.tensors[i])


def _conv_keeps_factors(model: Model, op, uses: dict[int, int]) -> bool:
    """Whether a conv can absorb factors: float32 constant weights (and bias) used by this op alone, a
    depthwise of multiplier 1."""
    g = model.main
    w = _const(model, op.inputs[1])
    if w is None or w.dtype != np.float32 or w.ndim != 4 or uses.get(op.inputs[1], 0) != 1:
        return False
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = _const(model, op.inputs[2])
        if b is None or b.dtype != np.float32 or uses.get(op.inputs[2], 0) != 1:
            return False
    if model.op_name(op) == "DEPTHWISE_CONV_2D":
        return g.tensors[op.outputs[0]].shape[-1] == g.tensors[op.inputs[0]].shape[-1]
    return True


def _channel_shift(model: Model, op) -> int | None:
    """For an op of :data:`_PER_CHANNEL` acting channel by channel: how far it moves channel indices (a PAD's
    channel padding before), else None."""
    g = model.main
    kind = model.op_name(op)
    data = [i for i in op.inputs if i >= 0 and _const(model, i) is None]
    out = op.outputs[0]
    if len(op.outputs) != 1 or any(len(g.tensors[i].shape) != 4 for i in [*data, out]):
        return None
    if getattr(op.options, "fused_activation_function", "NONE") not in _PASSING_ACTIVATIONS:
        return None
    if kind == "PAD":
        pads = _const(model, op.inputs[1]) if len(op.inputs) > 1 else None
        if len(data) != 1 or pads is None or np.shape(pads) != (4, 2):
            return None
        return int(np.asarray(pads)[3][0])
    if kind == "PRELU":
        return 0 if len(data) == 1 and data[0] == op.inputs[0] else None
    if len(data) != sum(1 for i in op.inputs if i >= 0):  # a constant operand (an ADD of a constant) is no factor's
        return None
    channels = g.tensors[out].shape[-1]
    return 0 if all(g.tensors[i].shape[-1] == channels for i in data) else None


def channel_factor(rho: np.ndarray, options: EqualizeOptions = EqualizeOptions()) -> np.ndarray:
    """``clip(rho ** exponent, min_scale, 1)`` per channel, rounded to float32 (1 where ``rho`` is 0: no free group
    or no measured range); ``rho`` in [0, 1] is a channel's range over its tensor's widest channel range."""
    rho = np.asarray(rho, np.float64)
    with np.errstate(divide="ignore"):
        factor = np.where(rho > 0, np.clip(rho ** options.exponent, options.min_scale, 1.0), 1.0)
    return factor.astype(np.float32).astype(np.float64)


def channel_factors(model: Model, stats: StatsSet, measured: Collection[str],
                    options: EqualizeOptions = EqualizeOptions()) -> tuple[dict[int, np.ndarray], int]:
    """(per activation tensor index, the factor each of its channels is to be divided by; the number of free
    groups). Tensors whose factors are all 1 are left out."""
    g = model.main
    groups = _Groups(model)
    uses: dict[int, int] = {}
    for op in g.operators:
        for i in op.inputs:
            if i >= 0:
                uses[i] = uses.get(i, 0) + 1
    for i in [*g.inputs, *g.outputs]:
        groups.fix(i)
    for op in g.operators:
        kind = model.op_name(op)
        if kind in _CONVS:
            if not _conv_keeps_factors(model, op, uses):
                groups.fix(op.inputs[0])
                groups.fix(op.outputs[0])
            elif getattr(op.options, "fused_activation_function", "NONE") not in _PASSING_ACTIVATIONS:
                groups.fix(op.outputs[0])
            continue
        shift = _channel_shift(model, op) if kind in _PER_CHANNEL else None
        data = [i for i in op.inputs if i >= 0 and _const(model, i) is None]
        if shift is None or any(i not in groups.offset for i in [*data, *op.outputs]):
            for i in [*data, *op.outputs]:
                groups.fix(i)
            continue
        out = groups.offset[op.outputs[0]] + shift
        for i in data:
            for c in range(int(g.tensors[i].shape[-1])):
                groups.union(groups.offset[i] + c, out + c)
    roots = groups.roots()
    blocked = np.zeros(len(roots), bool)
    np.logical_or.at(blocked, roots, groups.fixed)
    free = ~blocked[roots]
    need = np.zeros(len(roots))
    for name in measured:
        i = _index(g, name)
        st = stats.tensors.get(name)
        if i is None or i not in groups.offset or st is None:
            continue
        r = np.maximum(np.maximum(np.asarray(st.channel_max, np.float64), -np.asarray(st.channel_min, np.float64)), 0.0)
        if r.size != groups.channels(i).stop - groups.channels(i).start or not np.all(np.isfinite(r)) or r.max() <= 0:
            continue
        np.maximum.at(need, roots[groups.channels(i)], r / r.max())
    rho = np.where(free, need[roots], 0.0)
    factor = channel_factor(rho, options)
    out = {i: factor[groups.channels(i)] for i in groups.offset if np.any(factor[groups.channels(i)] != 1.0)}
    return out, len(set(roots[rho > 0].tolist()))


def _index(g, name: str) -> int | None:
    for i, t in enumerate(g.tensors):
        if t.name == name:
            return i
    return None


def equalize(model: Model, stats: StatsSet, measured: Collection[str],
             options: EqualizeOptions = EqualizeOptions()) -> tuple[Model, Equalization]:
    """(a copy of ``model`` with its free channel groups rescaled, what changed); ``model`` itself is unchanged.

    ``stats``: the model's calibration statistics (channel extremes by tensor name); ``measured``: the names of
    the tensors whose channel ranges set the factors (the data inputs of 8-bit convs)."""
    factors, n_groups = channel_factors(model, stats, measured, options)
    out = model.copy()
    if not factors:
        return out, Equalization({}, (), 0)
    g = out.main
    changed = []
    for op in g.operators:
        kind = out.op_name(op)
        if kind not in _CONVS:
            continue
        s_in = factors.get(op.inputs[0])
        s_out = factors.get(op.outputs[0])
        if s_in is None and s_out is None:
            continue
        w = np.array(out.tensor_data(g.tensors[op.inputs[1]]), np.float64)
        out_axis = (-1, 1, 1, 1) if kind == "CONV_2D" else (1, 1, 1, -1)
        if s_in is not None:  # the reading conv: input channel c's weights times s_c
            w = w * s_in.reshape(1, 1, 1, -1)
        if s_out is not None:  # the producing conv: output channel c (weights, bias) over s_c
            w = w / s_out.reshape(out_axis)
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                b = np.array(out.tensor_data(g.tensors[op.inputs[2]]), np.float64)
                if b.ndim == 2:  # the vendor's [2, C]: (conv + b[0]) * b[1]
                    b[0] = b[0] / s_out
                else:
                    b = b / s_out
                out.set_constant(op.inputs[2], b.astype(np.float32))
        out.set_constant(op.inputs[1], w.astype(np.float32))
        changed.append(g.tensors[op.outputs[0]].name)
    scales = {g.tensors[i].name: s for i, s in factors.items()}
    eq = Equalization(scales, tuple(changed), n_groups)
    log.debug("channel equalization: %d group(s), %d channel(s) of %d tensor(s) rescaled through %d conv(s)",
              n_groups, eq.scaled_channels, len(scales), len(changed))
    return out, eq
