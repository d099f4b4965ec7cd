"""The vendor's custom op TFLite_Detection_NMS: greedy non-max suppression of decoded boxes.

SigmaStar's post-processing ends a ``-c Detection`` model with this op (``sgs_chalk.TFLite_Detection_NMS``,
sgs_facts.md §4.3). Its inputs are already decoded corner boxes, one value per box in each input:

* **SSD mode** (6 inputs, ``input_confidence_idx`` < 0): ``[x1, y1, x2, y2, score, class]``, typically
  the four outputs of a box decoder and the two outputs of ``PostProcess_Max``; at most 24576 boxes.
* **YOLO mode** (7 inputs, ``input_confidence_idx`` >= 0): ``[x1, y1, x2, y2, confidence, score,
  class]`` (the chalk API calls the 7th argument ``max_score``; it is wired as the class input).

Which input is which comes from the FlexBuffer keys ``input_coordinate_x1/y1/x2/y2``,
``input_score_idx``, ``input_class_idx`` and ``input_confidence_idx`` (defaults: the chalk's layout
for 6 or 7 inputs). Each input holds N values in any shape (the chalk uses ``[1, N]``); x is the
horizontal coordinate. Outputs (positions from ``output_detection_boxes_idx``,
``output_detection_classes_idx``, ``output_detection_scores_idx``, ``output_num_detection_idx``,
``output_detection_boxes_index_idx``; defaults 0, 1, 2, 3 and 4 when there is a fifth output), all
float32, with D = ``max_detections``:

* boxes ``[1, D, 4]`` as ``[ymin, xmin, ymax, xmax] = [y1, x1, y2, x2]`` (the layout the vendor's
  simulator reads, §5.2: columns 0, 2 scale with the image height, 1, 3 with its width);
* classes ``[1, D]``, scores ``[1, D]``, the count ``[1]``, and optionally the index ``[1, D]`` of
  each selected box in the inputs. Slots after the count are zero.

Algorithm (greedy "fast" NMS, like TFLite_Detection_PostProcess with one class per detection):

1. Inputs are read as float32 (integer inputs are converted); the class is rounded to the nearest
   integer (``floor(c + 0.5)``), so a class that went through INT16 quantization comes back whole.
2. With ``clip`` non-zero (the default) the coordinates are clipped to [0, 1] before anything else;
   the clipped boxes are the ones compared and output.
3. YOLO mode first keeps the 4096 boxes of highest confidence (when there are more; stable
   descending sort, ties keep the lower box index), and outputs at most 400 detections.
4. Candidates are the boxes with ``score >= nms_score_threshold`` (float32 comparison), ordered by
   score descending with ties in box-index order.
5. Greedy suppression, class-agnostic: take the best remaining candidate, drop every later candidate
   whose IoU with it is ``> nms_iou_threshold``; IoU is computed in float32 as TFLite does and is 0
   when either box has an area <= 0 (such boxes never suppress nor get suppressed). Stop after D.

Choices the facts leave open, made here (each matches TFLite_Detection_PostProcess's fast NMS where
it has an equivalent): inclusive score threshold, strict IoU threshold, class-agnostic suppression
(``nms`` = 0, "fast nms", the only value the vendor scripts use; other values are refused as
unimplemented), tie order by box index, float32 IoU, zero-filled unused slots, rounding of the
class, the YOLO pre-selection on confidence and the 400 cap applying in YOLO mode only, and the
score (not the confidence) being thresholded and sorted in YOLO mode. ``num_classes``,
``bmax_score``, ``offline``, ``max_classes_per_detection``, ``detections_per_class`` and
``num_classes_with_background`` are accepted and not used; ``input_facecoordinate_idx`` must be -1
(face landmarks are not implemented).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UnsupportedOpError
from .detection import box_areas, greedy_nms
from .registry import OpContext, register

logger = logging.getLogger(__name__)

#: The vendor's limit on SSD-mode boxes (sgs_chalk refuses more).
SSD_MAX_BOXES = 24576
#: YOLO mode keeps this many boxes of highest confidence before NMS.
YOLO_PRESELECT = 4096
#: YOLO mode outputs at most this many detections.
YOLO_MAX_DETECTIONS = 400

#: sgs_chalk's defaults (float32 values as the chalk writes them)
DEFAULT_MAX_DETECTIONS = 100
DEFAULT_SCORE_THRESHOLD = 0.00499999989
DEFAULT_IOU_THRESHOLD = 0.449999988

_SSD_INPUTS = {"input_coordinate_x1": 0, "input_coordinate_y1": 1, "input_coordinate_x2": 2,
               "input_coordinate_y2": 3, "input_score_idx": 4, "input_class_idx": 5, "input_confidence_idx": -1}
_YOLO_INPUTS = {"input_coordinate_x1": 0, "input_coordinate_y1": 1, "input_coordinate_x2": 2,
                "input_coordinate_y2": 3, "input_confidence_idx": 4, "input_score_idx": 5, "input_class_idx": 6}
_OUTPUT_KEYS = ("output_detection_boxes_idx", "output_detection_classes_idx", "output_detection_scores_idx",
                "output_num_detection_idx", "output_detection_boxes_index_idx")
_IGNORED_KEYS = ("num_classes", "bmax_score", "offline", "max_classes_per_detection", "detections_per_class",
                 "num_classes_with_background")
_KNOWN_KEYS = frozenset(list(_SSD_INPUTS) + list(_OUTPUT_KEYS) + list(_IGNORED_KEYS) + [
    "input_facecoordinate_idx", "max_detections", "nms_score_threshold", "nms_iou_threshold", "nms", "clip"])


@dataclass(frozen=True)
class NmsParams:
    """Prepared TFLite_Detection_NMS: input positions, thresholds and output positions."""

    yolo: bool
    coords: tuple[int, int, int, int]  # input positions of x1, y1, x2, y2
    score: int
    label: int
    confidence: int  # -1 in SSD mode
    max_detections: int  # D, the size of the outputs
    max_selected: int  # D, or min(D, 400) in YOLO mode
    score_threshold: np.float32
    iou_threshold: np.float32
    clip: bool
    outputs: tuple[int, ...]  # output position of boxes, classes, scores, count (, index)


def _number(ctx: OpContext, opts: dict, key: str, default: float) -> float:
    value = opts.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ctx.error(f"custom option {key!r} must be a number, got {value!r}")
    return float(value)


def _integer(ctx: OpContext, opts: dict, key: str, default: int) -> int:
    value = _number(ctx, opts, key, default)
    if value != int(value):
        raise ctx.error(f"custom option {key!r} must be an integer, got {value!r}")
    return int(value)


def _prepare_nms(ctx: OpContext) -> NmsParams:
    """Parse the custom options and check the inputs and outputs they name."""
    if not isinstance(ctx.options, (dict, type(None))):
        raise ctx.error(f"custom options must be a FlexBuffer map, got {type(ctx.options).__name__}")
    opts: dict[str, Any] = dict(ctx.options or {})
    unknown = sorted(set(opts) - _KNOWN_KEYS)
    if unknown:
        logger.debug("TFLite_Detection_NMS ignores unknown custom options %s", unknown)
    n_in = len(ctx.inputs)
    if n_in not in (6, 7):
        raise ctx.error(f"has {n_in} inputs, expected 6 (SSD: x1, y1, x2, y2, score, class) or 7 "
                        "(YOLO: x1, y1, x2, y2, confidence, score, class)")
    defaults = _YOLO_INPUTS if n_in == 7 else _SSD_INPUTS
    pos = {k: _integer(ctx, opts, k, v) for k, v in defaults.items()}
    yolo = pos["input_confidence_idx"] >= 0
    want = 7 if yolo else 6
    if n_in != want:
        raise ctx.error(f"{'YOLO' if yolo else 'SSD'} mode (input_confidence_idx="
                        f"{pos['input_confidence_idx']}) takes {want} inputs, got {n_in}")
    used = [v for k, v in pos.items() if k != "input_confidence_idx" or yolo]
    if sorted(used) != list(range(n_in)):
        raise ctx.error(f"the input indices {pos} must name each of the {n_in} inputs exactly once")
    if _integer(ctx, opts, "input_facecoordinate_idx", -1) >= 0:
        raise UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: input_facecoordinate_idx >= 0 (face "
                                 "coordinates) is not implemented; set it to -1")
    nms_kind = _number(ctx, opts, "nms", 0.0)
    if nms_kind != 0.0:
        raise UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: nms={nms_kind:g} is not implemented; only "
                                 "nms=0 (the vendor's fast NMS, used by all its scripts) is")

    sizes = []
    for k, t in enumerate(ctx.inputs):
        if t is None:
            raise ctx.error(f"input {k} is missing")
        if not (np.issubdtype(np.dtype(t.dtype), np.floating) or np.issubdtype(np.dtype(t.dtype), np.integer)):
            raise ctx.error(f"input {k} {t.name!r} must be a float or integer tensor, got {np.dtype(t.dtype)}")
        sizes.append(int(np.prod(t.shape, dtype=np.int64)))
    if len(set(sizes)) != 1:
        raise ctx.error(f"every input must hold one value per box; the inputs hold {sizes} values "
                        f"(shapes {[list(t.shape) for t in ctx.inputs]})")
    if not yolo and sizes[0] > SSD_MAX_BOXES:
        raise ctx.error(f"SSD mode takes at most {SSD_MAX_BOXES} boxes (the vendor's limit), got {sizes[0]}")

    d = _integer(ctx, opts, "max_detections", DEFAULT_MAX_DETECTIONS)
    if d < 1:
        raise ctx.error(f"max_detections must be >= 1, got {d}")
    score_thr = np.float32(_number(ctx, opts, "nms_score_threshold", DEFAULT_SCORE_THRESHOLD))
    iou_thr = np.float32(_number(ctx, opts, "nms_iou_threshold", DEFAULT_IOU_THRESHOLD))
    if not 0.0 < iou_thr <= 1.0:
        raise ctx.error(f"nms_iou_threshold must be in (0, 1], got {float(iou_thr)}")
    if np.isnan(score_thr):
        raise ctx.error("nms_score_threshold must be a number, got NaN")

    n_out = len(ctx.outputs)
    if n_out not in (4, 5):
        raise ctx.error(f"has {n_out} outputs, expected 4 (boxes, classes, scores, count) or 5 (+ index)")
    out_pos = tuple(_integer(ctx, opts, k, j if j < 4 else (4 if n_out == 5 else -1))
                    for j, k in enumerate(_OUTPUT_KEYS))
    out_pos = out_pos if out_pos[4] >= 0 else out_pos[:4]
    if sorted(out_pos) != list(range(n_out)):
        raise ctx.error(f"the output indices {dict(zip(_OUTPUT_KEYS, out_pos))} must name each of the {n_out} "
                        "outputs exactly once (output_detection_boxes_index_idx = -1 without an index output)")
    shapes = ((1, d, 4), (1, d), (1, d), (1,), (1, d))
    for what, j, shape in zip(("boxes", "classes", "scores", "count", "index"), out_pos, shapes):
        got = tuple(ctx.outputs[j].shape)
        if got and got != shape:  # () while the model builder infers shapes
            raise ctx.error(f"output {j} ({what}) has shape {list(got)}, expected {list(shape)} "
                            f"for max_detections={d}")
    return NmsParams(
        yolo=yolo,
        coords=(pos["input_coordinate_x1"], pos["input_coordinate_y1"], pos["input_coordinate_x2"],
                pos["input_coordinate_y2"]),
        score=pos["input_score_idx"], label=pos["input_class_idx"], confidence=pos["input_confidence_idx"],
        max_detections=d, max_selected=min(d, YOLO_MAX_DETECTIONS) if yolo else d,
        score_threshold=score_thr, iou_threshold=iou_thr, clip=_number(ctx, opts, "clip", 1.0) != 0.0,
        outputs=out_pos)


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x).reshape(-1).astype(np.float32, copy=False)


def select_boxes(boxes: np.ndarray, scores: np.ndarray, confidence: np.ndarray | None, opt: NmsParams) -> np.ndarray:
    """Indices of the selected boxes (best first): YOLO pre-selection, score threshold, greedy NMS."""
    cand = np.arange(scores.size, dtype=np.intp)
    if confidence is not None and cand.size > YOLO_PRESELECT:
        cand = np.sort(np.argsort(-confidence, kind="stable")[:YOLO_PRESELECT])
    cand = cand[scores[cand] >= opt.score_threshold]
    order = cand[np.argsort(-scores[cand], kind="stable")]
    return greedy_nms(order, boxes, box_areas(boxes), opt.iou_threshold, opt.max_selected)


@register("TFLite_Detection_NMS", prepare=_prepare_nms)
def detection_nms(*inputs: np.ndarray, opt: NmsParams) -> tuple[np.ndarray, ...]:
    """(boxes [1,D,4] as [y1,x1,y2,x2], classes [1,D], scores [1,D], num [1] (, index [1,D])) = greedy NMS."""
    x1, y1, x2, y2 = (_flat(inputs[k]) for k in opt.coords)
    boxes = np.stack([y1, x1, y2, x2], axis=1)
    if opt.clip:
        np.clip(boxes, np.float32(0), np.float32(1), out=boxes)
    scores = _flat(inputs[opt.score])
    confidence = _flat(inputs[opt.confidence]) if opt.yolo else None
    selected = select_boxes(boxes, scores, confidence, opt)
    m = selected.size
    d = opt.max_detections
    out_boxes = np.zeros((1, d, 4), np.float32)
    out_classes = np.zeros((1, d), np.float32)
    out_scores = np.zeros((1, d), np.float32)
    out_index = np.zeros((1, d), np.float32)
    out_boxes[0, :m] = boxes[selected]
    out_classes[0, :m] = np.floor(_flat(inputs[opt.label])[selected] + np.float32(0.5))
    out_scores[0, :m] = scores[selected]
    out_index[0, :m] = selected
    values = (out_boxes, out_classes, out_scores, np.array([m], np.float32), out_index)
    result: list[np.ndarray] = [np.zeros(0)] * len(opt.outputs)
    for what, j in enumerate(opt.outputs):
        result[j] = values[what]
    return tuple(result)
