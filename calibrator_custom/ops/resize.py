"""Resize kernels (NHWC): RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR.

Source coordinates follow TFLite's reference kernels exactly, in float32:
scale = in / out, or (in - 1) / (out - 1) with align_corners and out > 1.
* bilinear: src = (dst + 0.5) * scale - 0.5 with half_pixel_centers, else dst * scale;
  lo = max(floor(src), 0), hi = min(ceil(src), in - 1), weight of hi = src - lo (so a negative src
  near the border gives weights 1 - w > 1 and w < 0 on the same pixel, which sum to that pixel).
* nearest: src = (dst + 0.5 if half_pixel_centers else dst) * scale, then round half away from zero
  with align_corners else floor, then min(., in - 1), and max(., 0) with half_pixel_centers.
The per-row/per-column indices and weights are computed once per (sizes, flags). Bilinear is
separable: each axis is interpolated in one pass, as a BLAS product with the (out, in) interpolation
matrix (two non-zeros per row) when the axis is short, else by gathering the lo/hi rows and blending.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from .. import blas
from ..rounding import round_half_up
from .registry import OpContext, register

logger = logging.getLogger(__name__)

#: Axes up to this input size are interpolated by a dense matmul (measured faster than gathers up to
#: ~160 on 2 cores; the matmul costs in_size multiply-adds per output, the gather a constant ~10).
_MATMUL_MAX_IN = 128


@dataclass(frozen=True)
class ResizeParams:
    align_corners: bool
    half_pixel_centers: bool
    size: tuple[int, int] | None


def _scale(in_size: int, out_size: int, align_corners: bool) -> np.float32:
    if align_corners and out_size > 1:
        return np.float32(in_size - 1) / np.float32(out_size - 1)
    return np.float32(in_size) / np.float32(out_size)


@functools.lru_cache(maxsize=256)
def _bilinear_axis(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, frac) along one axis: out[i] = in[lo[i]] * (1 - frac[i]) + in[hi[i]] * frac[i]."""
    scale = _scale(in_size, out_size, align_corners)
    dst = np.arange(out_size, dtype=np.float32)
    if half_pixel_centers:
        src = (dst + np.float32(0.5)) * scale - np.float32(0.5)
    else:
        src = dst * scale
    lo = np.maximum(np.floor(src).astype(np.int64), 0)
    hi = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    frac = (src - lo.astype(np.float32)).astype(np.float32)
    out = np.minimum(lo, in_size - 1), hi, frac
    for a in out:
        a.flags.writeable = False
    return out


@functools.lru_cache(maxsize=256)
def _bilinear_matrix(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool
                     ) -> np.ndarray:
    """(out, in) float32 matrix M with out = M @ in along one axis (weights of _bilinear_axis)."""
    lo, hi, frac = _bilinear_axis(in_size, out_size, align_corners, half_pixel_centers)
    m = np.zeros((out_size, in_size), np.float32)
    rows = np.arange(out_size)
    m[rows, lo] += np.float32(1) - frac
    m[rows, hi] += frac
    m.flags.writeable = False
    return m


def _bilinear_pass(a: np.ndarray, axis: int, out_size: int, p: ResizeParams, dense: bool) -> np.ndarray:
    """Interpolate float array ``a`` (NHWC) along ``axis`` (1 = H, 2 = W) to ``out_size``."""
    n, h, w, c = a.shape
    in_size = a.shape[axis]
    if dense and in_size <= _MATMUL_MAX_IN:
        m = _bilinear_matrix(in_size, out_size, p.align_corners, p.half_pixel_centers).astype(a.dtype, copy=False)
        if axis == 1:
            return blas.matmul(m, a.reshape(n, h, w * c)).reshape(n, out_size, w, c)
        return blas.matmul(m, a.reshape(n * h, w, c)).reshape(n, h, out_size, c)
    lo, hi, frac = _bilinear_axis(in_size, out_size, p.align_corners, p.half_pixel_centers)
    shape = [1, 1, 1, 1]
    shape[axis] = out_size
    base = np.take(a, lo, axis=axis)
    diff = np.take(a, hi, axis=axis)
    diff -= base
    diff *= frac.astype(a.dtype).reshape(shape)
    base += diff
    return base


