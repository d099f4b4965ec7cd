"""The standalone conv program rule (calibrator_custom.vendor_fixed.program): hand-computed cases, and
the vendor's own standalone convs made in the session (skipped without the vendor SDK)."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from calibrator_custom.vendor_fixed import program as P  # noqa: E402


def test_channel_tile_is_the_largest_power_of_two_below_the_channels():
    assert [P.channel_tile(c) for c in (3, 13, 16, 20, 32, 33, 64, 80, 128, 160)] == \
        [3, 13, 16, 16, 16, 32, 32, 64, 64, 128]


def test_mac_count_of_an_unpadded_strided_conv():
    # 3x3 stride 2 on 9x7: valid output 4 x 3; channels 20 -> 32, 40 -> 48
    spec = P.ConvSpec("CONV_2D", 9, 7, 20, 40, 3, 2, "SAME")
    assert P.mac_count(spec) == 9 * 4 * 3 * 32 * 48


def test_weight_chunks_of_two_output_and_two_input_tiles():
    # w 96x3x3x96 int8, tiles 64: (o 0-63, i 0-63), (o 0-63, i 64-95), (o 64-95, i 0-63), (o 64-95, i 64-95)
    spec = P.ConvSpec("CONV_2D", 4, 8, 96, 96, 3)
    a = P.default_allocation(spec)
    assert (a.in_tile, a.out_tile) == (64, 64)
    chunks = P.weight_chunks(spec, a)
    assert [c["byte_count"] for c in chunks] == [64 * 64 * 9, 64 * 32 * 9, 32 * 64 * 9, 32 * 32 * 9]
    assert [c["byte_offset"] for c in chunks] == [0, 36864, 55296, 73728]
    assert [c["blocks_32_bytes"] for c in chunks] == [1152, 576, 576, 288]
    assert [(c["last_input_tile"], c["accumulate"]) for c in chunks] == [(0, 0), (1, 1), (0, 0), (1, 1)]


def test_weight_chunks_pad_the_last_input_pass():
    # 160 input channels in passes of 48, tiles of 16 (INT16 weights: 16 x 16 x 25 x 2 bytes a tile)
    spec = P.ConvSpec("CONV_2D", 5, 5, 160, 16, 5, in_dtype="INT16", out_dtype="INT16")
    a = P.Allocation(16, 48, 16, 16, 5, 5, 20, 1, 2, 4)
    chunks = P.weight_chunks(spec, a)
    assert len(chunks) == 4 * 3
    assert [c["byte_count"] for c in chunks] == [12800] * 10 + [0, 0]
    assert [c["empty"] for c in chunks] == [0] * 10 + [1, 1]
    assert [c["last_input_tile"] for c in chunks] == [0] * 9 + [1, 1, 1]
    assert [c["accumulate"] for c in chunks] == [0] + [1] * 9 + [0, 0]


def test_weight_slots_hold_every_output_tile_of_a_pass():
    # 96 x 3 x 3 x 96, tiles 64: an output tile's pass is 64 x 128 (two input tiles) x 9 = 73728 bytes,
    # two output tiles: 147456 bytes = 9 entries of 16 KB = 18 slots
    spec = P.ConvSpec("CONV_2D", 4, 8, 96, 96, 3)
    assert P.weight_slots(spec, 64, 96, 64, 96) == 18
    assert P.default_allocation(spec).weight_slots == 18
    # INT16 weights, 16-channel passes of 160: 16 x 16 x 25 x 2 bytes x 10 output tiles = 128000 -> 8 entries
    spec16 = P.ConvSpec("CONV_2D", 6, 6, 160, 160, 5, 1, "VALID", in_dtype="INT16", out_dtype="INT16")
    assert P.weight_slots(spec16, 16, 16, 16, 160) == 16


def test_large_weights_shrink_the_output_tile_then_the_input_pass():
    # 128 x 5 x 5 x 80: a 64 x 64 x 25 chunk is 102400 bytes > 64 KB, 48: 76800, 32: 51200 fits;
    # 4 output tiles x 32 x 128 (80 in two 64-channel tiles) x 25 = 409600 bytes = 50 slots: the pass
    # drops to one tile (64): 204800 bytes = 26 slots, + 4 + 1 + 1 = the 32 slots
    a = P.default_allocation(P.ConvSpec("CONV_2D", 5, 5, 80, 128, 5, 1, "VALID"))
    assert (a.in_tile, a.in_pass, a.out_tile, a.out_pass) == (64, 64, 32, 128)
    assert (a.weight_slots, a.input_slots, a.output_slots, a.region_28) == (26, 1, 1, 4)


def test_region_28_of_an_int16_input_pass_over_tiles_counts_8_channel_groups():
    # the partial sums of a pass over two input tiles: 4 slots per 512 output pixels x 16 bytes of the input
    # codes of the pass's channels (an INT16 input: 8 channels); the vendor's ALL_INT16 L1 file of
    # face_detection_short_range, 16 x 16 x 80 -> 88 in 16 x 8 tiles, input tiles of 64: 128 x 11 = 1408 rows
    # -> 3 entries = 12 slots (16-channel groups would give 128 x 6 = 768 rows, 8 slots)
    spec = P.ConvSpec("CONV_2D", 16, 16, 80, 88, 1, in_dtype="INT16", out_dtype="INT16")
    assert P.region_28_slots(spec, 88, 16, 8, 2) == 12
    # 4 output channels of an INT16 input (the oracle cache's i16acts_long, 32 x 16 tiles): 512 x 1 rows -> 4
    assert P.region_28_slots(P.ConvSpec("CONV_2D", 32, 32, 64, 4, 1, in_dtype="INT16"), 4, 32, 16, 2) == 4
    # a UINT8 input keeps 16-channel groups (8 x 8 x 96 -> 96, input tiles of 64: 64 x 6 = 384 rows -> 4);
    # one input tile holds no partial sums: 4 slots per 512 pixels
    assert P.region_28_slots(P.ConvSpec("CONV_2D", 8, 8, 96, 96, 1), 96, 8, 8, 2) == 4
    assert P.region_28_slots(spec, 88, 16, 16, 1) == 4


def test_compiler_limits_of_an_int16_conv_over_two_input_tiles():
    """The allocations the vendor's compiler refused and took on 16 x 16 x 72 -> 80 (INT16 in and out, input
    tiles of 64 over a pass of 72, output tiles of 64): the partial sums take 256 x (ceil(64 x 2 / 16) +
    ceil(16 x 2 / 16)) = 2560 rows on the whole plane (refused with region 28 of 12 slots, 1536 rows:
    ``vrbuf_alloc ... require depth_size=2048, now vrbuf_depth=1536``), 1280 on 8-row tiles (refused with 8
    slots, taken with 12, the vendor's own program of the same conv in face_detection_short_range)."""
    spec = P.ConvSpec("CONV_2D", 16, 16, 72, 80, 1, in_dtype="INT16", out_dtype="INT16")
    whole = P.Allocation(64, 72, 64, 80, 16, 16, 4, 5, 10, 12)
    assert P.compiler_limits(spec, whole) == ["region 28 holds 1536 rows, not the 2560 of the partial sums"]
    rows8 = P.Allocation(64, 72, 64, 80, 16, 8, 4, 3, 6, 12)
    assert P.compiler_limits(spec, rows8) == []
    assert P.compiler_limits(spec, dataclasses.replace(rows8, region_28=8)) == \
        ["region 28 holds 1024 rows, not the 1280 of the partial sums"]
    # one output pass of 64 on the whole plane: 256 x 8 = 2048 rows in 16 slots (taken)
    assert P.compiler_limits(spec, P.Allocation(64, 72, 64, 64, 16, 16, 2, 5, 8, 16)) == []
    # the output double-buffered: 14 x 16 x 72 -> 72 in 16 x 7 tiles: 2 x 112 x 5 = 1120 rows, refused with
    # 4 slots (2 rows of 2 slots: 1024, ``vrbuf_depth(u32ObBufId) >= (u32)(2*...)``), taken with 8
    spec14 = P.ConvSpec("CONV_2D", 14, 16, 72, 72, 1, in_dtype="INT16", out_dtype="INT16")
    tiled = P.Allocation(64, 72, 64, 72, 16, 7, 4, 2, 4, 12)
    assert P.compiler_limits(spec14, tiled) == ["the output region holds 1024 rows, not the 1120 of two tiles"]
    assert P.compiler_limits(spec14, dataclasses.replace(tiled, output_slots=8)) == []
    assert P.compiler_limits(spec14, dataclasses.replace(tiled, output_slots=8), slots=24) == \
        ["the regions take 26 buffer slots, over 24"]


def test_compiler_limits_of_an_int16_conv_in_several_input_passes():
    """hand_landmark_lite's 28 x 28 x 96 -> 24 and 14 x 14 x 288 -> 48 1 x 1 convs, INT16 in and out, one
    input tile a pass (passes of 64 / 128): the compiler wanted region 28 to hold the partial sums (392 x
    ceil(24 x 2 / 16) = 1176 rows, refused with 8 slots: ``require depth_size=1176, now vrbuf_depth=1024``)
    and the weights of every input pass at once (3 chunks of 48 x 128 INT16 weights, 12 KB each: 2 and 4
    slots refused, ``require depth_size=384``; 6 compiled)."""
    spec = P.ConvSpec("CONV_2D", 28, 28, 96, 24, 1, in_dtype="INT16", out_dtype="INT16")
    a = P.Allocation(64, 64, 24, 24, 28, 14, 4, 7, 12, 8)
    assert P.compiler_limits(spec, a) == ["region 28 holds 1024 rows, not the 1176 of the partial sums"]
    spec = P.ConvSpec("CONV_2D", 14, 14, 288, 48, 1, in_dtype="INT16", out_dtype="INT16")
    assert P.resident_weight_slots(spec, 128, 128, 48, 48) == 6
    a = P.Allocation(128, 128, 48, 48, 14, 7, 4, 4, 8, 8)
    assert P.compiler_limits(spec, a) == ["the weights take 4 buffer slots, not the 6 of every input pass"]
    assert P.compiler_limits(spec, dataclasses.replace(a, weight_slots=6)) == []
    # a UINT8 input keeps one pass's weights (the vendor's own programs)
    u8 = dataclasses.replace(spec, in_dtype="UINT8")
    assert P.resident_weight_slots(u8, 128, 128, 48, 48) == P.weight_slots(u8, 128, 128, 48, 48) == 2


def test_strided_int16_depthwise_rows_and_weight_tile():
    """hand_landmark_lite's 112 x 112 x 64 stride-2 3 x 3 depthwise conv with an INT16 input: the compiler
    required 1120 rows of the 1024 for 32-channel tiles of 56 x 6 and 56 x 7, 1344 for 56 x 8 (5 rows
    compiled); the 7 x 7 x 672 one holds its INT16 weights in one tile of 672 (tiles of 512: 2 x 10 KB
    over the 16 KB, ``require depth_size=320, now vrbuf_depth=512``)."""
    spec = P.ConvSpec("DEPTHWISE_CONV_2D", 112, 112, 64, 64, 3, 2, in_dtype="INT16", out_dtype="INT16")
    assert [P.depthwise_strided_rows(spec, 32, 56, th) for th in (5, 6, 7, 8)] == [896, 1120, 1120, 1344]
    assert P.depthwise_strided_rows(spec, 16, 56, 6) == 560
    assert P.depthwise_strided_rows(dataclasses.replace(spec, in_dtype="UINT8"), 32, 56, 6) == 0
    assert P.depthwise_allocation(spec).out_tile_height == 5
    dw = P.ConvSpec("DEPTHWISE_CONV_2D", 7, 7, 672, 672, 3, in_dtype="INT16", out_dtype="UINT8")
    assert P.depthwise_weight_tile(dw) == 672
    assert P.depthwise_weight_tile(dataclasses.replace(dw, in_dtype="UINT8")) == 512


def test_depthwise_as_conv_chunks_hold_only_the_diagonal():
    spec = P.ConvSpec("DEPTHWISE_CONV_2D", 8, 8, 48, 48, 1)
    assert spec.op_kind == "CONV_2D" and spec.depthwise_as_conv
    chunks = P.weight_chunks(spec, P.default_allocation(spec))
    assert [c["byte_count"] for c in chunks] == [256, 0, 0, 0, 256, 0, 0, 0, 256]
    assert [c["accumulate"] for c in chunks] == [0, 1, 1, 0, 0, 1, 0, 0, 0]


def test_depthwise_as_conv_pads_its_last_pass_like_a_conv():
    # 40 channels in passes of 32 (tiles of 16): the last pass holds tile 32-39 and one padding tile
    spec = P.ConvSpec("DEPTHWISE_CONV_2D", 8, 8, 40, 40, 1)
    a = P.Allocation(16, 32, 16, 40, 8, 8, 2, 1, 1, 4)
    chunks = P.weight_chunks(spec, a)
    flags = [(c["byte_count"], c["empty"], c["last_input_tile"], c["accumulate"]) for c in chunks]
    assert flags == [(256, 0, 1, 0), (0, 1, 0, 1), (0, 1, 0, 0), (256, 0, 1, 0), (0, 1, 0, 0), (0, 1, 0, 0),
                     (0, 1, 0, 1), (0, 1, 1, 0), (0, 1, 0, 1), (0, 1, 1, 0), (64, 0, 1, 0), (0, 1, 1, 0)]


def test_depthwise_chunks_pad_the_last_pass_with_empty_chunks():
    # 672 channels in tiles of 128, passes of 640 (the vendor's 7 x 7 x 672 depthwise with an INT16 output):
    # pass 2 holds one 32-channel tile and four chunks of no bytes; 3 x 3 UINT8 weights: 160 bytes a 16 channels
    spec = P.ConvSpec("DEPTHWISE_CONV_2D", 7, 7, 672, 672, 3, out_dtype="INT16", as_conv=False)
    a = P.Allocation(128, 128, 640, 640, 7, 7, 0, 0, 6, 16)
    chunks = P.weight_chunks(spec, a)
    assert [c["byte_count"] for c in chunks] == [1280] * 5 + [320] + [0] * 4
    assert [c["byte_offset"] for c in chunks] == [1280 * i for i in range(6)] + [6720] * 4
    assert [c["empty"] for c in chunks] == [0] * 6 + [1] * 4
    assert [c["last_input_tile"] for c in chunks] == [0] * 5 + [1] * 5
    assert [c["sgs_slot_5"] for c in chunks] == [0] + [1] * 5 + [0] * 4
    # one pass of every channel: no padding
    whole = P.weight_chunks(spec, P.Allocation(128, 128, 672, 672, 7, 7, 0, 0, 6, 9))
    assert [c["empty"] for c in whole] == [0] * 6 and [c["byte_count"] for c in whole][-1] == 320


def test_a_fused_op_reserves_the_top_of_the_depthwise_buffer():
    spec = P.ConvSpec("DEPTHWISE_CONV_2D", 8, 8, 16, 16, 3, out_dtype="INT16", as_conv=False)
    plain = P.standalone_program(spec)
    assert (plain[30], plain[35]) == (0, (32,))
    hosting = P.standalone_program(spec, reserved=8)
    assert (hosting[30], hosting[35]) == (8, (24,))
    assert max(hosting[31] + hosting[32] + hosting[33]) < 24


def test_buffer_regions_follow_the_slot_counts():
    # UINT8 output: 33, weights, input, output; INT16 output: the output before the input
    spec = P.ConvSpec("CONV_2D", 16, 16, 64, 128, 1)
    a = P.Allocation(32, 64, 64, 128, 16, 8, 2, 1, 8, 8)
    prog = P.standalone_program(spec, a)
    assert (prog[33], prog[30], prog[31], prog[32]) == ((0, 4), (8,), (10,), tuple(range(11, 19)))
    spec16 = P.ConvSpec("CONV_2D", 5, 128, 8, 64, 1, in_dtype="INT16", out_dtype="INT16")
    a16 = P.Allocation(8, 8, 64, 64, 64, 5, 2, 1, 10, 4)
    prog16 = P.standalone_program(spec16, a16)
    assert (prog16[33], prog16[30], prog16[32], prog16[31]) == ((0,), (4,), (6, 8, 10, 12, 14), (16,))


def test_tiled_output_gives_the_input_tile_and_tiling_mode():
    small = P.standalone_program(P.ConvSpec("CONV_2D", 20, 24, 48, 48, 3, 1, "SAME"))
    assert (small[16], small[18], small[19], small[22], small[23]) == (1, 24, 20, 24, 20)
    spec = P.ConvSpec("CONV_2D", 40, 48, 48, 48, 3, 1, "SAME")
    a = P.Allocation(32, 48, 48, 48, 48, 10, 2, 3, 6, 12)
    tiled = P.standalone_program(spec, a)
    assert (tiled[16], tiled[18], tiled[19]) == (3, 48, (10 - 1) + 3)


def test_row_tile_is_the_first_even_split_that_fits():
    # 40 x 48 = 1920 pixels > 1536: two tiles of 20 rows (960 pixels, 3 groups of 16 channels: 6 slots)
    assert P.row_tile(P.ConvSpec("CONV_2D", 40, 48, 48, 48, 3, 1, "SAME"), 48) == 20
    # INT16 output of 64 channels (8 groups of 16 bytes) on 12 x 48: 576 x 8 rows = 9 entries = 18 slots > 16
    assert P.row_tile(P.ConvSpec("CONV_2D", 12, 48, 4, 64, 1, out_dtype="INT16"), 64) == 6


def test_input_slots_count_512_rows_of_16_bytes():
    spec = P.ConvSpec("CONV_2D", 40, 20, 96, 16, 1)  # 800 pixels x 6 groups of 16 bytes = 4800 rows
    assert P.input_slots(spec, 96, 20, 40) == 10
    spec16 = P.ConvSpec("CONV_2D", 5, 128, 8, 64, 1, in_dtype="INT16")  # 8 INT16 channels = 16 bytes a pixel
    assert P.input_slots(spec16, 8, 64, 5) == 1
    pixel = P.ConvSpec("CONV_2D", 32, 24, 3, 20, 3, graph_input=True)  # pixel mode: 4 bytes a pixel
    assert P.input_slots(pixel, 3, 24, 32) == 1


def test_zero_stands_for_sixteen_channels():
    prog = P.standalone_program(P.ConvSpec("CONV_2D", 12, 32, 16, 16, 3, 2, "VALID"))
    assert (prog[10], prog[11], prog[12], prog[13]) == (0, 0, 0, 0)


# ---------------------------------------------------------------- the vendor's standalone convs
HELD_OUT = [  # configurations of tools/vendor_program_survey.py heldout (not looked at while fitting)
    ("CONV_2D", (1, 6, 5, 160), (24, 5, 5, 160), 2, "SAME", "UINT8", "INT16", False),    # input pass 128
    ("CONV_2D", (1, 16, 8, 40), (160, 1, 1, 40), 1, "VALID", "INT16", "INT16", False),   # row tiles, INT16
    ("CONV_2D", (1, 128, 24, 3), (16, 1, 1, 3), 2, "VALID", "UINT8", "INT16", True),     # graph input, tiled
    ("CONV_2D", (1, 10, 5, 80), (13, 5, 5, 80), 1, "VALID", "UINT8", "UINT8", False),
    ("DEPTHWISE_CONV_2D", (1, 20, 7, 128), (1, 3, 3, 128), 1, "SAME", "UINT8", "INT16", False),
    ("DEPTHWISE_CONV_2D", (1, 80, 10, 80), (1, 1, 1, 80), 1, "VALID", "UINT8", "INT16", False),  # as CONV_2D
]


def _skip_without_vendor():
    import vendor_fixed_oracle as vo
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)


