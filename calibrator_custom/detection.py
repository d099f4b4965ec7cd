"""Turn a raw SSD detector into a ``-c Detection`` model: anchors and an appended post-process.

    >>> from calibrator_custom.detection import face_detection_postprocess
    >>> face_detection_postprocess("face_detection_short_range.tflite",
    ...                            output_path="face_detection_float.sim")

A raw SSD detector (MediaPipe's BlazeFace, palm and pose detectors) outputs per-anchor box
regressions and class logits; the vendor's ``simulator.py -c Detection`` (and
``float_simulator(...).is_detection()``) wants a model that ends in a detection post-process whose
outputs are the model's outputs. :func:`append_ssd_postprocess` appends one:

* ``kind="mediapipe"`` (default): MediaPipe's decoding written with ordinary ops, then the vendor's
  ``TFLite_Detection_NMS`` in SSD mode. MediaPipe decodes LINEARLY (``TensorsToDetectionsCalculator``
  without ``apply_exponential_on_box_size``)::

      x_center = x / x_scale * anchor_w + anchor_x      w = w / w_scale * anchor_w
      y_center = y / y_scale * anchor_h + anchor_y      h = h / h_scale * anchor_h
      (xmin, ymin, xmax, ymax) = (x_center - w / 2, y_center - h / 2, x_center + w / 2, y_center + h / 2)

  which the graph computes as GATHER (the x, y, w, h columns) -> DIV (scales) -> MUL (anchor sizes;
  left out when every anchor is 1 x 1, MediaPipe's ``fixed_anchor_size``) -> ADD (anchor centres)
  -> GATHER / MUL (+-0.5) / ADD (corners) -> UNPACK (x1, y1, x2, y2). Every step is the same float32
  operation MediaPipe performs (``a - b / 2`` is ``a + b * -0.5`` exactly), so the float model's
  boxes are bit-identical to MediaPipe's CPU decoding. Scores: LOGISTIC of the logits (MediaPipe's
  ``sigmoid_score``; its clipping of logits to +-100 is left out: it only changes scores below 4e-44);
  with several classes REDUCE_MAX of the logits and ARG_MAX for the class (the sigmoid is monotonic,
  so this is MediaPipe's best class and score, except when the sigmoid rounds two different logits
  to the same float32 score, where MediaPipe keeps the first class and ARG_MAX the larger logit).
* ``kind="tflite"``: TFLite's ``TFLite_Detection_PostProcess`` (EXPONENTIAL decoding of w and h,
  ``h = exp(th / h_scale) * anchor_h``, the TF Object Detection API convention) with fast NMS.

Differences from the MediaPipe graph: the NMS is the vendor's greedy hard NMS (the best box of an
overlapping group is kept as it is; MediaPipe's face graph uses WEIGHTED NMS, which averages the
group's boxes), boxes with a negative width or height are not dropped, and keypoints are not output.

Outputs (the vendor's ``TFLite_Detection_NMS`` layout, as ``simulator.py -c Detection`` reads it;
D = ``max_detections``): ``detectionBoxes`` [1, D, 4] float32 ``[ymin, xmin, ymax, xmax]``
normalised to the model input (so also to the original image when preprocessing stretches it),
``detectionClasses`` [1, D] (0-based), ``detectionScores`` [1, D], ``numDetections`` [1], and with
``with_index=True`` ``detectionIndex`` [1, D] (the anchor of each detection). Slots after
``numDetections`` are zero.

In a fixed model (``calibrator`` + ``pipeline.convert.convert``) the decoding ops are ordinary INT16
ops like the rest of the network, and the NMS (or TFLite_Detection_PostProcess) runs in FLOAT on
their dequantized values (``fixed/kernels/detection_nms.py``); its outputs stay float32. See
docs/detection.md.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from flatbuffers import flexbuffers

from .errors import ModelError
from .model import schema
from .model.graph import Buffer, Model, Operator, OperatorCode, Tensor, load_model
from .model.options import make_options

log = logging.getLogger(__name__)

KINDS = ("mediapipe", "tflite")
BOX_FORMATS = ("xywh", "yxhw")
#: output tensor names of the appended post-process (the vendor's sgs_chalk names)
OUTPUT_NAMES = ("detectionBoxes", "detectionClasses", "detectionScores", "numDetections", "detectionIndex")


# ---------------------------------------------------------------------------------------------- anchors
def _calculate_scale(min_scale: np.float32, max_scale: np.float32, stride_index: int, num_strides: int
                     ) -> np.float32:
    """MediaPipe's CalculateScale: float32 operands, the interpolation in double, rounded to float32."""
    if num_strides == 1:
        return np.float32((min_scale + max_scale) * np.float32(0.5))
    step = float(max_scale - min_scale) * 1.0 * stride_index / float(np.float32(num_strides - 1.0))
    return np.float32(float(min_scale) + step)


