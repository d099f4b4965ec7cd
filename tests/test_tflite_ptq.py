"""benchmarks/tflite_ptq.py: TFLite's own post-training quantization, driven through ai-edge-litert.

Quantizes iris_landmark (64x64, the cheapest shared model) in both modes on 5 calibration photos and
checks the quantized graph's tensor types, its output shapes and its SQNR against the float model on
3 evaluation photos.
"""
from __future__ import annotations

import math
from fractions import Fraction
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conftest import MODELS_DIR, ROOT, require_shared
from images import calibration_images, evaluation_images, model_input

sys.path.insert(0, str(ROOT / "benchmarks"))
import tflite_ptq  # noqa: E402

from calibrator_custom.model.graph import Model  # noqa: E402

SMALL_MODEL = "iris_landmark"
FULLY_INTEGER_16X8_MODEL = "face_detection_short_range"  # no PRELU / DEPTH_TO_SPACE
MIN_SQNR_DB = 10.0
CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _require_wrapper() -> None:
    try:
        tflite_ptq.calibration_wrapper_module()
    except ImportError as e:
        pytest.skip(f"ai-edge-litert has no calibration wrapper ({e})")


def _model_bytes(name: str) -> bytes:
    require_shared()
    _require_wrapper()
    return (MODELS_DIR / f"{name}.tflite").read_bytes()


def _feeds(name: str, model_bytes: bytes, paths) -> list[list[np.ndarray]]:
    sg = Model.from_bytes(model_bytes).main
    shape = sg.tensors[sg.inputs[0]].shape
    return [[model_input(p, shape, name)] for p in paths]


@pytest.fixture(scope="module")
def small():
    """(float model bytes, calibration feeds, evaluation feeds, float outputs per evaluation feed)."""
    data = _model_bytes(SMALL_MODEL)
    calib = _feeds(SMALL_MODEL, data, calibration_images()[:5])
    evals = _feeds(SMALL_MODEL, data, evaluation_images()[:3])
    return data, calib, evals, tflite_ptq.run_tflite_many(data, evals)


@pytest.fixture(scope="module")
def quantized(small):
    data, calib, _, _ = small
    return {mode: tflite_ptq.quantize_tflite(data, calib, mode) for mode in tflite_ptq.MODES}


def _ops(model: Model):
    sg = model.main
    for op in sg.operators:
        yield model.op_name(op), [sg.tensors[i] if i >= 0 else None for i in op.inputs], \
            [sg.tensors[i] for i in op.outputs]


def _check_types(model_bytes: bytes, act: str, bias: str, float_allowed: frozenset = frozenset()) -> None:
    model = Model.from_bytes(model_bytes)
    sg = model.main
    assert [sg.tensors[i].dtype for i in sg.inputs] == ["FLOAT32"]
    assert {sg.tensors[i].dtype for i in sg.outputs} == {"FLOAT32"}
    convs = 0
    for name, ins, outs in _ops(model):
        if name == "QUANTIZE":
            assert outs[0].dtype == act
        elif name == "DEQUANTIZE":
            assert ins[0].dtype == act
        elif name in float_allowed:
            assert outs[0].dtype == "FLOAT32"
        else:
            assert outs[0].dtype == act, (name, outs[0].name)
            assert outs[0].quantization is not None and len(outs[0].quantization.scale) == 1
            if act == "INT16":
                assert outs[0].quantization.zero_point == (0,), (name, outs[0].name)
        if name in CONV_OPS:
            convs += 1
            weights, bias_t = ins[1], ins[2]
            assert weights.dtype == "INT8" and bias_t.dtype == bias
            n_out = weights.shape[weights.quantization.quantized_dimension]
            assert len(weights.quantization.scale) == n_out  # per channel
            assert set(weights.quantization.zero_point) == {0}
    assert convs > 0


def test_int8_tensor_types(quantized):
    _check_types(quantized["int8"], act="INT8", bias="INT32")
    assert tflite_ptq.float_ops(quantized["int8"]) == {}


def test_16x8_tensor_types_prelu_stays_float(quantized):
    """TFLite has no 16x8 PRELU: with allow_float (default) it stays float32, everything else is int16."""
    _check_types(quantized["16x8"], act="INT16", bias="INT64", float_allowed=frozenset({"PRELU"}))
    assert set(tflite_ptq.float_ops(quantized["16x8"])) == {"PRELU"}


