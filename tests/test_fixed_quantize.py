"""Tests of the quantize-family integer kernels, the boundary ops (calibrator_custom/fixed/kernels/quantize.py).

QUANTIZE, DEQUANTIZE and Fix2Float are checked against numpy formulas (the fixedrunner harness
compares with a float op whose output is integer for QUANTIZE and which rejects float inputs for
DEQUANTIZE, so it does not apply). InputNormalize is fed ``convert_to_input_formats`` output for every
(input_formats, training_input_formats) pair the vendor allows, with alignment padding, odd sizes,
batches and NCHW, and compared with the float normalisation of the same pixels.
"""
from __future__ import annotations

import numpy as np
import pytest
from flatbuffers import flexbuffers
from hypothesis import given
from hypothesis import strategies as st

from calibrator_custom import utils
from calibrator_custom.config import ALLOWED_INPUT_FORMATS, InputSpec
from calibrator_custom.errors import ConfigError, ModelError, UnsupportedOpError
from calibrator_custom.fixed.kernels import quantize as bd
from calibrator_custom.fixed.registry import get_fixed_op
from calibrator_custom.ops.registry import OpContext, TensorInfo, get_op
from fixedrunner import NP, QArr, QOut, assert_integer_params, run_fixed, symmetric_out

F32 = np.dtype(np.float32)
HALF_LSB = 0.5 * (1 + 1e-9)
REQUANT_LSB = 0.5 + 2.0 ** -12


# ----------------------------------------------------------------------------------------- helpers
def tinfo(name: str, shape, dtype, scale=None, zero_point=0, axis: int = 0, data=None) -> TensorInfo:
    """A TensorInfo with an optional (per-tensor or per-channel) quantization."""
    q = None
    if scale is not None:
        q = QArr(np.zeros(1, np.dtype(dtype)), scale, zero_point, axis).quantization()
    return TensorInfo(name, tuple(shape), np.dtype(dtype), data, q)


def run(op: str, inputs: list[tuple[TensorInfo, np.ndarray]], outputs: list[TensorInfo], options=None):
    """Prepare and run the fixed kernel of ``op``; returns (outputs as a list, params)."""
    opdef = get_fixed_op(op)
    ctx = OpContext(0, op, tuple(t for t, _ in inputs), tuple(outputs), options)
    params = opdef.prepare(ctx)
    r = opdef.kernel(*(x for _, x in inputs), opt=params)
    return (list(r) if isinstance(r, (tuple, list)) else [r]), params


def prepare(op: str, inputs: list[TensorInfo], outputs: list[TensorInfo], options=None):
    opdef = get_fixed_op(op)
    return opdef.prepare(OpContext(0, op, tuple(inputs), tuple(outputs), options))


def bshape(scale, ndim: int, axis: int) -> np.ndarray:
    s = np.asarray(scale, np.float64)
    if s.ndim == 0 or s.size == 1:
        return s.reshape(())
    shape = [1] * ndim
    shape[axis] = s.size
    return s.reshape(shape)


def round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def f32(values) -> np.ndarray:
    """Scales as a model stores them (float32 values)."""
    return np.asarray(values, np.float32).astype(np.float64)


# ----------------------------------------------------------------------------------------- QUANTIZE: float input
@pytest.mark.parametrize("dtype,zp", [("UINT8", 100), ("INT8", -5), ("INT16", 0)])
def test_quantize_float_per_tensor(dtype, zp):
    rng = np.random.default_rng(1)
    scale = float(f32(0.0173))
    lo, hi = np.iinfo(NP[dtype]).min, np.iinfo(NP[dtype]).max
    x = rng.uniform((lo - zp - 20) * scale, (hi - zp + 20) * scale, (2, 3, 40)).astype(np.float32)
    x[0, 0, :2] = (lo - zp - 1) * scale, (hi - zp + 1) * scale
    (q,), params = run("QUANTIZE", [(tinfo("x", x.shape, F32), x)], [tinfo("y", x.shape, NP[dtype], scale, zp)])
    assert q.shape == x.shape and q.dtype == NP[dtype]
    r = (x / np.float32(scale)).astype(np.float64)
    want = np.clip(round_half_away(r) + zp, lo, hi)
    np.testing.assert_array_equal(q, want)
    assert q.min() == lo and q.max() == hi  # both range ends saturate


