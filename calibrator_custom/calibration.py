"""``calibrator``: a float model plus its input_config.ini, gathering calibration statistics.

    >>> calib = calibrator_custom.calibrator("face_detection_short_range_float.sim", "input_config.ini")
    >>> for x in batches:
    ...     calib.set_input(0, x)
    ...     calib.invoke()            # every invoke adds to the statistics
    >>> calib.save_statistics("face.stats.npz")

It has every ``float_simulator`` method; ``get_tensor_details()`` adds ``qtype``, the type each
tensor will have in the fixed model under this config. A bad model or config path is a
``ValueError`` (our ``ModelError`` / ``ConfigError``).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .calib import Collector, StatsSet, collect_stats, model_sha256, weight_stats
from .config import InputConfig, load_input_config
from .errors import InputError
from .quant.qtypes import conv_bits, conv_like_ops, tensor_qtypes
from .simulators import _SimulatorBase


class calibrator(_SimulatorBase):  # noqa: N801 - the vendor's public name
    """Float model + input_config.ini; statistics are gathered on every ``invoke``.

    Args:
        model_path: float model (``*_float.sim`` or float ``.tflite``).
        input_config_path: the model's input_config.ini.
        work_mode: accepted for compatibility with the vendor's S6 builds; unused.
        show_log: log progress at INFO level.
    """

    class_type = "FLOAT"
    model_type = "Float"

    def __init__(self, model_path: str | os.PathLike, input_config_path: str | os.PathLike,
                 work_mode: str | None = None, show_log: bool = False):
        super().__init__(model_path, show_log)
        self.input_config = os.fspath(input_config_path)
        self.config: InputConfig = load_input_config(self.input_config, self.model_obj)
        self.work_mode = work_mode
        self._convs = conv_like_ops(self.model_obj, self._interp.constants)
        self.conv_bits = conv_bits(self.model_obj, self._convs, self.config.conv)
        self._qtypes = tensor_qtypes(self.model_obj, self._interp.constants, self.config, self.conv_bits,
                                     self._convs)
        self._collector = Collector()
        self.add_observer(self._collector.observe)
        self._recorded_inputs: list[list[np.ndarray]] = []
        self._record_limit = 0

    # ------------------------------------------------------------------ details
    def get_tensor_details(self) -> list[dict]:
        """Every tensor: ``name``, ``shape`` (int32 array), ``dtype`` (``'FLOAT32'``...), ``qtype``
        (its type in the fixed model: ``'UINT8'``, ``'INT8'``, ``'INT16'``, ``'INT32'``...)."""
        details = super().get_tensor_details()
        for d, q in zip(details, self._qtypes):
            d["qtype"] = q
        return details

    # ------------------------------------------------------------------ running
    def invoke(self, keep: str | Iterable[int] = ()) -> None:
        """Run the model once on the inputs set so far; the run adds to the statistics."""
        super().invoke(keep)
        if len(self._recorded_inputs) < self._record_limit:
            self._recorded_inputs.append([np.array(x, copy=True) for x in self._inputs])

    def record_inputs(self, limit: int) -> None:
        """Keep a copy of the inputs of each of the next ``limit`` invokes (0 stops); forgets earlier ones.

        ``SIM_Calibrator`` records what ``forward`` fed each model: L5 measures on these inputs.
        """
        self._recorded_inputs = []
        self._record_limit = max(0, int(limit))

    def recorded_inputs(self) -> list[list[np.ndarray]]:
        """The inputs recorded since :meth:`record_inputs`, one list of arrays per invoke, in order."""
        return list(self._recorded_inputs)

    # ------------------------------------------------------------------ statistics
    def statistics(self) -> StatsSet:
        """Statistics of every invoke so far, with the model's weight statistics."""
        sha = model_sha256(self.model) if self.model else ""
        return self._collector.finalize(model_sha256=sha, model_name=os.path.basename(self.model or ""),
                                        weights=weight_stats(self._interp))

    def reset_statistics(self) -> None:
        """Forget the statistics gathered so far."""
        observers = [o for o in self._observers if o != self._collector.observe]
        self._collector = Collector(self._collector.config.num_bins)
        self._observers = observers + [self._collector.observe]

    def save_statistics(self, path: str | os.PathLike) -> None:
        """Write the statistics to ``path`` (``.npz``) so quantization can be re-planned without images."""
        self.statistics().save(path)

    def collect(self, image_items: Iterable[Any], preprocess_funcs: Callable | Sequence[Callable],
                num_process: int = 1, progress: Callable[[int, int], None] | None = None) -> StatsSet:
        """Statistics over images (paths, or per-input path lists), in ``num_process`` processes.

        Each ``preprocess(path)`` must return exactly the input's shape and dtype (``norm=True``).
        The result is identical for every ``num_process``; it is independent of invoke statistics.
        """
        if not self.model:
            raise InputError("collect needs a calibrator created from a model file path")
        return collect_stats(self.model, image_items, preprocess_funcs, num_process=num_process, progress=progress)

    def get_minmax(self) -> list[dict]:
        """Vendor form: one dict per tensor seen, ``name``, ``min``, ``max`` (floats)."""
        return [{"name": s.name, "min": float(s.min), "max": float(s.max)}
                for s in self._collector.tensor_stats().values()]

    def get_chn(self) -> list[dict]:
        """Vendor form: per-channel (last axis) ranges, ``name``, ``min`` list, ``max`` list."""
        return [{"name": s.name, "min": np.asarray(s.channel_min).tolist(), "max": np.asarray(s.channel_max).tolist()}
                for s in self._collector.tensor_stats().values()]
