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


def _skip_without_vendor():
    import vendor_fixed_oracle as vo
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("key", [
    vs.ConvKey("CONV_2D", (1, 16, 16, 64), (128, 1, 1, 64), 1, "VALID", "UINT8", "INT16", False),
    vs.ConvKey("DEPTHWISE_CONV_2D", (1, 8, 8, 64), (1, 3, 3, 64), 1, "SAME", "UINT8", "UINT8", False),
])
def test_tags_recomputed_for_an_unmodified_vendor_file_are_its_bytes(key):
    """sgs_tag = (K - (size - quantization table position)) mod 256 with one K per vendor file: the
    vendor's standalone conv file, decoded, its tags spoilt and re-encoded (tags recomputed), is its own bytes."""
    _skip_without_vendor()
    from calibrator_custom.model.graph import load_model
    path = vs.make_standalone(key)
    data = path.read_bytes()
    model = load_model(path)
    k = vs.tag_constant(data, model)
    assert 0 <= k < 256
    for t in model.main.tensors:
        t.extra = {**t.extra, "sgs_tag": (t.extra.get("sgs_tag") or 0) ^ 0x55}  # spoil every tag
    assert vs.encode_with_tags(model) == data


@pytest.mark.parametrize("key", [
    vs.ConvKey("CONV_2D", (1, 16, 16, 64), (128, 1, 1, 64), 1, "VALID", "UINT8", "INT16", False),
    vs.ConvKey("DEPTHWISE_CONV_2D", (1, 8, 8, 64), (1, 3, 3, 64), 1, "SAME", "UINT8", "UINT8", False),
    vs.ConvKey("CONV_2D", (1, 8, 8, 96), (96, 1, 1, 96), 1, "VALID", "UINT8", "INT16", False),
])
def test_tag_constant_is_the_vtable_cluster_size(key):
    """The file's K is the byte length of its vtable cluster mod 256, i.e. sgs_tag = (position of the
    quantization table - start of the vtable cluster) mod 256; recomputing the tags from the
    encoding's own cluster (no K given) gives the vendor's bytes."""
    _skip_without_vendor()
    from calibrator_custom.model.graph import load_model
    path = vs.make_standalone(key)
    data = path.read_bytes()
    model = load_model(path)
    start = vs.vtable_cluster_start(data)
    assert 0 < start < len(data)
    assert vs.tag_constant(data, model) == (len(data) - start) % 256
    for t in model.main.tensors:
        t.extra = {**t.extra, "sgs_tag": (t.extra.get("sgs_tag") or 0) ^ 0x55}
    assert vs.encode_with_tags(model) == data


def test_standalone_conv_program_has_the_first_candidate_tiling():
    """The vendor's standalone 1x1 conv 64 -> 128 is tiled (64, 32) (layout.conv_tilings' first)."""
    _skip_without_vendor()
    key = vs.ConvKey("CONV_2D", (1, 8, 8, 64), (128, 1, 1, 64), 1, "VALID", "UINT8", "INT16", False)
    prog = vs.standalone_program(key)
    assert prog["tiling"] == layout.conv_tilings(key.w_shape)[0] == (64, 32)
    assert prog["fields"]["sgs_in_channels_per_tile"] == 32 and prog["fields"]["sgs_out_channels_per_tile"] == 64