def test_quantize_float_rounds_half_away_from_zero():
    x = np.array([0.25, -0.25, 0.75, -0.75, 1.25, -1.25, 0.0], np.float32)  # x / 0.5 = +-0.5, +-1.5, +-2.5, 0
    (q,), _ = run("QUANTIZE", [(tinfo("x", x.shape, F32), x)], [tinfo("y", x.shape, np.int16, 0.5, 0)])
    np.testing.assert_array_equal(q, [1, -1, 2, -2, 3, -3, 0])


@pytest.mark.parametrize("axis", [1, 3])
def test_quantize_float_per_channel(axis):
    rng = np.random.default_rng(2)
    shape = (2, 3, 4, 5)
    scale = f32(rng.uniform(0.01, 0.1, shape[axis]))
    x = rng.uniform(-500, 500, shape).astype(np.float32)
    (q,), _ = run("QUANTIZE", [(tinfo("x", shape, F32), x)], [tinfo("y", shape, np.int16, scale, 0, axis)])
    assert q.shape == shape and q.dtype == np.int16
    r = (x / bshape(scale, 4, axis).astype(np.float32)).astype(np.float64)
    np.testing.assert_array_equal(q, np.clip(round_half_away(r), -32768, 32767))


# ----------------------------------------------------------------------------------------- QUANTIZE: requantize
def check_requantize(q_in: np.ndarray, in_scale, in_zp, out_dtype: str, out_scale, out_zp, in_axis=0, out_axis=0):
    """Run integer QUANTIZE through fixedrunner.run_fixed (integer params) and check the error bound."""
    src = QArr(q_in, in_scale, in_zp, in_axis)
    o = QOut(out_dtype, out_scale, out_zp, out_axis)
    (q,) = run_fixed("QUANTIZE", [src], [o], [q_in.shape])
    assert q.shape == q_in.shape and q.dtype == NP[out_dtype]
    nd = q_in.ndim
    real = (q_in.astype(np.float64) - bshape(in_zp, nd, in_axis)) * bshape(in_scale, nd, in_axis)
    ideal = real / bshape(out_scale, nd, out_axis) + bshape(out_zp, nd, out_axis)
    lo, hi = np.iinfo(q.dtype).min, np.iinfo(q.dtype).max
    err = np.abs(q.astype(np.float64) - np.clip(ideal, lo, hi))
    assert err.max() <= REQUANT_LSB, f"worst {err.max()} LSB"
    return q, ideal


@pytest.mark.parametrize("in_dtype,in_zp,out_dtype,out_zp,ratio", [
    ("UINT8", 128, "INT16", 0, 300.0),        # large ratio: uint8 into int16
    ("INT16", 0, "UINT8", 37, 1 / 700.0),     # small ratio
    ("INT16", 0, "INT16", 0, 0.8123),
    ("INT16", 0, "INT8", -3, 1 / 129.7),
    ("INT8", 4, "UINT8", 128, 1.0),           # same scale, zero points differ
    ("INT32", 0, "INT16", 0, 1 / 65536.3),    # int32 input
    ("INT32", 0, "UINT8", 10, 3e-9),
    ("UINT8", 0, "UINT8", 255, 0.99),         # saturation at the low end
])
def test_requantize_per_tensor(in_dtype, in_zp, out_dtype, out_zp, ratio):
    rng = np.random.default_rng(3)
    info = np.iinfo(NP[in_dtype])
    q_in = rng.integers(info.min, info.max, (4, 300), endpoint=True).astype(NP[in_dtype])
    q_in[0, :2] = info.min, info.max
    in_scale = float(f32(0.01))
    out_scale = float(f32(in_scale / ratio))
    q, ideal = check_requantize(q_in, in_scale, in_zp, out_dtype, out_scale, out_zp)
    lo, hi = np.iinfo(q.dtype).min, np.iinfo(q.dtype).max
    if ideal.min() < lo:
        assert q.min() == lo
    if ideal.max() > hi:
        assert q.max() == hi


