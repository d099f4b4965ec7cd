"""The float interpreter: runs a Model's main subgraph with the numpy kernels of ``ops``.

Loading ``prepare``s every op once (so an unsupported op or an inconsistent weight is reported
when the model is loaded, naming the op), folds ops whose inputs are all constant (float16
DEQUANTIZE, DENSIFY, shape arithmetic) into constants, and computes when each intermediate tensor
is last needed. ``run`` then executes the plan, hands every computed tensor to the observers, and
frees each intermediate as soon as no later op needs it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from flatbuffers import flexbuffers

from .errors import InputError, ModelError, UnsupportedOpError
from .model.graph import Model, Tensor
from .model import sgs_lower
from .model.options import default_options
from .ops.registry import OpContext, TensorInfo, get_op
from .ops.static_shapes import check_static_shapes

log = logging.getLogger(__name__)

#: numpy dtype kinds a kernel result may be cast between (float widths, integer widths and signedness)
_KIND_CLASS = {"f": "float", "i": "integer", "u": "integer", "b": "bool", "c": "complex"}

#: ``observer(tensor_index, tensor_name, value)`` is called for every tensor a run produces or is fed.
Observer = Callable[[int, str, np.ndarray], None]


@dataclass(frozen=True)
class Step:
    """One planned op: its kernel, tensor indices, params from prepare, and what to free after it."""

    op_index: int
    op_name: str
    kernel: Callable[..., Any]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    params: Any
    free_after: tuple[int, ...]
    out_dtypes: tuple[np.dtype, ...]


def decode_custom_options(op_index: int, op_name: str, raw: bytes | None, fmt: str) -> Any:
    """Custom options of a custom op: the decoded FlexBuffer (a dict for a map), or None."""
    if not raw:
        return None
    if fmt != "FLEXBUFFERS":
        raise ModelError(f"op #{op_index} {op_name}: custom options in format {fmt} are not supported")
    try:
        return flexbuffers.Loads(bytes(raw))
    except Exception as e:  # noqa: BLE001 - any decoder failure means corrupt options
        raise ModelError(f"op #{op_index} {op_name}: cannot decode its FlexBuffer custom options ({e})") from None


def tensor_info(t: Tensor, data: np.ndarray | None) -> TensorInfo:
    """What prepare sees of tensor ``t`` (``data`` = its constant value, or None)."""
    return TensorInfo(t.name, tuple(t.shape), t.np_dtype, data, t.quantization, t.sparsity)


def checked_input(index: int, data: np.ndarray, graph) -> Tensor:
    """The input tensor ``index`` of ``graph`` after checking the index, the array type and the shape
    (an ``InputError`` in the vendor's ``set_input`` words otherwise)."""
    n = len(graph.inputs)
    if not isinstance(index, (int, np.integer)) or not 0 <= index < n:
        raise InputError(f"set_input: index {index!r} is out of range; the model has {n} input(s)")
    t = graph.tensors[graph.inputs[index]]
    if not isinstance(data, np.ndarray):
        raise InputError(f"set_input: input {index} ({t.name!r}) needs a numpy.ndarray, got {type(data).__name__}")
    if tuple(data.shape) != tuple(t.shape):
        raise InputError(f"set_input: input {index} ({t.name!r}) needs shape {list(t.shape)}, "
                         f"got {list(data.shape)}")
    return t


def checked_feed(index: int, data: np.ndarray, graph) -> np.ndarray:
    """``data`` as input ``index`` of ``graph`` takes it (contiguous), after :func:`checked_input` and the
    exact dtype check."""
    t = checked_input(index, data, graph)
    if data.dtype != t.np_dtype:
        fix = f"convert with data.astype(np.{t.np_dtype.name})"
        if data.dtype.kind == "f" and t.np_dtype.kind in "iu":  # normalized floats fed to a fixed model
            fix = ("this input takes raw values, not normalized floats: preprocess with norm=False and pass "
                   f"the result through utils.convert_to_input_formats(data, get_input_details()[{index}])")
        raise InputError(f"set_input: input {index} ({t.name!r}) needs dtype {t.np_dtype.name}, "
                         f"got {data.dtype.name}; {fix}")
    return np.ascontiguousarray(data)


class Interpreter:
    """Executes the main subgraph of ``model`` in float.

    Args:
        model: a loaded :class:`Model`.
        subgraph: which subgraph to run (0 = main).
        get_op: the kernel registry lookup (the float kernels by default; the fixed simulator
            passes the integer kernels' ``get_fixed_op``).
    """

    def __init__(self, model: Model, subgraph: int = 0, get_op: Callable[[str], Any] = get_op):
        model = sgs_lower.runnable(model)  # a SigmaStar float model in TFLite's semantics
        self.model = model
        self._get_op = get_op
        self.graph = model.subgraphs[subgraph]
        g = self.graph
        self.constants: dict[int, np.ndarray] = {}
        for i, t in enumerate(g.tensors):
            data = model.tensor_data(t)
            if data is not None:
                self.constants[i] = data
        self.steps: list[Step] = []
        self._plan()

    # -------------------------------------------------------------------------------- planning
    def _context(self, k: int, name: str, op) -> OpContext:
        g = self.graph
        ins = tuple(None if i < 0 else tensor_info(g.tensors[i], self.constants.get(i))
                    for i in op.inputs)
        outs = tuple(tensor_info(g.tensors[i], None) for i in op.outputs)
        code = self.model.operator_codes[op.opcode_index]
        if code.builtin_code == "CUSTOM":
            options = decode_custom_options(k, name, op.custom_options,
                                            op.extra.get("custom_options_format", "FLEXBUFFERS"))
        else:
            options = op.options if op.options is not None else default_options(name)
        return OpContext(k, name, ins, outs, options)

    def _plan(self) -> None:
        g = self.graph
        order = g.topological_order()
        planned: list[tuple[int, str, Any, Any, tuple, tuple]] = []
        for k in order:
            op = g.operators[k]
            name = self.model.op_name(op)
            if name is None:
                raise UnsupportedOpError(f"op #{k} is a CUSTOM op without a custom_code")
            try:
                opdef = self._get_op(name)
            except UnsupportedOpError as e:
                raise UnsupportedOpError(f"op #{k}: {e}") from None
            ctx = self._context(k, name, op)
            try:
                params = opdef.prepare(ctx) if opdef.prepare else ctx.options
                check_static_shapes(ctx)
            except ModelError:
                raise
            except Exception as e:  # noqa: BLE001 - a prepare bug must still name the op
                raise ModelError(f"op #{k} {name}: cannot prepare ({type(e).__name__}: {e})") from None
            ins = tuple(op.inputs)
            if ins and all(i < 0 or i in self.constants for i in ins) and not any(
                    g.tensors[i].is_variable for i in op.outputs):
                self._fold(k, name, opdef.kernel, ins, tuple(op.outputs), params)
                continue
            planned.append((k, name, opdef.kernel, params, ins, tuple(op.outputs)))
        # Liveness: free a tensor right after its last reader, unless it is a graph output.
        keep = set(g.outputs) | set(self.constants)
        last_use: dict[int, int] = {}
        for s, (_, _, _, _, ins, outs) in enumerate(planned):
            for i in ins:
                if i >= 0:
                    last_use[i] = s
            for i in outs:
                last_use.setdefault(i, s)
        free: dict[int, list[int]] = {}
        for t, s in last_use.items():
            if t not in keep:
                free.setdefault(s, []).append(t)
        self.steps = [Step(k, n, fn, ins, outs, p, tuple(free.get(s, ())), self._out_dtypes(outs))
                      for s, (k, n, fn, p, ins, outs) in enumerate(planned)]

    def _out_dtypes(self, outs: tuple[int, ...]) -> tuple[np.dtype, ...]:
        return tuple(self.graph.tensors[i].np_dtype for i in outs)

    def _fold(self, k: int, name: str, kernel, ins, outs, params) -> None:
        values = [None if i < 0 else self.constants[i] for i in ins]
        results = self._call(k, name, kernel, values, params, self._out_dtypes(outs))
        self._check_outputs(k, name, outs, results)
        for i, v in zip(outs, results):
            self.constants[i] = v
        log.debug("folded constant op #%d %s", k, name)

    def _call(self, k: int, name: str, kernel, values, params, out_dtypes) -> list[np.ndarray]:
        try:
            result = kernel(*values, opt=params)
        except Exception as e:  # noqa: BLE001 - report which op failed, not a numpy stack
            shapes = [None if v is None else list(np.shape(v)) for v in values]
            raise ModelError(f"op #{k} {name} failed on input shapes {shapes}: {type(e).__name__}: {e}") from e
        results = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(results) != len(out_dtypes):
            raise ModelError(f"op #{k} {name} produced {len(results)} outputs, the model declares {len(out_dtypes)}")
        for j, (want, v) in enumerate(zip(out_dtypes, results)):
            if v.dtype != want and _KIND_CLASS.get(v.dtype.kind) == _KIND_CLASS.get(want.kind):
                results[j] = v.astype(want)  # a width change only; another kind is refused by _check_outputs
        return results

    def _check_outputs(self, k: int, name: str, outs: tuple[int, ...], results: list[np.ndarray]) -> None:
        """ModelError when an op computes another shape or kind of type than the model declares."""
        for i, v in zip(outs, results):
            t = self.graph.tensors[i]
            if v.dtype != t.np_dtype:
                raise ModelError(f"op #{k} {name}: its output tensor #{i} {t.name!r} is declared {t.dtype} but the "
                                 f"op computes {v.dtype.name} values from its inputs; the model's types are "
                                 "inconsistent")
            if v.shape != tuple(t.shape) and not (t.shape_signature and -1 in t.shape_signature):
                raise ModelError(f"op #{k} {name}: its output tensor #{i} {t.name!r} is declared with shape "
                                 f"{list(t.shape)} but the op computes {list(v.shape)} from its inputs; the "
                                 "model's shapes are inconsistent")

    # -------------------------------------------------------------------------------- running
    @property
    def input_indices(self) -> tuple[int, ...]:
        return tuple(self.graph.inputs)

    @property
    def output_indices(self) -> tuple[int, ...]:
        return tuple(self.graph.outputs)

    def run(self, feeds: Sequence[np.ndarray], observers: Iterable[Observer] = (),
            keep: str | Iterable[int] = ()) -> dict[int, np.ndarray]:
        """Run once; returns {tensor index: value} for the graph outputs (plus ``keep``: "all" or indices).

        ``feeds`` are the graph inputs in order, already of the right shape and dtype.
        """
        g = self.graph
        observers = tuple(observers)
        if len(feeds) != len(g.inputs):
            raise InputError(f"the model has {len(g.inputs)} inputs, got {len(feeds)} arrays")
        keep_all = keep == "all"
        keep_set = set() if keep_all else set(keep)
        values: dict[int, np.ndarray] = dict(self.constants)
        for i, v in zip(g.inputs, feeds):
            values[i] = v
            for obs in observers:
                obs(i, g.tensors[i].name, v)
        for step in self.steps:
            args = [None if i < 0 else values[i] for i in step.inputs]
            results = self._call(step.op_index, step.op_name, step.kernel, args, step.params, step.out_dtypes)
            self._check_outputs(step.op_index, step.op_name, step.outputs, results)
            for i, v in zip(step.outputs, results):
                values[i] = v
                for obs in observers:
                    obs(i, g.tensors[i].name, v)
            if not keep_all:
                for i in step.free_after:
                    if i not in keep_set:
                        values.pop(i, None)
        if keep_all:
            return values
        wanted = set(g.outputs) | keep_set
        return {i: values[i] for i in wanted if i in values}
