"""The prepared fast path of the vendor fixed convolutions: the codes of :func:`.conv.conv2d` and
:func:`.conv.depthwise_conv2d` bit for bit, with everything input-independent computed once.

:func:`prepare` takes one conv of a vendor fixed model (input shape and dtype from the model) and
returns a :class:`ConvPlan`, or None when the bounds below cannot be proven (then the engine runs
the int64 reference kernels of :mod:`.conv`). The plan holds the weights scaled by ``2**-k`` in the
layout of one BLAS product (1x1), of the float interpreter's im2col rows (k x k) or of its fused-tap
depthwise kernel, and the requantization as int32 rows tiled along the output width.

Why it is exact (checked in :func:`prepare`, per output channel c):

1. The accumulator in float32. The input codes and the padding value (the input zero point) lie in
   the input dtype's range [x_lo, x_hi], so every partial sum, in any order, is an integer of
   magnitude at most ``B_c = max(|x_lo|, |x_hi|) * sum|w_c|``. With ``B_c + 2**(k-1) < 2**24`` every
   float32 partial sum is exact (24-bit significand) and scaling the weights by ``2**-k`` only moves
   exponents: the product gives ``acc / 2**k`` exactly, whatever BLAS's blocking or thread count.
2. Round half away from zero of y = acc / 2**k: ``R = trunc(2y) - trunc(y)`` (with y = n + f,
   n = trunc(y): ``trunc(2y) = 2n + trunc(2f)`` and ``trunc(2f)`` is sign(y) exactly when
   |f| >= 1/2). 2y is exact by 1. (a power of two), and the float -> int32 conversion truncates
   toward zero (the C cast numpy uses), done inside the multiply and the copy.
3. ``R`` and ``R + b0`` saturate to 16 bits in the reference. From the acc range [acc_lo_c, acc_hi_c]
   (``x_lo``/``x_hi`` against the signs of w) and the monotone rounding, R lies in
   [R(acc_lo_c), R(acc_hi_c)]; when ``R`` and ``R + b0`` provably stay in [-32767, 32767] the saturation is
   dropped and b0 is folded into the additive row: ``v = R * M + (b0 * M + 2**(rest-1))``
   (``+ zp * 2**rest`` for INT16 outputs, so ``v >> rest`` already holds the zero point); otherwise
   ``v = sat16(sat16(R) + b0) * M + 2**(rest-1) (+ zp * 2**rest)``. Every intermediate is bounded below
   2**31 (checked), so int32 arithmetic is exact; ``q = clip(v >> rest, lo, hi)``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from .. import blas
from ..ops import conv as float_conv  # the float interpreter's kernels, reused
from . import conv
from .fastops import clip
from .rounding import shift_round_half_away

_I32 = 2 ** 31


@dataclass(frozen=True)
class Requant:
    """The requantization of an exact float32 ``acc / 2**k`` as int32 rows of length out_w * C."""
    k: int
    rest: int                       # N - k >= 1
    mult_row: np.ndarray            # int32 [out_w * C]: M tiled
    add_row: np.ndarray             # int32 [out_w * C]
    bias_row: np.ndarray | None     # int32 [out_w * C]: b0 tiled when the 16-bit saturation may act
    lo: int
    hi: int
    out_dtype: np.dtype


def prepare_requant(w_by_channel: np.ndarray, x_range: tuple, bias_row0, multiplier, bias_shift: int,
                    total_shift: int, out_zero_point: int, out_dtype, clamp, out_w: int) -> Requant | None:
    """The Requant of one conv, or None when a bound of the module doc does not hold.

    ``w_by_channel``: the weight codes as [taps, C_out]; ``x_range`` = (x_lo, x_hi) holding the input
    codes and the padding value.
    """
    w = np.asarray(w_by_channel)
    if w.dtype.kind != "i" or w.size == 0 or int(w.min()) == np.iinfo(w.dtype).min:
        w = w.astype(np.int64)  # (|w| must fit the codes' own dtype below)
    # sum max(w, 0) = (sum w + sum |w|) / 2 and sum min(w, 0) = (sum w - sum |w|) / 2, exactly
    w_sum, w_abs = w.sum(0, dtype=np.int64), np.abs(w).sum(0, dtype=np.int64)
    w_pos, w_neg = (w_sum + w_abs) // 2, (w_sum - w_abs) // 2
    x_lo, x_hi = (int(v) for v in x_range)
    k, n = int(bias_shift), int(total_shift)
    rest = n - k
    b0 = np.asarray(bias_row0, np.int64)
    mult = np.asarray(multiplier, np.int64)
    dt = np.dtype(out_dtype)
    if rest < 1 or k < 0 or dt not in conv._LIMITS:
        return None
    bound = max(abs(x_lo), abs(x_hi)) * int(w_abs.max(initial=0)) + (1 << max(k - 1, 0))
    if bound >= 2 ** 24:
        return None
    # min / max of sum_j w_j x_j over x_j in [x_lo, x_hi] (x_lo <= 0 <= x_hi or not): the positive
    # weights' sum at one end plus the negative weights' sum at one end (|sums| < 2**24: exact in int64)
    acc_lo = np.minimum(x_lo * w_pos, x_hi * w_pos) + np.minimum(x_lo * w_neg, x_hi * w_neg)
    acc_hi = np.maximum(x_lo * w_pos, x_hi * w_pos) + np.maximum(x_lo * w_neg, x_hi * w_neg)
    r_lo, r_hi = shift_round_half_away(acc_lo, k), shift_round_half_away(acc_hi, k)
    zp16 = int(out_zero_point) if dt == np.dtype(np.int16) else 0
    const = (1 << (rest - 1)) + zp16 * (1 << rest)
    if max(int(np.abs(b0).max(initial=0)), int(np.abs(mult).max(initial=0)), abs(const)) >= _I32:
        return None  # a term below reaches 2**31 (and the int64 products stay exact below that)
    saturates = bool(np.any(np.minimum(r_lo, r_lo + b0) < conv.ACC16_MIN)
                     or np.any(np.maximum(r_hi, r_hi + b0) > conv.ACC16_MAX))
    # per channel, the largest intermediate magnitude; saturating: R + b0, its clip, * M, + const;
    # folded: R * M, + (b0 * M + const)
    if saturates:
        a_lo, a_hi = np.full_like(b0, conv.ACC16_MIN), np.full_like(b0, conv.ACC16_MAX)
        terms = [np.abs(r_lo) + np.abs(b0), np.abs(r_hi) + np.abs(b0)]
        extra = 0
    else:
        a_lo, a_hi = r_lo + b0, r_hi + b0
        terms = [np.abs(r_lo * mult), np.abs(r_hi * mult)]
        extra = np.abs(b0 * mult)
    terms += [np.abs(a * mult) + abs(const) + extra for a in (a_lo, a_hi)]
    if max(int(t.max(initial=0)) for t in terms) >= _I32:
        return None
    lo, hi = conv._LIMITS[dt]
    if clamp is not None:
        lo, hi = max(lo, int(clamp[0])), min(hi, int(clamp[1]))
    add = np.full(b0.shape, const, np.int64) if saturates else b0 * mult + const
    tile = lambda v: np.ascontiguousarray(np.tile(np.asarray(v, np.int64), out_w).astype(np.int32))  # noqa: E731
    return Requant(k, rest, tile(mult), tile(add), tile(b0) if saturates else None, lo, hi, dt)


def requantize(acc: np.ndarray, rq: Requant, scratch: dict) -> np.ndarray:
    """conv.requantize (+ the clamp) of the exact float32 ``acc / 2**k`` [N, H, W, C] -> codes (a new array)."""
    shape = acc.shape
    a = _buffer(scratch, "a", shape, np.int32)
    if rq.k:
        t = _buffer(scratch, "t", shape, np.int32)
        np.multiply(acc, np.float32(2), out=a, casting="unsafe")   # trunc(2y)
        np.copyto(t, acc, casting="unsafe")                         # trunc(y)
        np.subtract(a, t, out=a)                                    # round half away from zero
    else:
        np.copyto(a, acc, casting="unsafe")
    rows = a.reshape(-1, rq.mult_row.size)
    if rq.bias_row is not None:
        clip(a, conv.ACC16_MIN, conv.ACC16_MAX)
        np.add(rows, rq.bias_row, out=rows)
        clip(a, conv.ACC16_MIN, conv.ACC16_MAX)
    np.multiply(rows, rq.mult_row, out=rows)
    np.add(rows, rq.add_row, out=rows)
    np.right_shift(a, rq.rest, out=a)
    clip(a, rq.lo, rq.hi)
    return a.astype(rq.out_dtype)


_shared = threading.local()


def shared_scratch() -> dict:
    """This thread's transient buffers, shared by every plan (each use overwrites all of a buffer)."""
    d = getattr(_shared, "d", None)
    if d is None:
        d = _shared.d = {}
    return d


