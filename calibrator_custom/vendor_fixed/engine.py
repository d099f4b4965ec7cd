"""Run a vendor (SGS_IPU_SDK 1.1.5) ``*_fixed.sim`` with the vendor's integer semantics.

:func:`prepare` reads the model once through ``calibrator_custom.model`` into frozen per-op steps
(weights decoded with :mod:`.layout`, requantization parameters from the stored bias rows, bias
shift inferred with :func:`.conv.infer_bias_shift`) and validates it: an op whose vendor arithmetic
is not established is a :class:`ModelError` naming the op. :meth:`Program.run` then only calls the
kernels: the prepared fast paths (:mod:`.conv_plan` for convs, :mod:`.fastops` for ADD/SUB,
RELU/PRELU, PAD; the same codes, their bounds proven at prepare) where the input has the declared
dtype and shape, the reference kernels otherwise. The graph is followed as the vendor's converter
wrote it (fusions, Align2_Alias, the FULLY_CONNECTED -> 1x1 CONV_2D rewrite are all visible in the
file's op list).

Input boundary: the fixed.sim stores, per input, a SubGraph slot-10 table whose first vector holds
12 int16 values: a 3x3 matrix A (``round(1024 / (std * in_scale))`` on the diagonal) and 3 offsets
B (``B - 256`` = the code of pixel 0, channels in reverse order). The codes are
``clip(B[2-c] - 256 + ((sum_j A[2-c][2-j] * p_j + 512) >> 10), 0, 255)`` (docs/vendor_fixed_point.md).
"""
from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ModelError
from ..model import sgs_dialect, sgs_weights
from ..model.graph import Model
from . import (activation, boundary, conv, conv_plan, elementwise, fastops, layout, movement, output, pool, resize,
               tables)

_DTYPES = {"UINT8": np.uint8, "INT16": np.int16, "INT8": np.int8, "INT32": np.int32}


# ---------------------------------------------------------------- steps
@dataclass(frozen=True)
class InputStep:
    tensor: int
    matrix: np.ndarray        # [3, 3] int64, applied to the pixel channels
    offset_code: np.ndarray   # [3] int64: the code of pixel 0 per channel

    table: np.ndarray | None = None   # [3, 256] codes per channel and pixel value (diagonal matrix)

    def run(self, env, pixels):
        codes = None if self.table is None else boundary.apply_transform_table(pixels, self.table)
        env[self.tensor] = boundary.stored_transform_codes(pixels, self.matrix, self.offset_code) \
            if codes is None else codes


@dataclass(frozen=True)
class ConvStep:
    op: str
    x: int
    out: int
    w_code: np.ndarray
    x_zero_point: int
    bias_row0: np.ndarray
    multiplier: np.ndarray
    bias_shift: int
    total_shift: int
    out_zero_point: int
    out_dtype: type
    stride: tuple
    dilation: tuple
    padding: str
    pads: tuple               # explicit (top, bottom, left, right) or None
    clamp: tuple
    plan: object = None       # conv_plan.ConvPlan (the prepared exact fast path) or None

    def run(self, env):
        x = env[self.x]
        if x.ndim != 4:
            x = x.reshape(x.shape[0], 1, 1, -1)
        if self.plan is not None and self.plan.matches(x):
            env[self.out] = self.plan.run(x)
            return
        env[self.out] = self.reference(x)

    def reference(self, x):
        """The int64 reference kernels of .conv (any input shape and dtype)."""
        padding = self.padding
        if self.pads is not None:
            t, b, l, r = self.pads
            x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=self.x_zero_point)
            padding = "VALID"
        kern = conv.depthwise_conv2d if self.op == "DEPTHWISE_CONV_2D" else conv.conv2d
        return kern(x, self.x_zero_point, self.w_code, self.bias_row0, self.multiplier, self.bias_shift,
                    self.total_shift, self.out_zero_point, self.out_dtype, self.stride, self.dilation, padding,
                    self.clamp)


