"""caffe_squeezenet_v1_1: BGR, centre square, anti-aliased bilinear resize to 227x227, x - (B, G, R) (104, 117, 124);
norm=False truncates to uint8.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it
where scipy and scikit-image are installed (the SDK's file imports them; this one uses OpenCV).
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import caffe_square_recipe

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    return caffe_square_recipe(img_path, norm, 227, None, (104, 117, 124), None)
