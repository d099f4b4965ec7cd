"""``fixed_simulator`` for the vendor's own ``*_fixed.sim`` (SGS_IPU_SDK 1.1.5): the vendor's integer semantics.

``calibrator_custom.fixed_simulator(path)`` returns a :class:`VendorFixedSimulator` when ``path`` is a
SigmaStar fixed model (dialect ``sgs_fixed``). It has the vendor's methods: ``get_input_details``
(raw uint8 pixels, NHWC, in the ``input_formats`` layout), ``set_input``, ``invoke``, ``get_output``
(float32 ``(code - zero_point) * scale``; INT16 outputs carry the vendor's alignment padding: the
last dimension padded to a multiple of 8, as the vendor simulator's "Alignment shape").
"""
from __future__ import annotations

import logging
import mmap
import os

import numpy as np

from ..errors import InputError
from ..model.graph import Model, load_model
from . import engine

log = logging.getLogger(__name__)


def is_vendor_fixed(model_path) -> bool:
    """True when ``model_path`` (a path or a Model) is a SigmaStar fixed model."""
    if isinstance(model_path, Model):
        return model_path.dialect == "sgs_fixed"
    from ..model import sgs_dialect
    try:  # mapped, not read: detection touches a few fields, and load_model reads the file next
        with open(os.fspath(model_path), "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return sgs_dialect.detect(data) == "sgs_fixed"
    except Exception:  # noqa: BLE001 - unreadable, empty or not a vendor file: the generic path reports it
        return False


class VendorFixedSimulatorMixin:
    """The vendor fixed-model behaviour; combined with ``fixed_simulator`` in ``simulators``."""

    class_type = "FIXED"

    def __init__(self, model_path, show_log: bool = False):
        if isinstance(model_path, Model):
            self.model, self.model_obj = None, model_path
        else:
            self.model = os.fspath(model_path)
            self.model_obj = load_model(self.model)
        self.show_log = show_log
        if show_log:
            logging.getLogger("calibrator_custom").setLevel(logging.INFO)
        self.program = engine.prepare(self.model_obj, repr(self.model) if self.model else "the model")
        g = self.model_obj.main
        self._inputs: list[np.ndarray | None] = [None] * len(g.inputs)
        self._outputs: list[np.ndarray] | None = None
        self._observers = []
        self.meta = {}

    # ------------------------------------------------------------------ details
    def get_input_details(self) -> list[dict]:
        """Vendor keys: ``index, name, shape, dtype`` (uint8), ``input_formats, training_input_formats,
        layouts, input_width_alignment, input_height_alignment`` and ``quantization``."""
        g = self.model_obj.main
        out = []
        for k, i in enumerate(g.inputs):
            t = g.tensors[i]
            q = t.quantization
            out.append({"index": k, "name": t.name, "shape": np.array(t.shape, dtype=np.int32), "dtype": np.uint8,
                        "input_formats": "RGB", "training_input_formats": "RGB", "layouts": "NHWC",
                        "input_width_alignment": 1, "input_height_alignment": 1,
                        "quantization": (float(q.scale[0]), int(q.zero_point[0]))})
        return out

    def get_output_details(self) -> list[dict]:
        """Vendor keys: ``index, name, shape`` (alignment-padded), ``dtype`` (float32), ``quantization``."""
        g = self.model_obj.main
        out = []
        for k, (i, (s, z)) in enumerate(zip(g.outputs, self.program.output_scales)):
            t = g.tensors[i]
            out.append({"index": k, "name": t.name, "shape": np.array(self._out_shape(k), dtype=np.int32),
                        "dtype": np.float32, "quantization": (float(s), int(z))})
        return out

    def get_tensor_details(self) -> list[dict]:
        """Every tensor: ``name, shape, dtype`` and ``quantization`` [(scale, zero_point)] where it has one."""
        out = []
        for t in self.model_obj.main.tensors:
            q = t.quantization
            d = {"name": t.name, "shape": np.array(t.shape, dtype=np.int32), "dtype": t.dtype,
                 "min": [float(v) for v in (q.min or ())] if q else [],
                 "max": [float(v) for v in (q.max or ())] if q else []}
            d["quantization"] = ([(float(s), int(z)) for s, z in zip(q.scale, q.zero_point or [0] * len(q.scale))]
                                 if q is not None and q.scale else [])
            out.append(d)
        return out

    def _out_shape(self, k: int) -> tuple:
        g = self.model_obj.main
        t = g.tensors[g.outputs[k]]
        return engine.aligned_shape(t.shape) if t.dtype == "INT16" else tuple(int(d) for d in t.shape)

    # ------------------------------------------------------------------ running
    def set_input(self, index: int, data: np.ndarray, batch_idx: int = 0) -> None:
        """Set input ``index`` to raw uint8 pixels of exactly its shape (NHWC, the model's input_formats)."""
        self._check_batch_idx(batch_idx, "set_input")
        t = self._checked_input(index, data, self.model_obj.main)
        if data.dtype != np.uint8:
            raise InputError(f"set_input: input {index} ({t.name!r}) of a SigmaStar fixed model takes raw uint8 pixels, "
                             f"got {data.dtype.name}; preprocess with norm=False")
        self._inputs[index] = np.ascontiguousarray(data)

    def invoke(self, keep=()) -> None:
        """Run the model once on the inputs set so far (every input must be set)."""
        missing = [k for k, v in enumerate(self._inputs) if v is None]
        if missing:
            g = self.model_obj.main
            names = ", ".join(f"{k} ({g.tensors[g.inputs[k]].name!r})" for k in missing)
            raise InputError(f"invoke: set_input was not called for input(s) {names}")
        self._outputs = self.program.run(self._inputs)

    def get_output(self, index: int, batch_idx: int = 0) -> np.ndarray:
        """Output ``index`` of the last invoke: float32, INT16 outputs padded on the last dimension to 8."""
        self._check_batch_idx(batch_idx, "get_output")
        if self._outputs is None:
            raise InputError("get_output: call invoke() first")
        if not isinstance(index, (int, np.integer)) or not 0 <= index < len(self._outputs):
            raise InputError(f"get_output: index {index!r} is out of range; the model has {len(self._outputs)} output(s)")
        y = self._outputs[index]
        shape = self._out_shape(index)
        if tuple(y.shape) == shape:
            return y.copy()
        out = np.zeros(shape, np.float32)
        out[tuple(slice(0, d) for d in y.shape)] = y
        return out

    def get_tensor(self, name: str) -> np.ndarray:
        raise InputError("get_tensor: not available for SigmaStar fixed models")

    def is_detection(self) -> bool:
        return False
