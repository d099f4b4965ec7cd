"""``float_simulator``: run a float .sim/.tflite model, with the vendor's methods and errors.

    >>> sim = calibrator_custom.float_simulator("face_detection_short_range_float.sim")
    >>> sim.set_input(0, image)            # float32, shape of get_input_details()[0]['shape']
    >>> sim.invoke()
    >>> boxes = sim.get_output(0)

Errors follow the vendor: ``ValueError`` (our :class:`InputError` / :class:`ModelError`, both
subclasses) for a bad path, for ``set_input`` with a wrong index, shape or dtype, and for ``invoke``
before every input was set.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Iterable

import numpy as np

from .errors import InputError
from .interpreter import Interpreter, Observer
from .model.graph import Model, load_model

log = logging.getLogger(__name__)


class _SimulatorBase:
    """Shared by the float simulator and, later, the calibrator: inputs, outputs and tensor details."""

    class_type = "FLOAT"

    def __init__(self, model_path: str | os.PathLike | Model, show_log: bool = False):
        if isinstance(model_path, Model):
            self.model_obj = model_path
            self.model = None
        else:
            self.model = os.fspath(model_path)
            self.model_obj = load_model(self.model)
        self.show_log = show_log
        if show_log:
            logging.getLogger("calibrator_custom").setLevel(logging.INFO)
        self._interp = Interpreter(self.model_obj)
        g = self._interp.graph
        self._inputs: list[np.ndarray | None] = [None] * len(g.inputs)
        self._outputs: dict[int, np.ndarray] | None = None
        self._observers: list[Observer] = []

    # ------------------------------------------------------------------ details
    def _details(self, indices: Iterable[int]) -> list[dict]:
        g = self._interp.graph
        out = []
        for k, i in enumerate(indices):
            t = g.tensors[i]
            out.append({"index": k, "name": t.name, "shape": np.array(t.shape, dtype=np.int32),
                        "dtype": t.np_dtype.type})
        return out

    def get_input_details(self) -> list[dict]:
        """One dict per model input: ``index``, ``name``, ``shape`` (int32 array), ``dtype`` (numpy type)."""
        return self._details(self._interp.input_indices)

    def get_output_details(self) -> list[dict]:
        """One dict per model output, with the same keys as :meth:`get_input_details`."""
        return self._details(self._interp.output_indices)

    def get_tensor_details(self) -> list[dict]:
        """Every tensor: ``name``, ``shape`` (int32 array), ``dtype`` (e.g. ``'FLOAT32'``), ``qtype``."""
        return [{"name": t.name, "shape": np.array(t.shape, dtype=np.int32), "dtype": t.dtype,
                 "qtype": t.dtype} for t in self._interp.graph.tensors]

    # ------------------------------------------------------------------ running
    def set_input(self, index: int, data: np.ndarray) -> None:
        """Set input ``index`` (position in get_input_details) to ``data`` of exactly its shape and dtype."""
        g = self._interp.graph
        n = len(g.inputs)
        if not isinstance(index, (int, np.integer)) or not 0 <= index < n:
            raise InputError(f"set_input: index {index!r} is out of range; the model has {n} input(s)")
        t = g.tensors[g.inputs[index]]
        if not isinstance(data, np.ndarray):
            raise InputError(f"set_input: input {index} ({t.name!r}) needs a numpy.ndarray, got {type(data).__name__}")
        if tuple(data.shape) != tuple(t.shape):
            raise InputError(f"set_input: input {index} ({t.name!r}) needs shape {list(t.shape)}, "
                             f"got {list(data.shape)}")
        if data.dtype != t.np_dtype:
            raise InputError(f"set_input: input {index} ({t.name!r}) needs dtype {t.np_dtype.name}, "
                             f"got {data.dtype.name}; convert with data.astype(np.{t.np_dtype.name})")
        self._inputs[index] = np.ascontiguousarray(data)

    def add_observer(self, observer: Callable[[int, str, np.ndarray], None]) -> None:
        """Call ``observer(tensor_index, name, value)`` for every tensor of each later invoke."""
        self._observers.append(observer)

    def invoke(self, keep: str | Iterable[int] = ()) -> None:
        """Run the model once on the inputs set so far (every input must be set)."""
        missing = [k for k, v in enumerate(self._inputs) if v is None]
        if missing:
            g = self._interp.graph
            names = ", ".join(f"{k} ({g.tensors[g.inputs[k]].name!r})" for k in missing)
            raise InputError(f"invoke: set_input was not called for input(s) {names}")
        self._outputs = self._interp.run(self._inputs, self._observers, keep)

    def get_output(self, index: int) -> np.ndarray:
        """Output ``index`` of the last invoke."""
        if self._outputs is None:
            raise InputError("get_output: call invoke() first")
        outs = self._interp.output_indices
        if not isinstance(index, (int, np.integer)) or not 0 <= index < len(outs):
            raise InputError(f"get_output: index {index!r} is out of range; the model has {len(outs)} output(s)")
        return self._outputs[outs[index]].copy()

    def get_tensor(self, name: str) -> np.ndarray:
        """Value of a tensor kept by the last ``invoke(keep=...)`` (or a constant), by name."""
        if self._outputs is None:
            raise InputError("get_tensor: call invoke() first")
        i = self._interp.graph.tensor_index(name)
        if i in self._outputs:
            return self._outputs[i].copy()
        if i in self._interp.constants:
            return np.array(self._interp.constants[i])
        raise InputError(f"get_tensor: tensor {name!r} was freed after use; call invoke(keep='all') to keep it")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model!r}, class_type={self.class_type!r})"


class float_simulator(_SimulatorBase):  # noqa: N801 - the vendor's public name
    """Runs a float model (``*_float.sim`` or any float ``.tflite``) with the numpy interpreter."""

    class_type = "FLOAT"
