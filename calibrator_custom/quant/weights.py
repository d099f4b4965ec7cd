"""Conv weight and bias quantization: symmetric, per output channel, with an optional clipping search.

* ``per_tensor`` (L1): one scale ``max|w| / qmax`` for all channels (stored per channel).
* ``per_channel`` (L2, L3): ``scale[c] = clip[c] / qmax`` with ``clip[c]`` the fraction of
  ``max|w[c]|`` (from a grid of 0.50..1.00) that minimises ``sum (w - dequant(quant(w)))**2``
  over the channel's weights.
* ``fitted`` (L4, L5): as per_channel but on a 4x finer grid, and the squared error of each input
  channel weighted by the energy of that input channel of the data (``max|x_c|**2``), so weights
  that meet large activations are kept more precise.

Both searches skip the fractions a lower bound of their error (the largest magnitudes' clipping)
rules out; the choice is the one computing every fraction gives (``_clip_bound``).
Their passes skip zero weights (a depthwise conv written as a full conv is mostly zeros): the
sums are the same.

Biases: ``round(b / (data_scale * weight_scale[c]))`` in INT32 (8-bit) or INT64 (16-bit),
round half away from zero; a bias that does not fit saturates with a warning.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..rounding import channel_codes, round_half_away

log = logging.getLogger(__name__)

QMAX = {8: 127, 16: 32767}
GRID = np.linspace(0.5, 1.0, 26)
FINE_GRID = np.linspace(0.5, 1.0, 101)


@dataclass(frozen=True)
class QuantizedWeights:
    """INT8/INT16 weights, their per-channel scales (along ``axis``) and the per-channel clip used."""

    q: np.ndarray
    scale: np.ndarray  # float64 per channel
    axis: int
    clip: np.ndarray  # float64 per channel (real magnitude mapped to qmax)


def _channels_last(w: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(np.asarray(w, np.float64), axis, -1).reshape(-1, w.shape[axis])



def dead_channel_clip(clip: np.ndarray) -> float:
    """The clip of an all-zero channel: the largest clip of the tensor (1.0 when all are zero).

    Any scale represents zero weights; a tiny one would blow the channel's bias (at
    ``data_scale * weight_scale``) beyond its integer type.
    """
    top = float(np.max(clip)) if np.size(clip) else 0.0
    return top if top > 0 else 1.0


def quantize_with_scale(w: np.ndarray, axis: int, scale: np.ndarray, bits: int) -> np.ndarray:
    """``clip(round_half_away(w / scale[c]), -qmax, qmax)`` per channel ``c`` along ``axis``, as INT8/INT16."""
    q = channel_codes(w, axis, scale, QMAX[bits])
    return np.ascontiguousarray(q).astype(np.int8 if bits == 8 else np.int16)


def quantize_weights(w: np.ndarray, axis: int, bits: int, method: str = "per_channel",
                     in_channel_energy: np.ndarray | None = None, in_axis: int | None = None) -> QuantizedWeights:
    """Quantize ``w`` symmetrically per channel along ``axis`` (see the module docstring for ``method``)."""
    clip = search_clip(w, axis, bits, method, in_channel_energy, in_axis)
    scale = clip / QMAX[bits]
    return QuantizedWeights(quantize_with_scale(w, axis, scale, bits), scale, axis, clip)


def search_clip(w: np.ndarray, axis: int, bits: int, method: str = "per_channel",
                in_channel_energy: np.ndarray | None = None, in_axis: int | None = None) -> np.ndarray:
    """The real magnitude each channel along ``axis`` maps to qmax, chosen by ``method`` (float64 per channel)."""
    qmax = QMAX[bits]
    w = np.asarray(w, np.float64)
    w2 = _channels_last(w, axis)  # [elements, channels]
    absmax = np.max(np.abs(w2), axis=0) if w2.size else np.zeros(w.shape[axis])
    absmax = np.where(absmax > 0, absmax, dead_channel_clip(absmax))
    if method == "per_tensor":
        clip = np.full_like(absmax, absmax.max())
    elif method in ("per_channel", "fitted"):
        grid = GRID if method == "per_channel" else FINE_GRID
        weight = None
        if method == "fitted" and in_channel_energy is not None and in_axis is not None:
            e = np.asarray(in_channel_energy, np.float64)
            shape = [1] * w.ndim
            shape[in_axis] = e.size
            if w.shape[in_axis] == e.size:
                weight = _channels_last(np.broadcast_to(e.reshape(shape), w.shape), axis)
        # on magnitudes: |w - dequant(quant(w))| == | |w| - round_half_away(|w| / s) * s |, the same
        # error as on signed values with fewer passes (in place, one work buffer)
        mag = np.abs(w2)
        err_at = _ErrorAt(mag, weight, qmax)
        # a channel's error at a fraction is at least its largest magnitudes' clipping error there; where
        # that exceeds twice its error at 1.0 the fraction cannot win, and it is not computed (exact:
        # the choice is the same as computing every fraction, see _clip_bound)
        last = err_at(absmax * grid[-1], None)
        live_at = _clip_bound(*err_at.rows(), absmax, grid[:-1]) <= 2 * last[None, :]
        best_err = np.full(absmax.shape, np.inf)
        clip = absmax.copy()
        for k, f in enumerate(grid):
            c = absmax * f
            if k == len(grid) - 1:
                err = last
            else:
                live = live_at[k]
                if not live.any():
                    continue
                err = err_at(c, None if live.all() else np.flatnonzero(live))
            better = err < best_err * (1 - 1e-12)
            best_err = np.where(better, err, best_err)
            clip = np.where(better, c, clip)
    else:
        raise ValueError(f"unknown weight method {method!r}")
    return clip


class _ErrorAt:
    """``err_at(c, cols)``: per channel, ``sum weight * (mag - min(floor(mag / s + 0.5), qmax) * s)**2`` with
    ``s = c / qmax`` (``cols``: only those channels, the others +inf)."""

    def __init__(self, mag: np.ndarray, weight: np.ndarray | None, qmax: int) -> None:
        self.mag, self.weight, self.qmax = mag, weight, qmax
        self.packed = _nonzero_first(mag, weight)
        self._work: dict[bool, np.ndarray] = {}

    def rows(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(magnitudes, weights): the packed rows when there are (they hold every channel's largest magnitudes)."""
        return self.packed or (self.mag, self.weight)

    def __call__(self, c: np.ndarray, cols: np.ndarray | None) -> np.ndarray:
        # a zero magnitude's error is +0.0 at every scale, and a sum over axis 0 of two or more columns adds
        # the rows in order, so the packed rows give the same sums (one column is summed pairwise: all rows)
        packed = self.packed is not None and (cols is None or cols.size >= 2)
        mag, weight = self.packed if packed else (self.mag, self.weight)
        if cols is not None:
            mag = mag[:, cols]
            weight = None if weight is None else weight[:, cols]
            work = np.empty_like(mag)
            c = c[cols]
        else:
            work = self._work.get(packed)
            if work is None:
                work = self._work[packed] = np.empty_like(mag)
        s = c / self.qmax
        np.divide(mag, s, out=work)
        work += 0.5
        np.floor(work, out=work)
        np.minimum(work, self.qmax, out=work)
        work *= s
        np.subtract(mag, work, out=work)
        np.square(work, out=work)
        if weight is not None:
            work *= weight
        err = work.sum(axis=0)
        if cols is None:
            return err
        out = np.full(self.mag.shape[1], np.inf)
        out[cols] = err
        return out


