"""Channel equalization: the rescaled float model computes the same outputs, the channel groups are the ones the
op semantics allow, and each group's factor is the rule's, computed here by a naive loop from the statistics."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibrator_custom.calib import collect_stats_arrays
from calibrator_custom.errors import ConfigError
from calibrator_custom.interpreter import Interpreter
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.pipeline.equalize import EqualizeOptions, channel_factor, equalize

SAME = {"padding": "SAME", "stride_w": 1, "stride_h": 1}
#: output-channel gains of the first conv: channel ranges far apart, as in real networks
SPREAD = np.array([1.0, 0.5, 0.1, 2.0, 0.05, 1.0, 3.0, 0.2], np.float32)


def _conv(b, x, cin, cout, k, name, rng, act="NONE", gains=None):
    w = (rng.standard_normal((cout, k, k, cin)) / np.sqrt(k * k * cin)).astype(np.float32)
    bias = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    if gains is not None:
        w, bias = w * gains.reshape(-1, 1, 1, 1), bias * gains
    return b.op("CONV_2D", [x, b.constant(f"{name}_w", w), b.constant(f"{name}_b", bias)],
                {**SAME, "fused_activation_function": act}, name=name)


def _net():
    """conv -> PRELU -> depthwise -> 1x1 conv -> ADD (residual) -> max pool -> channel PAD + 1x1 conv -> ADD
    -> 1x1 conv (RELU6) -> 1x1 conv -> output."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3))
    t1 = _conv(b, x, 3, 8, 3, "t1", rng, gains=SPREAD)
    p1 = b.op("PRELU", [t1, b.constant("alpha", np.full((1, 1, 8), 0.2, np.float32))], name="p1")
    dw = (rng.standard_normal((1, 3, 3, 8)) * 0.3 * np.linspace(0.2, 2, 8)).astype(np.float32)
    d1 = b.op("DEPTHWISE_CONV_2D", [p1, b.constant("d1_w", dw), b.constant("d1_b", np.zeros(8, np.float32))],
              {**SAME, "depth_multiplier": 1}, name="d1")
    c2 = _conv(b, d1, 8, 8, 1, "c2", rng)
    a1 = b.op("ADD", [p1, c2], {}, name="a1")
    m1 = b.op("MAX_POOL_2D", [a1], {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
                                    "filter_height": 2}, name="m1")
    pd = b.op("PAD", [m1, b.constant("pads", np.array([[0, 0], [0, 0], [0, 0], [0, 4]], np.int32))], name="pd")
    c3 = _conv(b, m1, 8, 12, 1, "c3", rng)
    a2 = b.op("ADD", [pd, c3], {}, name="a2")
    c4 = _conv(b, a2, 12, 6, 1, "c4", rng, act="RELU6")
    out = _conv(b, c4, 6, 4, 1, "out", rng)
    b.output(out)
    return b.build()


def _stats(model, feeds, folder):
    path = folder / "net.tflite"
    model.save(path)
    return collect_stats_arrays(path, feeds)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    model = _net()
    rng = np.random.default_rng(0)
    feeds = [[rng.standard_normal((1, 8, 8, 3)).astype(np.float32)] for _ in range(6)]
    stats = _stats(model, feeds, tmp_path_factory.mktemp("eq"))
    measured = ["p1", "d1", "m1", "a2", "c4"]  # the convs' data inputs (x is the graph input)
    eq_model, eq = equalize(model, stats, measured)
    return model, feeds, stats, measured, eq_model, eq


def _run(model, feed):
    return Interpreter(model).run(list(feed), keep="all")


def test_the_equalized_model_computes_the_same_outputs(case):
    model, feeds, _, _, eq_model, eq = case
    assert eq.scales, "nothing was equalized"
    out = model.main.outputs[0]
    for feed in feeds:
        ref, got = _run(model, feed)[out], _run(eq_model, feed)[out]
        assert got.shape == ref.shape and got.dtype == ref.dtype
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


def test_the_rescaled_tensors_are_the_originals_divided_per_channel(case):
    model, feeds, _, _, eq_model, eq = case
    names = [t.name for t in model.main.tensors]
    for feed in feeds[:2]:
        ref, got = _run(model, feed), _run(eq_model, feed)
        for name, s in eq.scales.items():
            i = names.index(name)
            assert got[i].shape == ref[i].shape
            np.testing.assert_allclose(got[i], ref[i] / s, rtol=1e-4, atol=1e-5 * float(np.abs(ref[i] / s).max()))


