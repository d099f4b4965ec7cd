"""calibrator_custom.utils: preprocess lookup, image lists and generators, input formats, names."""
from __future__ import annotations

import inspect
import os
import pickle
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import calibrator_custom
from calibrator_custom import preprocess_method, utils
from calibrator_custom.errors import ConfigError, InputError


def test_get_sdk_version_is_the_major_version():
    major = utils.get_sdk_version()
    assert isinstance(major, str) and major and "." not in major
    assert calibrator_custom.__version__.startswith(major + ".")


# ------------------------------------------------------------------------------------------ image_preprocess_func
@pytest.mark.parametrize("name", preprocess_method.__all__)
def test_every_builtin_resolves_without_environment(monkeypatch, name):
    monkeypatch.delenv("SGS_IPU_DIR", raising=False)
    monkeypatch.delenv("IPU_TOOL", raising=False)
    func = utils.image_preprocess_func(name)
    params = inspect.signature(func).parameters
    assert list(params) == ["img_path", "norm"] and params["norm"].default is True


def test_builtin_list_is_complete():
    assert set(preprocess_method.OWN_METHODS) == {
        "onnx_mobilenetv2", "face_detection_short_range", "face_landmark",
        "hand_landmark_lite", "iris_landmark", "palm_detection_lite", "pose_detection"}
    assert len(preprocess_method.SDK_METHODS) == 66  # the SDK's preprocess_method folder, every file
    assert {"caffe_ultra_fast_face", "caffe_resnet18", "mobilenet_v2", "yolov3"} <= set(preprocess_method.SDK_METHODS)


@pytest.mark.parametrize("text, meant", [("face_detection", "face_detection_short_range"),
                                         ("caffe_ultra", "caffe_ultra_fast_face"),
                                         ("ultra_fast", "caffe_ultra_fast_face"),
                                         ("mobilenetv3", "onnx_mobilenetv3_large_w1"),
                                         ("mobilnet_v1", "mobilenet_v1")])
def test_unknown_name_suggests_the_name_it_is_part_of(text, meant):
    with pytest.raises(ConfigError, match=f"did you mean '{meant}'"):
        utils.image_preprocess_func(text)


def test_sgs_ipu_dir_methods_win(tmp_path, monkeypatch):
    folder = tmp_path / "Scripts" / "calibrator" / "preprocess_method"
    folder.mkdir(parents=True)
    (folder / "mobilenet_v2.py").write_text("import numpy as np\n\ndef image_preprocess(img_path, norm=True):\n"
                                            "    return np.full((1, 1, 1, 1), 42.0, np.float32)\n")
    monkeypatch.setenv("SGS_IPU_DIR", str(tmp_path))
    assert utils.image_preprocess_func("mobilenet_v2")("x.jpg")[0, 0, 0, 0] == 42.0
    # names the folder does not hold still come from the package
    assert utils.image_preprocess_func("mobilenet_v1").__module__ == "calibrator_custom.preprocess_method.mobilenet_v1"
    monkeypatch.setenv("SGS_IPU_DIR", str(tmp_path / "missing"))
    assert utils.image_preprocess_func("mobilenet_v2").__module__ == "calibrator_custom.preprocess_method.mobilenet_v2"


def test_unknown_name_lists_the_builtins():
    with pytest.raises(ConfigError, match="unknown preprocess method 'mobilenetv2'; did you mean 'onnx_mobilenetv2'") as e:
        utils.image_preprocess_func("mobilenetv2")
    assert ", ".join(preprocess_method.__all__) in str(e.value)
    assert "or pass the path of your own .py file" in str(e.value)


