"""Integer kernels of the quantize family, the fixed model's boundary: where floats or raw pixels enter
and leave it (QUANTIZE, DEQUANTIZE, ``Fix2Float``, ``InputNormalize``).

With the detection post-processes (``detection.py``, ``detection_nms.py``), which run in float inside
the fixed model, these are the only integer kernels that see floats: a float32 model input
(RAWDATA_F32) entering QUANTIZE, the float32 outputs of DEQUANTIZE / ``Fix2Float``. Their prepare
results may hold float scales. ``InputNormalize``
is pure integer arithmetic (its float work happens in prepare). Real values are
``scale * (q - zero_point)``, per tensor or per channel along ``quantized_dimension``.

* **QUANTIZE, float32 input** (RAWDATA_F32 model inputs are quantized inside the model):
  ``q = saturate(round_half_away_from_zero(x / scale) + zero_point)``, ``x / scale`` computed in
  float32 (the scale as the model stores it, float32), exactly as TFLite and our float QUANTIZE do;
  outputs UINT8, INT8 or INT16, per tensor or per channel. Error: this is the definition; vs the
  real ``x / scale`` it is <= 0.5 LSB plus the float32 division's rounding (2**-24 relative).
* **QUANTIZE, integer input** (requantization): ``fixedpoint.Rescale``,
  ``q = saturate(rounding_rshift((q_in - zp_in) * m, s) + zp_out)`` with ``m * 2**-s`` the ratio
  ``in_scale / out_scale``, rounding half up; in/out per tensor or per channel (on any axes). The
  multiplier: for inputs of up to 16 bits with per-tensor or last-axis parameters,
  ``f64_multiplier`` (24..31 bits; 31 whenever the ratio is at least 2**-21, so always for the
  int16 -> uint8 copies the planner makes), and the map then runs in float64, exactly
  (``FloorAffine``); otherwise ``multiplier_bits`` (>= 29 bits for INT32 inputs) in int64.
  Error <= 0.5 + 2**-bits ``|real / out_scale|`` output LSB (results beyond the range saturate
  to its end): 0.5 + 2**-14 for 16-bit data at 31 bits. Inputs UINT8/INT8/INT16/INT32, outputs
  UINT8/INT8/INT16. A ratio ``>= 2**29`` is refused (UnsupportedOpError).
* **DEQUANTIZE** and the custom op **Fix2Float** (the vendor's name for the op appended to a
  dequantized output; custom options ignored): ``y = float32(float64(q - zero_point) * scale)``
  with the scale rounded to float32 as the model stores it, per tensor or per channel. For
  ``|q - zero_point| < 2**29`` the float64 product is exact, so ``y`` is the correctly rounded
  float32 of ``scale * (q - zero_point)`` (bit-identical to the float DEQUANTIZE kernel for 8- and
  16-bit inputs); otherwise within 1 float32 ulp of it. A float16 input is widened to float32.
* **InputNormalize** (custom op, the first op of every image input of a fixed model): input the
  raw UINT8 pixels in the ``input_formats`` layout exactly as
  ``utils.convert_to_input_formats(image, details)`` packs them (the shape is
  :func:`fixed_input_shape`); output the float model's input tensor (its shape and
  ``training_input_formats`` channel order, NHWC or NCHW), quantized (any per-tensor integer
  quantization, e.g. UINT8 with a zero point or INT16; or per channel on the channel axis).
  Integer steps: (1) gather the pixels of the image, dropping the alignment padding, the alpha
  channel and odd-size replication, and reorder the channels to the training format (RGBA/BGRA to
  RGB/BGR); for YUV_NV12 with an RGB/BGR training format, convert each pixel
  ``(Y, U - 128, V - 128)`` (U, V of its 2x2 block) with the inverse of ``utils.RGB2YUV_1024`` (the
  matrix of ``utils.rgb_to_nv12``: BT.709 full-range weights in 1/1024 steps) in Q20 fixed point,
  ``p = clip(rounding_rshift(C . (Y, U - 128, V - 128), 20), 0, 255)`` (round half up) with
  ``C = round(inverse * 2**20)``; (2) ``out_q = table_c[p]``, where prepare builds per channel
  ``table_c[p] = saturate(round_half_away_from_zero((p - mean_c) / std_c / out_scale) + out_zp)``
  (256 entries, float64). Error: RGB, BGR, RGBA, BGRA, GRAY and YUV_NV12 with GRAY training are
  exact, i.e. the float normalisation ``(p - mean_c) / std_c`` of the same pixels quantized to
  the output (<= 0.5 LSB). YUV_NV12 to RGB/BGR: the integer pixel is within 0.5 + 2**-11 of the
  float conversion ``p_f = clip(inverse . (Y, U - 128, V - 128), 0, 255)`` (float64), so the
  dequantized output is within ``0.5 + (0.5 + 2**-11) / (std_c * out_scale)`` LSB of
  ``(p_f - mean_c) / std_c`` (clipped to the output range). The pixel bound holds because each Q20
  coefficient is within 2**-21 of the inverse and ``|Y| + |U - 128| + |V - 128| <= 511``.

  Custom options (a FlexBuffer map; :func:`input_normalize_options` builds them from an
  ``InputSpec``):

  - ``input_formats`` (str, required): RGB, BGR, RGBA, BGRA, GRAY or YUV_NV12.
  - ``training_input_formats`` (str, required): RGB, BGR or GRAY; the pair must be one the vendor
    allows (``config.ALLOWED_INPUT_FORMATS``).
  - ``mean`` (list of float, required): one per channel of the model input, in the model's channel
    order (B, G, R for BGR training), or one value for every channel.
  - ``std`` (list of float, default 1.0): the same, each > 0.
  - ``layouts`` (``'NHWC'`` | ``'NCHW'``, default NHWC): the layout of the float input (and of the
    raw RGB/BGR/GRAY data; RGBA/BGRA are NHWC only; NV12 data is always an NV12 plane).
  - ``input_height_alignment``, ``input_width_alignment`` (int >= 1, default 2 for YUV_NV12,
    else 1): the alignments ``convert_to_input_formats`` used (needed for YUV_NV12 with GRAY
    training, whose aligned image is flattened into the plane).

  Raw layouts (as ``convert_to_input_formats`` produces them; the image is H x W, He, We = H, W
  rounded up to even): RGB/BGR/GRAY: the image at the top left of the raw tensor (same layout as
  the float input); RGBA/BGRA: NHWC with 4 channels at the top left; YUV_NV12 (RGB/BGR training):
  one plane per batch item of shape (rows, cols, 1), Y in rows [0, H) and columns [0, W), the
  interleaved UV rows start at row He (right after the even-rounded image height, not after the
  aligned height), U of pixel (y, x) at (He + y // 2, 2 * (x // 2)) and V next to it; YUV_NV12
  (GRAY training): the image zero-padded to ``align_up(H, ha) x align_up(W, wa)`` and laid out
  row-major at the start of the plane.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ...config import ALLOWED_INPUT_FORMATS, IMAGE_CHANNELS, LAYOUTS, InputSpec
from ...errors import ConfigError, UnsupportedOpError
from ...input_formats import RGB2YUV_1024
from ...ops.registry import OpContext, TensorInfo, get_op
from ...rounding import round_half_away
from ..fixedpoint import I64, Rescale, qrange, rounding_rshift
from ..registry import QParams, channel_vector, qparams, register

log = logging.getLogger(__name__)

_F32 = np.dtype(np.float32)
_U8 = np.dtype(np.uint8)
#: integer dtypes QUANTIZE may requantize from / to
_REQUANT_IN = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.int16, np.int32))
_REQUANT_OUT = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.int16))
_DEQUANT_IN = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.int16, np.int32))

#: fraction bits of the integer YUV -> RGB matrix
YUV_FRAC_BITS = 20
#: InputNormalize's colour channel names per format (the raw data's and the training format's order)
_CHANNEL_NAMES = {"RGB": "RGB", "BGR": "BGR", "RGBA": "RGBA", "BGRA": "BGRA", "GRAY": "Y"}
_NORMALIZE_KEYS = ("input_formats", "training_input_formats", "mean", "std", "layouts",
                   "input_height_alignment", "input_width_alignment")


# ---------------------------------------------------------------------------------------- shared helpers
def _checked_vector(ctx: OpContext, p: QParams, t: TensorInfo, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(scale, zero_point) broadcastable against tensor ``t``; a per-channel axis must fit its shape."""
    if p.per_channel and not (0 <= p.axis < len(t.shape) and t.shape[p.axis] == p.scale.size):
        raise ctx.error(f"{what} {t.name!r}: {p.scale.size} per-channel scales do not fit dimension {p.axis} "
                        f"of shape {list(t.shape)}")
    return channel_vector(p, len(t.shape))


