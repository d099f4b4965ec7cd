"""Planner numeric helpers: per-channel UINT8 quantization of conv data (planner.channel_u8_quant)."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from calibrator_custom.quant.planner import activation_quant, channel_u8_quant
from calibrator_custom.quant.ranges import Range, covering

@given(st.lists(st.tuples(st.floats(-50, 0), st.floats(0, 50)), min_size=2, max_size=12),
       st.integers(0, 6))
def test_channel_u8_quant_holds_every_channel_on_power_of_two_steps(ranges, max_shift):
    cmin = [lo for lo, _ in ranges]
    cmax = [hi for _, hi in ranges]
    lo, hi = covering(min(cmin), max(cmax))
    tq = activation_quant(Range(lo, hi), "UINT8", cmin, cmax, axis=3, max_shift=max_shift)
    assert tq.qtype == "UINT8" and tq.axis == 3 and len(tq.scale) == len(tq.zero_point) == len(ranges)
    lo32, hi32 = float(np.float32(lo)), float(np.float32(hi))
    if not hi32 > lo32:  # float32 cannot tell the range from [0, 0]: the planner's fallback
        lo32, hi32 = float(np.float32(-1e-6)), float(np.float32(1e-6))
    base = float(np.float32((hi32 - lo32) / 255))
    scales, zps = channel_u8_quant(base, tq.min, tq.max, max_shift)
    assert (scales, zps) == (tq.scale, tq.zero_point)
    for s, z, lo_c, hi_c in zip(tq.scale, tq.zero_point, tq.min, tq.max):
        k = np.log2(base / s)
        assert k == round(k) and 0 <= k <= max_shift  # a power-of-two step below the tensor's
        assert 0 <= z <= 255
        # the channel's range (widened to contain 0) is representable within half a step
        assert (0 - z) * s <= min(lo_c, 0) + s / 2 + 1e-12 and (255 - z) * s >= max(hi_c, 0) - s / 2 - 1e-12
        if k < max_shift:  # and one more halving would not hold it
            assert max(hi_c, 0) - min(lo_c, 0) > 254 * base * 2.0 ** -(k + 1)
