"""shufflenet_v2: BGR float32, shorter side 256 (bilinear), centre 224x224, (x - 255 mean) / (255 std)
with the float32 ImageNet statistics in B, G, R order, float64; norm=False rounds to uint8.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import cv2
import numpy as np

from ._sdk_style import shorter_side_recipe

#: ImageNet statistics as float32 values, B, G, R order, in 0..255 units
MEAN_BGR = tuple(255 * float(np.float32(v)) for v in (0.406, 0.456, 0.485))
STD_BGR = tuple(255 * float(np.float32(v)) for v in (0.225, 0.224, 0.229))

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    return shorter_side_recipe(img_path, norm, 'BGR', cv2.INTER_LINEAR, mean=MEAN_BGR, std=STD_BGR)
