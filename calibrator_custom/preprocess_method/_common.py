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


def stretch_style(img_path, norm: bool, size: int, mean: float, std: float) -> np.ndarray:
    """RGB; bilinear resize of the whole image to size x size (aspect not kept); (x - mean) / std."""
    img = resize(read_image(img_path, "RGB"), size, size)
    return finish(img, norm, (mean,) * 3, (std,) * 3)
