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

import numpy as np

from ..ops.registry import KernelRegistry, OpContext, TensorInfo



def _load_integer_kernels() -> None:
    from . import kernels  # noqa: F401


INTEGER_REGISTRY = KernelRegistry("integer", _load_integer_kernels)
FIXED_KERNELS = INTEGER_REGISTRY.kernels
register = INTEGER_REGISTRY.register
supported_fixed_ops = INTEGER_REGISTRY.supported
get_fixed_op = INTEGER_REGISTRY.get


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
