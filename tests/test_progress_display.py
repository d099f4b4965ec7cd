"""Progress where the user looks: INFO lines off a terminal, a bar on one, a live display in Jupyter;
and a real conversion reports every phase."""
from __future__ import annotations

import io
import logging
import re
import sys
import types

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom.calib import collect_stats_arrays
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.progress_display import JupyterPhase, LogPhase, Reporter, as_reporter, jupyter_display
from calibrator_custom.pipeline.convert import convert

LOGGER = "calibrator_custom.progress"
LINE = re.compile(r"^(?P<desc>.+): (?P<done>\d+)/(?P<total>\d+) \(\d+%\), (?P<elapsed>[\d:]+) elapsed, "
                  r"ETA (?P<eta>[\d:]+|\?)$")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """A settable clock (seconds)."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


# ------------------------------------------------------------------------------------------ back-ends
def test_off_a_terminal_phases_are_info_lines_with_count_elapsed_and_eta(caplog):
    clock = Clock()
    rep = Reporter.auto(stream=io.StringIO(), clock=clock)
    assert rep.kind == "log"
    caplog.set_level(logging.INFO, logger=LOGGER)
    with rep.phase("sensitivity", 10) as phase:
        for k in range(10):
            clock.t += 2.0  # every item takes 2 s
            phase.update()
    # the first item (2 s for 1 of 10: 18 s left), then every >= 10 s, and always the end
    assert _lines(caplog) == ["sensitivity: 1/10 (10%), 0:02 elapsed, ETA 0:18",
                              "sensitivity: 6/10 (60%), 0:12 elapsed, ETA 0:08",
                              "sensitivity: 10/10 (100%), 0:20 elapsed, ETA 0:00"]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == LOGGER)


def test_a_log_phase_closed_early_says_where_it_stopped(caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger=LOGGER)
    phase = LogPhase(4, "ranges", clock=clock)
    clock.t += 3
    phase(1, 4)  # callback form
    phase.close()
    phase.update()  # closed: silent
    assert _lines(caplog) == ["ranges: 1/4 (25%), 0:03 elapsed, ETA 0:09", "ranges: 1/4 (25%), 0:03 elapsed, "
                              "ETA 0:09 (stopped)"]


def test_on_a_terminal_phases_are_bars():
    clock = Clock(50.0)
    out = Tty()
    rep = Reporter.auto(stream=out, clock=clock, prefix="net: ")
    assert rep.kind == "bar"
    with rep.phase("sensitivity", 4) as bar:
        clock.t += 1
        bar.update()
        clock.t += 3
        bar.update(3)
    text = out.getvalue()
    assert text.startswith("\rnet: sensitivity [")
    assert "] 1/4 0:01<0:03" in text and text.endswith("] 4/4 0:04<0:00\n")


class FakeHandle:
    def __init__(self, shown: list):
        self.shown = shown

    def update(self, obj) -> None:
        self.shown.append(obj)


@pytest.fixture
def fake_kernel(monkeypatch):
    """IPython as a Jupyter kernel has it: ``get_ipython()`` with a ``kernel``, ``display(obj, display_id=True)``."""
    shown: list = []

    def display(obj, display_id=False):
        assert display_id is True
        shown.append(obj)
        return FakeHandle(shown)

    shell = types.SimpleNamespace(kernel=object())
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    ipython_display = types.ModuleType("IPython.display")
    ipython_display.display = display
    ipython.display = ipython_display
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython_display)
    return shell, shown


def test_in_a_jupyter_kernel_phases_update_one_display(fake_kernel):
    shell, shown = fake_kernel
    clock = Clock()
    rep = Reporter.auto(stream=Tty(), clock=clock)  # a kernel wins over a terminal-looking stream
    assert rep.kind == "jupyter"
    with rep.phase("sensitivity", 3) as phase:
        assert isinstance(phase, JupyterPhase)
        for _ in range(3):
            clock.t += 1
            phase.update()
    assert [(o.done, o.total) for o in shown] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert repr(shown[-1]) == "sensitivity: 3/3 (100%), 0:03 elapsed, ETA 0:00"
    html = shown[2]._repr_html_()
    assert '<progress value="2" max="3"' in html and "2/3 (66%), 0:02 elapsed, ETA 0:01" in html


def test_jupyter_redraws_are_rate_limited_but_the_end_is_drawn(fake_kernel):
    _, shown = fake_kernel
    clock = Clock()
    phase = JupyterPhase(100, "x", display=sys.modules["IPython.display"].display, clock=clock)
    for _ in range(100):
        phase.update()  # no time passes
    assert [o.done for o in shown] == [0, 1, 100]


def test_no_kernel_no_jupyter(monkeypatch, fake_kernel):
    shell, _ = fake_kernel
    monkeypatch.setattr(sys.modules["IPython"], "get_ipython", lambda: types.SimpleNamespace())  # terminal IPython
    assert jupyter_display() is None
    monkeypatch.setattr(sys.modules["IPython"], "get_ipython", lambda: None)  # plain python with IPython imported
    assert jupyter_display() is None
    monkeypatch.delitem(sys.modules, "IPython")
    assert jupyter_display() is None


def test_convert_keeps_taking_a_message_callable(caplog):
    got = []
    rep = as_reporter(got.append)
    rep.message("L5: 2 convolution(s) upgraded to 16 bit")
    assert got == ["L5: 2 convolution(s) upgraded to 16 bit"] and rep.kind == "log"
    with pytest.raises(ValueError, match="choose 'bar', 'log', 'jupyter' or 'none'"):
        Reporter("tqdm")


# ------------------------------------------------------------------------------------------ real conversions
MEAN, STD = 127.5, 127.5


def _net(path) -> str:
    """conv(relu6) -> depthwise -> fully connected: three 8-bit convs at L5."""
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.input("img", (1, 8, 8, 3))
    c1 = b.op("CONV_2D", [x, b.constant("w1", rng.standard_normal((6, 3, 3, 3)).astype(np.float32) * 0.3),
                          b.constant("b1", rng.standard_normal(6).astype(np.float32) * 0.1)],
              {"padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU6"}, name="conv1")
    d1 = b.op("DEPTHWISE_CONV_2D", [c1, b.constant("w2", rng.standard_normal((1, 3, 3, 6)).astype(np.float32) * 0.3),
                                    b.constant("b2", rng.standard_normal(6).astype(np.float32) * 0.1)],
              {"padding": "VALID", "stride_w": 2, "stride_h": 2, "depth_multiplier": 1}, name="dw1")
    r = b.op("RESHAPE", [d1, b.constant("shape", np.array([1, 54], np.int32))], {"new_shape": [1, 54]}, name="flat")
    fc = b.op("FULLY_CONNECTED", [r, b.constant("w3", rng.standard_normal((4, 54)).astype(np.float32) * 0.2),
                                  b.constant("b3", np.zeros(4, np.float32))], {}, name="out")
    b.output(fc)
    b.save(path)
    return str(path)


def _ini(path) -> str:
    path.write_text(f"[INPUT_CONFIG]\ninputs=img;\ntraining_input_formats=RGB;\ninput_formats=RGB;\n"
                    f"mean={MEAN}:{MEAN}:{MEAN};\nstd_value={STD};\n[OUTPUT_CONFIG]\noutputs=out;\n"
                    "dequantizations=TRUE;\n")
    return str(path)


def _finals(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Each phase's last (done, total), in the order the phases started."""
    out: dict[str, tuple[int, int]] = {}
    for line in lines:
        m = LINE.match(line)
        assert m, line
        out[m["desc"]] = (int(m["done"]), int(m["total"]))
    return out


