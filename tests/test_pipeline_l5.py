"""pipeline/l5.py and pipeline/options.py: the L5 search's options and the overrides its plans share."""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from calibrator_custom.pipeline import l5, options
from calibrator_custom.pipeline.l5 import (L5_CHECK_SAMPLES, L5_NOISE_PASSES, L5_NOISE_SAMPLES, L5_RANGE_SAMPLES,
                                          L5_SAMPLES, L5Options)
from calibrator_custom.pipeline.options import PlanOverrides
from calibrator_custom.quant.qparam import QuantParamOverrides
from calibrator_custom.quant.ranges import Range


def test_l5_options_are_frozen_with_the_documented_defaults():
    """docs/quant_levels.md: L5 measures on the first 8 calibration samples (input ranges on the first 3,
    per-conv errors on at most the first 3 within 48 float-model passes, the bias check on the next 3),
    with the threshold 0.002 (the CLI's -sth default)."""
    o = L5Options()
    assert (o.sensitivity_threshold, o.samples, o.range_samples, o.noise_samples, o.noise_passes,
            o.check_samples) == (0.002, 8, 3, 3, 48, 3)
    assert (L5_SAMPLES, L5_RANGE_SAMPLES, L5_NOISE_SAMPLES, L5_NOISE_PASSES, L5_CHECK_SAMPLES) == (8, 3, 3, 48, 3)
    assert o.int16_headroom == l5.L5_INT16_HEADROOM == 1.25
    assert o.leave_one_out is l5.L5_LEAVE_ONE_OUT is True
    assert (o.shared_inputs, o.per_tensor_data, o.upgradable) == (False, False, None)  # our own dialect
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.samples = 3  # type: ignore[misc]


