"""The statistics observer for the interpreter, and weight statistics from a model's constants.

    >>> collector = Collector()
    >>> sim = float_simulator("model_float.sim")
    >>> sim.add_observer(collector.observe)       # or Interpreter.run(feeds, observers=[collector.observe])
    >>> for image in images:
    ...     sim.set_input(0, image); sim.invoke()
    >>> stats = collector.finalize(model_sha256=model_sha256("model_float.sim"),
    ...                            weights=weight_stats(sim.model_obj))

The collector keeps one fixed-size :class:`TensorStats` per tensor (per-channel extremes and a histogram
of at most ``num_bins`` bins) and the per-sample log (per tensor a float per sample, and the per-channel
extremes of the first ``FIRST_SAMPLES_KEPT`` samples, :class:`~.stats.SampleExtremes`), so memory
grows by a few bytes per tensor and image at most.
"""
from __future__ import annotations

import logging
import math
from typing import Mapping

import numpy as np

from ..interpreter import Interpreter
from ..model.graph import Model
from ..ops.conv_layout import weight_channel_axis
from .histogram import DEFAULT_NUM_BINS
from .stats import CollectConfig, SampleExtremes, SampleLog, StatsSet, TensorStats, WeightStats

log = logging.getLogger(__name__)


class Collector:
    """Interpreter observer accumulating :class:`TensorStats` for every float tensor it is shown.

    Tensors are keyed by name; a second tensor with an already-used name (other index) is keyed
    ``"<name>#<index>"`` with a warning. Non-float tensors are ignored.
    """

    def __init__(self, num_bins: int = DEFAULT_NUM_BINS):
        self.config = CollectConfig(num_bins)
        self._stats: dict[str, TensorStats] = {}
        self._keys: dict[int, str] = {}
        self._names: dict[str, int] = {}
        self._warned: set[str] = set()
        self._labels: dict[int, str] = {}
        self._abs_max: dict[str, list[float]] = {}
        self._first_nonfinite: dict[str, int] = {}
        self._extremes: dict[str, SampleExtremes] = {}

    def begin_sample(self, label: str) -> None:
        """Name the next run (e.g. its image path) in warnings and in the per-sample log."""
        self._labels[self.num_samples] = str(label)

    def _label(self, s: int) -> str:
        return self._labels.get(s) or f"sample #{s}"

    def _key(self, tensor_index: int, name: str) -> str:
        key = self._keys.get(tensor_index)
        if key is None:
            key = name
            if self._names.get(name, tensor_index) != tensor_index:
                key = f"{name}#{tensor_index}"
                log.warning("tensors %d and %d are both named %r; statistics of %d are kept as %r",
                            self._names[name], tensor_index, name, tensor_index, key)
            self._names.setdefault(name, tensor_index)
            self._keys[tensor_index] = key
        return key

    def observe(self, tensor_index: int, name: str, value: np.ndarray) -> None:
        """Add one value of tensor ``tensor_index`` (the interpreter's observer signature)."""
        if not isinstance(value, np.ndarray):
            value = np.asarray(value)
        if value.dtype.kind != "f":
            return
        key = self._key(tensor_index, name)
        old = self._stats.get(key)
        if old is None:
            old = TensorStats.empty(key, tensor_index, np.shape(value), self.config.num_bins)
        new, summary = old.add_sample(value)
        abs_max, nonfinite = summary.abs_max, summary.nonfinite
        s = old.num_samples
        ext = self._extremes.get(key)
        self._extremes[key] = (SampleExtremes.of_sample(summary.channel_min, summary.channel_max) if ext is None
                               else ext.add(summary.channel_min, summary.channel_max))
        per_sample = self._abs_max.setdefault(key, [])
        per_sample.extend([math.nan] * (s - len(per_sample)))
        per_sample.append(abs_max)
        if nonfinite:
            self._first_nonfinite.setdefault(key, s)
        if nonfinite and key not in self._warned:
            self._warned.add(key)
            log.warning("tensor %r has %d NaN or infinite values in %s; they are counted apart and left out of "
                        "its min/max and histogram (warned once per tensor)", key, nonfinite, self._label(s))
        self._stats[key] = new

    @property
    def num_samples(self) -> int:
        """Number of runs seen: the largest sample count of any tensor (every run shows every tensor)."""
        return max((s.num_samples for s in self._stats.values()), default=0)

    def tensor_stats(self) -> dict[str, TensorStats]:
        """A snapshot of the statistics so far, by tensor name."""
        return dict(self._stats)

    def finalize(self, *, model_sha256: str = "", model_name: str = "",
                 weights: Mapping[str, WeightStats] | None = None) -> StatsSet:
        """The statistics so far as a :class:`StatsSet` (the collector may keep observing)."""
        n = self.num_samples
        log_ = SampleLog(tuple(self._labels.get(s) for s in range(n)),
                         {k: np.array(v + [math.nan] * (n - len(v)), np.float64) for k, v in self._abs_max.items()},
                         dict(self._first_nonfinite), dict(self._extremes))
        return StatsSet(dict(self._stats), dict(weights or {}), model_sha256, model_name, n, self.config, log_)


def weight_stats(model: Model | Interpreter) -> dict[str, WeightStats]:
    """Min/max and per-output-channel min/max of every float constant an executed op reads.

    Uses the interpreter's folded constants, so float16 (DEQUANTIZE) and sparse (DENSIFY) weights are
    seen as the float32 tensors the ops actually use. The channel axis comes from the first op reading
    the tensor (``ops.conv_layout.weight_channel_axis``: the weights' output channels, else the last axis).
    """
    interp = model if isinstance(model, Interpreter) else Interpreter(model)
    tensors = interp.graph.tensors
    out: dict[str, WeightStats] = {}
    seen: set[int] = set()
    for step in interp.steps:
        for pos, i in enumerate(step.inputs):
            if i < 0 or i in seen or i not in interp.constants:
                continue
            value = interp.constants[i]
            if value.dtype.kind != "f":
                continue
            seen.add(i)
            axis = weight_channel_axis(step.op_name, pos) if value.ndim else 0
            name = tensors[i].name
            key = name if name not in out else f"{name}#{i}"
            out[key] = WeightStats.from_array(key, i, value, axis % max(value.ndim, 1))
    return out
