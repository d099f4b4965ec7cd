"""Single-op differential testing: build a one-op model with our builder, run it in our interpreter
and in LiteRT (reference kernels, ``BUILTIN_REF``), and compare shapes, dtypes and values."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from calibrator_custom.interpreter import Interpreter
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import Model


@dataclass(frozen=True)
class Const:
    """Marks an op input as a constant tensor of the single-op model."""

    value: Any
    dtype: Any = None
    quantization: Any = None


@dataclass(frozen=True)
class Quant:
    """A runtime input carrying quantization parameters."""

    value: np.ndarray
    quantization: Any


def build_single_op(op_name: str, inputs: Sequence[Any], options: dict | None = None, *,
                    custom_options: bytes | None = None, output_dtypes=None, output_shapes=None,
                    output_quantization=None, num_outputs=None) -> tuple[Model, list[np.ndarray]]:
    """A model with one op; returns it and the runtime feeds in input order."""
    b = ModelBuilder()
    refs, feeds = [], []
    for i, x in enumerate(inputs):
        if x is None:
            refs.append(None)
        elif isinstance(x, Const):
            refs.append(b.constant(f"c{i}", x.value, dtype=x.dtype, quantization=x.quantization))
        elif isinstance(x, Quant):
            arr = np.asarray(x.value)
            refs.append(b.input(f"x{i}", arr.shape, arr.dtype, quantization=x.quantization, example=arr))
            feeds.append(arr)
        else:
            arr = np.asarray(x)
            if arr.dtype == np.float64:
                arr = arr.astype(np.float32)
            refs.append(b.input(f"x{i}", arr.shape, arr.dtype, example=arr))
            feeds.append(arr)
    out = b.op(op_name, refs, options, custom_options=custom_options, output_dtypes=output_dtypes,
               output_shapes=output_shapes, output_quantization=output_quantization, num_outputs=num_outputs)
    b.output(*(out if isinstance(out, tuple) else (out,)))
    return b.build(), feeds


def run_model_ours(model: Model, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
    interp = Interpreter(model)
    res = interp.run(list(feeds))
    return [res[i] for i in interp.output_indices]


def run_model_litert(model_bytes: bytes, feeds: Sequence[np.ndarray], resolver: str = "BUILTIN_REF"
                     ) -> list[np.ndarray]:
    from ai_edge_litert import interpreter as litert

    it = litert.Interpreter(model_content=model_bytes,
                            experimental_op_resolver_type=getattr(litert.OpResolverType, resolver))
    for d, v in zip(it.get_input_details(), feeds):
        if tuple(d["shape"]) != v.shape:
            it.resize_tensor_input(d["index"], v.shape)
    it.allocate_tensors()
    for d, v in zip(it.get_input_details(), feeds):
        it.set_tensor(d["index"], v)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def run_ours(op_name: str, inputs: Sequence[Any], options: dict | None = None, *,
             custom_options: bytes | None = None, **kw) -> list[np.ndarray]:
    model, feeds = build_single_op(op_name, inputs, options, custom_options=custom_options, **kw)
    # through bytes, so the file codec is exercised too
    return run_model_ours(Model.from_bytes(model.to_bytes()), feeds)


def assert_outputs_match(ours: Sequence[np.ndarray], ref: Sequence[np.ndarray], rtol: float = 1e-5,
                         atol: float = 0.0, what: str = "") -> None:
    assert len(ours) == len(ref), f"{what}: {len(ours)} outputs, reference has {len(ref)}"
    for j, (a, r) in enumerate(zip(ours, ref)):
        assert a.shape == r.shape, f"{what} output {j}: shape {a.shape}, reference {r.shape}"
        assert a.dtype == r.dtype, f"{what} output {j}: dtype {a.dtype}, reference {r.dtype}"
        if np.issubdtype(r.dtype, np.floating):
            assert np.array_equal(np.isnan(a), np.isnan(r)), f"{what} output {j}: NaN positions differ"
            inf = np.isinf(r)
            assert np.array_equal(a[inf], r[inf]), f"{what} output {j}: infinities differ"
            fin = np.isfinite(r)
            scale = float(np.max(np.abs(r[fin]), initial=0.0))
            err = float(np.max(np.abs(a[fin].astype(np.float64) - r[fin]), initial=0.0))
            assert err <= rtol * scale + atol, (
                f"{what} output {j}: max abs error {err:.3g} > {rtol:g} x max|ref| {scale:.3g} + {atol:g}")
        else:
            np.testing.assert_array_equal(a, r, err_msg=f"{what} output {j}")


def check_against_litert(op_name: str, inputs: Sequence[Any], options: dict | None = None, *,
                         custom_options: bytes | None = None, rtol: float = 1e-5, atol: float = 0.0,
                         **kw) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run ``op_name`` in ours and LiteRT (BUILTIN_REF); assert count, shape, dtype, then values."""
    model, feeds = build_single_op(op_name, inputs, options, custom_options=custom_options, **kw)
    data = model.to_bytes()
    ours = run_model_ours(Model.from_bytes(data), feeds)
    ref = run_model_litert(data, feeds)
    assert_outputs_match(ours, ref, rtol, atol, what=op_name)
    return ours, ref


def naive_iou(a, b) -> np.float32:
    """Naive reference: IoU of two ``(y1, x1, y2, x2)`` boxes, each step rounded to float32 as TFLite's
    detection post-process computes it; 0 when either area is <= 0."""
    f32 = np.float32
    area_a = f32((a[2] - a[0]) * (a[3] - a[1]))
    area_b = f32((b[2] - b[0]) * (b[3] - b[1]))
    if area_a <= 0 or area_b <= 0:
        return f32(0)
    ih = max(f32(min(a[2], b[2]) - max(a[0], b[0])), f32(0))
    iw = max(f32(min(a[3], b[3]) - max(a[1], b[1])), f32(0))
    inter = f32(ih * iw)
    return f32(inter / f32(f32(area_a + area_b) - inter))
