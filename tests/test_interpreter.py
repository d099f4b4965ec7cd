"""Interpreter plumbing: observers see every tensor, intermediates are freed early, constants fold."""
from __future__ import annotations

import numpy as np
import pytest

from calibrator_custom.errors import ModelError
from calibrator_custom.interpreter import Interpreter
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import Model


def _chain(n: int = 4) -> tuple[Model, list[int]]:
    b = ModelBuilder()
    x = b.input("x", (1, 8))
    t = x
    made = []
    for k in range(n):
        t = b.op("ADD", [t, b.constant(f"one{k}", np.ones(8, np.float32))], {"fused_activation_function": "NONE"},
                 name=f"add{k}")
        made.append(t.index)
    b.output(t)
    return b.build(), made


def test_observers_see_inputs_and_every_computed_tensor():
    model, made = _chain()
    seen = {}
    interp = Interpreter(model)
    interp.run([np.zeros((1, 8), np.float32)], observers=[lambda i, name, v: seen.__setitem__(name, v.copy())])
    assert set(seen) == {"x"} | {f"add{k}" for k in range(4)}
    for k in range(4):
        assert seen[f"add{k}"].shape == (1, 8) and seen[f"add{k}"].dtype == np.float32
        np.testing.assert_array_equal(seen[f"add{k}"], np.full((1, 8), k + 1, np.float32))


def test_intermediates_are_freed_after_their_last_use():
    model, made = _chain()
    interp = Interpreter(model)
    # each add's output is read only by the next add: it is freed right after that op
    for step, nxt in zip(interp.steps[1:], made[:-1]):
        assert nxt in step.free_after
    out = interp.run([np.zeros((1, 8), np.float32)])
    assert set(out) == {made[-1]}


def test_keep_all_keeps_intermediates():
    model, made = _chain()
    out = Interpreter(model).run([np.zeros((1, 8), np.float32)], keep="all")
    assert set(made) <= set(out)


def test_constant_subgraph_is_folded_at_load():
    b = ModelBuilder()
    x = b.input("x", (4,))
    c = b.op("ADD", [b.constant("a", np.arange(4, dtype=np.float32)), b.constant("b", np.ones(4, np.float32))],
             {"fused_activation_function": "NONE"}, name="folded")
    b.output(b.op("MUL", [x, c], {"fused_activation_function": "NONE"}, name="y"))
    interp = Interpreter(b.build())
    assert len(interp.steps) == 1
    np.testing.assert_array_equal(interp.constants[c.index], np.arange(1, 5, dtype=np.float32))
    out = interp.run([np.full(4, 2, np.float32)])
    np.testing.assert_array_equal(out[interp.output_indices[0]], np.arange(1, 5, dtype=np.float32) * 2)


def test_a_failing_kernel_names_the_op():
    b = ModelBuilder()
    x = b.input("x", (2, 3))
    b.output(b.op("RESHAPE", [x, b.constant("shape", np.array([3, 2], np.int32))], name="r"))
    interp = Interpreter(b.build())
    with pytest.raises(ModelError, match=r"op #0 RESHAPE"):
        interp.run([np.zeros((5, 7), np.float32)])  # wrong size at run time
