"""Which fixed dialect the pipeline writes: the vendor's, synthesized from a vendor float.sim, by default.

The oracle tier (the vendor SDK in ``../shared/vendor_sdk``; skipped without it) converts builder
models with the vendor's converter, calibrates them with our ``calibrator`` on random inputs, and
checks that the fixed file ``convert_fixed`` / ``SIM_Calibrator.convert`` write is the vendor's dialect,
that the vendor's compiler takes it, and that the vendor's fixed and offline simulators give our
``fixed_simulator``'s codes. Without the SDK the plain-TFLite and argument checks still run.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest

import calibrator_custom
import vendor_fixed_oracle as vo
from calibrator_custom.calib.stats import StatsSet
from calibrator_custom.errors import ConfigError, UnsupportedOpError
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import load_model
from calibrator_custom.pipeline.convert import convert, equalized_float_path

MEAN, STD = 127.5, 127.5


def _chain(seed: int, side: int, chans, tail_op: str | None = None) -> ModelBuilder:
    """x -> 3x3 convs (SAME) with a RELU after the first, then ``tail_op`` on the last conv's output."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    y = b.input("x", (1, side, side, 3))
    cin = 3
    for n, c in enumerate(chans, 1):
        w = (g.normal(size=(c, 3, 3, cin)) / np.sqrt(9 * cin)).astype(np.float32)
        bias = (g.normal(size=c) * 0.3).astype(np.float32)
        y = b.op("CONV_2D", [y, b.constant(f"w{n}", w), b.constant(f"b{n}", bias)],
                 {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name=f"c{n}")
        if n == 1:
            y = b.op("RELU", [y], {}, name="r1")
        cin = c
    if tail_op is not None:
        y = b.op(tail_op, [y], {}, name="t")
    b.output(y)
    return b


def _ini(tmp_path, builder: ModelBuilder):
    sg = builder.build().subgraphs[0]
    p = tmp_path / "input_config.ini"
    p.write_text(vo.ini_text(["x"], [sg.tensors[sg.outputs[0]].name], (MEAN,) * 3, STD))
    return p


def _calibrated(model_path, ini, side: int, n: int = 3):
    cal = calibrator_custom.calibrator(str(model_path), str(ini))
    g = np.random.default_rng(5)
    for _ in range(n):
        cal.set_input(0, ((g.integers(0, 256, (1, side, side, 3)) - MEAN) / STD).astype(np.float32))
        cal.invoke()
    return cal


# ---------------------------------------------------------------- no SDK needed
def test_plain_tflite_gets_our_own_dialect_said_at_info(tmp_path, caplog):
    path = tmp_path / "m.tflite"
    b = _chain(1, 8, (8,))
    b.build().save(path)
    cal = _calibrated(path, _ini(tmp_path, b), 8)
    out = tmp_path / "m_fixed.sim"
    with caplog.at_level(logging.INFO, logger="calibrator_custom"):
        cal.convert_fixed(saved_path=str(out))
    assert load_model(out).dialect == "tflite"
    said = [r for r in caplog.records if "plain TFLite" in r.getMessage() and "own dialect" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO]  # the side road is no fault of the user's


def test_vendor_dialect_asked_for_a_plain_tflite_model_is_refused(tmp_path):
    path = tmp_path / "m.tflite"
    b = _chain(2, 8, (8,))
    b.build().save(path)
    cal = _calibrated(path, _ini(tmp_path, b), 8)
    out = tmp_path / "m_fixed.sim"
    with pytest.raises(ConfigError, match="needs a vendor float.sim"):
        convert(cal.model_obj, cal.config, cal.statistics(), quant_level="L1", output_path=out,
                fixed_dialect="vendor")
    assert not out.exists()
    with pytest.raises(ConfigError, match="fixed_dialect 'sgs'"):
        convert(cal.model_obj, cal.config, cal.statistics(), quant_level="L1", output_path=out, fixed_dialect="sgs")


# ---------------------------------------------------------------- oracle tier
def _vendor_float(tmp_path, builder: ModelBuilder):
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)
    tfl = tmp_path / "m.tflite"
    builder.build().save(tfl)
    ini = _ini(tmp_path, builder)
    return vo.oracle().convert_tflite(str(tfl), str(ini), str(tmp_path / "m_float.sim")), ini




