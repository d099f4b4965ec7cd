"""caffe_fda_299x299: imread(path, -1), float32 bilinear resize to 299x299, (x - mean) / std, RGB.

mean (B, G, R) = (0, 0, 0), std = 1. norm=True gives the float32 resized RGB pixels unnormalised (the model normalises).

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import plain_resize


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return plain_resize(img_path, norm, height=299, width=299, mean=(0, 0, 0), std=1, rgb=True)