def ssd_anchors(*, num_layers: int, min_scale: float, max_scale: float, input_size_height: int,
                input_size_width: int, strides: Sequence[int], aspect_ratios: Sequence[float] = (1.0,),
                anchor_offset_x: float = 0.5, anchor_offset_y: float = 0.5,
                feature_map_height: Sequence[int] = (), feature_map_width: Sequence[int] = (),
                reduce_boxes_in_lowest_layer: bool = False, interpolated_scale_aspect_ratio: float = 1.0,
                fixed_anchor_size: bool = False) -> np.ndarray:
    """SSD anchors exactly as MediaPipe's ``SsdAnchorsCalculator`` makes them (non-multiscale mode).

    Arguments are the fields of ``SsdAnchorsCalculatorOptions`` (same names and defaults). Layers with
    equal consecutive strides share one feature map; per layer, each aspect ratio gets the layer's
    scale ``min_scale + (max_scale - min_scale) * i / (num_strides - 1)``, plus (when
    ``interpolated_scale_aspect_ratio > 0``) one anchor of scale ``sqrt(scale_i * scale_{i+1})``
    (``scale_{last+1} = 1``); ``reduce_boxes_in_lowest_layer`` gives layer 0 the ratios (1, 2, 0.5)
    with scales (0.1, scale, scale). Anchors run over the feature map row by row, then per
    (ratio, scale); centres are ``((x + offset_x) / width, (y + offset_y) / height)`` and sizes
    ``(scale / sqrt(ratio), scale * sqrt(ratio))``, or 1 x 1 with ``fixed_anchor_size``. Arithmetic
    is float32 like the C++ (the scale interpolation in double), so the values are bit-identical.

    Returns:
        float32 [num_anchors, 4] with columns (y_center, x_center, h, w): the layout of
        TFLite_Detection_PostProcess's anchor tensor.
    """
    strides = [int(s) for s in strides]
    fm_h, fm_w = [int(v) for v in feature_map_height], [int(v) for v in feature_map_width]
    if fm_h and (len(fm_h) != num_layers or len(fm_w) != num_layers):
        raise ModelError(f"ssd_anchors: feature_map_height/width need {num_layers} values each, got "
                         f"{len(fm_h)} and {len(fm_w)}")
    if len(strides) != num_layers:  # also with feature maps: layers of equal stride share anchors
        raise ModelError(f"ssd_anchors: strides needs num_layers={num_layers} values, got {len(strides)}")
    if num_layers < 1 or any(s < 1 for s in strides):
        raise ModelError(f"ssd_anchors: need num_layers >= 1 and strides >= 1, got {num_layers}, {strides}")
    lo, hi = np.float32(min_scale), np.float32(max_scale)
    off_x, off_y = np.float32(anchor_offset_x), np.float32(anchor_offset_y)
    interp = np.float32(interpolated_scale_aspect_ratio)
    n_strides = len(strides)
    out: list[np.ndarray] = []
    layer = 0
    while layer < num_layers:
        ratios: list[np.float32] = []
        scales: list[np.float32] = []
        last = layer
        while last < n_strides and strides[last] == strides[layer]:
            scale = _calculate_scale(lo, hi, last, n_strides)
            if last == 0 and reduce_boxes_in_lowest_layer:
                ratios += [np.float32(1.0), np.float32(2.0), np.float32(0.5)]
                scales += [np.float32(0.1), scale, scale]
            else:
                for r in aspect_ratios:
                    ratios.append(np.float32(r))
                    scales.append(scale)
                if interp > 0:
                    nxt = (np.float32(1.0) if last == n_strides - 1
                           else _calculate_scale(lo, hi, last + 1, n_strides))
                    scales.append(np.sqrt(np.float32(scale * nxt)))
                    ratios.append(interp)
            last += 1
        roots = [np.sqrt(r) for r in ratios]
        heights = np.array([s / q for s, q in zip(scales, roots)], np.float32)
        widths = np.array([s * q for s, q in zip(scales, roots)], np.float32)
        if fm_h:
            h, w = fm_h[layer], fm_w[layer]
        else:
            h = math.ceil(np.float32(input_size_height) / np.float32(strides[layer]))
            w = math.ceil(np.float32(input_size_width) / np.float32(strides[layer]))
        ys = (np.arange(h, dtype=np.float32) + off_y) * np.float32(1.0) / np.float32(h)
        xs = (np.arange(w, dtype=np.float32) + off_x) * np.float32(1.0) / np.float32(w)
        k = len(ratios)
        a = np.empty((h, w, k, 4), np.float32)
        a[..., 0] = ys[:, None, None]
        a[..., 1] = xs[None, :, None]
        a[..., 2] = 1.0 if fixed_anchor_size else heights
        a[..., 3] = 1.0 if fixed_anchor_size else widths
        out.append(a.reshape(-1, 4))
        layer = last
    return np.concatenate(out, axis=0)


