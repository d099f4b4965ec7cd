"""caffe_ssd_mobilenet_v1: imread(path, -1), float32 bilinear resize to 300x300, (x - mean) / std, BGR.

mean (B, G, R) = (127.5, 127.5, 127.5), std = 127.5. norm=False keeps the float32 resized pixels (no rounding).

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import plain_resize


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return plain_resize(img_path, norm, height=300, width=300, mean=(127.5, 127.5, 127.5), std=127.5, raw_float_when_not_norm=True)
