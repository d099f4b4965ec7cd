"""The detection post-process inside a fixed model (calibrator_custom/fixed/kernels/detection.py): it must
equal the float kernel (ops/detection.py) on the dequantized inputs exactly, and refuse integer outputs
and non-constant anchors."""
from __future__ import annotations

import numpy as np
import pytest

from calibrator_custom.errors import ModelError
from calibrator_custom.ops import detection as det
from calibrator_custom.ops.registry import OpContext
from test_fixed_quantize import F32, f32, prepare, run, tinfo

DET_OPTIONS = dict(max_detections=10, max_classes_per_detection=2, detections_per_class=5, use_regular_nms=False,
                   nms_score_threshold=0.3, nms_iou_threshold=0.5, num_classes=3, y_scale=10.0, x_scale=10.0,
                   h_scale=5.0, w_scale=5.0)


def detection_problem(rng, n: int = 60):
    anchors = np.concatenate([rng.uniform(0, 1, (n, 2)), rng.uniform(0.05, 0.4, (n, 2))], 1).astype(np.float32)
    enc = rng.uniform(-1, 1, (1, n, 4)).astype(np.float32)
    scores = rng.uniform(0, 1, (1, n, 4)).astype(np.float32)  # background column + 3 classes
    return enc, scores, anchors


@pytest.mark.parametrize("regular", [False, True])
@pytest.mark.parametrize("anchor_kind", ["int16", "uint8", "float"])
def test_detection_equals_float_kernel_on_dequantized_inputs(regular, anchor_kind):
    rng = np.random.default_rng(7)
    enc, scores, anchors = detection_problem(rng)
    enc_scale, score_scale = float(f32(1 / 32767)), float(f32(1 / 255))
    q_enc = np.clip(np.round(enc / enc_scale), -32768, 32767).astype(np.int16)
    q_scores = np.clip(np.round(scores / score_scale), 0, 255).astype(np.uint8)
    if anchor_kind == "float":
        a_info, a_real = tinfo("anchors", anchors.shape, F32, data=anchors), anchors
    else:
        dt, a_scale, a_zp = (np.int16, 1 / 16384, 0) if anchor_kind == "int16" else (np.uint8, 1 / 255, 3)
        a_scale = float(f32(a_scale))
        qa = np.clip(np.round(anchors / a_scale) + a_zp, *((0, 255) if dt == np.uint8 else (-32768, 32767)))
        qa = qa.astype(dt)
        a_info = tinfo("anchors", anchors.shape, dt, a_scale, a_zp, data=qa)
        a_real = ((qa.astype(np.float64) - a_zp) * a_scale).astype(np.float32)
    opts = {**DET_OPTIONS, "use_regular_nms": regular}
    ins = [(tinfo("boxes", enc.shape, np.int16, enc_scale), q_enc),
           (tinfo("scores", scores.shape, np.uint8, score_scale), q_scores), (a_info, a_info.data)]
    outs = [tinfo(f"o{j}", (), F32) for j in range(4)]
    got, _ = run("TFLite_Detection_PostProcess", ins, outs, opts)
    # the float kernel on the dequantized values
    enc_f = (q_enc.astype(np.float64) * enc_scale).astype(np.float32)
    scores_f = (q_scores.astype(np.float64) * score_scale).astype(np.float32)
    fctx = OpContext(0, "TFLite_Detection_PostProcess", (tinfo("b", enc.shape, F32), tinfo("s", scores.shape, F32),
                                                         tinfo("a", anchors.shape, F32, data=a_real)),
                     tuple(outs), opts)
    ref = det.detection_postprocess(enc_f, scores_f, a_real, opt=det._prepare_detection(fctx))
    assert len(got) == 4
    assert int(ref[3][0]) > 0
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.dtype == np.float32
        np.testing.assert_array_equal(g, r)


def test_detection_float_inputs_pass_through_and_errors():
    rng = np.random.default_rng(8)
    enc, scores, anchors = detection_problem(rng)
    a_info = tinfo("anchors", anchors.shape, F32, data=anchors)
    outs = [tinfo(f"o{j}", (), F32) for j in range(4)]
    got, _ = run("TFLite_Detection_PostProcess", [(tinfo("b", enc.shape, F32), enc),
                                                  (tinfo("s", scores.shape, F32), scores), (a_info, anchors)],
                 outs, DET_OPTIONS)
    ref = run_float_detection(enc, scores, anchors)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)
    boxes = tinfo("b", enc.shape, np.int16, 1e-4)
    with pytest.raises(ModelError, match="runs in float inside the fixed model"):
        prepare("TFLite_Detection_PostProcess", [boxes, tinfo("s", scores.shape, F32), a_info],
                [tinfo("o0", (), np.int16, 1.0)] + outs[1:], DET_OPTIONS)
    with pytest.raises(ModelError, match="anchors .* must be a constant"):
        prepare("TFLite_Detection_PostProcess", [boxes, tinfo("s", scores.shape, F32),
                                                 tinfo("anchors", anchors.shape, np.int16, 1e-3)], outs, DET_OPTIONS)


def run_float_detection(enc, scores, anchors):
    fctx = OpContext(0, "TFLite_Detection_PostProcess", (tinfo("b", enc.shape, F32), tinfo("s", scores.shape, F32),
                                                         tinfo("a", anchors.shape, F32, data=anchors)),
                     tuple(tinfo(f"o{j}", (), F32) for j in range(4)), DET_OPTIONS)
    return det.detection_postprocess(enc, scores, anchors, opt=det._prepare_detection(fctx))
