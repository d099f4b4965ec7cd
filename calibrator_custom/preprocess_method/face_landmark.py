"""face_landmark (MediaPipe face mesh landmarks): RGB, stretch to 192x192, (x - 0) / 255.

The image is stretched to the square input (aspect ratio not kept), values in [0, 1], as in
../shared/models/MODELS.md. Matching input_config.ini:
training_input_formats=RGB; mean=0:0:0; std_value=255;
"""
from __future__ import annotations

import numpy as np

from ._common import stretch_style

INPUT_SIZE = 192
MEAN = 0.0
STD = 255.0


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return stretch_style(img_path, norm, size=INPUT_SIZE, mean=MEAN, std=STD)
