"""face_detection_short_range (MediaPipe BlazeFace, short range): RGB, stretch to 128x128, (x - 127.5) / 127.5.

The image is stretched to the square input (aspect ratio not kept), values in [-1, 1], as in
../shared/models/MODELS.md. Matching input_config.ini:
training_input_formats=RGB; mean=127.5:127.5:127.5; std_value=127.5;
"""
from __future__ import annotations

import numpy as np

from ._common import stretch_style

INPUT_SIZE = 128
MEAN = 127.5
STD = 127.5


def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: float32 normalised if ``norm``, else the uint8 pixels the fixed model takes."""
    return stretch_style(img_path, norm, size=INPUT_SIZE, mean=MEAN, std=STD)
