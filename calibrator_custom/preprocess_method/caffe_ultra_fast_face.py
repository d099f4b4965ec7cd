"""caffe_ultra_fast_face: imread(path), float32 bilinear resize to 384x640, (x - mean) / std, RGB.

mean (B, G, R) = (127, 127, 127), std = 128.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import plain_resize


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return plain_resize(img_path, norm, height=384, width=640, mean=(127, 127, 127), std=128, rgb=True, read='color')