@dataclass(frozen=True)
class DequantizeParams:
    """``y = float32(float64(q - zero_point) * scale)``; scale holds float32 values (as stored in a model)."""

    scale: np.ndarray  # float64, shape () or broadcastable per channel
    zero_point: np.ndarray  # int64, same shape


def dequantize_params(ctx: OpContext, t: TensorInfo, what: str) -> DequantizeParams:
    """The DequantizeParams of integer tensor ``t`` (ModelError when it has no usable quantization)."""
    if np.dtype(t.dtype) not in _DEQUANT_IN:
        raise ctx.error(f"{what} {t.name!r} is {np.dtype(t.dtype).name}; dequantize takes "
                        f"{', '.join(d.name for d in _DEQUANT_IN)}")
    scale, zp = _checked_vector(ctx, qparams(ctx, t, what), t, what)
    scale32 = scale.astype(np.float32)
    if np.any(scale32 <= 0) or not np.all(np.isfinite(scale32)):
        raise ctx.error(f"{what} {t.name!r}: a scale is not a positive finite float32")
    return DequantizeParams(scale32.astype(np.float64), zp.astype(I64))


def dequantize_values(q: np.ndarray, p: DequantizeParams) -> np.ndarray:
    """float32(float64(q - zero_point) * scale): exact product for |q - zero_point| < 2**29, rounded once."""
    return ((np.asarray(q, I64) - p.zero_point).astype(np.float64) * p.scale).astype(np.float32)


