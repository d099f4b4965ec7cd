"""The vendor's compact weight buffer of a depthwise conv it runs as a CONV_2D (fixed.sim).

The vendor's converter turns some DEPTHWISE_CONV_2D (1x1, 2x2 and 5x5 kernels; 3x3 of 3 channels) into
a CONV_2D of shape [C, KH, KW, C] whose weights are zero off the diagonal, and marks it
``sgs_depthwise_mode == 2`` (Conv2DOptions slot 38). Its int8 buffer then holds only the diagonal
blocks: per 16-channel group g (n = min(16, C - 16 g) channels), per (kh, kw), the [o][i] codes of
output and input channels of g, each such block padded to a multiple of 32 bytes (as every block of
the ordinary conv layout). With C <= 16 that is the whole tensor in the ordinary conv layout.
An INT16 buffer (the conv reads an INT16 input) holds the same diagonal 16-channel tiles, each in the
INT16 conv layout of one tile: per 8-channel output group, per 8-channel input run of the tile, per
(kh, kw), the [o][i] codes padded to 32 bytes (off-diagonal 8 x 8 blocks of a tile are stored, zero).
Established by locating round(w / scale) of the vendor's float.sim weights in the buffer
(docs/model_format.md, "Depthwise convs run as CONV_2D").
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError


def _ceil32(n: int) -> int:
    return -(-n // 32) * 32


def _blocks(channels: int, kernel_h: int, kernel_w: int, item: int):
    """(o0, o_count, kh, kw, i0, i_count) of each stored block, in buffer order (``item`` bytes per code)."""
    for t0 in range(0, channels, 16):
        n = min(16, channels - t0)
        if item == 1:
            for a in range(kernel_h):
                for b in range(kernel_w):
                    yield t0, n, a, b, t0, n
            continue
        for g0 in range(t0, t0 + n, 8):
            for r0 in range(t0, t0 + n, 8):
                for a in range(kernel_h):
                    for b in range(kernel_w):
                        yield g0, min(8, t0 + n - g0), a, b, r0, min(8, t0 + n - r0)


def _item(dtype) -> int:
    item = np.dtype(dtype).itemsize
    if item not in (1, 2):
        raise ModelError(f"diagonal-block conv weights are int8 or INT16, not {np.dtype(dtype)}")
    return item


def diagonal_block_bytes(channels: int, kernel_h: int, kernel_w: int, dtype=np.int8) -> int:
    """Bytes of the diagonal-block buffer (int8 or INT16 codes) of a [channels, kernel_h, kernel_w, channels] conv."""
    item = _item(dtype)
    return sum(_ceil32(go * gi * item) for _, go, _, _, _, gi in _blocks(channels, kernel_h, kernel_w, item))


def unpack_diagonal_blocks(raw: bytes | np.ndarray, shape_ohwi, dtype=np.int8) -> np.ndarray:
    """The dense OHWI codes (int8 or INT16 ``dtype``; zero off the diagonal blocks) of a diagonal-block buffer."""
    o, kh, kw, i = (int(d) for d in shape_ohwi)
    if o != i:
        raise ModelError(f"a diagonal-block conv weight has as many inputs as outputs, not shape {list(shape_ohwi)}")
    item = _item(dtype)
    data = bytes(raw) if not isinstance(raw, np.ndarray) else raw.tobytes()
    need = diagonal_block_bytes(o, kh, kw, dtype)
    if len(data) < need:
        raise ModelError(f"diagonal-block conv weight buffer of {len(data)} bytes is too short for shape "
                         f"{list(shape_ohwi)} (needs {need})")
    flat = np.frombuffer(data[:need], dtype=np.dtype(dtype).newbyteorder("<"))
    out = np.zeros((o, kh, kw, i), dtype=np.dtype(dtype))
    pos = 0
    for g0, go, a, b, r0, gi in _blocks(o, kh, kw, item):
        out[g0:g0 + go, a, b, r0:r0 + gi] = flat[pos:pos + go * gi].reshape(go, gi)
        pos += _ceil32(go * gi * item) // item
    return out


def pack_diagonal_blocks(codes_ohwi: np.ndarray, dtype=np.int8) -> bytes:
    """The diagonal-block buffer (int8 or INT16 ``dtype``) of dense [C, KH, KW, C] codes
    (:func:`unpack_diagonal_blocks` reads it back; the codes off the diagonal tiles are not stored)."""
    o, kh, kw, i = codes_ohwi.shape
    if o != i:
        raise ModelError(f"a diagonal-block conv weight has as many inputs as outputs, not shape {list(codes_ohwi.shape)}")
    item = _item(dtype)
    out = bytearray()
    for g0, go, a, b, r0, gi in _blocks(o, kh, kw, item):
        block = np.asarray(codes_ohwi[g0:g0 + go, a, b, r0:r0 + gi], np.int64).astype(
            np.dtype(dtype).newbyteorder("<")).tobytes()
        out += block + bytes(_ceil32(len(block)) - len(block))
    return bytes(out)
