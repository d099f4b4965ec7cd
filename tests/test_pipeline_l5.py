"""pipeline/l5.py and pipeline/options.py: the L5 search's options and the overrides its plans share."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from calibrator_custom.pipeline import l5, options
from calibrator_custom.pipeline.l5 import L5_SAMPLES, L5_SENSITIVITY_SAMPLES, L5Options
from calibrator_custom.pipeline.options import PlanOverrides
from calibrator_custom.quant.qparam import QuantParamOverrides
from calibrator_custom.quant.ranges import Range


def test_l5_options_are_frozen_with_the_documented_defaults():
    """docs/quant_levels.md: L5 measures on the first 12 calibration samples, the per-conv sensitivity on
    the first 6, with the threshold 0.002 (the CLI's -sth default)."""
    o = L5Options()
    assert (o.sensitivity_threshold, o.samples, o.sensitivity_samples) == (0.002, 12, 6)
    assert (L5_SAMPLES, L5_SENSITIVITY_SAMPLES) == (12, 6)
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
    """refine_l5 collects float activations on ``options.samples`` samples, not more."""
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
    real = l5._Measure.collect.__func__

    def spy(cls, pi_, fs, tick=None):
        counts.append(len(fs))
        return real(cls, pi_, fs, tick)

    monkeypatch.setattr(l5._Measure, "collect", classmethod(spy))
    po = PlanOverrides()
    plan = po.plan(pi, "L5")
    out = l5.refine_l5(pi, plan, feeds, po, L5Options(samples=3, sensitivity_samples=2), as_reporter(None))
    assert counts == [3]
    assert out.level == "L5" and set(out.conv_bits) == set(plan.conv_bits)
