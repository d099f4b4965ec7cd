"""caffe_fr: RGB at the image's own size (no resize), x * 2/255 - 1 (float32); norm=False uint8.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import as_rgb, batch, imread, to_uint8

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    rgb = as_rgb(imread(img_path))
    if not norm:
        return batch(to_uint8(rgb))
    out = (2.0 / 255.0) * rgb - 1.0
    return batch(out.astype(np.float32))
