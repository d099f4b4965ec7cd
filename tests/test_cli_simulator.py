"""End-to-end tests of ``python -m calibrator_custom.simulator`` (calibrator_custom/cli/simulate.py).

Every run is a subprocess with cwd = a temporary folder, as a user runs the tool. Result files are
parsed back with parsers written here from the vendor's formats (sgs_facts §5.2) and compared with
values computed independently: the simulators called directly (Unknown), numpy (Classification) and
anchors decoded by hand (Detection).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from flatbuffers import flexbuffers

import calibrator_custom
from calibrator_custom import utils
from calibrator_custom.calib.parallel import collect_stats
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.pipeline.convert import convert
from conftest import IMAGES_DIR, MODELS_DIR, ROOT, require_shared

FACE = "face_detection_short_range"
VALUE_LINE = re.compile(r"^(-?\d+\.\d{6}  ){1,16}$")
DET_LINE = re.compile(r'^\{"image_id": (\d+), "category_id": (\d+), "bbox": \[(-?\d+\.\d{6}),(-?\d+\.\d{6}),'
                      r'(-?\d+\.\d{6}),(-?\d+\.\d{6})\], "score": (\d+\.\d{6})\},$')


def simulate(cwd, *args, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "calibrator_custom.simulator", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_user_error(proc, *needles: str) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sgs-simulator: error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def parse_unknown(text: str) -> list[dict]:
    """Blocks of an unknown_*.txt file: name, header lines, values (as the %.6f strings)."""
    assert text.endswith("}\n\n")
    blocks = []
    for block in text[:-3].split("}\n\n"):
        lines = block.split("\n")
        assert lines[0].endswith(" Tensor:") and lines[1] == "{", lines[:2]
        k = lines.index("tensor data:")
        values = lines[k + 1:-1]
        assert lines[-1] == ""
        assert all(VALUE_LINE.match(v) for v in values)
        assert all(len(v.split()) == 16 for v in values[:-1])
        blocks.append({"name": lines[0][:-len(" Tensor:")], "header": lines[2:k],
                       "values": [t for v in values for t in v.split()]})
    return blocks


def fmt(values) -> list[str]:
    return ["%.6f" % v for v in np.asarray(values).reshape(-1)]


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A folder with 2 evaluation photos."""
    require_shared()
    d = tmp_path_factory.mktemp("photos")
    for p in sorted(IMAGES_DIR.glob("*.jpg"))[30:32]:
        shutil.copy(p, d / p.name)
    return d


@pytest.fixture(scope="module")
def float_run(tmp_path_factory, photos) -> Path:
    """Unknown, -t Float on the shared face detector: the cwd of the run."""
    cwd = tmp_path_factory.mktemp("float_run")
    simulate(cwd, "-i", photos, "-m", MODELS_DIR / f"{FACE}.tflite", "-n", FACE, "-t", "Float")
    return cwd


@pytest.fixture(scope="module")
def fixed_model(tmp_path_factory) -> Path:
    """The face detector converted at L1 from 3 calibration photos, INT16 outputs (no dequantization)."""
    require_shared()
    d = tmp_path_factory.mktemp("fixed")
    model = MODELS_DIR / f"{FACE}.tflite"
    pre = utils.image_preprocess_func(FACE)
    stats = collect_stats(model, [str(p) for p in sorted(IMAGES_DIR.glob("*.jpg"))[:3]], pre)
    ini = d / "input_config.ini"
    ini.write_text("[INPUT_CONFIG]\ninputs=input;\ntraining_input_formats=RGB;\ninput_formats=RGB;\n"
                   "mean=127.5:127.5:127.5;\nstd_value=127.5;\n[OUTPUT_CONFIG]\noutputs=regressors,classificators;\n"
                   "dequantizations=FALSE,FALSE;\n")
    out = d / f"{FACE}_fixed.sim"
    convert(model, ini, stats, quant_level="L1", output_path=out)
    return out


