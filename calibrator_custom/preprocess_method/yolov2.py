"""yolov2: RGB uint8 bilinear resize to 416x416, float32 x / 255; norm=False uint8.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import darknet_resize

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    return darknet_resize(img_path, norm, 416)