def test_l5_conversion_reports_every_phase_to_the_end(tmp_path, caplog):
    model = _net(tmp_path / "net_float.sim")
    rng = np.random.default_rng(1)
    feeds = [[(rng.integers(0, 256, (1, 8, 8, 3)).astype(np.float32) - MEAN) / STD] for _ in range(5)]
    stats = collect_stats_arrays(model, feeds)
    caplog.set_level(logging.INFO, logger="calibrator_custom")
    convert(model, _ini(tmp_path / "c.ini"), stats, quant_level="L5", calibration_feeds=feeds,
            output_path=tmp_path / "net_fixed.sim")
    finals = _finals(_lines(caplog))
    # 5 runtime tensors (img, conv1, dw1, flat, out), 5 samples, 3 convs (all 8-bit before the search):
    # one range choice and one error measurement per conv; the bias correction checked with and
    # without on the 2 samples after the 3 measured ones
    expected = {"L5 plan (tensors)": (5, 5), "L5 float activations (samples)": (5, 5),
                "L5 conv input ranges (convs)": (3, 3), "L5 conv errors at the outputs (convs)": (3, 3),
                "L5 bias correction (float passes)": (4, 4), "writing the fixed model": (2, 2)}
    assert finals == expected
    assert list(finals)[0] == "L5 plan (tensors)" and list(finals)[-1] == "writing the fixed model"


class _Net(calibrator_custom.SIM_Calibrator):
    def __init__(self, model: str, ini: str):
        super().__init__()
        self.net = calibrator_custom.calibrator(model, ini)

    def forward(self, x):
        self.net.set_input(0, x)
        self.net.invoke()
        return self.net.get_output(0)


def test_sim_calibrator_convert_in_a_notebook_shows_every_phase(tmp_path, fake_kernel):
    _, shown = fake_kernel
    model = _net(tmp_path / "net_float.sim")
    rng = np.random.default_rng(2)
    images = [(rng.integers(0, 256, (1, 8, 8, 3)).astype(np.float32) - MEAN) / STD for _ in range(4)]
    _Net(model, _ini(tmp_path / "c.ini")).convert(iter(images), num_process=1, quant_level="L5",
                                                   fix_model=[str(tmp_path / "n_fixed.sim")])
    finals = {}
    for o in shown:
        finals[o.text.split(":")[0] if o.text.startswith("SIM") else o.text.split(": ")[1]] = (o.done, o.total)
    assert finals["SIM_Calibrator statistics (samples)"] == (4, 4)
    for phase in ("L5 plan (tensors)", "L5 float activations (samples)", "L5 conv input ranges (convs)",
                  "L5 conv errors at the outputs (convs)", "L5 bias correction (float passes)",
                  "writing the fixed model"):
        assert finals[phase][0] == finals[phase][1] > 0, phase
    assert all(o.text.startswith("net: ") for o in shown if not o.text.startswith("SIM"))