#: MediaPipe's face_detection_short_range graph (face_detection_short_range.pbtxt + face_detection.pbtxt)
FACE_SHORT_RANGE_ANCHORS = dict(num_layers=4, min_scale=0.1484375, max_scale=0.75, input_size_height=128,
                                input_size_width=128, anchor_offset_x=0.5, anchor_offset_y=0.5,
                                strides=(8, 16, 16, 16), aspect_ratios=(1.0,), fixed_anchor_size=True,
                                interpolated_scale_aspect_ratio=1.0)
#: its TensorsToDetections / NonMaxSuppression options
FACE_SHORT_RANGE_DECODE = dict(box_format="xywh", box_coord_offset=0, scales=(128.0, 128.0, 128.0, 128.0),
                               score_threshold=0.5, iou_threshold=0.3)


# -------------------------------------------------------------------------------------- graph editing
class _Appender:
    """Appends constants, tensors and ops to the main subgraph of a copy of a model."""

    def __init__(self, model: Model):
        self.model = model.copy()
        self.graph = self.model.main
        self.names = {t.name for t in self.graph.tensors}

    def _name(self, base: str) -> str:
        name, k = base, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def tensor(self, name: str, shape: Sequence[int], dtype: str = "FLOAT32") -> int:
        self.graph.tensors.append(Tensor(self._name(name), tuple(int(d) for d in shape), dtype))
        return len(self.graph.tensors) - 1

    def const(self, name: str, value: np.ndarray) -> int:
        arr = np.ascontiguousarray(value)
        dtype = {np.dtype(np.float32): "FLOAT32", np.dtype(np.int32): "INT32"}[arr.dtype]
        self.model.buffers.append(Buffer(arr.tobytes()))
        self.graph.tensors.append(Tensor(self._name(name), arr.shape, dtype, len(self.model.buffers) - 1))
        return len(self.graph.tensors) - 1

    def _opcode(self, op_name: str) -> int:
        builtin = op_name if op_name in schema.ENUMS["BuiltinOperator"] else "CUSTOM"
        custom = None if builtin != "CUSTOM" else op_name
        for k, c in enumerate(self.model.operator_codes):
            if c.builtin_code == builtin and c.custom_code == custom:
                return k
        dep = min(schema.ENUMS["BuiltinOperator"][builtin], 127)
        self.model.operator_codes.append(OperatorCode(builtin, custom, 1, dep))
        return len(self.model.operator_codes) - 1

    def op(self, op_name: str, inputs: Sequence[int], outputs: Sequence[tuple], options: dict | None = None,
           custom: dict | None = None) -> list[int]:
        """Append ``op_name`` reading ``inputs``; ``outputs`` = (name, shape[, dtype]) of each new tensor."""
        outs = [self.tensor(*o) for o in outputs]
        opt = make_options(op_name, options) if custom is None else None
        raw = bytes(flexbuffers.Dumps(custom)) if custom is not None else None
        self.graph.operators.append(Operator(self._opcode(op_name), tuple(inputs), tuple(outs), opt, raw))
        return outs

    def finish(self, outputs: Sequence[int]) -> Model:
        self.graph.outputs = tuple(outputs)
        self.model.signature_defs = None  # they name the replaced outputs
        self.model.validate()
        return self.model


def _output_index(g, which: str | int, what: str) -> int:
    names = [g.tensors[i].name for i in g.outputs]
    if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
        if not 0 <= which < len(names):
            raise ModelError(f"{what}={which} is out of range: the model has {len(names)} outputs {names}")
        return g.outputs[which]
    if which not in names:
        raise ModelError(f"{what}={which!r} is not an output of the model; outputs: {names}")
    return g.outputs[names.index(which)]


