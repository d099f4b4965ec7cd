"""Float pooling kernels: AVERAGE_POOL_2D and MAX_POOL_2D (NHWC, fused activations).

Geometry
--------
* ``SAME`` / ``VALID``: TFLite's rules. Output size ``ceil(in / stride)`` resp.
  ``floor((in - k) / stride) + 1``; SAME puts ``total // 2`` pads before. Padded cells are
  ignored: MAX takes the maximum over the window cells inside the input, AVERAGE divides the
  sum by the number of window cells inside the input.
* SigmaStar's explicit modes (``CAFFE``, ``ONNXINSIDE``, ``ONNXOUTSIDE``; pads in
  ``padding_top/bottom/left/right``): the output spatial size is the model's output tensor
  shape (so Caffe's ceil mode works), window ``(oy, ox)`` covers rows
  ``[oy * stride_h - padding_top, ... + filter_height)`` and likewise for columns, and window
  cells outside the input are ignored for MAX. The AVERAGE divisor is
    - ``ONNXINSIDE``: the number of window cells inside the real input
      (ONNX ``count_include_pad=0``);
    - ``CAFFE`` and ``ONNXOUTSIDE``: the number of window cells inside the padded extent
      ``[-pad_before, size + pad_after)`` (Caffe / ONNX ``count_include_pad=1``).
  A window with no cell inside the input gives -inf for MAX and 0 for AVERAGE.

The reductions are separable: one pass over the kernel width, then one over the kernel
height, each a loop over taps of whole-tensor strided-view ufuncs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ._common import EXPLICIT_PADDINGS, explicit_pads, apply_activation, same_pads, valid_out
from .conv import check_activation, check_output_shape, pad_nhwc, padded_phases, work_dtype
from .registry import OpContext, register


@dataclass(frozen=True)
class PoolParams:
    """Precomputed pooling geometry."""

    kh: int
    kw: int
    sh: int
    sw: int
    pad_t: int
    after_h: int        # rows the windows reach past the input (negative: unused input rows)
    pad_l: int
    after_w: int        # columns the windows reach past the input (may be negative)
    out_h: int
    out_w: int
    act: str
    dtype: np.dtype
    #: AVERAGE only: the divisor of every output cell, [out_h, out_w, 1], or one float when uniform
    divisor: np.ndarray | float | None


def _inside(out: int, stride: int, pad: int, k: int, lo: int, hi: int) -> np.ndarray:
    """Per output index: how many of the window's cells fall inside [lo, hi)."""
    start = np.arange(out, dtype=np.int64) * stride - pad
    return np.clip(np.minimum(start + k, hi) - np.maximum(start, lo), 0, None)


def _prepare_pool(ctx: OpContext, average: bool) -> PoolParams:
    ctx.require_inputs(1)
    x = ctx.inputs[0]
    if len(x.shape) != 4:
        raise ctx.error(f"input must have rank 4, got shape {x.shape}")
    dtype = work_dtype(ctx, x, "input")
    opt = ctx.options
    act = check_activation(ctx, opt)
    n, h, w, c = x.shape
    kh, kw = int(opt.filter_height), int(opt.filter_width)
    sh, sw = int(opt.stride_h), int(opt.stride_w)
    if kh <= 0 or kw <= 0:
        raise ctx.error(f"filter size must be positive, got filter_height={kh}, "
                        f"filter_width={kw}")
    if sh <= 0 or sw <= 0:
        raise ctx.error(f"strides must be positive, got stride_h={sh}, stride_w={sw}")
    mode = opt.padding
    if mode in ("SAME", "VALID"):
        if mode == "SAME":
            oh, pt, _ = same_pads(h, kh, sh)
            ow, pl, _ = same_pads(w, kw, sw)
        else:
            oh, ow, pt, pl = valid_out(h, kh, sh), valid_out(w, kw, sw), 0, 0
        if oh <= 0 or ow <= 0:
            raise ctx.error(f"output would be empty: input {h}x{w}, filter {kh}x{kw}, strides "
                            f"{sh}x{sw}, padding {mode}")
        check_output_shape(ctx, (n, oh, ow, c))
        lo_h, hi_h, lo_w, hi_w = 0, h, 0, w
    elif mode in EXPLICIT_PADDINGS:
        pt, pb, pl, pr = explicit_pads(ctx, opt)
        declared = tuple(ctx.outputs[0].shape)
        if len(declared) != 4 or declared[0] != n or declared[3] != c:
            raise ctx.error(f"{mode} padding takes the output size from the output tensor, "
                            f"which must be [{n}, h, w, {c}]; got {declared}")
        oh, ow = int(declared[1]), int(declared[2])
        if oh <= 0 or ow <= 0:
            raise ctx.error(f"output tensor shape {declared} is empty")
        if mode == "ONNXINSIDE":
            lo_h, hi_h, lo_w, hi_w = 0, h, 0, w
        else:
            lo_h, hi_h, lo_w, hi_w = -pt, h + pb, -pl, w + pr
    else:
        raise UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: unknown padding {mode!r}")
    # buffer rows/cols needed after the input so that every window fits
    after_h = (oh - 1) * sh + kh - pt - h
    after_w = (ow - 1) * sw + kw - pl - w
    divisor = None
    if average:
        rows = _inside(oh, sh, pt, kh, lo_h, hi_h)
        cols = _inside(ow, sw, pl, kw, lo_w, hi_w)
        cnt = (rows[:, None] * cols[None, :]).astype(dtype)
        cnt[cnt == 0] = 1          # empty windows: sum 0 / 1
        divisor = float(cnt.flat[0]) if np.all(cnt == cnt.flat[0]) else cnt[:, :, None]
    return PoolParams(kh, kw, sh, sw, pt, after_h, pl, after_w, oh, ow, act, dtype, divisor)


