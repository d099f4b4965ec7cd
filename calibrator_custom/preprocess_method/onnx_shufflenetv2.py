"""onnx_shufflenetv2: imread(path, -1), float32 bilinear resize to 48x196, (x / 255 - mean) / std, BGR.

mean (B, G, R) = (0.485, 0.456, 0.406), std = (0.229, 0.224, 0.225). The ImageNet RGB statistics are applied to the BGR channels as they are, as the SDK does.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import plain_resize


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return plain_resize(img_path, norm, height=48, width=196, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), pre_divide=255)
