"""pipeline/bias_check.py: L2-L4's bias correction, kept by a two-fold check in the written dialect's arithmetic."""
from __future__ import annotations

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom.config import load_input_config
from calibrator_custom.model.graph import load_model
from calibrator_custom.pipeline import bias_check
from calibrator_custom.pipeline.convert import convert
from calibrator_custom.pipeline.options import PlanOverrides
from calibrator_custom.plan import PlanInputs
from calibrator_custom.progress_display import as_reporter
from test_pipeline_convert import _ini, small_case


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    d, path, pixels, feeds, stats = small_case(tmp_path_factory.mktemp("bias"), count=6, seed=5)
    model = load_model(path)
    pi = PlanInputs.create(model, stats, load_input_config(_ini(d / "c.ini"), model))
    return d, path, pixels, feeds, stats, pi


def _channel_means(path, feeds, tensor_name):
    """Per channel of ``tensor_name``, the mean over ``feeds`` of its per-sample channel means (float simulator)."""
    fs = calibrator_custom.float_simulator(path)
    per = []
    for f in feeds:
        fs.set_input(0, f[0])
        fs.invoke(keep="all")
        x = fs.get_tensor(tensor_name).astype(np.float64)
        per.append(x.reshape(-1, x.shape[-1]).mean(axis=0))
    return np.mean(per, axis=0)


@pytest.mark.parametrize("gains, kept", [((1.0, -0.5), True), ((-1.0, 0.5), False), ((0.0, 0.0), False),
                                         ((-0.1, -0.2), False)])
def test_the_correction_is_kept_when_the_two_folds_gain_on_average(net, gains, kept):
    """Fold 1 corrects with the first half's means and scores on the second half, fold 2 the other way round;
    kept when the mean gain is positive, and then with the means of all the inputs (computed here by the
    float simulator)."""
    d, path, _, feeds, _, pi = net
    po = PlanOverrides()
    plan = po.plan(pi, "L2")
    seen = []

    def make_scorer(fold):
        k = len(seen)
        seen.append([f[0] for f in fold])
        return lambda p: 20.0 + (gains[k] if p.conv_input_means else 0.0)

    messages = []
    out = bias_check.checked_bias_correction(pi, plan, po, feeds, make_scorer, as_reporter(messages.append))
    assert len(seen) == 2 and [len(s) for s in seen] == [3, 3]
    np.testing.assert_array_equal(np.concatenate(seen[0]), np.concatenate([f[0] for f in feeds[3:]]))
    np.testing.assert_array_equal(np.concatenate(seen[1]), np.concatenate([f[0] for f in feeds[:3]]))
    assert any(f"bias correction {'kept' if kept else 'dropped'} (two-fold check on 6" in m for m in messages)
    if not kept:
        assert out is plan and out.conv_input_means == {}
        return
    eight = [c for c in pi.convs if plan.conv_bits[c.op_index] == 8]
    assert eight and set(out.conv_input_means) == {c.op_index for c in eight}
    for c in eight:
        np.testing.assert_allclose(out.conv_input_means[c.op_index],
                                   _channel_means(path, feeds, pi.graph.tensors[c.data].name), rtol=1e-5, atol=1e-6)


