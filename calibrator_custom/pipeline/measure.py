"""Measuring fixed models against their float model on calibration inputs (what ``analysis.gains`` and
its tests measure; L5 itself measures in float, ``pipeline.float_sim``).

* ``_Measure``: the float model's values of every conv's data and output, and of the measured
  tensors (``measured_tensors``), per calibration sample;
* ``_isolated``: each conv of a fixed model run alone on the float model's own inputs to it;
* ``_e2e_nsr``: the worst-output noise-to-signal ratio of a whole fixed model.

The trials of one search share work and still compute the integers independent runs would: the fixed
models share prepared ops (``_PrepareMemo``) and each trial re-runs only the ops it changes
(``_BaseRun``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from ..fixed.feeds import channel_params, raw_from_normalized
from ..fixed.registry import get_fixed_op
from ..interpreter import Interpreter
from ..model.graph import Model
from ..ops.conv_layout import CONV_LAYOUTS
from ..ops.registry import OpDef
from ..plan import PlanInputs, quant_rule
from ..rounding import round_half_up
from .sensitivity import _ticking


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
    post-process that runs in float (its ``QuantRule`` has ``float_outputs``: detection NMS, whose
    outputs jump when a detection appears or disappears) are replaced by that op's runtime inputs
    (boxes, scores...)."""
    g = pi.graph
    producer = {o: s for s in pi.interp.steps for o in s.outputs}
    out: list[int] = []
    for i in g.outputs:
        s = producer.get(i)
        if s is not None and quant_rule(s.op_name).float_outputs:
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
        di = s.inputs[CONV_LAYOUTS[c.op_name].data]
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
            xq = np.clip(round_half_up(x / ds) + dz, info.min, info.max).astype(dt.np_dtype)
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
