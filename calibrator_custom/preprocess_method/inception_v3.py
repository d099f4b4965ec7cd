"""inception_v3: RGB, 87.5 % centre crop, uint8 INTER_AREA resize to 299x299, x * 2/255 - 1 (float64).

Values in [-1, 1] (TF-slim checkpoints). Matching input_config.ini:
training_input_formats=RGB; mean=127.5:127.5:127.5; std_value=127.5;

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

import cv2

from ._sdk_style import tf_crop_resize


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return tf_crop_resize(img_path, norm, size=299, interpolation=cv2.INTER_AREA, dtype=None)