def test_user_file(tmp_path):
    (tmp_path / "helper_mod_for_test.py").write_text("VALUE = 7\n")
    (tmp_path / "my_pre.py").write_text(
        "import numpy as np\nfrom helper_mod_for_test import VALUE\n\n"
        "def image_preprocess(img_path, norm=True):\n"
        "    return np.full((1, 2, 2, 3), VALUE if norm else 3, np.float32 if norm else np.uint8)\n")
    before = list(sys.path)
    func = utils.image_preprocess_func(str(tmp_path / "my_pre.py"))
    assert sys.path == before  # the file's folder was importable only while it loaded
    out = func("ignored.jpg")
    assert out.shape == (1, 2, 2, 3) and out.dtype == np.float32 and out[0, 0, 0, 0] == 7
    assert func("ignored.jpg", False).dtype == np.uint8
    assert pickle.loads(pickle.dumps(func)) is func  # importable by name: works with multiprocessing


def test_user_file_missing(tmp_path):
    path = str(tmp_path / "nope.py")
    with pytest.raises(FileNotFoundError, match="preprocess file .*nope.py' does not exist") as e:
        utils.image_preprocess_func(path)
    assert isinstance(e.value, ConfigError) and isinstance(e.value, ValueError)


def test_user_file_without_function(tmp_path):
    (tmp_path / "empty_pre.py").write_text("def preprocess(p):\n    return p\n")
    with pytest.raises(ConfigError, match=r"empty_pre.py' defines no function image_preprocess\(img_path, norm=True\)"):
        utils.image_preprocess_func(tmp_path / "empty_pre.py")


def test_user_file_that_fails_to_import(tmp_path):
    (tmp_path / "broken_pre.py").write_text("def image_preprocess(:\n")
    with pytest.raises(ConfigError, match="broken_pre.py' failed to import: SyntaxError"):
        utils.image_preprocess_func(str(tmp_path / "broken_pre.py"))


# ------------------------------------------------------------------------------------------ image_generator
def _fake(tag):
    def image_preprocess(img_path, norm=True):
        return (tag, img_path, norm)
    return image_preprocess


def test_generator_single_input():
    items = list(utils.image_generator(["a.jpg", ["b.jpg"], ("c.jpg",)], [_fake("f")], norm=False))
    assert items == [[[("f", "a.jpg", False)]], [[("f", "b.jpg", False)]], [[("f", "c.jpg", False)]]]


def test_generator_multi_input_and_default_norm():
    gen = utils.image_generator([["a.jpg", "a.npy"], ("b.jpg", "b.npy")], [_fake("img"), _fake("raw")])
    assert next(gen) == [[("img", "a.jpg", True), ("raw", "a.npy", True)]]
    assert next(gen) == [[("img", "b.jpg", True), ("raw", "b.npy", True)]]
    assert next(gen, None) is None


def test_generator_accepts_a_single_function():
    assert list(utils.image_generator(["a"], _fake("f"))) == [[[("f", "a", True)]]]


@pytest.mark.parametrize("items,funcs", [(["a.jpg"], 2), ([["a.jpg", "b.jpg"]], 1), ([["a", "b", "c"]], 2)])
def test_generator_count_mismatch(items, funcs):
    gen = utils.image_generator(items, [_fake(k) for k in range(funcs)])
    with pytest.raises(ValueError, match="Got different num of preprocess_methods and images!"):
        next(gen)


def test_generator_is_lazy_and_names_the_item():
    gen = utils.image_generator([["a", "b"], ["c"]], [_fake(0), _fake(1)])
    assert next(gen) == [[(0, "a", True), (1, "b", True)]]
    with pytest.raises(InputError, match=r"\(item 1: 1 image\(s\) \['c'\], 2 preprocess method\(s\)\)"):
        next(gen)


def test_generator_needs_a_function():
    with pytest.raises(InputError, match="needs at least one preprocess function"):
        next(utils.image_generator(["a"], []))


# ------------------------------------------------------------------------------------------ all_path
def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_all_path_is_recursive_and_filters_by_suffix(tmp_path):
    want = [_touch(tmp_path / "a.jpg"), _touch(tmp_path / "sub" / "b.PNG"), _touch(tmp_path / "sub" / "deep" / "c.npy")]
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / "jpg")
    assert utils.all_path(tmp_path) == sorted(str(p.resolve()) for p in want)