#: depthwise convs whose weights run in passes of fewer channels than C (the last pass padded with chunks of no
#: bytes) and in more than two chunks
PADDED_PASSES = [
    ("DEPTHWISE_CONV_2D", (1, 7, 7, 672), (1, 3, 3, 672), 1, "SAME", "UINT8", "INT16", False),
    ("DEPTHWISE_CONV_2D", (1, 7, 7, 672), (1, 3, 3, 672), 1, "SAME", "INT16", "INT16", False),
]


def _ids(c):
    return f"{c[0][:4]}_{'x'.join(map(str, c[1][1:]))}_k{c[2][1]}_{c[5][0]}{c[6][0]}"


@pytest.mark.parametrize("cfg", HELD_OUT + PADDED_PASSES, ids=_ids)
def test_rule_gives_the_vendors_standalone_program(cfg):
    """Every slot the rule derives equals the vendor's, given the vendor's allocation (slots 10-13,
    22, 23, 25-28 read from its file); slot 26 follows from the tile too."""
    _skip_without_vendor()
    import vendor_program_check as chk
    import vendor_program_splice as vps
    import vendor_program_survey as survey
    rec = survey.record(vps.ConvKey(*cfg))
    spec = chk.vendor_spec(rec)
    assert spec.op_kind == rec["op_kind"]
    alloc = chk.vendor_allocation(rec)
    got = P.standalone_program(spec, alloc)
    vendor = {int(k): v for k, v in rec["slots"].items()}
    for n, v in got.items():
        if n in chk.ALLOC_SLOTS[rec["op_kind"]]:
            continue
        assert chk.norm(v) == chk.norm(vendor[n]), f"slot {n}: rule {v}, vendor {vendor[n]}"
    if rec["op_kind"] == "CONV_2D":
        assert P.input_slots(spec, alloc.in_pass, vendor[18], vendor[19]) == vendor[26]
        assert P.weight_slots(spec, alloc.in_tile, alloc.in_pass, alloc.out_tile, alloc.out_pass) == vendor[25]


