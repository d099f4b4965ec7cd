"""L5's measurements in float on cached float activations: an 8-bit conv simulated in float and the
float model run downstream of a replaced tensor (no fixed model is built or run).

* ``_FloatSim``: the cache and the simulated runs;
* ``_Samples``: float tensor values per sample (what ``l5._bias_corrections`` reads);
* ``quant_without``: a UINT8 data quantization narrowed to the ranges of the other calibration samples
  (``_FloatSim.loo``: leave-one-out, ``L5Options.leave_one_out``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping

import numpy as np

from ..ops.registry import get_op
from ..plan import PlanInputs, QuantPlan, TensorQuant
from ..quant.planner import MAX_CHANNEL_SHIFT, activation_quant
from ..quant.ranges import Range, covering
from .measure import measured_tensors
from .sensitivity import _ticking


@dataclass
class _Samples:
    """Float tensor values per sample (what ``_bias_corrections`` reads)."""

    samples: list[dict[int, np.ndarray]]


def _on_u8_grid(x: np.ndarray, dq) -> np.ndarray:
    """``((clip(round_half_up(x / s) + zp, 0, 255) - zp) * s).astype(float32)`` (float64 in between; the
    same operations in place, on one buffer)."""
    scale = np.asarray(dq.scale, np.float64)
    zp = np.asarray(dq.zero_point, np.float64)
    t = np.divide(x, scale, dtype=np.float64)
    t += 0.5
    np.floor(t, out=t)  # round_half_up
    t += zp
    np.maximum(t, 0, out=t)  # np.clip(t, 0, 255)
    np.minimum(t, 255, out=t)
    t -= zp
    t *= scale
    return t.astype(np.float32)


def _channel_cap(dq: TensorQuant) -> int | None:
    """The largest channel shift ``activation_quant`` reproduces ``dq`` (per-channel UINT8) with from its
    own range and channel ranges (``planner._fit_biases`` may have lowered it), None if none does."""
    rng = Range(min(dq.min), max(dq.max))
    for cap in range(MAX_CHANNEL_SHIFT, -1, -1):
        if activation_quant(rng, "UINT8", dq.min, dq.max, dq.axis, max_shift=cap) == dq:
            return cap
    return None


def quant_without(dq: TensorQuant, lo: np.ndarray, hi: np.ndarray, cap: int | None | str = "find") -> TensorQuant:
    """``dq`` (UINT8 data of an 8-bit conv) with its range and channel ranges narrowed to ``[lo, hi]``
    (per channel: the extremes of the calibration samples other than the one measured), the grid
    recomputed as the planner would (``activation_quant``, the same channel-shift limit): the
    quantization calibrating without that sample would give, up to the fitted part of the tensor
    range, which is kept. Other quantizations, and ones that cannot be reproduced, as they are.
    ``cap``: ``_channel_cap(dq)`` when known (per-channel ``dq``)."""
    if dq.qtype != "UINT8" or not dq.min or not dq.max:
        return dq
    lo = np.asarray(lo, np.float64).ravel()
    hi = np.asarray(hi, np.float64).ravel()
    if len(dq.scale) > 1:
        cap = _channel_cap(dq) if cap == "find" else cap
        if cap is None or lo.size != len(dq.min):
            return dq
        cmax = np.minimum(np.asarray(dq.max, np.float64), hi)
        cmin = np.minimum(np.maximum(np.asarray(dq.min, np.float64), lo), cmax)
        t_lo, t_hi = covering(cmin.min(), cmax.max())
        return activation_quant(Range(t_lo, t_hi, "leave-one-out"), "UINT8", cmin, cmax, dq.axis, max_shift=cap)
    if activation_quant(Range(dq.min[0], dq.max[0]), "UINT8") != dq:
        return dq
    t_hi = min(dq.max[0], float(hi.max()))
    t_lo = min(max(dq.min[0], float(lo.min())), t_hi)
    return activation_quant(Range(*covering(t_lo, t_hi), "leave-one-out"), "UINT8")


class _FloatSim:
    """An 8-bit conv simulated in float (its data rounded to its UINT8 grid, its weights to the plan's
    integers, both dequantized) and the float model run downstream of a replaced tensor, everything
    upstream taken from the cache.

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
        #: (conv op, sample) -> (data quantization, the conv's simulated 8-bit output): kept by ``keep_8bit``
        #: for the per-conv error runs, which start from the same outputs the range choice computed
        self._kept: dict[tuple[int, int], tuple[object, np.ndarray]] = {}
        #: data tensor -> (per-channel minima, maxima) ``[len(values), channels]`` of the calibration
        #: samples other than each cached one: an 8-bit conv reading it is simulated on sample ``n``
        #: with its quantization narrowed to row ``n`` (``quant_without``); empty: the plan's as it is
        self.loo: Mapping[int, tuple[np.ndarray, np.ndarray]] = {}
        self._loo_quant: dict[tuple[int, int], list[tuple[TensorQuant, TensorQuant]]] = {}
        self._caps: dict[int, tuple[TensorQuant, int | None]] = {}  # data tensor -> (dq, _channel_cap(dq))

    @classmethod
    def collect(cls, pi: PlanInputs, plan: QuantPlan, feeds, tick=None, *, range_samples: int = 3,
                noise_samples: int = 3, check_samples: int = 3) -> "_FloatSim":
        """Float runs of ``feeds``: every tensor of the first ``noise_samples + check_samples`` samples,
        only the conv data of the others (for the bias correction's means)."""
        full = noise_samples + check_samples
        conv_data = {c.data for c in pi.convs}
        values = []
        for n, f in enumerate(_ticking(feeds, tick)):
            values.append(pi.interp.run(list(f), keep="all" if n < full else conv_data))
        n_noise = min(len(values), noise_samples)
        check = list(range(n_noise, min(len(values), full)))
        # too few samples for separate checks: they reuse the measured ones
        return cls(pi, plan, values, min(len(values), range_samples), n_noise, check or list(range(n_noise)))

    def _dequantized_weights(self, c) -> np.ndarray:
        if c.weights not in self._weights:
            qc = self.plan.constants[c.weights]
            w = qc.data.astype(np.float64)
            shape = [-1 if a == qc.quant.axis else 1 for a in range(w.ndim)]
            self._weights[c.weights] = (w * np.asarray(qc.quant.scale, np.float64).reshape(shape)).astype(np.float32)
        return self._weights[c.weights]

    def _params(self, c, bias_delta) -> tuple:
        """The float op's prepared parameters with the dequantized 8-bit weights (and ``bias_delta``
        added to the bias): prepare bakes constant weights and biases into them."""
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

    def sample_quant(self, d: int, n: int, dq):
        """The quantization data tensor ``d`` (planned as ``dq``) is simulated with on sample ``n``: ``dq``
        narrowed to the other samples' ranges where ``loo`` has them, else ``dq``."""
        loo = self.loo.get(d)
        if loo is None or n >= len(loo[0]) or not isinstance(dq, TensorQuant):
            return dq
        for planned, narrowed in self._loo_quant.get((d, n), ()):
            if planned is dq or planned == dq:  # the same object nearly always: no hashing of the tuples
                return narrowed
        known = self._caps.get(d)
        if known is None or not (known[0] is dq or known[0] == dq):
            known = self._caps[d] = (dq, _channel_cap(dq) if dq.qtype == "UINT8" and len(dq.scale) > 1 else None)
        cap = known[1]
        narrowed = quant_without(dq, loo[0][n], loo[1][n], cap)
        self._loo_quant.setdefault((d, n), []).append((dq, narrowed))
        return narrowed

    def conv_8bit(self, c, n: int, dq, bias_delta=None, x: np.ndarray | None = None) -> np.ndarray:
        """Conv ``c``'s output on sample ``n`` (or on data ``x`` of sample ``n``) in 8-bit arithmetic,
        simulated in float: ``x_q = clip(floor(x / s + 0.5) + zp, 0, 255)``, the conv run on
        ``(x_q - zp) * s``; ``dq`` as ``sample_quant`` gives it for sample ``n``."""
        dq = self.sample_quant(c.data, n, dq)
        step = self.pi.step_of(c.op_index)
        vals = self.values[n]
        x = vals[c.data] if x is None else x
        params, infos = self._params(c, bias_delta)
        args = [None if i < 0 else (infos[pos].data if i in self.pi.interp.constants else vals[i])
                for pos, i in enumerate(step.inputs)]
        args[step.inputs.index(c.data)] = _on_u8_grid(x, dq)
        it = self.pi.interp
        return it._call(step.op_index, step.op_name, step.kernel, args, params, step.out_dtypes)[0]

    def conv_error(self, c, n: int, dq, keep: dict | None = None) -> float:
        """Squared error of conv ``c``'s simulated 8-bit output on sample ``n`` (``keep``: the output is
        stored there under ``n``, for ``keep_8bit``)."""
        y = self.values[n][self.pi.step_of(c.op_index).outputs[0]]
        y8 = self.conv_8bit(c, n, dq)
        if keep is not None:
            keep[n] = y8
        return float(np.sum(np.square(y8.astype(np.float64) - y)))

    def keep_8bit(self, c, dq, outputs: dict) -> None:
        """Keep ``outputs`` (sample -> conv ``c``'s simulated output with data quantization ``dq``, no bias
        correction) for ``conv_8bit_kept``."""
        for n, y8 in outputs.items():
            self._kept[(c.op_index, n)] = (self.sample_quant(c.data, n, dq), y8)

    def conv_8bit_kept(self, c, n: int, dq) -> np.ndarray:
        """``conv_8bit(c, n, dq)``, the kept output where ``keep_8bit`` stored it for the same quantization
        on that sample (``sample_quant``: not when ``loo`` was set in between and changes it)."""
        kept = self._kept.get((c.op_index, n))
        if kept is not None and kept[0] == self.sample_quant(c.data, n, dq):
            return kept[1]
        return self.conv_8bit(c, n, dq)

    def drop_kept(self) -> None:
        """Forget the outputs ``keep_8bit`` kept."""
        self._kept.clear()

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
        """Per measured tensor: ``sum((got - float)**2)`` on sample ``n``."""
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