def test_plan_overrides_hand_every_override_to_build_plan(monkeypatch):
    seen = {}

    def fake_build_plan(pi, level, recommended_16=frozenset(), **kw):
        seen.update(pi=pi, level=level, recommended_16=recommended_16, **kw)
        return "plan"

    monkeypatch.setattr(options, "build_plan", fake_build_plan)
    ov = QuantParamOverrides(ranges={1: Range(-1.0, 1.0)}, u8_ranges={2: Range(0.0, 1.0)},
                             weights={3: (None, np.ones(2))}, bits={4: 16}, const_data={5: np.zeros(1)})
    po = PlanOverrides.from_quant_param(ov)
    deltas = {6: np.ones(2)}
    assert po.plan("pi", "L5", frozenset({7}), bias_deltas=deltas) == "plan"
    assert seen == dict(pi="pi", level="L5", recommended_16=frozenset({7}), range_overrides=ov.ranges,
                        u8_overrides=ov.u8_ranges, weight_overrides=ov.weights, bits_overrides=ov.bits,
                        bias_deltas=deltas, const_data=ov.const_data, tick=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        po.bits_overrides = {}  # type: ignore[misc]
    changed = dataclasses.replace(po, u8_overrides={})
    assert changed.u8_overrides == {} and changed.range_overrides is po.range_overrides


def test_refine_l5_measures_on_the_first_options_samples(tmp_path, monkeypatch):
    """refine_l5 collects float activations on ``options.samples`` samples, not more, and hands the
    options' sample counts to the float simulation."""
    from calibrator_custom.calib import collect_stats_arrays
    from calibrator_custom.config import load_input_config
    from calibrator_custom.model.graph import load_model
    from calibrator_custom.plan import PlanInputs
    from calibrator_custom.progress_display import as_reporter
    from test_pipeline_convert import MEAN, STD, _ini, _small_net

    model_path = _small_net(tmp_path / "net_float.sim")
    rng = np.random.default_rng(3)
    feeds = [[(rng.integers(0, 256, (1, 12, 12, 3)).astype(np.float32) - MEAN) / STD] for _ in range(5)]
    model = load_model(model_path)
    pi = PlanInputs.create(model, collect_stats_arrays(model_path, feeds), load_input_config(_ini(tmp_path / "c.ini"), model))
    counts = []
    real = l5._FloatSim.collect.__func__

    def spy(cls, pi_, plan_, fs, tick=None, **kw):
        counts.append((len(fs), kw))
        sim = real(cls, pi_, plan_, fs, tick, **kw)
        assert len(sim.values) == len(fs) and sim.n_range == 1 and sim.n_noise == 2 and sim.check == [2]
        return sim

    monkeypatch.setattr(l5._FloatSim, "collect", classmethod(spy))
    po = PlanOverrides()
    plan = po.plan(pi, "L5")
    out = l5.refine_l5(pi, plan, feeds, po, L5Options(samples=3, range_samples=1, noise_samples=2, check_samples=1),
                       as_reporter(None))
    assert counts == [(3, dict(range_samples=1, noise_samples=2, check_samples=1))]
    assert out.level == "L5" and set(out.conv_bits) == set(plan.conv_bits)


@pytest.mark.parametrize("keep", [True, False])
def test_kept_bias_correction_leaves_the_input_means_in_the_plan(tmp_path, monkeypatch, keep):
    """Where L5 keeps its bias correction, the plan holds, per bias-corrected conv, the mean of each channel
    of its input over the samples the correction was measured on (the float interpreter's, computed here
    by hand); where it drops it, none."""
    import calibrator_custom
    from calibrator_custom.calib import collect_stats_arrays
    from calibrator_custom.config import load_input_config
    from calibrator_custom.model.graph import load_model
    from calibrator_custom.plan import PlanInputs
    from calibrator_custom.progress_display import as_reporter
    from test_pipeline_convert import MEAN, STD, _ini, _small_net

    model_path = _small_net(tmp_path / "net_float.sim")
    rng = np.random.default_rng(3)
    feeds = [[(rng.integers(0, 256, (1, 12, 12, 3)).astype(np.float32) - MEAN) / STD] for _ in range(5)]
    model = load_model(model_path)
    pi = PlanInputs.create(model, collect_stats_arrays(model_path, feeds), load_input_config(_ini(tmp_path / "c.ini"), model))
    monkeypatch.setattr(l5, "_joint_nsrs", lambda *a, **k: [1.0, 0.5] if keep else [0.5, 1.0])
    po = PlanOverrides()
    out = l5.refine_l5(pi, po.plan(pi, "L5"), feeds, po,
                       L5Options(samples=3, range_samples=1, noise_samples=2, check_samples=1), as_reporter(None))
    if not keep:
        assert out.conv_input_means == {}
        return
    fs = calibrator_custom.float_simulator(model_path)
    eight = [c for c in pi.convs if out.conv_bits[c.op_index] == 8]
    assert eight and set(out.conv_input_means) == {c.op_index for c in eight}
    for c in eight:
        name = pi.graph.tensors[c.data].name
        per_sample = []
        for feed in feeds[:2]:  # the samples before the check sample (samples=3, check_samples=1)
            fs.set_input(0, feed[0])
            fs.invoke(keep="all")
            x = fs.get_tensor(name).astype(np.float64)
            per_sample.append(x.reshape(-1, x.shape[-1]).mean(axis=0))
        np.testing.assert_allclose(out.conv_input_means[c.op_index], np.mean(per_sample, axis=0), rtol=1e-5,
                                   atol=1e-6)


def test_noise_samples_fit_the_float_pass_budget():
    """_noise_samples: a chain of convs k -> k+1 -> ...: the run downstream of conv k costs the MACs of k
    and every later conv; hand-computed passes, samples = passes_allowed // passes, within [1, most]."""
    from types import SimpleNamespace as NS

    steps = [NS(op_index=k, inputs=[k], outputs=[k + 1]) for k in range(4)]
    pi = NS(interp=NS(steps=steps))
    macs = {0: 10, 1: 20, 2: 30, 3: 40}  # total 100
    convs = [NS(op_index=k) for k in range(4)]
    # downstream costs: 100, 90, 70, 40 -> 3.0 passes
    assert l5._noise_samples(pi, convs, macs, 3, passes_allowed=9) == 3
    assert l5._noise_samples(pi, convs, macs, 3, passes_allowed=8) == 2
    assert l5._noise_samples(pi, convs, macs, 3, passes_allowed=2) == 1
    assert l5._noise_samples(pi, convs, macs, 2, passes_allowed=100) == 2
    assert l5._noise_samples(pi, convs[3:], macs, 9, passes_allowed=2.1) == 5  # 0.4 passes


def _pi_plan(tmp_path, n=4):
    from calibrator_custom.calib import collect_stats_arrays
    from calibrator_custom.config import load_input_config
    from calibrator_custom.model.graph import load_model
    from calibrator_custom.plan import PlanInputs
    from test_pipeline_convert import MEAN, STD, _ini, _small_net

    model_path = _small_net(tmp_path / "net_float.sim")
    rng = np.random.default_rng(5)
    feeds = [[rng.uniform(-1.0, 1.0, (1, 12, 12, 3)).astype(np.float32)] for _ in range(n)]
    model = load_model(model_path)
    config = load_input_config(_ini(tmp_path / "c.ini"), model)
    pi = PlanInputs.create(model, collect_stats_arrays(model_path, feeds), config)
    return pi, PlanOverrides().plan(pi, "L5"), feeds, MEAN, STD


def test_quant_without_narrows_to_the_other_samples_ranges():
    """quant_without: the planner's quantization (activation_quant) of the range narrowed to the other
    samples' extremes, per tensor and per channel, the channel-shift limit kept; wider extremes and
    other types change nothing."""
    from calibrator_custom.pipeline.float_sim import quant_without
    from calibrator_custom.quant.planner import activation_quant

    dq = activation_quant(Range(0.0, 6.0), "UINT8")
    assert quant_without(dq, np.array([0.5, 1.0]), np.array([2.0, 3.0])) == activation_quant(Range(0.0, 3.0), "UINT8")
    assert quant_without(dq, np.array([-1.0]), np.array([7.0])) == dq
    cmin, cmax = [-1.0, 0.0, 0.0], [4.0, 1.0, 0.25]
    dq = activation_quant(Range(-1.0, 4.0), "UINT8", cmin, cmax, 3)
    lo, hi = np.array([-0.5, 0.0, -1.0]), np.array([5.0, 0.5, 0.125])
    # channel 0 narrowed below (the tensor range with it), 1 and 2 above
    want = activation_quant(Range(-0.5, 4.0), "UINT8", [-0.5, 0.0, 0.0], [4.0, 0.5, 0.125], 3)
    assert len(want.scale) == 3 and quant_without(dq, lo, hi) == want
    capped = activation_quant(Range(-1.0, 4.0), "UINT8", cmin, cmax, 3, max_shift=1)
    assert capped != dq
    assert quant_without(capped, lo, hi) == activation_quant(Range(-0.5, 4.0), "UINT8", [-0.5, 0.0, 0.0],
                                                             [4.0, 0.5, 0.125], 3, max_shift=1)
    assert quant_without(activation_quant(Range(-1.0, 1.0), "INT16"), lo, hi).qtype == "INT16"


def _loo_reference(pi, feeds, data, cached):
    """Per tensor of ``data``: per cached sample, the channel min / max over the other feeds (plain float runs)."""
    runs = [pi.interp.run(list(f), keep=data) for f in feeds]
    out = {}
    for d in data:
        rows = [r[d].reshape(-1, r[d].shape[-1]) for r in runs]
        out[d] = (np.array([np.min([o.min(axis=0) for m, o in enumerate(rows) if m != n], axis=0) for n in range(cached)]),
                  np.array([np.max([o.max(axis=0) for m, o in enumerate(rows) if m != n], axis=0) for n in range(cached)]))
    return out


def _assert_loo_equal(got, want, cached, pi):
    assert sorted(got) == sorted(want) and got
    for d, (lo, hi) in got.items():
        assert lo.shape == hi.shape == (cached, pi.graph.tensors[d].shape[-1])
        np.testing.assert_array_equal(lo, want[d][0])
        np.testing.assert_array_equal(hi, want[d][1])


@pytest.mark.parametrize("n", [5, 13])
def test_leave_one_out_ranges_from_the_statistics_sample_log(tmp_path, n):
    """leave_one_out_ranges with statistics collected in this process: the per-sample channel extremes their
    log keeps (the first 8 samples one by one, the later ones merged) give, with no float run of the other
    feeds, exactly the min / max over the other feeds of a loop over plain float runs."""
    from calibrator_custom.pipeline.float_sim import _FloatSim

    pi, plan, feeds, _, _ = _pi_plan(tmp_path, n)
    eight = [c for c in pi.convs if plan.conv_bits.get(c.op_index) == 8 and pi.step_of(c.op_index) is not None]
    sim = _FloatSim.collect(pi, plan, feeds[:3], noise_samples=2, check_samples=1)
    data = sorted({c.data for c in eight if c.data not in pi.graph.inputs})
    calls = []
    pi.interp.run = (lambda run: lambda *a, **k: calls.append(1) or run(*a, **k))(pi.interp.run)
    got = l5.leave_one_out_ranges(pi, plan, sim, eight, PlanOverrides(), [])
    assert calls == []  # nothing run
    del pi.interp.run
    _assert_loo_equal(got, _loo_reference(pi, feeds, data, 3), 3, pi)


def test_leave_one_out_ranges_are_the_other_feeds_channel_extremes(tmp_path):
    """leave_one_out_ranges without the statistics' per-sample log (statistics loaded from a file): per 8-bit
    conv data tensor and cached sample, the per-channel min / max of the feeds other than that one (the
    cached ones and the rest, run once on the pixel grid), against a loop over plain float runs; nothing when the statistics
    are not of these feeds."""
    from dataclasses import replace

    from calibrator_custom.pipeline.float_sim import _FloatSim

    pi, plan, feeds, _, _ = _pi_plan(tmp_path, 5)
    pi = replace(pi, stats=replace(pi.stats, samples=None))
    eight = [c for c in pi.convs if plan.conv_bits.get(c.op_index) == 8 and pi.step_of(c.op_index) is not None]
    sim = _FloatSim.collect(pi, plan, feeds[:3], noise_samples=2, check_samples=1)
    got = l5.leave_one_out_ranges(pi, plan, sim, eight, PlanOverrides(), feeds[3:])
    data = sorted({c.data for c in eight if c.data not in pi.graph.inputs})
    # the rest are run on the pixel grid, as the cached samples are in refine_l5 (here: as given)
    _assert_loo_equal(got, _loo_reference(pi, feeds[:3] + l5.on_pixel_grid(pi, plan, feeds[3:]), data, 3), 3, pi)
    assert l5.leave_one_out_ranges(pi, plan, sim, eight, PlanOverrides(), feeds[3:4]) == {}


def test_leave_one_out_ranges_refuse_a_log_of_other_samples(tmp_path):
    """Cached samples that are not the statistics' first ones (here the 2nd to 4th): the log's extremes are not
    used; without the other feeds, nothing."""
    from calibrator_custom.pipeline.float_sim import _FloatSim

    pi, plan, feeds, _, _ = _pi_plan(tmp_path, 5)
    eight = [c for c in pi.convs if plan.conv_bits.get(c.op_index) == 8 and pi.step_of(c.op_index) is not None]
    sim = _FloatSim.collect(pi, plan, feeds[1:4], noise_samples=2, check_samples=1)
    assert l5.leave_one_out_ranges(pi, plan, sim, eight, PlanOverrides(), []) == {}


def test_on_pixel_grid_rounds_image_inputs_to_the_chips_pixels(tmp_path):
    """L5 measures on what the chip gets: an RGB input (mean 127.5, std 127.5) is rounded half up to uint8
    pixels, clipped to [0, 255] and normalized again; hand-computed per element."""
    pi, plan, feeds, mean, std = _pi_plan(tmp_path, 2)
    feeds = [[np.concatenate([f[0][..., :1] * 3.0, f[0][..., 1:]], axis=-1)] for f in feeds]  # some beyond [0, 255]
    got = l5.on_pixel_grid(pi, plan, feeds)
    assert len(got) == len(feeds) and all(len(g) == 1 for g in got)
    for g, f in zip(got, feeds):
        assert g[0].shape == f[0].shape and g[0].dtype == np.float32
        x = f[0].astype(np.float64).ravel()
        want = []
        for v in x:
            p = np.floor(v * std + mean + 0.5)
            want.append((min(255.0, max(0.0, p)) - mean) / std)
        np.testing.assert_allclose(g[0].ravel(), np.array(want), rtol=0, atol=1e-6)
        assert np.abs(g[0] - f[0]).max() > 1e-4  # the feeds were not on the grid


def test_on_pixel_grid_leaves_non_image_inputs():
    from types import SimpleNamespace as NS

    pi = NS(graph=NS(inputs=[0]))
    plan = NS(input_specs={})
    x = np.array([[0.123456]], np.float32)
    assert l5.on_pixel_grid(pi, plan, [[x]])[0][0] is x


def test_int16_headroom_widens_only_int16_activations():
    """Every INT16 activation's range times the factor; UINT8 tensors, model inputs and the ranges given
    in the overrides (an imported quant_param's) keep theirs; factor 1: nothing."""
    from types import SimpleNamespace as NS

    from calibrator_custom.plan import TensorQuant

    tensors = {0: TensorQuant("INT16", (1.0,), (0,), (-2.0,), (2.0,)),
               1: TensorQuant("INT16", (1.0,), (0,), (-0.5,), (3.0,)),
               2: TensorQuant("UINT8", (1.0,), (0,), (0.0,), (6.0,)),
               3: TensorQuant("INT16", (1.0,), (0,), (-1.0,), (1.0,)),
               4: TensorQuant("INT16", (1.0,), (0,), (-4.0, -1.0), (1.0, 2.0))}
    pi = NS(graph=NS(inputs=[0], operators=[]), interp=NS(steps=[]))
    plan = NS(tensors=tensors)
    po = PlanOverrides(range_overrides={3: Range(-1.0, 1.0)})
    got = l5.int16_headroom(pi, plan, po, 1.5)
    assert set(got) == {1, 4}
    assert (got[1].lo, got[1].hi) == (-0.75, 4.5)
    assert (got[4].lo, got[4].hi) == (-6.0, 3.0)
    assert l5.int16_headroom(pi, plan, po, 1.0) == {}



def _serial_noise_powers(sim, eight, dquant):
    """The per-conv measurement as a plain loop in this process (the reference)."""
    power = np.zeros((len(eight), len(sim.targets)))
    for r, c in enumerate(eight):
        for n in range(sim.n_noise):
            y8 = sim.conv_8bit(c, n, dquant[c.op_index])
            power[r] += sim.output_error(n, sim.downstream(n, {sim.pi.step_of(c.op_index).outputs[0]: y8}))
    return power


def test_conv_noise_powers_are_bit_identical_in_1_2_3_processes(tmp_path):
    """conv_noise_powers in forked workers (round-robin convs) gives the plain loop's array bit for bit,
    with one tick per conv."""
    from calibrator_custom.pipeline.float_sim import _FloatSim

    pi, plan, feeds, _, _ = _pi_plan(tmp_path, 4)
    eight = [c for c in pi.convs if plan.conv_bits.get(c.op_index) == 8 and pi.step_of(c.op_index) is not None]
    assert len(eight) >= 2
    dquant = {c.op_index: plan.u8_views.get(c.data) or plan.tensors[c.data] for c in eight}
    sim = _FloatSim.collect(pi, plan, feeds, noise_samples=2, check_samples=1)
    want = _serial_noise_powers(sim, eight, dquant)
    assert want.shape == (len(eight), len(sim.targets)) and want.dtype == np.float64 and (want > 0).all()
    for n in (1, 2, 3):
        ticks = []
        got = l5.conv_noise_powers(sim, eight, dquant, n, lambda: ticks.append(1))
        assert got.shape == want.shape and got.dtype == want.dtype
        assert got.tobytes() == want.tobytes(), n
        assert len(ticks) == len(eight)


def test_per_tensor_data_is_one_scale_over_the_channel_ranges_union():
    """_per_tensor: a per-channel UINT8 view becomes the planner's per-tensor quantization of the union of
    its channel ranges (hand-computed: [-1, 3] over 255 codes, zero point round(255 / 4) = 64); per-tensor
    UINT8 and INT16 quantizations are unchanged."""
    from calibrator_custom.quant.planner import activation_quant
    view = activation_quant(Range(-1.0, 3.0), "UINT8", (-1.0, -0.25, 0.0), (0.5, 3.0, 1.0), axis=3)
    assert len(view.scale) == 3
    got = l5._per_tensor(view)
    assert len(got.scale) == 1 and got.qtype == "UINT8"
    assert got.scale[0] == pytest.approx(4.0 / 255, rel=1e-6) and got.zero_point == (64,)
    assert got == activation_quant(Range(-1.0, 3.0), "UINT8")
    flat = activation_quant(Range(0.0, 6.0), "UINT8")
    wide = activation_quant(Range(-2.0, 2.0), "INT16")
    assert l5._per_tensor(flat) is flat and l5._per_tensor(wide) is wide


def test_upgrade_items_are_the_convs_reading_one_tensor_when_inputs_are_shared():
    """_upgrade_items: each conv alone in our dialect; in the vendor's (shared_inputs) the 8-bit convs reading
    one data tensor form one item, in the order of their first conv."""
    from types import SimpleNamespace
    eight = [SimpleNamespace(data=d) for d in (7, 3, 7, 9, 3)]
    assert l5._upgrade_items(eight, False) == [(0,), (1,), (2,), (3,), (4,)]
    assert l5._upgrade_items(eight, True) == [(0, 2), (1, 4), (3,)]


def test_conv_noise_powers_of_an_item_put_all_its_convs_at_8_bit(tmp_path):
    """An item's row is the error with every conv of the item at 8 bit at once (a plain loop replacing
    both outputs), a one-conv item's the conv's own row; one tick per item."""
    from calibrator_custom.pipeline.float_sim import _FloatSim

    pi, plan, feeds, _, _ = _pi_plan(tmp_path, 4)
    eight = [c for c in pi.convs if plan.conv_bits.get(c.op_index) == 8 and pi.step_of(c.op_index) is not None]
    assert len(eight) >= 2
    dquant = {c.op_index: plan.u8_views.get(c.data) or plan.tensors[c.data] for c in eight}
    sim = _FloatSim.collect(pi, plan, feeds, noise_samples=2, check_samples=1)
    want = np.zeros(len(sim.targets))
    for n in range(sim.n_noise):
        replaced = {sim.pi.step_of(c.op_index).outputs[0]: sim.conv_8bit(c, n, dquant[c.op_index]) for c in eight[:2]}
        want += sim.output_error(n, sim.downstream(n, replaced))
    ticks = []
    got = l5.conv_noise_powers(sim, eight, dquant, 1, lambda: ticks.append(1), items=[(0, 1), (1,)])
    assert got.shape == (2, len(sim.targets)) and got.dtype == np.float64
    np.testing.assert_allclose(got[0], want, rtol=1e-12)
    assert got[1].tobytes() == _serial_noise_powers(sim, eight, dquant)[1].tobytes()
    assert not np.allclose(got[0], got[1]) and len(ticks) == 2


def test_l5_conversion_writes_the_same_bytes_for_1_2_3_processes(tmp_path, monkeypatch):
    """convert(num_process=n) runs L5's measurements in n forked workers; the file is byte-identical to
    the single-process one (the CPU count is pretended 4 so that 3 means 3 workers)."""
    import os

    from calibrator_custom.calib import collect_stats_arrays
    from calibrator_custom.errors import InputError
    from calibrator_custom.pipeline.convert import convert
    from test_pipeline_convert import MEAN, STD, _ini, _small_net

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    model_path = _small_net(tmp_path / "net_float.sim")
    rng = np.random.default_rng(11)
    feeds = [[(rng.integers(0, 256, (1, 12, 12, 3)).astype(np.float32) - MEAN) / STD] for _ in range(8)]
    stats = collect_stats_arrays(model_path, feeds)
    ini = _ini(tmp_path / "c.ini")
    out = {}
    for n in (1, 2, 3):
        path = tmp_path / f"fixed{n}.sim"
        convert(model_path, ini, stats, quant_level="L5", calibration_feeds=feeds, output_path=path, num_process=n)
        out[n] = path.read_bytes()
    assert len(out[1]) > 1000
    assert out[2] == out[1] and out[3] == out[1]
    for bad in (0, 1.5, True):
        with pytest.raises(InputError, match="num_process"):
            convert(model_path, ini, stats, quant_level="L5", calibration_feeds=feeds, num_process=bad)


def test_l5_measurements_run_in_the_workers_not_here(tmp_path, monkeypatch):
    """With num_process=2 no conv is measured in this process (a spy on the per-output error sees
    only the workers' calls, which do not come back), and the result is still the plain loop's."""
    import os

    from calibrator_custom.pipeline.float_sim import _FloatSim

    pi, plan, feeds, _, _ = _pi_plan(tmp_path, 3)
    eight = [c for c in pi.convs if plan.conv_bits.get(c.op_index) == 8 and pi.step_of(c.op_index) is not None]
    dquant = {c.op_index: plan.u8_views.get(c.data) or plan.tensors[c.data] for c in eight}
    sim = _FloatSim.collect(pi, plan, feeds, noise_samples=1, check_samples=1)
    want = _serial_noise_powers(sim, eight, dquant)
    pids = []
    real = _FloatSim.output_error

    def spy(self, n, got):
        pids.append(os.getpid())
        return real(self, n, got)

    monkeypatch.setattr(_FloatSim, "output_error", spy)
    got = l5.conv_noise_powers(sim, eight, dquant, 2)
    assert got.tobytes() == want.tobytes()
    assert pids == []
    l5.conv_noise_powers(sim, eight, dquant, 1)
    assert pids == [os.getpid()] * len(eight)  # the spy does see calls made here


def test_int16_headroom_stops_at_what_the_op_can_output():
    """A sigmoid's INT16 output is widened up to [0, 1] only, a fused RELU6's up to 6, a TANH's within
    [-1, 1]; a range already at its bounds gets no override; an unbounded op's is widened in full."""
    from types import SimpleNamespace as NS

    from calibrator_custom.plan import TensorQuant

    def q(lo, hi):
        return TensorQuant("INT16", (1.0,), (0,), (lo,), (hi,))

    steps = [NS(op_index=0, op_name="LOGISTIC", outputs=[1]), NS(op_index=1, op_name="CONV_2D", outputs=[2]),
             NS(op_index=2, op_name="TANH", outputs=[3]), NS(op_index=3, op_name="LOGISTIC", outputs=[4]),
             NS(op_index=4, op_name="ADD", outputs=[5])]
    ops = [NS(options=None), NS(options=NS(fused_activation_function="RELU6")), NS(options=None),
           NS(options=None), NS(options=NS(fused_activation_function="NONE"))]
    pi = NS(graph=NS(inputs=[0], operators=ops), interp=NS(steps=steps))
    plan = NS(tensors={1: q(0.0, 0.9), 2: q(0.0, 5.0), 3: q(-0.5, 0.9), 4: q(0.0, 1.0), 5: q(-2.0, 4.0)})
    assert l5.value_bounds(pi) == {1: (0.0, 1.0), 2: (0.0, 6.0), 3: (-1.0, 1.0), 4: (0.0, 1.0)}
    got = l5.int16_headroom(pi, plan, PlanOverrides(), 1.25)
    assert set(got) == {1, 2, 3, 5}
    assert (got[1].lo, got[1].hi) == (0.0, 1.0)
    assert (got[2].lo, got[2].hi) == (0.0, 6.0)
    assert (got[3].lo, got[3].hi) == (-0.625, 1.0)
    assert (got[5].lo, got[5].hi) == (-2.5, 5.0)


def test_calibrator_l5_measures_with_leave_one_out_ranges_from_its_statistics(tmp_path, caplog):
    """The user's flow (calibrator invoked on 12 images, convert_fixed at L5, which gets the first 8 inputs
    recorded): L5 measures every cached sample with the other samples' ranges, from the statistics' log,
    without the other inputs (the same plan as leave_one_out_ranges given them)."""
    import logging

    import calibrator_custom
    from test_pipeline_convert import MEAN, STD, _ini, _small_net

    model_path = _small_net(tmp_path / "net_float.sim")
    rng = np.random.default_rng(3)
    pix = [rng.integers(0, 256, (1, 12, 12, 3)).astype(np.float32) for _ in range(12)]
    cal = calibrator_custom.calibrator(str(model_path), _ini(tmp_path / "c.ini"))
    for p in pix:
        cal.set_input(0, (p - MEAN) / STD)
        cal.invoke()
    assert len(cal.recorded_inputs()) == 8
    with caplog.at_level(logging.INFO, logger="calibrator_custom"):
        cal.convert_fixed(saved_path=str(tmp_path / "net_fixed.sim"), quant_level="L5")
    counts = [int(m.group(1)) for m in re.finditer(r"L5: (\d+) conv data tensor\(s\) measured with leave-one-out",
                                                    caplog.text)]
    assert counts and counts[0] > 0
    assert "no leave-one-out ranges" not in caplog.text