@pytest.mark.parametrize("shape,stride,dtypes,want", [
    # 96 x 96 x 16, SAME: whole plane ceil(9216 / 256) = 36 > 16 slots; rows: n = 2 gives 18, n = 3 (32 rows)
    # 12; input 34 x 98 x 16 = 53312 bytes -> 2 entries (face_landmark's op 2 in the vendor's L1 file)
    ((96, 96, 16), 1, ("UINT8", "UINT8"), (16, 96, 32, 12, 12)),
    # stride 2: output 48 x 48 (9 slots) but the whole input 97 x 97 x 16 -> 4 entries: 24 + 2 + 9 > 32;
    # 24 rows: input 49 x 97 x 16 -> 2 entries, 5 slots (face_landmark's op 10)
    ((96, 96, 16), 2, ("UINT8", "UINT8"), (16, 48, 24, 12, 5)),
    # 48 x 48 x 32: all 32 channels take ceil(2304 * 2 / 256) = 18 > 16 slots -> tile 16: 9 slots, 50 x 50 x 16
    # = 40000 bytes -> 1 entry (face_landmark's op 16)
    ((48, 48, 32), 1, ("UINT8", "UINT8"), (16, 48, 48, 6, 9)),
    # INT16 output: two slots a 256 pixels: 2 * ceil(25 * 2 / 256) = 2
    ((5, 5, 20), 1, ("UINT8", "INT16"), (20, 5, 5, 6, 2)),
])
def test_depthwise_allocation(shape, stride, dtypes, want):
    h, w, c = shape
    spec = P.ConvSpec("DEPTHWISE_CONV_2D", h, w, c, c, 3, stride, "SAME", *dtypes, as_conv=False)
    a = P.depthwise_allocation(spec)
    assert (a.out_tile, a.out_tile_width, a.out_tile_height, a.output_slots, a.region_28) == want


def test_depthwise_regions_fill_the_free_slots_in_order():
    # 64 x 64 x 28 stride 2 (face_detection's op 10): input 65 x 65 x 32 -> 3 entries at 0, 8, 16 (6 slots
    # each), slot 31 at 6-7; slot 33's 8 output slots are the free ones from 14 on
    spec = P.ConvSpec("DEPTHWISE_CONV_2D", 64, 64, 28, 28, 3, 2, "SAME", as_conv=False)
    prog = P.standalone_program(spec)
    assert prog[27] == 18 and prog[32] == (0, 8, 16) and prog[31] == (6,)
    assert prog[33] == (14, 15, 22, 23, 24, 25, 26, 27)
    # mac count: 9 * ceil(64 / 2) * ceil2(65) / 2 * 32
    assert prog[39] == 9 * 32 * 33 * 32


def test_a_depthwise_row_wider_than_128_pixels_is_refused():
    spec = P.ConvSpec("DEPTHWISE_CONV_2D", 80, 128, 16, 16, 3, 2, "SAME", as_conv=False)
    with pytest.raises(ValueError, match="129 pixels"):
        P.depthwise_allocation(spec)
