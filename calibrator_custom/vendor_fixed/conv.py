"""CONV_2D / DEPTHWISE_CONV_2D as the vendor fixed simulator computes them.

Established (docs/vendor_fixed_point.md, "CONV_2D"):
- weights are int8 codes, symmetric per tensor (scale = max|w| / 127); in fixed.sim the weight buffer
  of a CONV_2D is laid out [KH][KW][O][I], each (kh, kw) block padded to a multiple of 32 bytes
  (:func:`unpack_conv_weights` turns it back into TFLite's OHWI);
- the [2, C] INT16 bias holds in row 0 the bias in accumulator units, zero-point correction
  included, divided by 2**bias_shift (row 1 is 0 in every model seen); the accumulator is
  ``sum(x_code * w_code) + (bias_row0 << bias_shift)`` on the *uncorrected* input codes;
- the output is ``acc * in_scale * w_scale / out_scale`` rounded and saturated to the output type
  (INT16: [-32767, 32767]; UINT8: [0, 255] around its zero point). The vendor's intermediate
  rounding of that product is not reproduced exactly: the measured worst difference is
  ``CONV_MAX_ERROR_LSB``.
"""
from __future__ import annotations

import numpy as np

from .registry import register

#: measured worst difference of :func:`conv2d` from the vendor's output codes (output LSB)
CONV_MAX_ERROR_LSB = 4

_LIMITS = {np.dtype(np.int16): (-32767, 32767), np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-127, 127)}


def unpack_conv_weights(raw: bytes, shape_ohwi, dtype=np.int8) -> np.ndarray:
    """OHWI codes from the vendor's [KH][KW][O][I] buffer with 32-byte-padded (kh, kw) blocks."""
    o, kh, kw, i = (int(d) for d in shape_ohwi)
    item = np.dtype(dtype).itemsize
    block = -(-(o * i * item) // 32) * 32 // item
    flat = np.frombuffer(raw, dtype=dtype)
    if flat.size < kh * kw * block:
        raise ValueError(f"weight buffer holds {flat.size} values, a {shape_ohwi} conv needs {kh * kw * block}")
    w = flat[:kh * kw * block].reshape(kh * kw, block)[:, :o * i].reshape(kh, kw, o, i)
    return np.ascontiguousarray(w.transpose(2, 0, 1, 3))


def _pad_amounts(size, k, stride, dilation, padding):
    eff = (k - 1) * dilation + 1
    if padding == "VALID":
        out = (size - eff) // stride + 1
        return out, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2, total - total // 2


def accumulate(x_code: np.ndarray, w_code: np.ndarray, pad_value: int, stride=(1, 1), dilation=(1, 1),
               padding="SAME", depthwise=False) -> np.ndarray:
    """acc[n,y,x,o] = sum_{kh,kw,i} x[n, y*s+kh*d, x*s+kw*d, i] * w[o,kh,kw,i] (int64; padding = pad_value)."""
    n, h, wd, c = x_code.shape
    o, kh, kw, i = w_code.shape
    oh, pt, pb = _pad_amounts(h, kh, stride[0], dilation[0], padding)
    ow, pl, pr = _pad_amounts(wd, kw, stride[1], dilation[1], padding)
    xp = np.pad(x_code.astype(np.int64), ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=int(pad_value))
    w = w_code.astype(np.int64)
    acc = np.zeros((n, oh, ow, o if not depthwise else w.shape[3]), np.int64)
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, a * dilation[0]:a * dilation[0] + (oh - 1) * stride[0] + 1:stride[0],
                       b * dilation[1]:b * dilation[1] + (ow - 1) * stride[1] + 1:stride[1], :]
            if depthwise:
                mult = w.shape[3] // c
                acc += np.repeat(patch, mult, axis=3) * w[0, a, b, :]
            else:
                acc += np.einsum("nhwi,oi->nhwo", patch, w[:, a, b, :], optimize=False)
    return acc


def requantize(acc: np.ndarray, multiplier, out_zero_point: int, out_dtype) -> np.ndarray:
    """q = sat(rint(acc * multiplier) + out_zero_point) in out_dtype (float64 product; ties to even)."""
    dt = np.dtype(out_dtype)
    lo, hi = _LIMITS[dt]
    v = np.rint(acc.astype(np.float64) * np.asarray(multiplier, np.float64)) + int(out_zero_point)
    return np.clip(v, lo, hi).astype(dt)


@register("CONV_2D")
def conv2d(x_code, x_zero_point, w_code, bias_row0, bias_shift, in_scale, w_scale, out_scale,
           out_zero_point=0, out_dtype=np.int16, stride=(1, 1), dilation=(1, 1), padding="SAME"):
    """q = sat(rint((sum(x*w) + bias_row0 << bias_shift) * in_scale*w_scale/out_scale) + out_zp); x padded with its zero point."""
    acc = accumulate(x_code, w_code, x_zero_point, stride, dilation, padding)
    acc += np.asarray(bias_row0, np.int64) << int(bias_shift)
    return requantize(acc, float(in_scale) * np.asarray(w_scale, np.float64) / float(out_scale),
                      out_zero_point, out_dtype)


@register("DEPTHWISE_CONV_2D")
def depthwise_conv2d(x_code, x_zero_point, w_code, bias_row0, bias_shift, in_scale, w_scale, out_scale,
                     out_zero_point=0, out_dtype=np.int16, stride=(1, 1), dilation=(1, 1), padding="SAME"):
    """As conv2d with w of shape [1, KH, KW, C*M] applied per channel (vendor weight layout not yet established)."""
    acc = accumulate(x_code, w_code, x_zero_point, stride, dilation, padding, depthwise=True)
    acc += np.asarray(bias_row0, np.int64) << int(bias_shift)
    return requantize(acc, float(in_scale) * np.asarray(w_scale, np.float64) / float(out_scale),
                      out_zero_point, out_dtype)


def bias_shift_rule(bias_acc: np.ndarray) -> int:
    """Observed rule (3 models): smallest k >= 0 with max|bias_acc| / 2**k < 8192."""
    m = float(np.max(np.abs(np.asarray(bias_acc, np.float64)))) if np.size(bias_acc) else 0.0
    k = 0
    while m / 2 ** k >= 8192:
        k += 1
    return k