def test_all_path_errors(tmp_path):
    _touch(tmp_path / "readme.md")
    with pytest.raises(FileNotFoundError, match="No images found in"):
        utils.all_path(tmp_path)
    with pytest.raises(FileNotFoundError, match="it is not a folder"):
        utils.all_path(tmp_path / "missing")


# ------------------------------------------------------------------------------------------ read_image_list
def test_list_file_multi_input(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for name in ("a.jpg", "a.npy", "b.jpg", "b.npy"):
        _touch(data / name)
    absolute = _touch(tmp_path / "abs" / "c.jpg")
    (data / "list.txt").write_text(f"# image, features\n\na.jpg,a.npy\n  b.jpg , b.npy  \n{absolute},a.npy\n")
    monkeypatch.chdir(tmp_path / "abs")  # entries resolve against the list's folder, not the cwd
    samples = utils.read_image_list(data / "list.txt")
    assert samples == [[str(data / "a.jpg"), str(data / "a.npy")], [str(data / "b.jpg"), str(data / "b.npy")],
                       [str(absolute), str(data / "a.npy")]]
    gen = utils.image_generator(samples, [_fake("img"), _fake("raw")])
    assert next(gen) == [[("img", str(data / "a.jpg"), True), ("raw", str(data / "a.npy"), True)]]


def test_list_file_with_folder_prefix(tmp_path, monkeypatch):
    images = tmp_path / "images"
    _touch(images / "x.jpg")
    (tmp_path / "list.txt").write_text("x.jpg\n")
    monkeypatch.chdir(tmp_path)
    assert utils.read_image_list("images:list.txt") == [[os.path.join("images", "x.jpg")]]


def test_list_file_entries_found_only_in_the_cwd(tmp_path, monkeypatch):
    # the vendor's tools open list entries relative to the current folder: we accept that too
    _touch(tmp_path / "work" / "imgs" / "y.jpg")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "list.txt").write_text("imgs/y.jpg\n")
    monkeypatch.chdir(tmp_path / "work")
    assert utils.read_image_list(tmp_path / "lists" / "list.txt") == [[str(tmp_path / "work" / "imgs" / "y.jpg")]]


@pytest.mark.parametrize("text,fragment", [
    ("a.jpg\nmissing.jpg\n", "list.txt, line 2: image "),
    ("a.jpg,,a.jpg\n", "list.txt, line 1: empty path in 'a.jpg,,a.jpg'"),
    ("# c\na.jpg,a.jpg\n\na.jpg\n", "list.txt, line 4: 1 image(s) but line 2 has 2"),
    ("# only a comment\n\n", "names no images"),
])
def test_list_file_errors(tmp_path, text, fragment):
    _touch(tmp_path / "a.jpg")
    (tmp_path / "list.txt").write_text(text)
    with pytest.raises(InputError) as e:
        utils.read_image_list(tmp_path / "list.txt")
    assert fragment in str(e.value)


def test_list_file_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="image list .*nope.txt' does not exist"):
        utils.read_image_list(tmp_path / "nope.txt")


# ------------------------------------------------------------------------------------------ convert_to_input_formats
def details(fmt, shape, dtype=np.uint8, training=None, **extra):
    d = {"name": "x", "index": 0, "shape": np.array(shape, np.int32), "dtype": dtype, "input_formats": fmt,
         "training_input_formats": training or fmt, "layouts": "NHWC"}
    d.update(extra)
    return d


def test_float_model_details_return_the_image():
    img = np.ones((1, 2, 2, 3), np.float32)
    assert utils.convert_to_input_formats(img, {"name": "x", "shape": [1, 2, 2, 3], "dtype": np.float32}) is img


@pytest.mark.parametrize("fmt", ["RGB", "BGR"])
def test_rgb_bgr_pass_through(fmt):
    img = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    assert utils.convert_to_input_formats(img, details(fmt, (1, 2, 2, 3))) is img
    other = "BGR" if fmt == "RGB" else "RGB"
    with pytest.raises(InputError, match=f"{fmt} input_formats only support {fmt} for training_input_formats!"):
        utils.convert_to_input_formats(img, details(fmt, (1, 2, 2, 3), training=other))


