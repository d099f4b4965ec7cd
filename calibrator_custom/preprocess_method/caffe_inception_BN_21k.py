"""caffe_inception_BN_21k: BGR float32, shorter side to 224 (bilinear), centre crop 224x224, x - 117 in
float64; norm=False returns the float32 cropped pixels (not rounded).

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import cv2
import numpy as np

from ._sdk_style import as_bgr, batch, imread, shorter_side_then_crop

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    img = as_bgr(imread(img_path)).astype(np.float32)
    out = shorter_side_then_crop(img, 224, 224, 224, cv2.INTER_LINEAR)
    return batch((out - np.asarray((117.0, 117.0, 117.0))) / 1.0 if norm else out)
