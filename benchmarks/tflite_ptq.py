"""TFLite's own post-training quantization (PTQ): the reference our fixed-point model is compared with.

Runs with ``ai-edge-litert`` alone (no TensorFlow). The package ships the C++ calibrator/quantizer that
``tf.lite``'s ``tensorflow/lite/python/optimize/calibrator.py`` wraps, as
``ai_edge_litert._pywrap_tensorflow_lite_calibration_wrapper.CalibrationWrapper``; this module drives it
the way ``Calibrator.calibrate_and_quantize`` does:

    w = CalibrationWrapper(model_bytes, [], [])     # builds a logging interpreter (min/max per tensor)
    w.Prepare([list(x.shape) for x in feeds[0]])    # resize inputs to the calibration shapes, allocate
    for inputs in feeds: w.FeedTensor(inputs)       # one inference each, ranges accumulate
    w.QuantizeModel(in_type, out_type, allow_float, activations_type, bias_type,
                    disable_per_channel, disable_per_channel_for_dense_layers)  # -> bytes

The type arguments are NUMPY type numbers (``np.dtype(t).num``: float32 11, int8 1, int16 3, int32 5,
int64 7), not TFLite ``TensorType`` values: the wrapper maps them with ``TfLiteTypeFromPyType``.
``QuantizeModel`` is TFLite's legacy (non-MLIR) quantizer, ``QuantizeModelAllOperators``: what
``tf.lite.TFLiteConverter`` runs with ``_experimental_new_quantizer = False``; the converter's default
MLIR quantizer is not in ai-edge-litert.

Modes (float32 model input/output in both; the quantizer adds QUANTIZE/DEQUANTIZE at the edges):

* ``int8``: int8 asymmetric activations, int8 symmetric per-channel weights, int32 bias.
* ``16x8``: int16 symmetric activations, int8 symmetric per-channel weights, int64 bias. TFLite has no
  16x8 quantization of PRELU or DEPTH_TO_SPACE; with ``allow_float=True`` (the default) those ops stay
  float32 behind DEQUANTIZE/QUANTIZE pairs (see ``float_ops``), with ``allow_float=False`` quantizing
  such a model raises.

Models whose weights are float16 (DEQUANTIZE of FLOAT16 constants) or sparse (DENSIFY) crash the
legacy quantizer with a segmentation fault, so ``quantize_tflite`` refuses them with a ValueError; quantize
their float32 copies (``../shared/models/*.tflite`` without ``.fp16``) instead.

Inference uses ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`` (TFLite's optimized builtin kernels,
XNNPACK off). ``BUILTIN_REF`` cannot load quantized models with DEPTH_TO_SPACE version 2 (pose_detection)
and its int8 kernels round differently from the optimized ones that devices run.

    python benchmarks/tflite_ptq.py [--models iris_landmark ...] [--calib 5] [--eval 5]
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import calibrator_custom  # noqa: F401  (before numpy: it pins OpenBLAS's kernel, docs/calibration.md)
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODELS_DIR = SHARED / "models"
sys.path.insert(0, str(ROOT))

from calibrator_custom.model.graph import Model  # noqa: E402

log = logging.getLogger("tflite_ptq")

RESOLVER = "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
FLOAT16_SUFFIX = ".fp16"
#: ops that only move data between the float interface and the quantized body
_BOUNDARY_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
_FLOAT_DTYPES = frozenset({"FLOAT32", "FLOAT16", "FLOAT64"})


@dataclass(frozen=True)
class PTQMode:
    activations_dtype: type
    bias_dtype: type


MODES = {
    "int8": PTQMode(activations_dtype=np.int8, bias_dtype=np.int32),
    "16x8": PTQMode(activations_dtype=np.int16, bias_dtype=np.int64),
}


def calibration_wrapper_module():
    """The calibration extension of ai-edge-litert; ImportError if this build does not ship it."""
    from ai_edge_litert import _pywrap_tensorflow_lite_calibration_wrapper as wrapper
    return wrapper


def _np_type_num(dtype) -> int:
    return int(np.dtype(dtype).num)


def unquantizable_reason(model_bytes: bytes) -> str | None:
    """Why the legacy quantizer cannot take this model (it segfaults on these), or None."""
    model = Model.from_bytes(model_bytes)
    for sg in model.subgraphs:
        ops = {model.op_name(op) for op in sg.operators}
        if "DENSIFY" in ops or any(t.sparsity is not None for t in sg.tensors):
            return "it has sparse weights (DENSIFY)"
        if any(t.dtype == "FLOAT16" for t in sg.tensors):
            return "it has float16 weights (DEQUANTIZE of FLOAT16 constants)"
    return None


def _check_feeds(calibration_feeds: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    if not calibration_feeds:
        raise ValueError("calibration_feeds is empty: TFLite PTQ needs at least one calibration sample")
    feeds = [[np.ascontiguousarray(x) for x in sample] for sample in calibration_feeds]
    shapes = [[x.shape for x in sample] for sample in feeds]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"calibration samples differ in input shapes: {sorted(set(map(str, shapes)))}")
    return feeds


def _dedupe_lines(message: str) -> str:
    return "; ".join(dict.fromkeys(line.strip() for line in message.splitlines() if line.strip()))


def quantize_tflite(model_bytes: bytes, calibration_feeds: list[list[np.ndarray]], mode: str,
                    *, allow_float: bool = True) -> bytes:
    """TFLite's PTQ of a float model calibrated on ``calibration_feeds`` (one list of inputs per sample).

    mode 'int8' or '16x8' (see the module docstring); model inputs and outputs stay float32. With
    ``allow_float`` ops the quantizer cannot handle in this mode stay float, otherwise they raise.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    reason = unquantizable_reason(model_bytes)
    if reason is not None:
        raise ValueError(f"TFLite's quantizer cannot take this model: {reason}; quantize the float32 copy")
    feeds = _check_feeds(calibration_feeds)
    types = MODES[mode]
    wrapper = calibration_wrapper_module().CalibrationWrapper(model_bytes, [], [])
    wrapper.Prepare([list(x.shape) for x in feeds[0]])
    for sample in feeds:
        wrapper.FeedTensor(sample)
    try:
        return bytes(wrapper.QuantizeModel(
            _np_type_num(np.float32), _np_type_num(np.float32), allow_float,
            _np_type_num(types.activations_dtype), _np_type_num(types.bias_dtype),
            False, False))  # disable_per_channel, disable_per_channel_quantization_for_dense_layers
    except RuntimeError as e:
        raise RuntimeError(f"TFLite {mode} quantization failed: {_dedupe_lines(str(e))}") from None


