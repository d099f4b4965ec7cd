"""Write examples/calibrate_and_compare.ipynb (nbformat 4.5, outputs cleared) from the cells below.

    python tools/gen_example_notebook.py          # rewrite the notebook
    python tools/gen_example_notebook.py --check  # exit 1 if the notebook differs (tests/test_examples.py runs this)

Edit the cells here, not in Jupyter, so the committed notebook stays reviewable and output-free.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "calibrate_and_compare.ipynb"

CELLS: list[tuple[str, str]] = [
    ("markdown", """\
# Calibrate once, convert at several quant levels, compare

The bundled MediaPipe face detector (`face_detection_short_range.tflite`, a float model installed
with the package: `calibrator_custom.examples`) is calibrated on the three bundled photos with
`calibrator_custom.calibrator`, converted to a fixed model at quant levels L1-L4 with
`calibrator_custom.quant.convert.convert`, and every fixed model is simulated on raw uint8 pixels, as on the chip. The last cells compare each output of each
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
from calibrator_custom.quant.convert import convert

MODEL = str(bundled.model_path())   # installed with the package (calibrator_custom/examples/data/)
INPUT_CONFIG = str(bundled.input_config_path())
OUT = Path("calibrate_and_compare_out")
OUT.mkdir(exist_ok=True)
LEVELS = ["L1", "L2", "L3", "L4"]   # append "L5", the vendor's default and most accurate (about a minute more)
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

A text table, and a bar chart of the SQNR in HTML (no plotting library needed; shown when the
notebook runs in Jupyter)."""),
    ("code", """\
width = max(len(n) for n in output_names)
print(f"{'level':<6}{'output':<{width + 2}}{'SQNR dB':>8}{'max err':>10}{'mean err':>10}")
for level, per_output in errors.items():
    for name, e in per_output.items():
        print(f"{level:<6}{name:<{width + 2}}{e['sqnr_db']:8.2f}{e['max_abs_error']:10.4f}{e['mean_abs_error']:10.5f}")
worst = {level: min(per_output.items(), key=lambda item: item[1]["sqnr_db"]) for level, per_output in errors.items()}
for level, (name, e) in worst.items():
    print(f"{level}: worst output {name}, {e['sqnr_db']:.2f} dB")


def sqnr_chart_html(errors, db_full_scale=40.0):
    \"\"\"One horizontal bar per level and output, length proportional to the SQNR (capped at db_full_scale).\"\"\"
    rows = []
    for level, per_output in errors.items():
        for name, e in per_output.items():
            pct = max(0.0, min(e["sqnr_db"], db_full_scale)) / db_full_scale * 100
            rows.append(f"<tr><td>{level}</td><td>{name}</td><td style='width:320px'>"
                        f"<div style='background:#4a7;width:{pct:.0f}%'>&nbsp;</div></td>"
                        f"<td>{e['sqnr_db']:.1f} dB</td></tr>")
    return "<table><tr><th>level</th><th>output</th><th>SQNR</th><th></th></tr>" + "".join(rows) + "</table>"


chart_html = sqnr_chart_html(errors)
try:
    from IPython.display import HTML, display
except ImportError:  # plain Python: the text table above is the result
    pass
else:
    display(HTML(chart_html))"""),
    ("markdown", """\
Higher levels fit the ranges better (L3 histogram fitting) and move sensitive convolutions to 16
bit (L4, L5), so the SQNR tends to grow with the level, though not strictly: on three photos L3's
fitted ranges can lose to L2's plain min/max on one output. `classificators` (the face logits) is
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the notebook is not what this script writes")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not NOTEBOOK.is_file() or NOTEBOOK.read_text(encoding="utf-8") != text:
            print(f"{NOTEBOOK.relative_to(ROOT)} is stale: run python tools/gen_example_notebook.py", file=sys.stderr)
            return 1
        return 0
    NOTEBOOK.write_text(text, encoding="utf-8")
    print(f"wrote {NOTEBOOK.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
