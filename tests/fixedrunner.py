"""Single-op testing of integer kernels: quantize random inputs, run the integer kernel, and compare
its dequantized output with the float kernel run on the dequantized inputs.

``check_fixed_op`` is the one entry point most tests need:

    check_fixed_op("ADD", [qrandom((2, 3, 4), "INT16"), qrandom((4,), "INT16")], options={...})

It checks (in order) that prepare accepts the op, that every parameter prepare returned is an integer
(no float reaches the kernel's arithmetic), that outputs have the float op's shapes and the declared
integer dtypes, and that ``|dequantized - float|`` is at most ``tol_lsb`` output LSBs where the
float result is inside the output's representable range (and saturates to the range end outside).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from calibrator_custom.fixed.fixedpoint import FloorAffine
from calibrator_custom.fixed.registry import get_fixed_op
from calibrator_custom.model.graph import Quantization
from calibrator_custom.model.options import make_options
from calibrator_custom.ops.registry import OpContext, TensorInfo, get_op

NP = {"UINT8": np.uint8, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
      "BOOL": np.bool_, "FLOAT32": np.float32}


@dataclass(frozen=True)
class QArr:
    """A quantized operand: integer values with scale/zero point (per tensor or per channel on ``axis``).

    ``real`` (optional) is the float value fed to the float reference instead of the dequantized
    values (for non-float operands such as shapes or indices, give ``dtype='INT32'`` and no scale).
    """

    q: np.ndarray
    scale: Any = None
    zero_point: Any = 0
    axis: int = 0
    const: bool = False

    @property
    def dtype_name(self) -> str:
        return {v: k for k, v in NP.items()}[np.dtype(self.q.dtype).type]

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def quantization(self) -> Quantization | None:
        if not self.quantized:
            return None
        s = np.atleast_1d(np.asarray(self.scale, np.float64))
        z = np.atleast_1d(np.asarray(self.zero_point, np.int64))
        if z.size == 1 and s.size > 1:
            z = np.full(s.shape, int(z[0]))
        return Quantization(scale=tuple(float(v) for v in s), zero_point=tuple(int(v) for v in z),
                            quantized_dimension=self.axis)

    def real(self) -> np.ndarray:
        """The float value this operand stands for."""
        if not self.quantized:
            return self.q
        s = np.asarray(self.scale, np.float64)
        z = np.asarray(self.zero_point, np.float64)
        if s.ndim == 1 and s.size > 1:
            shape = [1] * self.q.ndim
            shape[self.axis] = s.size
            s = s.reshape(shape)
            z = z.reshape(shape) if z.ndim == 1 and z.size > 1 else z
        return ((self.q.astype(np.float64) - z) * s).astype(np.float32)


@dataclass(frozen=True)
class QOut:
    """How an output is quantized (dtype name and scale/zero point); ``scale=None`` = not quantized."""

    dtype: str = "INT16"
    scale: Any = None
    zero_point: Any = 0
    axis: int = 0


def qrandom(shape, dtype: str = "INT16", scale=None, zero_point=0, *, rng=None, axis: int = 0,
            const: bool = False, low: int | None = None, high: int | None = None) -> QArr:
    """Random integer values over the whole range of ``dtype`` (or [low, high]) with a scale."""
    rng = np.random.default_rng(0) if rng is None else rng
    info = np.iinfo(NP[dtype])
    lo = info.min if low is None else low
    hi = info.max if high is None else high
    q = rng.integers(lo, hi, size=shape, endpoint=True).astype(NP[dtype])
    if scale is None:
        scale = float(rng.uniform(0.5, 2.0) / (info.max if info.min < 0 else 128))
    return QArr(q, scale, zero_point, axis, const)


def symmetric_out(ref: np.ndarray, dtype: str = "INT16", zero_point: int = 0) -> QOut:
    """An output quantization covering ``ref`` symmetrically (INT*) or asymmetrically (UINT8)."""
    ref = np.asarray(ref, np.float64)
    info = np.iinfo(NP[dtype])
    if dtype == "UINT8":
        lo, hi = min(0.0, float(ref.min())), max(0.0, float(ref.max()))
        scale = (hi - lo) / 255 if hi > lo else 1.0
        return QOut(dtype, scale, int(np.clip(round(-lo / scale), 0, 255)))
    m = float(np.max(np.abs(ref))) if ref.size else 0.0
    return QOut(dtype, m / info.max if m > 0 else 1.0, zero_point)


def _info(name: str, x: QArr | None, real: bool) -> TensorInfo | None:
    if x is None:
        return None
    if real:
        v = x.real()
        return TensorInfo(name, v.shape, v.dtype, v if x.const else None)
    return TensorInfo(name, x.q.shape, x.q.dtype, x.q if x.const else None, x.quantization())


def run_float(op_name: str, inputs: Sequence[QArr | None], options=None,
              output_shapes: Sequence[tuple] | None = None, output_dtypes: Sequence[str] | None = None
              ) -> list[np.ndarray]:
    """The float op on the real values of ``inputs``."""
    opdef = get_op(op_name)
    feeds = [None if x is None else x.real() for x in inputs]
    infos = tuple(_info(f"x{i}", x, True) for i, x in enumerate(inputs))
    outs = tuple(TensorInfo(f"y{j}", tuple(s), np.dtype(NP[(output_dtypes or ['FLOAT32'] * 9)[j]]))
                 for j, s in enumerate(output_shapes or ()))
    ctx = OpContext(0, op_name, infos, outs, options)
    params = opdef.prepare(ctx) if opdef.prepare else options
    r = opdef.kernel(*feeds, opt=params)
    return list(r) if isinstance(r, (tuple, list)) else [r]


def assert_integer_params(params: Any, path: str = "params") -> None:
    """Every leaf of prepare's result is an int, bool, str, None, integer/bool array or a nested one of those."""
    if params is None or isinstance(params, (bool, int, str, np.integer, np.bool_)):
        return
    if isinstance(params, np.dtype) or callable(params) and not isinstance(params, np.ndarray) and \
            not dataclasses.is_dataclass(params):
        return
    if isinstance(params, np.ndarray):
        assert params.dtype.kind in "iub", f"{path} is a {params.dtype} array; kernels must get integers"
        return
    if isinstance(params, float):
        raise AssertionError(f"{path} = {params!r} is a float; kernels must get integers")
    if isinstance(params, FloorAffine):
        # its float64 fields must be the exact images of its integer fields (the map is integer)
        assert np.array_equal(params.scale, np.ldexp(params.multiplier.astype(np.float64), -params.shift))
        assert np.array_equal(params.addend, np.ldexp(params.offset.astype(np.float64), -params.shift))
        assert np.abs(params.offset).max() < 2**53 and np.abs(params.multiplier).max() < 2**53, path
        if params.whole is not None:
            assert np.array_equal(params.whole_addend, params.whole.astype(np.float64))
        for name in ("multiplier", "shift", "offset", "whole", "bounds"):
            assert_integer_params(getattr(params, name), f"{path}.{name}")
        return
    if dataclasses.is_dataclass(params):
        for f in dataclasses.fields(params):
            assert_integer_params(getattr(params, f.name), f"{path}.{f.name}")
        return
    if isinstance(params, dict):
        for k, v in params.items():
            assert_integer_params(v, f"{path}[{k!r}]")
        return
    if isinstance(params, (tuple, list)):
        for k, v in enumerate(params):
            assert_integer_params(v, f"{path}[{k}]")
        return
    # option dataclasses of the schema may carry float fields the kernel does not read; be strict anyway
    raise AssertionError(f"{path} has unexpected type {type(params).__name__}")


