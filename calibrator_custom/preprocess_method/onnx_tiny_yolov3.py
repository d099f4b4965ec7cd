"""onnx_tiny_yolov3: imread(path, -1), float32 bilinear resize to 416x416, (x - mean) / std, BGR.

mean (B, G, R) = (123.68, 116.28, 103.53), std = (58.395, 57.12, 57.375). The ImageNet RGB statistics are applied to the BGR channels as they are, as the SDK does.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import plain_resize


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return plain_resize(img_path, norm, height=416, width=416, mean=(123.68, 116.28, 103.53), std=(58.395, 57.12, 57.375))
