"""The custom op TFLite_Detection_PostProcess (SSD-style box decoding plus non-max suppression).

Semantics follow TFLite's ``tensorflow/lite/kernels/detection_postprocess.cc``:

* Decoding (center-size): with the box encoding ``(ty, tx, th, tw)`` and the anchor ``(ay, ax, ah, aw)``,
  ``yc = ty / y_scale * ah + ay``, ``xc = tx / x_scale * aw + ax``, ``hh = 0.5 * exp(th / h_scale) * ah``,
  ``hw = 0.5 * exp(tw / w_scale) * aw`` computed in float64 and rounded to float32, then
  ``box = (yc - hh, xc - hw, yc + hh, xc + hw)`` in float32.
* Single-class NMS: keep the scores ``>= nms_score_threshold``, order them by a stable descending
  sort (ties keep the lower box index first), then greedily select a box and drop every later
  candidate whose IoU with it is ``> nms_iou_threshold`` (IoU is 0 when either box has area <= 0).
* Fast NMS (``use_regular_nms`` false): every box keeps its ``min(max_classes_per_detection,
  num_classes)`` best classes; one class-agnostic NMS runs on each box's best score; a selected box
  fills ``max_classes_per_detection`` consecutive output slots (extra slots stay zero).  A box's
  classes are ordered like TFLite: the first maximum when one class is kept, else the order of GNU
  libstdc++'s ``std::partial_sort`` (heap based, not stable), which only differs on equal scores.
* Regular NMS: one NMS per class (at most ``min(detections_per_class, max_detections)`` boxes each);
  the union is ordered by score descending, ties by class index and then by selection order, and
  the first ``max_detections`` are output (the outputs still hold max_detections *
  max_classes_per_detection slots, as in TFLite).
* Class 0 of ``class_predictions`` is background (skipped) when it has ``num_classes + 1`` columns;
  output classes count from the first non-background column.  Unused output slots are zero.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .registry import OpContext, register

logger = logging.getLogger(__name__)

#: TFLite's default for ``detections_per_class`` when the key is absent.
DEFAULT_DETECTIONS_PER_CLASS = 100

_INT_KEYS = ("max_detections", "max_classes_per_detection", "num_classes")
_FLOAT_KEYS = ("nms_score_threshold", "nms_iou_threshold", "y_scale", "x_scale", "h_scale", "w_scale")
_KNOWN_KEYS = frozenset(_INT_KEYS + _FLOAT_KEYS + ("detections_per_class", "use_regular_nms"))


@dataclass(frozen=True, eq=False)
class DetectionParams:
    """Parsed custom options plus precomputed anchor values (float64 columns y, x, h, w)."""

    max_detections: int
    max_classes_per_detection: int
    detections_per_class: int
    use_regular_nms: bool
    nms_score_threshold: np.float32
    nms_iou_threshold: np.float32
    num_classes: int
    y_scale: float
    x_scale: float
    h_scale: float
    w_scale: float
    label_offset: int = 0
    anchors: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))


def _as_int(options: dict, key: str, default: int = 0) -> int:
    value = options.get(key)
    return default if value is None else int(value)


def _as_float32(options: dict, key: str) -> np.float32:
    value = options.get(key)
    # TFLite reads every float option with flexbuffers' AsFloat, i.e. rounds it to float32.
    return np.float32(0.0 if value is None else float(value))


def parse_options(options: dict | None) -> DetectionParams:
    """DetectionParams from the FlexBuffer map, with TFLite's defaults for absent keys.

    Absent keys read as 0 / 0.0 / False exactly like flexbuffers' null, except
    ``detections_per_class`` (default 100) and ``use_regular_nms`` (default False).
    """
    opts: dict[str, Any] = dict(options or {})
    unknown = sorted(set(opts) - _KNOWN_KEYS)
    if unknown:
        logger.debug("TFLite_Detection_PostProcess ignores unknown custom options %s", unknown)
    regular = opts.get("use_regular_nms")
    return DetectionParams(
        max_detections=_as_int(opts, "max_detections"),
        max_classes_per_detection=_as_int(opts, "max_classes_per_detection"),
        detections_per_class=_as_int(opts, "detections_per_class", DEFAULT_DETECTIONS_PER_CLASS),
        use_regular_nms=bool(regular) if regular is not None else False,
        nms_score_threshold=_as_float32(opts, "nms_score_threshold"),
        nms_iou_threshold=_as_float32(opts, "nms_iou_threshold"),
        num_classes=_as_int(opts, "num_classes"),
        y_scale=float(_as_float32(opts, "y_scale")),
        x_scale=float(_as_float32(opts, "x_scale")),
        h_scale=float(_as_float32(opts, "h_scale")),
        w_scale=float(_as_float32(opts, "w_scale")),
    )


def _prepare_detection(ctx: OpContext) -> DetectionParams:
    """Parse the custom options, check the three inputs / four outputs and precompute the anchors."""
    if not isinstance(ctx.options, (dict, type(None))):
        raise ctx.error(f"custom options must be a FlexBuffer map, got {type(ctx.options).__name__}")
    p = parse_options(ctx.options)
    ctx.require_inputs(3)
    if len(ctx.outputs) != 4:
        raise ctx.error(f"has {len(ctx.outputs)} outputs, expected 4")

    boxes, classes, anchors_info = ctx.inputs
    for what, t in (("box_encodings", boxes), ("class_predictions", classes), ("anchors", anchors_info)):
        if not np.issubdtype(np.dtype(t.dtype), np.floating):
            raise ctx.error(f"{what} must be a float tensor, got dtype {np.dtype(t.dtype)}")
    if len(boxes.shape) != 3 or boxes.shape[0] != 1 or boxes.shape[2] < 4:
        raise ctx.error(f"box_encodings must have shape [1, num_boxes, >=4], got {list(boxes.shape)}")
    num_boxes = boxes.shape[1]
    if len(classes.shape) != 3 or classes.shape[0] != 1 or classes.shape[1] != num_boxes:
        raise ctx.error(f"class_predictions must have shape [1, {num_boxes}, num_classes(+1)], "
                        f"got {list(classes.shape)}")
    if len(anchors_info.shape) != 2 or anchors_info.shape != (num_boxes, 4):
        raise ctx.error(f"anchors must have shape [{num_boxes}, 4], got {list(anchors_info.shape)}")
    anchors = ctx.require_constant(2, "anchors")

    if p.num_classes < 1:
        raise ctx.error(f"num_classes must be >= 1, got {p.num_classes}")
    label_offset = classes.shape[2] - p.num_classes
    if label_offset not in (0, 1):
        raise ctx.error(f"class_predictions has {classes.shape[2]} classes, expected num_classes "
                        f"({p.num_classes}) or num_classes + 1 (with background)")
    if p.max_detections < 0:
        raise ctx.error(f"max_detections must be >= 0, got {p.max_detections}")
    if not 0.0 < p.nms_iou_threshold <= 1.0:
        raise ctx.error(f"nms_iou_threshold must be in (0, 1], got {float(p.nms_iou_threshold)}")
    scales = {"y_scale": p.y_scale, "x_scale": p.x_scale, "h_scale": p.h_scale, "w_scale": p.w_scale}
    zero = [k for k, v in scales.items() if v == 0.0]
    if zero:
        raise ctx.error(f"box scales must be non-zero, got {', '.join(f'{k}=0' for k in zero)}")
    if p.use_regular_nms:
        per_class = min(p.detections_per_class, p.max_detections)
        if per_class <= 0:
            raise ctx.error(f"min(detections_per_class, max_detections) must be > 0, got "
                            f"detections_per_class={p.detections_per_class}, "
                            f"max_detections={p.max_detections}")
    if p.max_classes_per_detection <= 0:
        # Both modes: the outputs hold max_detections * max_classes_per_detection slots.
        raise ctx.error(f"max_classes_per_detection must be > 0, got {p.max_classes_per_detection}")

    a64 = np.asarray(anchors, dtype=np.float32).astype(np.float64)
    # TFLite rejects boxes with ymin > ymax or xmin > xmax; with a negative anchor height/width
    # every decoded box would be inverted.
    bad = np.flatnonzero((a64[:, 2] < 0) | (a64[:, 3] < 0))
    if bad.size:
        raise ctx.error(f"anchor heights/widths must be >= 0, anchor {int(bad[0])} is "
                        f"{a64[bad[0]].tolist()}")
    return DetectionParams(
        max_detections=p.max_detections,
        max_classes_per_detection=p.max_classes_per_detection,
        detections_per_class=p.detections_per_class,
        use_regular_nms=p.use_regular_nms,
        nms_score_threshold=p.nms_score_threshold,
        nms_iou_threshold=p.nms_iou_threshold,
        num_classes=p.num_classes,
        y_scale=p.y_scale, x_scale=p.x_scale, h_scale=p.h_scale, w_scale=p.w_scale,
        label_offset=label_offset,
        anchors=np.ascontiguousarray(a64),
    )


def decode_boxes(encodings: np.ndarray, anchors64: np.ndarray, p: DetectionParams) -> np.ndarray:
    """[N, 4] float32 corner boxes (ymin, xmin, ymax, xmax) from center-size encodings [N, >=4]."""
    e = np.asarray(encodings[:, :4], dtype=np.float32).astype(np.float64)
    ay, ax, ah, aw = anchors64.T
    with np.errstate(over="ignore", invalid="ignore"):
        yc = (e[:, 0] / p.y_scale * ah + ay).astype(np.float32)
        xc = (e[:, 1] / p.x_scale * aw + ax).astype(np.float32)
        hh = (0.5 * np.exp(e[:, 2] / p.h_scale) * ah).astype(np.float32)
        hw = (0.5 * np.exp(e[:, 3] / p.w_scale) * aw).astype(np.float32)
        out = np.empty((e.shape[0], 4), dtype=np.float32)
        np.subtract(yc, hh, out=out[:, 0])
        np.subtract(xc, hw, out=out[:, 1])
        np.add(yc, hh, out=out[:, 2])
        np.add(xc, hw, out=out[:, 3])
    return out


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Float32 areas (ymax - ymin) * (xmax - xmin) of [N, 4] corner boxes."""
    with np.errstate(invalid="ignore", over="ignore"):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def iou_exceeds(a_boxes: np.ndarray, a_areas: np.ndarray, b_boxes: np.ndarray, b_areas: np.ndarray,
                threshold: np.float32) -> np.ndarray:
    """[A, B] bool: IoU(a, b) > threshold, in float32 like TFLite (IoU is 0 if an area is <= 0)."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        ih = (np.minimum(a_boxes[:, None, 2], b_boxes[None, :, 2])
              - np.maximum(a_boxes[:, None, 0], b_boxes[None, :, 0]))
        iw = (np.minimum(a_boxes[:, None, 3], b_boxes[None, :, 3])
              - np.maximum(a_boxes[:, None, 1], b_boxes[None, :, 1]))
        np.maximum(ih, np.float32(0), out=ih)
        np.maximum(iw, np.float32(0), out=iw)
        inter = np.multiply(ih, iw, out=ih)
        union = a_areas[:, None] + b_areas[None, :]
        np.subtract(union, inter, out=union)
        over = np.greater(np.divide(inter, union, out=inter), threshold)
    over &= (a_areas > 0)[:, None]
    over &= (b_areas > 0)[None, :]
    return over


#: Candidates examined per block by greedy_nms (grows by doubling up to the cap).
_MIN_WINDOW = 64
_MAX_WINDOW = 1024


def greedy_nms(order: np.ndarray, boxes: np.ndarray, areas: np.ndarray, iou_threshold: np.float32,
               max_out: int) -> np.ndarray:
    """Indices selected by greedy NMS from candidates ``order`` (best first): a candidate is kept
    unless its IoU with an already kept box exceeds the threshold; stops after ``max_out``.

    Candidates are examined in blocks: a block is first filtered against the boxes kept so far,
    then resolved with its own IoU matrix; later blocks are only looked at if more boxes are needed.
    """
    selected: list[int] = []
    start = 0
    window = max(2 * max_out, _MIN_WINDOW)
    while start < order.size and len(selected) < max_out:
        cand = order[start:start + window]
        start += cand.size
        window = min(2 * window, _MAX_WINDOW)
        if selected:
            kept = np.asarray(selected, dtype=np.intp)
            survive = ~iou_exceeds(boxes[kept], areas[kept], boxes[cand], areas[cand],
                                   iou_threshold).any(axis=0)
            cand = cand[survive]
            if cand.size == 0:
                continue
        cb, ca = boxes[cand], areas[cand]
        keeps = ~iou_exceeds(cb, ca, cb, ca, iou_threshold)
        alive = np.ones(cand.size, dtype=bool)
        for r in range(cand.size):
            if alive[r]:
                selected.append(int(cand[r]))
                if len(selected) == max_out:
                    break
                alive &= keeps[r]
    return np.asarray(selected, dtype=np.intp)


def nms_single_class(scores: np.ndarray, boxes: np.ndarray, areas: np.ndarray,
                     score_threshold: np.float32, iou_threshold: np.float32, max_out: int) -> np.ndarray:
    """Box indices kept by greedy NMS: scores >= threshold, stable descending order, IoU > thr drops."""
    keep = np.flatnonzero(scores >= score_threshold)
    if keep.size == 0 or max_out <= 0:
        return np.zeros(0, dtype=np.intp)
    order = keep[np.argsort(-scores[keep], kind="stable")]
    return greedy_nms(order, boxes, areas, iou_threshold, max_out)


def _sift_down(heap: list[int], hole: int, length: int, item: int, before) -> None:
    """Put ``item`` into ``heap[:length]`` starting at ``hole``: the larger child (per ``before``)
    moves up until the bottom, then ``item`` bubbles back up (the libstdc++ ``__adjust_heap`` order)."""
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * child + 2
        if before(heap[child], heap[child - 1]):
            child -= 1
        heap[hole] = heap[child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * child + 2
        heap[hole] = heap[child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and before(heap[parent], item):
        heap[hole] = heap[parent]
        hole = parent
        parent = (hole - 1) // 2
    heap[hole] = item


def heap_partial_argsort(values: np.ndarray, k: int) -> list[int]:
    """The first ``k`` indices of a descending heap-select + heap-sort partial argsort of ``values``.

    TFLite orders a box's classes with ``std::partial_sort`` (not stable); on equal scores its order
    is that of the GNU libstdc++ algorithm, which this reproduces: build a heap of the first ``k``
    indices (worst score on top), replace the top by each later index with a strictly better score,
    then repeatedly move the top behind the shrinking heap.  Only used for rows with tied scores.
    """
    v = values.tolist()

    def before(i: int, j: int) -> bool:
        return v[i] > v[j]

    heap = list(range(len(v)))
    if k >= 2:
        for parent in range((k - 2) // 2, -1, -1):
            _sift_down(heap, parent, k, heap[parent], before)
    for i in range(k, len(v)):
        if before(heap[i], heap[0]):
            item = heap[i]
            heap[i] = heap[0]
            _sift_down(heap, 0, k, item, before)
    for last in range(k - 1, 0, -1):
        item = heap[last]
        heap[last] = heap[0]
        _sift_down(heap, 0, last, item, before)
    return heap[:k]


@register("TFLite_Detection_PostProcess", prepare=_prepare_detection)
def detection_postprocess(box_encodings: np.ndarray, class_predictions: np.ndarray,
                          anchors: np.ndarray, *, opt: DetectionParams
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(boxes [1,D,4], classes [1,D], scores [1,D], num [1]) = NMS(decode(box_encodings, anchors), scores)."""
    del anchors  # a constant: prepare already converted it (opt.anchors)
    boxes = decode_boxes(box_encodings[0], opt.anchors, opt)
    areas = box_areas(boxes)
    scores = np.asarray(class_predictions[0, :, opt.label_offset:], dtype=np.float32)
    if opt.use_regular_nms:
        return _regular_nms(boxes, areas, scores, opt)
    return _fast_nms(boxes, areas, scores, opt)