def test_the_corrected_biases_remove_the_weights_mean_shift(net):
    """Each corrected bias is the float bias minus sum over taps (w_q * s - w) * mean(input channel), by loops
    over the taps, to within one bias code."""
    d, path, _, feeds, _, pi = net
    po = PlanOverrides()
    plan = po.plan(pi, "L2")
    out = bias_check.corrected_plan(pi, plan, po, bias_check.sample_means(pi, feeds))
    conv = next(c for c in pi.convs if c.op_name == "CONV_2D")
    w = np.asarray(pi.interp.constants[conv.weights], np.float64)
    qc = out.constants[conv.weights]
    s = np.asarray(qc.quant.scale, np.float64)
    mean = _channel_means(path, feeds, pi.graph.tensors[conv.data].name)
    want = np.asarray(pi.interp.constants[conv.bias], np.float64).copy()
    for o in range(w.shape[0]):
        for kh in range(w.shape[1]):
            for kw in range(w.shape[2]):
                for i in range(w.shape[3]):
                    want[o] -= (float(qc.data[o, kh, kw, i]) * s[o] - w[o, kh, kw, i]) * mean[i]
    qb = out.constants[conv.bias]
    bias_scale = np.asarray(qb.quant.scale, np.float64)
    got = qb.data.astype(np.float64) * bias_scale
    assert qb.data.shape == want.shape
    np.testing.assert_array_less(np.abs(got - want), bias_scale * 0.5 + 1e-12)
    before = plan.constants[conv.bias].data.astype(np.float64) * bias_scale
    assert np.any(np.abs(before - want) > bias_scale)  # the correction moved some bias by more than a code


def test_one_input_is_too_few_to_check(net):
    _, _, _, feeds, _, pi = net
    po = PlanOverrides()
    plan = po.plan(pi, "L2")
    messages = []
    out = bias_check.checked_bias_correction(pi, plan, po, feeds[:1], lambda f: (lambda p: 0.0),
                                             as_reporter(messages.append))
    assert out is plan and any("needs 2 calibration inputs, 1 given" in m for m in messages)


def _worst_sqnr_db(path, fixed_path, feeds, pixels):
    """Worst-output SQNR (dB, energies pooled over the samples) of a fixed model file against the float model."""
    fs, xs = calibrator_custom.float_simulator(path), calibrator_custom.fixed_simulator(fixed_path)
    sig = err = 0.0
    for f, p in zip(feeds, pixels):
        fs.set_input(0, f[0])
        fs.invoke()
        xs.set_input(0, p)
        xs.invoke()
        r, y = fs.get_output(0).astype(np.float64), xs.get_output(0).astype(np.float64)
        sig += float(np.sum(r * r))
        err += float(np.sum((r - y) ** 2))
    return 10 * np.log10(sig / err)


@pytest.mark.parametrize("level", ["L2", "L3", "L4"])
def test_convert_checks_in_the_fixed_simulators_arithmetic(net, level):
    """In our own dialect the check's score of the uncorrected plan on each held-out half is the worst-output
    SQNR of the same level converted without calibration inputs (no correction), run by fixed_simulator."""
    d, path, pixels, feeds, stats, _ = net
    ini = _ini(d / "c.ini")
    messages = []
    convert(path, ini, stats, quant_level=level, calibration_feeds=feeds, output_path=d / f"{level}_c.sim",
            progress=messages.append)
    (line,) = [m for m in messages if "bias correction kept" in m or "bias correction dropped" in m]
    plain = d / f"{level}_plain.sim"
    convert(path, ini, stats, quant_level=level, output_path=plain)
    want = [_worst_sqnr_db(path, plain, feeds[3:], pixels[3:]), _worst_sqnr_db(path, plain, feeds[:3], pixels[:3])]
    got = [float(part.split(" -> ")[0].split()[-1]) for part in line.split("held-out half: ")[1].split("; ")]
    np.testing.assert_allclose(got, want, atol=0.006)


def test_l1_gets_no_correction(net, monkeypatch):
    """L1 (the vendor's min/max level) has no bias correction, calibration inputs or not; L2 has one."""
    from calibrator_custom.pipeline import convert as convert_module
    d, path, _, feeds, stats, _ = net
    calls = []
    monkeypatch.setattr(convert_module, "checked_bias_correction", lambda pi, plan, *a, **k: calls.append(1) or plan)
    for level in ("L1", "L2"):
        convert(path, _ini(d / "c.ini"), stats, quant_level=level, calibration_feeds=feeds)
        assert len(calls) == (0 if level == "L1" else 1)
