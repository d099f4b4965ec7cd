"""``sgs-analyze`` (``python -m calibrator_custom.analyze``): where a fixed model loses accuracy.

    $ sgs-analyze -m net_float.sim --fixed net_fixed.sim -i images/ -n net_preprocess.py -o report/

Runs the float and the fixed model side by side on the images (``-i``: an image, a folder or a list
file; ``-n``: one preprocess per input, as ``sgs-calibrator`` takes them) and writes to the ``-o``
folder ``report.json`` (:meth:`AnalysisReport.to_json`), ``report.html`` (self-contained: a
sortable table and a chart of SQNR along the graph) and ``summary.txt`` (the 10 worst layers and a
``[CONV_CONFIG] tensor_arrays`` suggestion), and prints the summary. ``--input_config`` is the
input_config.ini the model was converted with; by default the fixed model's metadata stands in for
it. See docs/analysis.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from ..analysis import accuracy_analysis
from ..analysis.api import DEFAULT_GAIN_SAMPLES
from ..analysis.report import GAIN_METHODS
from ..model.graph import atomic_write, load_model
from ..progress import ProgressBar
from ._common import UserError, run
from .inputs import require_file, resolve_images, resolve_preprocess

PROG = "sgs-analyze"
FILES = ("report.json", "report.html", "summary.txt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Per-layer accuracy analysis of a fixed model against its float model: accumulated "
        "and isolated errors, quantization ranges and clipping, the gain of 16-bit convolutions, and a "
        "[CONV_CONFIG] tensor_arrays suggestion.",
        epilog="Writes report.json, report.html and summary.txt into the -o folder and prints the summary. "
        "Exit codes: 0 ok, 1 user error (one line on stderr), 2 usage error.")
    parser.add_argument("-m", "--model", type=str, required=True, help="Float model (*_float.sim or .tflite).")
    parser.add_argument("--fixed", type=str, required=True, help="Fixed model (*_fixed.sim) converted from -m.")
    parser.add_argument("-i", "--image", type=str, required=True,
                        help="Image, folder or image list file (',' between the inputs of a multi-input model).")
    parser.add_argument("-n", "--preprocess", type=str, required=True,
                        help="Preprocess method name or .py file, one per input (',' separated).")
    parser.add_argument("--input_config", type=str, default=None,
                        help="input_config.ini the model was converted with (default: the fixed model's metadata).")
    parser.add_argument("-o", "--output", type=str, required=True, help="Report folder (created if missing).")
    parser.add_argument("--num_images", type=int, default=None,
                        help="Analyse at most this many images (default: all).")
    parser.add_argument("--gain", type=str, default="measured", choices=GAIN_METHODS,
                        help="16-bit gain per convolution: measured (re-planned and run, the default), estimated "
                        "(analytic, fast) or off.")
    parser.add_argument("--gain_samples", type=int, default=DEFAULT_GAIN_SAMPLES,
                        help="Images the measured gains run on (the first ones; default: %(default)s).")
    parser.add_argument("--show_log", action="store_true", help="Log progress messages (INFO) on stderr.")
    return parser


class _Bars:
    """One ProgressBar per stage of the analysis."""

    def __init__(self) -> None:
        self.bar: ProgressBar | None = None
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.stage, self.bar = stage, ProgressBar(total, stage)
        self.bar(done, total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _body(args: argparse.Namespace) -> int:
    require_file(args.model, "float model", "-m")
    require_file(args.fixed, "fixed model", "--fixed")
    if args.input_config is not None:
        require_file(args.input_config, "input config", "--input_config")
    if args.num_images is not None and args.num_images < 1:
        raise UserError(f"--num_images {args.num_images}: give a number >= 1")
    if args.gain_samples < 1:
        raise UserError(f"--gain_samples {args.gain_samples}: give a number >= 1")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise UserError(f"-o {args.output!r} is a file; give a folder for the report")
    num_inputs = len(load_model(args.model).main.inputs)
    samples = resolve_images(args.image, num_inputs)
    funcs = resolve_preprocess(args.preprocess, num_inputs)
    bars = _Bars()
    try:
        rep = accuracy_analysis(args.model, args.fixed, samples, preprocess_funcs=funcs, input_config=args.input_config,
                                gain_method=args.gain, gain_samples=args.gain_samples, num_samples=args.num_images,
                                progress=bars)
    finally:
        bars.close()
    os.makedirs(args.output, exist_ok=True)
    text = rep.summary()
    rep.to_json(os.path.join(args.output, FILES[0]))
    rep.to_html(os.path.join(args.output, FILES[1]))
    atomic_write(os.path.join(args.output, FILES[2]), text.encode("utf-8"))
    print(text, end="")
    print(f"Report written to {os.path.join(args.output, FILES[1])} (and {FILES[0]}, {FILES[2]})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; returns the exit code (0 ok, 1 user error, 2 usage error)."""
    return run(PROG, build_parser(), _body, argv)


if __name__ == "__main__":
    sys.exit(main())