@pytest.mark.parametrize("ratio", [0.5, 0.25, 2.0, 1 / 1024])
def test_requantize_exact_ratio_rounds_half_up(ratio):
    q_in = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)
    (q,) = run_fixed("QUANTIZE", [QArr(q_in, 1.0, 0)], [QOut("INT16", 1.0 / ratio, 3)], [q_in.shape])
    want = np.clip(np.floor(q_in.astype(np.float64) * ratio + 0.5) + 3, -32768, 32767)
    np.testing.assert_array_equal(q, want)


def test_requantize_per_channel_in_and_out_on_different_axes():
    rng = np.random.default_rng(4)
    q_in = rng.integers(-32768, 32767, (3, 4, 5), endpoint=True).astype(np.int16)
    in_scale = f32(rng.uniform(1e-4, 1e-3, 3))
    out_scale = f32(rng.uniform(1e-2, 2e-2, 5))
    check_requantize(q_in, in_scale, 0, "UINT8", out_scale, np.arange(100, 105), in_axis=0, out_axis=2)
    check_requantize(q_in, in_scale, 0, "INT16", f32(1e-3), 0, in_axis=0)


def test_requantize_identity_keeps_values():
    q_in = np.arange(-128, 128, dtype=np.int64).astype(np.int8).reshape(16, 16)
    (q,) = run_fixed("QUANTIZE", [QArr(q_in, 0.05, 2)], [QOut("INT8", 0.05, 2)], [q_in.shape])
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q, q_in)


@given(st.floats(1e-5, 1e2), st.floats(1e-5, 1e2), st.integers(-300, 300), st.integers(0, 255),
       st.sampled_from([("INT16", "UINT8"), ("UINT8", "INT16"), ("INT8", "INT16"), ("INT32", "INT8")]))
def test_requantize_bound_property(in_scale, out_scale, in_zp, out_zp, dtypes):
    in_dtype, out_dtype = dtypes
    info = np.iinfo(NP[in_dtype])
    in_zp = int(np.clip(in_zp, info.min, info.max))
    out_info = np.iinfo(NP[out_dtype])
    out_zp = int(np.clip(out_zp - (128 if out_info.min < 0 else 0), out_info.min, out_info.max))
    rng = np.random.default_rng(5)
    q_in = np.concatenate([rng.integers(info.min, info.max, 200, endpoint=True),
                           [info.min, info.max, in_zp]]).astype(NP[in_dtype])
    check_requantize(q_in, float(f32(in_scale)), in_zp, out_dtype, float(f32(out_scale)), out_zp)


def test_quantize_errors():
    x = tinfo("x", (4,), np.int16, 1.0)
    with pytest.raises(UnsupportedOpError, match="scale ratio in/out = .* too large"):
        prepare("QUANTIZE", [x], [tinfo("y", (4,), np.int16, 1e-10)])
    with pytest.raises(ModelError, match="QUANTIZE writes uint8, int8, int16"):
        prepare("QUANTIZE", [x], [tinfo("y", (4,), np.int32, 1.0)])
    with pytest.raises(ModelError, match="has no quantization scale"):
        prepare("QUANTIZE", [tinfo("x", (4,), np.int16)], [tinfo("y", (4,), np.int16, 1.0)])
    with pytest.raises(ModelError, match="per-channel scales do not fit dimension 1"):
        prepare("QUANTIZE", [x], [tinfo("y", (4,), np.int16, [1.0, 2.0], 0, axis=1)])
    with pytest.raises(ModelError, match="QUANTIZE takes float32 or"):
        prepare("QUANTIZE", [tinfo("x", (4,), np.float64)], [tinfo("y", (4,), np.int16, 1.0)])


