"""Error metrics of a fixed-point tensor against its float reference, pooled over samples.

For a reference ``r`` (the float model's tensor) and a test value ``t`` (the fixed model's tensor,
dequantized), with ``e = t - r`` and sums over every element of every sample:

* ``cosine = sum(r*t) / sqrt(sum(r*r) * sum(t*t))`` (1.0 when both are all zero, 0.0 when only one is);
* ``sqnr_db = 10*log10(sum(r*r) / sum(e*e))`` (+inf when ``e`` is all zero, -inf when ``r`` is
  all zero and ``e`` is not);
* ``mse = mean(e*e)``, ``max_abs = max|e|``;
* relative to the float tensor's range ``R = max(r) - min(r)``: ``rel_max_abs = max_abs / R`` and
  ``rel_rmse = sqrt(mse) / R`` (0.0 when the error is zero, +inf when ``R == 0`` and it is not).

Sums are accumulated in float64, so adding samples one at a time (:class:`ErrorAccumulator`) gives
the same numbers as one call on the concatenated arrays, up to float64 rounding. No metric is ever
NaN, so reports compare equal after a JSON round trip.
"""
from __future__ import annotations

import math
from typing import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metrics:
    """Float-vs-fixed error of one tensor (see the module docstring for the definitions)."""

    cosine: float
    sqnr_db: float
    mse: float
    max_abs: float
    rel_max_abs: float
    rel_rmse: float
    float_min: float
    float_max: float
    count: int

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict) -> "Metrics":
        return cls(**{k: (int(d[k]) if k == "count" else float(d[k])) for k in cls.__dataclass_fields__})


def sqnr_db(signal_energy: float, noise_energy: float) -> float:
    """``10*log10(signal / noise)`` with the conventions of the module docstring (never NaN)."""
    if noise_energy <= 0:
        return math.inf
    if signal_energy <= 0:
        return -math.inf
    return 10.0 * math.log10(signal_energy / noise_energy)


def pooled_sqnr_db(references: Sequence[np.ndarray], tests: Sequence[np.ndarray]) -> float:
    """SQNR of ``tests`` against ``references`` (one array per sample), energies summed over the samples
    in float64: ``sqnr_db(sum |ref|**2, sum |ref - test|**2)``."""
    if len(references) != len(tests):
        raise ValueError(f"pooled_sqnr_db: {len(references)} reference(s) but {len(tests)} test array(s)")
    signal = sum(float(np.sum(np.square(np.asarray(r, np.float64)))) for r in references)
    noise = sum(float(np.sum(np.square(np.asarray(r, np.float64) - np.asarray(t, np.float64))))
                for r, t in zip(references, tests))
    return sqnr_db(signal, noise)


def _relative(err: float, span: float) -> float:
    if err <= 0:
        return 0.0
    return err / span if span > 0 else math.inf


class ErrorAccumulator:
    """Pools the sums behind :class:`Metrics` over any number of ``add(reference, test)`` calls."""

    def __init__(self) -> None:
        self.ref2 = 0.0
        self.test2 = 0.0
        self.dot = 0.0
        self.err2 = 0.0
        self.max_abs = 0.0
        self.ref_min = math.inf
        self.ref_max = -math.inf
        self.count = 0

    def add(self, reference: np.ndarray, test: np.ndarray) -> None:
        """Add one sample; ``test`` must have the reference's shape (or broadcast to it)."""
        r = np.asarray(reference, np.float64)
        t = np.broadcast_to(np.asarray(test, np.float64), r.shape)
        if r.size == 0:
            return
        e = t - r
        self.ref2 += float(np.sum(r * r))
        self.test2 += float(np.sum(t * t))
        self.dot += float(np.sum(r * t))
        self.err2 += float(np.sum(e * e))
        self.max_abs = max(self.max_abs, float(np.max(np.abs(e))))
        self.ref_min = min(self.ref_min, float(np.min(r)))
        self.ref_max = max(self.ref_max, float(np.max(r)))
        self.count += int(r.size)

    def result(self) -> Metrics | None:
        """The metrics so far, or None before any non-empty sample."""
        if self.count == 0:
            return None
        if self.ref2 <= 0 or self.test2 <= 0:
            cosine = 1.0 if self.ref2 <= 0 and self.test2 <= 0 else 0.0
        else:
            cosine = float(np.clip(self.dot / math.sqrt(self.ref2 * self.test2), -1.0, 1.0))
        mse = self.err2 / self.count
        span = self.ref_max - self.ref_min
        return Metrics(cosine=cosine, sqnr_db=sqnr_db(self.ref2, self.err2), mse=mse, max_abs=self.max_abs,
                       rel_max_abs=_relative(self.max_abs, span), rel_rmse=_relative(math.sqrt(mse), span),
                       float_min=self.ref_min, float_max=self.ref_max, count=self.count)


def compare(reference: np.ndarray, test: np.ndarray) -> Metrics | None:
    """The metrics of one pair of arrays (None when they are empty)."""
    acc = ErrorAccumulator()
    acc.add(reference, test)
    return acc.result()
