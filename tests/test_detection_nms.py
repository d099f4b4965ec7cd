"""TFLite_Detection_NMS (the vendor's NMS, calibrator_custom/ops/detection_nms.py) and the detection
post-processes inside fixed models (fixed/kernels/detection_nms.py, the fixed writer).

TFLite_Detection_NMS exists only in SigmaStar's runtime, so the float kernel is checked against a naive
reference written with plain loops below and against hand-computed cases. Inside fixed models both
post-processes run in float on the dequantized inputs: TFLite_Detection_PostProcess is compared with
LiteRT (which has it built in) fed the same dequantized inputs, TFLite_Detection_NMS with the naive
reference.
"""
from __future__ import annotations

import numpy as np
import pytest
from flatbuffers import flexbuffers

import calibrator_custom
from calibrator_custom.calib import collect_stats_arrays
from calibrator_custom.errors import ModelError, UnsupportedOpError
from calibrator_custom.fixed.registry import get_fixed_op
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import Quantization
from calibrator_custom.ops import detection_nms as nms
from calibrator_custom.ops.registry import OpContext, TensorInfo
from calibrator_custom.pipeline.convert import convert
from oprunner import Const, build_single_op, naive_iou, run_model_litert, run_ours

OP = "TFLite_Detection_NMS"
F32 = np.float32

SSD_KEYS = dict(input_coordinate_x1=0, input_coordinate_y1=1, input_coordinate_x2=2, input_coordinate_y2=3,
                input_score_idx=4, input_class_idx=5, input_confidence_idx=-1)
YOLO_KEYS = dict(input_coordinate_x1=0, input_coordinate_y1=1, input_coordinate_x2=2, input_coordinate_y2=3,
                 input_confidence_idx=4, input_score_idx=5, input_class_idx=6)


def options(yolo: bool = False, **over) -> dict:
    """The chalk's option map (sgs_chalk.TFLite_Detection_NMS), with overrides."""
    o = dict(YOLO_KEYS if yolo else SSD_KEYS, input_facecoordinate_idx=-1, output_detection_boxes_idx=0,
             output_detection_classes_idx=1, output_detection_scores_idx=2, output_num_detection_idx=3,
             output_detection_boxes_index_idx=-1, max_detections=10, nms_score_threshold=0.3,
             nms_iou_threshold=0.5, nms=0.0, max_classes_per_detection=1, detections_per_class=1,
             num_classes_with_background=1, clip=1.0, num_classes=3, bmax_score=int(yolo), offline=0)
    o.update(over)
    return o


# ------------------------------------------------------------------------------- naive reference
def naive_nms(inputs: list[np.ndarray], o: dict, n_out: int) -> list[np.ndarray]:
    """The documented algorithm with plain Python loops over boxes and box pairs."""
    f32 = np.float32
    flat = [np.asarray(x).reshape(-1) for x in inputs]
    n = flat[0].size
    yolo = o["input_confidence_idx"] >= 0
    ci = [o[f"input_coordinate_{c}"] for c in ("x1", "y1", "x2", "y2")]
    boxes = []
    for i in range(n):
        x1, y1, x2, y2 = (f32(flat[k][i]) for k in ci)
        b = [y1, x1, y2, x2]
        if o["clip"]:
            b = [f32(min(max(v, f32(0)), f32(1))) for v in b]
        boxes.append(b)
    score = [f32(v) for v in flat[o["input_score_idx"]]]
    label = [f32(v) for v in flat[o["input_class_idx"]]]

    cand = list(range(n))
    if yolo and n > 4096:
        conf = [f32(v) for v in flat[o["input_confidence_idx"]]]
        cand = sorted(sorted(cand, key=lambda i: -conf[i])[:4096])
    cand = sorted((i for i in cand if score[i] >= f32(o["nms_score_threshold"])), key=lambda i: -score[i])
    cap = min(o["max_detections"], 400) if yolo else o["max_detections"]
    selected = []
    for i in cand:
        if len(selected) == cap:
            break
        if all(naive_iou(boxes[i], boxes[j]) <= f32(o["nms_iou_threshold"]) for j in selected):
            selected.append(i)
    d = o["max_detections"]
    ob, oc, os_, oi = (np.zeros((1, d, 4), f32), np.zeros((1, d), f32), np.zeros((1, d), f32),
                       np.zeros((1, d), f32))
    for slot, i in enumerate(selected):
        ob[0, slot] = boxes[i]
        oc[0, slot] = np.floor(label[i] + f32(0.5))
        os_[0, slot] = score[i]
        oi[0, slot] = i
    values = [ob, oc, os_, np.array([len(selected)], f32), oi]
    keys = ["output_detection_boxes_idx", "output_detection_classes_idx", "output_detection_scores_idx",
            "output_num_detection_idx", "output_detection_boxes_index_idx"]
    out: list = [None] * n_out
    for v, k in zip(values, keys):
        if o[k] >= 0:
            out[o[k]] = v
    return out


