"""Pooling as the vendor fixed simulator computes it.

MAX_POOL_2D keeps the input's quantization (same scale and zero point in and out) and is the plain
window maximum of the codes (bit-exact, INT16 inputs seen). AVERAGE_POOL_2D (UINT8, same quantization
in and out, VALID padding seen) is the floor of the window's code sum divided by the window size
(bit-exact; rounding to nearest misses 37% to 47% of the codes).
"""
from __future__ import annotations

import numpy as np

from .registry import register


@register("MAX_POOL_2D")
def max_pool2d(x_code, filter_hw=(2, 2), stride=(2, 2), padding="VALID"):
    """q[n,y,x,c] = max over the window of x (VALID padding; SAME pads with the type's minimum)."""
    x = np.asarray(x_code)
    n, h, w, c = x.shape
    fh, fw = filter_hw
    if padding == "VALID":
        oh, ow = (h - fh) // stride[0] + 1, (w - fw) // stride[1] + 1
        pt = pl = 0
    else:
        oh, ow = -(-h // stride[0]), -(-w // stride[1])
        pt = max((oh - 1) * stride[0] + fh - h, 0) // 2
        pl = max((ow - 1) * stride[1] + fw - w, 0) // 2
        ph, pw = max((oh - 1) * stride[0] + fh - h, 0) - pt, max((ow - 1) * stride[1] + fw - w, 0) - pl
        x = np.pad(x, ((0, 0), (pt, ph), (pl, pw), (0, 0)), constant_values=np.iinfo(x.dtype).min)
    out = None
    for a in range(fh):
        for b in range(fw):
            win = x[:, a:a + (oh - 1) * stride[0] + 1:stride[0], b:b + (ow - 1) * stride[1] + 1:stride[1], :]
            out = win.copy() if out is None else np.maximum(out, win)
    return out


@register("AVERAGE_POOL_2D")
def average_pool2d(x_code, filter_hw=(2, 2), stride=(2, 2)):
    """q = floor(sum over the window of x / (fh*fw)) (VALID padding; UINT8 with the input's quantization)."""
    x = np.asarray(x_code, np.int64)
    n, h, w, c = x.shape
    fh, fw = filter_hw
    oh, ow = (h - fh) // stride[0] + 1, (w - fw) // stride[1] + 1
    total = np.zeros((n, oh, ow, c), np.int64)
    for a in range(fh):
        for b in range(fw):
            total += x[:, a:a + (oh - 1) * stride[0] + 1:stride[0], b:b + (ow - 1) * stride[1] + 1:stride[1], :]
    return (total // (fh * fw)).astype(np.asarray(x_code).dtype)
