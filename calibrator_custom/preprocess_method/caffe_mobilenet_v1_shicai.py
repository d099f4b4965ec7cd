"""caffe_mobilenet_v1_shicai: BGR, centre square, anti-aliased bilinear resize to 224x224, x - (B, G, R) (103.94, 116.78, 123.68) times 0.017;
norm=False truncates to uint8.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it
where scipy and scikit-image are installed (the SDK's file imports them; this one uses OpenCV).
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import caffe_square_recipe

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    return caffe_square_recipe(img_path, norm, 224, None, (103.94, 116.78, 123.68), 0.017)