def make_ctx(inputs: list[np.ndarray], opts, n_out: int = 4, out_shapes=None) -> OpContext:
    ins = tuple(TensorInfo(f"in{k}", x.shape, x.dtype) for k, x in enumerate(inputs))
    shapes = out_shapes or [()] * n_out
    outs = tuple(TensorInfo(f"out{j}", tuple(shapes[j]), np.dtype(F32)) for j in range(n_out))
    return OpContext(0, OP, ins, outs, opts)


def run_kernel(inputs: list[np.ndarray], opts: dict, n_out: int = 4) -> list[np.ndarray]:
    params = nms._prepare_nms(make_ctx(inputs, opts, n_out))
    return list(nms.detection_nms(*inputs, opt=params))


def assert_same(ours, ref) -> None:
    assert [a.shape for a in ours] == [r.shape for r in ref]
    assert all(a.dtype == np.float32 for a in ours)
    for j, (a, r) in enumerate(zip(ours, ref)):
        np.testing.assert_array_equal(a, r, err_msg=f"output {j}")


def random_problem(rng: np.random.Generator, n: int, yolo: bool, classes: int = 3, ties: bool = False,
                   shape=None) -> list[np.ndarray]:
    """Corner boxes of random size around random centres (some outside [0, 1]), scores, classes."""
    c = rng.uniform(-0.1, 1.1, (n, 2))
    half = rng.uniform(0.0, 0.2, (n, 2))
    x1, y1 = (c - half).T
    x2, y2 = (c + half).T
    score = rng.uniform(0, 1, n)
    if ties:
        score = np.round(score * 4) / 4
    cls = rng.integers(0, classes, n).astype(np.float64)
    cols = [x1, y1, x2, y2]
    if yolo:
        cols += [rng.uniform(0, 1, n), score, cls]
    else:
        cols += [score, cls]
    shape = shape or (1, n)
    return [np.asarray(v, F32).reshape(shape) for v in cols]


# ------------------------------------------------------------------------ kernel vs naive reference
@pytest.mark.parametrize("yolo", [False, True], ids=["ssd", "yolo"])
@pytest.mark.parametrize("n", [1, 9, 80, 300])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_kernel_matches_naive(yolo, n, ties) -> None:
    rng = np.random.default_rng(n * 10 + 3 * yolo + ties)
    inputs = random_problem(rng, n, yolo, ties=ties)
    for md, thr, iou, clip in [(10, 0.3, 0.5, 1.0), (40, 0.0, 0.2, 0.0), (3, 0.6, 0.9, 1.0), (100, 0.5, 1.0, 0.0)]:
        o = options(yolo, max_detections=md, nms_score_threshold=thr, nms_iou_threshold=iou, clip=clip)
        ours = run_kernel(inputs, o)
        assert [a.shape for a in ours] == [(1, md, 4), (1, md), (1, md), (1,)]
        assert_same(ours, naive_nms(inputs, o, 4))


