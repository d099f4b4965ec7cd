"""The result files of ``sgs-simulator`` (the vendor's ``simulator.py``), byte for byte, and accuracy.

One text file per sample in the output folder, named ``<category>_<model>_<image>.txt`` where
``<model>`` and ``<image>`` are basenames *with* their extensions (the vendor's
``os.path.basename``; e.g. ``unknown_net_fixed.sim_0001.jpg.txt``); ``<image>`` is the first input's
image for multi-input samples.

* ``classification``: the image basename, then the top-5 of the flattened output 0, one
  ``<index> <prob %.6f>`` line each, descending (``np.argsort(-x)`` as the vendor).
* ``detection``: one COCO-style line per detection ``i < num``:
  ``{"image_id": <id>, "category_id": <class+1>, "bbox": [x,y,w,h], "score": s},`` (``%.6f`` for
  the bbox values and the score, no space inside the bbox list, as the vendor); ``<id>`` is the image
  stem when it is all digits (COCO file names), else 0. Boxes are the model's normalised
  ``[ymin, xmin, ymax, xmax]`` scaled by the height/width of the original image. A 5-output model
  adds ``, "index": <i>`` (the vendor writes the last detection's index on every line; we write each
  detection's own).
* ``unknown``: per output ``<name> Tensor:`` / ``{`` / ``tensor dim:<n>,  Original shape:[d0 d1 ...]``
  / ``tensor data:`` / values ``%.6f`` each followed by two spaces, 16 per line / ``}`` and a blank
  line. Outputs that carry a ``quantization`` (INT16 outputs of a fixed model without
  dequantization) get, unless ``skip_garbage``, ``,  Alignment shape:[...]`` on the dim line and the
  vendor's line ``The following tensor data shape is alignment shape.``; our simulator never pads,
  so both shapes are equal.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ._common import UserError

CATEGORIES = ("Classification", "Detection", "Unknown")
TOP_K = 5
ALIGNMENT_NOTE = "The following tensor data shape is alignment shape."
VALUES_PER_LINE = 16


def result_file_name(category: str, model_path: str, image_path: str) -> str:
    """``<category lower>_<model basename>_<image basename>.txt`` (the vendor's names)."""
    return f"{category.lower()}_{os.path.basename(model_path)}_{os.path.basename(image_path)}.txt"


def unpad(result: np.ndarray, detail: dict) -> np.ndarray:
    """Drop alignment padding of the innermost axis (the vendor's ``result[..., :shape[-1]]``)."""
    last = int(detail["shape"][-1]) if len(detail["shape"]) else None
    if last is not None and result.ndim and result.shape[-1] != last:
        return result[..., :last]
    return result


def _shape_text(shape) -> str:
    return " ".join(str(int(v)) for v in shape)


def format_values(data: np.ndarray) -> str:
    """``%.6f`` values each followed by two spaces, a newline after every 16 and at the end."""
    values = np.asarray(data).reshape(-1).tolist()
    lines = []
    for start in range(0, len(values), VALUES_PER_LINE):
        lines.append("".join(f"{v:.6f}  " for v in values[start:start + VALUES_PER_LINE]) + "\n")
    return "".join(lines)


def format_unknown(results: Sequence[np.ndarray], details: Sequence[dict], skip_garbage: bool) -> str:
    """The text of an ``unknown_*.txt`` file for one sample."""
    parts = []
    for result, d in zip(results, details):
        parts.append(f"{d['name']} Tensor:\n{{\n")
        ndim = len(d["shape"])
        if "quantization" in d and not skip_garbage:
            parts.append(f"tensor dim:{ndim},  Original shape:[{_shape_text(d['shape'])}],  "
                         f"Alignment shape:[{_shape_text(result.shape)}]\n{ALIGNMENT_NOTE}\n")
        else:
            result = unpad(result, d)
            parts.append(f"tensor dim:{ndim},  Original shape:[{_shape_text(d['shape'])}]\n")
        parts.append("tensor data:\n")
        parts.append(format_values(result))
        parts.append("}\n\n")
    return "".join(parts)


def top_k(result: np.ndarray, detail: dict, k: int = TOP_K) -> list[tuple[int, float]]:
    """``(index, value)`` of the ``k`` largest values of the flattened (unpadded) output, descending."""
    flat = unpad(result, detail).reshape(-1)
    order = np.argsort(-flat)  # the vendor's call (default kind): ties keep its order
    return [(int(i), float(flat[i])) for i in order[:k]]


def format_classification(image_path: str, result: np.ndarray, detail: dict) -> str:
    """The text of a ``classification_*.txt`` file: the image basename, then ``<index> <prob>`` lines."""
    lines = [os.path.basename(image_path)] + [f"{i} {p:.6f}" for i, p in top_k(result, detail)]
    return "\n".join(lines) + "\n"


def read_classification_file(path: str) -> list[int]:
    """The class indices (best first) of a ``classification_*.txt`` file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    return [int(line.split()[0]) for line in lines[1:] if line.strip()]


# ------------------------------------------------------------------------------------------ detection
@dataclass(frozen=True)
class Detection:
    """One detection in image pixels: COCO ``bbox`` = (x, y, width, height)."""

    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    score: float
    index: int | None = None


def image_id(image_path: str) -> int:
    """The COCO image id: the file name before its first '.', if all digits; else 0."""
    stem = os.path.basename(image_path).split(".")[0]
    return int(stem) if stem.isdigit() else 0


def read_color_image(image_path: str) -> np.ndarray:
    """The original image as cv2.imread(path) reads it (BGR, 3 channels); UserError if it is not one."""
    data = np.fromfile(image_path, dtype=np.uint8) if os.path.isfile(image_path) else np.zeros(0, np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise UserError(f"-c Detection: cannot read {image_path!r} as an image; detection boxes are scaled to the "
                        "original image's size, so -i must name image files (jpg, png, ...)")
    return img


def detections(results: Sequence[np.ndarray], details: Sequence[dict], image_path: str,
               height: int, width: int) -> list[Detection]:
    """Detections of a ``[boxes, classes, scores, num(, index)]`` result, boxes scaled to ``height`` x ``width``."""
    results = [unpad(r, d) for r, d in zip(results, details)]
    boxes = np.array(results[0], copy=True).reshape(-1, 4)
    boxes[:, 0::2] *= height  # in place, in the output's own dtype, as the vendor
    boxes[:, 1::2] *= width
    classes, scores = results[1].reshape(-1), results[2].reshape(-1)
    index = results[4].reshape(-1) if len(results) > 4 else None
    count = int(np.asarray(results[3]).reshape(-1)[0])
    ident = image_id(image_path)
    out = []
    for i in range(min(count, boxes.shape[0])):
        ymin, xmin, ymax, xmax = boxes[i]
        out.append(Detection(ident, int(classes[i]) + 1,
                             (float(xmin), float(ymin), float(xmax - xmin), float(ymax - ymin)),
                             float(scores[i]), None if index is None else int(index[i])))
    return out


def format_detection(dets: Sequence[Detection]) -> str:
    """The text of a ``detection_*.txt`` file: one COCO-style line (ending in ',') per detection."""
    lines = []
    for d in dets:
        x, y, w, h = d.bbox
        extra = "" if d.index is None else f', "index": {d.index}'
        lines.append(f'{{"image_id": {d.image_id}, "category_id": {d.category_id}, '
                     f'"bbox": [{x:.6f},{y:.6f},{w:.6f},{h:.6f}], "score": {d.score:.6f}{extra}}},\n')
    return "".join(lines)


def category_color(category_id: int) -> tuple[int, int, int]:
    """A fixed BGR colour per category (the vendor draws random ones; ours repeat between runs)."""
    rng = np.random.default_rng(category_id)
    b, g, r = (int(v) for v in rng.integers(40, 256, 3))
    return b, g, r


def draw_detections(image: np.ndarray, dets: Sequence[Detection], threshold: float) -> np.ndarray:
    """A copy of ``image`` with each detection scoring above ``threshold`` boxed and labelled.

    As the vendor: a 4-pixel box, a filled label ``<category_id>: <score %.2f>`` at its top-left
    corner, drawn only when ``score > threshold``.
    """
    img = image.copy()
    for d in dets:
        if not d.score > threshold:
            continue
        color = category_color(d.category_id)
        x, y, w, h = (int(v) for v in d.bbox)
        cv2.rectangle(img, (x, y, w, h), color, 4)
        text = f"{d.category_id}: {d.score:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
        cv2.rectangle(img, (x, y), (x + tw, y + th), color, -1)
        cv2.putText(img, text, (x, y + th), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_8)
    return img


def encode_image(path: str, image: np.ndarray) -> bytes:
    """``image`` encoded in the format of ``path``'s extension (png when it has none OpenCV writes)."""
    ext = os.path.splitext(path)[1].lower() or ".png"
    try:
        ok, buf = cv2.imencode(ext, image)
    except cv2.error:
        ok, buf = False, None
    if not ok:
        ok, buf = cv2.imencode(".png", image)
    return buf.tobytes()


# ------------------------------------------------------------------------------------------ labels
_LABEL_LINE = re.compile(r"^(?P<name>.+?)\s+(?P<label>[-+]?\d+)$")


def read_labels(arg: str, image_names: Sequence[str]) -> dict[str, int]:
    """Class index per image basename from ``-l``.

    ``arg`` is a label file with one ``<image file name> <class index>`` line per image (the
    ImageNet validation style; the name may carry folders, only its basename counts; blank lines and
    '#' comments are skipped), or, for a single image, a file holding just the class index or the
    index itself (``-l 281``). Every image in ``image_names`` must have a label.
    """
    if os.path.isfile(arg):
        labels = _parse_label_file(arg)
    elif re.fullmatch(r"[-+]?\d+", arg.strip()):
        labels = int(arg.strip())
    else:
        raise UserError(f"-l {arg!r}: no such label file; give a file of '<image name> <class index>' lines, "
                        "or the class index of a single image")
    if isinstance(labels, int):
        if len(image_names) != 1:
            raise UserError(f"-l {arg!r} gives one class index but -i names {len(image_names)} images; write a "
                            "label file with one '<image name> <class index>' line per image")
        return {image_names[0]: labels}
    missing = [n for n in image_names if n not in labels]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(f"-l {arg!r}: no label for image {missing[0]!r}{more}; add a "
                        f"'{missing[0]} <class index>' line")
    return {n: labels[n] for n in image_names}


def _parse_label_file(path: str) -> dict[str, int] | int:
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise UserError(f"-l {path!r}: the label file is not UTF-8 text") from None
    entries = [(n, line.strip()) for n, line in enumerate(lines, start=1)
               if line.strip() and not line.strip().startswith("#")]
    if not entries:
        raise UserError(f"-l {path!r}: the label file is empty; write one '<image name> <class index>' line per image")
    if len(entries) == 1 and re.fullmatch(r"[-+]?\d+", entries[0][1]):
        return int(entries[0][1])
    labels: dict[str, int] = {}
    for number, text in entries:
        m = _LABEL_LINE.match(text)
        if m is None:
            raise UserError(f"-l {path!r}, line {number}: {text!r} is not '<image name> <class index>'")
        name = os.path.basename(m["name"].strip())
        if name in labels and labels[name] != int(m["label"]):
            raise UserError(f"-l {path!r}, line {number}: image {name!r} is labelled twice, with different classes")
        labels[name] = int(m["label"])
    return labels


@dataclass(frozen=True)
class Accuracy:
    """Top-1 / top-5 hit rates over ``count`` images."""

    top1: float
    top5: float
    count: int

    def line(self) -> str:
        return f"top-1: {self.top1:.4f}  top-5: {self.top5:.4f}  ({self.count} images)"


def accuracy(predictions: dict[str, Sequence[int]], labels: dict[str, int]) -> Accuracy:
    """Top-1 / top-5 accuracy of ``predictions`` (class indices, best first, per image name)."""
    names = list(labels)
    top1 = sum(1 for n in names if list(predictions[n])[:1] == [labels[n]])
    top5 = sum(1 for n in names if labels[n] in list(predictions[n])[:TOP_K])
    count = len(names)
    return Accuracy(top1 / count if count else 0.0, top5 / count if count else 0.0, count)
