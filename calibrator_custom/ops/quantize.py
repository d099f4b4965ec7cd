"""DEQUANTIZE, QUANTIZE and DENSIFY: the ops float models use to store compact weights.

Affine quantization everywhere: ``real = scale * (q - zero_point)``, per tensor or per channel
along ``quantized_dimension``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..rounding import round_half_away
from .registry import OpContext, register


@dataclass(frozen=True)
class AffineParams:
    """Scale and zero point shaped to broadcast against the tensor (per tensor or per channel)."""

    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int = 0
    qmax: int = 0
    out_dtype: np.dtype = np.dtype(np.float32)


def _affine(ctx: OpContext, t, what: str) -> tuple[np.ndarray, np.ndarray]:
    q = t.quantization
    if q is None or not q.scale:
        raise ctx.error(f"{what} tensor {t.name!r} of type {t.dtype} has no quantization scale")
    scale = np.asarray(q.scale, np.float32)
    zp = np.asarray(q.zero_point or (0,) * len(scale), np.int64)
    if len(zp) != len(scale):
        raise ctx.error(f"{what} tensor {t.name!r} has {len(scale)} scales but {len(zp)} zero points")
    if len(scale) > 1:
        axis = q.quantized_dimension
        if not 0 <= axis < len(t.shape) or t.shape[axis] != len(scale):
            raise ctx.error(f"{what} tensor {t.name!r}: {len(scale)} per-channel scales do not match dimension "
                            f"{axis} of shape {list(t.shape)}")
        bshape = [1] * len(t.shape)
        bshape[axis] = len(scale)
        scale, zp = scale.reshape(bshape), zp.reshape(bshape)
    return scale, zp


def prepare_dequantize(ctx: OpContext):
    ctx.require_inputs(1)
    x = ctx.inputs[0]
    if x.dtype == np.float16:
        return None
    if x.dtype not in (np.int8, np.uint8, np.int16, np.int32):
        raise ctx.error(f"cannot dequantize input of type {x.dtype}")
    scale, zp = _affine(ctx, x, "input")
    return AffineParams(scale, zp)


@register("DEQUANTIZE", prepare=prepare_dequantize)
def dequantize(x: np.ndarray, *, opt: AffineParams | None) -> np.ndarray:
    """y = float32(x) for float16 x, else y = scale * (x - zero_point)."""
    if opt is None:
        return x.astype(np.float32)
    return ((x.astype(np.int64) - opt.zero_point).astype(np.float32) * opt.scale).astype(np.float32)


def prepare_quantize(ctx: OpContext):
    ctx.require_inputs(1)
    out = ctx.outputs[0]
    if out.dtype not in (np.int8, np.uint8, np.int16):
        raise ctx.error(f"cannot quantize to type {out.dtype}; supported: int8, uint8, int16")
    scale, zp = _affine(ctx, out, "output")
    info = np.iinfo(out.dtype)
    x = ctx.inputs[0]
    if x.dtype != np.float32:
        in_scale, in_zp = _affine(ctx, x, "input")
        # requantize through the real value: real = in_scale * (q - in_zp)
        return AffineParams(scale, zp, info.min, info.max, out.dtype), AffineParams(in_scale, in_zp)
    return AffineParams(scale, zp, info.min, info.max, out.dtype), None


@register("QUANTIZE", prepare=prepare_quantize)
def quantize(x: np.ndarray, *, opt) -> np.ndarray:
    """q = clamp(round_half_away(x / scale) + zero_point) (x dequantized first when it is an integer)."""
    out, src = opt
    if src is not None:
        x = ((x.astype(np.int64) - src.zero_point).astype(np.float32) * src.scale).astype(np.float32)
    ratio = (x.astype(np.float32) / out.scale).astype(np.float64)
    rounded = round_half_away(ratio)
    q = np.clip(rounded + out.zero_point, out.qmin, out.qmax)
    return q.astype(out.out_dtype)


@dataclass(frozen=True)
class DensifyParams:
    """Where each stored value goes in the dense tensor."""

    shape: tuple[int, ...]
    flat_index: np.ndarray  # dense flat index of stored value i
    value_index: np.ndarray


def _index_vector(v) -> np.ndarray:
    if v is None:
        return np.zeros(0, np.int64)
    _, body = v
    values = body.get("values")
    if isinstance(values, (bytes, bytearray)):  # Uint8Vector values decode as bytes
        return np.frombuffer(values, np.uint8).astype(np.int64)
    return np.asarray(values or (), np.int64)


def prepare_densify(ctx: OpContext) -> DensifyParams:
    ctx.require_inputs(1)
    x = ctx.inputs[0]
    sp = x.sparsity
    if sp is None:
        raise ctx.error(f"input {x.name!r} has no sparsity parameters")
    shape = tuple(ctx.outputs[0].shape) or tuple(x.shape)
    order = list(sp.get("traversal_order") or ())
    block_map = list(sp.get("block_map") or ())
    dims = list(sp.get("dim_metadata") or ())
    n = len(shape)
    if len(order) != n + len(block_map) or len(dims) != len(order):
        raise ctx.error(f"sparsity of {x.name!r}: traversal order {order}, block map {block_map} and "
                        f"{len(dims)} dim metadata do not fit a rank-{n} tensor")
    pos = np.zeros(1, np.int64)
    coords: list[np.ndarray] = []
    for level, meta in enumerate(dims):
        if meta.get("format", "DENSE") == "DENSE":
            size = int(meta.get("dense_size", 0))
            pos = (pos[:, None] * size + np.arange(size)).reshape(-1)
            coords = [np.repeat(c, size) for c in coords] + [np.tile(np.arange(size), len(pos) // max(size, 1))]
        else:
            seg = _index_vector(meta.get("array_segments"))
            idx = _index_vector(meta.get("array_indices"))
            if pos.size and pos.max() + 1 >= len(seg):
                raise ctx.error(f"sparsity of {x.name!r}: level {level} segments are too short")
            counts = seg[pos + 1] - seg[pos]
            if (counts < 0).any() or seg[-1] > len(idx):
                raise ctx.error(f"sparsity of {x.name!r}: level {level} segments are inconsistent")
            starts = np.repeat(seg[pos], counts)
            within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            new_pos = starts + within
            coords = [np.repeat(c, counts) for c in coords] + [idx[new_pos]]
            pos = new_pos
    expanded = [None] * len(order)
    for level, d in enumerate(order):
        expanded[d] = coords[level]
    block_size = {}
    for level, d in enumerate(order):
        if d >= n:
            block_size[d] = int(dims[level].get("dense_size", 1))
    full = []
    for i in range(n):
        c = expanded[i]
        if i in block_map:
            b = n + block_map.index(i)
            c = c * block_size[b] + expanded[b]
        full.append(c)
    if x.data is not None and pos.size and pos.max() >= x.data.size:
        raise ctx.error(f"sparsity of {x.name!r} addresses value {int(pos.max())} but only {x.data.size} are stored")
    for i, c in enumerate(full):
        if c.size and (c.min() < 0 or c.max() >= shape[i]):
            raise ctx.error(f"sparsity of {x.name!r} addresses index {int(c.max())} in dimension {i} of size {shape[i]}")
    flat = np.ravel_multi_index(full, shape) if full else np.zeros(0, np.int64)
    return DensifyParams(shape, flat, pos)


@register("DENSIFY", prepare=prepare_densify)
def densify(x: np.ndarray, *, opt: DensifyParams) -> np.ndarray:
    """dense[coords(i)] = x[i] for the stored values, 0 elsewhere."""
    out = np.zeros(int(np.prod(opt.shape)), dtype=x.dtype)
    out[opt.flat_index] = np.asarray(x).reshape(-1)[opt.value_index]
    return out.reshape(opt.shape)
