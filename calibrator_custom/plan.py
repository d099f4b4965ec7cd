"""The quantization plan: the data the planner (``quant``) writes and the fixed-model writer (``fixed``)
reads, so neither imports the other.

``PlanInputs`` is what planning reads (the constant-folded float model, its interpreter, its conv-like
ops, the statistics and the input_config.ini); a ``QuantPlan`` says, for every tensor of the float
model's main graph that survives constant folding, its integer type and quantization
(``TensorQuant``), and holds the quantized constants (``QuantConst``). Indices are tensor / op
indices of the float model's main graph. ``QUANT_RULES`` is the op -> quantization-rule table both
sides read.
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
from .ops.conv_layout import CONV_LAYOUTS, ConvLike, conv_like_ops


@dataclass(frozen=True)
class QuantRule:
    """How the planner types an op's tensors and how the fixed-model writer writes them (docs/op_table.md)."""

    name: str
    #: one line for people (the quantization column of docs/op_table.md)
    does: str
    #: conv-like (with constant weights: ``ops.conv_layout.conv_like_ops``): weights INT8 or INT16 and
    #: bias INT32 or INT64 by the op's bit width (8 or 16), its data input UINT8 per channel when every
    #: reader of it is an 8-bit conv-like op
    conv_like: bool = False
    #: its outputs are FLOAT32 without quantization in the fixed model (the op runs in float)
    float_outputs: bool = False
    #: its float constant inputs stay FLOAT32 in the fixed model
    float_constants: bool = False


#: the rule of every op not in :data:`QUANT_RULES`
DEFAULT_QUANT_RULE = QuantRule("default", "every float tensor INT16 (symmetric, per tensor), its float constants too")
CONV_LIKE_RULE = QuantRule(
    "conv-like", "conv-like: 8-bit mode (data UINT8 per channel, weights INT8 per output channel, bias INT32) "
    "or 16-bit mode (data and weights INT16, bias INT64), by [CONV_CONFIG] and L4/L5", conv_like=True)
FLOAT_RULE = QuantRule("float", "runs in float: outputs FLOAT32 unquantized, float constant inputs stay FLOAT32",
                       float_outputs=True, float_constants=True)
#: op -> its quantization rule, the one source the planner (``quant.qtypes``, ``quant.planner``), the
#: fixed-model writer and the pipeline read, and docs/op_table.md lists; every other op follows
#: :data:`DEFAULT_QUANT_RULE`. Model inputs follow input_config.ini whatever reads them.
QUANT_RULES: Mapping[str, QuantRule] = {
    **{op: CONV_LIKE_RULE for op in CONV_LAYOUTS},
    **{op: FLOAT_RULE for op in ("TFLite_Detection_PostProcess", "TFLite_Detection_NMS")},
}


def quant_rule(op_name: str) -> QuantRule:
    """The quantization rule of ``op_name`` (:data:`QUANT_RULES`, else :data:`DEFAULT_QUANT_RULE`)."""
    return QUANT_RULES.get(op_name, DEFAULT_QUANT_RULE)


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
    #: conv op index -> the mean of each channel of its data input, for the convs whose bias the plan corrects
    #: for the mean shift of weight quantization (L5; the corrected biases are in ``constants``): a writer that
    #: requantizes a conv from its float weights (the vendor's dialect) corrects the bias for its own codes
    conv_input_means: Mapping[int, np.ndarray] = field(default_factory=dict)


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
