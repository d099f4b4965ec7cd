"""The quantization plan: the data the planner (``quant``) writes and the fixed-model writer (``fixed``)
reads, so neither imports the other.

``PlanInputs`` is what planning reads (the constant-folded float model, its interpreter, its conv-like
ops, the statistics and the input_config.ini); a ``QuantPlan`` says, for every tensor of the float
model's main graph that survives constant folding, its integer type and quantization
(``TensorQuant``), and holds the quantized constants (``QuantConst``). Indices are tensor / op
indices of the float model's main graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .calib.review import review_stats
from .calib.stats import StatsSet
from .config import InputConfig, InputSpec
from .interpreter import Interpreter
from .model.graph import Model
from .ops.conv_layout import ConvLike, conv_like_ops

#: ops whose float constant inputs stay float in the fixed model (they run in float)
FLOAT_CONSTANT_OPS = ("TFLite_Detection_PostProcess", "TFLite_Detection_NMS")


@dataclass(frozen=True)
class TensorQuant:
    """A tensor's integer type and quantization (real = scale * (q - zero_point)).

    ``min``/``max`` are the per-channel ranges reported to users and exported by save_quant_param
    (clipped to the range used, so they reproduce the scale); ``axis`` is the quantized dimension.
    """

    qtype: str
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    min: tuple[float, ...] = ()
    max: tuple[float, ...] = ()
    axis: int = 0


@dataclass(frozen=True)
class QuantConst:
    """A constant of the fixed model: its stored (integer or float) values and quantization."""

    data: np.ndarray
    quant: TensorQuant


@dataclass(frozen=True)
class QuantPlan:
    """Everything the writer needs; indices are tensor / op indices of the float model's main graph."""

    level: str
    conv_bits: Mapping[int, int]
    tensors: Mapping[int, TensorQuant]  # runtime tensors (activations, inputs, outputs)
    u8_views: Mapping[int, TensorQuant]  # INT16 tensors also read by 8-bit convs: their UINT8 copy
    constants: Mapping[int, QuantConst]
    input_specs: Mapping[int, InputSpec] = field(default_factory=dict)
    dequantize_outputs: Mapping[int, bool] = field(default_factory=dict)


@dataclass
class PlanInputs:
    """What planning reads: the float model (folded), its conv-like ops, statistics and config."""

    model: Model
    interp: Interpreter
    convs: list[ConvLike]
    stats: StatsSet
    config: InputConfig
    #: results of the pure searches every plan of these inputs repeats (fitted ranges, weight clips);
    #: L5 builds tens of plans that differ in a few convs
    memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._steps = {s.op_index: s for s in self.interp.steps}

    @classmethod
    def create(cls, model: Model, stats: StatsSet, config: InputConfig) -> "PlanInputs":
        """Plan inputs; the statistics are reviewed first (``calib.review.review_stats``: outlier warnings, and a
        StatsError for a tensor whose calibrated range is not finite)."""
        review_stats(stats)
        interp = Interpreter(model)
        return cls(model, interp, conv_like_ops(model, interp.constants), stats, config)

    @property
    def graph(self):
        return self.model.main

    def runtime_tensors(self) -> list[int]:
        """Float-model tensors computed or fed at run time (in first-appearance order)."""
        seen, out = set(), []
        for i in list(self.graph.inputs) + [t for s in self.interp.steps for t in (*s.inputs, *s.outputs)]:
            if i >= 0 and i not in self.interp.constants and i not in seen:
                seen.add(i)
                out.append(i)
        return out

    def used_constants(self) -> list[int]:
        seen, out = set(), []
        for s in self.interp.steps:
            for i in s.inputs:
                if i >= 0 and i in self.interp.constants and i not in seen:
                    seen.add(i)
                    out.append(i)
        for i in self.graph.outputs:
            if i in self.interp.constants and i not in seen:
                seen.add(i)
                out.append(i)
        return out

    def step_of(self, op_index: int):
        """The interpreter step of float op ``op_index`` (None when it was folded into a constant)."""
        return self._steps.get(op_index)
