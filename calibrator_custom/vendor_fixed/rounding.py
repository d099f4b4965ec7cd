"""The integer rounding primitives the vendor's fixed simulator was seen to use."""
from __future__ import annotations

import numpy as np


def shift_round_half_away(a: np.ndarray, k: int) -> np.ndarray:
    """sign(a) * ((|a| + 2**(k-1)) >> k) for k > 0, a for k == 0 (int64)."""
    a = np.asarray(a, dtype=np.int64)
    if k == 0:
        return a
    return np.sign(a) * ((np.abs(a) + (1 << (k - 1))) >> k)


def shift_round_half_up(a: np.ndarray, n: int) -> np.ndarray:
    """(a + 2**(n-1)) >> n for n > 0 (floor division: ties towards +inf), a << -n for n <= 0 (int64)."""
    a = np.asarray(a, dtype=np.int64)
    if n <= 0:
        return a << (-n)
    return (a + (1 << (n - 1))) >> n
