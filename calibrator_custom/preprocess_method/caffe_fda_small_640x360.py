"""caffe_fda_small_640x360: BGR float32 letterboxed into 360x640 (zero pad right/bottom); norm=True
subtracts (B, G, R) = (104, 117, 123) in float64, norm=False rounds to uint8.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import fda_letterbox

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    return fda_letterbox(img_path, norm, 360, 640, rgb=False, mean_bgr=(104, 117, 123))
