"""ssdlite_mobilenet_v2: RGB uint8 INTER_AREA resize to 300x300, x * 2/255 - 1 in float64; norm=False uint8.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import cv2
import numpy as np

from ._sdk_style import as_rgb, batch, imread, resize, to_uint8

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    out = resize(as_rgb(imread(img_path)), 300, 300, cv2.INTER_AREA)
    return batch((2.0 / 255.0) * out - 1.0 if norm else to_uint8(out))