@pytest.mark.parametrize("level", ["L1", "L2"])
def test_convert_fixed_of_a_vendor_float_sim_is_the_vendors_dialect(tmp_path, level):
    float_sim, ini = _vendor_float(tmp_path, _chain(3, 16, (16, 24, 8)))
    cal = _calibrated(float_sim, ini, 16)
    out = tmp_path / "m_fixed.sim"
    cal.convert_fixed(saved_path=str(out), quant_level=level)
    fixed = load_model(out)
    assert fixed.dialect == "sgs_fixed" and fixed.description == "Sigmastar Cmodel With IPU CTRL"
    # L1's weights are per tensor (one bias multiplier per conv); L2's per channel (the plan's scales)
    distinct = [len(set(_bias_multipliers(fixed, op).tolist())) for op in fixed.main.operators
                if fixed.op_name(op) == "CONV_2D"]
    assert len(distinct) == 3
    assert all(n == 1 for n in distinct) if level == "L1" else all(n > 1 for n in distinct)
    vo.assert_vendor_runs_it_as_ours(out, np.random.default_rng(7), 2, f"convert_fixed at {level}")


def _bias_multipliers(model, op) -> np.ndarray:
    """Row 1 of a conv's [2, C] INT16 bias buffer (rows padded to 8 values)."""
    t = model.main.tensors[op.inputs[2]]
    c = int(t.shape[-1])
    flat = np.frombuffer(model.buffers[t.buffer].data, "<i2")
    return flat[-(-c // 8) * 8:][:c]


@pytest.mark.parametrize("level", ["L1", "L2"])
def test_sim_calibrator_convert_of_a_vendor_float_sim_is_the_vendors_dialect(tmp_path, level):
    """At L2 the channels are equalized: ``forward`` runs again with the rescaled model for its statistics."""
    float_sim, ini = _vendor_float(tmp_path, _chain(4, 12, (16, 8)))

    class Net(calibrator_custom.SIM_Calibrator):
        def __init__(self):
            super().__init__()
            self.model = calibrator_custom.calibrator(str(float_sim), str(ini))

        def forward(self, x):
            self.model.set_input(0, x)
            self.model.invoke()
            return [self.model.get_output(0)]

    g = np.random.default_rng(9)
    samples = [[((g.integers(0, 256, (1, 12, 12, 3)) - MEAN) / STD).astype(np.float32)] for _ in range(3)]
    out = tmp_path / "net_fixed.sim"
    Net().convert(iter(samples), num_process=1, quant_level=level, fix_model=[str(out)])
    assert load_model(out).dialect == "sgs_fixed"
    assert os.path.exists(equalized_float_path(out)) == (level == "L2")
    vo.assert_vendor_runs_it_as_ours(out, np.random.default_rng(7), 2, f"SIM_Calibrator.convert at {level}")


def test_op_without_a_synthesis_rule_falls_back_or_is_refused(tmp_path, caplog):
    """auto: our own dialect with a WARNING naming the op; "vendor": the op named, nothing written."""
    float_sim, ini = _vendor_float(tmp_path, _chain(6, 8, (8,), tail_op="TANH"))
    cal = _calibrated(float_sim, ini, 8)
    out = tmp_path / "m_fixed.sim"
    with caplog.at_level(logging.WARNING, logger="calibrator_custom"):
        cal.convert_fixed(saved_path=str(out))
    assert load_model(out).dialect == "tflite"
    assert any("TANH" in r.getMessage() and "own dialect" in r.getMessage() for r in caplog.records)
    out.unlink()
    with pytest.raises(UnsupportedOpError, match="TANH"):
        convert(cal.model_obj, cal.config, cal.statistics(), quant_level="L1", output_path=out,
                fixed_dialect="vendor", vendor_float=cal.vendor_float())
    assert not out.exists()
    assert isinstance(cal.statistics(), StatsSet)


def test_calibrator_command_on_a_vendor_float_sim_writes_the_vendors_dialect(tmp_path):
    """``calibrator -m m_float.sim -i photos ...`` on real photos: the fixed file is the vendor's dialect,
    compiles, and the vendor's simulators give our codes."""
    from clitools import run_tool
    from vendor_oracle import calibration_inputs
    from images import calibration_images
    float_sim, ini = _vendor_float(tmp_path, _chain(10, 24, (16, 8)))
    images, pre = calibration_inputs(tmp_path / "calib", 24, 24, calibration_images()[:3])
    out = tmp_path / "cli_fixed.sim"
    proc = run_tool("calibrator", ["-m", float_sim, "-i", images, "--input_config", ini, "-n", pre,
                                   "--quant_level", "L2", "-o", out], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"Fixed model at: {out}"
    assert load_model(out).dialect == "sgs_fixed"
    assert "own dialect" not in proc.stderr
    assert load_model(equalized_float_path(out)).dialect == "sgs_float"  # L2 equalizes the channels
    vo.assert_vendor_runs_it_as_ours(out, np.random.default_rng(7), 2, "calibrator command")


def _spread_chain(seed: int, side: int) -> ModelBuilder:
    """x -> 3x3 conv (16 channels, output gains 0.03..3) -> RELU -> 1x1 conv -> 3x3 conv -> output."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    y = b.input("x", (1, side, side, 3))
    gains = np.geomspace(0.03, 3.0, 16).astype(np.float32)[g.permutation(16)]
    for n, (cin, cout, k) in enumerate(((3, 16, 3), (16, 12, 1), (12, 8, 3)), 1):
        w = (g.normal(size=(cout, k, k, cin)) / np.sqrt(k * k * cin)).astype(np.float32)
        bias = (g.normal(size=cout) * 0.1).astype(np.float32)
        if n == 1:
            w, bias = w * gains.reshape(-1, 1, 1, 1), bias * gains
        y = b.op("CONV_2D", [y, b.constant(f"w{n}", w), b.constant(f"b{n}", bias)],
                 {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name=f"c{n}")
        if n == 1:
            y = b.op("RELU", [y], {}, name="r1")
    b.output(y)
    return b


def test_equalized_channels_are_the_rescaled_models_and_the_vendor_runs_them_as_ours(tmp_path, caplog):
    """L2 with ``statistics_of``: the rescaled float model is written beside the fixed one, computes the same
    outputs, its first conv's output channels divided by factors in [1/16, 1]; its fixed file compiles and the
    vendor's simulators give our codes. Without ``statistics_of`` nothing is rescaled, and the log says so."""
    from calibrator_custom.calib import collect_stats_arrays
    float_sim, ini = _vendor_float(tmp_path, _spread_chain(12, 12))
    g = np.random.default_rng(3)
    feeds = [[((g.integers(0, 256, (1, 12, 12, 3)) - MEAN) / STD).astype(np.float32)] for _ in range(4)]
    stats = collect_stats_arrays(float_sim, feeds)
    out = tmp_path / "m_fixed.sim"
    convert(float_sim, str(ini), stats, quant_level="L2", output_path=out,
            statistics_of=lambda path: collect_stats_arrays(path, feeds))
    eq_path = equalized_float_path(out)
    original, rescaled = load_model(float_sim), load_model(eq_path)
    assert rescaled.dialect == "sgs_float"
    w0 = original.tensor_data(original.main.tensors[original.main.tensor_index("w1")])
    w1 = rescaled.tensor_data(rescaled.main.tensors[rescaled.main.tensor_index("w1")])
    assert w1.shape == w0.shape and w1.dtype == w0.dtype
    factor = np.max(np.abs(w0), axis=(1, 2, 3)) / np.max(np.abs(w1), axis=(1, 2, 3))
    assert np.all((factor >= 1 / 16 - 1e-6) & (factor <= 1 + 1e-6)) and factor.min() < 0.5
    a, b = calibrator_custom.float_simulator(str(float_sim)), calibrator_custom.float_simulator(eq_path)
    for f in feeds:
        for s in (a, b):
            s.set_input(0, f[0])
            s.invoke()
        ref, got = a.get_output(0), b.get_output(0)
        assert got.shape == ref.shape and got.dtype == ref.dtype
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))
    vo.assert_vendor_runs_it_as_ours(out, np.random.default_rng(7), 2, "equalized L2")
    failed = tmp_path / "failed_fixed.sim"

    def broken(path):
        raise RuntimeError("no images")
    with pytest.raises(RuntimeError, match="no images"):
        convert(float_sim, str(ini), stats, quant_level="L2", output_path=failed, statistics_of=broken)
    assert not failed.exists() and not os.path.exists(equalized_float_path(failed))  # nothing half-done
    plain = tmp_path / "plain_fixed.sim"
    with caplog.at_level(logging.INFO, logger="calibrator_custom"):
        convert(float_sim, str(ini), stats, quant_level="L2", output_path=plain)
    assert not os.path.exists(equalized_float_path(plain))
    assert any("channel equalization skipped" in r.getMessage() for r in caplog.records)


def _int16_conv_inputs(model) -> list[str]:
    """The first inputs of the CONV_2Ds of a fixed.sim with INT16 input and weights."""
    sg = model.main
    return [sg.tensors[op.inputs[0]].name for op in sg.operators if model.op_name(op) == "CONV_2D"
            and sg.tensors[op.inputs[0]].dtype == sg.tensors[op.inputs[1]].dtype == "INT16"]


def test_16_bit_convs_are_carried_unless_asked_not_to_and_the_vendor_runs_them_as_ours(tmp_path, caplog):
    """``[CONV_CONFIG] input_format=CONV2D_INT16`` makes every CONV_2D 16-bit in the plan; the vendor's dialect
    carries them by default where it can (the second, reading a RELU of the first's INT16 output, and the last;
    not the first, reading the graph input: logged), and writes them at 8 bit with ``vendor_int16_convs=False``
    (logged)."""
    from calibrator_custom.config import load_input_config
    float_sim, ini = _vendor_float(tmp_path, _chain(6, 12, (16, 24, 8)))
    cal = _calibrated(float_sim, ini, 12)
    ini16 = tmp_path / "input_config_int16.ini"
    ini16.write_text(ini.read_text() + "[CONV_CONFIG]\ninput_format=CONV2D_INT16;\n")
    config = load_input_config(str(ini16), cal.model_obj)
    plain, carried = tmp_path / "plain_fixed.sim", tmp_path / "int16_fixed.sim"
    with caplog.at_level(logging.WARNING, logger="calibrator_custom"):
        convert(cal.model_obj, config, cal.statistics(), quant_level="L2", output_path=plain,
                vendor_float=cal.vendor_float(), vendor_int16_convs=False)
    assert _int16_conv_inputs(load_model(plain)) == []
    assert any("16-bit conv(s) are not carried" in r.getMessage() for r in caplog.records)
    # written at 8 bit, the 16-bit plan's convs keep per-channel weight codes (the level's 8-bit scales)
    eight = load_model(plain)
    assert all(len(set(_bias_multipliers(eight, op).tolist())) > 1 for op in eight.main.operators
               if eight.op_name(op) == "CONV_2D")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="calibrator_custom"):
        convert(cal.model_obj, config, cal.statistics(), quant_level="L2", output_path=carried,
                vendor_float=cal.vendor_float())
    fixed = load_model(carried)
    sg = fixed.main
    convs = [op for op in sg.operators if fixed.op_name(op) == "CONV_2D"]
    assert len(convs) == 3
    assert [sg.tensors[op.inputs[0]].name for op in convs] == ["x", "r1", "c2"]
    assert _int16_conv_inputs(fixed) == ["r1", "c2"]
    assert any("1 of the level's 16-bit conv(s) are written at 8 bit" in r.getMessage() and "(CONV_2D reading 'x')"
               in r.getMessage() for r in caplog.records)
    vo.assert_vendor_runs_it_as_ours(carried, np.random.default_rng(7), 2, "16-bit convs carried")


