"""Where the vendor's fixed.sim buffers and tensor dumps put each value (established byte layouts).

- CONV_2D weights (int8, TFLite OHWI): output tiles of To channels, in each input tiles of Ti
  channels (not stored: a conv on its own has To = min(64, O), Ti = the largest power of two below I;
  some convs of the shared models keep all of I: ``conv_tilings``); per tile, output channels in
  groups of 16; per group, input channels in blocks of 16; per block and (kh, kw): the [o][i] codes,
  padded to a multiple of 32 bytes.
- CONV_2D INT16 weights (convs reading INT16 inputs): the program's passes and tiles as for int8
  (stated in its slots); per tile, output channels in groups of 8; per group, the tile's input
  channels in runs of 8; per run, for each (kh, kw), the [o][i] codes padded to a multiple of 32
  bytes (a conv of the vendor's L1 files with one output tile and input tiles of 16 is the old reading).
- DEPTHWISE_CONV_2D weights (TFLite [1, KH, KW, C]): channels in groups of 16 bytes (16 int8 channels,
  8 INT16 ones); each group's [kh][kw][c] codes, the group padded to a multiple of 32 bytes.
- the [2, C] INT16 bias: row 0 (bias codes) and row 1 (per-channel requantization multipliers),
  each row padded to a multiple of 8 values.
- activations in the dump: channel-blocked [ceil(C / b)][N*H*W][b] with b = 16 bytes of channels
  (UINT8 outputs of convs; the INT16 output of a conv fused with LOGISTIC), or row-major
  [N*H*W][C padded to 16 bytes] (INT16 graph outputs, INT16 CONCATENATION outputs); trailing
  extra values (alignment) follow. For C <= 16 bytes of channels both coincide.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..errors import ModelError


def _ceil(a: int, b: int) -> int:
    return -(-a // b) * b


def int8_conv_blocks(shape_ohwi, input_tile: int, output_tile: int, in_pass: int | None = None,
                     out_pass: int | None = None) -> Iterator[tuple[int, int, int, int, int, int]]:
    """(o0, o_count, kh, kw, i0, i_count) of each [o][i] block of an int8 conv weight buffer, in file order
    (output passes, input passes, output tiles of the pass, input tiles of the pass, 16-channel output
    groups, 16-channel input blocks, (kh, kw): the order of the program's weight DMA chunks; passes
    default to all channels); each block is padded to a multiple of 32 bytes."""
    o, kh, kw, i = shape_ohwi
    op_, ip_ = int(out_pass or o), int(in_pass or i)
    for q0 in range(0, o, op_):
        for p0 in range(0, i, ip_):
            for o0 in range(q0, min(o, q0 + op_), output_tile):
                o1 = min(o, o0 + output_tile, q0 + op_)
                for t0 in range(p0, min(i, p0 + ip_), input_tile):
                    t1 = min(i, t0 + input_tile, p0 + ip_)
                    for g0 in range(o0, o1, 16):
                        for i0 in range(t0, t1, 16):
                            for a in range(kh):
                                for b in range(kw):
                                    yield g0, min(16, o1 - g0), a, b, i0, min(16, t1 - i0)


def unpack_conv_weights(raw: bytes, shape_ohwi, dtype=np.int8, input_tile: int | None = None,
                        output_tile: int | None = None, in_pass: int | None = None,
                        out_pass: int | None = None) -> np.ndarray:
    """OHWI codes from a vendor CONV_2D weight buffer (int8: output tiles of ``output_tile`` and input
    tiles of ``input_tile`` channels (default: all), 16-channel output groups, 32-byte blocks; int16:
    see module doc)."""
    o, kh, kw, i = (int(d) for d in shape_ohwi)
    if np.dtype(dtype).itemsize == 2:
        return _unpack_conv_weights_int16(raw, (o, kh, kw, i), dtype, input_tile, output_tile, in_pass, out_pass)
    flat = np.frombuffer(raw, dtype=dtype)
    item = np.dtype(dtype).itemsize
    out = np.zeros((o, kh, kw, i), dtype=dtype)
    ti = i if input_tile is None else int(input_tile)
    to = o if output_tile is None else int(output_tile)
    pos = 0
    for g0, go, a, b, i0, gi in int8_conv_blocks((o, kh, kw, i), ti, to, in_pass, out_pass):
        if pos + go * gi > flat.size:
            raise ModelError(f"conv weight buffer of {flat.size} values is too short for "
                             f"shape {tuple(shape_ohwi)}")
        out[g0:g0 + go, a, b, i0:i0 + gi] = flat[pos:pos + go * gi].reshape(go, gi)
        pos = _ceil((pos + go * gi) * item, 32) // item
    return out


def conv_tilings(shape_ohwi) -> list[tuple[int, int]]:
    """Candidate (output_tile, input_tile) of an int8 CONV_2D buffer, the likeliest first.

    The tiles are not stored (docs/vendor_fixed_point.md). A conv on its own (single-op models, 1x1
    and k x k, with or without an input zero point) has output tiles min(64, O rounded up to 16) and
    input tiles the largest power of two below I (at least 16, at most I rounded up to 16); in the
    shared models some convs (fused with a residual ADD) keep all of I in one tile instead.
    """
    o, kh, kw, i = (int(d) for d in shape_ohwi)
    o16 = _ceil(o, 16)
    pow2 = 16
    while pow2 * 2 < i:
        pow2 *= 2
    first = [(min(64, o16), min(pow2, _ceil(i, 16))), (o16, _ceil(i, 16))]
    if kh * kw > 1:
        first.append((min(64, o16), min(64, _ceil(i, 16))))
    rest = [(a, b) for a in range(16, o16 + 1, 16) for b in range(16, _ceil(i, 16) + 1, 16)]
    return list(dict.fromkeys(first)) + [c for c in rest if c not in first]


def int16_conv_blocks(shape_ohwi, input_tile: int | None = None, output_tile: int | None = None,
                      in_pass: int | None = None, out_pass: int | None = None
                      ) -> Iterator[tuple[int, int, int, int, int, int]]:
    """(o0, o_count, kh, kw, i0, i_count) of each block of an INT16 conv weight buffer, in file order: the
    program's passes and tiles as for int8 weights (:func:`int8_conv_blocks`; default: input tiles of 16,
    one output tile), per tile 8-channel output groups, per group the tile's input channels in runs of 8,
    per run (kh, kw); each block padded to a multiple of 32 bytes."""
    o, kh, kw, i = (int(d) for d in shape_ohwi)
    ti = 16 if input_tile is None else int(input_tile)
    to = o if output_tile is None else int(output_tile)
    op_, ip_ = int(out_pass or o), int(in_pass or i)
    for q0 in range(0, o, op_):
        for p0 in range(0, i, ip_):
            for o0 in range(q0, min(o, q0 + op_), to):
                o1 = min(o, o0 + to, q0 + op_)
                for t0 in range(p0, min(i, p0 + ip_), ti):
                    t1 = min(i, t0 + ti, p0 + ip_)
                    for g0 in range(o0, o1, 8):
                        for r0 in range(t0, t1, 8):
                            for a in range(kh):
                                for b in range(kw):
                                    yield g0, min(8, o1 - g0), a, b, r0, min(8, t1 - r0)


def _unpack_conv_weights_int16(raw: bytes, shape_ohwi, dtype, *tiling) -> np.ndarray:
    o, kh, kw, i = shape_ohwi
    flat = np.frombuffer(raw, dtype=dtype)
    out = np.zeros((o, kh, kw, i), dtype=dtype)
    pos = 0
    for g0, go, a, b, r0, gi in int16_conv_blocks(shape_ohwi, *tiling):
        if pos + go * gi > flat.size:
            raise ModelError(f"conv weight buffer of {flat.size} values is too short for shape {tuple(shape_ohwi)}")
        out[g0:g0 + go, a, b, r0:r0 + gi] = flat[pos:pos + go * gi].reshape(go, gi)
        pos = _ceil((pos + go * gi) * 2, 32) // 2
    return out


def depthwise_group(dtype) -> int:
    """Channels per group of a DEPTHWISE_CONV_2D weight buffer: 16 bytes of codes (16 int8, 8 INT16)."""
    return 16 // np.dtype(dtype).itemsize


def unpack_depthwise_weights(raw: bytes, shape_1hwc, dtype=np.int8) -> np.ndarray:
    """[1, KH, KW, C] codes from a vendor DEPTHWISE_CONV_2D weight buffer (groups of 16 bytes of channels,
    each 32-byte padded)."""
    _, kh, kw, c = (int(d) for d in shape_1hwc)
    flat = np.frombuffer(raw, dtype=dtype)
    item = np.dtype(dtype).itemsize
    out = np.zeros((1, kh, kw, c), dtype=dtype)
    pos = 0
    group = depthwise_group(dtype)
    for g0 in range(0, c, group):
        gc = min(group, c - g0)
        if pos + kh * kw * gc > flat.size:
            raise ModelError(f"depthwise weight buffer of {flat.size} values is too short for shape "
                             f"{tuple(shape_1hwc)}")
        out[0, :, :, g0:g0 + gc] = flat[pos:pos + kh * kw * gc].reshape(kh, kw, gc)
        pos = _ceil((pos + kh * kw * gc) * item, 32) // item
    return out


def unpack_bias(raw: bytes, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(row 0 = bias codes, row 1 = per-channel multipliers) of a vendor [2, C] INT16 bias buffer."""
    flat = np.frombuffer(raw, dtype="<i2")
    stride = _ceil(int(channels), 8)
    if flat.size < stride + channels:
        raise ModelError(f"bias buffer of {flat.size} values is too short for {channels} channels")
    return flat[:channels].astype(np.int64), flat[stride:stride + channels].astype(np.int64)


def from_dump(data: np.ndarray, shape, blocked: bool | None = None) -> np.ndarray:
    """An activation of ``shape`` (NHWC) from a vendor dump: channel-blocked [ceil(C/b)][N*H*W][b] with
    b = 16 bytes of channels, or row-major [N*H*W][C padded to 16 bytes] (default: blocked for UINT8,
    row-major for INT16; see the module doc for which tensors use which)."""
    shape = tuple(int(d) for d in shape)
    c = shape[-1]
    n = int(np.prod(shape[:-1]))
    per_block = 16 // data.dtype.itemsize
    if blocked is None:
        blocked = data.dtype.itemsize == 1
    if blocked:
        nb = -(-c // per_block)
        if data.size < nb * n * per_block:
            raise ModelError(f"dump of {data.size} values is too short for shape {shape}")
        rows = data[:nb * n * per_block].reshape(nb, n, per_block).transpose(1, 0, 2).reshape(n, nb * per_block)
    else:
        width = _ceil(c, per_block)
        if data.size < n * width:
            raise ModelError(f"dump of {data.size} values is too short for shape {shape}")
        rows = data[:n * width].reshape(n, width)
    return rows[:, :c].reshape(shape)
