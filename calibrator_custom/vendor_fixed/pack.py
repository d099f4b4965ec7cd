"""The conv parameters of a vendor fixed.sim, computed from float weights and calibration ranges.

The inverse of what ``engine`` reads (established against the vendor's L1 fixed.sim of 13 builder
conv chains and the shared models; docs/vendor_fixed_point.md, "Writing the conv parameters"):

- weight codes ``round(w / w_scale)`` (the quotient in float32, half to even), packed in the layout ``layout`` decodes, with
  the output/input tiles the file states in Conv2DOptions slots 12 and 10;
- the accumulator range (QuantizationParameters slots 4/5 of the conv output, [int64]) from the
  per-channel output ranges of calibration: ``acc_c = (y_c - b_c) / (s_in * s_w) + zp_in * sum(w_c)``,
  the max over channels of the upper ends and the min of the lower ends, truncated toward zero and
  widened to contain 0;
- the bias shift k (Conv2DOptions slot 35): the smallest k with both max|acc| and max|bias_acc|
  below ``8192 * 2**k``; the total shift N - k (slot 37);
- bias row 0 ``floor(bias_acc / 2**k + 1/2)``, row 1 the 15-bit multiplier M; each row padded to a
  multiple of 8 values.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError
from .conv import bias_fold, requant_params
from .layout import int8_conv_blocks


def _ceil(a: int, b: int) -> int:
    return -(-a // b) * b


def weight_codes(w: np.ndarray, w_scale: float, qmax: int = 127) -> np.ndarray:
    """q = clip(round(w / w_scale)), the quotient in float32 (half to even), as int64.

    float32 gives every code of the 873 int8 convs of the session's vendor fixed files (2.2 million
    codes, 10 float32 ties); the float64 quotient misses 8 of them (107.49999 is 107.5 in float32)."""
    q = np.asarray(w, np.float32) / np.float32(w_scale)
    return np.clip(np.round(q), -qmax, qmax).astype(np.int64)


def pack_conv_weights(codes_ohwi: np.ndarray, input_tile: int, output_tile: int) -> bytes:
    """int8 OHWI codes in the vendor's tiled layout (``layout.unpack_conv_weights`` reads it back)."""
    chunks: list[bytes] = []
    for g0, go, a, b, i0, gi in int8_conv_blocks(codes_ohwi.shape, input_tile, output_tile):
        block = codes_ohwi[g0:g0 + go, a, b, i0:i0 + gi].astype(np.int8).tobytes()
        chunks.append(block + bytes(_ceil(len(block), 32) - len(block)))
    return b"".join(chunks)


def pack_depthwise_weights(codes_1hwc: np.ndarray) -> bytes:
    """int8 [1, KH, KW, C] codes in 16-channel groups, each padded to 32 bytes."""
    _, kh, kw, c = codes_1hwc.shape
    out = bytearray()
    for g0 in range(0, c, 16):
        block = codes_1hwc[0, :, :, g0:g0 + 16].astype(np.int8).tobytes()
        out += block + bytes(_ceil(len(block), 32) - len(block))
    return bytes(out)


def pack_bias(row0: np.ndarray, multipliers: np.ndarray) -> bytes:
    """The [2, C] INT16 bias buffer: each row padded to a multiple of 8 values."""
    c = len(row0)
    stride = _ceil(c, 8)
    flat = np.zeros(2 * stride, "<i2")
    flat[:c] = row0
    flat[stride:stride + c] = multipliers
    return flat.tobytes()


def accumulator_range(in_scale: float, in_zero_point: int, w_scale: float, w_sum, bias,
                      out_min_per_channel, out_max_per_channel) -> tuple[int, int]:
    """(acc_max, acc_min): acc_c = (y_c - b_c) / (s_in * s_w) + zp_in * sum(w_c), truncated toward zero,
    widened to contain 0 (face_detection_short_range's classificators: max -595 is written 0)."""
    unit = float(in_scale) * float(w_scale)
    offset = int(in_zero_point) * np.asarray(w_sum, np.float64) - np.asarray(bias, np.float64) / unit
    hi = np.asarray(out_max_per_channel, np.float64) / unit + offset
    lo = np.asarray(out_min_per_channel, np.float64) / unit + offset
    return max(0, int(math.trunc(hi.max()))), min(0, int(math.trunc(lo.min())))


def _shift_for(value: float) -> int:
    k = 0
    while value / 2 ** k >= 8192:
        k += 1
    return k


def bias_shift(acc_max: int, acc_min: int, bias_acc) -> int:
    """k: the smallest shift with max|acc| and max|bias_acc| both below 8192 * 2**k."""
    return max(_shift_for(max(abs(int(acc_max)), abs(int(acc_min)))),
               _shift_for(float(np.abs(np.asarray(bias_acc, np.float64)).max(initial=0.0))))


def weight_sums(w_codes: np.ndarray, depthwise: bool) -> np.ndarray:
    """Per-output-channel sum of the weight codes (OHWI: over H, W, I; depthwise [1, H, W, C]: over H, W)."""
    w = np.asarray(w_codes, np.int64)
    return w.reshape(-1, w.shape[-1]).sum(0) if depthwise else w.reshape(w.shape[0], -1).sum(1)


def conv_parameters(in_scale: float, in_zero_point: int, w_sum: np.ndarray, w_scale: float, bias: np.ndarray,
                    out_scale: float, out_zero_point: int, out_is_uint8: bool, acc_max: int,
                    acc_min: int) -> dict:
    """Bias rows, k and the total shift of one conv (``w_sum`` from :func:`weight_sums`)."""
    if in_scale <= 0 or w_scale <= 0 or out_scale <= 0:
        raise ModelError(f"conv scales must be positive (input {in_scale}, weights {w_scale}, output {out_scale})")
    m = float(in_scale) * float(w_scale) / float(out_scale)
    multiplier, n = requant_params(in_scale, w_scale, out_scale)
    bias_acc = np.asarray(bias, np.float64) / (float(in_scale) * float(w_scale)) + \
        bias_fold(in_zero_point, w_sum, out_zero_point, out_is_uint8, m)
    k = bias_shift(acc_max, acc_min, bias_acc)
    row0 = np.floor(bias_acc / 2 ** k + 0.5).astype(np.int64)
    if np.abs(row0).max(initial=0) > 32767:
        raise ModelError(f"bias codes {int(np.abs(row0).max())} do not fit INT16 at shift {k}")
    return {"row0": row0, "multipliers": np.full(len(bias), multiplier, np.int64), "bias_shift": k,
            "total_shift": n - k}