def prepare_fixed(op_name: str, inputs: Sequence[QArr | None], outputs: Sequence[QOut],
                  output_shapes: Sequence[tuple], options=None) -> Any:
    """The prepared params of the integer kernel of ``op_name`` for these operands."""
    opdef = get_fixed_op(op_name)
    infos = tuple(_info(f"x{i}", x, False) for i, x in enumerate(inputs))
    outs = []
    for j, (o, shape) in enumerate(zip(outputs, output_shapes)):
        q = None
        if o.scale is not None:
            q = QArr(np.zeros(1, NP[o.dtype]), o.scale, o.zero_point, o.axis).quantization()
        outs.append(TensorInfo(f"y{j}", tuple(shape), np.dtype(NP[o.dtype]), None, q))
    ctx = OpContext(0, op_name, infos, tuple(outs), options)
    return opdef.prepare(ctx) if opdef.prepare else options


def run_fixed(op_name: str, inputs: Sequence[QArr | None], outputs: Sequence[QOut],
              output_shapes: Sequence[tuple], options=None, *, integer_only: bool = True) -> list[np.ndarray]:
    """Prepare and run the integer kernel of ``op_name``; returns its outputs."""
    opdef = get_fixed_op(op_name)
    params = prepare_fixed(op_name, inputs, outputs, output_shapes, options)
    if integer_only:
        assert_integer_params(params)
    feeds = [None if x is None else x.q for x in inputs]
    for f in feeds:
        assert f is None or f.dtype.kind in "iub"
    r = opdef.kernel(*feeds, opt=params)
    return list(r) if isinstance(r, (tuple, list)) else [r]


def dequantize(q: np.ndarray, o: QOut) -> np.ndarray:
    if o.scale is None:
        return q
    s = np.asarray(o.scale, np.float64)
    z = np.asarray(o.zero_point, np.float64)
    if s.ndim == 1 and s.size > 1:
        shape = [1] * q.ndim
        shape[o.axis] = s.size
        s, z = s.reshape(shape), (z.reshape(shape) if z.ndim == 1 and z.size > 1 else z)
    return (q.astype(np.float64) - z) * s


