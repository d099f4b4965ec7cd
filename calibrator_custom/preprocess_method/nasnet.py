"""nasnet: RGB / max pixel (float64), centre crop dropping floor((s - 0.875 s) / 2) per edge,
bilinear 224x224, (x - 0.5) * 2 in float64; norm=False x * max truncated to uint8.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import cv2
import numpy as np

from ._sdk_style import as_rgb, batch, crop_fraction_floor, imread, resize

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    rgb = as_rgb(imread(img_path))
    peak = rgb.max()
    img = crop_fraction_floor(rgb / peak, 0.875)
    out = resize(img, 224, 224, cv2.INTER_LINEAR)
    return batch((out - 0.5) * 2 if norm else np.array(out * peak, dtype=np.uint8))
