"""calibrator_custom.detection: MediaPipe's SSD anchors and the appended SSD post-process.

Golden values: anchors computed by hand from SsdAnchorsCalculator's formulas; decoded boxes from
MediaPipe's TensorsToDetectionsCalculator formulas written out in numpy here; the NMS from the naive
loop reference of test_detection_nms; the TFLite kind from LiteRT. The slow test runs the shared
face_detection_short_range model on photos with faces, float and fixed.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom.calib.parallel import collect_stats
from calibrator_custom.detection import (FACE_SHORT_RANGE_ANCHORS, append_ssd_postprocess,
                                         face_detection_postprocess, ssd_anchors)
from calibrator_custom.errors import ModelError
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import Model
from calibrator_custom.preprocess_method import face_detection_short_range as face_pre
from calibrator_custom.pipeline.convert import convert
from conftest import MODELS_DIR, require_shared
from images import calibration_images, image_paths
from oprunner import run_model_litert, run_model_ours
from test_detection_nms import naive_nms, options as nms_options

F32 = np.float32
SQ2 = math.sqrt(2.0)


# ------------------------------------------------------------------------------------------- anchors
def test_face_short_range_anchors() -> None:
    """896 anchors: 16x16 cells x 2 (stride 8), then 8x8 cells x 6 (three stride-16 layers x 2)."""
    a = ssd_anchors(**FACE_SHORT_RANGE_ANCHORS)
    assert a.shape == (896, 4) and a.dtype == np.float32
    np.testing.assert_array_equal(a[:, 2:], 1.0)  # fixed_anchor_size
    expect = {  # index: (y_center, x_center)
        0: (0.5 / 16, 0.5 / 16), 1: (0.5 / 16, 0.5 / 16), 2: (0.5 / 16, 1.5 / 16),
        31: (0.5 / 16, 15.5 / 16), 32: (1.5 / 16, 0.5 / 16), 511: (15.5 / 16, 15.5 / 16),
        512: (0.5 / 8, 0.5 / 8), 517: (0.5 / 8, 0.5 / 8), 518: (0.5 / 8, 1.5 / 8),
        512 + 6 * 8: (1.5 / 8, 0.5 / 8), 895: (7.5 / 8, 7.5 / 8),
    }
    for i, (y, x) in expect.items():
        assert tuple(a[i, :2]) == (F32(y), F32(x)), i
    # every stride-16 cell holds 6 anchors with one centre
    np.testing.assert_array_equal(a[512:].reshape(64, 6, 4), np.repeat(a[512::6][:, None], 6, axis=1))


def test_anchor_sizes_aspect_ratios_and_interpolated_scale() -> None:
    """scale_i = 0.2 + 0.6 i / 2; ratios (1, 2) + the interpolated sqrt(scale_i scale_i+1) anchor."""
    a = ssd_anchors(num_layers=3, min_scale=0.2, max_scale=0.8, input_size_height=32, input_size_width=32,
                    strides=[8, 16, 16], aspect_ratios=[1.0, 2.0], anchor_offset_x=0.5, anchor_offset_y=0.5)
    assert a.shape == (4 * 4 * 3 + 2 * 2 * 6, 4)
    hw = [(0.2, 0.2), (0.2 / SQ2, 0.2 * SQ2), (math.sqrt(0.2 * 0.5),) * 2]
    np.testing.assert_allclose(a[:3, 2:], hw, rtol=1e-6)
    np.testing.assert_allclose(a[3, :2], (0.125, 0.375), rtol=0)  # second cell of row 0 (x = 1.5 / 4)
    hw16 = [(0.5, 0.5), (0.5 / SQ2, 0.5 * SQ2), (math.sqrt(0.5 * 0.8),) * 2,
            (0.8, 0.8), (0.8 / SQ2, 0.8 * SQ2), (math.sqrt(0.8 * 1.0),) * 2]  # last layer: next scale 1
    np.testing.assert_allclose(a[48:54, 2:], hw16, rtol=1e-6)
    np.testing.assert_array_equal(a[48:54, :2], 0.25)
    np.testing.assert_array_equal(a[-1, :2], 0.75)


def test_anchor_options_lowest_layer_feature_maps_single_stride() -> None:
    # reduce_boxes_in_lowest_layer: layer 0 gets ratios (1, 2, 0.5) with scales (0.1, s0, s0), no interpolation
    a = ssd_anchors(num_layers=2, min_scale=0.2, max_scale=0.9, input_size_height=16, input_size_width=16,
                    strides=[8, 16], aspect_ratios=[1.0, 3.0], reduce_boxes_in_lowest_layer=True,
                    interpolated_scale_aspect_ratio=0.0)
    assert a.shape == (2 * 2 * 3 + 1 * 1 * 2, 4)
    np.testing.assert_allclose(a[:3, 2:], [(0.1, 0.1), (0.2 / SQ2, 0.2 * SQ2), (0.2 * SQ2, 0.2 / SQ2)], rtol=1e-6)
    np.testing.assert_allclose(a[12:, 2:], [(0.9, 0.9), (0.9 / math.sqrt(3), 0.9 * math.sqrt(3))], rtol=1e-6)
    np.testing.assert_array_equal(a[12:, :2], 0.5)
    # explicit feature maps (3 x 5) replace input size / stride; one stride: scale (min + max) / 2
    a = ssd_anchors(num_layers=1, min_scale=0.2, max_scale=0.6, input_size_height=64, input_size_width=64,
                    strides=[8], feature_map_height=[3], feature_map_width=[5], anchor_offset_x=0.0,
                    anchor_offset_y=0.5, interpolated_scale_aspect_ratio=0.0)
    assert a.shape == (15, 4)
    np.testing.assert_allclose(a[:, 2:], 0.4, rtol=1e-6)
    np.testing.assert_array_equal(a[:5, 1], np.arange(5, dtype=F32) / F32(5))
    np.testing.assert_array_equal(a[::5, 0], (np.arange(3, dtype=F32) + F32(0.5)) / F32(3))
    # ceil(input / stride) cells
    assert ssd_anchors(num_layers=1, min_scale=0.1, max_scale=0.2, input_size_height=20, input_size_width=9,
                       strides=[8], interpolated_scale_aspect_ratio=0.0).shape == (3 * 2, 4)
    with pytest.raises(ModelError, match="strides needs num_layers=2 values"):
        ssd_anchors(num_layers=2, min_scale=0.1, max_scale=0.2, input_size_height=8, input_size_width=8, strides=[8])


# ------------------------------------------------------------------------------ reference decoding
def mediapipe_decode(raw: np.ndarray, anchors: np.ndarray, scales, box_format: str = "xywh",
                     offset: int = 0) -> np.ndarray:
    """[N, 4] (x1, y1, x2, y2): TensorsToDetectionsCalculator::DecodeBoxes in float32, linear w/h."""
    raw = raw.astype(F32)
    col = {ch: raw[:, offset + box_format.index(ch)] for ch in "xywh"}
    xs, ys, ws, hs = (F32(s) for s in scales)
    ay, ax, ah, aw = (anchors[:, k].astype(F32) for k in range(4))
    xc = col["x"] / xs * aw + ax
    yc = col["y"] / ys * ah + ay
    w = col["w"] / ws * aw
    h = col["h"] / hs * ah
    two = F32(2)
    return np.stack([xc - w / two, yc - h / two, xc + w / two, yc + h / two], axis=1)


def sigmoid_scores(logits: np.ndarray) -> np.ndarray:
    """MediaPipe's score: clip to +-100, then 1 / (1 + exp(-x)) in float32; best class first-max."""
    s = np.clip(logits.astype(F32), F32(-100), F32(100))
    with np.errstate(over="ignore"):  # exp(100) is inf in float32: the score is 0
        s = F32(1) / (F32(1) + np.exp(-s))
    return s.max(axis=1), s.argmax(axis=1).astype(F32)


