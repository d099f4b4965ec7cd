"""Registry of the vendor fixed-point kernels, keyed by TFLite op name."""
from __future__ import annotations

from typing import Callable

from ..errors import UnsupportedOpError

KERNELS: dict[str, Callable] = {}


def register(*op_names: str):
    """Decorator: file ``fn`` under each TFLite op name in ``op_names``."""
    def deco(fn):
        for name in op_names:
            if name in KERNELS:
                raise ValueError(f"vendor fixed kernel for {name} registered twice")
            KERNELS[name] = fn
        return fn
    return deco


def get_kernel(op_name: str) -> Callable:
    try:
        return KERNELS[op_name]
    except KeyError:
        raise UnsupportedOpError(
            f"op {op_name}: the vendor fixed-point semantics of this op are not established yet "
            f"(known: {sorted(KERNELS)}); see docs/vendor_fixed_point.md") from None
