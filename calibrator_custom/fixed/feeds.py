"""Fixed-model inputs from float-model inputs (for measuring a fixed model against its float model).

An image input of a fixed model takes raw pixels: the float model's normalized input ``x`` maps
back to ``pixel = clip(round_half_up(x * std + mean), 0, 255)`` in the training format, then to the
``input_formats`` layout with ``input_formats.convert_to_input_formats``. RAWDATA_F32 inputs are fed as
they are; RAWDATA_S16 inputs are quantized with the input tensor's scale, rounded half up
(``floor(x / scale + 1/2)``, ``rounding.round_half_up``). The model's own QUANTIZE rounds half away
from zero, so the two differ only on a value at an exact negative half step (half up gives the step
above); this rounding is kept as it is, since the L5 measurements read these feeds. ``channel_params`` gives
a fixed tensor's (scale, zero point) shaped for its values, per tensor or per channel.
"""
from __future__ import annotations

import numpy as np

from ..config import IMAGE_FORMATS, InputSpec
from ..input_formats import convert_to_input_formats
from ..model.graph import Tensor
from ..rounding import round_half_up


def pixels_from_normalized(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 pixels whose normalisation ``(p - mean) / std`` is closest to ``x`` (NHWC, training format)."""
    mean = np.asarray(spec.channel_mean(), np.float64)
    std = np.asarray(spec.channel_std(), np.float64)
    if spec.layout == "NCHW" and x.ndim == 4:
        x = np.transpose(x, (0, 2, 3, 1))
    return np.clip(round_half_up(np.asarray(x, np.float64) * std + mean), 0, 255).astype(np.uint8)


def raw_from_normalized(x: np.ndarray, spec: InputSpec | None, tensor: Tensor) -> np.ndarray:
    """The fixed model's input ``tensor`` value equivalent to the float input ``x``."""
    if spec is not None and spec.input_format in IMAGE_FORMATS:
        pix = pixels_from_normalized(x, spec)
        details = {"name": tensor.name, "shape": tensor.shape, "dtype": np.uint8,
                   "input_formats": spec.input_format, "training_input_formats": spec.training_input_format,
                   "layouts": spec.layout, "input_width_alignment": spec.width_alignment,
                   "input_height_alignment": spec.height_alignment}
        if spec.layout == "NCHW":
            pix = np.transpose(pix, (0, 3, 1, 2))
        return convert_to_input_formats(pix, details).astype(np.uint8)
    if tensor.dtype == "INT16":
        q = tensor.quantization
        return np.clip(round_half_up(np.asarray(x, np.float64) / q.scale[0]), -32768, 32767).astype(np.int16)
    return np.asarray(x, tensor.np_dtype)


def channel_params(t: Tensor, ndim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale, zero_point) of fixed tensor ``t`` shaped to broadcast on an ``ndim``-D value (None if unquantized)."""
    q = t.quantization
    if q is None or not q.scale:
        return None
    scale = np.asarray(q.scale, np.float64)
    zp = np.asarray(q.zero_point if q.zero_point else [0] * scale.size, np.float64)
    if zp.size == 1 and scale.size > 1:
        zp = np.full(scale.shape, zp[0])
    if scale.size > 1 and ndim > 0:
        shape = [1] * ndim
        shape[int(q.quantized_dimension or 0)] = scale.size
        return scale.reshape(shape), zp.reshape(shape)
    return scale.reshape(()), zp.reshape(())
