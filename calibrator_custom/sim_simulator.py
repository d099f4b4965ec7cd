"""``SIM_Simulator``: run several simulators together (multi-input, chained models), optionally in parallel.

    >>> class Net(calibrator_custom.SIM_Simulator):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.det = calibrator_custom.fixed_simulator("det_fixed.sim")
    ...     def forward(self, x):
    ...         self.det.set_input(0, x)
    ...         self.det.invoke()
    ...         return [self.det.get_output(i) for i in range(len(self.det.get_output_details()))]
    >>> net = Net()
    >>> outs = net([x])                                   # forward(x)
    >>> all_outs = net(sample_gen, num_process=4)         # [forward(*s) for s in sample_gen], in order
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import InputError
from .progress import ProgressBar
from .sim_registry import ModelRegistry
from .simulators import _SimulatorBase
from .sim_workers import run_sharded

log = logging.getLogger(__name__)


class SIM_Simulator(ModelRegistry):  # noqa: N801 - the vendor's public name
    """Subclass it, register simulators in ``__init__``, implement ``forward``, call the instance.

    ``self.<name> = float_simulator(...)`` / ``fixed_simulator(...)`` / ``calibrator(...)`` after
    ``super().__init__()`` registers the simulator (the vendor's rules; see
    :mod:`calibrator_custom.sim_registry`). The vendor registers only the simulators its Python
    build can run (float on 64-bit, fixed/offline on 32-bit); here every kind is accepted.
    """

    _kind = "simulators"
    _store = "_simulators"
    _expected = "calibrator_custom.float_simulator / fixed_simulator"

    def _accepts(self, value: Any) -> bool:
        return isinstance(value, _SimulatorBase)

    def register_simulator(self, name: str, value: _SimulatorBase) -> None:
        """Register ``value`` under ``name`` (what ``self.<name> = value`` does)."""
        self._register(name, value)

    def __call__(self, *inputs, **kwargs):
        """``forward(*inputs, **kwargs)``; with ``num_process=N``: a generator of samples gives the list
        ``[forward(*sample) for sample in generator]`` (computed in up to N forked processes, in input
        order, with a progress bar), plain inputs give ``forward(*inputs)`` (other keyword arguments are
        not passed on, as the vendor), and plain inputs with N > 1 are a ``ValueError``. N is capped at
        ``os.cpu_count()`` (so N > 1 on a one-CPU machine is not an error) and at the number of samples.
        """
        if "num_process" not in kwargs:
            return self.forward(*inputs, **kwargs)
        num_process = kwargs["num_process"]
        if isinstance(num_process, bool) or not isinstance(num_process, (int, np.integer)) or num_process < 1:
            raise InputError(f"num_process must be an integer >= 1, got {num_process!r}")
        workers = min(int(num_process), os.cpu_count() or 1)
        is_gen = len(inputs) == 1 and isinstance(inputs[0], Iterator)
        if not is_gen:
            if workers > 1:
                raise InputError("Multi process mode need data generator for input")
            return self.forward(*inputs)
        return self.forward_all(inputs[0], workers)

    def forward_all(self, inputs: Iterator, workers: int) -> list:
        """``[forward(*sample) for sample in inputs]`` in ``workers`` forked processes (results in order).

        A sample is a list/tuple of ``forward`` arguments or one array (one argument).
        """
        samples = [tuple(s) if isinstance(s, (list, tuple)) else (s,) for s in inputs]
        if not samples:
            return []

        def run_shard(start: int, stop: int, tick) -> list:
            out = []
            for k in range(start, stop):
                try:
                    out.append(self.forward(*samples[k]))
                except Exception as e:
                    if hasattr(e, "add_note"):
                        e.add_note(f"(in {type(self).__name__}.forward on sample #{k} of the data generator)")
                    raise
                tick()
            return out

        with ProgressBar(len(samples), "SIM_Simulator") as bar:
            shards = run_sharded(run_shard, len(samples), workers, bar.update, "SIM_Simulator")
        return [r for shard in shards for r in shard]
