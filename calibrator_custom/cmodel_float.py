"""The SDK's cmodel-float stage: the float model with its calibrated ranges written into every tensor.

The vendor's ``convert_cmodel_float`` turns a ``*_float.sim`` (description ``Sigmastar Float``) into a
``*_cmodel_float.sim`` (``Sigmastar Cmodel Float``) that simulates like the float model and carries, in
each tensor's QuantizationParameters, what the fixed conversion needs (measured on the vendor's files,
``docs/model_format.md``):

* every activation: ``min`` / ``max`` = its calibrated range, except that the output of a MAX_POOL_2D,
  PAD or RESHAPE takes the range of its input (in graph order), and then the inputs of a
  CONCATENATION take the range of its output; a UINT8-planned one that a convolution or fully
  connected op reads as its data input also ``scale = (max - min) / 255`` and
  ``zero_point = round(-min / scale)`` (other UINT8 tensors, e.g. max-pool or pad outputs, get none);
* every float constant: ``min`` / ``max`` of its values (a ``[2, C]`` bias: of both rows); an
  INT8-planned one (weights) also ``scale = max(|min|, |max|) / 127``, ``zero_point = 0``;
* integer constants (paddings, shapes) are left as they are.

:func:`cmodel_float_model` reproduces those fields. Not reproduced (their rules are not established): the
vendor's fusions in this stage (a graph-input convolution absorbs the RELU after it), its re-planned
tensor arena and the accumulator ranges (``sgs_acc_max`` / ``sgs_acc_min``) of the conv outputs; the
per-tensor tag bytes follow the written file's own layout, by the vendor's rule (``model.sgs_tags``).
A TFLite float model is written as TFLite with ``min``/``max`` only (TFLite reads
scale/zero_point on a float tensor as a quantization).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from .model import sgs_dialect
from .model.graph import Model, Quantization

_CONV_LIKE = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
#: ops whose output takes its input's range in the vendor's cmodel-float files
_RANGE_KEEPING = ("MAX_POOL_2D", "PAD", "RESHAPE")

#: what the vendor's cmodel-float writer does not reproduce here (for the warning)
NOT_REPRODUCED = ("op fusions of the vendor's Float2CmodelFloat passes", "the re-planned tensor arena",
                  "the convs' accumulator ranges (sgs_acc_max / sgs_acc_min)")


def _uint8_params(lo: float, hi: float) -> tuple[float, int]:
    """scale = (hi - lo) / 255, zero_point = round(-lo / scale) clipped to 0..255 (scale 1 for an empty range)."""
    scale = (hi - lo) / 255.0
    if not scale > 0:
        return 1.0, int(np.clip(np.rint(-lo), 0, 255))
    return float(np.float32(scale)), int(np.clip(np.rint(-lo / scale), 0, 255))


def cmodel_float_model(model: Model, ranges: Mapping[str, tuple[float, float]],
                       planned_types: Mapping[str, str]) -> Model:
    """A copy of the float ``model`` in the cmodel-float form above.

    ``ranges``: calibrated (min, max) of activations by tensor name (missing ones keep no range);
    ``planned_types``: the fixed model's type of each tensor by name (``'UINT8'``, ``'INT8'``, ``'INT16'``...).
    """
    m = model.copy()
    vendor = m.is_vendor
    g = m.main
    ranges = dict(ranges)
    conv_inputs = set()
    order = [g.operators[i] for i in g.topological_order()]
    for op in order:
        name = m.op_name(op)
        src = g.tensors[op.inputs[0]].name if op.inputs and op.inputs[0] >= 0 else None
        if name in _RANGE_KEEPING and src in ranges:
            ranges[g.tensors[op.outputs[0]].name] = ranges[src]
    for op in order:
        name = m.op_name(op)
        if name in _CONV_LIKE and op.inputs and op.inputs[0] >= 0:
            conv_inputs.add(op.inputs[0])
        if name == "CONCATENATION" and g.tensors[op.outputs[0]].name in ranges:
            for t in op.inputs:
                if t >= 0 and m.tensor_data(g.tensors[t]) is None:
                    ranges[g.tensors[t].name] = ranges[g.tensors[op.outputs[0]].name]
    for k, t in enumerate(g.tensors):
        data = m.tensor_data(t)
        if data is not None:
            if data.dtype.kind != "f" or data.size == 0:
                continue
            lo, hi = float(np.min(data)), float(np.max(data))
        elif t.name in ranges:
            lo, hi = (float(v) for v in ranges[t.name])
        else:
            continue
        base = t.quantization or Quantization()
        q = dataclasses.replace(base, min=(lo,), max=(hi,), extra=dict(base.extra))
        qtype = planned_types.get(t.name, "")
        if vendor and data is None and qtype == "UINT8" and k in conv_inputs:
            scale, zero_point = _uint8_params(lo, hi)
            q = dataclasses.replace(q, scale=(scale,), zero_point=(zero_point,))
        elif vendor and data is not None and qtype == "INT8":
            scale = max(abs(lo), abs(hi)) / 127.0
            q = dataclasses.replace(q, scale=(float(np.float32(scale)) if scale > 0 else 1.0,), zero_point=(0,))
        g.tensors[k] = dataclasses.replace(t, quantization=q)
    if vendor:
        m.description = sgs_dialect.DESCRIPTIONS["sgs_cmodel_float"]
        m.dialect = "sgs_cmodel_float"
    m.source = None
    return m


def ranges_in_model(model: Model) -> dict[str, tuple[float, float]]:
    """(min, max) of every activation (tensor without data) that carries a min and max in ``model``: what a
    cmodel-float file holds for the fixed conversion."""
    out = {}
    for t in model.main.tensors:
        q = t.quantization
        if q is not None and q.min and q.max and model.tensor_data(t) is None:
            out[t.name] = (float(min(q.min)), float(max(q.max)))
    return out
