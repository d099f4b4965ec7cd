"""The figures README.md and examples/README.md quote are the ones tools/doc_figures.json records, and the
recorded SQNR figures are what the quick start gives now (run times are quoted as measured, never compared)."""
from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "gen_doc_figures.py"
sys.path.insert(0, str(ROOT / "tools"))
import gen_doc_figures  # noqa: E402

RESULTS = json.loads((ROOT / "tools" / "doc_figures.json").read_text(encoding="utf-8"))
SQNR_LINE = re.compile(r"^  (\S+)\s+(\[[\d, ]+\])\s+(-?\d+\.\d\d) dB$")


def test_docs_agree_with_the_results_file():
    r = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_results_file_is_complete():
    assert datetime.date.fromisoformat(RESULTS["date"]) <= datetime.date.today()
    assert isinstance(RESULTS["cpu_count"], int) and RESULTS["cpu_count"] >= 1
    runs = RESULTS["runs"]
    assert set(runs) == {"quick_start_L5", "quick_start_L4", "two_inputs", "chained_models", "notebook"}
    for key, run in runs.items():
        assert isinstance(run["wall_s"], float) and run["wall_s"] > 0, key
        assert isinstance(run["cpu_s"], float) and run["cpu_s"] > 0, key
    result = runs["quick_start_L5"]["result"]
    assert result[0] == "[3/3] fixed vs float model on 3 photos (SQNR, higher is better)"
    rows = [SQNR_LINE.match(line) for line in result[2:-1]]
    assert all(rows) and [m.group(1) for m in rows] == ["regressors", "classificators"], result
    worst = min(rows, key=lambda m: float(m.group(3)))
    assert result[-1] == f"worst output: {worst.group(1)}  SQNR {worst.group(3)} dB (quant level L5)"


def test_every_quoted_sqnr_comes_from_the_results_file():
    """Each 'NN.NN dB' in the two READMEs lies inside a generated block (so --check covers it)."""
    for path in gen_doc_figures.DOCS:
        text = path.read_text(encoding="utf-8")
        outside = gen_doc_figures.BLOCK.sub("", text)
        assert not re.findall(r"\d+\.\d+ dB", outside), f"{path.name} quotes SQNR figures outside generated blocks"
        assert re.findall(r"\d+\.\d\d dB", text), path.name


def test_a_stale_figure_is_rewritten():
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    quoted = RESULTS["runs"]["quick_start_L5"]["result"][-1].split("SQNR ")[1].split(" dB")[0]
    stale = text.replace(f"{quoted} dB", "99.99 dB")
    assert stale != text
    blocks = gen_doc_figures.render_blocks(RESULTS)
    assert gen_doc_figures.rewrite(stale, blocks, "README.md", gen_doc_figures.DOCS[readme]) == text
    with pytest.raises(SystemExit, match="no figures block"):
        gen_doc_figures.rewrite(gen_doc_figures.BLOCK.sub("", text), blocks, "README.md", gen_doc_figures.DOCS[readme])


@pytest.mark.slow
def test_quick_start_gives_the_recorded_sqnr_figures(tmp_path):
    """The README's main command (L5, the default) prints exactly the result lines the docs quote."""
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "quick_start.py"), "--quiet"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert gen_doc_figures.quick_start_result(r.stdout.splitlines()) == RESULTS["runs"]["quick_start_L5"]["result"]