@pytest.mark.parametrize("mode", sorted(tflite_ptq.MODES))
def test_outputs_shapes_and_sqnr(small, quantized, mode):
    _, _, evals, reference = small
    outputs = tflite_ptq.run_tflite_many(quantized[mode], evals)
    assert len(outputs) == len(reference)
    for out, ref in zip(outputs, reference):
        assert [o.shape for o in out] == [r.shape for r in ref]
        assert all(o.dtype == np.float32 for o in out)
    sqnrs = tflite_ptq.output_sqnrs_db(reference, outputs)
    assert min(sqnrs) > MIN_SQNR_DB, sqnrs


def test_16x8_beats_int8(small, quantized):
    _, _, evals, reference = small
    worst = {m: min(tflite_ptq.output_sqnrs_db(reference, tflite_ptq.run_tflite_many(q, evals)))
             for m, q in quantized.items()}
    assert worst["16x8"] > worst["int8"] + 6.0, worst


def test_run_tflite_single_matches_many(small, quantized):
    _, _, evals, _ = small
    one = tflite_ptq.run_tflite(quantized["int8"], evals[0])
    many = tflite_ptq.run_tflite_many(quantized["int8"], evals[:1])[0]
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)


def test_16x8_without_float_fallback_names_the_op(small):
    data, calib, _, _ = small
    with pytest.raises(RuntimeError, match="16x8.*PRELU"):
        tflite_ptq.quantize_tflite(data, calib, "16x8", allow_float=False)


def test_16x8_fully_integer_model():
    data = _model_bytes(FULLY_INTEGER_16X8_MODEL)
    calib = _feeds(FULLY_INTEGER_16X8_MODEL, data, calibration_images()[:2])
    quant = tflite_ptq.quantize_tflite(data, calib, "16x8", allow_float=False)
    _check_types(quant, act="INT16", bias="INT64")


def test_float16_original_is_refused_not_crashed():
    """The legacy quantizer segfaults on float16/sparse weights; quantize_tflite refuses them first."""
    data = _model_bytes(f"{FULLY_INTEGER_16X8_MODEL}.fp16")
    assert "float16" in tflite_ptq.unquantizable_reason(data)
    with pytest.raises(ValueError, match="float16"):
        tflite_ptq.quantize_tflite(data, [[np.zeros((1, 128, 128, 3), np.float32)]], "int8")
    sparse = _model_bytes("pose_detection.fp16")
    assert "DENSIFY" in tflite_ptq.unquantizable_reason(sparse)
    assert tflite_ptq.unquantizable_reason(_model_bytes(FULLY_INTEGER_16X8_MODEL)) is None


def test_bad_arguments(small):
    data, calib, _, _ = small
    with pytest.raises(ValueError, match="mode"):
        tflite_ptq.quantize_tflite(data, calib, "int4")
    with pytest.raises(ValueError, match="empty"):
        tflite_ptq.quantize_tflite(data, [], "int8")
    with pytest.raises(ValueError, match="inputs"):
        tflite_ptq.run_tflite(data, [])


# ------------------------------------------------------------------------------------ sqnr_db

def test_sqnr_db_edges():
    x = np.array([1.0, -2.0, 3.0])
    assert tflite_ptq.sqnr_db([x], [x]) == math.inf
    assert tflite_ptq.sqnr_db([np.zeros(3)], [x]) == -math.inf
    assert tflite_ptq.sqnr_db([x], [np.zeros(3)]) == pytest.approx(0.0)
    assert tflite_ptq.sqnr_db([x], [1.1 * x]) == pytest.approx(20.0)


_vectors = arrays(np.float64, st.integers(1, 16), elements=st.floats(-1e3, 1e3))


@given(ref=_vectors, noise_seed=st.integers(0, 2**16), gain=st.floats(1e-3, 1e3))
def test_sqnr_db_is_energy_ratio_and_scale_invariant(ref, noise_seed, gain):
    noise = np.random.default_rng(noise_seed).normal(size=ref.shape)
    # Exact energies (rationals), so the reference cannot underflow where sqnr_db must not either.
    signal = sum(Fraction(float(v)) ** 2 for v in ref)
    ratio = signal / sum(Fraction(float(v)) ** 2 for v in noise)
    expected = 10 * (math.log10(ratio.numerator) - math.log10(ratio.denominator)) if signal > 0 else -math.inf
    got = tflite_ptq.sqnr_db([ref], [ref + noise])
    assert got == pytest.approx(expected, abs=1e-6)
    scaled = tflite_ptq.sqnr_db([gain * ref], [gain * (ref + noise)])
    assert scaled == pytest.approx(got, abs=1e-6)
    split = tflite_ptq.sqnr_db([ref[:1], ref[1:]], [ref[:1] + noise[:1], ref[1:] + noise[1:]])
    assert split == pytest.approx(got, abs=1e-9)
