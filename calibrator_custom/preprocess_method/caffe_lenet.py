"""caffe_lenet: grey uint8 bilinear resize to 28x28; norm=True (x - 33.318) as channel 0 of a
28x28x3 float32 whose other two channels are zero; norm=False the uint8 grey plane (1, 28, 28).

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import as_gray, batch, imread, resize, to_uint8

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    img = resize(as_gray(imread(img_path)), 28, 28)
    if not norm:
        return batch(to_uint8(img))
    out = np.zeros((28, 28, 3), dtype=np.float64)
    out[..., 0] = (img - 33.318) / 1
    return batch(out.astype(np.float32))
