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

from .errors import InputError, ModelError, naming_the_file
from .interpreter import Interpreter, Observer, checked_feed, checked_input
from .model import sgs_lower
from .model.graph import Model, Tensor, load_model

log = logging.getLogger(__name__)


#: Custom ops that end a ``-c Detection`` model (TFLite's and the vendor's SSD/YOLO NMS).
DETECTION_OPS = ("TFLite_Detection_PostProcess", "TFLite_Detection_NMS")


def is_detection_model(model: Model) -> bool:
    """True when one detection post-process op produces all of the model's 4 or 5 outputs, in order."""
    g = model.main
    if len(g.outputs) not in (4, 5):
        return False
    for op in g.operators:
        if model.op_name(op) in DETECTION_OPS and list(op.outputs[:len(g.outputs)]) == list(g.outputs):
            return True
    return False


class _SimulatorBase:
    """Shared by the float and fixed simulators and the calibrator: inputs, outputs and tensor details."""

    class_type = "FLOAT"

    def __init__(self, model_path: str | os.PathLike | Model, show_log: bool = False):
        if isinstance(model_path, Model):
            self.model_obj = model_path
            self.model = None
            model_path.validate()  # what load_model checks of a file
        else:
            self.model = os.fspath(model_path)
            self.model_obj = load_model(self.model)
        sgs_lower.check_simulatable(self.model_obj, repr(self.model) if self.model else "the model")
        #: the model as read, vendor fields included (the vendor fixed.sim is synthesized from it)
        self.source_model = self.model_obj
        self.model_obj = sgs_lower.runnable(self.model_obj)  # vendor quirks in TFLite terms
        self.show_log = show_log
        if show_log:
            logging.getLogger("calibrator_custom").setLevel(logging.INFO)
        with self._naming_the_file():
            self._interp = self._make_interpreter(self.model_obj)
        g = self._interp.graph
        self._inputs: list[np.ndarray | None] = [None] * len(g.inputs)
        self._outputs: dict[int, np.ndarray] | None = None
        self._observers: list[Observer] = []

    def _make_interpreter(self, model: Model) -> Interpreter:
        return Interpreter(model)

    def _naming_the_file(self):
        """Prefix the model file to a ModelError raised inside (prepare, invoke), keeping its type."""
        return naming_the_file(self.model)

    @property
    def model_path(self) -> str | None:
        """The model file path (the SDK's attribute name; same as ``model``)."""
        return self.model

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
    @staticmethod
    def _check_batch_idx(batch_idx: int, where: str) -> None:
        if batch_idx != 0:
            raise InputError(f"{where}: batch_idx {batch_idx!r}: only 0 here (batch_idx addresses the buffers of "
                             "multi-batch n_buf offline models, which this package does not simulate)")

    def set_input(self, index: int, data: np.ndarray, batch_idx: int = 0) -> None:
        """Set input ``index`` (position in get_input_details) to ``data`` of exactly its shape and dtype.

        ``batch_idx`` (the SDK's multi-batch offline buffer index) must be 0."""
        self._check_batch_idx(batch_idx, "set_input")
        self._inputs[index] = checked_feed(index, data, self._interp.graph)

    @staticmethod
    def _checked_input(index: int, data: np.ndarray, graph) -> Tensor:
        """The input tensor ``index`` of ``graph`` after checking the index, the array type and the shape."""
        return checked_input(index, data, graph)

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
        with self._naming_the_file():
            self._outputs = self._interp.run(self._inputs, self._observers, keep)

    def get_output(self, index: int, batch_idx: int = 0) -> np.ndarray:
        """Output ``index`` of the last invoke (``batch_idx`` must be 0, as for :meth:`set_input`)."""
        self._check_batch_idx(batch_idx, "get_output")
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

    def is_detection(self) -> bool:
        """True when the model ends in a detection post-process (``TFLite_Detection_PostProcess`` or
        ``TFLite_Detection_NMS``) whose outputs are the model's 4 (or 5) outputs: boxes, classes,
        scores, count (, index)."""
        return is_detection_model(self.model_obj)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model!r}, class_type={self.class_type!r})"


class float_simulator(_SimulatorBase):  # noqa: N801 - the vendor's public name
    """Runs a float model (``*_float.sim`` or any float ``.tflite``) with the numpy interpreter."""

    class_type = "FLOAT"


