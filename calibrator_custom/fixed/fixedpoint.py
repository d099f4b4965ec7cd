"""Integer fixed-point helpers shared by every integer kernel of the fixed simulator.

The contract (docs/fixed_point.md):

* ``quantize_multiplier(real, bits)`` writes a positive real as ``multiplier * 2**-shift`` with
  ``2**(bits-1) <= multiplier < 2**bits`` (``multiplier = round_half_even(frac * 2**bits)`` of the
  float64 mantissa; ``real == 0`` gives ``(0, 0)``).
* ``rounding_rshift(x, s)`` = ``floor(x / 2**s + 1/2)`` (round half up) for ``s >= 1``, ``x`` for
  ``s == 0`` and ``x * 2**-s`` for ``s < 0``.
* ``requantize(acc, m, s, zp, dtype)`` = ``saturate(rounding_rshift(acc * m, s) + zp, dtype)``.
  Callers keep ``|acc| * m < 2**63``: ``multiplier_bits(acc_bound)`` gives the widest multiplier
  that does (at most 31 bits).

* ``f64_multiplier(real, x_bound, ...)`` picks the widest multiplier of 24..31 bits whose
  requantization ``floor((x * m + offset) / 2**shift)`` keeps every intermediate integer below
  ``2**53`` for ``|x| <= x_bound``; :class:`FloorAffine` then evaluates it in float64, which is
  exact under that bound and needs fewer, cheaper passes than the int64 evaluation (the integers
  are the same; float64 is only the carrier).

Only ``quantize_multiplier``, the multiplier choices and :class:`Rescale` / :class:`FloorAffine`
construction touch floats of the model; they run in a prepare step. Per inference, integer arrays
go in and come out; :class:`FloorAffine` carries exact integers in float64 in between.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

I64 = np.int64

#: dtype name -> (min, max) of the integer types the fixed model uses
QRANGE = {
    "UINT8": (0, 255), "INT8": (-128, 127), "INT16": (-32768, 32767),
    "INT32": (-2**31, 2**31 - 1), "INT64": (-2**63, 2**63 - 1),
}
NP_QDTYPES = {"UINT8": np.uint8, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64}


def qrange(dtype) -> tuple[int, int]:
    """(min, max) of an integer numpy dtype."""
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def quantize_multiplier(real, bits: int = 31) -> tuple[np.ndarray, np.ndarray]:
    """``real ~= multiplier * 2**-shift`` elementwise, ``multiplier`` a ``bits``-bit integer (int64 arrays)."""
    if not 1 <= bits <= 62:
        raise ValueError(f"multiplier bits must be in 1..62, got {bits}")
    r = np.asarray(real, dtype=np.float64)
    if np.any(r < 0) or not np.all(np.isfinite(r)):
        raise ValueError("quantize_multiplier needs finite non-negative reals")
    frac, exp = np.frexp(r)  # r = frac * 2**exp, 0.5 <= frac < 1 (frac = 0 for r = 0)
    mult = np.rint(np.ldexp(frac, bits)).astype(I64)
    exp = exp.astype(I64)
    carry = mult == (1 << bits)
    mult = np.where(carry, mult >> 1, mult)
    exp = np.where(carry, exp + 1, exp)
    shift = np.where(mult == 0, 0, bits - exp).astype(I64)
    # keep shifts within int64: a tiny real loses low multiplier bits instead
    over = np.maximum(shift - 62, 0)
    mult = np.where(over > 0, (mult + np.where(over > 0, I64(1) << np.maximum(over - 1, 0), 0)) >> over, mult)
    shift = np.minimum(shift, 62)
    return mult, shift


def multiplier_bits(acc_bound: int) -> int:
    """Widest multiplier (<= 31 bits) such that ``acc_bound * 2**bits < 2**62``."""
    acc_bound = int(max(1, acc_bound))
    return int(max(1, min(31, 62 - acc_bound.bit_length())))


def rounding_rshift(x: np.ndarray, shift) -> np.ndarray:
    """``floor(x / 2**shift + 1/2)`` for shift >= 1, ``x << -shift`` for shift <= 0 (int64, elementwise)."""
    x = np.asarray(x, dtype=I64)
    s = np.asarray(shift, dtype=I64)
    if s.ndim == 0:
        s0 = int(s)
        if s0 > 0:
            return (x + (I64(1) << I64(s0 - 1))) >> I64(s0)
        return x << I64(-s0)
    pos = np.maximum(s, 0)
    half = np.where(pos > 0, I64(1) << np.maximum(pos - 1, 0), 0)
    return np.where(s > 0, (x + half) >> pos, x << np.maximum(-s, 0))


def saturate(x: np.ndarray, dtype) -> np.ndarray:
    """Clip ``x`` to the range of the integer ``dtype`` and cast."""
    lo, hi = qrange(dtype)
    return np.clip(x, lo, hi).astype(dtype)


def requantize(acc: np.ndarray, multiplier, shift, zero_point, dtype) -> np.ndarray:
    """``saturate(rounding_rshift(acc * multiplier, shift) + zero_point, dtype)``; per-channel along the last axis."""
    y = rounding_rshift(np.asarray(acc, dtype=I64) * np.asarray(multiplier, dtype=I64), shift)
    return saturate(y + np.asarray(zero_point, dtype=I64), dtype)


def rounding_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``round(num / den)`` with halves away from zero, for int64 arrays and den != 0 (elementwise)."""
    num = np.asarray(num, dtype=I64)
    den = np.asarray(den, dtype=I64)
    neg = (num < 0) != (den < 0)
    q = (np.abs(num) + np.abs(den) // 2) // np.abs(den)
    return np.where(neg, -q, q)


def isqrt(n: np.ndarray) -> np.ndarray:
    """``floor(sqrt(n))`` of non-negative int64 values, by integer Newton iteration (elementwise)."""
    n = np.asarray(n, dtype=I64)
    if np.any(n < 0):
        raise ValueError("isqrt of a negative number")
    # start above the root: 2**ceil(bits/2)
    bits = np.zeros(n.shape, dtype=I64)
    m = n.copy()
    for step in (32, 16, 8, 4, 2, 1):
        big = m >= (I64(1) << I64(step))
        bits = np.where(big, bits + step, bits)
        m = np.where(big, m >> I64(step), m)
    x = np.where(n > 0, I64(1) << ((bits + 2) // 2), 0)
    while True:
        y = np.where(x > 0, (x + n // np.maximum(x, 1)) >> 1, 0)
        done = y >= x
        if np.all(done):
            return x
        x = np.where(done, x, y)


#: float64 holds every integer of magnitude below this exactly
F64_EXACT_LIMIT = 1 << 53
#: the narrowest multiplier ``f64_multiplier`` may choose (relative error <= 2**-24)
F64_MIN_BITS = 24


@functools.lru_cache(maxsize=1 << 16)
def _f64_pick(real: float, x_bound: int) -> tuple[int, int] | None:
    """``f64_multiplier`` of one element (a pure function of its arguments, cached: the L5 search
    prepares the same convolutions again and again)."""
    if real == 0:
        return 0, 1
    for bits in range(31, F64_MIN_BITS - 1, -1):
        m, s = (int(v) for v in quantize_multiplier(real, bits))
        if s >= 1 and x_bound * m + (1 << s) < F64_EXACT_LIMIT:
            return m, s
    return None


def f64_multiplier(real, x_bound) -> tuple[np.ndarray, np.ndarray] | None:
    """Per element of ``real``: the widest ``quantize_multiplier(real, bits)``, ``24 <= bits <= 31``,
    with ``shift >= 1`` and ``x_bound * m + 2**shift < 2**53`` (``(0, 1)`` for 0); None when some
    element has none.

    That bound lets :class:`FloorAffine` evaluate ``floor((x * m + offset) / 2**shift)`` exactly in
    float64 for ``|x| <= x_bound`` and any integer offset. ``x_bound`` is an int or per element.
    """
    r = np.asarray(real, np.float64).reshape(-1)
    xb = np.broadcast_to(np.asarray(x_bound, object), r.shape)
    mult = np.zeros(r.shape, I64)
    shift = np.zeros(r.shape, I64)
    for i in range(r.size):
        picked = _f64_pick(float(r[i]), int(xb[i]))
        if picked is None:
            return None
        mult[i], shift[i] = picked
    shape = np.shape(real)
    return mult.reshape(shape), shift.reshape(shape)


def rounding_offset(shift: int, zero_point: int = 0) -> int:
    """``2**(shift-1) + zero_point * 2**shift``: the rounding half and an output zero point, as the
    integer to add before ``>> shift`` (``shift >= 1``)."""
    return (1 << (int(shift) - 1)) + (int(zero_point) << int(shift))


def _unsigned_twin(dtype: np.dtype) -> tuple[np.dtype, int]:
    """(the unsigned dtype of the same width, the offset that maps ``dtype``'s range onto it)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return dtype, 0
    return np.dtype(f"u{dtype.itemsize}"), -qrange(dtype)[0]


@dataclass(frozen=True, eq=False)
class FloorAffine:
    """``clip(floor((x * multiplier + offset) / 2**shift), lo, hi)`` as ``out_dtype``, in float64.

    Per-element parameters are 0-d or run along the last axis. ``u`` maps the output range onto
    the unsigned type of the same width (``u = 2**(width-1)`` for signed outputs, else 0); write
    ``O = offset + u * 2**shift = F + I * 2**shift`` with ``0 <= F < 2**shift``. :meth:`build`
    proves, for every admissible ``|x| <= x_bound``, either

    * ``|x * multiplier| + |O| < 2**53`` (one addend: ``d = O * 2**-shift``), or
    * ``|x * multiplier| + 2**shift < 2**53`` (split: ``d = F * 2**-shift``, then ``floor``, then
      ``+ I``),

    so ``x * c`` (``c = multiplier * 2**-shift``) and ``+ d`` are exact float64 operations (integers
    below 2**53 times a power of two), as are ``floor`` and the integer ``+ I``. The clip to
    ``[lo + u, hi + u]`` (non-negative integers) is exact and truncation to the unsigned type is
    then the floor; removing ``u`` is an exclusive-or of the sign bit.
    """

    multiplier: np.ndarray  # int64, 0-d or [C]
    shift: np.ndarray  # int64 >= 1
    offset: np.ndarray  # int64: O (one addend) or F (split)
    whole: np.ndarray | None  # int64 I (split), or None (one addend)
    bounds: np.ndarray  # int64 [2, ...]: lo + u, hi + u
    unsigned: np.dtype
    sign_bit: int  # u as the unsigned dtype's sign bit, or 0
    out_dtype: np.dtype
    channels: int  # length of the per-channel vectors, 0 when all are scalars
    # the float64 images of the integers above (exact: |values| < 2**53, times powers of two)
    scale: np.ndarray = dataclasses.field(init=False, repr=False)  # multiplier * 2**-shift
    addend: np.ndarray = dataclasses.field(init=False, repr=False)  # offset * 2**-shift
    whole_addend: np.ndarray | None = dataclasses.field(init=False, repr=False)  # whole
    lo: np.ndarray = dataclasses.field(init=False, repr=False)
    hi: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        set_ = object.__setattr__.__get__(self)
        set_("scale", np.ldexp(self.multiplier.astype(np.float64), -self.shift))
        set_("addend", np.ldexp(self.offset.astype(np.float64), -self.shift))
        set_("whole_addend", None if self.whole is None else self.whole.astype(np.float64))
        set_("lo", self.bounds[0].astype(np.float64))
        set_("hi", self.bounds[1].astype(np.float64))

    @classmethod
    def build(cls, multiplier, shift, offset, x_bound, lo, hi, out_dtype, split: bool = False
              ) -> "FloorAffine | None":
        """The float64 evaluation of the integer map, or None when it would not be exact.

        ``x_bound`` bounds ``|x|`` (int or per element); ``lo``/``hi`` lie within ``out_dtype``;
        ``split`` asks for the split form even where one addend would do.
        """
        out_dtype = np.dtype(out_dtype)
        if out_dtype.itemsize > 2:
            return None
        unsigned, u = _unsigned_twin(out_dtype)
        arrays = np.broadcast_arrays(*(np.asarray(v, object) for v in (multiplier, shift, offset, x_bound, lo, hi)))
        m, s, o, xb, lo_v, hi_v = ([int(v) for v in a.reshape(-1)] for a in arrays)
        o = [oi + (u << si) for oi, si in zip(o, s)]
        if any(si < 1 for si in s):
            return None
        prods = [xi * abs(mi) for xi, mi in zip(xb, m)]
        whole = None
        if split or any(p + abs(oi) >= F64_EXACT_LIMIT for p, oi in zip(prods, o)):
            if any(p + (1 << si) >= F64_EXACT_LIMIT for p, si in zip(prods, s)):
                return None
            whole = [oi >> si for oi, si in zip(o, s)]
            o = [oi - (w << si) for oi, w, si in zip(o, whole, s)]
        ints = [m, s, o, [v + u for v in lo_v], [v + u for v in hi_v]] + ([whole] if whole is not None else [])
        vectors = [np.array(a, I64) for a in ints]
        vectors = [np.array(a[0]) if np.all(a == a[0]) else a for a in vectors]
        channels = max(a.size if a.ndim else 0 for a in vectors)
        lo_u, hi_u = np.broadcast_arrays(vectors[3], vectors[4])
        whole_v = vectors[5] if whole is not None else None
        return cls(vectors[0], vectors[1], vectors[2], whole_v, np.stack([lo_u, hi_u]), unsigned, u,
                   out_dtype, channels)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        shape = np.shape(x)
        v = np.asarray(x)
        if self.channels:
            v = v.reshape(-1, self.channels)
        if v.dtype == np.float64:
            v = np.multiply(v, self.scale)
        else:
            v = v.astype(np.float64)
            np.multiply(v, self.scale, out=v)
        return self.finish(v).reshape(shape)

    def finish(self, v: np.ndarray) -> np.ndarray:
        """The map from ``v = x * multiplier * 2**-shift`` (float64, exact, any shape; modified in place).

        For callers that form ``v`` themselves from several exact products (ADD, PRELU): they must
        keep ``|v| * 2**shift`` within the bound ``build`` checked for ``x_bound * multiplier``.
        """
        shape = v.shape
        if self.channels and (v.ndim == 0 or v.shape[-1] != self.channels):
            raise ValueError(f"expected {self.channels} channels on the last axis, got shape {shape}")
        if self.channels:
            v = v.reshape(-1, self.channels)
        np.add(v, self.addend, out=v)
        if self.whole_addend is not None:
            np.floor(v, out=v)
            np.add(v, self.whole_addend, out=v)
        np.clip(v, self.lo, self.hi, out=v)
        out = v.astype(self.unsigned)
        if self.sign_bit:
            np.bitwise_xor(out, out.dtype.type(self.sign_bit), out=out)
        return out.view(self.out_dtype).reshape(shape)


def last_axis_vector(a: np.ndarray) -> np.ndarray | None:
    """``a`` as a 0-d or 1-D array along the last axis, or None when it varies along another axis."""
    a = np.asarray(a)
    if a.ndim <= 1:
        return a
    if any(n != 1 for n in a.shape[:-1]):
        return None
    return a.reshape(-1)


@dataclass(frozen=True)
class Rescale:
    """An integer map between two quantizations: ``q_out = saturate(rounding_rshift((q_in - zp_in) * m, s) + zp_out)``.

    ``between`` chooses ``m`` by ``f64_multiplier`` (24..31 bits) when the map is float64-exact
    with such a multiplier (inputs and outputs of up to 16 bits), and evaluates it with
    :class:`FloorAffine`; otherwise ``m`` has ``multiplier_bits(bound)`` bits and int64 runs it.
    """

    multiplier: np.ndarray  # int64, scalar or per channel (last axis)
    shift: np.ndarray
    in_zero_point: np.ndarray
    out_zero_point: np.ndarray
    out_dtype: np.dtype
    identity: bool = False
    fast: FloorAffine | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def between(cls, in_scale, in_zero_point, out_scale, out_zero_point, in_dtype, out_dtype) -> "Rescale":
        """The rescale from (in_scale, in_zp) to (out_scale, out_zp); ``in_dtype`` bounds the product width."""
        in_scale = np.asarray(in_scale, np.float64)
        out_scale = np.asarray(out_scale, np.float64)
        lo, hi = qrange(in_dtype)
        zin = np.asarray(in_zero_point, I64)
        zout = np.asarray(out_zero_point, I64)
        same = (np.array_equal(in_scale, out_scale) and np.array_equal(zin, zout)
                and np.dtype(in_dtype) == np.dtype(out_dtype))
        shape = np.broadcast_shapes(in_scale.shape, out_scale.shape, zin.shape, zout.shape)
        vectors = [last_axis_vector(np.broadcast_to(a, shape)) for a in (in_scale / out_scale, zin, zout)]
        if not same and all(v is not None for v in vectors) and np.dtype(out_dtype).itemsize <= 2:
            real, zi, zo = np.broadcast_arrays(*vectors)
            x_bound = max(abs(lo), abs(hi))
            picked = f64_multiplier(real, x_bound)
            if picked is not None:
                m, s = picked
                offset = [-int(z_in) * int(mi) + rounding_offset(si, z_out)
                          for z_in, mi, si, z_out in zip(zi.reshape(-1), m.reshape(-1), s.reshape(-1), zo.reshape(-1))]
                fast = FloorAffine.build(m, s, np.array(offset, object).reshape(m.shape), x_bound,
                                         *qrange(out_dtype), out_dtype)
                if fast is not None:
                    return cls(m.reshape(shape), s.reshape(shape), zin, zout, np.dtype(out_dtype), False, fast)
        bound = int(max(abs(hi - int(zin.min())), abs(lo - int(zin.max()))))
        m, s = quantize_multiplier(in_scale / out_scale, multiplier_bits(bound))
        return cls(m, s, zin, zout, np.dtype(out_dtype), bool(same))

    def __call__(self, q: np.ndarray) -> np.ndarray:
        if self.identity:
            return q
        if self.fast is not None:
            return self.fast(q)
        return requantize(np.asarray(q, I64) - self.in_zero_point, self.multiplier, self.shift,
                          self.out_zero_point, self.out_dtype)


def ceil_log2(n: int) -> int:
    """Smallest k with 2**k >= n (n >= 1)."""
    return max(0, math.ceil(math.log2(max(1, n))))