CLS_CLASSES = 8
CLS_PREPROCESS = '''
import cv2
import numpy as np

def image_preprocess(img_path, norm=True):
    rgb = cv2.cvtColor(cv2.imread(img_path), cv2.COLOR_BGR2RGB)
    img = cv2.resize(rgb, (8, 8), interpolation=cv2.INTER_NEAREST)[None]
    return (img.astype(np.float32) / 255.0) if norm else img
'''


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> dict:
    """MEAN over HW -> FULLY_CONNECTED (8 classes) -> SOFTMAX, its .py preprocess and 4 coloured images."""
    d = tmp_path_factory.mktemp("cls")
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((CLS_CLASSES, 3)) * 4).astype(np.float32)
    bias = rng.standard_normal(CLS_CLASSES).astype(np.float32)
    b = ModelBuilder()
    x = b.input("image", (1, 8, 8, 3))
    m = b.op("MEAN", [x, b.constant("axes", np.array([1, 2], np.int32))], {"keep_dims": False}, name="gap")
    fc = b.op("FULLY_CONNECTED", [m, b.constant("w", w), b.constant("b", bias)], {}, name="fc")
    b.output(b.op("SOFTMAX", [fc], {"beta": 1.0}, name="prob"))
    b.save(d / "tiny_cls_float.sim")
    (d / "tiny_pre.py").write_text(CLS_PREPROCESS)
    images = d / "images"
    images.mkdir()
    refs = {}
    for k, bgr in enumerate([(0, 0, 255), (0, 255, 0), (255, 0, 0), (40, 200, 120)]):
        img = np.zeros((16, 20, 3), np.uint8)
        img[:] = bgr
        img[::2, ::3] = 255 - np.array(bgr, np.uint8)  # some texture, so the mean is not the colour
        name = f"img{k}.png"
        cv2.imwrite(str(images / name), img)
        small = cv2.resize(img[..., ::-1], (8, 8), interpolation=cv2.INTER_NEAREST).astype(np.float64) / 255
        logits = w.astype(np.float64) @ small.mean(axis=(0, 1)) + bias
        p = np.exp(logits - logits.max())
        refs[name] = p / p.sum()
    for name, p in refs.items():  # the order of the classes must not hinge on rounding
        assert np.min(np.diff(np.sort(p))) > 1e-4, name
    return {"dir": d, "model": d / "tiny_cls_float.sim", "pre": d / "tiny_pre.py", "images": images, "refs": refs}


DET_ANCHORS = np.array([[0.5, 0.5, 0.4, 0.2],     # (ycenter, xcenter, h, w)
                        [0.2, 0.3, 0.2, 0.2],
                        [0.8, 0.8, 0.1, 0.1]], np.float32)
DET_SCORES = np.array([[0.0, 0.9, 0.0],           # background, class 0, class 1
                       [0.0, 0.1, 0.8],
                       [0.0, 0.1, 0.0]], np.float32)
DET_PREPROCESS = '''
import os
import numpy as np

def image_preprocess(img_path, norm=True):
    return np.load(os.path.join(os.path.dirname(__file__), "det_input.npy"))
'''


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> dict:
    """input [1, 3, 7] -> SPLIT_V (box encodings | class scores) -> TFLite_Detection_PostProcess (4 outputs)."""
    d = tmp_path_factory.mktemp("det")
    opts = dict(max_detections=5, max_classes_per_detection=1, detections_per_class=100, use_regular_nms=False,
                nms_score_threshold=0.3, nms_iou_threshold=0.5, num_classes=2, y_scale=10.0, x_scale=10.0,
                h_scale=5.0, w_scale=5.0)
    b = ModelBuilder()
    x = b.input("x", (1, 3, 7))
    enc, scores = b.op("SPLIT_V", [x, b.constant("sizes", np.array([4, 3], np.int32)),
                                   b.constant("axis", np.array(2, np.int32))], {"num_splits": 2}, num_outputs=2)
    outs = b.op("TFLite_Detection_PostProcess", [enc, scores, b.constant("anchors", DET_ANCHORS)],
                custom_options=flexbuffers.Dumps(opts), num_outputs=4, name="det")
    b.output(*outs)
    b.save(d / "tiny_det_float.sim")
    # zero encodings: every decoded box is its anchor
    np.save(d / "det_input.npy", np.concatenate([np.zeros((3, 4), np.float32), DET_SCORES], 1)[None])
    (d / "det_pre.py").write_text(DET_PREPROCESS)
    images = d / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    for name in ("000000000042.png", "street.png"):
        cv2.imwrite(str(images / name), rng.integers(0, 256, (60, 80, 3)).astype(np.uint8))
    return {"model": d / "tiny_det_float.sim", "pre": d / "det_pre.py", "images": images}


