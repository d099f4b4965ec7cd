"""``sgs-simulator`` / ``python -m calibrator_custom.simulator``: run a float or fixed model on images.

The vendor's ``Scripts/calibrator/simulator.py`` with the same flags and result files (see
:mod:`calibrator_custom.cli.results` for their exact format). Differences, all documented in ``--help``:

* results stay in ``./output/`` (the vendor later moves that folder to ``log/output/``);
* ``-t`` may be left out: the model says whether it is float or fixed (a fixed model written by
  calibrator_custom carries metadata); a ``-t`` that contradicts the model is an error;
* ``-t Offline`` (``*_sgsimg.img`` models) is not available;
* ``-l`` computes top-1/top-5 accuracy for ``-c Classification`` here (label file format in
  :func:`calibrator_custom.cli.results.read_labels`); COCO mAP for detection is not implemented;
  with ``-c Unknown`` it is ignored (warning);
* ``-c Classification`` on a model with several outputs takes output 0, as the vendor (warning);
* ``--tool`` and ``--save_input`` are accepted and ignored (warning); ``-t Cmodel_float`` /
  ``Fixed_without_ipu_ctrl`` run as Float / Fixed;
* ``--draw_result`` colours are fixed per category (the vendor's are random).
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import utils
from ..model.graph import atomic_write, load_model
from ..progress import ProgressBar
from ..sim_workers import run_sharded
from . import results as res
from ._common import UserError, run
from .inputs import require_file, resolve_images, resolve_preprocess

PROG = "sgs-simulator"
OUTPUT_DIR = "output"
DETECTION_HINT = ("-c Detection needs a model that ends in TFLite_Detection_PostProcess or "
                  "TFLite_Detection_NMS producing its 4 outputs (boxes, classes, scores, count)")

log = logging.getLogger("calibrator_custom.simulator")


@dataclass(frozen=True)
class SimulateJob:
    """Everything a (worker) process needs to simulate samples and write their result files."""

    model_path: str
    model_type: str  # 'Float' | 'Fixed'
    category: str
    preprocess: str  # the -n value (names or .py paths), resolved again in each worker
    output_dir: str
    rawdata_dir: str
    dump_rawdata: bool = False
    skip_garbage: bool = False
    draw_dir: str | None = None
    draw_threshold: float = 0.0
    show_log: bool = False


class SampleRunner:
    """One simulator and the preprocess functions; :meth:`run` simulates one sample and writes its files."""

    def __init__(self, job: SimulateJob):
        from ..simulators import fixed_simulator, float_simulator

        self.job = job
        make = fixed_simulator if job.model_type == "Fixed" else float_simulator
        self.sim = make(job.model_path, show_log=job.show_log)
        self.in_details = self.sim.get_input_details()
        self.out_details = self.sim.get_output_details()
        self.funcs = resolve_preprocess(job.preprocess, len(self.in_details))
        self.norm = self.sim.class_type == "FLOAT"

    def run(self, paths: Sequence[str]) -> None:
        """Preprocess, convert, invoke, dequantize and write the result file(s) of one sample."""
        try:
            outputs = self._invoke(paths)
        except ValueError as e:  # name the sample unless the message already does
            msg = str(e)
            where = paths[0] if len(paths) == 1 else ", ".join(paths)
            raise UserError(msg if any(p in msg for p in paths) else f"{where}: {msg}") from None
        self._write(paths, outputs)

    def _invoke(self, paths: Sequence[str]) -> list[np.ndarray]:
        for k, (func, path, detail) in enumerate(zip(self.funcs, paths, self.in_details)):
            data = utils.convert_to_input_formats(func(path, norm=self.norm), detail)
            if self.job.dump_rawdata:
                self._dump(k, paths, data)
            self.sim.set_input(k, data)
        self.sim.invoke()
        outputs = []
        for k, detail in enumerate(self.out_details):
            out = self.sim.get_output(k)
            if detail["dtype"] == np.int16:  # the vendor's dequantization: q * scale, zero point ignored
                out = np.multiply(out, detail["quantization"][0])
            outputs.append(out)
        return outputs

    def _dump(self, k: int, paths: Sequence[str], data: np.ndarray) -> None:
        base = os.path.basename(paths[k])
        name = f"{base}.bin" if len(paths) == 1 else f"{base}_input{k}.bin"
        atomic_write(os.path.join(self.job.rawdata_dir, name), np.ascontiguousarray(data).tobytes())
        print(f"Input{'' if len(paths) == 1 else k} rawdata saved in {name}")

    def _write(self, paths: Sequence[str], outputs: list[np.ndarray]) -> None:
        job, image = self.job, paths[0]
        target = os.path.join(job.output_dir, res.result_file_name(job.category, job.model_path, image))
        if job.category == "Classification":
            text = res.format_classification(image, outputs[0], self.out_details[0])
        elif job.category == "Detection":
            original = res.read_color_image(image)
            dets = res.detections(outputs, self.out_details, image, original.shape[0], original.shape[1])
            text = res.format_detection(dets)
            if job.draw_dir is not None:
                os.makedirs(job.draw_dir, exist_ok=True)
                drawn_path = os.path.join(job.draw_dir, os.path.basename(image))
                drawn = res.draw_detections(original, dets, job.draw_threshold)
                atomic_write(drawn_path, res.encode_image(drawn_path, drawn))
        else:
            text = res.format_unknown(outputs, self.out_details, job.skip_garbage)
        atomic_write(target, text.encode())


# ------------------------------------------------------------------------------- worker processes
def _run_all(runner: SampleRunner, samples: list[list[str]], num_process: int) -> None:
    """Run every sample, in ``num_process`` forked workers (contiguous shards; see ``sim_workers``: they
    die with this process, and a dead or stopped one is reported naming its image)."""
    def run_shard(start: int, stop: int, tick) -> None:
        for paths in samples[start:stop]:
            runner.run(paths)
            tick()

    with ProgressBar(len(samples), "simulating") as bar:
        run_sharded(run_shard, len(samples), num_process, bar.update, PROG,
                    describe=lambda k: f"image {samples[k][0]!r}")


# ------------------------------------------------------------------------------- checks
#: model types of the SDK's internal builds, and the type that simulates them here
SDK_INTERNAL_TYPES = {"Cmodel_float": "Float", "Fixed_without_ipu_ctrl": "Fixed"}


def _model_type(path: str, requested: str | None) -> str:
    """'Float' or 'Fixed', from the model itself; UserError if ``-t`` says otherwise."""
    from ..fixed.writer import read_fixed_metadata

    if requested in SDK_INTERNAL_TYPES:
        mapped = SDK_INTERNAL_TYPES[requested]
        log.warning("-t %s (the SDK's internal model type) is simulated as -t %s", requested, mapped)
        requested = mapped
    if requested == "Offline":
        raise UserError("-t Offline: offline models (*_sgsimg.img) are not supported by calibrator_custom; "
                        "simulate the fixed model (*_fixed.sim) with -t Fixed, its results are the same")
    actual = "Fixed" if read_fixed_metadata(load_model(path)) is not None else "Float"
    if requested is not None and requested != actual:
        if requested == "Fixed":
            raise UserError(f"-t Fixed: model {path!r} is a float model (it has no calibrator_custom fixed "
                            "metadata); use -t Float, or convert it with sgs-calibrator first")
        raise UserError(f"-t Float: model {path!r} is a fixed model written by calibrator_custom; use -t Fixed "
                        "(or leave -t out)")
    return actual


def _check_category(runner: SampleRunner, category: str, model_path: str) -> None:
    outs = runner.out_details
    if category == "Classification" and len(outs) != 1:
        log.warning("-c Classification: %r has %d outputs (%s); the top-5 are of output 0 (%s), as the SDK does; use "
                    "-c Unknown to dump them all", model_path, len(outs), ", ".join(d["name"] for d in outs),
                    outs[0]["name"])
    if category == "Detection" and not runner.sim.is_detection():
        raise UserError(f"{DETECTION_HINT}; {model_path!r} does not (use -c Unknown to dump its outputs)")


def _parse_draw(arg: str | None) -> tuple[str | None, float]:
    if arg is None:
        return None, 0.0
    folder, _, threshold = arg.partition(",")
    if not folder:
        raise UserError(f"--draw_result {arg!r}: give an output folder, optionally followed by ',<score threshold>'")
    try:
        return folder, float(threshold) if threshold else 0.0
    except ValueError:
        raise UserError(f"--draw_result {arg!r}: the threshold {threshold!r} is not a number (e.g. "
                        f"--draw_result {folder},0.5)") from None


def _check_labels(args: argparse.Namespace, samples: list[list[str]]) -> dict[str, int] | None:
    if args.label is None:
        return None
    if args.category == "Detection":
        raise UserError(f"-l {args.label!r} with -c Detection: COCO mAP evaluation is not implemented; run without "
                        "-l and evaluate the detection_*.txt files (COCO result lines) with pycocotools")
    if args.category != "Classification":
        log.warning("-l %s is ignored with -c %s: only -c Classification has an accuracy (top-1/top-5)", args.label,
                    args.category)
        return None
    names = [os.path.basename(s[0]) for s in samples]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"-l: several images are named {dup[0]!r}; labels and result files are matched by file "
                        "name, so give images unique names")
    return res.read_labels(args.label, names)


def _pending(samples: list[list[str]], job: SimulateJob) -> list[list[str]]:
    """``--continue_run``: the samples whose result file is not in the output folder yet."""
    names = [os.path.basename(s[0]) for s in samples]
    if len(set(names)) != len(names):
        raise UserError("--continue_run: several images have the same file name, so their results cannot be told "
                        "apart; give images unique names or run without --continue_run")
    todo = [s for s in samples if not os.path.isfile(
        os.path.join(job.output_dir, res.result_file_name(job.category, job.model_path, s[0])))]
    print(f"{len(samples) - len(todo)} images already ran, left {len(todo)} images to run continue.")
    return todo


def _prepare_output(folder: str, keep: bool) -> None:
    if keep:
        if not os.path.isdir(folder):
            raise UserError(f"--continue_run: no {folder!r} folder with earlier results here; run without "
                            "--continue_run first")
        return
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    elif os.path.exists(folder):
        os.remove(folder)
    os.makedirs(folder)


# ------------------------------------------------------------------------------- main
def _body(args: argparse.Namespace) -> int:
    model_path = require_file(args.model, "the model file", "-m")
    if args.tool is not None:
        log.warning("--tool %s is ignored: there is no SDK binary here", args.tool)
    if args.save_input:
        log.warning("--save_input is ignored; --dump_rawdata writes the converted inputs")
    if args.input_config is not None:
        require_file(args.input_config, "the input_config.ini file", "--input_config")
    if args.num_process < 1:
        raise UserError(f"--num_process {args.num_process}: give 1 or more processes")
    draw_dir, threshold = _parse_draw(args.draw_result)
    model_type = _model_type(model_path, args.type)
    job = SimulateJob(model_path=model_path, model_type=model_type, category=args.category,
                      preprocess=args.preprocess, output_dir=os.path.abspath(OUTPUT_DIR), rawdata_dir=os.getcwd(),
                      dump_rawdata=args.dump_rawdata, skip_garbage=args.skip_garbage,
                      draw_dir=None if draw_dir is None else os.path.abspath(draw_dir), draw_threshold=threshold,
                      show_log=args.show_log)
    runner = SampleRunner(job)
    _check_category(runner, args.category, model_path)
    samples = resolve_images(args.image, len(runner.in_details))
    labels = _check_labels(args, samples)
    if draw_dir is not None and args.category != "Detection":
        log.warning("--draw_result draws detection boxes; it is ignored with -c %s", args.category)
    log.info("model %s (%s): inputs %s, outputs %s", model_path, model_type,
             [(d["name"], d["shape"].tolist()) for d in runner.in_details],
             [(d["name"], d["shape"].tolist()) for d in runner.out_details])

    _prepare_output(job.output_dir, keep=args.continue_run)
    todo = _pending(samples, job) if args.continue_run else samples
    num_process = max(1, min(args.num_process, os.cpu_count() or 1, len(todo)))
    _run_all(runner, todo, num_process)
    print(f"Simulated {len(todo)} sample(s) with {os.path.basename(model_path)} ({model_type}); "
          f"results in {job.output_dir}")

    if labels is not None:
        predictions = {os.path.basename(s[0]): res.read_classification_file(os.path.join(
            job.output_dir, res.result_file_name(job.category, model_path, s[0]))) for s in samples}
        print(res.accuracy(predictions, labels).line())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a float or fixed model on images and write one result file per image into ./output/\n"
                    "(emptied first, unless --continue_run; the vendor's tool later moves it to log/output/,\n"
                    "this one leaves it in ./output/).",
        epilog="Result files (per image; <model>/<image> are file names with extensions):\n"
               "  Classification: output/classification_<model>_<image>.txt  image name + top-5 '<index> <prob>'\n"
               "  Detection:      output/detection_<model>_<image>.txt  COCO-style lines, boxes in image pixels\n"
               "  Unknown:        output/unknown_<model>_<image>.txt  every output tensor, %.6f, 16 per line\n"
               "Exit codes: 0 ok, 1 user error (one line on stderr), 2 bad command line, 130 interrupted.")
    p.add_argument("-i", "--image", required=True,
                   help="an image, a folder of images (recursive), or a list file (one sample per line, ',' between "
                        "the images of a multi-input sample; 'dir:listfile' prefixes dir); for a multi-input model "
                        "also one image or folder per input, separated by ','")
    p.add_argument("-m", "--model", required=True, help="the model: *_float.sim / float .tflite, or *_fixed.sim")
    p.add_argument("-c", "--category", default="Unknown", choices=res.CATEGORIES,
                   help="how to write results (default Unknown): Classification = top-5 of the single output; "
                        "Detection = boxes of a model ending in TFLite_Detection_PostProcess/TFLite_Detection_NMS "
                        "(4 outputs); Unknown = every output tensor")
    p.add_argument("-t", "--type", default=None, choices=["Float", "Fixed", "Offline", *SDK_INTERNAL_TYPES],
                   help="model type; default: what the model is (a fixed model written by calibrator_custom says "
                        "so); a type contradicting the model is an error; Offline is not supported; the SDK's "
                        "internal Cmodel_float / Fixed_without_ipu_ctrl run as Float / Fixed")
    p.add_argument("-n", "--preprocess", required=True,
                   help="preprocess per model input (',' separated): a built-in name or a .py file defining "
                        "image_preprocess(img_path, norm=True); float models get norm=True, fixed ones norm=False "
                        "and utils.convert_to_input_formats")
    p.add_argument("-l", "--label", default=None,
                   help="-c Classification only: print top-1/top-5 accuracy; a label file of '<image file name> "
                        "<class index>' lines (ImageNet val style), or for a single image its class index "
                        "(or a file holding it); COCO json mAP for -c Detection is not implemented")
    p.add_argument("--input_config", default=None,
                   help="input_config.ini; accepted for compatibility (the vendor needs it for Offline models only)")
    p.add_argument("--num_process", type=int, default=1,
                   help="worker processes (default 1; capped at the CPU count); results are identical")
    p.add_argument("--show_log", action="store_true", help="log the library's progress messages on stderr")
    p.add_argument("--dump_rawdata", action="store_true",
                   help="also write each converted input (the bytes given to set_input) to ./<image>.bin, or "
                        "./<image>_input<i>.bin for multi-input models")
    p.add_argument("--skip_garbage", action="store_true",
                   help="-c Unknown: leave out the alignment shape and note of quantized (INT16) outputs")
    p.add_argument("--draw_result", default=None, metavar="DIR[,THRESHOLD]",
                   help="-c Detection: draw the boxes scoring above THRESHOLD (default 0) on the original image, "
                        "saved as DIR/<image file name>")
    p.add_argument("--continue_run", action="store_true",
                   help="keep ./output/ and simulate only the images without a result file there")
    p.add_argument("--tool", default=None,
                   help="the SDK's simulator binary (1.x); accepted for compatibility and ignored")
    p.add_argument("--save_input", action="store_true",
                   help="the SDK's flag (writes ./tmp_image/); accepted for compatibility and ignored (use "
                        "--dump_rawdata for the converted inputs)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sgs-simulator`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    return run(PROG, build_parser(), _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
