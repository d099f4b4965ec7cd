"""Review of calibration statistics before ranges are fixed: refuse unusable ranges, warn about outliers.

* A tensor the calibration observed whose range is not usable is refused with a ``StatsError`` naming
  the tensor and, when the statistics carry their per-sample log (collected in this process), the
  image: no finite value in any sample (every value NaN or inf), or a value beyond ``RANGE_LIMIT``.
* A sample is *far outside the others* for a tensor when its largest ``|value|`` exceeds
  ``OUTLIER_FACTOR`` times the median, over all samples, of each sample's largest ``|value|`` of that
  tensor. The median ignores a few extreme samples, so it is robust; the test needs at least
  ``OUTLIER_MIN_SAMPLES`` samples and a median above 0, and looks only at tensors of at least
  ``OUTLIER_MIN_VALUES`` values per sample: the largest of many values is stable from image to image,
  while a single score or logit may rightly vary by orders of magnitude (a hand-presence score is
  near 0 without a hand). Each such image gets one warning naming the tensor where it is most
  extreme and how many tensors it stretches.
"""
from __future__ import annotations

import logging

import numpy as np

from .histogram import StatsError
from .stats import SampleLog, StatsSet

log = logging.getLogger(__name__)

#: the largest |value| a range may reach (imported or calibrated): a quantization step of such a range
#: is at most 2 * 1e20 / 255 < 8e17, so the product of any two scales stays finite in float32 (3.4e38)
RANGE_LIMIT = 1e20

#: a sample is far outside the others when its largest |value| exceeds this many times the median
OUTLIER_FACTOR = 100.0
#: the outlier test needs at least this many samples
OUTLIER_MIN_SAMPLES = 3
#: the outlier test looks only at tensors with at least this many values per sample
OUTLIER_MIN_VALUES = 64
#: warnings about single images before a summary line
MAX_OUTLIER_WARNINGS = 10


def _where(samples: SampleLog | None, s: int | None) -> str:
    return f" (in {samples.label(s)})" if samples is not None and s is not None else ""


def _largest_sample(samples: SampleLog | None, name: str) -> int | None:
    a = samples.abs_max.get(name) if samples is not None else None
    if a is None or not np.isfinite(a).any():
        return None
    return int(np.nanargmax(a))


def _outliers(stats: StatsSet, samples: SampleLog) -> dict[int, list[tuple[float, str, float, float]]]:
    """sample -> [(ratio, tensor, its |value|, median)] for each tensor where the sample is far outside."""
    found: dict[int, list[tuple[float, str, float, float]]] = {}
    for name, a in samples.abs_max.items():
        ts = stats.tensors.get(name)
        if ts is not None and int(np.prod(ts.shape, dtype=np.int64)) < OUTLIER_MIN_VALUES:
            continue
        finite = a[np.isfinite(a)]
        if finite.size < OUTLIER_MIN_SAMPLES:
            continue
        median = float(np.median(finite))
        if not median > 0:
            continue
        for s in np.flatnonzero(np.isfinite(a) & (a > OUTLIER_FACTOR * median)):
            found.setdefault(int(s), []).append((float(a[s]) / median, name, float(a[s]), median))
    return found


def warn_outlier_samples(stats: StatsSet) -> list[str]:
    """Warn (logging.warning) once per sample that is far outside the others; return their labels."""
    samples = stats.samples
    if samples is None:
        return []
    found = _outliers(stats, samples)
    labels = []
    for k, s in enumerate(sorted(found)):
        ratio, name, value, median = max(found[s])
        labels.append(samples.label(s))
        if k < MAX_OUTLIER_WARNINGS:
            log.warning("calibration %s is far outside the other samples: tensor %r reaches |x| = %.4g, %.3g times "
                        "the median %.4g of the samples' largest |x|; it stretches the range of %d tensor(s), "
                        "costing precision for every other sample. Check it or leave it out (far = more than "
                        "%g times the median)", samples.label(s), name, value, ratio, median, len(found[s]),
                        OUTLIER_FACTOR)
    if len(found) > MAX_OUTLIER_WARNINGS:
        log.warning("%d more calibration samples are far outside the others: %s", len(found) - MAX_OUTLIER_WARNINGS,
                    ", ".join(labels[MAX_OUTLIER_WARNINGS:MAX_OUTLIER_WARNINGS + 10]))
    return labels


def check_ranges(stats: StatsSet) -> None:
    """StatsError for the first tensor whose calibrated range is not finite or beyond ``RANGE_LIMIT``."""
    samples = stats.samples
    for name, ts in stats.tensors.items():
        if ts.num_samples == 0:
            continue
        if ts.num_finite == 0:
            first = samples.first_nonfinite.get(name) if samples is not None else None
            raise StatsError(f"calibration gave tensor {name!r} no finite value: all its values were NaN or inf in "
                             f"all {ts.num_samples} sample(s){_where(samples, first)}; its range is not finite. "
                             "Check the preprocessing (its output must be finite numbers) and the images")
        if max(-ts.min, ts.max) > RANGE_LIMIT:
            raise StatsError(f"calibration gave tensor {name!r} the range [{ts.min:.6g}, {ts.max:.6g}]"
                             f"{_where(samples, _largest_sample(samples, name))}, beyond +-{RANGE_LIMIT:g}; such "
                             "a range cannot be quantized. Check that image and the preprocessing")


def review_stats(stats: StatsSet) -> None:
    """Warn about outlier samples, then refuse unusable ranges (see the module docstring)."""
    warn_outlier_samples(stats)
    check_ranges(stats)