@dataclass(frozen=True)
class FnStep:
    """Any other op: ``env[out] = fn(*env[ins])`` with the parameters bound at prepare time."""
    op: str
    ins: tuple
    out: int
    fn: Callable
    fast: Callable | None = None   # the prepared fast kernel inside fn (fastops), for fusing

    def run(self, env):
        env[self.out] = self.fn(*(env[i] for i in self.ins))


@dataclass(frozen=True)
class FusedAddActivationStep:
    """ADD/SUB then the RELU/PRELU that alone reads it, the ADD's codes kept in int32 between the two
    (fastops kernels; the same codes as the two steps, which run instead where a kernel declines)."""
    add: FnStep
    act: FnStep
    clip_range: tuple          # the ADD's output type range (its saturation)
    op: str = "ADD+ACT"

    def run(self, env):
        a = self.add.fast.int32(*(env[i] for i in self.add.ins), self.clip_range)
        y = None if a is None else self.act.fast.from_int32(a)
        if y is None:
            self.add.run(env)
            self.act.run(env)
            return
        env[self.act.out] = y


# ---------------------------------------------------------------- reading
def _q(t):
    q = t.quantization
    scale = float(q.scale[0]) if q is not None and q.scale else None
    zp = int(q.zero_point[0]) if q is not None and q.zero_point else 0
    return scale, zp


def _dtype(t):
    try:
        return _DTYPES[t.dtype]
    except KeyError:
        raise ModelError(f"tensor {t.name!r}: type {t.dtype} is not a vendor fixed activation type") from None


def _raw(model: Model, t) -> bytes:
    if t.buffer <= 0 or t.buffer >= len(model.buffers) or not model.buffers[t.buffer].data:
        raise ModelError(f"tensor {t.name!r} has no constant data in the fixed model")
    return model.buffers[t.buffer].data


