"""deeplab_v3: RGB uint8 scaled so the longer side is 513 (bilinear), padded to 513x513 with
127 on the top/left and the image at the bottom-right, x * 2/255 - 1 in float64; norm=False uint8.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it;
the SDK's own file fails on numpy >= 2.1 (np.reshape(newshape=...)), so there it is checked only where it runs.
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import as_rgb, batch, imread, resize

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    rgb = as_rgb(imread(img_path))
    h, w = rgb.shape[:2]
    ratio = 513.0 / max(h, w)
    img = resize(rgb, int(ratio * h), int(ratio * w))
    rh, rw = img.shape[:2]
    out = np.full((max(rh, 513), max(rw, 513), 3), 127, dtype=np.uint8)  # 127.5 stored as uint8
    out[out.shape[0] - rh:, out.shape[1] - rw:] = img
    return batch((2.0 / 255.0) * out - 1.0) if norm else batch(out)
