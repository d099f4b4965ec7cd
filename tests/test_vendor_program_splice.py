"""The splice tool's helpers (tools/vendor_program_splice.py), checked against the layout reader."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import vendor_program_splice as vs  # noqa: E402
from calibrator_custom.vendor_fixed import layout, pack  # noqa: E402


@pytest.mark.parametrize("shape, tiling", [((64, 1, 1, 32), (64, 16)), ((128, 1, 1, 64), (64, 32)),
                                           ((64, 2, 2, 128), (64, 64)), ((15, 2, 2, 128), (16, 64))])
def test_weight_tiling_finds_a_tiling_the_layout_reader_decodes(shape, tiling):
    codes = np.random.default_rng(0).integers(-127, 128, shape).astype(np.int8)
    raw = pack.pack_conv_weights(codes, tiling[1], tiling[0]) + bytes(64)
    found = vs.weight_tiling(codes, raw)
    assert found is not None and len(found) == 2
    back = layout.unpack_conv_weights(raw, shape, input_tile=found[1], output_tile=found[0])
    assert back.shape == codes.shape and back.dtype == np.int8
    np.testing.assert_array_equal(back, codes)


def test_weight_tiling_is_none_for_a_buffer_no_tiling_gives():
    codes = np.ones((16, 1, 1, 16), np.int8)
    assert vs.weight_tiling(codes, bytes(256)) is None