def test_l5_trials_reuse_the_base_run_and_measure_exactly_as_a_full_run(tmp_path, monkeypatch):
    """The sensitivity trials re-run only the steps a 16-bit conv changes and prepare only the ops it
    changes; their noise is the full run's, bit for bit (a fresh full run is the reference), and a trial
    upgrading the last conv reuses the rest."""
    from calibrator_custom.fixed.writer import build_fixed_model
    from calibrator_custom.pipeline import measure as conv
    from calibrator_custom.quant.planner import PlanInputs, build_plan
    from calibrator_custom.config import load_input_config
    from calibrator_custom.model.graph import load_model

    path = _net(tmp_path / "net_float.sim")
    rng = np.random.default_rng(3)
    feeds = [[(rng.integers(0, 256, (1, 8, 8, 3)).astype(np.float32) - MEAN) / STD] for _ in range(3)]
    model = load_model(path)
    pi = PlanInputs.create(model, collect_stats_arrays(path, feeds), load_input_config(_ini(tmp_path / "c.ini"), model))
    meas = conv._Measure.collect(pi, feeds)
    base_fixed = build_fixed_model(pi, build_plan(pi, "L5"))
    memo = conv._PrepareMemo()  # shared by the trials, as in the search
    nsr0, run = conv._e2e_nsr(pi, base_fixed, feeds, meas, record=True, get_op=memo)
    assert nsr0 == conv._e2e_nsr(pi, base_fixed, feeds, meas)
    assert len(run.values) == 3
    ran = []
    real_call = conv.Interpreter._call

    def counting(self, k, name, *a):
        ran.append(name)
        return real_call(self, k, name, *a)

    for c in pi.convs:
        trial = build_fixed_model(pi, build_plan(pi, "L5", frozenset([c.op_index])))
        full = conv._e2e_nsr(pi, trial, feeds, meas)
        ran.clear()
        monkeypatch.setattr(conv.Interpreter, "_call", counting)
        reused = conv._e2e_nsr(pi, trial, feeds, meas, base=run, get_op=memo)
        monkeypatch.setattr(conv.Interpreter, "_call", real_call)
        assert reused == full, c.op_name
        if c.op_name == "FULLY_CONNECTED":  # the last conv: its upstream (conv, depthwise) is reused
            assert "CONV_2D" not in ran and "DEPTHWISE_CONV_2D" not in ran and "FULLY_CONNECTED" in ran


def test_sgs_calibrator_off_a_terminal_logs_every_phase_with_elapsed_and_eta(tmp_path):
    """stderr piped (not a terminal) with --show_log: INFO lines for the statistics and every L5 phase."""
    from clitools import run_tool, stderr_lines, tiny_model, write_image, write_ini, write_preprocess

    model = tiny_model(tmp_path / "tiny_float.sim")
    for k, v in enumerate((30, 120, 210)):
        write_image(tmp_path / "imgs" / f"{k}.png", v)
    ini, pre = write_ini(tmp_path / "t.ini"), write_preprocess(tmp_path / "pre.py")
    proc = run_tool("calibrator", ["-i", tmp_path / "imgs", "-m", model, "--input_config", ini, "-n", pre,
                                   "--num_process", 1, "--show_log"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr  # no bar off a terminal
    lines = [line.removeprefix("INFO: ") for line in stderr_lines(proc) if line.startswith("INFO: ")]
    finals = _finals([line for line in lines if LINE.match(line)])
    # 3 images; 2 runtime tensors (img, out); one conv: its range choice and error measurement; the
    # bias check (with and without) reuses the 3 measured samples (too few for separate ones)
    assert finals["statistics (images)"] == (3, 3)
    for phase, count in (("L5 plan (tensors)", 2), ("L5 float activations (samples)", 3),
                         ("L5 conv input ranges (convs)", 1), ("L5 conv errors at the outputs (convs)", 1),
                         ("L5 bias correction (float passes)", 6), ("writing the fixed model", 2)):
        assert finals[phase] == (count, count), phase


def test_step_by_step_convert_in_a_notebook_shows_its_phases_by_default(tmp_path, fake_kernel):
    _, shown = fake_kernel
    model = _net(tmp_path / "net_float.sim")
    rng = np.random.default_rng(4)
    feeds = [[(rng.integers(0, 256, (1, 8, 8, 3)).astype(np.float32) - MEAN) / STD] for _ in range(3)]
    convert(model, _ini(tmp_path / "c.ini"), collect_stats_arrays(model, feeds), quant_level="L4")
    finals = {o.text.split(": ")[0]: (o.done, o.total) for o in shown}
    assert finals == {"L4 plan (tensors)": (5, 5), "L4 conv sensitivity estimates": (3, 3), "writing the fixed model": (1, 1)}