# ---------------------------------------------------------------------------------------- QUANTIZE
@dataclass(frozen=True)
class QuantizeParams:
    """Either a float32 -> integer quantization (the float kernel's params) or an integer Rescale."""

    rescale: Rescale | None = None
    float_params: Any = None


def _prepare_quantize(ctx: OpContext) -> QuantizeParams:
    ctx.require_inputs(1)
    if len(ctx.outputs) != 1:
        raise ctx.error(f"has {len(ctx.outputs)} outputs, expected 1")
    x, y = ctx.inputs[0], ctx.outputs[0]
    if np.dtype(y.dtype) not in _REQUANT_OUT:
        raise ctx.error(f"output {y.name!r} is {np.dtype(y.dtype).name}; QUANTIZE writes "
                        f"{', '.join(d.name for d in _REQUANT_OUT)}")
    out_q = qparams(ctx, y, "output")
    out_scale, out_zp = _checked_vector(ctx, out_q, y, "output")
    if np.dtype(x.dtype) == _F32:
        # the float kernel is the definition: float32 x / float32 scale, round half away from zero
        return QuantizeParams(float_params=get_op("QUANTIZE").prepare(ctx))
    if np.dtype(x.dtype) not in _REQUANT_IN:
        raise ctx.error(f"input {x.name!r} is {np.dtype(x.dtype).name}; QUANTIZE takes float32 or "
                        f"{', '.join(d.name for d in _REQUANT_IN)}")
    in_scale, in_zp = _checked_vector(ctx, qparams(ctx, x, "input"), x, "input")
    rescale = Rescale.between(in_scale, in_zp, out_scale, out_zp, x.dtype, y.dtype)
    if np.any(rescale.shift < 0):
        ratio = float(np.max(np.asarray(in_scale) / np.asarray(out_scale)))
        raise UnsupportedOpError(f"op #{ctx.index} QUANTIZE: the scale ratio in/out = {ratio:g} is too large "
                                 "for an integer requantization (every non-zero input would saturate)")
    return QuantizeParams(rescale=rescale)


