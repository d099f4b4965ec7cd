"""``calibrator_custom.printf``: the SDK's print function for scripts (the library itself logs)."""
from __future__ import annotations

import sys


def printf(*args, sep: str = " ", end: str = "\n", flush: bool = True) -> None:
    """Write ``args`` to standard output like ``print`` (the SDK's tools use it for their messages)."""
    sys.stdout.write(sep.join(str(a) for a in args) + end)
    if flush:
        sys.stdout.flush()
