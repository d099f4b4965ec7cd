"""Data-movement ops as the vendor fixed simulator computes them (codes copied, no requantization).

Established (docs/vendor_fixed_point.md, "CONCATENATION, RESHAPE, Align2_Alias"): the vendor's
converter gives every input of a CONCATENATION the output's quantization, so the op copies codes;
before it, a vendor op ``Align2_Alias`` pads each input's channels with zero codes (INT16: 5 -> 8)
and the concatenation runs on the padded tensors (the next op's weights get matching zero rows).
RESHAPE keeps the codes in NHWC order; TRANSPOSE permutes them (UINT8 seen). PAD is folded by the
vendor's converter into the next conv (no op of its own in the fixed.sim).
"""
from __future__ import annotations

import numpy as np

from .registry import register


@register("CONCATENATION")
def concatenation(*x_codes, axis: int = -1):
    """q = concat(x_1, ..., x_n) along axis (inputs share the output's quantization in vendor models)."""
    return np.concatenate([np.asarray(x) for x in x_codes], axis=axis)


@register("RESHAPE")
def reshape(x_code, shape):
    """q = x reshaped to shape in NHWC (C) order."""
    return np.asarray(x_code).reshape(tuple(int(d) for d in shape))


@register("Align2_Alias")
def align_channels(x_code, aligned_channels: int):
    """q = x with its last dimension zero-padded to aligned_channels (the output tensor's channel count)."""
    x = np.asarray(x_code)
    pad = int(aligned_channels) - x.shape[-1]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)]) if pad > 0 else x


@register("TRANSPOSE")
def transpose(x_code, perm):
    """q = x transposed by perm (codes and quantization unchanged)."""
    return np.transpose(np.asarray(x_code), tuple(int(p) for p in perm))
