"""Pooling as the vendor fixed simulator computes it.

MAX_POOL_2D keeps the input's quantization (same scale and zero point in and out) and is the plain
window maximum of the codes (bit-exact, INT16 inputs seen). AVERAGE_POOL_2D (UINT8, same quantization
in and out) is the floor of the window's code sum divided by the window size (bit-exact; rounding to
nearest misses 37% to 47% of the codes); with SAME padding the padding cells are left out of both the
sum and the count (bit-exact; counting them, with either the zero point or 0, is not). MEAN over H
and W is the same floor of the code mean (bit-exact).
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
        if pt or ph or pl or pw:
            x = np.pad(x, ((0, 0), (pt, ph), (pl, pw), (0, 0)), constant_values=np.iinfo(x.dtype).min)
    wins = [x[:, a:a + (oh - 1) * stride[0] + 1:stride[0], b:b + (ow - 1) * stride[1] + 1:stride[1], :]
            for a in range(fh) for b in range(fw)]
    if len(wins) == 1:
        return wins[0].copy()
    out = np.maximum(wins[0], wins[1])
    for win in wins[2:]:
        np.maximum(out, win, out=out)
    return out


@register("AVERAGE_POOL_2D")
def average_pool2d(x_code, filter_hw=(2, 2), stride=(2, 2), padding="VALID"):
    """q = floor(sum over the window's cells inside the input of x / their count) (VALID: the whole window; SAME: padding cells left out)."""
    x = np.asarray(x_code, np.int64)
    n, h, w, c = x.shape
    fh, fw = filter_hw
    if padding == "VALID":
        oh, ow = (h - fh) // stride[0] + 1, (w - fw) // stride[1] + 1
        pads = ((0, 0), (0, 0))
    else:
        oh, ow = -(-h // stride[0]), -(-w // stride[1])
        th, tw = max((oh - 1) * stride[0] + fh - h, 0), max((ow - 1) * stride[1] + fw - w, 0)
        pads = ((th // 2, th - th // 2), (tw // 2, tw - tw // 2))
    xp = np.pad(x, ((0, 0),) + pads + ((0, 0),))
    inside = np.pad(np.ones((1, h, w, 1), np.int64), ((0, 0),) + pads + ((0, 0),))
    total = np.zeros((n, oh, ow, c), np.int64)
    count = np.zeros((1, oh, ow, 1), np.int64)
    for a in range(fh):
        for b in range(fw):
            rows, cols = slice(a, a + (oh - 1) * stride[0] + 1, stride[0]), slice(b, b + (ow - 1) * stride[1] + 1, stride[1])
            total += xp[:, rows, cols, :]
            count += inside[:, rows, cols, :]
    return (total // count).astype(np.asarray(x_code).dtype)


@register("MEAN")
def mean(x_code, axes=(1, 2), keep_dims=True):
    """q = floor(sum of x over axes / their size) (UINT8, the input's quantization in and out, as AVERAGE_POOL_2D)."""
    x = np.asarray(x_code)
    axes = tuple(int(a) % x.ndim for a in axes)
    count = int(np.prod([x.shape[a] for a in axes]))
    total = x.astype(np.int64).sum(axis=axes, keepdims=bool(keep_dims))
    return (total // count).astype(x.dtype)