def test_kernel_index_output_and_output_order() -> None:
    rng = np.random.default_rng(1)
    inputs = random_problem(rng, 50, False)
    o = options(output_detection_boxes_idx=4, output_detection_classes_idx=0, output_detection_scores_idx=3,
                output_num_detection_idx=1, output_detection_boxes_index_idx=2, max_detections=7,
                nms_score_threshold=0.1)
    ours = run_kernel(inputs, o, 5)
    assert [a.shape for a in ours] == [(1, 7), (1,), (1, 7), (1, 7), (1, 7, 4)]
    assert_same(ours, naive_nms(inputs, o, 5))
    count = int(ours[1][0])
    assert count == 7
    idx = ours[2][0, :count].astype(int)
    np.testing.assert_array_equal(ours[3][0, :count], inputs[4][0, idx])  # scores of those boxes


def test_kernel_permuted_inputs_and_other_shapes() -> None:
    """Input positions come from the options; any shape holding N values works."""
    rng = np.random.default_rng(2)
    base = random_problem(rng, 40, False, shape=(40,))
    perm = [5, 2, 0, 4, 1, 3]  # new position of x1, y1, x2, y2, score, class
    permuted = [None] * 6
    for old, new in enumerate(perm):
        permuted[new] = base[old].reshape(1, 40, 1)
    keys = ["input_coordinate_x1", "input_coordinate_y1", "input_coordinate_x2", "input_coordinate_y2",
            "input_score_idx", "input_class_idx"]
    o = options(**dict(zip(keys, perm)))
    assert_same(run_kernel(permuted, o), run_kernel(base, options()))