def _input_transforms(data: bytes) -> list[np.ndarray]:
    """The SubGraph slot-10 tables' first [int16] vectors (12 values per input), read from the file bytes."""
    u32 = lambda p: struct.unpack_from("<I", data, p)[0]  # noqa: E731

    def fields(t):
        v = t - struct.unpack_from("<i", data, t)[0]
        n = struct.unpack_from("<H", data, v)[0]
        return [struct.unpack_from("<H", data, v + 4 + 2 * i)[0] for i in range((n - 4) // 2)]

    try:
        root = u32(0)
        mf = fields(root)
        sgs = root + mf[2]
        sgs += u32(sgs)
        sg = sgs + 4 + u32(sgs + 4)
        sf = fields(sg)
        if len(sf) <= 10 or not sf[10]:
            return []
        vec = sg + sf[10]
        vec += u32(vec)
        out = []
        for i in range(u32(vec)):
            e = vec + 4 + 4 * i
            e += u32(e)
            ef = fields(e)
            if not ef or not ef[0]:
                continue
            p = e + ef[0]
            p += u32(p)
            n = u32(p)
            out.append(np.frombuffer(data, "<i2", n, p + 4).astype(np.int64))
        return out
    except (struct.error, IndexError, ValueError):
        return []


@dataclass(frozen=True)
class Program:
    inputs: tuple           # InputStep per graph input
    steps: tuple
    outputs: tuple          # graph output tensor indices
    output_scales: tuple    # (scale, zero_point) per output used to dequantize
    output_shapes: tuple
    run_steps: tuple = ()   # steps with ADD + RELU/PRELU pairs fused (run); codes() runs ``steps``

    def run(self, pixels: list[np.ndarray]) -> list[np.ndarray]:
        """Codes through every step; -> dequantized float32 graph outputs (original shapes)."""
        env: dict[int, np.ndarray] = {}
        for step, x in zip(self.inputs, pixels):
            step.run(env, x)
        for step in self.run_steps or self.steps:
            step.run(env)
        return [output.dequantize(env[i].reshape(shape), s, z)
                for i, (s, z), shape in zip(self.outputs, self.output_scales, self.output_shapes)]

    def codes(self, pixels: list[np.ndarray]) -> dict[int, np.ndarray]:
        """Every tensor's codes of one run (for tests and analysis)."""
        env: dict[int, np.ndarray] = {}
        for step, x in zip(self.inputs, pixels):
            step.run(env, x)
        for step in self.steps:
            step.run(env)
        return env


def _has_program(options) -> bool:
    """Whether a conv's options hold the vendor's IPU program (fixed.sim; its input tile is never 0)."""
    return bool(getattr(options, "sgs_in_tile_width", 0))


def slot_tiling(options) -> tuple[int, int] | None:
    """(output_tile, input_tile) of an int8 CONV_2D weight buffer as its program states it: Conv2DOptions
    slot 10 (input channels per tile, absent = 16) and slot 12 (output channels per tile, absent = 16;
    where it holds O itself, O below the tile, the tile is O rounded up to 16). None without a program."""
    if not _has_program(options):
        return None
    ti = getattr(options, "sgs_in_channels_per_tile", None)
    to = getattr(options, "sgs_out_channels_per_tile", None)
    return -(-int(to or 16) // 16) * 16, int(ti or 16)


def slot_passes(options) -> tuple[int | None, int | None]:
    """(in_pass, out_pass) of a CONV_2D's program (slots 11 / 13, absent = 16; None without a program):
    the weight buffer holds the passes in order (``layout.int8_conv_blocks``)."""
    if not _has_program(options):
        return None, None
    ip = getattr(options, "sgs_in_channels_per_pass", None)
    op = getattr(options, "sgs_out_channels_per_pass", None)
    return int(ip or 16), int(op or 16)


def _int8_or_int16_conv_weights(model, op, tw, wdt, b0, acc_min, acc_max, zp_in, zp_out, out_dt, s_in, s_w, s_out,
                                bq, mult=None) -> np.ndarray:
    """A CONV_2D's weight codes, decoded in the tiling the program states (:func:`slot_tiling`).

    The check: with a non-zero input zero point the bias codes hold -zp * sum(w) per channel, and with
    per-tensor weight codes only the right tiling gives a float bias with exactly the stored min/max.
    Where the stated tiling fails that check and another candidate passes it (face_landmark's
    (1404, 3, 3, 32) conv: slot 12 says 64, the buffer holds output tiles of 1344), that one is taken;
    where none passes (per-channel weight codes, whose multipliers differ per channel), the stated one.
    With multipliers ``mult`` (bias row 1) that differ per channel the candidates are not tried (on 126
    fixed files, the vendor's and ours, none of 1,377 such convs had a candidate pass before the stated).
    """
    raw = _raw(model, tw)
    stated = slot_tiling(op.options)
    if wdt != np.int8:  # INT16: the stated tiles and passes (none stated: input tiles of 16, one output tile)
        return layout.unpack_conv_weights(raw, tw.shape, wdt, *(stated[::-1] if stated else (None, None)),
                                          *slot_passes(op.options))
    tilings = ([stated] if stated else []) + [t for t in layout.conv_tilings(tw.shape) if t != stated]
    per_channel = mult is not None and np.size(mult) > 1 and np.unique(np.asarray(mult)).size > 1
    if zp_in == 0 or per_channel:
        # no zero-point fold in the bias, or per-channel codes: the check cannot tell the tilings apart; the
        # stated (or likeliest)
        tilings = tilings[:1]
    first = None
    passes = slot_passes(op.options)
    for to_, ti_ in tilings:
        ip, opp = passes if (to_, ti_) == stated else (None, None)
        w = layout.unpack_conv_weights(raw, tw.shape, wdt, ti_, to_, ip, opp)
        first = w if first is None else first
        w_sum = w.astype(np.int64).reshape(w.shape[0], -1).sum(1)
        fold = conv.bias_fold(zp_in, w_sum, zp_out, out_dt is np.uint8, s_in * s_w / s_out)
        if len(tilings) == 1 or conv.bias_shift_exact(b0, acc_min, acc_max, fold, s_in * s_w, float(bq.min[0]),
                                                      float(bq.max[0])) is not None:
            return w
    return first


def _shifts(options, b0, mult, acc_min, acc_max, zp_in, w_sum, zp_out, out_dt, s_in, s_w, s_out, bq) -> tuple[int, int]:
    """(k, N) of a conv: the program's bias shift and total shift N - k (Conv2DOptions 35 / 37,
    DepthwiseConv2DOptions 36 / 38; absent = 0) where the file has a program, else inferred (k from the
    bias range, :func:`.conv.infer_bias_shift`; N from the stored multipliers)."""
    if _has_program(options):
        k = int(options.sgs_bias_shift or 0)
        return k, k + int(options.sgs_total_shift or 0)
    _, n_shift = conv.requant_params(s_in, s_w, s_out)
    m = s_in * s_w / s_out
    if mult.size and mult.max() > 0:
        # N such that M (the stored row 1) ~ m * 2**N: at a power-of-two tie the float32 scales put
        # floor(log2 m) one off, the stored M does not
        n_shift = int(round(math.log2(float(mult.max()) / m)))
    fold = conv.bias_fold(zp_in, w_sum, zp_out, out_dt is np.uint8, m)
    return conv.infer_bias_shift(b0, acc_min, acc_max, fold, s_in * s_w, float(bq.min[0]), float(bq.max[0])), n_shift


def _conv_step(model: Model, name: str, op) -> ConvStep:
    g = model.main
    ti, tw, to = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        raise ModelError(f"op {name} writing {to.name!r}: a vendor fixed conv needs its [2, C] bias")
    tb = g.tensors[op.inputs[2]]
    s_in, zp_in = _q(ti)
    s_w, _ = _q(tw)
    s_out, zp_out = _q(to)
    if None in (s_in, s_w, s_out):
        raise ModelError(f"op {name} writing {to.name!r}: input, weight and output need a scale")
    out_dt = _dtype(to)
    wdt = "<i2" if tw.dtype == "INT16" else np.int8
    if name == "DEPTHWISE_CONV_2D":
        w = layout.unpack_depthwise_weights(_raw(model, tw), tw.shape, wdt)
        w_sum = w.astype(np.int64).reshape(-1, w.shape[-1]).sum(0)
    c = int(to.shape[-1])
    b0, mult = layout.unpack_bias(_raw(model, tb), c)
    q = to.quantization
    acc_max = int(q.extra["sgs_acc_max"][0]) if q.extra.get("sgs_acc_max") else 0
    acc_min = int(q.extra["sgs_acc_min"][0]) if q.extra.get("sgs_acc_min") else 0
    bq = tb.quantization
    if name == "CONV_2D" and getattr(op.options, "sgs_depthwise_mode", None) == 2:
        # a depthwise the vendor runs as a [C, k, k, C] conv: only the diagonal 16-channel blocks stored
        w = sgs_weights.unpack_diagonal_blocks(_raw(model, tw), tw.shape, wdt)
        w_sum = w.astype(np.int64).reshape(w.shape[0], -1).sum(1)
    elif name != "DEPTHWISE_CONV_2D":
        w = _int8_or_int16_conv_weights(model, op, tw, wdt, b0, acc_min, acc_max, zp_in, zp_out, out_dt,
                                        s_in, s_w, s_out, bq, mult)
        w_sum = w.astype(np.int64).reshape(w.shape[0], -1).sum(1)
    k, n_shift = _shifts(op.options, b0, mult, acc_min, acc_max, zp_in, w_sum, zp_out, out_dt, s_in, s_w, s_out, bq)
    o = op.options
    act = getattr(o, "fused_activation_function", "NONE") or "NONE"
    try:
        clamp = conv.activation_clamp(act, s_out, zp_out, out_dt)
    except ValueError as e:
        raise ModelError(f"op {name} writing {to.name!r}: {e}") from None
    pads = tuple(int(getattr(o, f"padding_{s}", 0) or 0) for s in ("top", "bottom", "left", "right"))
    pads = pads if any(pads) else None
    stride = (o.stride_h, o.stride_w)
    dilation = (getattr(o, "dilation_h_factor", 1) or 1, getattr(o, "dilation_w_factor", 1) or 1)
    padding = o.padding if o.padding in ("SAME", "VALID") else "VALID"
    x_shape = tuple(int(d) for d in ti.shape)
    if len(x_shape) != 4:
        x_shape = (x_shape[0], 1, 1, int(np.prod(x_shape[1:])))
    plan = conv_plan.prepare(name, x_shape, _dtype(ti), w, zp_in, b0, mult, k, n_shift, zp_out, out_dt, stride,
                             dilation, padding, pads, clamp)
    return ConvStep(name, op.inputs[0], op.outputs[0], w, zp_in, b0, mult, k, n_shift, zp_out, out_dt,
                    stride, dilation, padding, pads, clamp, plan)


def _line_slope(options, lut_table: str) -> int | None:
    """The slope of a table op's line beyond |x| = 6 as its options store it (``sgs_lut`` slot 2's
    ``line_slope``; absent in a stored record = 0, which the vendor runs as a flat line), or None where
    the options hold no table record (the kernel's own, the vendor's)."""
    lut = getattr(options, "sgs_lut", None)
    if not lut:
        return None
    line = dict(lut).get(sgs_dialect.SLOT_NAMES.get((lut_table, 2), "sgs_slot_2"))
    if line is None:
        return None
    return int(dict(line).get("line_slope", 0) or 0)


def _pool_options(o):
    return (o.filter_height, o.filter_width), (o.stride_h, o.stride_w), o.padding


def _input_ratio(t) -> float:
    """activation.negative_ratio of an INT16 activation input (1.0 otherwise)."""
    q = t.quantization
    if t.dtype == "INT16" and q is not None and q.min and q.max:
        return activation.negative_ratio(q.min[0], q.max[0])
    return 1.0


def _centered(x: np.ndarray, zero_point: int) -> np.ndarray:
    """x - zero_point (UINT8 codes become int16, exactly)."""
    if zero_point == 0:
        return x
    if x.dtype == np.uint8:
        return x.astype(np.int16) - np.int16(zero_point)
    return x.astype(np.int64) - zero_point


def _pad_trailing(x: np.ndarray, out_shape: tuple, zero_point: int) -> np.ndarray:
    """x padded at the end of each dimension up to out_shape with the zero point (real 0)."""
    pad = [(0, int(o) - int(d)) for d, o in zip(x.shape, out_shape)]
    return np.pad(x, pad, constant_values=zero_point)


def _fast_or(fast, reference):
    """fn(*xs): the prepared fast kernel's codes, or the reference kernel's where it declines (None)."""
    if fast is None:
        return reference

    def fn(*xs):
        y = fast(*xs)
        return reference(*xs) if y is None else y
    return fn


def _step(model: Model, name: str, op, softmax_out: set):
    g = model.main
    to = g.tensors[op.outputs[0]]
    ins = tuple(op.inputs)
    o = op.options
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return _conv_step(model, name, op)
    if name == "MAX_POOL_2D":
        f, s, p = _pool_options(o)
        return FnStep(name, ins[:1], op.outputs[0], lambda x, f=f, s=s, p=p: pool.max_pool2d(x, f, s, p))
    if name == "AVERAGE_POOL_2D":
        f, s, p = _pool_options(o)
        p = "SAME" if p == "SAME" else "VALID"
        return FnStep(name, ins[:1], op.outputs[0], lambda x, f=f, s=s, p=p: pool.average_pool2d(x, f, s, p))
    if name == "MEAN":
        ti = g.tensors[ins[0]]
        axes = model.tensor_data(g.tensors[ins[1]]) if len(ins) > 1 else None
        if axes is None:
            raise ModelError(f"op MEAN writing {to.name!r}: its axes are not a constant")
        if _q(ti) != _q(to) or ti.dtype != to.dtype:
            raise ModelError(f"op MEAN writing {to.name!r}: only a MEAN keeping its input's quantization is "
                             "established for the vendor's fixed arithmetic")
        keep = bool(getattr(o, "keep_dims", True)) if o is not None else True
        out_shape = tuple(int(d) for d in to.shape)
        return FnStep(name, ins[:1], op.outputs[0],
                      lambda x, a=tuple(int(v) for v in np.ravel(axes)), k=keep, sh=out_shape:
                      pool.mean(x, a, k).reshape(sh))
    if name in ("ADD", "SUB", "MUL"):
        (s1, z1), (s2, z2), (so, zo) = _q(g.tensors[ins[0]]), _q(g.tensors[ins[1]]), _q(to)
        kern = {"ADD": elementwise.add, "SUB": elementwise.sub, "MUL": elementwise.mul}[name]
        consts = [model.tensor_data(g.tensors[i]) for i in ins[:2]]
        if any(cv is not None for cv in consts):
            raise ModelError(f"op {name} writing {to.name!r}: a constant operand is not established for the "
                             "vendor's fixed arithmetic")
        dt = _dtype(to)
        if name == "MUL":  # the stored split of the product's shift (MulOptions slot 1)
            kern = functools.partial(kern, params=elementwise.stored_mul_params(o))
        # a UINT8 operand enters with its zero point removed (the kernels take zero-point-free codes)
        ref = (lambda a, b, s1=s1, s2=s2, so=so, zo=zo, dt=dt, z1=z1, z2=z2, kern=kern:
               kern(_centered(a, z1), _centered(b, z2), s1, s2, so, zo, dt))
        t1, t2 = g.tensors[ins[0]], g.tensors[ins[1]]
        fast = None if name == "MUL" else fastops.prepare_addsub(
            1 if name == "ADD" else -1, _dtype(t1), _dtype(t2), t1.shape, t2.shape, z1, z2, s1, s2, so, zo, dt)
        return FnStep(name, ins[:2], op.outputs[0], _fast_or(fast, ref), fast)
    if name == "PAD":
        out_shape = tuple(int(d) for d in to.shape)
        _, zp = _q(to)
        ti = g.tensors[ins[0]]
        in_shape = tuple(int(d) for d in ti.shape)
        if len(in_shape) == len(out_shape) and all(a <= b for a, b in zip(in_shape, out_shape)):
            return FnStep(name, ins[:1], op.outputs[0], lambda x, s=out_shape, z=zp: fastops.pad_trailing(x, s, z))
        return FnStep(name, ins[:1], op.outputs[0], lambda x, s=out_shape, z=zp: _pad_trailing(x, s, z))
    if name in ("RELU", "RELU6"):
        (s_in, _), (s_out, zp_out) = _q(g.tensors[ins[0]]), _q(to)
        ratio = _input_ratio(g.tensors[ins[0]])
        dt = _dtype(to)
        zero = np.zeros(1, np.int64)  # RELU = PRELU with alpha 0: t = max(x, 0), then the 15-bit requantization
        lo, hi = conv.activation_clamp(name, s_out, zp_out, dt)
        ref = (lambda x, si=s_in, so=s_out, z=zp_out, dt=dt, lo=lo, hi=hi, f=ratio:
               np.clip(activation.prelu(x, zero, 15, si, so, z, dt, f), lo, hi).astype(dt))
        ti = g.tensors[ins[0]]
        fast = fastops.prepare_prelu(_dtype(ti), ti.shape, zero, 15, s_in, s_out, zp_out, dt, ratio, (lo, hi))
        return FnStep(name, ins[:1], op.outputs[0], _fast_or(fast, ref), fast)
    if name == "CONCATENATION":
        axis = int(o.axis) if o is not None else -1
        out_shape = tuple(int(d) for d in to.shape)
        axis = axis % len(out_shape)
        shapes = []
        for i in ins:  # an input of another rank (a RESHAPE folded by the converter): row-major reinterpretation
            sh = tuple(int(d) for d in g.tensors[i].shape)
            shapes.append(None if len(sh) == len(out_shape) else out_shape[:axis] + (-1,) + out_shape[axis + 1:])
        return FnStep(name, ins, op.outputs[0], lambda *xs, a=axis, sh=tuple(shapes): movement.concatenation(
            *(x if s_ is None else x.reshape(s_) for x, s_ in zip(xs, sh)), axis=a))
    if name == "Align2_Alias":
        c = int(to.shape[-1])
        return FnStep(name, ins[:1], op.outputs[0], lambda x, c=c: movement.align_channels(x, c))
    if name == "RESHAPE":
        shape = tuple(int(d) for d in to.shape)
        return FnStep(name, ins[:1], op.outputs[0], lambda x, s=shape: movement.reshape(x, s))
    if name == "TRANSPOSE":
        perm = model.tensor_data(g.tensors[ins[1]])
        if perm is None:
            raise ModelError(f"op TRANSPOSE writing {to.name!r}: its permutation is not a constant")
        perm = tuple(int(p) for p in perm)
        return FnStep(name, ins[:1], op.outputs[0], lambda x, p=perm: movement.transpose(x, p))
    if name == "RESIZE_BILINEAR":
        size = tuple(int(d) for d in to.shape[1:3])
        ac = bool(getattr(o, "align_corners", False))  # the vendor ignores half_pixel_centers
        return FnStep(name, ins[:1], op.outputs[0],
                      lambda x, s=size, ac=ac: resize.resize_bilinear(x, s, ac, False))
    if name in ("LOGISTIC", "TANH"):
        s_in, _ = _q(g.tensors[ins[0]])
        s_out, zp_out = _q(to)
        if name == "LOGISTIC":
            table = tables.logistic_table(s_in, s_out, _line_slope(o, "SgsLogisticOptionsSlot0"))
        elif to.dtype == "INT16":  # a TANH that ends the graph writes INT16
            table = tables.tanh_int16_table(s_in, s_out)
        else:
            q = to.quantization  # the INT16 TANH before the requantization: the calibrated range's scale
            s16 = (max(abs(float(q.min[0])), abs(float(q.max[0]))) / 32767 if q is not None and q.min is not None
                   and len(q.min) and len(q.max) else tables.TANH_INT16_SCALE)
            table = tables.tanh_table(s_in, s_out, zp_out, s16)
        return FnStep(name, ins[:1], op.outputs[0], lambda x, t=table: tables.lookup(x, t))
    if name == "SOFTMAX":
        s_in, _ = _q(g.tensors[ins[0]])
        softmax_out.add(op.outputs[0])
        return FnStep(name, ins[:1], op.outputs[0], lambda x, s=s_in: tables.softmax(x, s))
    if name == "PRELU":
        ta = g.tensors[ins[1]]
        n = int(np.prod(ta.shape))
        alpha = np.frombuffer(_raw(model, ta), "<i2")[:n].reshape(ta.shape).astype(np.int64)
        aq = ta.quantization
        ti = g.tensors[ins[0]]
        (s_in, _), (s_out, zp_out) = _q(ti), _q(to)
        dt = _dtype(to)
        # an INT16 output: the alpha codes hold s_in / s_out, the positive branch is rescaled by it and the
        # negative one not (activation.prelu with F = s_in / s_out: its final multiplier is then 1)
        ratio = float(s_in) / float(s_out) if dt == np.dtype(np.int16) else _input_ratio(ti)
        shift = activation.alpha_shift(max(abs(float(aq.min[0])), abs(float(aq.max[0]))) * ratio)
        ref = (lambda x, a=alpha, sh=shift, si=s_in, so=s_out, z=zp_out, dt=dt, f=ratio:
               activation.prelu(x, a, sh, si, so, z, dt, f))
        fast = fastops.prepare_prelu(_dtype(ti), ti.shape, alpha, shift, s_in, s_out, zp_out, dt, ratio)
        return FnStep(name, ins[:1], op.outputs[0], _fast_or(fast, ref), fast)
    raise ModelError(f"op {name} writing {to.name!r}: the vendor fixed-point arithmetic of {name} is not "
                     "established, so calibrator_custom cannot simulate this vendor fixed model "
                     "(supported ops: docs/vendor_fixed_point.md)")


def prepare(model: Model, where: str = "the model") -> Program:
    """Validate a vendor fixed model and freeze every op's parameters (ModelError naming the op otherwise)."""
    if model.dialect != "sgs_fixed":
        raise ModelError(f"{where} is not a SigmaStar fixed model (dialect {model.dialect})")
    g = model.main
    transforms = _input_transforms(model.source or model.to_bytes())
    inputs = []
    for k, i in enumerate(g.inputs):
        t = g.tensors[i]
        if t.dtype != "UINT8":
            raise ModelError(f"{where}: input {t.name!r} has type {t.dtype}; only UINT8 image inputs are established")
        if k >= len(transforms) or transforms[k].size != 12:
            raise ModelError(f"{where}: input {t.name!r} has no pixel transform (SubGraph slot 10) in the file")
        v = transforms[k]
        a = v[:9].reshape(3, 3)[::-1, ::-1].copy()
        offset = v[9:12][::-1] - 256
        inputs.append(InputStep(i, a, offset, boundary.stored_transform_table(a, offset)))
    softmax_out: set = set()
    steps = []
    for k in g.topological_order():
        op = g.operators[k]
        steps.append(_step(model, model.op_name(op), op, softmax_out))
    scales = []
    for i in g.outputs:
        s, z = _q(g.tensors[i])
        if i in softmax_out:
            s, z = 1.0 / 32767, 0  # the vendor writes SOFTMAX with scale 1/32767
        if s is None:
            raise ModelError(f"{where}: output {g.tensors[i].name!r} has no scale")
        scales.append((s, z))
    return Program(tuple(inputs), tuple(steps), tuple(g.outputs), tuple(scales),
                   tuple(tuple(int(d) for d in g.tensors[i].shape) for i in g.outputs),
                   _fused(steps, set(g.outputs)))


def _fused(steps: list, graph_outputs: set) -> tuple:
    """steps with each ADD/SUB whose only reader is a RELU/RELU6/PRELU (and not a graph output) fused
    with it at the ADD's place (its inputs are ready there; the activation's readers all come later)."""
    readers: dict[int, list[int]] = {}
    for k, st in enumerate(steps):
        for i in (st.ins if isinstance(st, FnStep) else (st.x,)):
            readers.setdefault(i, []).append(k)
    fused, skip = [], set()
    for k, st in enumerate(steps):
        if k in skip:
            continue
        r = readers.get(st.out, [])
        act = steps[r[0]] if len(r) == 1 else None
        if (isinstance(st, FnStep) and st.op in ("ADD", "SUB") and getattr(st.fast, "int32", None) is not None
                and st.out not in graph_outputs and isinstance(act, FnStep) and act.op in ("RELU", "RELU6", "PRELU")
                and getattr(act.fast, "from_int32", None) is not None and act.ins[0] == st.out
                and np.dtype(act.fast.in_dtype) == np.dtype(st.fast.out_dtype)):
            lo, hi = fastops._LIMITS[np.dtype(st.fast.out_dtype)]
            fused.append(FusedAddActivationStep(st, act, (lo, hi)))
            skip.add(r[0])
        else:
            fused.append(st)
    return tuple(fused)


def aligned_shape(shape) -> tuple:
    """The vendor's "Alignment shape" of an output: the last dimension padded to a multiple of 8."""
    shape = tuple(int(d) for d in shape)
    return shape[:-1] + (-(-shape[-1] // 8) * 8,) if shape else shape


__all__ = ["prepare", "Program", "aligned_shape"]
