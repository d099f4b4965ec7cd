"""The quantization planner: float model + statistics + input_config.ini + level -> a QuantPlan.

A plan (``calibrator_custom.plan``) says, for every tensor of the float model's main graph that
survives constant folding, its integer type and quantization, and holds the quantized constants.
The fixed-model writer (``fixed.writer``) turns a plan into a fixed.sim. Every scale and range in a plan is rounded to
float32 first (the precision the .sim file stores), so a plan read back from a fixed model
(``save_quant_param``) reproduces the same integers.

What each level changes here is its ``quant.levels.Level`` (docs/quant_levels.md): the weight
scales (per tensor, per channel, fitted) and whether activation ranges are fitted; the 16-bit
recommendations (L4 estimated, L5 measured) come from the pipeline (``pipeline.convert``) as
``recommended_16`` and overrides.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Callable, Mapping

import numpy as np

from ..config import IMAGE_FORMATS, InputSpec
from ..ops.conv_layout import ConvLike, conv_weight_axes
from ..plan import PlanInputs, QuantConst, QuantPlan, TensorQuant, quant_rule  # noqa: F401 - re-exported
from ..rounding import round_half_away
from .levels import Level, get_level
from .qtypes import conv_bits, tensor_qtypes
from .ranges import Range, covering, fitted_range, minmax_range
from .weights import dead_channel_clip, quantize_bias, quantize_with_scale, search_clip

log = logging.getLogger(__name__)


def f32(x) -> float:
    """``x`` rounded to float32 (what a .sim file stores), as a Python float."""
    return float(np.float32(x))


#: at most this many halvings of a UINT8 channel's scale below its tensor's (the conv kernel's grid)
MAX_CHANNEL_SHIFT = 4


def activation_quant(rng: Range, qtype: str, channel_min=None, channel_max=None, axis: int | None = None,
                     max_shift: int = MAX_CHANNEL_SHIFT) -> TensorQuant:
    """The quantization of an activation with range ``rng`` in ``qtype`` (INT16 symmetric, UINT8 asymmetric).

    With ``axis`` (UINT8 data of 8-bit convs, given per-channel ranges) each channel gets its own
    scale ``scale * 2**-k[c]`` (``0 <= k[c] <= MAX_CHANNEL_SHIFT``, the largest that still holds the
    channel's range with one LSB to spare) and zero point: see ``channel_u8_quant``.
    """
    lo, hi = f32(rng.lo), f32(rng.hi)
    if not hi > lo:  # a range that float32 cannot tell from [0, 0]
        lo, hi = f32(-1e-6), f32(1e-6)
    if rng.channel_lo is not None and rng.channel_hi is not None:
        channel_min, channel_max = rng.channel_lo, rng.channel_hi
    if qtype == "UINT8":
        scale = f32((hi - lo) / 255)
        zp = int(np.clip(round_half_away(np.array(-lo * 255 / (hi - lo))), 0, 255))
    else:
        qmax = {"INT16": 32767, "INT8": 127}[qtype]
        scale = f32(max(-lo, hi) / qmax)
        zp = 0
    # per channel f32(max(lo, v)) and f32(min(hi, v)), all channels at once (max(a, b) is b only where b > a)
    cmin = (lo,) if channel_min is None else _f32_tuple(_keep_unless(lo, channel_min, np.greater))
    cmax = (hi,) if channel_max is None else _f32_tuple(_keep_unless(hi, channel_max, np.less))
    if cmin and min(cmin) > lo:
        low = min(cmin)
        cmin = tuple(lo if v == low else v for v in cmin)
    if cmax and max(cmax) < hi:
        high = max(cmax)
        cmax = tuple(hi if v == high else v for v in cmax)
    if qtype == "UINT8" and axis is not None and len(cmin) > 1 and len(cmin) == len(cmax):
        scales, zps = channel_u8_quant(scale, cmin, cmax, max_shift)
        return TensorQuant(qtype, scales, zps, cmin, cmax, axis)
    return TensorQuant(qtype, (scale,), (zp,), cmin, cmax, 0)


def _keep_unless(a: float, values, beyond) -> np.ndarray:
    """Per value ``v``: ``v`` where ``beyond(v, a)``, else ``a`` (Python's ``max(a, v)`` with ``np.greater``,
    ``min(a, v)`` with ``np.less``; a NaN gives ``a``)."""
    v = np.asarray(values, np.float64).ravel()
    return np.where(beyond(v, a), v, a)


def _f32_tuple(values: np.ndarray) -> tuple[float, ...]:
    """``tuple(f32(v) for v in values)``."""
    return tuple(np.asarray(values, np.float64).astype(np.float32).astype(np.float64).tolist())


def channel_u8_quant(scale: float, cmin, cmax, max_shift: int = MAX_CHANNEL_SHIFT
                     ) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Per-channel UINT8 (scales, zero points): channel c gets ``scale * 2**-k[c]``, ``zp = round(-lo_c / s_c)``.

    ``k[c]`` is the largest ``k <= max_shift`` with ``hi_c - lo_c <= 254 * scale * 2**-k``
    (range of channel c widened to contain 0); the tensor's widest channel keeps ``scale``.
    """
    # every channel at once: the same float64 operations, in the same order, as one channel at a time
    lo_c = np.minimum(np.asarray(cmin, np.float64), 0.0)
    hi_c = np.maximum(np.asarray(cmax, np.float64), 0.0)
    span = hi_c - lo_c
    k = np.zeros(span.shape, np.int64)
    for step in range(max_shift):
        k = np.where((k == step) & (span <= 254 * scale * 2.0 ** -(step + 1)), step + 1, k)
    s = (scale * 2.0 ** -k.astype(np.float64)).astype(np.float32).astype(np.float64)
    zps = np.clip(round_half_away(-lo_c / s), 0, 255).astype(np.int64)
    return tuple(float(v) for v in s), tuple(int(v) for v in zps)


def _stats_range(pi: PlanInputs, i: int, qtype: str, fit: bool) -> tuple[Range, object]:
    t = pi.graph.tensors[i]
    ts = pi.stats.tensors.get(t.name)
    if ts is None or ts.num_finite == 0:
        log.warning("no statistics for tensor %r; using the range [-1, 1]", t.name)
        return Range(-1.0, 1.0, "default"), None
    if fit and qtype in ("UINT8", "INT8", "INT16"):
        key = ("fitted_range", i, qtype)
        if key not in pi.memo:
            pi.memo[key] = fitted_range(ts.histogram, qtype)
        return pi.memo[key], ts
    return minmax_range(ts.min, ts.max), ts


def _ticking(items, tick: Callable[[], None] | None):
    """``items``, calling ``tick()`` after the loop body of each one (a ``continue`` included)."""
    for item in items:
        yield item
        if tick is not None:
            tick()


def _memo_activation_quant(pi: PlanInputs, i: int, args: tuple) -> TensorQuant:
    """``activation_quant(*args)`` for tensor ``i``, whose channel ranges (``args[2:4]``) are its statistics'."""
    rng, qtype, channel_min, _, axis = args
    key = ("activation_quant", i, rng, qtype, axis, channel_min is None)
    if key not in pi.memo:
        pi.memo[key] = activation_quant(*args)
    return pi.memo[key]


def _image_range(spec: InputSpec) -> tuple[Range, tuple, tuple]:
    mean = np.asarray(spec.channel_mean(), np.float64)
    std = np.asarray(spec.channel_std(), np.float64)
    lo_c, hi_c = (0 - mean) / std, (255 - mean) / std
    lo, hi = covering(lo_c.min(), hi_c.max())
    return Range(lo, hi, "mean/std"), tuple(lo_c), tuple(hi_c)


def build_plan(pi: PlanInputs, level: str | Level = "L2", recommended_16: frozenset[int] = frozenset(),
               range_overrides: Mapping[int, Range] | None = None,
               u8_overrides: Mapping[int, Range] | None = None,
               weight_overrides: Mapping[int, tuple[np.ndarray | None, np.ndarray | None]] | None = None,
               bits_overrides: Mapping[int, int] | None = None,
               bias_deltas: Mapping[int, np.ndarray] | None = None,
               const_data: Mapping[int, np.ndarray] | None = None,
               tick: Callable[[], None] | None = None) -> QuantPlan:
    """The plan for ``level`` (a name or a ``Level``; L5 callers pass measured overrides).

    ``range_overrides``: float tensor index -> activation range (imported quant_param, L5 refinement).
    ``u8_overrides``: the same for the UINT8 copies read by 8-bit convs.
    ``weight_overrides``: weights tensor index -> (replacement float data or None, per-channel clip or None).
    ``bits_overrides``: conv op index -> 8/16 (imported quant_param), applied after CONV_CONFIG.
    ``bias_deltas``: bias tensor index -> float correction added to the bias (L5 bias correction).
    ``const_data``: constant tensor index -> replacement float values (imported quant_param ``data``).
    ``tick``: called after each of ``pi.runtime_tensors()`` is planned (progress).
    """
    lv = get_level(level)
    g = pi.graph
    consts = _constants(pi, const_data)
    range_overrides = range_overrides or {}
    u8_overrides = u8_overrides or {}
    weight_overrides = weight_overrides or {}
    bias_deltas = bias_deltas or {}
    bits, tensors, u8_args = _activations(pi, lv, recommended_16, range_overrides, bits_overrides, consts, tick)
    fit = lv.fitted_ranges
    specs = {s.name: s for s in pi.config.inputs}
    input_specs = {i: specs[g.tensors[i].name] for i in g.inputs if g.tensors[i].name in specs}

    # INT16 tensors that 8-bit convs read get a UINT8 copy
    u8_views: dict[int, TensorQuant] = {}
    for c in pi.convs:
        if bits[c.op_index] == 8 and c.data in tensors and tensors[c.data].qtype == "INT16":
            if c.data not in u8_views:
                rng = u8_overrides.get(c.data) or _stats_range(pi, c.data, "UINT8", fit)[0]
                ts = pi.stats.tensors.get(g.tensors[c.data].name)
                u8_args[c.data] = (rng, "UINT8", None if ts is None else ts.channel_min,
                                   None if ts is None else ts.channel_max, _channel_axis(g.tensors[c.data]))
                u8_views[c.data] = _memo_activation_quant(pi, c.data, u8_args[c.data])

    constants: dict[int, QuantConst] = {}
    conv_by_weights = {c.weights: c for c in pi.convs}
    conv_by_bias = {c.bias: c for c in pi.convs if c.bias >= 0}
    float_const = {i for s in pi.interp.steps if quant_rule(s.op_name).float_constants for i in s.inputs}
    used = pi.used_constants()
    used_set = set(used)
    for i in used:
        t = g.tensors[i]
        value = consts[i]
        if t.dtype != "FLOAT32" and value.dtype != np.float32:
            constants[i] = QuantConst(np.asarray(value), TensorQuant(t.dtype))
            continue
        if i in float_const and i not in conv_by_weights:
            constants[i] = QuantConst(np.asarray(value, np.float32), TensorQuant("FLOAT32"))
            continue
        if i in conv_by_weights:
            c = conv_by_weights[i]
            constants[i] = _quantize_conv_weights(pi, c, value, bits[c.op_index], lv, tensors, u8_views,
                                                  weight_overrides.get(i, (None, None)))
            continue
        if i in conv_by_bias:
            continue  # after the weights
        # any other float constant (the default rule): INT16 symmetric per tensor
        v = np.asarray(value, np.float64)
        rng = minmax_range(v.min() if v.size else 0.0, v.max() if v.size else 0.0)
        tq = activation_quant(rng, "INT16")
        q = np.clip(round_half_away(v / tq.scale[0]), -32767, 32767).astype(np.int16)
        constants[i] = QuantConst(q, tq)
    biases = {i: c for i, c in conv_by_bias.items() if i in consts and i in used_set}
    _fit_biases(biases, consts, bias_deltas, bits, constants, tensors, u8_views, u8_args)
    for i, c in biases.items():
        constants[i] = _bias_const(g, c, consts[i], bias_deltas.get(i, 0.0), bits[c.op_index],
                                   constants[c.weights].quant, _data_quant(tensors, u8_views, c, bits[c.op_index]))
    deq = {}
    for k, name in enumerate(o.name for o in pi.config.outputs):
        deq[name] = pi.config.outputs[k].dequantization
    dequantize_outputs = {i: deq.get(g.tensors[i].name, False) for i in g.outputs}
    return QuantPlan(lv.name, dict(bits), tensors, u8_views, constants, input_specs, dequantize_outputs)


def _constants(pi: PlanInputs, const_data) -> dict[int, np.ndarray]:
    consts = dict(pi.interp.constants)
    biases_at = {c.bias for c in pi.convs if c.bias >= 0}
    # an imported bias keeps float64: an INT64 bias has more digits than float32 holds
    consts.update({i: np.asarray(v, np.float64 if i in biases_at else np.float32)
                   for i, v in (const_data or {}).items()})
    return consts


def activation_quants(pi: PlanInputs, level: str | Level = "L2", recommended_16: frozenset[int] = frozenset(),
                      range_overrides: Mapping[int, Range] | None = None,
                      bits_overrides: Mapping[int, int] | None = None,
                      const_data: Mapping[int, np.ndarray] | None = None) -> dict[int, TensorQuant]:
    """The activation quantizations (``QuantPlan.tensors``, before any UINT8 data is coarsened for
    its biases) ``build_plan`` gives with these arguments, without quantizing the constants."""
    lv = get_level(level)
    return _activations(pi, lv, recommended_16, range_overrides or {}, bits_overrides,
                        _constants(pi, const_data))[1]


def _activations(pi: PlanInputs, lv: Level, recommended_16, range_overrides, bits_overrides, consts,
                 tick: Callable[[], None] | None = None) -> tuple[dict[int, int], dict[int, TensorQuant], dict]:
    """(conv bits, activation quantizations, per-channel UINT8 data's ``activation_quant`` arguments)."""
    g = pi.graph
    bits = conv_bits(pi.model, pi.convs, pi.config.conv, recommended_16)
    bits.update(bits_overrides or {})
    qtypes = tensor_qtypes(pi.model, consts, pi.config, bits, pi.convs)
    fit = lv.fitted_ranges
    specs = {s.name: s for s in pi.config.inputs}
    input_specs = {i: specs[g.tensors[i].name] for i in g.inputs if g.tensors[i].name in specs}
    tensors: dict[int, TensorQuant] = {}
    u8_args: dict[int, tuple] = {}  # per-channel UINT8 data: activation_quant's arguments (see _fit_biases)
    for i in _ticking(pi.runtime_tensors(), tick):
        t = g.tensors[i]
        if t.dtype != "FLOAT32":
            continue
        qt = qtypes[i]
        spec = input_specs.get(i)
        if spec is not None and spec.input_format in IMAGE_FORMATS:
            qt = _normalized_qtype(pi, i, bits)
            rng, lo_c, hi_c = _image_range(spec)
            tensors[i] = activation_quant(rng, qt, lo_c, hi_c)
            continue
        if qt == "FLOAT32":  # RAWDATA_F32 with quantizations: quantized by the model's first op
            qt = _normalized_qtype(pi, i, bits)
        if spec is not None and spec.input_format == "RAWDATA_S16_NHWC" and qt == "UINT8":
            qt = "INT16"
        if i in range_overrides:
            rng, ts = range_overrides[i], pi.stats.tensors.get(t.name)
        else:
            rng, ts = _stats_range(pi, i, qt, fit)
        args = (rng, qt, None if ts is None else ts.channel_min, None if ts is None else ts.channel_max,
                _channel_axis(t) if qt == "UINT8" and i not in g.inputs else None)
        tensors[i] = _memo_activation_quant(pi, i, args)
        if qt == "UINT8":
            u8_args[i] = args

    return bits, tensors, u8_args


def _bias_at(b, delta, dq: TensorQuant, wq: TensorQuant) -> tuple[np.ndarray, tuple[float, ...]]:
    """(float bias with its correction, its float32 scales: the data's grid, its finest channel's, times w)."""
    grid = min(dq.scale)
    return np.asarray(b, np.float64) + np.asarray(delta, np.float64), tuple(f32(grid * s) for s in wq.scale)


def _bias_const(g, c: ConvLike, b, delta, b_bits: int, wq: TensorQuant, dq: TensorQuant) -> QuantConst:
    v, scale = _bias_at(b, delta, dq, wq)
    # quantized at the float32 scales the file stores, so an exported bias re-imports to the same integers
    q = quantize_bias(v, 1.0, np.asarray(scale, np.float64), b_bits, g.tensors[c.bias].name)
    return QuantConst(q, TensorQuant("INT32" if b_bits == 8 else "INT64", scale, (0,) * len(scale), (), (), 0))


def _fit_biases(biases, consts, bias_deltas, bits, constants, tensors, u8_views, u8_args) -> None:
    """Coarsen per-channel UINT8 data until every 8-bit conv's INT32 bias fits at the data's grid scale."""
    caps: dict[int, int] = {}
    for _ in range(MAX_CHANNEL_SHIFT):
        over = set()
        for i, c in biases.items():
            if bits[c.op_index] != 8 or c.data not in u8_args:
                continue
            dq = _data_quant(tensors, u8_views, c, 8)
            if len(dq.scale) < 2:
                continue
            v, scale = _bias_at(consts[i], bias_deltas.get(i, 0.0), dq, constants[c.weights].quant)
            if np.any(np.abs(v) / np.asarray(scale, np.float64) >= 2.0 ** 31 - 1):
                over.add(c.data)
        if not over:
            return
        for d in over:
            quant = u8_views.get(d) or tensors[d]
            caps[d] = caps.get(d, int(round(np.log2(max(quant.scale) / min(quant.scale))))) - 1
            fitted = activation_quant(*u8_args[d], max_shift=max(caps[d], 0))
            if d in u8_views:
                u8_views[d] = fitted
            else:
                tensors[d] = fitted


def _channel_axis(t) -> int | None:
    """The channel (last) axis of an activation, None for scalars."""
    return len(t.shape) - 1 if len(t.shape) >= 1 else None


def _normalized_qtype(pi: PlanInputs, i: int, bits: Mapping[int, int]) -> str:
    """UINT8 when every reader of input tensor ``i`` is an 8-bit conv reading it as data, else INT16."""
    readers = [(s.op_index, pos) for s in pi.interp.steps for pos, t in enumerate(s.inputs) if t == i]
    conv_by_op = {c.op_index: c for c in pi.convs}
    ok = readers and all(k in conv_by_op and conv_by_op[k].data == i and bits[k] == 8 for k, _ in readers)
    return "UINT8" if ok and i not in pi.graph.outputs else "INT16"


def _data_quant(tensors, u8_views, c: ConvLike, b: int) -> TensorQuant:
    if b == 8 and c.data in u8_views:
        return u8_views[c.data]
    return tensors[c.data]


def eight_bit_weight_scales(pi: PlanInputs, c: ConvLike, level: str | Level) -> tuple[float, ...]:
    """The per-channel scales ``level`` gives conv ``c``'s weights at 8 bit (for a conv planned at 16 bit
    that a file writes at 8 bit)."""
    value = pi.interp.constants[c.weights]
    return _quantize_conv_weights(pi, c, value, 8, get_level(level), None, None, (None, None)).quant.scale


def _quantize_conv_weights(pi: PlanInputs, c: ConvLike, value, b: int, lv: Level, tensors, u8_views,
                           override) -> QuantConst:
    data, clip = override
    w = np.asarray(value if data is None else data, np.float64)
    axes = conv_weight_axes(pi.model, c, w.shape)
    axis, in_axis = axes.out_axis, axes.in_axis
    qmax = 127 if b == 8 else 32767
    if clip is not None:
        clip = np.broadcast_to(np.asarray(clip, np.float64), (w.shape[axis],))
        scale = np.array([f32((v if v > 0 else dead_channel_clip(clip)) / qmax) for v in clip])
    else:
        method = lv.weight_scales
        energy = None
        if method == "fitted" and in_axis is not None:
            ts = pi.stats.tensors.get(pi.graph.tensors[c.data].name)
            if ts is not None and ts.channel_min.size == w.shape[in_axis]:
                energy = np.maximum(np.abs(ts.channel_min), np.abs(ts.channel_max)) ** 2
        # quantize with the float32-rounded scales the file stores
        key = ("search_clip", c.weights, b, method, hashlib.sha1(w.tobytes()).hexdigest())
        if key not in pi.memo:
            pi.memo[key] = search_clip(w, axis, b, method, energy, in_axis)
        scale = np.array([f32(v / qmax) for v in pi.memo[key]])
    q = quantize_with_scale(w, axis, scale, b)
    clip_used = tuple(f32(s * qmax) for s in scale)
    tq = TensorQuant("INT8" if b == 8 else "INT16", tuple(float(s) for s in scale), (0,) * len(scale),
                     tuple(-v for v in clip_used), clip_used, axis)
    return QuantConst(q, tq)
