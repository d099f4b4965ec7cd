"""Tests of the simulator's result writers (calibrator_custom/cli/results.py) on hand-made values.

The expected texts are written out by hand from the vendor's formats (sgs_facts §5.2); no expected
value comes from the code under test.
"""
from __future__ import annotations

import numpy as np
import pytest

from calibrator_custom.cli import results as res
from calibrator_custom.cli._common import UserError


def _detail(name, shape, quant=None, dtype=np.float32):
    d = {"index": 0, "name": name, "shape": np.array(shape, dtype=np.int32), "dtype": dtype}
    if quant is not None:
        d["quantization"] = quant
    return d


# ------------------------------------------------------------------------------------------ names
def test_result_file_name_keeps_extensions():
    assert res.result_file_name("Unknown", "/m/net_fixed.sim", "/i/0001.jpg") == "unknown_net_fixed.sim_0001.jpg.txt"
    assert res.result_file_name("Classification", "a.tflite", "x/cat.png") == "classification_a.tflite_cat.png.txt"
    assert res.result_file_name("Detection", "d.sim", "b.jpeg") == "detection_d.sim_b.jpeg.txt"


# ------------------------------------------------------------------------------------------ unknown
def test_format_values_sixteen_per_line_two_spaces_after_each():
    data = np.arange(17, dtype=np.float32) / 4
    text = res.format_values(data)
    first = "".join(f"{v:.6f}  " for v in [i / 4 for i in range(16)]) + "\n"
    assert text == first + "4.000000  \n"
    assert res.format_values(np.array([-1.5, 2.0])) == "-1.500000  2.000000  \n"
    assert res.format_values(np.arange(16.0)).count("\n") == 1  # no empty line after a full line


def test_format_unknown_float_output():
    out = np.array([[[0.5, -0.25], [1.0, 2.0]]], dtype=np.float32)
    text = res.format_unknown([out], [_detail("scores", [1, 2, 2])], skip_garbage=False)
    assert text == ("scores Tensor:\n{\ntensor dim:3,  Original shape:[1 2 2]\ntensor data:\n"
                    "0.500000  -0.250000  1.000000  2.000000  \n}\n\n")


def test_format_unknown_quantized_output_has_alignment_lines_unless_skip_garbage():
    out = np.array([[3 * 0.5, -2 * 0.5]])
    d = _detail("y", [1, 2], quant=(0.5, 0), dtype=np.int16)
    assert res.format_unknown([out], [d], skip_garbage=False) == (
        "y Tensor:\n{\ntensor dim:2,  Original shape:[1 2],  Alignment shape:[1 2]\n"
        "The following tensor data shape is alignment shape.\ntensor data:\n1.500000  -1.000000  \n}\n\n")
    assert res.format_unknown([out], [d], skip_garbage=True) == (
        "y Tensor:\n{\ntensor dim:2,  Original shape:[1 2]\ntensor data:\n1.500000  -1.000000  \n}\n\n")


def test_format_unknown_padded_output_is_cut_to_the_original_shape():
    padded = np.array([[1.0, 2.0, 9.0, 9.0]])  # innermost axis aligned to 4
    d = _detail("y", [1, 2], quant=(1.0, 0))
    assert "tensor data:\n1.000000  2.000000  \n" in res.format_unknown([padded], [d], skip_garbage=True)
    aligned = res.format_unknown([padded], [d], skip_garbage=False)
    assert "Alignment shape:[1 4]" in aligned and "9.000000" in aligned


def test_format_unknown_two_outputs_in_order():
    text = res.format_unknown([np.zeros((1,), np.float32), np.ones((1, 1), np.float32)],
                              [_detail("a", [1]), _detail("b", [1, 1])], skip_garbage=False)
    assert text == ("a Tensor:\n{\ntensor dim:1,  Original shape:[1]\ntensor data:\n0.000000  \n}\n\n"
                    "b Tensor:\n{\ntensor dim:2,  Original shape:[1 1]\ntensor data:\n1.000000  \n}\n\n")


# ------------------------------------------------------------------------------------------ classification
def test_format_classification_top5_descending():
    probs = np.array([[0.05, 0.4, 0.01, 0.2, 0.1, 0.15, 0.09]], dtype=np.float32)
    text = res.format_classification("/data/img 1.JPEG", probs, _detail("prob", [1, 7]))
    assert text == "img 1.JPEG\n1 0.400000\n3 0.200000\n5 0.150000\n4 0.100000\n6 0.090000\n"


def test_classification_fewer_than_five_classes_and_read_back(tmp_path):
    text = res.format_classification("a.png", np.array([0.25, 0.75]), _detail("p", [2]))
    assert text == "a.png\n1 0.750000\n0 0.250000\n"
    path = tmp_path / "c.txt"
    path.write_text(text)
    assert res.read_classification_file(str(path)) == [1, 0]


