"""The vendor's compact weight buffer of a depthwise conv it runs as a CONV_2D (fixed.sim).

The vendor's converter turns some DEPTHWISE_CONV_2D (1x1, 2x2 and 5x5 kernels; 3x3 of 3 channels) into
a CONV_2D of shape [C, KH, KW, C] whose weights are zero off the diagonal, and marks it
``sgs_depthwise_mode == 2`` (Conv2DOptions slot 38). Its int8 buffer then holds only the diagonal
blocks: per 16-channel group g (n = min(16, C - 16 g) channels), per (kh, kw), the [o][i] codes of
output and input channels of g, each such block padded to a multiple of 32 bytes (as every block of
the ordinary conv layout). With C <= 16 that is the whole tensor in the ordinary conv layout.
Established by locating round(w / scale) of the vendor's float.sim weights in the buffer
(docs/model_format.md, "Depthwise convs run as CONV_2D").
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError


def _ceil32(n: int) -> int:
    return -(-n // 32) * 32


def diagonal_block_bytes(channels: int, kernel_h: int, kernel_w: int) -> int:
    """Bytes of the diagonal-block int8 buffer of a [channels, kernel_h, kernel_w, channels] conv."""
    return sum(kernel_h * kernel_w * _ceil32(min(16, channels - g0) ** 2) for g0 in range(0, channels, 16))


def unpack_diagonal_blocks(raw: bytes | np.ndarray, shape_ohwi) -> np.ndarray:
    """The dense OHWI int8 codes (zero off the diagonal blocks) of a diagonal-block buffer."""
    o, kh, kw, i = (int(d) for d in shape_ohwi)
    if o != i:
        raise ModelError(f"a diagonal-block conv weight has as many inputs as outputs, not shape {list(shape_ohwi)}")
    flat = np.frombuffer(bytes(raw), dtype=np.int8) if not isinstance(raw, np.ndarray) else raw.view(np.int8).ravel()
    need = diagonal_block_bytes(o, kh, kw)
    if flat.size < need:
        raise ModelError(f"diagonal-block conv weight buffer of {flat.size} bytes is too short for shape "
                         f"{list(shape_ohwi)} (needs {need})")
    out = np.zeros((o, kh, kw, i), dtype=np.int8)
    pos = 0
    for g0 in range(0, o, 16):
        n = min(16, o - g0)
        for a in range(kh):
            for b in range(kw):
                out[g0:g0 + n, a, b, g0:g0 + n] = flat[pos:pos + n * n].reshape(n, n)
                pos += _ceil32(n * n)
    return out


def pack_diagonal_blocks(codes_ohwi: np.ndarray) -> bytes:
    """The diagonal-block int8 buffer of dense [C, KH, KW, C] codes (:func:`unpack_diagonal_blocks` reads
    it back; the codes off the diagonal blocks are not stored)."""
    o, kh, kw, i = codes_ohwi.shape
    if o != i:
        raise ModelError(f"a diagonal-block conv weight has as many inputs as outputs, not shape {list(codes_ohwi.shape)}")
    out = bytearray()
    for g0 in range(0, o, 16):
        n = min(16, o - g0)
        for a in range(kh):
            for b in range(kw):
                block = np.asarray(codes_ohwi[g0:g0 + n, a, b, g0:g0 + n], np.int64).astype(np.int8).tobytes()
                out += block + bytes(_ceil32(len(block)) - len(block))
    return bytes(out)