def test_dtype_and_rank_are_checked():
    with pytest.raises(InputError, match="Got tensor of type float32 but expected type uint8 for input: x"):
        utils.convert_to_input_formats(np.zeros((1, 2, 2, 3), np.float32), details("RGB", (1, 2, 2, 3)))
    with pytest.raises(InputError, match="Dimension length mismatch. Got 3 but expected 4 for input: x"):
        utils.convert_to_input_formats(np.zeros((2, 2, 3), np.uint8), details("RGB", (1, 2, 2, 3)))
    with pytest.raises(InputError, match="Not support this input_formats: ARGB"):
        utils.convert_to_input_formats(np.zeros((1, 2, 2, 3), np.uint8), details("ARGB", (1, 2, 2, 3)))


def test_gray_zero_pads_into_the_model_shape():
    img = np.array([[1, 2, 3], [4, 5, 6]], np.uint8).reshape(1, 2, 3, 1)
    out = utils.convert_to_input_formats(img, details("GRAY", (1, 4, 4, 1), training="GRAY"))
    assert out.shape == (1, 4, 4, 1) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, :, 0], [[1, 2, 3, 0], [4, 5, 6, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    nchw = utils.convert_to_input_formats(img.reshape(1, 1, 2, 3), details("GRAY", (1, 1, 2, 4), layouts="NCHW"))
    np.testing.assert_array_equal(nchw[0, 0], [[1, 2, 3, 0], [4, 5, 6, 0]])
    with pytest.raises(InputError, match="GRAY input_formats only support RGB/GRAY for training_input_formats!"):
        utils.convert_to_input_formats(img, details("GRAY", (1, 4, 4, 1), training="BGR"))
    with pytest.raises(InputError, match=r"does not fit the model input shape \[1, 1, 1, 1\]"):
        utils.convert_to_input_formats(img, details("GRAY", (1, 1, 1, 1)))


@pytest.mark.parametrize("fmt,training,pixel,want", [
    ("RGBA", "RGB", (10, 20, 30), (10, 20, 30, 255)),
    ("BGRA", "RGB", (10, 20, 30), (30, 20, 10, 255)),
    ("RGBA", "BGR", (10, 20, 30), (30, 20, 10, 255)),   # the BGR pixel is B=10 G=20 R=30
    ("BGRA", "BGR", (10, 20, 30), (10, 20, 30, 255)),
])
def test_rgba_bgra(fmt, training, pixel, want):
    img = np.broadcast_to(np.array(pixel, np.uint8), (1, 2, 3, 3)).copy()
    out = utils.convert_to_input_formats(img, details(fmt, (1, 2, 4, 4), training=training))
    assert out.shape == (1, 2, 4, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, :3], np.broadcast_to(want, (2, 3, 4)))
    np.testing.assert_array_equal(out[0, :, 3], 0)  # width padded with zeros up to the aligned shape


def test_rgba_errors():
    with pytest.raises(InputError, match="RGBA input needs training format RGB or BGR"):
        utils.convert_to_input_formats(np.zeros((1, 2, 2, 3), np.uint8), details("RGBA", (1, 2, 2, 4), training="GRAY"))
    with pytest.raises(InputError, match="RGBA from training format RGB needs 3-channel"):
        utils.convert_to_input_formats(np.zeros((1, 2, 2, 1), np.uint8), details("RGBA", (1, 2, 2, 4), training="RGB"))


def test_rawdata_s16():
    scale = 1 / 32767
    x = np.array([0.5, -0.5, 2.0, -3.0, 1e-5], np.float32).reshape(1, 5)
    out = utils.convert_to_input_formats(x, details("RAWDATA_S16_NHWC", (1, 8), np.int16, quantization=(scale, 0)))
    assert out.shape == (1, 8) and out.dtype == np.int16
    # 0.5 * 32767 = 16383.5 -> 16383 (truncation); -16383.5 -> -16383; 2.0 and -3.0 clip to +-32767;
    # 1e-5 * 32767 = 0.33 -> 0; the last three cells are zero padding
    np.testing.assert_array_equal(out, [[16383, -16383, 32767, -32767, 0, 0, 0, 0]])
    with pytest.raises(InputError, match="need float32 datatype for convert"):
        utils.convert_to_input_formats(x.astype(np.float64),
                                       details("RAWDATA_S16_NHWC", (1, 8), np.int16, quantization=(scale, 0)))
    with pytest.raises(InputError, match="RAWDATA_S16_NHWC input_formats only support RAWDATA_S16_NHWC"):
        utils.convert_to_input_formats(x, details("RAWDATA_S16_NHWC", (1, 8), np.int16, training="RAWDATA_F32_NHWC",
                                                  quantization=(scale, 0)))


def test_rawdata_f32():
    x = np.array([[1.5, -2.25]], np.float32)
    out = utils.convert_to_input_formats(x, details("RAWDATA_F32_NHWC", (1, 4), np.float32))
    assert out.shape == (1, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.5, -2.25, 0, 0]])
    with pytest.raises(InputError, match=r"shape \[2, 2\] does not fit \[1, 4\]"):
        utils.convert_to_input_formats(np.zeros((2, 2), np.float32), details("RAWDATA_F32_NHWC", (1, 4), np.float32))


