"""The conv-like ops' operand layout, written once: where data, weights and bias sit among the inputs,
and which weight axes are the output channels, the input channels and the summed (reduction) axes.

Read by calibration (a weight's channel axis for its statistics), planning (weight quantization
axes, 8/16-bit conv-like ops), the integer conv kernels (operand positions, bounds) and the
pipeline (multiply-accumulate counts). Conv-like: CONV_2D and DEPTHWISE_CONV_2D, and the ops the
vendor runs as convolutions: FULLY_CONNECTED, TRANSPOSE_CONV, BATCH_MATMUL with constant weights.

Weight layouts: CONV_2D / TRANSPOSE_CONV filters OHWI, DEPTHWISE_CONV_2D ``[1, kh, kw, C]``,
FULLY_CONNECTED ``[out, in]``, BATCH_MATMUL ``[..., in, out]`` (``[..., out, in]`` with ``adj_y``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..model.graph import Model


@dataclass(frozen=True)
class ConvLayout:
    """Input positions of a conv-like op's operands and its weight axes (None: decided by the options)."""

    data: int
    weights: int
    bias: int | None
    #: weight axis of the output channels
    out_axis: int | None
    #: weight axis of the input channels (None: depthwise, one input channel per output)
    in_axis: int | None
    #: weight axes summed into one output value
    summed_axes: tuple[int, ...] | None


CONV_LAYOUTS: Mapping[str, ConvLayout] = {
    "CONV_2D": ConvLayout(0, 1, 2, 0, 3, (1, 2, 3)),
    "DEPTHWISE_CONV_2D": ConvLayout(0, 1, 2, 3, None, (0, 1, 2)),
    "FULLY_CONNECTED": ConvLayout(0, 1, 2, 0, 1, (1,)),
    "TRANSPOSE_CONV": ConvLayout(2, 1, 3, 0, 3, (1, 2, 3)),
    "BATCH_MATMUL": ConvLayout(0, 1, None, None, None, None),
}


@dataclass(frozen=True)
class WeightAxes:
    """The weight axes of one conv-like op: output channels, input channels (or None), summed axes."""

    out_axis: int
    in_axis: int | None
    summed_axes: tuple[int, ...]


def weight_axes(op_name: str, w_shape: tuple[int, ...], options: Any) -> WeightAxes:
    """The weight axes of conv-like ``op_name`` with weights of shape ``w_shape`` and ``options``.

    BATCH_MATMUL: the last two axes (``adj_y`` swaps them); its other (batch) axes are neither.
    """
    layout = CONV_LAYOUTS[op_name]
    if layout.out_axis is not None:
        return WeightAxes(layout.out_axis, layout.in_axis, layout.summed_axes)
    n = len(w_shape)
    if bool(getattr(options, "adj_y", False)):
        return WeightAxes(n - 2, n - 1, (n - 1,))
    return WeightAxes(n - 1, n - 2, (n - 2,))


def weight_channel_axis(op_name: str, position: int) -> int:
    """The output-channel axis of a constant read at input ``position`` of ``op_name`` when the layout
    fixes it (the weights of CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED, DEPTHWISE_CONV_2D); else -1, the
    last axis (biases, PRELU slopes, BATCH_MATMUL weights)."""
    layout = CONV_LAYOUTS.get(op_name)
    if layout is None or position != layout.weights or layout.out_axis is None:
        return -1
    return layout.out_axis


@dataclass(frozen=True)
class ConvLike:
    """A conv-like op: where its data, weights and bias are, and its kind for CONV_CONFIG."""

    op_index: int
    op_name: str
    data: int
    weights: int
    bias: int  # -1 when absent

    @property
    def is_depthwise(self) -> bool:
        return self.op_name == "DEPTHWISE_CONV_2D"


def conv_like_ops(model: Model, constants: Mapping[int, object]) -> list[ConvLike]:
    """Every conv-like op of the main subgraph whose weights are constant (after constant folding)."""
    g = model.main
    out = []
    for k, op in enumerate(g.operators):
        name = model.op_name(op)
        layout = CONV_LAYOUTS.get(name)
        if layout is None:
            continue
        ins = list(op.inputs) + [-1] * 4
        if ins[layout.weights] < 0 or ins[layout.weights] not in constants:
            continue
        bias = ins[layout.bias] if layout.bias is not None else -1
        out.append(ConvLike(k, name, ins[layout.data], ins[layout.weights], bias))
    return out


def conv_weight_axes(model: Model, c: ConvLike, w_shape: tuple[int, ...]) -> WeightAxes:
    """:func:`weight_axes` of conv-like ``c`` of ``model`` (its options read from the model)."""
    return weight_axes(c.op_name, w_shape, model.main.operators[c.op_index].options)
