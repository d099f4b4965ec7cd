"""Pin OpenBLAS to one kernel before numpy loads it, so float sums round alike on every x86-64 CPU.

OpenBLAS picks its kernels by CPU (SkylakeX on AVX-512 Intel, Zen or Haswell on AMD, ...), and they
sum a matrix product in other orders: the same model and photos then give other last bits, other
ranges and, at L5, another choice of 16-bit convs (the quick start's 32.93 dB came out 32.76 dB on an
AVX-512 Xeon). Its ``Haswell`` kernel runs on every x86-64 CPU with AVX2 and FMA (x86-64-v3: Intel
since 2013, AMD since 2015) and gives the same bits on all of them, so it is selected through
``OPENBLAS_CORETYPE`` when that is unset, numpy is not imported yet and the CPU has both. The
environment variable is inherited by worker processes. ``blas`` warns once when the kernel in use
is another (numpy imported first, another CPU, the variable set otherwise).

This module imports nothing but the standard library and must run before numpy is imported.
"""
from __future__ import annotations

import os
import platform
import sys

#: the kernel whose bits the package's results (and the docs' figures) are
REFERENCE_KERNEL = "Haswell"


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def can_pin() -> bool:
    """True on a Linux x86-64 CPU with AVX2 and FMA (the reference kernel's instructions)."""
    return (sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")
            and {"avx2", "fma"} <= _cpu_flags())


def pin() -> None:
    """Set OPENBLAS_CORETYPE to the reference kernel unless it is set, numpy is loaded, or the CPU can't."""
    if "OPENBLAS_CORETYPE" in os.environ or "numpy" in sys.modules or not can_pin():
        return
    os.environ["OPENBLAS_CORETYPE"] = REFERENCE_KERNEL


pin()
