"""Real photos from ../shared/images/coco, preprocessed the way the shared MediaPipe models expect."""
from __future__ import annotations

import cv2
import numpy as np

from conftest import IMAGES_DIR

#: (mean, std) per model family, from ../shared/models/MODELS.md
FACE_NORM = (127.5, 127.5)
UNIT_NORM = (0.0, 255.0)


def image_paths() -> list:
    return sorted(IMAGES_DIR.glob("*.jpg"))


def calibration_images() -> list:
    return image_paths()[:30]


def evaluation_images() -> list:
    return image_paths()[30:]


def norm_for(model_name: str) -> tuple[float, float]:
    return FACE_NORM if model_name.startswith("face_detection") else UNIT_NORM


def load_rgb(path, height: int, width: int) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)


def model_input(path, shape, model_name: str) -> np.ndarray:
    """float32 NHWC batch of one image, normalised with the model's mean/std."""
    _, h, w, _ = shape
    mean, std = norm_for(model_name)
    img = load_rgb(path, h, w).astype(np.float32)
    return ((img - mean) / std)[None].astype(np.float32)
