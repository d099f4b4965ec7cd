"""The float kernel registry: one function per op, keyed by the TFLite operator name.

A kernel is ``fn(*inputs, opt=params) -> ndarray | tuple[ndarray, ...]``: inputs are numpy arrays in
the op's input order (``None`` for an absent optional input), and ``params`` is what the op's
``prepare`` returned (or the parsed options when it has no ``prepare``). ``prepare(ctx)`` runs once,
when a model is loaded: it validates ranks, shapes and options against the model (raising
``ctx.error(...)``) and precomputes whatever the kernel needs, so kernels hold no validation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import ModelError, UnsupportedOpError

Kernel = Callable[..., Any]


@dataclass(frozen=True)
class TensorInfo:
    """What prepare knows about a tensor: static shape, dtype and, for constants, the value."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: np.ndarray | None = None
    quantization: Any = None  # model.graph.Quantization, when the tensor has one
    sparsity: Any = None  # the tensor's decoded SparsityParameters (DENSIFY uses it)

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass(frozen=True)
class OpContext:
    """An operator as prepare sees it."""

    index: int
    op_name: str
    inputs: tuple[TensorInfo | None, ...]
    outputs: tuple[TensorInfo, ...]
    options: Any = None

    def error(self, message: str) -> ModelError:
        """The error to raise for a problem with this op; names the op index and type."""
        return ModelError(f"op #{self.index} {self.op_name}: {message}")

    def input(self, i: int) -> TensorInfo | None:
        """Input ``i``, or None when absent (index -1 or beyond the op's inputs)."""
        return self.inputs[i] if i < len(self.inputs) else None

    def require_inputs(self, low: int, high: int | None = None) -> None:
        """Check the number of inputs lies in [low, high] (high defaults to low)."""
        high = low if high is None else high
        n = len(self.inputs)
        if not low <= n <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise self.error(f"has {n} inputs, expected {want}")
        for i in range(low):
            if self.inputs[i] is None:
                raise self.error(f"required input {i} is missing")

    def require_constant(self, i: int, what: str) -> np.ndarray:
        """Input ``i`` must be a constant tensor; return its value."""
        t = self.input(i)
        if t is None or t.data is None:
            raise self.error(f"{what} (input {i}) must be a constant tensor")
        return t.data


@dataclass(frozen=True)
class OpDef:
    """A registered op: its kernel and optional prepare step."""

    name: str
    kernel: Kernel
    prepare: Callable[[OpContext], Any] | None = None


KERNELS: dict[str, OpDef] = {}


def register(*op_names: str, prepare: Callable[[OpContext], Any] | None = None):
    """Decorator registering a kernel under one or more TFLite op names (custom ops by custom_code)."""

    def deco(fn: Kernel) -> Kernel:
        for name in op_names:
            if name in KERNELS:
                raise RuntimeError(f"kernel for {name!r} registered twice")
            KERNELS[name] = OpDef(name, fn, prepare)
        return fn

    return deco


def supported_ops() -> list[str]:
    """Sorted names of every op with a float kernel."""
    _load_all()
    return sorted(KERNELS)


def get_op(name: str) -> OpDef:
    """The OpDef for ``name``; UnsupportedOpError listing the supported set if there is none."""
    _load_all()
    try:
        return KERNELS[name]
    except KeyError:
        raise UnsupportedOpError(
            f"no float kernel for op {name!r}; supported ops: {', '.join(sorted(KERNELS))}"
        ) from None


_loaded = False


def _load_all() -> None:
    """Import every kernel module once so their @register calls run."""
    global _loaded
    if not _loaded:
        _loaded = True
        from . import _all  # noqa: F401
