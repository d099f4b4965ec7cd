"""Calibration statistics: per-tensor min/max, per-channel min/max and histograms, mergeable and saved.

``TensorStats`` (one activation tensor) and ``WeightStats`` (one constant) are immutable; ``merge``
combines statistics of disjoint sets of runs exactly (min of mins, max of maxes, summed counts,
histograms per :mod:`.histogram`), so it is associative and commutative and a merge of shards equals
the single pass bit for bit. ``StatsSet`` holds all of them plus the meta data (model sha256, number
of samples, config) and is saved to / loaded from one ``.npz`` file (no pickle) with a format version.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np

from ..model.graph import Model, atomic_write
from .histogram import DEFAULT_NUM_BINS, F64, Histogram, StatsError, check_num_bins

#: version of the .npz layout written by :meth:`StatsSet.save`
FORMAT_VERSION = 1
#: the per-sample log keeps each tensor's per-channel extremes sample by sample for this many first samples
#: (and merged over the later ones): L5 measures on the first samples, each with the ranges of all the
#: other samples (leave-one-out), without running the later samples again
FIRST_SAMPLES_KEPT = 8
FORMAT_NAME = "calibrator_custom.stats"


def model_sha256(model: str | os.PathLike | Model | bytes) -> str:
    """Hex sha256 of a model file's bytes (of ``Model.to_bytes()`` for an in-memory model)."""
    h = hashlib.sha256()
    if isinstance(model, Model):
        h.update(model.to_bytes())
    elif isinstance(model, (bytes, bytearray)):
        h.update(model)
    else:
        with open(os.fspath(model), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class CollectConfig:
    """How statistics were collected; statistics merge only with the same config."""

    num_bins: int = DEFAULT_NUM_BINS

    def __post_init__(self) -> None:
        check_num_bins(self.num_bins)


def _channel_reduce(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column min and max of a (R, C) array; folds power-of-two row blocks first (numpy's axis-0
    reduction is slow for few columns)."""
    r, c = rows.shape
    k = 1
    while k * 2 * c <= 256 and r % (k * 2) == 0:
        k *= 2
    if k > 1:
        wide = rows.reshape(r // k, k * c)
        return wide.min(axis=0).reshape(k, c).min(axis=0), wide.max(axis=0).reshape(k, c).max(axis=0)
    return rows.min(axis=0), rows.max(axis=0)


def channel_min_max(values: np.ndarray, axis: int = -1) -> tuple[F64, F64, int, int]:
    """(min, max) per channel along ``axis`` over the finite values, float64, -0.0 -> +0.0; + NaN, inf counts.

    A channel without finite values gets (+inf, -inf). A 0-d array is one channel.
    """
    v = np.asarray(values)
    if v.ndim == 0:
        v = v.reshape(1)
        axis = 0
    if axis not in (-1, v.ndim - 1):
        v = np.moveaxis(v, axis, -1)
    c = v.shape[-1]
    if v.size == 0:
        return np.full(c, np.inf), np.full(c, -np.inf), 0, 0
    rows = v.reshape(-1, c)
    cmin, cmax = _channel_reduce(rows)
    if np.isfinite(cmin).all() and np.isfinite(cmax).all():
        return cmin.astype(np.float64) + 0.0, cmax.astype(np.float64) + 0.0, 0, 0
    finite = np.isfinite(rows)
    num_nan = int(np.isnan(rows).sum())
    num_inf = int(rows.size - finite.sum()) - num_nan
    cmin = np.where(finite, rows, np.inf).min(axis=0)
    cmax = np.where(finite, rows, -np.inf).max(axis=0)
    return cmin.astype(np.float64) + 0.0, cmax.astype(np.float64) + 0.0, num_nan, num_inf


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


@dataclass(frozen=True)
class SampleSummary:
    """One sample of one tensor: its largest finite ``|value|`` (NaN if none), NaN + inf count, and
    per-channel extremes (last axis)."""

    abs_max: float
    nonfinite: int
    channel_min: F64
    channel_max: F64


@dataclass(frozen=True, eq=False)
class SampleExtremes:
    """One tensor's per-channel extremes sample by sample for its first ``FIRST_SAMPLES_KEPT`` samples
    (``first_min[s]``, ``[k, C]``) and merged over the later ones (``later_min``, ``[C]``; +inf / -inf
    when there are none): fixed memory whatever the number of samples."""

    first_min: F64
    first_max: F64
    later_min: F64
    later_max: F64

    @classmethod
    def of_sample(cls, channel_min: F64, channel_max: F64) -> SampleExtremes:
        c = len(channel_min)
        return cls(np.asarray(channel_min, np.float64).reshape(1, c), np.asarray(channel_max, np.float64).reshape(1, c),
                   np.full(c, np.inf), np.full(c, -np.inf))

    @property
    def num_first(self) -> int:
        return len(self.first_min)

    def add(self, channel_min: F64, channel_max: F64) -> SampleExtremes:
        """One more sample (``self.merge(of_sample(...))``, without the copies once the first rows are full)."""
        if self.num_first < FIRST_SAMPLES_KEPT:
            return self.merge(self.of_sample(channel_min, channel_max))
        return SampleExtremes(self.first_min, self.first_max, np.minimum(self.later_min, channel_min),
                              np.maximum(self.later_max, channel_max))

    def merge(self, other: SampleExtremes) -> SampleExtremes:
        """These samples followed by ``other``'s (``self`` holds every sample it saw in ``first_*`` when
        it has fewer than ``FIRST_SAMPLES_KEPT``)."""
        if other.first_min.shape[1:] != self.first_min.shape[1:]:
            raise StatsError(f"cannot merge per-sample extremes of {self.first_min.shape[1]} and "
                             f"{other.first_min.shape[1]} channels")
        rows_min = np.concatenate([self.first_min, other.first_min])
        rows_max = np.concatenate([self.first_max, other.first_max])
        k = FIRST_SAMPLES_KEPT
        later_min = np.minimum(self.later_min, other.later_min)
        later_max = np.maximum(self.later_max, other.later_max)
        if len(rows_min) > k:
            later_min = np.minimum(later_min, rows_min[k:].min(axis=0))
            later_max = np.maximum(later_max, rows_max[k:].max(axis=0))
        return SampleExtremes(rows_min[:k], rows_max[:k], later_min, later_max)


@dataclass(frozen=True, eq=False)
class TensorStats:
    """Statistics of one float activation tensor over ``num_samples`` runs.

    Per-channel extremes are along the last axis; ``histogram`` counts the finite values and holds the
    global min/max; ``num_nan``/``num_inf`` count the non-finite values, which are excluded elsewhere.
    """

    name: str
    index: int
    shape: tuple[int, ...]
    num_samples: int
    num_nan: int
    num_inf: int
    channel_min: F64
    channel_max: F64
    histogram: Histogram

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "channel_min", _frozen(self.channel_min))
        object.__setattr__(self, "channel_max", _frozen(self.channel_max))
        if self.channel_min.ndim != 1 or self.channel_min.shape != self.channel_max.shape:
            raise StatsError(f"tensor {self.name!r}: channel_min {self.channel_min.shape} and channel_max "
                             f"{self.channel_max.shape} must be 1-D of the same length")

    @classmethod
    def from_array(cls, name: str, index: int, value: np.ndarray, num_bins: int = DEFAULT_NUM_BINS) -> TensorStats:
        """Statistics of one observed value (one sample)."""
        return cls.empty(name, index, np.shape(value), num_bins).add(value)

    @classmethod
    def empty(cls, name: str, index: int, shape: tuple[int, ...], num_bins: int = DEFAULT_NUM_BINS) -> TensorStats:
        """Statistics of no sample yet of a tensor of ``shape``."""
        channels = shape[-1] if shape else 1
        return cls(name, index, shape, 0, 0, 0, np.full(channels, np.inf), np.full(channels, -np.inf),
                   Histogram.empty(num_bins))

    def add(self, value: np.ndarray) -> TensorStats:
        """``self.merge(from_array(value))`` (one more sample), binning the values at the merged width."""
        return self.add_sample(value)[0]

    def add_sample(self, value: np.ndarray) -> tuple[TensorStats, SampleSummary]:
        """(``self.add(value)``, what this one sample had: :class:`SampleSummary`)."""
        if np.shape(value) != self.shape:
            raise StatsError(f"tensor {self.name!r} had shape {list(self.shape)}, now {list(np.shape(value))}; "
                             f"statistics need a fixed shape")
        cmin, cmax, num_nan, num_inf = channel_min_max(value)
        v = np.asarray(value)
        if num_nan or num_inf:
            v = v[np.isfinite(v)]
        hist = self.histogram
        abs_max = math.nan
        if v.size:
            lo, hi = float(cmin.min()), float(cmax.max())
            hist = hist.add_finite(v, lo, hi)
            abs_max = max(-lo, hi)
        new = TensorStats(self.name, self.index, self.shape, self.num_samples + 1, self.num_nan + num_nan,
                          self.num_inf + num_inf, np.minimum(self.channel_min, cmin),
                          np.maximum(self.channel_max, cmax), hist)
        return new, SampleSummary(abs_max, num_nan + num_inf, cmin, cmax)

    @property
    def min(self) -> float:
        """Smallest finite value seen (+inf when none)."""
        return self.histogram.min_value

    @property
    def max(self) -> float:
        """Largest finite value seen (-inf when none)."""
        return self.histogram.max_value

    @property
    def num_finite(self) -> int:
        return self.histogram.total

    def percentile(self, q: float | np.ndarray) -> float | F64:
        """Histogram percentile (q in [0, 100]) of the finite values, clipped to [min, max]."""
        try:
            return self.histogram.percentile(q)
        except StatsError as e:
            raise StatsError(f"tensor {self.name!r}: {e}") from None

    def merge(self, other: TensorStats) -> TensorStats:
        """Statistics of both sets of runs (exact, associative, commutative)."""
        if self.name != other.name or self.shape != other.shape:
            raise StatsError(f"cannot merge statistics of tensor {self.name!r} shape {list(self.shape)} with "
                             f"tensor {other.name!r} shape {list(other.shape)}")
        return TensorStats(self.name, min(self.index, other.index), self.shape,
                           self.num_samples + other.num_samples, self.num_nan + other.num_nan,
                           self.num_inf + other.num_inf, np.minimum(self.channel_min, other.channel_min),
                           np.maximum(self.channel_max, other.channel_max), self.histogram.merge(other.histogram))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorStats):
            return NotImplemented
        return (self.name == other.name and self.index == other.index and self.shape == other.shape
                and self.num_samples == other.num_samples and self.num_nan == other.num_nan
                and self.num_inf == other.num_inf and _same_array(self.channel_min, other.channel_min)
                and _same_array(self.channel_max, other.channel_max) and self.histogram == other.histogram)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class WeightStats:
    """Min/max of one constant float tensor, overall and per output channel along ``axis``."""

    name: str
    index: int
    shape: tuple[int, ...]
    axis: int
    channel_min: F64
    channel_max: F64

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "channel_min", _frozen(self.channel_min))
        object.__setattr__(self, "channel_max", _frozen(self.channel_max))

    @classmethod
    def from_array(cls, name: str, index: int, value: np.ndarray, axis: int) -> WeightStats:
        cmin, cmax, _, _ = channel_min_max(value, axis)
        return cls(name, index, np.shape(value), axis, cmin, cmax)

    @property
    def min(self) -> float:
        return float(self.channel_min.min()) if self.channel_min.size else math.inf

    @property
    def max(self) -> float:
        return float(self.channel_max.max()) if self.channel_max.size else -math.inf

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WeightStats):
            return NotImplemented
        return (self.name == other.name and self.index == other.index and self.shape == other.shape
                and self.axis == other.axis and _same_array(self.channel_min, other.channel_min)
                and _same_array(self.channel_max, other.channel_max))

    __hash__ = None  # type: ignore[assignment]


def _sorted(d: Mapping[str, TensorStats] | Mapping[str, WeightStats]) -> dict:
    return dict(sorted(d.items(), key=lambda kv: (kv[1].index, kv[0])))


@dataclass(frozen=True, eq=False)
class SampleLog:
    """Per-sample ranges of the runs behind a StatsSet, to review the calibration data (in memory only).

    ``labels[s]`` names sample ``s`` (an image path) or is None; ``abs_max[name][s]`` is the largest
    finite ``|value|`` tensor ``name`` had in sample ``s`` (NaN when it had none or was not seen);
    ``first_nonfinite[name]`` is the first sample in which the tensor held NaN or inf;
    ``extremes[name]`` its per-channel extremes, per sample for the first ones (:class:`SampleExtremes`).
    """

    labels: tuple[str | None, ...] = ()
    abs_max: Mapping[str, F64] = field(default_factory=dict)
    first_nonfinite: Mapping[str, int] = field(default_factory=dict)
    extremes: Mapping[str, SampleExtremes] = field(default_factory=dict)

    def label(self, s: int) -> str:
        """What sample ``s`` was: its image, else ``'sample #s'`` (its position in the whole run)."""
        text = self.labels[s] if 0 <= s < len(self.labels) else None
        return text if text else f"sample #{s}"

    def merge(self, other: SampleLog) -> SampleLog:
        """This log followed by ``other`` (sample indices of ``other`` shift by ``len(self.labels)``)."""
        n, m = len(self.labels), len(other.labels)
        pad = np.full(n, np.nan), np.full(m, np.nan)
        abs_max = {k: np.concatenate([self.abs_max.get(k, pad[0]), other.abs_max.get(k, pad[1])])
                   for k in {**self.abs_max, **other.abs_max}}
        first = dict(other.first_nonfinite)
        first = {k: s + n for k, s in first.items()}
        first.update(self.first_nonfinite)
        # a tensor one side never saw keeps the other side's rows (its sample count then tells they do not
        # line up with the samples)
        extremes = {k: (self.extremes[k].merge(other.extremes[k]) if k in self.extremes and k in other.extremes
                        else self.extremes.get(k) or other.extremes[k])
                    for k in {**self.extremes, **other.extremes}}
        return SampleLog(self.labels + other.labels, abs_max, first, extremes)


@dataclass(frozen=True, eq=False)
class StatsSet:
    """All statistics of one model: activations and weights by tensor name, plus meta data.

    ``model_name`` is informational (the model file's base name); identity is ``model_sha256``.
    ``samples`` (per-sample ranges, for :func:`~calibrator_custom.calib.review.review_stats`) is kept in
    memory only: it is not saved, not compared, and merged only when both sides have it.
    """

    tensors: Mapping[str, TensorStats] = field(default_factory=dict)
    weights: Mapping[str, WeightStats] = field(default_factory=dict)
    model_sha256: str = ""
    model_name: str = ""
    num_samples: int = 0
    config: CollectConfig = field(default_factory=CollectConfig)
    samples: SampleLog | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tensors", _sorted(self.tensors))
        object.__setattr__(self, "weights", _sorted(self.weights))

    # ------------------------------------------------------------------ combination
    def merge(self, other: StatsSet) -> StatsSet:
        """Statistics of both sets of runs; exact, associative and commutative.

        Both must come from the same model (sha256) and config. Weight statistics are a union (equal
        where both have them); activation statistics of the same tensor are merged.
        """
        if self.model_sha256 != other.model_sha256:
            raise StatsError(f"cannot merge statistics of different models: {self.model_name or '?'!r} "
                             f"(sha256 {self.model_sha256[:16]}) and {other.model_name or '?'!r} "
                             f"(sha256 {other.model_sha256[:16]})")
        if self.config != other.config:
            raise StatsError(f"cannot merge statistics collected with different configs: {self.config} and "
                             f"{other.config}")
        tensors = dict(self.tensors)
        for name, ts in other.tensors.items():
            tensors[name] = tensors[name].merge(ts) if name in tensors else ts
        weights = dict(self.weights)
        for name, ws in other.weights.items():
            if name in weights and weights[name] != ws:
                raise StatsError(f"weight statistics of {name!r} differ between the two sets; "
                                 f"they cannot come from the same model")
            weights[name] = ws
        names = [n for n in (self.model_name, other.model_name) if n]
        samples = (self.samples.merge(other.samples) if self.samples is not None and other.samples is not None
                   else None)
        return StatsSet(tensors, weights, self.model_sha256, min(names) if names else "",
                        self.num_samples + other.num_samples, self.config, samples)

    def with_weights(self, weights: Mapping[str, WeightStats]) -> StatsSet:
        return replace(self, weights=dict(weights))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatsSet):
            return NotImplemented
        return (self.model_sha256 == other.model_sha256 and self.model_name == other.model_name
                and self.num_samples == other.num_samples and self.config == other.config
                and dict(self.tensors) == dict(other.tensors) and dict(self.weights) == dict(other.weights))

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        """Write to one ``.npz`` (numeric arrays + a JSON header; no pickle), atomically."""
        buf = io.BytesIO()
        np.savez(buf, **_to_arrays(self))
        atomic_write(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike, model: str | os.PathLike | Model | None = None) -> StatsSet:
        """Read a file written by :meth:`save`; with ``model``, check it was collected for that model."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise StatsError(f"statistics file {path!r} does not exist or is not a file")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise StatsError(f"statistics file {path!r} is not a readable .npz file: {e}") from None
        try:
            stats = _from_arrays(arrays)
        except StatsError as e:
            raise StatsError(f"statistics file {path!r}: {e}") from None
        if model is not None:
            sha = model_sha256(model)
            if sha != stats.model_sha256:
                where = "the given in-memory model" if isinstance(model, Model) else repr(os.fspath(model))
                raise StatsError(f"statistics file {path!r} was collected for model {stats.model_name or '?'!r} "
                                 f"(sha256 {stats.model_sha256}), not for {where} (sha256 {sha}); "
                                 f"collect statistics for this model again")
        return stats


# ---------------------------------------------------------------------- .npz layout
def _to_arrays(s: StatsSet) -> dict[str, np.ndarray]:
    acts, wts = list(s.tensors.values()), list(s.weights.values())
    header = {
        "format": FORMAT_NAME, "model_sha256": s.model_sha256, "model_name": s.model_name,
        "num_samples": s.num_samples, "config": {"num_bins": s.config.num_bins},
        "tensors": [{"name": t.name, "shape": list(t.shape)} for t in acts],
        "weights": [{"name": w.name, "shape": list(w.shape)} for w in wts],
    }

    def cat(parts: list[np.ndarray], dtype) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return {
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "header": np.array(json.dumps(header)),
        # per activation tensor: index, num_samples, num_nan, num_inf, exponent, first_bin, channels, bins
        "act_int": np.array([[t.index, t.num_samples, t.num_nan, t.num_inf, t.histogram.exponent,
                              t.histogram.first_bin, len(t.channel_min), len(t.histogram.counts)] for t in acts],
                            np.int64).reshape(-1, 8),
        "act_range": np.array([[t.min, t.max] for t in acts], np.float64).reshape(-1, 2),
        "act_channel_min": cat([t.channel_min for t in acts], np.float64),
        "act_channel_max": cat([t.channel_max for t in acts], np.float64),
        "act_counts": cat([t.histogram.counts for t in acts], np.int64),
        # per weight tensor: index, axis, channels
        "w_int": np.array([[w.index, w.axis, len(w.channel_min)] for w in wts], np.int64).reshape(-1, 3),
        "w_channel_min": cat([w.channel_min for w in wts], np.float64),
        "w_channel_max": cat([w.channel_max for w in wts], np.float64),
    }


_KEYS = {"format_version": np.int64, "header": np.str_, "act_int": np.int64, "act_range": np.float64,
         "act_channel_min": np.float64, "act_channel_max": np.float64, "act_counts": np.int64,
         "w_int": np.int64, "w_channel_min": np.float64, "w_channel_max": np.float64}


def _split(a: np.ndarray, lengths: np.ndarray, key: str) -> list[np.ndarray]:
    if (lengths < 0).any() or int(lengths.sum()) != len(a):
        raise StatsError(f"{key!r} holds {len(a)} values but the tables say {int(lengths.sum())}")
    return np.split(a, np.cumsum(lengths)[:-1]) if len(lengths) else []


def _from_arrays(arrays: dict[str, np.ndarray]) -> StatsSet:
    for key, dtype in _KEYS.items():
        if key not in arrays:
            raise StatsError(f"missing array {key!r}; is this a calibrator_custom statistics file?")
        if arrays[key].dtype.type is not dtype:
            raise StatsError(f"array {key!r} has dtype {arrays[key].dtype}, expected {np.dtype(dtype)}")
    version = int(arrays["format_version"])
    if version != FORMAT_VERSION:
        raise StatsError(f"format version {version} is not supported (this version reads {FORMAT_VERSION}); "
                         f"collect the statistics again")
    try:
        header = json.loads(str(arrays["header"]))
        config = CollectConfig(int(header["config"]["num_bins"]))
        act_meta, w_meta = header["tensors"], header["weights"]
        if header.get("format") != FORMAT_NAME:
            raise StatsError(f"header format is {header.get('format')!r}, expected {FORMAT_NAME!r}")
        act_int, act_range, w_int = arrays["act_int"], arrays["act_range"], arrays["w_int"]
        if act_int.shape != (len(act_meta), 8) or act_range.shape != (len(act_meta), 2) or \
                w_int.shape != (len(w_meta), 3):
            raise StatsError("the header and the tables list different numbers of tensors")
        chmin = _split(arrays["act_channel_min"], act_int[:, 6], "act_channel_min")
        chmax = _split(arrays["act_channel_max"], act_int[:, 6], "act_channel_max")
        counts = _split(arrays["act_counts"], act_int[:, 7], "act_counts")
        wmin = _split(arrays["w_channel_min"], w_int[:, 2], "w_channel_min")
        wmax = _split(arrays["w_channel_max"], w_int[:, 2], "w_channel_max")
        tensors = {}
        for j, m in enumerate(act_meta):
            index, n, nan, inf, k, i0 = (int(x) for x in act_int[j, :6])
            hist = Histogram(config.num_bins, k, i0, counts[j].copy(), float(act_range[j, 0]),
                             float(act_range[j, 1]))
            tensors[m["name"]] = TensorStats(m["name"], index, tuple(m["shape"]), n, nan, inf, chmin[j], chmax[j],
                                             hist)
        weights = {m["name"]: WeightStats(m["name"], int(w_int[j, 0]), tuple(m["shape"]), int(w_int[j, 1]),
                                          wmin[j], wmax[j]) for j, m in enumerate(w_meta)}
        return StatsSet(tensors, weights, str(header["model_sha256"]), str(header["model_name"]),
                        int(header["num_samples"]), config)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, StatsError):
            raise
        raise StatsError(f"corrupt header or tables ({type(e).__name__}: {e})") from None