# ------------------------------------------------------------------------------------------ Unknown
def _float_reference(path) -> list[np.ndarray]:
    sim = calibrator_custom.float_simulator(MODELS_DIR / f"{FACE}.tflite")
    sim.set_input(0, utils.image_preprocess_func(FACE)(str(path), norm=True))
    sim.invoke()
    return [sim.get_output(k) for k in range(2)]


def test_unknown_float_model_files_match_float_simulator(float_run, photos):
    files = sorted((float_run / "output").iterdir())
    names = sorted(p.name for p in photos.iterdir())
    assert [f.name for f in files] == [f"unknown_{FACE}.tflite_{n}.txt" for n in names]
    for f, n in zip(files, names):
        blocks = parse_unknown(f.read_text())
        ref = _float_reference(photos / n)
        assert [b["name"] for b in blocks] == ["regressors", "classificators"]
        assert blocks[0]["header"] == ["tensor dim:3,  Original shape:[1 896 16]"]
        assert blocks[1]["header"] == ["tensor dim:3,  Original shape:[1 896 1]"]
        for blk, r in zip(blocks, ref):
            assert r.dtype == np.float32 and len(blk["values"]) == r.size
            assert blk["values"] == fmt(r)


def test_num_process_2_writes_the_same_files(float_run, photos, tmp_path):
    simulate(tmp_path, "-i", photos, "-m", MODELS_DIR / f"{FACE}.tflite", "-n", FACE, "--num_process", "2")
    one = {p.name: p.read_bytes() for p in (float_run / "output").iterdir()}
    two = {p.name: p.read_bytes() for p in (tmp_path / "output").iterdir()}
    assert len(one) == 2 and one == two


def test_unknown_fixed_model_dequantized_int16(fixed_model, photos, tmp_path):
    photo = sorted(photos.iterdir())[0]
    proc = simulate(tmp_path, "-i", photo, "-m", fixed_model, "-n", FACE, "-t", "Fixed", "--dump_rawdata")
    assert "(Fixed)" in proc.stdout
    sim = calibrator_custom.fixed_simulator(fixed_model)
    raw = utils.convert_to_input_formats(utils.image_preprocess_func(FACE)(str(photo), norm=False),
                                         sim.get_input_details()[0])
    assert raw.dtype == np.uint8 and raw.shape == (1, 128, 128, 3)
    sim.set_input(0, raw)
    sim.invoke()
    details = sim.get_output_details()
    text = (tmp_path / "output" / f"unknown_{fixed_model.name}_{photo.name}.txt").read_text()
    blocks = parse_unknown(text)
    for blk, d, k, shape in zip(blocks, details, range(2), ("1 896 16", "1 896 1")):
        q = sim.get_output(k)
        assert q.dtype == np.int16 and d["quantization"][1] == 0
        assert blk["header"] == [f"tensor dim:3,  Original shape:[{shape}],  Alignment shape:[{shape}]",
                                 "The following tensor data shape is alignment shape."]
        assert blk["values"] == fmt(q.astype(np.float64) * d["quantization"][0])
    # --dump_rawdata: the bytes given to set_input, in the cwd
    assert (tmp_path / f"{photo.name}.bin").read_bytes() == raw.tobytes()
    # -t left out: the model says it is fixed; --skip_garbage drops the alignment lines
    simulate(tmp_path, "-i", photo, "-m", fixed_model, "-n", FACE, "--skip_garbage")
    again = parse_unknown((tmp_path / "output" / f"unknown_{fixed_model.name}_{photo.name}.txt").read_text())
    assert again[0]["header"] == ["tensor dim:3,  Original shape:[1 896 16]"]
    assert again[0]["values"] == blocks[0]["values"]