def _nonzero_first(mag: np.ndarray, weight: np.ndarray | None):
    """(magnitudes, weights) with each channel's nonzero magnitudes moved up, in their order, above
    zeros, cut to the most nonzeros a channel has; None when that would not save most of the rows (a
    depthwise conv written as a full conv holds one nonzero input channel per output channel)."""
    n, channels = mag.shape
    if channels < 2 or (weight is not None and not np.isfinite(weight).all()):
        return None
    nonzero = mag != 0
    counts = nonzero.sum(axis=0)
    rows = max(int(counts.max(initial=0)), 1)
    if rows > n // 2:
        return None
    ch, row = np.nonzero(nonzero.T)  # by channel, then row
    rank = np.arange(ch.size) - np.repeat(np.cumsum(counts) - counts, counts)
    packed = np.zeros((rows, channels))
    packed[rank, ch] = mag[row, ch]
    packed_weight = None
    if weight is not None:
        packed_weight = np.zeros((rows, channels))
        packed_weight[rank, ch] = weight[row, ch]
    return packed, packed_weight


#: the largest magnitudes per channel whose clipping error bounds a fraction's error from below
BOUND_ELEMENTS = 8


def _clip_bound(mag: np.ndarray, weight: np.ndarray | None, absmax: np.ndarray, fractions) -> np.ndarray:
    """``[fraction, channel]``: a lower bound of the clip search's error at clip ``absmax * fraction``:
    each of the channel's ``BOUND_ELEMENTS`` largest magnitudes above the clip rounds to ``qmax`` and
    costs at least ``weight * (mag - clip)**2``.

    Skipping a fraction whose bound exceeds twice the channel's error at 1.0 (the last fraction, never
    skipped) leaves the choice as it was. The error the search ends on is at most the one at 1.0 (times
    ``1 + 1e-12``), so a skipped fraction is never chosen; and the first fraction whose error is below
    some level between 1.2x and 1.8x the one at 1.0 that no fraction's error comes within 1e-12 of (it
    exists: there are few fractions) improves on every fraction before it, skipped or not, so from
    there on both searches keep the same best error and make the same choices.
    """
    n = mag.shape[0]
    fractions = np.asarray(fractions, np.float64)
    k = min(BOUND_ELEMENTS, n)
    if k == 0 or fractions.size == 0:
        return np.zeros((fractions.size, mag.shape[1]))
    top = np.argpartition(mag, n - k, axis=0)[n - k:]
    cols = np.arange(mag.shape[1])[None, :]
    top_mag = mag[top, cols]  # [k, channels]
    over = np.maximum(top_mag[None, :, :] - (absmax[None, :] * fractions[:, None])[:, None, :], 0.0)
    over *= over
    if weight is not None:
        over *= weight[top, cols][None, :, :]
    return over.sum(axis=1) * (1 - 1e-9)


def quantize_bias(b: np.ndarray, data_scale: float, weight_scale: np.ndarray, bits: int, name: str) -> np.ndarray:
    """INT32 (8-bit convs) or INT64 (16-bit) bias at scale ``data_scale * weight_scale[c]``."""
    scale = float(data_scale) * np.asarray(weight_scale, np.float64)
    q = round_half_away(np.asarray(b, np.float64) / scale)
    dtype = np.int32 if bits == 8 else np.int64
    info = np.iinfo(dtype)
    # the largest floats that convert exactly into the type (float(2**63 - 1) would overflow int64)
    hi = float(info.max) if bits == 8 else float(np.nextafter(2.0**63, 0))
    lo = float(info.min)
    if np.any(q > hi) or np.any(q < lo):
        log.warning("bias %r does not fit %s at scale data*weight; saturated", name, np.dtype(dtype).name)
    return np.clip(q, lo, hi).astype(dtype)
