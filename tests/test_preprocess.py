"""Built-in preprocess methods of this package only, on real photos, each against its recipe spelled out here.

The methods named like the SDK's stock ones are checked against the SDK's own files in
tests/test_preprocess_sdk.py.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibrator_custom import preprocess_method, utils
from calibrator_custom.errors import InputError
from conftest import IMAGES_DIR, require_shared

PORTRAIT = "000000006409.jpg"   # 500 x 375 (h x w)
LANDSCAPE = "000000014773.jpg"  # 427 x 640

# torchvision Resize(256): shorter side 256, longer int(256 * long / short); CenterCrop(224): round((n - 224) / 2)
#   500 x 375 -> 341 x 256 (int(341.33)); rows round(58.5) = 58 -> 58:282, cols 16:240
#   427 x 640 -> 256 x 383 (int(383.70)); rows 16:240, cols round(79.5) = 80 -> 80:304
TORCH_RESIZE = {PORTRAIT: (341, 256), LANDSCAPE: (256, 383)}
TORCH_CROP = {PORTRAIT: (slice(58, 282), slice(16, 240)), LANDSCAPE: (slice(16, 240), slice(80, 304))}


@pytest.fixture(autouse=True)
def _shared():
    require_shared()


def photo(name: str) -> str:
    return str(IMAGES_DIR / name)


def bgr_pixels(name: str) -> np.ndarray:
    return cv2.imread(photo(name), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)


def resized(img: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(img.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def torchvision(name):       # RGB, Resize(256), CenterCrop(224), ToTensor (/255), Normalize(ImageNet)
    rows, cols = TORCH_CROP[name]
    img = resized(bgr_pixels(name)[..., ::-1], *TORCH_RESIZE[name])[rows, cols]
    return img, (img / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])


def stretch(size, scale_to_minus1_1):  # RGB, whole image to size x size; [-1, 1] or [0, 1]
    def recipe(name):
        img = resized(bgr_pixels(name)[..., ::-1], size, size)
        return img, (img / 127.5 - 1.0) if scale_to_minus1_1 else img / 255.0
    return recipe


RECIPES = {
    "onnx_mobilenetv2": (torchvision, 224),
    "face_detection_short_range": (stretch(128, True), 128),
    "face_landmark": (stretch(192, False), 192),
    "hand_landmark_lite": (stretch(224, False), 224),
    "iris_landmark": (stretch(64, False), 64),
    "palm_detection_lite": (stretch(192, False), 192),
    "pose_detection": (stretch(224, False), 224),
}


def test_every_builtin_has_a_recipe_here():
    assert sorted(RECIPES) == sorted(preprocess_method.OWN_METHODS)


@pytest.mark.parametrize("image", [PORTRAIT, LANDSCAPE])
@pytest.mark.parametrize("method", sorted(RECIPES))
def test_builtin_matches_recipe(method, image):
    recipe, size = RECIPES[method]
    pixels, normalised = recipe(image)
    func = utils.image_preprocess_func(method)

    got = func(photo(image), True)
    assert got.shape == (1, size, size, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], normalised, rtol=1e-5, atol=2e-5)

    raw = func(photo(image), norm=False)
    assert raw.shape == (1, size, size, 3) and raw.dtype == np.uint8
    np.testing.assert_array_equal(raw[0], np.clip(np.round(pixels), 0, 255).astype(np.uint8))


def test_mediapipe_methods_agree_with_the_models_inputs():
    from calibrator_custom.model.graph import load_model
    from conftest import MODELS_DIR

    for name in ("face_detection_short_range", "face_landmark", "hand_landmark_lite", "iris_landmark",
                 "palm_detection_lite", "pose_detection"):
        model = load_model(MODELS_DIR / f"{name}.tflite")
        shape = model.main.tensors[model.main.inputs[0]].shape
        assert utils.image_preprocess_func(name)(photo(PORTRAIT)).shape == tuple(shape)


def test_grey_and_rgba_files_become_three_channels(tmp_path):
    grey = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (20, 1))   # 20 x 25, value = 10 * column
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    rgba = np.zeros((20, 25, 4), np.uint8)
    rgba[..., :3] = grey[..., None]
    rgba[..., 3] = 7                                                 # alpha is dropped
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    func = utils.image_preprocess_func("iris_landmark")
    a, b = func(str(tmp_path / "grey.png"), False), func(str(tmp_path / "rgba.png"), False)
    assert a.shape == b.shape == (1, 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[..., 0], a[..., 2])              # grey: R == G == B


def test_missing_image_names_the_path(tmp_path):
    path = str(tmp_path / "nope.jpg")
    func = utils.image_preprocess_func("mobilenet_v2")
    with pytest.raises(FileNotFoundError, match="No such image: .*nope.jpg") as e:
        func(path)
    assert isinstance(e.value, InputError)


def test_unreadable_image_names_the_path(tmp_path):
    (tmp_path / "fake.jpg").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    func = utils.image_preprocess_func("onnx_resnet18")
    for name in ("fake.jpg", "empty.jpg"):
        with pytest.raises(InputError, match=f"cannot read image .*{name}: not an image format OpenCV decodes"):
            func(str(tmp_path / name))


def test_tiny_image(tmp_path):
    cv2.imwrite(str(tmp_path / "dot.png"), np.full((1, 1, 3), (10, 20, 30), np.uint8))   # one BGR pixel
    out = utils.image_preprocess_func("inception_v3")(str(tmp_path / "dot.png"), False)
    assert out.shape == (1, 299, 299, 3)
    np.testing.assert_array_equal(out[0, 0, 0], [30, 20, 10])                             # RGB order
