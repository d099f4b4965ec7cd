"""The IPU program the vendor's SDK writes for a conv on its own (Conv2DOptions / DepthwiseConv2DOptions
slots 10-42 of a fixed.sim), as a function of the conv's configuration.

A conv's program taken from a *standalone* model of it (``x -> 1x1 conv 3->Cin -> conv``, see
``tools/vendor_program_splice.py``) can replace the in-graph one (the vendor's simulator and
compiler accept it), so a rule for the standalone program is what writing a fixed.sim without a
template needs. The rule was fitted on 158 vendor standalone convs of ``tools/vendor_program_survey.py
train`` and checked on the 58 of ``heldout`` and the 28 of ``heldout_depthwise`` (docs/model_format.md,
"The standalone conv program"; the exceptions seen are listed there).

Model of the program. The IPU has 32 on-chip buffer *slots* of 512 rows x 16 bytes. A conv's program
reserves four regions of them, in this order: slot 33's region (slot 28 slots, entries of 4; what it
holds is not established), the weights (slot 30: slot 25 slots, entries of 2), and the input and
output tiles (slot 31: slot 26 entries of 1 slot; slot 32: slot 27 slots, entries of the output's
bytes per code; the INT16 output's region comes before the input's). Input channels run in passes of
slot 11 channels, each pass in tiles of slot 10; output channels in tiles of slot 12 (slot 13 the
channels of an output pass); the output plane in tiles of slot 22 x 23. ``sgs_dialect.SLOT_NAMES``
names these slots after this model (11 / 13 ``sgs_in_channels_per_pass`` / ``sgs_out_channels_per_pass``,
25-28 ``sgs_weight_slots``, ``sgs_input_slots``, ``sgs_output_slots``, ``sgs_region_28_slots``, 30-33
the regions' ``*_entry_slots``; a weight chunk's 3-5 ``empty``, ``last_input_tile``, ``accumulate``).
Given those allocation choices (``Allocation``) every other slot follows exactly (``standalone_program``):

- 15 = 2, 17 = 0, 21 = 1, 24 = 0, 29 = 0, 34 = (32,), 41 = 16 zeros; 20 = 1; 14 = 4 (pixel mode) on
  the graph-input conv, else 0; 38 = 2 on the converter's depthwise-as-conv rewrite, else 0;
- 16 = 1 when one tile is the whole output (22 = OW, 23 = OH), else 3;
- 18 / 19 = W / H for one tile column / row, else (22 - 1) * stride + kernel (23 likewise);
- 39 = kh * kw * OHv * OWv * ceil16(Cin) * ceil16(Cout), OHv = floor((H - kh) / stride) + 1;
- 33 = (0, 4, .., 28 - 4); 30 = (28, 28 + 2, ..) (25 / 2 entries); then, UINT8 output: 31 = 26
  consecutive slots, 32 = 27 slots after them; INT16 output: 32 first (27 / 2 entries of 2), 31 after;
- 40 = one weight DMA chunk per (input pass, output tile, input tile of the pass), in that order:
  offset the running sum, bytes the tile's padded blocks in the weight layout (``layout``),
  blocks = bytes / 32, slot 4 = 1 on the input's last tile, slot 5 = 1 on every tile but the first
  (the accumulation goes on); the last pass is padded to whole passes with empty chunks (no bytes,
  slots 3 and 4 = 1); for the depthwise-as-conv rewrite the diagonal chunks hold the bytes (slot 4 =
  1), the others none (slot 3 = 1, slot 5 = 1 where the input tile is after the output tile);
- 26 = ceil(in tile width * in tile height * ceil(11 * in bytes / 16) / 512) (the input tile's
  rows; the pixel-mode input counts 4 bytes a pixel).

The allocation itself (``default_allocation``): input tile 10 = the largest power of two below Cin
(at least 16; Cin itself up to 16); 12 = min(64, Cout), down to the next lower multiple of 16 while
one weight chunk exceeds 64 KB; 13 = Cout; 11 = Cin, less one input tile while the four regions
exceed the 32 slots; 25 = ``weight_slots``, 26 = ``input_slots``, 27 = ``output_slots``, 28 =
``region_28_slots``; the output tile of an ordinary conv is whole rows, ceil(OH / n) of them for
the smallest n with at most 1536 pixels and 16 output slots (``row_tile``), of a strided 1 x 1 conv
4 x 4, of a depthwise (or its rewrite) the whole plane. It gives the vendor's whole program for 32
of 52 held-out convs (each slot alone for 40-52 of them); slot 27, which the vendor often makes
larger than the output needs, is the main miss (docs/model_format.md has the counts).

DepthwiseConv2DOptions (a 3 x 3 depthwise of more than 3 channels stays depthwise; every other
depthwise becomes the rewrite above): 11 = 13 = the channel tile (as slot 10 above), 12 = 14 = C,
15 = 16 = 2, 17 = 21 = 22 = 1, 18 = 25 = 0, 26 = 2, 31 = (6,), 34 = (), 42 = 16 zeros,
19 / 20 from 23 / 24 as above; 30 = the slots a fused op run inside the depthwise reserves (8; 0, absent
in the file, elsewhere) and 35 = (32 - 30,), as the conv's 29 / 34; 41 one DMA chunk per channel tile of
each pass of slot 12's channels, the last pass padded to whole passes with empty chunks (slots 3 and 4 = 1),
slot 5 = 1 on every chunk holding bytes but the first.

Values are as the vendor writes them: a channel count of 16 is stored as 0 (``_z``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

from ..model import sgs_dialect

CONV = "CONV_2D"
DEPTHWISE = "DEPTHWISE_CONV_2D"
SLOT_ROWS = 512  # rows of one on-chip buffer slot (16 bytes a row)
MAX_TILE_PIXELS = 1536  # the largest output tile seen (and the row-tile rule's bound)
MAX_OUTPUT_SLOTS = 16
WEIGHT_ENTRY_BYTES = 16384  # one weight entry: two slots
MAX_CHUNK_BYTES = 65536
SLOTS = 32
MAX_IN_TILE = 128  # the largest input channel tile (slot 10) of a conv: hand_landmark_lite's 288-672 channels
MAX_IN_TILE_WIDTH = 128  # the widest conv input tile (slot 18) seen
MAX_DEPTHWISE_ROW = 128  # the widest depthwise input row (SAME pads included) seen in one tile
DEPTHWISE_INPUT_ENTRY_BYTES = 49152  # one DepthwiseConv2DOptions slot 32 entry: 6 slots of 8 KB


def _ceil(a: int, b: int) -> int:
    return -(-a // b) * b


def _z(c: int) -> int:
    """A channel count as the vendor stores it: 16 is 0."""
    return 0 if c == 16 else c


def _bytes(dtype: str) -> int:
    return 2 if dtype == "INT16" else 1


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """A CONV_2D or DEPTHWISE_CONV_2D as the vendor converts it on its own."""
    kind: str
    height: int
    width: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: str = "SAME"
    in_dtype: str = "UINT8"
    out_dtype: str = "UINT8"
    graph_input: bool = False
    as_conv: Optional[bool] = None  # a depthwise the converter writes as CONV_2D (None: ``op_kind``'s rule)

    def __post_init__(self):
        if self.kind not in (CONV, DEPTHWISE):
            raise ValueError(f"kind must be {CONV} or {DEPTHWISE}, not {self.kind!r}")
        if self.kind == DEPTHWISE and self.out_channels != self.in_channels:
            raise ValueError("a depthwise conv (depth multiplier 1) has out_channels == in_channels")
        if not isinstance(self.stride, int) or self.stride < 1 or not isinstance(self.kernel, int) or self.kernel < 1:
            raise ValueError(f"kernel and stride must be positive ints, not {self.kernel!r}, {self.stride!r}")
        if self.padding not in ("SAME", "VALID"):
            raise ValueError(f"padding must be SAME or VALID, not {self.padding!r}")

    @property
    def op_kind(self) -> str:
        """The op the vendor's converter writes: a depthwise of kernel other than 3, or of 3 channels,
        becomes a CONV_2D with diagonal weights (``Conv2DOptions`` slot 38 = 2)."""
        if self.kind == DEPTHWISE and self.as_conv is not None:
            return CONV if self.as_conv else DEPTHWISE
        if self.kind == DEPTHWISE and (self.kernel != 3 or self.in_channels == 3):
            return CONV
        return self.kind

    @property
    def depthwise_as_conv(self) -> bool:
        return self.kind == DEPTHWISE and self.op_kind == CONV

    @property
    def out_height(self) -> int:
        return _out(self.height, self.kernel, self.stride, self.padding)

    @property
    def out_width(self) -> int:
        return _out(self.width, self.kernel, self.stride, self.padding)


def _out(n: int, k: int, s: int, padding: str) -> int:
    return -(-n // s) if padding == "SAME" else (n - k) // s + 1


def channel_tile(c: int) -> int:
    """The largest power of two below ``c``, at least 16 (``c`` itself up to 16): the vendor's input
    channel tile of a conv on its own (``layout.conv_tilings``' first candidate)."""
    if c <= 16:
        return c
    t = 16
    while t * 2 < c:
        t *= 2
    return t


@dataclasses.dataclass(frozen=True)
class Allocation:
    """The vendor allocator's choices for a conv (actual channel counts, 16 not stored as 0)."""
    in_tile: int        # slot 10
    in_pass: int        # slot 11
    out_tile: int       # slot 12
    out_pass: int       # slot 13
    out_tile_width: int   # slot 22
    out_tile_height: int  # slot 23
    weight_slots: int   # slot 25
    input_slots: int    # slot 26
    output_slots: int   # slot 27
    region_28: int      # slot 28

    @property
    def used_slots(self) -> int:
        """The buffer slots the four regions take (at most 32, less what a fused activation reserves)."""
        return self.weight_slots + self.input_slots + self.output_slots + self.region_28


def input_slots(spec: ConvSpec, in_pass: int, in_tile_width: int, in_tile_height: int) -> int:
    """Slot 26: the buffer slots the input tile takes (512 rows of 16 bytes each)."""
    row_groups = 0.25 if spec.graph_input else math.ceil(in_pass * _bytes(spec.in_dtype) / 16)
    return math.ceil(in_tile_width * in_tile_height * row_groups / SLOT_ROWS)


def output_slots(spec: ConvSpec, out_pass: int, out_tile_width: int, out_tile_height: int) -> int:
    """Slot 27 where the output fits (the vendor sometimes reserves more: not fitted)."""
    ob = _bytes(spec.out_dtype)
    return ob * math.ceil(out_tile_width * out_tile_height * math.ceil(out_pass * ob / 16) / SLOT_ROWS)


def weight_slots(spec: ConvSpec, in_tile: int, in_pass: int, out_tile: int, out_pass: int) -> int:
    """Slot 25 (fitted on the train convs given slots 10-13, 136 of 137): two slots per 16 KB of the
    weights of every output tile of a pass for one input pass, the pass rounded up to whole input
    tiles (the rewrite: its diagonal block), ``layout``'s 32-byte padded blocks."""
    kk = spec.kernel * spec.kernel
    int16 = spec.in_dtype == "INT16"
    if spec.depthwise_as_conv:
        load = _tile_bytes(out_tile, out_tile, kk, int16)
    else:
        load = _tile_bytes(out_tile, -(-in_pass // in_tile) * in_tile, kk, int16)
    return 2 * math.ceil(-(-out_pass // out_tile) * load / WEIGHT_ENTRY_BYTES)


def resident_weight_slots(spec: ConvSpec, in_tile: int, in_pass: int, out_tile: int, out_pass: int) -> int:
    """The weight slots (slot 25) the vendor's compiler needs for an INT16-input CONV_2D whose input takes
    more than one pass: the weights of every input pass of an output pass at once, 2 slots per 16 KB
    (:func:`weight_slots` over all the passes); :func:`weight_slots` otherwise. The compiler's
    ``[vrbuf_alloc] bufid 8 vrbuf_depth_used=U, require depth_size=R, now vrbuf_depth=D`` (rows of 32
    bytes, D = 25 / 2 x 512), then ``sdk_conv.c:1487: Conv_FFDIHWDO: Assertion `bRet'``: on
    hand_landmark_lite's 14 x 14 x 288 -> 48 1 x 1 conv, INT16 in and out, passes of 128 (3 of them), one
    output tile of 48, R = 384 a chunk (the 12 KB of 48 x 128 INT16 weights; 192 for input tiles of 64,
    256 for output tiles of 32), refused with 2 and 4 slots (512, 1024 rows), compiled with 6 (1536 rows
    for the 3 x 384)."""
    if spec.in_dtype != "INT16" or spec.graph_input or in_pass >= spec.in_channels or spec.depthwise_as_conv:
        return weight_slots(spec, in_tile, in_pass, out_tile, out_pass)
    passes = -(-spec.in_channels // in_pass)
    load = _tile_bytes(out_tile, -(-in_pass // in_tile) * in_tile, spec.kernel * spec.kernel, True)
    return 2 * math.ceil(passes * -(-out_pass // out_tile) * load / WEIGHT_ENTRY_BYTES)


def region_28_slots(spec: ConvSpec, out_pass: int, out_tile_width: int, out_tile_height: int,
                    in_tiles: int = 1) -> int:
    """Slot 28: 4 slots per 512 output pixels, per 16 bytes of input codes of the pass's output channels
    (16 channels, 8 of an INT16 input) for the depthwise rewrite and where an input pass spans
    ``in_tiles`` > 1 input tiles (the region then holds the partial sums; fitted on the train convs
    given the tile, 135 of 137 before the in-tile term; with it 162 of 168 standalone convs and every
    in-graph conv of the vendor's L1 files of the shared models whose pass spans tiles; the INT16
    input's 8-channel groups: 55 of 55 INT16-input convs whose pass spans tiles in the vendor's
    ALL_INT16 L1 file of face_detection_short_range and the oracle cache, 44 of them where 16-channel
    groups give fewer slots). :func:`compiler_limits` gives the compiler's own bound."""
    if spec.depthwise_as_conv or in_tiles > 1:  # 10 of 10 INT16 rewrites; the INT16-input convs above
        groups = math.ceil(out_pass * _bytes(spec.in_dtype) / 16)
    else:
        groups = 1
    return 4 * math.ceil(out_tile_width * out_tile_height * groups / SLOT_ROWS)


def compiler_limits(spec: ConvSpec, a: Allocation, slots: int = SLOTS) -> list[str]:
    """What the vendor's compiler (sgs_compiler, ``convert_offline``) refuses in an ordinary CONV_2D's
    allocation ``a``, within ``slots`` buffer slots (fewer when a fused activation reserves some): one
    line per broken limit, empty when none is. A broken limit aborts the compiler at
    ``CONV_POOL/sdk_conv.c`` (``Conv_FFDIHWDO``). With px = 22 x 23 the output tile's pixels, P = slot 13,
    ob / ib the output's / input's bytes per code:

    - the four regions take at most ``slots`` (25 + 26 + 27 + 28);
    - the output region at most :data:`MAX_OUTPUT_SLOTS` (``_vrbuf_init_bufid: width_inslots*depth_inslots
      <= VP_ENTRY_OFFSET_IN_OBVRBUF``);
    - the output double-buffered: (27 / ob) x 512 rows >= 2 x px x ceil(P / 16) (``vrbuf_depth(u32ObBufId)
      >= (u32)(2*stObSwTileShapeInfo.vrbuf_depth)``);
    - an INT16 input in more than one pass: slot 25 at least :func:`resident_weight_slots`;
    - where an input pass spans more than one input tile, or an INT16 input takes more than one pass, region
      28's partial sums: (28 / 4) x 512 rows >= px x (the sum over the pass's output tiles of
      ceil(tile channels x ib / 16)) (``vrbuf_alloc ... require depth_size=...``, then ``Assertion `bRet'``;
      the second case on hand_landmark_lite's 28 x 28 x 96 -> 24 1 x 1 conv, INT16 in and out, one input
      tile of 64 a pass, 28 x 14 output tiles: 392 x 3 = 1176 rows required, 8 slots (1024) refused).

    Established with the vendor's compiler on builder chains (16 x 16 x 72 -> 80 and 14 x 16 x 72 -> 72
    INT16 1 x 1 convs: the rows the error line requires, tile by tile, for output tiles of 16, 32 and 64
    channels) and held by every CONV_2D of the vendor-made files at hand (1,390 in the ALL_INT16 L1 file
    of face_detection_short_range and 631 fixed files of the oracle cache, 198 standalone ones of
    ``tools/vendor_program_survey.py``). Not checked on the depthwise rewrite. Not a limit: an INT16
    output tile over 512 pixels (169 of those vendor convs, the files compile; the synthesizer still
    avoids it, where ``_Conv_GetObTilePartitionInfo: tile_w * tile_h <= ONE_SLOT_DEPTH`` was seen)."""
    px = a.out_tile_width * a.out_tile_height
    ob, ib = _bytes(spec.out_dtype), _bytes(spec.in_dtype)
    out = []
    resident = resident_weight_slots(spec, a.in_tile, a.in_pass, a.out_tile, a.out_pass)
    if a.weight_slots < resident:
        out.append(f"the weights take {a.weight_slots} buffer slots, not the {resident} of every input pass")
    if a.used_slots > slots:
        out.append(f"the regions take {a.used_slots} buffer slots, over {slots}")
    if a.output_slots > MAX_OUTPUT_SLOTS:
        out.append(f"the output takes {a.output_slots} buffer slots, over {MAX_OUTPUT_SLOTS}")
    need = 2 * px * math.ceil(a.out_pass / 16)
    if a.output_slots // ob * SLOT_ROWS < need:
        out.append(f"the output region holds {a.output_slots // ob * SLOT_ROWS} rows, not the {need} of two tiles")
    if not spec.graph_input and (-(-a.in_pass // a.in_tile) > 1 or (ib == 2 and a.in_pass < spec.in_channels)):
        tiles = [min(a.out_tile, a.out_pass - t) for t in range(0, a.out_pass, a.out_tile)]
        need = px * sum(math.ceil(t * ib / 16) for t in tiles)
        if a.region_28 // 4 * SLOT_ROWS < need:
            out.append(f"region 28 holds {a.region_28 // 4 * SLOT_ROWS} rows, not the {need} of the partial sums")
    return out


def rewrite_allocation(spec: ConvSpec, slots: int = SLOTS) -> Allocation:
    """The allocation of a depthwise conv the converter writes as CONV_2D (fitted with UINT8 in and out on
    the six distinct 5 x 5 rewrites of hand_landmark_lite (96-672 channels, 7 x 7 to 56 x 56) made on their
    own by the vendor's SDK, every allocation slot equal; the INT16 terms on 8 INT16-input rewrites
    writing UINT8 and 2 writing INT16, 8-40 channels, every program slot equal). Tiles of 16 channels;
    the output plane whole, or the fewest whole-row tiles whose smallest program fits; then the longest
    output pass (a multiple of 16) that fits with 16-channel input passes, then the longest input pass
    that fits with it. With b the input's and o the output's bytes per code: the input region holds
    all C channels of the tile (ceil(pixels x ceil(C b / 16) / 512)), the output
    o ceil(2 x pixels x ceil(P o / 16) / 512) slots, region 28 4 ceil(pixels x ceil(P b / 16) / 512),
    the weights the ordinary conv's count (every output tile of the pass over whole input tiles, in
    the INT16 layout for an INT16 input)."""
    c, k, st = spec.in_channels, spec.kernel, spec.stride
    oh, ow = spec.out_height, spec.out_width
    kk = k * k
    t = min(16, c)
    int16, ib, ob = spec.in_dtype == "INT16", _bytes(spec.in_dtype), _bytes(spec.out_dtype)

    def alloc(th, ip, op):
        in_w = in_tile_size(spec.width, ow, ow, k, st)
        in_h = in_tile_size(spec.height, oh, th, k, st)
        px = ow * th
        groups = math.ceil(op / 16)
        w = 2 * math.ceil(groups * _tile_bytes(16, _ceil(ip, 16), kk, int16) / WEIGHT_ENTRY_BYTES)
        return Allocation(t, ip, t, op, ow, th, w, math.ceil(in_w * in_h * math.ceil(c * ib / 16) / SLOT_ROWS),
                          ob * math.ceil(2 * px * math.ceil(op * ob / 16) / SLOT_ROWS),
                          region_28_slots(spec, op, ow, th))

    def fits(a):
        return a.used_slots <= slots
    for n in range(1, oh + 1):
        th = -(-oh // n)
        if n > 1 and th == -(-oh // (n - 1)):
            continue
        if not fits(alloc(th, t, t)):
            continue
        op = t
        while op < c and fits(alloc(th, t, min(op + 16, c))):
            op = min(op + 16, c)
        ip = t
        while ip < c and fits(alloc(th, min(ip + 16, c), op)):
            ip = min(ip + 16, c)
        return alloc(th, ip, op)
    raise ValueError("no row tile of the depthwise rewrite fits the 32 slots")


def default_allocation(spec: ConvSpec, slots: int = SLOTS, in_tile: Optional[int] = None,
                       out_tile: Optional[int] = None, output_passes_first: bool = False) -> Allocation:
    """The allocation the vendor chooses (the rule of the module doc; where it misses: docs) within
    ``slots`` buffer slots (fewer than 32 when a fused activation reserves some); ``in_tile`` /
    ``out_tile``: other input / output tiles (slots 10 / 12) of an ordinary conv than the rule's;
    ``output_passes_first``: shorten the output pass before the input pass where the regions do not
    fit (the vendor's choice for face_landmark's 12 x 12 x 128 -> 128 convs inside the graph)."""
    cin, cout = spec.in_channels, spec.out_channels
    ordinary = spec.op_kind == CONV and not spec.depthwise_as_conv
    if spec.op_kind == DEPTHWISE:
        return depthwise_allocation(spec, slots)
    if spec.depthwise_as_conv:
        ti, to = min(16, cin), min(16, cout)
    else:
        ti, to = in_tile or min(MAX_IN_TILE, channel_tile(cin)), min(out_tile or 64, cout)
    kk, int16 = spec.kernel * spec.kernel, spec.in_dtype == "INT16"
    if ordinary:  # one weight chunk is at most 64 KB: output tiles shrink by 16 channels
        while to > 16 and _tile_bytes(to, ti, kk, int16) > MAX_CHUNK_BYTES:
            to = _ceil(to, 16) - 16
    ow, oh = spec.out_width, spec.out_height
    tw, th = ow, oh
    if ordinary:
        if spec.kernel == 1 and spec.stride == 2:
            tw, th = min(4, ow), min(4, oh)  # a strided 1 x 1 conv runs in 4 x 4 output tiles (mostly)
        else:
            tw = column_tile(spec)
            th = row_tile(spec, cout, tw)
    in_w = in_tile_size(spec.width, ow, tw, spec.kernel, spec.stride)
    in_h = in_tile_size(spec.height, oh, th, spec.kernel, spec.stride)
    p = cin
    while True:
        a = Allocation(ti, p, to, cout, tw, th, weight_slots(spec, ti, p, to, cout), input_slots(spec, p, in_w, in_h),
                       output_slots(spec, cout, tw, th), region_28_slots(spec, cout, tw, th, -(-p // ti)))
        if not ordinary or a.used_slots <= slots:
            return a
        if output_passes_first and p == cin:
            b = _output_passes(spec, a, slots)
            if b.used_slots <= slots:
                return b
        if p <= ti:
            return _output_passes(spec, a, slots)
        p = (-(-p // ti) - 1) * ti  # the input pass loses a tile until the program fits the 32 slots


def _padded(n: int, out: int, kernel: int, stride: int, padding: str) -> int:
    """The input extent a whole-plane tile reads: ``n`` plus SAME's pads."""
    return n + max((out - 1) * stride + kernel - n, 0) if padding == "SAME" else n


def depthwise_input_bytes(spec: ConvSpec, tile: int, in_width: int, in_height: int) -> int:
    """The bytes of a DEPTHWISE_CONV_2D's input tile: pixels times the tile's channels rounded up to
    16, times the code's bytes."""
    return in_width * in_height * _ceil(tile, 16) * _bytes(spec.in_dtype)


def depthwise_region_28(spec: ConvSpec, tile: int, out_tile_width: int, out_tile_height: int) -> int:
    """DepthwiseConv2DOptions slot 28: the output code's bytes times one slot per 256 output pixels of
    each 16 channels of the tile."""
    return _bytes(spec.out_dtype) * math.ceil(out_tile_width * out_tile_height * math.ceil(tile / 16) / 256)


def depthwise_strided_rows(spec: ConvSpec, tile: int, out_tile_width: int, out_tile_height: int) -> int:
    """The rows a strided INT16-input DEPTHWISE_CONV_2D takes of its 2-slot region (slot 26) per channel
    tile: OW x ceil(tile x 2 / 16) x (floor(OH tile / 2) + 2), at most 2 x 512 (the compiler's
    ``[vrbuf_alloc] bufid 12 ... require depth_size=R, now vrbuf_depth=1024``, then ``sdk_conv.c:1034:
    DepthWise_Conv_FFDIHWDO: Assertion `bRet'``). Established on hand_landmark_lite's 112 x 112 x 64
    stride-2 3 x 3 depthwise conv with an INT16 input and output, one program slot changed a run: R =
    1120 for tiles of 32 channels and 6 or 7 output rows, 1344 for 8, 560 a tile for 16 channels and
    6 rows, 5 rows compile (the slot-26 value written does not change the 1024). 0 for a UINT8 input
    or stride 1 (not seen: the 56 x 56 x 96 stride-1 INT16 one compiles with tiles of 64 channels and
    8 rows)."""
    if spec.in_dtype != "INT16" or spec.stride == 1:
        return 0
    return out_tile_width * math.ceil(tile * 2 / 16) * (out_tile_height // 2 + 2)


def depthwise_allocation(spec: ConvSpec, slots: int = SLOTS) -> Allocation:
    """The allocation of a native DEPTHWISE_CONV_2D (fitted on the 102 native 3 x 3 depthwise convs of
    the session's vendor files, 101 equal in every program slot; docs/model_format.md) within ``slots``
    buffer slots (fewer than 32 when a fused op run inside the depthwise reserves some: the vendor's own
    allocation of such a depthwise differs, not established).

    The channel tile is C, or ``channel_tile(C)`` when the whole output would take more than 16 of
    slot 28's slots; the output plane is whole, or whole rows, ceil(OH / n) of them for the smallest n
    whose slot 28 is at most 16, whose regions fit the 32 slots (6 per 48 KB input entry (slot 27),
    2 for slot 31, slot 28) and, when tiled, whose input takes at most 2 entries, and (a strided
    INT16 input) whose :func:`depthwise_strided_rows` fit slot 26's 2 slots. A plane whose input
    row (with SAME's pads) is wider than 128 pixels the vendor tiles by columns: not established,
    refused (``ValueError``)."""
    c, k, s = spec.in_channels, spec.kernel, spec.stride
    oh, ow = spec.out_height, spec.out_width
    full_w = _padded(spec.width, ow, k, s, spec.padding)
    full_h = _padded(spec.height, oh, k, s, spec.padding)
    if full_w > MAX_DEPTHWISE_ROW:
        raise ValueError(f"a depthwise input row of {full_w} pixels (over {MAX_DEPTHWISE_ROW}) is tiled by "
                         f"columns, which the program rule does not establish")
    tile = c if depthwise_region_28(spec, c, ow, oh) <= MAX_OUTPUT_SLOTS else channel_tile(c)
    for n in range(1, oh + 1):
        th = -(-oh // n)
        if n > 1 and th == -(-oh // (n - 1)):
            continue
        in_h = full_h if th == oh else (th - 1) * s + k
        entries = math.ceil(depthwise_input_bytes(spec, tile, full_w, in_h) / DEPTHWISE_INPUT_ENTRY_BYTES)
        r28 = depthwise_region_28(spec, tile, ow, th)
        if r28 <= MAX_OUTPUT_SLOTS and 6 * entries + 2 + r28 <= slots and (th == oh or entries <= 2) and \
                depthwise_strided_rows(spec, tile, ow, th) <= 2 * SLOT_ROWS:
            return Allocation(depthwise_weight_tile(spec), c, tile, c, ow, th, 0, 2, 6 * entries, r28)
    raise ValueError(f"no depthwise row tile fits the {slots} slots")


def depthwise_weight_tile(spec: ConvSpec) -> int:
    """Slots 11 / 13 of a native DEPTHWISE_CONV_2D: ``channel_tile(C)``; for an INT16 input whose weights
    in those tiles (k x k + 1 INT16 values a channel, every tile padded) exceed the 16 KB of the weight
    region (slot 31's 2 slots), C (one tile) where that fits, else refused (``ValueError``). The
    compiler's ``[vrbuf_alloc] bufid 8 vrbuf_depth_used=320, require depth_size=320, now
    vrbuf_depth=512`` (rows of 32 bytes), then ``sdk_conv.c:1062: DepthWise_Conv_FFDIHWDO: Assertion
    `bRet'`, on hand_landmark_lite's 7 x 7 x 672 3 x 3 one with an INT16 input (tiles of 512: 2 x 10 KB);
    with slots 11 / 13 = 672 the file compiled."""
    c, t = spec.in_channels, channel_tile(spec.in_channels)
    if spec.in_dtype != "INT16":
        return t
    need = lambda tile: -(-c // tile) * tile * (spec.kernel * spec.kernel + 1) * 2  # noqa: E731
    if need(t) <= WEIGHT_ENTRY_BYTES:
        return t
    if need(c) <= WEIGHT_ENTRY_BYTES:
        return c
    raise ValueError(f"the INT16 depthwise weights of {c} channels take {need(c)} bytes, over the "
                     f"{WEIGHT_ENTRY_BYTES} of the weight region")


def depthwise_mac_count(spec: ConvSpec) -> int:
    """DepthwiseConv2DOptions slot 39: kh * kw * ceil(H / s) * ceil2(W + pads) / s * ceil16(C)."""
    k, s = spec.kernel, spec.stride
    w = _ceil(_padded(spec.width, spec.out_width, k, s, spec.padding), 2) // s
    return k * k * -(-spec.height // s) * w * _ceil(spec.in_channels, 16)


def _output_passes(spec: ConvSpec, a: Allocation, slots: int) -> Allocation:
    """``a`` with the output pass (slot 13) one output tile shorter until the regions fit ``slots``
    (face_landmark's (1404, 3, 3, 32) conv: passes of 1344 in the vendor's file)."""
    while a.out_pass > a.out_tile and a.used_slots > slots:
        q = (-(-a.out_pass // a.out_tile) - 1) * a.out_tile
        a = dataclasses.replace(a, out_pass=q, weight_slots=weight_slots(spec, a.in_tile, a.in_pass, a.out_tile, q),
                                output_slots=output_slots(spec, q, a.out_tile_width, a.out_tile_height),
                                region_28=region_28_slots(spec, q, a.out_tile_width, a.out_tile_height,
                                                          -(-a.in_pass // a.in_tile)))
    return a


def with_row_tile(spec: ConvSpec, a: Allocation, rows: int) -> Allocation:
    """``a`` with output tiles of ``rows`` whole rows (slots 23, 26, 27 and 28 recomputed)."""
    in_w = in_tile_size(spec.width, spec.out_width, a.out_tile_width, spec.kernel, spec.stride)
    in_h = in_tile_size(spec.height, spec.out_height, rows, spec.kernel, spec.stride)
    return dataclasses.replace(a, out_tile_height=rows, input_slots=input_slots(spec, a.in_pass, in_w, in_h),
                               output_slots=output_slots(spec, a.out_pass, a.out_tile_width, rows),
                               region_28=region_28_slots(spec, a.out_pass, a.out_tile_width, rows,
                                                         -(-a.in_pass // a.in_tile)))


def column_tile(spec: ConvSpec) -> int:
    """Slot 22 of an ordinary CONV_2D: OW, or ceil(OW / m) for the smallest m whose input tile is at most
    :data:`MAX_IN_TILE_WIDTH` pixels wide where the whole input row is wider (hand_landmark_lite's
    224-pixel graph-input conv: the vendor's tiles are 56 of 112 output columns; its depthwise convs
    the same bound, ``depthwise_allocation``)."""
    ow, k, s = spec.out_width, spec.kernel, spec.stride
    if spec.width <= MAX_IN_TILE_WIDTH:
        return ow
    for m in range(2, ow + 1):
        tw = -(-ow // m)
        if (tw - 1) * s + k <= MAX_IN_TILE_WIDTH:
            return tw
    return 1


def row_tile(spec: ConvSpec, out_pass: int, out_tile_width: Optional[int] = None) -> int:
    """Slot 23 of an ordinary CONV_2D (whole rows of the tile's ``out_tile_width``, default OW): ceil(OH / n)
    for the smallest n whose tile holds at most 1536 pixels and whose output takes at most 16 slots
    (fitted on 108 convs: 106 right; the held-out 41: 40)."""
    oh = spec.out_height
    ow = out_tile_width or spec.out_width
    for n in range(1, oh + 1):
        th = -(-oh // n)
        if th * ow <= MAX_TILE_PIXELS and output_slots(spec, out_pass, ow, th) <= MAX_OUTPUT_SLOTS:
            return th
    return 1


def in_tile_size(full: int, out_full: int, out_tile: int, kernel: int, stride: int) -> int:
    """Slot 18 / 19: the input tile width / height for an output tile."""
    return full if out_tile == out_full else (out_tile - 1) * stride + kernel


def mac_count(spec: ConvSpec) -> int:
    """Slot 39 of a CONV_2D: multiply-accumulates of the unpadded conv, channels rounded up to 16."""
    k, s = spec.kernel, spec.stride
    ohv, owv = (spec.height - k) // s + 1, (spec.width - k) // s + 1
    return k * k * ohv * owv * _ceil(spec.in_channels, 16) * _ceil(spec.out_channels, 16)


def _tile_bytes(o_count: int, i_count: int, kk: int, int16: bool) -> int:
    """Bytes of one (output tile, input tile) of the conv weight layout (``layout``'s blocks, 32-byte padded)."""
    n = 0
    if not int16:
        for g in range(0, o_count, 16):
            for b in range(0, i_count, 16):
                n += kk * _ceil(min(16, o_count - g) * min(16, i_count - b), 32)
        return n
    for b0 in range(0, i_count, 16):
        bi = min(16, i_count - b0)
        for g in range(0, o_count, 8):
            for r in range(0, bi, 8):
                n += kk * _ceil(min(8, o_count - g) * min(8, bi - r) * 2, 32)
    return n


#: the table of one weight DMA chunk (Conv2DOptions slot 40, DepthwiseConv2DOptions slot 41)
CHUNK_TABLES = {CONV: "SgsConv2DOptionsSlot40", DEPTHWISE: "SgsDepthwiseConv2DOptionsSlot41"}


def _chunk(kind: str, offset: int, count: int, flags: dict) -> dict:
    """One weight DMA chunk, its fields named as ``sgs_dialect`` names them: slots 0-2 and ``flags``
    ({slot: value}: 3 ``empty``, 4 ``last_input_tile``, 5 the conv's ``accumulate`` / the depthwise's unnamed one)."""
    table = CHUNK_TABLES[kind]
    values = {0: offset, 1: count, 2: count // 32, **flags}
    return {sgs_dialect.SLOT_NAMES.get((table, slot), f"sgs_slot_{slot}"): v for slot, v in values.items()}


def _conv_chunk(offset: int, count: int, empty: int, last_input_tile: int, accumulate: int) -> dict:
    return _chunk(CONV, offset, count, {3: empty, 4: last_input_tile, 5: accumulate})


def weight_chunks(spec: ConvSpec, alloc: Allocation) -> tuple:
    """Conv2DOptions slot 40 (DepthwiseConv2DOptions 41): the weight DMA chunks."""
    if spec.op_kind == DEPTHWISE:
        return depthwise_weight_chunks(spec, alloc)
    kk = spec.kernel * spec.kernel
    int16 = spec.in_dtype == "INT16"
    out: list = []
    cout = spec.out_channels
    per_pass = -(-alloc.in_pass // alloc.in_tile)
    out_pass = alloc.out_pass
    tiles_per_out_pass = -(-out_pass // alloc.out_tile)
    for q0 in range(0, cout, out_pass):
        _output_pass_chunks(out, spec, alloc, q0, tiles_per_out_pass, per_pass, kk, int16)
    return tuple(out)


def depthwise_weight_chunks(spec: ConvSpec, alloc: Allocation) -> tuple:
    """DepthwiseConv2DOptions slot 41: one chunk per channel tile (slot 11) of each pass (slot 12's
    channels), the last pass padded to whole passes with chunks of no bytes (``empty`` and
    ``last_input_tile`` 1, slot 5 0: the vendor's 7 x 7 x 672 depthwise in tiles of 128, passes of 640);
    ``last_input_tile`` = 1 on the last tile holding bytes, slot 5 = 1 on every chunk holding bytes but the
    first. A pass holds one tile at least (an INT16 input's one weight tile of C over passes of fewer
    channels, ``depthwise_weight_tile``: one chunk, as the synthesizer's files the vendor's tools took)."""
    c, kk, wb = spec.in_channels, spec.kernel * spec.kernel, _bytes(spec.in_dtype)
    size = max(alloc.out_tile, alloc.in_tile)
    per_pass = -(-size // alloc.in_tile)
    tiles = [(p0 + j * alloc.in_tile, p0 + size) for p0 in range(0, c, size) for j in range(per_pass)]
    out, pos = [], 0
    for t0, end in tiles:
        if t0 >= min(c, end):  # the last pass's padding
            out.append(_chunk(DEPTHWISE, pos, 0, {3: 1, 4: 1, 5: 0}))
            continue
        nbytes = min(alloc.in_tile, c - t0, end - t0) * wb
        count = sum(_ceil(min(16, nbytes - b) * kk, 32) for b in range(0, nbytes, 16))
        out.append(_chunk(DEPTHWISE, pos, count, {3: 0, 4: int(t0 + alloc.in_tile >= c), 5: int(bool(out))}))
        pos += count
    return tuple(out)


def _output_pass_chunks(out: list, spec: ConvSpec, alloc: Allocation, q0: int, tiles_per_out_pass: int,
                        per_pass: int, kk: int, int16: bool) -> None:
    """The chunks of the output pass starting at channel ``q0`` (appended to ``out``): per input pass,
    per output tile of the pass (the last pass padded with empty tiles to a whole pass), per input
    tile of the pass."""
    cin, cout = spec.in_channels, spec.out_channels
    pos = out[-1]["byte_offset"] + out[-1]["byte_count"] if out else 0
    for p0 in range(0, cin, alloc.in_pass):
        for k in range(tiles_per_out_pass):
            o0 = q0 + k * alloc.out_tile
            oc = min(alloc.out_tile, cout - o0)
            for j in range(per_pass):
                t0 = p0 + j * alloc.in_tile
                if t0 >= cin or o0 >= cout:  # the last input / output pass is padded with empty tiles
                    out.append(_conv_chunk(pos, 0, 1, 1, 0))
                elif spec.depthwise_as_conv:  # diagonal 16-channel blocks only
                    if t0 == o0:
                        count = _tile_bytes(oc, oc, kk, int16)
                        out.append(_conv_chunk(pos, count, 0, 1, 0))
                        pos += count
                    else:
                        out.append(_conv_chunk(pos, 0, 1, 0, int(t0 > o0)))
                else:
                    count = _tile_bytes(oc, min(alloc.in_tile, cin - t0, p0 + alloc.in_pass - t0), kk, int16)
                    out.append(_conv_chunk(pos, count, 0, int(t0 + alloc.in_tile >= cin), int(t0 > 0)))
                    pos += count


def _regions(spec: ConvSpec, a: Allocation) -> dict:
    ob = _bytes(spec.out_dtype)
    r = {33: tuple(range(0, a.region_28, 4)), 30: tuple(range(a.region_28, a.region_28 + a.weight_slots, 2))}
    p = a.region_28 + a.weight_slots
    inp = tuple(range(p, p + a.input_slots))
    if ob == 2:
        r[32] = tuple(range(p, p + a.output_slots, 2))
        r[31] = tuple(range(p + a.output_slots, p + a.output_slots + a.input_slots))
    else:
        r[31] = inp
        r[32] = tuple(range(p + a.input_slots, p + a.input_slots + a.output_slots))
    return r


def standalone_program(spec: ConvSpec, allocation: Optional[Allocation] = None, reserved: int = 0) -> dict:
    """{slot: value} of the program the vendor writes for ``spec`` on its own.

    ``allocation`` (default ``default_allocation(spec)``) gives the allocator's choices (slots 10-13,
    22, 23, 25-28); the other slots follow from it and the configuration (module doc). Vectors are
    tuples, slot 40 / 41 a tuple of dicts keyed by the chunk table's field names (``sgs_dialect.SLOT_NAMES``:
    ``byte_offset``, ``byte_count``, ``blocks_32_bytes``, ``empty``, ``last_input_tile``, and
    the conv's ``accumulate`` / the depthwise's unnamed slot 5). For the op the vendor writes see
    ``spec.op_kind`` (its options table holds these slots). ``reserved``: the buffer slots a fused op run
    inside the conv takes (Conv2DOptions slot 29, DepthwiseConv2DOptions slot 30: 0 is absent in the file;
    slot 34 / 35 holds the rest of the 32; the default allocation keeps within that rest)."""
    a = allocation or default_allocation(spec, SLOTS - reserved)
    ow, oh, k, s = spec.out_width, spec.out_height, spec.kernel, spec.stride
    in_w = in_tile_size(spec.width, ow, a.out_tile_width, k, s)
    in_h = in_tile_size(spec.height, oh, a.out_tile_height, k, s)
    if spec.op_kind == DEPTHWISE:
        entries = a.output_slots // 6
        taken = {v for e in range(entries) for v in range(8 * e, 8 * e + 6)} | {6, 7}
        free = [v for v in range(SLOTS) if v not in taken]
        ob = _bytes(spec.out_dtype)
        return {11: _z(a.in_tile), 12: _z(a.out_tile), 13: _z(a.in_tile), 14: _z(a.out_tile),
                15: 2, 16: 2, 17: 1, 18: 0, 19: in_w, 20: in_h, 21: 1, 22: 1,
                23: a.out_tile_width, 24: a.out_tile_height, 25: 0, 26: 2, 27: a.output_slots, 28: a.region_28,
                30: reserved, 31: (6,), 32: tuple(range(0, 8 * entries, 8)), 33: tuple(free[:a.region_28][::ob]),
                34: (), 35: (SLOTS - reserved,), 39: depthwise_mac_count(spec), 41: weight_chunks(spec, a),
                42: (0,) * 16}
    prog = {10: _z(a.in_tile), 11: _z(a.in_pass), 12: _z(a.out_tile), 13: _z(a.out_pass),
            14: 4 if spec.graph_input else 0, 15: 2,
            16: 1 if (a.out_tile_width, a.out_tile_height) == (ow, oh) else 3, 17: 0,
            18: in_w, 19: in_h, 20: 1, 21: 1, 22: a.out_tile_width, 23: a.out_tile_height, 24: 0,
            25: a.weight_slots, 26: a.input_slots, 27: a.output_slots, 28: a.region_28, 29: reserved,
            34: (SLOTS - reserved,), 38: 2 if spec.depthwise_as_conv else 0, 39: mac_count(spec),
            40: weight_chunks(spec, a), 41: (0,) * 16}
    prog.update(_regions(spec, a))
    if spec.depthwise_as_conv and (a.in_pass < spec.in_channels or a.out_pass < spec.out_channels):
        # a rewrite run in channel passes (hand_landmark_lite's six 5 x 5 ones, made on their own): slot 20 is
        # 3 on the whole plane; on row tiles (one seen) 15, 16, 20 are 1, 1, 2
        if prog[16] == 1:
            prog[20] = 3
        else:
            prog[15], prog[16], prog[20] = 1, 1, 2
    return prog
