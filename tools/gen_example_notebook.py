"""Write examples/calibrate_and_compare.ipynb (nbformat 4.5, outputs cleared) from the cells below.

    python tools/gen_example_notebook.py          # rewrite the notebook
    python tools/gen_example_notebook.py --check  # exit 1 if the notebook differs (tests/test_examples.py runs this)

Edit the cells here, not in Jupyter, so the committed notebook stays reviewable and output-free.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from _generated import check_or_write  # tools/: this script's folder

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "calibrate_and_compare.ipynb"

CELLS: list[tuple[str, str]] = [
    ("markdown", """\
# Calibrate once, convert at several quant levels, compare

The bundled MediaPipe face detector (`face_detection_short_range.tflite`, a float model installed
with the package: `calibrator_custom.examples`) is calibrated on the three bundled photos with
`calibrator_custom.calibrator`, converted to a fixed model at quant levels L1-L4 with
`calibrator_custom.pipeline.convert.convert`, and every fixed model is simulated on raw uint8 pixels, as on the chip. The last cells compare each output of each
fixed model with the float model.

It runs from any folder, in the repository or with the package installed from a wheel. The fixed
models go to `calibrate_and_compare_out/` in the current folder. The photos serve for calibration
and evaluation alike (only three are bundled), so the numbers are optimistic; `docs/quant_levels.md` has held-out ones."""),
    ("code", """\
import time
from pathlib import Path

import numpy as np

import calibrator_custom
from calibrator_custom import examples as bundled
from calibrator_custom import utils
from calibrator_custom.pipeline.convert import convert

MODEL = str(bundled.model_path())   # installed with the package (calibrator_custom/examples/data/)
INPUT_CONFIG = str(bundled.input_config_path())
OUT = Path("calibrate_and_compare_out")
OUT.mkdir(exist_ok=True)
LEVELS = ["L1", "L2", "L3", "L4"]   # append "L5", the vendor's default and most accurate (and slowest)
photos = [str(p) for p in bundled.photo_paths()]
preprocess = utils.image_preprocess_func(bundled.PREPROCESS)
print(f"{Path(MODEL).name}, {len(photos)} photos, levels {LEVELS}")"""),
    ("markdown", """\
## 1. Calibrate

