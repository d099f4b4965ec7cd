"""vgg16: RGB float32, shorter side 256 (INTER_AREA), centre 224x224, x - (123.68, 116.78, 103.94)
in float64; norm=False rounds to uint8.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import cv2
import numpy as np

from ._sdk_style import shorter_side_recipe

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    return shorter_side_recipe(img_path, norm, 'RGB', cv2.INTER_AREA, mean=(123.68, 116.78, 103.94))
