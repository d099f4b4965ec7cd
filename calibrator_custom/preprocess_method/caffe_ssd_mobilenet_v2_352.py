"""caffe_ssd_mobilenet_v2_352: RGB uint8 bilinear resize to 288x352; norm=True x - (R, G, B) = (123, 117, 104) in
float64; norm=False the uint8 resized pixels.

The SDK's stock method of the same name; tests/test_preprocess_sdk.py checks this one against it
where PIL is installed (the SDK's file decodes with PIL; this one with OpenCV, so JPEG decoders may differ).
"""
from __future__ import annotations

import numpy as np

from ._sdk_style import as_rgb, batch, imread, resize

def image_preprocess(img_path, norm: bool = True) -> np.ndarray:
    """NHWC batch of one: the model input if ``norm``, else the pixels the fixed model takes."""
    out = resize(as_rgb(imread(img_path)), 288, 352)
    return batch((out.astype(np.float32) - np.asarray((123.0, 117.0, 104.0))) / 1 if norm else out)
