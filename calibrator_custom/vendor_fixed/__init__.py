"""The integer arithmetic of the vendor's SGS_IPU_SDK 1.1.5 fixed simulator, as numpy kernels.

Established by black-box experiments against ``sgs_simulator_fixed`` (see
``docs/vendor_fixed_point.md`` and ``tools/vendor_fixed_experiments.py``). Every kernel takes explicit
parameters (codes, scales, zero points, bias rows and shifts) so that a reader of vendor fixed.sim
files can feed it; nothing here reads files or needs the vendor SDK.

``KERNELS`` maps a TFLite op name to its kernel; ``get_kernel(name)`` raises UnsupportedOpError
for ops whose vendor semantics are not established yet.
"""
from __future__ import annotations

from .registry import KERNELS, get_kernel
from . import boundary, conv  # noqa: F401  (register the kernels)

__all__ = ["KERNELS", "get_kernel", "boundary", "conv"]