def raw_detector(n: int, k: int, c: int) -> Model:
    """A 'detector' whose raw outputs are its inputs (through RESHAPE), so tests choose them freely."""
    b = ModelBuilder()
    boxes = b.input("raw_boxes", (1, n, k))
    scores = b.input("raw_scores", (1, n, c))
    b.output(b.op("RESHAPE", [boxes, b.constant("s1", np.array([1, n, k], np.int32))], {"new_shape": [1, n, k]},
                  name="regressors"),
             b.op("RESHAPE", [scores, b.constant("s2", np.array([1, n, c], np.int32))], {"new_shape": [1, n, c]},
                  name="classificators"))
    return b.build()


def random_raw(rng: np.random.Generator, n: int, k: int, c: int, box_format: str, offset: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Centre offsets of a few pixels, sizes of 2 to 8 pixels (a few negative), logits around 0."""
    raw = rng.normal(0, 3, (1, n, k)).astype(F32)
    for ch in "wh":
        col = offset + box_format.index(ch)
        raw[0, :, col] = rng.uniform(2, 8, n) * np.where(rng.uniform(size=n) < 0.05, -1, 1)
    logits = rng.normal(0, 2, (1, n, c)).astype(F32)
    return raw, logits


def random_anchors(rng: np.random.Generator, n: int, fixed: bool) -> np.ndarray:
    c = rng.uniform(0, 1, (n, 2))
    size = np.ones((n, 2)) if fixed else rng.uniform(0.5, 1.5, (n, 2))
    return np.concatenate([c, size], 1).astype(F32)


CASES = {  # name: (N, K, C, box_format, offset, fixed anchor size, with_index, clip)
    "blazeface-like": (64, 16, 1, "xywh", 0, True, True, False),
    "sized anchors": (50, 4, 1, "xywh", 0, False, False, False),
    "yxhw offset": (40, 9, 1, "yxhw", 3, False, True, False),
    "three classes": (60, 6, 3, "xywh", 2, True, True, False),
    "clipped": (70, 4, 1, "xywh", 0, True, True, True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mediapipe_postprocess_matches_mediapipe_decoding(case) -> None:
    n, k, c, fmt, off, fixed, with_index, clip = CASES[case]
    rng = np.random.default_rng(sorted(CASES).index(case))
    anchors = random_anchors(rng, n, fixed)
    scales = (16.0, 20.0, 24.0, 12.0)
    model = append_ssd_postprocess(raw_detector(n, k, c), anchors, boxes_output="regressors",
                                   scores_output=1, box_format=fmt, box_coord_offset=off, scales=scales,
                                   score_threshold=0.4, iou_threshold=0.35, max_detections=12,
                                   with_index=with_index, clip=clip)
    sim = calibrator_custom.float_simulator(model)
    assert sim.is_detection()
    assert [d["name"] for d in sim.get_output_details()] == (
        ["detectionBoxes", "detectionClasses", "detectionScores", "numDetections"] + ["detectionIndex"] * with_index)
    o = nms_options(max_detections=12, nms_score_threshold=0.4, nms_iou_threshold=0.35, clip=float(clip),
                    output_detection_boxes_index_idx=4 if with_index else -1)
    total = 0
    for trial in range(4):
        raw, logits = random_raw(rng, n, k, c, fmt, off)
        got = run_model_ours(model, [raw, logits])
        corners = mediapipe_decode(raw[0], anchors, scales, fmt, off)
        score, cls = sigmoid_scores(logits[0])
        ref = naive_nms([corners[:, j][None] for j in range(4)] + [score[None], cls[None]], o, len(got))
        assert [g.shape for g in got] == [r.shape for r in ref] and all(g.dtype == F32 for g in got)
        for j in (0, 1, 3) + ((4,) if with_index else ()):
            np.testing.assert_array_equal(got[j], ref[j], err_msg=f"output {j}")  # boxes bit-identical
        np.testing.assert_allclose(got[2], ref[2], rtol=1e-6, atol=0)  # expf may differ by an ulp
        total += int(got[3][0])
    assert total > 4  # detections happened


def test_tflite_kind_equals_litert() -> None:
    """kind='tflite': GATHER (x,y,w,h -> y,x,h,w), LOGISTIC, TFLite_Detection_PostProcess; LiteRT runs the
    whole appended model."""
    n, k, c = 48, 8, 2
    rng = np.random.default_rng(7)
    anchors = random_anchors(rng, n, False) * F32([1, 1, 0.3, 0.3])
    model = append_ssd_postprocess(raw_detector(n, k, c), anchors, kind="tflite", box_format="xywh",
                                   box_coord_offset=2, scales=(10, 10, 5, 5), score_threshold=0.3,
                                   iou_threshold=0.5, max_detections=10)
    assert calibrator_custom.float_simulator(model).is_detection()
    data = model.to_bytes()
    for _ in range(3):
        raw = rng.normal(0, 1, (1, n, k)).astype(F32)
        logits = rng.normal(0, 2, (1, n, c)).astype(F32)
        ours = run_model_ours(Model.from_bytes(data), [raw, logits])
        ref = run_model_litert(data, [raw, logits])
        m = int(ref[3][0])
        assert m > 0 and ours[3][0] == m
        assert [o.shape for o in ours] == [r.shape for r in ref]
        np.testing.assert_allclose(ours[0][0, :m], ref[0][0, :m], rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(ours[1][0, :m], ref[1][0, :m])
        np.testing.assert_allclose(ours[2][0, :m], ref[2][0, :m], rtol=1e-6)


ERRORS = {
    "kind": (dict(kind="yolo"), "kind='yolo' is not one of mediapipe, tflite"),
    "format": (dict(box_format="xyxy"), "box_format='xyxy' is not one of"),
    "anchors": (dict(anchors=np.zeros((5, 4), F32)), r"anchors must have shape \[8, 4\]"),
    "output name": (dict(boxes_output="boxes"), "boxes_output='boxes' is not an output of the model"),
    "output index": (dict(scores_output=2), "scores_output=2 is out of range"),
    "offset": (dict(box_coord_offset=3), "box_coord_offset=3 leaves no 4 box values"),
    "iou": (dict(iou_threshold=0.0), r"iou_threshold must be in \(0, 1\]"),
    "max": (dict(max_detections=0), "max_detections must be >= 1"),
    "index tflite": (dict(kind="tflite", with_index=True), "with_index=True needs kind='mediapipe'"),
    "scales": (dict(scales=(1, 0, 1, 1)), "scales must be 4 finite non-zero numbers"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_append_rejects(case) -> None:
    over, message = ERRORS[case]
    kw = dict(anchors=np.ones((8, 4), F32), box_coord_offset=0, scales=(1, 1, 1, 1))
    kw.update(over)
    anchors = kw.pop("anchors")
    with pytest.raises(ModelError, match=message):
        append_ssd_postprocess(raw_detector(8, 6, 1), anchors, **kw)


def test_append_keeps_the_input_model_and_saves(tmp_path) -> None:
    base = raw_detector(8, 4, 1)
    before = base.to_bytes()
    out = tmp_path / "det_float.sim"
    model = append_ssd_postprocess(base, np.ones((8, 4), F32), scales=(1, 1, 1, 1), output_path=out)
    assert base.to_bytes() == before and not calibrator_custom.float_simulator(base).is_detection()
    assert calibrator_custom.float_simulator(out).is_detection()
    assert out.read_bytes() == model.to_bytes()


# --------------------------------------------------------------------------- the shared face model
#: photos of ../shared/images/coco that show faces (checked by eye; indices 2, 9, 19, 25, 29 are
#: calibration photos, 31, 50, 59 evaluation photos)
FACE_PHOTOS = ("000000024038", "000000061288", "000000112201", "000000169179", "000000187577", "000000194564",
               "000000268901", "000000322891")
#: detections within this score margin of the threshold may legitimately appear on one side only
SCORE_MARGIN = 0.05
LEVEL = "L3"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def detections(sim, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sim.set_input(0, image)
    sim.invoke()
    n = int(sim.get_output(3)[0])
    return sim.get_output(0)[0, :n], sim.get_output(2)[0, :n], sim.get_output(4)[0, :n].astype(int)


def unmatched(boxes_a, scores_a, boxes_b, threshold: float) -> list:
    """Detections of a (score >= threshold) without a detection of b at IoU >= 0.9."""
    return [(float(s), b.tolist()) for b, s in zip(boxes_a, scores_a)
            if s >= threshold and not any(iou(b, o) >= 0.9 for o in boxes_b)]


@pytest.mark.slow
def test_face_detector_float_and_fixed(tmp_path) -> None:
    require_shared()
    src = MODELS_DIR / "face_detection_short_range.tflite"
    float_path = tmp_path / "face_detection_float.sim"
    face_detection_postprocess(src, with_index=True, output_path=float_path)
    fsim = calibrator_custom.float_simulator(float_path)
    assert fsim.is_detection()

    stats = collect_stats(str(float_path), [str(p) for p in calibration_images()],
                          lambda p: face_pre.image_preprocess(p, norm=True))
    ini = tmp_path / "input_config.ini"
    ini.write_text("[INPUT_CONFIG]\ninputs=input;\ntraining_input_formats=RGB;\ninput_formats=RGB;\n"
                   "mean=127.5:127.5:127.5;\nstd_value=127.5;\n[OUTPUT_CONFIG]\n"
                   "outputs=detectionBoxes,detectionClasses,detectionScores,numDetections,detectionIndex;\n"
                   "dequantizations=TRUE,TRUE,TRUE,TRUE,TRUE;\n")
    fixed_path = tmp_path / "face_detection_fixed.sim"
    convert(str(float_path), str(ini), stats, quant_level=LEVEL, output_path=fixed_path)
    xsim = calibrator_custom.fixed_simulator(fixed_path)
    assert xsim.is_detection()
    assert all(d["dtype"] == np.float32 and "quantization" not in d for d in xsim.get_output_details())

    raw_sim = calibrator_custom.float_simulator(src)  # the raw detector, decoded in numpy below
    anchors = ssd_anchors(**FACE_SHORT_RANGE_ANCHORS)
    photos = {p.stem: p for p in image_paths()}
    for stem in FACE_PHOTOS:
        path = str(photos[stem])
        x = face_pre.image_preprocess(path, norm=True)
        fb, fs, fi = detections(fsim, x)
        assert fs.size and fs.max() >= 0.75, f"{stem}: no confident face ({fs})"
        # float detections = MediaPipe's decoding of the raw outputs at those anchors, greedy NMS
        raw_sim.set_input(0, x)
        raw_sim.invoke()
        corners = mediapipe_decode(raw_sim.get_output(0)[0], anchors, (128, 128, 128, 128))
        score, _ = sigmoid_scores(raw_sim.get_output(1)[0])
        np.testing.assert_array_equal(fb, corners[fi][:, [1, 0, 3, 2]], err_msg=stem)
        np.testing.assert_allclose(fs, score[fi], rtol=1e-6, err_msg=stem)
        ref = naive_nms([corners[:, j][None] for j in range(4)] + [score[None], np.zeros((1, 896), F32)],
                        nms_options(max_detections=100, nms_score_threshold=0.5, nms_iou_threshold=0.3, clip=0.0,
                                    output_detection_boxes_index_idx=4), 5)
        np.testing.assert_array_equal(fi, ref[4][0, :int(ref[3][0])].astype(int), err_msg=stem)
        # the fixed model finds the same faces
        xb, xs, _ = detections(xsim, face_pre.image_preprocess(path, norm=False))
        missing = unmatched(fb, fs, xb, 0.5 + SCORE_MARGIN)
        extra = unmatched(xb, xs, fb, 0.5 + SCORE_MARGIN)
        assert not missing and not extra, f"{stem}: float-only {missing}, fixed-only {extra}"


def test_l5_measures_the_postprocess_inputs_not_its_detections(tmp_path) -> None:
    """L5 judges the fixed model on what feeds the NMS (smooth), not on the NMS outputs (which jump when a
    detection appears or disappears); the conversion then runs end to end."""
    from calibrator_custom.calib import collect_stats_arrays
    from calibrator_custom.config import load_input_config
    from calibrator_custom.pipeline.convert import convert
    from calibrator_custom.pipeline.measure import measured_tensors
    from calibrator_custom.quant.planner import PlanInputs

    n, k, c = 32, 4, 1
    rng = np.random.default_rng(3)
    model = append_ssd_postprocess(raw_detector(n, k, c), random_anchors(rng, n, True), scales=(8, 8, 8, 8),
                                   score_threshold=0.3)
    path = tmp_path / "det_float.sim"
    model.save(path)
    outs = [model.main.tensors[i].name for i in model.main.outputs]
    (tmp_path / "det.ini").write_text(
        "[INPUT_CONFIG]\ninputs=raw_boxes,raw_scores;\ninput_formats=RAWDATA_F32_NHWC,RAWDATA_F32_NHWC;\n"
        "quantizations=TRUE,TRUE;\n[OUTPUT_CONFIG]\noutputs=" + ",".join(outs) + ";\n"
        "dequantizations=" + ",".join("TRUE" for _ in outs) + ";\n")
    feeds = [list(random_raw(rng, n, k, c, "xywh", 0)) for _ in range(6)]
    stats = collect_stats_arrays(path, feeds)
    config = load_input_config(tmp_path / "det.ini", model)
    pi = PlanInputs.create(model, stats, config)
    measured = [pi.graph.tensors[i].name for i in measured_tensors(pi)]
    nms = next(op for op in pi.graph.operators if model.op_name(op) == "TFLite_Detection_NMS")
    assert not set(measured) & set(outs)
    assert set(measured) <= {pi.graph.tensors[i].name for i in nms.inputs if i >= 0}
    assert len(measured) >= 2  # the box coordinates and the scores at least
    fixed = convert(model, config, stats, quant_level="L5", calibration_feeds=feeds, output_path=tmp_path / "f.sim")
    assert calibrator_custom.fixed_simulator(tmp_path / "f.sim").is_detection()
    assert len(fixed.main.outputs) == 4
