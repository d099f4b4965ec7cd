"""The accumulator shift of 16-bit convs (INT16 input and INT16 weights) at near-ties.

The vendor floors a 16-bit conv's accumulator by s = max(0, k - 16) bits before rounding the remaining
k - s bits half away from zero (``conv.sixteen_bit_floor_bits``): the single rounding of acc / 2**k
differs only for a negative accumulator less than 2**s above a tie (acc = -(j + 1/2) 2**k + d,
0 < d < 2**s), which the vendor rounds one lower.

Oracle tier (the vendor SDK in ``../shared/vendor_sdk``; skipped without it): chains
``x -> c1 (1 x 1, UINT8 in, INT16 out) -> c2 (the 16-bit conv, VALID, the graph output)`` converted and
L1-calibrated by the vendor with ``[CONV_CONFIG] tensor_arrays=c1``; the input is made of K x K pixel
blocks picked from random ones so that one of c2's accumulators over each block lies near a tie (the
exact accumulator from our UINT8-input c1, which is exact); the vendor's fixed simulator then gives our
fixed_simulator's codes, on many codes where the single rounding would not.
"""
from __future__ import annotations

import numpy as np
import pytest

import vendor_fixed_oracle as vo
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import load_model
from calibrator_custom.vendor_fixed import conv, engine


def test_sixteen_bit_floor_bits_only_for_int16_input_and_weights_above_k_16():
    assert conv.sixteen_bit_floor_bits(np.int16, np.int16, 23) == 7
    assert conv.sixteen_bit_floor_bits(np.int16, np.int16, 17) == 1
    assert conv.sixteen_bit_floor_bits(np.int16, np.int16, 16) == 0
    assert conv.sixteen_bit_floor_bits(np.uint8, np.int8, 20) == 0
    assert conv.sixteen_bit_floor_bits(np.int16, np.int8, 20) == 0


def test_a_negative_accumulator_just_above_a_tie_rounds_one_lower_in_a_16_bit_conv():
    """k = 17, s = 1, M = 16384, N - k = 14 (q = R): acc = 32767 * -6 + 1 * -5 = -196607 = -1.5 * 2**17 + 1.
    By hand: floor(-196607 / 2) = -98304 = -1.5 * 2**16, half away -> R = -2; the single rounding gives -1.
    acc + 1 (d = 2 = 2**s) floors to -98303 -> -1 both ways; the positive mirror 196607 -> 1 both ways."""
    x = np.array([[[[32767, 1]]], [[[-32767, -1]]]], np.int16)
    w = np.array([[[[-6, -5]]], [[[-6, -4]]], [[[6, 5]]]], np.int16)   # [3, 1, 1, 2]
    args = (0, w, [0, 0, 0], [16384] * 3, 17, 31, 0, np.int16)
    q = conv.conv2d(x, *args, padding="VALID")
    # acc per (input, channel): x0: -196607, -196606, 196607; x1: 196607, 196606, -196607
    assert q[0, 0, 0].tolist() == [-2, -1, 1]
    assert q[1, 0, 0].tolist() == [1, 1, -2]
    # the same sums outside the 16-bit path (int32 input codes): the single rounding
    q32 = conv.conv2d(x.astype(np.int32), *args, padding="VALID")
    assert q32[0, 0, 0].tolist() == [-1, -1, 1] and q32[1, 0, 0].tolist() == [1, 1, -1]
    # a depthwise of two taps, [32767, 1] * [-6, -5] = -196607 again: -2; at k = 16 (s = 0) -2.99998 -> -3
    xd, wd = np.array([[[[32767], [1]]]], np.int16), np.array([[[[-6], [-5]]]], np.int16)   # [1, 1, 2, 1]
    assert conv.depthwise_conv2d(xd, 0, wd, [0], [16384], 17, 31, 0, np.int16, padding="VALID").ravel().tolist() == [-2]
    assert conv.depthwise_conv2d(xd, 0, wd, [0], [16384], 16, 30, 0, np.int16, padding="VALID").ravel().tolist() == [-3]


# ---------------------------------------------------------------- oracle tier
#: name -> ((seed, K, c1 channels, c2 outputs, depthwise, stride, bias factor, weight mean), the vendor's k);
#: the bias factor and weight mean move the calibrated accumulator range, hence k, and the sign
CASES = {
    "1x1_k17": ((2, 1, 64, 32, False, 1, 1.0, 0.0), 17),            # s 1
    "1x1_k20": ((3, 1, 64, 32, False, 1, 2.0, -1.0), 20),           # s 4
    "1x1_k23": ((3, 1, 256, 32, False, 1, 3.0, -8.0), 23),          # s 7
    "3x3_s3_k22": ((4, 3, 32, 16, False, 3, 2.0, -1.0), 22),        # s 6
    "dw3x3_k19": ((4, 3, 32, 0, True, 1, 2.0, -1.0), 19),           # a native INT16 depthwise
    "dw5x5_rewrite_k20": ((5, 5, 24, 0, True, 1, 2.0, -1.0), 20),   # the converter's CONV_2D rewrite
}
#: blocks per side of the designed input; random 480 x 480 images searched for its blocks (fewer for 1 x 1
#: convs, whose every pixel is a block)
BLOCKS, ROUNDS = 40, {1: 4, 3: 12, 5: 12}


def _skip_without_vendor():
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)


