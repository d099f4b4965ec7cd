"""The prepared fast paths of the vendor fixed engine against its int64 reference kernels, code for code
(no vendor SDK needed; the shared models against the vendor's own simulator are in test_vendor_fixed_models)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from calibrator_custom.vendor_fixed import activation, boundary, conv, conv_plan, elementwise, fastops, pool

_RANGE = {"uint8": (0, 255), "int16": (-32768, 32767)}


def _codes(g, dtype, shape):
    """Random codes of dtype with both extremes, 0 and -1 (where they exist) planted."""
    lo, hi = _RANGE[dtype]
    x = g.integers(lo, hi + 1, shape)
    flat = x.reshape(-1)
    for i, v in enumerate(sorted({lo, hi, 0, max(lo, -1)})):
        flat[i % flat.size] = v
    return x.astype(dtype)


def _reference(op, x, zp, w, b0, m, k, n, out_zp, out_dt, stride, dilation, padding, pads, clamp):
    if pads is not None:
        t, b, l, r = pads
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=zp)
        padding = "VALID"
    kern = conv.depthwise_conv2d if op == "DEPTHWISE_CONV_2D" else conv.conv2d
    return kern(x, zp, w, b0, m, k, n, out_zp, out_dt, stride, dilation, padding, clamp)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.sampled_from(["CONV_2D", "DEPTHWISE_CONV_2D"]), st.sampled_from([1, 2, 3, 5]),
       st.sampled_from([(1, 1), (2, 2), (1, 2)]), st.sampled_from([(1, 1), (2, 1)]),
       st.sampled_from(["SAME", "VALID", "explicit"]), st.integers(0, 4), st.sampled_from(["uint8", "int16"]),
       st.booleans(), st.sampled_from([1, 2]), st.sampled_from(["uint8", "int16"]))
def test_conv_plan_matches_the_int64_reference(seed, op, ksize, stride, dilation, padding, k, out_name, saturate, mult,
                                               in_name):
    g = np.random.default_rng(seed)
    c = int(g.integers(1, 40))
    eff_h, eff_w = (ksize - 1) * dilation[0] + 1, (ksize - 1) * dilation[1] + 1
    x = _codes(g, in_name, (1, eff_h + int(g.integers(0, 9)), eff_w + int(g.integers(0, 9)), c))
    w_max = 128 if in_name == "uint8" else int(g.integers(1, 6))  # INT16 inputs: small weights keep some plans
    if op == "DEPTHWISE_CONV_2D":
        co = c * mult
        w = g.integers(-w_max, w_max, (1, ksize, ksize, co)).astype(np.int8)
    else:
        co = int(g.integers(1, 40))
        w = g.integers(-w_max, w_max, (co, ksize, ksize, c)).astype(np.int8)
    zp = int(g.integers(0, 256)) if in_name == "uint8" else 0
    out_dt = np.dtype(out_name)
    by_channel = np.abs(w.astype(np.int64)).reshape(-1, co) if op == "DEPTHWISE_CONV_2D" else \
        np.abs(w.astype(np.int64)).reshape(co, -1).T
    bound = (255 if in_name == "uint8" else 32768) * int(by_channel.sum(0).max())
    k += max(0, bound.bit_length() - 15)  # as the vendor's converter: acc >> k about 16 bits
    n = k + int(g.integers(1, 18))
    # saturate: b0 large enough that the 16-bit saturation of R + b0 acts (the plan must keep it)
    b0 = g.integers(-32768, 32768, co) if saturate else g.integers(-3000, 3000, co)
    m = g.integers(0, 32768, co)
    out_zp = int(g.integers(-100, 100)) if out_dt == np.int16 else 0
    clamp = None if g.integers(0, 2) else (int(g.integers(0, 30)), int(g.integers(100, 256)))
    pads = tuple(int(v) for v in g.integers(0, 3, 4)) if padding == "explicit" else None
    pad_mode = "VALID" if padding == "explicit" else padding
    args = (x.shape, x.dtype, w, zp, b0, m, k, n, out_zp, out_dt, stride, dilation, pad_mode, pads, clamp)
    plan = conv_plan.prepare(op, *args)
    ref = _reference(op, x, zp, w, b0, m, k, n, out_zp, out_dt, stride, dilation, pad_mode, pads, clamp)
    # the plan is refused only where a float32 sum could round (bound of the module doc)
    assert (plan is None) == (bound + (1 << max(k - 1, 0)) >= 2 ** 24)
    if plan is None:
        return
    assert plan.matches(x)
    got = plan.run(x)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert np.array_equal(got, ref)
    assert np.array_equal(plan.run(x), ref)  # a second run on the reused buffers


def test_conv_plan_refuses_unprovable_bounds():
    """INT16 inputs with -128 weights over 3x3x32 taps can sum past 2**24: no float32 plan (UINT8: 9.4e6, one)."""
    w = np.full((4, 3, 3, 32), -128, np.int8)
    args = ((1, 8, 8, 32), np.int16, w, 0, np.zeros(4, np.int64), np.full(4, 16384), 8, 22, 0, np.int16,
            (1, 1), (1, 1), "SAME", None, None)
    assert conv_plan.prepare("CONV_2D", *args) is None
    args = ((1, 8, 8, 32), np.uint8) + args[2:]
    assert conv_plan.prepare("CONV_2D", *args) is not None


def test_conv_plan_round_half_away_ties():
    """acc = +-2**(k-1) (ties) and 0 through a 1x1 conv: the reference's half-away rounding, not half-up."""
    x = np.array([0, 1, 2, 3, 255], np.uint8).reshape(1, 1, 5, 1)
    w = np.array([[[[2]]], [[[-2]]]], np.int8)  # acc = +-2 * x: ties of k = 2 at x = 1, 3
    args = (x.shape, x.dtype, w, 0, np.zeros(2, np.int64), np.full(2, 16384), 2, 16, 0, np.int16,
            (1, 1), (1, 1), "VALID", None, None)
    plan = conv_plan.prepare("CONV_2D", *args)
    ref = _reference("CONV_2D", x, 0, w, *args[4:])
    got = plan.run(x)
    assert got.dtype == np.int16 and got.shape == (1, 1, 5, 2)
    assert np.array_equal(got, ref)
    # hand-computed: R = half_away(+-2x / 4) = +-[0, 1, 1, 2, 128]; q = (R * 16384 + 2**13) >> 14 = R
    assert got[0, 0, :, 0].tolist() == [0, 1, 1, 2, 128] and got[0, 0, :, 1].tolist() == [0, -1, -1, -2, -128]