def _buffer(scratch: dict, name: str, shape, dtype) -> np.ndarray:
    """scratch's buffer for (name, shape, dtype), made on first use."""
    key = (name, tuple(shape), np.dtype(dtype).str)
    buf = scratch.get(key)
    if buf is None:
        buf = scratch[key] = np.empty(shape, dtype)
    return buf


@dataclass(frozen=True)
class ConvPlan:
    """One vendor fixed conv prepared for inputs of ``x_shape`` / ``x_dtype`` (see the module doc)."""
    kind: str                       # "matmul" (1x1, no padding), "im2col" (k x k) or "depthwise"
    x_shape: tuple
    x_dtype: np.dtype
    pads: tuple                     # (top, bottom, left, right), filled with pad_value
    pad_value: int
    stride: tuple
    out_shape: tuple
    weights: object                 # matmul: [C_in, C_out]; im2col: [kh, kw*C_in, C_out] (float32, * 2**-k);
                                    # depthwise: the float interpreter's DepthwiseParams
    geometry: object                # im2col: the float interpreter's Geometry (no padding: done here)
    requant: Requant
    _local: threading.local = field(default_factory=threading.local, compare=False, repr=False)

    def matches(self, x: np.ndarray) -> bool:
        return x.shape == self.x_shape and x.dtype == self.x_dtype

    def run(self, x: np.ndarray) -> np.ndarray:
        """The conv's output codes for input codes x (of x_shape / x_dtype): a new array."""
        s = shared_scratch()
        n, oh, ow, co = self.out_shape
        if self.kind == "matmul":
            sh, sw = self.stride
            xs = x if sh == sw == 1 else x[:, :(oh - 1) * sh + 1:sh, :(ow - 1) * sw + 1:sw, :]
            xf = _buffer(s, "x", (n * oh * ow, x.shape[-1]), np.float32)
            np.copyto(xf.reshape(xs.shape), xs, casting="unsafe")
            acc = _buffer(s, "acc", (n, oh, ow, co), np.float32)
            blas.matmul(xf, self.weights, out=acc.reshape(-1, co))
        elif self.kind == "im2col":
            acc = _buffer(s, "acc", (n, oh, ow, co), np.float32)
            float_conv._conv_core(self._padded(x), self.weights, self.geometry, acc)
        else:
            acc = float_conv.depthwise_conv_2d(self._padded(x), None, None, opt=self.weights)
        return requantize(acc, self.requant, s)

    def _padded(self, x: np.ndarray) -> np.ndarray:
        """x in this plan's float32 buffer (one per thread) whose border, written once, is the zero point."""
        t, b, l, r = self.pads
        n, h, w, c = x.shape
        xp = getattr(self._local, "xp", None)
        if xp is None:
            xp = self._local.xp = np.full((n, h + t + b, w + l + r, c), self.pad_value, np.float32)
        np.copyto(xp[:, t:t + h, l:l + w, :], x, casting="unsafe")
        return xp