def test_yolo_preselection_and_cap() -> None:
    """More than 4096 boxes: only the 4096 most confident compete; at most 400 detections."""
    n = 5000
    rng = np.random.default_rng(3)
    g = np.arange(n)
    x1, y1 = (g % 100) / 100.0, (g // 100) / 100.0  # disjoint cells: nothing suppresses anything
    conf = rng.permutation(n) / n
    score = rng.uniform(0.2, 1.0, n)
    inputs = [np.asarray(v, F32).reshape(1, n) for v in (x1, y1, x1 + 0.005, y1 + 0.005, conf, score, g % 7)]
    o = options(True, max_detections=500, nms_score_threshold=0.1, output_detection_boxes_index_idx=4)
    ours = run_kernel(inputs, o, 5)
    assert ours[3][0] == 400  # capped, and the outputs still hold 500 slots
    assert ours[0].shape == (1, 500, 4) and not ours[2][0, 400:].any()
    top = set(np.argsort(-conf, kind="stable")[:4096].tolist())
    chosen = ours[4][0, :400].astype(int)
    assert set(chosen.tolist()) <= top
    # the 400 best scores among the 4096 most confident (nothing overlaps)
    best = sorted(top, key=lambda i: -np.float32(score[i]))[:400]
    np.testing.assert_array_equal(np.sort(chosen), np.sort(best))
    assert_same(ours, naive_nms(inputs, o, 5))
    # SSD mode has no such pre-selection or cap (up to 24576 boxes)
    ssd = [inputs[k] for k in (0, 1, 2, 3, 5, 6)]
    out = run_kernel(ssd, options(max_detections=500, nms_score_threshold=0.1))
    assert out[3][0] == 500


# -------------------------------------------------------------------------------- hand-computed
def hand_inputs() -> list[np.ndarray]:
    """Four boxes (x1, y1, x2, y2): A; B overlapping A (IoU 0.6495); C apart; D = C with a low score."""
    boxes = [(0.10, 0.20, 0.30, 0.60),   # A: 0.2 wide, 0.4 tall
             (0.12, 0.25, 0.32, 0.65),   # B
             (0.60, 0.60, 0.90, 0.80),   # C
             (0.60, 0.60, 0.90, 0.80)]   # D
    x1, y1, x2, y2 = (np.array(v, F32).reshape(1, 4) for v in zip(*boxes))
    score = np.array([[0.9, 0.8, 0.7, 0.35]], F32)
    cls = np.array([[2, 1, 0, 4]], F32)
    return [x1, y1, x2, y2, score, cls]


def test_hand_overlap_suppressed() -> None:
    # IoU(A, B): inter 0.18 x 0.35 = 0.063, union 0.08 + 0.08 - 0.063 = 0.097 -> 0.6495
    boxes, classes, scores, num = run_kernel(hand_inputs(), options(max_detections=4, nms_score_threshold=0.4,
                                                                    nms_iou_threshold=0.6))
    assert num[0] == 2
    np.testing.assert_array_equal(scores[0], np.array([0.9, 0.7, 0, 0], F32))
    np.testing.assert_array_equal(classes[0], [2, 0, 0, 0])
    # layout [ymin, xmin, ymax, xmax]
    np.testing.assert_array_equal(boxes[0, 0], np.array([0.20, 0.10, 0.60, 0.30], F32))
    np.testing.assert_array_equal(boxes[0, 1], np.array([0.60, 0.60, 0.80, 0.90], F32))
    assert not boxes[0, 2:].any()


def test_hand_iou_threshold_and_max_detections() -> None:
    # IoU 0.6495 is not > 0.65: B survives; D (IoU 1 with C) is dropped by the score threshold
    _, classes, scores, num = run_kernel(hand_inputs(), options(max_detections=4, nms_score_threshold=0.4,
                                                                nms_iou_threshold=0.65))
    assert num[0] == 3
    np.testing.assert_array_equal(scores[0], np.array([0.9, 0.8, 0.7, 0], F32))
    np.testing.assert_array_equal(classes[0], [2, 1, 0, 0])
    # max_detections 1: only A
    _, classes, scores, num = run_kernel(hand_inputs(), options(max_detections=1, nms_score_threshold=0.4))
    assert num[0] == 1 and scores[0, 0] == F32(0.9) and classes[0, 0] == 2


def test_hand_score_threshold_is_inclusive_and_suppression_class_agnostic() -> None:
    # threshold 0.35 keeps D (0.35 >= 0.35), which C (IoU 1, another class) then suppresses
    _, classes, scores, num = run_kernel(hand_inputs(), options(max_detections=4, nms_score_threshold=0.35,
                                                                nms_iou_threshold=0.9))
    assert num[0] == 3 and 4 not in classes[0, :3]
    # IoU threshold 1.0: identical boxes (IoU exactly 1) no longer suppress: D is selected
    _, classes, scores, num = run_kernel(hand_inputs(), options(max_detections=4, nms_score_threshold=0.35,
                                                                nms_iou_threshold=1.0))
    assert num[0] == 4
    np.testing.assert_array_equal(classes[0], [2, 1, 0, 4])
    np.testing.assert_array_equal(scores[0], np.array([0.9, 0.8, 0.7, 0.35], F32))


def test_hand_ties_clip_and_class_rounding() -> None:
    x1 = np.array([[-0.2, 0.5, 0.5]], F32)
    y1 = np.array([[0.1, 0.5, 0.0]], F32)
    x2 = np.array([[0.3, 0.7, 0.7]], F32)
    y2 = np.array([[1.4, 0.6, 0.1]], F32)
    score = np.array([[0.5, 0.5, 0.5]], F32)  # all tied: box order
    cls = np.array([[2.9999, 1.0001, 6.49]], F32)  # what an INT16 class looks like after dequantization
    boxes, classes, scores, num = run_kernel([x1, y1, x2, y2, score, cls], options(max_detections=3))
    assert num[0] == 3
    np.testing.assert_array_equal(classes[0], [3, 1, 6])
    np.testing.assert_array_equal(boxes[0, 0], np.array([0.1, 0.0, 1.0, 0.3], F32))  # clipped to [0, 1]
    boxes, *_ = run_kernel([x1, y1, x2, y2, score, cls], options(max_detections=3, clip=0.0))
    np.testing.assert_array_equal(boxes[0, 0], np.array([0.1, -0.2, 1.4, 0.3], F32))


def test_hand_yolo_thresholds_score_not_confidence() -> None:
    ins = hand_inputs()
    conf = np.array([[0.1, 0.9, 0.9, 0.9]], F32)  # A is the least confident but has the best score
    yolo_inputs = ins[:4] + [conf, ins[4], ins[5]]
    _, classes, scores, num = run_kernel(yolo_inputs, options(True, max_detections=4, nms_score_threshold=0.4,
                                                              nms_iou_threshold=0.6))
    assert num[0] == 2
    np.testing.assert_array_equal(scores[0, :2], np.array([0.9, 0.7], F32))


def test_through_model_file_with_defaults() -> None:
    """Defaults (no options): SSD layout from 6 inputs, max_detections 100, threshold 0.005, IoU 0.45."""
    rng = np.random.default_rng(4)
    inputs = random_problem(rng, 30, False)
    got = run_ours(OP, inputs, num_outputs=4)
    o = options(max_detections=100, nms_score_threshold=nms.DEFAULT_SCORE_THRESHOLD,
                nms_iou_threshold=nms.DEFAULT_IOU_THRESHOLD)
    assert_same(got, naive_nms(inputs, o, 4))
    assert got[0].shape == (1, 100, 4)


# -------------------------------------------------------------------------------- option errors
BAD = {
    "input count": (dict(), 5, 4, "has 5 inputs, expected 6"),
    "mode count": (dict(input_confidence_idx=4), 6, 4, "YOLO mode (input_confidence_idx=4) takes 7 inputs"),
    "duplicate input": (dict(input_class_idx=4), 6, 4, "must name each of the 6 inputs exactly once"),
    "output count": (dict(), 6, 3, "has 3 outputs, expected 4"),
    "index without output": (dict(output_detection_boxes_index_idx=4), 6, 4, "must name each of the 4 outputs"),
    "duplicate output": (dict(output_detection_scores_idx=1), 6, 4, "must name each of the 4 outputs"),
    "max_detections": (dict(max_detections=0), 6, 4, "max_detections must be >= 1"),
    "iou": (dict(nms_iou_threshold=0.0), 6, 4, "nms_iou_threshold must be in (0, 1]"),
    "not a number": (dict(max_detections="ten"), 6, 4, "'max_detections' must be a number"),
    "fraction": (dict(max_detections=2.5), 6, 4, "'max_detections' must be an integer"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_prepare_rejects(case) -> None:
    over, n_in, n_out, message = BAD[case]
    inputs = [np.zeros((1, 5), F32)] * n_in
    with pytest.raises(ModelError) as info:
        nms._prepare_nms(make_ctx(inputs, options(**over), n_out))
    assert message in str(info.value) and OP in str(info.value)


def test_prepare_rejects_shapes_and_unimplemented() -> None:
    ins = [np.zeros((1, 5), F32)] * 5 + [np.zeros((1, 6), F32)]
    with pytest.raises(ModelError, match="every input must hold one value per box"):
        nms._prepare_nms(make_ctx(ins, options()))
    big = [np.zeros((1, nms.SSD_MAX_BOXES + 1), F32)] * 6
    with pytest.raises(ModelError, match="at most 24576 boxes"):
        nms._prepare_nms(make_ctx(big, options()))
    ins = [np.zeros((1, 5), F32)] * 6
    with pytest.raises(ModelError, match=r"output 2 \(scores\) has shape \[1, 5\], expected \[1, 10\]"):
        nms._prepare_nms(make_ctx(ins, options(), out_shapes=[(1, 10, 4), (1, 10), (1, 5), (1,)]))
    for over, message in ((dict(nms=1.0), "nms=1 is not implemented"),
                          (dict(input_facecoordinate_idx=6), "input_facecoordinate_idx >= 0")):
        with pytest.raises(UnsupportedOpError, match=message):
            nms._prepare_nms(make_ctx(ins, options(**over)))
    with pytest.raises(ValueError):  # every error is a ValueError, as the vendor's
        nms._prepare_nms(make_ctx(ins, options(nms_iou_threshold=2.0)))


# ---------------------------------------------------------------------------- fixed kernel (unit)
def test_fixed_kernel_dequantizes_each_input_like_dequantize() -> None:
    """INT16 inputs with scales are dequantized as float32(float64(q - zp) * scale); an INT32 class without
    quantization is taken as it is (a float constant class: test_fixed_model_with_detection_nms_equals_naive)."""
    rng = np.random.default_rng(5)
    n = 60
    floats = random_problem(rng, n, False)
    scales = [0.75 / 32767, 0.61 / 32767, 1.2 / 32767, 1.3 / 32767, 1.0 / 32767]
    q_inputs, deq, infos = [], [], []
    for k, (x, s) in enumerate(zip(floats[:5], scales)):
        zp = 7 if k == 4 else 0  # one input with a zero point
        q = np.clip(np.round(x / s) + zp, -32768, 32767).astype(np.int16)
        s32 = float(np.float32(s))
        q_inputs.append(q)
        deq.append(((q.astype(np.int64) - zp).astype(np.float64) * s32).astype(F32))
        quant = Quantization(scale=(s32,), zero_point=(zp,))
        infos.append(TensorInfo(f"q{k}", q.shape, np.dtype(np.int16), None, quant))
    cls = floats[5].astype(np.int32)
    infos.append(TensorInfo("cls", cls.shape, np.dtype(np.int32), None, None))
    o = options(max_detections=15, nms_score_threshold=0.2)
    outs = tuple(TensorInfo(f"o{j}", (), np.dtype(F32)) for j in range(4))
    kernel = get_fixed_op(OP)
    params = kernel.prepare(OpContext(0, OP, tuple(infos), outs, o))
    got = kernel.kernel(*q_inputs, cls, opt=params)
    assert_same(list(got), naive_nms(deq + [cls.astype(F32)], o, 4))
    bad = tuple(TensorInfo(f"o{j}", (), np.dtype(np.int16)) for j in range(4))
    with pytest.raises(ModelError, match="runs in float inside the fixed model"):
        kernel.prepare(OpContext(0, OP, tuple(infos), bad, o))


# ------------------------------------------------------------------------- fixed model end to end
MEAN, STD = 127.5, 127.5


def write_ini(path, outputs: list[str], deq: str) -> str:
    path.write_text(f"[INPUT_CONFIG]\ninputs=img;\ntraining_input_formats=RGB;\ninput_formats=RGB;\n"
                    f"mean={MEAN}:{MEAN}:{MEAN};\nstd_value={STD};\n[OUTPUT_CONFIG]\noutputs={','.join(outputs)};\n"
                    f"dequantizations={','.join([deq] * len(outputs))};\n")
    return str(path)


def pixels_and_feeds(seed: int, count: int, hw: int):
    rng = np.random.default_rng(seed)
    pixels = [rng.integers(0, 256, (1, hw, hw, 3)).astype(np.uint8) for _ in range(count)]
    return pixels, [[(p.astype(F32) - MEAN) / STD] for p in pixels]


def conv1x1(b: ModelBuilder, x, rng, cout: int, name: str, scale: float):
    w = (rng.standard_normal((cout, 1, 1, 3)) * scale).astype(F32)
    return b.op("CONV_2D", [x, b.constant(f"{name}_w", w), b.constant(f"{name}_b", np.zeros(cout, F32))],
                {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name=name)


PP_OPTIONS = dict(max_detections=40, max_classes_per_detection=1, detections_per_class=100, use_regular_nms=False,
                  nms_score_threshold=0.7, nms_iou_threshold=0.2, num_classes=3, y_scale=10.0, x_scale=10.0,
                  h_scale=5.0, w_scale=5.0)


def postprocess_model(path) -> tuple[str, np.ndarray]:
    """conv -> reshape -> box encodings [1,128,4]; conv -> reshape -> logistic -> scores [1,128,4]
    (background + 3 classes); TFLite_Detection_PostProcess with 128 constant anchors."""
    rng = np.random.default_rng(10)
    b = ModelBuilder()
    x = b.input("img", (1, 8, 8, 3))
    enc = b.op("RESHAPE", [conv1x1(b, x, rng, 8, "box_conv", 0.6), b.constant("s1", np.array([1, 128, 4], np.int32))],
               {"new_shape": [1, 128, 4]}, name="box_encodings")
    shape = np.array([1, 128, 4], np.int32)
    logits = b.op("RESHAPE", [conv1x1(b, x, rng, 8, "cls_conv", 1.5), b.constant("s2", shape)],
                  {"new_shape": [1, 128, 4]}, name="logits")
    scores = b.op("LOGISTIC", [logits], name="class_scores")
    c = (np.stack(np.meshgrid(np.arange(8), np.arange(8), indexing="ij"), -1).reshape(-1, 2) + 0.5) / 8
    anchors = np.concatenate([np.repeat(c, 2, axis=0), np.tile([[0.2, 0.2], [0.3, 0.15]], (64, 1))], 1).astype(F32)
    outs = b.op("TFLite_Detection_PostProcess", [enc, scores, b.constant("anchors", anchors)],
                custom_options=bytes(flexbuffers.Dumps(PP_OPTIONS)), num_outputs=4, name="det")
    b.output(*outs)
    b.save(path)
    return str(path), anchors


NMS_OPTIONS = options(max_detections=40, nms_score_threshold=0.5, nms_iou_threshold=0.3, clip=1.0,
                      output_detection_boxes_index_idx=4, num_classes=5)


def nms_model(path) -> str:
    """conv -> x1, y1, x2, y2, score (logistic), class (a float constant) -> TFLite_Detection_NMS (+ index)."""
    rng = np.random.default_rng(11)
    b = ModelBuilder()
    x = b.input("img", (1, 8, 8, 3))
    c = conv1x1(b, x, rng, 3, "conv", 0.5)  # [1, 8, 8, 3]
    flat = b.op("RESHAPE", [c, b.constant("s", np.array([1, 64, 3], np.int32))], {"new_shape": [1, 64, 3]},
                name="flat")
    cols = b.op("UNPACK", [flat], {"num": 3, "axis": 2}, name="cols", num_outputs=3)
    g = (np.stack(np.meshgrid(np.arange(8), np.arange(8), indexing="ij"), -1).reshape(1, 64, 2) + 0.5) / 8
    gx, gy = b.constant("gx", g[..., 1].astype(F32)), b.constant("gy", g[..., 0].astype(F32))
    half = b.op("MUL", [b.op("LOGISTIC", [cols[0]], name="size"), b.constant("k", np.array(0.2, F32))], {}, name="half")
    x1 = b.op("SUB", [gx, half], {}, name="x1")
    y1 = b.op("SUB", [gy, half], {}, name="y1")
    x2 = b.op("ADD", [gx, half], {}, name="x2")
    y2 = b.op("ADD", [gy, half], {}, name="y2")
    score = b.op("LOGISTIC", [cols[1]], name="score")
    cls = b.constant("cls", (np.arange(64) % 5).reshape(1, 64).astype(F32))
    outs = b.op(OP, [x1, y1, x2, y2, score, cls], custom_options=bytes(flexbuffers.Dumps(NMS_OPTIONS)), num_outputs=5,
                name="nms")
    b.output(*outs)
    b.save(path)
    return str(path)


def dequantized(sim, name: str) -> np.ndarray:
    """A fixed-model tensor as float32(float64(q - zp) * scale) (the DEQUANTIZE definition)."""
    q = sim.get_tensor(name)
    (scale, zp), = next(d["quantization"] for d in sim.get_tensor_details() if d["name"] == name)
    return ((q.astype(np.int64) - zp).astype(np.float64) * float(np.float32(scale))).astype(F32)


def check_float_outputs(sim, n_out: int) -> None:
    details = sim.get_output_details()
    assert len(details) == n_out and sim.is_detection()
    assert all(d["dtype"] == np.float32 and "quantization" not in d for d in details)
    types = {d["name"]: d["dtype"] for d in sim.get_tensor_details()}
    assert all(types[d["name"]] == "FLOAT32" for d in details)


@pytest.mark.parametrize("deq", ["FALSE", "TRUE"])
def test_fixed_model_with_tflite_postprocess_equals_litert(tmp_path, deq) -> None:
    """A float model ending in TFLite_Detection_PostProcess, converted: its outputs stay float32 (no
    Fix2Float), and its post-process gives exactly what LiteRT gives on the dequantized INT16 inputs."""
    model, anchors = postprocess_model(tmp_path / "pp_float.sim")
    pixels, feeds = pixels_and_feeds(20, 8, 8)
    stats = collect_stats_arrays(model, feeds)
    out = tmp_path / "pp_fixed.sim"
    convert(model, write_ini(tmp_path / "pp.ini", ["det:0", "det:1", "det:2", "det:3"], deq), stats,
            quant_level="L2", output_path=out)
    sim = calibrator_custom.fixed_simulator(out)
    check_float_outputs(sim, 4)
    types = {d["name"]: d["dtype"] for d in sim.get_tensor_details()}
    assert types["box_encodings"] == "INT16" and types["class_scores"] == "INT16" and types["anchors"] == "FLOAT32"
    single, _ = build_single_op("TFLite_Detection_PostProcess",
                                [np.zeros((1, 128, 4), F32), np.zeros((1, 128, 4), F32), Const(anchors)],
                                custom_options=bytes(flexbuffers.Dumps(PP_OPTIONS)), num_outputs=4)
    data = single.to_bytes()
    counts = []
    for p in pixels:
        sim.set_input(0, p)
        sim.invoke(keep="all")
        got = [sim.get_output(j) for j in range(4)]
        ref = run_model_litert(data, [dequantized(sim, "box_encodings"), dequantized(sim, "class_scores")])
        n = int(ref[3][0])
        counts.append(n)
        assert [g.shape for g in got] == [r.shape for r in ref] and all(g.dtype == np.float32 for g in got)
        np.testing.assert_array_equal(got[3], ref[3])
        for j in range(3):  # LiteRT leaves the slots after the count unwritten
            np.testing.assert_array_equal(got[j][0, :n], ref[j][0, :n], err_msg=f"output {j}")
            assert not got[j][0, n:].any()
    assert 0 < min(counts) and max(counts) < 40, counts  # real work: detections, not every slot


def test_fixed_model_with_detection_nms_equals_naive(tmp_path) -> None:
    """A float model ending in TFLite_Detection_NMS (5 outputs), converted: float32 outputs equal to the
    naive NMS on the dequantized INT16 coordinates and scores and the float constant class."""
    model = nms_model(tmp_path / "nms_float.sim")
    pixels, feeds = pixels_and_feeds(21, 8, 8)
    stats = collect_stats_arrays(model, feeds)
    names = ["nms:0", "nms:1", "nms:2", "nms:3", "nms:4"]
    out = tmp_path / "nms_fixed.sim"
    convert(model, write_ini(tmp_path / "nms.ini", names, "TRUE"), stats, quant_level="L2", output_path=out)
    sim = calibrator_custom.fixed_simulator(out)
    check_float_outputs(sim, 5)
    types = {d["name"]: d["dtype"] for d in sim.get_tensor_details()}
    assert types["x1"] == "INT16" and types["score"] == "INT16" and types["cls"] == "FLOAT32"
    o = NMS_OPTIONS
    cls = (np.arange(64) % 5).reshape(1, 64).astype(F32)
    fsim = calibrator_custom.float_simulator(model)
    counts = []
    for p, f in zip(pixels, feeds):
        sim.set_input(0, p)
        sim.invoke(keep="all")
        got = [sim.get_output(j) for j in range(5)]
        ins = [dequantized(sim, k) for k in ("x1", "y1", "x2", "y2", "score")] + [cls]
        assert_same(got, naive_nms(ins, o, 5))
        counts.append(int(got[3][0]))
        fsim.set_input(0, f[0])
        fsim.invoke()
        assert fsim.get_output(3)[0] > 0
    assert 0 < min(counts) < 40, counts  # detections, and not every slot filled
