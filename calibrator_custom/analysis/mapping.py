"""Which fixed-model tensor stands for each float-model tensor, and how to (de)quantize values.

The fixed-model writer (``fixed.writer``) keeps the float model's tensor names, except:

* an image input ``x`` is fed raw pixels under the name ``x``; the float model's ``x`` is the
  fixed model's ``x_normalized`` (the output of ``InputNormalize``);
* a quantized RAWDATA_F32 input ``x`` is fed float32 as ``x``; its counterpart is ``x_quantized``;
* a dequantized output ``y`` is the float32 result of ``Fix2Float``; the quantized tensor the
  model computes is ``y_int16``, which is the counterpart (its dequantized value is the float32);
* ``t_u8`` is the UINT8 copy of the INT16 tensor ``t`` that 8-bit convolutions read: a second
  quantization of ``t`` (``views``), not a tensor of its own.

A runtime float tensor with no counterpart was fused away by the fixed model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import InputConfig, InputSpec, OutputSpec
from ..fixed.feeds import channel_params
from ..model.graph import Model, Tensor
from ..rounding import round_half_up


@dataclass(frozen=True)
class TensorMap:
    """Float tensor index -> fixed tensor index, plus the UINT8 views and the reverse lookups."""

    counterpart: dict[int, int]  # float tensor -> fixed tensor holding its value
    views: dict[int, int]  # float tensor -> fixed ``<name>_u8`` copy
    fixed_to_float: dict[int, int]  # fixed tensor (counterparts and views) -> float tensor

    @classmethod
    def build(cls, float_model: Model, fixed_model: Model) -> "TensorMap":
        g, fg = float_model.main, fixed_model.main
        by_name: dict[str, int] = {}
        for j, t in enumerate(fg.tensors):
            by_name.setdefault(t.name, j)
        inputs, outputs = set(g.inputs), set(g.outputs)
        counterpart, views = {}, {}
        for i, t in enumerate(g.tensors):
            names = [t.name]
            if i in inputs:
                names = [f"{t.name}_normalized", f"{t.name}_quantized", t.name]
            elif i in outputs:
                names = [f"{t.name}_int16", t.name]
            for n in names:
                if n in by_name:
                    counterpart[i] = by_name[n]
                    break
            u8 = by_name.get(f"{t.name}_u8")
            if u8 is not None and fg.tensors[u8].dtype == "UINT8":
                views[i] = u8
        reverse = {j: i for i, j in counterpart.items()}
        reverse.update({j: i for i, j in views.items()})
        return cls(counterpart, views, reverse)


def dequantize(t: Tensor, value: np.ndarray) -> np.ndarray:
    """The real value (float64) of fixed tensor ``t`` holding ``value``: ``scale * (q - zero_point)``."""
    v = np.asarray(value)
    p = channel_params(t, v.ndim)
    if p is None or not np.issubdtype(v.dtype, np.integer):
        return v.astype(np.float64)
    scale, zp = p
    return (v.astype(np.float64) - zp) * scale


def quantize(t: Tensor, real: np.ndarray) -> np.ndarray:
    """``real`` as fixed tensor ``t`` stores it: ``clip(floor(real / scale + 1/2) + zero_point)`` (round half up,
    as the integer kernels' requantization rounds); float tensors get float32, unquantized integers a cast."""
    x = np.asarray(real)
    dtype = t.np_dtype
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    p = channel_params(t, x.ndim)
    if p is None:
        return x.astype(dtype)
    scale, zp = p
    info = np.iinfo(dtype)
    q = round_half_up(x.astype(np.float64) / scale) + zp
    return np.clip(q, info.min, info.max).astype(dtype)


def representable_range(t: Tensor) -> tuple[float, float] | None:
    """The real interval fixed tensor ``t`` can hold (the union over channels when per channel; None when
    it is not quantized)."""
    q = t.quantization
    if q is None or not q.scale or not np.issubdtype(t.np_dtype, np.integer):
        return None
    scale = np.asarray(q.scale, np.float64)
    zp = np.asarray(q.zero_point if q.zero_point else [0], np.float64)
    info = np.iinfo(t.np_dtype)
    return float(np.min((info.min - zp) * scale)), float(np.max((info.max - zp) * scale))


def input_specs_from_metadata(meta: dict) -> dict[str, InputSpec]:
    """The InputSpec of every configured input, from a fixed model's ``calibrator_custom_fixed`` metadata."""
    out = {}
    for m in meta.get("inputs", []):
        if "quantizations" not in m:  # the input had no [INPUT_CONFIG] entry
            continue
        out[m["name"]] = InputSpec(
            name=m["name"], training_input_format=m["training_input_formats"], input_format=m["input_formats"],
            quantization=bool(m["quantizations"]), mean=tuple(float(v) for v in m.get("mean", ())),
            std=tuple(float(v) for v in m.get("std", ())), width_alignment=int(m.get("input_width_alignment", 1)),
            height_alignment=int(m.get("input_height_alignment", 1)), layout=m.get("layouts", "NHWC"))
    return out


def config_from_metadata(meta: dict, source: str) -> InputConfig:
    """An InputConfig equivalent (for planning) to the one the fixed model was converted with, minus
    [CONV_CONFIG] (the fixed model's own weight types say which convolutions are 16-bit)."""
    specs = input_specs_from_metadata(meta)
    outputs = tuple(OutputSpec(m["name"], bool(m.get("dequantizations", False))) for m in meta.get("outputs", []))
    return InputConfig(path=source, inputs=tuple(specs.values()), outputs=outputs)
