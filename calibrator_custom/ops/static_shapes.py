"""Load-time output-size checks for ops whose output size comes from a constant or an option.

The interpreter calls :func:`check_static_shapes` after an op's prepare, for float and fixed models
alike. A corrupt constant or option (paddings of 2**31, a resize size of 2**31, a dilation of
2**31) would otherwise make the kernel allocate gigabytes before the run-time shape check sees
the result. Two rules:

* PAD, PADV2, MIRROR_PAD (constant paddings), TILE (constant multiples), RESIZE_BILINEAR,
  RESIZE_NEAREST_NEIGHBOR (constant size): the output shape these give must be the declared one.
* CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D: the padded input the window slides over
  (SAME or explicit padding, dilated kernel) may hold at most :data:`MAX_WINDOW_GROWTH` times the
  input's elements (or :data:`MIN_WINDOW_ELEMENTS`); real models stay far below that.

Both raise a ModelError naming the op, the tensor and the constant or option.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .registry import OpContext

#: how many times the input a padded window input may hold
MAX_WINDOW_GROWTH = 64
#: a padded window input of at most this many elements is always allowed
MIN_WINDOW_ELEMENTS = 1 << 22


def _const(ctx: OpContext, i: int) -> np.ndarray | None:
    t = ctx.input(i)
    return None if t is None or t.data is None else np.asarray(t.data)


def _pad_shape(ctx: OpContext) -> tuple[tuple[int, ...], str] | None:
    x, p = ctx.inputs[0], _const(ctx, 1)
    if p is None or p.shape != (len(x.shape), 2):
        return None
    return tuple(int(n) + int(a) + int(b) for n, (a, b) in zip(x.shape, p.tolist())), f"paddings {ctx.inputs[1].name!r}"


def _tile_shape(ctx: OpContext) -> tuple[tuple[int, ...], str] | None:
    x, m = ctx.inputs[0], _const(ctx, 1)
    if m is None or m.shape != (len(x.shape),):
        return None
    return tuple(int(n) * int(k) for n, k in zip(x.shape, m.tolist())), f"multiples {ctx.inputs[1].name!r}"


def _resize_shape(ctx: OpContext) -> tuple[tuple[int, ...], str] | None:
    x, size = ctx.inputs[0], _const(ctx, 1)
    if size is None or size.shape != (2,) or len(x.shape) != 4:
        return None
    return (x.shape[0], int(size[0]), int(size[1]), x.shape[3]), f"size {ctx.inputs[1].name!r}"


_SIZE_RULES: dict[str, Callable[[OpContext], tuple[tuple[int, ...], str] | None]] = {
    "PAD": _pad_shape, "PADV2": _pad_shape, "MIRROR_PAD": _pad_shape, "TILE": _tile_shape,
    "RESIZE_BILINEAR": _resize_shape, "RESIZE_NEAREST_NEIGHBOR": _resize_shape,
}


def _padded_extent(size: int, kernel: int, stride: int, dilation: int, mode: str, before: int, after: int) -> int:
    eff = (kernel - 1) * dilation + 1
    if mode == "SAME":
        out = -(-size // stride)
        return max(size, (out - 1) * stride + eff)
    if mode == "VALID":
        return size
    return size + max(before, 0) + max(after, 0)


def _window(ctx: OpContext) -> tuple[int, int, str] | None:
    """(padded elements, input elements, what) of a window op's input, or None if not applicable."""
    x, opt = ctx.inputs[0], ctx.options
    if opt is None or len(x.shape) != 4:
        return None
    if ctx.op_name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = ctx.input(1)
        if w is None or len(w.shape) != 4:
            return None
        kh, kw = int(w.shape[1]), int(w.shape[2])
        dh, dw = int(getattr(opt, "dilation_h_factor", 1)), int(getattr(opt, "dilation_w_factor", 1))
    else:
        kh, kw, dh, dw = int(opt.filter_height), int(opt.filter_width), 1, 1
    n, h, wd, c = (int(v) for v in x.shape)
    mode = str(opt.padding)
    pads = [int(getattr(opt, f"padding_{s}", 0) or 0) for s in ("top", "bottom", "left", "right")]
    hp = _padded_extent(h, kh, max(int(opt.stride_h), 1), max(dh, 1), mode, pads[0], pads[1])
    wp = _padded_extent(wd, kw, max(int(opt.stride_w), 1), max(dw, 1), mode, pads[2], pads[3])
    what = (f"kernel {kh}x{kw}, dilation {dh}x{dw}, strides {opt.stride_h}x{opt.stride_w}, padding {mode}"
            f"{' ' + str(pads) if mode not in ('SAME', 'VALID') else ''}")
    return n * hp * wp * c, n * h * wd * c, f"pads the {h}x{wd} input to {hp}x{wp} ({what})"


_WINDOW_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"})


def check_static_shapes(ctx: OpContext) -> None:
    """ModelError when a constant or option of the op gives an output or padded input of the wrong size."""
    rule = _SIZE_RULES.get(ctx.op_name)
    if rule is not None and ctx.inputs and ctx.inputs[0] is not None:
        got = rule(ctx)
        declared = tuple(ctx.outputs[0].shape) if ctx.outputs else None
        if got is not None and declared is not None and -1 not in declared and got[0] != declared:
            raise ctx.error(f"its {got[1]} give output shape {list(got[0])}, but output tensor "
                            f"{ctx.outputs[0].name!r} is declared {list(declared)}; the constant or the "
                            "declared shape is corrupt")
    if ctx.op_name in _WINDOW_OPS and ctx.inputs and ctx.inputs[0] is not None:
        got = _window(ctx)
        if got is not None:
            padded, size, what = got
            if padded > max(MAX_WINDOW_GROWTH * size, MIN_WINDOW_ELEMENTS):
                raise ctx.error(f"{what}: {padded} elements for input {ctx.inputs[0].name!r} of {size}, more than "
                                f"{MAX_WINDOW_GROWTH} times its size; the options are corrupt")
