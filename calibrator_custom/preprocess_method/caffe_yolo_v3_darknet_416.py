"""caffe_yolo_v3_darknet_416: imread(path), float32 bilinear resize to 416x416, (x - mean) / std, RGB.

mean (B, G, R) = (0, 0, 0), std = 255.0.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import plain_resize


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return plain_resize(img_path, norm, height=416, width=416, mean=(0, 0, 0), std=255.0, rgb=True, read='color')