def _pool_views(x: np.ndarray, p: PoolParams, value: float, reduce: np.ufunc) -> np.ndarray:
    """reduce over every window (separable: kernel width first, then kernel height)."""
    n, h, w, c = x.shape
    # crop input rows/cols no window reaches (negative pad after), pad the rest with `value`;
    # column phases of the stride keep every tap view made of whole contiguous rows
    hb, wb = min(h, h + p.after_h), min(w, w + p.after_w)
    pads = (p.pad_t, max(p.after_h, 0), p.pad_l, max(p.after_w, 0))
    if p.sw == 1:
        planes = [pad_nhwc(x[:, :hb, :wb], *pads, value=value)]
    else:
        planes = padded_phases(x[:, :hb, :wb], *pads, p.sw, 1, value)
    oh, ow = p.out_h, p.out_w
    hp = planes[0].shape[1]

    def tap(kx: int) -> np.ndarray:
        return planes[kx % p.sw][:, :, kx // p.sw:kx // p.sw + ow]

    if p.kw == 1:
        rowred = tap(0)
    else:
        rowred = np.empty((n, hp, ow, c), dtype=x.dtype)
        reduce(tap(0), tap(1), out=rowred)
        for kx in range(2, p.kw):
            reduce(rowred, tap(kx), out=rowred)
    span_h = (oh - 1) * p.sh + 1
    if p.kh == 1:
        return np.array(rowred[:, :span_h:p.sh], copy=True)   # never alias the input
    out = np.empty((n, oh, ow, c), dtype=x.dtype)
    reduce(rowred[:, 0:span_h:p.sh], rowred[:, 1:1 + span_h:p.sh], out=out)
    for ky in range(2, p.kh):
        reduce(out, rowred[:, ky:ky + span_h:p.sh], out=out)
    return out


def _prepare_max(ctx: OpContext) -> PoolParams:
    return _prepare_pool(ctx, average=False)


def _prepare_avg(ctx: OpContext) -> PoolParams:
    return _prepare_pool(ctx, average=True)


@register("MAX_POOL_2D", prepare=_prepare_max)
def max_pool_2d(x: np.ndarray, *, opt: PoolParams) -> np.ndarray:
    """y[n,oy,ox,c] = act(max over window cells inside the input of x[n, oy*sh-pt+ky, ox*sw-pl+kx, c])."""
    x = x.astype(opt.dtype, copy=False)
    out = _pool_views(x, opt, -np.inf, np.maximum)
    return apply_activation(out, opt.act)


@register("AVERAGE_POOL_2D", prepare=_prepare_avg)
def average_pool_2d(x: np.ndarray, *, opt: PoolParams) -> np.ndarray:
    """y[n,oy,ox,c] = act(sum of x over the window cells inside the input / divisor[oy, ox])."""
    x = x.astype(opt.dtype, copy=False)
    out = _pool_views(x, opt, 0.0, np.add)
    np.divide(out, opt.divisor, out=out)
    return apply_activation(out, opt.act)
