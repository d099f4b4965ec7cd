"""The integer arithmetic of the vendor's SGS_IPU_SDK 1.1.5 fixed simulator, as numpy kernels.

Established by black-box experiments against ``sgs_simulator_fixed`` (see
``docs/vendor_fixed_point.md`` and ``tools/vendor_fixed_experiments.py``). Every kernel takes explicit
parameters (codes, zero points, bias rows, multipliers and shifts) so that a reader of vendor
fixed.sim files can feed it; nothing here reads files or needs the vendor SDK. ``layout`` turns the
vendor's buffers and dumps into plain arrays.

``KERNELS`` maps a TFLite op name to its kernel; ``get_kernel(name)`` raises UnsupportedOpError
for ops whose vendor semantics are not established yet.
"""
from __future__ import annotations

from . import activation, boundary, conv, elementwise, layout, movement, output, pool, resize, rounding, tables  # noqa: F401  (register kernels)
from .registry import KERNELS, get_kernel

__all__ = ["KERNELS", "get_kernel", "activation", "boundary", "conv", "elementwise", "layout", "movement", "output", "pool", "resize", "rounding", "tables"]
