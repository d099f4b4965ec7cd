"""Helpers shared by several float kernels: fused activations and convolution/pool padding."""
from __future__ import annotations

import numpy as np

#: Padding modes whose pads are given explicitly (SigmaStar's schema extension).
EXPLICIT_PADDINGS = ("CAFFE", "ONNXINSIDE", "ONNXOUTSIDE")


def apply_activation(x: np.ndarray, name: str) -> np.ndarray:
    """y = act(x) for a TFLite fused activation name; works in place on float arrays it owns."""
    if name == "NONE":
        return x
    if name == "RELU":
        return np.maximum(x, 0, out=x)
    if name == "RELU6":
        return np.clip(x, 0, 6, out=x)
    if name == "RELU_N1_TO_1":
        return np.clip(x, -1, 1, out=x)
    if name == "TANH":
        return np.tanh(x, out=x)
    raise ValueError(f"unsupported fused activation {name!r}")


FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH")


def same_pads(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int, int]:
    """TFLite SAME padding: (out_size, pad_before, pad_after) with out = ceil(in / stride)."""
    eff = (kernel - 1) * dilation + 1
    out = -(-in_size // stride)
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2, total - total // 2


def valid_out(in_size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """TFLite VALID output size: floor((in - eff_kernel) / stride) + 1 (at least 0)."""
    eff = (kernel - 1) * dilation + 1
    return max((in_size - eff) // stride + 1, 0)


def spatial_pads(opt, in_hw: tuple[int, int], k_hw: tuple[int, int], stride_hw: tuple[int, int],
                 dil_hw: tuple[int, int] = (1, 1)) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pads for a conv/pool ``opt`` with SAME, VALID or explicit padding."""
    mode = opt.padding
    if mode == "VALID":
        return 0, 0, 0, 0
    if mode == "SAME":
        _, t, b = same_pads(in_hw[0], k_hw[0], stride_hw[0], dil_hw[0])
        _, l, r = same_pads(in_hw[1], k_hw[1], stride_hw[1], dil_hw[1])
        return t, b, l, r
    if mode in EXPLICIT_PADDINGS:
        return opt.padding_top, opt.padding_bottom, opt.padding_left, opt.padding_right
    raise ValueError(f"unknown padding mode {mode!r}")


def explicit_pads(ctx, opt) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of SigmaStar's explicit padding; ModelError (via ctx) if any is negative."""
    pt, pb = int(opt.padding_top), int(opt.padding_bottom)
    pl, pr = int(opt.padding_left), int(opt.padding_right)
    if min(pt, pb, pl, pr) < 0:
        raise ctx.error(f"negative explicit pads (top={pt}, bottom={pb}, left={pl}, right={pr})")
    return pt, pb, pl, pr