def _fast_nms(boxes: np.ndarray, areas: np.ndarray, scores: np.ndarray, opt: DetectionParams
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Class-agnostic NMS on each box's best class score; the top-k classes of a box share its box."""
    per_det = opt.max_classes_per_detection
    k = min(per_det, opt.num_classes)
    n = scores.shape[0]
    best = np.argmax(scores, axis=1) if n else np.zeros(0, dtype=np.intp)  # first maximum
    best_scores = scores[np.arange(n), best]
    selected = nms_single_class(best_scores, boxes, areas, opt.nms_score_threshold,
                                opt.nms_iou_threshold, opt.max_detections)
    total = opt.max_detections * per_det
    out_boxes = np.zeros((total, 4), dtype=np.float32)
    out_classes = np.zeros((opt.max_detections, per_det), dtype=np.float32)
    out_scores = np.zeros((opt.max_detections, per_det), dtype=np.float32)
    m = selected.size
    if m:
        # The class order only matters for the selected boxes.
        sel_scores = scores[selected]
        if k == 1:
            sel_top = best[selected][:, None]
        else:
            sel_top = _top_classes(sel_scores, k)
        out_boxes.reshape(opt.max_detections, per_det, 4)[:m, :k] = boxes[selected][:, None, :]
        out_classes[:m, :k] = sel_top
        out_scores[:m, :k] = np.take_along_axis(sel_scores, sel_top, axis=1)
    return (out_boxes[None], out_classes.reshape(1, total), out_scores.reshape(1, total),
            np.array([m], dtype=np.float32))


def _top_classes(scores: np.ndarray, k: int) -> np.ndarray:
    """[rows, k] indices of each row's k best scores in TFLite's order: descending, and on ties
    (equal scores within the first k+1 ranks) the order of std::partial_sort."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k + 1]
    ranked = np.take_along_axis(scores, top, axis=1)
    top = np.ascontiguousarray(top[:, :k])
    for r in np.flatnonzero((ranked[:, 1:] == ranked[:, :-1]).any(axis=1)):
        top[r] = heap_partial_argsort(scores[r], k)
    return top


def _regular_nms(boxes: np.ndarray, areas: np.ndarray, scores: np.ndarray, opt: DetectionParams
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class NMS, then the best max_detections of all classes (ties: class, then selection order)."""
    per_class = min(opt.detections_per_class, opt.max_detections)
    # Only classes with at least one score above the threshold can select anything.
    live = np.flatnonzero((scores >= opt.nms_score_threshold).any(axis=0))
    sel_boxes: list[np.ndarray] = []
    sel_classes: list[np.ndarray] = []
    for c in live:
        column = np.ascontiguousarray(scores[:, c])
        chosen = nms_single_class(column, boxes, areas, opt.nms_score_threshold,
                                  opt.nms_iou_threshold, per_class)
        sel_boxes.append(chosen)
        sel_classes.append(np.full(chosen.size, c, dtype=np.intp))
    d = opt.max_detections
    # TFLite sizes the outputs max_detections * max_classes_per_detection in both modes; regular
    # NMS only fills the first max_detections slots.
    total = d * opt.max_classes_per_detection
    out_boxes = np.zeros((total, 4), dtype=np.float32)
    out_classes = np.zeros(total, dtype=np.float32)
    out_scores = np.zeros(total, dtype=np.float32)
    m = 0
    if sel_boxes:
        box_idx = np.concatenate(sel_boxes)
        cls_idx = np.concatenate(sel_classes)
        sel_scores = scores[box_idx, cls_idx]
        # Concatenated in class order, each class in selection order: a stable descending sort gives
        # TFLite's merge order (ties keep the earlier class, then the earlier selection).
        order = np.argsort(-sel_scores, kind="stable")[:d]
        m = order.size
        out_boxes[:m] = boxes[box_idx[order]]
        out_classes[:m] = cls_idx[order]
        out_scores[:m] = sel_scores[order]
    return out_boxes[None], out_classes[None], out_scores[None], np.array([m], dtype=np.float32)
