"""The planner overrides every plan of one conversion shares, as one frozen value."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..plan import PlanInputs, QuantPlan, TensorQuant
from ..quant.planner import activation_quants, build_plan
from ..quant.qparam import QuantParamOverrides
from ..quant.ranges import Range


@dataclass(frozen=True)
class PlanOverrides:
    """``build_plan``'s overrides (see there): an imported quant_param's, and L5's measured ranges."""

    range_overrides: Mapping[int, Range] = field(default_factory=dict)
    u8_overrides: Mapping[int, Range] = field(default_factory=dict)
    weight_overrides: Mapping[int, tuple[np.ndarray | None, np.ndarray | None]] = field(default_factory=dict)
    bits_overrides: Mapping[int, int] = field(default_factory=dict)
    const_data: Mapping[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_quant_param(cls, ov: QuantParamOverrides) -> "PlanOverrides":
        return cls(ov.ranges, ov.u8_ranges, ov.weights, ov.bits, ov.const_data)

    def plan(self, pi: PlanInputs, level, recommended_16: frozenset[int] = frozenset(),
             bias_deltas: Mapping[int, np.ndarray] | None = None, tick=None) -> QuantPlan:
        """``build_plan(pi, level, recommended_16, <these overrides>, bias_deltas=..., tick=...)``."""
        return build_plan(pi, level, recommended_16, range_overrides=self.range_overrides,
                          u8_overrides=self.u8_overrides, weight_overrides=self.weight_overrides,
                          bits_overrides=self.bits_overrides, bias_deltas=bias_deltas, const_data=self.const_data,
                          tick=tick)

    def activations(self, pi: PlanInputs, level, recommended_16: frozenset[int] = frozenset()) -> dict[int, TensorQuant]:
        """``plan(pi, level, recommended_16).tensors`` as far as they do not depend on the constants (all but
        UINT8 data coarsened for its biases), without quantizing the constants (``activation_quants``)."""
        return activation_quants(pi, level, recommended_16, range_overrides=self.range_overrides,
                                 bits_overrides=self.bits_overrides, const_data=self.const_data)
