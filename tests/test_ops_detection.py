"""Tests of the custom op TFLite_Detection_PostProcess (calibrator_custom/ops/detection.py).

Three layers: option parsing / prepare validation, the kernel against a naive loop reference that
follows TFLite's detection_postprocess.cc step by step, and differential runs against LiteRT.

LiteRT sizes every output max_detections * max_classes_per_detection but only writes the slots it
fills (fast NMS: num_detections * min(max_classes_per_detection, num_classes) slots; regular NMS:
the first max_detections slots); the rest is uninitialised memory.  ``check_against_litert`` is
used where LiteRT writes every slot; elsewhere only the written slots are compared (ours are zero).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from flatbuffers import flexbuffers

from calibrator_custom.errors import ModelError
from calibrator_custom.ops import detection as det
from calibrator_custom.ops.registry import OpContext, TensorInfo
from oprunner import (Const, assert_outputs_match, build_single_op, check_against_litert, naive_iou, run_model_litert,
                      run_model_ours, run_ours)

OP = "TFLite_Detection_PostProcess"
F32 = np.dtype(np.float32)


# ----------------------------------------------------------------------------------------- helpers
def make_options(num_classes: int, **over: Any) -> dict[str, Any]:
    opts: dict[str, Any] = dict(max_detections=10, max_classes_per_detection=1, detections_per_class=100,
                                use_regular_nms=False, nms_score_threshold=0.3, nms_iou_threshold=0.5,
                                num_classes=num_classes, y_scale=10.0, x_scale=10.0, h_scale=5.0, w_scale=5.0)
    opts.update(over)
    return opts


def random_anchors(rng: np.random.Generator, n: int, lo: float = 0.05, hi: float = 0.4) -> np.ndarray:
    """[n, 4] anchors (ycenter, xcenter, h, w) scattered over the unit square."""
    return np.concatenate([rng.uniform(0, 1, (n, 2)), rng.uniform(lo, hi, (n, 2))], 1).astype(np.float32)


def grid_problem(rng: np.random.Generator, cells: int, per_cell: int, num_classes: int, background: int,
                 ties: bool, extra_coords: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchors clustered in ``cells`` x ``cells`` grid cells: boxes overlap inside a cell, never across.

    With scales (10, 10, 5, 5) and encodings in [-1, 1] a decoded box reaches at most 0.455 cell
    sizes from its cell centre, and every cell holds a box scoring >= 0.5, so NMS with a score
    threshold <= 0.5 selects at least one box per cell (at least cells**2 detections).
    """
    s = 1.0 / cells
    centres = (np.stack(np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij"), -1)
               .reshape(-1, 2) + 0.5) * s
    c = np.repeat(centres, per_cell, axis=0)
    n = c.shape[0]
    anchors = np.concatenate([c + rng.uniform(-0.1 * s, 0.1 * s, (n, 2)),
                              rng.uniform(0.3 * s, 0.5 * s, (n, 2))], 1).astype(np.float32)
    enc = rng.uniform(-1, 1, (1, n, 4 + extra_coords)).astype(np.float32)
    scores = rng.uniform(0, 1, (1, n, num_classes + background))
    if ties:
        scores = np.round(scores * 4) / 4
    scores[0, ::per_cell, background:] = np.maximum(scores[0, ::per_cell, background:], 0.5)
    return enc, scores.astype(np.float32), anchors


def make_ctx(box_shape, cls_shape, anchors: np.ndarray | None, options: Any,
             anchor_shape=None, dtype=F32, constant: bool = True) -> OpContext:
    a_shape = tuple(anchor_shape or (anchors.shape if anchors is not None else (box_shape[1], 4)))
    ins = (TensorInfo("boxes", tuple(box_shape), dtype), TensorInfo("scores", tuple(cls_shape), F32),
           TensorInfo("anchors", a_shape, F32, anchors if constant else None))
    outs = tuple(TensorInfo(f"out{j}", (), F32) for j in range(4))
    return OpContext(0, OP, ins, outs, options)


def run_kernel(enc: np.ndarray, scores: np.ndarray, anchors: np.ndarray, opts: dict) -> tuple[np.ndarray, ...]:
    params = det._prepare_detection(make_ctx(enc.shape, scores.shape, anchors, opts))
    return det.detection_postprocess(enc, scores, anchors, opt=params)


def written_mask(opts: dict, num_detections: int) -> np.ndarray:
    """Which of the max_detections * max_classes_per_detection slots TFLite writes."""
    md, mc = opts["max_detections"], opts["max_classes_per_detection"]
    mask = np.zeros((md, mc), dtype=bool)
    if opts.get("use_regular_nms", False):
        mask.reshape(-1)[:md] = True
    else:
        mask[:num_detections, :min(mc, opts["num_classes"])] = True
    return mask.reshape(-1)


def check_shapes(outs, opts: dict) -> None:
    total = opts["max_detections"] * opts["max_classes_per_detection"]
    assert [o.shape for o in outs] == [(1, total, 4), (1, total), (1, total), (1,)]
    assert all(o.dtype == np.float32 for o in outs)


# ------------------------------------------------------------------------- naive loop reference
def naive_postprocess(enc: np.ndarray, cls: np.ndarray, anchors: np.ndarray, o: dict) -> list[np.ndarray]:
    """TFLite's algorithm written with plain loops over boxes and box pairs."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _naive_postprocess(enc, cls, anchors, o)


def _naive_postprocess(enc: np.ndarray, cls: np.ndarray, anchors: np.ndarray, o: dict) -> list[np.ndarray]:
    f32 = np.float32
    n = enc.shape[1]
    nc = o["num_classes"]
    off = cls.shape[2] - nc
    ys, xs, hs, ws = (float(f32(o[k])) for k in ("y_scale", "x_scale", "h_scale", "w_scale"))
    boxes = []
    for i in range(n):
        ty, tx, th, tw = (float(v) for v in enc[0, i, :4])
        ay, ax, ah, aw = (float(v) for v in anchors[i])
        yc, xc = f32(ty / ys * ah + ay), f32(tx / xs * aw + ax)
        hh, hw = f32(0.5 * math.exp(th / hs) * ah), f32(0.5 * math.exp(tw / ws) * aw)
        boxes.append((f32(yc - hh), f32(xc - hw), f32(yc + hh), f32(xc + hw)))

    thr, iou_thr = f32(o["nms_score_threshold"]), f32(o["nms_iou_threshold"])

    def nms(sc, max_out):
        cand = sorted((i for i in range(n) if sc[i] >= thr), key=lambda i: -sc[i])  # stable
        active = [True] * len(cand)
        sel = []
        for a in range(len(cand)):
            if len(sel) >= max_out:
                break
            if not active[a]:
                continue
            sel.append(cand[a])
            for b in range(a + 1, len(cand)):
                if active[b] and naive_iou(boxes[cand[a]], boxes[cand[b]]) > iou_thr:
                    active[b] = False
        return sel

    md, mc = o["max_detections"], o["max_classes_per_detection"]
    total = md * mc
    ob = np.zeros((total, 4), np.float32)
    oc = np.zeros(total, np.float32)
    osc = np.zeros(total, np.float32)
    if o.get("use_regular_nms", False):
        entries = []
        for c in range(nc):
            sc = [f32(cls[0, i, c + off]) for i in range(n)]
            for i in nms(sc, min(o.get("detections_per_class", 100), md)):
                entries.append((sc[i], c, i))
        entries = sorted(entries, key=lambda e: -e[0])[:md]  # stable: class order, then selection
        for slot, (s, c, i) in enumerate(entries):
            ob[slot], oc[slot], osc[slot] = boxes[i], c, s
        count = len(entries)
    else:
        k = min(mc, nc)
        tops = []
        for i in range(n):
            row = cls[0, i, off:]
            if k == 1:
                best = 0
                for c in range(1, nc):
                    if row[c] > row[best]:
                        best = c
                tops.append([best])
            else:
                tops.append(det.heap_partial_argsort(row, k))
        sel = nms([f32(cls[0, i, off + tops[i][0]]) for i in range(n)], md)
        for out_i, i in enumerate(sel):
            for col in range(k):
                slot = mc * out_i + col
                ob[slot], oc[slot], osc[slot] = boxes[i], tops[i][col], cls[0, i, off + tops[i][col]]
        count = len(sel)
    return [ob[None], oc[None], osc[None], np.array([count], np.float32)]


def assert_same(ours, ref) -> None:
    assert [a.shape for a in ours] == [r.shape for r in ref]
    assert [a.dtype for a in ours] == [r.dtype for r in ref]
    for j, (a, r) in enumerate(zip(ours, ref)):
        np.testing.assert_array_equal(a, r, err_msg=f"output {j}")


# ----------------------------------------------------------------------- options and prepare
def test_parse_options_defaults() -> None:
    p = det.parse_options({"max_detections": 5, "max_classes_per_detection": 1, "num_classes": 3,
                           "nms_score_threshold": 0.1, "nms_iou_threshold": 0.6,
                           "y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0})
    assert p.detections_per_class == det.DEFAULT_DETECTIONS_PER_CLASS == 100
    assert p.use_regular_nms is False
    assert p.nms_score_threshold == np.float32(0.1) and p.nms_iou_threshold == np.float32(0.6)
    assert p.y_scale == float(np.float32(10.0))
    q = det.parse_options({"use_regular_nms": True, "detections_per_class": 7, "h_scale": 0.1})
    assert q.use_regular_nms is True and q.detections_per_class == 7
    assert q.h_scale == float(np.float32(0.1))  # read as float32, like flexbuffers' AsFloat
    assert q.max_detections == 0 and q.num_classes == 0  # absent keys read as 0 like a null


def test_prepare_precomputes() -> None:
    rng = np.random.default_rng(0)
    anchors = random_anchors(rng, 6)
    p = det._prepare_detection(make_ctx((1, 6, 4), (1, 6, 4), anchors, make_options(3)))
    assert p.label_offset == 1 and p.anchors.dtype == np.float64
    np.testing.assert_array_equal(p.anchors, anchors.astype(np.float64))
    p = det._prepare_detection(make_ctx((1, 6, 4), (1, 6, 3), anchors, make_options(3)))
    assert p.label_offset == 0


BAD_CASES = {
    "box rank": (dict(box_shape=(6, 4)), {}, "box_encodings must have shape"),
    "box batch": (dict(box_shape=(2, 6, 4)), {}, "box_encodings must have shape"),
    "box coords": (dict(box_shape=(1, 6, 3)), {}, "box_encodings must have shape"),
    "class rank": (dict(cls_shape=(6, 4)), {}, "class_predictions must have shape"),
    "class boxes": (dict(cls_shape=(1, 5, 4)), {}, "class_predictions must have shape"),
    "class count": (dict(cls_shape=(1, 6, 5)), {}, "expected num_classes (3) or num_classes + 1"),
    "class count low": (dict(cls_shape=(1, 6, 2)), {}, "expected num_classes"),
    "anchor shape": (dict(anchor_shape=(6, 3)), {}, "anchors must have shape [6, 4]"),
    "anchor count": (dict(anchor_shape=(5, 4)), {}, "anchors must have shape [6, 4]"),
    "anchor runtime": (dict(constant=False), {}, "anchors (input 2) must be a constant tensor"),
    "int boxes": (dict(dtype=np.dtype(np.int32)), {}, "box_encodings must be a float tensor"),
    "num_classes": (dict(cls_shape=(1, 6, 1)), {"num_classes": 0}, "num_classes must be >= 1"),
    "iou zero": ({}, {"nms_iou_threshold": 0.0}, "nms_iou_threshold must be in (0, 1]"),
    "iou above one": ({}, {"nms_iou_threshold": 1.5}, "nms_iou_threshold must be in (0, 1]"),
    "max_detections": ({}, {"max_detections": -1}, "max_detections must be >= 0"),
    "classes per detection": ({}, {"max_classes_per_detection": 0}, "max_classes_per_detection must be > 0"),
    "classes per detection regular": ({}, {"max_classes_per_detection": 0, "use_regular_nms": True},
                                      "max_classes_per_detection must be > 0"),
    "detections_per_class": ({}, {"use_regular_nms": True, "detections_per_class": 0},
                             "min(detections_per_class, max_detections) must be > 0"),
    "regular no detections": ({}, {"use_regular_nms": True, "max_detections": 0},
                              "min(detections_per_class, max_detections) must be > 0"),
    "zero scale": ({}, {"h_scale": 0.0}, "box scales must be non-zero, got h_scale=0"),
    "negative anchor": (dict(negative_anchor=True), {}, "anchor heights/widths must be >= 0, anchor 2"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_prepare_rejects(case: str) -> None:
    shapes, over, message = BAD_CASES[case]
    shapes = dict(shapes)
    anchors = random_anchors(np.random.default_rng(1), 6)
    if shapes.pop("negative_anchor", False):
        anchors[2, 3] = -0.1
    ctx = make_ctx(shapes.pop("box_shape", (1, 6, 4)), shapes.pop("cls_shape", (1, 6, 4)), anchors,
                   {**make_options(3), **over}, **shapes)
    with pytest.raises(ModelError) as info:
        det._prepare_detection(ctx)
    assert message in str(info.value) and OP in str(info.value)


def test_prepare_error_through_model() -> None:
    rng = np.random.default_rng(2)
    enc, scores, anchors = rng.normal(size=(1, 4, 4)), rng.uniform(size=(1, 4, 3)), random_anchors(rng, 4)
    with pytest.raises(ModelError, match="nms_iou_threshold"):
        run_ours(OP, [enc, scores, Const(anchors)],
                 custom_options=flexbuffers.Dumps(make_options(2, nms_iou_threshold=0.0)), num_outputs=4)


# ----------------------------------------------------------------------------- kernel pieces
#: (values, k, first k indices of GNU libstdc++ std::partial_sort with comp values[i] > values[j])
LIBSTDCXX_PARTIAL_SORT = [
    ([1, 1, 1, 1, 1], 2, [0, 1]),
    ([1, 1, 1, 1, 1], 3, [0, 1, 2]),
    ([0.5, 1, 0.5, 1, 0.5, 1], 3, [5, 1, 3]),
    ([2, 2, 3, 3, 2, 2, 3], 4, [6, 3, 2, 0]),
    ([1, 1, 1, 1], 4, [1, 3, 0, 2]),
    ([0, 1, 1, 0, 1, 1, 0, 1], 3, [4, 1, 2]),
    ([0.25, 0.25, 0.5], 2, [2, 0]),
]


@pytest.mark.parametrize("values,k,expected", LIBSTDCXX_PARTIAL_SORT)
def test_heap_partial_argsort_matches_libstdcxx(values, k, expected) -> None:
    assert det.heap_partial_argsort(np.array(values, np.float32), k) == expected


def test_heap_partial_argsort_is_descending_topk() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        c = int(rng.integers(1, 12))
        k = int(rng.integers(1, c + 1))
        v = rng.integers(0, 4, c).astype(np.float32)
        idx = det.heap_partial_argsort(v, k)
        assert len(set(idx)) == k
        np.testing.assert_array_equal(v[idx], np.sort(v)[::-1][:k])


def test_decode_boxes_formula() -> None:
    rng = np.random.default_rng(4)
    anchors = random_anchors(rng, 30)
    enc = rng.normal(size=(30, 6)).astype(np.float32)
    p = det._prepare_detection(make_ctx((1, 30, 6), (1, 30, 2), anchors,
                                        make_options(2, y_scale=7.0, x_scale=3.0, h_scale=2.5, w_scale=0.7)))
    got = det.decode_boxes(enc, p.anchors, p)
    assert got.shape == (30, 4) and got.dtype == np.float32
    ref = naive_postprocess(enc[None], np.ones((1, 30, 2), np.float32), anchors,
                            make_options(2, y_scale=7.0, x_scale=3.0, h_scale=2.5, w_scale=0.7,
                                         max_detections=30, nms_score_threshold=0.0, nms_iou_threshold=1.0))
    # every box is selected (all scores 1, IoU threshold 1), in box order
    np.testing.assert_array_equal(got, ref[0][0])


# ------------------------------------------------------------------- kernel vs naive reference
@pytest.mark.parametrize("regular", [False, True], ids=["fast", "regular"])
@pytest.mark.parametrize("background", [0, 1], ids=["nobg", "bg"])
@pytest.mark.parametrize("classes_per_det", [1, 2, 4])
@pytest.mark.parametrize("n,num_classes", [(1, 1), (7, 3), (60, 5)])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_kernel_matches_naive(regular, background, classes_per_det, n, num_classes, ties) -> None:
    rng = np.random.default_rng(n * 100 + num_classes * 10 + classes_per_det + 7 * background + 3 * ties)
    anchors = random_anchors(rng, n)
    enc = rng.normal(size=(1, n, 4)).astype(np.float32)
    scores = rng.uniform(size=(1, n, num_classes + background)).astype(np.float32)
    if ties:
        scores = (np.round(scores * 3) / 3).astype(np.float32)
    for md, dpc, thr, iou in [(5, 3, 0.3, 0.5), (12, 100, 0.0, 0.2), (3, 1, 0.6, 0.9)]:
        opts = make_options(num_classes, max_detections=md, max_classes_per_detection=classes_per_det,
                            detections_per_class=dpc, use_regular_nms=regular, nms_score_threshold=thr,
                            nms_iou_threshold=iou)
        ours = run_kernel(enc, scores, anchors, opts)
        check_shapes(ours, opts)
        assert_same(list(ours), naive_postprocess(enc, scores, anchors, opts))


def test_unused_slots_are_zero() -> None:
    rng = np.random.default_rng(5)
    enc, scores, anchors = rng.normal(size=(1, 8, 4)), rng.uniform(size=(1, 8, 3)), random_anchors(rng, 8)
    enc, scores = enc.astype(np.float32), scores.astype(np.float32)
    # fast: max_classes_per_detection (4) > num_classes (2) leaves 2 dummy slots per detection
    opts = make_options(2, max_detections=20, max_classes_per_detection=4, nms_score_threshold=0.0,
                        nms_iou_threshold=1.0)
    boxes, classes, sc, num = run_kernel(enc, scores, anchors, opts)
    assert num[0] == 8
    dummy = ~written_mask(opts, 8)
    assert dummy.sum() == 80 - 16
    assert not boxes[0][dummy].any() and not classes[0][dummy].any() and not sc[0][dummy].any()
    assert (sc[0][~dummy] > 0).all()
    # regular: only the first max_detections of max_detections * max_classes_per_detection slots
    opts = make_options(2, max_detections=3, max_classes_per_detection=2, use_regular_nms=True,
                        nms_score_threshold=0.0)
    boxes, classes, sc, num = run_kernel(enc, scores, anchors, opts)
    assert num[0] == 3 and boxes.shape == (1, 6, 4)
    assert not boxes[0, 3:].any() and not classes[0, 3:].any() and not sc[0, 3:].any()


def test_score_threshold_inclusive_iou_threshold_strict() -> None:
    anchors = np.array([[0.5, 0.5, 0.2, 0.2]] * 3 + [[0.1, 0.1, 0.1, 0.1]], np.float32)
    enc = np.zeros((1, 4, 4), np.float32)  # three identical boxes (IoU 1) and one apart
    scores = np.array([[[0.5], [0.75], [0.25], [0.5]]], np.float32)
    opts = make_options(1, max_detections=4, nms_score_threshold=0.5, nms_iou_threshold=1.0)
    _, _, sc, num = run_kernel(enc, scores, anchors, opts)
    # IoU 1 is not > 1: nothing suppressed; 0.5 >= 0.5 kept; ties keep box order (0 before 3)
    assert num[0] == 3
    np.testing.assert_array_equal(sc[0], [0.75, 0.5, 0.5, 0])
    opts["nms_iou_threshold"] = 0.99
    _, _, sc, num = run_kernel(enc, scores, anchors, opts)
    assert num[0] == 2
    np.testing.assert_array_equal(sc[0], [0.75, 0.5, 0, 0])


def test_degenerate_boxes_never_suppress() -> None:
    # zero-height anchors decode to zero-area boxes: their IoU is 0 with everything
    anchors = np.array([[0.5, 0.5, 0.0, 0.2]] * 3 + [[0.5, 0.5, 0.2, 0.2]] * 2, np.float32)
    enc = np.zeros((1, 5, 4), np.float32)
    scores = np.array([[[0.9], [0.8], [0.7], [0.6], [0.5]]], np.float32)
    for regular in (False, True):
        opts = make_options(1, max_detections=5, nms_score_threshold=0.0, nms_iou_threshold=0.1,
                            use_regular_nms=regular)
        ours = run_kernel(enc, scores, anchors, opts)
        assert ours[3][0] == 4  # the 3 degenerate boxes + the first of the 2 identical real ones
        assert_same(list(ours), naive_postprocess(enc, scores, anchors, opts))


def test_extreme_encodings() -> None:
    rng = np.random.default_rng(6)
    anchors = random_anchors(rng, 20)
    enc = (rng.normal(size=(1, 20, 4)) * 500).astype(np.float32)  # exp overflows to inf
    scores = rng.uniform(size=(1, 20, 2)).astype(np.float32)
    for regular in (False, True):
        opts = make_options(2, max_detections=6, nms_score_threshold=0.0, use_regular_nms=regular)
        assert_same(list(run_kernel(enc, scores, anchors, opts)), naive_postprocess(enc, scores, anchors, opts))


@pytest.mark.parametrize("regular", [False, True], ids=["fast", "regular"])
def test_litert_extreme_encodings(regular) -> None:
    """exp overflow: infinite and NaN box coordinates."""
    rng = np.random.default_rng(10 + regular)
    anchors = random_anchors(rng, 40)
    enc = (rng.normal(size=(1, 40, 4)) * 300).astype(np.float32)
    enc[0, ::3, 0] = 1e38  # infinite centres (y_scale 0.01)
    enc[0, ::2, 2] = 1e3  # infinite half heights: inf - inf gives NaN corners
    scores = rng.uniform(size=(1, 40, 3)).astype(np.float32)
    scores[0, :6] += 1  # make sure the NaN boxes (0 and 6 ...) are selected
    opts = make_options(3, max_detections=30, max_classes_per_detection=2, use_regular_nms=regular,
                        nms_score_threshold=0.1, nms_iou_threshold=0.4, y_scale=0.01)
    ours = check_litert_written(enc, scores, anchors, opts)
    assert np.isinf(ours[0]).any() and np.isnan(ours[0]).any()


@pytest.mark.parametrize("regular", [False, True], ids=["fast", "regular"])
def test_nms_blocks(monkeypatch, regular) -> None:
    """Tiny candidate blocks exercise the block-to-block filtering of greedy_nms."""
    monkeypatch.setattr(det, "_MIN_WINDOW", 1)
    monkeypatch.setattr(det, "_MAX_WINDOW", 3)
    rng = np.random.default_rng(7)
    enc, scores, anchors = grid_problem(rng, 3, 12, 3, 1, ties=False)
    for md in (1, 4, 30):
        opts = make_options(3, max_detections=md, max_classes_per_detection=2, nms_score_threshold=0.1,
                            nms_iou_threshold=0.3, use_regular_nms=regular)
        assert_same(list(run_kernel(enc, scores, anchors, opts)), naive_postprocess(enc, scores, anchors, opts))


def test_through_interpreter_matches_naive() -> None:
    rng = np.random.default_rng(8)
    enc, scores, anchors = grid_problem(rng, 2, 5, 4, 1, ties=True, extra_coords=2)
    for regular in (False, True):
        opts = make_options(4, max_detections=7, max_classes_per_detection=3, use_regular_nms=regular,
                            detections_per_class=2)
        ours = run_ours(OP, [enc, scores, Const(anchors)], custom_options=flexbuffers.Dumps(opts),
                        num_outputs=4)
        assert_same(ours, naive_postprocess(enc, scores, anchors, opts))


# ------------------------------------------------------------------------- against LiteRT
def check_litert(enc, scores, anchors, opts) -> None:
    """check_against_litert (all slots written by LiteRT), plus exact classes, scores and count."""
    ours, ref = check_against_litert(OP, [enc, scores, Const(anchors)], custom_options=flexbuffers.Dumps(opts),
                                     num_outputs=4)
    for j in (1, 2, 3):
        np.testing.assert_array_equal(ours[j], ref[j], err_msg=f"output {j}")


def check_litert_written(enc, scores, anchors, opts) -> list[np.ndarray]:
    """Compare only the slots LiteRT writes; ours must be zero elsewhere."""
    model, feeds = build_single_op(OP, [enc, scores, Const(anchors)], custom_options=flexbuffers.Dumps(opts),
                                   num_outputs=4)
    data = model.to_bytes()
    from calibrator_custom.model.graph import Model
    ours = run_model_ours(Model.from_bytes(data), feeds)
    ref = run_model_litert(data, feeds)
    check_shapes(ours, opts)
    assert [r.shape for r in ref] == [o.shape for o in ours]
    np.testing.assert_array_equal(ours[3], ref[3])
    mask = written_mask(opts, int(ref[3][0]))
    ob, rb = ours[0][0][mask], ref[0][0][mask]
    if np.isfinite(rb).all():
        assert_outputs_match([o[0][mask] for o in ours[:3]], [r[0][mask] for r in ref[:3]], what=OP)
    else:  # assert_outputs_match cannot compare infinities (inf - inf); same inf/NaN places, close elsewhere
        np.testing.assert_allclose(ob, rb, rtol=1e-6, atol=0, equal_nan=True)
    for j in (1, 2):
        np.testing.assert_array_equal(ours[j][0][mask], ref[j][0][mask], err_msg=f"output {j}")
    for o in ours[:3]:
        assert not o[0][~mask].any()
    return ours


@pytest.mark.parametrize("background", [0, 1], ids=["nobg", "bg"])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("n,num_classes,md,dpc,thr,iou", [
    (1, 1, 1, 100, 0.0, 0.5),
    (10, 3, 5, 2, 0.3, 0.5),
    (40, 4, 12, 100, 0.1, 0.3),
    (100, 6, 20, 3, 0.5, 0.7),
    (100, 2, 50, 40, 0.0, 1.0),
])
def test_litert_regular(background, ties, n, num_classes, md, dpc, thr, iou) -> None:
    rng = np.random.default_rng(n + 31 * num_classes + 7 * md + background + 2 * ties)
    anchors = random_anchors(rng, n)
    enc = rng.normal(size=(1, n, 4)).astype(np.float32)
    scores = rng.uniform(size=(1, n, num_classes + background)).astype(np.float32)
    if ties:
        scores = (np.round(scores * 4) / 4).astype(np.float32)
    opts = make_options(num_classes, max_detections=md, detections_per_class=dpc, use_regular_nms=True,
                        nms_score_threshold=thr, nms_iou_threshold=iou)
    check_litert(enc, scores, anchors, opts)


@pytest.mark.parametrize("background", [0, 1], ids=["nobg", "bg"])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("classes_per_det,num_classes", [(1, 1), (1, 4), (2, 3), (3, 3), (3, 6)])
def test_litert_fast(background, ties, classes_per_det, num_classes) -> None:
    """Grid problems where fast NMS fills all max_detections * max_classes_per_detection slots."""
    rng = np.random.default_rng(100 + 10 * classes_per_det + num_classes + 3 * background + ties)
    enc, scores, anchors = grid_problem(rng, 4, 6, num_classes, background, ties)
    for md, thr, iou in [(16, 0.5, 0.3), (10, 0.2, 0.6), (1, 0.0, 0.5)]:
        opts = make_options(num_classes, max_detections=md, max_classes_per_detection=classes_per_det,
                            nms_score_threshold=thr, nms_iou_threshold=iou)
        assert run_kernel(enc, scores, anchors, opts)[3][0] == md  # every slot is written
        check_litert(enc, scores, anchors, opts)


@pytest.mark.parametrize("regular", [False, True], ids=["fast", "regular"])
@pytest.mark.parametrize("classes_per_det", [1, 3, 5])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_litert_partially_written(regular, classes_per_det, ties) -> None:
    """Few detections (fast), classes_per_det > num_classes, regular NMS with classes_per_det > 1."""
    rng = np.random.default_rng(200 + 10 * classes_per_det + 2 * regular + ties)
    anchors = random_anchors(rng, 30, 0.2, 0.6)  # large boxes: heavy suppression
    enc = rng.normal(size=(1, 30, 4)).astype(np.float32)
    scores = rng.uniform(size=(1, 30, 4)).astype(np.float32)
    if ties:
        scores = (np.round(scores * 3) / 3).astype(np.float32)
    opts = make_options(3, max_detections=25, max_classes_per_detection=classes_per_det, use_regular_nms=regular,
                        detections_per_class=4, nms_score_threshold=0.2, nms_iou_threshold=0.3)
    ours = check_litert_written(enc, scores, anchors, opts)
    assert 0 < ours[3][0] < 25


@pytest.mark.parametrize("regular", [False, True], ids=["fast", "regular"])
def test_litert_blazeface_like(regular) -> None:
    """896 anchors (16x16x2 + 8x8x6 like BlazeFace), 16 encoding columns (keypoints ignored), 1 class."""
    rng = np.random.default_rng(300 + regular)
    centres = []
    for grid, per in ((16, 2), (8, 6)):
        c = (np.stack(np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij"), -1).reshape(-1, 2) + 0.5) / grid
        centres.append(np.repeat(c, per, axis=0))
    c = np.concatenate(centres)
    sizes = np.concatenate([np.full((512, 2), 0.1), np.full((384, 2), 0.25)])
    anchors = np.concatenate([c, sizes], 1).astype(np.float32)
    assert anchors.shape == (896, 4)
    enc = (rng.normal(size=(1, 896, 16)) * 2).astype(np.float32)
    scores = (1 / (1 + np.exp(-rng.normal(size=(1, 896, 1)) * 3))).astype(np.float32)
    opts = make_options(1, max_detections=100, use_regular_nms=regular, nms_score_threshold=0.5,
                        nms_iou_threshold=0.3, y_scale=128.0, x_scale=128.0, h_scale=128.0, w_scale=128.0)
    ours = check_litert_written(enc, scores, anchors, opts)
    assert ours[3][0] > 10


@pytest.mark.parametrize("regular", [False, True], ids=["fast", "regular"])
def test_litert_ssd_like(regular) -> None:
    """1917 anchors, 90 classes + background, max 100 detections."""
    rng = np.random.default_rng(400 + regular)
    anchors = random_anchors(rng, 1917, 0.02, 0.3)
    enc = rng.normal(size=(1, 1917, 4)).astype(np.float32)
    scores = rng.uniform(size=(1, 1917, 91)).astype(np.float32) ** 4
    opts = make_options(90, max_detections=100, use_regular_nms=regular, nms_score_threshold=0.3,
                        nms_iou_threshold=0.6, max_classes_per_detection=1)
    if regular:
        check_litert(enc, scores, anchors, opts)
    else:
        check_litert_written(enc, scores, anchors, opts)


def test_litert_float64_and_int_options() -> None:
    """FlexBuffer floats stored as float64 and integer-valued scales read like TFLite's AsFloat."""
    rng = np.random.default_rng(9)
    enc, scores, anchors = grid_problem(rng, 3, 4, 2, 1, ties=False)
    opts = make_options(2, max_detections=9, y_scale=10, x_scale=10, h_scale=5, w_scale=5,
                        nms_score_threshold=0.1 + 1e-12, nms_iou_threshold=0.45)
    check_litert(enc, scores, anchors, opts)