@dataclass(frozen=True)
class _Raw:
    boxes: int  # tensor index of the regressors [1, N, K]
    scores: int  # tensor index of the class logits/scores [1, N, C]
    n: int
    k: int
    c: int


def _raw_outputs(g, anchors: np.ndarray, boxes_output, scores_output, box_coord_offset: int) -> _Raw:
    bi, si = _output_index(g, boxes_output, "boxes_output"), _output_index(g, scores_output, "scores_output")
    bt, st = g.tensors[bi], g.tensors[si]
    for t in (bt, st):
        if t.dtype != "FLOAT32" or len(t.shape) != 3 or t.shape[0] != 1:
            raise ModelError(f"output {t.name!r} must be a float32 [1, num_anchors, values] tensor, got "
                             f"{t.dtype} {list(t.shape)}")
    n = bt.shape[1]
    if st.shape[1] != n:
        raise ModelError(f"boxes output {bt.name!r} has {n} anchors but scores output {st.name!r} has {st.shape[1]}")
    if anchors.shape != (n, 4):
        raise ModelError(f"anchors must have shape [{n}, 4] (y_center, x_center, h, w) for {bt.name!r}, got "
                         f"{list(anchors.shape)}")
    if not 0 <= box_coord_offset <= bt.shape[2] - 4:
        raise ModelError(f"box_coord_offset={box_coord_offset} leaves no 4 box values in the {bt.shape[2]} "
                         f"values per anchor of {bt.name!r}")
    return _Raw(bi, si, n, bt.shape[2], st.shape[2])


def _input_size(g) -> tuple[int, int]:
    shape = g.tensors[g.inputs[0]].shape
    if len(shape) != 4:
        raise ModelError(f"cannot infer the input size from input shape {list(shape)}; pass scales=")
    return int(shape[1]), int(shape[2])  # NHWC


