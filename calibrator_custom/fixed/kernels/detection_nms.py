"""The vendor's detection NMS inside a fixed model: ``TFLite_Detection_NMS`` runs in FLOAT.

Like ``TFLite_Detection_PostProcess`` (``detection.py``), the op is not integer arithmetic: its
inputs are dequantized and the float kernel (``calibrator_custom/ops/detection_nms.py``) runs on
them; its outputs (boxes, classes, scores, count and the optional index) are float32 as in the float
model, and the fixed-model writer leaves them float (no ``Fix2Float``).

* Input dequantization: an integer input with a quantization scale (the INT16 box coordinates and
  scores a fixed model computes) becomes ``float32(float64(q - zero_point) * scale)``, exactly as
  DEQUANTIZE does; an integer input without one (e.g. an ARG_MAX class index, INT32) is converted
  to float32 as it is; a float input (a float constant the planner kept, such as a class tensor
  of zeros) is used as it is.
* Then the float kernel. The class is rounded to the nearest integer there, so an INT16 class index
  comes back whole (its quantization error is far below 0.5 for fewer than 16384 classes).

Error: none beyond the inputs' own quantization; it is the float op on the dequantized values.
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
class NmsParams:
    """The float kernel's params plus each input's dequantization (None = used as float32 directly)."""

    float_params: Any
    dequant: tuple[DequantizeParams | None, ...]


def _float_view(ctx: OpContext, k: int, t: TensorInfo) -> tuple[TensorInfo, DequantizeParams | None]:
    """A float32 view of input ``k`` for the float prepare, and its dequantization (None if none)."""
    if np.issubdtype(np.dtype(t.dtype), np.integer) and t.quantization is not None and t.quantization.scale:
        p = dequantize_params(ctx, t, f"input {k}")
        data = None if t.data is None else dequantize_values(t.data, p)
        return TensorInfo(t.name, tuple(t.shape), _F32, data), p
    data = None if t.data is None else np.asarray(t.data, np.float32)
    return TensorInfo(t.name, tuple(t.shape), _F32, data), None


def _prepare_nms(ctx: OpContext) -> NmsParams:
    for j, out in enumerate(ctx.outputs):
        if np.dtype(out.dtype) != _F32:
            raise ctx.error(f"output {j} {out.name!r} is {np.dtype(out.dtype).name}; TFLite_Detection_NMS runs in "
                            "float inside the fixed model and writes float32")
    if any(t is None for t in ctx.inputs):
        raise ctx.error("every input of TFLite_Detection_NMS is required")
    views = [_float_view(ctx, k, t) for k, t in enumerate(ctx.inputs)]
    float_ctx = OpContext(ctx.index, ctx.op_name, tuple(v for v, _ in views), ctx.outputs, ctx.options)
    return NmsParams(get_op(ctx.op_name).prepare(float_ctx), tuple(p for _, p in views))


@register("TFLite_Detection_NMS", prepare=_prepare_nms)
def detection_nms(*inputs: np.ndarray, opt: NmsParams) -> tuple[np.ndarray, ...]:
    """The float NMS on the dequantized inputs (integer inputs without a scale are taken as they are)."""
    values = [x if p is None else dequantize_values(x, p) for x, p in zip(inputs, opt.dequant)]
    return get_op("TFLite_Detection_NMS").kernel(*values, opt=opt.float_params)