def test_the_vendor_arithmetic_check_is_the_worst_output_sqnr_of_the_written_file(tmp_path):
    """``convert._vendor_file_sqnr`` (the check of a level's 16-bit convs) on a written vendor file equals the
    worst-output SQNR computed with the public fixed_simulator and float_simulator, sample by sample."""
    from calibrator_custom.config import load_input_config
    from calibrator_custom.pipeline.convert import _vendor_file_sqnr
    from calibrator_custom.quant.planner import PlanInputs
    from calibrator_custom.quant.levels import get_level
    float_sim, ini = _vendor_float(tmp_path, _chain(11, 12, (16, 8)))
    cal = _calibrated(float_sim, ini, 12)
    out = tmp_path / "m_fixed.sim"
    cal.convert_fixed(saved_path=str(out), quant_level="L2")
    config = load_input_config(str(ini), cal.model_obj)
    pi = PlanInputs.create(cal.model_obj, cal.statistics(), config)
    from calibrator_custom.pipeline.options import PlanOverrides
    plan = PlanOverrides().plan(pi, get_level("L2"))
    g = np.random.default_rng(3)
    pixels = [g.integers(0, 256, (1, 12, 12, 3)).astype(np.uint8) for _ in range(3)]
    feeds = [[((p.astype(np.float32) - MEAN) / STD)] for p in pixels]
    got = _vendor_file_sqnr(out.read_bytes(), pi, plan, feeds)
    fixed = calibrator_custom.fixed_simulator(str(out))
    flt = calibrator_custom.float_simulator(str(float_sim))
    signal = noise = 0.0
    for p, f in zip(pixels, feeds):
        fixed.set_input(0, p)
        fixed.invoke()
        flt.set_input(0, f[0])
        flt.invoke()
        r = flt.get_output(0).astype(np.float64).reshape(-1)
        y = fixed.get_output(0).astype(np.float64).reshape(-1)[: r.size]
        signal += float(np.sum(r * r))
        noise += float(np.sum((r - y) ** 2))
    assert np.isfinite(got)
    assert got == pytest.approx(10 * np.log10(signal / noise), abs=1e-6)


