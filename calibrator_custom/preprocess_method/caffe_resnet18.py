"""caffe_resnet18 (Caffe ImageNet ResNet-18): BGR, resize to 256x256, centre crop 224x224, x - (104, 117, 123).

Pixels are in BGR order with mean (B, G, R) = (104, 117, 123) and std 1, the usual Caffe ImageNet
convention (also the SDK manual's example). Matching input_config.ini:
training_input_formats=BGR; mean=123:117:104; std_value=1;  (mean is written R:G:B).
"""
from __future__ import annotations

import numpy as np

from ._common import caffe_style

MEAN_BGR = (104.0, 117.0, 123.0)
STD = 1.0


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return caffe_style(img_path, norm, size=224, mean_bgr=MEAN_BGR, std=STD, resize_to=256)