@functools.lru_cache(maxsize=256)
def _nearest_axis(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool
                  ) -> np.ndarray:
    """Source index of every output position along one axis."""
    scale = _scale(in_size, out_size, align_corners)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    src = (np.arange(out_size, dtype=np.float32) + offset) * scale
    if align_corners:
        # std::round: half away from zero; src >= 0 and float32 + 0.5 is exact in float64.
        idx = round_half_up(src.astype(np.float64)).astype(np.int64)
    else:
        idx = np.floor(src).astype(np.int64)
    idx = np.minimum(idx, in_size - 1)
    if half_pixel_centers:
        idx = np.maximum(idx, 0)
    idx.flags.writeable = False
    return idx


def _prepare_resize(ctx: OpContext) -> ResizeParams:
    ctx.require_inputs(2)
    x, size_t = ctx.inputs[0], ctx.inputs[1]
    if len(x.shape) != 4:
        raise ctx.error(f"input {x.name!r} must be 4-D NHWC, got shape {x.shape}")
    if np.dtype(size_t.dtype) != np.int32:
        raise ctx.error(f"size {size_t.name!r} has dtype {np.dtype(size_t.dtype).name}, expected int32")
    if size_t.shape != (2,):
        raise ctx.error(f"size {size_t.name!r} has shape {size_t.shape}, expected (2,)")
    o = ctx.options
    align, half = bool(o.align_corners), bool(o.half_pixel_centers)
    if ctx.op_name == "RESIZE_BILINEAR" and align and half:
        raise ctx.error("half_pixel_centers and align_corners cannot both be true")
    size = None
    if size_t.data is not None:
        size = tuple(int(v) for v in size_t.data)
        if min(size) <= 0:
            raise ctx.error(f"output size {size} must be positive")
    return ResizeParams(align, half, size)


def _out_size(size: np.ndarray, p: ResizeParams) -> tuple[int, int]:
    if p.size is not None:
        return p.size
    h, w = (int(v) for v in np.asarray(size).reshape(-1)[:2])
    return h, w


@register("RESIZE_BILINEAR", prepare=_prepare_resize)
def resize_bilinear(x: np.ndarray, size: np.ndarray, *, opt: ResizeParams) -> np.ndarray:
    """y[n, i, j, c] = bilinear mix of x at the TFLite source coordinates of (i, j) (see module doc)."""
    out_h, out_w = _out_size(size, opt)
    _, h, w, _ = x.shape
    src = x if x.dtype.kind == "f" else x.astype(np.float32)
    # A dense matmul would spread an inf/NaN over its whole row (0 * inf); gather then.
    dense = min(h, w) <= _MATMUL_MAX_IN and bool(np.isfinite(src).all())
    # Separable (the same products as TFLite's 4-term sum, regrouped): the smaller intermediate first.
    if out_h * w <= h * out_w:
        y = _bilinear_pass(_bilinear_pass(src, 1, out_h, opt, dense), 2, out_w, opt, dense)
    else:
        y = _bilinear_pass(_bilinear_pass(src, 2, out_w, opt, dense), 1, out_h, opt, dense)
    return y if y.dtype == x.dtype else y.astype(x.dtype)


@register("RESIZE_NEAREST_NEIGHBOR", prepare=_prepare_resize)
def resize_nearest_neighbor(x: np.ndarray, size: np.ndarray, *, opt: ResizeParams) -> np.ndarray:
    """y[n, i, j, c] = x[n, src_y(i), src_x(j), c] with TFLite's nearest rounding (see module doc)."""
    out_h, out_w = _out_size(size, opt)
    iy = _nearest_axis(x.shape[1], out_h, opt.align_corners, opt.half_pixel_centers)
    ix = _nearest_axis(x.shape[2], out_w, opt.align_corners, opt.half_pixel_centers)
    return x[:, iy[:, None], ix[None, :]]
