"""fir: BGR float32 bilinear resize to 800x1280, (x * 2/255 - 1) * 32767 in float32 (int16 range);
norm=False rounds to uint8.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import as_bgr, batch, imread, resize, to_uint8

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    out = resize(as_bgr(imread(img_path)).astype(np.float32), 800, 1280)
    if not norm:
        return batch(to_uint8(out))
    return batch(((out * 2 / 255.0 - 1) * 32767).astype(np.float32))