# --- YUV_NV12 -------------------------------------------------------------------------------------------------
RED, BLACK, GREY, BLUE = (255, 0, 0), (0, 0, 0), (100, 100, 100), (0, 0, 255)
# A 3x3 RGB image: odd sizes are padded to 4x4 by repeating the last row and column.
NV12_IMAGE = np.array([[RED, RED, GREY],
                       [BLACK, BLACK, GREY],
                       [GREY, GREY, BLUE]], np.uint8)
# By hand, with Y = (218 R + 732 G + 74 B) / 1024, U = (-117 R - 395 G + 512 B) / 1024 + 128,
# V = (512 R - 465 G - 47 B) / 1024 + 128, then floor(x + 0.5):
#   red:   Y = 55590/1024 = 54.29 -> 54;  U = -29835/1024 + 128 = 98.8643;  V = 130560/1024 + 128 = 255.5
#   black: Y = 0;  U = V = 128.   grey: Y = 102400/1024 = 100, U = V = 128 (each row of the matrix sums to 0)
#   blue:  Y = 18870/1024 = 18.43 -> 18;  U = 130560/1024 + 128 = 255.5 -> 256 -> clip 255;
#          V = -11985/1024 + 128 = 116.2959 -> 116
#   block (rows 0-1, cols 0-1) = red, red, black, black: U = (98.8643*2 + 128*2)/4 = 113.432 -> 113,
#          V = (255.5*2 + 128*2)/4 = 191.75 -> 192
#   block (rows 2-3, cols 2-3) = blue replicated 4 times: U 255, V 116; the other blocks are grey: 128, 128
NV12_PLANE = np.array([[54, 54, 100, 100],
                       [0, 0, 100, 100],
                       [100, 100, 18, 18],
                       [100, 100, 18, 18],      # row 3 = row 2 repeated (odd height)
                       [113, 192, 128, 128],    # U, V interleaved: block (0,0) then block (0,1)
                       [128, 128, 255, 116]])


def test_nv12_hand_computed():
    out = utils.convert_to_input_formats(NV12_IMAGE[None], details("YUV_NV12", (1, 6, 4, 1), training="RGB"))
    assert out.shape == (1, 6, 4, 1) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, :, 0], NV12_PLANE)