# ------------------------------------------------------------------------------------------ Classification
def test_classification_top5_and_accuracy(classifier, tmp_path):
    refs = classifier["refs"]
    names = sorted(refs)
    order = {n: list(np.argsort(-refs[n])) for n in names}
    labels = {names[0]: order[names[0]][0],   # top-1 hit
              names[1]: order[names[1]][2],   # third: a top-5 hit only
              names[2]: order[names[2]][-1],  # last of 8: a miss
              names[3]: order[names[3]][0]}   # top-1 hit
    label_file = tmp_path / "val.txt"
    label_file.write_text("# image class\n" + "".join(f"{n} {c}\n" for n, c in labels.items()))
    proc = simulate(tmp_path, "-i", classifier["images"], "-m", classifier["model"], "-n", classifier["pre"],
                    "-c", "Classification", "-l", label_file)
    assert "top-1: 0.5000  top-5: 0.7500  (4 images)" in proc.stdout.splitlines()
    for n in names:
        lines = (tmp_path / "output" / f"classification_tiny_cls_float.sim_{n}.txt").read_text().split("\n")
        assert lines[0] == n and lines[6] == "" and len(lines) == 7
        got = [ln.split(" ") for ln in lines[1:6]]
        assert all(re.fullmatch(r"\d+ \d\.\d{6}", ln) for ln in lines[1:6])
        assert [int(i) for i, _ in got] == order[n][:5]
        np.testing.assert_allclose([float(p) for _, p in got], refs[n][order[n][:5]], atol=1.5e-6)


def test_classification_single_image_label_and_missing_label(classifier, tmp_path):
    refs = classifier["refs"]
    img = classifier["images"] / "img1.png"
    best = int(np.argmax(refs["img1.png"]))
    proc = simulate(tmp_path, "-i", img, "-m", classifier["model"], "-n", classifier["pre"], "-c", "Classification",
                    "-l", best)
    assert "top-1: 1.0000  top-5: 1.0000  (1 images)" in proc.stdout
    partial = tmp_path / "partial.txt"
    partial.write_text("img0.png 1\nimg1.png 2\n")
    proc = simulate(tmp_path, "-i", classifier["images"], "-m", classifier["model"], "-n", classifier["pre"],
                    "-c", "Classification", "-l", partial, check=False)
    assert_user_error(proc, "no label for image 'img2.png'")
    bad = tmp_path / "bad.txt"
    bad.write_text("img0.png 1\nimg1.png\n")
    proc = simulate(tmp_path, "-i", classifier["images"], "-m", classifier["model"], "-n", classifier["pre"],
                    "-c", "Classification", "-l", bad, check=False)
    assert_user_error(proc, "line 2")


# ------------------------------------------------------------------------------------------ Detection
def test_detection_file_and_draw_result(detector, tmp_path):
    simulate(tmp_path, "-i", detector["images"], "-m", detector["model"], "-n", detector["pre"], "-c", "Detection",
             "--draw_result", "drawn,0.5")
    # anchor 0: class 0, 0.9, box y 0.3..0.7, x 0.4..0.6; anchor 1: class 1, 0.8, y 0.1..0.3, x 0.2..0.4;
    # anchor 2 scores 0.1 < nms_score_threshold 0.3. Image 60 x 80 -> bbox [x, y, w, h] in pixels.
    expected = [(1, [32.0, 18.0, 16.0, 24.0], 0.9), (2, [16.0, 6.0, 16.0, 12.0], 0.8)]
    for name, ident in (("000000000042.png", 42), ("street.png", 0)):
        lines = (tmp_path / "output" / f"detection_tiny_det_float.sim_{name}.txt").read_text().split("\n")
        assert lines[-1] == "" and len(lines) == 3
        for line, (cat, bbox, score) in zip(lines, expected):
            m = DET_LINE.match(line)
            assert m, line
            assert int(m[1]) == ident and int(m[2]) == cat
            np.testing.assert_allclose([float(v) for v in m.groups()[2:6]], bbox, atol=2e-5)
            assert abs(float(m[7]) - score) < 1e-6
        original = cv2.imread(str(detector["images"] / name))
        drawn = cv2.imread(str(tmp_path / "drawn" / name))
        assert drawn is not None and drawn.shape == original.shape
        assert (drawn != original).any()


