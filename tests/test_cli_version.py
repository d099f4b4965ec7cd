"""Every command-line tool prints the package version with ``--version`` and exits 0."""
from __future__ import annotations

import pytest

import calibrator_custom
from calibrator_custom.cli import analyze, calibrate, save_quant_param, simulate
from calibrator_custom.cli._common import version_text
from clitools import run_tool

TOOLS = {"sgs-calibrator": calibrate, "sgs-simulator": simulate, "sgs-save-quant-param": save_quant_param,
         "sgs-analyze": analyze}
MODULES = ("calibrator", "simulator", "save_quant_param", "analyze")


def test_version_text_names_the_package_version():
    text = version_text()
    assert isinstance(text, str)
    first = text.splitlines()[0]
    assert first == f"calibrator_custom {calibrator_custom.__version__}"
    sdk = getattr(calibrator_custom, "get_sdk_version", None)
    assert len(text.splitlines()) == (2 if callable(sdk) else 1)


@pytest.mark.parametrize("prog", sorted(TOOLS))
def test_version_option(prog, capsys):
    assert TOOLS[prog].main(["--version"]) == 0
    out, err = capsys.readouterr()
    assert out == version_text() + "\n" and err == ""


@pytest.mark.parametrize("prog", sorted(TOOLS))
def test_help_lists_version(prog, capsys):
    assert TOOLS[prog].main(["--help"]) == 0
    assert "--version" in capsys.readouterr().out


@pytest.mark.parametrize("module", MODULES)
def test_python_m_entry_points_print_the_version(module, tmp_path):
    proc = run_tool(module, ["--version"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"calibrator_custom {calibrator_custom.__version__}"
    assert list(tmp_path.iterdir()) == []