def test_nv12_from_bgr_nchw_batch_and_padding():
    bgr = NV12_IMAGE[..., ::-1]
    batch = np.stack([bgr, bgr])
    out = utils.convert_to_input_formats(batch, details("YUV_NV12", (2, 8, 6, 1), training="BGR"))
    assert out.shape == (2, 8, 6, 1)
    for k in range(2):
        np.testing.assert_array_equal(out[k, :6, :4, 0], NV12_PLANE)
        assert not out[k, 6:].any() and not out[k, :, 4:].any()
    nchw = np.transpose(NV12_IMAGE[None], (0, 3, 1, 2)).copy()
    out = utils.convert_to_input_formats(nchw, details("YUV_NV12", (1, 6, 4, 1), training="RGB", layouts="NCHW"))
    np.testing.assert_array_equal(out[0, :, :, 0], NV12_PLANE)


def test_nv12_gray_training_aligns_and_flattens():
    img = np.arange(1, 10, dtype=np.uint8).reshape(1, 3, 3, 1)
    d = details("YUV_NV12", (1, 6, 4, 1), training="GRAY", input_height_alignment=2, input_width_alignment=2)
    out = utils.convert_to_input_formats(img, d)
    # the 3x3 image sits in a zero 4x4 (aligned to 2), laid out row-major at the start of the 6x4 input
    np.testing.assert_array_equal(out[0, :, :, 0], [[1, 2, 3, 0], [4, 5, 6, 0], [7, 8, 9, 0], [0, 0, 0, 0],
                                                    [0, 0, 0, 0], [0, 0, 0, 0]])


def test_nv12_errors():
    with pytest.raises(InputError, match=r"the NV12 plane has shape \[6, 4, 1\], which does not fit"):
        utils.convert_to_input_formats(NV12_IMAGE[None], details("YUV_NV12", (1, 4, 4, 1), training="RGB"))
    with pytest.raises(InputError, match="YUV_NV12 converts RGB, BGR or GRAY images"):
        utils.convert_to_input_formats(NV12_IMAGE[None], details("YUV_NV12", (1, 6, 4, 1), training="RAWDATA_F32_NHWC"))