def _chain(seed, K, cin, cout, dw, stride, bf, wmu):
    g = np.random.default_rng(seed)
    side = K * BLOCKS
    b = ModelBuilder()
    x = b.input("x", (1, side, side, 3))
    b1 = (g.normal(size=cin) * 0.3 + (0.3 if wmu else 0.0)) * bf
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(cin, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", b1.astype(np.float32))],
             {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name="c1")
    if dw:
        w2 = ((g.normal(size=(1, K, K, cin)) + wmu) / K).astype(np.float32)
        z = b.op("DEPTHWISE_CONV_2D", [y, b.constant("w2", w2),
                                       b.constant("b2", (g.normal(size=cin) * 0.3).astype(np.float32))],
                 {"padding": "VALID", "stride_w": stride, "stride_h": stride, "depth_multiplier": 1}, name="c2")
    else:
        w2 = ((g.normal(size=(cout, K, K, cin)) + wmu) / np.sqrt(K * K * cin)).astype(np.float32)
        z = b.op("CONV_2D", [y, b.constant("w2", w2), b.constant("b2", (g.normal(size=cout) * 0.3).astype(np.float32))],
                 {"padding": "VALID", "stride_w": stride, "stride_h": stride}, name="c2")
    b.output(z)
    return b, {"x": (-1.0, 1.0), "c1": (-2.0, 1.6), "c2": (-3.0, 2.4)}


def _accumulator(step, c):
    kern = conv.accumulate_depthwise if step.op == "DEPTHWISE_CONV_2D" else conv.accumulate
    return kern(c, step.w_code, step.x_zero_point, step.stride, step.dilation, step.padding)


def _codes_and_acc(prog, steps, img):
    """(c1's codes, c2's exact accumulator) of our program on a uint8 image of any size."""
    env = {}
    prog.inputs[0].run(env, img)
    c1 = steps[0].reference(env[steps[0].x])
    return c1, _accumulator(steps[1], c1)


def _designed_input(prog, steps, K, seed):
    """BLOCKS x BLOCKS blocks of K x K pixels, each taken from random pools where one of the c2 accumulators
    over it (the output at the block's corner) is within 2**s + 2 of a tie with an unsaturated code, spread
    evenly over (sign, distance to the tie)."""
    st = steps[1]
    k = st.bias_shift
    near = (1 << conv.sixteen_bit_floor_bits(np.int16, np.int16, k)) + 2
    g = np.random.default_rng(seed)
    groups, blocks, pool = {}, [], 480 // K
    for _ in range(ROUNDS[K]):
        img = g.integers(0, 256, (1, K * pool, K * pool, 3)).astype(np.uint8)
        _, acc = _codes_and_acc(prog, steps, img)
        at = (np.arange(pool) * K) // st.stride[0]
        a = acc[0][np.ix_(at, at)]
        d = a - ((a >> k) << k) - (1 << (k - 1))
        r = conv.shift_round_half_away(a, k)
        q = conv.requantize(a, st.bias_row0, st.multiplier, k, st.total_shift, st.out_zero_point, st.out_dtype)
        ok = (np.abs(d) <= near) & (np.abs(r) < 32000) & (np.abs(r + st.bias_row0) < 32000) & (np.abs(q) < 32000)
        for i, j, c in np.argwhere(ok):
            groups.setdefault((int(np.sign(a[i, j, c])), int(d[i, j, c])), []).append(len(blocks))
            blocks.append(img[0, K * i:K * i + K, K * j:K * j + K])
    out = g.integers(0, 256, (1, K * BLOCKS, K * BLOCKS, 3)).astype(np.uint8)
    keys, n = sorted(groups), 0
    while n < BLOCKS * BLOCKS and any(groups[key] for key in keys):
        for key in keys:
            if groups[key] and n < BLOCKS * BLOCKS:
                i, j = divmod(n, BLOCKS)
                out[0, K * i:K * i + K, K * j:K * j + K] = blocks[groups[key].pop()]
                n += 1
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_vendor_floors_16_bit_accumulators_by_k_minus_16_bits_before_rounding(name):
    _skip_without_vendor()
    import calibrator_custom
    (seed, K, cin, cout, dw, stride, bf, wmu), k = CASES[name]
    b, ranges = _chain(seed, K, cin, cout, dw, stride, bf, wmu)
    path = vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c2"], extra="[CONV_CONFIG]\ntensor_arrays=c1;\n"),
                         f"i16ties_{name}")
    model = load_model(path)
    prog = engine.prepare(model)
    steps = [s for s in prog.steps if isinstance(s, engine.ConvStep)]
    st = steps[1]
    assert st.w_code.dtype == np.int16 and model.main.tensors[st.x].dtype == "INT16"
    assert st.bias_shift == k
    s = conv.sixteen_bit_floor_bits(np.int16, st.w_code.dtype, k)
    x = _designed_input(prog, steps, K, seed)
    sim = calibrator_custom.fixed_simulator(str(path))
    sim.set_input(0, x)
    sim.invoke()
    ref = vo.oracle().fixed_sim(str(path), x)
    assert vo.assert_outputs_code_for_code(sim, ref, name) > 0
    # the codes where the floor matters: our codes with the single rounding instead differ there
    _, acc = _codes_and_acc(prog, steps, x)
    single = conv.requantize(acc, st.bias_row0, st.multiplier, st.bias_shift, st.total_shift, st.out_zero_point,
                             st.out_dtype)
    floored = conv.requantize(acc, st.bias_row0, st.multiplier, st.bias_shift, st.total_shift, st.out_zero_point,
                              st.out_dtype, s)
    differ = int((single != floored).sum())
    assert differ >= 20, f"only {differ} codes where the floor matters"
