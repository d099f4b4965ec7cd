"""``sgs-calibrator`` (``python -m calibrator_custom.calibrator``): float model + images -> fixed model.

    $ sgs-calibrator -i calib_images/ -m net_float.sim --input_config input_config.ini -n net_preprocess.py
    Fixed model at: net_fixed.sim

The vendor's ``Scripts/calibrator/calibrator.py`` with the same flags and defaults. The flow:

1. check every argument before any work: the model (a float model), the ini against the model, one
   preprocess per model input, the images (``cli.inputs``), ``--quant_file``, the output folder;
2. move an existing ``./log`` aside to ``./log.1`` (``log.2``, ... the next free name; the vendor
   deletes it) and create ``./log``;
3. collect statistics over all images in ``--num_process`` processes (``calib.parallel``);
4. write ``log/tensor_min_max.txt`` (``<name>, min: %06f, max: %06f;`` per activation tensor);
5. convert at the effective quant level (``quant.levels``: ``--quant_file`` forces L1, an all-INT16
   ``[CONV_CONFIG]`` forces L2); L5 measures on the first ``L5_SAMPLES`` images;
6. print ``Fixed model at: <path>`` on stdout.

Differences from the vendor: no ``SGS_IPU_DIR`` environment variable is needed; ``-c/--category``,
``--work_mode``, ``-p/--phase``, ``-t/--tool`` and ``--save_input`` are accepted and unused (the last
three with a warning); ``-o`` in a folder that does not exist falls back to the default name with a
warning, as the vendor does (the vendor's S1.0.9 calibrator does not use
``--category`` either); ``--save_quant_info`` writes ``quant_info_<fixed model name>.pkl`` next to
the fixed model: the vendor-form quant_param list (as ``sgs-save-quant-param --output_mode Pickle``).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .. import utils
from ..calib.minmax_log import write_tensor_min_max
from ..calib.parallel import collect_stats
from ..config import InputConfig, load_input_config
from ..model.graph import Model, load_model
from ..pipeline.convert import L5_SAMPLES, convert
from ..progress_display import Reporter
from ..quant.levels import QUANT_LEVELS, effective_quant_level, get_level
from ..quant.qparam import float_tensor_name, load_quant_param
from ._common import UserError, run
from .inputs import require_file, resolve_images, resolve_preprocess
from .save_quant_param import vendor_quant_param, write_quant_param

PROG = "sgs-calibrator"
LOG_DIR = "log"
MIN_MAX_FILE = "tensor_min_max.txt"
CATEGORIES = ("Classification", "Detection", "Unknown")
WORK_MODES = ("single_core", "multi_core")
#: -p/--phase values of the SDK generations (1.x: Statistics, Fixed, Fixed_without_IPU; S: Fixed,
#: Fixed_without_ipu_ctrl); every phase writes the one fixed model here
PHASES = ("Fixed", "Fixed_without_ipu_ctrl", "Statistics", "Fixed_without_IPU")
DEFAULT_QUANT_LEVEL = "L5"
DEFAULT_NUM_PROCESS = 10
DEFAULT_SENSITIVITY_THRESHOLD = 0.002

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationJob:
    """Every argument of a run, checked and resolved."""

    model_path: str
    model: Model
    config: InputConfig
    samples: tuple[tuple[str, ...], ...]
    preprocess: tuple[Callable, ...]
    quant_level: str
    quant_level_given: bool
    quant_param: list | None
    sensitivity_threshold: float
    num_process: int
    out_model: str
    save_quant_info: bool


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Calibrator Tool: convert a float model (*_float.sim or a float .tflite) into a fixed-point\n"
        "model (*_fixed.sim) using statistics over calibration images (about 30 recommended).",
        epilog="Writes ./log/tensor_min_max.txt (an existing ./log is moved aside to ./log.1, ./log.2, ...),\n"
        "then prints 'Fixed model at: <path>'.\n"
        "Unlike SigmaStar's tool, no SGS_IPU_DIR environment variable (source cfg_env.sh) is needed.\n"
        "Exit codes: 0 ok, 1 user error (one line on stderr naming the problem), 2 usage error,\n"
        "130 interrupted.")
    parser.add_argument("-i", "--image", type=str, required=True,
                        help="Image / directory of images (recursive) / image list file (one sample per line; "
                        "multi-input models: one image per input on each line, separated by ','; 'dir:listfile' "
                        "joins each entry to dir). For multi-input models also: one image or directory per input, "
                        "separated by ','.")
    parser.add_argument("-m", "--model", type=str, required=True,
                        help="Float model path (*_float.sim or float .tflite).")
    parser.add_argument("--input_config", type=str, required=True,
                        help="input_config.ini path (inputs, formats, mean/std, outputs; see docs/input_config.md).")
    parser.add_argument("-n", "--preprocess", type=str, required=True,
                        help="Image preprocess method per model input, separated by ',': a built-in name "
                        "(calibrator_custom.preprocess_method) or the path of a .py file defining "
                        "image_preprocess(img_path, norm=True).")
    parser.add_argument("-c", "--category", type=str, default="Unknown", choices=CATEGORIES,
                        help="Net category (default: %(default)s). Accepted for compatibility; the calibration "
                        "does not use it.")
    parser.add_argument("--quant_level", type=str, default=None, choices=QUANT_LEVELS,
                        help=f"Quantization level (default: {DEFAULT_QUANT_LEVEL}). The higher the level, the slower "
                        "and the more accurate: L1 min/max; L2 per-channel weights; L3 histogram-fitted ranges; "
                        "L4 L3 + estimated 16-bit upgrades of sensitive convolutions; L5 measured ranges and "
                        "16-bit upgrades.")
    parser.add_argument("-sth", "--sensitivity_threshold", type=float, default=DEFAULT_SENSITIVITY_THRESHOLD,
                        help="Sensitivity threshold (0 < sth < 1) for upgrading convolutions to 16-bit "
                        "quantization at L4/L5 (default: %(default)s).")
    parser.add_argument("--quant_file", type=str, default=None,
                        help="Import a quantization parameter file (JSON or Pickle list of {name, min, max, bit}; "
                        "e.g. from sgs-save-quant-param) to set ranges. Forces quant level L1 (default: none).")
    parser.add_argument("--show_log", default=False, action="store_true",
                        help="Show the progress log on stderr (default: warnings only).")
    parser.add_argument("--save_quant_info", default=False, action="store_true",
                        help="Also write quant_info_<fixed model name>.pkl next to the fixed model: the quant "
                        "parameters it uses, as a Pickle quant_param list (default: off).")
    parser.add_argument("--num_process", type=int, default=DEFAULT_NUM_PROCESS,
                        help="Number of processes collecting statistics at the same time, capped at the CPU count "
                        "and the number of images (default: %(default)s).")
    parser.add_argument("-o", "--output", type=str, default=None,
                        help="Output path of the fixed model: a directory (the model is named <prefix>_fixed.sim "
                        "inside it) or a file path (default: <prefix>_fixed.sim next to the float model).")
    parser.add_argument("--work_mode", type=str, default=None, choices=WORK_MODES,
                        help="Calibrator work mode of the vendor's S6 chips. Accepted for compatibility; unused "
                        "(default: none).")
    parser.add_argument("-p", "--phase", type=str, default="Fixed", choices=PHASES,
                        help="The SDK's conversion phase (its internal builds). Accepted for compatibility; every "
                        "phase writes the fixed model here, with a warning for phases other than Fixed.")
    parser.add_argument("-t", "--tool", type=str, default=None,
                        help="The 1.x SDK's sgs_calibrator binary. Accepted for compatibility and ignored (there "
                        "is no binary here).")
    parser.add_argument("--save_input", default=False, action="store_true",
                        help="The 1.x SDK's flag. Accepted for compatibility and ignored.")
    return parser


def warn_ignored_flags(args: argparse.Namespace) -> None:
    """Warn about the SDK flags this tool accepts without effect (the SDK accepts them)."""
    if args.phase != "Fixed":
        log.warning("-p %s: this tool has one phase; the fixed model is written as with -p Fixed", args.phase)
    if args.tool is not None:
        log.warning("-t/--tool %s is ignored: there is no SDK binary here", args.tool)
    if args.save_input:
        log.warning("--save_input is ignored by sgs-calibrator")


# ------------------------------------------------------------------------------------------ checks
def _float_model(path: str) -> Model:
    from ..fixed.writer import read_fixed_metadata

    require_file(path, "float model", "-m")
    try:
        model = load_model(path)
    except ValueError as e:
        raise UserError(f"-m: {e}") from None
    if read_fixed_metadata(model) is not None:
        raise UserError(f"-m {path!r} is a fixed model; give the float model (*_float.sim or float .tflite) it "
                        "was made from")
    return model


def check_quant_names(items: list, model: Model, path: str) -> None:
    """Every item names a tensor of the float model (or ``<name>_u8``, the UINT8 copy), as import requires."""
    names = {t.name for t in model.main.tensors}
    inputs = {model.main.tensors[i].name for i in model.main.inputs}
    for k, item in enumerate(items):
        name = float_tensor_name(item["name"], names, inputs)
        if name is None or name in names or (name.endswith("_u8") and name[:-3] in names):
            continue
        name = item["name"]
        raise UserError(f"--quant_file {path!r}: item {k} names tensor {name!r}, which the float model does not "
                        "have; take names from sgs-save-quant-param or calibrator.get_tensor_details()")


def _quant_file(path: str | None, model: Model) -> list | None:
    if path is None:
        return None
    require_file(path, "quant_param file", "--quant_file")
    try:
        items = load_quant_param(path)
        utils.check_quant_param(items)
    except ValueError as e:
        raise UserError(f"--quant_file {path!r}: {e}") from None
    if not items:
        raise UserError(f"--quant_file {path!r} holds an empty list; give at least one {{name, min, max, bit}} item")
    check_quant_names(items, model, path)
    return items


def prepare(args: argparse.Namespace) -> CalibrationJob:
    """Check every argument (files, ini against the model, preprocess, images, quant file, output)."""
    warn_ignored_flags(args)
    model = _float_model(args.model)
    require_file(args.input_config, "input_config.ini", "--input_config")
    config = load_input_config(args.input_config, model)
    num_inputs = len(model.main.inputs)
    preprocess = resolve_preprocess(args.preprocess, num_inputs)
    samples = resolve_images(args.image, num_inputs)
    if args.num_process < 1:
        raise UserError(f"--num_process {args.num_process}: give at least 1 process")
    if not 0 < args.sensitivity_threshold < 1:
        raise UserError(f"-sth/--sensitivity_threshold {args.sensitivity_threshold}: give a value between 0 and 1 "
                        f"(default {DEFAULT_SENSITIVITY_THRESHOLD})")
    quant_param = _quant_file(args.quant_file, model)
    try:
        out_model = utils.output_model_path(args.model, args.output)
    except ValueError as e:
        raise UserError(f"-o: {e}") from None
    if os.path.isdir(out_model):
        raise UserError(f"-o: {out_model!r} is an existing folder, so the fixed model cannot be written there; "
                        "give another file path or folder")
    out_dir = os.path.dirname(os.path.abspath(out_model))
    if not os.access(out_dir, os.W_OK):
        raise UserError(f"cannot write the fixed model {out_model!r}: folder {out_dir!r} is not writable; "
                        "choose another with -o")
    given = args.quant_level is not None
    return CalibrationJob(
        model_path=args.model, model=model, config=config,
        samples=tuple(tuple(s) for s in samples), preprocess=tuple(preprocess),
        quant_level=args.quant_level if given else DEFAULT_QUANT_LEVEL, quant_level_given=given,
        quant_param=quant_param, sensitivity_threshold=args.sensitivity_threshold,
        num_process=args.num_process, out_model=out_model, save_quant_info=args.save_quant_info)


# ------------------------------------------------------------------------------------------ log dir
def rotate_log_dir(folder: str = LOG_DIR) -> str | None:
    """Move a non-empty ``folder`` (or a file of that name) to ``folder.N``, N the smallest free number >= 1.

    Returns the new name, or None when there was nothing to move; ``folder`` exists afterwards.
    """
    moved = None
    if os.path.lexists(folder) and not (os.path.isdir(folder) and not os.path.islink(folder)
                                        and not os.listdir(folder)):
        n = 1
        while os.path.lexists(f"{folder}.{n}"):
            n += 1
        moved = f"{folder}.{n}"
        os.rename(folder, moved)
        log.warning("the previous %s/ was moved to %s/ (calibrator_custom keeps old logs; delete them when done)",
                    folder, moved)
    os.makedirs(folder, exist_ok=True)
    return moved


# ------------------------------------------------------------------------------------------ run
def _level(job: CalibrationJob) -> str:
    level = effective_quant_level(job.quant_level, [job.config], job.quant_param)
    if level != job.quant_level and job.quant_level_given:
        why = "--quant_file is given" if job.quant_param else "every [CONV_CONFIG] input_format is ALL_INT16"
        log.warning("--quant_level %s -> %s: %s (the vendor's rule)", job.quant_level, level, why)
    return level


def _calibration_feeds(job: CalibrationJob) -> list[list[Any]]:
    """The first L5_SAMPLES samples, preprocessed for the float model (norm=True)."""
    return [[f(p) for f, p in zip(job.preprocess, sample)] for sample in job.samples[:L5_SAMPLES]]


def calibrate(job: CalibrationJob) -> str:
    """Run the checked job; returns the fixed model's path."""
    level = _level(job)
    rotate_log_dir()
    n = max(1, min(job.num_process, os.cpu_count() or 1, len(job.samples)))
    log.info("collecting statistics of %s over %d sample(s) in %d process(es)", job.model_path, len(job.samples), n)
    report = Reporter.auto()  # a bar on a terminal, else INFO lines (--show_log) with elapsed times and ETA
    with report.phase("statistics (images)", len(job.samples)) as phase:
        stats = collect_stats(job.model_path, job.samples, job.preprocess, num_process=n, progress=phase)
    min_max = os.path.join(LOG_DIR, MIN_MAX_FILE)
    write_tensor_min_max(stats, min_max)
    log.info("wrote %s", min_max)
    feeds = _calibration_feeds(job) if get_level(level).uses_calibration_inputs else None
    log.info("converting at quant level %s", level)

    def statistics_of(path: str):  # the channel-equalized model's, on the same images
        return collect_stats(path, job.samples, job.preprocess, num_process=n)
    fixed = convert(job.model, job.config, stats, quant_level=level, quant_param=job.quant_param,
                    sensitivity_threshold=job.sensitivity_threshold, calibration_feeds=feeds,
                    output_path=job.out_model, progress=report, num_process=n, statistics_of=statistics_of)
    if job.save_quant_info:
        stem = os.path.basename(job.out_model)
        stem = stem[:-4] if stem.lower().endswith(".sim") else stem
        info = os.path.join(os.path.dirname(job.out_model), f"quant_info_{stem}.pkl")
        write_quant_param(vendor_quant_param(fixed), info)
        log.info("wrote %s", info)
    return job.out_model


def _body(args: argparse.Namespace) -> int:
    out_model = calibrate(prepare(args))
    print(f"Fixed model at: {out_model}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; returns the exit code (0 ok, 1 user error, 2 usage error, 130 interrupted)."""
    return run(PROG, build_parser(), _body, argv)


if __name__ == "__main__":
    sys.exit(main())