def nv12_by_loops(rgb: np.ndarray) -> np.ndarray:
    """Reference: pixel loops in plain Python floats, edge-replicated indices, same formula as the docstring."""
    h, w = rgb.shape[:2]
    he, we = h + h % 2, w + w % 2

    def px(y, x):
        r, g, b = (float(v) for v in rgb[min(y, h - 1), min(x, w - 1)])
        return ((218 * r + 732 * g + 74 * b) / 1024, (-117 * r - 395 * g + 512 * b) / 1024 + 128,
                (512 * r - 465 * g - 47 * b) / 1024 + 128)

    def q(v):
        return min(max(np.floor(v + 0.5), 0), 255)

    plane = np.zeros((he + he // 2, we))
    for y in range(he):
        for x in range(we):
            plane[y, x] = q(px(y, x)[0])
    for by in range(he // 2):
        for bx in range(we // 2):
            for c in (1, 2):
                a = [px(2 * by + dy, 2 * bx + dx)[c] for dy in (0, 1) for dx in (0, 1)]
                plane[he + by, 2 * bx + c - 1] = q(((a[0] + a[2]) + (a[1] + a[3])) / 4)
    return plane


@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 7), st.integers(1, 7), st.just(3))))
def test_nv12_matches_pixel_loops(rgb):
    h, w = rgb.shape[:2]
    he, we = h + h % 2, w + w % 2
    out = utils.convert_to_input_formats(rgb[None], details("YUV_NV12", (1, he * 3 // 2, we, 1), training="RGB"))
    np.testing.assert_array_equal(out[0, :, :, 0], nv12_by_loops(rgb))


# ------------------------------------------------------------------------------------------ check_quant_param
GOOD = {"name": "conv1", "min": [-1.0], "max": [1.0], "bit": 8}


def test_check_quant_param_accepts_valid():
    utils.check_quant_param(None)
    utils.check_quant_param([])
    utils.check_quant_param([GOOD, {**GOOD, "bit": 16, "data": np.zeros(3, np.float32)}])


@pytest.mark.parametrize("qp,fragment", [
    ({"name": "x"}, "quant_param must be a `list`, got dict"),
    ([GOOD, "conv2"], "quant_param[1] must be a `dict`"),
    ([{"name": "w", "min": [0.0]}], "quant_param[0]: w has no max, bit"),
    ([{**GOOD, "name": 3}], "name of each quant_param[0] must be `str`"),
    ([GOOD, {**GOOD, "min": np.zeros(2)}], "min of quant_param[1]: conv1 must be a `list` (got ndarray; use .tolist()"),
    ([{**GOOD, "max": (1.0,)}], "max of quant_param[0]: conv1 must be a `list`"),
    ([{**GOOD, "bit": 8.0}], "bit of quant_param[0]: conv1 must be `int`, got 8.0"),
    ([{**GOOD, "data": [1, 2]}], "data of quant_param[0]: conv1 must be `numpy.ndarray`, got list"),
])
def test_check_quant_param_errors(qp, fragment):
    with pytest.raises(ConfigError) as e:
        utils.check_quant_param(qp)
    assert fragment in str(e.value) and isinstance(e.value, ValueError)


def test_check_quant_param_takes_a_bool_bit_like_the_sdk_with_a_warning(caplog):
    with caplog.at_level("WARNING", logger="calibrator_custom.utils"):
        utils.check_quant_param([{**GOOD, "bit": True}])
    assert "is the bool True; accepted as the int 1 like the SDK does" in caplog.text


# ------------------------------------------------------------------------------------------ get_out_model_name
@pytest.mark.parametrize("model,phase,want", [
    ("m_float.sim", "Fixed", "m_fixed.sim"),
    ("m_cmodel_float.sim", "Fixed", "m_fixed.sim"),
    ("m_fixed_without_ipu_ctrl.sim", "Fixed", "m_fixed.sim"),
    ("m.sim", "Fixed", "m_fixed.sim"),
    ("dir/M_FLOAT.SIM", "Fixed", "dir/M_fixed.sim"),
    ("models.sim/m.tflite", "Fixed", "models.sim/m_fixed.sim"),
    ("m_float.sim", "Fixed_without_ipu_ctrl", "m_fixed_without_ipu_ctrl.sim"),
    ("m_cmodel_float.sim", "Fixed_without_ipu_ctrl", "m_fixed_without_ipu_ctrl.sim"),
    ("m_float.sim", "CMD_Float", "m_cmodel_float.sim"),
    ("m.sim", "CMD_Float", "m_cmodel_float.sim"),
])
def test_out_model_name(model, phase, want):
    assert utils.get_out_model_name(model, phase=phase) == want


def test_out_model_name_output(tmp_path):
    assert utils.get_out_model_name("a/m_float.sim", str(tmp_path)) == str(tmp_path / "m_fixed.sim")
    assert utils.get_out_model_name("m_float.sim", tmp_path / "x.sim") == str(tmp_path / "x.sim")
    assert utils.get_out_model_name("m_float.sim", "x.sim") == "x.sim"


def test_out_model_name_missing_folder_falls_back_with_a_warning(tmp_path, caplog):
    # the SDK falls back to the generated name when the output's folder does not exist
    with caplog.at_level("WARNING", logger="calibrator_custom.utils"):
        got = utils.get_out_model_name("m_float.sim", str(tmp_path / "missing" / "x.sim"))
    assert got == "m_fixed.sim"
    assert "does not exist; writing m_fixed.sim instead, as the SDK does" in caplog.text


@pytest.mark.parametrize("model", ["m.tflite", "models.sim/m.tflite"])
def test_tflite_output_never_overwrites_the_model(model, caplog):
    # deliberate difference: the SDK returns the model path itself for a name without '.sim'
    want = model[:-len(".tflite")] + "_fixed.sim"
    with caplog.at_level("WARNING", logger="calibrator_custom.utils"):
        assert utils.get_out_model_name(model) == want
    assert "the SDK would return the model path itself" in caplog.text
    assert utils.output_model_path(model) == want
    assert utils.output_model_path("m_float.sim") == "m_fixed.sim"
    assert utils.output_model_path("m_float.sim", "m_float.sim") == "m_fixed.sim"
