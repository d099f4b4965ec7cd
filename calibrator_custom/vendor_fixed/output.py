"""Graph outputs of a vendor fixed model: dequantization and the alignment padding.

Established (docs/vendor_fixed_point.md, "Outputs"): the fixed simulator reports each graph output
as (code - zero_point) * scale (its text output has 6 decimals). A vendor L1 fixed.sim made with
``dequantizations=TRUE`` holds no Fix2Float op; the dequantization happens at the output. INT16
graph outputs are laid out row-major with the last dimension padded to a multiple of 8 (the
simulator's "Alignment shape"); :func:`strip_alignment` cuts that padding.
"""
from __future__ import annotations

import numpy as np

from .registry import register


@register("Fix2Float")
def dequantize(x_code, scale, zero_point=0) -> np.ndarray:
    """y = (x - zero_point) * scale as float32 (float64 product, rounded once)."""
    return ((np.asarray(x_code, np.float64) - float(zero_point)) * float(scale)).astype(np.float32)


def strip_alignment(padded: np.ndarray, shape) -> np.ndarray:
    """The original ``shape`` out of an array padded on its trailing dimensions (leading slices)."""
    return np.asarray(padded)[tuple(slice(0, int(d)) for d in shape)]
