"""Steps of the SDK's stock preprocessing recipes, with the SDK's numeric types at every step.

The SDK's methods differ in small ways that change the numbers: which OpenCV read flag they use,
whether they resize the uint8 pixels or a float32 copy, whether the mean is subtracted in float64
(a Python list of means promotes the float32 image) and whether the result is cast back to float32.
Each helper here keeps those choices explicit so the built-in methods give the SDK's arrays bit for
bit (tests/test_preprocess_sdk.py compares them with the SDK's own files when those are present).
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import cv2
import numpy as np

from ..errors import InputError

#: OpenCV read modes: 'unchanged' = imread(path, -1) (as stored, no EXIF rotation); 'color' =
#: imread(path) (3-channel BGR, EXIF orientation applied); 'gray' = single channel
_READ_FLAGS = {"unchanged": cv2.IMREAD_UNCHANGED, "color": cv2.IMREAD_COLOR, "gray": cv2.IMREAD_UNCHANGED}


def imread(img_path, mode: str = "unchanged") -> np.ndarray:
    """Pixels of an image file read like cv2.imread with the mode's flag; missing or undecodable files raise."""
    from ..utils import ImageNotFoundError  # utils imports preprocess methods lazily; no cycle at import

    path = os.fspath(img_path)
    if not os.path.isfile(path):
        raise ImageNotFoundError(f"No such image: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, _READ_FLAGS[mode]) if data.size else None
    if img is None:
        raise InputError(f"cannot read image {path}: not an image format OpenCV decodes (jpg, png, bmp, ...)")
    return img


def channels(img: np.ndarray) -> int:
    """Channel count of an OpenCV image (1 for a 2-D grey image)."""
    return 1 if img.ndim == 2 else img.shape[2]


def as_bgr(img: np.ndarray) -> np.ndarray:
    """3-channel BGR: grey is replicated, alpha dropped."""
    n = channels(img)
    if n == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if n == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return img


def as_rgb(img: np.ndarray) -> np.ndarray:
    """3-channel RGB from any OpenCV image (BGR, BGRA or grey)."""
    n = channels(img)
    code = {1: cv2.COLOR_GRAY2RGB, 4: cv2.COLOR_BGRA2RGB}.get(n, cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(img, code)


def as_gray(img: np.ndarray) -> np.ndarray:
    """Single-channel grey from any OpenCV image."""
    n = channels(img)
    if n == 1:
        return img
    return cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if n == 4 else cv2.COLOR_BGR2GRAY)


def swap_rb(img: np.ndarray) -> np.ndarray:
    """Reverse the channel order of a 3-channel image (BGR <-> RGB), keeping its dtype."""
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def resize(img: np.ndarray, height: int, width: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """OpenCV resize in the image's own dtype (uint8 resizes round; float32/float64 do not)."""
    return cv2.resize(img, (int(width), int(height)), interpolation=interpolation)


def crop_fraction_int(img: np.ndarray, fraction: float) -> np.ndarray:
    """Centre crop of int(side * fraction) pixels per side (at least 1), starting at (side - kept) // 2."""
    h, w = img.shape[:2]
    kh, kw = max(1, int(h * fraction)), max(1, int(w * fraction))  # the SDK fails on an empty crop
    top, left = (h - kh) // 2, (w - kw) // 2
    return img[top:top + kh, left:left + kw]


def crop_fraction_floor(img: np.ndarray, fraction: float) -> np.ndarray:
    """Centre crop dropping floor((side - side * fraction) / 2) pixels on each edge."""
    h, w = img.shape[:2]
    dh, dw = math.floor((h - h * fraction) / 2.0), math.floor((w - w * fraction) / 2.0)
    return img[dh:h - dh, dw:w - dw]


def shorter_side_then_crop(img: np.ndarray, shorter: int, height: int, width: int,
                           interpolation: int) -> np.ndarray:
    """Scale so the shorter side is ``shorter`` (sides rounded), then take height x width at int((s - c) / 2)."""
    h, w = img.shape[:2]
    scale = float(shorter) / w if h > w else float(shorter) / h
    sh, sw = int(round(h * scale)), int(round(w * scale))
    out = resize(img, sh, sw, interpolation)
    top, left = int((sh - height) / 2), int((sw - width) / 2)
    return out[top:top + height, left:left + width]


def letterbox_top_left(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Fit inside height x width keeping the aspect (wide images by width when w/h > 1.78), zero-pad right/bottom.

    Images smaller than the target on both sides are only padded.
    """
    h, w = img.shape[:2]
    if h < height and w < width:
        return np.pad(img, ((0, height - h), (0, width - w), (0, 0)), "constant")
    if w / h > 1.78:
        new_h = int(h * (width / w))
        out = cv2.resize(img, (width, new_h))
        return np.pad(out, ((0, height - new_h), (0, 0), (0, 0)), "constant")
    new_w = int(w * (height / h))
    out = cv2.resize(img, (new_w, height))
    return np.pad(out, ((0, 0), (0, width - new_w), (0, 0)), "constant")


def subtract_divide(img: np.ndarray, mean: Sequence[float] | float, std: Sequence[float] | float,
                    dtype=np.float32) -> np.ndarray:
    """(img - mean) / std evaluated in float64 (means given per channel in the image's order), cast to ``dtype``."""
    out = (img - np.asarray(mean, dtype=np.float64)) / np.asarray(std, dtype=np.float64)
    return out.astype(dtype) if dtype is not None else out


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round half to even and store as uint8 (the SDK's norm=False pixels)."""
    return np.round(img).astype(np.uint8)


def batch(img: np.ndarray) -> np.ndarray:
    """Add the leading batch dimension."""
    return np.expand_dims(img, 0)


# ------------------------------------------------------------------------------------ whole recipes
def plain_resize(img_path, norm: bool, height: int, width: int, mean: Sequence[float], std,
                 rgb: bool = False, read: str = "unchanged", raw_float_when_not_norm: bool = False,
                 pre_divide: float | None = None) -> np.ndarray:
    """The SDK's Caffe/ONNX recipe: BGR, float32 bilinear resize to height x width, (x - mean) / std.

    ``mean``/``std`` are per channel in B, G, R order (a scalar std for all). ``rgb`` swaps to RGB after
    normalising. norm=False gives rounded uint8 pixels, or the float32 resized pixels when
    ``raw_float_when_not_norm``. ``pre_divide`` divides the float32 pixels first (x / 255 - mean).
    """
    img = imread(img_path, read)
    img = as_bgr(img) if read == "unchanged" else img
    out = resize(img.astype(np.float32), height, width)
    if norm:
        if pre_divide is not None:
            out = out / np.float32(pre_divide)
        out = subtract_divide(out, mean, std)
    elif not raw_float_when_not_norm:
        out = to_uint8(out)
    if rgb:
        out = swap_rb(out)
    return batch(out)


def tf_crop_resize(img_path, norm: bool, size: int, interpolation: int, dtype=np.float32) -> np.ndarray:
    """TF-slim recipe: RGB, integer 87.5 % centre crop, uint8 resize to size x size, x * 2/255 - 1.

    ``dtype`` None keeps the float64 result uncast.
    """
    img = crop_fraction_int(as_rgb(imread(img_path)), 0.875)
    out = resize(img, size, size, interpolation)
    if not norm:
        return batch(to_uint8(out))
    out = (2.0 / 255.0) * out - 1.0
    return batch(out.astype(dtype) if dtype is not None else out)


def fda_letterbox(img_path, norm: bool, height: int, width: int, rgb: bool,
                  mean_bgr: Sequence[float] | None) -> np.ndarray:
    """Face-detection recipe: BGR float32 letterboxed into height x width (top-left, zero pad).

    norm=True subtracts ``mean_bgr`` in float64 (or keeps the float32 pixels when it is None);
    norm=False rounds to uint8. ``rgb`` swaps to RGB last.
    """
    out = letterbox_top_left(as_bgr(imread(img_path)).astype(np.float32), height, width)
    if norm:
        if mean_bgr is not None:
            out = out - np.asarray(mean_bgr, dtype=np.float64)
    else:
        out = to_uint8(out)
    if rgb:
        out = swap_rb(out)
    return batch(out)


def shorter_side_recipe(img_path, norm: bool, color: str, interpolation: int, mean: Sequence[float],
                        std: Sequence[float] | float = 1.0) -> np.ndarray:
    """VGG/ResNet recipe: float32 pixels (``color`` 'BGR' or 'RGB'), shorter side 256, centre 224x224 crop,
    (x - mean) / std in float64 left uncast (means in the image's channel order); norm=False rounds to uint8."""
    img = imread(img_path)
    img = as_bgr(img) if color == "BGR" else as_rgb(img)
    out = shorter_side_then_crop(img.astype(np.float32), 256, 224, 224, interpolation)
    if not norm:
        return batch(to_uint8(out))
    out = out - np.asarray(mean, dtype=np.float64)
    if np.any(np.asarray(std) != 1.0):
        out = out / np.asarray(std, dtype=np.float64)
    return batch(out)


def darknet_resize(img_path, norm: bool, size: int) -> np.ndarray:
    """YOLO (darknet) recipe: RGB uint8 bilinear resize to size x size, then float32 x / 255; norm=False uint8."""
    out = resize(as_rgb(imread(img_path)), size, size).astype(np.float32)
    return batch(out / 255.0 if norm else to_uint8(out))


def torch_crop_pixels(img_path) -> np.ndarray:
    """RGB float32 bilinear resize to 256x256 and the central [16:240] square, rounded to uint8 (SDK norm=False)."""
    img = as_rgb(as_bgr(imread(img_path)))
    out = resize(img.astype(np.float32), 256, 256)[16:240, 16:240]
    return batch(to_uint8(out))


def _gaussian_sigma(in_size: int, out_size: int) -> float:
    return max(0.0, (in_size / out_size - 1.0) / 2.0)


def antialiased_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """float64 resize like scikit-image's resize(order=1, mode='constant', anti_aliasing=True).

    When shrinking, a Gaussian of sigma (scale - 1) / 2 per axis (zero border, radius 4 sigma) smooths
    first; the bilinear sampling uses pixel centres, as OpenCV's INTER_LINEAR does.
    """
    img = img.astype(np.float64)
    sy, sx = _gaussian_sigma(img.shape[0], height), _gaussian_sigma(img.shape[1], width)
    if sy > 0 or sx > 0:
        ky = 2 * int(4.0 * sy + 0.5) + 1 if sy > 0 else 1
        kx = 2 * int(4.0 * sx + 0.5) + 1 if sx > 0 else 1
        img = cv2.GaussianBlur(img, (kx, ky), sigmaX=sx or 1e-12, sigmaY=sy or 1e-12,
                               borderType=cv2.BORDER_CONSTANT)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)


def caffe_square_recipe(img_path, norm: bool, resize_to: int, crop: int | None, mean_bgr: Sequence[float],
                        multiplier: float | None) -> np.ndarray:
    """Caffe (shicai / DenseNet) recipe: BGR / 255 in float64, centre square (by the shorter side, as the SDK
    cuts it), min-max-scaled anti-aliased bilinear resize to resize_to, optional centre crop, back to 0..255;
    norm: (x - mean) [* multiplier] as float32, else truncated to uint8."""
    im = imread(img_path, "color") / 255.0
    h, w = im.shape[:2]
    if h < w:
        off = (w - h) // 2
        im = im[:, off:off + h]
    else:  # the SDK keeps rows off .. off + h here, i.e. to the bottom edge
        off = (h - w) // 2
        im = im[off:off + h, :]
    lo, hi = im.min(), im.max()
    if hi > lo:
        im = antialiased_bilinear((im - lo) / (hi - lo), resize_to, resize_to) * (hi - lo) + lo
        im = im.astype(np.float32)
    else:
        im = np.full((resize_to, resize_to, 3), lo, dtype=np.float32)
    if crop is not None:
        start = (resize_to - crop) // 2
        im = im[start:start + crop, start:start + crop]
    im = im * 255
    if not norm:
        return batch(np.uint8(im))
    out = im - np.asarray(mean_bgr, dtype=np.float64).reshape(1, 1, 3)
    if multiplier is not None:
        out = out * multiplier
    return batch(out.astype(np.float32))