# ------------------------------------------------------------------------------------------ detection
def _det_outputs():
    boxes = np.zeros((1, 3, 4), np.float32)
    boxes[0, 0] = [0.25, 0.5, 0.75, 1.0]   # ymin, xmin, ymax, xmax
    boxes[0, 1] = [0.0, 0.0, 0.5, 0.25]
    classes = np.array([[2.0, 0.0, 0.0]], np.float32)
    scores = np.array([[0.875, 0.5, 0.0]], np.float32)
    num = np.array([2.0], np.float32)
    details = [_detail("boxes", [1, 3, 4]), _detail("classes", [1, 3]), _detail("scores", [1, 3]),
               _detail("num", [1])]
    return [boxes, classes, scores, num], details


def test_detections_scaled_to_image_and_coco_ids():
    outs, details = _det_outputs()
    dets = res.detections(outs, details, "/x/000000000139.jpg", height=40, width=80)
    assert dets == [res.Detection(139, 3, (40.0, 10.0, 40.0, 20.0), 0.875),
                    res.Detection(139, 1, (0.0, 0.0, 20.0, 20.0), 0.5)]
    assert res.detections(outs, details, "dog.1.jpg", 40, 80)[0].image_id == 0
    assert outs[0][0, 0, 0] == np.float32(0.25), "the model's output must not be modified"


def test_format_detection_exact_lines():
    dets = [res.Detection(139, 3, (40.0, 10.0, 40.0, 20.0), 0.875), res.Detection(0, 1, (0.5, 1.25, 2.0, 3.0), 0.5, 7)]
    assert res.format_detection(dets) == (
        '{"image_id": 139, "category_id": 3, "bbox": [40.000000,10.000000,40.000000,20.000000], "score": 0.875000},\n'
        '{"image_id": 0, "category_id": 1, "bbox": [0.500000,1.250000,2.000000,3.000000], "score": 0.500000, '
        '"index": 7},\n')
    assert res.format_detection([]) == ""


def test_detection_five_outputs_carry_each_index():
    outs, details = _det_outputs()
    outs.append(np.array([[11.0, 4.0, 0.0]], np.float32))
    details.append(_detail("index", [1, 3]))
    assert [d.index for d in res.detections(outs, details, "a.jpg", 10, 10)] == [11, 4]


def test_draw_detections_above_threshold_only():
    image = np.full((40, 80, 3), 255, np.uint8)
    dets = [res.Detection(0, 3, (40.0, 10.0, 30.0, 20.0), 0.875)]
    drawn = res.draw_detections(image, dets, threshold=0.5)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert (image == 255).all(), "the original is left alone"
    assert (drawn[29, 50:70] != 255).any()  # bottom edge of the box (y + h = 30)
    # a 4-pixel line reaches 2 pixels beyond the box; nothing above or left of that changes
    assert (drawn[0:8, :] == 255).all() and (drawn[:, 0:38] == 255).all()
    assert (res.draw_detections(image, dets, threshold=0.875) == 255).all()  # score must be above it
    assert res.category_color(3) == res.category_color(3)


def test_read_color_image_error_names_file(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(UserError, match="x.jpg"):
        res.read_color_image(str(bad))


# ------------------------------------------------------------------------------------------ labels
def test_read_labels_imagenet_style(tmp_path):
    f = tmp_path / "val.txt"
    f.write_text("# name class\nILSVRC2012_val_00000001.JPEG 65\n\nsub/ILSVRC2012_val_00000002.JPEG\t970\n"
                 "extra.JPEG 1\n")
    names = ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"]
    assert res.read_labels(str(f), names) == {names[0]: 65, names[1]: 970}


def test_read_labels_single_image_forms(tmp_path):
    f = tmp_path / "one.txt"
    f.write_text("281\n")
    assert res.read_labels(str(f), ["cat.jpg"]) == {"cat.jpg": 281}
    assert res.read_labels("281", ["cat.jpg"]) == {"cat.jpg": 281}
    with pytest.raises(UserError, match="one class index but -i names 2 images"):
        res.read_labels("281", ["a.jpg", "b.jpg"])


@pytest.mark.parametrize("text, match", [
    ("a.jpg 1\nb.jpg\n", "line 2: 'b.jpg' is not '<image name> <class index>'"),
    ("a.jpg one\n", "line 1"),
    ("a.jpg 1\na.jpg 2\n", "labelled twice"),
    ("\n# nothing\n", "empty"),
    ("a.jpg 1\n", "no label for image 'b.jpg'"),
])
def test_read_labels_errors(tmp_path, text, match):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(UserError, match=match):
        res.read_labels(str(f), ["a.jpg", "b.jpg"])


def test_read_labels_missing_file():
    with pytest.raises(UserError, match="no such label file"):
        res.read_labels("nope_labels.txt", ["a.jpg"])


def test_accuracy_by_hand():
    preds = {"a": [1, 2, 3, 4, 5], "b": [0, 9, 8, 7, 6], "c": [3, 1, 4, 1, 5], "d": [2, 7, 1, 8, 2]}
    labels = {"a": 1, "b": 6, "c": 9, "d": 2}  # a top-1, b top-5 (5th), c miss, d top-1
    acc = res.accuracy(preds, labels)
    assert (acc.top1, acc.top5, acc.count) == (0.5, 0.75, 4)
    assert acc.line() == "top-1: 0.5000  top-5: 0.7500  (4 images)"
