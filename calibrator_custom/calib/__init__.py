"""Calibration statistics: the interpreter observer, mergeable histograms, saving, parallel collection."""
from __future__ import annotations

from .collector import Collector, weight_stats
from .histogram import DEFAULT_NUM_BINS, Histogram, StatsError
from .minmax_log import format_tensor_min_max, write_tensor_min_max
from .parallel import collect_stats, collect_stats_arrays
from .stats import CollectConfig, StatsSet, TensorStats, WeightStats, channel_min_max, model_sha256

__all__ = ["Collector", "weight_stats", "DEFAULT_NUM_BINS", "Histogram", "StatsError", "format_tensor_min_max",
           "write_tensor_min_max", "collect_stats", "collect_stats_arrays", "CollectConfig", "StatsSet",
           "TensorStats", "WeightStats", "channel_min_max", "model_sha256"]