# ---------------------------------------------------------------- elementwise

def _centered(x, zp):
    return x.astype(np.int64) - zp


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.sampled_from(["ADD", "SUB"]), st.sampled_from(["uint8", "int16"]),
       st.sampled_from(["uint8", "int16"]), st.sampled_from(["uint8", "int16"]))
def test_addsub_kernel_matches_the_reference(seed, name, d1, d2, d_out):
    g = np.random.default_rng(seed)
    shape = (1, int(g.integers(1, 6)), int(g.integers(1, 6)), int(g.integers(1, 20)))
    x1, x2 = _codes(g, d1, shape), _codes(g, d2, shape)
    z1 = int(g.integers(0, 256)) if d1 == "uint8" else 0
    z2 = int(g.integers(0, 256)) if d2 == "uint8" else 0
    s1, s2, so = (float(np.float32(10.0 ** g.uniform(-5, 0))) for _ in range(3))
    zo = int(g.integers(0, 256)) if d_out == "uint8" else 0
    kern = elementwise.add if name == "ADD" else elementwise.sub
    ref = kern(_centered(x1, z1), _centered(x2, z2), s1, s2, so, zo, np.dtype(d_out))
    fn = fastops.prepare_addsub(1 if name == "ADD" else -1, np.dtype(d1), np.dtype(d2), shape, shape, z1, z2,
                                s1, s2, so, zo, np.dtype(d_out))
    if fn is None:  # refused only when an int32 bound fails or N < 1
        m1, m2, n = elementwise.add_params(s1, s2, so)
        assert n < 1 or 32768 * (m1 + m2) + (1 << n) * 257 + 256 * (m1 + m2) >= 2 ** 31
        return
    got = fn(x1, x2)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert np.array_equal(got, ref)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.booleans(), st.sampled_from([1.0, 1.2751091, 3.5]), st.booleans())
def test_prelu_kernel_matches_the_reference(seed, relu, ratio, clamp6):
    g = np.random.default_rng(seed)
    c = int(g.integers(1, 40))
    shape = (1, int(g.integers(1, 6)), int(g.integers(1, 6)), c)
    x = _codes(g, "int16", shape)
    alpha = np.zeros(1, np.int64) if relu else g.integers(-32767, 32768, (1, 1, c))
    shift = 15 if relu else activation.alpha_shift(float(g.uniform(0.05, 1.5)) * ratio)
    s_in, s_out = float(np.float32(10.0 ** g.uniform(-5, -2))), float(np.float32(10.0 ** g.uniform(-3, -1)))
    zp = int(g.integers(0, 256))
    clamp = (zp, min(255, zp + int(g.integers(0, 200)))) if clamp6 else None
    ref = activation.prelu(x, alpha, shift, s_in, s_out, zp, np.uint8, ratio)
    if clamp is not None:
        ref = np.clip(ref, *clamp).astype(np.uint8)
    fn = fastops.prepare_prelu(np.dtype(np.int16), shape, alpha, shift, s_in, s_out, zp, np.uint8, ratio, clamp)
    if fn is None:
        mult, n, _, _ = fastops.prelu_params(shift, s_in, s_out, ratio)
        assert n < 1 or 32768 * max(ratio, 1) * 2 * mult >= 2 ** 30 or not relu
        return
    got = fn(x)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert np.array_equal(got, ref)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2 ** 31 - 1))