@register("QUANTIZE", prepare=_prepare_quantize)
def quantize(x: np.ndarray, *, opt: QuantizeParams) -> np.ndarray:
    """Float32 x: saturate(round_half_away(x / scale) + zp); integer x: the Rescale to the output."""
    if opt.rescale is not None:
        return opt.rescale(x)
    return get_op("QUANTIZE").kernel(x, opt=opt.float_params)


# ---------------------------------------------------------------------------------------- DEQUANTIZE
def _prepare_dequantize(ctx: OpContext) -> DequantizeParams | None:
    ctx.require_inputs(1)
    if len(ctx.outputs) != 1:
        raise ctx.error(f"has {len(ctx.outputs)} outputs, expected 1")
    x, y = ctx.inputs[0], ctx.outputs[0]
    if np.dtype(y.dtype) != _F32:
        raise ctx.error(f"output {y.name!r} is {np.dtype(y.dtype).name}; {ctx.op_name} writes float32")
    if np.dtype(x.dtype) == np.float16:
        return None
    return dequantize_params(ctx, x, "input")


@register("DEQUANTIZE", "Fix2Float", prepare=_prepare_dequantize)
def dequantize(x: np.ndarray, *, opt: DequantizeParams | None) -> np.ndarray:
    """y = float32(float64(x - zero_point) * scale) (a float16 x is widened to float32)."""
    if opt is None:
        return np.asarray(x).astype(np.float32)
    return dequantize_values(x, opt)


