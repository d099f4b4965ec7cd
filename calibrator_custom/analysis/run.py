"""Running the float and the fixed model side by side: accumulated and isolated errors, clipping.

Per sample (a list of float-model inputs):

1. the float model runs with every tensor kept (and a statistics observer, for re-planning);
2. the fixed model runs on the equivalent raw inputs (``fixed.feeds.raw_from_normalized``: image
   inputs get the pixels whose normalisation is the float input), every tensor kept;
3. accumulated error: every float tensor vs its fixed counterpart, dequantized;
4. isolated error: every fixed op again, alone, on the float model's own values of its inputs
   quantized as that op reads them (the ``_u8`` copy for 8-bit convolutions; round half up, as
   the integer kernels requantize), vs the float output. A model input's quantized tensor is taken
   from the fixed run itself: the model's own input op (``InputNormalize``, ``QUANTIZE``) is exactly
   "the float input quantized as the fixed model does it" (image inputs sit on rounding ties, which
   only that op breaks the same way);
5. clipping: the float values outside each counterpart's (and UINT8 view's) representable range.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from ..calib import Collector, StatsSet
from ..config import InputSpec
from ..fixed.feeds import raw_from_normalized
from ..fixed.registry import get_fixed_op
from ..interpreter import Interpreter
from ..model.graph import Model, Tensor
from ..fixed.feeds import channel_params
from .mapping import TensorMap, dequantize, quantize, representable_range
from .metrics import ErrorAccumulator
from .report import LayerRow, QuantInfo

log = logging.getLogger(__name__)


@dataclass
class _Clip:
    """Values of one float tensor outside one fixed tensor's range, counted over samples."""

    tensor: Tensor
    lo: float
    hi: float
    clipped: int = 0
    total: int = 0

    @classmethod
    def of(cls, t: Tensor) -> "_Clip | None":
        rng = representable_range(t)
        if rng is None:
            return None
        return cls(t, rng[0], rng[1])

    def add(self, x: np.ndarray) -> None:
        """Count the values more than half a step outside their channel's range (per tensor: the tensor's)."""
        scale, zp = channel_params(self.tensor, np.ndim(x))
        info = np.iinfo(self.tensor.np_dtype)
        lo, hi = (info.min - zp) * scale - scale / 2, (info.max - zp) * scale + scale / 2
        self.clipped += int(np.count_nonzero((x < lo) | (x > hi)))
        self.total += int(x.size)

    def info(self, observed_min: float, observed_max: float) -> QuantInfo:
        """Per channel (UINT8 conv data): the coarsest channel's scale and zero point, the union of the ranges."""
        q = self.tensor.quantization
        k = int(np.argmax(q.scale))
        zps = q.zero_point or [0] * len(q.scale)
        return QuantInfo(self.tensor.dtype, float(q.scale[k]), int(zps[k] if len(zps) > k else zps[0]),
                         self.lo, self.hi, observed_min, observed_max,
                         self.clipped / self.total if self.total else 0.0)


