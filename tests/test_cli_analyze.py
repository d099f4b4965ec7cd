"""sgs-analyze (calibrator_custom.cli.analyze): the report files, the printed summary, exit codes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from analysis_nets import SIDE, chain_net, convert_to, image_feeds, ini, pixels
from calibrator_custom.analysis import AnalysisReport
from calibrator_custom.cli.analyze import main

ROOT = Path(__file__).resolve().parent.parent

PREPROCESS_PY = f'''
import cv2
import numpy as np

def image_preprocess(img_path, norm=True):
    img = cv2.imread(img_path, cv2.IMREAD_COLOR)[:, :, ::-1]
    img = cv2.resize(img, ({SIDE}, {SIDE}), interpolation=cv2.INTER_NEAREST)
    if norm:
        return ((img.astype(np.float32) - 127.5) / 127.5)[None]
    return np.ascontiguousarray(img)[None]
'''


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_analyze")
    model = chain_net(d / "net_float.sim")
    fixed = convert_to(model, ini(d / "c.ini"), image_feeds(8), d / "net_fixed.sim")
    images = d / "images"
    images.mkdir()
    for k, p in enumerate(pixels(5, 9)):
        cv2.imwrite(str(images / f"im{k}.png"), p[0][:, :, ::-1])
    pre = d / "pre.py"
    pre.write_text(PREPROCESS_PY)
    return d, model, fixed, images, pre


def _args(setup, out, *extra):
    d, model, fixed, images, pre = setup
    return ["-m", model, "--fixed", fixed, "-i", str(images), "-n", str(pre), "-o", str(out), *extra]


def test_writes_the_three_files_and_prints_the_summary(setup, capsys):
    d = setup[0]
    out = d / "report"
    assert main(_args(setup, out, "--num_images", "4", "--gain_samples", "2", "--input_config", str(d / "c.ini"))) == 0
    printed = capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["report.html", "report.json", "summary.txt"]
    rep = AnalysisReport.from_json(out / "report.json")
    assert rep.num_samples == 4 and rep.gain_samples == 2 and rep.gain_method == "measured"
    assert rep.float_model == setup[1] and rep.fixed_model == setup[2]
    summary = (out / "summary.txt").read_text()
    assert summary == rep.summary()
    assert printed.startswith(summary) and "report.html" in printed.splitlines()[-1]
    assert "worst layers by isolated error" in summary
    assert (out / "report.html").read_text() == rep.to_html()


def test_python_dash_m_and_gain_option(setup, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "calibrator_custom.analyze", *_args(setup, tmp_path / "r",
                        "--gain", "estimated")], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert AnalysisReport.from_json(tmp_path / "r" / "report.json").gain_method == "estimated"
    assert "Accuracy analysis of" in r.stdout
    assert r.stderr == ""  # not a terminal: no progress bar, and no warnings


@pytest.mark.parametrize("change, message", [
    (("-m", "missing_float.sim"), "-m 'missing_float.sim': float model does not exist"),
    (("--fixed", "missing_fixed.sim"), "--fixed 'missing_fixed.sim': fixed model does not exist"),
    (("-n", "a.py,b.py"), "-n 'a.py,b.py' names 2 preprocess method(s) but the model has 1"),
    (("--num_images", "0"), "--num_images 0"),
    (("--input_config", "nope.ini"), "--input_config 'nope.ini'"),
])
def test_user_errors_are_one_line_and_exit_1(setup, tmp_path, capsys, change, message):
    args = _args(setup, tmp_path / "r")
    if change[0] in args:
        args[args.index(change[0]) + 1] = change[1]
    else:
        args += list(change)
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sgs-analyze: error: ") and message in err[0]


def test_float_model_as_fixed_and_output_file_are_user_errors(setup, tmp_path, capsys):
    d, model, fixed, images, pre = setup
    args = _args(setup, tmp_path / "r")
    args[args.index("--fixed") + 1] = model
    assert main(args) == 1
    assert "not a fixed model" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(_args(setup, tmp_path / "file")) == 1
    assert "is a file; give a folder" in capsys.readouterr().err


def test_usage_errors_exit_2(setup, capsys):
    d, model, fixed, images, pre = setup
    assert main(["-m", model, "-i", str(images), "-n", str(pre), "-o", "x"]) == 2  # no --fixed
    assert "--fixed" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "sgs-analyze" in capsys.readouterr().out


def test_progress_bars_per_stage(setup, tmp_path, monkeypatch, capsys):
    import calibrator_custom.cli.analyze as cli
    seen = []

    class Recorder:
        def __init__(self, total, desc=""):
            self.desc, self.closed = desc, False
            seen.append(self)
            self.calls = []

        def __call__(self, done, total):
            self.calls.append((done, total))

        def close(self):
            self.closed = True
    monkeypatch.setattr(cli, "ProgressBar", Recorder)
    assert main(_args(setup, tmp_path / "r", "--num_images", "3", "--gain_samples", "2")) == 0
    assert [b.desc for b in seen] == ["analysis", "16-bit gains"] and all(b.closed for b in seen)
    assert seen[0].calls[-1] == (3, 3) and seen[1].calls[-1] == (4, 4)  # 4 8-bit convs in the chain net