def test_channels_joined_by_per_channel_ops_share_one_factor(case):
    eq = case[5]
    s = eq.scales
    # PRELU, ADD, MAX_POOL and the channel PAD join channel c of t1, p1, c2, a1, m1, pd (shifted by 0), c3, a2
    for name in ("t1", "p1", "c2", "a1", "m1"):
        np.testing.assert_array_equal(s[name], s["p1"])
    for name in ("pd", "c3", "a2"):
        np.testing.assert_array_equal(s[name][:8], s["p1"])
    # the PAD's new channels join only c3's and a2's channels 8-11 (their own group)
    np.testing.assert_array_equal(s["pd"][8:], s["a2"][8:])
    np.testing.assert_array_equal(s["c3"][8:], s["a2"][8:])


def test_graph_ends_and_clamps_keep_factor_one(case):
    eq = case[5]
    assert "x" not in eq.scales  # the graph input
    assert "out" not in eq.scales  # the graph output
    assert "c4" not in eq.scales  # RELU6 does not commute with a factor
    assert set(eq.convs) == {"t1", "d1", "c2", "c3", "c4"}  # the producers and readers of rescaled tensors


def test_each_factor_is_the_rule_on_the_statistics(case):
    """A group's rho is the largest channel range over its measured tensor's widest, over the group's measured
    tensors; the factor clip(rho ** 0.5, 1/16, 1) (naive per-channel loops here)."""
    _, _, stats, _, _, eq = case

    def rel(name):
        t = stats.tensors[name]
        r = [max(abs(lo), abs(hi)) for lo, hi in zip(t.channel_min, t.channel_max)]
        return [v / max(r) for v in r]
    p1, m1, a2, d1 = rel("p1"), rel("m1"), rel("a2"), rel("d1")
    expected_main = [min(1.0, max(1 / 16, max(p1[c], m1[c], a2[c]) ** 0.5)) for c in range(8)]
    expected_tail = [min(1.0, max(1 / 16, a2[c] ** 0.5)) for c in range(8, 12)]
    expected_d1 = [min(1.0, max(1 / 16, d1[c] ** 0.5)) for c in range(8)]
    np.testing.assert_allclose(eq.scales["p1"], expected_main, rtol=1e-6)
    np.testing.assert_allclose(eq.scales["a2"][8:], expected_tail, rtol=1e-6)
    np.testing.assert_allclose(eq.scales["d1"], expected_d1, rtol=1e-6)


def test_the_original_model_is_left_unchanged(case):
    model = case[0]
    fresh = _net()
    for t, u in zip(model.main.tensors, fresh.main.tensors):
        a, b = model.tensor_data(t), fresh.tensor_data(u)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)


def test_no_measured_tensor_changes_nothing(case):
    model, _, stats, _, _, _ = case
    eq_model, eq = equalize(model, stats, [])
    assert not eq.scales and eq.convs == () and eq.scaled_channels == 0


def test_a_shared_weight_keeps_its_convs_channels(tmp_path):
    rng = np.random.default_rng(1)
    b = ModelBuilder()
    x = b.input("x", (1, 6, 6, 4))
    w = b.constant("w", (rng.standard_normal((4, 1, 1, 4)) * SPREAD[:4].reshape(-1, 1, 1, 1)).astype(np.float32))
    bias = b.constant("b", np.zeros(4, np.float32))
    y1 = b.op("CONV_2D", [x, w, bias], dict(SAME), name="y1")
    y2 = b.op("CONV_2D", [y1, w, bias], dict(SAME), name="y2")
    y3 = _conv(b, y2, 4, 2, 1, "y3", rng)
    b.output(y3)
    model = b.build()
    feeds = [[rng.standard_normal((1, 6, 6, 4)).astype(np.float32)] for _ in range(3)]
    stats = _stats(model, feeds, tmp_path)
    _, eq = equalize(model, stats, ["y1", "y2"])
    assert "y1" not in eq.scales and "y2" not in eq.scales  # both convs of the shared weight are fixed


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=32), st.floats(0.05, 1.0), st.floats(1 / 256, 1.0))
def test_channel_factor_matches_a_naive_loop(rho, exponent, min_scale):
    options = EqualizeOptions(exponent, min_scale)
    got = channel_factor(np.array(rho), options)
    assert got.shape == (len(rho),) and got.dtype == np.float64
    for r, f in zip(rho, got):
        want = 1.0 if r == 0 else min(1.0, max(min_scale, r ** exponent))
        assert f == float(np.float32(want))
        assert min(min_scale, 1.0) * (1 - 1e-6) <= f <= 1.0


@pytest.mark.parametrize("kw", [{"exponent": 1.5}, {"exponent": -0.1}, {"min_scale": 0.0}, {"min_scale": 2.0}])
def test_bad_options_are_refused(kw):
    with pytest.raises(ConfigError, match=next(iter(kw))):
        EqualizeOptions(**kw)