class fixed_simulator(_SimulatorBase):  # noqa: N801 - the vendor's public name
    """Runs a fixed model (``*_fixed.sim`` written by the calibrator) with the integer kernels.

    Its outputs are the specification of the fixed model's arithmetic (docs/fixed_point.md). Image
    inputs take raw uint8 pixels in the ``input_formats`` layout (use ``norm=False`` preprocessing
    and ``utils.convert_to_input_formats``); INT16 outputs are ``real = q * scale``.
    """

    class_type = "FIXED"

    def __new__(cls, model_path=None, *args, **kwargs):
        # a SigmaStar *_fixed.sim runs with the vendor's integer semantics (vendor_fixed.simulator)
        if cls is fixed_simulator and model_path is not None:
            from .vendor_fixed.simulator import is_vendor_fixed
            if is_vendor_fixed(model_path):
                return super().__new__(_vendor_fixed_simulator())
        return super().__new__(cls)

    def _make_interpreter(self, model: Model) -> Interpreter:
        from .fixed.registry import get_fixed_op
        from .fixed.writer import read_fixed_metadata

        meta = read_fixed_metadata(model, self.model)
        if meta is None:
            where = f" {self.model!r}" if self.model else ""
            raise ModelError(f"fixed_simulator: model{where} is not a fixed model written by calibrator_custom "
                             "(no calibrator_custom_fixed metadata); run a float model with float_simulator, "
                             "or convert it with calibrator_custom.calibrator first")
        self.meta = meta
        return Interpreter(model, get_op=get_fixed_op)

    def _quant(self, t) -> tuple[float, int] | None:
        q = t.quantization
        if q is None or not q.scale:
            return None
        return float(q.scale[0]), int(q.zero_point[0]) if q.zero_point else 0

    def get_input_details(self) -> list[dict]:
        """Vendor keys: ``index, name, shape, dtype, input_formats, training_input_formats, layouts,
        input_width_alignment, input_height_alignment`` (+ ``quantization`` for RAWDATA_S16 inputs)."""
        out = super().get_input_details()
        g = self._interp.graph
        metas = {m["name"]: m for m in self.meta.get("inputs", [])}
        for d, i in zip(out, self._interp.input_indices):
            m = metas.get(d["name"], {})
            d["input_formats"] = m.get("input_formats", "RAWDATA_F32_NHWC")
            d["training_input_formats"] = m.get("training_input_formats", d["input_formats"])
            d["layouts"] = m.get("layouts", "NHWC")
            d["input_width_alignment"] = int(m.get("input_width_alignment", 1))
            d["input_height_alignment"] = int(m.get("input_height_alignment", 1))
            if d["input_formats"] == "RAWDATA_S16_NHWC":
                d["quantization"] = self._quant(g.tensors[i])
        return out

    def get_output_details(self) -> list[dict]:
        """Vendor keys: ``index, shape, name, dtype`` and, for integer outputs, ``quantization: (scale, zero_point)``."""
        out = super().get_output_details()
        g = self._interp.graph
        for d, i in zip(out, self._interp.output_indices):
            q = self._quant(g.tensors[i])
            if q is not None and np.issubdtype(g.tensors[i].np_dtype, np.integer):
                d["quantization"] = q
        return out

    def get_tensor_details(self) -> list[dict]:
        """Every tensor: ``name, shape, dtype`` ('UINT8'/'INT8'/'INT16'/'INT32'/...), ``min``, ``max`` lists and
        ``quantization``: a list of (scale, zero_point) (one per channel for per-channel tensors; ``[]`` for
        biases; absent for float tensors)."""
        out = []
        for t in self._interp.graph.tensors:
            d = {"name": t.name, "shape": np.array(t.shape, dtype=np.int32), "dtype": t.dtype}
            q = t.quantization
            d["min"] = [float(v) for v in (q.min or ())] if q else []
            d["max"] = [float(v) for v in (q.max or ())] if q else []
            if t.dtype != "FLOAT32":
                if q is None or not q.scale or t.dtype in ("INT32", "INT64") and not q.min:
                    d["quantization"] = []
                else:
                    zps = list(q.zero_point or [0] * len(q.scale))
                    d["quantization"] = [(float(s), int(z)) for s, z in zip(q.scale, zps)]
            out.append(d)
        return out


_VENDOR_FIXED_CLASS = None


def _vendor_fixed_simulator() -> type:
    """fixed_simulator with the vendor fixed-model behaviour (one class, made on first use)."""
    global _VENDOR_FIXED_CLASS
    if _VENDOR_FIXED_CLASS is None:
        from .vendor_fixed.simulator import VendorFixedSimulatorMixin
        _VENDOR_FIXED_CLASS = type("fixed_simulator", (VendorFixedSimulatorMixin, fixed_simulator),
                                   {"__doc__": fixed_simulator.__doc__, "__module__": __name__})
    return _VENDOR_FIXED_CLASS


class offline_simulator(_SimulatorBase):  # noqa: N801 - the vendor's public name
    """The SDK's simulator of offline (board) models. Not available yet: constructing one is a clear error.

    The SDK documents fixed and offline results as identical, so simulate the ``*_fixed.sim`` with
    :class:`fixed_simulator` instead.
    """

    class_type = "OFFLINE"

    def __init__(self, model_path: str | os.PathLike | Model, input_config: str | os.PathLike | None = None,
                 show_log: bool = False, batch: int = 1, **kwargs):
        where = f" {os.fspath(model_path)!r}" if not isinstance(model_path, Model) else ""
        raise ModelError(f"offline_simulator{where}: offline models are not supported by this package yet; simulate "
                         "the fixed model (*_fixed.sim) with calibrator_custom.fixed_simulator, whose results the "
                         "SDK documents as identical to the offline model's")
