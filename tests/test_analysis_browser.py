"""The HTML report in headless Chromium: the table and chart render, sorting works, no console output.

Uses tools/screenshot_report.py (run_chromium, check_page, build_report). Skipped, with the reason,
when /usr/bin/chromium (Debian's chromium package) is not installed.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from analysis_nets import chain_net, convert_to, image_feeds, ini
from calibrator_custom.analysis import accuracy_analysis
from conftest import require_shared

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import screenshot_report as sr  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(sr.CHROMIUM),
                                reason=f"{sr.CHROMIUM} not found: install Debian's chromium package to run the "
                                       "browser checks of the HTML report")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: appended to a report page: sort by the isolated SQNR column, record the first row's layer name
SORT_PROBE = """<script>
var th = Array.prototype.filter.call(document.querySelectorAll('th'),
  function(h){return h.textContent === 'isolated SQNR dB';})[0];
th.click();
document.body.setAttribute('data-first', document.querySelector('tbody tr').cells[1].textContent);
th.click();
document.body.setAttribute('data-last', document.querySelector('tbody tr').cells[1].textContent);
</script></body>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    model = chain_net(d / "chain_float.sim")
    fixed = convert_to(model, ini(d / "c.ini"), image_feeds(8), d / "chain_fixed.sim")
    rep = accuracy_analysis(model, fixed, image_feeds(4, 9), gain_samples=2)
    page = d / "report.html"
    rep.to_html(page)
    return rep, page


def test_small_report_renders_without_console_output(report, tmp_path):
    rep, page = report
    png = tmp_path / "shot.png"
    assert sr.check_page(page, len(rep.layers), screenshot=png) == []
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_clicking_a_header_sorts_the_table(report, tmp_path):
    rep, page = report
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", SORT_PROBE))
    run = sr.run_chromium(probe, dump_dom=True)
    assert run.console == ()
    ranked = sorted((r for r in rep.layers if r.isolated), key=lambda r: r.isolated.sqnr_db)
    assert f'data-first="{ranked[0].name}"' in run.dom  # ascending: the worst layer first
    assert f'data-last="{ranked[-1].name}"' in run.dom  # descending: the best


def test_console_errors_are_caught(tmp_path):
    """The check is not vacuous: a page whose script throws, or that logs, fails it."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><table><tbody>'
                   '<tr><td>x</td></tr></tbody></table><script>console.log("noise"); notAFunction();</script>'
                   '</body></html>')
    problems = sr.check_page(bad, 1)
    assert any("noise" in p for p in problems)
    assert any("Uncaught ReferenceError" in p for p in problems)
    assert any("data-ready" in p for p in problems) and any("chart" in p for p in problems)


@pytest.mark.slow
def test_face_detection_l2_report_renders(tmp_path):
    require_shared()
    rep = sr.build_report(tmp_path / "fd", num_images=3, gain_samples=2)
    assert len(rep.layers) == 91 and rep.gain_method == "measured"
    png = tmp_path / "fd.png"
    assert sr.check_page(tmp_path / "fd" / "report.html", len(rep.layers), screenshot=png) == []
    assert png.read_bytes()[:8] == PNG_MAGIC
