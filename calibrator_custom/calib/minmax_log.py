"""Writer of the vendor's ``log/tensor_min_max.txt``: one line per activation tensor.

Line format (sgs_facts.md §5.1): ``<tensor_name>, min: <%06f>, max: <%06f>;`` in tensor order.
"""
from __future__ import annotations

import os

from ..model.graph import atomic_write
from .stats import StatsSet


def format_tensor_min_max(stats: StatsSet) -> str:
    """The file's text: ``name, min: %06f, max: %06f;`` per activation tensor, by tensor index."""
    lines = [f"{t.name}, min: {t.min:06f}, max: {t.max:06f};\n"
             for t in sorted(stats.tensors.values(), key=lambda t: (t.index, t.name))]
    return "".join(lines)


def write_tensor_min_max(stats: StatsSet, path: str | os.PathLike) -> None:
    """Write :func:`format_tensor_min_max` to ``path`` atomically (temporary file + rename)."""
    atomic_write(path, format_tensor_min_max(stats).encode("utf-8"))
