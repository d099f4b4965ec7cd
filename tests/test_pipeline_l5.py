"""pipeline/l5.py and pipeline/options.py: the L5 search's options and the overrides its plans share."""
from __future__ import annotations

import dataclasses

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
