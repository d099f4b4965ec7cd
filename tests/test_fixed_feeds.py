"""fixed/feeds.py: fixed-model inputs from float-model inputs, against hand-computed values.

A RAWDATA_S16 input is rounded half up (floor(x / scale + 1/2)), as the L5 measurements have always fed
it; the model's QUANTIZE rounds half away from zero. The two differ only on an exact negative half step,
which this test states (the rounding is kept: changing it would change what L5 measures)."""
from __future__ import annotations

import numpy as np

from calibrator_custom.config import InputSpec
from calibrator_custom.fixed.feeds import channel_params, pixels_from_normalized, raw_from_normalized
from calibrator_custom.model.graph import Quantization, Tensor
from calibrator_custom.rounding import round_half_away, round_half_up


def test_int16_raw_input_rounds_half_up():
    t = Tensor("x", (1, 6), "INT16", 0, Quantization(scale=(0.5,), zero_point=(0,)))
    x = np.array([[-1.25, -1.0, -0.25, 0.25, 1.25, 20000.0]])  # x / 0.5 = -2.5, -2, -0.5, 0.5, 2.5, 40000
    got = raw_from_normalized(x, None, t)
    assert got.dtype == np.int16 and got.shape == (1, 6)
    np.testing.assert_array_equal(got, [[-2, -2, 0, 1, 3, 32767]])
    # the model's QUANTIZE (half away from zero) gives -3 and -1 for the two negative halves
    np.testing.assert_array_equal(round_half_away(x[0, :5] / 0.5), [-3, -2, -1, 1, 3])
    np.testing.assert_array_equal(round_half_up(x[0, :5] / 0.5), [-2, -2, 0, 1, 3])


def test_pixels_from_normalized_inverts_mean_std_by_hand():
    spec = InputSpec(name="img", training_input_format="RGB", input_format="RGB", mean=(127.5, 127.5, 127.5),
                     std=(127.5, 127.5, 127.5))
    x = np.array([-1.0, 0.0, 1.0, 2.0, -1.01], np.float64).reshape(1, 1, 5, 1).repeat(3, axis=3)
    got = pixels_from_normalized(x, spec)
    assert got.dtype == np.uint8 and got.shape == (1, 1, 5, 3)
    # -1 -> 0; 0 -> 127.5 -> 128 (half up); 1 -> 255; 2 -> 382.5 -> 255 (clipped); -1.01 -> -1.275 -> 0
    np.testing.assert_array_equal(got[0, 0, :, 0], [0, 128, 255, 255, 0])


def test_channel_params_shapes_per_channel_scales_for_their_axis():
    t = Tensor("y", (1, 2, 3), "INT8", 0, Quantization(scale=(0.5, 0.25, 2.0), zero_point=(1,), quantized_dimension=2))
    scale, zp = channel_params(t, 3)
    assert scale.shape == zp.shape == (1, 1, 3)
    np.testing.assert_array_equal(scale.ravel(), [0.5, 0.25, 2.0])
    np.testing.assert_array_equal(zp.ravel(), [1, 1, 1])
    assert channel_params(Tensor("f", (2,), "FLOAT32"), 1) is None