_X_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127), np.dtype(np.int16): (-32768, 32767)}


def prepare(op: str, x_shape, x_dtype, w_code, x_zero_point: int, bias_row0, multiplier, bias_shift: int,
            total_shift: int, out_zero_point: int, out_dtype, stride, dilation, padding: str, pads, clamp
            ) -> ConvPlan | None:
    """A ConvPlan for a CONV_2D / DEPTHWISE_CONV_2D (the arguments of conv.conv2d; ``pads`` explicit
    (top, bottom, left, right) or None for ``padding``), or None when exactness is not proven (module doc)."""
    x_dtype = np.dtype(x_dtype)
    x_range = _X_RANGES.get(x_dtype)
    x_shape = tuple(int(d) for d in x_shape)
    if x_range is None or len(x_shape) != 4 or not x_range[0] <= int(x_zero_point) <= x_range[1]:
        return None
    w = np.asarray(w_code)
    if conv.sixteen_bit_floor_bits(x_dtype, w.dtype, bias_shift):
        return None  # the 16-bit conv's first floor: the int64 reference (its sums exceed float32 anyway)
    n, h, wd, c = x_shape
    _, kh, kw, _ = w.shape
    (sh, sw), (dh, dw) = (int(v) for v in stride), (int(v) for v in dilation)
    if pads is not None:
        pt, pb, pl, pr = (int(v) for v in pads)
        h_pad, w_pad = h + pt + pb, wd + pl + pr
        oh, ow = (h_pad - (kh - 1) * dh - 1) // sh + 1, (w_pad - (kw - 1) * dw - 1) // sw + 1
    else:
        oh, pt, pb = conv._pad_amounts(h, kh, sh, dh, padding)
        ow, pl, pr = conv._pad_amounts(wd, kw, sw, dw, padding)
    if oh <= 0 or ow <= 0 or min(pt, pb, pl, pr) < 0:
        return None
    fc = float_conv
    geo = fc.Geometry(kh, kw, sh, sw, dh, dw, 0, 0, 0, 0, oh, ow)
    k = int(bias_shift)
    scale = np.float32(2.0 ** -k)
    if op == "DEPTHWISE_CONV_2D":
        co = w.shape[-1]
        if co % c:
            return None
        by_channel = w.reshape(-1, co)
        weights = fc._depthwise_params(geo, "NONE", co // c, np.dtype(np.float32), w.astype(np.float32) * scale, None)
        kind = "depthwise"
    else:
        co = w.shape[0]
        if w.shape[-1] != c:
            return None
        by_channel = w.reshape(co, -1).T
        if kh == kw == 1 and not (pt or pb or pl or pr):
            kind, weights = "matmul", np.ascontiguousarray((w.reshape(co, c).astype(np.float32) * scale).T)
        else:
            kind = "im2col"
            rows = fc._conv_weight_rows(w.astype(np.float32) * scale, 1, np.dtype(np.float32))
            weights = np.ascontiguousarray(rows[0])
    rq = prepare_requant(by_channel, x_range, bias_row0, multiplier, k, total_shift, out_zero_point, out_dtype,
                         clamp, ow)
    if rq is None:
        return None
    return ConvPlan(kind, x_shape, x_dtype, (pt, pb, pl, pr), int(x_zero_point), (sh, sw), (n, oh, ow, co), weights,
                    geo, rq)
