"""onnx_squeezenet: imread(path, -1), float32 bilinear resize to 224x224, (x - mean) / std, BGR.

mean (B, G, R) = (104, 117, 123), std = 58.82.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import plain_resize


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return plain_resize(img_path, norm, height=224, width=224, mean=(104, 117, 123), std=58.82)
