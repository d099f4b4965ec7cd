"""Where the vendor's fixed.sim buffers and tensor dumps put each value (established byte layouts).

- CONV_2D weights (int8, TFLite OHWI): output channels in groups of 16; for each group and each
  (kh, kw): the group's [o][i] codes, input channels in runs of 16; each (group, kh, kw) block
  padded to a multiple of 32 bytes.
- the [2, C] INT16 bias: row 0 (bias codes) and row 1 (per-channel requantization multipliers),
  each row padded to a multiple of 8 values.
- activations in the dump: channels in blocks of 16 bytes (16 UINT8 or 8 INT16 channels):
  [ceil(C / block)][N*H*W][block], padding channels trailing.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError


def _ceil(a: int, b: int) -> int:
    return -(-a // b) * b


def unpack_conv_weights(raw: bytes, shape_ohwi, dtype=np.int8) -> np.ndarray:
    """OHWI codes from a vendor CONV_2D weight buffer (16-channel output groups, 32-byte blocks)."""
    o, kh, kw, i = (int(d) for d in shape_ohwi)
    flat = np.frombuffer(raw, dtype=dtype)
    item = np.dtype(dtype).itemsize
    out = np.zeros((o, kh, kw, i), dtype=dtype)
    pos = 0
    for g0 in range(0, o, 16):
        go = min(16, o - g0)
        for a in range(kh):
            for b in range(kw):
                for i0 in range(0, i, 16):
                    gi = min(16, i - i0)
                    if pos + go * gi > flat.size:
                        raise ModelError(f"conv weight buffer of {flat.size} values is too short for shape "
                                         f"{tuple(shape_ohwi)}")
                    out[g0:g0 + go, a, b, i0:i0 + gi] = flat[pos:pos + go * gi].reshape(go, gi)
                    pos += go * gi
                pos = _ceil(pos * item, 32) // item
    return out


def unpack_bias(raw: bytes, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(row 0 = bias codes, row 1 = per-channel multipliers) of a vendor [2, C] INT16 bias buffer."""
    flat = np.frombuffer(raw, dtype="<i2")
    stride = _ceil(int(channels), 8)
    if flat.size < stride + channels:
        raise ModelError(f"bias buffer of {flat.size} values is too short for {channels} channels")
    return flat[:channels].astype(np.int64), flat[stride:stride + channels].astype(np.int64)


def from_dump(data: np.ndarray, shape) -> np.ndarray:
    """An activation of ``shape`` (NHWC) from the vendor dump's 16-byte channel-block layout."""
    shape = tuple(int(d) for d in shape)
    c = shape[-1]
    n = int(np.prod(shape[:-1]))
    block = 16 // data.dtype.itemsize
    nb = -(-c // block)
    if data.size < nb * n * block:
        raise ModelError(f"dump of {data.size} values is too short for shape {shape}")
    return data[:nb * n * block].reshape(nb, n, block).transpose(1, 0, 2).reshape(n, nb * block)[:, :c].reshape(shape)
