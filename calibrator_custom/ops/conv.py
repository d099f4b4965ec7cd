"""Float kernels of the convolution family: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV,
FULLY_CONNECTED and BATCH_MATMUL.

Semantics follow TFLite's reference kernels (NHWC activations, OHWI conv weights,
``[1, kh, kw, in * depth_multiplier]`` depthwise weights, ``[out, in]`` fully-connected weights).

Padding
-------
* ``SAME`` / ``VALID``: TFLite's rules (``out = ceil(in / stride)`` resp.
  ``floor((in - eff_k) / stride) + 1`` with ``eff_k = (k - 1) * dilation + 1``; SAME puts
  ``total // 2`` pads before and the rest after).
* SigmaStar's explicit modes ``CAFFE``, ``ONNXINSIDE`` and ``ONNXOUTSIDE`` all mean the same
  thing for the convolutions: the pads ``padding_top/bottom/left/right`` are applied
  explicitly (zeros), and ``out = floor((in + pad_before + pad_after - eff_k) / stride) + 1``.
* TRANSPOSE_CONV: the output spatial size is the ``output_shape`` input (or, when that is not a
  constant, the model's output tensor shape). The full transposed output of size
  ``(in - 1) * stride + k`` is cropped starting at ``pad_before``: for SAME/VALID
  ``pad_before`` is TFLite's (``total // 2`` of ``(ceil_or_valid_out(out) - 1) * stride + k - out``,
  0 for VALID); for the explicit modes it is ``padding_top`` / ``padding_left`` (the pads crop the
  full transposed output; ``padding_bottom/right`` are implied by the output size). Output
  cells not covered by any input tap get just the bias.

Other decisions
---------------
* DEPTHWISE_CONV_2D takes the depth multiplier from the shapes (``filter_channels / in_channels``)
  as current TFLite does; the ``depth_multiplier`` option is not used.
* CONV_2D supports grouped convolution (input channels a multiple of the weights' input
  channels), as TFLite does. Bias is optional for every op here.
* Weights may be runtime tensors; constant weights are re-laid out once in ``prepare``.
* The declared output shape of the model must agree with the computed one (FULLY_CONNECTED
  accepts a declared shape with the same element count and reshapes to it).
* Fused activations follow TFLite's float kernels, which clamp with ``CalculateActivationRange``:
  RELU, RELU6 and RELU_N1_TO_1 clamp, a fused TANH (or SIGN_BIT) is a no-op. FULLY_CONNECTED
  refuses TANH/SIGN_BIT at prepare, as TFLite does.

Implementation
--------------
* CONV_2D: 1x1 stride-1 convolutions are one matmul on the input. Stride-1 convolutions copy,
  per chunk of output rows, the ``kw`` column shifts of the padded input side by side
  (``[rows, out_w, kw * cin]``) and accumulate one BLAS matmul per kernel row on contiguous row
  blocks of that buffer. Strided convolutions build a full im2col per chunk and do one matmul.
* DEPTHWISE_CONV_2D: the padded input is split into the stride's column phases so every tap is a
  stride-1 window of whole contiguous rows; all taps of a phase are one overlapping strided view
  and ``np.einsum`` accumulates them in a single fused multiply-add pass per tap against weights
  pre-tiled along the output width.
* TRANSPOSE_CONV: one matmul ``x @ W`` giving every tap's contribution, then col2im by strided
  adds (a pure re-layout when kernel == stride).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import blas
from ..errors import UnsupportedOpError
from ._common import EXPLICIT_PADDINGS, explicit_pads, FUSED_ACTIVATIONS, apply_activation, same_pads, valid_out
from .registry import OpContext, TensorInfo, register

log = logging.getLogger(__name__)

#: Bytes of im2col scratch processed per matmul chunk (keeps the scratch in L2).
_COL_CHUNK_BYTES = 2 << 20


_local = threading.local()


def _scratch(size: int, dtype: np.dtype) -> np.ndarray:
    """A per-thread reusable 1-D scratch buffer of at least ``size`` elements (no page faults)."""
    key = np.dtype(dtype).str
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    buf = bufs.get(key)
    if buf is None or buf.size < size:
        buf = bufs[key] = np.empty(size, dtype=dtype)
    return buf[:size]


# --------------------------------------------------------------------------------------------
# shared prepare helpers
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Geometry:
    """Spatial geometry of a 2-D window op: kernel, stride, dilation, pads and output size."""

    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pad_t: int
    pad_b: int
    pad_l: int
    pad_r: int
    out_h: int
    out_w: int


def work_dtype(ctx: OpContext, t: TensorInfo, what: str) -> np.dtype:
    """Floating dtype the kernel computes in for tensor ``t`` (float32 unless it is float64)."""
    dt = np.dtype(t.dtype)
    if dt.kind != "f":
        raise UnsupportedOpError(
            f"op #{ctx.index} {ctx.op_name}: {what} has dtype {dt.name}; the float kernel needs "
            "float tensors (dequantize first)")
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def _check_rank(ctx: OpContext, t: TensorInfo, rank: int, what: str) -> None:
    if len(t.shape) != rank:
        raise ctx.error(f"{what} must have rank {rank}, got shape {t.shape}")


def check_activation(ctx: OpContext, opt: Any) -> str:
    """The fused activation the kernel applies, as TFLite's float kernels do.

    TFLite's float conv/pool/fully-connected kernels clamp to ``CalculateActivationRange``, which
    knows only RELU, RELU6 and RELU_N1_TO_1: a fused TANH or SIGN_BIT is silently a no-op there,
    and so it is here.
    """
    act = getattr(opt, "fused_activation_function", "NONE")
    if act in ("TANH", "SIGN_BIT"):
        log.debug("op #%d %s: fused %s is ignored (as TFLite's float kernels do)", ctx.index,
                  ctx.op_name, act)
        return "NONE"
    if act not in FUSED_ACTIVATIONS:
        raise UnsupportedOpError(
            f"op #{ctx.index} {ctx.op_name}: unsupported fused activation {act!r}")
    return act


def _check_bias(ctx: OpContext, index: int, n_out: int) -> None:
    bias = ctx.input(index)
    if bias is None:
        return
    size = int(np.prod(bias.shape)) if bias.shape else 1
    if size != n_out:
        raise ctx.error(f"bias has {size} elements (shape {bias.shape}) but the op has "
                        f"{n_out} output channels")
    work_dtype(ctx, bias, "bias")


def check_output_shape(ctx: OpContext, shape: tuple[int, ...]) -> None:
    """The model's declared output shape must match what the op computes (unless unknown)."""
    declared = tuple(ctx.outputs[0].shape)
    if declared and declared != tuple(shape):
        raise ctx.error(f"output tensor is declared with shape {declared} but the op computes "
                        f"{tuple(shape)}")


