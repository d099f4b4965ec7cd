"""The detection post-process inside a fixed model: ``TFLite_Detection_PostProcess`` runs in FLOAT.

Its quantized inputs (box encodings, class scores, and the anchors, which may be a quantized or a
float constant) are dequantized exactly as DEQUANTIZE does (``quantize.py``), then the float kernel
(``calibrator_custom/ops/detection.py``) runs; its four outputs are float32 as in the float model,
and the fixed-model writer leaves them float (no ``Fix2Float``). Error: none, it is the float op on
the dequantized values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...ops.registry import OpContext, TensorInfo, get_op
from ..registry import register
from .quantize import DequantizeParams, dequantize_params, dequantize_values

_F32 = np.dtype(np.float32)


@dataclass(frozen=True)
class DetectionParams:
    """The float kernel's params plus how to dequantize box encodings and scores (None = already float)."""

    float_params: Any
    boxes: DequantizeParams | None
    scores: DequantizeParams | None


def _float_operand(ctx: OpContext, t: TensorInfo, what: str) -> tuple[TensorInfo, DequantizeParams | None]:
    """A float32 view of operand ``t`` for the float prepare, and its dequantization (None if float)."""
    if np.issubdtype(np.dtype(t.dtype), np.floating):
        data = None if t.data is None else np.asarray(t.data, np.float32)
        return TensorInfo(t.name, tuple(t.shape), _F32, data), None
    p = dequantize_params(ctx, t, what)
    data = None if t.data is None else dequantize_values(t.data, p)
    return TensorInfo(t.name, tuple(t.shape), _F32, data), p


def _prepare_detection(ctx: OpContext) -> DetectionParams:
    ctx.require_inputs(3)
    for j, out in enumerate(ctx.outputs):
        if np.dtype(out.dtype) != _F32:
            raise ctx.error(f"output {j} {out.name!r} is {np.dtype(out.dtype).name}; the detection post-process "
                            "runs in float inside the fixed model and writes float32")
    boxes, box_dq = _float_operand(ctx, ctx.inputs[0], "box_encodings")
    scores, score_dq = _float_operand(ctx, ctx.inputs[1], "class_predictions")
    anchors, _ = _float_operand(ctx, ctx.inputs[2], "anchors")
    float_ctx = OpContext(ctx.index, ctx.op_name, (boxes, scores, anchors), ctx.outputs, ctx.options)
    return DetectionParams(get_op(ctx.op_name).prepare(float_ctx), box_dq, score_dq)


@register("TFLite_Detection_PostProcess", prepare=_prepare_detection)
def detection_postprocess(box_encodings: np.ndarray, class_predictions: np.ndarray, anchors: np.ndarray, *,
                          opt: DetectionParams) -> tuple[np.ndarray, ...]:
    """The float post-process on the dequantized box encodings and scores (anchors: prepared constant)."""
    boxes = box_encodings if opt.boxes is None else dequantize_values(box_encodings, opt.boxes)
    scores = class_predictions if opt.scores is None else dequantize_values(class_predictions, opt.scores)
    return get_op("TFLite_Detection_PostProcess").kernel(boxes, scores, anchors, opt=opt.float_params)
