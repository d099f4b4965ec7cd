"""Accuracy analysis: a per-layer report of where a fixed model loses accuracy, and what to do about it.

    >>> from calibrator_custom.analysis import accuracy_analysis
    >>> rep = accuracy_analysis("net_float.sim", "net_fixed.sim", image_paths,
    ...                         preprocess_funcs=[calibrator_custom.utils.image_preprocess_func("net")])
    >>> print(rep.summary()); rep.to_html("report.html"); rep.to_json("report.json")

See docs/analysis.md.
"""
from __future__ import annotations

from .api import accuracy_analysis
from .metrics import Metrics, pooled_sqnr_db
from .report import AnalysisReport, ConvInfo, LayerRow, QuantInfo, Suggestion

__all__ = ["accuracy_analysis", "AnalysisReport", "ConvInfo", "LayerRow", "Metrics", "QuantInfo", "Suggestion",
           "pooled_sqnr_db"]