# ---------------------------------------------------------------------------------------- InputNormalize
def _align_up(x: int, align: int) -> int:
    return -(-x // align) * align


def _image_dims(shape: Sequence[int], layout: str) -> tuple[int, int, int, int]:
    """(N, H, W, C) of a 4-D shape in ``layout``."""
    n, a, b, c = (int(s) for s in shape)
    return (n, b, c, a) if layout == "NCHW" else (n, a, b, c)


def _pair_problem(fmt: str, training: str) -> str | None:
    """Why (input_formats, training_input_formats) cannot be normalised, or None."""
    if training not in IMAGE_CHANNELS:
        return (f"training_input_formats {training!r} is not an image format ({', '.join(IMAGE_CHANNELS)}); "
                "RAWDATA inputs are quantized by QUANTIZE, not InputNormalize")
    if fmt not in ALLOWED_INPUT_FORMATS[training]:
        return (f"input_formats {fmt!r} cannot feed a model trained on {training}; allowed: "
                f"{', '.join(ALLOWED_INPUT_FORMATS[training])}")
    return None


def fixed_input_shape(float_shape: Sequence[int], spec: InputSpec) -> tuple[int, ...]:
    """The raw input shape of a fixed model for ``spec`` (what convert_to_input_formats fills).

    RAWDATA and RGB/BGR inputs keep the float shape; GRAY: ``align_up(H, ha) x align_up(W, wa)``,
    one channel, in the input's layout; RGBA/BGRA (NHWC only): width ``ceil(align_up(4 W, wa) / 4)``,
    4 channels; YUV_NV12: the plane ``(N, 3 Ha / 2, Wa, 1)`` with ``Ha = align_up(H, lcm(ha, 2))``,
    ``Wa = align_up(W, lcm(wa, 2))`` (with the default alignment 2: H and W rounded up to even).
    ConfigError when the spec does not fit the shape.
    """
    shape = tuple(int(s) for s in float_shape)
    if spec.is_rawdata:
        return shape
    problem = _pair_problem(spec.input_format, spec.training_input_format)
    if problem:
        raise ConfigError(f"input {spec.name!r}: {problem}")
    if len(shape) != 4:
        raise ConfigError(f"input {spec.name!r}: image inputs need a 4-D shape, got {list(shape)}")
    n, h, w, c = _image_dims(shape, spec.layout)
    if c != spec.channels:
        raise ConfigError(f"input {spec.name!r}: {spec.training_input_format} has {spec.channels} channel(s) but "
                          f"shape {list(shape)} ({spec.layout}) has {c}")
    fmt, ha, wa = spec.input_format, spec.height_alignment, spec.width_alignment
    if fmt in ("RGB", "BGR"):
        return shape
    if fmt == "GRAY":
        hr, wr = _align_up(h, ha), _align_up(w, wa)
        return (n, 1, hr, wr) if spec.layout == "NCHW" else (n, hr, wr, 1)
    if fmt in ("RGBA", "BGRA"):
        if spec.layout != "NHWC":
            raise ConfigError(f"input {spec.name!r}: {fmt} inputs are NHWC only")
        return n, h, -(-_align_up(4 * w, wa) // 4), 4
    hr, wr = _align_up(h, math.lcm(ha, 2)), _align_up(w, math.lcm(wa, 2))
    return n, hr * 3 // 2, wr, 1


def input_normalize_options(spec: InputSpec) -> dict[str, Any]:
    """The InputNormalize custom options for an image input (mean/std in the model's channel order)."""
    if spec.is_rawdata:
        raise ConfigError(f"input {spec.name!r} is {spec.training_input_format}; RAWDATA inputs take no "
                          "InputNormalize")
    return {"input_formats": spec.input_format, "training_input_formats": spec.training_input_format,
            "mean": [float(v) for v in spec.channel_mean()], "std": [float(v) for v in spec.channel_std()],
            "layouts": spec.layout, "input_height_alignment": int(spec.height_alignment),
            "input_width_alignment": int(spec.width_alignment)}


def yuv_to_rgb_matrix() -> np.ndarray:
    """int64 [3, 3] = round(inverse(RGB2YUV_1024) * 2**YUV_FRAC_BITS): rows R, G, B; columns Y, U-128, V-128."""
    return np.rint(np.linalg.inv(RGB2YUV_1024) * (1 << YUV_FRAC_BITS)).astype(I64)


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """Per row of ``rows`` ([k, 3] of yuv_to_rgb_matrix): clip(rounding_rshift(row . (y, u-128, v-128), 20), 0, 255)."""
    y, u, v = (np.asarray(a, I64) for a in (y, u, v))
    u, v = u - 128, v - 128
    return [np.clip(rounding_rshift(r[0] * y + r[1] * u + r[2] * v, YUV_FRAC_BITS), 0, 255) for r in rows]


def normalize_table(mean: np.ndarray, std: np.ndarray, out_scale: np.ndarray, out_zero_point: np.ndarray,
                    dtype) -> np.ndarray:
    """[C, 256] table: saturate(round_half_away((p - mean_c) / std_c / out_scale_c) + zp_c) in float64."""
    p = np.arange(256, dtype=np.float64)[None, :]
    ratio = (p - np.asarray(mean, np.float64)[:, None]) / np.asarray(std, np.float64)[:, None]
    ratio = ratio / np.asarray(out_scale, np.float64).reshape(-1, 1)
    rounded = round_half_away(ratio)
    lo, hi = qrange(dtype)
    q = rounded + np.asarray(out_zero_point, np.float64).reshape(-1, 1)
    return np.clip(q, lo, hi).astype(dtype)


@dataclass(frozen=True)
class NormalizeOptions:
    """InputNormalize's parsed custom options."""

    input_format: str
    training_format: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    layout: str
    height_alignment: int
    width_alignment: int


@dataclass(frozen=True)
class InputNormalizeParams:
    """Gather indices into a flattened raw batch item, the colour matrix and the per-channel tables."""

    table: np.ndarray  # [C * 256] of the output dtype
    channel_offset: np.ndarray  # int64 c * 256, broadcastable to an output item
    src_index: np.ndarray | None  # int64 output-item-shaped raw indices (every format but NV12 colour)
    yuv_index: np.ndarray | None  # int64 [3, H, W] raw indices of Y, U, V (NV12 with RGB/BGR training)
    yuv_rows: np.ndarray | None  # int64 [C, 3] rows of yuv_to_rgb_matrix in training channel order
    channel_axis: int  # of the output batch


def _float_list(ctx: OpContext, value: Any, key: str) -> tuple[float, ...]:
    values = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ctx.error(f"custom option {key!r} must be a list of numbers, got {value!r}") from None
    if not out or not all(math.isfinite(v) for v in out):
        raise ctx.error(f"custom option {key!r} must be a non-empty list of finite numbers, got {value!r}")
    return out


def _parse_normalize_options(ctx: OpContext) -> NormalizeOptions:
    o = ctx.options
    if not isinstance(o, dict):
        raise ctx.error(f"custom options must be a FlexBuffer map with keys {', '.join(_NORMALIZE_KEYS)}; "
                        f"got {type(o).__name__}")
    unknown = sorted(set(o) - set(_NORMALIZE_KEYS))
    if unknown:
        raise ctx.error(f"unknown custom option(s) {unknown}; known: {', '.join(_NORMALIZE_KEYS)}")
    for key in ("input_formats", "training_input_formats", "mean"):
        if key not in o:
            raise ctx.error(f"custom option {key!r} is missing")
    fmt, training = str(o["input_formats"]), str(o["training_input_formats"])
    if fmt not in _CHANNEL_NAMES and fmt != "YUV_NV12":
        raise ctx.error(f"input_formats {fmt!r} is not an image format; allowed: "
                        f"{', '.join(list(_CHANNEL_NAMES) + ['YUV_NV12'])}")
    problem = _pair_problem(fmt, training)
    if problem:
        raise ctx.error(problem)
    layout = str(o.get("layouts", "NHWC"))
    if layout not in LAYOUTS:
        raise ctx.error(f"layouts {layout!r} is not one of {', '.join(LAYOUTS)}")
    default_align = 2 if fmt == "YUV_NV12" else 1
    aligns = []
    for key in ("input_height_alignment", "input_width_alignment"):
        a = o.get(key, default_align)
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 1:
            raise ctx.error(f"custom option {key!r} must be an integer >= 1, got {a!r}")
        aligns.append(int(a))
    std = _float_list(ctx, o.get("std", [1.0]), "std")
    if any(s <= 0 for s in std):
        raise ctx.error(f"std must be > 0, got {list(std)}")
    return NormalizeOptions(fmt, training, _float_list(ctx, o["mean"], "mean"), std, layout, *aligns)


def _per_channel(ctx: OpContext, values: tuple[float, ...], c: int, key: str) -> np.ndarray:
    if len(values) not in (1, c):
        raise ctx.error(f"{key} has {len(values)} values; give one per channel ({c}) or one for all")
    return np.broadcast_to(np.asarray(values, np.float64), (c,)).copy()


def _to_layout(hwc: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(hwc.transpose(2, 0, 1) if layout == "NCHW" else hwc)


def _raw_item_index(ctx: OpContext, raw: TensorInfo, opt: NormalizeOptions, dims: tuple[int, int, int, int]
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(src_index, yuv_index): where each output pixel of a batch item is in the flattened raw item."""
    n, h, w, c = dims
    shape = tuple(int(s) for s in raw.shape)
    fmt = opt.input_format
    if len(shape) < 2 or shape[0] != n:
        raise ctx.error(f"raw input {raw.name!r} has shape {list(shape)}; expected batch {n} first")
    item = np.arange(int(np.prod(shape[1:], dtype=np.int64)), dtype=I64)
    if fmt == "YUV_NV12" and opt.training_format == "GRAY":
        ha, wa = _align_up(h, opt.height_alignment), _align_up(w, opt.width_alignment)
        if item.size < ha * wa:
            raise ctx.error(f"raw input {raw.name!r} shape {list(shape)} cannot hold the aligned {ha}x{wa} image")
        return _to_layout(item[:ha * wa].reshape(ha, wa)[:h, :w, None], opt.layout), None
    if fmt == "YUV_NV12":
        he, we = h + h % 2, w + w % 2
        if len(shape) != 4 or shape[3] != 1 or shape[1] < he * 3 // 2 or shape[2] < we:
            raise ctx.error(f"raw YUV_NV12 input {raw.name!r} has shape {list(shape)}; expected [{n}, >={he * 3 // 2}, "
                            f">={we}, 1] for a {h}x{w} image")
        plane = item.reshape(shape[1], shape[2])
        uv = plane[he + np.arange(h)[:, None] // 2, (np.arange(w) // 2 * 2)[None, :]]
        return None, np.stack([plane[:h, :w], uv, uv + 1])
    raw_layout = "NHWC" if fmt in ("RGBA", "BGRA") else opt.layout
    if fmt in ("RGBA", "BGRA") and opt.layout != "NHWC":
        raise ctx.error(f"{fmt} inputs are NHWC only, got layouts {opt.layout}")
    if len(shape) != 4:
        raise ctx.error(f"raw input {raw.name!r} has shape {list(shape)}; expected 4-D {raw_layout}")
    names = _CHANNEL_NAMES[fmt]
    _, hr, wr, cr = _image_dims(shape, raw_layout)
    if cr != len(names) or hr < h or wr < w:
        raise ctx.error(f"raw {fmt} input {raw.name!r} has shape {list(shape)} ({raw_layout}); it must hold a "
                        f"{h}x{w} image with {len(names)} channel(s)")
    hwc = item.reshape(shape[1:])
    hwc = hwc.transpose(1, 2, 0) if raw_layout == "NCHW" else hwc
    perm = [names.index(ch) for ch in _CHANNEL_NAMES[opt.training_format]]
    return _to_layout(hwc[:h, :w][:, :, perm], opt.layout), None


def _prepare_input_normalize(ctx: OpContext) -> InputNormalizeParams:
    ctx.require_inputs(1)
    if len(ctx.outputs) != 1:
        raise ctx.error(f"has {len(ctx.outputs)} outputs, expected 1")
    opt = _parse_normalize_options(ctx)
    raw, out = ctx.inputs[0], ctx.outputs[0]
    if np.dtype(raw.dtype) != _U8:
        raise ctx.error(f"raw input {raw.name!r} is {np.dtype(raw.dtype).name}; image inputs are uint8 pixels")
    if len(out.shape) != 4:
        raise ctx.error(f"output {out.name!r} has shape {list(out.shape)}; image inputs are 4-D {opt.layout}")
    dims = _image_dims(out.shape, opt.layout)
    c = IMAGE_CHANNELS[opt.training_format]
    if dims[3] != c:
        raise ctx.error(f"output {out.name!r} shape {list(out.shape)} ({opt.layout}) has {dims[3]} channel(s); "
                        f"{opt.training_format} has {c}")
    channel_axis = 1 if opt.layout == "NCHW" else 3
    q = qparams(ctx, out, "output")
    if q.per_channel and (q.axis != channel_axis or q.scale.size != c):
        raise ctx.error(f"output {out.name!r}: per-channel quantization must be on the channel axis "
                        f"{channel_axis} with {c} scales")
    mean = _per_channel(ctx, opt.mean, c, "mean")
    std = _per_channel(ctx, opt.std, c, "std")
    table = normalize_table(mean, std, np.broadcast_to(q.scale, (c,)), np.broadcast_to(q.zero_point, (c,)),
                            q.dtype)
    src_index, yuv_index = _raw_item_index(ctx, raw, opt, dims)
    offset_shape = [1, 1, 1]
    offset_shape[channel_axis - 1] = c
    offset = (np.arange(c, dtype=I64) * 256).reshape(offset_shape)
    rows = None
    if yuv_index is not None:
        rows = yuv_to_rgb_matrix()[["RGB".index(ch) for ch in opt.training_format]]
    return InputNormalizeParams(table.reshape(-1), offset, src_index, yuv_index, rows, channel_axis)


@register("InputNormalize", prepare=_prepare_input_normalize)
def input_normalize(raw: np.ndarray, *, opt: InputNormalizeParams) -> np.ndarray:
    """out_q = table_c[pixel]: pixels gathered (NV12: converted to RGB/BGR in Q20), then per-channel lookup."""
    flat = raw.reshape(raw.shape[0], -1)
    if opt.yuv_index is None:
        pixels = flat[:, opt.src_index].astype(I64)
    else:
        y, u, v = (flat[:, idx] for idx in opt.yuv_index)
        pixels = np.stack(yuv_to_rgb(y, u, v, opt.yuv_rows), axis=opt.channel_axis)
    return opt.table[opt.channel_offset + pixels]
