"""Build a model from numpy arrays and op calls, then save it as .sim/.tflite.

    >>> b = ModelBuilder()
    >>> x = b.input("image", (1, 32, 32, 3))
    >>> w = b.constant("w", np.ones((8, 3, 3, 3), np.float32))
    >>> y = b.op("CONV_2D", [x, w, b.constant("b", np.zeros(8, np.float32))],
    ...          {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name="conv")
    >>> b.output(b.op("RELU", [y]))
    >>> b.save("tiny_float.sim")

Output shapes and dtypes are inferred by running our own float kernel on example values (zeros for
inputs unless ``example=`` is given), unless ``output_shapes``/``output_dtypes`` are passed. Ops whose
name is not a builtin operator become CUSTOM ops with that custom code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import ModelError
from . import schema
from .graph import DTYPE_NAMES, TENSOR_DTYPES, Buffer, Model, Operator, OperatorCode, Quantization, Subgraph, Tensor
from .options import make_options


@dataclass(frozen=True)
class TensorRef:
    """A handle on a tensor of the model being built."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str


def _dtype_name(dtype) -> str:
    if isinstance(dtype, str):
        if dtype.upper() not in TENSOR_DTYPES:
            raise ModelError(f"unknown tensor type {dtype!r}; known: {sorted(TENSOR_DTYPES)}")
        return dtype.upper()
    try:
        return DTYPE_NAMES[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise ModelError(f"numpy dtype {dtype!r} has no TFLite tensor type") from None


class ModelBuilder:
    """Accumulates tensors and ops of one subgraph; ``build()`` returns a :class:`Model`."""

    def __init__(self, name: str | None = None, description: str | None = "calibrator_custom builder"):
        self.name = name
        self.description = description
        self.tensors: list[Tensor] = []
        self.buffers: list[Buffer] = [Buffer()]  # buffer 0: the empty sentinel
        self.codes: list[OperatorCode] = []
        self.operators: list[Operator] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.examples: dict[int, np.ndarray] = {}
        self._names: set[str] = set()

    # ------------------------------------------------------------------ tensors
    def _unique(self, name: str) -> str:
        base, k = name, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def _add(self, name: str, shape, dtype: str, buffer: int = 0, quantization: Quantization | None = None,
             sparsity: Any = None) -> TensorRef:
        name = self._unique(name)
        shape = tuple(int(d) for d in shape)
        self.tensors.append(Tensor(name, shape, dtype, buffer, quantization, sparsity=sparsity))
        return TensorRef(len(self.tensors) - 1, name, shape, dtype)

    def input(self, name: str, shape: Sequence[int], dtype="FLOAT32", quantization: Quantization | None = None,
              example: np.ndarray | None = None) -> TensorRef:
        """A graph input; ``example`` is the value used to infer downstream shapes (default zeros)."""
        ref = self._add(name, shape, _dtype_name(dtype), quantization=quantization)
        self.inputs.append(ref.index)
        self.examples[ref.index] = (np.zeros(ref.shape, TENSOR_DTYPES[ref.dtype]) if example is None
                                    else np.asarray(example, TENSOR_DTYPES[ref.dtype]).reshape(ref.shape))
        return ref

    def constant(self, name: str, value, dtype=None, quantization: Quantization | None = None,
                 sparsity: Any = None, shape: Sequence[int] | None = None) -> TensorRef:
        """A constant tensor holding ``value`` (stored as bytes in its own buffer)."""
        arr = np.asarray(value) if dtype is None else np.asarray(value, dtype=TENSOR_DTYPES[_dtype_name(dtype)])
        if arr.dtype == np.float64 and dtype is None:
            arr = arr.astype(np.float32)
        if arr.dtype == np.int64 and dtype is None:
            arr = arr.astype(np.int32)
        arr = np.ascontiguousarray(arr)
        self.buffers.append(Buffer(arr.tobytes()))
        ref = self._add(name, arr.shape if shape is None else shape, _dtype_name(arr.dtype),
                        len(self.buffers) - 1, quantization, sparsity)
        self.examples[ref.index] = arr
        return ref

    # ------------------------------------------------------------------ ops
    def _opcode(self, op_name: str) -> int:
        builtin = "CUSTOM" if op_name not in schema.ENUMS["BuiltinOperator"] else op_name
        custom = op_name if builtin == "CUSTOM" else None
        for i, c in enumerate(self.codes):
            if c.builtin_code == builtin and c.custom_code == custom:
                return i
        dep = min(schema.ENUMS["BuiltinOperator"][builtin], 127)
        self.codes.append(OperatorCode(builtin, custom, 1, dep))
        return len(self.codes) - 1

    def op(self, op_name: str, inputs: Sequence[TensorRef | None], options: dict[str, Any] | None = None, *,
           name: str | None = None, custom_options: bytes | None = None,
           output_shapes: Sequence[Sequence[int]] | None = None, output_dtypes: Sequence[Any] | None = None,
           num_outputs: int | None = None, output_quantization: Sequence[Quantization | None] | None = None,
           ) -> TensorRef | tuple[TensorRef, ...]:
        """Append op ``op_name`` reading ``inputs`` (None = absent optional input); returns its output(s)."""
        code = self._opcode(op_name)
        builtin = self.codes[code].builtin_code
        opt = make_options(op_name, options) if builtin != "CUSTOM" else None
        in_idx = tuple(-1 if t is None else t.index for t in inputs)
        base = name or op_name.lower()
        if output_shapes is None or output_dtypes is None:
            shapes, dtypes = self._infer(op_name, in_idx, opt, custom_options, output_shapes, output_dtypes,
                                         num_outputs, output_quantization)
        else:
            shapes, dtypes = [tuple(s) for s in output_shapes], [_dtype_name(d) for d in output_dtypes]
        quants = list(output_quantization or [None] * len(shapes))
        outs = [self._add(base if len(shapes) == 1 else f"{base}:{j}", s, d, quantization=q)
                for j, (s, d, q) in enumerate(zip(shapes, dtypes, quants))]
        self.operators.append(Operator(code, in_idx, tuple(o.index for o in outs), opt, custom_options,
                                       {}))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _infer(self, op_name, in_idx, opt, custom_options, output_shapes, output_dtypes, num_outputs,
               output_quantization):
        from ..interpreter import decode_custom_options, tensor_info
        from ..ops.registry import OpContext, TensorInfo, get_op

        opdef = get_op(op_name)
        k = len(self.operators)
        ins = tuple(None if i < 0 else tensor_info(self.tensors[i], self.examples.get(i)
                                                   if self.tensors[i].buffer else None) for i in in_idx)
        first = next((t for t in ins if t is not None), None)
        n_out = num_outputs or (len(output_shapes) if output_shapes else len(output_dtypes or ()) or 1)
        placeholder_dtypes = ([TENSOR_DTYPES[_dtype_name(d)] for d in output_dtypes] if output_dtypes
                              else [first.dtype if first is not None else np.dtype(np.float32)] * n_out)
        placeholder_shapes = [tuple(s) for s in output_shapes] if output_shapes else [()] * n_out
        quants = list(output_quantization or [None] * n_out)
        outs = tuple(TensorInfo(f"out{j}", placeholder_shapes[j], placeholder_dtypes[j], None, quants[j])
                     for j in range(n_out))
        options = decode_custom_options(k, op_name, custom_options, "FLEXBUFFERS") if opt is None and \
            custom_options else opt
        ctx = OpContext(k, op_name, ins, outs, options)
        params = opdef.prepare(ctx) if opdef.prepare else options
        values = [None if i < 0 else self.examples[i] for i in in_idx]
        try:
            result = opdef.kernel(*values, opt=params)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"op {op_name}: cannot infer output shapes by running it on example inputs "
                             f"({type(e).__name__}: {e}); pass output_shapes/output_dtypes") from None
        results = list(result) if isinstance(result, (tuple, list)) else [result]
        shapes = [tuple(s) for s in output_shapes] if output_shapes else [r.shape for r in results]
        dtypes = ([_dtype_name(d) for d in output_dtypes] if output_dtypes else
                  [_dtype_name(r.dtype) for r in results])
        for j, r in enumerate(results):
            self.examples[len(self.tensors) + j] = r.astype(TENSOR_DTYPES[dtypes[j]])
        return shapes, dtypes

    def output(self, *refs: TensorRef) -> None:
        """Mark tensors as graph outputs (in call order)."""
        self.outputs.extend(r.index for r in refs)

    # ------------------------------------------------------------------ result
    def build(self) -> Model:
        if not self.outputs:
            raise ModelError("the model has no outputs; call output(...) first")
        sg = Subgraph(list(self.tensors), tuple(self.inputs), tuple(self.outputs), list(self.operators), self.name)
        model = Model([sg], list(self.buffers), list(self.codes), description=self.description)
        model.validate()
        return model

    def save(self, path: str | os.PathLike) -> Model:
        model = self.build()
        model.save(path)
        return model