def test_pad_trailing_matches_np_pad(seed):
    g = np.random.default_rng(seed)
    shape = tuple(int(v) for v in g.integers(1, 5, 4))
    x = _codes(g, "uint8", shape)
    out_shape = tuple(d + int(g.integers(0, 3)) for d in shape)
    zp = int(g.integers(0, 256))
    got = fastops.pad_trailing(x, out_shape, zp)
    ref = np.pad(x, [(0, o - d) for d, o in zip(shape, out_shape)], constant_values=zp)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert np.array_equal(got, ref)


# ---------------------------------------------------------------- input boundary


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.booleans())
def test_input_transform_table_matches_the_stored_transform(seed, same_channels):
    g = np.random.default_rng(seed)
    diag = np.full(3, int(g.integers(1, 4096))) if same_channels else g.integers(1, 4096, 3)
    a = np.diag(diag).astype(np.int64)
    offset = np.full(3, int(g.integers(-300, 300))) if same_channels else g.integers(-300, 300, 3)
    px = g.integers(0, 256, (1, int(g.integers(1, 9)), int(g.integers(1, 9)), 3)).astype(np.uint8)
    px.reshape(-1)[:2] = (0, 255)
    table = boundary.stored_transform_table(a, offset)
    assert table is not None and table.shape == (3, 256) and table.dtype == np.uint8
    got = boundary.apply_transform_table(px, table)
    ref = boundary.stored_transform_codes(px, a, offset)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert np.array_equal(got, ref)


def test_input_transform_table_refuses_a_channel_mixing_matrix():
    a = np.array([[1024, 1, 0], [0, 1024, 0], [0, 0, 1024]])
    assert boundary.stored_transform_table(a, np.zeros(3, np.int64)) is None


# ---------------------------------------------------------------- pooling


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.sampled_from([(1, 1), (2, 2), (3, 3), (2, 3)]), st.sampled_from([1, 2]),
       st.sampled_from(["SAME", "VALID"]), st.sampled_from(["uint8", "int16"]))
def test_max_pool_matches_naive_loops(seed, f, s, padding, dtype):
    g = np.random.default_rng(seed)
    x = _codes(g, dtype, (1, f[0] + int(g.integers(0, 6)), f[1] + int(g.integers(0, 6)), int(g.integers(1, 5))))
    got = pool.max_pool2d(x, f, (s, s), padding)
    n, h, w, c = x.shape
    if padding == "VALID":
        oh, ow, pt, pl = (h - f[0]) // s + 1, (w - f[1]) // s + 1, 0, 0
    else:
        oh, ow = -(-h // s), -(-w // s)
        pt, pl = max((oh - 1) * s + f[0] - h, 0) // 2, max((ow - 1) * s + f[1] - w, 0) // 2
    want = np.full((n, oh, ow, c), np.iinfo(x.dtype).min, np.int64)
    for y in range(oh):
        for xx in range(ow):
            for a in range(f[0]):
                for b in range(f[1]):
                    yy, x2 = y * s + a - pt, xx * s + b - pl
                    if 0 <= yy < h and 0 <= x2 < w:
                        want[:, y, xx] = np.maximum(want[:, y, xx], x[:, yy, x2])
    assert got.dtype == x.dtype and got.shape == want.shape
    assert np.array_equal(got.astype(np.int64), want)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.booleans(), st.sampled_from(["uint8", "int16"]))
def test_fused_add_activation_matches_the_two_kernels(seed, relu, d1):
    """ADD's int32 codes straight into RELU/PRELU (the engine's fused pair) = the two kernels one by one."""
    g = np.random.default_rng(seed)
    c = int(g.integers(1, 30))
    shape = (1, int(g.integers(1, 6)), int(g.integers(1, 6)), c)
    x1, x2 = _codes(g, d1, shape), _codes(g, "int16", shape)
    z1 = int(g.integers(0, 256)) if d1 == "uint8" else 0
    s1, s2, so = (float(np.float32(10.0 ** g.uniform(-4, -1))) for _ in range(3))
    add = fastops.prepare_addsub(1, np.dtype(d1), np.dtype(np.int16), shape, shape, z1, 0, s1, s2, so, 0, np.int16)
    alpha = np.zeros(1, np.int64) if relu else g.integers(-32767, 32768, (1, 1, c))
    shift = 15 if relu else activation.alpha_shift(float(g.uniform(0.05, 1.5)))
    s_act, zp = float(np.float32(10.0 ** g.uniform(-3, -1))), int(g.integers(0, 256))
    act = fastops.prepare_prelu(np.dtype(np.int16), shape, alpha, shift, so, s_act, zp, np.uint8)
    if add is None or act is None:
        return
    ref = act(add(x1, x2))
    a = add.int32(x1, x2)
    assert a.dtype == np.int32
    got = act.from_int32(a)
    assert got.dtype == ref.dtype == np.uint8 and got.shape == ref.shape
    assert np.array_equal(got, ref)
    assert np.array_equal(ref, activation.prelu(elementwise.add(_centered(x1, z1), x2.astype(np.int64), s1, s2, so, 0,
                                                                np.int16), alpha, shift, so, s_act, zp, np.uint8))