A `calibrator` is a float simulator whose every `invoke()` adds to the calibration statistics, so
one pass over the photos gives both the float model's outputs (the reference) and the statistics.
`norm=True` preprocessing gives the float model's normalised float32 input."""),
    ("code", """\
calib = calibrator_custom.calibrator(MODEL, INPUT_CONFIG)
output_names = [d["name"] for d in calib.get_output_details()]
float_outputs, feeds = [], []
for photo in photos:
    x = preprocess(photo, norm=True)
    calib.set_input(0, x)
    calib.invoke()
    float_outputs.append([calib.get_output(k) for k in range(len(output_names))])
    feeds.append([x])
stats = calib.statistics()
qtypes = {}
for d in calib.get_tensor_details():
    qtypes[d["qtype"]] = qtypes.get(d["qtype"], 0) + 1
print(f"statistics over {len(feeds)} photos; tensor types in the fixed model: {qtypes}")"""),
    ("markdown", """\
## 2. Convert at each level

The statistics are reused for every level; only L5 runs the model again (on `calibration_feeds`)."""),
    ("code", """\
fixed_models = {}
for level in LEVELS:
    start = time.monotonic()
    path = OUT / f"face_detection_short_range_{level}_fixed.sim"
    convert(MODEL, INPUT_CONFIG, stats, quant_level=level, calibration_feeds=feeds, output_path=path)
    fixed_models[level] = str(path)
    print(f"{level}: {path} ({time.monotonic() - start:.1f} s)")"""),
    ("markdown", """\
## 3. Simulate the fixed models and measure the error

Fixed models take the raw pixels (`norm=False`) converted to the input's format by
`utils.convert_to_input_formats`; mean and std are inside the model. Per output: SQNR in dB (signal
energy over error energy, pooled over the photos; higher is better), and the largest and mean
absolute error relative to the float output's largest magnitude."""),
    ("code", """\
def output_errors(refs, gots):
    ref = np.concatenate([r.ravel() for r in refs]).astype(np.float64)
    got = np.concatenate([g.ravel() for g in gots]).astype(np.float64)
    noise = float(np.sum((ref - got) ** 2))
    scale = float(np.abs(ref).max()) or 1.0
    return {"sqnr_db": float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref ** 2) / noise)),
            "max_abs_error": float(np.abs(ref - got).max() / scale),
            "mean_abs_error": float(np.abs(ref - got).mean() / scale)}


errors = {}
for level, path in fixed_models.items():
    sim = calibrator_custom.fixed_simulator(path)
    details = sim.get_input_details()[0]
    fixed_outputs = []
    for photo in photos:
        sim.set_input(0, utils.convert_to_input_formats(preprocess(photo, norm=False), details))
        sim.invoke()
        fixed_outputs.append([sim.get_output(k) for k in range(len(output_names))])
    errors[level] = {name: output_errors([f[k] for f in float_outputs], [g[k] for g in fixed_outputs])
                     for k, name in enumerate(output_names)}"""),
    ("markdown", """\
## 4. Per-output error

A text table, then a grouped bar chart of the SQNR per level and output: an SVG drawn by the cell
itself (no plotting library needed), shown inline in Jupyter and saved as
`calibrate_and_compare_out/sqnr_by_level.svg` for any browser."""),
    ("code", """\
width = max(len(n) for n in output_names)
print(f"{'level':<6}{'output':<{width + 2}}{'SQNR dB':>8}{'max err':>10}{'mean err':>10}")
for level, per_output in errors.items():
    for name, e in per_output.items():
        print(f"{level:<6}{name:<{width + 2}}{e['sqnr_db']:8.2f}{e['max_abs_error']:10.4f}{e['mean_abs_error']:10.5f}")
worst = {level: min(per_output.items(), key=lambda item: item[1]["sqnr_db"]) for level, per_output in errors.items()}
for level, (name, e) in worst.items():
    print(f"{level}: worst output {name}, {e['sqnr_db']:.2f} dB")"""),
    ("code", """\
from html import escape

COLOURS = ["#3b75af", "#ef8636", "#519e3e", "#c53932", "#8d69b8", "#84584e"]


def sqnr_chart_svg(errors, width=640, height=340):
    \"\"\"A grouped bar chart (SVG text): one group per level, one bar per output, bar height = SQNR in dB.\"\"\"
    levels = list(errors)
    names = list(next(iter(errors.values())))
    finite = [e["sqnr_db"] for per in errors.values() for e in per.values() if np.isfinite(e["sqnr_db"])]
    top = 10 * int(np.ceil(max(finite + [10.0]) / 10))          # y axis: 0 .. top dB, a line every 10 dB
    left, right, upper, lower = 56, 16, 40, 44
    plot_w, plot_h = width - left - right, height - upper - lower
    y = lambda db: upper + plot_h * (1 - min(max(db, 0.0), top) / top)
    group_w = plot_w / len(levels)
    bar_w = 0.8 * group_w / len(names)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">'
             'Fixed vs float model: SQNR per output (higher is better)</text>']
    for db in range(0, top + 1, 10):
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(db):.1f}" y2="{y(db):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y(db) + 4:.1f}" text-anchor="end">{db}</text>')
    parts.append(f'<text transform="translate(16 {upper + plot_h / 2}) rotate(-90)" text-anchor="middle">'
                 'SQNR (dB)</text>')
    for g, level in enumerate(levels):
        x0 = left + g * group_w + 0.1 * group_w
        for k, name in enumerate(names):
            db = errors[level][name]["sqnr_db"]
            x, top_y = x0 + k * bar_w, y(db)
            parts.append(f'<rect class="bar" data-level="{escape(level)}" data-output="{escape(name)}" '
                         f'data-sqnr-db="{db:.4f}" x="{x:.1f}" y="{top_y:.1f}" width="{bar_w:.1f}" '
                         f'height="{upper + plot_h - top_y:.1f}" fill="{COLOURS[k % len(COLOURS)]}">'
                         f'<title>{escape(level)} {escape(name)}: {db:.2f} dB</title></rect>'
                         f'<text x="{x + bar_w / 2:.1f}" y="{top_y - 4:.1f}" text-anchor="middle" font-size="10">'
                         f'{db:.1f}</text>')
        parts.append(f'<text x="{left + (g + 0.5) * group_w:.1f}" y="{upper + plot_h + 18}" '
                     f'text-anchor="middle">{escape(level)}</text>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{upper + plot_h}" y2="{upper + plot_h}" stroke="#333"/>')
    for k, name in enumerate(names):
        lx = left + k * 150
        parts.append(f'<rect x="{lx}" y="{height - 16}" width="10" height="10" fill="{COLOURS[k % len(COLOURS)]}"/>'
                     f'<text x="{lx + 14}" y="{height - 7}">{escape(name)}</text>')
    parts.append("</svg>")
    return "\\n".join(parts)


chart_svg = sqnr_chart_svg(errors)
(OUT / "sqnr_by_level.svg").write_text(chart_svg, encoding="utf-8")
try:
    from IPython.display import SVG, display
except ImportError:  # plain Python: the table above and the saved file are the result
    print(f"chart saved to {OUT / 'sqnr_by_level.svg'}")
else:
    display(SVG(data=chart_svg))"""),
    ("markdown", """\
Higher levels fit the ranges better (L3 histogram fitting) and move sensitive convolutions to 16
bit (L4, L5), so the SQNR tends to grow with the level, though not strictly: on three photos a level
can lose to the one below it on one output. `classificators` (the face logits) is
usually the worst output. See `docs/quant_levels.md` for what each level does and
`docs/user_guide.md` for the command-line tools that do the same in one command."""),
]


def render() -> str:
    """The notebook JSON (stable: fixed cell ids, no outputs, sorted keys as nbformat writes them)."""
    cells = []
    for k, (kind, source) in enumerate(CELLS):
        lines = source.splitlines(keepends=True)
        cell = {"cell_type": kind, "id": f"cell-{k:02d}", "metadata": {}, "source": lines}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    notebook = {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    return check_or_write(NOTEBOOK, render, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