def test_16_bit_conv_over_two_input_tiles_compiles_and_the_vendor_runs_it_as_ours(tmp_path):
    """A 16 x 16 x 72 -> 80 1 x 1 conv with an INT16 input runs its 72 input channels in two tiles (64 + 8):
    its partial sums take 16 bytes of region 28 a pixel per 8 output channels (``program.compiler_limits``).
    Its whole-plane program with region 28 at 16-channel groups (12 slots) made the vendor's compiler refuse
    the file (``sdk_conv.c:1398: Conv_FFDIHWDO: Assertion `bRet'``, as on face_detection_short_range at
    ALL_INT16); the program written now compiles, and the vendor's simulators give our codes."""
    from calibrator_custom.config import load_input_config
    g = np.random.default_rng(3)
    b = ModelBuilder()
    y = b.input("x", (1, 16, 16, 3))
    cin = 3
    for n, (c, k) in enumerate(((64, 3), (72, 1), (80, 1)), 1):
        w = (g.normal(size=(c, k, k, cin)) / np.sqrt(k * k * cin)).astype(np.float32)
        bias = (g.normal(size=c) * 0.3).astype(np.float32)
        y = b.op("CONV_2D", [y, b.constant(f"w{n}", w), b.constant(f"b{n}", bias)],
                 {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name=f"c{n}")
        cin = c
    b.output(y)
    float_sim, ini = _vendor_float(tmp_path, b)
    cal = _calibrated(float_sim, ini, 16)
    ini16 = tmp_path / "input_config_int16.ini"
    ini16.write_text(ini.read_text() + "[CONV_CONFIG]\ninput_format=CONV2D_INT16;\n")
    out = tmp_path / "int16_fixed.sim"
    convert(cal.model_obj, load_input_config(str(ini16), cal.model_obj), cal.statistics(), quant_level="L2",
            output_path=out, vendor_float=cal.vendor_float(), vendor_int16_convs=True)
    fixed = load_model(out)
    assert _int16_conv_inputs(fixed) == ["c1", "c2"]
    sg = fixed.main
    o = next(op for op in sg.operators if sg.tensors[op.inputs[0]].name == "c2").options
    passes = -(-(o.sgs_in_channels_per_pass or 16) // (o.sgs_in_channels_per_tile or 16))
    assert passes == 2  # the pass of 72 input channels spans two input tiles
    vo.assert_vendor_runs_it_as_ours(out, np.random.default_rng(7), 2, "16-bit conv over two input tiles")