# ------------------------------------------------------------------------------------------ errors
def test_user_errors_are_one_line(tmp_path, photos, classifier, detector):
    face = MODELS_DIR / f"{FACE}.tflite"
    photo = sorted(photos.iterdir())[0]
    junk = tmp_path / "with_junk"
    junk.mkdir()
    shutil.copy(photo, junk / photo.name)
    (junk / "zz.jpg").write_bytes(b"not a jpeg")
    lst = tmp_path / "list.txt"
    lst.write_text(f"{photo}\n{tmp_path / 'missing.jpg'}\n")
    cases = [
        (["-i", photo, "-m", "nope.tflite", "-n", FACE], ["-m", "nope.tflite"]),
        (["-i", "missing.jpg", "-m", face, "-n", FACE], ["missing.jpg"]),
        (["-i", lst, "-m", face, "-n", FACE], ["line 2", "missing.jpg"]),
        (["-i", photo, "-m", face, "-n", f"{FACE},{FACE}"], ["-n", "2 preprocess", "1 input"]),
        (["-i", photo, "-m", face, "-n", FACE, "-c", "Detection"], ["TFLite_Detection_PostProcess", "4 outputs"]),
        (["-i", photo, "-m", face, "-n", FACE, "-t", "Fixed"], ["-t Fixed", "float model"]),
        (["-i", detector["images"], "-m", detector["model"], "-n", detector["pre"], "-c", "Detection",
          "-l", "instances_val2017.json"], ["mAP", "not implemented"]),
        (["-i", photo, "-m", face, "-n", FACE, "--draw_result", "d,high"], ["--draw_result", "high"]),
        (["-i", photo, "-m", face, "-n", FACE, "--input_config", "no.ini"], ["--input_config", "no.ini"]),
    ]
    for args, needles in cases:
        assert_user_error(simulate(tmp_path, *args, check=False), *needles)
        assert not (tmp_path / "output").exists(), f"{args}: the output folder was touched before the checks"
    # an image that fails inside a worker process: still one line, exit 1
    assert_user_error(simulate(tmp_path, "-i", junk, "-m", face, "-n", FACE, "--num_process", "2", check=False),
                      "cannot read image", "zz.jpg")


def test_sdk_flags_accepted_like_the_sdk(photos, tmp_path):
    """-c Classification on a 2-output model takes output 0; -l with -c Unknown, --tool, --save_input and the
    SDK's internal -t values are accepted, each with a warning."""
    from calibrator_custom import float_simulator, utils

    face = MODELS_DIR / f"{FACE}.tflite"
    photo = sorted(photos.iterdir())[0]
    proc = simulate(tmp_path, "-i", photo, "-m", face, "-n", FACE, "-c", "Classification", "--tool", "sgs_sim",
                    "--save_input", "-t", "Cmodel_float")
    assert "the top-5 are of output 0" in proc.stderr
    assert "--tool sgs_sim is ignored" in proc.stderr and "--save_input is ignored" in proc.stderr
    assert "-t Cmodel_float (the SDK's internal model type) is simulated as -t Float" in proc.stderr
    lines = (tmp_path / "output" / f"classification_{face.name}_{photo.name}.txt").read_text().split("\n")
    sim = float_simulator(str(face))
    sim.set_input(0, utils.image_preprocess_func(FACE)(str(photo)))
    sim.invoke()
    want = np.argsort(-sim.get_output(0).ravel(), kind="stable")[:5]
    assert lines[0] == photo.name and [int(x.split()[0]) for x in lines[1:6]] == want.tolist()
    proc = simulate(tmp_path, "-i", photo, "-m", face, "-n", FACE, "-l", "3")
    assert "-l 3 is ignored with -c Unknown" in proc.stderr
    assert (tmp_path / "output" / f"unknown_{face.name}_{photo.name}.txt").is_file()