def check_fixed_op(op_name: str, inputs: Sequence[QArr | None], options: dict | Any = None, *,
                   outputs: Sequence[QOut] | None = None, out_dtype: str = "INT16", tol_lsb: float = 1.0,
                   output_dtypes: Sequence[str] | None = None, integer_only: bool = True
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run float and integer versions of one op and assert they agree within ``tol_lsb`` output LSBs.

    ``options``: a dict (parsed with make_options) or an options object. ``outputs`` default to a
    symmetric ``out_dtype`` quantization covering the float result. Non-quantized outputs (QOut with
    scale None, e.g. indices or bools) must match exactly. Returns (fixed outputs, float outputs).
    """
    if isinstance(options, dict) or options is None:
        options = make_options(op_name, options) if options is not None else _default(op_name)
    shapes = _infer_shapes(op_name, inputs, options, output_dtypes)
    ref = run_float(op_name, inputs, options, shapes, output_dtypes)
    if outputs is None:
        outputs = [symmetric_out(r, out_dtype) if r.dtype.kind == "f" else QOut(_name_of(r.dtype))
                   for r in ref]
    got = run_fixed(op_name, inputs, outputs, [r.shape for r in ref], options, integer_only=integer_only)
    assert len(got) == len(ref), f"{op_name}: {len(got)} outputs, float op gives {len(ref)}"
    for j, (g, r, o) in enumerate(zip(got, ref, outputs)):
        assert g.shape == r.shape, f"{op_name} output {j}: shape {g.shape} != float {r.shape}"
        assert g.dtype == np.dtype(NP[o.dtype]), f"{op_name} output {j}: dtype {g.dtype} != {o.dtype}"
        if o.scale is None:
            np.testing.assert_array_equal(g, r, err_msg=f"{op_name} output {j}")
            continue
        lo, hi = np.iinfo(g.dtype).min, np.iinfo(g.dtype).max
        want = np.clip(np.asarray(r, np.float64), dequantize(np.array(lo), o) if not _pc(o) else -np.inf,
                       dequantize(np.array(hi), o) if not _pc(o) else np.inf)
        err = np.abs(dequantize(g, o) - want)
        lsb = np.broadcast_to(_lsb(o, g.ndim), err.shape)
        bad = err > tol_lsb * lsb * (1 + 1e-9)
        assert not bad.any(), (f"{op_name} output {j}: {int(bad.sum())} of {bad.size} values off by more than "
                               f"{tol_lsb} LSB; worst {float((err / lsb).max()):.3f} LSB")
    return got, ref


def _pc(o: QOut) -> bool:
    return np.ndim(o.scale) == 1 and np.size(o.scale) > 1


def _lsb(o: QOut, ndim: int) -> np.ndarray:
    s = np.asarray(o.scale, np.float64)
    if _pc(o):
        shape = [1] * ndim
        shape[o.axis] = s.size
        return s.reshape(shape)
    return s


def _name_of(dtype) -> str:
    return {np.dtype(v): k for k, v in NP.items()}[np.dtype(dtype)]


def _default(op_name):
    from calibrator_custom.model.options import default_options
    return default_options(op_name)


def _infer_shapes(op_name, inputs, options, output_dtypes):
    """Output shapes of the float op, found by running its kernel with a permissive prepare."""
    opdef = get_op(op_name)
    feeds = [None if x is None else x.real() for x in inputs]
    infos = tuple(_info(f"x{i}", x, True) for i, x in enumerate(inputs))
    # Most float prepares do not need output infos; those that check a declared output shape get
    # a first guess from running the kernel with params prepared against an output-less context.
    try:
        placeholder = (TensorInfo("y0", (), np.dtype(np.float32)),)
        params = opdef.prepare(OpContext(0, op_name, infos, placeholder, options)) if opdef.prepare else options
        r = opdef.kernel(*feeds, opt=params)
        r = list(r) if isinstance(r, (tuple, list)) else [r]
        return [x.shape for x in r]
    except Exception:  # noqa: BLE001 - fall back to a builder model, which infers shapes its own way
        from calibrator_custom.model.builder import ModelBuilder
        b = ModelBuilder()
        refs = []
        for i, (x, f) in enumerate(zip(inputs, feeds)):
            if x is None:
                refs.append(None)
            elif x.const:
                refs.append(b.constant(f"c{i}", f))
            else:
                refs.append(b.input(f"x{i}", f.shape, f.dtype, example=f))
        out = b.op(op_name, refs, dataclasses.asdict(options) if dataclasses.is_dataclass(options) else None,
                   output_dtypes=output_dtypes)
        outs = out if isinstance(out, tuple) else (out,)
        b.output(*outs)
        m = b.build()
        return [m.main.tensors[r.index].shape for r in outs]
