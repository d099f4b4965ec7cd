"""Steps of this package's own preprocess methods (MediaPipe, torchvision): read, crop, resize, normalise.

The SDK-named methods use :mod:`._sdk_style`, which keeps the SDK's numeric types at every step.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from typing import Sequence

import cv2
import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

#: ImageNet statistics of torchvision models, in 0..255 pixel units, RGB order
TORCHVISION_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
TORCHVISION_STD_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
#: the same in torchvision's own units (pixels / 255), as its Normalize takes them
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


def read_image(img_path, color: str = "RGB") -> np.ndarray:
    """HxWx3 uint8 pixels of an image file in ``color`` order ('RGB' or 'BGR').

    Grey images are expanded to 3 channels, alpha is dropped, 16-bit images are scaled to 8 bit, and
    EXIF orientation is ignored (pixels as stored, like the vendor's cv2.imread(..., -1)).
    """
    path = os.fspath(img_path)
    from ..utils import ImageNotFoundError  # utils imports preprocess methods lazily; no cycle at import

    if not os.path.isfile(path):
        raise ImageNotFoundError(f"No such image: {path}")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise InputError(f"cannot read image {path}: {e.strerror or e}") from None
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    if is_jpeg(data):
        bgr, problem = _decode_jpeg(data, flags)
        if bgr is None and problem:
            raise InputError(f"cannot read image {path}: a damaged JPEG that OpenCV cannot decode ({problem})")
        if problem:
            log.warning("image %s is a damaged JPEG (%s); it was decoded anyway, but part of it may be grey or "
                        "garbled: replace the file or leave it out", path, problem)
    else:
        bgr = cv2.imdecode(data, flags) if data.size else None
    if bgr is None:
        raise InputError(f"cannot read image {path}: not an image format OpenCV decodes (jpg, png, bmp, ...)")
    return bgr[..., ::-1].copy() if color == "RGB" else bgr


def is_jpeg(data: np.ndarray) -> bool:
    return data.size >= 3 and bytes(data[:3]) == b"\xff\xd8\xff"


def _jpeg_end_problem(data: np.ndarray) -> str:
    """'' if the JPEG ends in its EOI marker (FF D9; trailing padding allowed), else why not."""
    if b"\xff\xd9" not in bytes(data[-4096:]):  # (EOI may be followed by padding or appended data)
        return "no end-of-image marker FF D9: the file is truncated"
    return ""


def _decode_jpeg(data: np.ndarray, flags: int) -> tuple[np.ndarray | None, str]:
    """cv2.imdecode, with libjpeg's warnings (it prints 'Corrupt JPEG data...' to stderr) captured.

    The process's stderr (file descriptor 2) is sent to a temporary file while OpenCV decodes; any
    text that is not a libjpeg warning is written back to stderr afterwards.
    """
    problems = []
    end = _jpeg_end_problem(data)
    if end:
        problems.append(end)
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: decode without capturing
        return cv2.imdecode(data, flags), "; ".join(problems)
    try:
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                bgr = cv2.imdecode(data, flags)
            finally:
                os.dup2(saved, 2)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
    finally:
        os.close(saved)
    other = []
    for line in text.splitlines():
        if "JPEG" in line or line.startswith(("Corrupt", "Premature", "Warning")):
            problems.append(f"libjpeg: {line.strip()}")
        elif line.strip():
            other.append(line)
    if other:
        sys.stderr.write("\n".join(other) + "\n")
    return bgr, "; ".join(problems)


def center_crop(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``height`` x ``width`` centre crop, as torchvision CenterCrop: top = round((h - height) / 2)."""
    h, w = img.shape[:2]
    top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
    return img[top:top + height, left:left + width]


def resize(img: np.ndarray, height: int, width: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """float32 image resized with OpenCV (no rounding, so norm=True sees the exact interpolated values)."""
    return cv2.resize(img.astype(np.float32), (width, height), interpolation=interpolation)


#: fixed-point fraction bits of Pillow's 8-bit resampling (32 - 8 - 2)
_PIL_PRECISION_BITS = 22


def _pil_bilinear_coeffs(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's antialiased bilinear taps for one axis: (first input index, tap count, int32 weights) per output.

    Triangle filter of support ``max(in/out, 1)``, centred at ``(i + 0.5) * in/out``, weights normalised to sum
    1 then rounded half away from zero to ``_PIL_PRECISION_BITS`` fraction bits (Pillow's Resample.c).
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = int(np.ceil(support)) * 2 + 1
    first = np.zeros(out_size, np.int64)
    count = np.zeros(out_size, np.int64)
    weights = np.zeros((out_size, ksize), np.int64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)  # C casts truncate toward zero
        hi = min(int(center + support + 0.5), in_size)
        x = (np.arange(lo, hi) - center + 0.5) / filterscale
        w = np.maximum(0.0, 1.0 - np.abs(x))
        total = w.sum()
        if total != 0.0:
            w = w / total
        scaled = w * (1 << _PIL_PRECISION_BITS)
        weights[i, :hi - lo] = np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)).astype(np.int64)
        first[i], count[i] = lo, hi - lo
    return first, count, weights


def _pil_pass(img: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One Pillow resampling pass of uint8 ``img`` along ``axis`` (0 rows, 1 columns), rounded and clipped."""
    first, count, weights = _pil_bilinear_coeffs(img.shape[axis], out_size)
    src = np.moveaxis(img, axis, 0).astype(np.int64)
    idx = np.minimum(first[:, None] + np.arange(weights.shape[1])[None, :], img.shape[axis] - 1)
    w = np.where(np.arange(weights.shape[1])[None, :] < count[:, None], weights, 0)
    acc = np.full((out_size,) + src.shape[1:], 1 << (_PIL_PRECISION_BITS - 1), np.int64)
    for k in range(weights.shape[1]):
        acc += src[idx[:, k]] * w[:, k].reshape((-1,) + (1,) * (src.ndim - 1))
    out = np.clip(acc >> _PIL_PRECISION_BITS, 0, 255).astype(np.uint8)
    return np.moveaxis(out, 0, axis)


def pil_bilinear_resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 HxWxC image resized as Pillow's ``Image.resize((width, height), BILINEAR)``: antialiased
    (the filter widens when shrinking), horizontal pass first, each pass rounded to uint8."""
    out = np.asarray(img, np.uint8)
    if out.shape[1] != width:
        out = _pil_pass(out, width, 1)
    if out.shape[0] != height:
        out = _pil_pass(out, height, 0)
    return out


def torchvision_resize_shorter_side(img: np.ndarray, size: int) -> np.ndarray:
    """torchvision ``Resize(size)`` on a PIL image: shorter side ``size``, longer ``int(size * long / short)``,
    with Pillow's bilinear resampling (uint8 out)."""
    h, w = img.shape[:2]
    nh, nw = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    return pil_bilinear_resize(img, nh, nw)


def resize_shorter_side(img: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is ``size``, the longer int(size * long / short), as torchvision Resize(int)."""
    h, w = img.shape[:2]
    if h <= w:
        return resize(img, size, int(size * w / h))
    return resize(img, int(size * h / w), size)


def finish(img: np.ndarray, norm: bool, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Batch of one: float32 (img - mean) / std when ``norm``, else uint8 clip(round-half-even(img), 0, 255)."""
    if norm:
        out = (img.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
        return out.astype(np.float32)[None]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)[None]


def torchvision_style(img_path, norm: bool, size: int = 224, resize_short: int = 256) -> np.ndarray:
    """RGB; shorter side to ``resize_short``; centre crop size x size; (x - 255*mean) / (255*std), ImageNet."""
    img = center_crop(resize_shorter_side(read_image(img_path, "RGB"), resize_short), size, size)
    return finish(img, norm, TORCHVISION_MEAN_RGB, TORCHVISION_STD_RGB)


def torchvision_pil_style(img_path, size: int = 224, resize_short: int = 256) -> np.ndarray:
    """torchvision's ImageNet pipeline on a PIL image, exactly: ``Resize(resize_short)`` (Pillow's antialiased
    bilinear), ``CenterCrop(size)``, ``ToTensor`` (x / 255) and ``Normalize`` ((x - mean) / std) in float32
    as torch computes them. NHWC float32 batch of one."""
    img = center_crop(torchvision_resize_shorter_side(read_image(img_path, "RGB"), resize_short), size, size)
    x = img.astype(np.float32) / np.float32(255)
    mean, std = np.asarray(TORCHVISION_MEAN, np.float32), np.asarray(TORCHVISION_STD, np.float32)
    return ((x - mean) / std).astype(np.float32)[None]


def stretch_style(img_path, norm: bool, size: int, mean: float, std: float) -> np.ndarray:
    """RGB; bilinear resize of the whole image to size x size (aspect not kept); (x - mean) / std."""
    img = resize(read_image(img_path, "RGB"), size, size)
    return finish(img, norm, (mean,) * 3, (std,) * 3)
