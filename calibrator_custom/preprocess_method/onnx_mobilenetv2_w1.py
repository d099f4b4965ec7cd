"""onnx_mobilenetv2_w1: norm=True: torchvision Resize(256) (shorter side), CenterCrop(224), ImageNet mean/std, RGB float32
(with Pillow's antialiased bilinear resize, reproduced here bit for bit without Pillow);
norm=False: RGB float32 bilinear 256x256, pixels [16:240, 16:240], rounded to uint8 (exactly the SDK's).

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it
for both norm values; norm=True where Pillow is installed (torchvision, which its file imports, is stood in
for by its documented transforms on real Pillow).
"""
from __future__ import annotations

import numpy as np

from ._common import torchvision_pil_style
from ._sdk_style import torch_crop_pixels

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    if not norm:
        return torch_crop_pixels(img_path)
    return torchvision_pil_style(img_path, size=224, resize_short=256)