# ----------------------------------------------------------------------------------------- DEQUANTIZE / Fix2Float
@pytest.mark.parametrize("op", ["DEQUANTIZE", "Fix2Float"])
@pytest.mark.parametrize("dtype,zp", [(np.uint8, 128), (np.int8, -3), (np.int16, 0), (np.int32, 7)])
@pytest.mark.parametrize("axis", [None, 0, 3])
def test_dequantize(op, dtype, zp, axis):
    rng = np.random.default_rng(6)
    shape = (3, 2, 4, 5)
    info = np.iinfo(dtype)
    q = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    scale = 0.0123 if axis is None else rng.uniform(1e-3, 1.0, shape[axis])
    ax = axis or 0
    x = tinfo("x", shape, dtype, scale, zp, ax)
    (y,), params = run(op, [(x, q)], [tinfo("y", shape, F32)], options={} if op == "Fix2Float" else None)
    assert y.shape == shape and y.dtype == np.float32
    s = bshape(f32(scale), 4, ax)
    want = ((q.astype(np.float64) - zp) * s).astype(np.float32)
    np.testing.assert_array_equal(y, want)
    if dtype != np.int32:  # bit-identical to the float DEQUANTIZE kernel for 8/16-bit inputs
        fdef = get_op("DEQUANTIZE")
        ref = fdef.kernel(q, opt=fdef.prepare(OpContext(0, "DEQUANTIZE", (x,), (tinfo("y", shape, F32),))))
        np.testing.assert_array_equal(y, ref)


def test_dequantize_float16_and_errors():
    h = np.array([1.5, -2.25, 65504.0], np.float16)
    (y,), _ = run("DEQUANTIZE", [(tinfo("x", (3,), np.float16), h)], [tinfo("y", (3,), F32)])
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [1.5, -2.25, 65504.0])
    with pytest.raises(ModelError, match="Fix2Float writes float32"):
        prepare("Fix2Float", [tinfo("x", (3,), np.int16, 1.0)], [tinfo("y", (3,), np.int16, 1.0)])
    with pytest.raises(ModelError, match="has no quantization scale"):
        prepare("DEQUANTIZE", [tinfo("x", (3,), np.int16)], [tinfo("y", (3,), F32)])


# ----------------------------------------------------------------------------------------- InputNormalize
MINV = np.linalg.inv(utils.RGB2YUV_1024)
NV12_PIXEL_BOUND = 0.5 + 2.0 ** -11
PAIRS = [(fmt, t) for t in ("RGB", "BGR", "GRAY") for fmt in ALLOWED_INPUT_FORMATS[t]]
MEAN_STD = {3: ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)), 1: ((127.5,), (127.5,))}
CAFFE = {3: ((123.0, 117.0, 104.0), (1.0, 1.0, 1.0)), 1: ((100.0,), (1.0,))}


def make_spec(fmt, training, layout="NHWC", align=None, mean_std=None) -> InputSpec:
    c = 1 if training == "GRAY" else 3
    mean, std = (mean_std or MEAN_STD)[c]
    default = 2 if fmt == "YUV_NV12" else 1
    ha, wa = align or (default, default)
    return InputSpec("x", training, fmt, True, mean, std, wa, ha, layout)


def convert_details(spec: InputSpec, raw_shape) -> dict:
    return {"name": spec.name, "index": 0, "shape": np.array(raw_shape, np.int32), "dtype": np.uint8,
            "input_formats": spec.input_format, "training_input_formats": spec.training_input_format,
            "layouts": spec.layout, "input_height_alignment": spec.height_alignment,
            "input_width_alignment": spec.width_alignment}


