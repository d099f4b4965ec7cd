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


class KernelRegistry:
    """Kernels keyed by op name; ``loader`` imports the kernel modules (so their @register calls run)
    the first time the registry is read. ``kind`` names the registry in error messages."""

    def __init__(self, kind: str, loader: Callable[[], None]):
        self.kind = kind
        self.kernels: dict[str, OpDef] = {}
        self._loader = loader
        self._loaded = False

    def register(self, *op_names: str, prepare: Callable[[OpContext], Any] | None = None):
        """Decorator registering a kernel under one or more op names (custom ops by custom_code)."""

        def deco(fn: Kernel) -> Kernel:
            for name in op_names:
                if name in self.kernels:
                    raise RuntimeError(f"{self.kind} kernel for {name!r} registered twice")
                self.kernels[name] = OpDef(name, fn, prepare)
            return fn

        return deco

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            self._loader()

    def supported(self) -> list[str]:
        """Sorted names of every op with a kernel here."""
        self._load()
        return sorted(self.kernels)

    def get(self, name: str) -> OpDef:
        """The OpDef for ``name``; UnsupportedOpError listing the supported set if there is none."""
        self._load()
        try:
            return self.kernels[name]
        except KeyError:
            raise UnsupportedOpError(
                f"no {self.kind} kernel for op {name!r}; supported ops: "
                f"{', '.join(sorted(self.kernels))}") from None


def _load_float_kernels() -> None:
    from . import _all  # noqa: F401


FLOAT_REGISTRY = KernelRegistry("float", _load_float_kernels)
KERNELS = FLOAT_REGISTRY.kernels
register = FLOAT_REGISTRY.register
supported_ops = FLOAT_REGISTRY.supported
get_op = FLOAT_REGISTRY.get
