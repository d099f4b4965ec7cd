"""The accuracy report: per-layer errors, quantization, 16-bit gains; JSON, text and HTML forms.

    >>> report = accuracy_analysis("net_float.sim", "net_fixed.sim", images, preprocess_funcs=[pre])
    >>> print(report.summary())              # the 10 worst layers and a [CONV_CONFIG] suggestion
    >>> report.to_json("report.json"); report.to_html("report.html")
    >>> AnalysisReport.from_json("report.json") == report
    True

Layers are the float model's runtime tensors in graph order (model inputs first, then every op's
outputs); constants are not layers. See docs/analysis.md for how to read each column.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields
from typing import Any

from ..model.graph import atomic_write
from .metrics import Metrics

FORMAT = "calibrator_custom accuracy report"
VERSION = 1
#: gain_method values
GAIN_METHODS = ("measured", "estimated", "off")


def _enc(v: Any) -> Any:
    """JSON-safe: tuples to lists, non-finite floats to the strings 'inf' / '-inf'."""
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, (list, tuple)):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        return {k: _enc(x) for k, x in v.items()}
    return v


def _opt(cls, d):
    return None if d is None else cls.from_dict(d)


def _num(v) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class QuantInfo:
    """A tensor's quantization in the fixed model and how the float values fit it.

    ``range_min``/``range_max``: the real interval the integer type can hold
    (``scale * (qmin - zero_point)`` .. ``scale * (qmax - zero_point)``); ``observed_min``/``max``: the
    float model's values over the analysis inputs; ``clipped_share``: the share of those values more than
    half a step outside the range (they saturate). A tensor quantized per channel (the UINT8 data of
    8-bit convs) reports its coarsest channel's scale and zero point and the union of the channels'
    ranges, and counts each value against its own channel's range.
    """

    dtype: str
    scale: float
    zero_point: int
    range_min: float
    range_max: float
    observed_min: float
    observed_max: float
    clipped_share: float

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "QuantInfo":
        return cls(str(d["dtype"]), float(d["scale"]), int(d["zero_point"]), float(d["range_min"]),
                   float(d["range_max"]), float(d["observed_min"]), float(d["observed_max"]),
                   float(d["clipped_share"]))


@dataclass(frozen=True)
class ConvInfo:
    """A conv-like op: its bit width in the fixed model, its cost, and what 16 bit would buy.

    ``input_name`` is its first (data) input, the name ``[CONV_CONFIG] tensor_arrays`` takes.
    Measured (``gain_method='measured'``): ``gain_db`` is the rise of the model's worst-output SQNR
    when this conv alone is made 16-bit, ``noise_drop`` the share of the output noise that removes.
    Estimated: ``est_nsr`` is the analytic noise-to-signal ratio its 8-bit mode adds at its output
    (``pipeline.convert.analytic_gain``, what L4 uses). None when not computed (or already 16-bit).
    """

    op: str
    input_name: str
    bits: int
    macs: int
    gain_db: float | None = None
    noise_drop: float | None = None
    est_nsr: float | None = None

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "ConvInfo":
        return cls(str(d["op"]), str(d["input_name"]), int(d["bits"]), int(d["macs"]), _num(d.get("gain_db")),
                   _num(d.get("noise_drop")), _num(d.get("est_nsr")))


@dataclass(frozen=True)
class LayerRow:
    """One float-model tensor: where it comes from, its errors, its quantization.

    ``status``: ``'ok'`` (compared), ``'fused'`` (the fixed model has no such tensor) or
    ``'unquantized'`` (the fixed model keeps it in float, e.g. a detection post-process output;
    compared without quantization info). ``accumulated``: the fixed model run end to end vs the
    float model. ``isolated``: the op alone in fixed point on the float model's own inputs,
    quantized as the fixed op reads them, vs the float output (model inputs: their quantization).
    ``u8_view``: the UINT8 copy 8-bit convolutions read of an INT16 tensor.
    """

    position: int
    name: str
    op: str
    op_index: int
    status: str
    shape: tuple[int, ...]
    dtype: str
    is_output: bool = False
    accumulated: Metrics | None = None
    isolated: Metrics | None = None
    quant: QuantInfo | None = None
    u8_view: QuantInfo | None = None
    conv: ConvInfo | None = None

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("accumulated", "isolated", "quant", "u8_view", "conv"):
            d[k] = None if d[k] is None else d[k].to_dict()
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LayerRow":
        return cls(int(d["position"]), str(d["name"]), str(d["op"]), int(d["op_index"]), str(d["status"]),
                   tuple(int(v) for v in d["shape"]), str(d["dtype"]), bool(d.get("is_output", False)),
                   _opt(Metrics, d.get("accumulated")), _opt(Metrics, d.get("isolated")),
                   _opt(QuantInfo, d.get("quant")), _opt(QuantInfo, d.get("u8_view")), _opt(ConvInfo, d.get("conv")))

    @property
    def clipped_share(self) -> float:
        """The larger clipped share of the tensor and of its UINT8 view."""
        return max([q.clipped_share for q in (self.quant, self.u8_view) if q is not None], default=0.0)


@dataclass(frozen=True)
class Suggestion:
    """A ``[CONV_CONFIG] tensor_arrays`` line: the conv inputs whose convolutions to make 16-bit.

    ``convs``: the output names of the convolutions it upgrades; ``mac_share``: the share of all conv
    multiply-accumulates then at 16 bit; ``base_db`` / ``predicted_db``: the SQNR of ``measured_on``
    (the worst model output, or for a model ending in a float detection post-process the worst of
    its inputs) on the gain samples now and with the line applied (measured; None when estimated).
    """

    tensor_arrays: tuple[str, ...]
    convs: tuple[str, ...]
    mac_share: float
    base_db: float | None = None
    predicted_db: float | None = None
    rule: str = ""
    measured_on: str = ""

    def line(self) -> str:
        return "tensor_arrays=" + ",".join(self.tensor_arrays) + ";"

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "Suggestion":
        return cls(tuple(d["tensor_arrays"]), tuple(d["convs"]), float(d["mac_share"]), _num(d.get("base_db")),
                   _num(d.get("predicted_db")), str(d.get("rule", "")), str(d.get("measured_on", "")))


@dataclass(frozen=True)
class AnalysisReport:
    """The whole analysis (see the module docstring); frozen, compares by value."""

    float_model: str
    fixed_model: str
    num_samples: int
    layers: tuple[LayerRow, ...]
    gain_method: str = "off"
    gain_samples: int = 0
    suggestion: Suggestion | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    # ------------------------------------------------------------------ queries
    @property
    def fused(self) -> tuple[str, ...]:
        """Float tensors the fixed model has no counterpart for."""
        return tuple(r.name for r in self.layers if r.status == "fused")

    @property
    def outputs(self) -> tuple[LayerRow, ...]:
        return tuple(r for r in self.layers if r.is_output)

    def layer(self, name: str) -> LayerRow:
        """The row of tensor ``name`` (KeyError naming close names when absent)."""
        for r in self.layers:
            if r.name == name:
                return r
        raise KeyError(f"no layer {name!r} in the report; layers: {[r.name for r in self.layers][:20]}")

    def worst_layers(self, n: int = 10, by: str = "isolated") -> list[LayerRow]:
        """The ``n`` layers with the lowest SQNR (``by`` = 'isolated' or 'accumulated'); inputs excluded
        from the isolated ranking (their error is the input's own quantization)."""
        if by not in ("isolated", "accumulated"):
            raise ValueError(f"worst_layers: by={by!r}; use 'isolated' or 'accumulated'")
        rows = [r for r in self.layers if getattr(r, by) is not None and (by == "accumulated" or r.op_index >= 0)]
        return sorted(rows, key=lambda r: (getattr(r, by).sqnr_db, r.position))[:n]

    def worst_output_db(self) -> float | None:
        vals = [r.accumulated.sqnr_db for r in self.outputs if r.accumulated is not None]
        return min(vals) if vals else None

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "float_model": self.float_model,
                "fixed_model": self.fixed_model, "num_samples": self.num_samples, "gain_method": self.gain_method,
                "gain_samples": self.gain_samples,
                "suggestion": None if self.suggestion is None else self.suggestion.to_dict(),
                "notes": list(self.notes), "layers": [r.to_dict() for r in self.layers]}

    @classmethod
    def from_dict(cls, d: dict) -> "AnalysisReport":
        if d.get("format") != FORMAT:
            raise ValueError(f"not an accuracy report (format {d.get('format')!r}, expected {FORMAT!r})")
        if int(d.get("version", 0)) > VERSION:
            raise ValueError(f"accuracy report version {d.get('version')} is newer than this reader ({VERSION}); "
                             "upgrade calibrator_custom")
        return cls(str(d["float_model"]), str(d["fixed_model"]), int(d["num_samples"]),
                   tuple(LayerRow.from_dict(r) for r in d["layers"]), str(d.get("gain_method", "off")),
                   int(d.get("gain_samples", 0)), _opt(Suggestion, d.get("suggestion")),
                   tuple(str(n) for n in d.get("notes", ())))

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The report as JSON text (infinities as the strings 'inf'/'-inf'); written atomically to ``path``."""
        text = json.dumps(_enc(self.to_dict()), indent=1, allow_nan=False)
        if path is not None:
            atomic_write(path, text.encode("utf-8"))
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> "AnalysisReport":
        """A report from a JSON file path or JSON text."""
        text = os.fspath(source)
        if not text.lstrip().startswith("{"):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        return cls.from_dict(json.loads(text))

    # ------------------------------------------------------------------ text and HTML
    def summary(self, n: int = 10) -> str:
        """Plain text: the outputs' SQNR, the ``n`` worst layers (isolated SQNR), clipping, the suggestion."""
        from .text import summary_text
        return summary_text(self, n)

    def to_html(self, path: str | os.PathLike | None = None) -> str:
        """A self-contained HTML page (no external resources); written atomically to ``path``."""
        from .html import report_html
        text = report_html(self, full_page=True)
        if path is not None:
            atomic_write(path, text.encode("utf-8"))
        return text

    def _repr_html_(self) -> str:
        from .html import report_html
        return report_html(self, full_page=False)

    def __str__(self) -> str:
        return self.summary()