def nv12_float_pixels(raw: np.ndarray, h: int, w: int, training: str) -> np.ndarray:
    """[N, H, W, 3] float pixels in training order: clip(MINV . (Y, U-128, V-128), 0, 255) of the NV12 data."""
    he, we = h + h % 2, w + w % 2
    out = []
    for plane in raw[..., 0].astype(np.float64):
        uv = plane[he:he + he // 2, :we]
        up = lambda a: np.repeat(np.repeat(a, 2, 0), 2, 1)[:h, :w]  # noqa: E731
        yuv = np.stack([plane[:h, :w], up(uv[:, 0::2]) - 128, up(uv[:, 1::2]) - 128], -1)
        rgb = np.clip(yuv @ MINV.T, 0, 255)
        out.append(rgb[..., ::-1] if training == "BGR" else rgb)
    return np.stack(out)


def run_input_normalize(spec: InputSpec, image: np.ndarray, out_dtype: str, qout: QOut | None = None):
    """Convert ``image`` like the vendor, run InputNormalize; returns (q, qout, float reference, pixels)."""
    float_shape = image.shape
    raw_shape = bd.fixed_input_shape(float_shape, spec)
    raw = utils.convert_to_input_formats(image, convert_details(spec, raw_shape))
    assert raw.shape == raw_shape and raw.dtype == np.uint8
    nchw = spec.layout == "NCHW"
    caxis = 1 if nchw else 3
    if spec.input_format == "YUV_NV12" and spec.training_input_format != "GRAY":
        h, w = image.shape[2:] if nchw else image.shape[1:3]
        pixels = nv12_float_pixels(raw, h, w, spec.training_input_format)
        pixels = pixels.transpose(0, 3, 1, 2) if nchw else pixels
    else:
        pixels = image.astype(np.float64)
    mean = bshape(spec.channel_mean(), 4, caxis)
    std = bshape(spec.channel_std(), 4, caxis)
    ref = (pixels - mean) / std
    qout = qout or symmetric_out(ref, out_dtype)
    options = flexbuffers.Loads(flexbuffers.Dumps(bd.input_normalize_options(spec)))  # as the interpreter sees it
    (q,) = run_fixed("InputNormalize", [QArr(raw)], [qout], [float_shape], options)
    assert q.shape == float_shape and q.dtype == NP[qout.dtype]
    return q, qout, ref, pixels


def lsb_error(q, qout: QOut, ref, caxis: int) -> np.ndarray:
    scale = bshape(qout.scale, 4, caxis)
    zp = bshape(qout.zero_point, 4, caxis)
    lo, hi = np.iinfo(q.dtype).min, np.iinfo(q.dtype).max
    want = np.clip(ref, (lo - zp) * scale, (hi - zp) * scale)
    return np.abs((q.astype(np.float64) - zp) * scale - want) / scale


def image_for(spec: InputSpec, n: int, h: int, w: int, rng) -> np.ndarray:
    c = spec.channels
    shape = (n, c, h, w) if spec.layout == "NCHW" else (n, h, w, c)
    return rng.integers(0, 255, shape, endpoint=True).astype(np.uint8)


CASES = [(fmt, t, layout) for fmt, t in PAIRS for layout in ("NHWC", "NCHW") if not fmt.endswith("A")
         or layout == "NHWC"]


@pytest.mark.parametrize("fmt,training,layout", CASES)
@pytest.mark.parametrize("n,h,w", [(1, 5, 7), (2, 4, 6)])
@pytest.mark.parametrize("align", [None, (4, 8), (3, 5)])
@pytest.mark.parametrize("out_dtype", ["UINT8", "INT16"])
def test_input_normalize_matches_float_normalisation(fmt, training, layout, n, h, w, align, out_dtype):
    spec = make_spec(fmt, training, layout, align, MEAN_STD if out_dtype == "UINT8" else CAFFE)
    image = image_for(spec, n, h, w, np.random.default_rng(hash((fmt, training, layout, h)) % 2**32))
    q, qout, ref, pixels = run_input_normalize(spec, image, out_dtype)
    caxis = 1 if layout == "NCHW" else 3
    err = lsb_error(q, qout, ref, caxis)
    if fmt == "YUV_NV12" and training != "GRAY":
        # pixels rounded to uint8: <= 0.5 LSB + (0.5 + 2**-11) / (std * out_scale) LSB
        bound = 0.5 + NV12_PIXEL_BOUND / (bshape(spec.channel_std(), 4, caxis) * qout.scale)
        assert np.all(err <= bound * (1 + 1e-9)), f"worst {(err / bound).max():.4f} of the bound"
        return
    assert err.max() <= HALF_LSB, f"worst {err.max():.4f} LSB"
    # exact: the float normalisation of the same pixels, quantized
    info = np.iinfo(q.dtype)
    want = np.clip(round_half_away(ref / qout.scale) + qout.zero_point, info.min, info.max)
    np.testing.assert_array_equal(q, want)


def test_input_normalize_saturates_at_both_ends():
    spec = make_spec("RGB", "RGB")
    image = image_for(spec, 1, 6, 6, np.random.default_rng(9))
    image[0, 0, 0], image[0, 0, 1] = 0, 255
    q, qout, ref, _ = run_input_normalize(spec, image, "INT16", QOut("INT16", 1 / 16384, 0))  # covers [-2, 2)
    assert q.min() == -32768 and q.max() == 32767
    want = np.clip(round_half_away(ref * 16384), -32768, 32767)
    np.testing.assert_array_equal(q, want)
    q8, _, ref8, _ = run_input_normalize(spec, image, "UINT8", QOut("UINT8", 1 / 64, 100))
    np.testing.assert_array_equal(q8, np.clip(round_half_away(ref8 * 64) + 100, 0, 255))
    assert q8.min() == 0 and q8.max() == 255


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_input_normalize_per_channel_output(layout):
    spec = make_spec("BGRA", "BGR") if layout == "NHWC" else make_spec("BGR", "BGR", "NCHW")
    image = image_for(spec, 1, 3, 5, np.random.default_rng(10))
    caxis = 1 if layout == "NCHW" else 3
    qout = QOut("UINT8", [0.02, 0.021, 0.019], [120, 122, 125], caxis)
    q, _, ref, _ = run_input_normalize(spec, image, "UINT8", qout)
    assert lsb_error(q, qout, ref, caxis).max() <= HALF_LSB


def test_nv12_roundtrip_recovers_block_constant_images():
    """RGB -> NV12 (utils) -> our integer RGB: within 2 of the original where the chroma is not subsampled away."""
    rng = np.random.default_rng(11)
    for training in ("RGB", "BGR"):
        spec = make_spec("YUV_NV12", training)
        blocks = rng.integers(30, 220, (1, 3, 4, 3), endpoint=True).astype(np.uint8)
        image = np.repeat(np.repeat(blocks, 2, 1), 2, 2)[:, :5, :7]  # 2x2-constant colour, odd size
        raw = utils.convert_to_input_formats(image, convert_details(spec, bd.fixed_input_shape(image.shape, spec)))
        opts = bd.input_normalize_options(spec)
        params = prepare("InputNormalize", [tinfo("raw", raw.shape, np.uint8)],
                         [tinfo("y", image.shape, np.uint8, 1.0, 0)], {**opts, "mean": [0.0], "std": [1.0]})
        out = get_fixed_op("InputNormalize").kernel(raw, opt=params)
        assert np.abs(out.astype(int) - image.astype(int)).max() <= 2


def test_yuv_to_rgb_exhaustive_bound():
    """Every (Y, U, V): the Q20 integer pixel is within 0.5 + 2**-11 of the clipped float conversion."""
    coef = bd.yuv_to_rgb_matrix()
    assert np.abs(coef / 2.0 ** bd.YUV_FRAC_BITS - MINV).max() <= 2.0 ** -(bd.YUV_FRAC_BITS + 1)
    u, v = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    worst = 0.0
    for y in range(256):
        got = np.stack(bd.yuv_to_rgb(np.full(u.shape, y), u, v, coef), -1)
        ref = np.clip(np.stack([np.full(u.shape, y), u - 128, v - 128], -1) @ MINV.T, 0, 255)
        worst = max(worst, float(np.abs(got - ref).max()))
        assert got.min() >= 0 and got.max() <= 255
    assert worst <= NV12_PIXEL_BOUND


@given(st.lists(st.floats(-300, 300), min_size=1, max_size=3), st.floats(0.01, 300), st.floats(1e-4, 1.0),
       st.integers(0, 255), st.sampled_from(["UINT8", "INT16", "INT8"]))
def test_normalize_table_property(mean, std, out_scale, zp, dtype):
    c = len(mean)
    zp = zp if dtype == "UINT8" else 0
    table = bd.normalize_table(np.asarray(mean), np.full(c, std), np.full(c, out_scale), np.full(c, zp), NP[dtype])
    assert table.shape == (c, 256) and table.dtype == NP[dtype]
    assert np.all(np.diff(table.astype(np.int64), axis=1) >= 0)  # monotone in the pixel
    ref = (np.arange(256)[None, :] - np.asarray(mean)[:, None]) / std
    lo, hi = np.iinfo(NP[dtype]).min, np.iinfo(NP[dtype]).max
    want = np.clip(ref, (lo - zp) * out_scale, (hi - zp) * out_scale)
    err = np.abs((table.astype(np.float64) - zp) * out_scale - want) / out_scale
    assert err.max() <= 0.5 + 1e-6


def test_fixed_input_shape_by_hand():
    assert bd.fixed_input_shape((1, 5, 7, 3), make_spec("RGB", "RGB")) == (1, 5, 7, 3)
    assert bd.fixed_input_shape((1, 3, 5, 7), make_spec("BGR", "BGR", "NCHW", (4, 8))) == (1, 3, 5, 7)
    assert bd.fixed_input_shape((1, 5, 7, 1), make_spec("GRAY", "GRAY", align=(4, 8))) == (1, 8, 8, 1)
    assert bd.fixed_input_shape((1, 1, 5, 7), make_spec("GRAY", "GRAY", "NCHW", (3, 5))) == (1, 1, 6, 10)
    assert bd.fixed_input_shape((2, 5, 3, 3), make_spec("RGBA", "RGB", align=(1, 8))) == (2, 5, 4, 4)  # 12 -> 16 B
    assert bd.fixed_input_shape((1, 5, 3, 3), make_spec("BGRA", "BGR", align=(1, 3))) == (1, 5, 3, 4)  # 12 B
    assert bd.fixed_input_shape((1, 5, 7, 3), make_spec("YUV_NV12", "RGB")) == (1, 9, 8, 1)
    assert bd.fixed_input_shape((1, 3, 5, 7), make_spec("YUV_NV12", "BGR", "NCHW", (3, 5))) == (1, 9, 10, 1)
    assert bd.fixed_input_shape((1, 5, 7, 1), make_spec("YUV_NV12", "GRAY", align=(4, 16))) == (1, 12, 16, 1)
    raw = InputSpec("r", "RAWDATA_S16_NHWC", "RAWDATA_S16_NHWC")
    assert bd.fixed_input_shape((1, 10), raw) == (1, 10)
    with pytest.raises(ConfigError, match="BGRA inputs are NHWC only"):
        bd.fixed_input_shape((1, 3, 5, 7), make_spec("BGRA", "BGR", "NCHW"))
    with pytest.raises(ConfigError, match=r"GRAY has 1 channel\(s\) but shape \[1, 5, 7, 3\]"):
        bd.fixed_input_shape((1, 5, 7, 3), make_spec("GRAY", "GRAY"))
    with pytest.raises(ConfigError, match="cannot feed a model trained on RGB"):
        bd.fixed_input_shape((1, 5, 7, 3), make_spec("BGR", "RGB"))
    with pytest.raises(ConfigError, match="need a 4-D shape"):
        bd.fixed_input_shape((5, 7, 3), make_spec("RGB", "RGB"))


def test_input_normalize_options():
    spec = make_spec("YUV_NV12", "BGR", "NCHW", (2, 16))
    opts = bd.input_normalize_options(spec)
    assert opts == {"input_formats": "YUV_NV12", "training_input_formats": "BGR",
                    "mean": [103.53, 116.28, 123.675], "std": [57.375, 57.12, 58.395],  # model (B, G, R) order
                    "layouts": "NCHW", "input_height_alignment": 2, "input_width_alignment": 16}
    assert flexbuffers.Loads(flexbuffers.Dumps(opts)) == opts
    with pytest.raises(ConfigError, match="RAWDATA inputs take no InputNormalize"):
        bd.input_normalize_options(InputSpec("r", "RAWDATA_F32_NHWC", "RAWDATA_F32_NHWC"))


def normalize_prepare(options, raw_shape=(1, 4, 4, 3), out_shape=(1, 4, 4, 3), raw_dtype=np.uint8,
                      out=("INT16", 1e-3, 0, 0)):
    dtype, scale, zp, axis = out
    return prepare("InputNormalize", [tinfo("raw", raw_shape, raw_dtype)],
                   [tinfo("y", out_shape, NP[dtype], scale, zp, axis)], options)


def test_input_normalize_params_are_integers():
    opts = bd.input_normalize_options(make_spec("YUV_NV12", "RGB"))
    assert_integer_params(normalize_prepare(opts, raw_shape=(1, 6, 4, 1)))


@pytest.mark.parametrize("change,kwargs,match", [
    ({"colour": 1}, {}, r"unknown custom option\(s\) \['colour'\]"),
    ({"training_input_formats": "BGR"}, {}, "input_formats 'RGB' cannot feed a model trained on BGR"),
    ({"input_formats": "ARGB"}, {}, "'ARGB' is not an image format"),
    ({"input_formats": "RAWDATA_F32_NHWC", "training_input_formats": "RAWDATA_F32_NHWC"}, {},
     "not an image format"),
    ({"mean": [1.0, 2.0]}, {}, "mean has 2 values; give one per channel"),
    ({"std": [1.0, 0.0, 1.0]}, {}, "std must be > 0"),
    ({"mean": "abc"}, {}, "must be a list of numbers"),
    ({"layouts": "NWHC"}, {}, "layouts 'NWHC' is not one of"),
    ({"input_width_alignment": 0}, {}, "must be an integer >= 1"),
    ({}, {"raw_dtype": np.int16}, "image inputs are uint8 pixels"),
    ({}, {"raw_shape": (1, 3, 4, 3)}, "it must hold a 4x4 image with 3 channel"),
    ({}, {"out_shape": (1, 4, 4, 1)}, "has 1 channel"),
    ({}, {"out": ("UINT8", [0.1, 0.1, 0.1], 0, 2)}, "per-channel quantization must be on the channel axis 3"),
    ({"input_formats": "RGBA", "layouts": "NCHW"}, {"raw_shape": (1, 4, 4, 4), "out_shape": (1, 3, 4, 4)},
     "RGBA inputs are NHWC only"),
    ({"input_formats": "YUV_NV12"}, {"raw_shape": (1, 5, 4, 1)}, r"expected \[1, >=6, >=4, 1\]"),
    ({"input_formats": "YUV_NV12", "training_input_formats": "GRAY", "mean": [0.0], "std": [1.0],
      "input_width_alignment": 8},
     {"raw_shape": (1, 6, 4, 1), "out_shape": (1, 4, 4, 1)}, "cannot hold the aligned 4x8 image"),
])
def test_input_normalize_errors(change, kwargs, match):
    opts = {**bd.input_normalize_options(make_spec("RGB", "RGB")), **change}
    with pytest.raises(ModelError, match=match):
        normalize_prepare(opts, **kwargs)


def test_input_normalize_missing_options():
    with pytest.raises(ModelError, match="custom options must be a FlexBuffer map"):
        normalize_prepare(None)
    with pytest.raises(ModelError, match="custom option 'mean' is missing"):
        normalize_prepare({"input_formats": "RGB", "training_input_formats": "RGB"})
    with pytest.raises(ModelError, match="output 'y' has no quantization scale"):
        prepare("InputNormalize", [tinfo("raw", (1, 4, 4, 3), np.uint8)], [tinfo("y", (1, 4, 4, 3), np.int16)],
                bd.input_normalize_options(make_spec("RGB", "RGB")))
