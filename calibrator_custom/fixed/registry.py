"""The integer kernel registry of the fixed simulator, keyed by TFLite op name (custom ops by custom_code).

Same shape as the float registry (``ops.registry``): ``prepare(ctx)`` runs once when a fixed model
is loaded and turns the tensors' quantization (scales, zero points) into integer parameters (a
frozen dataclass of ints and integer numpy arrays); the kernel ``fn(*inputs, opt=params)`` then
sees only integer (or bool) arrays and integer parameters. Kernels for the boundary ops
(QUANTIZE of float inputs, DEQUANTIZE/Fix2Float, the float detection post-process) are the only
ones that see floats, and say so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..ops.registry import Kernel, OpContext, OpDef, TensorInfo

FIXED_KERNELS: dict[str, OpDef] = {}


def register(*op_names: str, prepare: Callable[[OpContext], Any] | None = None):
    """Decorator registering an integer kernel under one or more op names."""

    def deco(fn: Kernel) -> Kernel:
        for name in op_names:
            if name in FIXED_KERNELS:
                raise RuntimeError(f"fixed kernel for {name!r} registered twice")
            FIXED_KERNELS[name] = OpDef(name, fn, prepare)
        return fn

    return deco


def supported_fixed_ops() -> list[str]:
    """Sorted names of every op with an integer kernel."""
    _load_all()
    return sorted(FIXED_KERNELS)


def get_fixed_op(name: str) -> OpDef:
    """The OpDef for ``name``; UnsupportedOpError naming the supported set when there is none."""
    _load_all()
    try:
        return FIXED_KERNELS[name]
    except KeyError:
        raise UnsupportedOpError(
            f"no integer kernel for op {name!r}; ops with integer kernels: {', '.join(sorted(FIXED_KERNELS))}"
        ) from None


_loaded = False


def _load_all() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from . import kernels  # noqa: F401


@dataclass(frozen=True)
class QParams:
    """A tensor's quantization as prepare needs it: real = scale * (q - zero_point)."""

    scale: np.ndarray  # float64, shape () or (channels,)
    zero_point: np.ndarray  # int64, same shape as scale
    axis: int  # quantized_dimension (meaningful when per channel)
    dtype: np.dtype

    @property
    def per_channel(self) -> bool:
        return self.scale.ndim == 1 and self.scale.size > 1

    @property
    def qmin(self) -> int:
        return int(np.iinfo(self.dtype).min)

    @property
    def qmax(self) -> int:
        return int(np.iinfo(self.dtype).max)


def qparams(ctx: OpContext, t: TensorInfo, what: str = "tensor") -> QParams:
    """The QParams of an integer tensor; ModelError naming the op and tensor when it has none."""
    q = t.quantization
    if q is None or not q.scale:
        raise ctx.error(f"{what} {t.name!r} has no quantization scale (is this a fixed model?)")
    if not np.issubdtype(t.dtype, np.integer):
        raise ctx.error(f"{what} {t.name!r} is {np.dtype(t.dtype).name}, expected an integer type")
    scale = np.asarray(q.scale, dtype=np.float64)
    zp = np.asarray(q.zero_point if q.zero_point else [0] * scale.size, dtype=np.int64)
    if zp.size == 1 and scale.size > 1:
        zp = np.full(scale.shape, int(zp[0]), dtype=np.int64)
    if zp.size != scale.size:
        raise ctx.error(f"{what} {t.name!r}: {scale.size} scales but {zp.size} zero points")
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise ctx.error(f"{what} {t.name!r}: scales must be finite and positive")
    if scale.size == 1:
        scale, zp = scale.reshape(()), zp.reshape(())
    return QParams(scale, zp, int(q.quantized_dimension or 0), np.dtype(t.dtype))


def channel_vector(p: QParams, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """(scale, zero_point) shaped to broadcast against an ``ndim``-D array quantized along ``p.axis``."""
    if not p.per_channel:
        return p.scale, p.zero_point
    shape = [1] * ndim
    shape[p.axis] = p.scale.size
    return p.scale.reshape(shape), p.zero_point.reshape(shape)
