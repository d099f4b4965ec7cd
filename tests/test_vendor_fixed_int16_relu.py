"""A RELU of an ADD's INT16 output writing a 16-bit conv's INT16 input in the synthesized vendor fixed.sim.

The vendor's float.sim plans an ADD's output INT16 and keeps the RELU after it as its own op (the residual
blocks of face_detection_short_range: ADD -> RELU -> depthwise and the next ADD). With the RELU's output
a 16-bit conv's input the RELU runs INT16 -> INT16, as the 16 RELUs between the 16-bit convs of the
vendor's own ALL_INT16 file of that model do; ``vendor_int16_carriable`` carries the convs reading it.

Oracle tier (the vendor SDK in ``../shared/vendor_sdk``; skipped without it): as for the fused RELU6
(``test_vendor_fixed_int16_relu6.assert_carried_as_the_vendor_plans_it``).
"""
from __future__ import annotations

import numpy as np

from test_vendor_fixed_int16_relu6 import assert_carried_as_the_vendor_plans_it
from test_vendor_fixed_synth import random_conv


def _chain(seed=5, side=12, c=16):
    """x -> c1 (3x3), c2 (1x1 of c1) -> a1 = ADD -> r1 = RELU -> c3 (1x1) -> a2 = ADD(r1, c3) -> c4 (3x3, the
    graph output)."""
    from calibrator_custom.model.builder import ModelBuilder
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    c1 = random_conv(b, g, x, 1, 3, c, 3)
    a1 = b.op("ADD", [c1, random_conv(b, g, c1, 2, c, c, 1)], {"fused_activation_function": "NONE"}, name="a1")
    r1 = b.op("RELU", [a1], {}, name="r1")
    a2 = b.op("ADD", [r1, random_conv(b, g, r1, 3, c, c, 1)], {"fused_activation_function": "NONE"}, name="a2")
    b.output(random_conv(b, g, a2, 4, c, 8, 3))
    ranges = {"x": (-1.0, 1.0), "c1": (-3.0, 3.5), "c2": (-2.5, 2.0), "a1": (-4.5, 5.0), "r1": (0.0, 5.0),
              "c3": (-2.0, 2.5), "a2": (-2.0, 7.0), "c4": (-3.0, 2.5)}
    return b, ranges


def test_a_conv_reading_a_relu_of_an_add_is_carried_and_runs_as_ours(tmp_path):
    b, ranges = _chain()
    assert_carried_as_the_vendor_plans_it(b, ranges, "c4", "r1", "w3", "RELU", "i16relu", tmp_path,
                                          carried=["a2", "c1", "r1"], label="ADD -> RELU -> 16-bit conv")
