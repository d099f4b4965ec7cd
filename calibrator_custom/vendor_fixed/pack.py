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

Per-channel weight scales (not the vendor's L1, but what its format and simulators take):
:func:`per_channel_weight_codes`, :func:`per_channel_conv_parameters` (M_c under one shift N) and
:func:`fit_per_channel_scales` (the one bias shift k kept at most one above the per-tensor codes'), and
:func:`mean_shift` (the bias correction for the codes' mean shift, from the input's channel means).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError
from ..rounding import ChannelCodes, channel_codes
from .conv import bias_fold, requant_params
from .layout import depthwise_group, int8_conv_blocks, int16_conv_blocks


def _ceil(a: int, b: int) -> int:
    return -(-a // b) * b


def weight_codes(w: np.ndarray, w_scale: float, qmax: int = 127) -> np.ndarray:
    """q = clip(round(w / w_scale)), the quotient in float32 (half to even), as int64.

    float32 gives every code of the 873 int8 convs of the session's vendor fixed files (2.2 million
    codes, 10 float32 ties); the float64 quotient misses 8 of them (107.49999 is 107.5 in float32)."""
    q = np.asarray(w, np.float32) / np.float32(w_scale)
    return np.clip(np.round(q), -qmax, qmax).astype(np.int64)


def int16_weight_codes(w: np.ndarray, bound: float) -> np.ndarray:
    """INT16 weight codes: round(w / (bound / 32767)), the scale and the quotient in float64 (half to
    even); ``bound`` = max(|min|, |max|) of the weights as the file stores them (6 decimals, float32).

    Every code of the 87 INT16 conv / depthwise / depthwise-as-conv weight tensors of the session's
    vendor fixed files (750882 codes); the float32 quotient by the stored float32 scale misses 57 of
    them, the float64 quotient by it 20 (w / s within 0.0007 of a half)."""
    q = np.asarray(w, np.float64) / (float(bound) / 32767.0)
    return np.clip(np.round(q), -32767, 32767).astype(np.int64)


def pack_conv_weights(codes_ohwi: np.ndarray, input_tile: int, output_tile: int, in_pass: int | None = None,
                      out_pass: int | None = None) -> bytes:
    """int8 OHWI codes in the vendor's tiled layout (``layout.unpack_conv_weights`` reads it back)."""
    chunks: list[bytes] = []
    for g0, go, a, b, i0, gi in int8_conv_blocks(codes_ohwi.shape, input_tile, output_tile, in_pass, out_pass):
        block = codes_ohwi[g0:g0 + go, a, b, i0:i0 + gi].astype(np.int8).tobytes()
        chunks.append(block + bytes(_ceil(len(block), 32) - len(block)))
    return b"".join(chunks)


def pack_conv_weights_int16(codes_ohwi: np.ndarray, input_tile: int | None = None, output_tile: int | None = None,
                            in_pass: int | None = None, out_pass: int | None = None) -> bytes:
    """INT16 OHWI codes in the vendor's layout (16-channel input blocks, 8-channel output groups, 8-channel
    input rows, (kh, kw); each block padded to 32 bytes: ``layout.unpack_conv_weights`` reads it back)."""
    out = bytearray()
    for g0, go, a, b, r0, gi in int16_conv_blocks(codes_ohwi.shape, input_tile, output_tile, in_pass, out_pass):
        block = np.asarray(codes_ohwi[g0:g0 + go, a, b, r0:r0 + gi], np.int64).astype("<i2").tobytes()
        out += block + bytes(_ceil(len(block), 32) - len(block))
    return bytes(out)


def pack_depthwise_weights(codes_1hwc: np.ndarray, dtype=np.int8) -> bytes:
    """[1, KH, KW, C] codes (int8 or INT16 ``dtype``) in groups of 16 bytes of channels (16 int8 / 8 INT16
    channels), each group's [kh][kw][c] padded to 32 bytes (``layout.unpack_depthwise_weights``)."""
    _, kh, kw, c = codes_1hwc.shape
    out = bytearray()
    group = depthwise_group(dtype)
    for g0 in range(0, c, group):
        block = np.asarray(codes_1hwc[0, :, :, g0:g0 + group], np.int64).astype(
            np.dtype(dtype).newbyteorder("<")).tobytes()
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


def mean_shift(dw: np.ndarray, input_mean, depthwise: bool) -> np.ndarray:
    """Per output channel, the mean output error of a weight error ``dw`` (q * s - w; OHWI, depthwise
    [1, H, W, C * M]) for inputs of channel means ``input_mean``: sum_k dw[o, k] * mean[channel of k]
    (padded border positions are not modelled)."""
    dw = np.asarray(dw, np.float64)
    mean = np.asarray(input_mean, np.float64)
    if depthwise and mean.size and dw.shape[3] % mean.size == 0:  # channel multiplier M
        return dw.sum(axis=(0, 1, 2)) * np.repeat(mean, dw.shape[3] // mean.size)
    if depthwise or dw.shape[3] != mean.size:
        raise ModelError(f"{mean.size} input means for a conv of {dw.shape[3]} {'' if depthwise else 'input '}channels")
    return np.einsum("ohwi,i->o", dw, mean)


def per_channel_weight_codes(w: np.ndarray, scales, axis: int, qmax: int = 127) -> np.ndarray:
    """q = clip(round_half_away(w / s_c)) with one scale per channel along ``axis`` (our planner's
    rounding, ``quant.weights.quantize_with_scale``), as int64."""
    return np.ascontiguousarray(channel_codes(w, axis, scales, qmax)).astype(np.int64)


def per_channel_multipliers(m_c) -> tuple[np.ndarray, int]:
    """(M_c, N) with one shared shift: N = 14 - floor(log2 max m_c) (the per-tensor rule on the largest
    ratio), one less where the largest M rounds up to 2**15, and M_c = round(m_c * 2**N) (at least 1)."""
    m = np.asarray(m_c, np.float64)
    n = 14 - math.floor(math.log2(float(m.max())))
    mult = np.round(m * 2.0 ** n)
    if mult.max() > 32767:
        n -= 1
        mult = np.round(m * 2.0 ** n)
    return np.maximum(mult, 1).astype(np.int64), n


def per_channel_conv_parameters(in_scale: float, in_zero_point: int, w_sum: np.ndarray, w_scales, bias: np.ndarray,
                                out_scale: float, out_zero_point: int, out_is_uint8: bool,
                                out_min_per_channel, out_max_per_channel) -> dict:
    """Bias rows, accumulator range, k and the total shift of one conv with a weight scale per output
    channel: the accumulator of channel c is in units of s_in * s_c, M_c = round(s_in * s_c / s_out * 2**N)
    with one N (:func:`per_channel_multipliers`); the rest as :func:`conv_parameters` per channel."""
    s_c = np.asarray(w_scales, np.float64)
    if in_scale <= 0 or out_scale <= 0 or np.any(s_c <= 0):
        raise ModelError(f"conv scales must be positive (input {in_scale}, weights {s_c.min()}, output {out_scale})")
    unit = float(in_scale) * s_c
    m_c = unit / float(out_scale)
    mult, n = per_channel_multipliers(m_c)
    bias = np.asarray(bias, np.float64)
    w_sum = np.asarray(w_sum, np.float64)
    fold = -int(in_zero_point) * w_sum + (int(out_zero_point) / m_c if out_is_uint8 else 0.0)
    bias_acc = bias / unit + fold
    offset = int(in_zero_point) * w_sum - bias / unit
    hi = np.asarray(out_max_per_channel, np.float64) / unit + offset
    lo = np.asarray(out_min_per_channel, np.float64) / unit + offset
    acc_max, acc_min = max(0, int(math.trunc(hi.max()))), min(0, int(math.trunc(lo.min())))
    k = bias_shift(acc_max, acc_min, bias_acc)
    row0 = np.floor(bias_acc / 2 ** k + 0.5).astype(np.int64)
    if np.abs(row0).max(initial=0) > 32767:
        raise ModelError(f"bias codes {int(np.abs(row0).max())} do not fit INT16 at shift {k}")
    if n - k < 0:
        raise ModelError(f"total shift N - k = {n - k} is negative (N {n}, k {k})")
    return {"row0": row0, "multipliers": mult, "bias_shift": k, "total_shift": n - k, "acc_max": acc_max,
            "acc_min": acc_min}


def _fit_to_shift(need, s_c, s_max, limit, margin=0.97) -> np.ndarray:
    """The per-channel scales raised (never above s_max) until every channel's need() fits ``limit``."""
    s = s_c.copy()
    for _ in range(12):  # need() is about proportional to 1 / s (code rounding and clipping aside)
        over = need(s) / (limit * margin)
        if over.max() <= 1.0:
            break
        s = np.minimum(np.where(over > 1.0, s * over, s), s_max)
    return s


#: how far above the per-tensor codes' bias shift the per-channel scales may take it (measured:
#: docs/model_format.md, "Per-channel weight scales")
EXTRA_BIAS_SHIFT = 1


def fit_per_channel_scales(w: np.ndarray, axis: int, scales, in_scale: float, in_zero_point: int, bias,
                           out_scale: float, out_zero_point: int, out_is_uint8: bool, out_min_per_channel,
                           out_max_per_channel, extra_shift: int | None = None) -> np.ndarray:
    """Per-channel scales raised where the vendor's format would lose more than they gain.

    One bias shift k serves every channel: round(acc / 2**k) + b0 is a 16-bit value, so k is set by the
    channel whose accumulator or bias code is largest in its own units (s_in * s_c). A channel with a
    small weight scale and a large bias or output range raises k for all (iris_landmark: 4 -> 10, every
    channel's accumulator then rounded to 2**10) and its multiplier M_c, under the one shift N of the
    largest ratio, keeps few bits (M_c = 2). So k is allowed at most ``extra_shift`` (default
    :data:`EXTRA_BIAS_SHIFT`) above the k of all channels at the largest scale (per-tensor codes), and
    the scales of the channels that would exceed it are raised, never above the largest, until they fit."""
    s_c = np.asarray(scales, np.float64)
    s_max = float(s_c.max())
    w = np.asarray(w, np.float64)
    b = np.asarray(bias, np.float64)
    out_lo = np.asarray(out_min_per_channel, np.float64)
    out_hi = np.asarray(out_max_per_channel, np.float64)
    extra = EXTRA_BIAS_SHIFT if extra_shift is None else int(extra_shift)

    codes = ChannelCodes(w, axis, 127)

    def need(s):
        """Per channel: max(|acc range|, |bias code|) in accumulator units (before the shift)."""
        w_sum = codes.channel_sums(s)
        unit = float(in_scale) * s
        fold = -int(in_zero_point) * w_sum + (int(out_zero_point) * float(out_scale) / unit if out_is_uint8 else 0.0)
        offset = int(in_zero_point) * w_sum - b / unit
        return np.maximum(np.abs(b / unit + fold),
                          np.maximum(np.abs(out_hi / unit + offset), np.abs(out_lo / unit + offset)))

    k_lo = _shift_for(float(need(np.full_like(s_c, s_max)).max()))
    if _shift_for(float(need(s_c).max())) <= k_lo + extra:
        return s_c
    return _fit_to_shift(need, s_c, s_max, 8192.0 * 2 ** (k_lo + extra))
