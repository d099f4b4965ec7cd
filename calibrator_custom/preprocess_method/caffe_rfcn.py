"""caffe_rfcn: imread(path), float32 bilinear resize to 600x800, (x - mean) / std, BGR.

mean (B, G, R) = (102.9801, 115.9465, 122.7717), std = 1.0.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import plain_resize


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return plain_resize(img_path, norm, height=600, width=800, mean=(102.9801, 115.9465, 122.7717), std=1.0, read='color')