def test_fixed_type_mismatch(fixed_model, photos, tmp_path):
    photo = sorted(photos.iterdir())[0]
    assert_user_error(simulate(tmp_path, "-i", photo, "-m", fixed_model, "-n", FACE, "-t", "Float", check=False),
                      "-t Float", "fixed model")


def test_usage_errors_and_help(tmp_path):
    proc = simulate(tmp_path, "-i", "x.jpg", "-m", "m.sim", check=False)  # no -n
    assert proc.returncode == 2 and "-n/--preprocess" in proc.stderr
    proc = simulate(tmp_path, "-i", "x.jpg", "-m", "m.sim", "-n", "a", "-c", "Segmentation", check=False)
    assert proc.returncode == 2
    proc = simulate(tmp_path, "--help")
    for flag in ("--image", "--model", "--category", "--type", "--preprocess", "--label", "--input_config",
                 "--num_process", "--show_log", "--dump_rawdata", "--skip_garbage", "--draw_result",
                 "--continue_run", "./output/"):
        assert flag in proc.stdout, flag


def test_continue_run_skips_done_images(classifier, tmp_path):
    args = ["-i", classifier["images"], "-m", classifier["model"], "-n", classifier["pre"], "-c", "Classification"]
    simulate(tmp_path, *args)
    done = tmp_path / "output" / "classification_tiny_cls_float.sim_img0.png.txt"
    done.write_text("img0.png\n7 1.000000\n")  # a marker: a rerun would overwrite it
    (tmp_path / "output" / "classification_tiny_cls_float.sim_img3.png.txt").unlink()
    proc = simulate(tmp_path, *args, "--continue_run")
    assert "3 images already ran, left 1 images to run continue." in proc.stdout
    assert done.read_text() == "img0.png\n7 1.000000\n"
    assert len(list((tmp_path / "output").iterdir())) == 4


def test_two_input_model_list_file_and_dump_rawdata(classifier, tmp_path):
    """A 2-input model (ADD of two images, then MEAN): a list file sample, rawdata per input."""
    b = ModelBuilder()
    x0, x1 = b.input("a", (1, 8, 8, 3)), b.input("b", (1, 8, 8, 3))
    s = b.op("ADD", [x0, x1], {}, name="sum")
    b.output(b.op("MEAN", [s, b.constant("axes", np.array([1, 2], np.int32))], {"keep_dims": False}, name="avg"))
    model = tmp_path / "two_float.sim"
    b.save(model)
    images = classifier["images"]
    (tmp_path / "pairs.txt").write_text(f"{images / 'img0.png'},{images / 'img2.png'}\n")
    pre = classifier["pre"]
    simulate(tmp_path, "-i", "pairs.txt", "-m", model, "-n", f"{pre},{pre}", "--dump_rawdata")
    func = utils.image_preprocess_func(str(pre))
    a, c = func(str(images / "img0.png")), func(str(images / "img2.png"))
    assert (tmp_path / "img0.png_input0.bin").read_bytes() == a.tobytes()
    assert (tmp_path / "img2.png_input1.bin").read_bytes() == c.tobytes()
    blocks = parse_unknown((tmp_path / "output" / "unknown_two_float.sim_img0.png.txt").read_text())
    assert [b["name"] for b in blocks] == ["avg"] and blocks[0]["header"] == ["tensor dim:2,  Original shape:[1 3]"]
    ref = (a.astype(np.float64) + c).mean(axis=(1, 2))
    np.testing.assert_allclose([float(v) for v in blocks[0]["values"]], ref.reshape(-1), atol=1.5e-6)
