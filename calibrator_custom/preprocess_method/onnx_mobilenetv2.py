"""onnx_mobilenetv2 (torchvision MobileNetV2 as ONNX): RGB, shorter side 256, centre crop 224, ImageNet mean/std.

torchvision's transforms Resize(256), CenterCrop(224), ToTensor, Normalize(mean=(0.485, 0.456, 0.406),
std=(0.229, 0.224, 0.225)), in 0..255 units: (x - (123.675, 116.28, 103.53)) / (58.395, 57.12, 57.375).
Returned NHWC like every method. Matching input_config.ini:
training_input_formats=RGB; mean=123.675:116.28:103.53; std_value=58.395:57.12:57.375;
"""
from __future__ import annotations

import numpy as np

from ._common import torchvision_style


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return torchvision_style(img_path, norm, size=224, resize_short=256)