# ---------------------------------------------------------------------------------------- post-process
def append_ssd_postprocess(model: Model | str | os.PathLike, anchors: np.ndarray, *,
                           boxes_output: str | int = 0, scores_output: str | int = 1, kind: str = "mediapipe",
                           box_format: str = "xywh", box_coord_offset: int = 0,
                           scales: Sequence[float] | None = None, sigmoid_scores: bool = True,
                           score_threshold: float = 0.5, iou_threshold: float = 0.3, max_detections: int = 100,
                           clip: bool = False, with_index: bool = False,
                           output_path: str | os.PathLike | None = None) -> Model:
    """Append an SSD post-process to a float model; the result's outputs are the detections.

    Args:
        model: a float model (path or :class:`Model`) with a box-regression output [1, N, K] and a
            class-score output [1, N, C].
        anchors: float [N, 4] (y_center, x_center, h, w), e.g. :func:`ssd_anchors`.
        boxes_output, scores_output: those two outputs, by name or output position.
        kind: ``"mediapipe"`` (linear decoding + the vendor's TFLite_Detection_NMS) or ``"tflite"``
            (TFLite_Detection_PostProcess, exponential decoding of w and h).
        box_format: the order of the 4 box values starting at ``box_coord_offset``: ``"xywh"``
            (MediaPipe's ``reverse_output_order``) or ``"yxhw"`` (TFLite's order).
        scales: (x_scale, y_scale, w_scale, h_scale); default the input width/height (MediaPipe's
            convention) for ``"mediapipe"``, (10, 10, 5, 5) for ``"tflite"``.
        sigmoid_scores: apply a LOGISTIC to the scores (they are logits).
        score_threshold: keep detections with score >= this. iou_threshold: suppress IoU > this.
        max_detections: D, the number of output slots.
        clip: clip box coordinates to [0, 1] before NMS (the vendor op's ``clip``; MediaPipe does not).
        with_index: add a fifth output, the anchor index of each detection (``"mediapipe"`` only).
        output_path: also save the model there (atomically).

    Returns:
        the new model: a ``-c Detection`` model (``float_simulator(m).is_detection()`` is True).
    """
    if kind not in KINDS:
        raise ModelError(f"kind={kind!r} is not one of {', '.join(KINDS)}")
    if box_format not in BOX_FORMATS:
        raise ModelError(f"box_format={box_format!r} is not one of {', '.join(BOX_FORMATS)}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ModelError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if int(max_detections) < 1:
        raise ModelError(f"max_detections must be >= 1, got {max_detections}")
    if with_index and kind != "mediapipe":
        raise ModelError("with_index=True needs kind='mediapipe' (TFLite_Detection_PostProcess has no index output)")
    m = model if isinstance(model, Model) else load_model(model)
    anchors = np.asarray(anchors, np.float32)
    raw = _raw_outputs(m.main, anchors, boxes_output, scores_output, int(box_coord_offset))
    if scales is None:
        h, w = _input_size(m.main)
        scales = (w, h, w, h) if kind == "mediapipe" else (10.0, 10.0, 5.0, 5.0)
    scales = tuple(float(np.float32(s)) for s in scales)
    if len(scales) != 4 or any(s == 0 or not math.isfinite(s) for s in scales):
        raise ModelError(f"scales must be 4 finite non-zero numbers (x, y, w, h), got {scales}")
    ap = _Appender(m)
    build = _mediapipe if kind == "mediapipe" else _tflite
    outs = build(ap, raw, anchors, box_format, int(box_coord_offset), scales, sigmoid_scores,
                 float(score_threshold), float(iou_threshold), int(max_detections), clip, with_index)
    result = ap.finish(outs)
    log.info("appended a %s post-process with %d anchors (%d detections max)", kind, raw.n, max_detections)
    if output_path is not None:
        result.save(output_path)
    return result


def _columns(box_format: str, offset: int, order: str) -> np.ndarray:
    """int32 indices of the box values in ``order`` ('xywh' or 'yxhw') within each anchor's values."""
    return np.array([offset + box_format.index(ch) for ch in order], np.int32)


def _scores(ap: _Appender, raw: _Raw, sigmoid: bool) -> tuple[int, int]:
    """(score [1, N], class [1, N]) tensors: the best class's (sigmoid) score and its index."""
    n = raw.n
    if raw.c == 1:
        s = ap.op("RESHAPE", [raw.scores, ap.const("postprocess/score_shape", np.array([1, n], np.int32))],
                  [("postprocess/score_logit", (1, n))], {"new_shape": [1, n]})[0]
        cls = ap.const("postprocess/class", np.zeros((1, n), np.float32))
    else:
        axis = ap.const("postprocess/class_axis", np.array([2], np.int32))
        s = ap.op("REDUCE_MAX", [raw.scores, axis], [("postprocess/score_logit", (1, n))], {"keep_dims": False})[0]
        cls = ap.op("ARG_MAX", [raw.scores, ap.const("postprocess/argmax_axis", np.array([2], np.int32))],
                    [("postprocess/class", (1, n), "INT32")], {"output_type": "INT32"})[0]
    if sigmoid:
        s = ap.op("LOGISTIC", [s], [("postprocess/score", (1, n))])[0]
    return s, cls


def _mediapipe(ap: _Appender, raw: _Raw, anchors: np.ndarray, box_format: str, offset: int,
               scales: tuple[float, ...], sigmoid: bool, score_threshold: float, iou_threshold: float,
               max_detections: int, clip: bool, with_index: bool) -> list[int]:
    n, d = raw.n, max_detections
    shape = (1, n, 4)
    gather = {"axis": 2, "batch_dims": 0}
    xywh = ap.op("GATHER", [raw.boxes, ap.const("postprocess/box_columns", _columns(box_format, offset, "xywh"))],
                 [("postprocess/box_xywh", shape)], gather)[0]
    t = ap.op("DIV", [xywh, ap.const("postprocess/box_scales", np.array(scales, np.float32))],
              [("postprocess/box_scaled", shape)], {})[0]
    ay, ax, ah, aw = anchors.T
    if not (np.all(aw == 1) and np.all(ah == 1)):
        sizes = np.stack([aw, ah, aw, ah], axis=1)[None].astype(np.float32)
        t = ap.op("MUL", [t, ap.const("postprocess/anchor_sizes", sizes)], [("postprocess/box_sized", shape)], {})[0]
    centres = np.stack([ax, ay, np.zeros(n), np.zeros(n)], axis=1)[None].astype(np.float32)
    t = ap.op("ADD", [t, ap.const("postprocess/anchor_centres", centres)], [("postprocess/box_decoded", shape)], {})[0]
    ctr = ap.op("GATHER", [t, ap.const("postprocess/centre_columns", np.array([0, 1, 0, 1], np.int32))],
                [("postprocess/box_centres", shape)], gather)[0]
    size = ap.op("GATHER", [t, ap.const("postprocess/size_columns", np.array([2, 3, 2, 3], np.int32))],
                 [("postprocess/box_sizes", shape)], gather)[0]
    half = ap.op("MUL", [size, ap.const("postprocess/half", np.array([-0.5, -0.5, 0.5, 0.5], np.float32))],
                 [("postprocess/box_half", shape)], {})[0]
    corners = ap.op("ADD", [ctr, half], [("postprocess/box_corners", shape)], {})[0]
    coords = ap.op("UNPACK", [corners], [(f"postprocess/{c}", (1, n)) for c in ("x1", "y1", "x2", "y2")],
                   {"num": 4, "axis": 2})
    score, cls = _scores(ap, raw, sigmoid)
    options = {"input_coordinate_x1": 0, "input_coordinate_y1": 1, "input_coordinate_x2": 2,
               "input_coordinate_y2": 3, "input_class_idx": 5, "input_score_idx": 4, "input_confidence_idx": -1,
               "input_facecoordinate_idx": -1, "output_detection_boxes_idx": 0, "output_detection_classes_idx": 1,
               "output_detection_scores_idx": 2, "output_num_detection_idx": 3,
               "output_detection_boxes_index_idx": 4 if with_index else -1, "max_detections": d,
               "nms_score_threshold": score_threshold, "nms_iou_threshold": iou_threshold, "nms": 0.0,
               "max_classes_per_detection": 1, "detections_per_class": 1, "num_classes_with_background": 1,
               "clip": 1.0 if clip else 0.0, "num_classes": raw.c, "bmax_score": 0, "offline": 0}
    shapes = [(1, d, 4), (1, d), (1, d), (1,), (1, d)][:5 if with_index else 4]
    return ap.op("TFLite_Detection_NMS", [*coords, score, cls], list(zip(OUTPUT_NAMES, shapes)), custom=options)


def _tflite(ap: _Appender, raw: _Raw, anchors: np.ndarray, box_format: str, offset: int,
            scales: tuple[float, ...], sigmoid: bool, score_threshold: float, iou_threshold: float,
            max_detections: int, clip: bool, with_index: bool) -> list[int]:
    if clip:
        raise ModelError("clip=True needs kind='mediapipe' (TFLite_Detection_PostProcess does not clip)")
    n, d = raw.n, max_detections
    enc = raw.boxes
    if box_format != "yxhw" or offset != 0:
        cols = ap.const("postprocess/box_columns", _columns(box_format, offset, "yxhw"))
        enc = ap.op("GATHER", [raw.boxes, cols], [("postprocess/box_yxhw", (1, n, 4))], {"axis": 2, "batch_dims": 0})[0]
    scores = raw.scores
    if sigmoid:
        scores = ap.op("LOGISTIC", [scores], [("postprocess/scores", (1, n, raw.c))])[0]
    x_scale, y_scale, w_scale, h_scale = scales
    options = {"max_detections": d, "max_classes_per_detection": 1, "detections_per_class": 100,
               "use_regular_nms": False, "nms_score_threshold": score_threshold, "nms_iou_threshold": iou_threshold,
               "num_classes": raw.c, "y_scale": y_scale, "x_scale": x_scale, "h_scale": h_scale, "w_scale": w_scale}
    shapes = [(1, d, 4), (1, d), (1, d), (1,)]
    return ap.op("TFLite_Detection_PostProcess", [enc, scores, ap.const("postprocess/anchors", anchors)],
                 list(zip(OUTPUT_NAMES, shapes)), custom=options)


def face_detection_postprocess(model: Model | str | os.PathLike, *, score_threshold: float = 0.5,
                               iou_threshold: float = 0.3, max_detections: int = 100, with_index: bool = False,
                               output_path: str | os.PathLike | None = None) -> Model:
    """MediaPipe face_detection_short_range (BlazeFace, 128x128, 896 anchors) with its post-process appended.

    Anchors, box order (x, y, w, h), scales (128) and thresholds (score 0.5, IoU 0.3) are those of
    MediaPipe's face detection graph; see :func:`append_ssd_postprocess` for the rest.
    """
    return append_ssd_postprocess(
        model, ssd_anchors(**FACE_SHORT_RANGE_ANCHORS), boxes_output=0, scores_output=1, kind="mediapipe",
        box_format=FACE_SHORT_RANGE_DECODE["box_format"], box_coord_offset=0,
        scales=FACE_SHORT_RANGE_DECODE["scales"], score_threshold=score_threshold, iou_threshold=iou_threshold,
        max_detections=max_detections, with_index=with_index, output_path=output_path)