def window_geometry(ctx: OpContext, opt: Any, in_hw: tuple[int, int], k_hw: tuple[int, int],
                    dilation: bool = True) -> Geometry:
    """Validate stride/dilation/padding options and compute pads and output size (conv rules)."""
    sh, sw = int(opt.stride_h), int(opt.stride_w)
    if sh <= 0 or sw <= 0:
        raise ctx.error(f"strides must be positive, got stride_h={sh}, stride_w={sw}")
    dh = int(getattr(opt, "dilation_h_factor", 1)) if dilation else 1
    dw = int(getattr(opt, "dilation_w_factor", 1)) if dilation else 1
    if dh <= 0 or dw <= 0:
        raise ctx.error(f"dilation factors must be positive, got dilation_h_factor={dh}, "
                        f"dilation_w_factor={dw}")
    kh, kw = k_hw
    if kh <= 0 or kw <= 0:
        raise ctx.error(f"kernel size must be positive, got {kh}x{kw}")
    h, w = in_hw
    mode = opt.padding
    if mode == "SAME":
        oh, pt, pb = same_pads(h, kh, sh, dh)
        ow, pl, pr = same_pads(w, kw, sw, dw)
    elif mode == "VALID":
        oh, ow = valid_out(h, kh, sh, dh), valid_out(w, kw, sw, dw)
        pt = pb = pl = pr = 0
    elif mode in EXPLICIT_PADDINGS:
        pt, pb, pl, pr = explicit_pads(ctx, opt)
        oh = max((h + pt + pb - ((kh - 1) * dh + 1)) // sh + 1, 0)
        ow = max((w + pl + pr - ((kw - 1) * dw + 1)) // sw + 1, 0)
    else:
        raise UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: unknown padding {mode!r}")
    if oh <= 0 or ow <= 0:
        raise ctx.error(f"output would be empty: input {h}x{w}, kernel {kh}x{kw}, strides "
                        f"{sh}x{sw}, dilation {dh}x{dw}, padding {mode}")
    return Geometry(kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, oh, ow)


def pad_nhwc(x: np.ndarray, t: int, b: int, l: int, r: int, value: float = 0.0) -> np.ndarray:
    """x padded spatially with ``value`` (a C-contiguous array; x itself when no pads)."""
    if t == b == l == r == 0:
        return np.ascontiguousarray(x)
    n, h, w, c = x.shape
    xp = np.empty((n, h + t + b, w + l + r, c), dtype=x.dtype)
    xp[:, :t] = value
    xp[:, t + h:] = value
    xp[:, t:t + h, :l] = value
    xp[:, t:t + h, l + w:] = value
    xp[:, t:t + h, l:l + w] = x
    return xp


def padded_phases(x: np.ndarray, t: int, b: int, l: int, r: int, sw: int, repeat: int = 1,
                  value: float = 0.0) -> list[np.ndarray]:
    """The padded input split into ``sw`` column phases: ``planes[p][:, y, i] = xpad[:, y, p + sw*i]``.

    With the phases, a window tap at padded column ``ox*sw + c`` is the stride-1 column
    ``ox + c // sw`` of plane ``c % sw``, so every tap view keeps whole rows contiguous. Each
    channel is repeated ``repeat`` times (depthwise multiplier). Pads must be >= 0.
    """
    n, h, w, c = x.shape
    hp, wp = h + t + b, w + l + r
    cout = c * repeat
    planes = []
    for px in range(sw):
        wq = max(0, -(-(wp - px) // sw))
        plane = np.empty((n, hp, wq, cout), dtype=x.dtype)
        i_lo = min(wq, max(0, -(-(l - px) // sw)))
        i_hi = max(i_lo, min(wq, -(-(l + w - px) // sw)))
        plane[:, :t] = value
        plane[:, t + h:] = value
        plane[:, t:t + h, :i_lo] = value
        plane[:, t:t + h, i_hi:] = value
        if i_hi > i_lo:
            src = x[:, :, px + sw * i_lo - l::sw][:, :, :i_hi - i_lo]
            dst = plane[:, t:t + h, i_lo:i_hi]
            if repeat == 1:
                dst[...] = src
            else:
                dst.reshape(n, h, i_hi - i_lo, c, repeat)[...] = src[..., None]
        planes.append(plane)
    return planes


def _finish(out: np.ndarray, bias: np.ndarray | None, act: str) -> np.ndarray:
    """out += bias (broadcast over the last axis), then the fused activation, in place."""
    if bias is not None:
        b = np.asarray(bias, dtype=out.dtype).reshape(-1)
        if out.ndim >= 3 and out.flags.c_contiguous:
            # add a bias row tiled over the second-to-last axis: one long contiguous run per row
            w = out.shape[-2]
            np.add(out.reshape(-1, w * b.size), np.tile(b, w), out=out.reshape(-1, w * b.size))
        else:
            np.add(out, b, out=out)
    return apply_activation(out, act)


# --------------------------------------------------------------------------------------------
# CONV_2D
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvParams:
    """Precomputed CONV_2D parameters."""

    geo: Geometry
    act: str
    groups: int
    dtype: np.dtype
    #: per group: weights as [kh, kw * cin_g, cout_g] (None when the weights are not constant)
    w_rows: tuple[np.ndarray, ...] | None
    #: set when every group has one input channel: the op is run as a depthwise convolution
    dw: DepthwiseParams | None = None


def _conv_weight_rows(w: np.ndarray, groups: int, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """OHWI weights -> per group [kh, kw * cin, cout_g] (im2col row layout)."""
    cout, kh, kw, cin = w.shape
    cog = cout // groups
    res = []
    for g in range(groups):
        wg = w[g * cog:(g + 1) * cog]
        # a strided view when the dtype already matches (BLAS takes the transposed layout as is),
        # so a model's weights are not held twice in memory
        res.append(np.asarray(wg, dtype=dtype).transpose(1, 2, 3, 0).reshape(kh, kw * cin, cog))
    return tuple(res)


def _conv_operands(ctx: OpContext) -> tuple[TensorInfo, TensorInfo, np.dtype]:
    """Checks shared by CONV_2D and DEPTHWISE_CONV_2D: 2-3 inputs, rank-4 input and weights; the work dtype."""
    ctx.require_inputs(2, 3)
    x, w = ctx.inputs[0], ctx.inputs[1]
    _check_rank(ctx, x, 4, "input")
    _check_rank(ctx, w, 4, "weights")
    dtype = work_dtype(ctx, x, "input")
    work_dtype(ctx, w, "weights")
    return x, w, dtype


def _prepare_conv(ctx: OpContext) -> ConvParams:
    x, w, dtype = _conv_operands(ctx)
    cout, kh, kw, cin_w = w.shape
    n, h, wd, cin = x.shape
    if cin_w <= 0 or cin % cin_w != 0:
        raise ctx.error(f"weights have {cin_w} input channels but input has {cin} "
                        "(must be equal, or divide it for a grouped convolution)")
    groups = cin // cin_w
    if cout % groups != 0:
        raise ctx.error(f"grouped convolution with {groups} groups needs output channels "
                        f"divisible by the groups, got {cout}")
    _check_bias(ctx, 2, cout)
    opt = ctx.options
    act = check_activation(ctx, opt)
    geo = window_geometry(ctx, opt, (h, wd), (kh, kw))
    check_output_shape(ctx, (n, geo.out_h, geo.out_w, cout))
    if groups > 1 and cin_w == 1:
        # one input channel per group == depthwise with multiplier cout / cin
        w_dw = None if w.data is None else w.data.transpose(3, 1, 2, 0)
        b = ctx.input(2)
        dw = _depthwise_params(geo, act, cout // cin, dtype, w_dw, None if b is None else b.data)
        return ConvParams(geo, act, groups, dtype, None, dw)
    if groups == 1 and w.data is not None and _is_diagonal(w.data):
        # output channel o reads input channel o alone (a depthwise convolution the vendor's converter
        # stores as a CONV_2D): run as one, without the other channels' zero products
        idx = np.arange(cout)
        b = ctx.input(2)
        w_dw = w.data[idx, :, :, idx].transpose(1, 2, 0).reshape(1, kh, kw, cout)
        dw = _depthwise_params(geo, act, 1, dtype, w_dw, None if b is None else b.data)
        return ConvParams(geo, act, groups, dtype, None, dw)
    w_rows = _conv_weight_rows(w.data, groups, dtype) if w.data is not None else None
    return ConvParams(geo, act, groups, dtype, w_rows)


def _is_diagonal(w: np.ndarray) -> bool:
    """Whether OHWI weights with O == I > 1 are zero off the diagonal (``w[o, :, :, i] == 0`` for ``i != o``)."""
    cout, _, _, cin = w.shape
    if cout != cin or cout < 2:
        return False
    idx = np.arange(cout)
    diag = w[idx, :, :, idx]  # [cout, kh, kw]
    return int(np.count_nonzero(w)) == int(np.count_nonzero(diag))


def _conv_core(x: np.ndarray, w_rows: np.ndarray, geo: Geometry, out: np.ndarray) -> None:
    """out[n, oy, ox, :] = sum_{ky,kx,c} xpad[n, oy*sh+ky*dh, ox*sw+kx*dw, c] * W[ky, kx*cin+c, :].

    ``x`` is the unpadded NHWC input; ``out`` a C-contiguous [n, oh, ow, cout] buffer.
    """
    g = geo
    n, h, w, cin = x.shape
    kh, kwc, cout = w_rows.shape
    oh, ow = g.out_h, g.out_w
    if g.kh == 1 and g.kw == 1 and g.pad_t == g.pad_b == g.pad_l == g.pad_r == 0:
        # 1x1: a single matmul on the (strided) input pixels.
        xs = x[:, :(oh - 1) * g.sh + 1:g.sh, :(ow - 1) * g.sw + 1:g.sw]
        xs = np.ascontiguousarray(xs).reshape(-1, cin)
        blas.matmul(xs, w_rows[0], out=out.reshape(-1, cout))
        return
    xp = pad_nhwc(x, g.pad_t, g.pad_b, g.pad_l, g.pad_r)
    _, hp, wp, _ = xp.shape
    e = xp.itemsize
    sy, sx = wp * cin * e, cin * e          # byte strides of a padded row / pixel
    if g.sh == 1:
        # kx-im2col: cols[y, ox, kx*cin + c] = xp[y, ox*sw + kx*dw, c] for the rows a chunk of
        # output rows needs; then one matmul per kernel row ky on a contiguous row block.
        rows_budget = max(1, _COL_CHUNK_BYTES // max(1, ow * kwc * e))
        r = max(1, min(oh, rows_budget - (g.kh - 1) * g.dh))
        span = (g.kh - 1) * g.dh
        cols = np.empty((r + span, ow, g.kw, cin), dtype=xp.dtype)
        tmp = np.empty((r * ow, cout), dtype=out.dtype) if g.kh > 1 else None
        for b in range(n):
            xb = xp[b]
            for r0 in range(0, oh, r):
                nr = min(r, oh - r0)
                src = as_strided(xb[r0:], shape=(nr + span, ow, g.kw, cin),
                                 strides=(sy, g.sw * sx, g.dw * sx, e), writeable=False)
                cb = cols[:nr + span]
                np.copyto(cb, src)
                cf = cb.reshape((nr + span) * ow, kwc)
                o = out[b, r0:r0 + nr].reshape(nr * ow, cout)
                blas.matmul(cf[:nr * ow], w_rows[0], out=o)
                for ky in range(1, g.kh):
                    s = ky * g.dh * ow
                    t = tmp[:nr * ow]
                    blas.matmul(cf[s:s + nr * ow], w_rows[ky], out=t)
                    np.add(o, t, out=o)
        return
    # strided: full im2col per chunk of output rows, one matmul per chunk.
    wm = w_rows.reshape(g.kh * kwc, cout)
    row_bytes = ow * g.kh * kwc * e
    r = max(1, min(oh, _COL_CHUNK_BYTES // max(1, row_bytes)))
    cols = np.empty((r, ow, g.kh, g.kw, cin), dtype=xp.dtype)
    for b in range(n):
        xb = xp[b]
        for r0 in range(0, oh, r):
            nr = min(r, oh - r0)
            src = as_strided(xb[r0 * g.sh:], shape=(nr, ow, g.kh, g.kw, cin),
                             strides=(g.sh * sy, g.sw * sx, g.dh * sy, g.dw * sx, e),
                             writeable=False)
            cb = cols[:nr]
            np.copyto(cb, src)
            blas.matmul(cb.reshape(nr * ow, -1), wm, out=out[b, r0:r0 + nr].reshape(nr * ow, cout))


@register("CONV_2D", prepare=_prepare_conv)
def conv_2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None, *,
            opt: ConvParams) -> np.ndarray:
    """y[n,oy,ox,o] = act(sum_{ky,kx,c} xpad[n, oy*sh+ky*dh, ox*sw+kx*dw, g(o)*cin_g+c] * w[o,ky,kx,c] + b[o])."""
    if opt.dw is not None:
        return depthwise_conv_2d(x, w.transpose(3, 1, 2, 0), bias, opt=opt.dw)
    g = opt.geo
    dt = opt.dtype
    x = x.astype(dt, copy=False)
    w_rows = opt.w_rows if opt.w_rows is not None else _conv_weight_rows(w, opt.groups, dt)
    n = x.shape[0]
    cout = sum(wr.shape[2] for wr in w_rows)
    if opt.groups == 1:
        out = np.empty((n, g.out_h, g.out_w, cout), dtype=dt)
        _conv_core(x, w_rows[0], g, out)
    else:
        out = np.empty((n, g.out_h, g.out_w, cout), dtype=dt)
        cin_g = x.shape[3] // opt.groups
        cog = cout // opt.groups
        part = np.empty((n, g.out_h, g.out_w, cog), dtype=dt)
        for gi, wr in enumerate(w_rows):
            _conv_core(x[..., gi * cin_g:(gi + 1) * cin_g], wr, g, part)
            out[..., gi * cog:(gi + 1) * cog] = part
    return _finish(out, bias, opt.act)


# --------------------------------------------------------------------------------------------
# DEPTHWISE_CONV_2D
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DepthwiseParams:
    """Precomputed DEPTHWISE_CONV_2D parameters."""

    geo: Geometry
    act: str
    multiplier: int
    dtype: np.dtype
    #: per column phase of the stride: (phase, first column q0, column step dq, kx indices)
    phases: tuple[tuple[int, int, int, tuple[int, ...]], ...]
    #: per phase: its taps' weights tiled along the output width, [kh, n_kx, out_w * cout]
    #: (None when the weights are not constant)
    w_tiled: tuple[np.ndarray, ...] | None
    #: bias tiled along the output width: [out_w * cout] (None if absent or not constant)
    b_tiled: np.ndarray | None


def _depthwise_phases(geo: Geometry) -> tuple[tuple[int, int, int, tuple[int, ...]], ...]:
    """Group the kernel columns by the stride phase they read (see ``padded_phases``).

    Kernel column kx reads padded column ``ox*sw + kx*dw`` = column ``ox + (kx*dw)//sw`` of phase
    ``(kx*dw) % sw``; the columns of one phase are an arithmetic progression in that plane.
    """
    res = []
    for px in range(geo.sw):
        kxs = tuple(kx for kx in range(geo.kw) if (kx * geo.dw) % geo.sw == px)
        if kxs:
            qs = [(kx * geo.dw) // geo.sw for kx in kxs]
            res.append((px, qs[0], qs[1] - qs[0] if len(qs) > 1 else 1, kxs))
    return tuple(res)


def _depthwise_tiled(w: np.ndarray, geo: Geometry, phases, dtype: np.dtype
                     ) -> tuple[np.ndarray, ...]:
    """[1, kh, kw, cout] -> per phase [kh, n_kx, out_w * cout]: a weight row per output row."""
    _, kh, kw, cout = w.shape
    w = np.asarray(w, dtype=dtype).reshape(kh, kw, 1, cout)
    res = []
    for _, _, _, kxs in phases:
        wt = np.broadcast_to(w[:, list(kxs)], (kh, len(kxs), geo.out_w, cout))
        res.append(np.ascontiguousarray(wt).reshape(kh, len(kxs), geo.out_w * cout))
    return tuple(res)


def _prepare_depthwise(ctx: OpContext) -> DepthwiseParams:
    x, w, dtype = _conv_operands(ctx)
    one, kh, kw, cout = w.shape
    n, h, wd, cin = x.shape
    if one != 1:
        raise ctx.error(f"depthwise weights must have shape [1, kh, kw, channels], got {w.shape}")
    if cin <= 0 or cout % cin != 0:
        raise ctx.error(f"weights have {cout} channels, not a multiple of the input's {cin} "
                        "channels")
    mult = cout // cin
    opt = ctx.options
    dm_opt = int(getattr(opt, "depth_multiplier", 0) or 0)
    if dm_opt not in (0, mult):
        log.debug("op #%d DEPTHWISE_CONV_2D: depth_multiplier option %d ignored, shapes give %d",
                  ctx.index, dm_opt, mult)
    _check_bias(ctx, 2, cout)
    act = check_activation(ctx, opt)
    geo = window_geometry(ctx, opt, (h, wd), (kh, kw))
    check_output_shape(ctx, (n, geo.out_h, geo.out_w, cout))
    bias = ctx.input(2)
    return _depthwise_params(geo, act, mult, dtype, w.data, None if bias is None else bias.data)


def _depthwise_params(geo: Geometry, act: str, mult: int, dtype: np.dtype,
                      w: np.ndarray | None, b: np.ndarray | None) -> DepthwiseParams:
    """DepthwiseParams with the constant weights / bias (when given) tiled along the width."""
    phases = _depthwise_phases(geo)
    wt = _depthwise_tiled(w, geo, phases, dtype) if w is not None else None
    bt = _tile_bias(b, geo.out_w, dtype) if b is not None else None
    return DepthwiseParams(geo, act, mult, dtype, phases, wt, bt)


def _tile_bias(b: np.ndarray, out_w: int, dtype: np.dtype) -> np.ndarray:
    """bias [cout] -> [out_w * cout], so adding it to an output row is one contiguous run."""
    b = np.asarray(b, dtype=dtype).reshape(-1)
    return np.tile(b, out_w)


@register("DEPTHWISE_CONV_2D", prepare=_prepare_depthwise)
def depthwise_conv_2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None, *,
                      opt: DepthwiseParams) -> np.ndarray:
    """y[n,oy,ox,c*m+j] = act(sum_{ky,kx} xpad[n, oy*sh+ky*dh, ox*sw+kx*dw, c] * w[0,ky,kx,c*m+j] + b[c*m+j])."""
    g = opt.geo
    dt = opt.dtype
    x = x.astype(dt, copy=False)
    n, h, wd, cin = x.shape
    m = opt.multiplier
    cout = cin * m
    oh, ow = g.out_h, g.out_w
    wt = opt.w_tiled if opt.w_tiled is not None else _depthwise_tiled(w, g, opt.phases, dt)
    # padded input (channels repeated `m` times) split into column phases of the stride
    if g.sw == 1 and m == 1:
        planes = [pad_nhwc(x, g.pad_t, g.pad_b, g.pad_l, g.pad_r)]
    else:
        planes = padded_phases(x, g.pad_t, g.pad_b, g.pad_l, g.pad_r, g.sw, m)
    out = np.empty((n, oh, ow, cout), dtype=dt)
    o = out.reshape(n, oh, ow * cout)
    row = ow * cout
    for i, (px, q0, dq, kxs) in enumerate(opt.phases):
        plane = planes[px]
        _, _, _, c = plane.shape
        sn, sy, sx, e = plane.strides
        # taps[b, ky, j, oy, :] = plane[b, oy*sh + ky*dh, q0 + j*dq : q0 + j*dq + ow, :] (flattened)
        taps = as_strided(plane[:, :, q0:], shape=(n, g.kh, len(kxs), oh, row),
                          strides=(sn, g.dh * sy, dq * sx, g.sh * sy, e), writeable=False)
        # one fused multiply-accumulate pass per tap over whole contiguous output rows
        if i == 0:
            np.einsum("nabrl,abl->nrl", taps, wt[i], out=o)
        else:
            tmp = _scratch(o.size, dt).reshape(o.shape)
            np.einsum("nabrl,abl->nrl", taps, wt[i], out=tmp)
            np.add(o, tmp, out=o)
    bt = opt.b_tiled
    if bt is None and bias is not None:
        bt = _tile_bias(bias, ow, dt)
    if bt is not None:
        np.add(o, bt, out=o)
    apply_activation(out, opt.act)
    return out


# --------------------------------------------------------------------------------------------
# TRANSPOSE_CONV
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TransposeConvParams:
    """Precomputed TRANSPOSE_CONV parameters."""

    out_shape: tuple[int, int, int, int]
    kh: int
    kw: int
    sh: int
    sw: int
    pad_t: int
    pad_l: int
    act: str
    dtype: np.dtype
    #: weights as [cin, kh * kw * cout] (None when not constant)
    w_mat: np.ndarray | None


def _tconv_weight_matrix(w: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """OHWI [cout, kh, kw, cin] -> [cin, kh * kw * cout]."""
    cout, kh, kw, cin = w.shape
    return np.ascontiguousarray(w.transpose(3, 1, 2, 0).reshape(cin, kh * kw * cout), dtype=dtype)


def _prepare_transpose_conv(ctx: OpContext) -> TransposeConvParams:
    ctx.require_inputs(3, 4)
    shape_t, w, x = ctx.inputs[0], ctx.inputs[1], ctx.inputs[2]
    _check_rank(ctx, x, 4, "input")
    _check_rank(ctx, w, 4, "weights")
    dtype = work_dtype(ctx, x, "input")
    work_dtype(ctx, w, "weights")
    if len(shape_t.shape) != 1 or shape_t.shape[0] != 4:
        raise ctx.error(f"output_shape (input 0) must be a vector of 4 elements, got shape "
                        f"{shape_t.shape}")
    declared = tuple(int(d) for d in ctx.outputs[0].shape)
    if shape_t.data is not None:
        out_shape = tuple(int(d) for d in np.asarray(shape_t.data).reshape(-1))
        if declared and declared != out_shape:
            raise ctx.error(f"output_shape input is {out_shape} but the output tensor is "
                            f"declared {declared}")
    else:
        if len(declared) != 4:
            raise ctx.error(f"output_shape is not constant and the output tensor has no 4-D "
                            f"shape (got {declared})")
        out_shape = declared
    n, h, wd, cin = x.shape
    cout, kh, kw, cin_w = w.shape
    if cin_w != cin:
        raise ctx.error(f"weights have {cin_w} input channels but input has {cin}")
    if out_shape[0] != n or out_shape[3] != cout:
        raise ctx.error(f"output shape {out_shape} does not match batch {n} / weights' "
                        f"{cout} output channels")
    if min(out_shape) <= 0:
        raise ctx.error(f"output shape {out_shape} has a non-positive dimension")
    _check_bias(ctx, 3, cout)
    opt = ctx.options
    sh, sw = int(opt.stride_h), int(opt.stride_w)
    if sh <= 0 or sw <= 0:
        raise ctx.error(f"strides must be positive, got stride_h={sh}, stride_w={sw}")
    act = check_activation(ctx, opt)
    oh, ow = out_shape[1], out_shape[2]
    mode = opt.padding
    if mode == "SAME" or mode == "VALID":
        def before(size: int, k: int, s: int) -> int:
            # TFLite: padding computed as for a conv from the output size to the input size.
            o = (size + s - 1) // s if mode == "SAME" else (size + s - k) // s
            return max((o - 1) * s + k - size, 0) // 2
        pt, pl = before(oh, kh, sh), before(ow, kw, sw)
    elif mode in EXPLICIT_PADDINGS:
        pt, pl = int(opt.padding_top), int(opt.padding_left)
        if min(pt, pl, int(opt.padding_bottom), int(opt.padding_right)) < 0:
            raise ctx.error("negative explicit pads (top={}, bottom={}, left={}, right={})".format(
                opt.padding_top, opt.padding_bottom, opt.padding_left, opt.padding_right))
    else:
        raise UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: unknown padding {mode!r}")
    w_mat = _tconv_weight_matrix(w.data, dtype) if w.data is not None else None
    return TransposeConvParams(out_shape, kh, kw, sh, sw, pt, pl, act, dtype, w_mat)


@register("TRANSPOSE_CONV", prepare=_prepare_transpose_conv)
def transpose_conv(output_shape: np.ndarray, w: np.ndarray, x: np.ndarray,
                   bias: np.ndarray | None = None, *, opt: TransposeConvParams) -> np.ndarray:
    """y[n, iy*sh+ky-pt, ix*sw+kx-pl, o] += x[n,iy,ix,c] * w[o,ky,kx,c]; then + b[o], act."""
    dt = opt.dtype
    x = np.ascontiguousarray(x, dtype=dt)
    n, h, wd, cin = x.shape
    _, oh, ow, cout = opt.out_shape
    kh, kw, sh, sw = opt.kh, opt.kw, opt.sh, opt.sw
    w_mat = opt.w_mat if opt.w_mat is not None else _tconv_weight_matrix(w, dt)
    col = blas.matmul(x.reshape(-1, cin), w_mat).reshape(n, h, wd, kh, kw, cout)
    pt, pl = opt.pad_t, opt.pad_l
    full_h = max((h - 1) * sh + kh, pt + oh)
    full_w = max((wd - 1) * sw + kw, pl + ow)
    span_h, span_w = (h - 1) * sh + 1, (wd - 1) * sw + 1
    if kh == sh and kw == sw and full_h == h * sh and full_w == wd * sw:
        # non-overlapping taps tiling the canvas exactly: a pure re-layout
        canvas = col.transpose(0, 1, 3, 2, 4, 5).reshape(n, full_h, full_w, cout)
    else:
        canvas = np.zeros((n, full_h, full_w, cout), dtype=dt)
        for ky in range(kh):
            for kx in range(kw):
                v = canvas[:, ky:ky + span_h:sh, kx:kx + span_w:sw]
                np.add(v, col[:, :, :, ky, kx], out=v)
    out = np.ascontiguousarray(canvas[:, pt:pt + oh, pl:pl + ow])
    return _finish(out, bias, opt.act)


# --------------------------------------------------------------------------------------------
# FULLY_CONNECTED
# --------------------------------------------------------------------------------------------

#: FULLY_CONNECTED with at most this many products per call sums them sequentially (TFLite's order).
_FC_SEQUENTIAL_MAX = 1 << 20


@dataclass(frozen=True)
class FullyConnectedParams:
    """Precomputed FULLY_CONNECTED parameters."""

    in_features: int
    out_shape: tuple[int, ...]
    act: str
    dtype: np.dtype
    #: weights transposed to [in, out] (None when not constant)
    w_t: np.ndarray | None


def _prepare_fully_connected(ctx: OpContext) -> FullyConnectedParams:
    ctx.require_inputs(2, 3)
    x, w = ctx.inputs[0], ctx.inputs[1]
    opt = ctx.options
    fmt = getattr(opt, "weights_format", "DEFAULT")
    if fmt != "DEFAULT":
        raise UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: weights_format {fmt!r} is not "
                                 "supported (only DEFAULT)")
    if len(ctx.outputs) != 1:
        raise ctx.error(f"has {len(ctx.outputs)} outputs, expected 1")
    _check_rank(ctx, w, 2, "weights")
    dtype = work_dtype(ctx, x, "input")
    work_dtype(ctx, w, "weights")
    units, in_features = w.shape
    size = int(np.prod(x.shape)) if x.shape else 1
    if in_features <= 0 or size % in_features != 0:
        raise ctx.error(f"weights have {in_features} input features, which does not divide the "
                        f"input's {size} elements (shape {x.shape})")
    if opt is not None and getattr(opt, "keep_num_dims", False):
        if not x.shape or x.shape[-1] != in_features:
            raise ctx.error(f"keep_num_dims needs the input's last dimension to equal the "
                            f"weights' {in_features} input features, got input shape {x.shape}")
        shape = tuple(x.shape[:-1]) + (units,)
    else:
        shape = (size // in_features, units)
    declared = tuple(ctx.outputs[0].shape)
    if declared and declared != shape:
        if int(np.prod(declared)) != int(np.prod(shape)):
            raise ctx.error(f"output tensor is declared with shape {declared} but the op "
                            f"computes {shape}")
        log.debug("op #%d FULLY_CONNECTED: output reshaped from %s to the declared %s",
                  ctx.index, shape, declared)
        shape = declared
    _check_bias(ctx, 2, units)
    raw_act = getattr(opt, "fused_activation_function", "NONE")
    if raw_act not in ("NONE", "RELU", "RELU_N1_TO_1", "RELU6"):
        # TFLite's float FULLY_CONNECTED refuses these in Prepare as well
        raise UnsupportedOpError(f"op #{ctx.index} {ctx.op_name}: fused activation {raw_act!r} "
                                 "is not supported (only NONE, RELU, RELU_N1_TO_1, RELU6)")
    act = check_activation(ctx, opt)
    w_t = np.ascontiguousarray(w.data.T, dtype=dtype) if w.data is not None else None
    return FullyConnectedParams(in_features, shape, act, dtype, w_t)


@register("FULLY_CONNECTED", prepare=_prepare_fully_connected)
def fully_connected(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None, *,
                    opt: FullyConnectedParams) -> np.ndarray:
    """y = act(reshape(x, [-1, in]) @ w.T + b), shaped [batch, out] or x.shape[:-1] + [out]."""
    dt = opt.dtype
    w_t = opt.w_t if opt.w_t is not None else np.asarray(w, dtype=dt).T
    x2 = x.astype(dt, copy=False).reshape(-1, opt.in_features)
    if dt == np.float32 and x2.shape[0] * w_t.size <= _FC_SEQUENTIAL_MAX:
        # Small layers (the heads of vision nets) sum the float32 products in input order, as TFLite's
        # reference kernel does: their outputs are often small sums of large products, where a
        # different summation order alone moves the result by more than 1e-4 of its range.
        products = x2[:, :, None] * w_t[None, :, :]
        out = np.add.accumulate(products, axis=1)[:, -1, :]
    else:
        out = blas.matmul(x2, w_t)
    return _finish(out, bias, opt.act).reshape(opt.out_shape)


# --------------------------------------------------------------------------------------------
# BATCH_MATMUL
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchMatMulParams:
    """Precomputed BATCH_MATMUL parameters."""

    adj_x: bool
    adj_y: bool
    dtype: np.dtype
    #: the constant rhs, already adjointed when adj_y (None when not constant)
    y_ready: np.ndarray | None


def _prepare_batch_matmul(ctx: OpContext) -> BatchMatMulParams:
    ctx.require_inputs(2)
    x, y = ctx.inputs[0], ctx.inputs[1]
    opt = ctx.options
    adj_x = bool(getattr(opt, "adj_x", False))
    adj_y = bool(getattr(opt, "adj_y", False))
    if len(x.shape) < 2 or len(y.shape) < 2:
        raise ctx.error(f"operands must have rank >= 2, got shapes {x.shape} and {y.shape}")
    dtype = work_dtype(ctx, x, "lhs")
    work_dtype(ctx, y, "rhs")
    m, kx = (x.shape[-1], x.shape[-2]) if adj_x else (x.shape[-2], x.shape[-1])
    ky, nn = (y.shape[-1], y.shape[-2]) if adj_y else (y.shape[-2], y.shape[-1])
    if kx != ky:
        raise ctx.error(f"contraction sizes differ: lhs {x.shape} (adj_x={adj_x}) gives {kx}, "
                        f"rhs {y.shape} (adj_y={adj_y}) gives {ky}")
    try:
        batch = np.broadcast_shapes(tuple(x.shape[:-2]), tuple(y.shape[:-2]))
    except ValueError:
        raise ctx.error(f"batch dimensions {x.shape[:-2]} and {y.shape[:-2]} do not "
                        "broadcast") from None
    check_output_shape(ctx, tuple(batch) + (m, nn))
    y_ready = None
    if y.data is not None:
        yd = np.asarray(y.data, dtype=dtype)
        y_ready = np.ascontiguousarray(np.swapaxes(yd, -1, -2) if adj_y else yd)
    return BatchMatMulParams(adj_x, adj_y, dtype, y_ready)


@register("BATCH_MATMUL", prepare=_prepare_batch_matmul)
def batch_matmul(x: np.ndarray, y: np.ndarray, *, opt: BatchMatMulParams) -> np.ndarray:
    """out[..., i, j] = sum_k X[..., i, k] * Y[..., k, j]; X = adj_x ? x^T : x, Y likewise; batch broadcast."""
    dt = opt.dtype
    a = x.astype(dt, copy=False)
    if opt.adj_x:
        a = np.swapaxes(a, -1, -2)
    if opt.y_ready is not None:
        b = opt.y_ready
    else:
        b = y.astype(dt, copy=False)
        if opt.adj_y:
            b = np.swapaxes(b, -1, -2)
    return blas.matmul(a, b)
