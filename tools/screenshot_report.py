"""Build the face_detection_short_range L2 accuracy report, check it in headless Chromium, save a screenshot.

    .venv/bin/python tools/screenshot_report.py [--out docs/img/analysis_face_detection_L2.png]
        [--report-dir DIR] [--num_images 10] [--gain_samples 4]

1. Statistics on the first 30 shared COCO photos, conversion at L2 (``pipeline.convert``), then
   ``accuracy_analysis`` on the next ``--num_images`` photos (measured 16-bit gains on the first
   ``--gain_samples`` of them); report.json / report.html / summary.txt go to ``--report-dir``.
2. The HTML opens in headless Chromium (Debian's ``chromium``, ``/usr/bin/chromium``) twice: once
   with ``--dump-dom`` (the DOM after the page's script ran) and once with ``--screenshot``. Both
   runs log the page's console to stderr (``--enable-logging=stderr --v=0``: lines with
   ``:CONSOLE``). The check fails on any console message (the page logs nothing when it works), if
   the script did not mark the report ``data-ready="1"``, if the table has not one row per layer, or
   if the chart lacks its two lines.
3. The screenshot (1400 x 1000) is saved to ``--out``.

The functions are reused by tests/test_analysis_browser.py. Exit code 0 when every check passed.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MODEL = SHARED / "models" / "face_detection_short_range.tflite"
IMAGES = SHARED / "images" / "coco"
CHROMIUM = "/usr/bin/chromium"
DEFAULT_PNG = ROOT / "docs" / "img" / "analysis_face_detection_L2.png"
WINDOW = (1400, 1000)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars")
CONSOLE = re.compile(r":CONSOLE(?::\d+)?\]\s*(.*)$")

sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class BrowserRun:
    """What one Chromium run gave: the DOM (``--dump-dom``) or nothing, and the page's console lines."""

    dom: str
    console: tuple[str, ...]
    returncode: int


def run_chromium(page: Path, *, dump_dom: bool = False, screenshot: Path | None = None,
                 timeout_s: float = 120.0) -> BrowserRun:
    """Open ``page`` (a local file) in headless Chromium with a fresh profile; kill it on timeout."""
    if not os.path.exists(CHROMIUM):
        raise FileNotFoundError(f"{CHROMIUM} not found; install Debian's chromium package")
    profile = tempfile.mkdtemp(prefix="ccr_chromium_")
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}"]
    if dump_dom:
        args.append("--dump-dom")
    if screenshot is not None:
        args += [f"--screenshot={screenshot}", f"--window-size={WINDOW[0]},{WINDOW[1]}"]
    args.append(Path(page).resolve().as_uri())
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # chromium's own child processes share the new session
        proc.communicate()
        raise RuntimeError(f"chromium did not finish within {timeout_s:.0f} s on {page}") from None
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    console = tuple(m.group(1) for line in err.splitlines() if (m := CONSOLE.search(line)))
    return BrowserRun(out, console, proc.returncode)


def check_page(page: Path, num_layers: int, screenshot: Path | None = None) -> list[str]:
    """Problems found with the report page (empty when the table and chart rendered without console output)."""
    problems = []
    runs = [run_chromium(page, dump_dom=True)]
    if screenshot is not None:
        runs.append(run_chromium(page, screenshot=screenshot))
        if not screenshot.is_file() or screenshot.stat().st_size == 0:
            problems.append(f"no screenshot was written to {screenshot}")
    for r in runs:
        if r.returncode != 0:
            problems.append(f"chromium exited with {r.returncode}")
        problems += [f"console: {c}" for c in r.console]
    dom = runs[0].dom
    if 'data-ready="1"' not in dom:
        problems.append("the report's script did not run to the end (no data-ready=\"1\")")
    body = dom.split("<tbody>", 1)[-1].split("</tbody>", 1)[0] if "<tbody>" in dom else ""
    if body.count("<tr") != num_layers:
        problems.append(f"the table has {body.count('<tr')} rows, the report {num_layers} layers")
    for cls in ("accumulated", "isolated"):
        if f'<polyline class="{cls}"' not in dom:
            problems.append(f"the chart has no {cls} line")
    return problems


def build_report(report_dir: Path, num_images: int = 10, gain_samples: int = 4):
    """The face_detection_short_range L2 report (see the module docstring); returns it."""
    from calibrator_custom.analysis import accuracy_analysis
    from calibrator_custom.calib import collect_stats
    from calibrator_custom.pipeline.convert import convert
    from calibrator_custom.utils import image_preprocess_func

    if not MODEL.is_file() or not IMAGES.is_dir():
        raise FileNotFoundError(f"shared material not found at {SHARED}")
    report_dir.mkdir(parents=True, exist_ok=True)
    photos = sorted(str(p) for p in IMAGES.glob("*.jpg"))
    pre = image_preprocess_func("face_detection_short_range")
    ini = report_dir / "input_config.ini"
    ini.write_text("[INPUT_CONFIG]\ninputs=input;\ntraining_input_formats=RGB;\ninput_formats=RGB;\n"
                   "mean=127.5:127.5:127.5;\nstd_value=127.5;\n[OUTPUT_CONFIG]\noutputs=regressors,classificators;\n"
                   "dequantizations=TRUE,TRUE;\n")
    t0 = time.monotonic()
    stats = collect_stats(str(MODEL), photos[:30], [pre])
    fixed = report_dir / "face_detection_short_range_L2_fixed.sim"
    convert(str(MODEL), str(ini), stats, quant_level="L2", output_path=fixed)
    t1 = time.monotonic()
    rep = accuracy_analysis(str(MODEL), fixed, photos[30:30 + num_images], preprocess_funcs=[pre],
                            input_config=ini, gain_samples=gain_samples)
    t2 = time.monotonic()
    rep = dataclasses.replace(rep, float_model=MODEL.name, fixed_model=fixed.name)  # no local paths in the docs
    rep.to_json(report_dir / "report.json")
    rep.to_html(report_dir / "report.html")
    (report_dir / "summary.txt").write_text(rep.summary())
    print(f"statistics + L2 conversion {t1 - t0:.1f} s, analysis {t2 - t1:.1f} s", file=sys.stderr)
    return rep


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PNG, help="screenshot path (default: %(default)s)")
    parser.add_argument("--report-dir", type=Path, default=None, help="where the report goes (default: a temp dir)")
    parser.add_argument("--num_images", type=int, default=10)
    parser.add_argument("--gain_samples", type=int, default=4)
    args = parser.parse_args(argv)
    report_dir = args.report_dir or Path(tempfile.mkdtemp(prefix="ccr_report_"))
    rep = build_report(report_dir, args.num_images, args.gain_samples)
    print(rep.summary())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    problems = check_page(report_dir / "report.html", len(rep.layers), screenshot=args.out)
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if not problems:
        print(f"OK: table ({len(rep.layers)} rows) and chart rendered, no console messages; screenshot {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