@dataclass
class SideBySide:
    """Float and fixed interpreters of one model pair, and the running sums of the analysis."""

    float_model: Model
    fixed_model: Model
    specs: dict[str, InputSpec]
    fint: Interpreter = field(init=False)
    qint: Interpreter = field(init=False)
    tmap: TensorMap = field(init=False)
    acc: dict[int, ErrorAccumulator] = field(default_factory=dict)
    iso: dict[int, ErrorAccumulator] = field(default_factory=dict)
    clips: dict[int, _Clip] = field(default_factory=dict)
    view_clips: dict[int, _Clip] = field(default_factory=dict)
    collector: Collector = field(default_factory=Collector)
    failures: dict[str, str] = field(default_factory=dict)
    num_samples: int = 0

    def __post_init__(self) -> None:
        self.fint = Interpreter(self.float_model)
        self.qint = Interpreter(self.fixed_model, get_op=get_fixed_op)
        self.tmap = TensorMap.build(self.float_model, self.fixed_model)
        fg = self.fixed_model.main
        for i in self.runtime_tensors():
            j = self.tmap.counterpart.get(i)
            if j is None:
                continue
            self.acc[i] = ErrorAccumulator()
            clip = _Clip.of(fg.tensors[j])
            if clip is not None:
                self.clips[i] = clip
            if i in self.tmap.views:
                view = _Clip.of(fg.tensors[self.tmap.views[i]])
                if view is not None:
                    self.view_clips[i] = view

    # ------------------------------------------------------------------ structure
    def runtime_tensors(self) -> list[int]:
        """Float tensors computed or fed at run time, in graph order (constants are not layers)."""
        g = self.fint.graph
        seen, out = set(), []
        for i in list(g.inputs) + [o for s in self.fint.steps for o in s.outputs]:
            if i >= 0 and i not in self.fint.constants and i not in seen:
                seen.add(i)
                out.append(i)
        return out

    def producers(self) -> dict[int, tuple[str, int]]:
        """Float tensor -> (op name, op index) of the float op computing it."""
        return {o: (s.op_name, s.op_index) for s in self.fint.steps for o in s.outputs}

    # ------------------------------------------------------------------ running
    def fixed_inputs(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        g, fg = self.fint.graph, self.qint.graph
        return [raw_from_normalized(np.asarray(x), self.specs.get(g.tensors[i].name), fg.tensors[j])
                for x, i, j in zip(feeds, g.inputs, fg.inputs)]

    def add_sample(self, feeds: Sequence[np.ndarray]) -> None:
        """Run one sample through both models and every isolated op."""
        fvals = self.fint.run(list(feeds), observers=[self.collector.observe], keep="all")
        qvals = self.qint.run(self.fixed_inputs(feeds), keep="all")
        fg = self.qint.graph
        for i, a in self.acc.items():
            j = self.tmap.counterpart[i]
            if i not in fvals or j not in qvals:
                continue
            ref = fvals[i]
            a.add(ref, dequantize(fg.tensors[j], qvals[j]))
            x = np.asarray(ref, np.float64)
            if i in self.clips:
                self.clips[i].add(x)
            if i in self.view_clips:
                self.view_clips[i].add(x)
        self._isolated(fvals, qvals)
        self.num_samples += 1

    def _isolated(self, fvals: dict[int, np.ndarray], qvals: dict[int, np.ndarray]) -> None:
        fg = self.qint.graph
        rows = {j: i for i, j in self.tmap.counterpart.items()}
        # a model input enters the fixed model through its own quantizing op (InputNormalize, QUANTIZE):
        # that op's result *is* the float input quantized as the fixed model does it, ties included
        fed = {self.tmap.counterpart[i] for i in self.fint.graph.inputs if i in self.tmap.counterpart}
        for step in self.qint.steps:
            outs = [(k, j, rows[j]) for k, j in enumerate(step.outputs) if j in rows and rows[j] in fvals]
            if not outs or fg.tensors[outs[0][1]].name in self.failures:
                continue
            args = []
            for j in step.inputs:
                if j < 0:
                    args.append(None)
                elif j in self.qint.constants:
                    args.append(self.qint.constants[j])
                elif j in fed:
                    args.append(qvals[j])
                elif j in self.tmap.fixed_to_float and self.tmap.fixed_to_float[j] in fvals:
                    args.append(quantize(fg.tensors[j], fvals[self.tmap.fixed_to_float[j]]))
                else:  # a raw model input (pixels, float32 data): the value the fixed model was fed
                    args.append(qvals[j])
            try:
                res = step.kernel(*args, opt=step.params)
            except Exception as e:  # noqa: BLE001 - report the op, keep analysing the others
                name = fg.tensors[outs[0][1]].name
                self.failures[name] = f"{type(e).__name__}: {e}"
                log.warning("isolated run of op #%d %s (output %r) failed: %s", step.op_index, step.op_name, name, e)
                continue
            res = list(res) if isinstance(res, (list, tuple)) else [res]
            for k, j, i in outs:
                y = np.asarray(res[k]).astype(step.out_dtypes[k], copy=False)
                self.iso.setdefault(i, ErrorAccumulator()).add(fvals[i], dequantize(fg.tensors[j], y))

    def stats(self) -> StatsSet:
        return self.collector.finalize()

    # ------------------------------------------------------------------ results
    def rows(self) -> list[LayerRow]:
        """One LayerRow per runtime float tensor (no conv info yet)."""
        g, fg = self.fint.graph, self.qint.graph
        prod = self.producers()
        inputs, outputs = set(g.inputs), set(g.outputs)
        rows = []
        for pos, i in enumerate(self.runtime_tensors()):
            t = g.tensors[i]
            op, k = prod.get(i, ("INPUT", -1))
            j = self.tmap.counterpart.get(i)
            if j is None:
                rows.append(LayerRow(pos, t.name, op, k, "fused", tuple(t.shape), t.dtype, i in outputs))
                continue
            acc = self.acc[i].result()
            iso = self.iso[i].result() if i in self.iso else None
            if iso is None and i in inputs:
                iso = acc  # an input fed as is (RAWDATA_S16): its only error is its quantization
            lo = acc.float_min if acc else 0.0
            hi = acc.float_max if acc else 0.0
            quant = self.clips[i].info(lo, hi) if i in self.clips else None
            view = self.view_clips[i].info(lo, hi) if i in self.view_clips else None
            status = "ok" if quant is not None or fg.tensors[j].dtype != "FLOAT32" else "unquantized"
            rows.append(LayerRow(pos, t.name, op, k, status, tuple(t.shape), fg.tensors[j].dtype, i in outputs,
                                 acc, iso, quant, view))
        return rows


def run_samples(sbs: SideBySide, samples: Iterable[Sequence[np.ndarray]], keep: int,
                progress: Callable[[int, int], None] | None = None, total: int = 0) -> list[list[np.ndarray]]:
    """Feed every sample; returns the first ``keep`` samples' inputs (for the gains)."""
    kept = []
    for n, feeds in enumerate(samples, 1):
        sbs.add_sample(feeds)
        if len(kept) < keep:
            kept.append(list(feeds))
        if progress is not None:
            progress(n, total)
    return kept
