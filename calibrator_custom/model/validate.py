"""Dataflow checks of a subgraph, run when a model is loaded (``Model.validate``).

After the index and buffer-size checks of ``graph.py``, a subgraph is runnable when:

* every tensor an op reads (an input index other than -1, the absent optional input) is a graph
  input, a constant (a tensor whose buffer holds its data), or the output of an op, and every
  graph output is one of these too;
* no tensor is written by two ops, and no op writes a graph input or a constant;
* no graph input holds constant data (its value would silently replace what is fed), and no
  graph input is listed twice;
* the ops can be ordered so that each runs after the producers of its inputs: there is no cycle.

Each problem is a :class:`ModelError` naming the op (``op #k NAME``) and the tensor (index and
name), and for a tensor that holds no data, its buffer, the bytes its shape and type need, and
the fix. Every dimension must also fit an int32 (the shape arrays of the tensor details).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError

if TYPE_CHECKING:
    from .graph import Model, Subgraph

#: largest dimension a tensor may declare (shapes are reported as int32 arrays)
MAX_DIMENSION = 2**31 - 1


def _op_label(model: "Model", sg: "Subgraph", k: int) -> str:
    op = sg.operators[k]
    try:
        name = model.op_name(op)
    except (IndexError, TypeError):
        name = None
    return f"op #{k} {name or '(unnamed custom op)'}"


def _tensor_label(sg: "Subgraph", i: int) -> str:
    return f"tensor #{i} {sg.tensors[i].name!r}"


def _holds_data(model: "Model", sg: "Subgraph", i: int) -> bool:
    t = sg.tensors[i]
    if not 0 < t.buffer < len(model.buffers):
        return False
    return bool(model.buffers[t.buffer].data) or 0 in t.shape


def _missing_data(model: "Model", sg: "Subgraph", i: int) -> str:
    """Why tensor ``i`` (read but never written) has no value, and what would fix it."""
    t = sg.tensors[i]
    what = "a variable (state) tensor, which is not supported, " if t.is_variable else ""
    try:
        need = int(np.prod(t.shape, dtype=np.int64)) * t.np_dtype.itemsize
        size = f"a constant of shape {list(t.shape)} and type {t.dtype} needs {need} bytes"
    except ModelError:
        size = f"its type {t.dtype} cannot hold a constant"
    where = (f"its buffer {t.buffer} is empty" if t.buffer > 0 else "it has no buffer (buffer 0)")
    return (f"which is {what}not a graph input, is written by no op, and holds no data ({where}; {size}); "
            "the file is damaged or was cut short: re-export the model")


def check_dimensions(sg: "Subgraph") -> None:
    """ModelError for a dimension that does not fit an int32."""
    for i, t in enumerate(sg.tensors):
        if any(d > MAX_DIMENSION for d in t.shape):
            raise ModelError(f"{_tensor_label(sg, i)} has shape {list(t.shape)}: a dimension exceeds {MAX_DIMENSION}")


def check_dataflow(model: "Model", s: int = 0) -> None:
    """ModelError for the first dataflow problem of subgraph ``s`` (see the module docstring)."""
    sg = model.subgraphs[s]
    check_dimensions(sg)
    inputs = set()
    for i in sg.inputs:
        if i in inputs:
            raise ModelError(f"graph input {_tensor_label(sg, i)} is listed twice in subgraph {s}'s inputs")
        inputs.add(i)
        if _holds_data(model, sg, i) and 0 not in sg.tensors[i].shape:
            raise ModelError(f"graph input {_tensor_label(sg, i)} holds constant data (buffer "
                             f"{sg.tensors[i].buffer}); a fed input cannot also be a constant")
    producer: dict[int, int] = {}
    for k, op in enumerate(sg.operators):
        for i in op.outputs:
            if i in producer:
                raise ModelError(f"{_op_label(model, sg, k)} writes {_tensor_label(sg, i)}, which "
                                 f"{_op_label(model, sg, producer[i])} writes too; each tensor has one producer")
            if i in inputs:
                raise ModelError(f"{_op_label(model, sg, k)} writes {_tensor_label(sg, i)}, which is a graph input")
            if _holds_data(model, sg, i):
                raise ModelError(f"{_op_label(model, sg, k)} writes {_tensor_label(sg, i)}, which is a constant "
                                 f"(buffer {sg.tensors[i].buffer} holds its data)")
            producer[i] = k
    available = inputs | set(producer)
    for k, op in enumerate(sg.operators):
        for i in op.inputs:
            if i >= 0 and i not in available and not _holds_data(model, sg, i):
                raise ModelError(f"{_op_label(model, sg, k)} reads {_tensor_label(sg, i)}, "
                                 f"{_missing_data(model, sg, i)}")
    for i in sg.outputs:
        if i not in available and not _holds_data(model, sg, i):
            raise ModelError(f"graph output {_tensor_label(sg, i)} {_missing_data(model, sg, i)}")
    _check_acyclic(model, sg, producer)


def _check_acyclic(model: "Model", sg: "Subgraph", producer: dict[int, int]) -> None:
    """ModelError naming one cycle (the ops and the tensors that link them) when there is one."""
    deps = [[(producer[i], i) for i in op.inputs if i >= 0 and i in producer] for op in sg.operators]
    if all(j < k for k, d in enumerate(deps) for j, _ in d):
        return  # in execution order: no cycle possible
    white, grey, black = 0, 1, 2
    state = [white] * len(sg.operators)
    for start in range(len(sg.operators)):
        if state[start] != white:
            continue
        # iterative depth-first search; path holds (op, tensor it reads from the next op on the stack)
        stack = [(start, iter(deps[start]))]
        path: list[tuple[int, int]] = []
        state[start] = grey
        while stack:
            k, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[k] = black
                stack.pop()
                if path:
                    path.pop()
                continue
            j, tensor = nxt
            if state[j] == grey:
                ring = [op for op, _ in stack]
                cycle = path[ring.index(j):] + [(k, tensor)]
                links = "; ".join(f"{_op_label(model, sg, a)} reads {_tensor_label(sg, t)} written by "
                                  f"{_op_label(model, sg, producer[t])}" for a, t in cycle)
                raise ModelError(f"the graph has a cycle: {links}; an op cannot depend on its own output")
            if state[j] == white:
                state[j] = grey
                path.append((k, tensor))
                stack.append((j, iter(deps[j])))
