"""caffe_mobilenet_v2 (shicai/MobileNet-Caffe): BGR, resize to 224x224, (x - (103.94, 116.78, 123.68)) * 0.017.

Pixels are in BGR order, mean (B, G, R) = (103.94, 116.78, 123.68), scale 0.017 (std 1/0.017 =
58.8235). Matching input_config.ini:
training_input_formats=BGR; mean=123.68:116.78:103.94; std_value=58.8235;  (mean is written R:G:B).
"""
from __future__ import annotations

import numpy as np

from ._common import caffe_style

MEAN_BGR = (103.94, 116.78, 123.68)
STD = 1.0 / 0.017


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return caffe_style(img_path, norm, size=224, mean_bgr=MEAN_BGR, std=STD)