def _interpreter(model_bytes: bytes):
    from ai_edge_litert import interpreter as litert
    it = litert.Interpreter(model_content=model_bytes,
                            experimental_op_resolver_type=getattr(litert.OpResolverType, RESOLVER))
    it.allocate_tensors()
    return it


def _invoke(it, feeds: list[np.ndarray]) -> list[np.ndarray]:
    inputs = it.get_input_details()
    if len(feeds) != len(inputs):
        raise ValueError(f"model has {len(inputs)} inputs, got {len(feeds)} arrays")
    for detail, x in zip(inputs, feeds):
        it.set_tensor(detail["index"], np.ascontiguousarray(x, dtype=detail["dtype"]))
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def run_tflite(model_bytes: bytes, feeds: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of one inference (float for float-interface models), TFLite builtin kernels, no XNNPACK."""
    return _invoke(_interpreter(model_bytes), feeds)


def run_tflite_many(model_bytes: bytes, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """run_tflite over several samples with one interpreter."""
    it = _interpreter(model_bytes)
    return [_invoke(it, feeds) for feeds in samples]


def float_ops(model_bytes: bytes) -> Counter:
    """Count per op name of the ops still computing in float (outside QUANTIZE/DEQUANTIZE)."""
    model = Model.from_bytes(model_bytes)
    sg = model.main
    counts: Counter = Counter()
    for op in sg.operators:
        name = model.op_name(op)
        if name not in _BOUNDARY_OPS and any(sg.tensors[i].dtype in _FLOAT_DTYPES for i in op.outputs):
            counts[name] += 1
    return counts


def sqnr_db(reference: list[np.ndarray], test: list[np.ndarray]) -> float:
    """10 log10(signal energy / error energy), both summed over all the given arrays (inf if exact)."""
    ref = np.concatenate([np.asarray(r, np.float64).ravel() for r in reference])
    err = ref - np.concatenate([np.asarray(t, np.float64).ravel() for t in test])
    if not err.any():
        return float("inf")
    if not ref.any():
        return float("-inf")
    return 10.0 * (_log10_energy(ref) - _log10_energy(err))


def _log10_energy(x: np.ndarray) -> float:
    """log10(sum(x**2)) of a nonzero vector, each on its own scale so no square underflows or overflows."""
    unit = float(np.max(np.abs(x)))
    x = x / unit
    return 2.0 * math.log10(unit) + math.log10(float(np.dot(x, x)))


def output_sqnrs_db(reference: list[list[np.ndarray]], test: list[list[np.ndarray]]) -> list[float]:
    """SQNR of each model output, energies pooled over all samples (reference[sample][output])."""
    n_out = len(reference[0])
    return [sqnr_db([r[k] for r in reference], [t[k] for t in test]) for k in range(n_out)]


# ---------------------------------------------------------------------------------------------- CLI

def _model_feeds(model_name: str, shape, paths) -> list[list[np.ndarray]]:
    import images  # tests/images.py (needs tests/ on sys.path for its conftest import)
    return [[images.model_input(p, shape, model_name)] for p in paths]


def _quantizable_bytes(path: Path) -> tuple[bytes, str]:
    """The model to quantize, and a note when it is the float32 copy of a float16/sparse original."""
    data = path.read_bytes()
    reason = unquantizable_reason(data)
    if reason is None:
        return data, ""
    copy = path.with_name(path.name.replace(FLOAT16_SUFFIX, ""))
    log.warning("%s: %s, which TFLite's quantizer cannot take; quantizing %s", path.name, reason, copy.name)
    return copy.read_bytes(), f"quantized {copy.name}"


@dataclass(frozen=True)
class Row:
    model: str
    mode: str
    sqnr_per_output_db: tuple[float, ...]
    quantize_s: float
    infer_ms: float
    float_ops: str
    note: str


def benchmark_model(path: Path, n_calib: int, n_eval: int, modes: list[str]) -> list[Row]:
    import images
    name = path.name[: -len(".tflite")]
    base = name.replace(FLOAT16_SUFFIX, "")
    float_bytes = path.read_bytes()
    shape = _interpreter(float_bytes).get_input_details()[0]["shape"]
    calib = _model_feeds(base, shape, images.calibration_images()[:n_calib])
    evals = _model_feeds(base, shape, images.evaluation_images()[:n_eval])
    reference = run_tflite_many(float_bytes, evals)
    source, note = _quantizable_bytes(path)
    rows = []
    for mode in modes:
        t0 = time.perf_counter()
        try:
            quant = quantize_tflite(source, calib, mode)
        except (RuntimeError, ValueError) as e:
            log.error("%s %s: %s", name, mode, e)
            rows.append(Row(name, mode, (), time.perf_counter() - t0, float("nan"), "", f"FAILED: {e}"))
            continue
        quantize_s = time.perf_counter() - t0
        it = _interpreter(quant)
        t1 = time.perf_counter()
        outputs = [_invoke(it, feeds) for feeds in evals]
        infer_ms = 1000.0 * (time.perf_counter() - t1) / len(evals)
        fl = ", ".join(f"{op} x{n}" for op, n in sorted(float_ops(quant).items()))
        rows.append(Row(name, mode, tuple(output_sqnrs_db(reference, outputs)), quantize_s, infer_ms,
                        fl, note))
    return rows


def _print_rows(rows: list[Row]) -> None:
    print(f"{'model':<40} {'mode':<5} {'worst dB':>8}  {'per output dB':<30} {'quant s':>7} "
          f"{'ms/img':>7}  float ops / notes")
    for r in rows:
        worst = min(r.sqnr_per_output_db) if r.sqnr_per_output_db else float("nan")
        per = " ".join(f"{s:.1f}" for s in r.sqnr_per_output_db)
        notes = "; ".join(x for x in (r.float_ops and f"float: {r.float_ops}", r.note) if x)
        print(f"{r.model:<40} {r.mode:<5} {worst:>8.2f}  {per:<30} {r.quantize_s:>7.2f} "
              f"{r.infer_ms:>7.1f}  {notes}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="model names (default: every ../shared/models/*.tflite)")
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--calib", type=int, default=5, help="calibration images (first of the 30)")
    parser.add_argument("--eval", type=int, default=5, help="evaluation images (first of the other 30)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    sys.path.insert(0, str(ROOT / "tests"))
    if args.models:
        paths = [MODELS_DIR / f"{m.removesuffix('.tflite')}.tflite" for m in args.models]
    else:
        paths = sorted(MODELS_DIR.glob("*.tflite"))
    if not paths or not all(p.is_file() for p in paths):
        print(f"models not found in {MODELS_DIR}; the benchmark needs ../shared", file=sys.stderr)
        return 1
    try:
        calibration_wrapper_module()
    except ImportError as e:
        print(f"ai-edge-litert has no calibration wrapper: {e}", file=sys.stderr)
        return 1
    print(f"TFLite PTQ (legacy quantizer, resolver {RESOLVER}): {args.calib} calibration images, "
          f"SQNR vs the float model on {args.eval} other images")
    rows = []
    for path in paths:
        rows += benchmark_model(path, args.calib, args.eval, args.modes)
    _print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
