"""mobilenet_v2 (TF-slim, ImageNet): RGB, central crop 87.5 %, bilinear resize to 224x224, (x - 127.5) / 127.5.

Inception-style preprocessing of the TF-slim checkpoints (values in [-1, 1]). Matching input_config.ini:
training_input_formats=RGB; mean=127.5:127.5:127.5; std_value=127.5;
"""
from __future__ import annotations

import numpy as np

from ._common import tf_slim_style


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return tf_slim_style(img_path, norm, size=224)
